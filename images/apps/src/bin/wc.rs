//! `wc [FILE...]`: counts lines, words and bytes of each file (or of standard input, with
//! no operands or `-`), plus a total for several files, like coreutils `wc`:
//!
//! ```text
//! $ wc /etc/astra/lines.txt
//! 5 5 24 /etc/astra/lines.txt
//! ```
//!
//! Words are maximal runs of bytes that are not C `isspace` (space, `\t \n \v \f \r`).
//! Fields are separated by one space and right-aligned to the widest count. A guest-std
//! program: `fs::File`, `io::Read`, `io::stdin`. Exits 1 if any file could not be read.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::vec::Vec;

use guest_std::env::Args;
use guest_std::fs::File;
use guest_std::io::{self, Bytes, Read};
use guest_std::{entry, eprintln, println, Errno};

entry!(main);

/// Lines, words and bytes.
#[derive(Clone, Copy, Default)]
struct Counts {
    lines: u64,
    words: u64,
    bytes: u64,
}

/// Counts `input` to its end; `in_word` carries a word across buffer boundaries.
fn count(input: &mut impl Read) -> Result<Counts, Errno> {
    let mut counts = Counts::default();
    let mut buf = [0u8; 8192];
    let mut in_word = false;
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => return Ok(counts),
            Ok(n) => n.min(buf.len()),
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
        };
        for &byte in &buf[..n] {
            if byte == b'\n' {
                counts.lines += 1;
            }
            // C isspace(): space, \t \n \v \f \r.
            if matches!(byte, b' ' | b'\t'..=b'\r') {
                in_word = false;
            } else if !in_word {
                in_word = true;
                counts.words += 1;
            }
        }
        counts.bytes += n as u64;
    }
}

fn digits(mut value: u64) -> usize {
    let mut n = 1;
    while value >= 10 {
        value /= 10;
        n += 1;
    }
    n
}

fn main(args: Args) -> i32 {
    let mut operands: Vec<&[u8]> = args.skip(1).collect();
    if operands.is_empty() {
        operands.push(b"-");
    }
    let mut results: Vec<(&[u8], Counts)> = Vec::new();
    let mut status = 0;
    for &operand in &operands {
        let counted = if operand == b"-" {
            count(&mut io::stdin())
        } else {
            File::open(operand).and_then(|mut file| count(&mut file))
        };
        match counted {
            Ok(counts) => results.push((operand, counts)),
            Err(e) => {
                eprintln!(
                    "wc: {}: {}",
                    Bytes(operand),
                    e.description().unwrap_or("Unknown error")
                );
                status = 1;
            }
        }
    }
    let mut total = Counts::default();
    for (_, c) in &results {
        total.lines += c.lines;
        total.words += c.words;
        total.bytes += c.bytes;
    }
    let width = digits(total.lines.max(total.words).max(total.bytes));
    let show_total = results.len() > 1;
    for (name, c) in results
        .iter()
        .chain(show_total.then_some(&(&b"total"[..], total)))
    {
        let (lines, words, bytes) = (c.lines, c.words, c.bytes);
        if *name == b"-" {
            println!("{lines:>width$} {words:>width$} {bytes:>width$}");
        } else {
            println!(
                "{lines:>width$} {words:>width$} {bytes:>width$} {}",
                Bytes(name)
            );
        }
    }
    status
}

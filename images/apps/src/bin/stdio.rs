//! `stdio`: writes to both standard streams, for the tests that check where each ends up.
//!
//! - `stdio`: writes `stdio: to stdout` on fd 1 and `stdio: to stderr` on fd 2;
//! - `stdio BYTES`: writes BYTES bytes of 64-byte lines on fd 1, 4 KiB per `write(2)` (the
//!   console throughput test).
//!
//! Exits 0, or 1 if a write fails or BYTES is not a number.
#![no_std]
#![no_main]

use guest_std::entry;
use guest_std::env::Args;
use guest_std::io::{self, Write};

entry!(main);

/// Bytes per `write(2)` in the throughput mode.
const CHUNK: usize = 4096;

fn parse_decimal(text: &[u8]) -> Option<usize> {
    if text.is_empty() {
        return None;
    }
    text.iter().try_fold(0usize, |n, &c| {
        let digit = c.checked_sub(b'0').filter(|d| *d < 10)?;
        n.checked_mul(10)?.checked_add(usize::from(digit))
    })
}

/// 4 KiB of 64-byte lines: 63 characters of the alphabet and digits, then a newline.
fn chunk() -> [u8; CHUNK] {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut buf = [0u8; CHUNK];
    for (i, byte) in buf.iter_mut().enumerate() {
        *byte = if i % 64 == 63 {
            b'\n'
        } else {
            ALPHABET[i % 64 % ALPHABET.len()]
        };
    }
    buf
}

fn main(args: Args) -> i32 {
    let Some(arg) = args.clone().nth(1) else {
        let out = io::stdout().write_all(b"stdio: to stdout\n");
        let err = io::stderr().write_all(b"stdio: to stderr\n");
        return i32::from(out.is_err() || err.is_err());
    };
    let Some(mut left) = parse_decimal(arg) else {
        let _ = io::stderr().write_all(b"usage: stdio [BYTES]\n");
        return 1;
    };
    let buf = chunk();
    while left > 0 {
        let n = left.min(CHUNK);
        if io::stdout().write_all(&buf[..n]).is_err() {
            return 1;
        }
        left -= n;
    }
    0
}

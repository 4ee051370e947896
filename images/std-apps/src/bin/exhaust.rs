//! `exhaust RESOURCE`: takes a kernel resource until the kernel says no, then gives it all
//! back and checks the kernel still works. The kernel must answer with an error, never die:
//!
//! - `pipes`: creates pipes and fills each with 64 KiB (their capacity, so no write
//!   blocks) until `pipe` or `write` fails; Linux stops at the descriptor limit (`EMFILE`),
//!   a small astra guest when its kernel heap budget is spent (`ENOMEM`);
//! - `fds`: opens one of the image's files until `EMFILE`;
//! - `maps`: splits one large anonymous mapping into single pages with alternating
//!   protections (`mprotect`) until the kernel refuses another memory area (`ENOMEM`: the
//!   map-count limit or the kernel heap).
//!
//! Prints `exhaust RESOURCE: stopped by E..., then recovered` and exits 0; exits 1 if the
//! error was another one or the kernel misbehaved after.

use std::alloc::{alloc, dealloc, Layout};
use std::fs::File;
use std::io::{self, Read, Write};
use std::process::ExitCode;

use astra_std_apps::sys::syscall3;

const ENOMEM: i32 = 12;
const EMFILE: i32 = 24;
const PIPE_CAPACITY: usize = 64 << 10;
/// A file every image has (the Linux reference runs in a chroot without /dev).
const FD_TARGET: &str = "/etc/astra/hello.txt";
const PAGE: usize = 4096;
/// `mprotect` and its protections.
const MPROTECT: usize = 10;
const PROT_READ: usize = 1;
const PROT_WRITE: usize = 2;

fn stopped_by(err: &io::Error) -> Result<&'static str, String> {
    match err.raw_os_error() {
        Some(ENOMEM) | Some(EMFILE) => Ok("ENOMEM or EMFILE"),
        _ => Err(format!("unexpected error: {err}")),
    }
}

/// One round trip through a fresh pipe.
fn pipe_works() -> io::Result<()> {
    let (mut r, mut w) = io::pipe()?;
    w.write_all(b"ok")?;
    let mut got = [0u8; 2];
    r.read_exact(&mut got)?;
    if &got == b"ok" {
        Ok(())
    } else {
        Err(io::Error::other("a pipe returned other bytes"))
    }
}

fn pipes() -> Result<String, String> {
    let block = vec![0x5au8; PIPE_CAPACITY];
    let mut held = Vec::new();
    let err = loop {
        let (r, mut w) = match io::pipe() {
            Ok(ends) => ends,
            Err(e) => break e,
        };
        if let Err(e) = w.write_all(&block) {
            break e;
        }
        held.push((r, w));
    };
    let why = stopped_by(&err)?;
    if held.len() < 8 {
        return Err(format!("only {} pipes before {err}", held.len()));
    }
    drop(held);
    pipe_works().map_err(|e| format!("after releasing the pipes: {e}"))?;
    Ok(why.into())
}

fn fds() -> Result<String, String> {
    let mut held = Vec::new();
    let err = loop {
        match File::open(FD_TARGET) {
            Ok(f) => held.push(f),
            Err(e) => break e,
        }
    };
    if err.raw_os_error() != Some(EMFILE) {
        return Err(format!("unexpected error: {err}"));
    }
    drop(held);
    File::open(FD_TARGET).map_err(|e| format!("after closing: {e}"))?;
    Ok("EMFILE".into())
}

fn maps() -> Result<String, String> {
    const AREA: usize = 256 << 20;
    let layout = Layout::from_size_align(AREA, PAGE).map_err(|e| e.to_string())?;
    // SAFETY: a non-zero size; the block is only touched through mprotect and the check
    // below, and freed with the same layout.
    let base = unsafe { alloc(layout) };
    if base.is_null() {
        return Err("cannot reserve 256 MiB".into());
    }
    let mut err = 0;
    let mut changed = 0;
    for page in (0..AREA / PAGE).step_by(2) {
        let addr = base as usize + page * PAGE;
        // SAFETY: a page of our own allocation, made read-only; nothing reads or writes it
        // until it is made writable again below.
        let ret = unsafe { syscall3(MPROTECT, addr, PAGE, PROT_READ) };
        if ret < 0 {
            err = -ret as i32;
            break;
        }
        changed += 1;
    }
    // Back to read-write page by page, each merging with its neighbours (one call over
    // the whole block could need a split the exhausted kernel refuses, as Linux would).
    for page in (0..changed * 2).step_by(2).rev() {
        let addr = base as usize + page * PAGE;
        // SAFETY: as above, restoring what the allocator gave.
        let ret = unsafe { syscall3(MPROTECT, addr, PAGE, PROT_READ | PROT_WRITE) };
        if ret != 0 {
            return Err(format!("restoring page {page} failed: {ret}"));
        }
    }
    // SAFETY: the first page is ours and writable again.
    unsafe { base.write_volatile(1) };
    // SAFETY: allocated above with this layout.
    unsafe { dealloc(base, layout) };
    if err != ENOMEM {
        return Err(format!("stopped by errno {err}, expected ENOMEM"));
    }
    let v = vec![7u8; 1 << 20];
    if v.iter().any(|&b| b != 7) {
        return Err("memory is broken after the exhaustion".into());
    }
    Ok("ENOMEM".into())
}

fn main() -> ExitCode {
    let which = std::env::args().nth(1).unwrap_or_default();
    let result = match which.as_str() {
        "pipes" => pipes(),
        "fds" => fds(),
        "maps" => maps(),
        _ => {
            eprintln!("usage: exhaust pipes|fds|maps");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(why) => {
            println!("exhaust {which}: stopped by {why}, then recovered");
            ExitCode::SUCCESS
        }
        Err(e) => {
            println!("exhaust {which}: FAIL: {e}");
            ExitCode::FAILURE
        }
    }
}

//! `ls [-l] [PATH...]`: lists directories (sorted by name, without dot files' `.` and
//! `..`) and names files, like a small coreutils `ls`; `-l` adds type, permissions and
//! size. A guest-std program: `fs::read_dir`, `fs::symlink_metadata`, `alloc`.
//!
//! ```text
//! $ ls -l /etc/astra
//! drwxr-xr-x        0 dir
//! -rw-r--r--       29 hello.txt
//! ```
//!
//! Exits 0, or 2 if any operand could not be listed (`ls: cannot access 'x': ...`).
#![no_std]
#![no_main]

extern crate alloc;

use alloc::vec::Vec;

use guest_std::env::Args;
use guest_std::fs::{self, FileType, Metadata};
use guest_std::io::Bytes;
use guest_std::{entry, eprintln, println, Errno};

entry!(main);

/// `rwxr-xr-x` for permission bits `0o755`.
struct Permissions(u32);

impl core::fmt::Display for Permissions {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        for shift in [6, 3, 0] {
            let bits = (self.0 >> shift) & 0o7;
            for (bit, letter) in [(4, 'r'), (2, 'w'), (1, 'x')] {
                f.write_fmt(format_args!(
                    "{}",
                    if bits & bit != 0 { letter } else { '-' }
                ))?;
            }
        }
        Ok(())
    }
}

fn describe(err: Errno) -> &'static str {
    err.description().unwrap_or("Unknown error")
}

fn print_entry(name: &[u8], meta: Option<&Metadata>, long: bool) {
    match (long, meta) {
        (true, Some(meta)) => {
            let letter = meta.file_type().map_or('?', FileType::letter);
            println!(
                "{letter}{} {:>8} {}",
                Permissions(meta.permissions()),
                meta.len(),
                Bytes(name)
            );
        }
        _ => println!("{}", Bytes(name)),
    }
}

/// Lists one operand; `false` if it could not be.
fn list(path: &[u8], long: bool, heading: bool) -> bool {
    let meta = match fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) => {
            eprintln!("ls: cannot access '{}': {}", Bytes(path), describe(e));
            return false;
        }
    };
    if !meta.is_dir() {
        print_entry(path, Some(&meta), long);
        return true;
    }
    let mut entries = Vec::new();
    let dir = match fs::read_dir(path) {
        Ok(dir) => dir,
        Err(e) => {
            eprintln!(
                "ls: cannot open directory '{}': {}",
                Bytes(path),
                describe(e)
            );
            return false;
        }
    };
    for entry in dir {
        match entry {
            Ok(entry) => entries.push(entry),
            Err(e) => {
                eprintln!("ls: reading directory '{}': {}", Bytes(path), describe(e));
                return false;
            }
        }
    }
    entries.sort_by(|a, b| a.file_name().cmp(b.file_name()));
    if heading {
        println!("{}:", Bytes(path));
    }
    for entry in &entries {
        let meta = if long {
            let mut full = Vec::from(path);
            if !full.ends_with(b"/") {
                full.push(b'/');
            }
            full.extend_from_slice(entry.file_name());
            fs::symlink_metadata(&full).ok()
        } else {
            None
        };
        print_entry(entry.file_name(), meta.as_ref(), long);
    }
    true
}

fn main(args: Args) -> i32 {
    let mut long = false;
    let mut operands: Vec<&[u8]> = Vec::new();
    for arg in args.skip(1) {
        match arg {
            b"-l" => long = true,
            _ => operands.push(arg),
        }
    }
    if operands.is_empty() {
        operands.push(b".");
    }
    let heading = operands.len() > 1;
    let mut ok = true;
    for (i, path) in operands.iter().enumerate() {
        if heading && i > 0 {
            println!();
        }
        ok &= list(path, long, heading);
    }
    if ok {
        0
    } else {
        2
    }
}

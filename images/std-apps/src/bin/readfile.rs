//! `readfile PATH`: reads a whole file with `std::fs::read` and prints its length, an FNV-1a
//! checksum and the time the read took, measured by the program itself:
//!
//! ```text
//! readfile: /data/64M bytes=67108864 fnv1a64=0123456789abcdef read_ns=12345678
//! ```

use std::process::ExitCode;
use std::time::Instant;

use astra_std_apps::{error_text, fnv1a64};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let [_, path] = args.as_slice() else {
        eprintln!("usage: readfile PATH");
        return ExitCode::from(2);
    };
    let start = Instant::now();
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) => {
            eprintln!("readfile: {path}: {}", error_text(&e));
            return ExitCode::FAILURE;
        }
    };
    let read_ns = start.elapsed().as_nanos();
    let sum = fnv1a64(&bytes);
    println!(
        "readfile: {path} bytes={} fnv1a64={sum:016x} read_ns={read_ns}",
        bytes.len()
    );
    ExitCode::SUCCESS
}

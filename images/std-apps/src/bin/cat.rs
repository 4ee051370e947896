//! `cat`: copies each named file (or standard input, for no arguments or `-`) to standard
//! output. Errors are reported like coreutils (`cat: /x: No such file or directory`) and the
//! copy goes on with the next file; the exit status is 1 if any file failed.

use std::fs::File;
use std::io::{self, ErrorKind, Read, Write};
use std::process::ExitCode;

use astra_std_apps::error_text;

/// Copy buffer size: what coreutils uses for regular files.
const BUF_LEN: usize = 128 << 10;

/// Why one operand failed: reading it, or writing standard output (which ends the run).
enum CopyError {
    Read(io::Error),
    Write(io::Error),
}

fn copy(input: &mut impl Read, out: &mut impl Write, buf: &mut [u8]) -> Result<(), CopyError> {
    loop {
        let n = match input.read(buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(CopyError::Read(e)),
        };
        out.write_all(&buf[..n]).map_err(CopyError::Write)?;
    }
}

fn main() -> ExitCode {
    let mut operands: Vec<String> = std::env::args().skip(1).collect();
    if operands.is_empty() {
        operands.push("-".into());
    }
    let stdout = io::stdout();
    let mut out = stdout.lock();
    let mut buf = vec![0u8; BUF_LEN];
    let mut status = ExitCode::SUCCESS;
    for operand in &operands {
        let result = if operand == "-" {
            copy(&mut io::stdin().lock(), &mut out, &mut buf)
        } else {
            match File::open(operand) {
                Ok(mut file) => copy(&mut file, &mut out, &mut buf),
                Err(e) => Err(CopyError::Read(e)),
            }
        };
        match result {
            Ok(()) => {}
            Err(CopyError::Read(e)) => {
                eprintln!("cat: {operand}: {}", error_text(&e));
                status = ExitCode::FAILURE;
            }
            Err(CopyError::Write(e)) => {
                eprintln!("cat: write error: {}", error_text(&e));
                return ExitCode::FAILURE;
            }
        }
    }
    if let Err(e) = out.flush() {
        eprintln!("cat: write error: {}", error_text(&e));
        return ExitCode::FAILURE;
    }
    status
}

//! `stdcheck`: std conformance on the running kernel. Exercises what an ordinary Rust
//! program leans on (arguments, environment, files, clocks, collections, allocation, panics,
//! threads, formatting) and prints one `PASS name` / `FAIL name: why` line per check and a
//! summary; exits 0 only if every check passed.
//!
//! It needs the fixtures of `images/default.manifest` under `/etc/astra` and a writable
//! root: run it on astra, or on Linux chrooted into an overlay of the image.

mod fs;
mod mem;
mod misc;
mod time;

use std::process::ExitCode;

use astra_std_apps::checks::Checks;

fn main() -> ExitCode {
    let mut checks = Checks::stdout("stdcheck");
    misc::run(&mut checks);
    fs::run(&mut checks);
    time::run(&mut checks);
    mem::run(&mut checks);
    checks.finish()
}

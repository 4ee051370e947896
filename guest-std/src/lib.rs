//! guest-std: a small, std-shaped, libc-free runtime for astra guest programs.
//!
//! Programs are static x86-64 executables that talk to the astra kernel through `int 0x80`
//! with the Linux x86-64 system call numbers and registers. This crate owns:
//! - [`syscall`]: raw system calls, their numbers and `Result`-returning wrappers;
//! - [`errno`]: the Linux error numbers the kernel returns;
//! - [`rt`] and [`entry!`]: the `_start` entry point and the walk over the start-up stack;
//! - [`env`]: the arguments, environment and auxiliary vector;
//! - [`io`] and the `print!` family: formatted output to stdout and stderr;
//! - [`process`]: exiting and the process id;
//! - a `#[panic_handler]` (feature `panic-handler`, on by default).
//!
//! A program looks like this:
//!
//! ```ignore
//! #![no_std]
//! #![no_main]
//! use guest_std::{entry, env::Args, println};
//!
//! entry!(main);
//!
//! fn main(args: Args) -> i32 {
//!     println!("{} arguments", args.len());
//!     0
//! }
//! ```
//!
//! Everything that does not execute a system call (the start-up stack walker, errno decoding,
//! the output buffer) also compiles on the host, so `cargo test -p guest-std` covers it.
#![cfg_attr(not(test), no_std)]

pub mod env;
pub mod errno;
pub mod io;
#[cfg(all(not(test), feature = "panic-handler"))]
mod panic;
pub mod process;
pub mod rt;
pub mod syscall;

pub use errno::Errno;

#[cfg(not(target_arch = "x86_64"))]
compile_error!("guest-std targets x86-64 only (astra guests; host tests on an x86-64 host)");

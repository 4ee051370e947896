//! guest-std: a small, std-shaped, libc-free runtime for astra guest programs.
//!
//! Programs are static x86-64 executables that talk to the astra kernel through `int 0x80`
//! with the Linux x86-64 system call numbers and registers. This crate owns:
//! - [`syscall`]: raw system calls, their numbers and `Result`-returning wrappers;
//! - [`errno`]: the Linux error numbers the kernel returns;
//! - [`rt`] and [`entry!`]: the `_start` entry point and the walk over the start-up stack;
//! - [`env`]: the arguments, environment and auxiliary vector;
//! - [`io`]: the [`Read`](io::Read) and [`Write`](io::Write) traits, stdin, stdout, stderr,
//!   and the `print!` family;
//! - [`fs`]: files (open, read, write, seek, metadata) and directory listings;
//! - [`time`]: `Instant`, `SystemTime`, `sleep`;
//! - [`process`]: exiting and the process id;
//! - [`heap`]: the memory allocator (over `brk` and `mmap`) behind `alloc`'s `Vec`, `String`
//!   and `Box`, installed as `#[global_allocator]` (feature `global-allocator`, on by
//!   default);
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
//! the output buffer, the allocator's bookkeeping, `stat` and directory-record decoding,
//! open-flag and clock conversions) also compiles on the host, so `cargo test -p guest-std`
//! covers it.
#![cfg_attr(not(test), no_std)]

extern crate alloc;

pub mod env;
pub mod errno;
pub mod fs;
pub mod heap;
pub mod io;
#[cfg(all(not(test), feature = "panic-handler"))]
mod panic;
pub mod process;
pub mod rt;
pub mod syscall;
pub mod time;

/// The process's allocator (host tests use the host's).
#[cfg(all(not(test), feature = "global-allocator"))]
#[global_allocator]
static GLOBAL: heap::GuestAlloc = heap::GuestAlloc::new();

pub use errno::Errno;

#[cfg(not(target_arch = "x86_64"))]
compile_error!("guest-std targets x86-64 only (astra guests; host tests on an x86-64 host)");

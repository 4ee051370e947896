//! `sysfuzz`: calls every Linux x86-64 system call number (0-511) with hostile arguments,
//! to show that no program can crash the kernel: each number is tried with every argument
//! set to each of a few bad values (null, small, all-ones, kernel half, non-canonical, the
//! top of user space). Prints `sysfuzz: survived N calls` and exits 0.
//!
//! Left out are the calls that would end or stop this program by design rather than by a
//! kernel bug: exit and exit_group, rt_sigreturn (a garbage frame kills the caller), the
//! signal senders (kill, tkill, tgkill), and calls that may block for as long as the
//! argument says (pause, nanosleep, clock_nanosleep, poll, ppoll, select, pselect6,
//! rt_sigsuspend, and reads of the console, which is the test's stdin).
#![no_std]
#![no_main]

use core::fmt::Write;

use guest_std::entry;
use guest_std::syscall::{syscall3, syscall6};

entry!(main);

/// Numbers not called (see the module docs).
const SKIPPED: &[usize] = &[
    0,   // read (fd 0 is the console)
    7,   // poll
    15,  // rt_sigreturn
    17,  // pread64
    19,  // readv
    23,  // select
    34,  // pause
    35,  // nanosleep
    60,  // exit
    62,  // kill
    130, // rt_sigsuspend
    200, // tkill
    230, // clock_nanosleep
    231, // exit_group
    234, // tgkill
    270, // pselect6
    271, // ppoll
    295, // preadv
    327, // preadv2
];

/// Argument values no valid call would pass (all six arguments get the same one).
const HOSTILE: [usize; 6] = [
    0,
    1,
    usize::MAX,
    0xffff_8000_0000_0000,
    0x0000_8000_0000_0000,
    0x0000_7fff_ffff_f000,
];

fn main(_args: guest_std::env::Args) -> i32 {
    let mut calls = 0u32;
    for nr in 0..512 {
        if SKIPPED.contains(&nr) {
            continue;
        }
        for value in HOSTILE {
            // SAFETY: every argument is invalid or points nowhere this program uses; the
            // calls that could change this program's own memory get addresses it does
            // not occupy (it is linked at 0x400000), so only the kernel is exercised.
            let _ = unsafe { syscall6(nr, value, value, value, value, value, value) };
            calls += 1;
        }
    }
    // The fuzzing closed fds 0 and 1 (`close(0)`, `close(1)`), as it may: report through a
    // fresh descriptor of the console.
    let mut line = Line::default();
    let _ = writeln!(line, "sysfuzz: survived {calls} calls");
    // SAFETY: a NUL-terminated path and a buffer that outlive the calls.
    let fd = unsafe { syscall3(SYS_OPEN, CONSOLE.as_ptr() as usize, O_WRONLY, 0) };
    if fd < 0 {
        return 2;
    }
    // SAFETY: as above.
    let n = unsafe { syscall3(SYS_WRITE, fd as usize, line.buf.as_ptr() as usize, line.len) };
    if n == line.len as isize {
        0
    } else {
        3
    }
}

const SYS_WRITE: usize = 1;
const SYS_OPEN: usize = 2;
const O_WRONLY: usize = 1;
const CONSOLE: &[u8] = b"/dev/console\0";

/// A line formatted without allocating (the fuzzing may have moved the heap's break).
struct Line {
    buf: [u8; 64],
    len: usize,
}

impl Default for Line {
    fn default() -> Self {
        Line {
            buf: [0; 64],
            len: 0,
        }
    }
}

impl Write for Line {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let end = self.len + s.len();
        let dst = self.buf.get_mut(self.len..end).ok_or(core::fmt::Error)?;
        dst.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

//! System calls: Linux x86-64 numbers and semantics, the same table for the `syscall`
//! instruction and `int 0x80`.
//!
//! [`table`] is the one place that maps a number to its name, argument shapes (for
//! `--strace`) and handler; handlers live one family per file and return
//! `Result<u64, Errno>`, which [`dispatch`] turns into Linux's `-errno` convention.

mod errno;
mod io;
mod proc;
pub mod strace;
mod table;

use core::sync::atomic::{AtomicBool, Ordering};

pub use errno::Errno;

use crate::arch::trap::TrapFrame;
use crate::mm::paging::USER_END;
use crate::process::{self, Process};

/// Result of a system call handler.
pub type SysResult = Result<u64, Errno>;

/// What a handler gets: the calling process and its saved registers.
pub struct Ctx<'a> {
    /// The calling process.
    pub proc: &'a mut Process,
    /// Its user registers (a handler may change them, e.g. exec).
    pub frame: &'a mut TrapFrame,
}

static STRACE: AtomicBool = AtomicBool::new(false);

/// Turns `--strace` output on or off.
pub fn set_strace(on: bool) {
    STRACE.store(on, Ordering::Relaxed);
}

/// Runs the system call described by `frame` (rax = number, rdi..r9 = arguments) and
/// stores the result in `frame.rax`.
pub fn dispatch(frame: &mut TrapFrame) {
    let nr = frame.rax;
    let args = [
        frame.rdi, frame.rsi, frame.rdx, frame.r10, frame.r8, frame.r9,
    ];
    let Some(proc) = process::current() else {
        frame.rax = Errno::ENOSYS.as_return();
        return;
    };
    let entry = table::lookup(nr);
    let strace = STRACE.load(Ordering::Relaxed);
    let mut line = if strace {
        Some(strace::begin(proc, nr, entry.as_ref(), &args))
    } else {
        None
    };
    let result = match &entry {
        Some(e) => (e.handler)(&mut Ctx { proc, frame }, args),
        None => Err(Errno::ENOSYS),
    };
    if let Some(line) = line.as_mut() {
        strace::finish(line, &result);
    }
    frame.rax = match result {
        Ok(value) => value,
        Err(e) => e.as_return(),
    };
    // SYSRET would fault in kernel mode on a non-canonical rip; never return there.
    if frame.rip >= USER_END {
        crate::kprintln!(
            "astra: {} killed: return address {:#x} is not in user space",
            process::current_name(),
            frame.rip
        );
        process::exit_current(128 + crate::trap::signal::SIGSEGV);
    }
}

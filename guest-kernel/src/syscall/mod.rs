//! System calls: Linux x86-64 numbers and semantics, the same table for the `syscall`
//! instruction and `int 0x80`.
//!
//! [`table`] is the one place that maps a number to its name, argument shapes (for
//! `--strace`) and handler; handlers live one family per file and return
//! `Result<u64, Errno>`, which [`dispatch`] turns into Linux's `-errno` convention.

mod exec;
mod fs;
mod fs_attr;
mod fs_copy;
mod fs_ctl;
mod fs_dir;
mod fs_lock;
mod fs_mod;
mod fs_poll;
pub mod futex;
pub mod info;
mod io;
pub mod mem;
pub mod mremap;
mod names;
mod proc;
mod process;
mod signal;
mod signal_wait;
mod splice;
pub mod strace;
mod table;
pub mod thread;
mod time;

use core::sync::atomic::{AtomicBool, Ordering};

pub use crate::errno::Errno;
pub use info::{Rlimit, Rlimits, RLIMIT_NOFILE, RLIMIT_NPROC, RLIMIT_STACK, RLIM_INFINITY};
pub use proc::{Rseq, ThreadState};

use alloc::string::String;
use alloc::vec::Vec;

use crate::arch::trap::TrapFrame;
use crate::mm::paging::USER_END;
use crate::mm::uaccess;
use crate::task::{self, Task};

/// Result of a system call handler.
pub type SysResult = Result<u64, Errno>;

/// What a handler gets: the calling task (and through it its process and the parts it
/// shares) and its saved registers.
pub struct Ctx<'a> {
    /// The calling task.
    pub task: &'a mut Task,
    /// Its user registers (a handler may change them, e.g. exec).
    pub frame: &'a mut TrapFrame,
}

/// Largest path a system call accepts, with its NUL (Linux's `PATH_MAX`).
pub const PATH_MAX: usize = 4096;

/// User-memory access for handlers: every pointer a process passes goes through these,
/// so that a bad one gives EFAULT and memory management can fault pages in on the way.
impl Ctx<'_> {
    /// Copies `buf.len()` bytes from user address `va`.
    pub fn read_user(&self, va: u64, buf: &mut [u8]) -> Result<(), Errno> {
        uaccess::read_user(&self.task.mm.lock(), va, buf)
    }

    /// Copies `data` to user address `va`.
    pub fn write_user(&mut self, va: u64, data: &[u8]) -> Result<(), Errno> {
        uaccess::write_user(&mut self.task.mm.lock(), va, data)
    }

    /// Reads `len` bytes from user address `va` into a new vector.
    pub fn read_vec(&self, va: u64, len: usize) -> Result<Vec<u8>, Errno> {
        let mut buf = alloc::vec![0u8; len];
        self.read_user(va, &mut buf)?;
        Ok(buf)
    }

    /// Reads a `u64` from user memory.
    pub fn read_u64(&self, va: u64) -> Result<u64, Errno> {
        self.read_obj(va)
    }

    /// Reads a plain-data value (`#[repr(C)]`, every bit pattern valid) from user memory.
    pub fn read_obj<T: uaccess::Pod>(&self, va: u64) -> Result<T, Errno> {
        uaccess::read_obj_with(|bytes| self.read_user(va, bytes))
    }

    /// Writes a plain-data value to user memory.
    pub fn write_obj<T: uaccess::Pod>(&mut self, va: u64, value: &T) -> Result<(), Errno> {
        self.write_user(va, uaccess::obj_bytes(value))
    }

    /// Reads a NUL-terminated string of at most `max` bytes (without the NUL) from user
    /// memory: EFAULT for a bad pointer, ENAMETOOLONG if no NUL comes within `max + 1`.
    pub fn read_cstr(&self, va: u64, max: usize) -> Result<Vec<u8>, Errno> {
        uaccess::read_cstr_with(|at, chunk| self.read_user(at, chunk), va, max)
    }

    /// Reads a path argument: at most `PATH_MAX` bytes, UTF-8 (astra's tarfs names are),
    /// ENOENT for an empty path as Linux does.
    pub fn read_path(&self, va: u64) -> Result<String, Errno> {
        let bytes = self.read_cstr(va, PATH_MAX - 1)?;
        if bytes.is_empty() {
            return Err(Errno::ENOENT);
        }
        String::from_utf8(bytes).map_err(|_| Errno::ENOENT)
    }
}

static STRACE: AtomicBool = AtomicBool::new(false);
static STATS: AtomicBool = AtomicBool::new(false);

/// Turns `--strace` output on or off.
pub fn set_strace(on: bool) {
    STRACE.store(on, Ordering::Relaxed);
}

/// Turns `--stats` counting on or off.
pub fn set_stats(on: bool) {
    STATS.store(on, Ordering::Relaxed);
}

/// Tells the VMM where the `--stats` counters and their names are (the
/// `stats_*` fields of the [`BootInfo`](hypercall_abi::BootInfo) at `boot_info`, a kernel
/// virtual address), so it can print them when the run ends without the program ending.
///
/// # Safety
/// `boot_info` must point to the VMM's `BootInfo`, mapped writable, with nothing else
/// accessing it meanwhile.
pub unsafe fn publish_stats(boot_info: *mut hypercall_abi::BootInfo) {
    let (counters, count, names, names_len) = strace::stats::publish(name_of);
    let to_phys = crate::mm::kernel_virt_to_phys;
    // SAFETY: the caller guarantees `boot_info` is the VMM's BootInfo, mapped writable and
    // not accessed meanwhile; the fields are plain integers.
    unsafe {
        core::ptr::addr_of_mut!((*boot_info).stats_counters_gpa)
            .write_volatile(hypercall_abi::GuestPhysAddr(to_phys(counters)));
        core::ptr::addr_of_mut!((*boot_info).stats_names_gpa)
            .write_volatile(hypercall_abi::GuestPhysAddr(to_phys(names)));
        core::ptr::addr_of_mut!((*boot_info).stats_names_len).write_volatile(names_len);
        core::ptr::addr_of_mut!((*boot_info).stats_count).write_volatile(count);
    }
}

/// The name `--strace` and `--stats` give system call `nr`.
fn name_of(nr: u64) -> String {
    match table::lookup(nr) {
        Some(entry) => String::from(entry.name),
        None => match names::linux_name(nr) {
            Some(name) => String::from(name),
            None => alloc::format!("syscall_{nr:#x}"),
        },
    }
}

/// Prints the `--stats` table (like `strace -c`) of every system call so far, if
/// `astra.stats` is on. Called when the program ends.
pub fn print_stats() {
    if STATS.load(Ordering::Relaxed) {
        let table = strace::stats::render(strace::stats::rows(name_of));
        crate::drivers::console::write_stats(&table);
    }
}

/// Runs system call `nr` for `task` directly, as if `task` had made it (in-kernel tests
/// drive the handlers this way, without a trip through ring 3).
pub fn invoke(task: &mut Task, frame: &mut TrapFrame, nr: u64, args: [u64; 6]) -> SysResult {
    match table::lookup(nr) {
        Some(e) => (e.handler)(&mut Ctx { task, frame }, args),
        None => Err(Errno::ENOSYS),
    }
}

/// Traced calls in progress (for `<unfinished ...>` lines).
static OPEN_CALLS: spin::Mutex<strace::open::OpenCalls> =
    spin::Mutex::new(strace::open::OpenCalls::new());

/// Under `--strace`, shows the call thread `tid` is in as `<unfinished ...>` before it
/// waits (once per call), so that a call that never returns still shows.
pub fn trace_blocking(tid: u32) {
    if !STRACE.load(Ordering::Relaxed) {
        return;
    }
    let line = OPEN_CALLS.lock().announce(tid);
    if let Some(line) = line {
        crate::ktrace!("{}", line);
    }
}

/// Prints thread `tid`'s trace line, after the `<unfinished ...>` lines of the calls other
/// threads are still in.
fn trace_line(tid: u32, line: String) {
    let others = OPEN_CALLS.lock().announce_others(tid);
    for other in others {
        crate::ktrace!("{}", other);
    }
    crate::ktrace!("{}", line);
}

/// Runs the system call described by `frame` (rax = number, rdi..r9 = arguments) and
/// stores the result in `frame.rax`.
pub fn dispatch(frame: &mut TrapFrame) {
    let nr = frame.rax;
    let args = [
        frame.rdi, frame.rsi, frame.rdx, frame.r10, frame.r8, frame.r9,
    ];
    let Some(task) = task::sched::current() else {
        frame.rax = Errno::ENOSYS.as_return();
        return;
    };
    let entry = table::lookup(nr);
    let shape = entry.as_ref().map(table::Entry::shape);
    let never_returns = shape.is_some_and(|s| s.ret == strace::Ret::Never);
    let counting = STATS.load(Ordering::Relaxed);
    let tid = task.tid;
    let mut ctx = Ctx { task, frame };
    let call = STRACE
        .load(Ordering::Relaxed)
        .then(|| strace::Call::begin(&ctx, tid, nr, shape, &args));
    if let Some((name, more)) = call
        .as_ref()
        .filter(|_| !never_returns)
        .and_then(strace::Call::open_info)
    {
        let prefix = String::from(call.as_ref().map_or("", strace::Call::prefix));
        OPEN_CALLS.lock().open(tid, name, prefix, more);
    }
    if never_returns {
        if let Some(call) = &call {
            trace_line(tid, call.unfinished_line());
        }
        if counting {
            strace::stats::record(nr, false, 0);
        }
    }
    let started = if counting {
        crate::time::monotonic_ns()
    } else {
        0
    };
    let result = match &entry {
        Some(e) => (e.handler)(&mut ctx, args),
        None => Err(Errno::ENOSYS),
    };
    // `exit` and `exit_group` were shown and counted before they ran; they end the
    // thread at the boundary below.
    if counting && !never_returns {
        let elapsed = crate::time::monotonic_ns().saturating_sub(started);
        strace::stats::record(nr, result.is_err(), elapsed);
    }
    if let Some(call) = call.filter(|_| !never_returns) {
        let line = call.finish(&ctx, &result);
        let line = OPEN_CALLS.lock().close(tid, line);
        trace_line(tid, line);
    }
    let Ctx { task, frame } = ctx;
    frame.rax = match result {
        Ok(value) => value,
        // Interrupted by a signal: EINTR unless its handler has SA_RESTART, or no
        // handler runs (see `signal::deliver_pending`).
        Err(Errno::ERESTARTSYS) => {
            task.restart_syscall = Some(nr);
            Errno::EINTR.as_return()
        }
        Err(e) => e.as_return(),
    };
    // SYSRET would fault in kernel mode on a non-canonical rip; never return there.
    if frame.rip >= USER_END {
        crate::kprintln!(
            "astra: {} killed: return address {:#x} is not in user space",
            task.name(),
            frame.rip
        );
        task.process
            .begin_group_exit(128 + crate::trap::signal::SIGSEGV);
    }
    task::return_to_user(frame);
}

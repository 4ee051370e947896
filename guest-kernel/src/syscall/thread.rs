//! Threads: `clone` and `clone3` for new threads of the caller's process, `sched_yield`,
//! `getrusage` and `times`.
//!
//! A clone that makes a thread (`CLONE_THREAD`, which Linux requires to come with
//! `CLONE_SIGHAND` and `CLONE_VM`) is implemented; one that makes a new process (fork,
//! vfork, `posix_spawn`'s `CLONE_VM | CLONE_VFORK`) is `ENOSYS` until processes exist,
//! and namespaces, pidfds and cgroups are refused as unsupported.

use super::{Ctx, Errno, SysResult};
use crate::arch::cpu;
use crate::arch::fpu::FpuState;
use crate::task::sched;

/// Clone flags (`<linux/sched.h>`).
#[allow(missing_docs)]
pub mod clone_flags {
    pub const CSIGNAL: u64 = 0x0000_00ff;
    pub const CLONE_VM: u64 = 0x0000_0100;
    pub const CLONE_FS: u64 = 0x0000_0200;
    pub const CLONE_FILES: u64 = 0x0000_0400;
    pub const CLONE_SIGHAND: u64 = 0x0000_0800;
    pub const CLONE_PIDFD: u64 = 0x0000_1000;
    pub const CLONE_PTRACE: u64 = 0x0000_2000;
    pub const CLONE_VFORK: u64 = 0x0000_4000;
    pub const CLONE_PARENT: u64 = 0x0000_8000;
    pub const CLONE_THREAD: u64 = 0x0001_0000;
    pub const CLONE_NEWNS: u64 = 0x0002_0000;
    pub const CLONE_SYSVSEM: u64 = 0x0004_0000;
    pub const CLONE_SETTLS: u64 = 0x0008_0000;
    pub const CLONE_PARENT_SETTID: u64 = 0x0010_0000;
    pub const CLONE_CHILD_CLEARTID: u64 = 0x0020_0000;
    pub const CLONE_DETACHED: u64 = 0x0040_0000;
    pub const CLONE_UNTRACED: u64 = 0x0080_0000;
    pub const CLONE_CHILD_SETTID: u64 = 0x0100_0000;
    pub const CLONE_NEWCGROUP: u64 = 0x0200_0000;
    pub const CLONE_NEWUTS: u64 = 0x0400_0000;
    pub const CLONE_NEWIPC: u64 = 0x0800_0000;
    pub const CLONE_NEWUSER: u64 = 0x1000_0000;
    pub const CLONE_NEWPID: u64 = 0x2000_0000;
    pub const CLONE_NEWNET: u64 = 0x4000_0000;
    pub const CLONE_IO: u64 = 0x8000_0000;
    /// clone3 only.
    pub const CLONE_CLEAR_SIGHAND: u64 = 0x1_0000_0000;
    /// clone3 only.
    pub const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;
    /// Every namespace flag.
    pub const NAMESPACES: u64 = CLONE_NEWNS
        | CLONE_NEWCGROUP
        | CLONE_NEWUTS
        | CLONE_NEWIPC
        | CLONE_NEWUSER
        | CLONE_NEWPID
        | CLONE_NEWNET;
}

use clone_flags::*;

/// What a clone asks for, decoded from either system call.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CloneArgs {
    /// `CLONE_*` flags (without the exit signal).
    pub flags: u64,
    /// Signal to the parent when the child exits (legacy clone's low byte).
    pub exit_signal: u64,
    /// The child's stack pointer (0: the caller's).
    pub stack: u64,
    /// Where `CLONE_PARENT_SETTID` stores the child's tid.
    pub parent_tid: u64,
    /// Where `CLONE_CHILD_SETTID` stores it / `CLONE_CHILD_CLEARTID` clears it.
    pub child_tid: u64,
    /// The child's FS base with `CLONE_SETTLS`.
    pub tls: u64,
}

/// What a valid clone makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloneKind {
    /// A thread of the caller's process.
    Thread,
    /// A new process (fork-like): left to the processes work, `ENOSYS` for now.
    Process,
}

/// Checks flag combinations as Linux's `copy_process` does.
pub fn check_clone(args: &CloneArgs) -> Result<CloneKind, Errno> {
    let f = args.flags;
    if f & (CLONE_NEWNS | CLONE_FS) == CLONE_NEWNS | CLONE_FS
        || f & (CLONE_NEWUSER | CLONE_FS) == CLONE_NEWUSER | CLONE_FS
    {
        return Err(Errno::EINVAL);
    }
    if f & CLONE_THREAD != 0 && f & CLONE_SIGHAND == 0 {
        return Err(Errno::EINVAL);
    }
    if f & CLONE_SIGHAND != 0 && f & CLONE_VM == 0 {
        return Err(Errno::EINVAL);
    }
    if f & CLONE_CLEAR_SIGHAND != 0 && f & CLONE_SIGHAND != 0 {
        return Err(Errno::EINVAL);
    }
    if f & CLONE_PIDFD != 0 && f & CLONE_DETACHED != 0 {
        return Err(Errno::EINVAL);
    }
    // Namespaces, cgroups and pidfds: astra has none of them.
    if f & (NAMESPACES | CLONE_INTO_CGROUP | CLONE_PIDFD) != 0 {
        return Err(Errno::EINVAL);
    }
    if f & CLONE_THREAD != 0 && f & CLONE_VFORK == 0 {
        Ok(CloneKind::Thread)
    } else {
        Ok(CloneKind::Process)
    }
}

/// clone(flags, stack, parent_tid, child_tid, tls) — x86-64 argument order.
pub fn clone(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    let args = CloneArgs {
        flags: a[0] & !CSIGNAL,
        exit_signal: a[0] & CSIGNAL,
        stack: a[1],
        parent_tid: a[2],
        child_tid: a[3],
        tls: a[4],
    };
    do_clone(ctx, &args)
}

/// `struct clone_args` as of Linux 5.7 (`CLONE_ARGS_SIZE_VER2`).
const CLONE_ARGS_SIZE: usize = 88;
/// The first version's size (`CLONE_ARGS_SIZE_VER0`).
const CLONE_ARGS_SIZE_VER0: usize = 64;

/// Decodes a `struct clone_args` of `bytes` (`size` as the caller gave it).
pub fn decode_clone3(bytes: &[u8]) -> Result<CloneArgs, Errno> {
    let word = |i: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&bytes[i * 8..i * 8 + 8]);
        u64::from_ne_bytes(w)
    };
    let (flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls) = (
        word(0),
        word(1),
        word(2),
        word(3),
        word(4),
        word(5),
        word(6),
        word(7),
    );
    let _ = pidfd;
    if bytes.len() >= 80 && (word(8) != 0 || word(9) != 0) {
        // set_tid: choosing pids needs privileges in a pid namespace astra lacks.
        return Err(Errno::EINVAL);
    }
    if exit_signal & !CSIGNAL != 0 || exit_signal > 64 {
        return Err(Errno::EINVAL);
    }
    if (stack == 0) != (stack_size == 0) {
        return Err(Errno::EINVAL);
    }
    Ok(CloneArgs {
        flags,
        exit_signal,
        stack: stack.wrapping_add(stack_size),
        parent_tid,
        child_tid,
        tls,
    })
}

/// clone3(uargs, size)
pub fn clone3(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    let size = a[1] as usize;
    if size < CLONE_ARGS_SIZE_VER0 {
        return Err(Errno::EINVAL);
    }
    if size > crate::mm::PAGE_SIZE as usize {
        return Err(Errno::E2BIG);
    }
    let bytes = ctx.read_vec(a[0], size)?;
    // A larger struct from a newer user space is fine if what astra does not know is 0.
    if bytes.len() > CLONE_ARGS_SIZE && bytes[CLONE_ARGS_SIZE..].iter().any(|&b| b != 0) {
        return Err(Errno::E2BIG);
    }
    let mut known = [0u8; CLONE_ARGS_SIZE];
    let n = bytes.len().min(CLONE_ARGS_SIZE);
    known[..n].copy_from_slice(&bytes[..n]);
    let args = decode_clone3(&known)?;
    if args.flags & CLONE_THREAD != 0 && args.exit_signal != 0 {
        return Err(Errno::EINVAL);
    }
    do_clone(ctx, &args)
}

fn do_clone(ctx: &mut Ctx<'_>, args: &CloneArgs) -> SysResult {
    if check_clone(args)? == CloneKind::Process {
        return super::process::fork(ctx, args);
    }
    if args.flags & CLONE_SETTLS != 0 && !cpu::is_canonical(args.tls) {
        return Err(Errno::EPERM);
    }
    let limit = ctx
        .task
        .process
        .limits
        .lock()
        .get(super::RLIMIT_NPROC as u64)?
        .cur;
    if sched::task_count() as u64 >= limit {
        return Err(Errno::EAGAIN);
    }
    let mut frame = *ctx.frame;
    frame.rax = 0;
    // The child enters user mode through the trap return path (iretq restores every
    // register); the entry code's marks on the parent's frame do not apply to it.
    frame.vector = 0;
    if args.stack != 0 {
        frame.rsp = args.stack;
    }
    let fpu = FpuState::capture().ok_or(Errno::EAGAIN)?;
    let share_files = args.flags & CLONE_FILES != 0;
    let share_fs = args.flags & CLONE_FS != 0;
    let mut child = ctx.task.new_thread(&frame, &fpu, share_files, share_fs)?;
    if args.flags & CLONE_SETTLS != 0 {
        child.thread.fs_base = args.tls;
    }
    let tid = child.tid;
    if args.flags & CLONE_CHILD_CLEARTID != 0 {
        child.thread.clear_child_tid = args.child_tid;
    }
    // Both ids are written before the child can run, as Linux does.
    let mut written = Ok(());
    if args.flags & CLONE_PARENT_SETTID != 0 {
        written = ctx.write_obj(args.parent_tid, &tid);
    }
    if written.is_ok() && args.flags & CLONE_CHILD_SETTID != 0 {
        written = ctx.write_obj(args.child_tid, &tid);
    }
    if let Err(e) = written {
        crate::task::abandon_thread(child);
        return Err(e);
    }
    match sched::spawn(child) {
        Ok(tid) => Ok(tid as u64),
        Err((_, child)) => {
            crate::task::abandon_thread(child);
            Err(Errno::EAGAIN)
        }
    }
}

/// sched_yield(): the caller goes to the back of the run queue.
pub fn sched_yield(_: &mut Ctx<'_>, _: [u64; 6]) -> SysResult {
    sched::schedule();
    Ok(0)
}

/// `struct rusage` (144 bytes): two timevals then 14 longs.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub(super) struct Rusage {
    utime: [i64; 2],
    stime: [i64; 2],
    rest: [i64; 14],
}

// SAFETY: plain integers, no padding.
unsafe impl crate::mm::uaccess::Pod for Rusage {}

/// Index of `ru_minflt` among the longs after the two timevals.
const RU_MINFLT: usize = 4;

/// A `struct rusage` with `ns` of CPU time (all counted as user time) and `faults`
/// minor page faults.
pub(super) fn rusage(ns: u64, faults: u64) -> Rusage {
    let mut usage = Rusage {
        utime: timeval(ns),
        ..Default::default()
    };
    usage.rest[RU_MINFLT] = faults as i64;
    usage
}

const RUSAGE_SELF: i32 = 0;
const RUSAGE_CHILDREN: i32 = -1;
const RUSAGE_THREAD: i32 = 1;

fn timeval(ns: u64) -> [i64; 2] {
    [
        (ns / 1_000_000_000) as i64,
        ((ns % 1_000_000_000) / 1000) as i64,
    ]
}

/// getrusage(who, usage): CPU time and page faults (`ru_minflt`: every fault is resolved
/// without I/O) of the process, the thread or the reaped children; astra does not tell
/// user from system time, so all of it counts as user time.
pub fn getrusage(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    let cpu = ctx.task.cpu_times();
    let process = &ctx.task.process;
    let (ns, faults) = match a[0] as i32 {
        RUSAGE_SELF => (cpu.process_ns, process.min_flt()),
        RUSAGE_THREAD => (cpu.thread_ns, ctx.task.min_flt),
        RUSAGE_CHILDREN => (process.children_cpu_ns(), process.children_min_flt()),
        _ => return Err(Errno::EINVAL),
    };
    let mut usage = Rusage {
        utime: timeval(ns),
        ..Default::default()
    };
    usage.rest[RU_MINFLT] = faults as i64;
    ctx.write_obj(a[1], &usage)?;
    Ok(0)
}

/// times(buf): process CPU time in clock ticks (`USER_HZ` = 100); the result is the
/// monotonic time in ticks.
pub fn times(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    const NS_PER_CLOCK_TICK: u64 = 10_000_000;
    let cpu = ctx.task.cpu_times();
    if a[0] != 0 {
        let tms = [(cpu.process_ns / NS_PER_CLOCK_TICK) as i64, 0, 0, 0];
        ctx.write_obj(a[0], &tms)?;
    }
    Ok(crate::time::monotonic_ns() / NS_PER_CLOCK_TICK)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MUSL_PTHREAD: u64 = CLONE_VM
        | CLONE_FS
        | CLONE_FILES
        | CLONE_SIGHAND
        | CLONE_THREAD
        | CLONE_SYSVSEM
        | CLONE_SETTLS
        | CLONE_PARENT_SETTID
        | CLONE_CHILD_CLEARTID
        | CLONE_DETACHED;

    fn with(flags: u64) -> CloneArgs {
        CloneArgs {
            flags,
            ..Default::default()
        }
    }

    #[test]
    fn musls_pthread_create_makes_a_thread() {
        assert_eq!(check_clone(&with(MUSL_PTHREAD)), Ok(CloneKind::Thread));
    }

    #[test]
    fn linux_refuses_inconsistent_sharing() {
        assert_eq!(
            check_clone(&with(CLONE_THREAD | CLONE_VM)),
            Err(Errno::EINVAL)
        );
        assert_eq!(check_clone(&with(CLONE_SIGHAND)), Err(Errno::EINVAL));
        assert_eq!(
            check_clone(&with(CLONE_NEWNS | CLONE_FS)),
            Err(Errno::EINVAL)
        );
    }

    #[test]
    fn fork_and_vfork_are_processes() {
        assert_eq!(check_clone(&with(0)), Ok(CloneKind::Process));
        assert_eq!(
            check_clone(&with(CLONE_VM | CLONE_VFORK)),
            Ok(CloneKind::Process)
        );
    }

    #[test]
    fn clone3_args_decode_and_stack_is_its_top() {
        let mut b = [0u8; CLONE_ARGS_SIZE];
        let put =
            |b: &mut [u8], i: usize, v: u64| b[i * 8..i * 8 + 8].copy_from_slice(&v.to_ne_bytes());
        put(&mut b, 0, MUSL_PTHREAD);
        put(&mut b, 5, 0x1000);
        put(&mut b, 6, 0x2000);
        put(&mut b, 7, 0xabc0);
        let args = decode_clone3(&b).unwrap();
        assert_eq!(args.stack, 0x3000);
        assert_eq!(args.tls, 0xabc0);
        put(&mut b, 6, 0);
        assert_eq!(
            decode_clone3(&b),
            Err(Errno::EINVAL),
            "stack without a size"
        );
        put(&mut b, 5, 0);
        put(&mut b, 4, 65);
        assert_eq!(decode_clone3(&b), Err(Errno::EINVAL), "bad exit signal");
    }
}

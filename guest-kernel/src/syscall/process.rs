//! Processes: `fork`, `vfork` and clone's process flavours, `wait4`/`waitid`, and the
//! process-group and session calls.
//!
//! A forked child gets a copy-on-write copy of the address space ([`crate::mm::Mm::fork`])
//! unless it shares it (`CLONE_VM`, as `vfork` and musl's `posix_spawn` do); the parent
//! of a `CLONE_VFORK` child sleeps until the child execs or exits.

use alloc::sync::Arc;
use spin::Mutex;

use super::thread::{clone_flags::*, CloneArgs};
use super::{Ctx, Errno, SysResult, RLIMIT_NPROC};
use crate::arch::fpu::FpuState;
use crate::task::process::{self, WaitTarget};
use crate::task::{sched, ForkSpec};

/// `wait4`/`waitid` option bits.
pub mod wait_flags {
    /// Return at once if no child has ended.
    pub const WNOHANG: u32 = 1;
    /// Also report stopped children (`WSTOPPED` for waitid).
    pub const WUNTRACED: u32 = 2;
    /// waitid: report ended children.
    pub const WEXITED: u32 = 4;
    /// Also report continued children.
    pub const WCONTINUED: u32 = 8;
    /// waitid: leave the child waitable.
    pub const WNOWAIT: u32 = 0x0100_0000;
    /// Wait for children of other threads of the group too (always, here).
    pub const WNOTHREAD: u32 = 0x2000_0000;
    /// Any kind of child.
    pub const WALL: u32 = 0x4000_0000;
    /// Only non-SIGCHLD children (accepted; every child qualifies).
    pub const WCLONE: u32 = 0x8000_0000;
}
use wait_flags::*;

/// Makes a new process as `clone` without `CLONE_THREAD` asks (fork, vfork, posix_spawn).
pub fn fork(ctx: &mut Ctx<'_>, args: &CloneArgs) -> SysResult {
    let limit = ctx.task.process.limits.lock().get(RLIMIT_NPROC as u64)?.cur;
    if process::count() as u64 >= limit || sched::task_count() >= sched::max_tasks() {
        return Err(Errno::EAGAIN);
    }
    let f = args.flags;
    let share_vm = f & CLONE_VM != 0;
    let mm = if share_vm {
        ctx.task.mm.clone()
    } else {
        let copy = ctx.task.mm.lock().fork()?;
        Arc::new(Mutex::new(copy))
    };
    let mut frame = *ctx.frame;
    frame.rax = 0;
    // The child enters through the trap return path (iretq restores every register).
    frame.vector = 0;
    if args.stack != 0 {
        frame.rsp = args.stack;
    }
    let fpu = FpuState::capture().ok_or(Errno::ENOMEM)?;
    let ppid = if f & CLONE_PARENT != 0 {
        ctx.task.process.ppid()
    } else {
        ctx.task.pid()
    };
    let spec = ForkSpec {
        mm,
        share_vm,
        share_files: f & CLONE_FILES != 0,
        share_fs: f & CLONE_FS != 0,
        share_sighand: f & CLONE_SIGHAND != 0,
        ppid,
        exit_signal: args.exit_signal as u8,
        frame: &frame,
        fpu: &fpu,
    };
    let mut child = ctx.task.fork(spec)?;
    if f & CLONE_SETTLS != 0 {
        child.thread.fs_base = args.tls;
    }
    let pid = child.tid;
    if f & CLONE_CHILD_CLEARTID != 0 {
        child.thread.clear_child_tid = args.child_tid;
    }
    // The ids are written before the child can run: the parent's copy in the parent's
    // memory, the child's in the child's (the same memory with CLONE_VM).
    let mut written = Ok(());
    if f & CLONE_PARENT_SETTID != 0 {
        written = ctx.write_obj(args.parent_tid, &pid);
    }
    if written.is_ok() && f & CLONE_CHILD_SETTID != 0 {
        written = crate::mm::uaccess::write_user(
            &mut child.mm.lock(),
            args.child_tid,
            &pid.to_ne_bytes(),
        );
    }
    written?;
    let vfork = f & CLONE_VFORK != 0;
    if vfork {
        child.process.start_vfork();
    }
    let process = child.process.clone();
    process::register(&process)?;
    crate::fs::procinfo::record_fork(ctx.task.pid(), pid);
    if let Err((_, child)) = sched::spawn(child) {
        process::unregister(pid);
        drop(child);
        return Err(Errno::EAGAIN);
    }
    if vfork {
        let me = ctx.task.process.clone();
        process.wait_vfork(|| me.exiting().is_some());
    }
    Ok(pid as u64)
}

/// fork(): clone(SIGCHLD).
pub fn sys_fork(ctx: &mut Ctx<'_>, _: [u64; 6]) -> SysResult {
    let args = CloneArgs {
        exit_signal: u64::from(crate::signal::sig::SIGCHLD),
        ..Default::default()
    };
    fork(ctx, &args)
}

/// vfork(): clone(CLONE_VM | CLONE_VFORK | SIGCHLD).
pub fn sys_vfork(ctx: &mut Ctx<'_>, _: [u64; 6]) -> SysResult {
    let args = CloneArgs {
        flags: CLONE_VM | CLONE_VFORK,
        exit_signal: u64::from(crate::signal::sig::SIGCHLD),
        ..Default::default()
    };
    fork(ctx, &args)
}

use super::thread::Rusage;

/// Waits for a child selected by `target` to end (reaping it unless `WNOWAIT`), or,
/// with `WUNTRACED`/`WCONTINUED`, to stop or continue: `Ok(Some((pid, status)))`,
/// `Ok(None)` with `WNOHANG` when nothing happened, ECHILD when no child is selected,
/// EINTR (or a restart) when a signal arrives first.
/// The resource usage `wait4`/`waitid` report for child `pid`: its CPU time and page
/// faults, its reaped children's included (a live, stopped child's threads count up to
/// their last switch).
fn child_usage(pid: u32) -> Rusage {
    let Some(child) = process::get(pid) else {
        return Rusage::default();
    };
    let live: u64 = sched::threads_of(pid)
        .into_iter()
        .filter_map(|tid| sched::with_other_task(tid, |t| t.cpu_ns()))
        .sum();
    super::thread::rusage(
        child.dead_cpu_ns() + child.children_cpu_ns() + live,
        child.min_flt() + child.children_min_flt(),
    )
}

/// Waits for a child event per `options`; `usage` gets the child's resource usage.
fn wait_child(
    ctx: &mut Ctx<'_>,
    target: WaitTarget,
    options: u32,
    usage: &mut Rusage,
) -> Result<Option<(u32, u32)>, Errno> {
    let me = ctx.task.process.clone();
    let keep = options & WNOWAIT != 0;
    loop {
        let stops = options & WUNTRACED != 0;
        let continues = options & WCONTINUED != 0;
        let ended = options & WEXITED != 0;
        match process::find_event(&me, target, stops, continues, keep)? {
            Some((pid, process::ChildEvent::JobControl(status))) => {
                *usage = child_usage(pid);
                return Ok(Some((pid, status)));
            }
            Some((pid, process::ChildEvent::Ended)) if ended => {
                *usage = child_usage(pid);
                let status = if keep {
                    process::get(pid).and_then(|c| c.wait_status())
                } else {
                    process::reap(&me, pid)
                };
                if let Some(status) = status {
                    return Ok(Some((pid, status)));
                }
                continue;
            }
            _ => {}
        }
        if options & WNOHANG != 0 {
            return Ok(None);
        }
        if me.child_events.wait(None) == sched::WaitResult::Interrupted {
            return Err(Errno::ERESTARTSYS);
        }
    }
}

/// wait4(pid, wstatus, options, rusage)
pub fn wait4(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    let options = a[2] as u32;
    if options & !(WNOHANG | WUNTRACED | WCONTINUED | WNOTHREAD | WALL | WCLONE) != 0 {
        return Err(Errno::EINVAL);
    }
    let pid = a[0] as i32;
    if pid == i32::MIN {
        return Err(Errno::ESRCH);
    }
    let target = WaitTarget::from_wait4(pid, ctx.task.process.pgid());
    let mut usage = Rusage::default();
    let found = wait_child(ctx, target, (options & !WNOWAIT) | WEXITED, &mut usage)?;
    let Some((pid, status)) = found else {
        return Ok(0);
    };
    if a[1] != 0 {
        ctx.write_obj(a[1], &(status as i32))?;
    }
    if a[3] != 0 {
        ctx.write_obj(a[3], &usage)?;
    }
    Ok(u64::from(pid))
}

/// `waitid` id types.
const P_ALL: u64 = 0;
const P_PID: u64 = 1;
const P_PGID: u64 = 2;

/// `siginfo_t` as waitid fills it (128 bytes): signo, errno, code, then pid, uid,
/// status.
#[repr(C)]
#[derive(Clone, Copy)]
struct WaitInfo {
    signo: i32,
    errno: i32,
    code: i32,
    pad: i32,
    pid: i32,
    uid: u32,
    status: i32,
    rest: [i32; 25],
}

// SAFETY: plain integers, no padding.
unsafe impl crate::mm::uaccess::Pod for WaitInfo {}

const _: () = assert!(core::mem::size_of::<WaitInfo>() == 128);

/// waitid(idtype, id, infop, options, rusage)
pub fn waitid(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    let options = a[3] as u32;
    let known = WNOHANG | WUNTRACED | WEXITED | WCONTINUED | WNOWAIT | WNOTHREAD | WALL | WCLONE;
    if options & !known != 0 || options & (WEXITED | WUNTRACED | WCONTINUED) == 0 {
        return Err(Errno::EINVAL);
    }
    let id = a[1] as u32;
    let target = match a[0] {
        P_ALL => WaitTarget::Any,
        P_PID if id as i32 > 0 => WaitTarget::Pid(id),
        P_PGID if id == 0 => WaitTarget::Group(ctx.task.process.pgid()),
        P_PGID if id as i32 > 0 => WaitTarget::Group(id),
        _ => return Err(Errno::EINVAL),
    };
    let mut usage = Rusage::default();
    let found = wait_child(ctx, target, options, &mut usage)?;
    if a[2] != 0 {
        let info = match found {
            None => WaitInfo {
                signo: 0,
                errno: 0,
                code: 0,
                pad: 0,
                pid: 0,
                uid: 0,
                status: 0,
                rest: [0; 25],
            },
            Some((pid, status)) => {
                use crate::signal::si_code::{CLD_CONTINUED, CLD_STOPPED};
                let (code, value) = if status == process::WAIT_CONTINUED {
                    (CLD_CONTINUED, i32::from(crate::signal::sig::SIGCONT))
                } else if status & 0xff == 0x7f {
                    (CLD_STOPPED, (status >> 8) as i32)
                } else if status & 0x7f != 0 {
                    (crate::signal::si_code::CLD_KILLED, (status & 0x7f) as i32)
                } else {
                    (crate::signal::si_code::CLD_EXITED, (status >> 8) as i32)
                };
                WaitInfo {
                    signo: i32::from(crate::signal::sig::SIGCHLD),
                    errno: 0,
                    code,
                    pad: 0,
                    pid: pid as i32,
                    uid: 0,
                    status: value,
                    rest: [0; 25],
                }
            }
        };
        ctx.write_obj(a[2], &info)?;
    }
    if a[4] != 0 {
        ctx.write_obj(a[4], &usage)?;
    }
    Ok(0)
}

/// setpgid(pid, pgid)
pub fn setpgid(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    let (pid, pgid) = (a[0] as i32, a[1] as i32);
    if pid < 0 || pgid < 0 {
        return Err(Errno::EINVAL);
    }
    process::set_pgid(&ctx.task.process, pid as u32, pgid as u32)?;
    Ok(0)
}

fn process_arg(ctx: &Ctx<'_>, pid: u64) -> Result<Arc<process::Process>, Errno> {
    match pid as i32 {
        0 => Ok(ctx.task.process.clone()),
        p if p > 0 => process::get(p as u32).ok_or(Errno::ESRCH),
        _ => Err(Errno::ESRCH),
    }
}

/// getpgid(pid)
pub fn getpgid(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    Ok(u64::from(process_arg(ctx, a[0])?.pgid()))
}

/// getpgrp()
pub fn getpgrp(ctx: &mut Ctx<'_>, _: [u64; 6]) -> SysResult {
    Ok(u64::from(ctx.task.process.pgid()))
}

/// getsid(pid)
pub fn getsid(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    Ok(u64::from(process_arg(ctx, a[0])?.sid()))
}

/// setsid()
pub fn setsid(ctx: &mut Ctx<'_>, _: [u64; 6]) -> SysResult {
    process::set_sid(&ctx.task.process).map(u64::from)
}

//! Signal system calls: actions, masks, the alternate stack, `rt_sigreturn`, and
//! `kill`/`tkill`/`tgkill` to any process or process group.
//!
//! A signal generated here is queued; the dispatcher delivers what is deliverable when
//! the call returns (`signal::deliver_pending`), as Linux does on the way to user mode.

use super::{Ctx, Errno, SysResult};
use crate::signal::{
    self, apply_mask, si_code, SigAction, SigInfo, SigSet, SignalState, StackT, SIGSET_SIZE,
};
use crate::task::{process, sched};

/// The uid signals are sent with (astra runs everything as root, see `proc.rs`).
const SENDER_UID: u32 = 0;

fn check_sigset_size(size: u64) -> Result<(), Errno> {
    if size == SIGSET_SIZE {
        Ok(())
    } else {
        Err(Errno::EINVAL)
    }
}

/// rt_sigaction(sig, act, oldact, sigsetsize)
pub fn rt_sigaction(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    check_sigset_size(a[3])?;
    let new = match a[1] {
        0 => None,
        va => Some(ctx.read_obj::<SigAction>(va)?),
    };
    if !signal::is_valid(a[0]) {
        return Err(Errno::EINVAL);
    }
    let signo = a[0] as u8;
    let old = match new {
        Some(_) if !SignalState::can_catch(signo) => return Err(Errno::EINVAL),
        Some(action) => ctx.task.signals.set_action(signo, action),
        None => ctx.task.signals.action(signo),
    };
    if a[2] != 0 {
        ctx.write_obj(a[2], &old)?;
    }
    Ok(0)
}

/// rt_sigprocmask(how, set, oldset, sigsetsize)
pub fn rt_sigprocmask(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    check_sigset_size(a[3])?;
    let old = ctx.task.signals.blocked();
    if a[1] != 0 {
        let set = SigSet(ctx.read_u64(a[1])?);
        let new = apply_mask(old, a[0], set).ok_or(Errno::EINVAL)?;
        ctx.task.signals.set_blocked(new);
    }
    if a[2] != 0 {
        ctx.write_obj(a[2], &old.0)?;
    }
    Ok(0)
}

/// rt_sigpending(set, sigsetsize): the pending signals that are blocked (the others are
/// delivered on the way back to user mode).
pub fn rt_sigpending(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    if a[1] > SIGSET_SIZE {
        return Err(Errno::EINVAL);
    }
    let signals = &ctx.task.signals;
    let set = signals.pending().intersect(signals.blocked());
    let bytes = set.0.to_le_bytes();
    ctx.write_user(a[0], &bytes[..a[1] as usize])?;
    Ok(0)
}

/// sigaltstack(ss, old_ss)
pub fn sigaltstack(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    let sp = ctx.frame.rsp;
    let new = match a[0] {
        0 => None,
        va => Some(ctx.read_obj::<StackT>(va)?),
    };
    let old = ctx.task.signals.altstack.report(sp);
    if let Some(new) = new {
        ctx.task.signals.altstack.set(&new, sp)?;
    }
    if a[1] != 0 {
        ctx.write_obj(a[1], &old)?;
    }
    Ok(0)
}

/// rt_sigreturn(): returns to the context the signal frame on the stack saved.
pub fn rt_sigreturn(ctx: &mut Ctx<'_>, _: [u64; 6]) -> SysResult {
    Ok(signal::sigreturn(ctx.task, ctx.frame))
}

/// The process of thread `tid` (any process's: astra runs everything as root), which
/// must be `tgid`'s if given; ESRCH if there is no such thread.
fn thread_group(ctx: &Ctx<'_>, tgid: Option<u32>, tid: u32) -> Result<u32, Errno> {
    let pid = if tid == ctx.task.tid {
        Some(ctx.task.pid())
    } else {
        sched::with_other_task(tid, |t| t.pid())
    };
    match pid {
        Some(pid) if tgid.is_none_or(|g| g == pid) => Ok(pid),
        _ => Err(Errno::ESRCH),
    }
}

/// Generates `info` for thread `tid` of process `pid` (the caller itself or another
/// thread, which is woken if it waits), as Linux's `do_send_specific`: `prepare_signal`
/// first (SIGCONT continues the whole process, stop signals and SIGCONT discard each
/// other), then the thread's own queue, within the process's `RLIMIT_SIGPENDING`
/// (`EAGAIN` past it for a real-time signal: see `signal::queue`); ESRCH if the thread
/// is gone.
fn send_to_thread(ctx: &mut Ctx<'_>, pid: u32, tid: u32, info: SigInfo) -> Result<(), Errno> {
    let target = process::get(pid).ok_or(Errno::ESRCH)?;
    if target.is_zombie() {
        return Ok(());
    }
    crate::task::prepare_signal(&target, info.signo, Some(&mut *ctx.task));
    let limit = target.sigpending_limit();
    if tid == ctx.task.tid {
        return ctx.task.signals.send(info, limit).map(|_| ());
    }
    sched::with_other_task(tid, |t| {
        t.signals.send(info, limit)?;
        sched::signal_wake(t);
        Ok(())
    })
    .unwrap_or(Err(Errno::ESRCH))
}

/// Sends `sig` (0: only check) from the caller to process `pid` (any process: astra runs
/// everything as root); ESRCH if there is no such process. A zombie takes the signal
/// without effect, as on Linux.
fn send_to_pid(ctx: &mut Ctx<'_>, pid: u32, sig: u64, code: i32) -> SysResult {
    if !signal::is_valid(sig) && sig != 0 {
        return Err(Errno::EINVAL);
    }
    let target = process::get(pid).ok_or(Errno::ESRCH)?;
    if sig == 0 || target.is_zombie() {
        return Ok(0);
    }
    let signo = sig as u8;
    crate::task::prepare_signal(&target, signo, Some(&mut *ctx.task));
    let info = SigInfo::from_process(signo, code, ctx.task.pid(), SENDER_UID);
    crate::task::signal_process(&target, info, Some(&mut *ctx.task))?;
    Ok(0)
}

/// kill(pid, sig): `pid` > 0 names a process, 0 the caller's process group, -1 every
/// process but init and the caller, < -1 the process group -pid.
pub fn kill(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    let pid = a[0] as i32;
    let sig = a[1];
    if !signal::is_valid(sig) && sig != 0 {
        return Err(Errno::EINVAL);
    }
    if pid > 0 {
        return send_to_pid(ctx, pid as u32, sig, si_code::SI_USER);
    }
    if pid == i32::MIN {
        return Err(Errno::ESRCH);
    }
    let me = ctx.task.pid();
    let targets: alloc::vec::Vec<u32> = match pid {
        0 => {
            let pgid = ctx.task.process.pgid();
            process::all()
                .iter()
                .filter(|p| p.pgid() == pgid)
                .map(|p| p.pid)
                .collect()
        }
        -1 => process::all()
            .iter()
            .filter(|p| p.ppid() != 0 && p.pid != me)
            .map(|p| p.pid)
            .collect(),
        p => {
            let pgid = p.unsigned_abs();
            process::all()
                .iter()
                .filter(|p| p.pgid() == pgid)
                .map(|p| p.pid)
                .collect()
        }
    };
    if targets.is_empty() {
        return Err(Errno::ESRCH);
    }
    // The caller last: a fatal signal to itself must not stop it from signalling the rest.
    let (mine, others): (alloc::vec::Vec<u32>, alloc::vec::Vec<u32>) =
        targets.into_iter().partition(|&p| p == me);
    for p in others.into_iter().chain(mine) {
        let _ = send_to_pid(ctx, p, sig, si_code::SI_USER);
    }
    Ok(0)
}

/// Sends `sig` (0: only check) to thread `tid` (of process `tgid` if given).
fn thread_kill(ctx: &mut Ctx<'_>, tgid: Option<u32>, tid: u32, sig: u64) -> SysResult {
    if !signal::is_valid(sig) && sig != 0 {
        return Err(Errno::EINVAL);
    }
    let pid = thread_group(ctx, tgid, tid)?;
    if sig == 0 {
        return Ok(0);
    }
    let info = SigInfo::from_process(sig as u8, si_code::SI_TKILL, ctx.task.pid(), SENDER_UID);
    send_to_thread(ctx, pid, tid, info)?;
    Ok(0)
}

/// Queues `info` from user memory at `va` for thread `tid` of process `tgid`
/// (`rt_tgsigqueueinfo`): as `rt_sigqueueinfo`, thread-directed.
pub fn tgsigqueueinfo(ctx: &mut Ctx<'_>, tgid: u32, tid: u32, sig: u64, va: u64) -> SysResult {
    let info = super::signal_wait::queued_info(ctx, sig, va)?;
    let pid = thread_group(ctx, Some(tgid), tid)?;
    match info {
        Some(info) => send_to_thread(ctx, pid, tid, info).map(|_| 0),
        None => Ok(0),
    }
}

/// tkill(tid, sig)
pub fn tkill(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    let tid = a[0] as i32;
    if tid <= 0 {
        return Err(Errno::EINVAL);
    }
    thread_kill(ctx, None, tid as u32, a[1])
}

/// tgkill(tgid, tid, sig)
pub fn tgkill(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    let (tgid, tid) = (a[0] as i32, a[1] as i32);
    if tgid <= 0 || tid <= 0 {
        return Err(Errno::EINVAL);
    }
    thread_kill(ctx, Some(tgid as u32), tid as u32, a[2])
}

/// rt_tgsigqueueinfo(tgid, tid, sig, info)
pub fn rt_tgsigqueueinfo(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    let (tgid, tid) = (a[0] as i32, a[1] as i32);
    if tgid <= 0 || tid <= 0 {
        return Err(Errno::EINVAL);
    }
    tgsigqueueinfo(ctx, tgid as u32, tid as u32, a[2], a[3])
}

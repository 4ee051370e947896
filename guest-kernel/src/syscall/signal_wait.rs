//! Waiting for signals and timing them: `rt_sigsuspend`, `pause`, `rt_sigtimedwait`,
//! `rt_sigqueueinfo`, and the real-time interval timer (`alarm`, `setitimer`,
//! `getitimer`) that sends SIGALRM.

use super::{Ctx, Errno, SysResult};
use crate::signal::frame::RawSigInfo;
use crate::signal::{self, si_code, SigInfo, SigSet, SIGSET_SIZE};
use crate::task::process;
use crate::task::sched::{self, WaitResult};
use crate::time::{self, Timespec};

fn check_sigset_size(size: u64) -> Result<(), Errno> {
    if size == SIGSET_SIZE {
        Ok(())
    } else {
        Err(Errno::EINVAL)
    }
}

/// Sleeps until a signal is deliverable; always EINTR.
fn wait_for_signal() -> SysResult {
    loop {
        if sched::block(None) == WaitResult::Interrupted {
            return Err(Errno::EINTR);
        }
    }
}

/// rt_sigsuspend(mask, sigsetsize): waits with `mask` blocked until a signal is
/// delivered; the old mask comes back after its handler.
pub fn rt_sigsuspend(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    check_sigset_size(a[1])?;
    let mask: u64 = ctx.read_obj(a[0])?;
    let old = ctx.task.signals.blocked();
    ctx.task.signals.set_blocked(SigSet(mask));
    ctx.task.saved_sigmask = Some(old);
    wait_for_signal()
}

/// pause()
pub fn pause(_: &mut Ctx<'_>, _: [u64; 6]) -> SysResult {
    wait_for_signal()
}

/// rt_sigtimedwait(set, info, timeout, sigsetsize): takes a pending signal of `set`,
/// waiting for one up to `timeout` (EAGAIN when it passes; EINTR if another signal
/// arrives to be delivered).
pub fn rt_sigtimedwait(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    check_sigset_size(a[3])?;
    let set = SigSet(ctx.read_obj::<u64>(a[0])?).blockable();
    let deadline = match a[2] {
        0 => None,
        va => {
            let ns = ctx.read_obj::<Timespec>(va)?.to_ns().ok_or(Errno::EINVAL)?;
            Some(time::monotonic_ns().saturating_add(ns))
        }
    };
    // While it waits the thread does not block `set` (Linux's `real_blocked`), so that a
    // signal sent to the process picks it to wake.
    let blocked = ctx.task.signals.blocked();
    ctx.task.signals.set_blocked(blocked.minus(set));
    let taken = loop {
        if let Some(info) = ctx.task.signals.take_pending_in(set) {
            break Ok(info);
        }
        match sched::block(deadline) {
            WaitResult::TimedOut => break Err(Errno::EAGAIN),
            WaitResult::Interrupted => {
                if ctx.task.signals.pending().intersect(set).is_empty() {
                    break Err(Errno::EINTR);
                }
            }
            WaitResult::Woken => {}
        }
    };
    ctx.task.signals.set_blocked(blocked);
    let info = taken?;
    if a[1] != 0 {
        ctx.write_obj(a[1], &RawSigInfo::from_info(&info))?;
    }
    Ok(u64::from(info.signo))
}

/// The signal `rt_sigqueueinfo`/`rt_tgsigqueueinfo` send: `sig` with the caller's
/// `siginfo` at `va` (its `si_code` must be negative, as Linux requires of others than
/// the kernel; its `si_pid`, `si_uid` and `si_value` pass as given, as on Linux); `None`
/// for signal 0 (only a check).
pub fn queued_info(ctx: &mut Ctx<'_>, sig: u64, va: u64) -> Result<Option<SigInfo>, Errno> {
    let raw: RawSigInfo = ctx.read_obj(va)?;
    if raw.code >= 0 || raw.code == si_code::SI_TKILL {
        return Err(Errno::EPERM);
    }
    if !signal::is_valid(sig) && sig != 0 {
        return Err(Errno::EINVAL);
    }
    if sig == 0 {
        return Ok(None);
    }
    Ok(Some(SigInfo {
        value: raw.fields[1],
        ..SigInfo::from_process(
            sig as u8,
            raw.code,
            raw.fields[0] as u32,
            (raw.fields[0] >> 32) as u32,
        )
    }))
}

/// rt_sigqueueinfo(pid, sig, info): sends `sig` with the caller's `siginfo` to process
/// `pid`; `EAGAIN` when the user's `RLIMIT_SIGPENDING` is reached (real-time signals).
pub fn rt_sigqueueinfo(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    let info = queued_info(ctx, a[1], a[2])?;
    let pid = a[0] as i32;
    if pid <= 0 {
        return Err(Errno::ESRCH);
    }
    let target = process::get(pid as u32).ok_or(Errno::ESRCH)?;
    let Some(info) = info else {
        return Ok(0);
    };
    if target.is_zombie() {
        return Ok(0);
    }
    crate::task::prepare_signal(&target, info.signo, Some(&mut *ctx.task));
    crate::task::signal_process(&target, info, Some(&mut *ctx.task))?;
    Ok(0)
}

/// `struct itimerval`: interval then value, each a timeval.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct Itimerval {
    interval: [i64; 2],
    value: [i64; 2],
}

// SAFETY: plain integers, no padding.
unsafe impl crate::mm::uaccess::Pod for Itimerval {}

const ITIMER_REAL: u64 = 0;
const ITIMER_VIRTUAL: u64 = 1;
const ITIMER_PROF: u64 = 2;

fn timeval(ns: u64) -> [i64; 2] {
    [
        (ns / 1_000_000_000) as i64,
        ((ns % 1_000_000_000) / 1000) as i64,
    ]
}

fn timeval_ns(tv: [i64; 2]) -> Option<u64> {
    if tv[0] < 0 || !(0..1_000_000).contains(&tv[1]) {
        return None;
    }
    (tv[0] as u64)
        .checked_mul(1_000_000_000)?
        .checked_add(tv[1] as u64 * 1000)
}

/// The `itimerval` of a (deadline, interval) setting at `now`.
fn current(setting: (u64, u64), now: u64) -> Itimerval {
    let (deadline, interval) = setting;
    let left = if deadline == 0 {
        0
    } else {
        // A timer due now still reads as a microsecond, as Linux's does.
        deadline.saturating_sub(now).max(1000)
    };
    Itimerval {
        interval: timeval(interval),
        value: timeval(left),
    }
}

fn check_which(which: u64) -> Result<(), Errno> {
    match which {
        ITIMER_REAL => Ok(()),
        // CPU-time timers: not implemented.
        ITIMER_VIRTUAL | ITIMER_PROF => Err(Errno::ENOSYS),
        _ => Err(Errno::EINVAL),
    }
}

/// getitimer(which, value)
pub fn getitimer(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    check_which(a[0])?;
    let now = time::monotonic_ns();
    let value = current(ctx.task.process.itimer(), now);
    ctx.write_obj(a[1], &value)?;
    Ok(0)
}

/// setitimer(which, new, old)
pub fn setitimer(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    check_which(a[0])?;
    let new = match a[1] {
        0 => Itimerval::default(),
        va => ctx.read_obj::<Itimerval>(va)?,
    };
    let value = timeval_ns(new.value).ok_or(Errno::EINVAL)?;
    let interval = timeval_ns(new.interval).ok_or(Errno::EINVAL)?;
    let now = time::monotonic_ns();
    let deadline = if value == 0 {
        0
    } else {
        now.saturating_add(value)
    };
    let old = ctx.task.process.set_itimer(deadline, interval);
    if a[2] != 0 {
        ctx.write_obj(a[2], &current(old, now))?;
    }
    Ok(0)
}

/// alarm(seconds): SIGALRM in `seconds` (0 cancels); the seconds left of the old alarm,
/// rounded to the nearest (at least 1 if one was armed).
pub fn alarm(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    let secs = a[0] as u32;
    let now = time::monotonic_ns();
    let deadline = if secs == 0 {
        0
    } else {
        now.saturating_add(u64::from(secs) * 1_000_000_000)
    };
    let (old, _) = ctx.task.process.set_itimer(deadline, 0);
    if old == 0 {
        return Ok(0);
    }
    let left = old.saturating_sub(now);
    Ok(((left + 500_000_000) / 1_000_000_000).max(1))
}

//! Clock and sleep system calls. The clocks themselves are in `crate::time`.

use super::{Ctx, Errno, SysResult};
use crate::task::sched::WaitResult;
use crate::time::{self, Clock, Timespec, Timeval};

/// `clock_nanosleep` flag: the request is an absolute time.
const TIMER_ABSTIME: u64 = 1;

fn clock(ctx: &Ctx<'_>, id: u64) -> Result<Clock, Errno> {
    Clock::from_id(id as i32, ctx.task.pid()).ok_or(Errno::EINVAL)
}

/// clock_gettime(clockid, tp)
pub fn clock_gettime(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    let clock = clock(ctx, a[0])?;
    let now = time::read_clock(clock, ctx.task.cpu_times());
    ctx.write_obj(a[1], &Timespec::from_ns(now))?;
    Ok(0)
}

/// clock_getres(clockid, res): `res` may be NULL.
pub fn clock_getres(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    let clock = clock(ctx, a[0])?;
    if a[1] != 0 {
        let res = clock.resolution_ns(time::fine_resolution_ns());
        ctx.write_obj(a[1], &Timespec::from_ns(res))?;
    }
    Ok(0)
}

/// gettimeofday(tv, tz): both may be NULL; the time zone is UTC.
pub fn gettimeofday(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    if a[0] != 0 {
        ctx.write_obj(a[0], &Timeval::from_ns(time::realtime_ns()))?;
    }
    if a[1] != 0 {
        // struct timezone { int tz_minuteswest; int tz_dsttime; }
        ctx.write_obj(a[1], &[0i32; 2])?;
    }
    Ok(0)
}

/// time(tloc): seconds since the epoch, also stored at `tloc` unless NULL.
pub fn time(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    let secs = time::realtime_ns() / time::NS_PER_SEC;
    if a[0] != 0 {
        ctx.write_obj(a[0], &(secs as i64))?;
    }
    Ok(secs)
}

/// Sleeps until monotonic time `deadline_ns` (the task blocks on the timer list). EINTR
/// if a signal becomes deliverable first; then, for relative sleeps with `rem` set, the
/// time left is stored there.
fn sleep(ctx: &mut Ctx<'_>, deadline_ns: u64, rem: u64) -> SysResult {
    loop {
        match crate::task::sched::block(Some(deadline_ns)) {
            WaitResult::TimedOut => return Ok(0),
            WaitResult::Woken => continue,
            WaitResult::Interrupted => break,
        }
    }
    if rem != 0 {
        let now = time::monotonic_ns();
        ctx.write_obj(rem, &Timespec::from_ns(deadline_ns.saturating_sub(now)))?;
    }
    Err(Errno::EINTR)
}

fn read_request(ctx: &Ctx<'_>, va: u64) -> Result<u64, Errno> {
    ctx.read_obj::<Timespec>(va)?.to_ns().ok_or(Errno::EINVAL)
}

/// nanosleep(req, rem)
pub fn nanosleep(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    let ns = read_request(ctx, a[0])?;
    let deadline = time::monotonic_ns().saturating_add(ns);
    sleep(ctx, deadline, a[1])
}

/// clock_nanosleep(clockid, flags, req, rem): against wall or monotonic time, relative
/// or `TIMER_ABSTIME`. As on Linux, `CLOCK_MONOTONIC_RAW` and the coarse clocks cannot be
/// slept on (EOPNOTSUPP) and the thread's CPU clock is EINVAL. On the process's CPU clock
/// a sleep could only end when the deadline has passed already (nothing else runs while
/// the only thread sleeps; Linux would wait forever), so a later deadline is EOPNOTSUPP.
pub fn clock_nanosleep(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    let clock = clock(ctx, a[0])?;
    if !time::can_sleep_on(a[0] as i32) {
        return Err(Errno::EOPNOTSUPP);
    }
    let ns = read_request(ctx, a[2])?;
    let absolute = a[1] & TIMER_ABSTIME != 0;
    let now = time::read_clock(clock, ctx.task.cpu_times());
    let remaining = if absolute { ns.saturating_sub(now) } else { ns };
    match clock {
        Clock::ThreadCpu => return Err(Errno::EINVAL),
        Clock::ProcessCpu if remaining == 0 => return Ok(0),
        Clock::ProcessCpu => return Err(Errno::EOPNOTSUPP),
        _ => {}
    }
    let deadline = time::monotonic_ns().saturating_add(remaining);
    sleep(ctx, deadline, if absolute { 0 } else { a[3] })
}

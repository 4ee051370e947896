//! `poll` and `ppoll`: files and devices are always ready; the console is readable when
//! input is waiting (or has ended). Waiting halts the CPU until the next interrupt (the
//! 1 kHz timer) and checks again; it never spins.

use super::{Ctx, Errno, SysResult};
use crate::fs::fd::NOFILE;
use crate::fs::file::poll_events::{POLLERR, POLLHUP, POLLNVAL};
use crate::signal::SigSet;
use crate::task::sched::WaitResult;
use crate::task::wait::IO;
use crate::time;

/// `struct pollfd` is 8 bytes: `int fd; short events; short revents;`.
const POLLFD_SIZE: usize = 8;

/// The `revents` of one `pollfd`.
fn revents(ctx: &Ctx<'_>, fd: i32, events: u16) -> u16 {
    if fd < 0 {
        return 0;
    }
    match ctx.task.files.lock().get(fd as u64) {
        Ok(file) => file.poll() & (events | POLLERR | POLLHUP | POLLNVAL),
        Err(_) => POLLNVAL,
    }
}

/// Polls the `nfds` entries at `fds` until one is ready or `timeout_ns` (None: forever)
/// passes; returns how many are ready.
fn do_poll(ctx: &mut Ctx<'_>, fds: u64, nfds: u64, timeout_ns: Option<u64>) -> SysResult {
    if nfds > NOFILE {
        return Err(Errno::EINVAL);
    }
    let mut table = ctx.read_vec(fds, nfds as usize * POLLFD_SIZE)?;
    let start = time::monotonic_ns();
    loop {
        let mut ready = 0u64;
        for entry in table.chunks_exact_mut(POLLFD_SIZE) {
            let fd = i32::from_le_bytes([entry[0], entry[1], entry[2], entry[3]]);
            let events = u16::from_le_bytes([entry[4], entry[5]]);
            let rev = revents(ctx, fd, events);
            entry[6..8].copy_from_slice(&rev.to_le_bytes());
            ready += u64::from(rev != 0);
        }
        let expired = timeout_ns.is_some_and(|t| time::monotonic_ns() - start >= t);
        if ready > 0 || expired {
            ctx.write_user(fds, &table)?;
            return Ok(ready);
        }
        // Pipes and the console wake the I/O queue when their state changes; a periodic
        // look (every 10 ms) covers the host streams, which have no interrupt.
        let recheck = time::monotonic_ns() + 10_000_000;
        let deadline = timeout_ns.map_or(recheck, |t| recheck.min(start.saturating_add(t)));
        if IO.wait(Some(deadline)) == WaitResult::Interrupted {
            return Err(Errno::EINTR);
        }
    }
}

/// poll(fds, nfds, timeout_ms): a negative timeout waits forever.
pub fn poll(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    let timeout_ms = a[2] as i32;
    let timeout = (timeout_ms >= 0).then(|| timeout_ms as u64 * 1_000_000);
    do_poll(ctx, a[0], a[1], timeout)
}

/// Validates a `struct timespec` relative timeout.
fn timespec_ns(ts: [i64; 2]) -> Result<u64, Errno> {
    let [sec, nsec] = ts;
    if sec < 0 || !(0..1_000_000_000).contains(&nsec) {
        return Err(Errno::EINVAL);
    }
    Ok((sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(nsec as u64))
}

/// ppoll(fds, nfds, tmo_p, sigmask, sigsetsize)
///
/// The signal mask (`sigsetsize` must be 8) replaces the thread's while it waits; if a
/// signal interrupts the wait, its handler runs under it too and `sigreturn` restores the
/// caller's mask, as on Linux. The remaining time is written back, as Linux does.
pub fn ppoll(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    let (fds, nfds, tmo, sigmask, sigsetsize) = (a[0], a[1], a[2], a[3], a[4]);
    let timeout = if tmo == 0 {
        None
    } else {
        Some(timespec_ns(ctx.read_obj::<[i64; 2]>(tmo)?)?)
    };
    let mut saved = None;
    if sigmask != 0 {
        if sigsetsize != 8 {
            return Err(Errno::EINVAL);
        }
        let mask: u64 = ctx.read_obj(sigmask)?;
        saved = Some(ctx.task.signals.blocked());
        ctx.task.signals.set_blocked(SigSet(mask));
    }
    let start = time::monotonic_ns();
    let result = do_poll(ctx, fds, nfds, timeout);
    if let Some(old) = saved {
        if result == Err(Errno::EINTR) {
            ctx.task.saved_sigmask = Some(old);
        } else {
            ctx.task.signals.set_blocked(old);
        }
    }
    if let Some(t) = timeout {
        let left = t.saturating_sub(time::monotonic_ns() - start);
        let ts = [(left / 1_000_000_000) as i64, (left % 1_000_000_000) as i64];
        // Linux ignores a failure to update the timeout.
        let _ = ctx.write_obj(tmo, &ts);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    /// Parses a `pollfd` array (host-testable view of the layout).
    fn parse(table: &[u8]) -> Vec<(i32, u16, u16)> {
        table
            .chunks_exact(POLLFD_SIZE)
            .map(|e| {
                (
                    i32::from_le_bytes([e[0], e[1], e[2], e[3]]),
                    u16::from_le_bytes([e[4], e[5]]),
                    u16::from_le_bytes([e[6], e[7]]),
                )
            })
            .collect()
    }

    #[test]
    fn timespec_validation() {
        assert_eq!(timespec_ns([1, 5]), Ok(1_000_000_005));
        assert_eq!(timespec_ns([0, 0]), Ok(0));
        assert_eq!(timespec_ns([-1, 0]), Err(Errno::EINVAL));
        assert_eq!(timespec_ns([0, 1_000_000_000]), Err(Errno::EINVAL));
        assert_eq!(timespec_ns([i64::MAX, 0]), Ok(u64::MAX));
    }

    #[test]
    fn pollfd_layout() {
        let raw = [
            0xff, 0xff, 0xff, 0xff, 1, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0x20, 0,
        ];
        assert_eq!(parse(&raw), [(-1, 1, 0), (3, 4, 0x20)]);
    }
}

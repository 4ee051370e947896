//! Clocks and sleeping, shaped like `std::time`: [`Instant`] (the monotonic clock),
//! [`SystemTime`] (wall-clock time since [`UNIX_EPOCH`]) and [`sleep`].
//!
//! A clock the kernel cannot read is a bug in the kernel, not something a program can
//! recover from; like std, reading one panics rather than returning an error.

use core::time::Duration;

use crate::errno::Errno;
use crate::syscall::{self, clock};

/// Converts a `struct timespec` to a duration; `None` if it is negative or malformed.
pub fn timespec_to_duration((secs, nanos): (i64, i64)) -> Option<Duration> {
    if secs < 0 || !(0..1_000_000_000).contains(&nanos) {
        return None;
    }
    Some(Duration::new(secs as u64, nanos as u32))
}

/// Converts a duration to a `struct timespec`, saturating at `i64::MAX` seconds.
pub fn duration_to_timespec(duration: Duration) -> (i64, i64) {
    let secs = i64::try_from(duration.as_secs()).unwrap_or(i64::MAX);
    (secs, i64::from(duration.subsec_nanos()))
}

fn read_clock(id: u32) -> Duration {
    match syscall::clock_gettime(id) {
        Ok(ts) => match timespec_to_duration(ts) {
            Some(d) => d,
            None => panic!("clock {id} returned a malformed timespec {ts:?}"),
        },
        Err(e) => panic!("clock_gettime({id}) failed: {e}"),
    }
}

/// A reading of the monotonic clock: never goes back, not related to the wall clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instant(Duration);

impl Instant {
    /// Now.
    pub fn now() -> Instant {
        Instant(read_clock(clock::MONOTONIC))
    }

    /// Time from `earlier` to `self`, zero if `earlier` is later.
    pub fn duration_since(&self, earlier: Instant) -> Duration {
        self.0.saturating_sub(earlier.0)
    }

    /// Time since `self`.
    pub fn elapsed(&self) -> Duration {
        Instant::now().duration_since(*self)
    }

    /// `self + duration`, or `None` if that cannot be represented.
    pub fn checked_add(&self, duration: Duration) -> Option<Instant> {
        self.0.checked_add(duration).map(Instant)
    }

    /// The reading as time since the clock's start (boot, on astra and Linux).
    pub fn since_boot(&self) -> Duration {
        self.0
    }
}

/// A wall-clock time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SystemTime(Duration);

/// 1970-01-01T00:00:00Z.
pub const UNIX_EPOCH: SystemTime = SystemTime(Duration::ZERO);

impl SystemTime {
    /// Now, by the wall clock.
    pub fn now() -> SystemTime {
        SystemTime(read_clock(clock::REALTIME))
    }

    /// Time from `earlier` to `self`; `Err` with the difference if `earlier` is later.
    pub fn duration_since(&self, earlier: SystemTime) -> Result<Duration, Duration> {
        self.0
            .checked_sub(earlier.0)
            .ok_or_else(|| earlier.0 - self.0)
    }
}

/// Sleeps for at least `duration`, resuming after interruptions.
pub fn sleep(duration: Duration) {
    if let Err(e) = sleep_with(duration, syscall::nanosleep) {
        panic!("nanosleep failed: {e}");
    }
}

/// [`sleep`] over a given `nanosleep`, for tests.
fn sleep_with(
    duration: Duration,
    mut nanosleep: impl FnMut((i64, i64), &mut (i64, i64)) -> Result<(), Errno>,
) -> Result<(), Errno> {
    let mut request = duration_to_timespec(duration);
    loop {
        let mut remaining = (0, 0);
        match nanosleep(request, &mut remaining) {
            Ok(()) => return Ok(()),
            Err(Errno::EINTR) => request = remaining,
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timespec_conversions() {
        assert_eq!(timespec_to_duration((3, 500)), Some(Duration::new(3, 500)));
        assert_eq!(timespec_to_duration((-1, 0)), None);
        assert_eq!(timespec_to_duration((0, 1_000_000_000)), None);
        assert_eq!(timespec_to_duration((0, -1)), None);
        assert_eq!(
            duration_to_timespec(Duration::from_millis(1500)),
            (1, 500_000_000)
        );
        assert_eq!(duration_to_timespec(Duration::MAX).0, i64::MAX);
    }

    #[test]
    fn instants_subtract_without_going_negative() {
        let a = Instant(Duration::from_secs(5));
        let b = Instant(Duration::from_secs(7));
        assert_eq!(b.duration_since(a), Duration::from_secs(2));
        assert_eq!(a.duration_since(b), Duration::ZERO);
        assert_eq!(a.checked_add(Duration::from_secs(2)), Some(b));
        assert_eq!(
            Instant(Duration::MAX).checked_add(Duration::from_secs(1)),
            None
        );
        let t = SystemTime(Duration::from_secs(100));
        assert_eq!(t.duration_since(UNIX_EPOCH), Ok(Duration::from_secs(100)));
        assert_eq!(UNIX_EPOCH.duration_since(t), Err(Duration::from_secs(100)));
    }

    #[test]
    fn sleep_resumes_after_eintr_with_what_is_left() {
        let mut calls = Vec::new();
        let result = sleep_with(Duration::from_millis(10), |req, rem| {
            calls.push(req);
            if calls.len() == 1 {
                *rem = (0, 4_000_000);
                Err(Errno::EINTR)
            } else {
                Ok(())
            }
        });
        assert_eq!(result, Ok(()));
        assert_eq!(calls, [(0, 10_000_000), (0, 4_000_000)]);
        assert_eq!(
            sleep_with(Duration::from_secs(1), |_, _| Err(Errno::ENOSYS)),
            Err(Errno::ENOSYS)
        );
    }
}

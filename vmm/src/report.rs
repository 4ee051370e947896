//! The VMM's own messages on stderr, written so that a closed or broken stderr never ends
//! `astra-vmm` with another status than the one it reports.
//!
//! `eprintln!` panics when the write fails (`EPIPE` from `astra-vmm ... 2>&1 | head -1`,
//! `ENOSPC`), and that panic, with no stderr left to print it on, aborts the process
//! (SIGABRT, 134) instead of exiting with the guest's status or the documented code. The
//! message is lost either way; the exit code is not.

use std::io::{self, Write};

/// Writes `bytes` to stderr, ignoring any error (the message has nowhere else to go).
pub fn write_stderr(bytes: &[u8]) {
    let mut stderr = io::stderr().lock();
    let _ = stderr.write_all(bytes);
    let _ = stderr.flush();
}

/// Like `eprintln!`, but a failed write is ignored instead of panicking (see the module
/// documentation).
#[macro_export]
macro_rules! report {
    ($($arg:tt)*) => {
        $crate::report::write_stderr(format!("{}\n", format_args!($($arg)*)).as_bytes())
    };
}

/// How many times a guest-caused warning is logged in full before it is rate-limited.
pub const WARN_FULL: u64 = 10;

/// A counter that rate-limits one guest-caused warning: a guest hammering a doorbell with
/// bad requests must not flood stderr with one line per VM exit (185k lines in 18 s were
/// seen). See [`guest_warn!`](crate::guest_warn).
#[derive(Debug, Default)]
pub struct WarnLimit(std::sync::atomic::AtomicU64);

impl WarnLimit {
    /// A limiter that has admitted nothing yet.
    pub const fn new() -> Self {
        WarnLimit(std::sync::atomic::AtomicU64::new(0))
    }

    /// Counts one occurrence; returns the suffix to log it with, or `None` to drop it.
    pub fn admit(&self) -> Option<String> {
        let n = self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        admit_nth(n)
    }
}

/// Whether the `n`th occurrence (from 1) of a warning is logged, and with what suffix: the
/// first [`WARN_FULL`] as they are, the last of those saying that more will be counted,
/// then only every power of two with the count so far (about 20 lines for a million).
pub fn admit_nth(n: u64) -> Option<String> {
    if n < WARN_FULL {
        Some(String::new())
    } else if n == WARN_FULL {
        Some(" (repeated: from now on only every power of two is logged)".into())
    } else if n.is_power_of_two() {
        Some(format!(" ({n} times so far)"))
    } else {
        None
    }
}

/// `log::warn!` for warnings a guest can cause at will, rate-limited per call site (see
/// [`WarnLimit`]).
#[macro_export]
macro_rules! guest_warn {
    ($($arg:tt)*) => {{
        static LIMIT: $crate::report::WarnLimit = $crate::report::WarnLimit::new();
        if let Some(suffix) = LIMIT.admit() {
            log::warn!("{}{}", format_args!($($arg)*), suffix);
        }
    }};
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_warnings_thin_out_to_powers_of_two() {
        let logged: Vec<u64> = (1..=1_000_000)
            .filter(|&n| admit_nth(n).is_some())
            .collect();
        assert_eq!(&logged[..10], &(1..=10).collect::<Vec<_>>()[..]);
        assert_eq!(logged.len(), 10 + 16, "{logged:?}");
        assert!(admit_nth(10).unwrap().contains("repeated"));
        assert_eq!(admit_nth(1024).unwrap(), " (1024 times so far)");
        let limit = WarnLimit::new();
        let admitted = (0..100).filter(|_| limit.admit().is_some()).count();
        assert_eq!(admitted, 10 + 3); // 16, 32, 64
    }

    #[test]
    fn reporting_to_a_closed_stderr_does_not_panic() {
        // The test harness captures stderr; what matters is that the call returns whatever
        // the descriptor does. Closing fd 2 in a unit test would disturb other tests, so the
        // broken-pipe case itself is covered end to end in tests/tests/cli.rs.
        report!("astra-vmm: {} {}", "report", 1);
        super::write_stderr(b"");
    }
}

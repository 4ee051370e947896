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

#[cfg(test)]
mod tests {
    #[test]
    fn reporting_to_a_closed_stderr_does_not_panic() {
        // The test harness captures stderr; what matters is that the call returns whatever
        // the descriptor does. Closing fd 2 in a unit test would disturb other tests, so the
        // broken-pipe case itself is covered end to end in tests/tests/cli.rs.
        report!("astra-vmm: {} {}", "report", 1);
        super::write_stderr(b"");
    }
}

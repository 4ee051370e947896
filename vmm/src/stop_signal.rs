//! SIGINT and SIGTERM end a run the way `--timeout` does: the VMM stops the vCPU, prints
//! `--stats` and writes `--stats-json`, then exits with 128 + the signal's number, as a
//! shell reports a program the signal killed.
//!
//! The handler only records the signal; the thread that waits for the vCPU polls
//! [`pending`] ([`POLL_INTERVAL`]). Other threads block both signals ([`block_in_thread`]), so
//! the vCPU's `KVM_RUN` is not interrupted by them.

use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

/// How often the waiting thread looks for a signal.
pub const POLL_INTERVAL: Duration = Duration::from_millis(20);
/// The signals that stop a run.
pub const SIGNALS: [libc::c_int; 2] = [libc::SIGINT, libc::SIGTERM];

static RECEIVED: AtomicI32 = AtomicI32::new(0);

extern "C" fn record(signal: libc::c_int) {
    // Only an atomic store: async-signal-safe.
    RECEIVED.store(signal, Ordering::SeqCst);
}

/// Installs the handler for [`SIGNALS`] (process-wide).
pub fn install() -> std::io::Result<()> {
    for signal in SIGNALS {
        // SAFETY: a zeroed sigaction is valid; the handler only does an atomic store,
        // which is async-signal-safe; the pointers are to locals that outlive the call.
        let rc = unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = record as extern "C" fn(libc::c_int) as libc::sighandler_t;
            action.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(signal, &action, std::ptr::null_mut())
        };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Blocks [`SIGNALS`] in the calling thread (so that they reach the waiting thread).
pub fn block_in_thread() {
    // SAFETY: the set is initialised by sigemptyset before use; pthread_sigmask only
    // changes this thread's mask.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for signal in SIGNALS {
            libc::sigaddset(&mut set, signal);
        }
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}

/// The stop signal received so far, if any.
pub fn pending() -> Option<i32> {
    match RECEIVED.load(Ordering::SeqCst) {
        0 => None,
        signal => Some(signal),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signal_is_recorded_not_fatal() {
        install().unwrap();
        assert_eq!(pending(), None);
        // SAFETY: raising a signal whose handler was just installed.
        unsafe { libc::raise(libc::SIGTERM) };
        assert_eq!(pending(), Some(libc::SIGTERM));
        RECEIVED.store(0, Ordering::SeqCst);
    }
}

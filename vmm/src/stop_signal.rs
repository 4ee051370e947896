//! Signals to the VMM: SIGINT, SIGQUIT and SIGTSTP (the host terminal's Ctrl-C, Ctrl-\\
//! and Ctrl-Z) go to the guest's terminal (`devices::tty_signal`; a Ctrl-Z the guest hands
//! back suspends astra-vmm, [`suspend_self`]); SIGTERM, and a SIGINT/SIGQUIT the guest
//! does not take, end a run the way `--timeout` does: the VMM stops the vCPU, prints
//! `--stats` and writes `--stats-json`, then exits with 128 + the signal's number, as a
//! shell reports a program the signal killed.
//!
//! The handler only counts the signal; the thread that waits for the vCPU polls a
//! [`Receiver`] ([`POLL_INTERVAL`]). Other threads block these signals
//! ([`block_in_thread`]), so the vCPU's `KVM_RUN` is not interrupted by them.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// How often the waiting thread looks for a signal.
pub const POLL_INTERVAL: Duration = Duration::from_millis(20);
/// The signals the VMM handles.
pub const SIGNALS: [libc::c_int; 4] = [libc::SIGINT, libc::SIGQUIT, libc::SIGTERM, libc::SIGTSTP];

/// How many of each of [`SIGNALS`] arrived.
static COUNTS: [AtomicU32; SIGNALS.len()] = [const { AtomicU32::new(0) }; SIGNALS.len()];

extern "C" fn record(signal: libc::c_int) {
    // Only atomic operations: async-signal-safe.
    if let Some(i) = SIGNALS.iter().position(|&s| s == signal) {
        COUNTS[i].fetch_add(1, Ordering::SeqCst);
    }
}

/// True for the signals a terminal's keys send, which the guest's terminal gets.
pub fn is_terminal_signal(signal: libc::c_int) -> bool {
    signal == libc::SIGINT || signal == libc::SIGQUIT || signal == libc::SIGTSTP
}

/// Stops this process as SIGTSTP's default action does (the host shell's Ctrl-Z), until
/// SIGCONT; then the handler is back. Returns how long it was stopped.
pub fn suspend_self() -> std::time::Duration {
    let start = std::time::Instant::now();
    // SAFETY: SIG_DFL for SIGTSTP, then raising it in this thread (which does not block
    // it) stops the whole process; the handler is reinstalled once it continues.
    unsafe {
        libc::signal(libc::SIGTSTP, libc::SIG_DFL);
        libc::raise(libc::SIGTSTP);
    }
    if let Err(e) = install() {
        log::warn!("cannot reinstall the signal handlers: {e}");
    }
    start.elapsed()
}

/// Installs the handler for [`SIGNALS`] (process-wide).
pub fn install() -> std::io::Result<()> {
    for signal in SIGNALS {
        // SAFETY: a zeroed sigaction is valid; the handler only does atomic operations,
        // which are async-signal-safe; the pointers are to locals that outlive the call.
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

/// Hands out each signal that arrived after it was made, one at a time.
pub struct Receiver {
    seen: [u32; SIGNALS.len()],
}

impl Receiver {
    /// A receiver for signals from now on.
    pub fn new() -> Self {
        Receiver {
            seen: std::array::from_fn(|i| COUNTS[i].load(Ordering::SeqCst)),
        }
    }

    /// The next signal not handed out yet (SIGTERM first: it ends the run).
    pub fn take(&mut self) -> Option<libc::c_int> {
        let order = [2, 0, 1, 3];
        for i in order {
            let count = COUNTS[i].load(Ordering::SeqCst);
            if count != self.seen[i] {
                self.seen[i] = self.seen[i].wrapping_add(1);
                return Some(SIGNALS[i]);
            }
        }
        None
    }
}

impl Default for Receiver {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_are_counted_and_handed_out_once_each() {
        install().unwrap();
        let mut rx = Receiver::new();
        assert_eq!(rx.take(), None);
        // SAFETY: raising signals whose handler was just installed.
        unsafe {
            libc::raise(libc::SIGINT);
            libc::raise(libc::SIGINT);
            libc::raise(libc::SIGTERM);
        }
        assert_eq!(rx.take(), Some(libc::SIGTERM));
        assert_eq!(rx.take(), Some(libc::SIGINT));
        assert_eq!(rx.take(), Some(libc::SIGINT));
        assert_eq!(rx.take(), None);
        assert!(is_terminal_signal(libc::SIGQUIT) && !is_terminal_signal(libc::SIGTERM));
    }
}

//! The handle other threads hold to control the vCPU thread (after Firecracker's
//! `VcpuHandle`): ask it to pause — it leaves `KVM_RUN` at once, wherever the guest is, even
//! halted — and see whether it runs. Whoever handles the pause on the vCPU thread (the gdb
//! stub) decides how it resumes: continue or single-step.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::thread;
use std::time::Duration;

use super::vcpu::kick_signal;

/// How often a pause request re-kicks a vCPU that has not taken it yet (a kick can land
/// just before `KVM_RUN`).
const KICK_INTERVAL: Duration = Duration::from_millis(10);

/// Controls one vCPU thread.
#[derive(Debug, Default)]
pub struct VcpuHandle {
    /// The vCPU thread's `pthread_t` as an integer (a pointer on musl).
    thread: Mutex<Option<usize>>,
    /// A pause was asked for and not taken yet.
    pause: AtomicBool,
    /// The guest is running (not paused).
    running: AtomicBool,
}

impl VcpuHandle {
    /// Binds the handle to the calling thread, the vCPU thread, which runs the guest.
    pub fn bind_current_thread(&self) {
        // SAFETY: pthread_self has no preconditions.
        let me = unsafe { libc::pthread_self() };
        #[allow(clippy::unnecessary_cast)] // an integer on glibc, a pointer on musl
        let me = me as usize;
        *self.thread.lock().unwrap_or_else(PoisonError::into_inner) = Some(me);
        self.set_running(true);
    }

    /// Records whether the guest runs (the vCPU thread says so around its pauses).
    pub fn set_running(&self, running: bool) {
        self.running.store(running, Ordering::Release);
    }

    /// True while the guest runs.
    pub fn is_running(&self) -> bool {
        self.running.load(Ordering::Acquire)
    }

    /// Asks the vCPU to pause and kicks it out of `KVM_RUN` until it takes the request
    /// (or is not running any more).
    pub fn request_pause(&self) {
        self.pause.store(true, Ordering::Release);
        while self.pause_requested() && self.is_running() {
            self.kick();
            thread::sleep(KICK_INTERVAL);
        }
    }

    /// True if a pause was asked for and not taken yet.
    pub fn pause_requested(&self) -> bool {
        self.pause.load(Ordering::Acquire)
    }

    /// Takes the pause request (the vCPU thread, when it pauses).
    pub fn clear_pause(&self) {
        self.pause.store(false, Ordering::Release);
    }

    fn kick(&self) {
        let thread = *self.thread.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(thread) = thread {
            // SAFETY: the vCPU thread outlives the VMM's use of it (it is joined or the
            // process exits); the kick signal has a handler that does nothing.
            unsafe { libc::pthread_kill(thread as libc::pthread_t, kick_signal()) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pause_is_taken_once_and_not_waited_for_when_stopped() {
        let h = VcpuHandle::default();
        assert!(!h.is_running() && !h.pause_requested());
        // Not running: the request returns at once, pending.
        h.request_pause();
        assert!(h.pause_requested());
        h.clear_pause();
        assert!(!h.pause_requested());
        crate::vstate::vcpu::register_kick_handler().unwrap();
        h.bind_current_thread();
        assert!(h.is_running());
        h.kick();
    }
}

//! Wait queues: tasks blocked until an event, woken by whoever causes it.
//!
//! A waiter puts its tid on the queue, blocks, and takes it off when it runs again; a
//! wake-up makes every (or one) queued task runnable. Waiters always re-check their
//! condition after waking, so a spurious wake-up costs a check, never a wrong answer.

use alloc::vec::Vec;
use spin::Mutex;

use super::sched::{self, WaitResult};

/// Tasks waiting for one kind of event.
pub struct WaitQueue {
    waiters: Mutex<Vec<u32>>,
}

impl Default for WaitQueue {
    fn default() -> Self {
        Self::new()
    }
}

impl WaitQueue {
    /// An empty queue.
    pub const fn new() -> Self {
        WaitQueue {
            waiters: Mutex::new(Vec::new()),
        }
    }

    /// Blocks the current task until this queue is woken, a signal arrives, or
    /// `deadline_ns` (monotonic) passes. Outside a task it halts until the next interrupt.
    pub fn wait(&self, deadline_ns: Option<u64>) -> WaitResult {
        let Some(task) = sched::current() else {
            return sched::block(deadline_ns);
        };
        let tid = task.tid;
        {
            let mut w = self.waiters.lock();
            if w.try_reserve(1).is_err() {
                // No memory for the entry: wait a tick instead (never lose the wake-up
                // for good: the caller re-checks).
                drop(w);
                let soon = crate::time::monotonic_ns() + crate::time::TICK_NS;
                return match sched::block(Some(deadline_ns.map_or(soon, |d| d.min(soon)))) {
                    WaitResult::TimedOut if deadline_ns.is_none_or(|d| d > soon) => {
                        WaitResult::Woken
                    }
                    r => r,
                };
            }
            w.push(tid);
        }
        let result = sched::block(deadline_ns);
        self.waiters.lock().retain(|&t| t != tid);
        result
    }

    /// Wakes every waiter.
    pub fn wake_all(&self) {
        let waiters = core::mem::take(&mut *self.waiters.lock());
        for tid in waiters {
            sched::wake(tid);
        }
    }
}

/// The queue of tasks waiting for I/O readiness on several files or on the terminal:
/// `poll`/`select` and terminal reads sleep on it; every change of a pipe's or the
/// console's state wakes it (plain pipe reads and writes sleep on their pipe's own queues).
pub static IO: WaitQueue = WaitQueue::new();

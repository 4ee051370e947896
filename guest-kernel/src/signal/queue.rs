//! Pending signals with their `siginfo` (Linux's `struct sigpending`), for a thread or a
//! thread group. A standard signal (1-31) is pending at most once: a second one while
//! the first waits is dropped. Every instance of a real-time signal (32-64) is kept, in
//! the order sent, each with its own `siginfo` (`sigqueue`'s value among it).
//!
//! Each instance with a `siginfo` is counted against the user's `RLIMIT_SIGPENDING`
//! ([`QUEUED`]: processes all run as one user here). Past the limit, as Linux's
//! `__send_signal`: a standard signal, or a real-time one sent by `kill` (`SI_USER`),
//! is still made pending but without its information (the handler sees `SI_USER` from
//! pid 0); a real-time signal with any other code (`sigqueue`, `rt_sigqueueinfo`,
//! timers) fails with `EAGAIN`. Signals the kernel generates for standard reasons
//! (`si_code` >= 0) are exempt from the limit.

use alloc::collections::VecDeque;
use core::sync::atomic::{AtomicUsize, Ordering};

use super::{si_code, sig, SigInfo, SigSet, NSIG};
use crate::errno::Errno;

/// Pending instances with a `siginfo`, of every process (the one user's count).
pub static QUEUED: AtomicUsize = AtomicUsize::new(0);

/// The pending signals of a thread or a thread group.
#[derive(Debug)]
pub struct SigQueue {
    /// Which signals are pending.
    set: SigSet,
    /// The oldest pending instance of each signal.
    first: [SigInfo; NSIG as usize],
    /// Which of `first` are counted in `counter` (the rest lost their information).
    counted: SigSet,
    /// Later instances of real-time signals, oldest first (all counted).
    later: VecDeque<SigInfo>,
    counter: &'static AtomicUsize,
}

impl SigQueue {
    /// An empty queue counting its instances in `counter` ([`QUEUED`] but in tests).
    pub fn new(counter: &'static AtomicUsize) -> Self {
        SigQueue {
            set: SigSet::EMPTY,
            first: [SigInfo::default(); NSIG as usize],
            counted: SigSet::EMPTY,
            later: VecDeque::new(),
            counter,
        }
    }

    /// An empty queue counting in the same counter.
    pub fn empty_like(&self) -> Self {
        SigQueue::new(self.counter)
    }

    /// The counter its instances are counted in.
    pub fn counter(&self) -> &'static AtomicUsize {
        self.counter
    }

    /// The signals pending.
    pub fn set(&self) -> SigSet {
        self.set
    }

    /// Instances counted against the limit, all users together.
    pub fn counted_total(&self) -> usize {
        self.counter.load(Ordering::Relaxed)
    }

    /// Counts one more instance if `limit` allows (or `exempt`).
    fn charge(&self, limit: u64, exempt: bool) -> bool {
        let mut now = self.counter.load(Ordering::Relaxed);
        loop {
            if !exempt && now as u64 >= limit {
                return false;
            }
            match self.counter.compare_exchange_weak(
                now,
                now + 1,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(seen) => now = seen,
            }
        }
    }

    fn uncharge(&self, n: usize) {
        self.counter.fetch_sub(n, Ordering::Relaxed);
    }

    /// Adds `info` with the sender's limit `limit` (`RLIMIT_SIGPENDING` of the target):
    /// true if a new instance is pending, false if a standard signal already was;
    /// `EAGAIN` for a real-time signal past the limit (but from `kill`).
    pub fn push(&mut self, info: SigInfo, limit: u64) -> Result<bool, Errno> {
        let signo = info.signo;
        let realtime = signo >= sig::SIGRTMIN;
        if !realtime && self.set.contains(signo) {
            return Ok(false);
        }
        // Linux's override_rlimit: standard signals the kernel or `kill` raises.
        let exempt = !realtime && info.code >= 0;
        if !self.charge(limit, exempt) {
            if realtime && info.code != si_code::SI_USER {
                return Err(Errno::EAGAIN);
            }
            if self.set.contains(signo) {
                return Ok(false);
            }
            self.set.insert(signo);
            self.first[signo as usize - 1] = SigInfo::from_process(signo, si_code::SI_USER, 0, 0);
            return Ok(true);
        }
        if self.set.contains(signo) {
            self.later.push_back(info);
        } else {
            self.set.insert(signo);
            self.counted.insert(signo);
            self.first[signo as usize - 1] = info;
        }
        Ok(true)
    }

    /// Makes `info` the pending instance of its (standard) signal whatever was there: a
    /// fault's information is the one to report. Never refused.
    pub fn force(&mut self, info: SigInfo) {
        let signo = info.signo;
        if !self.counted.contains(signo) && self.charge(0, true) {
            self.counted.insert(signo);
        }
        self.set.insert(signo);
        self.first[signo as usize - 1] = info;
    }

    /// Removes and returns the oldest instance of `signo`, which must be pending.
    pub fn take(&mut self, signo: u8) -> SigInfo {
        let info = self.first[signo as usize - 1];
        if self.counted.contains(signo) {
            self.uncharge(1);
        }
        match self.later.iter().position(|i| i.signo == signo) {
            Some(at) => {
                // Another instance of a real-time signal moves up.
                if let Some(next) = self.later.remove(at) {
                    self.first[signo as usize - 1] = next;
                    self.counted.insert(signo);
                }
            }
            None => {
                self.set.remove(signo);
                self.counted.remove(signo);
            }
        }
        info
    }

    /// Drops every instance of the signals of `set`.
    pub fn discard(&mut self, set: SigSet) {
        let dropped = self.set.intersect(set);
        if dropped.is_empty() {
            return;
        }
        let before = self.later.len();
        self.later.retain(|i| !dropped.contains(i.signo));
        let mut n = before - self.later.len();
        n += self.counted.intersect(dropped).0.count_ones() as usize;
        self.uncharge(n);
        self.set = self.set.minus(dropped);
        self.counted = self.counted.minus(dropped);
    }

    /// Instances of `signo` pending.
    pub fn count_of(&self, signo: u8) -> usize {
        if !self.set.contains(signo) {
            return 0;
        }
        1 + self.later.iter().filter(|i| i.signo == signo).count()
    }
}

impl Drop for SigQueue {
    fn drop(&mut self) {
        self.uncharge(self.counted.0.count_ones() as usize + self.later.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counter() -> &'static AtomicUsize {
        alloc::boxed::Box::leak(alloc::boxed::Box::new(AtomicUsize::new(0)))
    }

    fn queued(signo: u8, value: u64) -> SigInfo {
        SigInfo {
            value,
            ..SigInfo::from_process(signo, si_code::SI_QUEUE, 7, 0)
        }
    }

    #[test]
    fn real_time_instances_queue_in_order_and_standard_ones_coalesce() {
        let c = counter();
        let mut q = SigQueue::new(c);
        for v in 1..=3 {
            assert_eq!(q.push(queued(sig::SIGRTMIN, v), 100), Ok(true));
        }
        assert_eq!(q.push(SigInfo::kernel(sig::SIGUSR1), 100), Ok(true));
        assert_eq!(q.push(SigInfo::kernel(sig::SIGUSR1), 100), Ok(false));
        assert_eq!(
            (q.count_of(sig::SIGRTMIN), q.count_of(sig::SIGUSR1)),
            (3, 1)
        );
        assert_eq!(c.load(Ordering::Relaxed), 4);
        let values: alloc::vec::Vec<u64> = (0..3).map(|_| q.take(sig::SIGRTMIN).value).collect();
        assert_eq!(values, [1, 2, 3]);
        assert!(!q.set().contains(sig::SIGRTMIN));
        assert_eq!(c.load(Ordering::Relaxed), 1);
        drop(q);
        assert_eq!(
            c.load(Ordering::Relaxed),
            0,
            "a dropped queue gives its count back"
        );
    }

    #[test]
    fn the_limit_refuses_queued_real_time_signals_but_not_kill_or_standard_ones() {
        let c = counter();
        let mut q = SigQueue::new(c);
        assert_eq!(q.push(queued(sig::SIGRTMIN, 1), 2), Ok(true));
        assert_eq!(q.push(queued(sig::SIGRTMIN + 1, 2), 2), Ok(true));
        assert_eq!(q.push(queued(sig::SIGRTMIN, 3), 2), Err(Errno::EAGAIN));
        // kill of a real-time signal: pending without information (already pending here:
        // nothing new).
        let kill = SigInfo::from_process(sig::SIGRTMIN + 2, si_code::SI_USER, 9, 0);
        assert_eq!(q.push(kill, 2), Ok(true));
        assert_eq!(q.take(sig::SIGRTMIN + 2).pid, 0, "its information was lost");
        // A standard signal from the kernel is exempt; sigqueue of one past the limit
        // loses its information but is pending.
        assert_eq!(q.push(SigInfo::kernel(sig::SIGCHLD), 2), Ok(true));
        assert_eq!(c.load(Ordering::Relaxed), 3);
        assert_eq!(q.push(queued(sig::SIGUSR2, 5), 2), Ok(true));
        assert_eq!(q.take(sig::SIGUSR2).value, 0);
        assert_eq!(c.load(Ordering::Relaxed), 3);
        // Taking frees room.
        q.take(sig::SIGRTMIN);
        assert_eq!(q.push(queued(sig::SIGRTMIN, 4), 3), Ok(true));
    }

    #[test]
    fn discarding_and_forcing_keep_the_count_right() {
        let c = counter();
        let mut q = SigQueue::new(c);
        for v in 0..4 {
            q.push(queued(sig::SIGRTMIN + 3, v), 100).unwrap();
        }
        q.push(SigInfo::kernel(sig::SIGCONT), 100).unwrap();
        q.discard(SigSet::of(sig::SIGRTMIN + 3));
        assert_eq!(c.load(Ordering::Relaxed), 1);
        assert_eq!(q.set(), SigSet::of(sig::SIGCONT));
        q.force(SigInfo::kernel(sig::SIGSEGV));
        q.force(SigInfo::kernel(sig::SIGSEGV));
        assert_eq!(c.load(Ordering::Relaxed), 2);
        q.take(sig::SIGSEGV);
        q.take(sig::SIGCONT);
        assert_eq!(c.load(Ordering::Relaxed), 0);
        assert!(q.set().is_empty());
    }
}

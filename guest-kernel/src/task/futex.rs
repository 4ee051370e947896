//! Futex wait queues, keyed by address space and user address.
//!
//! Every futex is private to its address space for now (no memory is shared between
//! address spaces yet), so the key is the address space's identity plus the address;
//! `FUTEX_PRIVATE_FLAG` changes nothing. Waiters carry the bitset of `FUTEX_WAIT_BITSET`
//! (all ones for `FUTEX_WAIT`).

use alloc::collections::{BTreeMap, VecDeque};
use spin::Mutex;

use super::sched::{self, WaitResult};

/// Identifies a futex: the address space (`Arc::as_ptr` of its `Mm`) and the address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct FutexKey {
    /// The address space.
    pub mm: usize,
    /// The user address of the futex word.
    pub addr: u64,
}

#[derive(Clone, Copy, Debug)]
struct Waiter {
    tid: u32,
    bitset: u32,
}

/// Waiters by futex; a waiter whose entry is gone was woken by `wake`/`requeue`.
static QUEUES: Mutex<BTreeMap<FutexKey, VecDeque<Waiter>>> = Mutex::new(BTreeMap::new());

/// How a futex wait ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FutexWait {
    /// Woken by a wake-up on the futex.
    Woken,
    /// The timeout passed.
    TimedOut,
    /// A signal arrived first.
    Interrupted,
    /// No memory to queue the waiter.
    NoMemory,
}

/// Queues the current task on `key` and blocks it until a wake-up matching `bitset`, a
/// signal, or `deadline_ns`. The caller has checked the futex word with nothing in
/// between that could have woken it (one CPU, interrupts off in the kernel).
pub fn wait(key: FutexKey, bitset: u32, deadline_ns: Option<u64>) -> FutexWait {
    let Some(task) = sched::current() else {
        return FutexWait::Interrupted;
    };
    let tid = task.tid;
    {
        let mut q = QUEUES.lock();
        let list = q.entry(key).or_default();
        if list.try_reserve(1).is_err() {
            return FutexWait::NoMemory;
        }
        list.push_back(Waiter { tid, bitset });
    }
    let result = sched::block(deadline_ns);
    let still_queued = remove(key, tid);
    match (still_queued, result) {
        // Woken by a futex wake-up (even if a signal or the deadline came too).
        (false, _) => FutexWait::Woken,
        (true, WaitResult::TimedOut) => FutexWait::TimedOut,
        (true, WaitResult::Interrupted) => FutexWait::Interrupted,
        // Woken otherwise (spurious): Linux returns 0 and user space re-checks.
        (true, WaitResult::Woken) => FutexWait::Woken,
    }
}

/// Removes `tid` from `key`'s queue; true if it was there.
fn remove(key: FutexKey, tid: u32) -> bool {
    let mut q = QUEUES.lock();
    let Some(list) = q.get_mut(&key) else {
        return false;
    };
    let before = list.len();
    list.retain(|w| w.tid != tid);
    let found = list.len() != before;
    if list.is_empty() {
        q.remove(&key);
    }
    found
}

/// Wakes up to `n` waiters of `key` whose bitset meets `bitset`; returns how many.
pub fn wake(key: FutexKey, n: usize, bitset: u32) -> usize {
    let mut woken = alloc::vec::Vec::new();
    {
        let mut q = QUEUES.lock();
        let Some(list) = q.get_mut(&key) else {
            return 0;
        };
        let mut i = 0;
        while i < list.len() && woken.len() < n {
            if list[i].bitset & bitset != 0 {
                let w = list.remove(i).expect("index in range");
                woken.push(w.tid);
            } else {
                i += 1;
            }
        }
        if list.is_empty() {
            q.remove(&key);
        }
    }
    for &tid in &woken {
        sched::wake(tid);
    }
    woken.len()
}

/// Wakes up to `n_wake` waiters of `from` and moves up to `n_requeue` more to `to`;
/// returns woken + moved (as `FUTEX_CMP_REQUEUE` does).
pub fn requeue(from: FutexKey, to: FutexKey, n_wake: usize, n_requeue: usize) -> usize {
    let woken = wake(from, n_wake, u32::MAX);
    if n_requeue == 0 || from == to {
        return woken;
    }
    let mut q = QUEUES.lock();
    let Some(list) = q.get_mut(&from) else {
        return woken;
    };
    let k = n_requeue.min(list.len());
    let moved: VecDeque<Waiter> = list.drain(..k).collect();
    if list.is_empty() {
        q.remove(&from);
    }
    let target = q.entry(to).or_default();
    target.extend(moved.iter().copied());
    woken + moved.len()
}

/// Number of tasks waiting on `key` (self-tests).
pub fn waiters(key: FutexKey) -> usize {
    QUEUES.lock().get(&key).map_or(0, |l| l.len())
}

//! Advisory file locks: `flock` locks (whole file, owned by an open file description)
//! and byte-range locks, owned by a process (`F_SETLK`, POSIX) or by an open file
//! description (`F_OFD_SETLK`). The two families never conflict with each other; within
//! one, locks of different owners conflict where their ranges overlap and one of them
//! is a write lock.
//!
//! A lock goes when its owner unlocks it, when its open file description is closed for
//! the last time (flock and OFD locks, [`release_file`]), when its process closes any
//! descriptor of the file ([`release_process`]) or ends (a process no longer alive holds
//! nothing). Waiters sleep on one queue woken by every release; a process-owned wait that
//! would close a cycle of waiting processes fails with `EDEADLK`.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use spin::Mutex;

use crate::errno::Errno;
use crate::task::sched::WaitResult;
use crate::task::wait::WaitQueue;

/// Who holds a lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Owner {
    /// A process (POSIX record locks).
    Process(u32),
    /// An open file description, by address (flock and OFD locks).
    File(usize),
}

/// Lock families that do not see each other.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// `flock`.
    Flock,
    /// `fcntl` record locks (POSIX and OFD).
    Record,
}

/// One lock: `[start, end)` (`end` = `u64::MAX`: to the end of the file, however long).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lock {
    pub owner: Owner,
    pub family: Family,
    pub write: bool,
    pub start: u64,
    pub end: u64,
}

impl Lock {
    fn conflicts(&self, other: &Lock) -> bool {
        self.owner != other.owner
            && self.family == other.family
            && (self.write || other.write)
            && self.start < other.end
            && other.start < self.end
    }
}

/// The locks of every file, by (file system, inode).
#[derive(Default)]
pub struct LockTable {
    files: BTreeMap<(u64, u64), Vec<Lock>>,
}

impl LockTable {
    /// The first lock of another owner that `want` conflicts with, ignoring owners
    /// `alive` says are gone.
    pub fn conflict(
        &self,
        key: (u64, u64),
        want: &Lock,
        alive: impl Fn(Owner) -> bool,
    ) -> Option<Lock> {
        self.files
            .get(&key)?
            .iter()
            .find(|l| l.conflicts(want) && alive(l.owner))
            .copied()
    }

    /// Removes `owner`'s locks of `family` over `[start, end)`, splitting those that
    /// stick out.
    pub fn unlock(&mut self, key: (u64, u64), owner: Owner, family: Family, start: u64, end: u64) {
        let Some(locks) = self.files.get_mut(&key) else {
            return;
        };
        let mut kept = Vec::with_capacity(locks.len() + 1);
        for l in locks.drain(..) {
            if l.owner != owner || l.family != family || l.end <= start || end <= l.start {
                kept.push(l);
                continue;
            }
            if l.start < start {
                kept.push(Lock { end: start, ..l });
            }
            if end < l.end {
                kept.push(Lock { start: end, ..l });
            }
        }
        *locks = kept;
        if locks.is_empty() {
            self.files.remove(&key);
        }
    }

    /// Sets `lock` (replacing what its owner held of that range); `ENOLCK` if no memory.
    pub fn set(&mut self, key: (u64, u64), lock: Lock) -> Result<(), Errno> {
        self.unlock(key, lock.owner, lock.family, lock.start, lock.end);
        let locks = self.files.entry(key).or_default();
        locks.try_reserve(1).map_err(|_| Errno::ENOLCK)?;
        locks.push(lock);
        Ok(())
    }

    /// Drops every lock `pred` picks; true if any went.
    pub fn release(&mut self, mut pred: impl FnMut((u64, u64), &Lock) -> bool) -> bool {
        let mut any = false;
        self.files.retain(|&key, locks| {
            let before = locks.len();
            locks.retain(|l| !pred(key, l));
            any |= locks.len() != before;
            !locks.is_empty()
        });
        any
    }
}

static TABLE: Mutex<LockTable> = Mutex::new(LockTable {
    files: BTreeMap::new(),
});
/// Which process waits for which (for deadlock detection).
static WAITING: Mutex<BTreeMap<u32, u32>> = Mutex::new(BTreeMap::new());
static RELEASED: WaitQueue = WaitQueue::new();

/// Whether a lock owner still exists (a process that has not ended).
fn alive(owner: Owner) -> bool {
    match owner {
        Owner::Process(pid) => {
            crate::task::process::get(pid).is_some_and(|p| !p.is_zombie() && p.exiting().is_none())
        }
        Owner::File(_) => true,
    }
}

/// Whether process `me` waiting for `holder` closes a cycle of waiting processes.
fn would_deadlock(me: u32, holder: u32) -> bool {
    let waiting = WAITING.lock();
    let mut at = holder;
    for _ in 0..=waiting.len() {
        if at == me {
            return true;
        }
        match waiting.get(&at) {
            Some(&next) => at = next,
            None => return false,
        }
    }
    false
}

/// Takes `lock` on file `key`, or unlocks its range if `unlock`. With `wait`, sleeps
/// while another owner's lock conflicts (`ERESTARTSYS` if a signal comes, `EDEADLK` on a
/// cycle of processes); without, `EAGAIN`.
pub fn acquire(key: (u64, u64), lock: Lock, unlock: bool, wait: bool) -> Result<(), Errno> {
    if unlock {
        TABLE
            .lock()
            .unlock(key, lock.owner, lock.family, lock.start, lock.end);
        RELEASED.wake_all();
        return Ok(());
    }
    loop {
        let holder = {
            let mut table = TABLE.lock();
            table.release(|_, l| !alive(l.owner));
            match table.conflict(key, &lock, alive) {
                None => return table.set(key, lock),
                Some(h) => h,
            }
        };
        if !wait {
            return Err(Errno::EAGAIN);
        }
        let me = match (lock.owner, holder.owner) {
            (Owner::Process(me), Owner::Process(other)) => {
                if would_deadlock(me, other) {
                    return Err(Errno::EDEADLK);
                }
                WAITING.lock().insert(me, other);
                Some(me)
            }
            _ => None,
        };
        // Woken by a release; the timeout notices a holder that ended.
        let poll = crate::time::monotonic_ns() + 10_000_000;
        let woke = RELEASED.wait(Some(poll));
        if let Some(me) = me {
            WAITING.lock().remove(&me);
        }
        if woke == WaitResult::Interrupted {
            return Err(Errno::ERESTARTSYS);
        }
    }
}

/// The lock that would keep `lock` from being taken (`F_GETLK`).
pub fn test(key: (u64, u64), lock: &Lock) -> Option<Lock> {
    TABLE.lock().conflict(key, lock, alive)
}

/// An open file description closed for good: its flock and OFD locks go.
pub fn release_file(addr: usize) {
    if TABLE.lock().release(|_, l| l.owner == Owner::File(addr)) {
        RELEASED.wake_all();
    }
}

/// Process `pid` closed a descriptor of file `key`: its record locks on it go.
pub fn release_process(pid: u32, key: (u64, u64)) {
    if TABLE
        .lock()
        .release(|k, l| k == key && l.owner == Owner::Process(pid))
    {
        RELEASED.wake_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const K: (u64, u64) = (1, 2);

    fn rec(pid: u32, write: bool, start: u64, end: u64) -> Lock {
        Lock {
            owner: Owner::Process(pid),
            family: Family::Record,
            write,
            start,
            end,
        }
    }

    #[test]
    fn ranges_conflict_only_across_owners_and_with_a_writer() {
        let mut t = LockTable::default();
        t.set(K, rec(1, false, 0, 100)).unwrap();
        let all = |_| true;
        assert_eq!(t.conflict(K, &rec(2, false, 50, 60), all), None);
        assert_eq!(
            t.conflict(K, &rec(2, true, 50, 60), all),
            Some(rec(1, false, 0, 100))
        );
        assert_eq!(t.conflict(K, &rec(2, true, 100, 200), all), None);
        assert_eq!(t.conflict(K, &rec(1, true, 0, 10), all), None);
        // A dead owner holds nothing.
        assert_eq!(t.conflict(K, &rec(2, true, 50, 60), |_| false), None);
        // flock and record locks do not see each other.
        let fl = Lock {
            owner: Owner::File(9),
            family: Family::Flock,
            write: true,
            start: 0,
            end: u64::MAX,
        };
        assert_eq!(t.conflict(K, &fl, all), None);
    }

    #[test]
    fn unlocking_the_middle_splits_and_release_drops() {
        let mut t = LockTable::default();
        t.set(K, rec(1, true, 0, 100)).unwrap();
        t.unlock(K, Owner::Process(1), Family::Record, 40, 60);
        let all = |_| true;
        assert!(t.conflict(K, &rec(2, true, 45, 55), all).is_none());
        assert_eq!(
            t.conflict(K, &rec(2, true, 30, 45), all),
            Some(rec(1, true, 0, 40))
        );
        assert_eq!(
            t.conflict(K, &rec(2, true, 55, 65), all),
            Some(rec(1, true, 60, 100))
        );
        // Re-locking a range as read replaces the write lock there.
        t.set(K, rec(1, false, 0, 100)).unwrap();
        assert!(t.conflict(K, &rec(2, false, 0, 100), all).is_none());
        assert!(t.release(|_, l| l.owner == Owner::Process(1)));
        assert!(t.files.is_empty());
        assert!(!t.release(|_, _| true));
    }
}

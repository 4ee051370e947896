//! Processes: the thread group every thread belongs to, the table of live and zombie
//! processes, and the family tree `fork`, `wait4` and the job-control calls work on.
//!
//! A process enters the table when it is made and leaves it when it is reaped: by its
//! parent's `wait4`, automatically when the parent ignores `SIGCHLD` (or set
//! `SA_NOCLDWAIT`), or at once when the kernel started it (parent 0: the kernel reads
//! its status through [`super::sched::Finished`]). In between, once its last thread has
//! exited, it is a zombie: its status waits for the parent.
//!
//! When a process ends its children are re-parented to the init process (the one the
//! kernel started, as the subreaper of everything in the VM); when the init process
//! ends every other process is killed, as when a pid namespace's init exits, so the VM
//! ends with init's status.

use alloc::collections::BTreeMap;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use spin::Mutex;

use super::wait::WaitQueue;
use crate::errno::Errno;
use crate::syscall::Rlimits;

/// A thread group: what every thread of a process shares whatever the clone flags.
pub struct Process {
    /// Process id (the thread-group id: the first thread's tid).
    pub pid: u32,
    /// Parent process id (0: started by the kernel, like init).
    ppid: AtomicU32,
    /// Process group id.
    pgid: AtomicU32,
    /// Session id.
    sid: AtomicU32,
    /// Resource limits.
    pub limits: Mutex<Rlimits>,
    /// Signal sent to the parent when this process ends (`SIGCHLD` for `fork`; clone's
    /// low byte; 0 for none).
    pub exit_signal: u8,
    /// Threads not yet exited.
    pub(super) live_threads: AtomicU32,
    /// `exit_group` status + 1 once a thread called it (0: not yet): the other threads
    /// end at their next return to user mode, and this is the process's status.
    group_exit: AtomicU32,
    /// Status of the last thread to exit (+1; 0 while threads live).
    pub(super) last_status: AtomicU32,
    /// The signal that ended the process (0: it exited).
    term_signal: AtomicU32,
    /// CPU time of the threads that have exited, in ns.
    pub(super) dead_cpu_ns: AtomicU64,
    /// CPU time of the children reaped (RUSAGE_CHILDREN), in ns.
    children_cpu_ns: AtomicU64,
    /// Page faults of every thread, live and exited (`ru_minflt`).
    min_flt: AtomicU64,
    /// Page faults of the children reaped.
    children_min_flt: AtomicU64,
    /// Process ids of the children not reaped yet.
    children: Mutex<Vec<u32>>,
    /// Woken when a child ends (`wait4` sleeps here).
    pub child_events: WaitQueue,
    /// Set once every thread has exited.
    zombie: AtomicBool,
    /// `vfork`: false until the child execs or exits; the parent sleeps on
    /// [`Process::vfork_queue`] meanwhile.
    vfork_done: AtomicBool,
    /// Where a `vfork` parent waits.
    vfork_queue: WaitQueue,
    /// `ITIMER_REAL`: (deadline ns, interval ns); deadline 0 when disarmed.
    itimer: Mutex<(u64, u64)>,
    /// Stopped by a stop signal (SIGSTOP, SIGTSTP, ...) until SIGCONT.
    stopped: AtomicBool,
    /// A change for the parent's `wait4` (`WUNTRACED`/`WCONTINUED`) not reported yet:
    /// the status word of a stop (`sig << 8 | 0x7f`) or of a continue (`0xffff`); 0 none.
    job_change: AtomicU32,
}

/// `wait4`'s status of a continued child.
pub const WAIT_CONTINUED: u32 = 0xffff;

/// The family facts of a new process.
pub struct Lineage {
    /// Parent pid (0: the kernel).
    pub ppid: u32,
    /// Process group (0: a group of its own).
    pub pgid: u32,
    /// Session (0: a session of its own).
    pub sid: u32,
    /// Limits it starts with.
    pub limits: Rlimits,
    /// Signal for the parent at exit.
    pub exit_signal: u8,
}

impl Process {
    /// A new process `pid` with one live thread.
    pub fn new(pid: u32, lineage: Lineage) -> Self {
        let own = |id: u32| if id == 0 { pid } else { id };
        Process {
            pid,
            ppid: AtomicU32::new(lineage.ppid),
            pgid: AtomicU32::new(own(lineage.pgid)),
            sid: AtomicU32::new(own(lineage.sid)),
            limits: Mutex::new(lineage.limits),
            exit_signal: lineage.exit_signal,
            live_threads: AtomicU32::new(1),
            group_exit: AtomicU32::new(0),
            last_status: AtomicU32::new(0),
            term_signal: AtomicU32::new(0),
            dead_cpu_ns: AtomicU64::new(0),
            children_cpu_ns: AtomicU64::new(0),
            min_flt: AtomicU64::new(0),
            children_min_flt: AtomicU64::new(0),
            children: Mutex::new(Vec::new()),
            child_events: WaitQueue::new(),
            zombie: AtomicBool::new(false),
            vfork_done: AtomicBool::new(true),
            vfork_queue: WaitQueue::new(),
            itimer: Mutex::new((0, 0)),
            stopped: AtomicBool::new(false),
            job_change: AtomicU32::new(0),
        }
    }

    /// The shell-style status once every thread has ended: `exit_group`'s, else the last
    /// thread's (128+N if killed by signal N).
    pub fn exit_status(&self) -> Option<u8> {
        if self.live_threads.load(Ordering::Acquire) != 0 {
            return None;
        }
        match self.group_exit.load(Ordering::Acquire) {
            0 => match self.last_status.load(Ordering::Acquire) {
                0 => None,
                s => Some((s - 1) as u8),
            },
            s => Some((s - 1) as u8),
        }
    }

    /// The `wait4` status word once the process has ended: `code << 8` for an exit,
    /// the signal number for a death by signal (Linux's encoding).
    pub fn wait_status(&self) -> Option<u32> {
        let status = self.exit_status()?;
        match self.term_signal.load(Ordering::Acquire) {
            0 => Some(u32::from(status) << 8),
            sig => Some(sig),
        }
    }

    /// True once a thread called `exit_group` (or a fatal signal ended the process).
    pub fn exiting(&self) -> Option<u8> {
        match self.group_exit.load(Ordering::Acquire) {
            0 => None,
            s => Some((s - 1) as u8),
        }
    }

    /// Starts ending the whole process with `status` (the first caller's status wins).
    pub fn begin_group_exit(&self, status: u8) {
        let _ = self.group_exit.compare_exchange(
            0,
            status as u32 + 1,
            Ordering::AcqRel,
            Ordering::Acquire,
        );
    }

    /// Starts ending the process because of signal `sig` (status 128 + `sig`), unless
    /// it is already ending.
    pub fn begin_signal_exit(&self, sig: u8) {
        if self
            .group_exit
            .compare_exchange(
                0,
                128 + u32::from(sig) + 1,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_ok()
        {
            self.term_signal.store(u32::from(sig), Ordering::Release);
        }
    }

    /// CPU time of the threads that have exited.
    pub fn dead_cpu_ns(&self) -> u64 {
        self.dead_cpu_ns.load(Ordering::Relaxed)
    }

    /// CPU time of the reaped children.
    pub fn children_cpu_ns(&self) -> u64 {
        self.children_cpu_ns.load(Ordering::Relaxed)
    }

    /// Counts a page fault of one of its threads.
    pub fn count_fault(&self) {
        self.min_flt.fetch_add(1, Ordering::Relaxed);
    }

    /// Page faults of its threads (`ru_minflt`).
    pub fn min_flt(&self) -> u64 {
        self.min_flt.load(Ordering::Relaxed)
    }

    /// Page faults of the reaped children.
    pub fn children_min_flt(&self) -> u64 {
        self.children_min_flt.load(Ordering::Relaxed)
    }

    /// The parent's pid (0: the kernel).
    pub fn ppid(&self) -> u32 {
        self.ppid.load(Ordering::Acquire)
    }

    /// The process group.
    pub fn pgid(&self) -> u32 {
        self.pgid.load(Ordering::Acquire)
    }

    /// The session.
    pub fn sid(&self) -> u32 {
        self.sid.load(Ordering::Acquire)
    }

    /// The process's `RLIMIT_SIGPENDING` (soft): how many signal instances its senders
    /// may have queued, all processes together.
    pub fn sigpending_limit(&self) -> u64 {
        self.limits
            .lock()
            .get(crate::syscall::info::limits::RLIMIT_SIGPENDING as u64)
            .map_or(u64::MAX, |l| l.cur)
    }

    /// True once every thread has exited (until reaped).
    pub fn is_zombie(&self) -> bool {
        self.zombie.load(Ordering::Acquire)
    }

    /// Pids of the children not reaped yet.
    pub fn children(&self) -> Vec<u32> {
        self.children.lock().clone()
    }

    /// True while stopped by a stop signal.
    pub fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::Acquire)
    }

    /// Stops the process for `sig`; false if it was stopped already.
    pub fn stop(&self, sig: u8) -> bool {
        if self.stopped.swap(true, Ordering::AcqRel) {
            return false;
        }
        self.job_change
            .store(u32::from(sig) << 8 | 0x7f, Ordering::Release);
        true
    }

    /// Continues a stopped process (SIGCONT); false if it was not stopped.
    pub fn resume(&self) -> bool {
        if !self.stopped.swap(false, Ordering::AcqRel) {
            return false;
        }
        self.job_change.store(WAIT_CONTINUED, Ordering::Release);
        true
    }

    /// The stop or continue not reported to the parent yet, if `want` (a predicate on
    /// the status word) selects it; taken unless `keep`.
    pub fn take_job_change(&self, want: impl Fn(u32) -> bool, keep: bool) -> Option<u32> {
        let status = self.job_change.load(Ordering::Acquire);
        if status == 0 || !want(status) {
            return None;
        }
        if !keep {
            self.job_change.store(0, Ordering::Release);
        }
        Some(status)
    }

    /// The real-time timer: (deadline ns, interval ns), deadline 0 when disarmed.
    pub fn itimer(&self) -> (u64, u64) {
        *self.itimer.lock()
    }

    /// Sets the real-time timer (deadline 0 disarms it); returns the old setting.
    pub fn set_itimer(&self, deadline: u64, interval: u64) -> (u64, u64) {
        let old = core::mem::replace(&mut *self.itimer.lock(), (deadline, interval));
        super::sched::set_alarm(self.pid, old.0, deadline);
        old
    }

    /// True if the real-time timer has expired by `now` (then it is re-armed if periodic,
    /// else disarmed): SIGALRM is due.
    pub fn alarm_expired(&self, now: u64) -> bool {
        let mut t = self.itimer.lock();
        let (deadline, interval) = *t;
        if deadline == 0 || deadline > now {
            return false;
        }
        // Skip the periods missed, as Linux's hrtimer_forward.
        let next = match (now - deadline).checked_div(interval) {
            Some(periods) => deadline.saturating_add((periods + 1).saturating_mul(interval)),
            None => 0,
        };
        *t = (next, interval);
        drop(t);
        if next != 0 {
            super::sched::set_alarm(self.pid, 0, next);
        }
        true
    }

    /// Marks this (new) process as a `vfork` child: its parent waits for [`Self::release_vfork`].
    pub fn start_vfork(&self) {
        self.vfork_done.store(false, Ordering::Release);
    }

    /// The `vfork` child has exec'd or exited: its parent may go on.
    pub fn release_vfork(&self) {
        if !self.vfork_done.swap(true, Ordering::AcqRel) {
            self.vfork_queue.wake_all();
        }
    }

    /// Blocks the caller (the `vfork` parent) until [`Self::release_vfork`]. Signals do
    /// not end the wait (Linux's vfork wait is killable only): the caller yields to let
    /// the child run while one is pending.
    pub fn wait_vfork(&self, parent_exiting: impl Fn() -> bool) {
        while !self.vfork_done.load(Ordering::Acquire) && !parent_exiting() {
            if self.vfork_queue.wait(None) == super::sched::WaitResult::Interrupted {
                super::sched::schedule();
            }
        }
    }
}

/// Every process not yet reaped, by pid.
static TABLE: Mutex<BTreeMap<u32, Arc<Process>>> = Mutex::new(BTreeMap::new());

/// Adds a new process to the table and to its parent's children; ENOMEM if there is no
/// room for the entries.
pub fn register(process: &Arc<Process>) -> Result<(), Errno> {
    let ppid = process.ppid();
    let parent = if ppid != 0 { get(ppid) } else { None };
    if let Some(parent) = &parent {
        let mut children = parent.children.lock();
        children.try_reserve(1).map_err(|_| Errno::ENOMEM)?;
        children.push(process.pid);
    }
    let mut table = TABLE.lock();
    // BTreeMap insertion allocates a node at most; there is no fallible insert, and a
    // node is a small allocation the heap budget already covers.
    table.insert(process.pid, process.clone());
    Ok(())
}

/// Undoes [`register`] for a process whose first thread never ran.
pub fn unregister(pid: u32) {
    let Some(process) = TABLE.lock().remove(&pid) else {
        return;
    };
    if let Some(parent) = get(process.ppid()) {
        parent.children.lock().retain(|&c| c != pid);
    }
}

/// The process `pid`, if it is in the table (alive or a zombie).
pub fn get(pid: u32) -> Option<Arc<Process>> {
    TABLE.lock().get(&pid).cloned()
}

/// Every process in the table.
pub fn all() -> Vec<Arc<Process>> {
    TABLE.lock().values().cloned().collect()
}

/// Number of processes in the table (zombies included, as Linux counts them against
/// RLIMIT_NPROC).
pub fn count() -> usize {
    TABLE.lock().len()
}

/// The init process: the oldest one the kernel started that is still alive.
fn init_pid() -> Option<u32> {
    TABLE
        .lock()
        .values()
        .find(|p| p.ppid() == 0 && !p.is_zombie())
        .map(|p| p.pid)
}

/// What happens to a process whose last thread has exited; returns the parent to
/// signal (with `SIGCHLD` or the process's exit signal), if any.
pub fn on_exit(process: &Arc<Process>) -> Option<Arc<Process>> {
    process.zombie.store(true, Ordering::Release);
    process.release_vfork();
    process.set_itimer(0, 0);
    // Orphans go to init; if this is init, everything else is killed.
    let orphans = core::mem::take(&mut *process.children.lock());
    if process.ppid() == 0 {
        for p in all() {
            if p.pid != process.pid && !p.is_zombie() {
                super::kill_process_by_signal(&p, crate::signal::sig::SIGKILL);
            }
        }
    }
    let init = init_pid().filter(|&i| i != process.pid);
    match init.and_then(get) {
        Some(init) => {
            let mut any_zombie = false;
            for pid in orphans {
                if let Some(child) = get(pid) {
                    child.ppid.store(init.pid, Ordering::Release);
                    any_zombie |= child.is_zombie();
                    let mut children = init.children.lock();
                    if children.try_reserve(1).is_ok() {
                        children.push(pid);
                    }
                }
            }
            if any_zombie {
                init.child_events.wake_all();
            }
        }
        None => {
            // No init left to reap them: orphans are reaped by nobody; drop zombies now.
            for pid in orphans {
                if let Some(child) = get(pid) {
                    child.ppid.store(0, Ordering::Release);
                    if child.is_zombie() {
                        TABLE.lock().remove(&pid);
                    }
                }
            }
        }
    }
    let ppid = process.ppid();
    if ppid == 0 {
        // Started by the kernel: it reads the status itself.
        TABLE.lock().remove(&process.pid);
        return None;
    }
    let parent = get(ppid)?;
    parent.child_events.wake_all();
    Some(parent)
}

/// Removes the zombie `pid` from the table and from its parent's children, adding its
/// CPU time to the parent's; its `wait4` status.
pub fn reap(parent: &Process, pid: u32) -> Option<u32> {
    let child = get(pid)?;
    let status = child.wait_status()?;
    TABLE.lock().remove(&pid);
    parent.children.lock().retain(|&c| c != pid);
    let cpu = child.dead_cpu_ns() + child.children_cpu_ns();
    parent.children_cpu_ns.fetch_add(cpu, Ordering::Relaxed);
    let faults = child.min_flt() + child.children_min_flt();
    parent.children_min_flt.fetch_add(faults, Ordering::Relaxed);
    Some(status)
}

/// Which children a `wait4`/`waitid` pid argument selects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitTarget {
    /// Any child (`-1`).
    Any,
    /// The child with this pid (`> 0`).
    Pid(u32),
    /// Any child in this process group (`0`: the caller's, `< -1`: `-pgid`).
    Group(u32),
}

impl WaitTarget {
    /// Decodes `wait4`'s pid argument for a caller in process group `my_pgid`.
    pub fn from_wait4(pid: i32, my_pgid: u32) -> WaitTarget {
        match pid {
            -1 => WaitTarget::Any,
            0 => WaitTarget::Group(my_pgid),
            p if p > 0 => WaitTarget::Pid(p as u32),
            p => WaitTarget::Group(p.unsigned_abs()),
        }
    }

    /// True if `child` is selected.
    pub fn matches(self, child: &Process) -> bool {
        match self {
            WaitTarget::Any => true,
            WaitTarget::Pid(p) => child.pid == p,
            WaitTarget::Group(g) => child.pgid() == g,
        }
    }
}

/// What a waiting parent may be told about a child.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChildEvent {
    /// It ended (a zombie to reap).
    Ended,
    /// It stopped or continued: this status word.
    JobControl(u32),
}

/// The first child of `parent` selected by `target` with something to report: an end,
/// or a stop (`stops`) or continue (`continues`) not reported yet (taken unless `keep`);
/// `Err(ECHILD)` if no child is selected at all.
pub fn find_event(
    parent: &Process,
    target: WaitTarget,
    stops: bool,
    continues: bool,
    keep: bool,
) -> Result<Option<(u32, ChildEvent)>, Errno> {
    let mut any = false;
    for pid in parent.children() {
        let Some(child) = get(pid) else {
            continue;
        };
        if !target.matches(&child) {
            continue;
        }
        any = true;
        if child.is_zombie() {
            return Ok(Some((pid, ChildEvent::Ended)));
        }
        let want = |s: u32| {
            if s == WAIT_CONTINUED {
                continues
            } else {
                stops
            }
        };
        if let Some(status) = child.take_job_change(want, keep) {
            return Ok(Some((pid, ChildEvent::JobControl(status))));
        }
    }
    if any {
        Ok(None)
    } else {
        Err(Errno::ECHILD)
    }
}

/// setpgid's rules: `pid` (0: the caller) joins or creates group `pgid` (0: its own pid).
/// The target must be the caller or one of its children in its session, not a session
/// leader; the group must exist in the caller's session unless it is the target's own.
pub fn set_pgid(caller: &Process, pid: u32, pgid: u32) -> Result<(), Errno> {
    let pid = if pid == 0 { caller.pid } else { pid };
    let pgid = if pgid == 0 { pid } else { pgid };
    if pgid as i32 <= 0 {
        return Err(Errno::EINVAL);
    }
    let target = get(pid).ok_or(Errno::ESRCH)?;
    if target.pid != caller.pid {
        if target.ppid() != caller.pid {
            return Err(Errno::ESRCH);
        }
        if target.sid() != caller.sid() {
            return Err(Errno::EPERM);
        }
    }
    if target.sid() == target.pid {
        return Err(Errno::EPERM);
    }
    if pgid != pid {
        let exists = all()
            .iter()
            .any(|p| p.pgid() == pgid && p.sid() == caller.sid() && !p.is_zombie());
        if !exists {
            return Err(Errno::EPERM);
        }
    }
    target.pgid.store(pgid, Ordering::Release);
    Ok(())
}

/// setsid: the caller leads a new session and group; EPERM if it leads a group already.
pub fn set_sid(caller: &Process) -> Result<u32, Errno> {
    let pid = caller.pid;
    if all().iter().any(|p| p.pgid() == pid && !p.is_zombie()) && caller.pgid() == pid {
        return Err(Errno::EPERM);
    }
    caller.sid.store(pid, Ordering::Release);
    caller.pgid.store(pid, Ordering::Release);
    Ok(pid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait4_pid_arguments_select_as_linux() {
        assert_eq!(WaitTarget::from_wait4(-1, 7), WaitTarget::Any);
        assert_eq!(WaitTarget::from_wait4(0, 7), WaitTarget::Group(7));
        assert_eq!(WaitTarget::from_wait4(12, 7), WaitTarget::Pid(12));
        assert_eq!(WaitTarget::from_wait4(-12, 7), WaitTarget::Group(12));
    }
}

//! The timers the scheduler keeps: processes' real-time alarms (`alarm`, `setitimer`)
//! and tasks' sleep deadlines, both ordered by deadline and expired on each tick.

use super::*;

/// Arms (deadline > 0) or disarms process `pid`'s real-time timer, replacing the entry
/// for its old deadline `old` (0: none).
pub fn set_alarm(pid: u32, old: u64, deadline: u64) {
    let c = cpu0();
    if old != 0 {
        c.alarms.remove(&(old, pid));
    }
    if deadline != 0 {
        c.alarms.insert((deadline, pid), ());
    }
}

/// Sends SIGALRM to the processes whose real-time timer expired, re-arming periodic
/// ones. `current` is the running task, if the caller holds it.
pub fn fire_alarms(mut current: Option<&mut Task>) {
    if cpu0().fired.is_empty() {
        return;
    }
    let fired = core::mem::take(&mut cpu0().fired);
    let now = time::monotonic_ns();
    for pid in fired {
        let Some(process) = crate::task::process::get(pid) else {
            continue;
        };
        if process.is_zombie() || !process.alarm_expired(now) {
            continue;
        }
        let info = crate::signal::SigInfo::kernel(crate::signal::sig::SIGALRM);
        // SIGALRM is a standard signal of the kernel's: never refused.
        let _ = crate::task::signal_process(&process, info, current.as_deref_mut());
    }
}

/// Moves expired process alarms to the fired list (sent later, outside the interrupt, by
/// [`fire_alarms`]) and wakes the tasks whose sleep deadline passed.
pub(super) fn expire_timers() {
    let now = time::monotonic_ns();
    loop {
        let c = cpu0();
        let Some((&(deadline, pid), _)) = c.alarms.iter().next() else {
            break;
        };
        if deadline > now {
            break;
        }
        c.alarms.remove(&(deadline, pid));
        if c.fired.try_reserve(1).is_ok() {
            c.fired.push(pid);
        }
    }
    loop {
        let c = cpu0();
        let Some((&(deadline, tid), _)) = c.timers.iter().next() else {
            return;
        };
        if deadline > now {
            return;
        }
        c.timers.remove(&(deadline, tid));
        if let Some(mut t) = c.tasks.get(&tid).copied() {
            // SAFETY: a live registered task.
            let t = unsafe { t.as_mut() };
            t.woken_by_timer = true;
            wake_task(t);
        }
    }
}

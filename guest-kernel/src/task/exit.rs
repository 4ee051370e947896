//! Leaving the kernel and leaving for good: the boundary every trap and system call of a
//! task returns through, thread exit (`clear_child_tid`, the robust futex list) and
//! process-wide exit.
//!
//! Nothing deep in the kernel ends a task: a fatal condition (a fatal signal, `exit`,
//! `exit_group`, out of memory) is recorded and the call unwinds to [`return_to_user`],
//! which ends the thread there with no lock held.

use alloc::sync::Arc;

use super::futex::{self, FutexKey};
use super::{sched, Process, Task};
use crate::arch::trap::TrapFrame;
use crate::mm::uaccess;

/// `FUTEX_WAITERS`: someone waits on the robust futex.
const FUTEX_WAITERS: u32 = 0x8000_0000;
/// `FUTEX_OWNER_DIED`: the owner exited without unlocking.
const FUTEX_OWNER_DIED: u32 = 0x4000_0000;
/// `FUTEX_TID_MASK`.
const FUTEX_TID_MASK: u32 = 0x3fff_ffff;
/// Linux's `ROBUST_LIST_LIMIT`: the walk stops after this many entries (a cyclic list
/// must not hang the kernel).
const ROBUST_LIST_LIMIT: usize = 2048;

/// The way back to user mode after a trap or system call of the current task: ends the
/// thread if it or its process is exiting, delivers pending signals (whose default action
/// may end the process), and gives up the CPU if its slice is over.
pub fn return_to_user(frame: &mut TrapFrame) {
    loop {
        let Some(task) = sched::current() else {
            return;
        };
        if let Some(status) = sched::take_pending_fatal().or(task.fatal.take()) {
            // Fatal marks are deaths by signal (out of memory: SIGKILL).
            match status.checked_sub(128) {
                Some(sig) if sig > 0 && u64::from(sig) <= 64 => {
                    kill_process_by_signal(&task.process, sig)
                }
                _ => kill_process(&task.process, status),
            }
        }
        if let Some(status) = task.process.exiting() {
            sched::exit_current(status);
        }
        if let Some(status) = task.exit_request.take() {
            sched::exit_current(status);
        }
        // Stopped (SIGSTOP, SIGTSTP...): park until SIGCONT or SIGKILL wakes it.
        if task.process.is_stopped()
            && !task.signals.pending().contains(crate::signal::sig::SIGKILL)
        {
            sched::park();
            continue;
        }
        if core::mem::take(&mut task.rseq_notify) && rseq_fixup(task, frame).is_err() {
            crate::kprintln!(
                "astra: {}: bad rseq critical section at rip {:#x}",
                task.name(),
                frame.rip
            );
            task.signals
                .force(crate::signal::SigInfo::kernel(crate::signal::sig::SIGSEGV));
        }
        sched::fire_alarms(Some(task));
        deliver_tty_signals(Some(task));
        crate::signal::deliver_pending(task, frame);
        if let Some(mask) = task.saved_sigmask.take() {
            // No handler ran to carry it: the call's temporary mask ends here.
            task.signals.set_blocked(mask);
        }
        if task.process.exiting().is_some()
            || task.process.is_stopped()
            || sched::take_pending_fatal_peek()
            || task.fatal.is_some()
        {
            continue;
        }
        // A timer tick held back while the kernel ran may end the slice: take it here.
        crate::arch::platform::take_pending_irqs();
        if sched::need_resched() {
            sched::schedule();
            continue;
        }
        if crate::arch::platform::sysret_leaves_user_interrupts_off() {
            frame.return_by_iret();
        }
        return;
    }
}

/// Aborts the thread's rseq critical section if `frame` is inside one (after it was
/// preempted or before a signal handler runs). `Err`: the section's descriptor is
/// malformed, and the thread must get SIGSEGV.
pub fn rseq_fixup(task: &mut Task, frame: &mut TrapFrame) -> Result<(), super::rseq::BadRseq> {
    match task.thread.rseq {
        Some(reg) => super::rseq::fixup(&mut task.mm.lock(), &reg, frame),
        None => Ok(()),
    }
}

/// Ends every thread of `process` with `status` (`exit_group`, a fatal signal): each
/// ends at its next return to user mode; blocked ones are woken for it.
pub fn kill_process(process: &Arc<Process>, status: u8) {
    process.begin_group_exit(status);
    for tid in sched::threads_of(process.pid) {
        sched::wake(tid);
    }
}

/// Ends every thread of `process` because of signal `sig` (status 128 + `sig`; its
/// parent's `wait4` sees the signal).
pub fn kill_process_by_signal(process: &Arc<Process>, sig: u8) {
    process.begin_signal_exit(sig);
    for tid in sched::threads_of(process.pid) {
        sched::wake(tid);
    }
}

/// Queues `info` for process `target` (not the caller's) on its shared pending set (a
/// signal of the kernel's, never refused).
pub fn signal_other_process(target: &Arc<Process>, info: crate::signal::SigInfo) {
    let _ = signal_process(target, info, None);
}

/// Queues `info` for the whole process `target` (its shared pending set, which any of
/// its threads may take) and wakes one thread that does not block it, as Linux's
/// `__send_signal` + `complete_signal`: the caller's own thread if it belongs to
/// `target` and wants the signal (it takes it on its way back to user mode), else the
/// first other such thread. If every thread blocks it, it stays pending until one
/// unblocks it (`sigprocmask`, `sigreturn`, `sigsuspend`) or takes it (`sigwaitinfo`).
/// `current` is the caller's task, if it holds it. `EAGAIN` if a real-time signal would
/// pass the target's `RLIMIT_SIGPENDING` (see `signal::queue`).
pub fn signal_process(
    target: &Arc<Process>,
    info: crate::signal::SigInfo,
    current: Option<&mut Task>,
) -> Result<(), crate::errno::Errno> {
    let signo = info.signo;
    let threads = sched::threads_of(target.pid);
    let limit = target.sigpending_limit();
    let queued;
    let mut me = None;
    match current {
        Some(t) if t.process.pid == target.pid => {
            queued = t.signals.send_shared(info, limit)?;
            if t.signals.wants(signo) {
                return Ok(());
            }
            me = Some(t.tid);
        }
        _ => {
            let Some(&first) = threads.first() else {
                return Ok(());
            };
            queued = sched::with_other_task(first, |o| o.signals.send_shared(info, limit))
                .unwrap_or(Ok(false))?;
        }
    }
    if !queued && signo != crate::signal::sig::SIGKILL {
        // Discarded, or coalesced with a pending instance whose wake-up already ran.
        return Ok(());
    }
    for tid in threads.into_iter().filter(|&t| Some(t) != me) {
        let woke = sched::with_other_task(tid, |o| {
            if o.signals.wants(signo) {
                sched::signal_wake(o);
                true
            } else {
                false
            }
        });
        if woke == Some(true) {
            return Ok(());
        }
    }
    Ok(())
}

/// Stops `process` for stop signal `sig` (its default action): its threads park at
/// their next return to user mode until SIGCONT (or SIGKILL), and its parent hears of
/// it (`wait4` with `WUNTRACED`, SIGCHLD with `CLD_STOPPED` unless `SA_NOCLDSTOP`).
pub fn stop_process(process: &Arc<Process>, sig: u8) {
    if process.stop(sig) {
        tell_parent_job_change(process, crate::signal::si_code::CLD_STOPPED, sig, None);
    }
}

/// What generating `sig` for `process` does before it is queued, as Linux's
/// `prepare_signal`: a stop signal discards a pending SIGCONT and SIGCONT discards
/// pending stop signals (in the process's shared set and every thread's own); SIGCONT
/// continues a stopped process (its parent hears of it), SIGKILL wakes a stopped one to
/// die. `current` is the caller's task, if it holds it.
pub fn prepare_signal(process: &Arc<Process>, sig: u8, mut current: Option<&mut Task>) {
    use crate::signal::sig::{SIGCONT, SIGKILL, SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU};
    use crate::signal::SigSet;
    let stops = SigSet::of(SIGSTOP)
        .union(SigSet::of(SIGTSTP))
        .union(SigSet::of(SIGTTIN))
        .union(SigSet::of(SIGTTOU));
    let flush = if sig == SIGCONT {
        stops
    } else if stops.contains(sig) {
        SigSet::of(SIGCONT)
    } else {
        SigSet::EMPTY
    };
    if !flush.is_empty() {
        for tid in sched::threads_of(process.pid) {
            sched::with_other_task(tid, |t| t.signals.discard(flush));
        }
        if let Some(t) = current.as_deref_mut() {
            if t.process.pid == process.pid {
                t.signals.discard(flush);
            }
        }
    }
    let resumed = sig == SIGCONT && process.resume();
    if resumed || sig == SIGKILL {
        for tid in sched::threads_of(process.pid) {
            sched::wake(tid);
        }
    }
    if resumed {
        tell_parent_job_change(
            process,
            crate::signal::si_code::CLD_CONTINUED,
            SIGCONT,
            current,
        );
    }
}

/// Sends the terminal signals the host queued (its Ctrl-C, Ctrl-\\) to the terminal's
/// foreground process group, as a tty's line discipline does (`si_code` SI_KERNEL).
/// `current` is the running task, if the caller holds it.
pub fn deliver_tty_signals(mut current: Option<&mut Task>) {
    // Signals that came before init existed wait for it (a Ctrl-C during boot still ends
    // the program).
    static EARLY: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(0);
    let mask = crate::drivers::console_in::take_tty_signals()
        | EARLY.swap(0, core::sync::atomic::Ordering::AcqRel);
    if mask == 0 {
        return;
    }
    if super::process::get(1).is_none() {
        EARLY.fetch_or(mask, core::sync::atomic::Ordering::AcqRel);
        return;
    }
    // No foreground group set: the session's leader's group (init's session).
    let group = match crate::fs::tty::foreground_pgrp() {
        0 => super::process::get(1).map_or(0, |init| init.sid()),
        g => g,
    };
    let init_group = super::process::get(1).map(|init| init.pgid());
    for sig in hypercall_abi::tty_signal::signals(mask) {
        let Ok(sig) = u8::try_from(sig) else {
            continue;
        };
        if !crate::signal::is_valid(u64::from(sig)) {
            continue;
        }
        // Ctrl-Z with no job control in the guest (the foreground group is init's, which
        // no shell would stop): the host takes it, as for a program its shell runs.
        if u32::from(sig) == hypercall_abi::tty_signal::SIGTSTP && init_group == Some(group) {
            crate::arch::port::outl(hypercall_abi::port::TTY_SIGNAL, u32::from(sig));
            continue;
        }
        let members = super::process::all()
            .into_iter()
            .filter(|p| p.pgid() == group && !p.is_zombie());
        for process in members {
            prepare_signal(&process, sig, current.as_deref_mut());
            let info = crate::signal::SigInfo::kernel(sig);
            // A standard signal of the kernel's: never refused.
            let _ = signal_process(&process, info, current.as_deref_mut());
        }
    }
}

/// Wakes `process`'s parent's waiters and sends it SIGCHLD with `code` for a stop or
/// continue, unless the parent set `SA_NOCLDSTOP` (or ignores SIGCHLD).
fn tell_parent_job_change(process: &Arc<Process>, code: i32, sig: u8, current: Option<&mut Task>) {
    use crate::signal::{sa, sig::SIGCHLD, SigInfo, SIG_DFL, SIG_IGN};
    let Some(parent) = super::process::get(process.ppid()) else {
        return;
    };
    parent.child_events.wake_all();
    let info = SigInfo::child(
        SIGCHLD,
        code,
        process.pid,
        i32::from(sig),
        live_cpu_ns(process),
    );
    match current {
        Some(t) if t.process.pid == parent.pid => {
            let a = t.signals.action(SIGCHLD);
            if a.flags & sa::SA_NOCLDSTOP == 0 && a.handler != SIG_IGN && a.handler != SIG_DFL {
                // SIGCHLD is a standard signal of the kernel's: never refused.
                let _ = signal_process(&parent, info, Some(t));
            }
        }
        _ => {
            let Some(&first) = sched::threads_of(parent.pid).first() else {
                return;
            };
            let wanted = sched::with_other_task(first, |t| {
                let a = t.signals.action(SIGCHLD);
                a.flags & sa::SA_NOCLDSTOP == 0 && a.handler != SIG_IGN
            })
            .unwrap_or(false);
            if wanted {
                signal_other_process(&parent, info);
            }
        }
    }
}

/// Tells the parent that `process` has ended: reaps it at once if the parent ignores
/// `SIGCHLD` (or set `SA_NOCLDWAIT`), else sends the process's exit signal to one of
/// the parent's threads (one that does not block it, if any).
pub fn notify_parent(process: &Arc<Process>, parent: &Arc<Process>) {
    use crate::signal::{sa, si_code, sig, SigInfo, SIG_IGN};
    let threads = sched::threads_of(parent.pid);
    let Some(&first) = threads.first() else {
        return;
    };
    let auto_reap = process.exit_signal == sig::SIGCHLD
        && sched::with_other_task(first, |t| {
            let action = t.signals.action(sig::SIGCHLD);
            action.handler == SIG_IGN || action.flags & sa::SA_NOCLDWAIT != 0
        })
        .unwrap_or(false);
    if auto_reap {
        super::process::reap(parent, process.pid);
        parent.child_events.wake_all();
        return;
    }
    let signo = process.exit_signal;
    if signo == 0 {
        return;
    }
    let status = process.wait_status().unwrap_or(0);
    let (code, value) = if status & 0x7f != 0 {
        (si_code::CLD_KILLED, status & 0x7f)
    } else {
        (si_code::CLD_EXITED, (status >> 8) & 0xff)
    };
    let info = SigInfo::child(
        signo,
        code,
        process.pid,
        value as i32,
        process.dead_cpu_ns(),
    );
    signal_other_process(parent, info);
}

/// The CPU time of `process`'s threads so far (a thread running on the CPU now counts
/// up to its last switch).
fn live_cpu_ns(process: &Arc<Process>) -> u64 {
    let live: u64 = sched::threads_of(process.pid)
        .into_iter()
        .filter_map(|tid| sched::with_other_task(tid, |t| t.cpu_ns()))
        .sum();
    live + process.dead_cpu_ns()
}

/// Undoes what a thread registered with the kernel before it goes: clears and wakes
/// `clear_child_tid` (what `pthread_join` waits on) and marks the robust futexes it still
/// holds as owner-dead, waking a waiter of each.
pub fn release_thread(task: &mut Task) {
    let mm_key = Arc::as_ptr(&task.mm) as usize;
    let robust = task.thread.robust_list;
    if robust != 0 {
        walk_robust_list(task, mm_key, robust);
    }
    let ctid = task.thread.clear_child_tid;
    if ctid != 0 {
        task.thread.clear_child_tid = 0;
        let cleared = uaccess::write_user(&mut task.mm.lock(), ctid, &0u32.to_ne_bytes());
        if cleared.is_ok() {
            futex::wake(
                FutexKey {
                    mm: mm_key,
                    addr: ctid,
                },
                1,
                u32::MAX,
            );
        }
    }
}

/// Linux's `exit_robust_list`: `struct robust_list_head { next, futex_offset,
/// list_op_pending }`; each entry's futex word is at entry + futex_offset.
fn walk_robust_list(task: &mut Task, mm_key: usize, head: u64) {
    let tid = task.tid;
    let mut mm = task.mm.lock();
    let read_u64 = |mm: &crate::mm::Mm, va: u64| -> Option<u64> {
        let mut b = [0u8; 8];
        uaccess::read_user(mm, va, &mut b).ok()?;
        Some(u64::from_ne_bytes(b))
    };
    let Some(first) = read_u64(&mm, head) else {
        return;
    };
    let Some(offset) = read_u64(&mm, head + 8) else {
        return;
    };
    let pending = read_u64(&mm, head + 16).unwrap_or(0);
    let mut to_wake = alloc::vec::Vec::new();
    let mut handle = |mm: &mut crate::mm::Mm, entry: u64| {
        // The low bit of an entry flags a PI futex; the address is the rest.
        let addr = (entry & !1).wrapping_add(offset);
        let mut b = [0u8; 4];
        if uaccess::read_user(mm, addr, &mut b).is_err() {
            return;
        }
        let word = u32::from_ne_bytes(b);
        if word & FUTEX_TID_MASK != tid {
            return;
        }
        let new = (word & FUTEX_WAITERS) | FUTEX_OWNER_DIED;
        if uaccess::write_user(mm, addr, &new.to_ne_bytes()).is_ok() && word & FUTEX_WAITERS != 0 {
            let _ = to_wake.try_reserve(1).map(|_| to_wake.push(addr));
        }
    };
    let mut entry = first;
    let mut seen = 0;
    while entry != head && entry != 0 && seen < ROBUST_LIST_LIMIT {
        let next = read_u64(&mm, entry & !1);
        if entry != pending {
            handle(&mut mm, entry);
        }
        let Some(next) = next else {
            break;
        };
        entry = next;
        seen += 1;
    }
    if pending != 0 {
        handle(&mut mm, pending);
    }
    drop(mm);
    for addr in to_wake {
        futex::wake(FutexKey { mm: mm_key, addr }, 1, u32::MAX);
    }
}

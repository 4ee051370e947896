//! A process's signal state: actions, blocked mask, pending signals, alternate stack.
//! Pure logic, host-tested.

use super::queue::{SigQueue, QUEUED};
use super::{
    default_action, sig, DefaultAction, SigAction, SigInfo, SigSet, NSIG, SIG_DFL, SIG_IGN,
};
use crate::errno::Errno;
use crate::mm::uaccess::Pod;
use core::sync::atomic::AtomicUsize;

/// `sigaltstack` flags and limits.
pub mod ss {
    /// Reported when running on the alternate stack (accepted as "enable" on input).
    pub const SS_ONSTACK: i32 = 1;
    /// The alternate stack is disabled.
    pub const SS_DISABLE: i32 = 2;
    /// Disable the alternate stack while a handler runs on it.
    pub const SS_AUTODISARM: i32 = i32::MIN;
    /// Smallest alternate stack accepted (Linux's `MINSIGSTKSZ` on x86).
    pub const MINSIGSTKSZ: u64 = 2048;
}

/// Linux `stack_t`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StackT {
    /// Lowest address of the stack.
    pub sp: u64,
    /// `SS_*` flags.
    pub flags: i32,
    /// Padding (the C struct has it too).
    pub pad: u32,
    /// Size in bytes.
    pub size: u64,
}

// SAFETY: #[repr(C)] with the padding as an explicit field; every bit pattern is valid.
unsafe impl Pod for StackT {}

const _: () = assert!(core::mem::size_of::<StackT>() == 24);

/// The alternate signal stack (`sigaltstack`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AltStack {
    sp: u64,
    size: u64,
    flags: i32,
}

impl Default for AltStack {
    fn default() -> Self {
        AltStack {
            sp: 0,
            size: 0,
            flags: ss::SS_DISABLE,
        }
    }
}

impl AltStack {
    /// The top (highest address, exclusive) of the stack.
    pub fn top(&self) -> u64 {
        self.sp.wrapping_add(self.size)
    }

    /// True if stack pointer `sp` lies in the stack (Linux's `__on_sig_stack`).
    pub fn contains(&self, sp: u64) -> bool {
        sp > self.sp && sp - self.sp <= self.size
    }

    /// True if a thread at `sp` counts as running on the stack (`on_sig_stack`: never
    /// with `SS_AUTODISARM`, which disables the stack while it is in use).
    pub fn on_stack(&self, sp: u64) -> bool {
        self.flags & ss::SS_AUTODISARM == 0 && self.contains(sp)
    }

    /// `SS_DISABLE`, `SS_ONSTACK` or 0 for a thread at `sp` (`sas_ss_flags`).
    pub fn state_at(&self, sp: u64) -> i32 {
        if self.size == 0 {
            ss::SS_DISABLE
        } else if self.on_stack(sp) {
            ss::SS_ONSTACK
        } else {
            0
        }
    }

    /// What `sigaltstack` reports to a thread at `sp`.
    pub fn report(&self, sp: u64) -> StackT {
        StackT {
            sp: self.sp,
            flags: self.state_at(sp) | (self.flags & ss::SS_AUTODISARM),
            pad: 0,
            size: self.size,
        }
    }

    /// What a signal frame's `uc_stack` records (and `rt_sigreturn` reinstalls).
    pub fn saved(&self) -> StackT {
        StackT {
            sp: self.sp,
            flags: self.flags,
            pad: 0,
            size: self.size,
        }
    }

    /// `sigaltstack(new)` by a thread at `sp`: EPERM while running on the stack,
    /// EINVAL for unknown flags, ENOMEM below `MINSIGSTKSZ`.
    pub fn set(&mut self, new: &StackT, sp: u64) -> Result<(), Errno> {
        if self.on_stack(sp) {
            return Err(Errno::EPERM);
        }
        let mode = new.flags & !ss::SS_AUTODISARM;
        if mode != ss::SS_DISABLE && mode != ss::SS_ONSTACK && mode != 0 {
            return Err(Errno::EINVAL);
        }
        let (stack_sp, size) = if mode == ss::SS_DISABLE {
            (0, 0)
        } else if new.size < ss::MINSIGSTKSZ {
            return Err(Errno::ENOMEM);
        } else {
            (new.sp, new.size)
        };
        *self = AltStack {
            sp: stack_sp,
            size,
            flags: new.flags,
        };
        Ok(())
    }

    /// Called when a handler starts on the stack: `SS_AUTODISARM` disables it.
    pub fn disarm_if_requested(&mut self) {
        if self.flags & ss::SS_AUTODISARM != 0 {
            *self = AltStack::default();
        }
    }
}

/// The signal actions, shared by the threads of a process (`CLONE_SIGHAND`).
pub type SigActions = alloc::sync::Arc<spin::Mutex<[SigAction; NSIG as usize]>>;

/// Signals pending for a whole thread group (Linux's `signal->shared_pending`): sent
/// to the process (`kill`, `sigqueue`, timers, SIGCHLD), taken by whichever thread does
/// not block them first.
type SharedPending = alloc::sync::Arc<spin::Mutex<SigQueue>>;

fn new_shared(counter: &'static AtomicUsize) -> SharedPending {
    alloc::sync::Arc::new(spin::Mutex::new(SigQueue::new(counter)))
}

/// Signal dispositions (shared), and a thread's mask, pending signals and alternate
/// stack.
#[derive(Debug)]
pub struct SignalState {
    actions: SigActions,
    /// The thread group's pending signals (shared by the threads, kept across execve).
    shared: SharedPending,
    /// The blocked mask (never holds SIGKILL or SIGSTOP).
    blocked: SigSet,
    /// The thread's own pending signals.
    own: SigQueue,
    /// The alternate signal stack.
    pub altstack: AltStack,
}

impl Default for SignalState {
    fn default() -> Self {
        Self::new()
    }
}

impl SignalState {
    /// Every action default, nothing blocked or pending, no alternate stack.
    pub fn new() -> Self {
        Self::counting_in(&QUEUED)
    }

    /// [`Self::new`], its pending instances counted in `counter` (tests).
    pub fn counting_in(counter: &'static AtomicUsize) -> Self {
        SignalState {
            actions: alloc::sync::Arc::new(spin::Mutex::new([SigAction::default(); NSIG as usize])),
            shared: new_shared(counter),
            blocked: SigSet::EMPTY,
            own: SigQueue::new(counter),
            altstack: AltStack::default(),
        }
    }

    /// The state of a new thread of the same process: the same actions (shared) and
    /// mask, nothing pending, no alternate stack (as Linux's `clone` with `CLONE_VM`).
    pub fn for_new_thread(&self) -> Self {
        SignalState {
            actions: self.actions.clone(),
            shared: self.shared.clone(),
            blocked: self.blocked,
            own: self.own.empty_like(),
            altstack: AltStack::default(),
        }
    }

    /// The state of a forked process: a copy of the actions, the same mask, nothing
    /// pending; the alternate stack kept, unless the child shares the address space
    /// (`CLONE_VM`: it would run on the parent's), as Linux's `copy_process`.
    pub fn for_fork(&self, shares_vm: bool) -> Self {
        let actions = *self.actions.lock();
        SignalState {
            actions: alloc::sync::Arc::new(spin::Mutex::new(actions)),
            shared: new_shared(self.own.counter()),
            blocked: self.blocked,
            own: self.own.empty_like(),
            altstack: if shares_vm {
                AltStack::default()
            } else {
                self.altstack
            },
        }
    }

    /// At execve: handled signals go back to their default action (ignored ones stay
    /// ignored), the actions stop being shared with any other process, and the
    /// alternate stack is gone; the mask and pending signals stay.
    pub fn reset_for_exec(&mut self) {
        let mut actions = *self.actions.lock();
        for a in actions.iter_mut() {
            if a.handler != SIG_IGN && a.handler != SIG_DFL {
                *a = SigAction::default();
            } else {
                a.flags = 0;
                a.mask = 0;
                a.restorer = 0;
            }
        }
        self.actions = alloc::sync::Arc::new(spin::Mutex::new(actions));
        self.altstack = AltStack::default();
    }

    /// The action of `signo` (1..=64).
    pub fn action(&self, signo: u8) -> SigAction {
        self.actions.lock()[signo as usize - 1]
    }

    /// Installs an action (already validated: not for SIGKILL/SIGSTOP) and returns the
    /// old one. Pending instances of a signal that is now ignored are discarded.
    pub fn set_action(&mut self, signo: u8, action: SigAction) -> SigAction {
        let old = self.action(signo);
        self.actions.lock()[signo as usize - 1] = action.sanitized();
        if self.is_ignored(signo) {
            self.discard(SigSet::of(signo));
        }
        old
    }

    /// True if delivering `signo` would do nothing: `SIG_IGN`, or the default action
    /// ignores it.
    pub fn is_ignored(&self, signo: u8) -> bool {
        match self.action(signo).handler {
            SIG_IGN => true,
            SIG_DFL => matches!(
                default_action(signo),
                DefaultAction::Ignore | DefaultAction::Continue
            ),
            _ => false,
        }
    }

    /// The signals whose action is `SIG_IGN`, and those with a handler (`SigIgn` and
    /// `SigCgt` in /proc).
    pub fn ignored_and_caught(&self) -> (u64, u64) {
        let actions = self.actions.lock();
        let (mut ignored, mut caught) = (0u64, 0u64);
        for (i, a) in actions.iter().enumerate() {
            match a.handler {
                SIG_IGN => ignored |= 1 << i,
                SIG_DFL => {}
                _ => caught |= 1 << i,
            }
        }
        (ignored, caught)
    }

    /// The blocked mask.
    pub fn blocked(&self) -> SigSet {
        self.blocked
    }

    /// Replaces the blocked mask (SIGKILL and SIGSTOP are dropped from it).
    pub fn set_blocked(&mut self, mask: SigSet) {
        self.blocked = mask.blockable();
    }

    /// Signals pending: the thread's own and the thread group's.
    pub fn pending(&self) -> SigSet {
        self.own.set().union(self.shared.lock().set())
    }

    /// Signals pending for this thread only (`SigPnd` in /proc).
    pub fn thread_pending(&self) -> SigSet {
        self.own.set()
    }

    /// Signals pending for the thread group (`ShdPnd` in /proc).
    pub fn shared_pending(&self) -> SigSet {
        self.shared.lock().set()
    }

    /// Pending signal instances of the user, all processes together (`SigQ` in /proc).
    pub fn queued_total(&self) -> usize {
        self.own.counted_total()
    }

    /// Generates a signal for the whole process (any thread of it may take it): as
    /// [`send`](Self::send), on the set the threads share. False if it was discarded
    /// (ignored) or coalesced with one already pending; `EAGAIN` past `limit` (see
    /// [`SigQueue::push`]).
    pub fn send_shared(&mut self, info: SigInfo, limit: u64) -> Result<bool, Errno> {
        let signo = info.signo;
        if !self.blocked.contains(signo) && self.is_ignored(signo) {
            return Ok(false);
        }
        self.shared.lock().push(info, limit)
    }

    /// True if this thread would take `signo` now (Linux's `wants_signal`, less the
    /// running/exiting checks the caller makes).
    pub fn wants(&self, signo: u8) -> bool {
        !self.blocked.contains(signo)
    }

    /// Generates a signal for this thread. An ignored, unblocked signal is discarded (a
    /// blocked one is kept: its action may change before it is unblocked); a standard
    /// signal already pending is not queued twice, every real-time one is (up to
    /// `limit`, the target's `RLIMIT_SIGPENDING`: see [`SigQueue::push`]).
    pub fn send(&mut self, info: SigInfo, limit: u64) -> Result<bool, Errno> {
        let signo = info.signo;
        if !self.blocked.contains(signo) && self.is_ignored(signo) {
            return Ok(false);
        }
        self.own.push(info, limit)
    }

    /// Raises a signal the process cannot refuse (a fault): if it is blocked or
    /// ignored its action becomes the default one and it is unblocked, so that it is
    /// delivered now (Linux's `force_sig_info`).
    pub fn force(&mut self, info: SigInfo) {
        let signo = info.signo;
        let blocked = self.blocked.contains(signo);
        if blocked || self.action(signo).handler == SIG_IGN {
            self.actions.lock()[signo as usize - 1].handler = SIG_DFL;
        }
        if blocked {
            self.blocked.remove(signo);
        }
        // A fault replaces whatever instance was pending: its info is the one to report.
        self.own.force(info);
    }

    /// Resets `signo`'s action to the default (`SA_RESETHAND`, failed deliveries).
    pub fn reset_to_default(&mut self, signo: u8) {
        self.actions.lock()[signo as usize - 1].handler = SIG_DFL;
    }

    fn deliverable(&self) -> SigSet {
        self.pending().minus(self.blocked)
    }

    /// True if a pending signal is not blocked (a sleep must end to deliver it).
    pub fn has_deliverable(&self) -> bool {
        !self.deliverable().is_empty()
    }

    /// Removes and returns the next signal to deliver: faults first, then the
    /// lowest-numbered one.
    pub fn take_next(&mut self) -> Option<SigInfo> {
        // The thread's own first (Linux's `dequeue_signal`), then the group's.
        let own = self.own.set().minus(self.blocked);
        if let Some(signo) = own
            .intersect(SigSet::SYNCHRONOUS)
            .lowest()
            .or_else(|| own.lowest())
        {
            return Some(self.own.take(signo));
        }
        let mut shared = self.shared.lock();
        let ready = shared.set().minus(self.blocked);
        let signo = ready
            .intersect(SigSet::SYNCHRONOUS)
            .lowest()
            .or_else(|| ready.lowest())?;
        Some(shared.take(signo))
    }

    /// Removes and returns the lowest pending signal of `set`, blocked or not
    /// (`rt_sigtimedwait`).
    pub fn take_pending_in(&mut self, set: SigSet) -> Option<SigInfo> {
        if let Some(signo) = self.own.set().intersect(set).lowest() {
            return Some(self.own.take(signo));
        }
        let mut shared = self.shared.lock();
        let signo = shared.set().intersect(set).lowest()?;
        Some(shared.take(signo))
    }

    /// Discards pending instances of the signals of `set` from both sets (SIGCONT
    /// discards stop signals and a stop signal discards SIGCONT, as Linux's
    /// `prepare_signal`).
    pub fn discard(&mut self, set: SigSet) {
        self.own.discard(set);
        self.shared.lock().discard(set);
    }

    /// True if `signo` may get an action (`rt_sigaction` refuses SIGKILL and SIGSTOP).
    pub fn can_catch(signo: u8) -> bool {
        signo != sig::SIGKILL && signo != sig::SIGSTOP
    }
}

#[cfg(test)]
mod tests {
    use super::super::{sa, si_code};
    use super::*;

    fn handler() -> SigAction {
        SigAction {
            handler: 0x40_1000,
            flags: sa::SA_SIGINFO | sa::SA_RESTORER,
            restorer: 0x40_2000,
            mask: 0,
        }
    }

    #[test]
    fn ignored_signals_are_dropped_unless_blocked() {
        let mut s = SignalState::new();
        s.send(SigInfo::kernel(sig::SIGCHLD), u64::MAX).unwrap();
        assert!(s.pending().is_empty(), "default-ignored");
        s.set_action(
            sig::SIGUSR1,
            SigAction {
                handler: SIG_IGN,
                ..Default::default()
            },
        );
        s.send(SigInfo::kernel(sig::SIGUSR1), u64::MAX).unwrap();
        assert!(s.pending().is_empty());
        s.set_blocked(SigSet::of(sig::SIGUSR1));
        s.send(SigInfo::kernel(sig::SIGUSR1), u64::MAX).unwrap();
        assert!(
            s.pending().contains(sig::SIGUSR1),
            "blocked signals stay pending"
        );
        assert!(!s.has_deliverable());
        s.set_action(sig::SIGUSR1, SigAction::default());
        assert!(
            s.pending().contains(sig::SIGUSR1),
            "default action terminates"
        );
        s.set_action(
            sig::SIGUSR1,
            SigAction {
                handler: SIG_IGN,
                ..Default::default()
            },
        );
        assert!(s.pending().is_empty(), "ignoring discards the pending one");
    }

    #[test]
    fn shared_pending_is_seen_and_taken_by_any_thread() {
        let mut a = SignalState::new();
        let h = handler();
        a.set_action(sig::SIGUSR1, h);
        a.set_blocked(SigSet::of(sig::SIGUSR1));
        let mut b = a.for_new_thread();
        let mut forked = a.for_fork(false);
        assert!(a
            .send_shared(SigInfo::kernel(sig::SIGUSR1), u64::MAX)
            .unwrap());
        assert!(
            !b.send_shared(SigInfo::kernel(sig::SIGUSR1), u64::MAX)
                .unwrap(),
            "a standard signal coalesces"
        );
        assert!(
            b.pending().contains(sig::SIGUSR1),
            "pending for every thread"
        );
        assert!(b.thread_pending().is_empty() && b.shared_pending().contains(sig::SIGUSR1));
        assert!(
            forked.pending().is_empty(),
            "a forked process has its own set"
        );
        assert_eq!(b.take_next(), None, "blocked in both threads");
        b.set_blocked(SigSet::EMPTY);
        assert!(b.wants(sig::SIGUSR1) && !a.wants(sig::SIGUSR1));
        assert_eq!(b.take_next().map(|i| i.signo), Some(sig::SIGUSR1));
        assert!(a.pending().is_empty(), "taken once for the group");
        // The thread's own pending signals come first.
        b.send(SigInfo::kernel(sig::SIGUSR2), u64::MAX).unwrap();
        a.send_shared(SigInfo::kernel(sig::SIGHUP), u64::MAX)
            .unwrap();
        assert_eq!(b.take_next().map(|i| i.signo), Some(sig::SIGUSR2));
        assert_eq!(
            b.take_pending_in(SigSet::of(sig::SIGHUP)).map(|i| i.signo),
            Some(sig::SIGHUP)
        );
        a.send_shared(SigInfo::kernel(sig::SIGUSR1), u64::MAX)
            .unwrap();
        a.discard(SigSet::of(sig::SIGUSR1));
        assert!(b.pending().is_empty());
        forked
            .send_shared(SigInfo::kernel(sig::SIGCHLD), u64::MAX)
            .unwrap();
        assert!(forked.pending().is_empty(), "ignored by default");
    }

    #[test]
    fn delivery_order_and_unblocking() {
        let mut s = SignalState::new();
        s.set_blocked(SigSet(u64::MAX));
        assert!(!s.blocked().contains(sig::SIGKILL));
        s.send(
            SigInfo::from_process(sig::SIGUSR2, si_code::SI_TKILL, 1, 0),
            u64::MAX,
        )
        .unwrap();
        s.send(
            SigInfo::from_process(sig::SIGHUP, si_code::SI_USER, 1, 0),
            u64::MAX,
        )
        .unwrap();
        s.send(SigInfo::kernel(sig::SIGSEGV), u64::MAX).unwrap();
        assert_eq!(s.take_next(), None);
        s.set_blocked(SigSet::EMPTY);
        assert_eq!(
            s.take_next().map(|i| i.signo),
            Some(sig::SIGSEGV),
            "faults first"
        );
        let hup = s.take_next();
        assert_eq!(
            hup.map(|i| (i.signo, i.code)),
            Some((sig::SIGHUP, si_code::SI_USER))
        );
        assert_eq!(s.take_next().map(|i| i.signo), Some(sig::SIGUSR2));
        assert_eq!(s.take_next(), None);
    }

    #[test]
    fn forcing_a_blocked_fault_resets_it_to_the_default() {
        let mut s = SignalState::new();
        s.set_action(sig::SIGSEGV, handler());
        s.set_blocked(SigSet::of(sig::SIGSEGV));
        s.force(SigInfo::kernel(sig::SIGSEGV));
        assert_eq!(s.action(sig::SIGSEGV).handler, SIG_DFL);
        assert!(!s.blocked().contains(sig::SIGSEGV));
        assert_eq!(s.take_next().map(|i| i.signo), Some(sig::SIGSEGV));
        // Unblocked and handled: the handler stays.
        s.set_action(sig::SIGILL, handler());
        s.force(SigInfo::kernel(sig::SIGILL));
        assert_eq!(s.action(sig::SIGILL).handler, handler().handler);
        // Ignored faults cannot be ignored.
        s.set_action(
            sig::SIGFPE,
            SigAction {
                handler: SIG_IGN,
                ..Default::default()
            },
        );
        s.force(SigInfo::kernel(sig::SIGFPE));
        assert_eq!(s.action(sig::SIGFPE).handler, SIG_DFL);
    }

    #[test]
    fn altstack_rules_match_sigaltstack() {
        let mut a = AltStack::default();
        assert_eq!(a.report(0x1000).flags, ss::SS_DISABLE);
        let small = StackT {
            sp: 0x10000,
            flags: 0,
            pad: 0,
            size: 1024,
        };
        assert_eq!(a.set(&small, 0x9000), Err(Errno::ENOMEM));
        let bad = StackT {
            flags: 4,
            size: 8192,
            ..small
        };
        assert_eq!(a.set(&bad, 0x9000), Err(Errno::EINVAL));
        let good = StackT {
            size: 8192,
            ..small
        };
        assert_eq!(a.set(&good, 0x9000), Ok(()));
        assert_eq!(a.report(0x9000), good);
        assert_eq!(a.report(0x11000).flags, ss::SS_ONSTACK);
        assert!(a.contains(0x12000) && !a.contains(0x10000) && !a.contains(0x12001));
        // Cannot change it while running on it.
        assert_eq!(a.set(&good, 0x11000), Err(Errno::EPERM));
        let disable = StackT {
            sp: 0,
            flags: ss::SS_DISABLE,
            pad: 0,
            size: 0,
        };
        assert_eq!(a.set(&disable, 0x9000), Ok(()));
        assert_eq!(a.report(0x9000).flags, ss::SS_DISABLE);
        assert_eq!(a.report(0x9000).size, 0);
        // SS_AUTODISARM: never "on" the stack, disarmed when a handler starts.
        let auto = StackT {
            flags: ss::SS_AUTODISARM,
            ..good
        };
        assert_eq!(a.set(&auto, 0x9000), Ok(()));
        assert!(!a.on_stack(0x11000));
        assert_eq!(a.report(0x11000).flags, ss::SS_AUTODISARM);
        a.disarm_if_requested();
        assert_eq!(a, AltStack::default());
    }
}

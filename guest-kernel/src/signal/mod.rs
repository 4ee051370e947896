//! Signals, with Linux x86-64 semantics: dispositions (`rt_sigaction`), the blocked
//! mask, pending signals, the alternate stack, and delivery to handlers through a
//! Linux-compatible `rt_sigframe`.
//!
//! Signals arise from CPU faults in user mode (delivered at once, see
//! [`deliver_fault`]) and from `kill`/`tkill`/`tgkill` a process sends itself (queued,
//! then delivered when the system call returns, see [`deliver_pending`]). A signal
//! whose action is the default one ends the process with the shell status 128+N and a
//! report line; a handler runs on a frame built by [`frame`], and `rt_sigreturn`
//! restores the interrupted context from it.
//!
//! Deviations, all invisible to single-process programs: real-time signals are not
//! queued more than once each; a stop signal (SIGSTOP, SIGTSTP, ...) is reported and
//! the process continues at once, as if sent SIGCONT, since nothing else could continue
//! it; pid 1 gets no special protection, so `abort()` in the init program ends it with
//! SIGABRT as in any other process.

mod deliver;
pub mod frame;
pub mod queue;
mod state;

pub use deliver::{deliver_fault, deliver_memory_fault, deliver_pending, sigreturn, FaultOutcome};
pub use state::{AltStack, SignalState, StackT};

use crate::mm::uaccess::Pod;

/// Highest signal number (`_NSIG` - 1 for the kernel: signals are 1..=64).
pub const NSIG: u8 = 64;
/// The size of the kernel's `sigset_t`, which every `rt_sig*` call must pass.
pub const SIGSET_SIZE: u64 = 8;

/// Linux signal numbers.
#[allow(missing_docs)]
pub mod sig {
    pub const SIGHUP: u8 = 1;
    pub const SIGINT: u8 = 2;
    pub const SIGQUIT: u8 = 3;
    pub const SIGILL: u8 = 4;
    pub const SIGTRAP: u8 = 5;
    pub const SIGABRT: u8 = 6;
    pub const SIGBUS: u8 = 7;
    pub const SIGFPE: u8 = 8;
    pub const SIGKILL: u8 = 9;
    pub const SIGUSR1: u8 = 10;
    pub const SIGSEGV: u8 = 11;
    pub const SIGUSR2: u8 = 12;
    pub const SIGPIPE: u8 = 13;
    pub const SIGALRM: u8 = 14;
    pub const SIGTERM: u8 = 15;
    pub const SIGSTKFLT: u8 = 16;
    pub const SIGCHLD: u8 = 17;
    pub const SIGCONT: u8 = 18;
    pub const SIGSTOP: u8 = 19;
    pub const SIGTSTP: u8 = 20;
    pub const SIGTTIN: u8 = 21;
    pub const SIGTTOU: u8 = 22;
    pub const SIGURG: u8 = 23;
    pub const SIGXCPU: u8 = 24;
    pub const SIGXFSZ: u8 = 25;
    pub const SIGVTALRM: u8 = 26;
    pub const SIGPROF: u8 = 27;
    pub const SIGWINCH: u8 = 28;
    pub const SIGIO: u8 = 29;
    pub const SIGPWR: u8 = 30;
    pub const SIGSYS: u8 = 31;
    /// First real-time signal (the kernel's; libcs reserve the first few).
    pub const SIGRTMIN: u8 = 32;
}

/// The names of signals 1..=31, as strace and shells print them.
const NAMES: [&str; 32] = [
    "0",
    "SIGHUP",
    "SIGINT",
    "SIGQUIT",
    "SIGILL",
    "SIGTRAP",
    "SIGABRT",
    "SIGBUS",
    "SIGFPE",
    "SIGKILL",
    "SIGUSR1",
    "SIGSEGV",
    "SIGUSR2",
    "SIGPIPE",
    "SIGALRM",
    "SIGTERM",
    "SIGSTKFLT",
    "SIGCHLD",
    "SIGCONT",
    "SIGSTOP",
    "SIGTSTP",
    "SIGTTIN",
    "SIGTTOU",
    "SIGURG",
    "SIGXCPU",
    "SIGXFSZ",
    "SIGVTALRM",
    "SIGPROF",
    "SIGWINCH",
    "SIGIO",
    "SIGPWR",
    "SIGSYS",
];

/// The name of signal `sig` (`SIGRT` for real-time ones).
pub fn name(sig: u8) -> &'static str {
    NAMES.get(sig as usize).copied().unwrap_or("SIGRT")
}

/// True for a valid signal number (1..=64).
pub fn is_valid(sig: u64) -> bool {
    (1..=NSIG as u64).contains(&sig)
}

/// A set of signals: bit N-1 stands for signal N, as in the kernel's `sigset_t`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SigSet(pub u64);

impl SigSet {
    /// No signal.
    pub const EMPTY: SigSet = SigSet(0);
    /// SIGKILL and SIGSTOP, which can be neither blocked, caught nor ignored.
    pub const UNBLOCKABLE: SigSet = SigSet((1 << (sig::SIGKILL - 1)) | (1 << (sig::SIGSTOP - 1)));
    /// Signals raised synchronously by faults; delivered before the others.
    pub const SYNCHRONOUS: SigSet = SigSet(
        (1 << (sig::SIGSEGV - 1))
            | (1 << (sig::SIGBUS - 1))
            | (1 << (sig::SIGILL - 1))
            | (1 << (sig::SIGTRAP - 1))
            | (1 << (sig::SIGFPE - 1))
            | (1 << (sig::SIGSYS - 1)),
    );

    /// The set of one signal.
    pub fn of(sig: u8) -> SigSet {
        SigSet(1u64 << (sig - 1))
    }

    /// True if `sig` is in the set.
    pub fn contains(self, sig: u8) -> bool {
        self.0 & Self::of(sig).0 != 0
    }

    /// Adds `sig`.
    pub fn insert(&mut self, sig: u8) {
        self.0 |= Self::of(sig).0;
    }

    /// Removes `sig`.
    pub fn remove(&mut self, sig: u8) {
        self.0 &= !Self::of(sig).0;
    }

    /// Signals in either set.
    pub fn union(self, other: SigSet) -> SigSet {
        SigSet(self.0 | other.0)
    }

    /// Signals in `self` but not in `other`.
    pub fn minus(self, other: SigSet) -> SigSet {
        SigSet(self.0 & !other.0)
    }

    /// Signals in both sets.
    pub fn intersect(self, other: SigSet) -> SigSet {
        SigSet(self.0 & other.0)
    }

    /// The set as a mask may hold it: without SIGKILL and SIGSTOP.
    pub fn blockable(self) -> SigSet {
        self.minus(Self::UNBLOCKABLE)
    }

    /// The lowest-numbered signal in the set.
    pub fn lowest(self) -> Option<u8> {
        (self.0 != 0).then(|| self.0.trailing_zeros() as u8 + 1)
    }

    /// True if empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
}

/// `rt_sigprocmask` operations.
pub mod how {
    /// Add to the mask.
    pub const SIG_BLOCK: u64 = 0;
    /// Remove from the mask.
    pub const SIG_UNBLOCK: u64 = 1;
    /// Replace the mask.
    pub const SIG_SETMASK: u64 = 2;
}

/// The mask `how` makes of `old` and `set`; `None` (EINVAL) for an unknown `how`.
/// SIGKILL and SIGSTOP are never blocked.
pub fn apply_mask(old: SigSet, how: u64, set: SigSet) -> Option<SigSet> {
    let new = match how {
        how::SIG_BLOCK => old.union(set),
        how::SIG_UNBLOCK => old.minus(set),
        how::SIG_SETMASK => set,
        _ => return None,
    };
    Some(new.blockable())
}

/// `sa_flags` bits.
pub mod sa {
    /// Do not notify on child stop.
    pub const SA_NOCLDSTOP: u64 = 0x1;
    /// Do not create zombies.
    pub const SA_NOCLDWAIT: u64 = 0x2;
    /// The handler takes (sig, siginfo, ucontext).
    pub const SA_SIGINFO: u64 = 0x4;
    /// Flag-support probe bit (never supported, per Linux).
    pub const SA_UNSUPPORTED: u64 = 0x400;
    /// Keep tag bits in si_addr (arm64 only; accepted and ignored).
    pub const SA_EXPOSE_TAGBITS: u64 = 0x800;
    /// `sa_restorer` is valid (required on x86-64).
    pub const SA_RESTORER: u64 = 0x0400_0000;
    /// Run the handler on the alternate stack.
    pub const SA_ONSTACK: u64 = 0x0800_0000;
    /// Restart interrupted system calls.
    pub const SA_RESTART: u64 = 0x1000_0000;
    /// Do not block the signal while its handler runs.
    pub const SA_NODEFER: u64 = 0x4000_0000;
    /// Reset the action to the default when the handler is entered.
    pub const SA_RESETHAND: u64 = 0x8000_0000;
    /// The flags Linux keeps; others are cleared so programs can probe for support.
    pub const KNOWN: u64 = SA_NOCLDSTOP
        | SA_NOCLDWAIT
        | SA_SIGINFO
        | SA_EXPOSE_TAGBITS
        | SA_RESTORER
        | SA_ONSTACK
        | SA_RESTART
        | SA_NODEFER
        | SA_RESETHAND;
}

/// The default action.
pub const SIG_DFL: u64 = 0;
/// Ignore the signal.
pub const SIG_IGN: u64 = 1;

/// The kernel's `struct sigaction` on x86-64 (what `rt_sigaction` reads and writes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SigAction {
    /// `SIG_DFL`, `SIG_IGN` or the handler's address.
    pub handler: u64,
    /// `SA_*` flags.
    pub flags: u64,
    /// Where the handler returns to (it calls `rt_sigreturn`).
    pub restorer: u64,
    /// Signals blocked while the handler runs.
    pub mask: u64,
}

// SAFETY: four u64 fields, no padding, every bit pattern is a value.
unsafe impl Pod for SigAction {}

const _: () = assert!(core::mem::size_of::<SigAction>() == 32);

impl SigAction {
    /// The action as `rt_sigaction` stores it: unknown flags cleared, SIGKILL and
    /// SIGSTOP out of the mask.
    pub fn sanitized(self) -> SigAction {
        SigAction {
            flags: self.flags & sa::KNOWN,
            mask: SigSet(self.mask).blockable().0,
            ..self
        }
    }
}

/// What the default action of a signal does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DefaultAction {
    /// End the process.
    Terminate,
    /// End the process "with a core dump" (astra writes none; the status is the same).
    CoreDump,
    /// Nothing.
    Ignore,
    /// Stop the process.
    Stop,
    /// Continue a stopped process (otherwise nothing).
    Continue,
}

/// The default action of `sig` (signal(7)).
pub fn default_action(signo: u8) -> DefaultAction {
    use sig::*;
    match signo {
        SIGQUIT | SIGILL | SIGTRAP | SIGABRT | SIGBUS | SIGFPE | SIGSEGV | SIGXCPU | SIGXFSZ
        | SIGSYS => DefaultAction::CoreDump,
        SIGCHLD | SIGURG | SIGWINCH => DefaultAction::Ignore,
        SIGCONT => DefaultAction::Continue,
        SIGSTOP | SIGTSTP | SIGTTIN | SIGTTOU => DefaultAction::Stop,
        _ => DefaultAction::Terminate,
    }
}

/// `si_code` values.
pub mod si_code {
    /// Sent by `kill`.
    pub const SI_USER: i32 = 0;
    /// Sent by the kernel.
    pub const SI_KERNEL: i32 = 0x80;
    /// Sent by `sigqueue`.
    pub const SI_QUEUE: i32 = -1;
    /// Sent by `tkill`/`tgkill`.
    pub const SI_TKILL: i32 = -6;
    /// SIGCHLD: the child exited.
    pub const CLD_EXITED: i32 = 1;
    /// SIGCHLD: the child was killed by a signal.
    pub const CLD_KILLED: i32 = 2;
    /// SIGCHLD: the child stopped.
    pub const CLD_STOPPED: i32 = 5;
    /// SIGCHLD: the child continued.
    pub const CLD_CONTINUED: i32 = 6;
    /// SIGSEGV: address not mapped.
    pub const SEGV_MAPERR: i32 = 1;
    /// SIGSEGV: access not permitted by the mapping.
    pub const SEGV_ACCERR: i32 = 2;
    /// SIGBUS: misaligned address.
    pub const BUS_ADRALN: i32 = 1;
    /// Nonexistent physical address (a mapped file page past its end).
    pub const BUS_ADRERR: i32 = 2;
    /// SIGILL: illegal opcode.
    pub const ILL_ILLOPN: i32 = 2;
    /// SIGFPE: integer divide by zero.
    pub const FPE_INTDIV: i32 = 1;
    /// SIGFPE: floating-point divide by zero.
    pub const FPE_FLTDIV: i32 = 3;
    /// SIGFPE: floating-point overflow.
    pub const FPE_FLTOVF: i32 = 4;
    /// SIGFPE: floating-point underflow.
    pub const FPE_FLTUND: i32 = 5;
    /// SIGFPE: floating-point inexact result.
    pub const FPE_FLTRES: i32 = 6;
    /// SIGFPE: invalid floating-point operation.
    pub const FPE_FLTINV: i32 = 7;
    /// SIGTRAP: process trace trap.
    pub const TRAP_TRACE: i32 = 2;
}

/// Why a signal was raised: what its `siginfo_t` and report line say.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SigInfo {
    /// The signal.
    pub signo: u8,
    /// `si_code`.
    pub code: i32,
    /// Fault address (`si_addr`) for faults.
    pub addr: u64,
    /// Sender's pid for `kill`-like codes.
    pub pid: u32,
    /// Sender's uid.
    pub uid: u32,
    /// For faults: the CPU exception vector and error code (`trapno`, `err` in the
    /// signal context).
    pub fault: Option<(u64, u64)>,
    /// SIGCHLD (`CLD_*` codes): the exit code, or the signal that killed, stopped or
    /// continued the child (`si_status`).
    pub status: i32,
    /// SIGCHLD: the child's user and system CPU time in clock ticks (`si_utime`,
    /// `si_stime`).
    pub times: (u64, u64),
    /// `si_value` (`sigqueue`, `rt_sigqueueinfo`).
    pub value: u64,
}

impl SigInfo {
    /// A signal the process sent itself with `kill` (`SI_USER`) or `tkill`/`tgkill`
    /// (`SI_TKILL`).
    pub fn from_process(signo: u8, code: i32, pid: u32, uid: u32) -> Self {
        SigInfo {
            signo,
            code,
            pid,
            uid,
            ..Default::default()
        }
    }

    /// SIGCHLD (or another exit signal) about child `pid`: `code` a `CLD_*` code,
    /// `status` the exit code or signal, `cpu_ns` the child's CPU time (all counted as
    /// user time, as /proc does here).
    pub fn child(signo: u8, code: i32, pid: u32, status: i32, cpu_ns: u64) -> Self {
        SigInfo {
            signo,
            code,
            pid,
            status,
            times: (cpu_ns / (1_000_000_000 / crate::loader::image::USER_HZ), 0),
            ..Default::default()
        }
    }

    /// A signal the kernel raised without a fault address.
    pub fn kernel(signo: u8) -> Self {
        SigInfo {
            signo,
            code: si_code::SI_KERNEL,
            ..Default::default()
        }
    }
}

/// Floating-point state a #MF or #XM needs to name its cause.
#[derive(Clone, Copy, Debug, Default)]
pub struct FpStatus {
    /// x87 control word.
    pub fcw: u16,
    /// x87 status word.
    pub fsw: u16,
    /// MXCSR.
    pub mxcsr: u32,
}

/// Linux's `fpu__exception_code`: the `si_code` of an unmasked floating-point exception.
fn fpe_code(pending: u32) -> i32 {
    use si_code::*;
    if pending & 0x001 != 0 {
        FPE_FLTINV
    } else if pending & 0x004 != 0 {
        FPE_FLTDIV
    } else if pending & 0x008 != 0 {
        FPE_FLTOVF
    } else if pending & 0x012 != 0 {
        FPE_FLTUND
    } else if pending & 0x020 != 0 {
        FPE_FLTRES
    } else {
        0
    }
}

/// The signal and `siginfo` Linux raises for CPU exception `vector` in user mode, with
/// `error_code`, the page-fault address `cr2` and the faulting `rip`.
pub fn fault_info(vector: u64, error_code: u64, cr2: u64, rip: u64, fp: FpStatus) -> SigInfo {
    use si_code::*;
    use sig::*;
    let (signo, code, addr) = match vector {
        0 => (SIGFPE, FPE_INTDIV, rip),
        1 => (SIGTRAP, TRAP_TRACE, rip),
        3 => (SIGTRAP, SI_KERNEL, 0),
        6 => (SIGILL, ILL_ILLOPN, rip),
        11 | 12 => (SIGBUS, SI_KERNEL, 0),
        14 => {
            let present = error_code & 1 != 0;
            (
                SIGSEGV,
                if present { SEGV_ACCERR } else { SEGV_MAPERR },
                cr2,
            )
        }
        16 => (SIGFPE, fpe_code((fp.fsw & !fp.fcw) as u32), rip),
        17 => (SIGBUS, BUS_ADRALN, 0),
        19 => (SIGFPE, fpe_code(!(fp.mxcsr >> 7) & fp.mxcsr), rip),
        _ => (SIGSEGV, SI_KERNEL, 0),
    };
    SigInfo {
        signo,
        code,
        addr,
        fault: Some((vector, error_code)),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sigset_operations() {
        let mut s = SigSet::EMPTY;
        s.insert(sig::SIGSEGV);
        s.insert(64);
        assert!(s.contains(11) && s.contains(64) && !s.contains(1));
        assert_eq!(s.0, (1 << 10) | (1 << 63));
        assert_eq!(s.lowest(), Some(11));
        s.remove(11);
        assert_eq!(s.lowest(), Some(64));
        assert_eq!(SigSet(u64::MAX).blockable().contains(sig::SIGKILL), false);
        assert_eq!(SigSet(u64::MAX).blockable().contains(sig::SIGSTOP), false);
        assert_eq!(SigSet::EMPTY.lowest(), None);
    }

    #[test]
    fn masks_follow_how() {
        let old = SigSet::of(sig::SIGUSR1);
        let set = SigSet::of(sig::SIGUSR2).union(SigSet::of(sig::SIGKILL));
        assert_eq!(
            apply_mask(old, how::SIG_BLOCK, set),
            Some(SigSet::of(10).union(SigSet::of(12)))
        );
        assert_eq!(
            apply_mask(old.union(set), how::SIG_UNBLOCK, SigSet::of(10)),
            Some(SigSet::of(12))
        );
        assert_eq!(apply_mask(old, how::SIG_SETMASK, set), Some(SigSet::of(12)));
        assert_eq!(apply_mask(old, 3, set), None);
    }

    #[test]
    fn default_actions() {
        assert_eq!(default_action(sig::SIGABRT), DefaultAction::CoreDump);
        assert_eq!(default_action(sig::SIGTERM), DefaultAction::Terminate);
        assert_eq!(default_action(sig::SIGCHLD), DefaultAction::Ignore);
        assert_eq!(default_action(sig::SIGTSTP), DefaultAction::Stop);
        assert_eq!(default_action(40), DefaultAction::Terminate);
        assert_eq!(name(sig::SIGABRT), "SIGABRT");
        assert_eq!(name(40), "SIGRT");
    }

    #[test]
    fn sigaction_sanitizing_clears_unknown_flags_and_unblockable_signals() {
        let a = SigAction {
            handler: 0x1000,
            flags: sa::SA_SIGINFO | sa::SA_UNSUPPORTED | 0x20,
            restorer: 0x2000,
            mask: u64::MAX,
        }
        .sanitized();
        assert_eq!(a.flags, sa::SA_SIGINFO);
        assert_eq!(SigSet(a.mask), SigSet(u64::MAX).blockable());
    }

    #[test]
    fn faults_map_like_linux() {
        let fp = FpStatus::default();
        let pf = fault_info(14, 0b110, 0xdead, 0x1000, fp);
        assert_eq!(
            (pf.signo, pf.code, pf.addr),
            (11, si_code::SEGV_MAPERR, 0xdead)
        );
        let pf = fault_info(14, 0b111, 0xbeef, 0x1000, fp);
        assert_eq!(pf.code, si_code::SEGV_ACCERR);
        let ud = fault_info(6, 0, 0, 0x1234, fp);
        assert_eq!(
            (ud.signo, ud.code, ud.addr),
            (4, si_code::ILL_ILLOPN, 0x1234)
        );
        let de = fault_info(0, 0, 0, 0x1234, fp);
        assert_eq!((de.signo, de.code), (8, si_code::FPE_INTDIV));
        let gp = fault_info(13, 0, 0, 0x1234, fp);
        assert_eq!((gp.signo, gp.code, gp.addr), (11, si_code::SI_KERNEL, 0));
        let ac = fault_info(17, 0, 0, 0x1234, fp);
        assert_eq!((ac.signo, ac.code), (7, si_code::BUS_ADRALN));
        // SSE divide by zero: ZE flagged (bit 2) and unmasked (ZM, bit 9, clear).
        let xm = fault_info(
            19,
            0,
            0,
            0,
            FpStatus {
                mxcsr: 0x1f80 & !(1 << 9) | (1 << 2),
                ..fp
            },
        );
        assert_eq!((xm.signo, xm.code), (8, si_code::FPE_FLTDIV));
        assert_eq!(pf.fault, Some((14, 0b111)));
    }
}

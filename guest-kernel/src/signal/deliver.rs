//! Delivery: default actions, handler frames on the user stack, and `rt_sigreturn`.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use super::frame::{self, RtSigFrame};
use super::{
    default_action, fault_info, name, sa, si_code, sig, DefaultAction, FpStatus, SigAction,
    SigInfo, SigSet, NSIG, SIG_DFL, SIG_IGN,
};
use crate::arch::fpu::{self, FpuState};
use crate::arch::platform;
use crate::arch::trap::TrapFrame;
use crate::errno::Errno;
use crate::kprintln;
use crate::mm::paging::USER_END;
use crate::mm::uaccess::{self, Pod};
use crate::task::{self, Task};

/// What became of a CPU fault in user mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultOutcome {
    /// A handler will run (the frame now enters it).
    Handled,
    /// The default action applies: the caller reports the fault and ends the process
    /// with 128 + this signal.
    Fatal(u8),
}

/// Raises the signal for CPU exception `vector` (page-fault address `fault_addr`) in
/// the current process, as Linux's `force_sig_fault` does: a blocked or ignored fault
/// signal reverts to the default action. With a handler, the frame is switched to it.
pub fn deliver_fault(frame: &mut TrapFrame, vector: u64, fault_addr: u64) -> FaultOutcome {
    let fp = match (vector == 16 || vector == 19)
        .then(FpuState::capture)
        .flatten()
    {
        Some(state) => {
            let (fcw, fsw, mxcsr) = state.status();
            FpStatus { fcw, fsw, mxcsr }
        }
        None => FpStatus::default(),
    };
    let info = fault_info(vector, frame.error_code, fault_addr, frame.rip, fp);
    let Some(proc) = task::sched::current() else {
        return FaultOutcome::Fatal(info.signo);
    };
    proc.signals.force(info);
    if proc.signals.action(info.signo).handler == SIG_DFL {
        return FaultOutcome::Fatal(info.signo);
    }
    deliver_pending(proc, frame);
    FaultOutcome::Handled
}

/// Raises a page fault that demand paging could not resolve: `sig` (SIGSEGV or SIGBUS)
/// with `code` (`SEGV_MAPERR`, `SEGV_ACCERR`, `BUS_ADRERR`) at `addr`, as
/// [`deliver_fault`] does for other exceptions.
pub fn deliver_memory_fault(frame: &mut TrapFrame, sig: u8, code: i32, addr: u64) -> FaultOutcome {
    let info = SigInfo {
        signo: sig,
        code,
        addr,
        fault: Some((14, frame.error_code)),
        ..Default::default()
    };
    let Some(proc) = task::sched::current() else {
        return FaultOutcome::Fatal(sig);
    };
    proc.signals.force(info);
    if proc.signals.action(sig).handler == SIG_DFL {
        return FaultOutcome::Fatal(sig);
    }
    deliver_pending(proc, frame);
    FaultOutcome::Handled
}

/// Delivers the signals pending and not blocked, as on every return to user mode:
/// ignored ones are dropped, default actions applied (which may end the process), and
/// for each handler a frame is pushed and `frame` pointed at it (several stack up, the
/// last one runs first, as on Linux).
pub fn deliver_pending(proc: &mut Task, frame: &mut TrapFrame) {
    let mut restart = proc.restart_syscall.take();
    deliver_signals(proc, frame, &mut restart);
    // No handler ran for the interrupting signal (ignored, or its default action does
    // nothing): the call starts again, as Linux restarts ERESTARTSYS then.
    if let Some(nr) = restart {
        restart_call(frame, nr);
    }
}

/// Makes the interrupted system call `nr` run again when the thread returns to the
/// instruction that made it (`syscall` and `int 0x80` are both two bytes).
fn restart_call(frame: &mut TrapFrame, nr: u64) {
    frame.rax = nr;
    frame.rip = frame.rip.wrapping_sub(2);
}

fn deliver_signals(proc: &mut Task, frame: &mut TrapFrame, restart: &mut Option<u64>) {
    // Each round consumes a pending signal; a failed delivery adds at most one SIGSEGV,
    // whose own failure makes it fatal.
    for _ in 0..=2 * NSIG as usize {
        let Some(info) = proc.signals.take_next() else {
            return;
        };
        let signo = info.signo;
        let action = proc.signals.action(signo);
        match action.handler {
            SIG_IGN => {}
            SIG_DFL => match default_action(signo) {
                DefaultAction::Ignore | DefaultAction::Continue => {}
                // The process the kernel started has nobody to continue it (Linux's
                // init ignores stop signals too).
                DefaultAction::Stop if proc.process.ppid() == 0 => kprintln!(
                    "astra: {} stopped by {}; nothing could continue it, so it continues",
                    proc.name(),
                    name(signo)
                ),
                DefaultAction::Stop => task::stop_process(&proc.process, signo),
                DefaultAction::Terminate | DefaultAction::CoreDump => {
                    die(proc, &info);
                    return;
                }
            },
            _ => {
                // The handler decides about an interrupted call: restarted after it
                // returns with SA_RESTART, EINTR without.
                if let Some(nr) = restart.take() {
                    if action.flags & crate::signal::sa::SA_RESTART != 0 {
                        restart_call(frame, nr);
                    }
                }
                if let Err(why) = push_frame(proc, frame, &info, &action) {
                    // Linux's force_sigsegv: a SIGSEGV that cannot be handled is fatal.
                    kprintln!(
                        "astra: {}: cannot deliver {}: {}",
                        proc.name(),
                        name(signo),
                        why
                    );
                    if signo == sig::SIGSEGV {
                        proc.signals.reset_to_default(sig::SIGSEGV);
                    }
                    proc.signals.force(SigInfo::kernel(sig::SIGSEGV));
                }
            }
        }
    }
}

/// Ends the process for `info` with status 128 + signal (every thread ends at its return
/// to user mode), with a report line for a process the kernel started (whose status is
/// the run's): a child's death is its parent's to report, as a shell does.
fn die(proc: &Task, info: &SigInfo) {
    let signo = info.signo;
    if proc.process.ppid() != 0 {
        task::kill_process_by_signal(&proc.process, signo);
        return;
    }
    match info.code {
        si_code::SI_USER | si_code::SI_TKILL => kprintln!(
            "astra: {} killed by {} (sent by pid {})",
            proc.name(),
            name(signo),
            info.pid
        ),
        _ => kprintln!("astra: {} killed by {}", proc.name(), name(signo)),
    }
    task::kill_process_by_signal(&proc.process, signo);
}

/// Writes a handler frame for `info` to the user stack and switches `regs` to the
/// handler; on failure nothing changes.
fn push_frame(
    proc: &mut Task,
    regs: &mut TrapFrame,
    info: &SigInfo,
    action: &SigAction,
) -> Result<(), String> {
    // x86-64 handlers must return through a restorer (Linux refuses too).
    if action.flags & sa::SA_RESTORER == 0 {
        return Err(String::from("the action has no SA_RESTORER"));
    }
    // `iretq` to a non-canonical rip would fault in the kernel; on Linux the process
    // gets SIGSEGV for such a handler, as here.
    if action.handler >= USER_END {
        return Err(format!(
            "handler address {:#x} is not in user space",
            action.handler
        ));
    }
    // A handler interrupts a restartable sequence: the frame records its abort handler.
    crate::task::rseq_fixup(proc, regs)
        .map_err(|_| format!("bad rseq critical section at rip {:#x}", regs.rip))?;
    let on_altstack = action.flags & sa::SA_ONSTACK != 0;
    let image_size = fpu::state_size() as u64;
    let fpstate_size = frame::fpstate_size(image_size);
    let place = frame::place(regs.rsp, &proc.signals.altstack, on_altstack, fpstate_size)
        .ok_or_else(|| {
            format!(
                "no room for a signal frame below rsp {:#x} (alternate stack {:#x}+{:#x})",
                regs.rsp,
                proc.signals.altstack.saved().sp,
                proc.signals.altstack.saved().size
            )
        })?;
    let mut fpstate = Vec::new();
    fpstate
        .try_reserve_exact(fpstate_size as usize)
        .map_err(|_| String::from("no memory for the FPU state"))?;
    let state = FpuState::capture().ok_or("no memory for the FPU state")?;
    fpstate.extend_from_slice(state.bytes());
    drop(state);
    // The software-reserved tail of the legacy region says whether an XSAVE image
    // follows (Linux's `_fpx_sw_bytes`), and the image ends with a second magic word.
    let xfeatures = fpu::xfeatures();
    let sw = if xfeatures != 0 {
        fpstate.extend_from_slice(&frame::FP_XSTATE_MAGIC2.to_le_bytes());
        frame::sw_bytes(image_size, xfeatures)
    } else {
        [0; 48]
    };
    fpstate[fpu::SW_RESERVED..fpu::LEGACY_SIZE].copy_from_slice(&sw);
    // The mask `sigreturn` restores: the one a call like `ppoll` replaced for its wait,
    // if one did (Linux's restore-sigmask), else the current one.
    let old_mask = proc.saved_sigmask.take().unwrap_or(proc.signals.blocked());
    let built: RtSigFrame = frame::build(
        regs,
        info,
        old_mask.0,
        proc.signals.altstack.saved(),
        action.restorer,
        place.fpstate,
    );
    write_user(proc, place.fpstate, &fpstate)
        .and_then(|()| write_user_obj(proc, place.frame, &built))
        .map_err(|_| format!("signal frame at {:#x} is not writable", place.frame))?;

    proc.signals.altstack.disarm_if_requested();
    let mut mask = old_mask.union(SigSet(action.mask));
    if action.flags & sa::SA_NODEFER == 0 {
        mask.insert(info.signo);
    }
    proc.signals.set_blocked(mask);
    if action.flags & sa::SA_RESETHAND != 0 {
        proc.signals.reset_to_default(info.signo);
    }
    frame::enter_handler(
        regs,
        &place,
        info.signo,
        action.handler,
        platform::user_selectors(),
    );
    // Handlers start with a clean FPU, as on Linux.
    fpu::load_initial();
    Ok(())
}

/// `rt_sigreturn`: restores the context saved by [`push_frame`] from the frame at the
/// user stack pointer (the handler's `ret` popped the return address), validating all
/// of it; returns the restored rax. A bad frame raises SIGSEGV, as on Linux.
pub fn sigreturn(proc: &mut Task, regs: &mut TrapFrame) -> u64 {
    let uc_addr = regs.rsp;
    let uc: frame::UContext = match read_user_obj(proc, uc_addr) {
        Ok(uc) => uc,
        Err(_) => return bad_frame(proc, uc_addr, "not readable"),
    };
    proc.signals.set_blocked(SigSet(uc.sigmask));
    let mut restored = *regs;
    if let Err(e) = frame::restore(&uc.mcontext, &mut restored, platform::user_selectors()) {
        return bad_frame(proc, uc_addr, &format!("{e:?}"));
    }
    match uc.mcontext.fpstate {
        0 => fpu::load_initial(),
        addr => {
            let Some(mut state) = FpuState::initial() else {
                return bad_frame(proc, uc_addr, "no memory for the FPU state");
            };
            // The legacy region first: its reserved tail says what follows.
            let legacy = &mut state.bytes_mut()[..fpu::LEGACY_SIZE];
            if read_user(proc, addr, legacy).is_err() {
                return bad_frame(proc, uc_addr, "FPU state not readable");
            }
            let mut sw = [0u8; 48];
            sw.copy_from_slice(&legacy[fpu::SW_RESERVED..]);
            let image_size = fpu::state_size() as u64;
            let xfeatures = if fpu::xfeatures() != 0 {
                frame::parse_sw_bytes(&sw, image_size)
            } else {
                None
            };
            let xfeatures = match xfeatures {
                Some(x) => {
                    let mut magic2 = [0u8; 4];
                    let rest = &mut state.bytes_mut()[fpu::LEGACY_SIZE..];
                    if read_user(proc, addr + fpu::LEGACY_SIZE as u64, rest).is_err()
                        || read_user(proc, addr + image_size, &mut magic2).is_err()
                    {
                        return bad_frame(proc, uc_addr, "FPU state not readable");
                    }
                    // Without the closing magic the image is not trusted past the
                    // legacy region (Linux's check_xstate_in_sigframe).
                    (u32::from_le_bytes(magic2) == frame::FP_XSTATE_MAGIC2).then_some(x)
                }
                None => None,
            };
            state.sanitize(xfeatures.unwrap_or(0), xfeatures.is_none());
            state.restore();
        }
    }
    *regs = restored;
    // Linux ignores errors here (e.g. EPERM when returning onto the stack itself).
    let _ = proc.signals.altstack.set(&uc.stack, regs.rsp);
    regs.return_by_iret();
    regs.rax
}

fn bad_frame(proc: &mut Task, addr: u64, why: &str) -> u64 {
    kprintln!(
        "astra: {}: rt_sigreturn: bad signal frame at {:#x}: {}",
        proc.name(),
        addr,
        why
    );
    proc.signals.force(SigInfo::kernel(sig::SIGSEGV));
    0
}

// User memory as the program sees it: a frame on a not-yet-touched alternate stack
// faults its pages in.

fn write_user(proc: &mut Task, va: u64, data: &[u8]) -> Result<(), Errno> {
    uaccess::write_user(&mut proc.mm.lock(), va, data)
}

fn write_user_obj<T: Pod>(proc: &mut Task, va: u64, value: &T) -> Result<(), Errno> {
    uaccess::write_user(&mut proc.mm.lock(), va, uaccess::obj_bytes(value))
}

fn read_user(proc: &Task, va: u64, buf: &mut [u8]) -> Result<(), Errno> {
    uaccess::read_user(&proc.mm.lock(), va, buf)
}

fn read_user_obj<T: Pod>(proc: &Task, va: u64) -> Result<T, Errno> {
    uaccess::read_obj_with(|bytes| uaccess::read_user(&proc.mm.lock(), va, bytes))
}

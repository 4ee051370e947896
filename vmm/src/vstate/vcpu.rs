//! The vCPU: its boot configuration and the run loop, an explicit state machine over KVM
//! exits in which every exit is matched once and nothing the guest does panics the VMM.

use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use kvm_bindings::{KVM_INTERNAL_ERROR_EMULATION, KVM_MAX_CPUID_ENTRIES};
use kvm_ioctls::{Kvm, VcpuExit, VcpuFd};
use vmm_sys_util::signal::{register_signal_handler, SIGRTMIN};

use crate::arch::x86_64::regs;
use crate::devices::{doorbell_gpa, IoAction, PortBus};
use crate::exit_code::Outcome;
use crate::gdb::{DebugOutcome, Debugger, GdbError};
use crate::vstate::exit_stats::{ExitKind, ExitStats};

/// Offset from `SIGRTMIN` of the signal that kicks the vCPU thread out of `KVM_RUN`.
const KICK_SIGNAL_OFFSET: i32 = 0;

/// Errors configuring or running the vCPU (VMM failures, not guest misbehaviour).
#[derive(Debug, thiserror::Error)]
pub enum VcpuError {
    /// A vCPU ioctl failed.
    #[error("KVM {0} failed on the vCPU")]
    Ioctl(&'static str, #[source] kvm_ioctls::Error),
    /// The kick signal handler could not be installed.
    #[error("Cannot install the vCPU kick signal handler")]
    Signal(#[source] vmm_sys_util::errno::Error),
    /// The debugger failed.
    #[error(transparent)]
    Debug(#[from] GdbError),
}

/// The signal that interrupts `KVM_RUN` on the vCPU thread.
pub fn kick_signal() -> libc::c_int {
    SIGRTMIN() + KICK_SIGNAL_OFFSET
}

extern "C" fn handle_kick(_: libc::c_int, _: *mut libc::siginfo_t, _: *mut libc::c_void) {
    // Nothing to do: delivering the signal is what makes KVM_RUN return EINTR.
}

/// Installs the (empty) handler of [`kick_signal`], so the signal interrupts `KVM_RUN`
/// instead of killing the process.
pub fn register_kick_handler() -> Result<(), VcpuError> {
    register_signal_handler(kick_signal(), handle_kick).map_err(VcpuError::Signal)
}

/// The state of the run loop.
enum State {
    /// Enter the guest.
    Run,
    /// The guest ended the VM.
    Stop(Outcome),
    /// Asked to stop from outside (timeout).
    Kicked,
}

/// "1 byte", "4 bytes".
fn bytes(n: usize) -> String {
    if n == 1 {
        "1 byte".into()
    } else {
        format!("{n} bytes")
    }
}

/// What the vCPU loop knows about the guest-physical layout, for error messages.
#[derive(Clone, Debug, Default)]
pub struct ExitContext {
    /// Where the read-only rootfs is mapped.
    pub rootfs: Option<Range<u64>>,
}

impl ExitContext {
    /// The crash an MMIO exit means: RAM and the rootfs are the only memory there is.
    pub fn mmio_crash(&self, gpa: u64, len: usize, write: bool) -> Outcome {
        let in_rootfs = self.rootfs.as_ref().is_some_and(|r| r.contains(&gpa));
        let what = match (write, in_rootfs) {
            (true, true) => "wrote {} to the read-only rootfs",
            (true, false) => "wrote {} to unbacked guest-physical memory",
            (false, _) => "read {} from unbacked guest-physical memory",
        };
        let what = what.replace("{}", &bytes(len));
        Outcome::crash(format!("guest {what} at {gpa:#x}"))
    }
}

/// The kind of a `KVM_RUN` exit, for `--stats`.
fn exit_kind(exit: &VcpuExit<'_>) -> ExitKind {
    match exit {
        VcpuExit::IoOut(port, _) => ExitKind::IoOut(*port),
        VcpuExit::IoIn(port, _) => ExitKind::IoIn(*port),
        VcpuExit::MmioRead(..) => ExitKind::MmioRead,
        VcpuExit::MmioWrite(..) => ExitKind::MmioWrite,
        VcpuExit::Hlt => ExitKind::Hlt,
        VcpuExit::Intr => ExitKind::Intr,
        VcpuExit::IrqWindowOpen => ExitKind::IrqWindowOpen,
        VcpuExit::Shutdown => ExitKind::Shutdown,
        VcpuExit::InternalError => ExitKind::InternalError,
        VcpuExit::FailEntry(..) => ExitKind::FailEntry,
        VcpuExit::SystemEvent(..) => ExitKind::SystemEvent,
        VcpuExit::Debug(_) => ExitKind::Debug,
        VcpuExit::Exception => ExitKind::Other("Exception"),
        VcpuExit::Hypercall(_) => ExitKind::Other("Hypercall"),
        VcpuExit::X86Rdmsr(_) => ExitKind::Other("Rdmsr"),
        VcpuExit::X86Wrmsr(_) => ExitKind::Other("Wrmsr"),
        VcpuExit::Unknown => ExitKind::Other("Unknown"),
        _ => ExitKind::Other("Other"),
    }
}

/// A vCPU.
pub struct Vcpu {
    fd: VcpuFd,
    stats: Option<Arc<Mutex<ExitStats>>>,
    /// `--gdb`: the debugger, which the vCPU hands control to at every stop.
    debugger: Option<Box<Debugger>>,
}

impl Vcpu {
    /// Wraps a fresh vCPU.
    pub fn new(fd: VcpuFd) -> Self {
        Vcpu {
            fd,
            stats: None,
            debugger: None,
        }
    }

    /// Hands the vCPU to a debugger: it stops before the first instruction.
    pub fn attach_debugger(&mut self, debugger: Debugger) {
        self.debugger = Some(Box::new(debugger));
    }

    /// Runs the debugger for a stop and turns its answer into the loop's next state.
    fn debug_state(outcome: Result<DebugOutcome, GdbError>) -> Result<State, VcpuError> {
        Ok(match outcome? {
            DebugOutcome::Continue => State::Run,
            DebugOutcome::End(outcome) => State::Stop(outcome),
            DebugOutcome::Ended => State::Kicked,
        })
    }

    /// Counts every exit into `stats` from now on (`--stats`).
    pub fn record_stats(&mut self, stats: Arc<Mutex<ExitStats>>) {
        self.stats = Some(stats);
    }

    /// Sets CPUID, the LAPIC's LINT pins, FPU and the long-mode boot registers.
    pub fn configure(&self, kvm: &Kvm, entry: u64, boot_info_gpa: u64) -> Result<(), VcpuError> {
        let cpuid = kvm
            .get_supported_cpuid(KVM_MAX_CPUID_ENTRIES)
            .map_err(|e| VcpuError::Ioctl("KVM_GET_SUPPORTED_CPUID", e))?;
        self.fd
            .set_cpuid2(&cpuid)
            .map_err(|e| VcpuError::Ioctl("KVM_SET_CPUID2", e))?;
        let mut lapic = self
            .fd
            .get_lapic()
            .map_err(|e| VcpuError::Ioctl("KVM_GET_LAPIC", e))?;
        regs::set_lint(&mut lapic);
        self.fd
            .set_lapic(&lapic)
            .map_err(|e| VcpuError::Ioctl("KVM_SET_LAPIC", e))?;
        self.fd
            .set_fpu(&regs::boot_fpu())
            .map_err(|e| VcpuError::Ioctl("KVM_SET_FPU", e))?;
        let sregs = self
            .fd
            .get_sregs()
            .map_err(|e| VcpuError::Ioctl("KVM_GET_SREGS", e))?;
        self.fd
            .set_sregs(&regs::long_mode_sregs(sregs))
            .map_err(|e| VcpuError::Ioctl("KVM_SET_SREGS", e))?;
        self.fd
            .set_regs(&regs::boot_regs(entry, boot_info_gpa))
            .map_err(|e| VcpuError::Ioctl("KVM_SET_REGS", e))?;
        Ok(())
    }

    /// The TSC frequency in kHz, 0 if KVM does not know it.
    pub fn tsc_khz(&self) -> u32 {
        self.fd.get_tsc_khz().unwrap_or(0)
    }

    /// The register dump for a crash report, if the registers can be read.
    pub fn dump_registers(&self) -> Option<String> {
        let regs = self.fd.get_regs().ok()?;
        let sregs = self.fd.get_sregs().ok()?;
        Some(regs::format_registers(&regs, &sregs))
    }

    /// Runs the guest until it ends the VM (`Some`) or `stop` is set and the thread is
    /// kicked with [`kick_signal`] (`None`).
    pub fn run(
        &mut self,
        bus: &mut PortBus,
        ctx: &ExitContext,
        stop: &AtomicBool,
    ) -> Result<Option<Outcome>, VcpuError> {
        let mut state = State::Run;
        if let Some(debugger) = self.debugger.as_mut() {
            debugger.register_vcpu_thread();
            state = Self::debug_state(debugger.stop_vcpu(&self.fd, false))?;
        }
        loop {
            if let (State::Stop(outcome), Some(d)) = (&state, self.debugger.as_mut()) {
                d.report_exit(outcome.exit_code());
            }
            state = match state {
                State::Run if stop.load(Ordering::Acquire) => State::Kicked,
                State::Run => match self.debugger.as_mut() {
                    Some(d) if d.take_interrupt() => {
                        Self::debug_state(d.stop_vcpu(&self.fd, false))?
                    }
                    _ => self.step(bus, ctx)?,
                },
                State::Stop(Outcome::GuestCrash { reason, .. }) => {
                    return Ok(Some(Outcome::GuestCrash {
                        reason,
                        registers: self.dump_registers(),
                    }))
                }
                State::Stop(outcome) => return Ok(Some(outcome)),
                State::Kicked => return Ok(None),
            }
        }
    }

    /// One `KVM_RUN` and the handling of its exit, timed and counted under `--stats`.
    fn step(&mut self, bus: &mut PortBus, ctx: &ExitContext) -> Result<State, VcpuError> {
        let Some(stats) = self.stats.clone() else {
            return self.run_and_handle(bus, ctx, |_| ());
        };
        let entered = Instant::now();
        let mut seen = (ExitKind::Interrupted, entered);
        let state = self.run_and_handle(bus, ctx, |kind| seen = (kind, Instant::now()));
        let (kind, returned) = seen;
        let mut stats = stats.lock().unwrap_or_else(PoisonError::into_inner);
        stats.record(kind, returned - entered, returned.elapsed());
        state
    }

    /// One `KVM_RUN`; tells `saw` what kind of exit it was, then handles it.
    fn run_and_handle(
        &mut self,
        bus: &mut PortBus,
        ctx: &ExitContext,
        mut saw: impl FnMut(ExitKind),
    ) -> Result<State, VcpuError> {
        let exit = match self.fd.run() {
            Ok(exit) => exit,
            Err(e) if e.errno() == libc::EINTR || e.errno() == libc::EAGAIN => {
                saw(ExitKind::Interrupted);
                return Ok(State::Run);
            }
            Err(e) => return Err(VcpuError::Ioctl("KVM_RUN", e)),
        };
        saw(exit_kind(&exit));
        let crash = |reason: String| Ok(State::Stop(Outcome::crash(reason)));
        match exit {
            VcpuExit::IoOut(hypercall_abi::port::DEBUG, data) if self.debugger.is_some() => {
                let gpa = match doorbell_gpa("debug", data) {
                    Ok(gpa) => gpa,
                    Err(IoAction::Stop(outcome)) => return Ok(State::Stop(outcome)),
                    Err(IoAction::Continue) => return Ok(State::Run),
                };
                match self.debugger.as_mut() {
                    Some(d) => Self::debug_state(d.request(&self.fd, gpa)),
                    None => Ok(State::Run),
                }
            }
            VcpuExit::Debug(_) if self.debugger.is_some() => {
                match self
                    .debugger
                    .as_mut()
                    .and_then(|d| d.kvm_debug_exit(&self.fd))
                {
                    Some(outcome) => Self::debug_state(outcome),
                    None => crash("unexpected KVM debug exit".into()),
                }
            }
            VcpuExit::IoOut(port, data) => match bus.write(port, data) {
                Some(IoAction::Continue) => Ok(State::Run),
                Some(IoAction::Stop(outcome)) => Ok(State::Stop(outcome)),
                None => crash(format!(
                    "guest wrote {} to unknown I/O port {port:#x}",
                    bytes(data.len())
                )),
            },
            VcpuExit::IoIn(port, data) => match bus.read(port, data) {
                Some(()) => {
                    log::trace!("in {port:#x} -> {data:02x?}");
                    Ok(State::Run)
                }
                None => crash(format!(
                    "guest read {} from unknown I/O port {port:#x}",
                    bytes(data.len())
                )),
            },
            VcpuExit::MmioRead(gpa, data) => {
                Ok(State::Stop(ctx.mmio_crash(gpa, data.len(), false)))
            }
            VcpuExit::MmioWrite(gpa, data) => {
                Ok(State::Stop(ctx.mmio_crash(gpa, data.len(), true)))
            }
            // The in-kernel irqchip handles HLT; seeing one anyway is harmless.
            VcpuExit::Hlt | VcpuExit::Intr => Ok(State::Run),
            VcpuExit::Shutdown => crash("triple fault (KVM_EXIT_SHUTDOWN)".into()),
            VcpuExit::InternalError => {
                let suberror = self.internal_suberror();
                let what = if suberror == KVM_INTERNAL_ERROR_EMULATION {
                    "instruction emulation failed".to_owned()
                } else {
                    format!("suberror {suberror}")
                };
                crash(format!("KVM internal error: {what}"))
            }
            VcpuExit::FailEntry(reason, cpu) => crash(format!(
                "KVM could not enter the guest on CPU {cpu}: hardware reason {reason:#x}"
            )),
            VcpuExit::SystemEvent(kind, _) => crash(format!(
                "guest requested system event {kind} (reset or power-off)"
            )),
            other => crash(format!("unexpected KVM exit {other:?}")),
        }
    }

    fn internal_suberror(&mut self) -> u32 {
        let run = self.fd.get_kvm_run();
        // SAFETY: called right after KVM_RUN returned KVM_EXIT_INTERNAL_ERROR, so the
        // `internal` member of the exit union is the one the kernel filled in; it is plain
        // integers, valid for any bit pattern.
        unsafe { run.__bindgen_anon_1.internal.suberror }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mmio_crashes_name_the_address_and_the_rootfs() {
        let ctx = ExitContext {
            rootfs: Some(0x1_0000_0000..0x1_0000_2000),
        };
        let msg = |o: Outcome| match o {
            Outcome::GuestCrash { reason, .. } => reason,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            msg(ctx.mmio_crash(0x1_0000_0010, 4, true)),
            "guest wrote 4 bytes to the read-only rootfs at 0x100000010"
        );
        assert_eq!(
            msg(ctx.mmio_crash(0xd000_0000, 1, true)),
            "guest wrote 1 byte to unbacked guest-physical memory at 0xd0000000"
        );
        assert!(msg(ctx.mmio_crash(0xd000_0000, 8, false)).contains("read 8 bytes"));
        assert!(
            msg(ExitContext::default().mmio_crash(0x1_0000_0010, 4, true)).contains("0x100000010")
        );
    }

    #[test]
    fn kick_signal_is_a_realtime_signal() {
        assert!(kick_signal() >= SIGRTMIN());
        assert!(kick_signal() <= vmm_sys_util::signal::SIGRTMAX());
        register_kick_handler().unwrap();
    }
}

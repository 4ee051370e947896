//! The gdbstub (`astra-vmm --gdb ADDR`): gdb's remote protocol through the `gdbstub`
//! crate, driven from the vCPU thread whenever the guest stops.
//!
//! Stops come two ways, chosen by what works on the platform (see PLATFORM.md):
//! - the VMM stops the vCPU itself: before the first instruction, on Ctrl-C (the reader
//!   thread kicks the vCPU out of `KVM_RUN`), and after a `KVM_GUESTDBG_SINGLESTEP` step
//!   taken before the kernel can report its own traps. Registers come from KVM.
//! - the kernel reports its #BP and #DB traps through the debug device ([`stop`]): software
//!   breakpoints (`int3` bytes the stub plants), single steps (the kernel sets TF) and the
//!   debug registers (the kernel loads DR0-DR7 on the stub's request). Registers come from
//!   the request block. KVM's own guest debugging is not used for these: on the PVM host
//!   it injects `int3` into the guest and never fires hardware breakpoints, and under
//!   nested SVM breakpoints do not work either.
//!
//! Without `--gdb` none of this exists: the vCPU loop has no debugger and the debug port
//! is unknown, as before.

mod arch;
mod conn;
mod regs;
mod stop;
mod target;
mod walk;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::sync::Arc;
use std::time::Duration;

use gdbstub::common::Signal;
use gdbstub::stub::state_machine::GdbStubStateMachine;
use gdbstub::stub::{DisconnectReason, GdbStub, MultiThreadStopReason};
use vm_memory::GuestMemoryMmap;

use crate::vstate::vcpu_handle::VcpuHandle;

pub use conn::{accept, GdbAddress, GdbConnection, GdbLink};
pub use stop::DebugOutcome;
use target::{GuestTarget, ResumeAction};

/// How often a debugger waiting for gdb checks whether the VM must end (timeout).
const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// Errors of the gdb session.
#[derive(Debug, thiserror::Error)]
pub enum GdbError {
    /// The listening socket or the connection failed.
    #[error("Cannot serve gdb on {0}")]
    Listen(GdbAddress, #[source] std::io::Error),
    /// The reader thread could not start.
    #[error("Cannot start the gdb reader thread")]
    Thread(#[source] std::io::Error),
    /// gdbstub reported a protocol or connection error.
    #[error("gdb remote protocol error: {0}")]
    Protocol(String),
    /// A vCPU ioctl failed while stopped.
    #[error("KVM {0} failed while stopped in the debugger")]
    Ioctl(&'static str, #[source] kvm_ioctls::Error),
}

type StateMachine = GdbStubStateMachine<'static, GuestTarget, GdbConnection>;
type StopReason = MultiThreadStopReason<u64>;

/// How the guest goes on after a stop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Resume {
    /// Run (or execute one instruction).
    Run(ResumeAction),
    /// gdb detached (or went away): run on without a debugger.
    Detached,
    /// gdb killed the program.
    Kill,
    /// The VM must end (timeout) while stopped.
    Ended,
}

/// The debugger attached to a vCPU.
pub struct Debugger {
    sm: Option<StateMachine>,
    target: GuestTarget,
    vcpu: Arc<VcpuHandle>,
    incoming: std::sync::mpsc::Receiver<conn::Incoming>,
    end: Arc<AtomicBool>,
    /// A `KVM_GUESTDBG_SINGLESTEP` step is under way.
    kvm_stepping: bool,
    /// Emulated write watchpoints (see [`GuestTarget::dr_works`]): the guest is being
    /// stepped behind gdb's back and these are the watched bytes before the step.
    watching: Vec<(u64, Vec<u8>)>,
}

impl Debugger {
    /// A session over `conn` for a guest with RAM `mem`; `end` is set when the VM must end
    /// (timeout), also while the guest is stopped.
    pub fn new(
        link: GdbLink,
        mem: GuestMemoryMmap,
        end: Arc<AtomicBool>,
    ) -> Result<Debugger, GdbError> {
        let mut target = GuestTarget::new(mem);
        let sm = GdbStub::new(link.conn)
            .run_state_machine(&mut target)
            .map_err(|e| GdbError::Protocol(format!("{e:?}")))?;
        Ok(Debugger {
            sm: Some(sm),
            target,
            vcpu: link.vcpu,
            incoming: link.incoming,
            end,
            kvm_stepping: false,
            watching: Vec::new(),
        })
    }

    /// True while gdb is attached.
    pub fn attached(&self) -> bool {
        self.sm.is_some()
    }

    /// Binds the vCPU handle to the calling thread (the vCPU thread): Ctrl-C pauses it.
    pub fn register_vcpu_thread(&self) {
        self.vcpu.bind_current_thread();
    }

    /// True if Ctrl-C asked the vCPU to pause (taken when the stop is handled).
    pub fn take_interrupt(&self) -> bool {
        self.attached() && self.vcpu.pause_requested()
    }

    /// Waits for the next byte from gdb; `None` when the VM must end, `Some(None)` when
    /// gdb went away.
    fn next_byte(&self) -> Option<Option<u8>> {
        loop {
            if self.end.load(Ordering::Acquire) {
                return None;
            }
            match self.incoming.recv_timeout(POLL_INTERVAL) {
                Ok(conn::Incoming::Byte(b)) => return Some(Some(b)),
                Ok(conn::Incoming::Closed) | Err(RecvTimeoutError::Disconnected) => {
                    return Some(None)
                }
                Err(RecvTimeoutError::Timeout) => {}
            }
        }
    }

    /// Runs the protocol from a stop (reported to gdb as `report`; `None` for the first
    /// stop, or a Ctrl-C whose byte is still queued) until gdb resumes, detaches or kills.
    fn drive(&mut self, mut report: Option<StopReason>) -> Result<Resume, GdbError> {
        let Some(mut sm) = self.sm.take() else {
            return Ok(Resume::Detached);
        };
        self.vcpu.set_running(false);
        self.vcpu.clear_pause();
        self.target.resume = None;
        self.watching.clear();
        let protocol = |e: gdbstub::stub::GdbStubError<(), std::io::Error>| {
            GdbError::Protocol(format!("{e:?}"))
        };
        let resume = loop {
            sm = match sm {
                GdbStubStateMachine::Idle(inner) => match self.next_byte() {
                    Some(Some(b)) => inner.incoming_data(&mut self.target, b).map_err(protocol)?,
                    Some(None) => break Resume::Detached,
                    None => {
                        self.sm = Some(GdbStubStateMachine::Idle(inner));
                        return Ok(Resume::Ended);
                    }
                },
                GdbStubStateMachine::Running(inner) => {
                    if let Some(reason) = report.take() {
                        inner
                            .report_stop(&mut self.target, reason)
                            .map_err(protocol)?
                    } else if let Some(mut action) = self.target.resume.take() {
                        self.sm = Some(GdbStubStateMachine::Running(inner));
                        self.vcpu.set_running(true);
                        if action == ResumeAction::Continue {
                            self.watching = self.target.emulated_watches();
                            if !self.watching.is_empty() {
                                action = ResumeAction::Step;
                            }
                        }
                        return Ok(Resume::Run(action));
                    } else {
                        // Stopped for a Ctrl-C: its byte makes the stub ask for the stop.
                        match self.next_byte() {
                            Some(Some(b)) => {
                                inner.incoming_data(&mut self.target, b).map_err(protocol)?
                            }
                            Some(None) => break Resume::Detached,
                            None => {
                                self.sm = Some(GdbStubStateMachine::Running(inner));
                                return Ok(Resume::Ended);
                            }
                        }
                    }
                }
                GdbStubStateMachine::CtrlCInterrupt(inner) => {
                    let reason = StopReason::SignalWithThread {
                        tid: self.target.current_tid(),
                        signal: Signal::SIGINT,
                    };
                    inner
                        .interrupt_handled(&mut self.target, Some(reason))
                        .map_err(protocol)?
                }
                GdbStubStateMachine::Disconnected(inner) => match inner.get_reason() {
                    DisconnectReason::Kill => break Resume::Kill,
                    _ => break Resume::Detached,
                },
            };
        };
        // Detached or killed: no breakpoint or watchpoint stays behind.
        self.target.clear_all();
        self.vcpu.set_running(true);
        if resume == Resume::Detached {
            log::info!("gdb detached; the guest runs on");
        }
        Ok(resume)
    }

    /// While emulating watchpoints: the first watched location whose bytes changed.
    fn watch_hit(&self) -> Option<u64> {
        self.watching.iter().find_map(|(addr, before)| {
            let mut now = vec![0u8; before.len()];
            let n = self.target.read_virt(*addr, &mut now);
            (now[..n] != before[..]).then_some(*addr)
        })
    }

    /// Tells gdb the guest ended with exit code `code` (best effort: gdb may be gone).
    pub fn report_exit(&mut self, code: u8) {
        if let Some(GdbStubStateMachine::Running(inner)) = self.sm.take() {
            let _ = inner.report_stop(&mut self.target, StopReason::Exited(code));
        }
    }
}

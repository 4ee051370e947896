//! The vCPU's side of debugging: stops the VMM makes (registers from KVM) and stops the
//! kernel reports through the debug device (registers in its request block), and how the
//! guest resumes from each.

use gdbstub::common::Signal;
use gdbstub::target::ext::breakpoints::WatchKind;
use hypercall_abi::{debug, DebugRegs, DebugRequest};
use kvm_bindings::{kvm_debugregs, kvm_guest_debug, KVM_GUESTDBG_ENABLE, KVM_GUESTDBG_SINGLESTEP};
use kvm_ioctls::VcpuFd;
use vm_memory::{Bytes, GuestAddress};

use super::target::ResumeAction;
use super::{regs, Debugger, GdbError, Resume, StopReason};
use crate::exit_code::Outcome;

/// RFLAGS.TF.
const RFLAGS_TF: u64 = 1 << 8;
/// Exit status when gdb kills the program (SIGKILL, as a shell reports it).
const KILLED_STATUS: u8 = 128 + 9;
/// Bytes of a [`DebugRequest`].
const REQUEST_SIZE: usize = core::mem::size_of::<DebugRequest>();
/// `u64` words before `event` and `resume`.
const REQUEST_WORDS: usize = (REQUEST_SIZE - 8) / 8;

/// What the vCPU loop does after a debug stop.
#[derive(Debug)]
pub enum DebugOutcome {
    /// Run the guest on.
    Continue,
    /// End the VM with this outcome.
    End(Outcome),
    /// The VM must end (timeout) while it was stopped.
    Ended,
}

/// Decodes a request block (layout asserted in `hypercall_abi`).
pub fn decode_request(raw: &[u8; REQUEST_SIZE]) -> DebugRequest {
    let mut w = [0u64; REQUEST_WORDS];
    for (i, word) in w.iter_mut().enumerate() {
        let mut b = [0u8; 8];
        b.copy_from_slice(&raw[i * 8..i * 8 + 8]);
        *word = u64::from_le_bytes(b);
    }
    let tail = |at: usize| u32::from_le_bytes([raw[at], raw[at + 1], raw[at + 2], raw[at + 3]]);
    let r = DebugRegs {
        rax: w[0],
        rbx: w[1],
        rcx: w[2],
        rdx: w[3],
        rsi: w[4],
        rdi: w[5],
        rbp: w[6],
        rsp: w[7],
        r8: w[8],
        r9: w[9],
        r10: w[10],
        r11: w[11],
        r12: w[12],
        r13: w[13],
        r14: w[14],
        r15: w[15],
        rip: w[16],
        rflags: w[17],
        cs: w[18],
        ss: w[19],
        fs_base: w[20],
        gs_base: w[21],
        cr3: w[22],
    };
    DebugRequest {
        regs: r,
        args: [w[23], w[24], w[25]],
        dr: [w[26], w[27], w[28], w[29]],
        dr6: w[30],
        dr7: w[31],
        event: tail(REQUEST_WORDS * 8),
        resume: tail(REQUEST_WORDS * 8 + 4),
    }
}

/// Encodes a request block.
pub fn encode_request(q: &DebugRequest) -> [u8; REQUEST_SIZE] {
    let r = &q.regs;
    let w: [u64; REQUEST_WORDS] = [
        r.rax, r.rbx, r.rcx, r.rdx, r.rsi, r.rdi, r.rbp, r.rsp, r.r8, r.r9, r.r10, r.r11, r.r12,
        r.r13, r.r14, r.r15, r.rip, r.rflags, r.cs, r.ss, r.fs_base, r.gs_base, r.cr3, q.args[0],
        q.args[1], q.args[2], q.dr[0], q.dr[1], q.dr[2], q.dr[3], q.dr6, q.dr7,
    ];
    let mut raw = [0u8; REQUEST_SIZE];
    for (i, word) in w.iter().enumerate() {
        raw[i * 8..i * 8 + 8].copy_from_slice(&word.to_le_bytes());
    }
    raw[REQUEST_WORDS * 8..REQUEST_WORDS * 8 + 4].copy_from_slice(&q.event.to_le_bytes());
    raw[REQUEST_WORDS * 8 + 4..].copy_from_slice(&q.resume.to_le_bytes());
    raw
}

/// The request block at `gpa`, if it is 8-byte aligned and wholly in guest RAM.
pub fn read_request(mem: &vm_memory::GuestMemoryMmap, gpa: u64) -> Option<DebugRequest> {
    let mut raw = [0u8; REQUEST_SIZE];
    if !gpa.is_multiple_of(8) || mem.read_slice(&mut raw, GuestAddress(gpa)).is_err() {
        return None;
    }
    Some(decode_request(&raw))
}

fn ioctl<T>(what: &'static str, r: Result<T, kvm_ioctls::Error>) -> Result<T, GdbError> {
    r.map_err(|e| GdbError::Ioctl(what, e))
}

impl Debugger {
    fn finish(&mut self, resume: Resume) -> DebugOutcome {
        match resume {
            Resume::Run(_) | Resume::Detached => DebugOutcome::Continue,
            Resume::Kill => DebugOutcome::End(Outcome::Program(KILLED_STATUS)),
            Resume::Ended => DebugOutcome::Ended,
        }
    }

    /// A stop the VMM makes, with the registers from KVM: before the first instruction or
    /// for a Ctrl-C (`stepped` false: gdb already knows why), or at the end of a KVM single
    /// step (`stepped`).
    pub fn stop_vcpu(&mut self, fd: &VcpuFd, stepped: bool) -> Result<DebugOutcome, GdbError> {
        let r = ioctl("KVM_GET_REGS", fd.get_regs())?;
        let s = ioctl("KVM_GET_SREGS", fd.get_sregs())?;
        let fpu = ioctl("KVM_GET_FPU", fd.get_fpu())?;
        self.target.regs = regs::from_kvm(&r, &s, &fpu);
        self.target.regs_dirty = false;
        self.target.cr3 = s.cr3;
        self.target.refresh_threads();
        let report = stepped.then_some(StopReason::SignalWithThread {
            tid: self.target.current_tid(),
            signal: Signal::SIGTRAP,
        });
        let resume = self.drive(report)?;
        let mut r = r;
        if self.target.regs_dirty {
            regs::store_kvm(&self.target.regs, &mut r);
            let mut fpu = fpu;
            regs::store_fpu(&self.target.regs.core, &mut fpu);
            ioctl("KVM_SET_FPU", fd.set_fpu(&fpu))?;
            let mut s = s;
            regs::store_sregs(&self.target.regs, &mut s);
            ioctl("KVM_SET_SREGS", fd.set_sregs(&s))?;
        }
        if self.target.kernel_ready {
            self.load_debug_registers(fd);
        }
        if resume == Resume::Run(ResumeAction::Step) {
            if self.target.kernel_ready {
                // The kernel's #DB handler reports the step.
                r.rflags |= RFLAGS_TF;
                self.target.regs_dirty = true;
            } else {
                let dbg = kvm_guest_debug {
                    control: KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_SINGLESTEP,
                    ..Default::default()
                };
                ioctl("KVM_SET_GUEST_DEBUG", fd.set_guest_debug(&dbg))?;
                self.kvm_stepping = true;
            }
        }
        if self.target.regs_dirty {
            ioctl("KVM_SET_REGS", fd.set_regs(&r))?;
        }
        Ok(self.finish(resume))
    }

    /// `KVM_EXIT_DEBUG`: the end of a KVM single step, or `None` if none was asked for.
    pub fn kvm_debug_exit(&mut self, fd: &VcpuFd) -> Option<Result<DebugOutcome, GdbError>> {
        if !self.kvm_stepping {
            return None;
        }
        self.kvm_stepping = false;
        if let Err(e) = fd.set_guest_debug(&kvm_guest_debug::default()) {
            return Some(Err(GdbError::Ioctl("KVM_SET_GUEST_DEBUG", e)));
        }
        Some(self.stop_vcpu(fd, true))
    }

    /// A debug-device doorbell: the kernel reports an event in the block at `gpa` and
    /// waits for the answer. A malformed block is ignored (the kernel resumes as it was).
    pub fn request(&mut self, fd: &VcpuFd, gpa: u64) -> Result<DebugOutcome, GdbError> {
        let Some(mut req) = read_request(self.target.mem(), gpa) else {
            log::warn!("gdb: ignoring a debug request at bad address {gpa:#x}");
            return Ok(DebugOutcome::Continue);
        };
        req.resume = 0;
        self.target.refresh_threads();
        let mut outcome = DebugOutcome::Continue;
        let reason = match req.event {
            debug::EVENT_READY => {
                self.target.kernel_cr3 = req.args[0];
                self.target.no_break = req.args[1]..req.args[2];
                self.target.kernel_ready = true;
                self.target.dr_works = req.dr6 != 0;
                log::info!(
                    "gdb: the kernel reports its traps; debug registers {}",
                    if self.target.dr_works {
                        "work"
                    } else {
                        "do not fire (watchpoints are emulated)"
                    }
                );
                self.target.plant_pending();
                None
            }
            debug::EVENT_THREADS => {
                let slots = u32::try_from(req.args[1]).unwrap_or(0);
                self.target.thread_table = Some((req.args[0], slots));
                None
            }
            debug::EVENT_PROGRAM_LOADED => {
                self.target.user_cr3 = req.regs.cr3;
                if self.attached() {
                    eprintln!(
                        "astra-vmm: gdb: program loaded, entry {:#x}; its symbols: add-symbol-file PROGRAM -o {:#x}",
                        req.args[1], req.args[0]
                    );
                }
                self.target.cr3 = req.regs.cr3;
                self.target.plant_pending();
                None
            }
            debug::EVENT_BREAKPOINT => {
                self.watching.clear();
                let at = req.regs.rip.wrapping_sub(1);
                if self.target.is_sw_breakpoint(at) {
                    req.regs.rip = at;
                    Some(StopReason::SwBreak(self.target.current_tid()))
                } else {
                    Some(StopReason::SignalWithThread {
                        tid: self.target.current_tid(),
                        signal: Signal::SIGTRAP,
                    })
                }
            }
            debug::EVENT_DEBUG if !self.watching.is_empty() => match self.watch_hit() {
                Some(addr) => Some(StopReason::Watch {
                    tid: self.target.current_tid(),
                    kind: WatchKind::Write,
                    addr,
                }),
                None => {
                    // Not yet: step on without asking gdb.
                    req.resume |= debug::RESUME_STEP;
                    None
                }
            },
            debug::EVENT_DEBUG => Some(self.debug_reason(req.dr6)),
            other => {
                log::warn!("gdb: ignoring unknown debug event {other}");
                None
            }
        };
        if let (Some(reason), true) = (reason, self.attached()) {
            let fpu = ioctl("KVM_GET_FPU", fd.get_fpu())?;
            self.target.regs = regs::from_request(&req.regs, &fpu);
            self.target.regs_dirty = false;
            self.target.cr3 = req.regs.cr3;
            let resume = self.drive(Some(reason))?;
            // Always hand the registers back: a breakpoint stop moved rip back by one.
            regs::store_request(&self.target.regs, &mut req.regs);
            if self.target.regs_dirty {
                let mut fpu = fpu;
                regs::store_fpu(&self.target.regs.core, &mut fpu);
                ioctl("KVM_SET_FPU", fd.set_fpu(&fpu))?;
            }
            if resume == Resume::Run(ResumeAction::Step) {
                req.resume |= debug::RESUME_STEP;
            }
            outcome = self.finish(resume);
        }
        let (dr, dr7) = self.target.debug_registers();
        req.dr = dr;
        req.dr7 = dr7;
        req.resume |= debug::RESUME_SET_DEBUG_REGS;
        if self
            .target
            .mem()
            .write_slice(&encode_request(&req), GuestAddress(gpa))
            .is_err()
        {
            log::warn!("gdb: cannot answer the debug request at {gpa:#x}");
        }
        Ok(outcome)
    }

    /// Loads the debug registers through KVM.
    fn load_debug_registers(&self, fd: &VcpuFd) {
        let (dr, dr7) = self.target.debug_registers();
        let dregs = kvm_debugregs {
            db: dr,
            dr6: 0xffff_0ff0,
            dr7: dr7 | (1 << 10),
            ..Default::default()
        };
        if let Err(e) = fd.set_debug_regs(&dregs) {
            log::warn!("gdb: cannot load the debug registers: {e}");
        }
    }

    /// What a #DB with `dr6` means to gdb.
    fn debug_reason(&self, dr6: u64) -> StopReason {
        for (i, slot) in self.target.hw.iter().enumerate() {
            if dr6 & (1 << i) == 0 {
                continue;
            }
            if let Some(slot) = slot {
                return match slot.watch {
                    Some(kind) => StopReason::Watch {
                        tid: self.target.current_tid(),
                        kind: if kind == WatchKind::Read {
                            WatchKind::ReadWrite
                        } else {
                            kind
                        },
                        addr: slot.addr,
                    },
                    None => StopReason::HwBreak(self.target.current_tid()),
                };
            }
        }
        StopReason::SignalWithThread {
            tid: self.target.current_tid(),
            signal: Signal::SIGTRAP,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_request_addresses_are_refused() {
        let mem =
            vm_memory::GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 0x10_000)]).unwrap();
        let q = DebugRequest {
            event: debug::EVENT_BREAKPOINT,
            ..Default::default()
        };
        mem.write_slice(&encode_request(&q), GuestAddress(0x1000))
            .unwrap();
        assert_eq!(read_request(&mem, 0x1000), Some(q));
        assert_eq!(read_request(&mem, 0x1004), None);
        assert_eq!(read_request(&mem, 0x10_000 - 8), None);
        assert_eq!(read_request(&mem, !7), None);
    }

    #[test]
    fn request_blocks_round_trip() {
        let mut q = DebugRequest::default();
        q.regs.rax = 1;
        q.regs.cr3 = 0x1234_5000;
        q.args = [7, 8, 9];
        q.dr = [1, 2, 3, 4];
        q.dr6 = 0xffff_4ff0;
        q.dr7 = 0x403;
        q.event = debug::EVENT_DEBUG;
        q.resume = debug::RESUME_STEP;
        let raw = encode_request(&q);
        assert_eq!(decode_request(&raw), q);
        assert_eq!(
            &raw[core::mem::offset_of!(DebugRequest, event)..][..4],
            &debug::EVENT_DEBUG.to_le_bytes()
        );
        assert_eq!(
            &raw[core::mem::offset_of!(DebugRequest, dr6)..][..8],
            &0xffff_4ff0u64.to_le_bytes()
        );
    }
}

//! Conversions between gdb's x86-64 register set and where the registers of a stopped
//! guest live: KVM's vCPU state (a stop the VMM made) or the kernel's debug request (a
//! stop the kernel reported from its #BP/#DB handler).

use gdbstub_arch::x86::reg::{X86SegmentRegs, X86_64CoreRegs, X87FpuInternalRegs};

use super::arch::AstraRegs;
use hypercall_abi::DebugRegs;
use kvm_bindings::{kvm_fpu, kvm_regs, kvm_sregs};

/// The FPU/SSE part, shared by both kinds of stop (the kernel does not touch it).
pub fn fill_fpu(regs: &mut X86_64CoreRegs, fpu: &kvm_fpu) {
    for (st, fpr) in regs.st.iter_mut().zip(fpu.fpr.iter()) {
        st.copy_from_slice(&fpr[..10]);
    }
    regs.fpu = X87FpuInternalRegs {
        fctrl: u32::from(fpu.fcw),
        fstat: u32::from(fpu.fsw),
        ftag: u32::from(fpu.ftwx),
        fiseg: 0,
        fioff: fpu.last_ip as u32,
        foseg: 0,
        fooff: fpu.last_dp as u32,
        fop: u32::from(fpu.last_opcode),
    };
    for (x, k) in regs.xmm.iter_mut().zip(fpu.xmm.iter()) {
        *x = u128::from_le_bytes(*k);
    }
    regs.mxcsr = fpu.mxcsr;
}

/// Writes gdb's FPU/SSE registers into `fpu`.
pub fn store_fpu(regs: &X86_64CoreRegs, fpu: &mut kvm_fpu) {
    for (st, fpr) in regs.st.iter().zip(fpu.fpr.iter_mut()) {
        fpr[..10].copy_from_slice(st);
    }
    fpu.fcw = regs.fpu.fctrl as u16;
    fpu.fsw = regs.fpu.fstat as u16;
    fpu.ftwx = regs.fpu.ftag as u8;
    for (x, k) in regs.xmm.iter().zip(fpu.xmm.iter_mut()) {
        *k = x.to_le_bytes();
    }
    fpu.mxcsr = regs.mxcsr;
}

/// gdb's registers from KVM's.
pub fn from_kvm(r: &kvm_regs, s: &kvm_sregs, fpu: &kvm_fpu) -> AstraRegs {
    let mut core = X86_64CoreRegs {
        regs: [
            r.rax, r.rbx, r.rcx, r.rdx, r.rsi, r.rdi, r.rbp, r.rsp, r.r8, r.r9, r.r10, r.r11,
            r.r12, r.r13, r.r14, r.r15,
        ],
        eflags: r.rflags as u32,
        rip: r.rip,
        segments: X86SegmentRegs {
            cs: u32::from(s.cs.selector),
            ss: u32::from(s.ss.selector),
            ds: u32::from(s.ds.selector),
            es: u32::from(s.es.selector),
            fs: u32::from(s.fs.selector),
            gs: u32::from(s.gs.selector),
        },
        ..Default::default()
    };
    fill_fpu(&mut core, fpu);
    AstraRegs {
        core,
        orig_rax: u64::MAX,
        fs_base: s.fs.base,
        gs_base: s.gs.base,
    }
}

/// Writes gdb's segment bases into KVM's special registers.
pub fn store_sregs(regs: &AstraRegs, s: &mut kvm_sregs) {
    s.fs.base = regs.fs_base;
    s.gs.base = regs.gs_base;
}

/// Writes gdb's general-purpose registers, rip and rflags into KVM's (segment selectors
/// are not writable: changing them under a running kernel would only crash it).
pub fn store_kvm(regs: &AstraRegs, r: &mut kvm_regs) {
    let regs = &regs.core;
    let g = &regs.regs;
    (r.rax, r.rbx, r.rcx, r.rdx, r.rsi, r.rdi, r.rbp, r.rsp) =
        (g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7]);
    (r.r8, r.r9, r.r10, r.r11, r.r12, r.r13, r.r14, r.r15) =
        (g[8], g[9], g[10], g[11], g[12], g[13], g[14], g[15]);
    r.rip = regs.rip;
    r.rflags = (r.rflags & !0xffff_ffff) | u64::from(regs.eflags);
}

/// gdb's registers from a debug request (and the FPU from KVM).
pub fn from_request(d: &DebugRegs, fpu: &kvm_fpu) -> AstraRegs {
    let mut core = X86_64CoreRegs {
        regs: [
            d.rax, d.rbx, d.rcx, d.rdx, d.rsi, d.rdi, d.rbp, d.rsp, d.r8, d.r9, d.r10, d.r11,
            d.r12, d.r13, d.r14, d.r15,
        ],
        eflags: d.rflags as u32,
        rip: d.rip,
        segments: X86SegmentRegs {
            cs: d.cs as u32,
            ss: d.ss as u32,
            ..Default::default()
        },
        ..Default::default()
    };
    fill_fpu(&mut core, fpu);
    AstraRegs {
        core,
        orig_rax: u64::MAX,
        fs_base: d.fs_base,
        gs_base: d.gs_base,
    }
}

/// Writes gdb's registers into a debug request (the kernel applies what it allows).
pub fn store_request(regs: &AstraRegs, d: &mut DebugRegs) {
    d.fs_base = regs.fs_base;
    d.gs_base = regs.gs_base;
    let regs = &regs.core;
    let g = &regs.regs;
    (d.rax, d.rbx, d.rcx, d.rdx, d.rsi, d.rdi, d.rbp, d.rsp) =
        (g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7]);
    (d.r8, d.r9, d.r10, d.r11, d.r12, d.r13, d.r14, d.r15) =
        (g[8], g[9], g[10], g[11], g[12], g[13], g[14], g[15]);
    d.rip = regs.rip;
    d.rflags = u64::from(regs.eflags);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_round_trip() {
        let d = DebugRegs {
            rax: 1,
            rbx: 2,
            rbp: 7,
            rsp: 8,
            r15: 16,
            rip: 0x40_1000,
            rflags: 0x246,
            cs: 0x93,
            ss: 0x8b,
            ..Default::default()
        };
        let mut fpu = kvm_fpu::default();
        fpu.xmm[3] = [9; 16];
        fpu.mxcsr = 0x1f80;
        let regs = from_request(
            &DebugRegs {
                fs_base: 0x7000,
                ..d
            },
            &fpu,
        );
        assert_eq!(regs.fs_base, 0x7000);
        assert_eq!(regs.core.regs[6], 7);
        assert_eq!(regs.core.regs[7], 8);
        assert_eq!(regs.core.segments.cs, 0x93);
        assert_eq!(regs.core.xmm[3], u128::from_le_bytes([9; 16]));
        let mut back = DebugRegs::default();
        store_request(&regs, &mut back);
        assert_eq!(back.rip, d.rip);
        assert_eq!(back.r15, 16);
        assert_eq!(back.fs_base, 0x7000);
        let mut fpu2 = kvm_fpu::default();
        store_fpu(&regs.core, &mut fpu2);
        assert_eq!(fpu2.xmm[3], [9; 16]);
        assert_eq!(fpu2.mxcsr, 0x1f80);
    }
}

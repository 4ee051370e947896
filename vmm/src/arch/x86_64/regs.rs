//! The vCPU's initial register state (64-bit long mode at the kernel entry) and the register
//! dump printed when a guest crashes.

use std::fmt::Write as _;

use kvm_bindings::{kvm_fpu, kvm_lapic_state, kvm_regs, kvm_sregs};

use super::gdt::{kvm_segment_from_gdt, BOOT_GDT, CODE_SELECTOR, DATA_SELECTOR};
use super::layout::{BOOT_GDT_GPA, BOOT_PML4_GPA};

/// CR0: protected mode.
pub const CR0_PE: u64 = 1 << 0;
/// CR0: extension type (always 1 on modern CPUs).
pub const CR0_ET: u64 = 1 << 4;
/// CR0: native FPU error reporting.
pub const CR0_NE: u64 = 1 << 5;
/// CR0: ring 0 honours read-only pages.
pub const CR0_WP: u64 = 1 << 16;
/// CR0: paging.
pub const CR0_PG: u64 = 1 << 31;
/// CR4: physical address extension (required for long mode).
pub const CR4_PAE: u64 = 1 << 5;
/// EFER: long mode enable.
pub const EFER_LME: u64 = 1 << 8;
/// EFER: long mode active.
pub const EFER_LMA: u64 = 1 << 10;
/// RFLAGS: the reserved bit 1 that always reads as 1; interrupts are off.
pub const RFLAGS_BOOT: u64 = 0x2;

/// Offset of the LAPIC's LVT LINT0 register.
const APIC_LVT0: usize = 0x350;
/// Offset of the LAPIC's LVT LINT1 register.
const APIC_LVT1: usize = 0x360;
/// LVT delivery mode NMI.
const APIC_MODE_NMI: u32 = 0x4;
/// LVT delivery mode ExtINT (the 8259 PIC's output).
const APIC_MODE_EXTINT: u32 = 0x7;

/// The special registers for 64-bit long mode with the boot GDT and page tables, starting
/// from the vCPU's reset state `sregs` (which keeps its TR and LDT).
pub fn long_mode_sregs(mut sregs: kvm_sregs) -> kvm_sregs {
    let code = kvm_segment_from_gdt(BOOT_GDT[1], CODE_SELECTOR);
    let data = kvm_segment_from_gdt(BOOT_GDT[2], DATA_SELECTOR);
    sregs.cs = code;
    sregs.ds = data;
    sregs.es = data;
    sregs.fs = data;
    sregs.gs = data;
    sregs.ss = data;
    sregs.gdt.base = BOOT_GDT_GPA;
    sregs.gdt.limit = (std::mem::size_of_val(&BOOT_GDT) - 1) as u16;
    sregs.idt.base = 0;
    sregs.idt.limit = 0;
    sregs.cr3 = BOOT_PML4_GPA;
    sregs.cr4 |= CR4_PAE;
    sregs.cr0 |= CR0_PE | CR0_ET | CR0_NE | CR0_WP | CR0_PG;
    sregs.efer |= EFER_LME | EFER_LMA;
    sregs
}

/// The general registers at boot: `rip` = the kernel entry, `rdi` = the boot info GPA.
pub fn boot_regs(entry: u64, boot_info_gpa: u64) -> kvm_regs {
    kvm_regs {
        rip: entry,
        rdi: boot_info_gpa,
        rflags: RFLAGS_BOOT,
        ..Default::default()
    }
}

/// The x87/SSE state at boot: default control words, as after `fninit`.
pub fn boot_fpu() -> kvm_fpu {
    kvm_fpu {
        fcw: 0x37f,
        mxcsr: 0x1f80,
        ..Default::default()
    }
}

fn lapic_reg(lapic: &kvm_lapic_state, offset: usize) -> u32 {
    let mut bytes = [0u8; 4];
    for (byte, reg) in bytes.iter_mut().zip(&lapic.regs[offset..offset + 4]) {
        *byte = *reg as u8;
    }
    u32::from_le_bytes(bytes)
}

fn set_lapic_reg(lapic: &mut kvm_lapic_state, offset: usize, value: u32) {
    for (reg, byte) in lapic.regs[offset..offset + 4]
        .iter_mut()
        .zip(value.to_le_bytes())
    {
        *reg = byte as _;
    }
}

/// Routes the 8259 PIC to LINT0 (ExtINT) and NMIs to LINT1, as a PC's firmware does, so the
/// legacy PIT interrupt reaches the CPU.
pub fn set_lint(lapic: &mut kvm_lapic_state) {
    let mode = |reg: u32, mode: u32| (reg & !0x700) | (mode << 8);
    let lvt0 = lapic_reg(lapic, APIC_LVT0);
    set_lapic_reg(lapic, APIC_LVT0, mode(lvt0, APIC_MODE_EXTINT));
    let lvt1 = lapic_reg(lapic, APIC_LVT1);
    set_lapic_reg(lapic, APIC_LVT1, mode(lvt1, APIC_MODE_NMI));
}

/// A multi-line dump of the registers that matter when a guest dies.
pub fn format_registers(regs: &kvm_regs, sregs: &kvm_sregs) -> String {
    let mut out = String::new();
    let gprs = [
        ("rax", regs.rax),
        ("rbx", regs.rbx),
        ("rcx", regs.rcx),
        ("rdx", regs.rdx),
        ("rsi", regs.rsi),
        ("rdi", regs.rdi),
        ("rbp", regs.rbp),
        ("rsp", regs.rsp),
        ("r8", regs.r8),
        ("r9", regs.r9),
        ("r10", regs.r10),
        ("r11", regs.r11),
        ("r12", regs.r12),
        ("r13", regs.r13),
        ("r14", regs.r14),
        ("r15", regs.r15),
        ("rip", regs.rip),
        ("rflags", regs.rflags),
        ("cr0", sregs.cr0),
        ("cr2", sregs.cr2),
        ("cr3", sregs.cr3),
        ("cr4", sregs.cr4),
        ("efer", sregs.efer),
    ];
    for row in gprs.chunks(4) {
        let line: Vec<String> = row
            .iter()
            .map(|(name, value)| format!("{name:>6}={value:#018x}"))
            .collect();
        let _ = writeln!(out, "  {}", line.join(" "));
    }
    let _ = write!(
        out,
        "      cs={:#06x} ss={:#06x}",
        sregs.cs.selector, sregs.ss.selector
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_mode_state() {
        let sregs = long_mode_sregs(kvm_sregs::default());
        assert_eq!(sregs.cr0 & (CR0_PE | CR0_PG), CR0_PE | CR0_PG);
        assert_eq!(sregs.cr4 & CR4_PAE, CR4_PAE);
        assert_eq!(sregs.efer, EFER_LME | EFER_LMA);
        assert_eq!(sregs.cr3, 0xb000);
        assert_eq!((sregs.gdt.base, sregs.gdt.limit), (0x500, 23));
        assert_eq!((sregs.cs.selector, sregs.cs.l), (0x08, 1));
        for seg in [sregs.ds, sregs.es, sregs.fs, sregs.gs, sregs.ss] {
            assert_eq!(seg.selector, 0x10);
        }
    }

    #[test]
    fn boot_registers() {
        let regs = boot_regs(0xffff_ffff_8020_0000, 0x7000);
        assert_eq!(regs.rip, 0xffff_ffff_8020_0000);
        assert_eq!(regs.rdi, 0x7000);
        assert_eq!(regs.rflags, 2);
        assert_eq!(regs.rsp, 0);
    }

    #[test]
    fn lint_pins_get_extint_and_nmi() {
        let mut lapic = kvm_lapic_state::default();
        set_lapic_reg(&mut lapic, APIC_LVT0, 0x0001_0700);
        set_lint(&mut lapic);
        assert_eq!(lapic_reg(&lapic, APIC_LVT0), 0x0001_0700);
        assert_eq!(lapic_reg(&lapic, APIC_LVT1), 0x400);
    }

    #[test]
    fn register_dump_names_everything() {
        let regs = kvm_regs {
            rip: 0xdead_beef,
            r15: 15,
            ..Default::default()
        };
        let sregs = long_mode_sregs(kvm_sregs::default());
        let dump = format_registers(&regs, &sregs);
        for name in [
            "rax",
            "r15",
            "rip",
            "rflags",
            "cr2",
            "efer",
            "cs=0x0008",
            "ss=0x0010",
        ] {
            assert!(dump.contains(name), "{name} missing from {dump}");
        }
        assert!(dump.contains("0x00000000deadbeef"));
    }
}

//! Thin typed wrappers over single x86-64 instructions and registers.

use core::arch::asm;

/// Reads the time-stamp counter.
#[inline(always)]
pub fn rdtsc() -> u64 {
    let lo: u32;
    let hi: u32;
    // SAFETY: rdtsc only reads a counter; CR4.TSD is never set by this kernel.
    unsafe { asm!("rdtsc", out("eax") lo, out("edx") hi, options(nomem, nostack)) };
    ((hi as u64) << 32) | lo as u64
}

/// Reads a model-specific register.
///
/// # Safety
/// The MSR must exist (or a #GP handler must be prepared to recover, see
/// `platform::probe_msr`).
pub unsafe fn rdmsr(msr: u32) -> u64 {
    let lo: u32;
    let hi: u32;
    // SAFETY: the caller guarantees the MSR exists or the #GP is handled.
    unsafe { asm!("rdmsr", in("ecx") msr, out("eax") lo, out("edx") hi, options(nostack)) };
    ((hi as u64) << 32) | lo as u64
}

/// Writes a model-specific register.
///
/// # Safety
/// The MSR must exist and the value must not break the kernel's invariants.
pub unsafe fn wrmsr(msr: u32, value: u64) {
    // SAFETY: the caller guarantees the write is valid.
    unsafe {
        asm!("wrmsr", in("ecx") msr, in("eax") value as u32, in("edx") (value >> 32) as u32,
             options(nostack))
    };
}

/// Reads CR2, the faulting address of the last page fault.
pub fn read_cr2() -> u64 {
    let value: u64;
    // SAFETY: reading CR2 has no side effects.
    unsafe { asm!("mov {}, cr2", out(reg) value, options(nomem, nostack)) };
    value
}

/// Reads CR3.
pub fn read_cr3() -> u64 {
    let value: u64;
    // SAFETY: reading CR3 has no side effects.
    unsafe { asm!("mov {}, cr3", out(reg) value, options(nomem, nostack)) };
    value
}

/// Loads CR3.
///
/// # Safety
/// `pml4_phys` must be a valid PML4 that maps the running kernel.
pub unsafe fn write_cr3(pml4_phys: u64) {
    // SAFETY: the caller guarantees the new tables map the kernel.
    unsafe { asm!("mov cr3, {}", in(reg) pml4_phys, options(nostack)) };
}

/// Reads CR0.
pub fn read_cr0() -> u64 {
    let value: u64;
    // SAFETY: reading CR0 has no side effects.
    unsafe { asm!("mov {}, cr0", out(reg) value, options(nomem, nostack)) };
    value
}

/// Writes CR0.
///
/// # Safety
/// The value must keep protected mode and paging on.
pub unsafe fn write_cr0(value: u64) {
    // SAFETY: the caller guarantees a valid value.
    unsafe { asm!("mov cr0, {}", in(reg) value, options(nostack)) };
}

/// Reads CR4.
pub fn read_cr4() -> u64 {
    let value: u64;
    // SAFETY: reading CR4 has no side effects.
    unsafe { asm!("mov {}, cr4", out(reg) value, options(nomem, nostack)) };
    value
}

/// Writes CR4.
///
/// # Safety
/// The value must keep PAE on and only enable features the CPU has.
pub unsafe fn write_cr4(value: u64) {
    // SAFETY: the caller guarantees a valid value.
    unsafe { asm!("mov cr4, {}", in(reg) value, options(nostack)) };
}

/// Invalidates the TLB entry of one page.
pub fn invlpg(va: u64) {
    // SAFETY: invlpg only drops a cached translation.
    unsafe { asm!("invlpg [{}]", in(reg) va, options(nostack)) };
}

/// Stops the CPU until the next interrupt.
pub fn hlt() {
    // SAFETY: hlt waits for an interrupt; it does not touch memory.
    unsafe { asm!("hlt", options(nomem, nostack)) };
}

/// Sets RFLAGS.IF.
pub fn sti() {
    // SAFETY: enabling interrupts is sound once the IDT is loaded (it always is after boot).
    unsafe { asm!("sti", options(nomem, nostack)) };
}

/// Clears RFLAGS.IF.
pub fn cli() {
    // SAFETY: disabling interrupts is always sound.
    unsafe { asm!("cli", options(nomem, nostack)) };
}

/// `sti; hlt` as one unit, so an interrupt cannot slip in between and be missed.
pub fn sti_hlt() {
    // SAFETY: as for sti and hlt.
    unsafe { asm!("sti", "hlt", options(nomem, nostack)) };
}

/// Executes CPUID.
pub fn cpuid(leaf: u32, subleaf: u32) -> [u32; 4] {
    let r = core::arch::x86_64::__cpuid_count(leaf, subleaf);
    [r.eax, r.ebx, r.ecx, r.edx]
}

/// Model-specific registers used by the kernel.
pub mod msr {
    /// Extended feature enables.
    pub const EFER: u32 = 0xc000_0080;
    /// SYSCALL/SYSRET segment bases.
    pub const STAR: u32 = 0xc000_0081;
    /// SYSCALL entry point.
    pub const LSTAR: u32 = 0xc000_0082;
    /// RFLAGS bits cleared on SYSCALL.
    pub const FMASK: u32 = 0xc000_0084;
    /// FS base.
    pub const FS_BASE: u32 = 0xc000_0100;
    /// EFER.SCE: SYSCALL enable.
    pub const EFER_SCE: u64 = 1 << 0;
    /// EFER.NXE: no-execute enable.
    pub const EFER_NXE: u64 = 1 << 11;
}

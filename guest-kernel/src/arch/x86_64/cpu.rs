//! Thin typed wrappers over single x86-64 instructions and registers.

use core::arch::asm;
use core::sync::atomic::{AtomicU64, Ordering};

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

/// What kernel code last loaded into CR3 ([`write_cr3`]); 0 before the first load. On
/// PVM every read of CR3 is a trap to the host (~60k cycles on 2026-12-05), so the
/// kernel asks this instead ([`loaded_cr3`]). The entry code's own switches to user-mode
/// tables are undone before kernel code runs, so they never show here. One vCPU: with a
/// second, this moves into the per-CPU area.
static LOADED_CR3: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

/// Loads CR3.
///
/// # Safety
/// `pml4_phys` must be a valid PML4 that maps the running kernel.
pub unsafe fn write_cr3(pml4_phys: u64) {
    LOADED_CR3.store(pml4_phys, core::sync::atomic::Ordering::Relaxed);
    // SAFETY: the caller guarantees the new tables map the kernel.
    unsafe { asm!("mov cr3, {}", in(reg) pml4_phys, options(nostack)) };
}

/// CR3 as kernel code sees it, without reading the register once [`write_cr3`] has set
/// it (the boot loader's tables before that).
pub fn loaded_cr3() -> u64 {
    match LOADED_CR3.load(core::sync::atomic::Ordering::Relaxed) {
        0 => read_cr3(),
        value => value,
    }
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

// hlt, sti, cli and sti+hlt are compiler memory barriers (no `nomem`), as Linux's
// `native_safe_halt` and `local_irq_*` carry a "memory" clobber: interrupt handlers run
// inside or right after them and change kernel data (the scheduler's timer list and run
// queue). With `nomem` the compiler may keep values it loaded before a halt and use them
// after it: the idle loop then worked on a timer tree the timer interrupt had just
// changed (a leaf removal with a negative length; 1 boot in ~60 on the QEMU tier).

/// Stops the CPU until the next interrupt.
pub fn hlt() {
    // SAFETY: hlt waits for an interrupt; the handlers it lets run may change memory,
    // which the missing `nomem` tells the compiler.
    unsafe { asm!("hlt", options(nostack)) };
}

/// Sets RFLAGS.IF.
pub fn sti() {
    // SAFETY: enabling interrupts is sound once the IDT is loaded (it always is after boot);
    // a compiler barrier, as handlers may run right after it.
    unsafe { asm!("sti", options(nostack)) };
}

/// Clears RFLAGS.IF.
pub fn cli() {
    // SAFETY: disabling interrupts is always sound; a compiler barrier, so that no access
    // to data the handlers share moves above it.
    unsafe { asm!("cli", options(nostack)) };
}

/// `sti; hlt` as one unit, so an interrupt cannot slip in between and be missed.
pub fn sti_hlt() {
    // SAFETY: as for sti and hlt.
    unsafe { asm!("sti", "hlt", options(nostack)) };
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
    /// GS base (the kernel never uses GS or `swapgs`, so this is the user's).
    pub const GS_BASE: u32 = 0xc000_0101;
    /// The GS base `swapgs` exchanges with GS_BASE.
    pub const KERNEL_GS_BASE: u32 = 0xc000_0102;
    /// EFER.SCE: SYSCALL enable.
    pub const EFER_SCE: u64 = 1 << 0;
    /// EFER.NXE: no-execute enable.
    pub const EFER_NXE: u64 = 1 << 11;
}

/// True if `va` is canonical for 48-bit virtual addresses.
pub fn is_canonical(va: u64) -> bool {
    let top = va >> 47;
    top == 0 || top == 0x1_ffff
}

/// Which user segment base.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SegmentBase {
    /// FS: thread-local storage on x86-64 Linux.
    Fs = 0,
    /// GS.
    Gs = 1,
}

impl SegmentBase {
    fn msr(self) -> u32 {
        match self {
            SegmentBase::Fs => msr::FS_BASE,
            SegmentBase::Gs => msr::GS_BASE,
        }
    }
}

/// The segment bases last written, so that loading the same value again when a thread
/// is resumed costs nothing (each `wrmsr` traps to the host on PVM). `u64::MAX` (not
/// canonical): unknown.
static LOADED_BASES: [AtomicU64; 2] = [AtomicU64::new(u64::MAX), AtomicU64::new(u64::MAX)];

/// Loads a user segment base for a thread about to run, skipping the write when the CPU
/// already holds `base` from the last [`write_segment_base`]. (If user mode changed the
/// base since by loading a segment selector, it keeps that change, as Linux does.)
pub fn load_segment_base(which: SegmentBase, base: u64) -> bool {
    if LOADED_BASES[which as usize].load(Ordering::Relaxed) == base {
        return true;
    }
    write_segment_base(which, base)
}

/// Writes a user segment base. Returns false (and changes nothing) for a non-canonical
/// base, which the CPU would refuse with a #GP.
///
/// The kernel uses neither FS nor GS and never executes `swapgs`, so the bases stay as
/// set while it runs. The GS base goes to both GS_BASE and KERNEL_GS_BASE: PVM hosts
/// take the guest's GS base from KERNEL_GS_BASE when they switch it to user mode (a
/// standard kernel would have done `swapgs` there); on hardware KERNEL_GS_BASE is unused.
pub fn write_segment_base(which: SegmentBase, base: u64) -> bool {
    if !is_canonical(base) {
        return false;
    }
    // SAFETY: FS_BASE, GS_BASE and KERNEL_GS_BASE exist on every x86-64 CPU and accept
    // any canonical value; the kernel does not depend on them.
    unsafe {
        wrmsr(which.msr(), base);
        if which == SegmentBase::Gs {
            wrmsr(msr::KERNEL_GS_BASE, base);
        }
    }
    LOADED_BASES[which as usize].store(base, Ordering::Relaxed);
    true
}

/// Reads a user segment base.
pub fn read_segment_base(which: SegmentBase) -> u64 {
    // SAFETY: FS_BASE and GS_BASE exist on every x86-64 CPU; reading has no side effects.
    unsafe { rdmsr(which.msr()) }
}

/// CPUID.1:EDX, the feature bits Linux hands programs as `AT_HWCAP`, asked once (CPUID
/// traps on PVM: ~80k cycles an exec on 2026-12-05).
pub fn hwcap() -> u32 {
    static HWCAP: spin::Once<u32> = spin::Once::new();
    *HWCAP.call_once(|| cpuid(1, 0)[3])
}

/// Hardware random-number instructions the CPU reports in CPUID.
#[derive(Clone, Copy, Debug, Default)]
pub struct RngFeatures {
    /// RDRAND (CPUID.1:ECX bit 30).
    pub rdrand: bool,
    /// RDSEED (CPUID.(7,0):EBX bit 18).
    pub rdseed: bool,
}

/// Asks CPUID which hardware random-number instructions exist (CPUID traps on PVM:
/// call it once and keep the answer).
pub fn rng_features() -> RngFeatures {
    let max_leaf = cpuid(0, 0)[0];
    RngFeatures {
        rdrand: cpuid(1, 0)[2] & (1 << 30) != 0,
        rdseed: max_leaf >= 7 && cpuid(7, 0)[1] & (1 << 18) != 0,
    }
}

/// One RDRAND value, retried a few times as Intel recommends; `None` if the CPU lacks
/// the instruction (per `features`) or it kept failing.
pub fn rdrand(features: RngFeatures) -> Option<u64> {
    if !features.rdrand {
        return None;
    }
    for _ in 0..10 {
        let value: u64;
        let ok: u8;
        // SAFETY: CPUID reported RDRAND; it only writes the output register and CF.
        unsafe {
            asm!("rdrand {}", "setc {}", out(reg) value, out(reg_byte) ok, options(nomem, nostack))
        };
        if ok != 0 {
            return Some(value);
        }
    }
    None
}

/// One RDSEED value, likewise.
pub fn rdseed(features: RngFeatures) -> Option<u64> {
    if !features.rdseed {
        return None;
    }
    for _ in 0..10 {
        let value: u64;
        let ok: u8;
        // SAFETY: CPUID reported RDSEED; it only writes the output register and CF.
        unsafe {
            asm!("rdseed {}", "setc {}", out(reg) value, out(reg_byte) ok, options(nomem, nostack))
        };
        if ok != 0 {
            return Some(value);
        }
    }
    None
}

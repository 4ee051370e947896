//! The one place that knows whether the kernel runs on hardware KVM or on PVM.
//!
//! On hardware KVM (VT-x/AMD-V) the kernel is a standard x86-64 kernel. On a PVM host
//! ("Pagetable-based Virtual Machine", see PLATFORM.md) ring-0 code is emulated ~1000x
//! slower until the kernel opts in to native execution by registering a small shared
//! structure; after that:
//! - the interrupt flag lives in that structure (`cli`/`sti` still work but trap);
//! - user code must use selectors the host GDT does not have ([`gdt::USER_PVM`]);
//! - `int 0x80` from user mode arrives as #GP with error code 0x402.
//!
//! Everything above this module asks it for those few facts and stays unaware of which
//! platform it runs on.

use core::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};

use super::{cpu, gdt};

/// MSR whose value is "PVM" on a PVM host.
const MSR_PVM_SIGNATURE: u32 = 0x4b56_4d11;
/// MSR that takes the guest-physical address of [`PvmShared`] to opt in.
const MSR_PVM_SHARED: u32 = 0x4b56_4d10;
const PVM_SIGNATURE: u64 = 0x4d_5650;

/// Which CPU back end the kernel runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Platform {
    /// Hardware-assisted KVM (VT-x/AMD-V): standard x86-64.
    Hardware,
    /// PVM, after opting in to native execution.
    Pvm,
}

/// The structure shared with a PVM host.
#[repr(C, align(4096))]
struct PvmShared {
    /// The virtual interrupt flag.
    if_: u8,
    /// Set by the host when an interrupt waits for `if_`.
    pending: u8,
    _pad: [u8; 6],
    /// Faulting address of the last page fault.
    cr2: u64,
}

static mut PVM_SHARED: PvmShared = PvmShared {
    if_: 0,
    pending: 0,
    _pad: [0; 6],
    cr2: 0,
};

static PLATFORM: AtomicU8 = AtomicU8::new(0);
/// Set while `probe_msr` runs, so the #GP handler knows a fault is expected.
static PROBING: AtomicBool = AtomicBool::new(false);
static PROBE_FAULTED: AtomicBool = AtomicBool::new(false);

/// Detects the platform and programs SYSCALL for it (on PVM, STAR must be set before
/// the opt-in: the host derives the kernel's selectors from it).
///
/// Needs the GDT and IDT loaded: the probe may #GP on hardware KVM.
pub fn detect() -> Platform {
    let platform = if probe_msr(MSR_PVM_SIGNATURE) == Some(PVM_SIGNATURE) {
        Platform::Pvm
    } else {
        Platform::Hardware
    };
    PLATFORM.store(platform as u8 + 1, Ordering::Relaxed);
    // SAFETY: GDT and IDT are loaded and the platform is known, as init_syscall requires.
    unsafe { super::trap::init_syscall() };
    platform
}

/// On PVM, switches the kernel to native execution; nothing to do on hardware KVM.
///
/// Every page the kernel touches from then on must be mapped with the user bit (see
/// [`kernel_pte_flags`]); the VMM's boot tables are.
///
/// The opt-in also asks for [`pvm_feature::DEFAULT`], what of it the host offers (see
/// [`set_pvm_features`]).
pub fn enable_native(kernel_phys_of: impl Fn(u64) -> u64) {
    if current() != Platform::Pvm {
        return;
    }
    let shared_pa = kernel_phys_of(&raw const PVM_SHARED as u64);
    // SAFETY: the host documented this MSR: it takes the page-aligned GPA of the shared
    // structure, which lives in the kernel image forever.
    unsafe { cpu::wrmsr(MSR_PVM_SHARED, shared_pa) };
    let offered = probe_msr(MSR_PVM_FEATURES).unwrap_or(0);
    PVM_FEATURES_OFFERED.store(offered, Ordering::Relaxed);
    set_pvm_features(kernel_phys_of, pvm_feature::DEFAULT);
}

/// Opt-in feature bits: bits 0-6 of the value written to [`MSR_PVM_SHARED`] with the
/// shared structure's address. The names are the host's (from its BTF); the meanings are
/// what was measured on this host (README, "Two KVM platforms"); undocumented anywhere.
pub mod pvm_feature {
    /// `pv_kpti`: user mode runs on the PML4 4 KiB above the one in CR3 (Linux's KPTI
    /// pair). Alone it does not switch back on entry to the kernel.
    pub const KPTI: u64 = 1 << 0;
    /// `pv_preflip`: with KPTI, the kernel runs on the PML4 in CR3 again after a trap or
    /// system call from user mode (the trap itself is still delivered through user mode's).
    pub const PREFLIP: u64 = 1 << 1;
    /// `pv_preflip_syscall`: no effect seen alone; needed with the others for traps.
    pub const PREFLIP_SYSCALL: u64 = 1 << 2;
    /// `pv_cr2_cell`: the host writes the address of each page fault into the shared
    /// structure's `cr2` before delivering it (reading CR2 itself traps).
    pub const CR2_CELL: u64 = 1 << 4;
    /// `pv_eretu`: with the three above, traps from user mode are delivered (IDT, TSS,
    /// the pushed frame) through the kernel's PML4 too.
    pub const ERETU: u64 = 1 << 5;
    /// The host switches page tables on every change of privilege and user mode's maps
    /// no kernel page at all: all four bits above.
    pub const HOST_SWITCHED_TABLES: u64 = KPTI | PREFLIP | PREFLIP_SYSCALL | ERETU;
    /// What the kernel asks for by default.
    pub const DEFAULT: u64 = HOST_SWITCHED_TABLES | CR2_CELL;
    /// Every bit the opt-in MSR takes.
    pub const ALL: u64 = 0x7f;
}

/// MSR that lists the opt-in feature bits the host takes (0x1ff here).
const MSR_PVM_FEATURES: u32 = 0x4b56_4d12;
static PVM_FEATURES_OFFERED: AtomicU64 = AtomicU64::new(0);
/// The feature bits in force (as the host reads them back).
static PVM_FEATURES: AtomicU64 = AtomicU64::new(0);

/// Registers the shared structure again with the opt-in feature bits `wanted` (those of
/// them the host offers). Returns the bits in force. The kernel uses
/// [`pvm_feature::HOST_SWITCHED_TABLES`] only whole: a part of it with KPTI would make
/// the host run user mode on tables the kernel did not build, so KPTI is dropped then.
/// Other bits are passed through (`astra.pvm_features=`, a probing aid).
///
/// Only before the first user-mode task: the address spaces are built for the mode.
pub fn set_pvm_features(kernel_phys_of: impl Fn(u64) -> u64, wanted: u64) -> u64 {
    if current() != Platform::Pvm {
        return 0;
    }
    let mut bits = wanted & PVM_FEATURES_OFFERED.load(Ordering::Relaxed) & pvm_feature::ALL;
    if bits & pvm_feature::HOST_SWITCHED_TABLES != pvm_feature::HOST_SWITCHED_TABLES {
        bits &= !pvm_feature::KPTI;
    }
    let shared_pa = kernel_phys_of(&raw const PVM_SHARED as u64);
    PROBE_FAULTED.store(false, Ordering::SeqCst);
    PROBING.store(true, Ordering::SeqCst);
    // SAFETY: as in enable_native; the host offered these bits. PROBING turns a refusal
    // (#GP) into a skipped instruction.
    unsafe { cpu::wrmsr(MSR_PVM_SHARED, shared_pa | bits) };
    PROBING.store(false, Ordering::SeqCst);
    let in_force = if PROBE_FAULTED.load(Ordering::SeqCst) {
        // SAFETY: the plain registration enable_native made before.
        unsafe { cpu::wrmsr(MSR_PVM_SHARED, shared_pa) };
        0
    } else {
        probe_msr(MSR_PVM_SHARED).unwrap_or(0) & pvm_feature::ALL
    };
    PVM_FEATURES.store(in_force, Ordering::Relaxed);
    in_force
}

/// True if the PVM host switches between a process's kernel and user-mode page tables by
/// itself on every trap, system call and return to user mode (see
/// [`pvm_feature::HOST_SWITCHED_TABLES`]): the entry code then never writes CR3, and
/// user-mode tables map nothing of the kernel. False on hardware KVM (no user-mode tables)
/// and on a PVM host without the features (the entry code switches; see `trap.rs`).
pub fn host_switches_tables() -> bool {
    let f = PVM_FEATURES.load(Ordering::Relaxed);
    f & pvm_feature::HOST_SWITCHED_TABLES == pvm_feature::HOST_SWITCHED_TABLES
}

/// The platform chosen at boot.
pub fn current() -> Platform {
    match PLATFORM.load(Ordering::Relaxed) {
        2 => Platform::Pvm,
        _ => Platform::Hardware,
    }
}

/// Reads an MSR that may not exist; `None` if reading it faulted.
fn probe_msr(msr: u32) -> Option<u64> {
    PROBE_FAULTED.store(false, Ordering::SeqCst);
    PROBING.store(true, Ordering::SeqCst);
    // SAFETY: PROBING tells the #GP handler to skip the rdmsr and report the fault.
    let value = unsafe { cpu::rdmsr(msr) };
    PROBING.store(false, Ordering::SeqCst);
    (!PROBE_FAULTED.load(Ordering::SeqCst)).then_some(value)
}

/// Called by the #GP handler for kernel-mode faults: true if this was an MSR probe,
/// which it then skips (`rdmsr` is two bytes) with a zero result.
pub fn recover_probe_fault(rip: &mut u64, rax: &mut u64, rdx: &mut u64) -> bool {
    if !PROBING.load(Ordering::SeqCst) {
        return false;
    }
    PROBE_FAULTED.store(true, Ordering::SeqCst);
    *rip += 2;
    *rax = 0;
    *rdx = 0;
    true
}

/// The user selectors of this platform.
pub fn user_selectors() -> gdt::UserSelectors {
    match current() {
        Platform::Hardware => gdt::USER_STANDARD,
        Platform::Pvm => gdt::USER_PVM,
    }
}

/// True if a trap frame's CS says the trap came from user mode.
pub fn is_user_cs(cs: u64) -> bool {
    let sel = user_selectors();
    cs == sel.cs as u64 || cs == sel.cs32 as u64
}

/// True if a #GP error code from user mode means the program executed `int 0x80`.
pub fn is_int80_gp(error_code: u64) -> bool {
    // IDT vector 0x80, IDT bit (bit 1) set: how PVM reports `int 0x80`.
    current() == Platform::Pvm && error_code == (0x80 << 3) | 2
}

/// True if a trap whose saved RFLAGS are `rflags` interrupted code that
/// ran with interrupts disabled. Only meaningful on hardware KVM: a PVM host keeps the
/// interrupt flag in the shared structure, not in RFLAGS.
pub fn interrupted_with_irqs_off(rflags: u64) -> bool {
    const IF: u64 = 1 << 9;
    current() == Platform::Hardware && rflags & IF == 0
}

/// Enables interrupts.
pub fn irq_enable() {
    match current() {
        Platform::Hardware => cpu::sti(),
        Platform::Pvm => {
            // SAFETY: byte-sized volatile accesses to the shared page; the host reads
            // and writes it only while this vCPU is stopped.
            unsafe {
                core::ptr::write_volatile(&raw mut PVM_SHARED.if_, 1);
                if core::ptr::read_volatile(&raw const PVM_SHARED.pending) != 0 {
                    // Let the host deliver what it held back.
                    cpu::sti();
                }
            }
        }
    }
}

/// Takes the interrupts that arrived while the kernel ran with interrupts off, at a point
/// where handling them is safe (about to return to user mode, no lock held).
///
/// On hardware KVM they are simply delivered once `iretq`/`sysretq` sets IF again. A PVM
/// host instead holds them, with `pending` set, until the guest enables interrupts with
/// `sti`: returning to user mode does not deliver them, so without this a timer tick that
/// came during a system call would be the last one the guest ever saw.
pub fn take_pending_irqs() {
    if current() != Platform::Pvm {
        return;
    }
    // SAFETY: byte-sized volatile accesses to the shared page, as in irq_enable.
    let pending = unsafe { core::ptr::read_volatile(&raw const PVM_SHARED.pending) } != 0;
    if pending {
        irq_enable();
        irq_disable();
    }
}

/// True if a system call must return to user mode with `iretq` rather than `sysretq`
/// for timer interrupts to reach user mode afterwards.
///
/// Measured on the PVM host: after `sysretq`, user mode runs with interrupts held back
/// (a thread that spins without system calls never sees another tick, so it can never be
/// preempted), while after `iretq` they arrive. On hardware `sysretq` restores IF from r11.
pub fn sysret_leaves_user_interrupts_off() -> bool {
    current() == Platform::Pvm
}

/// Disables interrupts.
pub fn irq_disable() {
    match current() {
        Platform::Hardware => cpu::cli(),
        // SAFETY: as in irq_enable.
        Platform::Pvm => unsafe { core::ptr::write_volatile(&raw mut PVM_SHARED.if_, 0) },
    }
}

/// Waits for the next interrupt with interrupts enabled, then disables them again.
pub fn idle() {
    match current() {
        Platform::Hardware => {
            cpu::sti_hlt();
            cpu::cli();
        }
        Platform::Pvm => {
            // SAFETY: as in irq_enable.
            unsafe { core::ptr::write_volatile(&raw mut PVM_SHARED.if_, 1) };
            cpu::sti_hlt();
            irq_disable();
        }
    }
}

/// Page-table bits every kernel mapping needs on this platform.
///
/// PVM runs the kernel natively at hardware CPL 3, and its shadow MMU only lets it reach
/// pages whose guest entries have the user/supervisor bit set: a supervisor-only page
/// refaults forever (the host logs "a refault livelock"). User mode still cannot reach
/// them: the self-tests check that a ring-3 read of kernel memory faults.
pub fn kernel_pte_flags() -> u64 {
    match current() {
        Platform::Hardware => 0,
        Platform::Pvm => 1 << 2,
    }
}

/// True if user mode needs page tables of its own that leave the kernel out.
///
/// On PVM every kernel page carries the user bit (see [`kernel_pte_flags`]), so only
/// separate user-mode tables keep ring 3 out of kernel memory. Hardware KVM enforces the
/// supervisor bit and needs none.
pub fn needs_kernel_isolation() -> bool {
    current() == Platform::Pvm
}

/// The address of the last page fault.
///
/// Reading CR2 traps to a PVM host; with [`pvm_feature::CR2_CELL`] the host writes the
/// address into the shared structure before it delivers the fault, and the kernel reads
/// it from there (it reads it first thing in the #PF handler, with interrupts off, as it
/// would read CR2).
pub fn fault_address() -> u64 {
    if PVM_FEATURES.load(Ordering::Relaxed) & pvm_feature::CR2_CELL != 0 {
        // SAFETY: an aligned 8-byte volatile read of the shared page, which the host
        // writes only while this vCPU is stopped.
        return unsafe { core::ptr::read_volatile(&raw const PVM_SHARED.cr2) };
    }
    cpu::read_cr2()
}

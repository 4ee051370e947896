//! The GDT and TSS.
//!
//! One GDT serves both platforms: the usual user selectors 0x23/0x2b/0x33 for hardware
//! KVM, and a second set at 0x83/0x8b/0x93 for PVM, whose host GDT already uses the
//! usual values (see `platform`).

use core::arch::asm;
use core::mem::size_of;

/// Kernel code selector.
pub const KERNEL_CS: u16 = 0x08;
/// Kernel data/stack selector.
pub const KERNEL_SS: u16 = 0x10;
/// TSS selector (a 16-byte descriptor in entries 7 and 8).
const TSS_SEL: u16 = 0x38;

/// User selectors of one platform.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UserSelectors {
    /// 32-bit user code; SYSRET derives the others from it (STAR[63:48]).
    pub cs32: u16,
    /// User data/stack selector (cs32 + 8).
    pub ss: u16,
    /// 64-bit user code (cs32 + 16).
    pub cs: u16,
}

/// The standard x86-64 user selectors.
pub const USER_STANDARD: UserSelectors = UserSelectors {
    cs32: 0x23,
    ss: 0x2b,
    cs: 0x33,
};
/// Selectors that do not exist in a PVM host's GDT.
pub const USER_PVM: UserSelectors = UserSelectors {
    cs32: 0x83,
    ss: 0x8b,
    cs: 0x93,
};

const CODE64_KERNEL: u64 = 0x00af_9b00_0000_ffff;
const DATA_KERNEL: u64 = 0x00cf_9300_0000_ffff;
const CODE32_USER: u64 = 0x00cf_fb00_0000_ffff;
const DATA_USER: u64 = 0x00cf_f300_0000_ffff;
const CODE64_USER: u64 = 0x00af_fb00_0000_ffff;

/// The 64-bit task-state segment: only the ring-0 stack and IST are used.
#[repr(C, packed(4))]
pub struct Tss {
    _reserved0: u32,
    /// Stack loaded on a trap from user mode.
    pub rsp0: u64,
    _rsp1: u64,
    _rsp2: u64,
    _reserved1: u64,
    /// Interrupt stacks (IST1 is used for double faults).
    pub ist: [u64; 7],
    _reserved2: u64,
    _reserved3: u16,
    iomap_base: u16,
}

#[link_section = ".entry.data"]
static mut TSS: Tss = Tss {
    _reserved0: 0,
    rsp0: 0,
    _rsp1: 0,
    _rsp2: 0,
    _reserved1: 0,
    ist: [0; 7],
    _reserved2: 0,
    _reserved3: 0,
    iomap_base: size_of::<Tss>() as u16,
};

#[repr(C, align(16))]
struct Gdt([u64; 19]);

#[link_section = ".entry.data"]
static mut GDT: Gdt = Gdt([0; 19]);

const DOUBLE_FAULT_STACK_SIZE: usize = 16 * 1024;
#[repr(C, align(16))]
struct FaultStack([u8; DOUBLE_FAULT_STACK_SIZE]);
// Not in .entry.data: the user-mode tables map that read-only, and nothing of the kernel
// writable besides the trampoline.
static mut DOUBLE_FAULT_STACK: FaultStack = FaultStack([0; DOUBLE_FAULT_STACK_SIZE]);

/// Builds and loads the GDT and TSS, and reloads the segment registers.
///
/// # Safety
/// Call once, on the boot CPU, before interrupts are enabled.
pub unsafe fn init() {
    // SAFETY: single-threaded early boot; nothing else references these statics yet.
    unsafe {
        let tss_addr = &raw const TSS as u64;
        let tss = &raw mut TSS;
        (*tss).ist[0] = &raw const DOUBLE_FAULT_STACK as u64 + DOUBLE_FAULT_STACK_SIZE as u64;
        // Traps from user mode land on this CPU's trampoline (see trap.rs).
        (*tss).rsp0 = super::trap::trampoline_top();
        let gdt_ptr = &raw mut GDT;
        let gdt = &mut *gdt_ptr;
        gdt.0[1] = CODE64_KERNEL;
        gdt.0[2] = DATA_KERNEL;
        gdt.0[4] = CODE32_USER;
        gdt.0[5] = DATA_USER;
        gdt.0[6] = CODE64_USER;
        let limit = (size_of::<Tss>() - 1) as u64;
        gdt.0[7] = (limit & 0xffff)
            | ((tss_addr & 0xff_ffff) << 16)
            | (0x89 << 40)
            | (((limit >> 16) & 0xf) << 48)
            | (((tss_addr >> 24) & 0xff) << 56);
        gdt.0[8] = tss_addr >> 32;
        gdt.0[16] = CODE32_USER;
        gdt.0[17] = DATA_USER;
        gdt.0[18] = CODE64_USER;

        #[repr(C, packed)]
        struct Pointer {
            limit: u16,
            base: u64,
        }
        let ptr = Pointer {
            limit: (size_of::<Gdt>() - 1) as u16,
            base: gdt.0.as_ptr() as u64,
        };
        asm!(
            "lgdt [{ptr}]",
            "push {cs}",
            "lea {tmp}, [rip + 2f]",
            "push {tmp}",
            "retfq",
            "2:",
            "mov ds, {ss:x}",
            "mov es, {ss:x}",
            "mov ss, {ss:x}",
            "xor {tmp:e}, {tmp:e}",
            "mov fs, {tmp:x}",
            "mov gs, {tmp:x}",
            "ltr {tss:x}",
            ptr = in(reg) &ptr,
            cs = const KERNEL_CS as u64,
            ss = in(reg) KERNEL_SS as u64,
            tss = in(reg) TSS_SEL as u64,
            tmp = out(reg) _,
        );
    }
}

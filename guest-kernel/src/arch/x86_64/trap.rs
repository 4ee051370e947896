//! Trap entry: the IDT, its 256 assembly stubs, the SYSCALL entry and the one
//! [`TrapFrame`] layout they all build, so that everything above sees one shape of
//! saved user state whichever way the CPU entered the kernel.

use core::arch::{asm, global_asm};
use core::mem::size_of;

use super::{cpu, gdt, platform};

/// Pseudo vector number recorded in frames built by the SYSCALL entry.
pub const VECTOR_SYSCALL: u64 = 0x100;
/// Vector of the `int 0x80` system-call gate.
pub const VECTOR_INT80: u64 = 0x80;
/// First vector of the remapped PIC.
pub const VECTOR_IRQ_BASE: u64 = 0x20;
/// Bit of [`TrapFrame::vector`] set by the entry code on frames it moved off the
/// trampoline: the trap came from user mode (whatever the pushed CS, which user mode
/// could have written on the trampoline, says).
pub const VECTOR_FROM_USER: u64 = 1 << 63;
/// Bit of [`TrapFrame::vector`] a system call sets to return through `iretq` instead of
/// `sysretq`, which clobbers rcx and r11 (see [`TrapFrame::return_by_iret`]).
pub const VECTOR_RETURN_BY_IRET: u64 = 1 << 62;

/// Registers saved on every entry to the kernel, lowest address first.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
#[allow(missing_docs)]
pub struct TrapFrame {
    pub rax: u64,
    pub rbx: u64,
    pub rcx: u64,
    pub rdx: u64,
    pub rsi: u64,
    pub rdi: u64,
    pub rbp: u64,
    pub r8: u64,
    pub r9: u64,
    pub r10: u64,
    pub r11: u64,
    pub r12: u64,
    pub r13: u64,
    pub r14: u64,
    pub r15: u64,
    /// IDT vector, or [`VECTOR_SYSCALL`], plus [`VECTOR_FROM_USER`].
    pub vector: u64,
    /// The CPU's error code, or 0.
    pub error_code: u64,
    pub rip: u64,
    pub cs: u64,
    pub rflags: u64,
    pub rsp: u64,
    pub ss: u64,
}

const _: () = assert!(size_of::<TrapFrame>() == 22 * 8);

impl TrapFrame {
    /// The vector number alone.
    pub fn vector_number(&self) -> u64 {
        self.vector & !(VECTOR_FROM_USER | VECTOR_RETURN_BY_IRET)
    }

    /// Makes a system call return to user mode with `iretq`, which restores every
    /// register of the frame (`sysretq` loads rcx and r11 with rip and rflags). Needed
    /// when a system call replaces the whole user context, as `rt_sigreturn` does.
    pub fn return_by_iret(&mut self) {
        self.vector |= VECTOR_RETURN_BY_IRET;
    }

    /// True if the trap interrupted user mode.
    pub fn from_user(&self) -> bool {
        platform::is_user_cs(self.cs)
    }

    /// A frame that enters user mode at `rip` with stack `rsp`, interrupts on.
    pub fn new_user(rip: u64, rsp: u64) -> Self {
        let sel = platform::user_selectors();
        TrapFrame {
            rip,
            rsp,
            cs: sel.cs as u64,
            ss: sel.ss as u64,
            rflags: 0x202,
            ..Default::default()
        }
    }
}

// Each stub is 16-byte aligned so stub N sits at trap_stubs + 16 * N. Vectors for which
// the CPU pushes no error code get a zero, so every frame has the same layout.
// The general-purpose registers in TrapFrame order (rax lowest).
macro_rules! push_gprs {
    () => {
        "push r15; push r14; push r13; push r12; push r11; push r10; push r9; push r8; push rbp; push rdi; push rsi; push rdx; push rcx; push rbx; push rax"
    };
}
macro_rules! pop_gprs {
    () => {
        "pop rax; pop rbx; pop rcx; pop rdx; pop rsi; pop rdi; pop rbp; pop r8; pop r9; pop r10; pop r11; pop r12; pop r13; pop r14; pop r15"
    };
}

// The entry protocol.
//
// Every trap or system call from user mode lands first on this CPU's trampoline: a page
// of its own (`.entry.tramp`, the only entry page user mode may write where user-mode
// page tables exist) whose top is TSS.rsp0, so the CPU pushes the hardware frame there,
// and where `syscall_entry` parks the user rsp. The entry code then switches to the
// kernel's page tables (when the platform isolates the kernel: PVM), copies the frame to
// the current task's kernel stack, marks it as having come from user mode and carries on
// there; nothing else of the kernel is written while the user-mode tables are live. The
// way back to user mode copies the iret frame and rax to the trampoline, restores every
// other register from the kernel stack, switches to the user-mode tables and `iretq`s
// from the trampoline. Kernel stacks are therefore never mapped in the user-mode tables;
// those map the entry text and data read-only and the trampoline writable (see
// `entry_ranges`).
//
// A trap from kernel mode does not switch stacks, so it never lands on the trampoline:
// the stack pointer tells the two apart, not the (user-writable) pushed CS.
global_asm!(
    ".section .entry.text, \"ax\"",
    ".align 16",
    ".global trap_stubs",
    "trap_stubs:",
    ".set vec, 0",
    ".rept 256",
    ".align 16",
    ".if vec == 8 || vec == 10 || vec == 11 || vec == 12 || vec == 13 || vec == 14 || vec == 17 || vec == 21 || vec == 29 || vec == 30",
    ".else",
    "push 0",
    ".endif",
    "push vec",
    "jmp trap_common",
    ".set vec, vec + 1",
    ".endr",
    "",
    "trap_common:",
    "push rax",
    "lea rax, [rip + {tramp}]",
    "cmp rsp, rax",
    "jb 2f",
    "add rax, {tramp_size}",
    "cmp rsp, rax",
    "jae 2f",
    // From user mode, on the trampoline: [rsp] rax, [rsp+8] vector, +16 error, +24 rip,
    // +32 cs, +40 rflags, +48 rsp, +56 ss.
    "push rcx",
    "cmp qword ptr [rip + {user_cr3}], 0",
    "je 3f",
    "mov rax, [rip + {kernel_cr3}]",
    "mov cr3, rax",
    "3:",
    "mov rax, [rip + {kernel_rsp}]",
    "mov rcx, [rsp + 16]", "mov [rax - 56], rcx",
    "mov rcx, [rsp + 24]", "mov [rax - 48], rcx",
    "mov rcx, [rsp + 32]", "mov [rax - 40], rcx",
    "mov rcx, [rsp + 40]", "mov [rax - 32], rcx",
    "mov rcx, [rsp + 48]", "mov [rax - 24], rcx",
    "mov rcx, [rsp + 56]", "mov [rax - 16], rcx",
    "mov rcx, [rsp + 64]", "mov [rax - 8], rcx",
    "mov rcx, [rsp + 8]",
    "mov [rax - 64], rcx",
    "mov rcx, [rsp]",
    "lea rsp, [rax - 56]",
    "mov rax, [rsp - 8]",
    push_gprs!(),
    "bts qword ptr [rsp + 15 * 8], 63",
    "jmp 4f",
    // From kernel mode: on the current kernel stack.
    "2:",
    "pop rax",
    push_gprs!(),
    "4:",
    "mov rdi, rsp",
    "cld",
    "call {dispatch}",
    ".global trap_return",
    "trap_return:",
    // Back to kernel mode (a nested trap): straight from the kernel stack.
    "test qword ptr [rsp + 18 * 8], 3",
    "jnz 5f",
    pop_gprs!(),
    "add rsp, 16",
    "iretq",
    // Back to user mode: through the trampoline.
    "5:",
    "lea rax, [rip + {tramp_top}]",
    "mov rcx, [rsp + 17 * 8]", "mov [rax - 40], rcx",
    "mov rcx, [rsp + 18 * 8]", "mov [rax - 32], rcx",
    "mov rcx, [rsp + 19 * 8]", "mov [rax - 24], rcx",
    "mov rcx, [rsp + 20 * 8]", "mov [rax - 16], rcx",
    "mov rcx, [rsp + 21 * 8]", "mov [rax - 8], rcx",
    "mov rcx, [rsp]", "mov [rax - 48], rcx",
    pop_gprs!(),
    "lea rsp, [rip + {tramp_top}]",
    "sub rsp, 48",
    "cmp qword ptr [rip + {user_cr3}], 0",
    "je 6f",
    "mov rax, [rip + {user_cr3}]",
    "mov cr3, rax",
    "6:",
    "pop rax",
    "iretq",
    "",
    // SYSCALL: rcx = user rip, r11 = user rflags, rsp = user rsp, interrupts masked by
    // FMASK. Park the user rsp on the trampoline, switch tables, build a TrapFrame on the
    // current task's kernel stack.
    ".global syscall_entry",
    "syscall_entry:",
    "mov [rip + {tramp_scratch}], rsp",
    "lea rsp, [rip + {tramp_top}]",
    "push rax",
    "cmp qword ptr [rip + {user_cr3}], 0",
    "je 7f",
    "mov rax, [rip + {kernel_cr3}]",
    "mov cr3, rax",
    "7:",
    "pop rax",
    "mov rsp, [rip + {kernel_rsp}]",
    "push qword ptr [rip + {user_ss}]",
    "push qword ptr [rip + {tramp_scratch}]",
    "push r11",
    "push qword ptr [rip + {user_cs}]",
    "push rcx",
    "push 0",
    "push {vsys}",
    push_gprs!(),
    "bts qword ptr [rsp + 15 * 8], 63",
    "mov rdi, rsp",
    "cld",
    "call {dispatch}",
    // A frame that must be restored whole (rcx, r11 included), or any return where the
    // user-mode tables must be loaded, leaves like a trap.
    "bt qword ptr [rsp + 15 * 8], 62",
    "jc trap_return",
    "cmp qword ptr [rip + {user_cr3}], 0",
    "jne trap_return",
    pop_gprs!(),
    "add rsp, 16",
    // The handler may have changed the frame (e.g. exec); SYSRET takes rip from rcx and
    // rflags from r11. The dispatcher guarantees a canonical user rip.
    "pop rcx",
    "add rsp, 8",
    "pop r11",
    "pop rsp",
    "sysretq",
    dispatch = sym trap_dispatch,
    kernel_rsp = sym ENTRY_KERNEL_RSP,
    user_ss = sym SYSCALL_USER_SS,
    user_cs = sym SYSCALL_USER_CS,
    vsys = const VECTOR_SYSCALL,
    kernel_cr3 = sym ENTRY_KERNEL_CR3,
    user_cr3 = sym ENTRY_USER_CR3,
    tramp = sym ENTRY_AREA,
    tramp_size = const ENTRY_AREA_SIZE,
    tramp_top = sym ENTRY_AREA_TOP,
    tramp_scratch = sym ENTRY_AREA_SCRATCH,
);

/// Size of a CPU's entry area (one page).
const ENTRY_AREA_SIZE: usize = 4096;

/// A CPU's entry area: the trampoline stack the CPU pushes user-mode trap frames on and
/// the slot `syscall_entry` parks the user rsp in. It holds nothing but the current
/// thread's own registers, in passing, so mapping it writable in the user-mode tables
/// exposes nothing of the kernel. One vCPU today; a second one gets its own area (and
/// TSS), and a process's user-mode tables then map only the area of the CPU it runs on.
#[repr(C, align(4096))]
struct EntryArea([u8; ENTRY_AREA_SIZE]);

#[link_section = ".entry.tramp"]
static mut ENTRY_AREA: EntryArea = EntryArea([0; ENTRY_AREA_SIZE]);

// Labels inside the entry area: the trampoline's top (16-byte aligned, below the scratch
// slot) and the scratch slot.
global_asm!(
    ".global ENTRY_AREA_TOP",
    ".global ENTRY_AREA_SCRATCH",
    ".set ENTRY_AREA_TOP, {area} + {size} - 16",
    ".set ENTRY_AREA_SCRATCH, {area} + {size} - 8",
    area = sym ENTRY_AREA,
    size = const ENTRY_AREA_SIZE,
);

extern "C" {
    static ENTRY_AREA_TOP: u8;
    static ENTRY_AREA_SCRATCH: u8;
}

/// The stack the CPU switches to on a trap from user mode (TSS.rsp0): the top of this
/// CPU's trampoline.
pub fn trampoline_top() -> u64 {
    // SAFETY: only the address of the label is taken.
    unsafe { &ENTRY_AREA_TOP as *const u8 as u64 }
}

extern "C" {
    static trap_stubs: u8;
    fn syscall_entry();
}

// Read by the entry code (so they live with it in .entry.data, read-only in the
// user-mode tables); single CPU, so plain statics suffice.
#[no_mangle]
#[link_section = ".entry.data"]
static mut ENTRY_KERNEL_RSP: u64 = 0;
#[no_mangle]
#[link_section = ".entry.data"]
static mut SYSCALL_USER_SS: u64 = 0;
#[no_mangle]
#[link_section = ".entry.data"]
static mut SYSCALL_USER_CS: u64 = 0;
#[no_mangle]
#[link_section = ".entry.data"]
static mut ENTRY_KERNEL_CR3: u64 = 0;
#[no_mangle]
#[link_section = ".entry.data"]
static mut ENTRY_USER_CR3: u64 = 0;

/// Sets the page tables the entry code switches between for the current process:
/// `kernel_cr3` inside the kernel, `user_cr3` in user mode (0: no isolation needed,
/// user mode runs on the kernel tables, as on hardware KVM).
pub fn set_isolation_tables(kernel_cr3: u64, user_cr3: u64) {
    // SAFETY: single CPU, called with interrupts off between processes; read only by
    // the entry code.
    unsafe {
        ENTRY_KERNEL_CR3 = kernel_cr3;
        ENTRY_USER_CR3 = user_cr3;
    }
}

use crate::mm::paging::KernelRange as EntryRange;

/// The kernel ranges every user-mode page table maps: the entry text (read-only,
/// executable), the entry data (IDT, GDT, TSS and the values the entry code reads:
/// read-only) and this CPU's trampoline (writable, not executable).
///
/// Host unit tests link no kernel image (no linker script symbols): none there.
#[cfg(test)]
pub fn entry_ranges() -> [EntryRange; 3] {
    [EntryRange {
        start: 0,
        end: 0,
        writable: false,
        executable: false,
    }; 3]
}

/// The kernel ranges every user-mode page table maps (see the test build's version).
#[cfg(not(test))]
pub fn entry_ranges() -> [EntryRange; 3] {
    extern "C" {
        static __entry_text_start: u8;
        static __entry_text_end: u8;
        static __entry_data_start: u8;
        static __entry_data_end: u8;
    }
    let area = &raw const ENTRY_AREA as u64;
    // SAFETY: linker-provided symbols; only their addresses are taken.
    unsafe {
        [
            EntryRange {
                start: &__entry_text_start as *const u8 as u64,
                end: &__entry_text_end as *const u8 as u64,
                writable: false,
                executable: true,
            },
            EntryRange {
                start: &__entry_data_start as *const u8 as u64,
                end: &__entry_data_end as *const u8 as u64,
                writable: false,
                executable: false,
            },
            EntryRange {
                start: area,
                end: area + ENTRY_AREA_SIZE as u64,
                writable: true,
                executable: false,
            },
        ]
    }
}

#[repr(C, packed)]
struct DescriptorPointer {
    limit: u16,
    base: u64,
}

#[repr(C, align(16))]
struct Idt([[u64; 2]; 256]);

#[link_section = ".entry.data"]
static mut IDT: Idt = Idt([[0; 2]; 256]);

fn gate(handler: u64, dpl: u64, ist: u64) -> [u64; 2] {
    let low = (handler & 0xffff)
        | ((gdt::KERNEL_CS as u64) << 16)
        | (ist << 32)
        | ((0x8e | (dpl << 5)) << 40)
        | (((handler >> 16) & 0xffff) << 48);
    [low, handler >> 32]
}

/// Loads an IDT with only the #GP and double-fault gates: enough for the platform probe.
///
/// On PVM, everything before the opt-in runs in KVM's instruction emulator at ~1,000x
/// the native cost; filling all 256 gates there took ~4 ms of every boot. So the probe
/// runs with this minimal table and [`init_idt`] fills the rest natively afterwards.
///
/// # Safety
/// Call once on the boot CPU after `gdt::init`, before [`init_idt`].
pub unsafe fn init_probe_idt() {
    // SAFETY: early boot, single-threaded; the IDT is static and lives forever.
    unsafe {
        let base = &trap_stubs as *const u8 as u64;
        let idt_ptr = &raw mut IDT;
        let idt = &mut *idt_ptr;
        idt.0[8] = gate(base + 16 * 8, 0, 1);
        idt.0[13] = gate(base + 16 * 13, 0, 0);
        load_idt(idt);
    }
}

fn load_idt(idt: &Idt) {
    let ptr = DescriptorPointer {
        limit: (size_of::<Idt>() - 1) as u16,
        base: idt.0.as_ptr() as u64,
    };
    // SAFETY: the IDT is static; its gates point at the trap stubs or are not present.
    unsafe { asm!("lidt [{}]", in(reg) &ptr, options(nostack)) };
}

/// Fills and loads the IDT.
///
/// # Safety
/// Call once on the boot CPU after `gdt::init`.
pub unsafe fn init_idt() {
    // SAFETY: early boot, single-threaded; the IDT is static and lives forever.
    unsafe {
        let base = &trap_stubs as *const u8 as u64;
        let idt_ptr = &raw mut IDT;
        let idt = &mut *idt_ptr;
        for (vector, entry) in idt.0.iter_mut().enumerate() {
            // `int3` from user mode needs a DPL-3 gate, or it is a #GP on hardware
            // (breakpoints a debugger plants in programs, and programs' own `int3`).
            let dpl = if vector as u64 == VECTOR_INT80 || vector == 3 {
                3
            } else {
                0
            };
            let ist = if vector == 8 { 1 } else { 0 };
            *entry = gate(base + 16 * vector as u64, dpl, ist);
        }
        load_idt(idt);
    }
}

/// Enables SYSCALL/SYSRET with this platform's selectors and NX.
///
/// # Safety
/// Call once after `platform::init` and `init_idt`.
pub unsafe fn init_syscall() {
    let sel = platform::user_selectors();
    // SAFETY: early boot; the statics are read only by syscall_entry.
    unsafe {
        SYSCALL_USER_SS = sel.ss as u64;
        SYSCALL_USER_CS = sel.cs as u64;
        let efer = cpu::rdmsr(cpu::msr::EFER);
        cpu::wrmsr(
            cpu::msr::EFER,
            efer | cpu::msr::EFER_SCE | cpu::msr::EFER_NXE,
        );
        let star = ((sel.cs32 as u64) << 48) | ((gdt::KERNEL_CS as u64) << 32);
        cpu::wrmsr(cpu::msr::STAR, star);
        cpu::wrmsr(cpu::msr::LSTAR, syscall_entry as *const () as u64);
        // Clear IF, TF, DF, AC on entry.
        cpu::wrmsr(cpu::msr::FMASK, 0x4_0700);
    }
}

/// Sets the kernel stack the entry code moves traps and system calls from user mode to
/// (the current task's).
pub fn set_kernel_stack(top: u64) {
    // SAFETY: single CPU; read only by the entry code, which cannot run concurrently.
    unsafe { ENTRY_KERNEL_RSP = top };
}

// In .entry.text with the debug path: a breakpoint here could never be reported.
#[link_section = ".entry.text"]
extern "C" fn trap_dispatch(frame: &mut TrapFrame) {
    let vector = frame.vector_number();
    if (vector == 1 || vector == 3) && super::debug::attached() {
        super::debug::trap(frame, vector);
        return;
    }
    crate::trap::handle(frame);
}

//! The first instructions of the kernel: a stack, then Rust.
//!
//! The VMM enters here in 64-bit mode on its boot page tables (guest-physical 0..1 GiB
//! mapped identity and at -2 GiB), with interrupts disabled and `rdi` holding the
//! guest-physical address of the `BootInfo`.

/// Size of the boot stack, which later stays the kernel's main (scheduler) stack.
pub const BOOT_STACK_SIZE: usize = 64 * 1024;

#[repr(C, align(16))]
struct BootStack([u8; BOOT_STACK_SIZE]);

#[no_mangle]
static mut BOOT_STACK: BootStack = BootStack([0; BOOT_STACK_SIZE]);

// Host unit-test builds link against the host's own `_start`.
#[cfg(not(test))]
core::arch::global_asm!(
    ".section .text.boot, \"ax\"",
    ".global _start",
    "_start:",
    "    cli",
    "    lea rsp, [rip + {stack} + {size}]",
    "    xor ebp, ebp",
    "    call {main}",
    "2:  hlt",
    "    jmp 2b",
    stack = sym BOOT_STACK,
    size = const BOOT_STACK_SIZE,
    main = sym crate::kernel_entry,
);

/// The ELF note that tells the VMM which ABI this kernel speaks.
#[repr(C, align(4))]
struct AbiNote {
    namesz: u32,
    descsz: u32,
    kind: u32,
    name: [u8; 8],
    version: u32,
}

#[used]
#[link_section = ".note.astra"]
static ABI_NOTE: AbiNote = AbiNote {
    namesz: hypercall_abi::note::NAME.len() as u32,
    descsz: 4,
    kind: hypercall_abi::note::TYPE_ABI_VERSION,
    name: *b"astra\0\0\0",
    version: hypercall_abi::ABI_VERSION,
};

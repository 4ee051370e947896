//! VMM-side layout constants. The guest-visible layout is the contract in
//! [`hypercall_abi::layout`]; this adds what only the VMM and KVM care about.

pub use hypercall_abi::layout::*;

/// KVM's three-page TSS region (`KVM_SET_TSS_ADDR`), needed on Intel; just below the
/// identity-map page and clear of RAM (which ends at 3 GiB at most) and the LAPIC window.
pub const KVM_TSS_ADDRESS: usize = 0xfffb_d000;
/// The IRQ line of the console UART (COM1).
pub const CONSOLE_IRQ: u32 = 4;
/// Number of registers of the 16550 UART.
pub const CONSOLE_PORT_COUNT: u16 = 8;
/// The POST diagnostic port, used by some code as an I/O delay.
pub const POST_PORT: u16 = 0x80;
/// The system control port B (speaker gate), poked by PIT calibration code.
pub const SYSTEM_CONTROL_PORT_B: u16 = 0x61;
/// The KVM memory slot of guest RAM.
pub const RAM_SLOT: u32 = 0;
/// The KVM memory slot of the read-only rootfs.
pub const ROOTFS_SLOT: u32 = 1;

const _: () = {
    assert!(MEM_MAX <= KVM_TSS_ADDRESS as u64);
    assert!(BOOT_PD_GPA + 0x1000 <= LOW_RESERVED_END);
    assert!(CMDLINE_GPA + CMDLINE_MAX <= BOOT_PML4_GPA);
    assert!(BOOT_PD_GPA + 0x1000 <= INIT_ARGS_GPA);
    assert!(LOW_RESERVED_END <= MEM_MIN);
};

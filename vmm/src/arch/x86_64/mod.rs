//! x86-64 boot state: the guest-physical layout, the boot GDT, the boot page tables and the
//! vCPU's initial registers.

pub mod gdt;
pub mod layout;
pub mod paging;
pub mod regs;

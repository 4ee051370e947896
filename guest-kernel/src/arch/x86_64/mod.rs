//! Everything that names the CPU: boot entry, GDT/TSS, IDT and trap entry, SYSCALL, page
//! tables, the PIC and PIT, and the platform (hardware KVM or PVM) switch.

pub mod boot;
pub mod context;
pub mod cpu;
pub mod debug;
pub mod fpu;
pub mod gdt;
pub mod pic;
pub mod platform;
pub mod port;
pub mod trap;

/// Enables SSE for user programs (the kernel itself is built without SSE).
pub fn enable_sse() {
    // SAFETY: every x86-64 CPU has SSE; CR0.EM off, MP on, CR4.OSFXSR and OSXMMEXCPT on
    // is the standard setting for an OS that saves FXSR state.
    unsafe {
        cpu::write_cr0((cpu::read_cr0() & !(1 << 2)) | (1 << 1));
        cpu::write_cr4(cpu::read_cr4() | (1 << 9) | (1 << 10));
    }
}

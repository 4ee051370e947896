//! Typed port I/O (each access is a VM exit: keep them off hot paths).

use core::arch::asm;

/// Writes a byte to an I/O port.
pub fn outb(port: u16, value: u8) {
    // SAFETY: the ports this kernel writes belong to devices it owns (UART, PIC, PIT,
    // hypercall devices); a port write cannot corrupt kernel memory.
    unsafe { asm!("out dx, al", in("dx") port, in("al") value, options(nomem, nostack)) };
}

/// Reads a byte from an I/O port.
pub fn inb(port: u16) -> u8 {
    let value: u8;
    // SAFETY: as for outb; reads of device registers have no memory effects.
    unsafe { asm!("in al, dx", in("dx") port, out("al") value, options(nomem, nostack)) };
    value
}

/// Reads a 32-bit value from an I/O port.
pub fn inl(port: u16) -> u32 {
    let value: u32;
    // SAFETY: as for inb.
    unsafe { asm!("in eax, dx", in("dx") port, out("eax") value, options(nomem, nostack)) };
    value
}

/// Writes a 32-bit value to an I/O port.
pub fn outl(port: u16, value: u32) {
    // SAFETY: as for outb. The hypercall devices may write guest memory the kernel
    // handed them (request blocks); those are plain data the kernel re-reads.
    unsafe { asm!("out dx, eax", in("dx") port, in("eax") value, options(nostack)) };
}

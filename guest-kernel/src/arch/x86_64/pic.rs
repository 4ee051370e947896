//! The 8259 PIC pair (KVM's in-kernel model) and the 8254 PIT.

use super::port::outb;

const PIC1_CMD: u16 = 0x20;
const PIC1_DATA: u16 = 0x21;
const PIC2_CMD: u16 = 0xa0;
const PIC2_DATA: u16 = 0xa1;
const PIT_CH0: u16 = 0x40;
const PIT_MODE: u16 = 0x43;
/// The PIT's input clock.
const PIT_HZ: u32 = 1_193_182;

/// IRQ lines left unmasked: 0 (the PIT) and 4 (the console: input arrived or ended, which
/// wakes a reader halted in `platform::idle`).
const UNMASKED_IRQS: u16 = (1 << 0) | (1 << 4);

/// Remaps the PICs to `vector_base..vector_base + 16` in auto-EOI mode and unmasks only
/// [`UNMASKED_IRQS`]. Auto-EOI saves a port write (a VM exit) on every interrupt.
pub fn init(vector_base: u8) {
    outb(PIC1_CMD, 0x11);
    outb(PIC2_CMD, 0x11);
    outb(PIC1_DATA, vector_base);
    outb(PIC2_DATA, vector_base + 8);
    outb(PIC1_DATA, 4);
    outb(PIC2_DATA, 2);
    outb(PIC1_DATA, 0x03); // 8086 mode, auto-EOI
    outb(PIC2_DATA, 0x03);
    outb(PIC1_DATA, !(UNMASKED_IRQS as u8));
    outb(PIC2_DATA, !((UNMASKED_IRQS >> 8) as u8));
}

/// Programs PIT channel 0 as a rate generator at `hz`.
pub fn init_pit(hz: u32) {
    let divisor = (PIT_HZ / hz).clamp(1, 0xffff) as u16;
    outb(PIT_MODE, 0x34);
    outb(PIT_CH0, divisor as u8);
    outb(PIT_CH0, (divisor >> 8) as u8);
}

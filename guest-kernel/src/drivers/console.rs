//! The 16550 UART console (output only for now).

use core::fmt::{self, Write};

use spin::Mutex;

use crate::arch::port;

/// Transmit holding register offset.
const THR: u16 = 0;

struct Uart {
    base: u16,
}

impl Write for Uart {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.write_bytes(s.as_bytes());
        Ok(())
    }
}

impl Uart {
    fn write_bytes(&mut self, bytes: &[u8]) {
        // The VMM's UART accepts every byte at once, so LSR is not polled: each poll
        // would be another VM exit.
        for &b in bytes {
            if b == b'\n' {
                port::outb(self.base + THR, b'\r');
            }
            port::outb(self.base + THR, b);
        }
    }
}

static CONSOLE: Mutex<Uart> = Mutex::new(Uart {
    base: hypercall_abi::port::CONSOLE,
});

/// Writes raw bytes (program output).
pub fn write_bytes(bytes: &[u8]) {
    CONSOLE.lock().write_bytes(bytes);
}

/// Writes raw bytes a program sent to its standard error.
pub fn write_err_bytes(bytes: &[u8]) {
    CONSOLE.lock().write_bytes(bytes);
}

/// Writes formatted text; used by the print macros.
pub fn write_fmt(args: fmt::Arguments) {
    let _ = CONSOLE.lock().write_fmt(args);
}

/// Writes formatted text even if the console lock is held (panics, fatal traps).
pub fn write_fmt_emergency(args: fmt::Arguments) {
    // SAFETY: used only when the kernel is about to stop: breaking the lock can at worst
    // interleave characters of the interrupted writer.
    unsafe { CONSOLE.force_unlock() };
    write_fmt(args);
}

/// Prints to the console.
#[macro_export]
macro_rules! kprint {
    ($($arg:tt)*) => { $crate::drivers::console::write_fmt(format_args!($($arg)*)) };
}

/// Prints a line to the console.
#[macro_export]
macro_rules! kprintln {
    () => { $crate::kprint!("\n") };
    ($($arg:tt)*) => { $crate::drivers::console::write_fmt(format_args!("{}\n", format_args!($($arg)*))) };
}

// Input: programs read their standard input from the UART's receive buffer, which the VMM
// fills from its own stdin. Each register access is a VM exit, so callers poll it only
// when a read or poll needs an answer, and halt between polls.

/// Receive buffer register offset.
const RBR: u16 = 0;
/// Line status register offset.
const LSR: u16 = 5;
/// LSR bit: a received byte is waiting.
const LSR_DATA_READY: u8 = 1;

/// Whether a byte of input is waiting.
pub fn input_pending() -> bool {
    port::inb(hypercall_abi::port::CONSOLE + LSR) & LSR_DATA_READY != 0
}

/// Whether the host's input has ended (see [`hypercall_abi::console`]); bytes may still be
/// waiting, so check [`input_pending`] first.
pub fn input_ended() -> bool {
    port::inb(hypercall_abi::port::CONSOLE + hypercall_abi::console::SCR_OFFSET)
        == hypercall_abi::console::SCR_INPUT_ENDED
}

/// Moves waiting input bytes into `buf` without waiting for more; after a newline if
/// `stop_at_newline`. Returns how many bytes were read.
pub fn read_input(buf: &mut [u8], stop_at_newline: bool) -> usize {
    let mut n = 0;
    while n < buf.len() && input_pending() {
        let b = port::inb(hypercall_abi::port::CONSOLE + RBR);
        buf[n] = b;
        n += 1;
        if stop_at_newline && b == b'\n' {
            break;
        }
    }
    n
}

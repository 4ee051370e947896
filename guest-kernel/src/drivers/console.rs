//! The console.
//!
//! Output takes the VMM's batched console-output device ([`hypercall_abi::ConsoleWrite`]
//! on [`hypercall_abi::port::CONSOLE_OUT`]): bytes are copied into a physically contiguous
//! bounce buffer in the kernel image and handed over a buffer at a time, one VM exit per
//! [`BOUNCE_SIZE`] bytes instead of one per byte. Programs' standard output goes to the
//! VMM's stdout ([`write_bytes`]); their standard error ([`write_err_bytes`]) and the
//! kernel's own messages ([`kprintln!`](crate::kprintln): diagnostics, `--strace`,
//! `--stats`, fault reports) go to the VMM's stderr. The request and the buffer live in the
//! kernel image, so this works from the first instruction, before memory is set up.
//!
//! The 16550 UART stays the emergency path ([`write_fmt_emergency`]: panics, fatal traps),
//! usable even when the output lock is held, and the fallback should the VMM refuse a
//! request; its output also lands on the VMM's stderr. Input has its own device
//! ([`super::console_in`]).

use core::fmt::{self, Write};

use hypercall_abi::{status, stream, ConsoleWrite, GuestPhysAddr};
use spin::Mutex;

use crate::arch::port;
use crate::mm::kernel_virt_to_phys;
use crate::syscall::Errno;

/// Transmit holding register offset.
const THR: u16 = 0;

/// Size of the bounce buffer: the most bytes one VM exit carries.
pub const BOUNCE_SIZE: usize = 64 << 10;

const _: () = assert!(BOUNCE_SIZE <= hypercall_abi::CONSOLE_WRITE_MAX as usize);

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
        // would be another VM exit. Bytes go out unchanged (no "\r\n"): the VMM writes
        // them to a host file descriptor, not to a serial line.
        for &b in bytes {
            port::outb(self.base + THR, b);
        }
    }
}

static CONSOLE: Mutex<Uart> = Mutex::new(Uart {
    base: hypercall_abi::port::CONSOLE,
});

/// The request block and bounce buffer of the console-output device.
struct Channel {
    req: ConsoleWrite,
    buf: [u8; BOUNCE_SIZE],
}

static CHANNEL: Mutex<Channel> = Mutex::new(Channel {
    req: ConsoleWrite {
        data_gpa: GuestPhysAddr(0),
        len: 0,
        stream: 0,
        status: 0,
        error: 0,
    },
    buf: [0; BOUNCE_SIZE],
});

/// Hands `data` (a piece of the bounce buffer) to the VMM for `stream`. A refused request
/// goes out through the UART instead; a host-side write error is returned as the errno the
/// program's `write` gets (the bytes are dropped: the VMM's output is gone or full).
fn send(req: &mut ConsoleWrite, stream: u32, data: &[u8]) -> Result<(), Errno> {
    *req = ConsoleWrite {
        data_gpa: GuestPhysAddr(kernel_virt_to_phys(data.as_ptr() as u64)),
        len: data.len() as u32,
        stream,
        status: status::PENDING,
        error: 0,
    };
    let req_gpa = kernel_virt_to_phys(req as *const ConsoleWrite as u64);
    // The port write is a compiler barrier (no `nomem`): the block is in memory before it.
    port::outl(hypercall_abi::port::CONSOLE_OUT, req_gpa as u32);
    // SAFETY: `req` is a valid, aligned ConsoleWrite the VMM may have written during the
    // port write; read it volatile so the compiler does not assume it unchanged.
    let status = unsafe { core::ptr::read_volatile(&req.status) };
    if status == status::INVALID || status == status::PENDING {
        CONSOLE.lock().write_bytes(data);
    }
    if status == status::IO_ERROR {
        // SAFETY: as for `status` above.
        let error = unsafe { core::ptr::read_volatile(&req.error) };
        return Err(host_write_errno(error));
    }
    Ok(())
}

/// The errno a program's `write` gets for the host's failed write of its output: the
/// host's own for the failures a Linux program sees on a pipe or file (`EPIPE`, `ENOSPC`,
/// `EFBIG`, `EDQUOT`), `EIO` for anything else.
pub fn host_write_errno(host: u32) -> Errno {
    match host {
        32 => Errno::EPIPE,
        28 => Errno::ENOSPC,
        27 => Errno::EFBIG,
        122 => Errno::EDQUOT,
        _ => Errno::EIO,
    }
}

/// Fills a fixed buffer and hands each full one (and the rest, at [`Batch::finish`]) to
/// `flush`, so arbitrary amounts of output go out in buffer-sized pieces, in order.
struct Batch<'a, F: FnMut(&[u8])> {
    buf: &'a mut [u8],
    len: usize,
    flush: F,
}

impl<'a, F: FnMut(&[u8])> Batch<'a, F> {
    fn new(buf: &'a mut [u8], flush: F) -> Self {
        Batch { buf, len: 0, flush }
    }

    fn push(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let n = (self.buf.len() - self.len).min(bytes.len());
            self.buf[self.len..self.len + n].copy_from_slice(&bytes[..n]);
            self.len += n;
            bytes = &bytes[n..];
            if self.len == self.buf.len() {
                self.flush_now();
            }
        }
    }

    fn flush_now(&mut self) {
        if self.len > 0 {
            (self.flush)(&self.buf[..self.len]);
            self.len = 0;
        }
    }

    fn finish(mut self) {
        self.flush_now();
    }
}

impl<F: FnMut(&[u8])> Write for Batch<'_, F> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.push(s.as_bytes());
        Ok(())
    }
}

/// Runs `f` with a batch that sends to `stream`.
fn with_batch(stream: u32, f: impl FnOnce(&mut Batch<'_, &mut dyn FnMut(&[u8])>)) {
    let mut channel = CHANNEL.lock();
    let Channel { req, buf } = &mut *channel;
    // Kernel messages have nowhere else to go when the host refuses them.
    let mut send_to_stream = |data: &[u8]| {
        let _ = send(req, stream, data);
    };
    let mut batch = Batch::new(buf, &mut send_to_stream as &mut dyn FnMut(&[u8]));
    f(&mut batch);
    batch.finish();
}

/// Writes program output that `take` copies straight into the device's buffer, a full
/// buffer ([`BOUNCE_SIZE`]) per VM exit, to the standard error stream if `stderr`.
/// `take` fills the slice it is given from the start and returns how many bytes it
/// wrote; fewer than the slice's length means it has nothing more. It must not print
/// (the device is locked meanwhile). Returns the number of bytes written, and the error
/// that stopped it early if the host's write failed (the failed piece is not counted).
pub fn write_from(
    stderr: bool,
    mut take: impl FnMut(&mut [u8]) -> usize,
) -> (usize, Option<Errno>) {
    let stream = if stderr {
        stream::STDERR
    } else {
        stream::STDOUT
    };
    let mut channel = CHANNEL.lock();
    let Channel { req, buf } = &mut *channel;
    let mut total = 0;
    loop {
        let n = take(&mut buf[..]).min(buf.len());
        if n > 0 {
            if let Err(e) = send(req, stream, &buf[..n]) {
                return (total, Some(e));
            }
            total += n;
        }
        if n < buf.len() {
            return (total, None);
        }
    }
}

/// Writes raw bytes a program sent to its standard output (the VMM's stdout).
pub fn write_bytes(bytes: &[u8]) {
    with_batch(stream::STDOUT, |b| b.push(bytes));
}

/// Writes raw bytes a program sent to its standard error (the VMM's stderr).
pub fn write_err_bytes(bytes: &[u8]) {
    with_batch(stream::STDERR, |b| b.push(bytes));
}

/// Writes formatted kernel output (the VMM's stderr); used by the print macros.
pub fn write_fmt(args: fmt::Arguments) {
    with_batch(stream::STDERR, |b| {
        let _ = b.write_fmt(args);
    });
}

/// Writes formatted `--strace` output (the VMM's trace stream: its `--strace-file`, or
/// its stderr); used by [`ktrace!`](crate::ktrace).
pub fn write_trace_fmt(args: fmt::Arguments) {
    with_batch(stream::TRACE, |b| {
        let _ = b.write_fmt(args);
    });
}

/// Writes the `--stats` table (the VMM's stats stream: its stderr and `--stats-json`).
pub fn write_stats(text: &str) {
    with_batch(stream::STATS, |b| b.push(text.as_bytes()));
}

/// Writes formatted text through the UART even if a console lock is held (panics, fatal
/// traps).
pub fn write_fmt_emergency(args: fmt::Arguments) {
    // SAFETY: used only when the kernel is about to stop: breaking the lock can at worst
    // interleave characters of the interrupted writer.
    unsafe { CONSOLE.force_unlock() };
    let _ = CONSOLE.lock().write_fmt(args);
}

/// Prints kernel output (to the VMM's stderr).
#[macro_export]
macro_rules! kprint {
    ($($arg:tt)*) => { $crate::drivers::console::write_fmt(format_args!($($arg)*)) };
}

/// Prints a line of kernel output (to the VMM's stderr).
#[macro_export]
macro_rules! kprintln {
    () => { $crate::kprint!("\n") };
    ($($arg:tt)*) => { $crate::drivers::console::write_fmt(format_args!("{}\n", format_args!($($arg)*))) };
}

/// Prints a line of `--strace` output (to the VMM's trace stream).
#[macro_export]
macro_rules! ktrace {
    ($($arg:tt)*) => { $crate::drivers::console::write_trace_fmt(format_args!("{}\n", format_args!($($arg)*))) };
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    fn batches(cap: usize, pushes: &[&[u8]]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut buf = alloc::vec![0u8; cap];
        let mut batch = Batch::new(&mut buf, |d: &[u8]| out.push(d.to_vec()));
        for p in pushes {
            batch.push(p);
        }
        batch.finish();
        out
    }

    #[test]
    fn output_goes_out_in_buffer_sized_pieces_in_order() {
        assert_eq!(
            batches(4, &[b"ab", b"cdefghij", b"k"]),
            [b"abcd".to_vec(), b"efgh".to_vec(), b"ijk".to_vec()]
        );
        assert_eq!(batches(4, &[b"abcd"]), [b"abcd".to_vec()]);
        assert!(batches(4, &[b"", b""]).is_empty());
        let big: Vec<u8> = (0..=255u8).cycle().take(10_000).collect();
        let pieces = batches(4096, &[&big]);
        assert_eq!(pieces.len(), 3);
        assert_eq!(pieces.concat(), big);
    }

    #[test]
    fn host_write_errors_map_to_what_a_linux_write_reports() {
        assert_eq!(host_write_errno(32), Errno::EPIPE);
        assert_eq!(host_write_errno(28), Errno::ENOSPC);
        assert_eq!(host_write_errno(5), Errno::EIO);
        assert_eq!(host_write_errno(9), Errno::EIO);
        assert_eq!(host_write_errno(u32::MAX), Errno::EIO);
    }

    #[test]
    fn formatted_output_is_batched_too() {
        let mut out = Vec::new();
        let mut buf = [0u8; 8];
        let mut batch = Batch::new(&mut buf, |d: &[u8]| out.extend_from_slice(d));
        let _ = write!(batch, "{}-{:#x}-{}", "hello", 255, "world!");
        batch.finish();
        assert_eq!(out, b"hello-0xff-world!");
    }
}

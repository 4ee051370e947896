//! The console UART: a 16550 (vm-superio) on COM1 whose input comes from stdin and whose
//! output, the kernel's emergency path (panics, fatal traps), goes to stderr (`lib.rs`
//! picks the writer); its interrupt is an eventfd bound to IRQ 4 with `KVM_IRQFD`. Normal
//! output takes the batched console-output device (`console_out`).
//!
//! vm-superio flushes its writer after every byte, so console output is never lost when
//! the VMM exits without unwinding.

use std::io::{self, Read, Write};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::Duration;

use vm_superio::{Serial, Trigger};
use vmm_sys_util::eventfd::EventFd;

use super::{IoAction, PortIo};

/// Raises the UART's interrupt by signalling its irqfd.
pub struct EventFdTrigger(EventFd);

impl EventFdTrigger {
    /// Wraps `evt`.
    pub fn new(evt: EventFd) -> Self {
        EventFdTrigger(evt)
    }
}

impl Trigger for EventFdTrigger {
    type E = io::Error;

    fn trigger(&self) -> io::Result<()> {
        self.0.write(1)
    }
}

/// The UART type the console uses.
pub type ConsoleUart<W> = Serial<EventFdTrigger, vm_superio::serial::NoEvents, W>;

/// The console device, shared between the vCPU thread and the stdin thread.
pub struct Console<W: Write + Send> {
    uart: Arc<Mutex<ConsoleUart<W>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere aborts the process (panic = "abort"), so poisoning cannot be
    // observed; still, never turn it into a second panic.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<W: Write + Send + 'static> Console<W> {
    /// A console raising its interrupt through `irq` and writing to `out`.
    pub fn new(irq: EventFd, out: W) -> Self {
        Console {
            uart: Arc::new(Mutex::new(Serial::new(EventFdTrigger::new(irq), out))),
        }
    }

    /// Another handle to the same UART, for the bus.
    pub fn handle(&self) -> Console<W> {
        Console {
            uart: Arc::clone(&self.uart),
        }
    }

    /// Queues `input` for the guest to read, waiting while the receive FIFO is full.
    /// Returns when everything is queued.
    pub fn feed(&self, mut input: &[u8]) {
        while !input.is_empty() {
            let queued = {
                let mut uart = lock(&self.uart);
                let room = uart.fifo_capacity().min(input.len());
                match uart.enqueue_raw_bytes(&input[..room]) {
                    Ok(n) => n,
                    Err(e) => {
                        log::debug!("console: cannot queue input: {e:?}");
                        0
                    }
                }
            };
            input = &input[queued..];
            if queued == 0 {
                thread::sleep(Duration::from_millis(2));
            }
        }
    }

    /// Tells the guest that input has ended, once everything before was queued (see
    /// `hypercall_abi::console`).
    pub fn end_input(&self) {
        let mut uart = lock(&self.uart);
        let scr = hypercall_abi::console::SCR_OFFSET as u8;
        if let Err(e) = uart.write(scr, hypercall_abi::console::SCR_INPUT_ENDED) {
            log::debug!("console: cannot mark the end of input: {e:?}");
        }
    }

    /// Forwards `input` (stdin) to the guest from a background thread until it ends, then
    /// marks the end of input. A closed or unreadable input ends it too.
    pub fn spawn_input<R: Read + Send + 'static>(&self, mut input: R) -> io::Result<()> {
        let console = self.handle();
        thread::Builder::new()
            .name("console-in".into())
            .spawn(move || {
                let mut buf = [0u8; 256];
                loop {
                    match input.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => console.feed(&buf[..n]),
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => {
                            log::debug!("console: stdin: {e}");
                            break;
                        }
                    }
                }
                console.end_input();
            })
            .map(drop)
    }
}

impl<W: Write + Send + 'static> PortIo for Console<W> {
    fn read(&mut self, offset: u16, data: &mut [u8]) {
        let mut uart = lock(&self.uart);
        for byte in data.iter_mut() {
            *byte = u8::try_from(offset).map_or(0xff, |o| uart.read(o));
        }
    }

    fn write(&mut self, offset: u16, data: &[u8]) -> IoAction {
        let mut uart = lock(&self.uart);
        for byte in data {
            let Ok(offset) = u8::try_from(offset) else {
                break;
            };
            if let Err(e) = uart.write(offset, *byte) {
                // A closed stdout must not stop the guest.
                log::debug!("console: {e:?}");
            }
        }
        IoAction::Continue
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::test_util::SharedBuf;

    const THR: u16 = 0;
    const IER: u16 = 1;
    const LSR: u16 = 5;
    const LSR_DATA_READY: u8 = 1;

    #[test]
    fn output_reaches_the_writer() {
        let out = SharedBuf::default();
        let mut console = Console::new(EventFd::new(0).unwrap(), out.clone());
        console.write(THR, b"hi");
        console.write(THR, b"!");
        assert_eq!(*out.0.lock().unwrap(), b"hi!");
    }

    #[test]
    fn input_is_readable_and_raises_the_interrupt() {
        let irq = EventFd::new(libc::EFD_NONBLOCK).unwrap();
        let mut console = Console::new(irq.try_clone().unwrap(), SharedBuf::default());
        // Enable the "received data available" interrupt.
        console.write(IER, &[1]);
        console.feed(b"ok");
        assert_eq!(irq.read().unwrap(), 1);
        let mut byte = [0];
        console.read(LSR, &mut byte);
        assert_eq!(byte[0] & LSR_DATA_READY, LSR_DATA_READY);
        let mut two = [0; 2];
        console.read(THR, &mut two);
        assert_eq!(&two, b"ok");
    }

    #[test]
    fn stdin_thread_forwards_until_eof() {
        let mut console = Console::new(EventFd::new(0).unwrap(), SharedBuf::default());
        console.spawn_input(&b"abc"[..]).unwrap();
        let mut got = Vec::new();
        for _ in 0..500 {
            let mut lsr = [0];
            console.read(LSR, &mut lsr);
            if lsr[0] & LSR_DATA_READY != 0 {
                let mut b = [0];
                console.read(THR, &mut b);
                got.push(b[0]);
                if got.len() == 3 {
                    break;
                }
            } else {
                thread::sleep(Duration::from_millis(1));
            }
        }
        assert_eq!(got, b"abc");
        // Then the end of input shows in the scratch register.
        let scr = hypercall_abi::console::SCR_OFFSET;
        let mut value = [0];
        for _ in 0..500 {
            console.read(scr, &mut value);
            if value[0] == hypercall_abi::console::SCR_INPUT_ENDED {
                break;
            }
            thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(value[0], hypercall_abi::console::SCR_INPUT_ENDED);
    }

    #[test]
    fn odd_offsets_do_not_panic() {
        let mut console = Console::new(EventFd::new(0).unwrap(), SharedBuf::default());
        console.write(0x1234, &[1]);
        let mut b = [0];
        console.read(0x1234, &mut b);
        assert_eq!(b[0], 0xff);
    }
}

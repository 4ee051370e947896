//! The console UART: a 16550 (vm-superio) on COM1 whose output, the kernel's emergency path
//! (panics, fatal traps), goes to stderr (`lib.rs` picks the writer) and whose receive FIFO
//! is fed from the VMM's [`StdinBuffer`] for guests that poll a plain 16550; its interrupt
//! is an eventfd bound to IRQ 4 with `KVM_IRQFD`. Normal output takes the batched
//! console-output device (`console_out`), normal input the console-input device
//! (`console_in`): once the guest uses that, the UART gets no more input.
//!
//! The FIFO is topped up from the buffer on every access to the UART (so a polling guest
//! sees input as soon as it is buffered) and by the stdin thread after new input arrives (so
//! a guest waiting for the receive interrupt gets it). When input has ended and the buffer
//! is drained, the scratch register says so (`hypercall_abi::console`).
//!
//! vm-superio flushes its writer after every byte, so console output is never lost when
//! the VMM exits without unwinding.

use std::io::{self, Write};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use vm_superio::{Serial, Trigger};
use vmm_sys_util::eventfd::EventFd;

use super::stdin::StdinBuffer;
use super::{IoAction, PortIo};

/// Receive buffer register (reads) offset.
const RBR: u8 = 0;
/// Modem control register offset.
const MCR: u8 = 4;
/// Line status register offset.
const LSR: u8 = 5;
/// LSR bit: a received byte is waiting.
const LSR_DATA_READY: u8 = 1;
/// MCR bit: loopback mode (the FIFO holds the guest's own output).
const MCR_LOOP: u8 = 0x10;

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
    input: Arc<StdinBuffer>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere aborts the process (panic = "abort"), so poisoning cannot be
    // observed; still, never turn it into a second panic.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Moves buffered input into the FIFO while the UART is the input's consumer, and marks
/// the end of input once everything was moved.
fn top_up<W: Write>(uart: &mut ConsoleUart<W>, input: &StdinBuffer) {
    let room = uart.fifo_capacity();
    let ended = input.take_for_uart(room, |bytes| match uart.enqueue_raw_bytes(bytes) {
        Ok(n) => n,
        Err(e) => {
            log::debug!("console: cannot queue input: {e:?}");
            0
        }
    });
    if ended == Some(true) {
        let scr = hypercall_abi::console::SCR_OFFSET as u8;
        if let Err(e) = uart.write(scr, hypercall_abi::console::SCR_INPUT_ENDED) {
            log::debug!("console: cannot mark the end of input: {e:?}");
        }
    }
}

impl<W: Write + Send + 'static> Console<W> {
    /// A console raising its interrupt through `irq`, writing to `out` and reading from
    /// `input`.
    pub fn new(irq: EventFd, out: W, input: Arc<StdinBuffer>) -> Self {
        Console {
            uart: Arc::new(Mutex::new(Serial::new(EventFdTrigger::new(irq), out))),
            input,
        }
    }

    /// Another handle to the same UART, for the bus.
    pub fn handle(&self) -> Console<W> {
        Console {
            uart: Arc::clone(&self.uart),
            input: Arc::clone(&self.input),
        }
    }

    /// Moves newly buffered input into the receive FIFO (raising the receive interrupt if
    /// the guest enabled it), while the UART is the input's consumer.
    pub fn feed_from_buffer(&self) {
        top_up(&mut lock(&self.uart), &self.input);
    }

    /// Hands the input over to the console-input device for good: the bytes still in the
    /// receive FIFO go back to the front of the buffer, and the UART gets no more.
    pub fn hand_over_input(&self) {
        let mut uart = lock(&self.uart);
        let mut unread = Vec::new();
        if uart.read(MCR) & MCR_LOOP == 0 {
            while uart.read(LSR) & LSR_DATA_READY != 0 && unread.len() < 64 {
                unread.push(uart.read(RBR));
            }
        }
        self.input.switch_to_device(&unread);
    }
}

impl<W: Write + Send + 'static> PortIo for Console<W> {
    fn read(&mut self, offset: u16, data: &mut [u8]) {
        let mut uart = lock(&self.uart);
        top_up(&mut uart, &self.input);
        for byte in data.iter_mut() {
            *byte = u8::try_from(offset).map_or(0xff, |o| uart.read(o));
        }
    }

    fn write(&mut self, offset: u16, data: &[u8]) -> IoAction {
        let mut uart = lock(&self.uart);
        top_up(&mut uart, &self.input);
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
    use crate::devices::stdin::{spawn_reader, Consumer};
    use crate::devices::test_util::SharedBuf;
    use std::thread;
    use std::time::Duration;

    const THR: u16 = 0;
    const IER: u16 = 1;
    const LSR: u16 = 5;
    const LSR_DATA_READY: u8 = 1;

    fn console(irq: EventFd, out: SharedBuf) -> (Console<SharedBuf>, Arc<StdinBuffer>) {
        let input = Arc::new(StdinBuffer::new(
            4096,
            EventFd::new(libc::EFD_NONBLOCK).unwrap(),
        ));
        (Console::new(irq, out, Arc::clone(&input)), input)
    }

    /// Polls LSR and reads bytes like a polling guest until `n` arrived or it gives up.
    fn poll_bytes(console: &mut Console<SharedBuf>, n: usize) -> Vec<u8> {
        let mut got = Vec::new();
        for _ in 0..2000 {
            let mut lsr = [0];
            console.read(LSR, &mut lsr);
            if lsr[0] & LSR_DATA_READY != 0 {
                let mut b = [0];
                console.read(THR, &mut b);
                got.push(b[0]);
                if got.len() == n {
                    break;
                }
            } else {
                thread::sleep(Duration::from_millis(1));
            }
        }
        got
    }

    #[test]
    fn output_reaches_the_writer() {
        let out = SharedBuf::default();
        let (mut console, _) = console(EventFd::new(0).unwrap(), out.clone());
        console.write(THR, b"hi");
        console.write(THR, b"!");
        assert_eq!(*out.0.lock().unwrap(), b"hi!");
    }

    #[test]
    fn input_is_readable_and_raises_the_interrupt() {
        let irq = EventFd::new(libc::EFD_NONBLOCK).unwrap();
        let (mut console, input) = console(irq.try_clone().unwrap(), SharedBuf::default());
        // Enable the "received data available" interrupt.
        console.write(IER, &[1]);
        let _ = irq.read();
        // What the stdin thread does when input arrives.
        input.push(b"ok", &mut || console.feed_from_buffer());
        assert_eq!(irq.read().unwrap(), 1);
        let mut byte = [0];
        console.read(LSR, &mut byte);
        assert_eq!(byte[0] & LSR_DATA_READY, LSR_DATA_READY);
        let mut two = [0; 2];
        console.read(THR, &mut two);
        assert_eq!(&two, b"ok");
    }

    #[test]
    fn more_input_than_the_fifo_holds_arrives_in_order() {
        let (mut console, input) = console(EventFd::new(0).unwrap(), SharedBuf::default());
        let data: Vec<u8> = (0..1000u32).map(|i| (i % 253) as u8).collect();
        input.push(&data, &mut || ());
        // Polling refills the 64-byte FIFO from the buffer.
        assert_eq!(poll_bytes(&mut console, data.len()), data);
    }

    #[test]
    fn stdin_thread_forwards_until_eof() {
        let (mut console, input) = console(EventFd::new(0).unwrap(), SharedBuf::default());
        let feeder = console.handle();
        spawn_reader(Arc::clone(&input), &b"abc"[..], move || {
            feeder.feed_from_buffer()
        })
        .unwrap();
        assert_eq!(poll_bytes(&mut console, 3), b"abc");
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
    fn handing_over_returns_unread_fifo_bytes_and_stops_feeding() {
        let (mut console, input) = console(EventFd::new(0).unwrap(), SharedBuf::default());
        input.push(b"abcdef", &mut || console.feed_from_buffer());
        // The guest polled two bytes through the UART.
        assert_eq!(poll_bytes(&mut console, 2), b"ab");
        console.hand_over_input();
        assert_eq!(input.consumer(), Consumer::Device);
        let mut lsr = [0];
        console.read(LSR, &mut lsr);
        assert_eq!(lsr[0] & LSR_DATA_READY, 0);
        input.push(b"gh", &mut || console.feed_from_buffer());
        console.read(LSR, &mut lsr);
        assert_eq!(lsr[0] & LSR_DATA_READY, 0);
        let mut got = Vec::new();
        input
            .take(64, |a, b| {
                got.extend_from_slice(a);
                got.extend_from_slice(b);
                Ok::<(), ()>(())
            })
            .unwrap();
        assert_eq!(got, b"cdefgh");
    }

    #[test]
    fn odd_offsets_do_not_panic() {
        let (mut console, _) = console(EventFd::new(0).unwrap(), SharedBuf::default());
        console.write(0x1234, &[1]);
        let mut b = [0];
        console.read(0x1234, &mut b);
        assert_eq!(b[0], 0xff);
    }
}

//! The VMM's standard input, buffered for the guest.
//!
//! One thread ([`spawn_reader`]) reads the host's stdin in large chunks into a bounded
//! [`StdinBuffer`]; when the buffer is full the thread sleeps on a condition variable until
//! the guest takes bytes, so input is never dropped and never busy-waited on. Two consumers
//! drain it, one at a time:
//!
//! - the 16550 UART (`serial`), for guests that poll a plain serial port: it tops its
//!   64-byte receive FIFO up from here while it is the [`Consumer::Uart`];
//! - the console-input device (`console_in`), which copies up to a whole request's worth
//!   into guest memory in one VM exit. Its first request makes it the
//!   [`Consumer::Device`] for good; the UART hands back what its FIFO still held
//!   ([`StdinBuffer::switch_to_device`]), so the bytes keep their order.
//!
//! The console interrupt: when a device request finds nothing buffered and input has not
//! ended, the buffer is "armed", and the next arrival of input (or its end) signals the
//! interrupt once. So a guest can halt after an empty read and is woken by the input, and a
//! guest that keeps reading takes no interrupts at all.

use std::collections::VecDeque;
use std::io::{self, Read};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread;

use vmm_sys_util::eventfd::EventFd;

/// Default capacity of the buffer between the host's stdin and the guest.
pub const STDIN_BUFFER_CAPACITY: usize = 64 << 10;

/// Size of one read of the host's stdin.
const READ_CHUNK: usize = 64 << 10;

/// Who takes input out of the buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Consumer {
    /// The 16550 UART's receive FIFO (until the console-input device is first used).
    Uart,
    /// The console-input device.
    Device,
}

/// What a device read found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Taken {
    /// Bytes handed over.
    pub count: usize,
    /// Bytes still buffered.
    pub pending: usize,
    /// Input has ended and nothing is left.
    pub ended: bool,
}

struct State {
    bytes: VecDeque<u8>,
    /// The host's stdin has ended (EOF or error): nothing more will arrive.
    ended: bool,
    consumer: Consumer,
    /// A device read found nothing: signal the interrupt when input next arrives or ends.
    armed: bool,
}

/// The bounded buffer between the stdin thread and the guest.
pub struct StdinBuffer {
    state: Mutex<State>,
    /// Signalled when bytes are taken out (room for the stdin thread).
    room: Condvar,
    capacity: usize,
    irq: EventFd,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere aborts the process (panic = "abort"), so poisoning cannot be
    // observed; still, never turn it into a second panic.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl StdinBuffer {
    /// An empty buffer holding at most `capacity` bytes (at least 1), raising the console
    /// interrupt through `irq`, consumed by the UART until a device read.
    pub fn new(capacity: usize, irq: EventFd) -> Self {
        StdinBuffer {
            state: Mutex::new(State {
                bytes: VecDeque::new(),
                ended: false,
                consumer: Consumer::Uart,
                armed: false,
            }),
            room: Condvar::new(),
            capacity: capacity.max(1),
            irq,
        }
    }

    fn raise_irq(&self) {
        if let Err(e) = self.irq.write(1) {
            log::debug!("stdin: cannot raise the console interrupt: {e}");
        }
    }

    /// Appends all of `data`, sleeping while the buffer is full; calls `on_input` after
    /// each piece that went in (the UART tops its FIFO up there).
    pub fn push(&self, mut data: &[u8], on_input: &mut dyn FnMut()) {
        while !data.is_empty() {
            let raise = {
                let mut state = lock(&self.state);
                while state.bytes.len() >= self.capacity {
                    state = self
                        .room
                        .wait(state)
                        .unwrap_or_else(PoisonError::into_inner);
                }
                let n = (self.capacity - state.bytes.len()).min(data.len());
                state.bytes.extend(&data[..n]);
                data = &data[n..];
                std::mem::take(&mut state.armed)
            };
            if raise {
                self.raise_irq();
            }
            on_input();
        }
    }

    /// Marks the end of input: once the buffer is drained, reads report it.
    pub fn end(&self) {
        let raise = {
            let mut state = lock(&self.state);
            state.ended = true;
            std::mem::take(&mut state.armed)
        };
        if raise {
            self.raise_irq();
        }
    }

    /// Who consumes the input now.
    pub fn consumer(&self) -> Consumer {
        lock(&self.state).consumer
    }

    /// Bytes buffered.
    pub fn len(&self) -> usize {
        lock(&self.state).bytes.len()
    }

    /// Whether nothing is buffered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Makes the device the consumer for good, putting `unread` (what the UART held and
    /// the guest had not read) back in front of the buffered bytes. Does nothing if the
    /// device already is the consumer.
    pub fn switch_to_device(&self, unread: &[u8]) {
        let mut state = lock(&self.state);
        if state.consumer == Consumer::Device {
            return;
        }
        state.consumer = Consumer::Device;
        for &b in unread.iter().rev() {
            state.bytes.push_front(b);
        }
    }

    /// A device read: makes the device the consumer, offers up to `max` buffered bytes to
    /// `deliver` (as the two halves of the ring, together at most `max` bytes) and
    /// removes them if it succeeds; if it fails nothing is taken. Arms the interrupt when
    /// it found nothing and input has not ended.
    pub fn take<E>(
        &self,
        max: usize,
        deliver: impl FnOnce(&[u8], &[u8]) -> Result<(), E>,
    ) -> Result<Taken, E> {
        let mut state = lock(&self.state);
        state.consumer = Consumer::Device;
        let count = max.min(state.bytes.len());
        let (front, back) = state.bytes.as_slices();
        let first = &front[..count.min(front.len())];
        let second = &back[..count - first.len()];
        deliver(first, second)?;
        state.bytes.drain(..count);
        let pending = state.bytes.len();
        state.armed = count == 0 && pending == 0 && !state.ended;
        if count > 0 {
            self.room.notify_all();
        }
        Ok(Taken {
            count,
            pending,
            ended: state.ended && pending == 0,
        })
    }

    /// A UART top-up, while the UART is the consumer (else `None`): offers up to `max`
    /// bytes (at most 64) to `enqueue`, which returns how many it accepted, and removes
    /// those. Returns whether input has ended with nothing left.
    pub fn take_for_uart(&self, max: usize, enqueue: impl FnOnce(&[u8]) -> usize) -> Option<bool> {
        let mut state = lock(&self.state);
        if state.consumer != Consumer::Uart {
            return None;
        }
        let mut chunk = [0u8; 64];
        let n = max.min(chunk.len()).min(state.bytes.len());
        for (dst, src) in chunk.iter_mut().zip(state.bytes.iter()) {
            *dst = *src;
        }
        if n > 0 {
            let accepted = enqueue(&chunk[..n]).min(n);
            state.bytes.drain(..accepted);
            if accepted > 0 {
                self.room.notify_all();
            }
        }
        Some(state.ended && state.bytes.is_empty())
    }
}

/// Starts the thread that reads `input` (the host's stdin) into `buffer` until it ends or
/// fails, then marks the end of input; `on_input` runs after every change (new bytes, the
/// end).
pub fn spawn_reader<R, F>(buffer: Arc<StdinBuffer>, mut input: R, mut on_input: F) -> io::Result<()>
where
    R: Read + Send + 'static,
    F: FnMut() + Send + 'static,
{
    thread::Builder::new()
        .name("stdin".into())
        .spawn(move || {
            let mut chunk = vec![0u8; READ_CHUNK];
            loop {
                match input.read(&mut chunk) {
                    Ok(0) => break,
                    Ok(n) => buffer.push(&chunk[..n], &mut on_input),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        log::debug!("stdin: {e}");
                        break;
                    }
                }
            }
            buffer.end();
            on_input();
        })
        .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::convert::Infallible;
    use std::time::{Duration, Instant};

    fn buffer(capacity: usize) -> (StdinBuffer, EventFd) {
        let irq = EventFd::new(libc::EFD_NONBLOCK).unwrap();
        (StdinBuffer::new(capacity, irq.try_clone().unwrap()), irq)
    }

    /// Takes up to `max` bytes as a device read.
    fn take(buf: &StdinBuffer, max: usize) -> (Vec<u8>, Taken) {
        let mut got = Vec::new();
        let taken = buf
            .take(max, |a, b| {
                got.extend_from_slice(a);
                got.extend_from_slice(b);
                Ok::<(), Infallible>(())
            })
            .unwrap();
        (got, taken)
    }

    fn irqs(irq: &EventFd) -> u64 {
        irq.read().unwrap_or(0)
    }

    #[test]
    fn device_reads_take_bytes_in_order_across_the_ring_seam() {
        let (buf, _irq) = buffer(8);
        buf.push(b"abcdef", &mut || ());
        assert_eq!(take(&buf, 4).0, b"abcd");
        // The ring now wraps: "ef" at the end, "ghij" at the start.
        buf.push(b"ghij", &mut || ());
        let (got, taken) = take(&buf, 100);
        assert_eq!(got, b"efghij");
        assert_eq!(
            taken,
            Taken {
                count: 6,
                pending: 0,
                ended: false
            }
        );
        buf.push(b"xyz", &mut || ());
        let (got, taken) = take(&buf, 2);
        assert_eq!((got.as_slice(), taken.pending), (&b"xy"[..], 1));
        // A zero-capacity read only reports.
        let (got, taken) = take(&buf, 0);
        assert_eq!((got.len(), taken.count, taken.pending), (0, 0, 1));
    }

    #[test]
    fn the_end_is_reported_only_once_everything_was_read() {
        let (buf, _irq) = buffer(16);
        buf.push(b"last", &mut || ());
        buf.end();
        let (got, taken) = take(&buf, 3);
        assert_eq!((got.as_slice(), taken.ended), (&b"las"[..], false));
        let (got, taken) = take(&buf, 3);
        assert_eq!((got.as_slice(), taken.ended), (&b"t"[..], true));
        assert!(take(&buf, 3).1.ended);
    }

    #[test]
    fn a_failed_delivery_takes_nothing() {
        let (buf, _irq) = buffer(16);
        buf.push(b"keep", &mut || ());
        assert_eq!(buf.take(4, |_, _| Err("no")), Err("no"));
        assert_eq!(take(&buf, 16).0, b"keep");
    }

    #[test]
    fn the_interrupt_fires_once_after_an_empty_read() {
        let (buf, irq) = buffer(16);
        // Nobody has found the buffer empty yet: no interrupt.
        buf.push(b"a", &mut || ());
        assert_eq!(irqs(&irq), 0);
        // A read that gets data does not arm it either.
        take(&buf, 16);
        buf.push(b"b", &mut || ());
        assert_eq!(irqs(&irq), 0);
        take(&buf, 16);
        // An empty read arms it; the next arrival fires it, once.
        assert_eq!(take(&buf, 16).1.count, 0);
        buf.push(b"c", &mut || ());
        buf.push(b"d", &mut || ());
        assert_eq!(irqs(&irq), 1);
        // The end of input fires it too.
        take(&buf, 16);
        take(&buf, 16);
        buf.end();
        assert_eq!(irqs(&irq), 1);
        // Once ended, an empty read does not arm it any more.
        assert!(take(&buf, 16).1.ended);
        buf.end();
        assert_eq!(irqs(&irq), 0);
    }

    #[test]
    fn a_full_buffer_blocks_the_writer_until_the_guest_reads() {
        let (buf, _irq) = buffer(4);
        let buf = Arc::new(buf);
        let data: Vec<u8> = (0..=255u8).cycle().take(10_000).collect();
        let writer = {
            let buf = Arc::clone(&buf);
            let data = data.clone();
            thread::spawn(move || {
                buf.push(&data, &mut || ());
                buf.end();
            })
        };
        let mut got = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            assert!(buf.len() <= 4, "the buffer overflowed");
            let (bytes, taken) = take(&buf, 3);
            got.extend(bytes);
            if taken.ended {
                break;
            }
            assert!(Instant::now() < deadline, "the writer stalled");
            if taken.count == 0 {
                thread::sleep(Duration::from_micros(100));
            }
        }
        writer.join().unwrap();
        assert_eq!(got, data);
    }

    #[test]
    fn the_uart_is_fed_until_the_device_takes_over() {
        let (buf, _irq) = buffer(16);
        buf.push(b"0123456789", &mut || ());
        assert_eq!(buf.consumer(), Consumer::Uart);
        let mut fifo = Vec::new();
        // The UART accepts only three bytes.
        let ended = buf.take_for_uart(64, |b| {
            fifo.extend_from_slice(&b[..3]);
            3
        });
        assert_eq!((ended, fifo.as_slice()), (Some(false), &b"012"[..]));
        // The device takes over; the UART gives back the two bytes its guest did not read.
        buf.switch_to_device(b"12");
        assert_eq!(buf.consumer(), Consumer::Device);
        assert_eq!(buf.take_for_uart(64, |_| panic!("fed the UART")), None);
        // A second switch changes nothing.
        buf.switch_to_device(b"zz");
        assert_eq!(take(&buf, 64).0, b"123456789");
    }

    #[test]
    fn the_uart_sees_the_end_once_drained() {
        let (buf, _irq) = buffer(16);
        buf.push(b"ab", &mut || ());
        buf.end();
        assert_eq!(buf.take_for_uart(1, |b| b.len()), Some(false));
        assert_eq!(buf.take_for_uart(64, |b| b.len()), Some(true));
        // A UART whose FIFO is full accepts nothing and loses nothing.
        let (buf, _irq) = buffer(16);
        buf.push(b"cd", &mut || ());
        assert_eq!(buf.take_for_uart(64, |_| 0), Some(false));
        assert_eq!(buf.len(), 2);
    }

    #[test]
    fn the_reader_thread_forwards_stdin_until_eof() {
        let (buf, _irq) = buffer(STDIN_BUFFER_CAPACITY);
        let buf = Arc::new(buf);
        let data: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
        spawn_reader(Arc::clone(&buf), io::Cursor::new(data.clone()), || ()).unwrap();
        let mut got = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let (bytes, taken) = take(&buf, 10_000);
            got.extend(bytes);
            if taken.ended {
                break;
            }
            assert!(Instant::now() < deadline, "the reader stalled");
            if taken.count == 0 {
                thread::sleep(Duration::from_millis(1));
            }
        }
        assert_eq!(got, data);
    }
}

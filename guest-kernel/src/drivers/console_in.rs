//! Console input: the VMM's stdin through its console-input device
//! ([`hypercall_abi::ConsoleRead`] on [`hypercall_abi::port::CONSOLE_IN`]).
//!
//! One request moves up to [`BOUNCE_SIZE`] bytes into a bounce buffer in the kernel image
//! (physically contiguous, below 4 GiB) in one VM exit, where the UART took two exits per
//! byte. Readers take bytes from there ([`Input::take`]) straight into their destination,
//! and fetch again only once it is empty ([`Input::refill`]). The VMM never waits for
//! input: an empty answer arms the console interrupt (IRQ 4), so a reader that found
//! nothing can halt until input arrives or ends.
//!
//! [`InputQueue`] is the bookkeeping alone, over any buffer and any fetch function, so it
//! is tested on the host.

use core::sync::atomic::{AtomicBool, Ordering};

use hypercall_abi::{read_flags, status, ConsoleRead, GuestPhysAddr};
use spin::{Mutex, MutexGuard};

use crate::arch::port;
use crate::mm::kernel_virt_to_phys;

/// Size of the bounce buffer: the most input one VM exit brings in (the VMM buffers as
/// much).
pub const BOUNCE_SIZE: usize = 64 << 10;

/// What one fetch from the VMM brought.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Fetched {
    /// Bytes written at the start of the buffer.
    pub count: usize,
    /// Bytes the VMM still holds.
    pub pending: usize,
    /// The VMM's input has ended and it holds nothing more.
    pub ended: bool,
}

/// Input fetched from the VMM and not yet read (`buf[head..tail]`), and what the VMM said
/// about its side at the last fetch.
pub struct InputQueue<B> {
    buf: B,
    head: usize,
    tail: usize,
    host_pending: usize,
    host_ended: bool,
    /// The device refused a request: input is unusable.
    failed: bool,
}

impl<B: AsRef<[u8]> + AsMut<[u8]>> InputQueue<B> {
    /// An empty queue over `buf`.
    pub const fn new(buf: B) -> Self {
        InputQueue {
            buf,
            head: 0,
            tail: 0,
            host_pending: 0,
            host_ended: false,
            failed: false,
        }
    }

    /// Bytes queued here.
    pub fn len(&self) -> usize {
        self.tail - self.head
    }

    /// Whether nothing is queued here.
    pub fn is_empty(&self) -> bool {
        self.head == self.tail
    }

    /// Bytes a read could return without waiting: queued here plus held by the VMM at
    /// the last fetch (only the guest takes from the VMM, so that is a lower bound).
    pub fn available(&self) -> usize {
        self.len().saturating_add(self.host_pending)
    }

    /// Whether input has ended and everything was read.
    pub fn ended(&self) -> bool {
        self.is_empty() && self.host_ended
    }

    /// Whether the device refused a request.
    pub fn failed(&self) -> bool {
        self.failed
    }

    /// Whether the VMM held more input at the last fetch.
    pub fn host_has_more(&self) -> bool {
        self.host_pending > 0
    }

    /// If nothing is queued, fetches into the whole buffer with `fetch` (`None` when the
    /// device refuses the request), unless `host_idle` says the VMM had nothing at the
    /// last fetch and nothing arrived since.
    ///
    /// `host_idle` is set here when a fetch finds nothing (the VMM then raises the console
    /// interrupt when input arrives or ends) and cleared by that interrupt. It is set
    /// before the request, so an interrupt at any point after the VMM armed it clears it:
    /// a wake-up is never lost, at worst a fetch is repeated.
    pub fn refill(
        &mut self,
        host_idle: &AtomicBool,
        fetch: impl FnOnce(&mut [u8]) -> Option<Fetched>,
    ) {
        if !self.is_empty() || self.host_ended || self.failed {
            return;
        }
        if host_idle.swap(true, Ordering::AcqRel) {
            return;
        }
        let buf = self.buf.as_mut();
        let Some(got) = fetch(buf) else {
            self.failed = true;
            return;
        };
        self.head = 0;
        self.tail = got.count.min(buf.len());
        self.host_pending = got.pending;
        self.host_ended = got.ended;
        if self.tail > 0 || got.pending > 0 || got.ended {
            host_idle.store(false, Ordering::Release);
        }
    }

    /// Offers up to `max` queued bytes to `sink`, only through the first newline if
    /// `line`, and drops what it took (it returns how many, fewer if it faulted). Returns
    /// `(taken, ended_a_line)`.
    pub fn take(
        &mut self,
        max: usize,
        line: bool,
        sink: impl FnOnce(&[u8]) -> usize,
    ) -> (usize, bool) {
        let mut avail = &self.buf.as_ref()[self.head..self.tail];
        avail = &avail[..max.min(avail.len())];
        let mut newline = false;
        if line {
            if let Some(i) = avail.iter().position(|&b| b == b'\n') {
                avail = &avail[..=i];
                newline = true;
            }
        }
        let offered = avail.len();
        let taken = sink(avail).min(offered);
        self.head += taken;
        (taken, newline && taken == offered)
    }

    /// Drops everything queued here.
    pub fn clear(&mut self) {
        self.head = 0;
        self.tail = 0;
    }
}

/// The device's request block and the bounce buffer.
pub struct Input {
    req: ConsoleRead,
    queue: InputQueue<[u8; BOUNCE_SIZE]>,
}

static INPUT: Mutex<Input> = Mutex::new(Input {
    req: ConsoleRead {
        data_gpa: GuestPhysAddr(0),
        capacity: 0,
        count: 0,
        pending: 0,
        status: 0,
        flags: 0,
        _pad: 0,
    },
    queue: InputQueue::new([0; BOUNCE_SIZE]),
});

/// Set while the VMM's last answer was "nothing buffered, input not ended" (which armed
/// its console interrupt) and no console interrupt came since: asking again is pointless.
static HOST_IDLE: AtomicBool = AtomicBool::new(false);

/// Set by the console interrupt, which is also how the VMM announces terminal signals:
/// [`take_tty_signals`] asks it then.
static SIGNALS_MAYBE: AtomicBool = AtomicBool::new(false);

/// The console interrupt (IRQ 4): input arrived or ended since the VMM last had nothing,
/// or the host queued a terminal signal. Safe from interrupt context: it only sets flags
/// and wakes waiters.
pub fn interrupt() {
    HOST_IDLE.store(false, Ordering::Release);
    SIGNALS_MAYBE.store(true, Ordering::Release);
    crate::task::wait::IO.wake_all();
}

/// Set by a console interrupt that came while the kernel could not take it (see
/// [`interrupt_deferred`]): its waiters are woken at the next safe point.
static WAKE_DEFERRED: AtomicBool = AtomicBool::new(false);

/// The console interrupt, arriving where waking tasks is not safe (it interrupted the
/// kernel): only flags change now; [`take_deferred`] does the rest later.
pub fn interrupt_deferred() {
    HOST_IDLE.store(false, Ordering::Release);
    SIGNALS_MAYBE.store(true, Ordering::Release);
    WAKE_DEFERRED.store(true, Ordering::Release);
}

/// Wakes the console's waiters if an interrupt was deferred ([`interrupt_deferred`]).
/// Called where the scheduler's state is consistent (the idle loop, timer ticks).
pub fn take_deferred() {
    if WAKE_DEFERRED.swap(false, Ordering::AcqRel) {
        crate::task::wait::IO.wake_all();
    }
}

/// The terminal signals the host queued (a [`hypercall_abi::tty_signal`] mask), if a
/// console interrupt came since the last call (then one VM exit), else 0.
pub fn take_tty_signals() -> u32 {
    if !SIGNALS_MAYBE.swap(false, Ordering::AcqRel) {
        return 0;
    }
    port::inl(hypercall_abi::port::TTY_SIGNAL)
}

/// The console input, locked. User copies may fault pages in while it is held, but never
/// wait for input: callers unlock before halting.
pub fn lock() -> MutexGuard<'static, Input> {
    INPUT.lock()
}

/// Asks the VMM for up to `buf.len()` bytes into `buf` (one VM exit).
fn fetch(req: &mut ConsoleRead, buf: &mut [u8]) -> Option<Fetched> {
    *req = ConsoleRead {
        data_gpa: GuestPhysAddr(kernel_virt_to_phys(buf.as_mut_ptr() as u64)),
        capacity: buf.len() as u32,
        count: 0,
        pending: 0,
        status: status::PENDING,
        flags: 0,
        _pad: 0,
    };
    let req_gpa = kernel_virt_to_phys(req as *const ConsoleRead as u64);
    // The port write is a compiler barrier (no `nomem`): the block is in memory before it,
    // and the bytes the VMM wrote into `buf` are read after it.
    port::outl(hypercall_abi::port::CONSOLE_IN, req_gpa as u32);
    // SAFETY: `req` is a valid, aligned ConsoleRead the VMM may have written during the
    // port write; read it volatile so the compiler does not assume it unchanged.
    let done = unsafe { core::ptr::read_volatile(req) };
    if done.status != status::OK {
        crate::kprintln!("astra: console input refused (status {})", done.status);
        return None;
    }
    Some(Fetched {
        count: done.count as usize,
        pending: done.pending as usize,
        ended: done.flags & read_flags::INPUT_ENDED != 0,
    })
}

impl Input {
    /// The queued input.
    pub fn queue(&mut self) -> &mut InputQueue<[u8; BOUNCE_SIZE]> {
        &mut self.queue
    }

    /// Fetches from the VMM if nothing is queued and it may have something (one VM exit).
    pub fn refill(&mut self) {
        let Input { req, queue } = self;
        queue.refill(&HOST_IDLE, |buf| fetch(req, buf));
    }

    /// Discards the input queued here and what the VMM holds now (a bounded number of
    /// fetches, in case the host keeps writing).
    pub fn discard(&mut self) {
        for _ in 0..4 {
            self.queue.clear();
            if !self.queue.host_has_more() {
                break;
            }
            self.refill();
        }
        self.queue.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    /// A fake VMM holding `data`, ended once it is all taken if `ends`.
    struct Host {
        data: Vec<u8>,
        ends: bool,
        fetches: usize,
    }

    impl Host {
        fn new(data: &[u8], ends: bool) -> Self {
            Host {
                data: data.to_vec(),
                ends,
                fetches: 0,
            }
        }

        fn fetch(&mut self, buf: &mut [u8]) -> Option<Fetched> {
            self.fetches += 1;
            let n = buf.len().min(self.data.len());
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data.drain(..n);
            Some(Fetched {
                count: n,
                pending: self.data.len(),
                ended: self.ends && self.data.is_empty(),
            })
        }
    }

    fn take_all(q: &mut InputQueue<[u8; 8]>, max: usize, line: bool) -> (Vec<u8>, bool) {
        let mut got = Vec::new();
        let (n, nl) = q.take(max, line, |b| {
            got.extend_from_slice(b);
            b.len()
        });
        assert_eq!(n, got.len());
        (got, nl)
    }

    #[test]
    fn fetches_only_when_empty_and_keeps_the_rest() {
        let mut host = Host::new(b"0123456789abc", false);
        let mut q = InputQueue::new([0u8; 8]);
        q.refill(&AtomicBool::new(false), |b| host.fetch(b));
        assert_eq!((q.len(), q.available()), (8, 13));
        q.refill(&AtomicBool::new(false), |b| host.fetch(b));
        assert_eq!(host.fetches, 1);
        assert_eq!(take_all(&mut q, 3, false).0, b"012");
        assert_eq!(take_all(&mut q, 100, false).0, b"34567");
        assert!(q.is_empty() && q.host_has_more());
        q.refill(&AtomicBool::new(false), |b| host.fetch(b));
        assert_eq!(take_all(&mut q, 100, false).0, b"89abc");
        assert!(!q.ended());
        q.refill(&AtomicBool::new(false), |b| host.fetch(b));
        assert_eq!((q.len(), q.available(), q.ended()), (0, 0, false));
    }

    #[test]
    fn line_mode_stops_after_a_newline() {
        let mut host = Host::new(b"ab\ncd\n\nef", true);
        let mut q = InputQueue::new([0u8; 8]);
        q.refill(&AtomicBool::new(false), |b| host.fetch(b));
        assert_eq!(take_all(&mut q, 100, true), (b"ab\n".to_vec(), true));
        assert_eq!(take_all(&mut q, 1, true), (b"c".to_vec(), false));
        assert_eq!(take_all(&mut q, 100, true), (b"d\n".to_vec(), true));
        assert_eq!(take_all(&mut q, 100, true), (b"\n".to_vec(), true));
        // The buffer ends without a newline: what is there, not a line.
        assert_eq!(take_all(&mut q, 100, true), (b"e".to_vec(), false));
        assert_eq!(take_all(&mut q, 100, false), (b"".to_vec(), false));
        q.refill(&AtomicBool::new(false), |b| host.fetch(b));
        assert_eq!(take_all(&mut q, 100, true), (b"f".to_vec(), false));
        assert!(q.ended());
    }

    #[test]
    fn a_faulting_sink_leaves_the_rest_unread() {
        let mut host = Host::new(b"abcdef", false);
        let mut q = InputQueue::new([0u8; 8]);
        q.refill(&AtomicBool::new(false), |b| host.fetch(b));
        assert_eq!(q.take(6, false, |_| 2), (2, false));
        assert_eq!(q.take(6, true, |_| 0), (0, false));
        assert_eq!(take_all(&mut q, 100, false).0, b"cdef");
        // A sink that reports more than offered cannot push the queue past its end.
        let mut host = Host::new(b"xy\nz", false);
        q.refill(&AtomicBool::new(false), |b| host.fetch(b));
        assert_eq!(q.take(100, true, |_| 1000), (3, true));
        assert_eq!(q.len(), 1);
    }

    #[test]
    fn the_end_shows_once_everything_was_read() {
        let mut host = Host::new(b"x", true);
        let mut q = InputQueue::new([0u8; 8]);
        q.refill(&AtomicBool::new(false), |b| host.fetch(b));
        assert!(!q.ended());
        take_all(&mut q, 100, false);
        assert!(q.ended());
        // No more fetches once ended.
        q.refill(&AtomicBool::new(false), |b| host.fetch(b));
        assert_eq!(host.fetches, 1);
        // Empty input ends at once.
        let mut host = Host::new(b"", true);
        let mut q = InputQueue::new([0u8; 8]);
        q.refill(&AtomicBool::new(false), |b| host.fetch(b));
        assert!(q.ended());
    }

    #[test]
    fn after_an_empty_answer_only_the_interrupt_makes_it_ask_again() {
        let idle = AtomicBool::new(false);
        let mut host = Host::new(b"", false);
        let mut q = InputQueue::new([0u8; 8]);
        q.refill(&idle, |b| host.fetch(b));
        assert!(idle.load(Ordering::Relaxed) && q.is_empty());
        // Timer wake-ups: no new request while the VMM has said it has nothing.
        for _ in 0..10 {
            q.refill(&idle, |b| host.fetch(b));
        }
        assert_eq!(host.fetches, 1);
        // Input arrives; the VMM raises the interrupt.
        host.data.extend_from_slice(b"hi");
        idle.store(false, Ordering::Relaxed);
        q.refill(&idle, |b| host.fetch(b));
        assert_eq!((host.fetches, q.len()), (2, 2));
        assert!(!idle.load(Ordering::Relaxed));
        // An interrupt that lands during the request (the VMM armed it and input came at
        // once) is not lost: the flag set before the request is cleared.
        take_all(&mut q, 100, false);
        q.refill(&idle, |b| {
            idle.store(false, Ordering::Relaxed);
            host.fetch(b)
        });
        assert!(!idle.load(Ordering::Relaxed));
        // The end of input also counts as news.
        host.ends = true;
        q.refill(&idle, |b| host.fetch(b));
        assert!(q.ended() && !idle.load(Ordering::Relaxed));
    }

    #[test]
    fn a_refused_request_fails_the_queue() {
        let mut q = InputQueue::new([0u8; 8]);
        q.refill(&AtomicBool::new(false), |_| None);
        assert!(q.failed() && q.is_empty() && !q.ended());
        let mut called = false;
        q.refill(&AtomicBool::new(false), |_| {
            called = true;
            None
        });
        assert!(!called);
    }

    #[test]
    fn a_lying_count_is_clamped_to_the_buffer() {
        let mut q = InputQueue::new([0u8; 8]);
        q.refill(&AtomicBool::new(false), |_| {
            Some(Fetched {
                count: 1000,
                pending: usize::MAX,
                ended: false,
            })
        });
        assert_eq!(q.len(), 8);
        assert_eq!(q.available(), usize::MAX);
    }
}

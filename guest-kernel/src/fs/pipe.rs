//! Pipes: a bounded byte queue with a read end and a write end (`pipe2`), and FIFOs:
//! the pipe of a named node, made when the first end is opened and gone when the last
//! closes ([`open_fifo`]).
//!
//! Reading an empty pipe whose write end is still open waits on the pipe's reader queue,
//! writing a full one on its writer queue (Linux's `rd_wait`/`wr_wait`): a change of one
//! pipe wakes only the tasks waiting on that pipe, plus the `poll`/`select` sleepers on
//! the global [`IO`] queue (a poller watches many files at once; it re-checks them all).

use alloc::collections::{BTreeMap, VecDeque};
use alloc::sync::{Arc, Weak};
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use spin::Mutex;

use super::file::{poll_events::*, ReadSink, WriteSource};
use crate::errno::Errno;
use crate::task::sched::WaitResult;
use crate::task::wait::{WaitQueue, IO};

/// Capacity of a pipe (Linux's default: 16 pages).
pub const PIPE_CAPACITY: usize = 64 * 1024;
/// The largest `F_SETPIPE_SZ` accepted (Linux's default `/proc/sys/fs/pipe-max-size`).
/// Linux lets a process with `CAP_SYS_RESOURCE` (root) go beyond it; astra's pipes live
/// on the kernel heap, so everyone gets `EPERM` above it, as an unprivileged process on
/// Linux.
pub const PIPE_MAX_SIZE: usize = 1024 * 1024;
/// The page size pipe capacities are counted in.
const PIPE_PAGE: usize = 4096;
/// Writes up to this size are atomic (`PIPE_BUF`).
pub const PIPE_BUF: usize = 4096;

/// The device number pipes report (Linux's pipefs is an anonymous device like this).
pub const PIPEFS_DEV: (u32, u32) = (0, 0xd);

static NEXT_INO: AtomicU64 = AtomicU64::new(1);

struct Pipe {
    data: Mutex<VecDeque<u8>>,
    readers: AtomicUsize,
    writers: AtomicUsize,
    /// Opens of a read end and of a write end so far (a FIFO opener waits for the other
    /// count to move, so a partner that came and went still counts, as on Linux).
    read_opens: AtomicU64,
    write_opens: AtomicU64,
    /// Capacity in bytes (`F_SETPIPE_SZ`): a power-of-two number of pages.
    capacity: AtomicUsize,
    /// Readers waiting for data or end of file, and FIFO openers waiting for a writer.
    read_wait: WaitQueue,
    /// Writers waiting for room or for the last reader to go, and FIFO openers waiting
    /// for a reader.
    write_wait: WaitQueue,
    ino: u64,
}

impl Pipe {
    /// Wakes this pipe's readers and/or writers, and the `poll`/`select` sleepers (on the
    /// global I/O queue, which plain reads and writes no longer sleep on).
    fn notify(&self, readers: bool, writers: bool) {
        if readers {
            self.read_wait.wake_all();
        }
        if writers {
            self.write_wait.wake_all();
        }
        IO.wake_all();
    }

    fn new(ino: u64) -> Arc<Pipe> {
        Arc::new(Pipe {
            data: Mutex::new(VecDeque::new()),
            readers: AtomicUsize::new(0),
            writers: AtomicUsize::new(0),
            read_opens: AtomicU64::new(0),
            write_opens: AtomicU64::new(0),
            capacity: AtomicUsize::new(PIPE_CAPACITY),
            read_wait: WaitQueue::new(),
            write_wait: WaitQueue::new(),
            ino,
        })
    }
}

/// One end of a pipe (or both: a FIFO opened `O_RDWR`); dropping it closes its ends.
pub struct PipeEnd {
    pipe: Arc<Pipe>,
    read: bool,
    write: bool,
}

impl core::fmt::Debug for PipeEnd {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "PipeEnd(ino {}, write {})", self.pipe.ino, self.write)
    }
}

/// Linux's `round_pipe_size`: a power-of-two number of pages, at least one; `None` above
/// 2^31 bytes.
fn round_pipe_size(size: u64) -> Option<usize> {
    if size > 1 << 31 {
        return None;
    }
    Some((size as usize).max(PIPE_PAGE).next_power_of_two())
}

/// A fresh inode number on the pipe filesystem (also for the standard streams that are
/// host pipes or files, [`super::host_stream`]).
pub fn new_ino() -> u64 {
    NEXT_INO.fetch_add(1, Ordering::Relaxed)
}

/// A new pipe: (read end, write end).
pub fn pipe() -> (PipeEnd, PipeEnd) {
    let pipe = Pipe::new(new_ino());
    (
        PipeEnd::attach(&pipe, true, false),
        PipeEnd::attach(&pipe, false, true),
    )
}

/// The pipes of the FIFOs open now, by (file system, inode).
static FIFOS: Mutex<BTreeMap<(u64, u64), Weak<Pipe>>> = Mutex::new(BTreeMap::new());

/// Opens the FIFO node `key` (reported with inode number `ino`) for reading, writing or
/// both, as Linux does: a reader waits for a writer and a writer for a reader, unless
/// `nonblock` (then a reader opens at once and a writer with no reader gets `ENXIO`);
/// `O_RDWR` never waits. `ERESTARTSYS` if a signal ends the wait.
pub fn open_fifo(
    key: (u64, u64),
    ino: u64,
    read: bool,
    write: bool,
    nonblock: bool,
) -> Result<PipeEnd, Errno> {
    let pipe = {
        let mut fifos = FIFOS.lock();
        fifos.retain(|_, p| p.strong_count() > 0);
        match fifos.get(&key).and_then(Weak::upgrade) {
            Some(p) => p,
            None => {
                let p = Pipe::new(ino);
                fifos.insert(key, Arc::downgrade(&p));
                p
            }
        }
    };
    open_on(&pipe, read, write, nonblock)
}

/// A pipe as `/proc/[pid]/fd/N` reaches it: opening it opens the same pipe as a FIFO, as
/// Linux's pipefs inode does. Holding one keeps the pipe's queue, not its ends.
#[derive(Clone)]
pub struct PipeHandle(Arc<Pipe>);

impl PipeHandle {
    /// Its inode number on the pipe filesystem.
    pub fn ino(&self) -> u64 {
        self.0.ino
    }

    /// Opens the pipe for reading, writing or both. Unlike a FIFO's open, it never waits
    /// for the other side, nor fails without it (Linux's `fifo_open` on pipefs): a reader
    /// whose writers are gone reads the end, a writer without readers gets `EPIPE`.
    pub fn open(&self, read: bool, write: bool) -> PipeEnd {
        let end = PipeEnd::attach(&self.0, read, write);
        self.0.notify(true, true);
        end
    }
}

/// The FIFO open of [`open_fifo`] on `pipe`.
fn open_on(pipe: &Arc<Pipe>, read: bool, write: bool, nonblock: bool) -> Result<PipeEnd, Errno> {
    if write && !read && nonblock && pipe.readers.load(Ordering::Relaxed) == 0 {
        return Err(Errno::ENXIO);
    }
    let end = PipeEnd::attach(pipe, read, write);
    pipe.notify(true, true);
    if nonblock || (read && write) {
        return Ok(end);
    }
    // Wait until the other side has been opened since (it may have closed again).
    let (partners, opens) = if read {
        (&pipe.writers, &pipe.write_opens)
    } else {
        (&pipe.readers, &pipe.read_opens)
    };
    let queue = if read {
        &pipe.read_wait
    } else {
        &pipe.write_wait
    };
    let seen = opens.load(Ordering::Relaxed);
    while partners.load(Ordering::Relaxed) == 0 && opens.load(Ordering::Relaxed) == seen {
        if queue.wait(None) == WaitResult::Interrupted {
            return Err(Errno::ERESTARTSYS);
        }
    }
    Ok(end)
}

impl Drop for PipeEnd {
    fn drop(&mut self) {
        if self.write {
            self.pipe.writers.fetch_sub(1, Ordering::Relaxed);
        }
        if self.read {
            self.pipe.readers.fetch_sub(1, Ordering::Relaxed);
        }
        // Readers see end of file, writers EPIPE.
        self.pipe.notify(true, true);
    }
}

impl PipeEnd {
    /// A new handle on `pipe`'s read and/or write end.
    fn attach(pipe: &Arc<Pipe>, read: bool, write: bool) -> PipeEnd {
        if read {
            pipe.readers.fetch_add(1, Ordering::Relaxed);
            pipe.read_opens.fetch_add(1, Ordering::Relaxed);
        }
        if write {
            pipe.writers.fetch_add(1, Ordering::Relaxed);
            pipe.write_opens.fetch_add(1, Ordering::Relaxed);
        }
        PipeEnd {
            pipe: Arc::clone(pipe),
            read,
            write,
        }
    }

    /// The pipe itself, as `/proc/[pid]/fd/N` reaches it.
    pub fn handle(&self) -> PipeHandle {
        PipeHandle(Arc::clone(&self.pipe))
    }

    /// Whether this handle reads (it may also write: a FIFO opened `O_RDWR`).
    pub fn is_read_end(&self) -> bool {
        self.read
    }

    /// The pipe's inode number.
    pub fn ino(&self) -> u64 {
        self.pipe.ino
    }

    /// Whether this is the write end.
    pub fn is_write_end(&self) -> bool {
        self.write
    }

    /// Bytes waiting to be read.
    pub fn available(&self) -> usize {
        self.pipe.data.lock().len()
    }

    /// The pipe's capacity in bytes (`F_GETPIPE_SZ`).
    pub fn capacity(&self) -> usize {
        self.pipe.capacity.load(Ordering::Relaxed)
    }

    /// `F_SETPIPE_SZ`: sets the capacity to `size` rounded up to a power-of-two number of
    /// pages (at least one) and returns it; `EINVAL` above 2^31, `EPERM` above
    /// [`PIPE_MAX_SIZE`], `EBUSY` if the data queued needs more pages than that.
    pub fn set_capacity(&self, size: u64) -> Result<usize, Errno> {
        let new = round_pipe_size(size).ok_or(Errno::EINVAL)?;
        if new > PIPE_MAX_SIZE {
            return Err(Errno::EPERM);
        }
        let data = self.pipe.data.lock();
        if data.len().div_ceil(PIPE_PAGE) > new / PIPE_PAGE {
            return Err(Errno::EBUSY);
        }
        self.pipe.capacity.store(new, Ordering::Relaxed);
        drop(data);
        // More room: writers waiting for it may go on.
        self.pipe.notify(false, true);
        Ok(new)
    }

    /// Waits until the pipe holds data, then runs `take` on the queue (under its lock):
    /// `Some` of its result; `None` once the queue is empty and every write end is closed;
    /// `EAGAIN` when empty and `nonblock`.
    fn with_data<R>(
        &self,
        nonblock: bool,
        mut take: impl FnMut(&mut VecDeque<u8>) -> R,
    ) -> Result<Option<R>, Errno> {
        loop {
            {
                let mut q = self.pipe.data.lock();
                if !q.is_empty() {
                    return Ok(Some(take(&mut q)));
                }
                if self.pipe.writers.load(Ordering::Relaxed) == 0 {
                    return Ok(None);
                }
            }
            if nonblock {
                return Err(Errno::EAGAIN);
            }
            if self.pipe.read_wait.wait(None) == WaitResult::Interrupted {
                return Err(Errno::ERESTARTSYS);
            }
        }
    }

    /// Reads what is queued (up to the sink's size); 0 once the queue is empty and every
    /// write end is closed; `EAGAIN` when empty and `nonblock`.
    pub fn read(&self, out: &mut dyn ReadSink, nonblock: bool) -> Result<usize, Errno> {
        if out.remaining() == 0 {
            return Ok(0);
        }
        let taken = self.with_data(nonblock, |q| {
            let mut done = 0;
            while out.remaining() > 0 && !q.is_empty() {
                let (front, _) = q.as_slices();
                let n = front.len().min(out.remaining());
                let put = out.put(&front[..n]);
                q.drain(..put);
                done += put;
                if put < n {
                    break;
                }
            }
            done
        })?;
        let Some(done) = taken else {
            return Ok(0);
        };
        if done > 0 {
            // Room for blocked writers.
            self.pipe.notify(false, true);
        }
        if done == 0 && out.faulted() {
            Err(Errno::EFAULT)
        } else {
            Ok(done)
        }
    }

    /// Writes everything from `src`, waiting for room unless `nonblock` (then a partial
    /// write, or `EAGAIN` if nothing fit; writes of at most `PIPE_BUF` go in whole or not
    /// at all). `EPIPE` when no read end is open.
    pub fn write(&self, src: &mut dyn WriteSource, nonblock: bool) -> Result<usize, Errno> {
        let atomic = src.remaining() <= PIPE_BUF;
        let mut done = 0usize;
        let mut buf = [0u8; 512];
        while src.remaining() > 0 {
            if self.pipe.readers.load(Ordering::Relaxed) == 0 {
                return if done > 0 {
                    Ok(done)
                } else {
                    Err(Errno::EPIPE)
                };
            }
            let room = self.capacity().saturating_sub(self.pipe.data.lock().len());
            let fits = if atomic {
                room >= src.remaining()
            } else {
                room > 0
            };
            if !fits {
                if nonblock {
                    return if done > 0 {
                        Ok(done)
                    } else {
                        Err(Errno::EAGAIN)
                    };
                }
                if self.pipe.write_wait.wait(None) == WaitResult::Interrupted {
                    return if done > 0 {
                        Ok(done)
                    } else {
                        Err(Errno::ERESTARTSYS)
                    };
                }
                continue;
            }
            let want = src.remaining().min(room).min(buf.len());
            // The buffer grows within the kernel-heap budget: ENOMEM (as Linux when it
            // cannot allocate a pipe page), never a panic.
            if let Err(e) = crate::mm::kalloc::try_reserve_deque(&mut self.pipe.data.lock(), want) {
                return if done > 0 { Ok(done) } else { Err(e.into()) };
            }
            let n = src.take(&mut buf[..want]);
            self.pipe.data.lock().extend(&buf[..n]);
            done += n;
            self.pipe.notify(true, false);
            if n < want {
                break;
            }
        }
        if done == 0 && src.faulted() {
            Err(Errno::EFAULT)
        } else {
            Ok(done)
        }
    }

    /// Copies queued bytes (up to the sink's size) without consuming them (`tee`): waits
    /// like [`Self::read`] while the pipe is empty and a writer is open; 0 once it is
    /// empty with no writer; `EAGAIN` when empty and `nonblock`.
    pub fn peek(&self, out: &mut dyn ReadSink, nonblock: bool) -> Result<usize, Errno> {
        if out.remaining() == 0 {
            return Ok(0);
        }
        let copied = self.with_data(nonblock, |q| {
            let (a, b) = q.as_slices();
            let mut done = out.put(a);
            if done == a.len() {
                done += out.put(b);
            }
            done
        })?;
        Ok(copied.unwrap_or(0))
    }

    /// True if both are ends of one pipe.
    pub fn same_pipe(&self, other: &PipeEnd) -> bool {
        Arc::ptr_eq(&self.pipe, &other.pipe)
    }

    /// Ready events: the read end is readable with data or with no writer left (then also
    /// `POLLHUP`); the write end is writable with room, `POLLERR` with no reader left.
    pub fn poll(&self) -> u16 {
        let len = self.available();
        let mut ev = 0;
        if self.write {
            if self.pipe.readers.load(Ordering::Relaxed) == 0 {
                ev |= POLLERR;
            } else if len < self.capacity() {
                ev |= POLLOUT | POLLWRNORM;
            }
        }
        if self.read {
            if len > 0 {
                ev |= POLLIN | POLLRDNORM;
            }
            if self.pipe.writers.load(Ordering::Relaxed) == 0 {
                ev |= POLLHUP;
            }
        }
        ev
    }
}

#[cfg(test)]
mod tests {
    use super::super::file::VecSink;
    use super::*;
    use alloc::vec::Vec;

    struct Bytes(Vec<u8>);

    impl WriteSource for Bytes {
        fn remaining(&self) -> usize {
            self.0.len()
        }
        fn take(&mut self, buf: &mut [u8]) -> usize {
            let n = buf.len().min(self.0.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0.drain(..n);
            n
        }
        fn skip(&mut self, n: usize) {
            self.0.drain(..n);
        }
        fn faulted(&self) -> bool {
            false
        }
    }

    #[test]
    fn bytes_flow_and_ends_close() {
        let (r, w) = pipe();
        assert_eq!(w.write(&mut Bytes(b"hello".to_vec()), true), Ok(5));
        assert_eq!(r.poll(), POLLIN | POLLRDNORM);
        let mut s = VecSink::new(3);
        assert_eq!(r.read(&mut s, true), Ok(3));
        assert_eq!(s.data, b"hel");
        assert_eq!(r.available(), 2);
        drop(w);
        assert_eq!(r.poll(), POLLIN | POLLRDNORM | POLLHUP);
        let mut s = VecSink::new(10);
        assert_eq!(r.read(&mut s, false), Ok(2));
        assert_eq!(r.read(&mut s, false), Ok(0));
    }

    #[test]
    fn full_and_broken_pipes() {
        let (r, w) = pipe();
        assert_eq!(r.read(&mut VecSink::new(1), true), Err(Errno::EAGAIN));
        let big = alloc::vec![7u8; PIPE_CAPACITY + 10];
        assert_eq!(w.write(&mut Bytes(big), true), Ok(PIPE_CAPACITY));
        assert_eq!(w.poll(), 0);
        assert_eq!(w.write(&mut Bytes(b"x".to_vec()), true), Err(Errno::EAGAIN));
        // An atomic write that does not fit whole is not split.
        r.read(&mut VecSink::new(10), true).unwrap();
        let small = alloc::vec![1u8; 100];
        assert_eq!(w.write(&mut Bytes(small), true), Err(Errno::EAGAIN));
        drop(r);
        assert_eq!(w.poll(), POLLERR);
        assert_eq!(w.write(&mut Bytes(b"x".to_vec()), true), Err(Errno::EPIPE));
        assert!(w.is_write_end());
    }

    #[test]
    fn pipe_size_rounds_limits_and_bounds_writes() {
        let (r, w) = pipe();
        assert_eq!(w.capacity(), PIPE_CAPACITY);
        assert_eq!(round_pipe_size(0), Some(4096));
        assert_eq!(round_pipe_size(4097), Some(8192));
        assert_eq!(round_pipe_size(3 * 4096), Some(4 * 4096));
        assert_eq!(round_pipe_size((1 << 31) + 1), None);
        assert_eq!(w.set_capacity(1 << 32), Err(Errno::EINVAL));
        assert_eq!(w.set_capacity(PIPE_MAX_SIZE as u64 + 1), Err(Errno::EPERM));
        assert_eq!(r.set_capacity(5000), Ok(8192), "either end");
        let big = alloc::vec![7u8; 10_000];
        assert_eq!(
            w.write(&mut Bytes(big), true),
            Ok(8192),
            "full at the new size"
        );
        assert_eq!(w.poll() & POLLOUT, 0);
        assert_eq!(w.set_capacity(4096), Err(Errno::EBUSY));
        assert_eq!(w.set_capacity(PIPE_MAX_SIZE as u64), Ok(PIPE_MAX_SIZE));
        assert_ne!(w.poll() & POLLOUT, 0);
    }

    #[test]
    fn fifo_ends_meet_on_one_pipe_until_the_last_closes() {
        let key = (99, 7);
        // Nobody reads: a non-blocking writer gets ENXIO, a reader opens at once.
        assert!(matches!(
            open_fifo(key, 7, false, true, true),
            Err(Errno::ENXIO)
        ));
        let r = open_fifo(key, 7, true, false, true).unwrap();
        let w = open_fifo(key, 7, false, true, true).unwrap();
        assert_eq!(r.ino(), w.ino());
        assert_eq!(w.write(&mut Bytes(b"abc".to_vec()), true), Ok(3));
        let rw = open_fifo(key, 7, true, true, false).unwrap();
        assert_eq!(rw.poll(), POLLIN | POLLRDNORM | POLLOUT | POLLWRNORM);
        drop(rw);
        let mut s = VecSink::new(8);
        assert_eq!(r.read(&mut s, true), Ok(3));
        drop(w);
        assert_eq!(r.poll(), POLLHUP);
        drop(r);
        // All closed: the next opener gets a fresh, empty pipe.
        let r = open_fifo(key, 7, true, false, true).unwrap();
        assert_eq!(r.available(), 0);
        assert_eq!(r.poll(), POLLHUP);
    }
}

//! Reading and writing file descriptors: `read`, `write`, `readv`, `writev`, `pread64`,
//! `pwrite64`, `preadv`, `pwritev`, `lseek`.
//!
//! Data moves between the open file and user memory a page at a time through
//! [`UserWriter`] and [`UserReader`] (the file's [`ReadSink`]/[`WriteSource`]), so a 64 MiB
//! read never stages 64 MiB in the kernel heap, and a buffer that faults part way gives the
//! bytes moved before the fault, or `EFAULT` if none were, as on Linux.

use alloc::vec::Vec;

use super::{Ctx, Errno, SysResult};
use crate::fs::file::{ReadSink, WriteSource};
use crate::mm::paging::USER_END;
use crate::mm::PAGE_SIZE;
use crate::signal::{si_code, sig, SigInfo};

/// Largest transfer of one call (Linux `MAX_RW_COUNT`); larger ones are short.
pub const MAX_RW_COUNT: usize = 0x7fff_f000;
/// Most iovecs in one call (`IOV_MAX`).
const IOV_MAX: u64 = 1024;

/// A user buffer: (address, length) pieces filled or drained in order.
#[derive(Debug, Clone, Default)]
pub struct Segments {
    segs: Vec<(u64, usize)>,
    total: usize,
}

impl Segments {
    /// One buffer of `len` bytes at `va` (capped at [`MAX_RW_COUNT`]): `EFAULT` if the
    /// range leaves user space (Linux's `access_ok`).
    pub fn single(va: u64, len: usize) -> Result<Self, Errno> {
        check_range(va, len)?;
        let len = len.min(MAX_RW_COUNT);
        Ok(Segments {
            segs: alloc::vec![(va, len)],
            total: len,
        })
    }

    /// The buffers of an iovec array of `count` entries at `iov`: `EINVAL` for too many
    /// entries or a negative length, `EFAULT` for a bad array or buffer; the total is
    /// capped at [`MAX_RW_COUNT`] by shortening the last buffers.
    pub fn iovec(ctx: &Ctx<'_>, iov: u64, count: u64) -> Result<Self, Errno> {
        if count > IOV_MAX {
            return Err(Errno::EINVAL);
        }
        let raw = ctx.read_vec(iov, count as usize * 16)?;
        let mut s = Segments::default();
        for entry in raw.chunks_exact(16) {
            let base = u64::from_le_bytes(entry[..8].try_into().unwrap_or_default());
            let len = u64::from_le_bytes(entry[8..].try_into().unwrap_or_default());
            if len > isize::MAX as u64 {
                return Err(Errno::EINVAL);
            }
            let len = len as usize;
            check_range(base, len)?;
            let len = len.min(MAX_RW_COUNT - s.total);
            if len > 0 {
                s.segs.push((base, len));
                s.total += len;
            }
        }
        Ok(s)
    }
}

fn check_range(va: u64, len: usize) -> Result<(), Errno> {
    match va.checked_add(len as u64) {
        Some(end) if end <= USER_END => Ok(()),
        _ => Err(Errno::EFAULT),
    }
}

/// Bytes from `va` to the end of its page.
fn page_left(va: u64) -> usize {
    (PAGE_SIZE - va % PAGE_SIZE) as usize
}

/// Cursor over [`Segments`].
struct Cursor {
    s: Segments,
    seg: usize,
    off: usize,
    done: usize,
    faulted: bool,
}

impl Cursor {
    fn new(s: Segments) -> Self {
        Cursor {
            s,
            seg: 0,
            off: 0,
            done: 0,
            faulted: false,
        }
    }

    fn remaining(&self) -> usize {
        if self.faulted {
            0
        } else {
            self.s.total - self.done
        }
    }

    /// The next piece of user memory, at most `max` bytes and never crossing a page.
    fn next_piece(&mut self, max: usize) -> Option<(u64, usize)> {
        while let Some(&(base, len)) = self.s.segs.get(self.seg) {
            if self.off < len {
                let va = base + self.off as u64;
                return Some((va, (len - self.off).min(max).min(page_left(va))));
            }
            self.seg += 1;
            self.off = 0;
        }
        None
    }

    fn advance(&mut self, n: usize) {
        self.off += n;
        self.done += n;
    }
}

/// A [`ReadSink`] writing into user buffers.
pub struct UserWriter<'c, 'a> {
    ctx: &'c mut Ctx<'a>,
    cur: Cursor,
}

impl<'c, 'a> UserWriter<'c, 'a> {
    /// A sink filling `segs` in `ctx`'s address space.
    pub fn new(ctx: &'c mut Ctx<'a>, segs: Segments) -> Self {
        UserWriter {
            ctx,
            cur: Cursor::new(segs),
        }
    }
}

impl ReadSink for UserWriter<'_, '_> {
    fn remaining(&self) -> usize {
        self.cur.remaining()
    }

    fn put(&mut self, data: &[u8]) -> usize {
        let mut taken = 0;
        while taken < data.len() && !self.cur.faulted {
            let Some((va, n)) = self.cur.next_piece(data.len() - taken) else {
                break;
            };
            if self.ctx.write_user(va, &data[taken..taken + n]).is_err() {
                self.cur.faulted = true;
                break;
            }
            self.cur.advance(n);
            taken += n;
        }
        taken
    }

    fn faulted(&self) -> bool {
        self.cur.faulted
    }
}

/// A [`WriteSource`] reading from user buffers.
pub struct UserReader<'c, 'a> {
    ctx: &'c Ctx<'a>,
    cur: Cursor,
}

impl<'c, 'a> UserReader<'c, 'a> {
    /// A source draining `segs` from `ctx`'s address space.
    pub fn new(ctx: &'c Ctx<'a>, segs: Segments) -> Self {
        UserReader {
            ctx,
            cur: Cursor::new(segs),
        }
    }
}

impl WriteSource for UserReader<'_, '_> {
    fn remaining(&self) -> usize {
        self.cur.remaining()
    }

    fn take(&mut self, buf: &mut [u8]) -> usize {
        let mut got = 0;
        while got < buf.len() && !self.cur.faulted {
            let Some((va, n)) = self.cur.next_piece(buf.len() - got) else {
                break;
            };
            if self.ctx.read_user(va, &mut buf[got..got + n]).is_err() {
                self.cur.faulted = true;
                break;
            }
            self.cur.advance(n);
            got += n;
        }
        got
    }

    fn skip(&mut self, mut n: usize) {
        while n > 0 {
            let Some((_, k)) = self.cur.next_piece(n) else {
                break;
            };
            self.cur.advance(k);
            n -= k;
        }
    }

    fn faulted(&self) -> bool {
        self.cur.faulted
    }
}

/// A descriptor argument declared `unsigned int` (Linux ignores the upper half).
pub fn fd_arg(raw: u64) -> u64 {
    u64::from(raw as u32)
}

fn do_read(
    ctx: &mut Ctx<'_>,
    fd: u64,
    segs: impl FnOnce(&Ctx<'_>) -> Result<Segments, Errno>,
    offset: Option<u64>,
) -> SysResult {
    let file = ctx.task.files.lock().get(fd_arg(fd))?;
    let segs = segs(ctx)?;
    let mut out = UserWriter::new(ctx, segs);
    let n = match offset {
        Some(off) => file.pread(off, &mut out)?,
        None => file.read(&mut out)?,
    };
    Ok(n as u64)
}

fn do_write(
    ctx: &mut Ctx<'_>,
    fd: u64,
    segs: impl FnOnce(&Ctx<'_>) -> Result<Segments, Errno>,
    offset: Option<u64>,
) -> SysResult {
    let file = ctx.task.files.lock().get(fd_arg(fd))?;
    let segs = segs(ctx)?;
    let mut src = UserReader::new(ctx, segs);
    let result = match offset {
        Some(off) => file.pwrite(off, &mut src),
        None => file.write(&mut src),
    };
    if result == Err(Errno::EPIPE) {
        // A write to a pipe or the host's stdout whose reader is gone: SIGPIPE as well,
        // which kills the program unless it ignores or handles it (Linux `pipe_write`).
        send_sigpipe(ctx);
    }
    Ok(result? as u64)
}

/// SIGPIPE to the calling thread for a write whose reader is gone (a standard signal of
/// the kernel's: never refused).
pub(super) fn send_sigpipe(ctx: &mut Ctx<'_>) {
    let pid = ctx.task.pid();
    let info = SigInfo::from_process(sig::SIGPIPE, si_code::SI_USER, pid, 0);
    let _ = ctx.task.signals.send(info, u64::MAX);
}

/// A file offset argument: `EINVAL` if negative.
fn offset_arg(raw: u64) -> Result<u64, Errno> {
    if (raw as i64) < 0 {
        Err(Errno::EINVAL)
    } else {
        Ok(raw)
    }
}

/// read(fd, buf, count)
pub fn read(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    do_read(ctx, a[0], |_| Segments::single(a[1], a[2] as usize), None)
}

/// write(fd, buf, count)
pub fn write(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    do_write(ctx, a[0], |_| Segments::single(a[1], a[2] as usize), None)
}

/// readv(fd, iov, iovcnt)
pub fn readv(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    do_read(ctx, a[0], |c| Segments::iovec(c, a[1], a[2]), None)
}

/// writev(fd, iov, iovcnt)
pub fn writev(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    do_write(ctx, a[0], |c| Segments::iovec(c, a[1], a[2]), None)
}

/// pread64(fd, buf, count, offset)
pub fn pread64(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    let off = offset_arg(a[3])?;
    do_read(
        ctx,
        a[0],
        |_| Segments::single(a[1], a[2] as usize),
        Some(off),
    )
}

/// pwrite64(fd, buf, count, offset)
pub fn pwrite64(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    let off = offset_arg(a[3])?;
    do_write(
        ctx,
        a[0],
        |_| Segments::single(a[1], a[2] as usize),
        Some(off),
    )
}

/// preadv(fd, iov, iovcnt, pos_l, pos_h): on x86-64 the offset is `pos_l` alone.
pub fn preadv(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    let off = offset_arg(a[3])?;
    do_read(ctx, a[0], |c| Segments::iovec(c, a[1], a[2]), Some(off))
}

/// pwritev(fd, iov, iovcnt, pos_l, pos_h)
pub fn pwritev(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    let off = offset_arg(a[3])?;
    do_write(ctx, a[0], |c| Segments::iovec(c, a[1], a[2]), Some(off))
}

/// lseek(fd, offset, whence)
pub fn lseek(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    let file = ctx.task.files.lock().get(fd_arg(a[0]))?;
    file.seek(a[1] as i64, a[2] as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_must_stay_in_user_space() {
        assert!(Segments::single(0x1000, 10).is_ok());
        assert_eq!(Segments::single(USER_END - 4, 8).err(), Some(Errno::EFAULT));
        assert_eq!(Segments::single(u64::MAX, 2).err(), Some(Errno::EFAULT));
        assert_eq!(
            Segments::single(0x1000, 1 << 40).unwrap().total,
            MAX_RW_COUNT
        );
        assert_eq!(Segments::single(0, 0).unwrap().total, 0);
    }

    #[test]
    fn cursor_splits_at_pages_and_segments() {
        let s = Segments {
            segs: alloc::vec![(0x1ffe, 4), (0x5000, 3)],
            total: 7,
        };
        let mut c = Cursor::new(s);
        assert_eq!(c.next_piece(100), Some((0x1ffe, 2)));
        c.advance(2);
        assert_eq!(c.next_piece(100), Some((0x2000, 2)));
        c.advance(2);
        assert_eq!(c.next_piece(1), Some((0x5000, 1)));
        c.advance(1);
        assert_eq!(c.remaining(), 2);
        assert_eq!(c.next_piece(100), Some((0x5001, 2)));
        c.advance(2);
        assert_eq!(c.next_piece(100), None);
        assert_eq!(c.remaining(), 0);
    }
}

//! Open files (Linux's "open file descriptions"): what a descriptor points at, shared by
//! `Arc` between duplicated descriptors, so that they share the offset and status flags.
//!
//! Data moves through [`ReadSink`] and [`WriteSource`] ([`super::transfer`]), which the
//! system-call layer implements over user memory, so that a file copies straight between
//! its bytes and the user buffer in bounded pieces without staging the whole transfer in
//! the kernel heap.

use alloc::string::String;
use alloc::sync::Arc;
use core::sync::atomic::{AtomicU32, Ordering};

use spin::Mutex;

use super::devices::Device;
use super::dirent::DirentWriter;
use super::host_stream::HostStream;
use super::inode::{FileType, InodeRef};
use super::open::{self, flags::*, Opened};
use super::pipe::PipeEnd;
use super::regular;
use super::vfs::{Vnode, Walker};
use crate::errno::Errno;
use crate::mm::source::MapSource;
use hypercall_abi::host_stdio::StreamKind;

pub(super) use super::transfer::transferred;
use super::transfer::{drain, fill, to_console, ZeroSource};
pub use super::transfer::{poll_events, whence, ReadSink, SliceSource, VecSink, WriteSource};
use poll_events::*;

/// The largest offset a file may have (Linux `MAX_LFS_FILESIZE`).
const MAX_OFFSET: u64 = i64::MAX as u64;

/// What kind of object an open file is.
enum Kind {
    /// A regular file.
    Regular(InodeRef),
    /// A directory.
    Directory,
    /// `/dev/null`.
    Null,
    /// `/dev/zero`.
    Zero,
    /// `/dev/full`.
    Full,
    /// `/dev/random`, `/dev/urandom`.
    Random,
    /// The console; output to the program's stderr stream if `stderr`.
    Terminal { stderr: bool },
    /// An `O_PATH` descriptor, or a file that can only be named (a symlink).
    Path,
    /// One end of a pipe.
    Pipe(PipeEnd),
    /// A standard stream of the VMM that is not a terminal.
    HostStream(HostStream),
}

/// An open file.
pub struct OpenFile {
    vnode: Vnode,
    kind: Kind,
    status: AtomicU32,
    pos: Mutex<u64>,
    /// For a directory: the name of the last entry `getdents` returned (and the position
    /// after it), so a listing resumes by name when entries before it are removed.
    cursor: Mutex<Option<(u64, String)>>,
    /// The directory and path `open` was given, for naming the file in
    /// `/proc/[pid]/fd` when its file system cannot tell a node's name (tmpfs files keep
    /// no parent: a file may have several).
    origin: spin::Once<(InodeRef, String)>,
}

impl Drop for OpenFile {
    /// The last descriptor of the open file description is gone: its flock and OFD
    /// locks go with it.
    fn drop(&mut self) {
        super::lock::release_file(self as *const OpenFile as usize);
    }
}

impl core::fmt::Debug for OpenFile {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("OpenFile")
            .field("vnode", &self.vnode)
            .field("status", &self.status())
            .finish()
    }
}

impl OpenFile {
    /// The open file for a successful [`open::open`].
    pub fn new(opened: Opened) -> Arc<OpenFile> {
        let kind = match (&opened.vnode, opened.status & O_PATH != 0) {
            (_, true) => Kind::Path,
            (Vnode::Node(n), false) => match (n.device(), n.file_type()) {
                (Some(Device::Null), _) => Kind::Null,
                (Some(Device::Zero), _) => Kind::Zero,
                (Some(Device::Full), _) => Kind::Full,
                (Some(Device::Random | Device::Urandom), _) => Kind::Random,
                (Some(Device::Tty | Device::Console), _) => Kind::Terminal { stderr: false },
                (None, FileType::Regular) => Kind::Regular(n.clone()),
                (None, FileType::Dir) => Kind::Directory,
                _ => Kind::Path,
            },
            // Pipes are made by `OpenFile::pipe`, never opened by name.
            (Vnode::Pipe(_), false) => Kind::Path,
        };
        Self::make(opened.vnode, kind, opened.status)
    }

    fn make(vnode: Vnode, kind: Kind, status: u32) -> Arc<OpenFile> {
        Arc::new(OpenFile {
            vnode,
            kind,
            status: AtomicU32::new(status),
            pos: Mutex::new(0),
            cursor: Mutex::new(None),
            origin: spin::Once::new(),
        })
    }

    /// The console as `/dev/console` names it.
    fn console_vnode() -> Vnode {
        let dev = super::devices::root();
        Vnode::Node(dev.lookup(Device::Console.name()).unwrap_or(dev))
    }

    /// The console, open for reading and writing, as a process's standard streams are;
    /// `stderr` routes its output to the program's standard-error stream.
    pub fn console(stderr: bool) -> Arc<OpenFile> {
        Self::make(
            Self::console_vnode(),
            Kind::Terminal { stderr },
            O_RDWR | O_LARGEFILE,
        )
    }

    /// A standard stream of the VMM that is not a terminal: a FIFO or a character device as
    /// the VMM's is ([`super::stream_node`]), read only or write only as a shell's
    /// redirection opens it.
    pub fn host_stream(stream: HostStream, kind: StreamKind) -> Arc<OpenFile> {
        Self::make(
            Vnode::Node(super::stream_node::StreamNode::host(stream, kind)),
            Kind::HostStream(stream),
            stream.access_mode(),
        )
    }

    /// The host stream `opened` reached through `/proc/[pid]/fd/N` (`/dev/stdin`), opened
    /// again: `EACCES` for the direction the stream does not go.
    pub fn reopen_host_stream(opened: Opened, stream: HostStream) -> Result<Arc<OpenFile>, Errno> {
        let read_only = stream.access_mode() == O_RDONLY;
        let (read, write) = (open::readable(opened.status), open::writable(opened.status));
        if (read && !read_only) || (write && read_only) {
            return Err(Errno::EACCES);
        }
        Ok(Self::make(
            opened.vnode,
            Kind::HostStream(stream),
            opened.status,
        ))
    }

    /// One end of a pipe, with `O_NONBLOCK` from `flags` (`pipe2`).
    pub fn pipe(end: PipeEnd, flags: u32) -> Arc<OpenFile> {
        let mode = if end.is_write_end() {
            O_WRONLY
        } else {
            O_RDONLY
        };
        let ino = end.ino();
        Self::make(
            Vnode::Pipe(ino),
            Kind::Pipe(end),
            mode | (flags & O_NONBLOCK),
        )
    }

    /// A FIFO `open` named, on its pipe `end` (status flags as the open gave them).
    pub fn fifo(opened: Opened, end: PipeEnd) -> Arc<OpenFile> {
        Self::make(opened.vnode, Kind::Pipe(end), opened.status)
    }

    /// Records that `open` reached this file by `path` from directory `start` (once).
    pub fn set_origin(&self, start: InodeRef, path: String) {
        self.origin.call_once(|| (start, path));
    }

    /// The directory and path `open` reached this file by, if recorded.
    pub fn origin(&self) -> Option<&(InodeRef, String)> {
        self.origin.get()
    }

    /// The file in the namespace.
    pub fn vnode(&self) -> Vnode {
        self.vnode.clone()
    }

    /// The regular file this is open on (for `ftruncate`, `fsync`...).
    pub fn regular(&self) -> Option<&InodeRef> {
        match &self.kind {
            Kind::Regular(n) => Some(n),
            _ => None,
        }
    }

    /// Whether the file was opened for writing.
    pub fn is_writable(&self) -> bool {
        open::writable(self.status())
    }

    /// Access mode and status flags (`F_GETFL`).
    pub fn status(&self) -> u32 {
        self.status.load(Ordering::Relaxed)
    }

    /// `F_SETFL`: changes the flags Linux lets change (`O_APPEND`, `O_NONBLOCK`, ...).
    pub fn set_status_flags(&self, arg: u32) -> Result<(), Errno> {
        if arg & O_DIRECT != 0 {
            // No astra file supports direct I/O.
            return Err(Errno::EINVAL);
        }
        let old = self.status();
        let new = (old & !SETFL_MASK) | (arg & SETFL_MASK);
        self.status.store(new, Ordering::Relaxed);
        Ok(())
    }

    /// Sets or clears `O_NONBLOCK` (`FIONBIO`).
    pub fn set_nonblocking(&self, on: bool) {
        if on {
            self.status.fetch_or(O_NONBLOCK, Ordering::Relaxed);
        } else {
            self.status.fetch_and(!O_NONBLOCK, Ordering::Relaxed);
        }
    }

    /// Whether this is an `O_PATH` descriptor's file (most calls then give `EBADF`).
    pub fn is_path(&self) -> bool {
        matches!(self.kind, Kind::Path)
    }

    /// Whether this is a terminal (the console).
    pub fn is_terminal(&self) -> bool {
        matches!(self.kind, Kind::Terminal { .. })
    }

    /// The current offset.
    pub fn position(&self) -> u64 {
        *self.pos.lock()
    }

    /// The pipe end of a pipe or FIFO; `None` for other files.
    pub fn pipe_end(&self) -> Option<&PipeEnd> {
        match &self.kind {
            Kind::Pipe(end) => Some(end),
            _ => None,
        }
    }

    /// Bytes a read would get now (`FIONREAD`): to the end of a regular file, or queued in
    /// a pipe; `None` for other files.
    pub fn readable_bytes(&self) -> Option<u64> {
        match &self.kind {
            Kind::Regular(n) => Some(n.metadata().size.saturating_sub(self.position())),
            Kind::Pipe(end) => Some(end.available() as u64),
            Kind::HostStream(stream) => Some(stream.readable_bytes()),
            _ => None,
        }
    }

    /// Whether reads and writes may not wait.
    pub fn nonblocking(&self) -> bool {
        self.status() & O_NONBLOCK != 0
    }

    fn check_readable(&self) -> Result<(), Errno> {
        if open::readable(self.status()) {
            Ok(())
        } else {
            Err(Errno::EBADF)
        }
    }

    fn check_writable(&self) -> Result<(), Errno> {
        if open::writable(self.status()) {
            Ok(())
        } else {
            Err(Errno::EBADF)
        }
    }

    /// `read`: from the current offset, advancing it.
    pub fn read(&self, out: &mut dyn ReadSink) -> Result<usize, Errno> {
        self.check_readable()?;
        match &self.kind {
            Kind::Terminal { .. } => super::tty::read(out, self.nonblocking()),
            Kind::HostStream(stream) => stream.read(out, self.nonblocking()),
            Kind::Pipe(end) => end.read(out, self.nonblocking()),
            Kind::Regular(node) => {
                let mut pos = self.pos.lock();
                let n = regular::read(node, *pos, out)?;
                *pos += n as u64;
                Ok(n)
            }
            _ => self.read_at(self.position(), out),
        }
    }

    /// `pread`: at `offset`, leaving the file offset alone.
    pub fn pread(&self, offset: u64, out: &mut dyn ReadSink) -> Result<usize, Errno> {
        if !self.seekable() {
            return Err(Errno::ESPIPE);
        }
        self.check_readable()?;
        self.read_at(offset, out)
    }

    fn read_at(&self, offset: u64, out: &mut dyn ReadSink) -> Result<usize, Errno> {
        match &self.kind {
            Kind::Regular(node) => regular::read(node, offset, out),
            Kind::Directory => Err(Errno::EISDIR),
            Kind::Null => Ok(0),
            Kind::Zero | Kind::Full => fill(out, |chunk| chunk.fill(0)),
            Kind::Random => fill(out, |chunk| {
                for piece in chunk.chunks_mut(8) {
                    let r = crate::random::next_u64().to_le_bytes();
                    piece.copy_from_slice(&r[..piece.len()]);
                }
            }),
            Kind::Terminal { .. } | Kind::Pipe(_) | Kind::HostStream(_) => Err(Errno::ESPIPE),
            Kind::Path => Err(Errno::EBADF),
        }
    }

    /// Whether the file has offsets (`pread`, `lseek`): not terminals and pipes.
    fn seekable(&self) -> bool {
        !matches!(
            self.kind,
            Kind::Terminal { .. } | Kind::Pipe(_) | Kind::HostStream(_)
        )
    }

    /// `write`: at the current offset (at the end with `O_APPEND`), advancing it.
    pub fn write(&self, src: &mut dyn WriteSource) -> Result<usize, Errno> {
        self.check_writable()?;
        match &self.kind {
            Kind::Pipe(end) => end.write(src, self.nonblocking()),
            Kind::Regular(node) => {
                let mut pos = self.pos.lock();
                let at = if self.status() & O_APPEND != 0 {
                    node.metadata().size
                } else {
                    *pos
                };
                let n = regular::write(node, at, src)?;
                *pos = at + n as u64;
                Ok(n)
            }
            _ => self.write_at(src),
        }
    }

    /// `pwrite`: at `offset` (which only matters for seekable files; with `O_APPEND` Linux
    /// appends anyway).
    pub fn pwrite(&self, offset: u64, src: &mut dyn WriteSource) -> Result<usize, Errno> {
        if !self.seekable() {
            return Err(Errno::ESPIPE);
        }
        self.check_writable()?;
        match &self.kind {
            Kind::Regular(node) => {
                let _pos = self.pos.lock();
                let at = if self.status() & O_APPEND != 0 {
                    node.metadata().size
                } else {
                    offset
                };
                regular::write(node, at, src)
            }
            _ => self.write_at(src),
        }
    }

    fn write_at(&self, src: &mut dyn WriteSource) -> Result<usize, Errno> {
        match &self.kind {
            Kind::Null | Kind::Zero => {
                // Linux does not even read the buffer.
                let n = src.remaining();
                src.skip(n);
                Ok(n)
            }
            Kind::Full => Err(Errno::ENOSPC),
            // Linux reads what is written to a random device (to mix it in).
            Kind::Random => drain(src, |_| {}),
            Kind::Terminal { stderr } => to_console(src, *stderr),
            Kind::HostStream(stream) => match stream.output_is_stderr() {
                Some(stderr) => to_console(src, stderr),
                None => drain(src, |_| {}),
            },
            // Regular files are written by `write`/`pwrite`; directories are never open
            // for writing (EISDIR at open).
            Kind::Regular(_) | Kind::Directory | Kind::Path => Err(Errno::EBADF),
            Kind::Pipe(end) => end.write(src, self.nonblocking()),
        }
    }

    /// `lseek`.
    pub fn seek(&self, offset: i64, whence: u32) -> Result<u64, Errno> {
        use whence::*;
        if whence > SEEK_HOLE {
            return Err(Errno::EINVAL);
        }
        let mut pos = self.pos.lock();
        let new = match &self.kind {
            Kind::Path => return Err(Errno::EBADF),
            Kind::Terminal { .. } | Kind::Pipe(_) | Kind::HostStream(_) => {
                return Err(Errno::ESPIPE)
            }
            // Linux's null_lseek: always back to 0.
            Kind::Null | Kind::Zero | Kind::Full => 0,
            // noop_llseek.
            Kind::Random => *pos,
            Kind::Directory => match whence {
                SEEK_SET => offset,
                SEEK_CUR => (*pos as i64).checked_add(offset).ok_or(Errno::EINVAL)?,
                _ => return Err(Errno::EINVAL),
            }
            .try_into()
            .map_err(|_| Errno::EINVAL)?,
            Kind::Regular(node) => seek_regular(*pos, node.metadata().size, offset, whence)?,
        };
        *pos = new;
        Ok(new)
    }

    /// `getdents64`: hands the next directory records that fit in `capacity` bytes to
    /// `emit` (which copies them out) and returns their length, 0 at the end; the position
    /// moves past them only if `emit` succeeds. `EINVAL` if not even one record fits,
    /// `ENOTDIR` if this is not a directory.
    pub fn getdents(
        &self,
        w: &Walker<'_>,
        capacity: usize,
        emit: &mut dyn FnMut(&[u8]) -> Result<(), Errno>,
    ) -> Result<usize, Errno> {
        if self.is_path() {
            return Err(Errno::EBADF);
        }
        if !matches!(self.kind, Kind::Directory) {
            return Err(Errno::ENOTDIR);
        }
        let mut pos = self.pos.lock();
        let mut writer = DirentWriter::new(capacity);
        let mut next = *pos;
        let mut last: Option<String> = None;
        let mut refused = false;
        let cursor = self.cursor.lock().clone();
        let after = match &cursor {
            Some((at, name)) if *at == *pos => Some(name.as_str()),
            _ => None,
        };
        w.read_dir_from(&self.vnode, *pos, after, |e| {
            if writer.push(e.ino, e.index + 1, e.dtype, e.name) {
                next = e.index + 1;
                last = Some(String::from(e.name));
                true
            } else {
                refused = true;
                false
            }
        })?;
        if refused && writer.is_empty() {
            return Err(Errno::EINVAL);
        }
        let bytes = writer.into_bytes();
        if !bytes.is_empty() {
            emit(&bytes)?;
        }
        *pos = next;
        if let Some(name) = last {
            *self.cursor.lock() = Some((next, name));
        }
        Ok(bytes.len())
    }

    /// The `poll` events this file has ready: `POLLIN`, `POLLOUT` and their `RDNORM`/`WRNORM`
    /// forms (`POLLNVAL` for an `O_PATH` file).
    pub fn poll(&self) -> u16 {
        const ALWAYS: u16 = POLLIN | POLLOUT | POLLRDNORM | POLLWRNORM;
        match &self.kind {
            Kind::Path => POLLNVAL,
            Kind::Pipe(end) => end.poll(),
            Kind::HostStream(stream) => stream.poll(),
            Kind::Terminal { .. } => {
                // Ended input is readable (a read returns 0 at once), like `< /dev/null`;
                // not POLLHUP, which would also mark the console's output side.
                let (ready, ended) = super::tty::input_state();
                let mut ev = POLLOUT | POLLWRNORM;
                if ready || ended {
                    ev |= POLLIN | POLLRDNORM;
                }
                ev
            }
            _ => ALWAYS,
        }
    }

    /// What `mmap` maps for this file: its bytes for a rootfs regular file, zeros for
    /// `/dev/zero`; `None` for files that cannot be mapped.
    pub fn map_source(&self) -> Option<Arc<dyn MapSource>> {
        match &self.kind {
            Kind::Regular(node) => Some(regular::map_source(node)),
            Kind::Zero => Some(Arc::new(ZeroSource)),
            _ => None,
        }
    }

    /// What a `MAP_SHARED` mapping of this file maps (see [`regular::map_source_shared`]).
    pub fn map_source_shared(&self) -> Option<Arc<dyn MapSource>> {
        match &self.kind {
            Kind::Regular(node) => Some(regular::map_source_shared(
                node,
                super::open::writable(self.status()),
            )),
            _ => self.map_source(),
        }
    }
}

/// The new offset of an `lseek` on a regular file of `size` bytes.
fn seek_regular(pos: u64, size: u64, offset: i64, whence: u32) -> Result<u64, Errno> {
    use whence::*;
    let base = match whence {
        SEEK_SET => 0,
        SEEK_CUR => pos,
        SEEK_END => size,
        SEEK_DATA | SEEK_HOLE => {
            // A negative offset is a huge unsigned one, past the end, as Linux sees it.
            let off = offset as u64;
            if off >= size {
                return Err(Errno::ENXIO);
            }
            return Ok(if whence == SEEK_DATA { off } else { size });
        }
        _ => return Err(Errno::EINVAL),
    };
    let new = (base as i64).checked_add(offset).ok_or(Errno::EINVAL)?;
    if new < 0 || new as u64 > MAX_OFFSET {
        return Err(Errno::EINVAL);
    }
    Ok(new as u64)
}

#[cfg(test)]
mod tests {
    use super::super::vfs::tests::sample_ns;
    use super::whence::*;
    use super::*;

    fn walker() -> Walker<'static> {
        Walker::new(sample_ns(), "/bin/app")
    }

    fn open_with(w: &Walker<'_>, path: &str, flags: u32) -> Arc<OpenFile> {
        let root = w.root().clone();
        OpenFile::new(open::open(w, &root, path, flags, 0o644).unwrap())
    }

    fn open_file(path: &str, flags: u32) -> Arc<OpenFile> {
        open_with(&walker(), path, flags)
    }

    /// A sink that faults after `ok` bytes.
    struct Faulty {
        got: Vec<u8>,
        ok: usize,
        want: usize,
        faulted: bool,
    }

    impl ReadSink for Faulty {
        fn remaining(&self) -> usize {
            self.want - self.got.len()
        }
        fn put(&mut self, data: &[u8]) -> usize {
            let n = data.len().min(self.ok - self.got.len());
            self.got.extend_from_slice(&data[..n]);
            if n < data.len() {
                self.faulted = true;
            }
            n
        }
        fn faulted(&self) -> bool {
            self.faulted
        }
    }

    #[test]
    fn reads_advance_a_shared_offset() {
        let f = open_file("/data/big", O_RDONLY);
        let dup = Arc::clone(&f);
        let mut a = VecSink::new(100);
        assert_eq!(f.read(&mut a), Ok(100));
        let mut b = VecSink::new(20_000);
        assert_eq!(dup.read(&mut b), Ok(9900));
        assert_eq!(b.data[0], 100);
        assert_eq!(f.read(&mut VecSink::new(10)), Ok(0));
        let mut c = VecSink::new(3);
        assert_eq!(f.pread(251, &mut c), Ok(3));
        assert_eq!(c.data, [0, 1, 2]);
        assert_eq!(f.position(), 10_000);
        assert_eq!(f.pread(u64::MAX, &mut VecSink::new(3)), Ok(0));
    }

    #[test]
    fn partial_faults_return_the_count_then_efault() {
        let f = open_file("/data/big", O_RDONLY);
        let mut s = Faulty {
            got: Vec::new(),
            ok: 10,
            want: 50,
            faulted: false,
        };
        assert_eq!(f.read(&mut s), Ok(10));
        assert_eq!(f.position(), 10);
        let mut s = Faulty {
            got: Vec::new(),
            ok: 0,
            want: 50,
            faulted: false,
        };
        assert_eq!(f.read(&mut s), Err(Errno::EFAULT));
        assert_eq!(f.position(), 10);
    }

    #[test]
    fn seeking() {
        let f = open_file("/data/big", O_RDONLY);
        assert_eq!(f.seek(10, SEEK_SET), Ok(10));
        assert_eq!(f.seek(-5, SEEK_CUR), Ok(5));
        assert_eq!(f.seek(-6, SEEK_CUR), Err(Errno::EINVAL));
        assert_eq!(f.seek(0, SEEK_END), Ok(10_000));
        assert_eq!(f.seek(100, SEEK_END), Ok(10_100));
        assert_eq!(f.seek(7, SEEK_DATA), Ok(7));
        assert_eq!(f.seek(7, SEEK_HOLE), Ok(10_000));
        assert_eq!(f.seek(10_000, SEEK_DATA), Err(Errno::ENXIO));
        assert_eq!(f.seek(-1, SEEK_HOLE), Err(Errno::ENXIO));
        assert_eq!(f.seek(0, 5), Err(Errno::EINVAL));
        assert_eq!(f.seek(i64::MAX, SEEK_END), Err(Errno::EINVAL));
        assert_eq!(f.position(), 10_000);
        let null = open_file("/dev/null", O_RDWR);
        assert_eq!(null.seek(100, SEEK_SET), Ok(0));
        let dir = open_file("/etc", O_RDONLY);
        assert_eq!(dir.seek(3, SEEK_SET), Ok(3));
        assert_eq!(dir.seek(0, SEEK_END), Err(Errno::EINVAL));
        assert_eq!(dir.seek(-4, SEEK_CUR), Err(Errno::EINVAL));
    }

    #[test]
    fn access_modes_are_enforced() {
        let f = open_file("/etc/motd", O_RDONLY);
        assert_eq!(f.read(&mut VecSink::new(4)), Ok(4));
        let null = open_file("/dev/null", O_WRONLY);
        assert_eq!(null.read(&mut VecSink::new(4)), Err(Errno::EBADF));
        let path = open_file("/etc/motd", O_PATH);
        assert!(path.is_path());
        assert_eq!(path.read(&mut VecSink::new(4)), Err(Errno::EBADF));
        assert_eq!(path.seek(0, SEEK_SET), Err(Errno::EBADF));
        let dir = open_file("/etc", O_RDONLY);
        assert_eq!(dir.read(&mut VecSink::new(4)), Err(Errno::EISDIR));
    }

    #[test]
    fn devices() {
        let zero = open_file("/dev/zero", O_RDONLY);
        let mut s = VecSink::new(1000);
        assert_eq!(zero.read(&mut s), Ok(1000));
        assert!(s.data.iter().all(|&b| b == 0));
        let null = open_file("/dev/null", O_RDONLY);
        assert_eq!(null.read(&mut VecSink::new(10)), Ok(0));
        assert!(zero.map_source().is_some() && null.map_source().is_none());
        let f = open_file("/bin/sh", O_RDONLY);
        let src = f.map_source().unwrap();
        assert_eq!(src.size(), 8);
        let mut buf = [0u8; 16];
        assert_eq!(src.read_at(4, &mut buf), Ok(4));
        assert_eq!(&buf[..4], b" app");
        assert_eq!(src.read_at(8, &mut buf), Ok(0));
    }

    #[test]
    fn status_flags() {
        let f = open_file("/etc/motd", O_RDONLY | O_NOATIME);
        assert_eq!(f.status(), O_NOATIME | O_LARGEFILE);
        f.set_status_flags(O_NONBLOCK | O_APPEND | O_RDWR | O_TRUNC)
            .unwrap();
        assert_eq!(f.status(), O_NONBLOCK | O_APPEND | O_LARGEFILE);
        assert_eq!(f.set_status_flags(O_DIRECT), Err(Errno::EINVAL));
        f.set_nonblocking(false);
        assert_eq!(f.status(), O_APPEND | O_LARGEFILE);
        assert_eq!(f.poll(), POLLIN | POLLOUT | POLLRDNORM | POLLWRNORM);
    }

    #[test]
    fn random_devices_take_every_written_byte() {
        let f = open_file("/dev/urandom", O_WRONLY);
        let mut src = SliceSource(&[7; 10_000]);
        assert_eq!(f.write(&mut src), Ok(10_000));
        assert_eq!(src.remaining(), 0);
    }

    fn dents(dir: &OpenFile, w: &Walker<'_>, capacity: usize) -> Result<Vec<u8>, Errno> {
        let mut out = Vec::new();
        dir.getdents(w, capacity, &mut |b| {
            out.extend_from_slice(b);
            Ok(())
        })?;
        Ok(out)
    }

    #[test]
    fn getdents_resumes_across_calls() {
        let w = walker();
        let dir = open_with(&w, "/etc", O_RDONLY);
        // ".", "..", "link", "loop", "motd", "sub": 24 bytes each.
        let first = dents(&dir, &w, 60).unwrap();
        assert_eq!(first.len(), 48);
        assert_eq!(dents(&dir, &w, 10), Err(Errno::EINVAL));
        let mut names = Vec::new();
        let mut all = first;
        loop {
            let more = dents(&dir, &w, 4096).unwrap();
            if more.is_empty() {
                break;
            }
            all.extend_from_slice(&more);
        }
        let mut at = 0;
        let mut offs = Vec::new();
        while at < all.len() {
            let reclen = u16::from_le_bytes([all[at + 16], all[at + 17]]) as usize;
            let name = &all[at + 19..at + reclen];
            let end = name.iter().position(|&b| b == 0).unwrap();
            names.push(alloc::string::String::from_utf8(name[..end].to_vec()).unwrap());
            offs.push(u64::from_le_bytes(all[at + 8..at + 16].try_into().unwrap()));
            at += reclen;
        }
        assert_eq!(names, [".", "..", "link", "loop", "motd", "sub"]);
        assert_eq!(offs, [1, 2, 3, 4, 5, 6]);
        // Seeking back to a d_off resumes there.
        dir.seek(4, SEEK_SET).unwrap();
        let rest = dents(&dir, &w, 4096).unwrap();
        assert_eq!(&rest[19..23], b"motd");
        // A failed copy-out leaves the position alone.
        dir.seek(0, SEEK_SET).unwrap();
        assert_eq!(
            dir.getdents(&w, 4096, &mut |_| Err(Errno::EFAULT)),
            Err(Errno::EFAULT)
        );
        assert_eq!(dir.position(), 0);
        let file = open_with(&w, "/etc/motd", O_RDONLY);
        assert_eq!(dents(&file, &w, 4096), Err(Errno::ENOTDIR));
    }
}

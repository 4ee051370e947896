//! I/O on regular files of any file system: reads straight from the bytes of a TAR file
//! (zero-copy: never through the tmpfs), otherwise through a page-sized kernel buffer so
//! no file-system lock is held while user memory is touched; writes likewise; and what
//! `mmap` maps for them.

use alloc::sync::Arc;
use alloc::vec::Vec;

use super::file::{transferred, ReadSink, WriteSource};
use super::inode::InodeRef;
use crate::errno::Errno;
use crate::mm::source::{MapSource, StaticSource};

/// Bytes moved per step of a staged transfer.
const CHUNK: usize = 4096;
/// Largest step a file system may ask for ([`crate::fs::inode::Inode::io_chunk`]).
const MAX_CHUNK: usize = 64 << 10;

/// The staging buffer for `node`: `stack` (a page), or a larger heap buffer when the file
/// system asks for one and the heap has it (else the page).
fn staging<'a>(
    node: &InodeRef,
    stack: &'a mut [u8; CHUNK],
    heap: &'a mut Vec<u8>,
    want: usize,
) -> &'a mut [u8] {
    let size = node.io_chunk().clamp(CHUNK, MAX_CHUNK).min(want.max(CHUNK));
    if size > CHUNK
        && crate::mm::kalloc::charge(size).is_ok()
        && heap.try_reserve_exact(size).is_ok()
    {
        heap.resize(size, 0);
        return heap;
    }
    stack
}

/// Reads from `node` at `offset` into `out`; returns the count.
pub fn read(node: &InodeRef, offset: u64, out: &mut dyn ReadSink) -> Result<usize, Errno> {
    if let Some(bytes) = node.static_bytes() {
        let start = match usize::try_from(offset) {
            Ok(s) if s < bytes.len() => s,
            _ => return Ok(0),
        };
        let n = (bytes.len() - start).min(out.remaining());
        let done = out.put(&bytes[start..start + n]);
        return transferred(done, out.faulted());
    }
    let (mut stack, mut heap) = ([0u8; CHUNK], Vec::new());
    let buf = staging(node, &mut stack, &mut heap, out.remaining());
    let chunk = buf.len();
    let mut done = 0usize;
    while out.remaining() > 0 {
        let want = out.remaining().min(chunk);
        let n = match node.read_at(offset + done as u64, &mut buf[..want]) {
            Ok(n) => n,
            Err(e) if done == 0 => return Err(e),
            Err(_) => break,
        };
        if n == 0 {
            break;
        }
        let put = out.put(&buf[..n]);
        done += put;
        if put < n || n < want {
            break;
        }
    }
    transferred(done, out.faulted())
}

/// Writes `src` to `node` at `offset`; returns the count. An error after some bytes were
/// written ends the write short, as Linux does (the error comes with the next write).
pub fn write(node: &InodeRef, offset: u64, src: &mut dyn WriteSource) -> Result<usize, Errno> {
    if src.remaining() > 0 && offset >= i64::MAX as u64 {
        return Err(Errno::EFBIG);
    }
    let (mut stack, mut heap) = ([0u8; CHUNK], Vec::new());
    let buf = staging(node, &mut stack, &mut heap, src.remaining());
    let chunk = buf.len();
    let mut done = 0usize;
    while src.remaining() > 0 {
        let want = src.remaining().min(chunk);
        let n = src.take(&mut buf[..want]);
        if n == 0 {
            break;
        }
        match node.write_at(offset + done as u64, &buf[..n]) {
            Ok(k) => done += k,
            Err(e) if done == 0 => return Err(e),
            Err(_) => break,
        }
        if n < want {
            break;
        }
    }
    transferred(done, src.faulted())
}

/// What a private `mmap` maps for `node`: the TAR bytes themselves, or the file read at
/// fault time.
pub fn map_source(node: &InodeRef) -> Arc<dyn MapSource> {
    match node.static_bytes() {
        Some(bytes) => Arc::new(StaticSource::new(bytes)),
        None => Arc::new(NodeSource {
            node: node.clone(),
            shares_pages: false,
            writable: false,
        }),
    }
}

/// What a `MAP_SHARED` mapping maps for `node`, opened for writing or not: the file's own
/// pages where its file system keeps them in frames (tmpfs, the overlay: an image file is
/// copied up when a writable mapping first touches it; one opened read-only and not
/// copied up maps the TAR bytes, as overlayfs maps the lower file). Otherwise (hostfs)
/// the file read at fault time, which `mmap` only allows read-only.
pub fn map_source_shared(node: &InodeRef, writable: bool) -> Arc<dyn MapSource> {
    if !writable {
        if let Some(bytes) = node.static_bytes() {
            return Arc::new(StaticSource::new(bytes));
        }
    }
    Arc::new(NodeSource {
        node: node.clone(),
        shares_pages: node.has_shared_pages(),
        writable,
    })
}

/// A file mapped through its inode.
struct NodeSource {
    node: InodeRef,
    /// Mapped shared, through the file's own pages.
    shares_pages: bool,
    /// Opened for writing.
    writable: bool,
}

/// The mapping (each area of one `mmap`, in every address space) is gone: a host file
/// writes its cache back.
impl Drop for NodeSource {
    fn drop(&mut self) {
        if self.shares_pages {
            self.node.unmapped();
        }
    }
}

impl MapSource for NodeSource {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        self.node.read_at(offset, buf)
    }

    fn size(&self) -> u64 {
        self.node.metadata().size
    }

    fn shares_pages(&self) -> bool {
        self.shares_pages
    }

    fn writable(&self) -> bool {
        self.writable
    }

    fn punch_hole(&self, offset: u64, len: u64) -> Result<(), Errno> {
        self.node.punch_hole(offset, len)
    }

    fn sync(&self) -> Result<(), Errno> {
        if self.shares_pages {
            self.node.sync()?;
        }
        Ok(())
    }

    fn shared_frame(&self, index: u64) -> Result<u64, Errno> {
        if !self.shares_pages {
            return Err(Errno::ENODEV);
        }
        if self.writable {
            self.node.mapped_writable();
        }
        self.node.shared_frame(index)
    }

    fn existing_frame(&self, index: u64) -> Option<u64> {
        if !self.shares_pages {
            return None;
        }
        self.node.existing_frame(index)
    }
}

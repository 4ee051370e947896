//! What backs a file mapping: anything that can read its bytes at an offset.
//!
//! The VFS hands one of these to `mmap` for a file descriptor; the page-fault handler
//! fills a private page of a file mapping from it.

use crate::errno::Errno;

/// The bytes of a mappable file.
pub trait MapSource: Send + Sync {
    /// Reads up to `buf.len()` bytes at `offset`; fewer (down to 0) at end of file.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize, Errno>;
    /// The file's size in bytes.
    fn size(&self) -> u64;
    /// True if the file keeps its bytes in frames a `MAP_SHARED` mapping maps itself
    /// ([`Self::shared_frame`]): stores through it are the file's, and the file's writes
    /// show through it. False: a shared mapping is filled like a private one and may not
    /// be written.
    fn shares_pages(&self) -> bool {
        false
    }
    /// True if the file was opened for writing, so a shared mapping may be writable.
    fn writable(&self) -> bool {
        false
    }
    /// Makes `[offset, offset + len)` of the file a hole (`MADV_REMOVE` through a shared
    /// mapping): `EOPNOTSUPP` where the file system cannot punch holes, as on Linux.
    fn punch_hole(&self, _offset: u64, _len: u64) -> Result<(), Errno> {
        Err(Errno::EOPNOTSUPP)
    }
    /// Writes what a shared mapping stored back to where the file lives (`msync`): only
    /// host-volume files cache anything.
    fn sync(&self) -> Result<(), Errno> {
        Ok(())
    }
    /// True for `/dev/zero`: a `MAP_SHARED` mapping of it is new shared anonymous memory,
    /// as on Linux.
    fn anonymous_shared(&self) -> bool {
        false
    }
    /// The frame holding page `index` of the file (a hole below the size gets a zeroed
    /// one), with one more owner for the caller's page-table entry. `ENODEV` unless
    /// [`Self::shares_pages`]; `ENXIO` past the end; `ENOSPC`/`ENOMEM` when no page can be
    /// had.
    fn shared_frame(&self, _index: u64) -> Result<u64, Errno> {
        Err(Errno::ENODEV)
    }
    /// Like [`Self::shared_frame`] for a page the file has already, `None` otherwise (a
    /// hole): the pages a fault maps around the faulting one.
    fn existing_frame(&self, _index: u64) -> Option<u64> {
        None
    }
}

/// A file whose bytes live in memory for as long as the kernel runs: a tarfs file's data,
/// a slice of the rootfs TAR the VMM mapped read-only.
pub struct StaticSource {
    data: &'static [u8],
}

impl StaticSource {
    /// The file holding `data`.
    pub fn new(data: &'static [u8]) -> StaticSource {
        StaticSource { data }
    }
}

impl MapSource for StaticSource {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        let rest = usize::try_from(offset)
            .ok()
            .and_then(|start| self.data.get(start..))
            .unwrap_or(&[]);
        let n = rest.len().min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        Ok(n)
    }

    fn size(&self) -> u64 {
        self.data.len() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_source_reads_and_stops_at_the_end() {
        static DATA: [u8; 5] = *b"astra";
        let s = StaticSource::new(&DATA);
        assert_eq!(s.size(), 5);
        let mut buf = [0u8; 4];
        assert_eq!(s.read_at(3, &mut buf), Ok(2));
        assert_eq!(&buf[..2], b"ra");
        assert_eq!(s.read_at(5, &mut buf), Ok(0));
        assert_eq!(s.read_at(u64::MAX, &mut buf), Ok(0));
        assert_eq!(s.read_at(0, &mut buf), Ok(4));
        assert_eq!(&buf, b"astr");
    }
}

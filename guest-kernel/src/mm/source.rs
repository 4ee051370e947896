//! What backs a file mapping: anything that can read its bytes at an offset.
//!
//! The VFS hands one of these to `mmap` for a file descriptor; the page-fault handler
//! fills a private page of a file mapping from it.

use crate::syscall::Errno;

/// The bytes of a mappable file.
pub trait MapSource: Send + Sync {
    /// Reads up to `buf.len()` bytes at `offset`; fewer (down to 0) at end of file.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize, Errno>;
    /// The file's size in bytes.
    fn size(&self) -> u64;
}

//! A host-volume file's data path: reads and writes that are requests to the VMM, under
//! the file's page cache ([`super::super::hostcache`]), and that cache's lookup and
//! write-back.

use alloc::sync::Arc;

use hypercall_abi::hostfs::op;

use super::super::hostcache::{HostIo, PageCache};
use super::super::inode::Inode;
use super::{dev, Call, HostNode, IO_CHUNK};
use crate::errno::Errno;

impl HostNode {
    /// The file's page cache if it has one.
    pub(super) fn cache(&self) -> Option<Arc<PageCache>> {
        let caches = self.vol.caches.lock();
        caches
            .iter()
            .find(|(ino, _)| *ino == self.ino)
            .map(|(_, c)| c.clone())
    }

    /// The file's page cache, made if it has none (`ENOMEM` without room).
    pub(super) fn cache_or_new(&self) -> Result<Arc<PageCache>, Errno> {
        let mut caches = self.vol.caches.lock();
        if let Some((_, c)) = caches.iter().find(|(ino, _)| *ino == self.ino) {
            return Ok(c.clone());
        }
        caches.try_reserve(1).map_err(|_| Errno::ENOMEM)?;
        let c = Arc::new(PageCache::default());
        caches.push((self.ino, c.clone()));
        Ok(c)
    }

    /// Writes the cache back; with `release`, drops its unmapped pages and forgets an
    /// emptied cache.
    pub(super) fn write_back(&self, release: bool) -> Result<(), Errno> {
        let Some(cache) = self.cache() else {
            return Ok(());
        };
        let r = cache.write_back(self, release);
        if release && cache.is_empty() {
            self.vol.caches.lock().retain(|(ino, _)| *ino != self.ino);
        }
        r
    }
}

/// Moves `len` bytes in requests of at most [`IO_CHUNK`]: `step(done, want)` moves the
/// `want` bytes after the first `done` and returns how many it moved. Stops at a short
/// step (the end of the file); an error counts only if nothing moved yet.
fn in_chunks(
    len: usize,
    mut step: impl FnMut(usize, usize) -> Result<usize, Errno>,
) -> Result<usize, Errno> {
    let mut done = 0;
    while done < len {
        let want = (len - done).min(IO_CHUNK);
        match step(done, want) {
            Ok(n) => {
                done += n;
                if n < want {
                    break;
                }
            }
            Err(e) if done == 0 => return Err(e),
            Err(_) => break,
        }
    }
    Ok(done)
}

/// The host file itself, under the cache.
impl HostIo for HostNode {
    fn read_host(&self, offset: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        in_chunks(buf.len(), |done, want| {
            dev::call(
                &Call {
                    op: op::READ,
                    handle: self.handle,
                    offset: offset + done as u64,
                    ..Call::default()
                },
                &mut buf[done..done + want],
            )
            .map(|r| r.count)
        })
    }

    fn write_host(&self, offset: u64, buf: &[u8]) -> Result<usize, Errno> {
        self.writable()?;
        in_chunks(buf.len(), |done, want| {
            self.call(Call {
                op: op::WRITE,
                offset: offset + done as u64,
                data: &buf[done..done + want],
                ..Call::default()
            })
            .map(|r| r.count)
        })
    }

    fn host_size(&self) -> u64 {
        self.metadata().size
    }
}

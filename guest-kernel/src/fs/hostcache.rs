//! The page cache of host-volume files (as Linux's for a network file system): the pages
//! of a `MAP_SHARED` mapping of a hostfs file are read from the host on fault into one
//! cache per host file (per volume and inode number, whichever node opened it), which
//! `read` and `write` through the kernel go through too, so stores through a mapping and
//! `write`s see each other. Every cached page is written back to the host file (clipped
//! to the size) on `msync`, `fsync`/`fdatasync`, when a mapping goes (`munmap`, exit) and
//! when the last node of the file goes (`close`); then the pages no mapping holds are
//! dropped. The cache counts against a quarter of guest memory: past that a fault gets no
//! page (`SIGBUS`), never a kernel out-of-memory.

use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use spin::Mutex;

use super::pages::{Budget, FileData, PAGE};
use crate::errno::Errno;

/// Pages all host-file caches hold.
static CACHED_PAGES: AtomicU64 = AtomicU64::new(0);

/// The share of guest memory the caches may hold: a quarter of the frames.
fn limit_pages() -> u64 {
    #[cfg(not(test))]
    {
        crate::mm::frame::FRAMES.lock().total_frames() / 4
    }
    #[cfg(test)]
    {
        u64::MAX
    }
}

/// Charges cache pages to [`CACHED_PAGES`].
struct CacheBudget;

impl Budget for CacheBudget {
    fn charge_page(&self) -> Result<(), Errno> {
        let limit = limit_pages();
        CACHED_PAGES
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < limit).then_some(n + 1)
            })
            .map(drop)
            // As a full tmpfs: the fault gets no page (SIGBUS), not an out-of-memory
            // kill while memory is free.
            .map_err(|_| Errno::ENOSPC)
    }

    fn release_page(&self) {
        CACHED_PAGES.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The host file behind a cache.
pub trait HostIo {
    /// Reads from the host file at `offset`; fewer bytes at its end.
    fn read_host(&self, offset: u64, buf: &mut [u8]) -> Result<usize, Errno>;
    /// Writes to the host file at `offset`.
    fn write_host(&self, offset: u64, buf: &[u8]) -> Result<usize, Errno>;
    /// The host file's size.
    fn host_size(&self) -> u64;
}

/// Bytes of page `index` that belong to a file of `size` bytes (what a write-back
/// writes: never past the end, so it does not grow the host file).
pub fn page_write_len(index: usize, size: u64) -> usize {
    let start = index as u64 * PAGE as u64;
    size.saturating_sub(start).min(PAGE as u64) as usize
}

/// The cached pages of one host file.
#[derive(Default)]
pub struct PageCache {
    data: Mutex<FileData>,
    /// A mapping of the file opened for writing mapped its pages: they may hold stores.
    /// Until then a write-back writes nothing (pages only read stay as the host has them).
    dirty: AtomicBool,
}

impl PageCache {
    /// Notes that a writable mapping maps the pages (see [`Self::write_back`]).
    pub fn mark_dirty(&self) {
        self.dirty.store(true, Ordering::Release);
    }

    /// Whether the cache holds no page.
    pub fn is_empty(&self) -> bool {
        self.data.lock().pages_used() == 0
    }

    /// The frame of page `index` for a shared mapping, read from the host first if the
    /// cache does not have it. `ENXIO` past the end, `ENOSPC` when the caches are full
    /// (both SIGBUS), `ENOMEM` when memory is spent.
    #[cfg(not(test))]
    pub fn shared_frame(&self, index: u64, host: &dyn HostIo) -> Result<u64, Errno> {
        let index = usize::try_from(index).map_err(|_| Errno::ENXIO)?;
        let mut d = self.data.lock();
        if d.page(index).is_none() {
            if d.pages_used() == 0 {
                // Nothing cached: the host's size is the truth (it may have changed).
                d.truncate(host.host_size(), &CacheBudget)?;
            }
            if index as u64 >= d.len().div_ceil(PAGE as u64) {
                return Err(Errno::ENXIO);
            }
            let mut buf = Vec::new();
            buf.try_reserve_exact(PAGE).map_err(|_| Errno::ENOMEM)?;
            buf.resize(PAGE, 0);
            let n = host.read_host(index as u64 * PAGE as u64, &mut buf)?;
            d.fill_page(index, &buf[..n], &CacheBudget)?;
        }
        d.share_frame(index, &CacheBudget)
    }

    /// The frame of a page the cache has already (fault-around), one more owner.
    #[cfg(not(test))]
    pub fn existing_frame(&self, index: u64) -> Option<u64> {
        self.data
            .lock()
            .existing_frame(usize::try_from(index).ok()?)
    }

    /// After `n` bytes at `offset` were read from the host into `buf`: the cached pages'
    /// bytes replace them (they may hold stores not written back yet).
    pub fn overlay_read(&self, offset: u64, buf: &mut [u8]) {
        let d = self.data.lock();
        let mut done = 0;
        while done < buf.len() {
            let off = offset + done as u64;
            let in_page = (off % PAGE as u64) as usize;
            let k = (PAGE - in_page).min(buf.len() - done);
            if let Some(p) = d.page((off / PAGE as u64) as usize) {
                buf[done..done + k].copy_from_slice(&p[in_page..in_page + k]);
            }
            done += k;
        }
    }

    /// After `buf` was written to the host at `offset`: cached pages take the bytes, and
    /// the size grows with the host file's.
    pub fn wrote(&self, offset: u64, buf: &[u8]) {
        let mut d = self.data.lock();
        let end = offset.saturating_add(buf.len() as u64);
        if end > d.len() && d.pages_used() != 0 {
            let _ = d.truncate(end, &CacheBudget);
        }
        d.update_cached(offset, buf);
    }

    /// The host file was truncated to `size`: pages past it go. Returns the frames
    /// mappings still hold (the caller unmaps them: SIGBUS there).
    pub fn truncated(&self, size: u64) -> Vec<u64> {
        let mut d = self.data.lock();
        if d.pages_used() == 0 {
            return Vec::new();
        }
        d.truncate(size, &CacheBudget).unwrap_or_default()
    }

    /// Writes every cached page back to the host (up to the size) if a writable mapping
    /// mapped any (every page counts as dirty then: no dirty bits are read); with `drop_clean`,
    /// then drops the pages no mapping holds. The first host error is returned (`EIO`
    /// for a short write), after trying every page.
    pub fn write_back(&self, host: &dyn HostIo, drop_clean: bool) -> Result<(), Errno> {
        let mut d = self.data.lock();
        let mut result = Ok(());
        let dirty = self.dirty.load(Ordering::Acquire);
        for index in d.page_indexes().into_iter().filter(|_| dirty) {
            let len = page_write_len(index, d.len());
            let Some(page) = d.page(index) else { continue };
            if len == 0 {
                continue;
            }
            let r = match host.write_host(index as u64 * PAGE as u64, &page[..len]) {
                Ok(n) if n == len => Ok(()),
                Ok(_) => Err(Errno::EIO),
                Err(e) => Err(e),
            };
            if result.is_ok() {
                result = r;
            }
        }
        if drop_clean {
            d.drop_unmapped(&CacheBudget);
        }
        result
    }
}

impl Drop for PageCache {
    fn drop(&mut self) {
        self.data.get_mut().clear(&CacheBudget);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::cell::RefCell;

    struct Host(RefCell<Vec<u8>>);

    impl HostIo for Host {
        fn read_host(&self, offset: u64, buf: &mut [u8]) -> Result<usize, Errno> {
            let d = self.0.borrow();
            let rest = d.get(offset as usize..).unwrap_or(&[]);
            let n = rest.len().min(buf.len());
            buf[..n].copy_from_slice(&rest[..n]);
            Ok(n)
        }
        fn write_host(&self, offset: u64, buf: &[u8]) -> Result<usize, Errno> {
            let mut d = self.0.borrow_mut();
            let end = offset as usize + buf.len();
            if d.len() < end {
                d.resize(end, 0);
            }
            d[offset as usize..end].copy_from_slice(buf);
            Ok(buf.len())
        }
        fn host_size(&self) -> u64 {
            self.0.borrow().len() as u64
        }
    }

    #[test]
    fn write_back_stops_at_the_size() {
        assert_eq!(page_write_len(0, 10), 10);
        assert_eq!(page_write_len(0, 5000), PAGE);
        assert_eq!(page_write_len(1, 5000), 5000 - PAGE);
        assert_eq!(page_write_len(2, 5000), 0);
        assert_eq!(page_write_len(usize::MAX / PAGE, u64::MAX), PAGE - 1);
    }

    #[test]
    fn cached_pages_overlay_reads_take_writes_and_go_back() {
        let host = Host(RefCell::new(b"0123456789".to_vec()));
        let c = PageCache::default();
        // Fill page 0 as a fault would (shared_frame is kernel-only).
        {
            let mut d = c.data.lock();
            d.truncate(host.host_size(), &CacheBudget).unwrap();
            let mut buf = [0u8; PAGE];
            let n = host.read_host(0, &mut buf).unwrap();
            d.fill_page(0, &buf[..n], &CacheBudget).unwrap();
            // A store through a mapping.
            d.update_cached(2, b"ab");
        }
        c.write_back(&host, false).unwrap();
        assert_eq!(
            &*host.0.borrow(),
            b"0123456789",
            "no writable mapping: not written"
        );
        c.mark_dirty();
        let mut buf = *b"0123456789";
        c.overlay_read(0, &mut buf);
        assert_eq!(&buf, b"01ab456789", "read sees the store");
        host.write_host(8, b"XYZ").unwrap();
        c.wrote(8, b"XYZ");
        c.write_back(&host, true).unwrap();
        assert_eq!(
            &*host.0.borrow(),
            b"01ab4567XYZ",
            "written back, grown by write"
        );
        assert!(c.is_empty(), "clean pages dropped");
        assert!(c.truncated(3).is_empty());
    }
}

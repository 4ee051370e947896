//! Shared anonymous memory (`MAP_SHARED | MAP_ANONYMOUS`): an object that owns the frames
//! of its pages, so that every mapping of it, in this address space or in a forked one,
//! maps the same frames, including pages first touched after the fork.
//!
//! The object is one owner of each of its frames (see [`super::refcount`]); each page
//! table entry that maps one is another. A page gets its frame, zeroed, on first touch
//! through any mapping; the frames go when the object and every mapping are gone.

use alloc::vec::Vec;

use spin::Mutex;

use super::{frame, phys_to_virt, refcount, PAGE_SIZE};

/// Why a page of shared memory could not be had.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SharedError {
    /// No frame, no room in the page list, or no reference counter left.
    NoMemory,
}

/// The pages of one shared anonymous object.
#[derive(Default)]
pub struct SharedMemory {
    /// (page index, frame) pairs, sorted by index: only touched pages have one.
    pages: Mutex<Vec<(u64, u64)>>,
}

impl SharedMemory {
    /// An object with no page touched yet.
    pub fn new() -> SharedMemory {
        SharedMemory::default()
    }

    /// The frame of page `index` (created zeroed if it has none yet), with one more
    /// owner for the caller's page table entry.
    pub fn map_page(&self, index: u64) -> Result<u64, SharedError> {
        let mut pages = self.pages.lock();
        let pa = match pages.binary_search_by_key(&index, |&(i, _)| i) {
            Ok(at) => pages[at].1,
            Err(at) => {
                pages.try_reserve(1).map_err(|_| SharedError::NoMemory)?;
                let pa = frame::alloc_zeroed().ok_or(SharedError::NoMemory)?;
                pages.insert(at, (index, pa));
                pa
            }
        };
        refcount::share(pa).map_err(|_| SharedError::NoMemory)?;
        Ok(pa)
    }

    /// Copies bytes of the object at byte `offset` into `buf` without creating pages:
    /// an untouched page reads as zeros. `buf` must not cross a page boundary.
    pub fn read(&self, offset: u64, buf: &mut [u8]) {
        let pages = self.pages.lock();
        let index = offset / PAGE_SIZE;
        match pages.binary_search_by_key(&index, |&(i, _)| i) {
            Ok(at) => {
                let src = phys_to_virt(pages[at].1) + offset % PAGE_SIZE;
                // SAFETY: the frame belongs to the object, which the lock keeps from
                // dropping it; the caller keeps `buf` inside the page.
                let src = unsafe { core::slice::from_raw_parts(src as *const u8, buf.len()) };
                buf.copy_from_slice(src);
            }
            Err(_) => buf.fill(0),
        }
    }

    /// Makes the object's pages `[first, end)` (by index) read as zeros through every
    /// mapping (MADV_REMOVE): a page no mapping holds goes back to the allocator; one
    /// that another address space still maps is zeroed in place, since the object cannot
    /// reach that mapping to drop it (as Linux's hole punch does).
    pub fn remove(&self, first: u64, end: u64) {
        let mut pages = self.pages.lock();
        let mut i = pages.partition_point(|&(i, _)| i < first);
        while let Some(&(index, pa)) = pages.get(i).filter(|&&(index, _)| index < end) {
            if refcount::is_shared(pa) {
                // SAFETY: the frame belongs to the object (kept by the lock) and is
                // direct-mapped; its mappings see the zeros, as after a hole punch.
                unsafe {
                    core::ptr::write_bytes(phys_to_virt(pa) as *mut u8, 0, PAGE_SIZE as usize)
                };
                i += 1;
            } else {
                let _ = index;
                pages.remove(i);
                refcount::release(pa);
            }
        }
    }

    /// Pages that have a frame (for tests).
    pub fn resident_pages(&self) -> usize {
        self.pages.lock().len()
    }
}

impl Drop for SharedMemory {
    fn drop(&mut self) {
        for &(_, pa) in self.pages.get_mut().iter() {
            refcount::release(pa);
        }
    }
}

//! The bytes of a tmpfs file: a sparse vector of whole pages. In the kernel each page is a
//! frame of the page allocator (like Linux's shmem pages, not the small kernel heap); host
//! unit tests use boxed arrays. Pages are only allocated where data was written, so a hole
//! costs nothing, and every page is charged to a [`Budget`] before it is allocated.

use alloc::vec::Vec;

use crate::errno::Errno;

/// Bytes per page.
pub const PAGE: usize = 4096;

/// What a file system allows its files to allocate: one page at a time.
pub trait Budget {
    /// Takes one page from the budget (ENOSPC when it is spent).
    fn charge_page(&self) -> Result<(), Errno>;
    /// Gives one page back.
    fn release_page(&self);
}

/// Takes the pages a truncation dropped out of every `MAP_SHARED` mapping that still
/// maps them, so an access there faults (SIGBUS past the end) instead of reaching a page
/// the file no longer has. The caller holds no file-system or address-space lock.
pub fn unmap_dropped(frames: &[u64]) {
    #[cfg(not(test))]
    if !frames.is_empty() {
        crate::mm::filemap::unmap_frames(frames);
    }
    #[cfg(test)]
    let _ = frames;
}

/// One page of file data.
struct Page {
    #[cfg(not(test))]
    frame: u64,
    #[cfg(test)]
    bytes: alloc::boxed::Box<[u8; PAGE]>,
}

impl Page {
    /// A zeroed page, `None` when memory is exhausted.
    fn new() -> Option<Page> {
        #[cfg(not(test))]
        {
            crate::mm::frame::alloc_zeroed().map(|frame| Page { frame })
        }
        #[cfg(test)]
        {
            Some(Page {
                bytes: alloc::boxed::Box::new([0; PAGE]),
            })
        }
    }

    fn bytes(&self) -> &[u8; PAGE] {
        #[cfg(not(test))]
        {
            // SAFETY: the frame is owned by this page and mapped in the kernel's direct map;
            // a shared reference only lives while `&self` does.
            unsafe { &*(crate::mm::phys_to_virt(self.frame) as *const [u8; PAGE]) }
        }
        #[cfg(test)]
        {
            &self.bytes
        }
    }

    fn bytes_mut(&mut self) -> &mut [u8; PAGE] {
        #[cfg(not(test))]
        {
            // SAFETY: as in `bytes`, and `&mut self` makes this the only reference.
            unsafe { &mut *(crate::mm::phys_to_virt(self.frame) as *mut [u8; PAGE]) }
        }
        #[cfg(test)]
        {
            &mut self.bytes
        }
    }

    /// The frame, if a mapping shares it (it outlives the file's hold on it then).
    fn mapped_frame(&self) -> Option<u64> {
        #[cfg(not(test))]
        {
            crate::mm::refcount::is_shared(self.frame).then_some(self.frame)
        }
        #[cfg(test)]
        {
            None
        }
    }
}

/// The file gives its frame up; a `MAP_SHARED` mapping may still own it (see
/// [`crate::mm::refcount`]), and then the last owner frees it.
#[cfg(not(test))]
impl Drop for Page {
    fn drop(&mut self) {
        crate::mm::refcount::release(self.frame);
    }
}

/// A file's bytes.
#[derive(Default)]
pub struct FileData {
    pages: Vec<Option<Page>>,
    len: u64,
}

/// The page index holding byte `off`.
fn page_of(off: u64) -> usize {
    (off / PAGE as u64) as usize
}

impl FileData {
    /// The file size.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the file is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Pages allocated.
    pub fn pages_used(&self) -> usize {
        self.pages.iter().filter(|p| p.is_some()).count()
    }

    /// Reads at `offset`; returns the count (0 at or past the end). Holes read as zeros.
    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> usize {
        if offset >= self.len {
            return 0;
        }
        let n = (buf.len() as u64).min(self.len - offset) as usize;
        let mut done = 0;
        while done < n {
            let off = offset + done as u64;
            let in_page = (off % PAGE as u64) as usize;
            let k = (PAGE - in_page).min(n - done);
            match self.pages.get(page_of(off)).and_then(Option::as_ref) {
                Some(p) => buf[done..done + k].copy_from_slice(&p.bytes()[in_page..in_page + k]),
                None => buf[done..done + k].fill(0),
            }
            done += k;
        }
        n
    }

    /// Writes at `offset`, growing the file. All or nothing: ENOSPC (nothing written) if a
    /// page cannot be charged or allocated, EFBIG past the largest offset.
    pub fn write_at(&mut self, offset: u64, buf: &[u8], budget: &dyn Budget) -> Result<(), Errno> {
        if buf.is_empty() {
            return Ok(());
        }
        let end = offset
            .checked_add(buf.len() as u64)
            .filter(|&e| e <= i64::MAX as u64)
            .ok_or(Errno::EFBIG)?;
        let last = page_of(end - 1);
        if last >= self.pages.len() {
            let extra = last + 1 - self.pages.len();
            crate::mm::kalloc::try_reserve(&mut self.pages, extra).map_err(|_| Errno::ENOSPC)?;
        }
        // Allocate every missing page first, so a failure leaves the data as it was.
        let first = page_of(offset);
        let mut fresh: Vec<(usize, Page)> = Vec::new();
        let missing = (first..=last)
            .filter(|&i| self.pages.get(i).is_none_or(Option::is_none))
            .count();
        crate::mm::kalloc::try_reserve(&mut fresh, missing).map_err(|_| Errno::ENOSPC)?;
        for i in first..=last {
            if self.pages.get(i).is_some_and(Option::is_some) {
                continue;
            }
            if let Err(e) = budget.charge_page() {
                fresh.iter().for_each(|_| budget.release_page());
                return Err(e);
            }
            match Page::new() {
                Some(p) => fresh.push((i, p)),
                None => {
                    budget.release_page();
                    fresh.iter().for_each(|_| budget.release_page());
                    return Err(Errno::ENOSPC);
                }
            }
        }
        while self.pages.len() <= last {
            self.pages.push(None);
        }
        for (i, p) in fresh {
            self.pages[i] = Some(p);
        }
        let mut done = 0;
        while done < buf.len() {
            let off = offset + done as u64;
            let in_page = (off % PAGE as u64) as usize;
            let k = (PAGE - in_page).min(buf.len() - done);
            if let Some(p) = self.pages[page_of(off)].as_mut() {
                p.bytes_mut()[in_page..in_page + k].copy_from_slice(&buf[done..done + k]);
            }
            done += k;
        }
        self.len = self.len.max(end);
        Ok(())
    }

    /// Makes sure page `index` (below the size) has a frame, allocating a zeroed one for
    /// a hole: what a `MAP_SHARED` mapping faults in. `ENXIO` past the end, `ENOSPC` when
    /// the budget or memory is spent.
    pub fn ensure_page(&mut self, index: usize, budget: &dyn Budget) -> Result<(), Errno> {
        if index as u64 >= self.len.div_ceil(PAGE as u64) {
            return Err(Errno::ENXIO);
        }
        if self.pages.get(index).is_some_and(Option::is_some) {
            return Ok(());
        }
        if index >= self.pages.len() {
            let extra = index + 1 - self.pages.len();
            crate::mm::kalloc::try_reserve(&mut self.pages, extra).map_err(|_| Errno::ENOSPC)?;
        }
        budget.charge_page()?;
        let Some(page) = Page::new() else {
            budget.release_page();
            return Err(Errno::ENOSPC);
        };
        while self.pages.len() <= index {
            self.pages.push(None);
        }
        self.pages[index] = Some(page);
        Ok(())
    }

    /// Allocates every page of `[offset, end)` (zeroed where there was a hole) and grows
    /// the size to `end` if it was smaller (`fallocate` mode 0). `EFBIG` past the largest
    /// file; on `ENOSPC` the size is back where it was (the pages it had stay).
    pub fn allocate(&mut self, offset: u64, end: u64, budget: &dyn Budget) -> Result<(), Errno> {
        if end > i64::MAX as u64 || offset > end {
            return Err(Errno::EFBIG);
        }
        let old = self.len;
        self.len = self.len.max(end);
        for index in page_of(offset)..end.div_ceil(PAGE as u64) as usize {
            if let Err(e) = self.ensure_page(index, budget) {
                if self.len != old {
                    // Shrinking frees only the pages just made past the old end.
                    let _ = self.truncate(old, budget);
                }
                return Err(e);
            }
        }
        Ok(())
    }

    /// The frame of page `index` with one more owner (a `MAP_SHARED` mapping's), made by
    /// [`Self::ensure_page`] if needed.
    #[cfg(not(test))]
    pub fn share_frame(&mut self, index: usize, budget: &dyn Budget) -> Result<u64, Errno> {
        self.ensure_page(index, budget)?;
        let frame = self.pages[index]
            .as_ref()
            .map(|p| p.frame)
            .ok_or(Errno::ENXIO)?;
        crate::mm::refcount::share(frame).map_err(|_| Errno::ENOMEM)?;
        Ok(frame)
    }

    /// The frame of page `index` with one more owner, if the file has that page below its
    /// end (a hole or a page past the end: `None`).
    #[cfg(not(test))]
    pub fn existing_frame(&self, index: usize) -> Option<u64> {
        if index as u64 >= self.len.div_ceil(PAGE as u64) {
            return None;
        }
        let frame = self.pages.get(index)?.as_ref()?.frame;
        crate::mm::refcount::share(frame).ok()?;
        Some(frame)
    }

    /// Sets the size: growth is a hole (no pages), shrinking frees whole pages past the end
    /// and zeroes the cut part of the last one. Returns the frames of the dropped pages
    /// that mappings still hold: the caller unmaps them (access past the end is SIGBUS).
    pub fn truncate(&mut self, size: u64, budget: &dyn Budget) -> Result<Vec<u64>, Errno> {
        if size > i64::MAX as u64 {
            return Err(Errno::EFBIG);
        }
        let mut mapped = Vec::new();
        if size < self.len {
            let keep = size.div_ceil(PAGE as u64) as usize;
            for p in self.pages.drain(keep.min(self.pages.len())..).flatten() {
                budget.release_page();
                if let Some(frame) = p.mapped_frame() {
                    // Without room for the list the mapping keeps the page past the end
                    // (no SIGBUS there), never a freed frame.
                    if mapped.try_reserve(1).is_ok() {
                        mapped.push(frame);
                    }
                }
            }
            let in_page = (size % PAGE as u64) as usize;
            if in_page != 0 {
                if let Some(Some(p)) = self.pages.get_mut(page_of(size)) {
                    p.bytes_mut()[in_page..].fill(0);
                }
            }
            self.pages.shrink_to_fit();
        }
        self.len = size;
        Ok(mapped)
    }

    /// Makes `[offset, end)` a hole (`fallocate` punch hole, `MADV_REMOVE`): pages wholly
    /// inside go back to `budget`, the cut parts of the edge pages are zeroed; the size
    /// stays. Returns the frames of dropped pages that mappings still hold: the caller
    /// unmaps them, so the next access faults in a fresh zeroed page.
    pub fn punch_hole(&mut self, offset: u64, end: u64, budget: &dyn Budget) -> Vec<u64> {
        let end = end.min(self.len);
        let mut mapped = Vec::new();
        if offset >= end {
            return mapped;
        }
        let (first_whole, end_whole) = (offset.div_ceil(PAGE as u64), end / PAGE as u64);
        for index in first_whole..end_whole.max(first_whole) {
            let Some(slot) = self.pages.get_mut(index as usize) else {
                break;
            };
            if let Some(p) = slot.take() {
                budget.release_page();
                if let Some(frame) = p.mapped_frame() {
                    // Without room for the list the mapping keeps the old page (it still
                    // reads its bytes there), never a freed frame.
                    if mapped.try_reserve(1).is_ok() {
                        mapped.push(frame);
                    }
                }
            }
        }
        // The partial pages at either edge (one page when the range is inside a page).
        let mut zero = |from: u64, to: u64| {
            if from < to {
                if let Some(Some(p)) = self.pages.get_mut(page_of(from)) {
                    let at = (from % PAGE as u64) as usize;
                    p.bytes_mut()[at..at + (to - from) as usize].fill(0);
                }
            }
        };
        let head_end = end.min(first_whole * PAGE as u64);
        zero(offset, head_end);
        if end_whole >= first_whole {
            zero((end_whole * PAGE as u64).max(offset), end);
        }
        mapped
    }

    /// The bytes of page `index` if the file has a page there (a page cache's hit).
    pub fn page(&self, index: usize) -> Option<&[u8; PAGE]> {
        self.pages.get(index)?.as_ref().map(Page::bytes)
    }

    /// The indexes of the pages the file has, in order.
    pub fn page_indexes(&self) -> Vec<usize> {
        let mut out = Vec::new();
        if out.try_reserve(self.pages_used()).is_ok() {
            out.extend((0..self.pages.len()).filter(|&i| self.pages[i].is_some()));
        }
        out
    }

    /// Gives page `index` (below the size, none there yet) the bytes `fill` (the rest
    /// zero): a page cache filling a page from its backing file.
    pub fn fill_page(
        &mut self,
        index: usize,
        fill: &[u8],
        budget: &dyn Budget,
    ) -> Result<(), Errno> {
        self.ensure_page(index, budget)?;
        if let Some(Some(p)) = self.pages.get_mut(index) {
            let n = fill.len().min(PAGE);
            p.bytes_mut()[..n].copy_from_slice(&fill[..n]);
        }
        Ok(())
    }

    /// Copies `buf` (at file offset `offset`) into the pages the file already has, never
    /// allocating one and never changing the size: a page cache updated by a write that
    /// went to the backing file.
    pub fn update_cached(&mut self, offset: u64, buf: &[u8]) {
        let mut done = 0;
        while done < buf.len() {
            let off = offset + done as u64;
            let in_page = (off % PAGE as u64) as usize;
            let k = (PAGE - in_page).min(buf.len() - done);
            if let Some(Some(p)) = self.pages.get_mut(page_of(off)) {
                p.bytes_mut()[in_page..in_page + k].copy_from_slice(&buf[done..done + k]);
            }
            done += k;
        }
    }

    /// Drops the pages no mapping holds (a page cache's clean pages after a write-back),
    /// returning them to `budget`.
    pub fn drop_unmapped(&mut self, budget: &dyn Budget) {
        for slot in self.pages.iter_mut() {
            if slot.as_ref().is_some_and(|p| p.mapped_frame().is_none()) {
                *slot = None;
                budget.release_page();
            }
        }
    }

    /// Frees every page, returning them to `budget`.
    pub fn clear(&mut self, budget: &dyn Budget) {
        for p in self.pages.drain(..) {
            if p.is_some() {
                budget.release_page();
            }
        }
        self.len = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::cell::Cell;

    struct Limit {
        left: Cell<usize>,
    }

    impl Budget for Limit {
        fn charge_page(&self) -> Result<(), Errno> {
            match self.left.get() {
                0 => Err(Errno::ENOSPC),
                n => {
                    self.left.set(n - 1);
                    Ok(())
                }
            }
        }
        fn release_page(&self) {
            self.left.set(self.left.get() + 1);
        }
    }

    #[test]
    fn allocation_fills_holes_grows_the_size_and_undoes_on_enospc() {
        let b = Limit { left: Cell::new(3) };
        let mut d = FileData::default();
        d.write_at(0, b"keep", &b).unwrap();
        d.allocate(100, 2 * 4096 + 1, &b).unwrap();
        assert_eq!(
            (d.len(), d.pages_used(), b.left.get()),
            (2 * 4096 + 1, 3, 0)
        );
        let mut buf = [0xffu8; 4];
        assert_eq!(d.read_at(0, &mut buf), 4);
        assert_eq!(&buf, b"keep");
        // Inside the size, nothing changes it; past the budget, ENOSPC and the old size.
        d.allocate(0, 10, &b).unwrap();
        assert_eq!(d.len(), 2 * 4096 + 1);
        assert_eq!(d.allocate(0, 5 * 4096, &b), Err(Errno::ENOSPC));
        assert_eq!(
            (d.len(), d.pages_used(), b.left.get()),
            (2 * 4096 + 1, 3, 0)
        );
        assert_eq!(d.allocate(0, u64::MAX, &b), Err(Errno::EFBIG));
    }

    #[test]
    fn sparse_writes_reads_and_truncates() {
        let b = Limit { left: Cell::new(4) };
        let mut d = FileData::default();
        d.write_at(0, b"hello", &b).unwrap();
        d.write_at(3 * 4096 + 10, b"far", &b).unwrap();
        assert_eq!(
            (d.len(), d.pages_used(), b.left.get()),
            (3 * 4096 + 13, 2, 2)
        );
        let mut buf = [0xffu8; 8];
        assert_eq!(d.read_at(3, &mut buf), 8);
        assert_eq!(&buf, b"lo\0\0\0\0\0\0");
        assert_eq!(d.read_at(2 * 4096, &mut buf), 8);
        assert_eq!(buf, [0; 8]);
        assert_eq!(d.read_at(d.len(), &mut buf), 0);
        d.truncate(2, &b).unwrap();
        assert_eq!((d.len(), d.pages_used(), b.left.get()), (2, 1, 3));
        d.truncate(4096, &b).unwrap();
        assert_eq!(d.read_at(0, &mut buf), 8);
        assert_eq!(&buf, b"he\0\0\0\0\0\0");
        d.clear(&b);
        assert_eq!(b.left.get(), 4);
    }

    #[test]
    fn mapped_pages_fill_holes_below_the_size_only() {
        let b = Limit { left: Cell::new(2) };
        let mut d = FileData::default();
        assert_eq!(d.ensure_page(0, &b), Err(Errno::ENXIO), "empty file");
        d.truncate(4096 + 1, &b).unwrap();
        assert_eq!(d.pages_used(), 0, "growth is a hole");
        d.ensure_page(1, &b).unwrap();
        assert_eq!((d.pages_used(), b.left.get()), (1, 1));
        d.ensure_page(1, &b).unwrap();
        assert_eq!(d.pages_used(), 1, "an existing page is kept");
        assert_eq!(d.ensure_page(2, &b), Err(Errno::ENXIO), "past the end");
        d.ensure_page(0, &b).unwrap();
        let c = Limit { left: Cell::new(0) };
        d.truncate(3 * 4096, &c).unwrap();
        assert_eq!(d.ensure_page(2, &c), Err(Errno::ENOSPC));
        let mut buf = [1u8; 8];
        assert_eq!(d.read_at(4096, &mut buf), 8);
        assert_eq!(buf, [0; 8], "a mapped hole reads as zeros");
        assert_eq!(
            d.truncate(0, &b),
            Ok(Vec::new()),
            "no frame is mapped in tests"
        );
        assert_eq!(b.left.get(), 2);
    }

    #[test]
    fn punched_holes_free_whole_pages_and_zero_the_edges() {
        let b = Limit { left: Cell::new(8) };
        let mut d = FileData::default();
        d.write_at(0, &[1; 4 * 4096], &b).unwrap();
        assert_eq!(b.left.get(), 4);
        // Inside one page: nothing freed, the bytes zeroed.
        assert!(d.punch_hole(10, 20, &b).is_empty());
        assert_eq!((d.pages_used(), d.len()), (4, 4 * 4096));
        let mut buf = [0u8; 12];
        d.read_at(9, &mut buf);
        assert_eq!(buf, [1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        // Across pages 1 and 2 from mid page 0 to mid page 3: two pages freed.
        d.punch_hole(4000, 3 * 4096 + 100, &b);
        assert_eq!((d.pages_used(), b.left.get(), d.len()), (2, 6, 4 * 4096));
        let mut all = alloc::vec![0u8; 4 * 4096];
        d.read_at(0, &mut all);
        assert!(all[..10].iter().all(|&x| x == 1));
        assert!(all[20..4000].iter().all(|&x| x == 1));
        assert!(all[4000..3 * 4096 + 100].iter().all(|&x| x == 0));
        assert!(all[3 * 4096 + 100..].iter().all(|&x| x == 1));
        // Past the end, empty or reversed ranges change nothing; the size never moves.
        d.punch_hole(5 * 4096, 9 * 4096, &b);
        d.punch_hole(100, 100, &b);
        d.punch_hole(200, 100, &b);
        assert_eq!((d.pages_used(), d.len()), (2, 4 * 4096));
        // A range beyond the size stops at it; a whole-file punch frees everything.
        d.punch_hole(0, u64::MAX, &b);
        assert_eq!((d.pages_used(), b.left.get(), d.len()), (0, 8, 4 * 4096));
        d.read_at(0, &mut all);
        assert!(all.iter().all(|&x| x == 0));
        // Writes fill the hole again.
        d.write_at(4096, b"x", &b).unwrap();
        assert_eq!(d.pages_used(), 1);
    }

    #[test]
    fn cache_pages_fill_update_and_drop() {
        let b = Limit { left: Cell::new(4) };
        let mut d = FileData::default();
        d.truncate(2 * 4096 + 10, &b).unwrap();
        assert!(d.page(1).is_none());
        d.fill_page(1, b"host", &b).unwrap();
        assert_eq!(&d.page(1).unwrap()[..5], b"host\0");
        assert_eq!(d.fill_page(3, b"x", &b), Err(Errno::ENXIO), "past the end");
        // A write across pages 0-1 reaches only the cached page 1.
        d.update_cached(4096 - 2, b"abcd");
        assert!(d.page(0).is_none());
        assert_eq!(&d.page(1).unwrap()[..4], b"cdst");
        assert_eq!(d.page_indexes(), [1]);
        d.drop_unmapped(&b);
        assert_eq!(
            (d.pages_used(), b.left.get(), d.len()),
            (0, 4, 2 * 4096 + 10)
        );
    }

    #[test]
    fn a_spent_budget_writes_nothing() {
        let b = Limit { left: Cell::new(2) };
        let mut d = FileData::default();
        d.write_at(0, &[1; 4096], &b).unwrap();
        assert_eq!(d.write_at(4000, &[2; 9000], &b), Err(Errno::ENOSPC));
        assert_eq!((d.len(), d.pages_used(), b.left.get()), (4096, 1, 1));
        let mut buf = [0u8; 200];
        d.read_at(4000, &mut buf);
        assert!(buf[..96].iter().all(|&x| x == 1));
        assert_eq!(d.write_at(u64::MAX - 1, b"xy", &b), Err(Errno::EFBIG));
        assert_eq!(d.truncate(u64::MAX, &b), Err(Errno::EFBIG));
    }
}

//! The physical frame allocator: 4 KiB frames and 2 MiB-aligned blocks of 512 frames.
//!
//! Memory comes from the usable regions of the boot memory map. Each region is handed out
//! from both ends: 4 KiB frames from its bottom, 2 MiB blocks from its top (aligned), so
//! the two sizes do not interleave and leave each other's pieces unusable. Freed frames go
//! on a doubly linked list threaded through the frames themselves; each aligned block
//! counts its listed frames, and when the last of its 512 comes back the block leaves the
//! list whole and joins the list of free blocks. So blocks come back after any mix of 4 KiB
//! and 2 MiB use, and a 4 KiB allocation splits a free block only when no single frame is
//! left anywhere.

use spin::Mutex;

use super::{phys_to_virt, PAGE_SIZE};

const MAX_RANGES: usize = 8;
/// How many of the most recently freed frames [`FrameAllocator::alloc_pair`] searches for
/// two neighbours before it splits a block.
const PAIR_SCAN: usize = 256;
/// Room for freed page-table frames kept off the free list, oldest reused first (see
/// [`FrameAllocator::free_table`]): frame numbers, so 128 KiB.
const QUARANTINE: usize = 32768;
/// How many the ring keeps: one frame in [`QUARANTINE_SHARE`] of all, at least
/// [`QUARANTINE_MIN`]. A KVM host keeps shadows for 2% of a guest's pages by default
/// (`kvm_mmu_calculate_default_mmu_pages`); a table frame that waits behind twice as many
/// newer ones has usually lost its shadow. Measured with a fork+exit+wait loop in a
/// 256 MiB guest (2026-12-05): a ring of 1024 frames saved nothing, 2048 and 4096 took
/// the exit's teardown from 1.37M to 0.25-0.28M cycles and the fork from 0.57M to 0.32M.
const QUARANTINE_SHARE: u64 = 25;
const QUARANTINE_MIN: usize = 2048;
/// Size of a block (a 2 MiB page).
pub const BLOCK_SIZE: u64 = 2 << 20;
/// Frames in a block.
pub const BLOCK_FRAMES: u64 = BLOCK_SIZE / PAGE_SIZE;
/// Blocks whose free frames are counted (and so can be rebuilt from single frames): all
/// of guest RAM, which ends below `MEM_MAX`.
const MAX_BLOCKS: usize = (hypercall_abi::layout::MEM_MAX / BLOCK_SIZE) as usize;

/// Where the allocator keeps the links of free frames: in the frames themselves.
pub trait FrameLinks {
    /// Word `word` (0 or 1) of free frame `pa`.
    fn get(&self, pa: u64, word: usize) -> u64;
    /// Sets word `word` (0 or 1) of free frame `pa`.
    fn set(&self, pa: u64, word: usize, value: u64);
}

/// Free frames seen through the kernel's view of physical memory.
pub struct DirectMap;

impl FrameLinks for DirectMap {
    fn get(&self, pa: u64, word: usize) -> u64 {
        // SAFETY: free frames belong to the allocator and are mapped in the kernel's view
        // of physical memory; `word` < 2 stays inside the frame.
        unsafe { core::ptr::read((phys_to_virt(pa) as *const u64).add(word)) }
    }

    fn set(&self, pa: u64, word: usize, value: u64) {
        // SAFETY: as in `get`; nothing else uses a free frame.
        unsafe { core::ptr::write((phys_to_virt(pa) as *mut u64).add(word), value) }
    }
}

const NEXT: usize = 0;
const PREV: usize = 1;

/// Allocates frames and blocks of guest-physical memory.
pub struct FrameAllocator<M: FrameLinks = DirectMap> {
    links: M,
    /// The part of each region not handed out yet: `[low, high)`.
    ranges: [(u64, u64); MAX_RANGES],
    count: usize,
    /// Head of the list of free single frames (0: empty; frame 0 is never managed).
    free_head: u64,
    /// Head of the list of free blocks, linked through their first frames.
    block_head: u64,
    /// Free blocks listed.
    free_blocks: u64,
    /// For each block of RAM, how many of its frames are on the single-frame list.
    listed: [u16; MAX_BLOCKS],
    free_frames: u64,
    total_frames: u64,
    /// Freed page-table frames, a ring: `quarantine_len` of them from `quarantine_head`.
    quarantine: [u32; QUARANTINE],
    quarantine_head: usize,
    quarantine_len: usize,
    /// While set, every allocation fails as if memory were exhausted (the kernel's
    /// self-tests of out-of-memory paths: see [`Self::set_refusing`]).
    refusing: bool,
}

impl FrameAllocator<DirectMap> {
    /// An allocator with no memory.
    pub const fn empty() -> Self {
        Self::with_links(DirectMap)
    }
}

impl<M: FrameLinks> FrameAllocator<M> {
    /// An allocator with no memory that keeps its links through `links`.
    pub const fn with_links(links: M) -> Self {
        FrameAllocator {
            links,
            ranges: [(0, 0); MAX_RANGES],
            count: 0,
            free_head: 0,
            block_head: 0,
            free_blocks: 0,
            listed: [0; MAX_BLOCKS],
            free_frames: 0,
            total_frames: 0,
            quarantine: [0; QUARANTINE],
            quarantine_head: 0,
            quarantine_len: 0,
            refusing: false,
        }
    }

    /// Makes every allocation fail (`true`) as if no memory were left, or work again.
    /// Self-tests reach out-of-memory paths this way without taking every frame (under
    /// QEMU TCG, taking and zeroing all of them holds the CPU long enough to leave the PIT
    /// a backlog of ticks that upsets timing tests after it).
    pub fn set_refusing(&mut self, refusing: bool) {
        self.refusing = refusing;
    }

    /// Adds the page-aligned part of `[start, end)`.
    pub fn add_range(&mut self, start: u64, end: u64) {
        let start = super::page_align_up(start.max(PAGE_SIZE));
        let end = super::page_align_down(end);
        if end <= start || self.count == MAX_RANGES {
            return;
        }
        self.ranges[self.count] = (start, end);
        self.count += 1;
        self.total_frames += (end - start) / PAGE_SIZE;
        self.free_frames += (end - start) / PAGE_SIZE;
    }

    /// Takes `count` physically contiguous frames from the bottom of the first region with
    /// room (boot-time use: the heap).
    pub fn alloc_contiguous(&mut self, count: u64) -> Option<u64> {
        if self.refusing {
            return None;
        }
        let size = count.checked_mul(PAGE_SIZE)?;
        let range = self.ranges[..self.count]
            .iter_mut()
            .find(|(low, high)| high - low >= size)?;
        let start = range.0;
        range.0 += size;
        self.free_frames -= count;
        Some(start)
    }

    /// One frame, not zeroed: a freed one, else a new one, else the oldest freed page
    /// table, else one split off a free block.
    pub fn alloc(&mut self) -> Option<u64> {
        self.alloc_noting_table().map(|(frame, _)| frame)
    }

    /// [`Self::alloc`], and whether the frame was a page table (its old entries may still
    /// be there, and writing it may trap: see [`Self::free_table`]).
    pub fn alloc_noting_table(&mut self) -> Option<(u64, bool)> {
        if self.refusing {
            return None;
        }
        if self.free_head != 0 {
            let frame = self.free_head;
            self.unlink(frame);
            self.free_frames -= 1;
            return Some((frame, false));
        }
        if let Some(frame) = self.alloc_contiguous(1) {
            return Some((frame, false));
        }
        if let Some(frame) = self.take_quarantined() {
            self.free_frames -= 1;
            return Some((frame, true));
        }
        let block = self.pop_block()?;
        for i in 1..BLOCK_FRAMES {
            self.link(block + i * PAGE_SIZE);
        }
        self.free_frames -= 1;
        Some((block, false))
    }

    /// Returns a frame that was a page table: it waits in a ring of [`QUARANTINE`] frames
    /// (counted free) and rejoins the free list only when pushed out by newer ones, or
    /// when nothing else is left. Nothing is written to it now: on PVM the host shadows
    /// page tables and write-protects them, so a write to a freed table (the free list's
    /// links live in the frames) was a trap, ~100k cycles each and about ten a process
    /// exit (2026-12-05); by the time the frame is used again the host has often dropped
    /// its shadow.
    pub fn free_table(&mut self, frame: u64) {
        self.free_frames += 1;
        let Ok(number) = u32::try_from(frame / PAGE_SIZE) else {
            self.relink(frame);
            return;
        };
        if self.quarantine_len >= self.quarantine_capacity() {
            if let Some(oldest) = self.take_quarantined() {
                self.relink(oldest);
            }
        }
        let at = (self.quarantine_head + self.quarantine_len) % QUARANTINE;
        self.quarantine[at] = number;
        self.quarantine_len += 1;
    }

    /// How many freed tables the ring keeps for this much memory.
    fn quarantine_capacity(&self) -> usize {
        usize::try_from(self.total_frames / QUARANTINE_SHARE)
            .unwrap_or(QUARANTINE)
            .clamp(QUARANTINE_MIN, QUARANTINE)
    }

    /// Puts every quarantined frame on the free list; false if there was none.
    fn release_quarantine(&mut self) -> bool {
        let any = self.quarantine_len > 0;
        while let Some(frame) = self.take_quarantined() {
            self.relink(frame);
        }
        any
    }

    /// The oldest quarantined frame, off the ring (the caller keeps the count right).
    fn take_quarantined(&mut self) -> Option<u64> {
        if self.quarantine_len == 0 {
            return None;
        }
        let frame = u64::from(self.quarantine[self.quarantine_head]) * PAGE_SIZE;
        self.quarantine_head = (self.quarantine_head + 1) % QUARANTINE;
        self.quarantine_len -= 1;
        Some(frame)
    }

    /// Returns a frame.
    pub fn free(&mut self, frame: u64) {
        self.free_frames += 1;
        self.relink(frame);
    }

    /// Puts a frame the count already has as free on the list (coalescing its block).
    fn relink(&mut self, frame: u64) {
        self.link(frame);
        let Some(listed) = self.listed.get_mut(block_index(frame)) else {
            return;
        };
        if u64::from(*listed) < BLOCK_FRAMES {
            return;
        }
        // The whole block is free: take its frames off the list and keep it whole.
        let block = frame & !(BLOCK_SIZE - 1);
        for i in 0..BLOCK_FRAMES {
            self.unlink(block + i * PAGE_SIZE);
        }
        self.push_block(block);
    }

    /// Two contiguous frames, the first 8 KiB aligned, not zeroed (a PML4 and the
    /// user-mode PML4 a PVM host pairs with it): from the bottom of a region (a frame
    /// skipped to align goes on the single-frame list), else two neighbours among the
    /// [`PAIR_SCAN`] most recently freed frames, else split off a free block. Each frame
    /// is returned on its own with [`Self::free`].
    pub fn alloc_pair(&mut self) -> Option<u64> {
        if self.refusing {
            return None;
        }
        self.alloc_pair_listed().or_else(|| {
            // Quarantined page tables may complete a pair or a block: give them back.
            self.release_quarantine()
                .then(|| self.alloc_pair_listed())?
        })
    }

    /// [`Self::alloc_pair`] from what is on the lists and in the regions.
    fn alloc_pair_listed(&mut self) -> Option<u64> {
        const PAIR: u64 = 2 * PAGE_SIZE;
        let found = self.ranges[..self.count].iter().position(|&(low, high)| {
            low.next_multiple_of(PAIR)
                .checked_add(PAIR)
                .is_some_and(|end| end <= high)
        });
        if let Some(i) = found {
            let low = self.ranges[i].0;
            let pair = low.next_multiple_of(PAIR);
            if pair != low {
                // The skipped frame stays free, on the list instead of in the region.
                self.link(low);
            }
            self.ranges[i].0 = pair + PAIR;
            self.free_frames -= 2;
            return Some(pair);
        }
        if let Some(pair) = self.listed_pair() {
            self.unlink(pair);
            self.unlink(pair + PAGE_SIZE);
            self.free_frames -= 2;
            return Some(pair);
        }
        let block = self.pop_block().or_else(|| self.carve_block())?;
        for i in 2..BLOCK_FRAMES {
            self.link(block + i * PAGE_SIZE);
        }
        self.free_frames -= 2;
        Some(block)
    }

    /// An 8 KiB-aligned frame whose neighbour is free too, both among the first
    /// [`PAIR_SCAN`] frames of the single-frame list.
    fn listed_pair(&self) -> Option<u64> {
        let mut seen = [0u64; PAIR_SCAN];
        let mut n = 0;
        let mut frame = self.free_head;
        while frame != 0 && n < PAIR_SCAN {
            seen[n] = frame;
            n += 1;
            frame = self.links.get(frame, NEXT);
        }
        let seen = &mut seen[..n];
        seen.sort_unstable();
        seen.windows(2)
            .find(|w| w[0] % (2 * PAGE_SIZE) == 0 && w[1] == w[0] + PAGE_SIZE)
            .map(|w| w[0])
    }

    /// A 2 MiB-aligned block of 512 contiguous frames, not zeroed: a free one, else one
    /// from the top of a region (the highest first). `None` when no aligned 2 MiB is free,
    /// however many single frames are.
    pub fn alloc_block(&mut self) -> Option<u64> {
        if self.refusing {
            return None;
        }
        let block = match self.pop_block().or_else(|| self.carve_block()) {
            Some(block) => block,
            // Quarantined page tables may complete a free block.
            None if self.release_quarantine() => self.pop_block().or_else(|| self.carve_block())?,
            None => return None,
        };
        self.free_frames -= BLOCK_FRAMES;
        Some(block)
    }

    /// Returns a block that [`Self::alloc_block`] gave (all 512 frames at once).
    pub fn free_block(&mut self, block: u64) {
        self.free_frames += BLOCK_FRAMES;
        self.push_block(block);
    }

    /// Frames still available (in free blocks included).
    pub fn free_frames(&self) -> u64 {
        self.free_frames
    }

    /// Frames managed in all.
    pub fn total_frames(&self) -> u64 {
        self.total_frames
    }

    /// Takes an aligned block from the top of the highest region that has one. The frames
    /// above it up to the region's unaligned top go on the single-frame list (once per
    /// region, and only if its end is not 2 MiB aligned).
    fn carve_block(&mut self) -> Option<u64> {
        let i = (0..self.count).rev().find(|&i| {
            let (low, high) = self.ranges[i];
            (high & !(BLOCK_SIZE - 1))
                .checked_sub(BLOCK_SIZE)
                .is_some_and(|b| b >= low)
        })?;
        let (_, high) = self.ranges[i];
        let block = (high & !(BLOCK_SIZE - 1)) - BLOCK_SIZE;
        self.ranges[i].1 = block;
        let mut tail = block + BLOCK_SIZE;
        while tail < high {
            self.link(tail);
            tail += PAGE_SIZE;
        }
        Some(block)
    }

    fn pop_block(&mut self) -> Option<u64> {
        if self.block_head == 0 {
            return None;
        }
        let block = self.block_head;
        self.block_head = self.links.get(block, NEXT);
        self.free_blocks -= 1;
        Some(block)
    }

    fn push_block(&mut self, block: u64) {
        self.links.set(block, NEXT, self.block_head);
        self.block_head = block;
        self.free_blocks += 1;
    }

    /// Puts `frame` at the head of the single-frame list (the counter is the caller's).
    fn link(&mut self, frame: u64) {
        self.links.set(frame, NEXT, self.free_head);
        self.links.set(frame, PREV, 0);
        if self.free_head != 0 {
            self.links.set(self.free_head, PREV, frame);
        }
        self.free_head = frame;
        if let Some(listed) = self.listed.get_mut(block_index(frame)) {
            *listed += 1;
        }
    }

    /// Takes `frame` off the single-frame list.
    fn unlink(&mut self, frame: u64) {
        let next = self.links.get(frame, NEXT);
        let prev = self.links.get(frame, PREV);
        if prev == 0 {
            self.free_head = next;
        } else {
            self.links.set(prev, NEXT, next);
        }
        if next != 0 {
            self.links.set(next, PREV, prev);
        }
        if let Some(listed) = self.listed.get_mut(block_index(frame)) {
            *listed -= 1;
        }
    }
}

fn block_index(frame: u64) -> usize {
    (frame / BLOCK_SIZE) as usize
}

/// The system's frame allocator.
pub static FRAMES: Mutex<FrameAllocator> = Mutex::new(FrameAllocator::empty());

/// One zeroed frame, or `None` when memory is exhausted.
pub fn alloc_zeroed() -> Option<u64> {
    let (frame, was_table) = FRAMES.lock().alloc_noting_table()?;
    let words = phys_to_virt(frame) as *mut u64;
    if was_table {
        // Mostly zero already: write only the entries left (each write may trap while the
        // host still shadows the old table).
        for i in 0..(PAGE_SIZE / 8) as usize {
            // SAFETY: the frame is ours and mapped in the kernel's view of physical memory.
            unsafe {
                if words.add(i).read() != 0 {
                    words.add(i).write(0);
                }
            }
        }
    } else {
        // SAFETY: as above.
        unsafe { core::ptr::write_bytes(words as *mut u8, 0, PAGE_SIZE as usize) };
    }
    Some(frame)
}

/// Returns a frame to the allocator.
pub fn free(frame: u64) {
    FRAMES.lock().free(frame);
}

/// Returns a frame that was a page table (see [`FrameAllocator::free_table`]).
pub fn free_table(frame: u64) {
    FRAMES.lock().free_table(frame);
}

/// Two zeroed contiguous frames, the first 8 KiB aligned (see
/// [`FrameAllocator::alloc_pair`]), or `None` when memory is exhausted.
pub fn alloc_pair_zeroed() -> Option<u64> {
    let pair = FRAMES.lock().alloc_pair()?;
    // SAFETY: both frames are ours and mapped in the kernel's view of physical memory.
    unsafe { core::ptr::write_bytes(phys_to_virt(pair) as *mut u8, 0, 2 * PAGE_SIZE as usize) };
    Some(pair)
}

/// One zeroed 2 MiB-aligned block of 512 frames, or `None` when no such block is free.
pub fn alloc_block_zeroed() -> Option<u64> {
    let block = FRAMES.lock().alloc_block()?;
    // SAFETY: the block is ours and mapped in the kernel's view of physical memory.
    unsafe { core::ptr::write_bytes(phys_to_virt(block) as *mut u8, 0, BLOCK_SIZE as usize) };
    Some(block)
}

/// Returns a block of 512 frames to the allocator.
pub fn free_block(block: u64) {
    FRAMES.lock().free_block(block);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::collections::HashMap;

    /// Links kept in a map instead of in the frames.
    #[derive(Default)]
    struct MapLinks(RefCell<HashMap<(u64, usize), u64>>);

    impl FrameLinks for MapLinks {
        fn get(&self, pa: u64, word: usize) -> u64 {
            self.0.borrow().get(&(pa, word)).copied().unwrap_or(0xdead)
        }
        fn set(&self, pa: u64, word: usize, value: u64) {
            self.0.borrow_mut().insert((pa, word), value);
        }
    }

    const MB: u64 = 1 << 20;

    fn alloc_with(ranges: &[(u64, u64)]) -> FrameAllocator<MapLinks> {
        let mut a = FrameAllocator::with_links(MapLinks::default());
        for &(s, e) in ranges {
            a.add_range(s, e);
        }
        a
    }

    #[test]
    fn freed_page_tables_wait_untouched_and_come_back_oldest_first() {
        let mut a = alloc_with(&[(0, 16 * MB)]);
        let free = a.free_frames();
        let tables: Vec<u64> = (0..3).map(|_| a.alloc().unwrap()).collect();
        for &t in &tables {
            a.free_table(t);
        }
        assert_eq!(a.free_frames(), free, "quarantined frames count as free");
        // Nothing written to them: no link in the map for them.
        for &t in &tables {
            assert_eq!(a.links.get(t, NEXT), 0xdead, "{t:#x} was written");
        }
        // The regions come first, then the oldest table, flagged.
        let mut taken = Vec::new();
        loop {
            let (frame, was_table) = a.alloc_noting_table().unwrap();
            if was_table {
                assert_eq!(frame, tables[0]);
                break;
            }
            taken.push(frame);
        }
        assert_eq!(a.alloc_noting_table().unwrap(), (tables[1], true));
        // A full ring pushes its oldest onto the free list.
        assert_eq!(a.quarantine_capacity(), QUARANTINE_MIN);
        // (tables[2] is still in it.)
        for f in taken.drain(..QUARANTINE_MIN - 1) {
            a.free_table(f);
        }
        assert_eq!(a.quarantine_len, QUARANTINE_MIN);
        assert_eq!(a.free_head, 0);
        a.free_table(taken.pop().unwrap());
        assert_eq!(a.quarantine_len, QUARANTINE_MIN);
        assert_ne!(a.free_head, 0, "the oldest went to the free list");
    }

    #[test]
    fn quarantined_tables_complete_a_block_when_one_is_needed() {
        let mut a = alloc_with(&[(0, 4 * MB)]);
        // Take everything, then give one block back as single frames, half as tables.
        let mut frames = Vec::new();
        while let Some(f) = a.alloc() {
            frames.push(f);
        }
        assert_eq!(a.alloc_block(), None);
        let block = frames
            .iter()
            .copied()
            .find(|f| f % BLOCK_SIZE == 0 && *f != 0)
            .unwrap();
        for i in 0..BLOCK_FRAMES {
            let f = block + i * PAGE_SIZE;
            if i % 2 == 0 {
                a.free_table(f);
            } else {
                a.free(f);
            }
        }
        assert_eq!(a.alloc_block(), Some(block));
        assert_eq!(a.quarantine_len, 0);
    }

    #[test]
    fn a_refusing_allocator_fails_every_kind_and_keeps_its_memory() {
        let mut a = alloc_with(&[(0, 8 * MB)]);
        let free = a.free_frames();
        let f = a.alloc().unwrap();
        a.set_refusing(true);
        assert_eq!(a.alloc(), None);
        assert_eq!(a.alloc_pair(), None);
        assert_eq!(a.alloc_block(), None);
        assert_eq!(a.alloc_contiguous(1), None);
        a.free(f);
        assert_eq!(a.free_frames(), free, "frees still work");
        a.set_refusing(false);
        assert!(a.alloc().is_some() && a.alloc_block().is_some());
    }

    #[test]
    fn pairs_are_8k_aligned_and_free_frame_by_frame() {
        // A region starting on an odd frame: the skipped frame stays allocatable.
        let mut a = alloc_with(&[(MB + PAGE_SIZE, 2 * MB)]);
        let total = a.free_frames();
        let p = a.alloc_pair().unwrap();
        assert_eq!(p, MB + 2 * PAGE_SIZE);
        assert_eq!(a.free_frames(), total - 2);
        assert_eq!(a.alloc(), Some(MB + PAGE_SIZE), "the skipped frame");
        let q = a.alloc_pair().unwrap();
        assert_eq!(q % (2 * PAGE_SIZE), 0);
        assert_ne!(p, q);
        a.free(p);
        a.free(p + PAGE_SIZE);
        a.free(q + PAGE_SIZE);
        a.free(q);
        a.free(MB + PAGE_SIZE);
        assert_eq!(a.free_frames(), total);
    }

    #[test]
    fn pairs_split_a_block_when_the_regions_are_used_up() {
        let mut a = alloc_with(&[(2 * MB, 4 * MB)]);
        let total = a.free_frames();
        let b = a.alloc_block().unwrap();
        a.free_block(b);
        // Only the free block is left: the pair comes from it, the rest become singles.
        let p = a.alloc_pair().unwrap();
        assert_eq!(p, b);
        assert_eq!(a.free_frames(), total - 2);
        assert!(a.alloc_block().is_none(), "the block was split");
        a.free(p);
        a.free(p + PAGE_SIZE);
        assert_eq!(a.alloc_block(), Some(b), "the block is whole again");
    }

    #[test]
    fn pairs_come_from_freed_neighbours_before_a_block_is_split() {
        let mut a = alloc_with(&[(2 * MB, 6 * MB)]);
        let blocks = [a.alloc_block().unwrap(), a.alloc_block().unwrap()];
        assert!(a.alloc().is_none());
        // Free every frame of the first block but its first: no block is whole.
        for i in 1..BLOCK_FRAMES {
            a.free(blocks[0] + i * PAGE_SIZE);
        }
        let before = a.free_frames();
        let p = a.alloc_pair().unwrap();
        assert_eq!(p % (2 * PAGE_SIZE), 0);
        assert!(p > blocks[0] && p < blocks[0] + BLOCK_SIZE);
        assert_eq!(a.free_frames(), before - 2);
        // The two frames are off the list: allocating everything never returns them.
        let rest: Vec<u64> = core::iter::from_fn(|| a.alloc()).collect();
        assert_eq!(rest.len() as u64, before - 2);
        assert!(!rest.contains(&p) && !rest.contains(&(p + PAGE_SIZE)));
    }

    #[test]
    fn blocks_are_aligned_and_from_the_top() {
        let mut a = alloc_with(&[(MB, 2 * MB), (3 * MB, 16 * MB)]);
        let total = a.free_frames();
        let b = a.alloc_block().unwrap();
        assert_eq!(b, 14 * MB);
        assert_eq!(a.free_frames(), total - 512);
        let f = a.alloc().unwrap();
        assert_eq!(f, MB, "single frames come from the bottom");
        let blocks: Vec<u64> = core::iter::from_fn(|| a.alloc_block()).collect();
        // 4..14 MiB holds five aligned blocks; 3..4 MiB and 1..2 MiB hold none.
        assert_eq!(blocks, vec![12 * MB, 10 * MB, 8 * MB, 6 * MB, 4 * MB]);
        assert!(blocks.iter().all(|b| b % BLOCK_SIZE == 0));
        // Single frames are still there below the blocks.
        assert_eq!(a.free_frames(), total - 6 * 512 - 1);
        let mut singles = 0;
        while a.alloc().is_some() {
            singles += 1;
        }
        assert_eq!(singles, total - 6 * 512 - 1);
        assert_eq!(a.free_frames(), 0);
    }

    #[test]
    fn unaligned_top_goes_to_the_single_list() {
        let mut a = alloc_with(&[(2 * MB, 7 * MB)]);
        let total = a.free_frames();
        assert_eq!(a.alloc_block(), Some(4 * MB));
        // 6..7 MiB was listed for single frames, and is used before the bottom.
        assert_eq!(a.free_frames(), total - 512);
        let f = a.alloc().unwrap();
        assert!((6 * MB..7 * MB).contains(&f), "frame {f:#x}");
        assert_eq!(a.alloc_block(), Some(2 * MB));
        assert_eq!(a.alloc_block(), None);
        assert_eq!(a.free_frames(), total - 1024 - 1);
    }

    #[test]
    fn freed_frames_rebuild_a_block() {
        let mut a = alloc_with(&[(2 * MB, 4 * MB)]);
        let frames: Vec<u64> = (0..512).map(|_| a.alloc().unwrap()).collect();
        assert_eq!(a.alloc_block(), None, "no block while frames are out");
        assert_eq!(a.alloc(), None);
        // Free in a scattered order: the block comes back only with the last frame.
        for (n, &f) in frames
            .iter()
            .rev()
            .step_by(2)
            .chain(frames.iter().step_by(2))
            .enumerate()
        {
            a.free(f);
            if n < 511 {
                assert_eq!(a.free_blocks, 0);
            }
        }
        assert_eq!(a.free_frames(), 512);
        assert_eq!(a.free_head, 0, "no single frames listed");
        assert_eq!(a.alloc_block(), Some(2 * MB));
        a.free_block(2 * MB);
        assert_eq!(a.free_frames(), 512);
    }

    #[test]
    fn single_frames_split_a_block_last() {
        let mut a = alloc_with(&[(2 * MB, 6 * MB)]);
        let b1 = a.alloc_block().unwrap();
        let b2 = a.alloc_block().unwrap();
        assert_eq!(a.alloc(), None);
        a.free_block(b1);
        // A single frame now splits the free block; the rest of it stays listed.
        let f = a.alloc().unwrap();
        assert_eq!(f, b1);
        assert_eq!(a.free_frames(), 511);
        assert_eq!(a.alloc_block(), None);
        // Frames of a block freed one by one rebuild it too.
        for i in 0..512 {
            a.free(b2 + i * PAGE_SIZE);
        }
        assert_eq!(a.alloc_block(), Some(b2));
        a.free(f);
        assert_eq!(a.alloc_block(), Some(b1));
        assert_eq!(a.free_frames(), 0);
    }

    #[test]
    fn list_links_survive_unlinking_from_the_middle() {
        let mut a = alloc_with(&[(2 * MB, 6 * MB)]);
        let other: Vec<u64> = (0..3).map(|_| a.alloc().unwrap()).collect();
        // 512 frames from 2 MiB + 3 frames: they straddle two aligned blocks.
        let run: Vec<u64> = (0..512).map(|_| a.alloc().unwrap()).collect();
        for &f in &run[..256] {
            a.free(f);
        }
        a.free(other[1]);
        for &f in &run[256..] {
            a.free(f);
        }
        assert_eq!(a.free_blocks, 0, "neither block is whole");
        let mut got = Vec::new();
        while let Some(f) = a.alloc() {
            got.push(f);
        }
        got.sort_unstable();
        let mut want = run.clone();
        want.push(other[1]);
        want.extend((2 * MB + 515 * PAGE_SIZE..6 * MB).step_by(PAGE_SIZE as usize));
        want.sort_unstable();
        assert_eq!(got, want);
        // With frames 0 and 2 back as well, the first block is whole again.
        for f in got {
            a.free(f);
        }
        a.free(other[0]);
        a.free(other[2]);
        assert_eq!(a.free_blocks, 2);
        assert_eq!(a.free_frames(), 1024);
    }

    #[test]
    fn boot_contiguous_skips_small_regions_without_losing_them() {
        let mut a = alloc_with(&[(MB, 2 * MB), (2 * MB, 16 * MB)]);
        let total = a.free_frames();
        assert_eq!(a.alloc_contiguous(1024), Some(2 * MB));
        assert_eq!(a.free_frames(), total - 1024);
        assert_eq!(a.alloc(), Some(MB), "the small region is still used");
        assert_eq!(a.alloc_contiguous(u64::MAX), None);
    }
}

//! The physical frame allocator: a bump pointer over the usable regions of the boot
//! memory map, plus a free list threaded through freed frames.

use spin::Mutex;

use super::{phys_to_virt, PAGE_SIZE};

const MAX_RANGES: usize = 8;

/// Allocates 4 KiB frames of guest-physical memory.
pub struct FrameAllocator {
    ranges: [(u64, u64); MAX_RANGES],
    count: usize,
    current: usize,
    next: u64,
    free_head: u64,
    free_frames: u64,
    total_frames: u64,
}

impl FrameAllocator {
    /// An allocator with no memory.
    pub const fn empty() -> Self {
        FrameAllocator {
            ranges: [(0, 0); MAX_RANGES],
            count: 0,
            current: 0,
            next: 0,
            free_head: 0,
            free_frames: 0,
            total_frames: 0,
        }
    }

    /// Adds the page-aligned part of `[start, end)`.
    pub fn add_range(&mut self, start: u64, end: u64) {
        let start = super::page_align_up(start);
        let end = super::page_align_down(end);
        if end <= start || self.count == MAX_RANGES {
            return;
        }
        self.ranges[self.count] = (start, end);
        if self.count == 0 {
            self.next = start;
        }
        self.count += 1;
        self.total_frames += (end - start) / PAGE_SIZE;
        self.free_frames += (end - start) / PAGE_SIZE;
    }

    /// Takes `count` physically contiguous frames from the bump region (boot-time use).
    pub fn alloc_contiguous(&mut self, count: u64) -> Option<u64> {
        while self.current < self.count {
            let (_, end) = self.ranges[self.current];
            let size = count * PAGE_SIZE;
            if self.next + size <= end {
                let start = self.next;
                self.next += size;
                self.free_frames -= count;
                return Some(start);
            }
            self.advance();
        }
        None
    }

    fn advance(&mut self) {
        // The rest of this range is lost to contiguous allocations; that only happens
        // at boot, when a range is too small for the heap.
        let (_, end) = self.ranges[self.current];
        self.free_frames -= (end - self.next) / PAGE_SIZE;
        self.current += 1;
        if self.current < self.count {
            self.next = self.ranges[self.current].0;
        }
    }

    /// One frame, not zeroed.
    pub fn alloc(&mut self) -> Option<u64> {
        if self.free_head != 0 {
            let frame = self.free_head;
            // SAFETY: free frames hold the next pointer in their first word and are
            // mapped in the kernel's view of physical memory.
            self.free_head = unsafe { core::ptr::read(phys_to_virt(frame) as *const u64) };
            self.free_frames -= 1;
            return Some(frame);
        }
        self.alloc_contiguous(1)
    }

    /// Returns a frame.
    pub fn free(&mut self, frame: u64) {
        // SAFETY: the caller owned the frame, so nothing else uses it now.
        unsafe { core::ptr::write(phys_to_virt(frame) as *mut u64, self.free_head) };
        self.free_head = frame;
        self.free_frames += 1;
    }

    /// Frames still available.
    pub fn free_frames(&self) -> u64 {
        self.free_frames
    }

    /// Frames managed in all.
    pub fn total_frames(&self) -> u64 {
        self.total_frames
    }
}

/// The system's frame allocator.
pub static FRAMES: Mutex<FrameAllocator> = Mutex::new(FrameAllocator::empty());

/// One zeroed frame, or `None` when memory is exhausted.
pub fn alloc_zeroed() -> Option<u64> {
    let frame = FRAMES.lock().alloc()?;
    // SAFETY: the frame is ours and mapped in the kernel's view of physical memory.
    unsafe { core::ptr::write_bytes(phys_to_virt(frame) as *mut u8, 0, PAGE_SIZE as usize) };
    Some(frame)
}

/// Returns a frame to the allocator.
pub fn free(frame: u64) {
    FRAMES.lock().free(frame);
}

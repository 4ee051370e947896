//! The kernel heap: `linked_list_allocator` over one contiguous run of frames.

use linked_list_allocator::LockedHeap;

#[cfg_attr(not(test), global_allocator)]
static HEAP: LockedHeap = LockedHeap::empty();

/// Hands `[start, start + size)` (kernel virtual) to the heap.
///
/// # Safety
/// The range must be mapped, writable, unused, and stay so forever. Call once.
pub unsafe fn init(start: u64, size: u64) {
    // SAFETY: guaranteed by the caller.
    unsafe { HEAP.lock().init(start as *mut u8, size as usize) };
}

/// Bytes in use and bytes in all.
pub fn usage() -> (usize, usize) {
    let heap = HEAP.lock();
    (heap.used(), heap.size())
}

//! Fallible, accounted kernel-heap allocations: the kernel-heap budget.
//!
//! The kernel heap is small (an eighth of guest RAM, at most 64 MiB) and Rust's collections
//! panic when it runs out, which would end the whole VM. So everything a process or an image
//! can make the kernel allocate in quantity (pipe buffers, descriptor tables, memory-area
//! tables, tarfs nodes) goes through these helpers: each growth is first checked against
//! the budget, which keeps [`reserve_bytes`] of the heap free for the kernel's own small
//! allocations (open-file objects, paths, signal frames...) that are not checked one by
//! one, and is then made with `try_reserve`, so fragmentation too gives an error. The caller
//! turns [`NoMemory`] into `ENOMEM` (or `EMFILE`/`EAGAIN` where Linux says so), kills the
//! offender, or refuses the image with a message: running out is never a panic.
//!
//! The accounting is the heap's own: bytes in use against its size. Before the heap exists
//! (host unit tests use the host's allocator) there is no budget to enforce.

use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::mem::size_of;

use crate::errno::Errno;

/// Smallest share of the heap kept for unchecked kernel allocations.
pub const RESERVE_MIN: usize = 256 << 10;

/// The heap would go below its reserve: the allocation was not made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NoMemory;

impl From<NoMemory> for Errno {
    fn from(_: NoMemory) -> Errno {
        Errno::ENOMEM
    }
}

/// The bytes kept free for the kernel's unchecked allocations, for a heap of `size` bytes:
/// an eighth of it, at least [`RESERVE_MIN`].
pub fn reserve_for(size: usize) -> usize {
    (size / 8).max(RESERVE_MIN)
}

/// Whether `bytes` more can be allocated from a heap of `size` bytes with `used` in use
/// and still leave its reserve free. A heap of size 0 has not been set up: no budget.
pub fn fits(used: usize, size: usize, bytes: usize) -> bool {
    if size == 0 {
        return true;
    }
    let free = size.saturating_sub(used);
    bytes
        .checked_add(reserve_for(size))
        .is_some_and(|need| need <= free)
}

/// Bytes kept free for the kernel's unchecked allocations.
pub fn reserve_bytes() -> usize {
    reserve_for(super::heap::usage().1)
}

/// Checks that `bytes` more may be allocated now (see the module documentation).
pub fn charge(bytes: usize) -> Result<(), NoMemory> {
    let (used, size) = super::heap::usage();
    if fits(used, size, bytes) {
        Ok(())
    } else {
        Err(NoMemory)
    }
}

/// The bytes a growing collection of `cap` elements of `elem` bytes may need to reach room
/// for `len + extra`: a new block of the doubled size (the old one is freed only after).
fn growth_bytes(len: usize, cap: usize, extra: usize, elem: usize) -> Option<usize> {
    let need = len.checked_add(extra)?;
    if need <= cap {
        return Some(0);
    }
    need.max(cap.saturating_mul(2)).checked_mul(elem.max(1))
}

/// Makes room for `extra` more elements in `v`, within the budget.
pub fn try_reserve<T>(v: &mut Vec<T>, extra: usize) -> Result<(), NoMemory> {
    let bytes = growth_bytes(v.len(), v.capacity(), extra, size_of::<T>()).ok_or(NoMemory)?;
    if bytes > 0 {
        charge(bytes)?;
        v.try_reserve(extra).map_err(|_| NoMemory)?;
    }
    Ok(())
}

/// Appends `item` to `v`, within the budget; gives the item back on failure.
pub fn try_push<T>(v: &mut Vec<T>, item: T) -> Result<(), (NoMemory, T)> {
    match try_reserve(v, 1) {
        Ok(()) => {
            v.push(item);
            Ok(())
        }
        Err(e) => Err((e, item)),
    }
}

/// Makes room for `extra` more elements in `q`, within the budget.
pub fn try_reserve_deque<T>(q: &mut VecDeque<T>, extra: usize) -> Result<(), NoMemory> {
    let bytes = growth_bytes(q.len(), q.capacity(), extra, size_of::<T>()).ok_or(NoMemory)?;
    if bytes > 0 {
        charge(bytes)?;
        q.try_reserve(extra).map_err(|_| NoMemory)?;
    }
    Ok(())
}

/// Resizes `v` to `len` elements, filling with `value`, within the budget.
pub fn try_resize<T: Clone>(v: &mut Vec<T>, len: usize, value: T) -> Result<(), NoMemory> {
    try_reserve(v, len.saturating_sub(v.len()))?;
    v.resize(len, value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reserve_stays_free() {
        const MB: usize = 1 << 20;
        assert_eq!(reserve_for(32 * MB), 4 * MB);
        assert_eq!(reserve_for(MB), RESERVE_MIN);
        assert!(fits(0, 32 * MB, 28 * MB));
        assert!(!fits(0, 32 * MB, 28 * MB + 1));
        assert!(fits(20 * MB, 32 * MB, 8 * MB));
        assert!(!fits(20 * MB, 32 * MB, 8 * MB + 1));
        assert!(!fits(31 * MB, 32 * MB, 1));
        assert!(!fits(40 * MB, 32 * MB, 0));
        assert!(!fits(0, 32 * MB, usize::MAX));
        // No heap yet (host tests): no budget.
        assert!(fits(0, 0, usize::MAX));
    }

    #[test]
    fn growth_counts_the_new_block() {
        assert_eq!(growth_bytes(3, 4, 1, 8), Some(0));
        assert_eq!(growth_bytes(4, 4, 1, 8), Some(64));
        assert_eq!(growth_bytes(0, 0, 100, 1), Some(100));
        assert_eq!(growth_bytes(usize::MAX, 0, 1, 1), None);
        assert_eq!(growth_bytes(0, 0, usize::MAX, 16), None);
    }

    #[test]
    fn helpers_grow_collections_without_a_heap_budget_on_the_host() {
        let mut v: Vec<u32> = Vec::new();
        try_push(&mut v, 7).unwrap();
        try_resize(&mut v, 4, 0).unwrap();
        assert_eq!(v, [7, 0, 0, 0]);
        let mut q: VecDeque<u8> = VecDeque::new();
        try_reserve_deque(&mut q, 100).unwrap();
        assert!(q.capacity() >= 100);
        // An impossible request fails instead of aborting.
        let mut huge: Vec<u64> = Vec::new();
        assert_eq!(try_reserve(&mut huge, usize::MAX / 4), Err(NoMemory));
    }
}

//! The memory allocator behind `alloc` (`Vec`, `String`, `Box`): size classes carved from
//! chunks of memory the kernel gives through `brk` (or `mmap` when `brk` cannot grow), and
//! large blocks mapped and unmapped one by one with `mmap`/`munmap`.
//!
//! - Small requests (size and alignment up to [`MAX_SMALL`] bytes) are rounded up to a power
//!   of two from [`MIN_BLOCK`] and served from that class's free list, or carved from the
//!   current chunk. Freed blocks go back on their class's list; chunks are never returned.
//! - Large requests are whole pages of their own: memory the kernel maps lazily, so a
//!   reserved but untouched `Vec::with_capacity(1 << 30)` costs no RAM.
//!
//! [`Heap`] is the pure bookkeeping over a [`PageSource`]; [`GuestAlloc`] wraps it with a
//! lock for `#[global_allocator]` (installed by the `global-allocator` feature), using
//! [`OsPages`]. Host tests drive [`Heap`] with a fake page source.

use core::alloc::{GlobalAlloc, Layout};
use core::cell::UnsafeCell;
use core::ptr;
use core::sync::atomic::{AtomicBool, Ordering};

use crate::syscall;

/// Page size of x86-64.
pub const PAGE: usize = 4096;
/// Smallest block: room for the free-list link and 16-byte alignment.
pub const MIN_BLOCK: usize = 16;
/// Largest block served from a size class; anything larger is mapped on its own.
pub const MAX_SMALL: usize = 2048;
/// Memory asked of the page source at a time for small blocks.
pub const CHUNK: usize = 64 * 1024;
/// Number of size classes: 16, 32, ... 2048.
const CLASSES: usize = (MAX_SMALL / MIN_BLOCK).trailing_zeros() as usize + 1;

/// Where the heap gets memory from.
pub trait PageSource {
    /// `len` bytes (a multiple of [`PAGE`]) of page-aligned memory for small-block chunks,
    /// kept for the life of the process; `None` if there is no more.
    fn grow(&mut self, len: usize) -> Option<usize>;
    /// `len` bytes (a multiple of [`PAGE`]) of page-aligned memory of their own, for one
    /// large block; `None` if there is no more.
    fn map(&mut self, len: usize) -> Option<usize>;
    /// Gives back `addr..addr + len`, which [`map`](PageSource::map) returned (or a
    /// page-aligned part of it).
    ///
    /// # Safety
    /// Nothing may use the range afterwards.
    unsafe fn unmap(&mut self, addr: usize, len: usize);
}

/// The allocator's state over a page source.
pub struct Heap<S> {
    source: S,
    /// Free blocks of each class, linked through their first word (0 = empty).
    free: [usize; CLASSES],
    /// Unused part of the current chunk.
    cursor: usize,
    chunk_end: usize,
}

/// Rounds `value` up to a multiple of `align` (a power of two); `None` on overflow.
fn align_up(value: usize, align: usize) -> Option<usize> {
    Some(value.checked_add(align - 1)? & !(align - 1))
}

/// The size class (index) of `layout`, or `None` if it is a large block.
fn class_of(layout: &Layout) -> Option<usize> {
    let size = layout.size().max(layout.align()).max(MIN_BLOCK);
    if size > MAX_SMALL {
        return None;
    }
    let block = size.next_power_of_two();
    Some((block / MIN_BLOCK).trailing_zeros() as usize)
}

/// Block size of class `class`.
const fn class_size(class: usize) -> usize {
    MIN_BLOCK << class
}

impl<S: PageSource> Heap<S> {
    /// An empty heap over `source`.
    pub const fn new(source: S) -> Heap<S> {
        Heap {
            source,
            free: [0; CLASSES],
            cursor: 0,
            chunk_end: 0,
        }
    }

    /// The page source, for tests.
    pub fn source(&self) -> &S {
        &self.source
    }

    /// A block for `layout`, or null if memory ran out.
    pub fn alloc(&mut self, layout: Layout) -> *mut u8 {
        match class_of(&layout) {
            Some(class) => self.alloc_small(class),
            None => self.alloc_large(layout),
        }
    }

    /// Frees a block [`alloc`](Heap::alloc) returned for the same `layout`.
    ///
    /// # Safety
    /// `block` must come from this heap's `alloc` with `layout` and not be freed yet.
    pub unsafe fn dealloc(&mut self, block: *mut u8, layout: Layout) {
        match class_of(&layout) {
            Some(class) => {
                // SAFETY: the block is ours, free and at least MIN_BLOCK bytes, aligned to
                // its size: its first word can hold the link.
                unsafe { block.cast::<usize>().write(self.free[class]) };
                self.free[class] = block as usize;
            }
            None => {
                let len = large_len(&layout).unwrap_or(0);
                // SAFETY: the caller hands back a large block, which has its pages to itself.
                unsafe { self.source.unmap(block as usize, len) };
            }
        }
    }

    fn alloc_small(&mut self, class: usize) -> *mut u8 {
        let head = self.free[class];
        if head != 0 {
            // SAFETY: `head` is a free block of this class; its first word is the link
            // `dealloc` wrote.
            self.free[class] = unsafe { (head as *const usize).read() };
            return head as *mut u8;
        }
        let size = class_size(class);
        let mut start = align_up(self.cursor, size).unwrap_or(usize::MAX);
        if self.cursor == 0 || start > self.chunk_end || self.chunk_end - start < size {
            // The rest of the chunk is too small: keep it as free blocks of smaller classes
            // rather than waste it, then start a new chunk.
            self.retire_chunk();
            let Some(chunk) = self.source.grow(CHUNK) else {
                return ptr::null_mut();
            };
            self.cursor = chunk;
            self.chunk_end = chunk + CHUNK;
            start = chunk;
        }
        self.cursor = start + size;
        start as *mut u8
    }

    /// Puts what is left of the current chunk on the free lists, largest blocks first.
    fn retire_chunk(&mut self) {
        let mut at = self.cursor;
        while self.cursor != 0 && self.chunk_end - at >= MIN_BLOCK {
            // The largest class that is aligned at `at` and fits before the end.
            let class = (0..CLASSES).rev().find(|&c| {
                at.is_multiple_of(class_size(c)) && self.chunk_end - at >= class_size(c)
            });
            let Some(class) = class else { break };
            // SAFETY: `at..at + size` is unused chunk memory owned by the heap, aligned to
            // the block size, so its first word can hold the link.
            unsafe { (at as *mut usize).write(self.free[class]) };
            self.free[class] = at;
            at += class_size(class);
        }
        self.cursor = 0;
        self.chunk_end = 0;
    }

    fn alloc_large(&mut self, layout: Layout) -> *mut u8 {
        let Some(len) = large_len(&layout) else {
            return ptr::null_mut();
        };
        if layout.align() <= PAGE {
            return self
                .source
                .map(len)
                .map_or(ptr::null_mut(), |a| a as *mut u8);
        }
        // Over-aligned: map enough to find an aligned start, give back the rest.
        let Some(padded) = len.checked_add(layout.align()) else {
            return ptr::null_mut();
        };
        let Some(base) = self.source.map(padded) else {
            return ptr::null_mut();
        };
        let Some(start) = align_up(base, layout.align()) else {
            return ptr::null_mut();
        };
        // SAFETY: the head and tail around `start..start + len` are ours and unused.
        unsafe {
            if start > base {
                self.source.unmap(base, start - base);
            }
            let end = start + len;
            if base + padded > end {
                self.source.unmap(end, base + padded - end);
            }
        }
        start as *mut u8
    }
}

/// Bytes mapped for a large block: its size in whole pages.
fn large_len(layout: &Layout) -> Option<usize> {
    align_up(layout.size().max(1), PAGE)
}

/// Memory from the kernel: chunks from `brk` while it grows, else `mmap`; large blocks
/// from `mmap`.
#[derive(Debug, Default)]
pub struct OsPages {
    /// The program break as last set (0 before the first query; `usize::MAX` once `brk`
    /// refused to grow).
    brk_end: usize,
}

impl OsPages {
    /// A source that has not asked the kernel for anything yet.
    pub const fn new() -> OsPages {
        OsPages { brk_end: 0 }
    }

    fn grow_brk(&mut self, len: usize) -> Option<usize> {
        if self.brk_end == usize::MAX {
            return None;
        }
        if self.brk_end == 0 {
            // SAFETY: querying the break changes nothing.
            match unsafe { syscall::brk(0) } {
                Ok(end) if end != 0 => self.brk_end = end,
                _ => {
                    self.brk_end = usize::MAX;
                    return None;
                }
            }
        }
        let grown = (|| {
            let start = align_up(self.brk_end, PAGE)?;
            let end = start.checked_add(len)?;
            // SAFETY: growing the break only adds memory above everything in use.
            let got = unsafe { syscall::brk(end) }.ok()?;
            (got >= end).then_some((start, got))
        })();
        match grown {
            Some((start, got)) => {
                self.brk_end = got;
                Some(start)
            }
            None => {
                // Refused once, refused for good: use mmap from now on.
                self.brk_end = usize::MAX;
                None
            }
        }
    }
}

impl PageSource for OsPages {
    fn grow(&mut self, len: usize) -> Option<usize> {
        self.grow_brk(len).or_else(|| self.map(len))
    }

    fn map(&mut self, len: usize) -> Option<usize> {
        syscall::mmap_anonymous(len).ok()
    }

    unsafe fn unmap(&mut self, addr: usize, len: usize) {
        // SAFETY: the caller guarantees the range is unused. A failed munmap only leaks.
        let _ = unsafe { syscall::munmap(addr, len) };
    }
}

/// A [`Heap`] behind a spin lock, usable as `#[global_allocator]`.
pub struct GuestAlloc<S = OsPages> {
    locked: AtomicBool,
    heap: UnsafeCell<Heap<S>>,
}

// SAFETY: every access to `heap` happens with `locked` held (see `with_heap`).
unsafe impl<S: Send> Sync for GuestAlloc<S> {}

impl GuestAlloc<OsPages> {
    /// The allocator over the kernel's memory.
    pub const fn new() -> Self {
        GuestAlloc::with_source(OsPages::new())
    }
}

impl Default for GuestAlloc<OsPages> {
    fn default() -> Self {
        GuestAlloc::new()
    }
}

impl<S: PageSource> GuestAlloc<S> {
    /// The allocator over `source`.
    pub const fn with_source(source: S) -> Self {
        GuestAlloc {
            locked: AtomicBool::new(false),
            heap: UnsafeCell::new(Heap::new(source)),
        }
    }

    fn with_heap<R>(&self, f: impl FnOnce(&mut Heap<S>) -> R) -> R {
        while self
            .locked
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            core::hint::spin_loop();
        }
        // SAFETY: the lock is held, so this is the only reference to the heap.
        let result = f(unsafe { &mut *self.heap.get() });
        self.locked.store(false, Ordering::Release);
        result
    }
}

// SAFETY: `Heap` hands out blocks of at least the layout's size and alignment that no other
// live allocation overlaps, and takes them back only through `dealloc` with their layout.
unsafe impl<S: PageSource> GlobalAlloc for GuestAlloc<S> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.with_heap(|heap| heap.alloc(layout))
    }

    unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
        // SAFETY: GlobalAlloc's contract: `block` came from `alloc` with `layout`.
        self.with_heap(|heap| unsafe { heap.dealloc(block, layout) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::alloc::{alloc, dealloc};
    use std::collections::BTreeMap;

    /// Pages from the host allocator, with a record of what is mapped.
    #[derive(Default)]
    struct FakePages {
        grown: Vec<usize>,
        mapped: BTreeMap<usize, usize>,
        unmapped: Vec<(usize, usize)>,
        limit: Option<usize>,
    }

    impl FakePages {
        fn take(&mut self, len: usize) -> Option<usize> {
            if let Some(limit) = self.limit.as_mut() {
                *limit = limit.checked_sub(len)?;
            }
            let layout = Layout::from_size_align(len, PAGE).unwrap();
            // SAFETY: non-zero size; leaked on purpose (tests are short).
            let ptr = unsafe { alloc(layout) };
            assert!(!ptr.is_null());
            Some(ptr as usize)
        }
    }

    impl PageSource for FakePages {
        fn grow(&mut self, len: usize) -> Option<usize> {
            let at = self.take(len)?;
            self.grown.push(at);
            Some(at)
        }
        fn map(&mut self, len: usize) -> Option<usize> {
            let at = self.take(len)?;
            self.mapped.insert(at, len);
            Some(at)
        }
        unsafe fn unmap(&mut self, addr: usize, len: usize) {
            self.unmapped.push((addr, len));
            if self.mapped.get(&addr) == Some(&len) {
                self.mapped.remove(&addr);
                // SAFETY: the fake mapped exactly this block with this layout.
                unsafe { dealloc(addr as *mut u8, Layout::from_size_align(len, PAGE).unwrap()) };
            }
        }
    }

    fn layout(size: usize, align: usize) -> Layout {
        Layout::from_size_align(size, align).unwrap()
    }

    #[test]
    fn classes() {
        assert_eq!(CLASSES, 8);
        assert_eq!(class_of(&layout(1, 1)), Some(0));
        assert_eq!(class_of(&layout(16, 8)), Some(0));
        assert_eq!(class_of(&layout(17, 1)), Some(1));
        assert_eq!(class_of(&layout(8, 64)), Some(2));
        assert_eq!(class_of(&layout(2048, 8)), Some(7));
        assert_eq!(class_of(&layout(2049, 8)), None);
        assert_eq!(class_of(&layout(8, 4096)), None);
        assert_eq!(class_size(7), 2048);
    }

    #[test]
    fn small_blocks_are_aligned_distinct_and_reused() {
        let mut heap = Heap::new(FakePages::default());
        let mut blocks = Vec::new();
        for i in 0..2000 {
            let l = layout(1 + i % 300, 1 << (i % 5));
            let p = heap.alloc(l);
            assert!(!p.is_null());
            assert_eq!(p as usize % l.align(), 0);
            // SAFETY: the block is at least `l.size()` bytes and ours.
            unsafe { p.write_bytes((i % 251) as u8, l.size()) };
            blocks.push((p, l, (i % 251) as u8));
        }
        for &(p, l, fill) in &blocks {
            // SAFETY: as above; nothing else wrote to it.
            let bytes = unsafe { std::slice::from_raw_parts(p, l.size()) };
            assert!(bytes.iter().all(|&b| b == fill), "a block was overwritten");
        }
        let chunks = heap.source().grown.len();
        assert!(chunks >= 2, "{chunks} chunks");
        let (p, l, _) = blocks[10];
        // SAFETY: allocated above with `l`, freed once.
        unsafe { heap.dealloc(p, l) };
        assert_eq!(heap.alloc(l), p, "a freed block is reused first");
        assert!(heap.source().mapped.is_empty());
    }

    #[test]
    fn chunk_tails_are_not_wasted() {
        let mut heap = Heap::new(FakePages::default());
        // Fill all but 2 KiB of a chunk with 2 KiB blocks, take 16 bytes of the rest, then
        // ask for 2 KiB more.
        let l = layout(2048, 8);
        for _ in 0..CHUNK / 2048 - 1 {
            assert!(!heap.alloc(l).is_null());
        }
        let small = heap.alloc(layout(16, 8));
        assert!(!small.is_null());
        // The 2032 bytes left are too few for 2 KiB: a new chunk comes, and the tail of the
        // old one serves the smaller classes.
        let big = heap.alloc(l);
        assert_eq!(heap.source().grown.len(), 2);
        assert_eq!(big as usize, heap.source().grown[1]);
        let tail = heap.alloc(layout(1024, 8));
        assert!(tail as usize >= heap.source().grown[0]);
        assert!((tail as usize) < heap.source().grown[0] + CHUNK);
    }

    #[test]
    fn large_blocks_are_mapped_and_unmapped_alone() {
        let mut heap = Heap::new(FakePages::default());
        let l = layout(100_000, 8);
        let p = heap.alloc(l);
        assert!(!p.is_null());
        assert_eq!(p as usize % PAGE, 0);
        assert_eq!(heap.source().mapped.get(&(p as usize)), Some(&(25 * PAGE)));
        // SAFETY: allocated above with `l`.
        unsafe { heap.dealloc(p, l) };
        assert!(heap.source().mapped.is_empty());
        assert_eq!(heap.source().unmapped, [(p as usize, 25 * PAGE)]);
    }

    #[test]
    fn over_aligned_large_blocks_trim_their_padding() {
        let mut heap = Heap::new(FakePages::default());
        let l = layout(PAGE, 4 * PAGE);
        let p = heap.alloc(l) as usize;
        assert_ne!(p, 0);
        assert_eq!(p % (4 * PAGE), 0);
        let (&base, &len) = heap.source().mapped.iter().next().unwrap();
        assert_eq!(len, 5 * PAGE);
        let trimmed: usize = heap.source().unmapped.iter().map(|&(_, n)| n).sum();
        assert_eq!(trimmed, 4 * PAGE);
        assert!(p >= base && p + PAGE <= base + len);
    }

    #[test]
    fn running_out_gives_null_not_a_crash() {
        let mut heap = Heap::new(FakePages {
            limit: Some(CHUNK),
            ..FakePages::default()
        });
        assert!(!heap.alloc(layout(64, 8)).is_null());
        assert!(heap.alloc(layout(1 << 20, 8)).is_null());
        let mut count = 0;
        while !heap.alloc(layout(2048, 8)).is_null() {
            count += 1;
        }
        assert!(count < CHUNK / 2048);
        assert!(heap.alloc(layout(isize::MAX as usize - PAGE, 8)).is_null());
    }

    #[test]
    fn global_alloc_wrapper_works() {
        let a = GuestAlloc::with_source(FakePages::default());
        let l = layout(40, 8);
        // SAFETY: GlobalAlloc's contract, followed: non-zero size, freed with its layout.
        unsafe {
            let p = a.alloc(l);
            assert!(!p.is_null());
            a.dealloc(p, l);
            assert_eq!(a.alloc(l), p);
        }
    }
}

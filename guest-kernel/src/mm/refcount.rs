//! Frame reference counts: how many more owners than one each frame of RAM has.
//!
//! One 16-bit counter per 4 KiB frame of guest RAM (0.05% of it), allocated once at boot.
//! A counter holds the number of owners *beyond the first*, so the zeroed array is right
//! for every frame from the start and a frame that was never shared costs nothing: every
//! allocation path (demand paging, page tables, the heap) leaves it at 0. Owners are page
//! table entries (a 4 KiB entry owns its frame; a 2 MiB entry owns each of its 512 frames)
//! and shared-memory objects. Sharing adds one ([`FrameCounts::share`]); giving a frame
//! up ([`FrameCounts::release`]) takes one away, or says that the caller was the last
//! owner and must free it. So a frame is freed exactly once, by whoever drops it last,
//! with no lock: the counters are atomic, ready for several CPUs.
//!
//! A private page whose frame is shared is mapped read-only and copied on the first write
//! (see `cow`); a page of `MAP_SHARED` memory shares its frame writable.

use core::sync::atomic::{AtomicU16, Ordering};

use super::PAGE_SIZE;

/// Why a frame could not get one more owner.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShareError {
    /// The frame has no counter (none were allocated, or it lies outside RAM).
    NoCounter,
    /// The counter is at its maximum ([`u16::MAX`] extra owners).
    Overflow,
}

/// The counters of frames `0..counts.len()`.
pub struct FrameCounts<'a> {
    counts: &'a [AtomicU16],
}

impl<'a> FrameCounts<'a> {
    /// Counters over `counts` (all zero: no frame shared).
    pub const fn new(counts: &'a [AtomicU16]) -> Self {
        FrameCounts { counts }
    }

    fn counter(&self, pa: u64) -> Option<&AtomicU16> {
        self.counts.get(usize::try_from(pa / PAGE_SIZE).ok()?)
    }

    /// Gives frame `pa` one more owner.
    pub fn share(&self, pa: u64) -> Result<(), ShareError> {
        self.counter(pa)
            .ok_or(ShareError::NoCounter)?
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |c| c.checked_add(1))
            .map(|_| ())
            .map_err(|_| ShareError::Overflow)
    }

    /// Gives each of the `count` frames from `pa` one more owner: all of them, or (on
    /// error) none.
    pub fn share_range(&self, pa: u64, count: u64) -> Result<(), ShareError> {
        for i in 0..count {
            if let Err(e) = self.share(pa + i * PAGE_SIZE) {
                for j in 0..i {
                    // Never the last owner: this takes back the one just added.
                    let _ = self.release(pa + j * PAGE_SIZE);
                }
                return Err(e);
            }
        }
        Ok(())
    }

    /// True if frame `pa` has more than one owner.
    pub fn is_shared(&self, pa: u64) -> bool {
        self.counter(pa)
            .is_some_and(|c| c.load(Ordering::Acquire) != 0)
    }

    /// True if any of the `count` frames from `pa` has more than one owner.
    pub fn any_shared(&self, pa: u64, count: u64) -> bool {
        (0..count).any(|i| self.is_shared(pa + i * PAGE_SIZE))
    }

    /// One owner gives frame `pa` up: true if it was the last, which must free it.
    #[must_use]
    pub fn release(&self, pa: u64) -> bool {
        match self.counter(pa) {
            Some(c) => c
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |c| c.checked_sub(1))
                .is_err(),
            None => true,
        }
    }

    /// The number of owners of frame `pa` beyond the first (for tests and reports).
    pub fn extra_owners(&self, pa: u64) -> u16 {
        self.counter(pa).map_or(0, |c| c.load(Ordering::Acquire))
    }
}

/// Frames that a counter array for `ram_end` bytes of RAM takes, and its size in bytes.
pub const fn array_size(ram_end: u64) -> (u64, u64) {
    let bytes = ram_end.div_ceil(PAGE_SIZE) * core::mem::size_of::<AtomicU16>() as u64;
    (bytes.div_ceil(PAGE_SIZE), bytes)
}

mod global {
    use super::*;
    use crate::mm::{frame, phys_to_virt};

    static COUNTS: spin::Once<FrameCounts<'static>> = spin::Once::new();

    /// Allocates the counters for RAM up to `ram_end` (once, at boot, after the direct
    /// map covers all RAM). False if no room: nothing can be shared then, so fork and
    /// shared memory fail with ENOMEM, but the kernel runs.
    pub fn init(ram_end: u64) -> bool {
        let (frames, bytes) = array_size(ram_end);
        let Some(pa) = frame::FRAMES.lock().alloc_contiguous(frames) else {
            return false;
        };
        let base = phys_to_virt(pa) as *mut u8;
        // SAFETY: the frames were just taken for the counters alone, forever, and are
        // direct-mapped; zeroed bytes are valid `AtomicU16`s (0: no extra owner), and
        // `bytes` / 2 counters fit in `frames` pages.
        let counts = unsafe {
            core::ptr::write_bytes(base, 0, (frames * PAGE_SIZE) as usize);
            core::slice::from_raw_parts(base as *const AtomicU16, (bytes / 2) as usize)
        };
        COUNTS.call_once(|| FrameCounts::new(counts));
        true
    }

    fn counts() -> &'static FrameCounts<'static> {
        static NONE: FrameCounts<'static> = FrameCounts::new(&[]);
        COUNTS.get().unwrap_or(&NONE)
    }

    /// Gives frame `pa` one more owner.
    pub fn share(pa: u64) -> Result<(), ShareError> {
        counts().share(pa)
    }

    /// Gives each frame of the 2 MiB block at `pa` one more owner (all or none).
    pub fn share_block(pa: u64) -> Result<(), ShareError> {
        counts().share_range(pa, frame::BLOCK_FRAMES)
    }

    /// True if frame `pa` has more than one owner.
    pub fn is_shared(pa: u64) -> bool {
        counts().is_shared(pa)
    }

    /// True if any frame of the 2 MiB block at `pa` has more than one owner.
    pub fn block_shared(pa: u64) -> bool {
        counts().any_shared(pa, frame::BLOCK_FRAMES)
    }

    /// The number of owners of frame `pa` beyond the first.
    pub fn extra_owners(pa: u64) -> u16 {
        counts().extra_owners(pa)
    }

    /// One owner gives frame `pa` up; the last one frees it.
    pub fn release(pa: u64) {
        if counts().release(pa) {
            frame::free(pa);
        }
    }

    /// One owner gives each frame of the 2 MiB block at `pa` up; the frames nobody else
    /// owns are freed (the whole block at once when that is all of them).
    pub fn release_block(pa: u64) {
        let counts = counts();
        if !counts.any_shared(pa, frame::BLOCK_FRAMES) {
            // No other owner: none can appear, since only an owner can share a frame.
            frame::free_block(pa);
            return;
        }
        for i in 0..frame::BLOCK_FRAMES {
            release(pa + i * PAGE_SIZE);
        }
    }
}

pub use global::*;

#[cfg(test)]
mod tests {
    use super::*;

    fn counters(n: usize) -> Vec<AtomicU16> {
        (0..n).map(|_| AtomicU16::new(0)).collect()
    }

    const P: u64 = PAGE_SIZE;

    #[test]
    fn a_frame_is_freed_by_its_last_owner_only() {
        let array = counters(8);
        let c = FrameCounts::new(&array);
        assert!(!c.is_shared(3 * P));
        assert!(c.release(3 * P), "a lone owner frees");
        c.share(3 * P).unwrap();
        c.share(3 * P).unwrap();
        assert!(c.is_shared(3 * P));
        assert_eq!(c.extra_owners(3 * P), 2);
        assert!(!c.release(3 * P));
        assert!(!c.release(3 * P));
        assert!(!c.is_shared(3 * P), "one owner left");
        assert!(c.release(3 * P));
        assert_eq!(c.extra_owners(3 * P), 0, "never below zero");
        assert!(
            !c.is_shared(2 * P) && !c.is_shared(4 * P),
            "neighbours untouched"
        );
    }

    #[test]
    fn frames_outside_the_array_cannot_be_shared() {
        let array = counters(4);
        let c = FrameCounts::new(&array);
        assert_eq!(c.share(4 * P), Err(ShareError::NoCounter));
        assert_eq!(c.share(u64::MAX & !(P - 1)), Err(ShareError::NoCounter));
        assert!(!c.is_shared(4 * P));
        assert!(c.release(4 * P), "an uncounted frame has one owner");
        let none = FrameCounts::new(&[]);
        assert_eq!(none.share(0), Err(ShareError::NoCounter));
    }

    #[test]
    fn overflow_is_an_error_not_a_wrap() {
        let array = counters(2);
        let c = FrameCounts::new(&array);
        array[1].store(u16::MAX - 1, Ordering::Relaxed);
        assert_eq!(c.share(P), Ok(()));
        assert_eq!(c.share(P), Err(ShareError::Overflow));
        assert_eq!(c.extra_owners(P), u16::MAX);
    }

    #[test]
    fn range_sharing_is_all_or_nothing() {
        let array = counters(16);
        let c = FrameCounts::new(&array);
        array[6].store(u16::MAX, Ordering::Relaxed);
        assert_eq!(c.share_range(2 * P, 8), Err(ShareError::Overflow));
        assert!((2..6).all(|i| c.extra_owners(i * P) == 0), "undone");
        assert_eq!(c.share_range(8 * P, 8), Ok(()));
        assert!(c.any_shared(0, 16) && !c.any_shared(0, 6));
        assert!((8..16).all(|i| c.extra_owners(i * P) == 1));
        assert_eq!(c.share_range(12 * P, 8), Err(ShareError::NoCounter));
        assert!((12..16).all(|i| c.extra_owners(i * P) == 1), "undone");
    }

    #[test]
    fn array_size_covers_ram() {
        // 3 GiB: 786,432 frames, 1.5 MiB of counters.
        assert_eq!(array_size(3 << 30), (384, 3 << 19));
        assert_eq!(array_size(P), (1, 2));
        assert_eq!(array_size(P + 1), (1, 4));
        assert_eq!(array_size(0), (0, 0));
    }
}

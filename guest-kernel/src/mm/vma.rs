//! Virtual memory areas: the sorted, non-overlapping set of ranges a process has mapped,
//! each with its protection, flags and backing (anonymous memory or a file).
//!
//! This is pure bookkeeping: it never touches page tables or frames, so host unit tests
//! cover it. [`super::user`] keeps the page tables in step with it. Ranges are half-open
//! `[start, end)` and page aligned; callers check alignment before calling in.

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;

use super::shared::SharedMemory;
use super::source::MapSource;
use super::PAGE_SIZE;

/// Pages may be read.
pub const PROT_READ: u32 = 1;
/// Pages may be written.
pub const PROT_WRITE: u32 = 2;
/// Pages may be executed.
pub const PROT_EXEC: u32 = 4;
/// No access (`PROT_NONE`).
pub const PROT_NONE: u32 = 0;

/// Most areas a process may have, as Linux's default `vm.max_map_count`.
pub const MAX_MAP_COUNT: usize = 65_530;

/// What kind of access a page fault or a kernel copy makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// A load.
    Read,
    /// A store.
    Write,
    /// An instruction fetch.
    Exec,
}

/// Attributes of an area besides its protection and backing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VmaFlags {
    /// `MAP_SHARED`: writes are visible to every mapping of the same object.
    pub shared: bool,
    /// A stack that grows down on faults below it (`MAP_GROWSDOWN`, the main stack).
    pub growsdown: bool,
    /// `MAP_NORESERVE` (recorded; astra never reserves memory ahead of use).
    pub noreserve: bool,
    /// `MADV_NOHUGEPAGE`: never back with 2 MiB pages.
    pub no_huge_pages: bool,
}

/// What fills an area's pages on first touch.
#[derive(Clone)]
pub enum Backing {
    /// Zero-filled memory, private to the address space (copied on write after fork).
    Anonymous,
    /// Zero-filled memory that every mapping of `object` shares (`MAP_SHARED |
    /// MAP_ANONYMOUS`, also across fork), starting at `offset` for the area's first page.
    Shared {
        /// The pages.
        object: Arc<SharedMemory>,
        /// Offset of the area's start in the object (page aligned).
        offset: u64,
    },
    /// The bytes of a file, starting at `offset` for the area's first page.
    File {
        /// The file.
        source: Arc<dyn MapSource>,
        /// File offset of the area's start (page aligned).
        offset: u64,
    },
}

impl fmt::Debug for Backing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Backing::Anonymous => f.write_str("Anonymous"),
            Backing::Shared { offset, .. } => write!(f, "Shared(offset {offset:#x})"),
            Backing::File { offset, .. } => write!(f, "File(offset {offset:#x})"),
        }
    }
}

impl Backing {
    /// Same object, continuing `delta` bytes further on (for splitting and extending).
    pub fn advanced(&self, delta: u64) -> Backing {
        match self {
            Backing::Anonymous => Backing::Anonymous,
            Backing::Shared { object, offset } => Backing::Shared {
                object: object.clone(),
                offset: offset.wrapping_add(delta),
            },
            Backing::File { source, offset } => Backing::File {
                source: source.clone(),
                offset: offset.wrapping_add(delta),
            },
        }
    }

    /// True if `next` continues this backing `len` bytes further on.
    fn continues_into(&self, len: u64, next: &Backing) -> bool {
        match (self, next) {
            (Backing::Anonymous, Backing::Anonymous) => true,
            (
                Backing::File { source, offset },
                Backing::File {
                    source: next_source,
                    offset: next_offset,
                },
            ) => Arc::ptr_eq(source, next_source) && offset.wrapping_add(len) == *next_offset,
            (
                Backing::Shared { object, offset },
                Backing::Shared {
                    object: next_object,
                    offset: next_offset,
                },
            ) => Arc::ptr_eq(object, next_object) && offset.wrapping_add(len) == *next_offset,
            _ => false,
        }
    }

    /// True for anonymous memory, private or shared.
    pub fn is_anonymous(&self) -> bool {
        matches!(self, Backing::Anonymous | Backing::Shared { .. })
    }
}

/// One mapped range.
#[derive(Clone, Debug)]
pub struct Vma {
    /// First address (page aligned).
    pub start: u64,
    /// End address, exclusive (page aligned).
    pub end: u64,
    /// `PROT_*` bits.
    pub prot: u32,
    /// Shared, grows-down, no-reserve.
    pub flags: VmaFlags,
    /// What fills its pages.
    pub backing: Backing,
}

impl Vma {
    /// An anonymous area.
    pub fn anonymous(start: u64, end: u64, prot: u32, flags: VmaFlags) -> Vma {
        Vma {
            start,
            end,
            prot,
            flags,
            backing: Backing::Anonymous,
        }
    }

    /// Length in bytes.
    pub fn len(&self) -> u64 {
        self.end - self.start
    }

    /// True if the area is empty (never stored in a set).
    pub fn is_empty(&self) -> bool {
        self.end <= self.start
    }

    /// True if `addr` lies inside.
    pub fn contains(&self, addr: u64) -> bool {
        (self.start..self.end).contains(&addr)
    }

    /// True if the protection allows `access` (x86 cannot deny reads of a mapped page, so
    /// any protection but `PROT_NONE` reads).
    pub fn allows(&self, access: Access) -> bool {
        match access {
            Access::Read => self.prot & (PROT_READ | PROT_WRITE | PROT_EXEC) != 0,
            Access::Write => self.prot & PROT_WRITE != 0,
            Access::Exec => self.prot & PROT_EXEC != 0,
        }
    }

    /// The file offset that backs `addr`, for a file area.
    pub fn file_offset(&self, addr: u64) -> Option<u64> {
        match &self.backing {
            Backing::File { offset, .. } => offset.checked_add(addr - self.start),
            Backing::Anonymous | Backing::Shared { .. } => None,
        }
    }

    /// The part of this area inside `[start, end)` (which must intersect it).
    pub fn slice(&self, start: u64, end: u64) -> Vma {
        let start = start.max(self.start);
        let end = end.min(self.end);
        Vma {
            start,
            end,
            prot: self.prot,
            flags: self.flags,
            backing: self.backing.advanced(start - self.start),
        }
    }

    /// True if `next` starts where this ends and could be one area with it.
    fn merges_with(&self, next: &Vma) -> bool {
        self.end == next.start
            && self.prot == next.prot
            && self.flags == next.flags
            && self.backing.continues_into(self.len(), &next.backing)
    }
}

/// Why an area could not be added.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VmaError {
    /// The range overlaps an existing area.
    Overlap,
    /// The range is empty or not page aligned.
    BadRange,
    /// The set would exceed [`MAX_MAP_COUNT`].
    TooMany,
    /// No kernel memory for the bookkeeping.
    NoMemory,
}

/// The areas of one address space, sorted by address, never overlapping, adjacent
/// compatible areas merged.
#[derive(Clone, Debug, Default)]
pub struct VmaSet {
    vmas: Vec<Vma>,
}

fn aligned(addr: u64) -> bool {
    addr.is_multiple_of(PAGE_SIZE)
}

impl VmaSet {
    /// An empty set.
    pub const fn new() -> VmaSet {
        VmaSet { vmas: Vec::new() }
    }

    /// A copy of the set (fork), or [`VmaError::NoMemory`].
    pub fn try_clone(&self) -> Result<VmaSet, VmaError> {
        let mut vmas = Vec::new();
        vmas.try_reserve_exact(self.vmas.len())
            .map_err(|_| VmaError::NoMemory)?;
        vmas.extend(self.vmas.iter().cloned());
        Ok(VmaSet { vmas })
    }

    /// Number of areas.
    pub fn len(&self) -> usize {
        self.vmas.len()
    }

    /// True if nothing is mapped.
    pub fn is_empty(&self) -> bool {
        self.vmas.is_empty()
    }

    /// The areas in address order.
    pub fn iter(&self) -> core::slice::Iter<'_, Vma> {
        self.vmas.iter()
    }

    /// Index of the first area ending after `addr`.
    fn first_ending_after(&self, addr: u64) -> usize {
        self.vmas.partition_point(|v| v.end <= addr)
    }

    /// The area containing `addr`.
    pub fn find(&self, addr: u64) -> Option<&Vma> {
        self.vmas
            .get(self.first_ending_after(addr))
            .filter(|v| v.start <= addr)
    }

    /// The first area that ends after `addr` (contains it or lies above it).
    pub fn next_at_or_after(&self, addr: u64) -> Option<&Vma> {
        self.vmas.get(self.first_ending_after(addr))
    }

    /// The last area that ends at or below `addr`.
    pub fn prev_before(&self, addr: u64) -> Option<&Vma> {
        let i = self.vmas.partition_point(|v| v.end <= addr);
        i.checked_sub(1).and_then(|i| self.vmas.get(i))
    }

    /// The areas intersecting `[start, end)`.
    pub fn overlapping(&self, start: u64, end: u64) -> &[Vma] {
        let first = self.first_ending_after(start);
        let last = self.vmas.partition_point(|v| v.start < end);
        self.vmas.get(first..last.max(first)).unwrap_or(&[])
    }

    /// True if no area intersects `[start, end)`.
    pub fn is_free(&self, start: u64, end: u64) -> bool {
        self.overlapping(start, end).is_empty()
    }

    /// True if areas cover every byte of `[start, end)` without a hole.
    pub fn is_covered(&self, start: u64, end: u64) -> bool {
        let mut at = start;
        for v in self.overlapping(start, end) {
            if v.start > at {
                return false;
            }
            at = v.end;
        }
        at >= end
    }

    /// Adds `vma`, whose range must be free; merges it with compatible neighbours.
    pub fn insert(&mut self, vma: Vma) -> Result<(), VmaError> {
        if vma.is_empty() || !aligned(vma.start) || !aligned(vma.end) {
            return Err(VmaError::BadRange);
        }
        if !self.is_free(vma.start, vma.end) {
            return Err(VmaError::Overlap);
        }
        self.reserve(1)?;
        let i = self.first_ending_after(vma.start);
        self.vmas.insert(i, vma);
        self.merge_around(i.saturating_sub(1), i + 2);
        Ok(())
    }

    /// Makes room for `extra` more areas: [`VmaError::TooMany`] past [`MAX_MAP_COUNT`],
    /// [`VmaError::NoMemory`] if the kernel heap cannot grow the table. After `Ok`, that
    /// many insertions cannot fail for lack of memory.
    pub fn reserve(&mut self, extra: usize) -> Result<(), VmaError> {
        if self.vmas.len() + extra > MAX_MAP_COUNT {
            return Err(VmaError::TooMany);
        }
        super::kalloc::try_reserve(&mut self.vmas, extra).map_err(|_| VmaError::NoMemory)
    }

    /// How many more areas removing or changing `[start, end)` creates: one per area
    /// boundary that falls strictly inside an area.
    pub fn splits_needed(&self, start: u64, end: u64) -> usize {
        let over = self.overlapping(start, end);
        let head = over.first().is_some_and(|v| v.start < start);
        let tail = over.last().is_some_and(|v| v.end > end);
        usize::from(head) + usize::from(tail)
    }

    /// Splits the areas straddling `start` and `end` so that both are area boundaries;
    /// returns the index range of the areas inside `[start, end)`.
    fn split_edges(&mut self, start: u64, end: u64) -> core::ops::Range<usize> {
        for at in [start, end] {
            let i = self.first_ending_after(at);
            if let Some(v) = self.vmas.get(i) {
                if v.start < at && at < v.end {
                    let upper = v.slice(at, v.end);
                    self.vmas[i].end = at;
                    self.vmas.insert(i + 1, upper);
                }
            }
        }
        let first = self.first_ending_after(start);
        let last = self.vmas.partition_point(|v| v.start < end);
        first..last.max(first)
    }

    /// Removes every part of `[start, end)` that is mapped; returns how many pieces went.
    /// Fails, changing nothing, if splitting an area would exceed the limits.
    pub fn remove(&mut self, start: u64, end: u64) -> Result<usize, VmaError> {
        if start >= end {
            return Ok(0);
        }
        self.reserve(self.splits_needed(start, end))?;
        let range = self.split_edges(start, end);
        let removed = range.len();
        self.vmas.drain(range);
        Ok(removed)
    }

    /// Applies `f` to every mapped part of `[start, end)`, splitting areas at the edges,
    /// then merges what became compatible. Fails, changing nothing, if splitting an area
    /// would exceed the limits.
    pub fn update(
        &mut self,
        start: u64,
        end: u64,
        mut f: impl FnMut(&mut Vma),
    ) -> Result<(), VmaError> {
        if start >= end {
            return Ok(());
        }
        self.reserve(self.splits_needed(start, end))?;
        let range = self.split_edges(start, end);
        for v in &mut self.vmas[range.clone()] {
            f(v);
        }
        self.merge_around(range.start.saturating_sub(1), range.end + 1);
        Ok(())
    }

    /// Moves the start of the grows-down area that begins at `old_start` down to
    /// `new_start`; false if there is no such area or the range below is not free.
    pub fn extend_down(&mut self, old_start: u64, new_start: u64) -> bool {
        if new_start >= old_start || !aligned(new_start) || !self.is_free(new_start, old_start) {
            return false;
        }
        let i = self.first_ending_after(old_start);
        match self.vmas.get_mut(i) {
            Some(v) if v.start == old_start && matches!(v.backing, Backing::Anonymous) => {
                v.start = new_start;
                self.merge_around(i.saturating_sub(1), i + 1);
                true
            }
            _ => false,
        }
    }

    /// Merges compatible neighbours among the areas at indices `[from, to)`.
    fn merge_around(&mut self, from: usize, to: usize) {
        let mut i = from;
        while i + 1 < to.min(self.vmas.len()) {
            if self.vmas[i].merges_with(&self.vmas[i + 1]) {
                let next = self.vmas.remove(i + 1);
                self.vmas[i].end = next.end;
            } else {
                i += 1;
            }
        }
    }

    /// The highest page-aligned `addr` with `[addr, addr + len)` free and inside
    /// `[low, high)`, leaving `stack_gap` bytes free below every grows-down area.
    pub fn find_free_top_down(&self, len: u64, low: u64, high: u64, stack_gap: u64) -> Option<u64> {
        if len == 0 || !aligned(len) || high <= low {
            return None;
        }
        let high = high & !(PAGE_SIZE - 1);
        // Walk the gaps from the top: between the area below and the area above.
        let mut ceiling = high;
        let mut i = self.vmas.partition_point(|v| v.start < high);
        loop {
            let floor = match i.checked_sub(1).map(|j| &self.vmas[j]) {
                Some(v) => v.end.max(low),
                None => low,
            };
            let above = self.vmas.get(i);
            let mut top = ceiling;
            if let Some(v) = above {
                let limit = if v.flags.growsdown {
                    v.start.saturating_sub(stack_gap)
                } else {
                    v.start
                };
                top = top.min(limit);
            }
            if let Some(addr) = top.checked_sub(len) {
                if addr >= floor {
                    return Some(addr);
                }
            }
            match i.checked_sub(1) {
                Some(j) if self.vmas[j].end > low => {
                    ceiling = self.vmas[j].start;
                    i = j;
                }
                _ => return None,
            }
        }
    }

    /// True if `[start, end)` is free and at least `stack_gap` below any grows-down area.
    pub fn is_free_with_gap(&self, start: u64, end: u64, stack_gap: u64) -> bool {
        if !self.is_free(start, end) {
            return false;
        }
        match self.next_at_or_after(end) {
            Some(v) if v.flags.growsdown => v.start.saturating_sub(end) >= stack_gap,
            _ => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::errno::Errno;

    const P: u64 = PAGE_SIZE;
    const RW: u32 = PROT_READ | PROT_WRITE;

    struct Bytes(Vec<u8>);

    impl MapSource for Bytes {
        fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize, Errno> {
            let start = (offset as usize).min(self.0.len());
            let n = (self.0.len() - start).min(buf.len());
            buf[..n].copy_from_slice(&self.0[start..start + n]);
            Ok(n)
        }
        fn size(&self) -> u64 {
            self.0.len() as u64
        }
    }

    fn anon(start: u64, end: u64, prot: u32) -> Vma {
        Vma::anonymous(start * P, end * P, prot, VmaFlags::default())
    }

    fn file(start: u64, end: u64, src: &Arc<dyn MapSource>, page: u64) -> Vma {
        Vma {
            start: start * P,
            end: end * P,
            prot: PROT_READ,
            flags: VmaFlags::default(),
            backing: Backing::File {
                source: src.clone(),
                offset: page * P,
            },
        }
    }

    /// (start page, end page, prot) of every area.
    fn shape(set: &VmaSet) -> Vec<(u64, u64, u32)> {
        set.iter()
            .map(|v| (v.start / P, v.end / P, v.prot))
            .collect()
    }

    fn src() -> Arc<dyn MapSource> {
        Arc::new(Bytes(alloc::vec![7; 10 * P as usize]))
    }

    #[test]
    fn insert_keeps_order_and_merges_neighbours() {
        let mut s = VmaSet::new();
        s.insert(anon(10, 12, RW)).unwrap();
        s.insert(anon(1, 2, RW)).unwrap();
        s.insert(anon(5, 6, PROT_READ)).unwrap();
        assert_eq!(shape(&s), [(1, 2, RW), (5, 6, PROT_READ), (10, 12, RW)]);
        // Adjacent on both sides with the same attributes: one area.
        s.insert(anon(6, 10, PROT_READ)).unwrap();
        assert_eq!(shape(&s), [(1, 2, RW), (5, 10, PROT_READ), (10, 12, RW)]);
        s.insert(anon(2, 5, RW)).unwrap();
        assert_eq!(shape(&s), [(1, 5, RW), (5, 10, PROT_READ), (10, 12, RW)]);
        s.update(5 * P, 10 * P, |v| v.prot = RW).unwrap();
        assert_eq!(shape(&s), [(1, 12, RW)]);
    }

    #[test]
    fn insert_rejects_overlap_and_bad_ranges() {
        let mut s = VmaSet::new();
        s.insert(anon(4, 8, RW)).unwrap();
        for (a, b) in [(3, 5), (7, 9), (4, 8), (5, 6), (0, 100)] {
            assert_eq!(s.insert(anon(a, b, RW)), Err(VmaError::Overlap), "{a}..{b}");
        }
        assert_eq!(s.insert(anon(3, 3, RW)), Err(VmaError::BadRange));
        let odd = Vma::anonymous(P + 1, 2 * P, RW, VmaFlags::default());
        assert_eq!(s.insert(odd), Err(VmaError::BadRange));
        assert!(s.insert(anon(8, 9, RW)).is_ok());
        assert!(s.insert(anon(3, 4, RW)).is_ok());
        assert_eq!(shape(&s), [(3, 9, RW)]);
    }

    #[test]
    fn different_attributes_do_not_merge() {
        let mut s = VmaSet::new();
        s.insert(anon(1, 2, RW)).unwrap();
        let mut shared = anon(2, 3, RW);
        shared.flags.shared = true;
        s.insert(shared).unwrap();
        let mut stack = anon(3, 4, RW);
        stack.flags.growsdown = true;
        s.insert(stack).unwrap();
        let f = src();
        let mut fv = file(4, 5, &f, 0);
        fv.prot = RW;
        s.insert(fv).unwrap();
        assert_eq!(s.len(), 4);
    }

    #[test]
    fn file_areas_merge_only_when_offsets_continue() {
        let f = src();
        let g = src();
        let mut s = VmaSet::new();
        s.insert(file(1, 3, &f, 0)).unwrap();
        s.insert(file(3, 4, &f, 2)).unwrap();
        assert_eq!(s.len(), 1, "same file, contiguous offsets");
        s.insert(file(4, 5, &f, 9)).unwrap();
        assert_eq!(s.len(), 2, "offset jumps");
        s.insert(file(5, 6, &g, 1)).unwrap();
        assert_eq!(s.len(), 3, "other file");
        // Splitting a file area advances the upper part's offset.
        s.remove(2 * P, 3 * P).unwrap();
        let upper = s.find(3 * P).unwrap();
        assert_eq!(
            (upper.start, upper.file_offset(3 * P)),
            (3 * P, Some(2 * P))
        );
        assert_eq!(s.find(P).unwrap().file_offset(P + 5), Some(5));
    }

    #[test]
    fn remove_splits_and_returns_pieces() {
        let mut s = VmaSet::new();
        s.insert(anon(0, 10, RW)).unwrap();
        s.insert(anon(12, 14, PROT_READ)).unwrap();
        assert_eq!(s.splits_needed(3 * P, 5 * P), 2);
        assert_eq!(s.remove(3 * P, 5 * P), Ok(1));
        assert_eq!(shape(&s), [(0, 3, RW), (5, 10, RW), (12, 14, PROT_READ)]);
        // Across a hole and two areas, trimming both.
        assert_eq!(s.splits_needed(8 * P, 13 * P), 2);
        assert_eq!(s.remove(8 * P, 13 * P), Ok(2));
        assert_eq!(shape(&s), [(0, 3, RW), (5, 8, RW), (13, 14, PROT_READ)]);
        // Nothing mapped there: nothing happens.
        assert_eq!(s.remove(20 * P, 30 * P), Ok(0));
        assert_eq!(s.remove(5 * P, 5 * P), Ok(0));
        // Everything.
        assert_eq!(s.remove(0, u64::MAX & !(P - 1)), Ok(3));
        assert!(s.is_empty());
    }

    #[test]
    fn update_splits_in_the_middle_and_merges_back() {
        let mut s = VmaSet::new();
        s.insert(anon(0, 10, RW)).unwrap();
        assert_eq!(s.splits_needed(4 * P, 6 * P), 2);
        s.update(4 * P, 6 * P, |v| v.prot = PROT_NONE).unwrap();
        assert_eq!(shape(&s), [(0, 4, RW), (4, 6, PROT_NONE), (6, 10, RW)]);
        s.update(0, 5 * P, |v| v.prot = PROT_READ).unwrap();
        assert_eq!(
            shape(&s),
            [(0, 5, PROT_READ), (5, 6, PROT_NONE), (6, 10, RW)]
        );
        s.update(5 * P, 6 * P, |v| v.prot = PROT_READ).unwrap();
        assert_eq!(shape(&s), [(0, 6, PROT_READ), (6, 10, RW)]);
        s.update(0, 10 * P, |v| v.prot = RW).unwrap();
        assert_eq!(shape(&s), [(0, 10, RW)]);
    }

    #[test]
    fn lookups() {
        let mut s = VmaSet::new();
        s.insert(anon(2, 4, RW)).unwrap();
        s.insert(anon(6, 8, PROT_READ)).unwrap();
        assert!(s.find(2 * P).is_some());
        assert!(s.find(4 * P - 1).is_some());
        assert!(s.find(4 * P).is_none());
        assert!(s.find(P).is_none());
        assert_eq!(s.next_at_or_after(4 * P).map(|v| v.start), Some(6 * P));
        assert_eq!(s.next_at_or_after(3 * P).map(|v| v.start), Some(2 * P));
        assert!(s.next_at_or_after(8 * P).is_none());
        assert_eq!(s.prev_before(6 * P).map(|v| v.start), Some(2 * P));
        assert_eq!(s.prev_before(4 * P).map(|v| v.start), Some(2 * P));
        assert!(s.prev_before(3 * P).is_none());
        assert_eq!(s.overlapping(3 * P, 7 * P).len(), 2);
        assert_eq!(s.overlapping(4 * P, 6 * P).len(), 0);
        assert!(s.is_free(4 * P, 6 * P));
        assert!(!s.is_free(4 * P, 6 * P + 1));
        assert!(s.is_covered(2 * P, 4 * P));
        assert!(!s.is_covered(2 * P, 7 * P));
        assert!(!s.is_covered(P, 3 * P));
        s.insert(anon(4, 6, PROT_NONE)).unwrap();
        assert!(s.is_covered(2 * P, 8 * P));
    }

    #[test]
    fn access_checks() {
        let v = anon(0, 1, PROT_READ);
        assert!(v.allows(Access::Read) && !v.allows(Access::Write) && !v.allows(Access::Exec));
        let v = anon(0, 1, PROT_NONE);
        assert!(!v.allows(Access::Read));
        let v = anon(0, 1, PROT_EXEC);
        assert!(v.allows(Access::Read) && v.allows(Access::Exec));
        let v = anon(0, 1, PROT_WRITE);
        assert!(v.allows(Access::Read) && v.allows(Access::Write));
    }

    #[test]
    fn free_search_is_top_down_and_respects_limits() {
        let mut s = VmaSet::new();
        assert_eq!(s.find_free_top_down(2 * P, P, 100 * P, 0), Some(98 * P));
        s.insert(anon(90, 100, RW)).unwrap();
        assert_eq!(s.find_free_top_down(2 * P, P, 100 * P, 0), Some(88 * P));
        s.insert(anon(80, 88, RW)).unwrap();
        // The 2-page hole at 88..90 fits exactly.
        assert_eq!(s.find_free_top_down(2 * P, P, 100 * P, 0), Some(88 * P));
        assert_eq!(s.find_free_top_down(3 * P, P, 100 * P, 0), Some(77 * P));
        // High limit inside an area, low limit cutting the last gap.
        assert_eq!(s.find_free_top_down(P, P, 85 * P, 0), Some(79 * P));
        assert_eq!(s.find_free_top_down(P, 79 * P, 85 * P, 0), Some(79 * P));
        assert_eq!(s.find_free_top_down(2 * P, 79 * P, 85 * P, 0), None);
        // Too large, empty, unaligned, inverted limits.
        assert_eq!(s.find_free_top_down(200 * P, P, 100 * P, 0), None);
        assert_eq!(s.find_free_top_down(0, P, 100 * P, 0), None);
        assert_eq!(s.find_free_top_down(P + 1, P, 100 * P, 0), None);
        assert_eq!(s.find_free_top_down(P, 50 * P, 40 * P, 0), None);
        // Areas above `high` are irrelevant.
        let mut t = VmaSet::new();
        t.insert(anon(200, 300, RW)).unwrap();
        assert_eq!(t.find_free_top_down(P, 0, 100 * P, 0), Some(99 * P));
        // Entirely full.
        let mut u = VmaSet::new();
        u.insert(anon(1, 100, RW)).unwrap();
        assert_eq!(u.find_free_top_down(P, P, 100 * P, 0), None);
        assert_eq!(u.find_free_top_down(P, 0, 100 * P, 0), Some(0));
    }

    #[test]
    fn free_search_keeps_a_gap_below_stacks() {
        let mut s = VmaSet::new();
        let mut stack = anon(90, 100, RW);
        stack.flags.growsdown = true;
        s.insert(stack).unwrap();
        assert_eq!(
            s.find_free_top_down(P, P, 200 * P, 10 * P),
            Some(200 * P - P)
        );
        assert_eq!(s.find_free_top_down(P, P, 100 * P, 10 * P), Some(79 * P));
        assert!(s.is_free_with_gap(70 * P, 80 * P, 10 * P));
        assert!(!s.is_free_with_gap(70 * P, 81 * P, 10 * P));
        assert!(s.is_free_with_gap(70 * P, 81 * P, 0));
    }

    #[test]
    fn stack_extends_down() {
        let mut s = VmaSet::new();
        let mut stack = anon(90, 100, RW);
        stack.flags.growsdown = true;
        s.insert(stack).unwrap();
        s.insert(anon(50, 60, RW)).unwrap();
        assert!(s.extend_down(90 * P, 80 * P));
        assert_eq!(
            s.find(80 * P).map(|v| (v.start, v.end)),
            Some((80 * P, 100 * P))
        );
        assert!(!s.extend_down(80 * P, 55 * P), "overlaps the area below");
        assert!(!s.extend_down(85 * P, 70 * P), "no area starts there");
        assert!(!s.extend_down(80 * P, 81 * P), "not downwards");
        assert!(s.extend_down(80 * P, 60 * P));
        assert_eq!(s.len(), 2, "a stack never merges with the heap below it");
    }

    #[test]
    fn map_count_limit() {
        let mut s = VmaSet::new();
        for i in 0..MAX_MAP_COUNT as u64 {
            // Alternate protections so nothing merges.
            let prot = if i % 2 == 0 { RW } else { PROT_READ };
            s.insert(anon(i, i + 1, prot)).unwrap();
        }
        let last = MAX_MAP_COUNT as u64;
        assert_eq!(
            s.insert(anon(last + 1, last + 2, RW)),
            Err(VmaError::TooMany)
        );
        // Splitting needs room too, and a refused split changes nothing.
        assert_eq!(s.remove(0, P), Ok(1));
        s.insert(anon(last + 1, last + 3, RW)).unwrap();
        assert_eq!(s.len(), MAX_MAP_COUNT);
        let tail = (last + 2) * P..(last + 3) * P;
        assert_eq!(
            s.update(tail.start, tail.end, |v| v.prot = 0),
            Err(VmaError::TooMany)
        );
        assert_eq!(s.remove(tail.start, tail.end), Err(VmaError::TooMany));
        assert_eq!(s.len(), MAX_MAP_COUNT);
        assert_eq!(s.find(tail.start).map(|v| v.prot), Some(RW));
    }
}

//! Per-process user memory: the areas ([`VmaSet`]), the program break and the layout
//! (mmap base, stack limit), kept in step with the process's page tables.
//!
//! Nothing is backed up front: a page gets its frame on first touch ([`super::fault`]),
//! so reserving a gigabyte that is never used costs only its bookkeeping. A present user
//! page owns a reference to its frame ([`super::refcount`]): after fork, private pages
//! share frames read-only until written ([`super::cow`]) and `MAP_SHARED` anonymous pages
//! share them for good ([`super::shared`]); unmapping gives the reference up. The system-call layer (`syscall/mem.rs`) checks arguments the
//! way Linux does and calls in here with page-aligned, in-range values.

use super::paging::{flags, AddressSpace, Leaf, HUGE_PAGE_SIZE, USER_END};
use super::vma::{Backing, Vma, VmaError, VmaFlags, VmaSet};
use super::vma::{PROT_EXEC, PROT_READ, PROT_WRITE};
use super::{page_align_down, page_align_up, refcount, PAGE_SIZE};
use crate::errno::Errno;

pub use super::fault::{handle_page_fault, oom_kill, FaultError};

/// Highest user address + 1 that mappings may reach (Linux x86-64 `TASK_SIZE`: the top
/// page of the lower half stays unmapped).
pub const TASK_SIZE: u64 = USER_END - PAGE_SIZE;
/// Lowest address a fixed mapping may use (Linux's default `vm.mmap_min_addr`).
pub const MMAP_MIN_ADDR: u64 = 64 * 1024;
/// Largest size of a stack that grows down (Linux's default `RLIMIT_STACK`).
pub const STACK_RLIMIT: u64 = 8 << 20;
/// Unmapped gap kept below a stack that grows down (Linux's `stack_guard_gap`).
pub const STACK_GUARD_GAP: u64 = 256 * PAGE_SIZE;
/// Span of the random offset below the top of the address space for the stack top
/// (Linux x86-64: 22 bits of pages).
const STACK_RANDOM_SPAN: u64 = 1 << (22 + 12);
/// Span of the random offset of the mmap base and of a static-pie's load address
/// (Linux x86-64 `mmap_rnd_bits`: 28 bits of pages).
pub const MMAP_RANDOM_SPAN: u64 = 1 << (28 + 12);
/// Least gap between the stack top and the mmap base (Linux `MIN_GAP`).
const MIN_MMAP_GAP: u64 = 128 << 20;
/// Where `MAP_32BIT` mappings go (Linux x86-64: the second GiB).
const LOW_2G: (u64, u64) = (0x4000_0000, 0x8000_0000);

/// Where a new mapping may go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placement {
    /// Anywhere; use the address if it is free (0: no preference).
    Hint(u64),
    /// Exactly there, replacing what is mapped (`MAP_FIXED`).
    Fixed(u64),
    /// Exactly there, failing with EEXIST if anything is mapped (`MAP_FIXED_NOREPLACE`).
    FixedNoReplace(u64),
    /// Anywhere in the second GiB (`MAP_32BIT`).
    Low2G,
}

/// A mapping to create: `len` is page aligned and non-zero.
#[derive(Clone, Debug)]
pub struct MapRequest {
    /// Where.
    pub placement: Placement,
    /// Length in bytes.
    pub len: u64,
    /// `PROT_*` bits.
    pub prot: u32,
    /// Shared, grows-down, no-reserve.
    pub flags: VmaFlags,
    /// Anonymous or a file.
    pub backing: Backing,
}

/// The memory of one process.
#[derive(Debug, Default)]
pub struct UserMemory {
    pub(super) vmas: VmaSet,
    pub(super) brk_start: u64,
    pub(super) brk: u64,
    pub(super) mmap_base: u64,
    /// Consecutive faults at one page that needed no change (see `fault`).
    pub(super) spurious: (u64, u32),
    /// Where the last fault-around window ended and how many pages it had: a fault right
    /// there is sequential access, which gets a larger window (see `fault`).
    pub(super) fault_window: (u64, u64),
    /// Copy-on-write of a 2 MiB page splits it instead of copying it whole (see `cow`;
    /// set by the self-tests that compare both).
    pub(super) split_huge_cow: bool,
}

/// Page-table flags for a protection. `PROT_NONE` pages are parked: not present, so any
/// user access faults, but their frames keep the data.
pub fn pte_flags(prot: u32) -> u64 {
    if prot & (PROT_READ | PROT_WRITE | PROT_EXEC) == 0 {
        return flags::PARKED;
    }
    let mut f = flags::USER;
    if prot & PROT_WRITE != 0 {
        f |= flags::WRITABLE;
    }
    if prot & PROT_EXEC == 0 {
        f |= flags::NO_EXECUTE;
    }
    f
}

/// Gives up the frames of an unmapped page: one frame, or each of a 2 MiB block's (the
/// last owner frees them).
fn free_frames(_va: u64, pa: u64, size: u64) {
    if size == HUGE_PAGE_SIZE {
        refcount::release_block(pa);
    } else {
        refcount::release(pa);
    }
}

/// True if 2 MiB pages may back `vma`: private anonymous memory that is accessible, not
/// a stack that grows down, and not marked `MADV_NOHUGEPAGE`.
pub fn huge_pages_allowed(vma: &Vma) -> bool {
    vma.backing.is_anonymous() && huge_capable(vma.prot, vma.flags)
}

fn huge_capable(prot: u32, vma_flags: VmaFlags) -> bool {
    !vma_flags.shared
        && !vma_flags.growsdown
        && !vma_flags.no_huge_pages
        && pte_flags(prot) & flags::PARKED == 0
}

/// Where a range of `len` bytes starts inside a free range of `len + HUGE_PAGE_SIZE -
/// PAGE_SIZE` bytes at `found` so that it lies `offset` (page aligned, below 2 MiB) past
/// a 2 MiB boundary: as high as it can.
fn place_in_slack(found: u64, offset: u64) -> u64 {
    let room_top = found + HUGE_PAGE_SIZE - PAGE_SIZE;
    ((room_top - offset) & !(HUGE_PAGE_SIZE - 1)) + offset
}

fn vma_errno(e: VmaError) -> Errno {
    match e {
        VmaError::Overlap => Errno::EEXIST,
        VmaError::BadRange => Errno::EINVAL,
        VmaError::TooMany | VmaError::NoMemory => Errno::ENOMEM,
    }
}

/// A random page-aligned offset below `span`.
pub fn random_pages(span: u64) -> u64 {
    (crate::random::next_u64() % span) & !(PAGE_SIZE - 1)
}

impl UserMemory {
    /// Empty memory with the default, non-random layout (mmap base at the lowest place
    /// Linux would put it).
    pub fn new() -> UserMemory {
        UserMemory {
            mmap_base: TASK_SIZE - STACK_RANDOM_SPAN - MIN_MMAP_GAP - MMAP_RANDOM_SPAN,
            ..UserMemory::default()
        }
    }

    /// Empty memory laid out like a fresh Linux process: a random stack top (returned
    /// with the memory) and a random mmap base below the stack's reserve.
    pub fn new_randomized() -> (UserMemory, u64) {
        let stack_top = page_align_down(TASK_SIZE - random_pages(STACK_RANDOM_SPAN));
        let gap = (STACK_RLIMIT + STACK_GUARD_GAP + STACK_RANDOM_SPAN).max(MIN_MMAP_GAP);
        let mmap_base = page_align_down(TASK_SIZE - gap - random_pages(MMAP_RANDOM_SPAN));
        let mem = UserMemory {
            mmap_base,
            ..UserMemory::default()
        };
        (mem, stack_top)
    }

    /// The areas.
    pub fn vmas(&self) -> &VmaSet {
        &self.vmas
    }

    /// Where top-down searches for free space start.
    pub fn mmap_base(&self) -> u64 {
        self.mmap_base
    }

    /// Sets where the program break starts (at exec, after the highest segment).
    pub fn init_brk(&mut self, start: u64) {
        self.brk_start = start;
        self.brk = start;
    }

    /// The current program break.
    pub fn brk_value(&self) -> u64 {
        self.brk
    }

    /// A free range of `len` bytes: the hint if it is usable, else top-down from the mmap
    /// base, else the rest of the address space above it. With `huge_offset`, a search
    /// places the range that far past a 2 MiB boundary if there is room, so that 2 MiB
    /// pages can back it (as Linux aligns large anonymous mappings for transparent huge
    /// pages).
    fn find_free(&self, len: u64, hint: u64, huge_offset: Option<u64>) -> Result<u64, Errno> {
        if len > TASK_SIZE - MMAP_MIN_ADDR {
            return Err(Errno::ENOMEM);
        }
        // As Linux's round_hint_to_min: a non-zero hint below the minimum is raised to it.
        let hint = page_align_down(hint);
        if hint != 0 {
            let start = hint.max(MMAP_MIN_ADDR);
            if let Some(end) = start.checked_add(len).filter(|&e| e <= TASK_SIZE) {
                if self.vmas.is_free_with_gap(start, end, STACK_GUARD_GAP) {
                    return Ok(start);
                }
            }
        }
        // Searches keep a grows-down stack's whole reserve free, not only its guard gap.
        let gap = STACK_GUARD_GAP + STACK_RLIMIT;
        if let Some(offset) = huge_offset.filter(|_| len >= HUGE_PAGE_SIZE) {
            let slack = len + HUGE_PAGE_SIZE - PAGE_SIZE;
            let found = self
                .vmas
                .find_free_top_down(slack, MMAP_MIN_ADDR, self.mmap_base, gap)
                .or_else(|| {
                    self.vmas
                        .find_free_top_down(slack, self.mmap_base, TASK_SIZE, gap)
                });
            if let Some(found) = found {
                return Ok(place_in_slack(found, offset % HUGE_PAGE_SIZE));
            }
        }
        self.vmas
            .find_free_top_down(len, MMAP_MIN_ADDR, self.mmap_base, gap)
            .or_else(|| {
                self.vmas
                    .find_free_top_down(len, self.mmap_base, TASK_SIZE, gap)
            })
            .ok_or(Errno::ENOMEM)
    }

    /// Creates a mapping; returns its address.
    pub fn map(&mut self, space: &mut AddressSpace, req: MapRequest) -> Result<u64, Errno> {
        let len = req.len;
        if let Placement::Fixed(addr) | Placement::FixedNoReplace(addr) = req.placement {
            if addr.checked_add(len).is_none_or(|end| end > TASK_SIZE) {
                return Err(Errno::ENOMEM);
            }
        }
        let huge_offset =
            (req.backing.is_anonymous() && huge_capable(req.prot, req.flags)).then_some(0);
        let start = match req.placement {
            Placement::Hint(hint) => self.find_free(len, hint, huge_offset)?,
            Placement::Low2G => self
                .vmas
                .find_free_top_down(len, LOW_2G.0, LOW_2G.1, STACK_GUARD_GAP)
                .ok_or(Errno::ENOMEM)?,
            Placement::FixedNoReplace(addr) => {
                if !self.vmas.is_free(addr, addr + len) {
                    return Err(Errno::EEXIST);
                }
                addr
            }
            Placement::Fixed(addr) => {
                let end = addr + len;
                // Room for the split and the new area, so that nothing fails half-way.
                let splits = self.vmas.splits_needed(addr, end);
                self.vmas.reserve(splits + 1).map_err(vma_errno)?;
                self.unmap(space, addr, end)?;
                addr
            }
        };
        let end = start.checked_add(len).ok_or(Errno::ENOMEM)?;
        if end > TASK_SIZE {
            return Err(Errno::ENOMEM);
        }
        let vma = Vma {
            start,
            end,
            prot: req.prot,
            flags: req.flags,
            backing: req.backing,
        };
        self.vmas.insert(vma).map_err(vma_errno)?;
        Ok(start)
    }

    /// munmap: removes every mapping in `[start, end)` (holes are fine) and frees its
    /// pages. ENOMEM, changing nothing, if a 2 MiB page it cuts finds no frame for the
    /// page table of its pieces.
    pub fn unmap(&mut self, space: &mut AddressSpace, start: u64, end: u64) -> Result<(), Errno> {
        space
            .split_huge(start, end, false)
            .map_err(|_| Errno::ENOMEM)?;
        self.vmas.remove(start, end).map_err(vma_errno)?;
        // Cannot fail: what needed splitting is split.
        space
            .unmap_range(start, end, free_frames)
            .map_err(|_| Errno::ENOMEM)?;
        Ok(())
    }

    /// mprotect: sets the protection of `[start, end)`, which must be fully mapped.
    /// With `growsdown` (`PROT_GROWSDOWN`) the change extends down to the start of the
    /// grows-down area containing `start`.
    pub fn protect(
        &mut self,
        space: &mut AddressSpace,
        start: u64,
        end: u64,
        prot: u32,
        growsdown: bool,
    ) -> Result<(), Errno> {
        let mut start = start;
        if growsdown {
            // As Linux: the first area in the range; the change reaches down to its start.
            let vma = self
                .vmas
                .next_at_or_after(start)
                .filter(|v| v.start < end)
                .ok_or(Errno::ENOMEM)?;
            if !vma.flags.growsdown {
                return Err(Errno::EINVAL);
            }
            start = vma.start;
        }
        if !self.vmas.is_covered(start, end) {
            return Err(Errno::ENOMEM);
        }
        // A shared file mapping may become writable only if its file was opened for
        // writing and its pages are the file's (EACCES, as Linux for a read-only file).
        let unwritable = self.vmas.overlapping(start, end).iter().any(|v| {
            v.flags.shared
                && matches!(&v.backing, Backing::File { source, .. }
                    if !(source.writable() && source.shares_pages()))
        });
        if unwritable && prot & PROT_WRITE != 0 {
            return Err(Errno::EACCES);
        }
        // Split what must be split first, so that nothing fails once the areas change.
        let page_flags = pte_flags(prot);
        space
            .split_huge(start, end, page_flags & flags::PARKED != 0)
            .map_err(|_| Errno::ENOMEM)?;
        self.vmas
            .update(start, end, |v| v.prot = prot)
            .map_err(vma_errno)?;
        // Area by area: a private one keeps the pages it shares read-only (copy on write).
        // Cannot fail: what needed splitting is split.
        for v in self.vmas.overlapping(start, end) {
            space
                .protect_range(
                    v.start.max(start),
                    v.end.min(end),
                    page_flags,
                    !v.flags.shared,
                )
                .map_err(|_| Errno::ENOMEM)?;
        }
        Ok(())
    }

    /// brk: moves the program break to `addr` if it can; returns the break afterwards
    /// (Linux's convention: the old break on failure, never an error).
    pub fn set_brk(&mut self, space: &mut AddressSpace, addr: u64) -> u64 {
        if self.brk_start == 0 || addr < self.brk_start || addr > TASK_SIZE {
            return self.brk;
        }
        let old_end = page_align_up(self.brk);
        let new_end = page_align_up(addr);
        if new_end == old_end {
            self.brk = addr;
        } else if new_end < old_end {
            if self.unmap(space, new_end, old_end).is_ok() {
                self.brk = addr;
            }
        } else {
            // Linux keeps a page (and the stack gap) free above the new break.
            let guard_end = new_end.saturating_add(PAGE_SIZE).min(TASK_SIZE);
            if self
                .vmas
                .is_free_with_gap(old_end, guard_end, STACK_GUARD_GAP)
            {
                let vma = Vma::anonymous(
                    old_end,
                    new_end,
                    PROT_READ | PROT_WRITE,
                    VmaFlags::default(),
                );
                if self.vmas.insert(vma).is_ok() {
                    self.brk = addr;
                }
            }
        }
        self.brk
    }

    /// Drops the pages of `[start, end)` so that they refault fresh: zero for anonymous
    /// memory, the file's bytes for a private file mapping (MADV_DONTNEED). ENOMEM,
    /// changing nothing, if a 2 MiB page it cuts finds no frame for a page table.
    pub fn discard(&mut self, space: &mut AddressSpace, start: u64, end: u64) -> Result<(), Errno> {
        space
            .unmap_range(start, end, free_frames)
            .map(|_| ())
            .map_err(|_| Errno::ENOMEM)
    }

    /// Like [`Self::discard`], and shared anonymous memory in `[start, end)` loses its
    /// contents too, for every mapping of it (MADV_REMOVE): it refaults as zeros.
    pub fn punch_hole(
        &mut self,
        space: &mut AddressSpace,
        start: u64,
        end: u64,
    ) -> Result<(), Errno> {
        self.discard(space, start, end)?;
        for v in self.vmas.overlapping(start, end) {
            if let Backing::Shared { object, offset } = &v.backing {
                let first = offset + (v.start.max(start) - v.start);
                let last = offset + (v.end.min(end) - v.start);
                object.remove(first / PAGE_SIZE, last / PAGE_SIZE);
            }
        }
        Ok(())
    }

    /// Sets or clears `MADV_NOHUGEPAGE` on the areas in `[start, end)`; pages already
    /// there stay as they are.
    pub fn set_no_huge_pages(&mut self, start: u64, end: u64, no_huge: bool) -> Result<(), Errno> {
        self.vmas
            .update(start, end, |v| v.flags.no_huge_pages = no_huge)
            .map_err(vma_errno)
    }

    /// mremap's move: maps `[addr, addr + old_len)` of its area at `[new_addr, new_addr +
    /// new_len)` (free), carrying the pages over without copying; the old range is unmapped
    /// unless `keep_old` (MREMAP_DONTUNMAP: it stays mapped, its pages refault fresh). A
    /// 2 MiB page stays one if it lands 2 MiB aligned, else it goes on as 512 pages.
    pub fn move_range(
        &mut self,
        space: &mut AddressSpace,
        addr: u64,
        old_len: u64,
        new_addr: u64,
        new_len: u64,
        keep_old: bool,
    ) -> Result<(), Errno> {
        let old_end = addr + old_len;
        let vma = self.vmas.find(addr).ok_or(Errno::EFAULT)?;
        let moved = vma.slice(addr, old_end);
        let new_vma = Vma {
            start: new_addr,
            end: new_addr + new_len,
            prot: moved.prot,
            flags: moved.flags,
            backing: moved.backing,
        };
        // A 2 MiB page the range covers in part goes first into 4 KiB pages; room for the
        // new area and for splitting the old one: after this, only mapping at the new place
        // can fail, and that is undone.
        space
            .split_huge(addr, old_end, false)
            .map_err(|_| Errno::ENOMEM)?;
        let splits = self.vmas.splits_needed(addr, old_end);
        self.vmas.reserve(splits + 1).map_err(vma_errno)?;
        let page_flags = pte_flags(new_vma.prot);
        let private = !new_vma.flags.shared;
        self.vmas.insert(new_vma).map_err(vma_errno)?;
        // Map the frames at their new places first, so that a failure (no frame for a page
        // table) can be undone without losing data; then drop the old entries. An aligned
        // 2 MiB window at a time (so that a 2 MiB page is met once), without allocating.
        const WINDOW_PAGES: usize = 512;
        let mut at = addr;
        let mut failed = false;
        'windows: while at < old_end {
            let window_end = old_end.min((at & !(HUGE_PAGE_SIZE - 1)) + HUGE_PAGE_SIZE);
            let mut pages = [(0u64, 0u64, 0u64); WINDOW_PAGES];
            let mut count = 0;
            space.for_each_leaf(at, window_end, |va, pa, _, size| {
                if let Some(slot) = pages.get_mut(count) {
                    *slot = (va, pa, size);
                    count += 1;
                }
            });
            for &(va, pa, size) in &pages[..count] {
                let to = new_addr + (va - addr);
                // A private page another owner shares stays read-only (copy on write).
                let leaf = if size == PAGE_SIZE {
                    Leaf::Small
                } else {
                    Leaf::Huge
                };
                let page_flags = if private && leaf.shared(pa) {
                    page_flags & !flags::WRITABLE
                } else {
                    page_flags
                };
                let mapped = if size == PAGE_SIZE {
                    space.map(to, pa, page_flags)
                } else if to.is_multiple_of(HUGE_PAGE_SIZE) {
                    space.map_huge(to, pa, page_flags)
                } else {
                    (0..HUGE_PAGE_SIZE)
                        .step_by(PAGE_SIZE as usize)
                        .try_for_each(|off| space.map(to + off, pa + off, page_flags))
                };
                if mapped.is_err() {
                    failed = true;
                    break 'windows;
                }
            }
            at = window_end;
        }
        // Neither unmap below can fail: the new range's 2 MiB pages lie wholly inside it,
        // and the old range's edges were split above.
        if failed {
            // The frames still belong to the old entries: drop only the new ones.
            let _ = space.unmap_range(new_addr, new_addr + new_len, |_, _, _| {});
            // Cannot fail: the new area is whole (or merged, which needs no split room).
            let _ = self.vmas.remove(new_addr, new_addr + new_len);
            return Err(Errno::ENOMEM);
        }
        let _ = space.unmap_range(addr, old_end, |_, _, _| {});
        if !keep_old {
            // Cannot fail: room for the splits was reserved above.
            let _ = self.vmas.remove(addr, old_end);
        }
        Ok(())
    }

    /// mremap's in-place growth: extends the area ending at `end` by `delta` bytes if the
    /// space after it is free; false otherwise.
    pub fn grow_in_place(&mut self, end: u64, delta: u64) -> bool {
        let Some(new_end) = end.checked_add(delta).filter(|&e| e <= TASK_SIZE) else {
            return false;
        };
        let Some(vma) = self.vmas.find(end - 1) else {
            return false;
        };
        if vma.end != end || !self.vmas.is_free_with_gap(end, new_end, STACK_GUARD_GAP) {
            return false;
        }
        let piece = Vma {
            start: end,
            end: new_end,
            prot: vma.prot,
            flags: vma.flags,
            backing: vma.backing.advanced(end - vma.start),
        };
        self.vmas.insert(piece).is_ok()
    }

    /// A free range for mremap to move `len` bytes of the area at `from` to: where its
    /// 2 MiB pages can stay whole if it may have them.
    pub fn find_free_for_move(&self, len: u64, hint: u64, from: u64) -> Result<u64, Errno> {
        let huge_offset = self
            .vmas
            .find(from)
            .filter(|v| huge_pages_allowed(v))
            .map(|_| from % HUGE_PAGE_SIZE);
        self.find_free(len, hint, huge_offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HUGE: u64 = HUGE_PAGE_SIZE;

    #[test]
    fn slack_placement_lands_on_the_offset_inside_the_room() {
        for found in [
            0x1000_0000,
            0x1000_1000,
            0x101f_f000,
            0x7fff_fe00_0000 - 0x3000,
        ] {
            for offset in [0, PAGE_SIZE, 0x1f_f000] {
                for len in [HUGE, HUGE + PAGE_SIZE, 64 << 20] {
                    let start = place_in_slack(found, offset);
                    assert_eq!(start % HUGE, offset, "found {found:#x} offset {offset:#x}");
                    assert!(start >= found, "below the room: {start:#x} < {found:#x}");
                    assert!(
                        start + len <= found + len + HUGE - PAGE_SIZE,
                        "past the room: {start:#x}"
                    );
                }
            }
        }
    }

    #[test]
    fn huge_pages_only_for_private_anonymous_accessible_memory() {
        let rw = PROT_READ | PROT_WRITE;
        let plain = VmaFlags::default();
        assert!(huge_capable(rw, plain));
        assert!(huge_capable(PROT_READ | PROT_EXEC, plain));
        assert!(!huge_capable(0, plain), "PROT_NONE is parked, never huge");
        let with = |f: fn(&mut VmaFlags)| {
            let mut flags = plain;
            f(&mut flags);
            huge_capable(rw, flags)
        };
        assert!(!with(|f| f.shared = true));
        assert!(!with(|f| f.growsdown = true));
        assert!(!with(|f| f.no_huge_pages = true));
        assert!(with(|f| f.noreserve = true));
    }
}

//! Four-level x86-64 page tables: the kernel's tables and per-process address spaces.
//!
//! The upper half (PML4 entries 256..512) is the kernel's and is shared by every address
//! space; the lower half belongs to the process. Tables are reached through the kernel's
//! view of physical memory ([`super::phys_to_virt`]).

use super::{frame, phys_to_virt, refcount, PAGE_SIZE};

mod user_tables;
pub use user_tables::KernelRange;

/// Page-table entry flags.
pub mod flags {
    /// Present.
    pub const PRESENT: u64 = 1 << 0;
    /// Writable.
    pub const WRITABLE: u64 = 1 << 1;
    /// Accessible from user mode.
    pub const USER: u64 = 1 << 2;
    /// 2 MiB page (in a PD entry).
    pub const HUGE: u64 = 1 << 7;
    /// Global (not flushed on CR3 load).
    pub const GLOBAL: u64 = 1 << 8;
    /// Accessed (set by the CPU on first use, or up front).
    pub const ACCESSED: u64 = 1 << 5;
    /// Dirty (set by the CPU on first write, or up front).
    pub const DIRTY: u64 = 1 << 6;
    /// No-execute.
    pub const NO_EXECUTE: u64 = 1 << 63;
    /// Software bit of a non-present user entry that still owns its frame: a page of a
    /// `PROT_NONE` area keeps its data there. (A present supervisor-only page does not do:
    /// PVM never reports ring 3's faults on such a page to the guest.)
    pub const PARKED: u64 = 1 << 10;
}

pub(super) const ADDR_MASK: u64 = 0x000f_ffff_ffff_f000;
/// Size of a 2 MiB page (a PD entry with [`flags::HUGE`]).
pub const HUGE_PAGE_SIZE: u64 = 2 << 20;
const HUGE_SIZE: u64 = HUGE_PAGE_SIZE;
/// Entries in a page table.
const ENTRIES: u64 = 512;
/// First address of the kernel half.
pub const KERNEL_HALF: u64 = 0xffff_8000_0000_0000;
/// End of the user half (exclusive).
pub const USER_END: u64 = 0x0000_8000_0000_0000;

/// Failure to map.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapError {
    /// No frame for a page table.
    OutOfMemory,
    /// The page is already mapped.
    AlreadyMapped,
}

/// Accessed (and, for writable pages, dirty) bits set up front on a new leaf entry.
///
/// The kernel maps a page only when it is about to be used, so this loses nothing, and
/// under shadow paging (PVM, or KVM without EPT/NPT) the host prefetches its own entries
/// for the neighbours of a faulting page only if their guest entries are already marked
/// accessed: a sequential pass over fresh memory then costs one host fault per 8 pages
/// instead of one per page. The CPU would otherwise set the same bits itself.
/// Whether a leaf changed from `old` to `new` must have its cached translation dropped:
/// unless it was not present (nothing is cached), or the change only adds write access,
/// takes no-execute away or moves the accessed and dirty bits. A translation cached with
/// fewer permissions than the entry now gives makes the CPU fault, and the fault handler
/// then finds nothing to repair and retries ([`super::user`]'s stale-entry path), as
/// Linux's x86 `pte_needs_flush` reasons. Each `invlpg` is a trap to the host on PVM
/// (~120k cycles on 2026-12-05); a fork's parent making its pages writable again took 16.
pub(super) fn needs_flush(old: u64, new: u64) -> bool {
    if old & flags::PRESENT == 0 {
        return false;
    }
    let changed = old ^ new;
    let harmless = (new & !old & flags::WRITABLE)
        | (old & !new & flags::NO_EXECUTE)
        | (changed & (flags::ACCESSED | flags::DIRTY));
    changed & !harmless != 0
}

pub(super) fn prefetch_bits(page_flags: u64) -> u64 {
    if page_flags & flags::WRITABLE != 0 {
        flags::ACCESSED | flags::DIRTY
    } else {
        flags::ACCESSED
    }
}

fn table(pa: u64) -> *mut u64 {
    phys_to_virt(pa) as *mut u64
}

fn index(va: u64, level: u32) -> usize {
    ((va >> (12 + 9 * level)) & 0x1ff) as usize
}

/// Flags of an entry that points to a lower table covering `va`.
fn table_flags(va: u64) -> u64 {
    flags::PRESENT
        | flags::WRITABLE
        | if va < USER_END {
            flags::USER
        } else {
            crate::arch::platform::kernel_pte_flags()
        }
}

/// What a walk over a range meets: a 4 KiB entry that holds a frame, or a 2 MiB page
/// (reported at its first address, which may lie below the range's start).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Leaf {
    Small,
    Huge,
}

/// Invalidates changed translations: one `invlpg` per page for a few pages, one reload
/// of CR3 for many (each is a trap to the host on PVM).
#[derive(Default)]
pub(super) struct TlbFlush {
    pages: u64,
}

impl TlbFlush {
    const MAX_SINGLE: u64 = 16;

    pub(super) fn page(&mut self, va: u64) {
        self.pages += 1;
        if self.pages <= Self::MAX_SINGLE {
            crate::arch::cpu::invlpg(va);
        }
    }

    pub(super) fn finish(self) -> u64 {
        if self.pages > Self::MAX_SINGLE {
            // SAFETY: reloading the current CR3 keeps the same tables and drops their
            // cached non-global translations, user pages among them.
            unsafe { crate::arch::cpu::write_cr3(crate::arch::cpu::loaded_cr3()) };
        }
        self.pages
    }
}

/// An address space: the physical address of its PML4, and optionally a second PML4
/// for user mode that shares the user half but maps only chosen kernel pages.
#[derive(Debug)]
pub struct AddressSpace {
    pml4: u64,
    user_pml4: u64,
}

impl AddressSpace {
    /// A new, empty set of tables.
    pub fn new_empty() -> Result<Self, MapError> {
        Ok(AddressSpace {
            pml4: frame::alloc_zeroed().ok_or(MapError::OutOfMemory)?,
            user_pml4: 0,
        })
    }

    /// A new user address space sharing the kernel half of `kernel`.
    pub fn new_user(kernel: &AddressSpace) -> Result<Self, MapError> {
        let space = Self::new_empty()?;
        // SAFETY: both PML4s are live page-table frames; we copy the kernel half.
        unsafe {
            core::ptr::copy_nonoverlapping(
                table(kernel.pml4).add(256),
                table(space.pml4).add(256),
                256,
            );
        }
        Ok(space)
    }

    /// The PML4's physical address (for CR3).
    pub fn pml4_phys(&self) -> u64 {
        self.pml4
    }

    /// The user-mode PML4's physical address, or 0 if user mode uses [`Self::pml4_phys`].
    pub fn user_pml4_phys(&self) -> u64 {
        self.user_pml4
    }

    /// Walks to the entry for `va` at `level` (0 = PT, 1 = PD), creating tables.
    pub(super) fn entry_mut(&mut self, va: u64, level: u32) -> Result<*mut u64, MapError> {
        let table_flags = table_flags(va);
        let mut table_pa = self.pml4;
        for l in (level + 1..4).rev() {
            let entry = table(table_pa).wrapping_add(index(va, l));
            // SAFETY: `entry` points into a live page-table frame owned by this space.
            let value = unsafe { *entry };
            if value & flags::PRESENT == 0 {
                let new = frame::alloc_zeroed().ok_or(MapError::OutOfMemory)?;
                // SAFETY: as above.
                unsafe { *entry = new | table_flags };
                if l == 3 && va < USER_END && self.user_pml4 != 0 {
                    // Keep the user-mode PML4's user half identical.
                    // SAFETY: the user PML4 is a live table of this space.
                    unsafe { *table(self.user_pml4).add(index(va, 3)) = new | table_flags };
                }
                table_pa = new;
            } else if value & flags::HUGE != 0 {
                return Err(MapError::AlreadyMapped);
            } else {
                table_pa = value & ADDR_MASK;
            }
        }
        Ok(table(table_pa).wrapping_add(index(va, level)))
    }

    /// Maps the 4 KiB page at `va` to frame `pa` (present, unless `page_flags` has
    /// [`flags::PARKED`]: then the entry only keeps the frame).
    pub fn map(&mut self, va: u64, pa: u64, page_flags: u64) -> Result<(), MapError> {
        let entry = self.entry_mut(va, 0)?;
        let present = if page_flags & flags::PARKED != 0 {
            0
        } else {
            flags::PRESENT
        };
        // SAFETY: `entry` is in a live table of this space.
        unsafe {
            if *entry & (flags::PRESENT | flags::PARKED) != 0 {
                return Err(MapError::AlreadyMapped);
            }
            *entry = (pa & ADDR_MASK) | page_flags | present | prefetch_bits(page_flags);
        }
        Ok(())
    }

    /// Maps `[va, va + size)` to `[pa, pa + size)` with 2 MiB pages (all 2 MiB aligned).
    pub fn map_huge_range(
        &mut self,
        va: u64,
        pa: u64,
        size: u64,
        page_flags: u64,
    ) -> Result<(), MapError> {
        let mut offset = 0;
        while offset < size {
            let entry = self.entry_mut(va + offset, 1)?;
            // SAFETY: `entry` is in a live table of this space.
            unsafe {
                *entry = ((pa + offset) & ADDR_MASK) | page_flags | flags::PRESENT | flags::HUGE
            };
            offset += HUGE_SIZE;
        }
        Ok(())
    }

    /// The physical address and flags `va` maps to, if any.
    pub fn translate(&self, va: u64) -> Option<(u64, u64)> {
        let mut table_pa = self.pml4;
        for level in (0..4).rev() {
            // SAFETY: walking live tables of this space, read only.
            let value = unsafe { *table(table_pa).wrapping_add(index(va, level)) };
            if value & flags::PRESENT == 0 {
                return None;
            }
            if level == 0 || (level == 1 && value & flags::HUGE != 0) {
                let page_size = if level == 0 { PAGE_SIZE } else { HUGE_SIZE };
                let pa = (value & ADDR_MASK & !(page_size - 1)) + (va & (page_size - 1));
                return Some((pa, value & !ADDR_MASK));
            }
            table_pa = value & ADDR_MASK;
        }
        None
    }

    /// Removes the mapping of the 4 KiB page at `va`, returning its frame (`None` for an
    /// address inside a 2 MiB page: see [`Self::unmap_range`]).
    pub fn unmap(&mut self, va: u64) -> Option<u64> {
        let mut table_pa = self.pml4;
        for level in (1..4).rev() {
            // SAFETY: walking live tables of this space.
            let value = unsafe { *table(table_pa).wrapping_add(index(va, level)) };
            if value & flags::PRESENT == 0 || value & flags::HUGE != 0 {
                return None;
            }
            table_pa = value & ADDR_MASK;
        }
        let entry = table(table_pa).wrapping_add(index(va, 0));
        // SAFETY: `entry` is in a live table of this space.
        unsafe {
            let value = *entry;
            if value & (flags::PRESENT | flags::PARKED) == 0 {
                return None;
            }
            *entry = 0;
            crate::arch::cpu::invlpg(va);
            Some(value & ADDR_MASK)
        }
    }

    /// The PD entry for `va` if the tables above it exist (nothing is created).
    fn pd_entry(&self, va: u64) -> Option<*mut u64> {
        let mut table_pa = self.pml4;
        for level in (2..4).rev() {
            // SAFETY: walking live tables of this space, read only.
            let value = unsafe { *table(table_pa).wrapping_add(index(va, level)) };
            if value & flags::PRESENT == 0 || value & flags::HUGE != 0 {
                return None;
            }
            table_pa = value & ADDR_MASK;
        }
        Some(table(table_pa).wrapping_add(index(va, 1)))
    }

    /// True if nothing at all is mapped (or parked) in the 2 MiB region at `va` (2 MiB
    /// aligned, user half), so that [`Self::map_huge`] can map it.
    pub fn huge_slot_free(&self, va: u64) -> bool {
        let Some(entry) = self.pd_entry(va) else {
            return true;
        };
        // SAFETY: `entry` is in a live table of this space.
        let value = unsafe { *entry };
        if value & flags::PRESENT == 0 {
            return true;
        }
        if value & flags::HUGE != 0 {
            return false;
        }
        let pt = table(value & ADDR_MASK);
        // SAFETY: a present PD entry without HUGE points to a live page table.
        (0..ENTRIES as usize).all(|i| unsafe { *pt.add(i) } == 0)
    }

    /// Maps the 2 MiB page at `va` (2 MiB aligned, user half) to the block at `pa` (2 MiB
    /// aligned) with `page_flags`, which must not park it: a 2 MiB page is always present.
    /// The region must be free ([`Self::huge_slot_free`]); an empty page table there is
    /// freed.
    pub fn map_huge(&mut self, va: u64, pa: u64, page_flags: u64) -> Result<(), MapError> {
        debug_assert!(page_flags & flags::PARKED == 0 && va.is_multiple_of(HUGE_SIZE));
        if !self.huge_slot_free(va) {
            return Err(MapError::AlreadyMapped);
        }
        let entry = self.entry_mut(va, 1)?;
        // SAFETY: `entry` is in a live table of this space.
        let old = unsafe { *entry };
        // SAFETY: as above.
        unsafe {
            *entry = (pa & ADDR_MASK)
                | page_flags
                | flags::PRESENT
                | flags::HUGE
                | prefetch_bits(page_flags)
        };
        if old & flags::PRESENT != 0 {
            // An empty page table was there: drop it and any cached walk through it.
            crate::arch::cpu::invlpg(va);
            frame::free_table(old & ADDR_MASK);
        }
        Ok(())
    }

    /// Replaces the 2 MiB page in PD entry `entry` (mapping `va`) by a page table of 512
    /// 4 KiB pages over the same frames, with the same flags.
    fn split_entry(entry: *mut u64, va: u64) -> Result<(), MapError> {
        let pt = frame::FRAMES.lock().alloc().ok_or(MapError::OutOfMemory)?;
        // SAFETY: `entry` is a live PD entry of the caller's space.
        let value = unsafe { *entry };
        let base = value & ADDR_MASK & !(HUGE_SIZE - 1);
        let leaf_flags = value & !ADDR_MASK & !flags::HUGE;
        for i in 0..ENTRIES {
            // SAFETY: `pt` is a fresh frame of ours, direct-mapped; i < 512.
            unsafe { *table(pt).add(i as usize) = (base + i * PAGE_SIZE) | leaf_flags };
        }
        // SAFETY: as above; the same translations, now through a page table.
        unsafe { *entry = pt | table_flags(va) };
        crate::arch::cpu::invlpg(va);
        Ok(())
    }

    /// Splits each 2 MiB page that `[start, end)` covers only in part (with `all`: each
    /// one it touches) into 4 KiB pages over the same frames, so that an operation on
    /// 4 KiB pages can follow. On error (no frame for a page table) the pages split so far
    /// stay split, which maps the same memory the same way.
    pub fn split_huge(&mut self, start: u64, end: u64, all: bool) -> Result<(), MapError> {
        let mut result = Ok(());
        self.walk(start, end, |va, entry, leaf| {
            let partial = va < start || va + HUGE_SIZE > end;
            if leaf == Leaf::Huge && (all || partial) && result.is_ok() {
                result = Self::split_entry(entry, va);
            }
        });
        result
    }

    /// Calls `f(va, entry, leaf)` for each entry in `[start, end)` (page aligned, user
    /// half) that holds frames: 4 KiB entries (present or parked) and 2 MiB pages,
    /// skipping absent tables whole so that a huge sparse range costs little.
    pub(super) fn walk(&self, start: u64, end: u64, mut f: impl FnMut(u64, *mut u64, Leaf)) {
        let end = end.min(USER_END);
        let mut va = start;
        'pages: while va < end {
            let mut table_pa = self.pml4;
            for level in (1..4).rev() {
                let entry = table(table_pa).wrapping_add(index(va, level));
                // SAFETY: walking live tables of this space.
                let value = unsafe { *entry };
                let span = 1u64 << (12 + 9 * level);
                if value & flags::PRESENT == 0 {
                    // Nothing below this entry: skip its whole span.
                    va = (va & !(span - 1)) + span;
                    continue 'pages;
                }
                if value & flags::HUGE != 0 {
                    if level == 1 {
                        f(va & !(span - 1), entry, Leaf::Huge);
                    }
                    va = (va & !(span - 1)) + span;
                    continue 'pages;
                }
                table_pa = value & ADDR_MASK;
            }
            let entry = table(table_pa).wrapping_add(index(va, 0));
            // SAFETY: `entry` is in a live table of this space.
            if unsafe { *entry } & (flags::PRESENT | flags::PARKED) != 0 {
                f(va, entry, Leaf::Small);
            }
            va += PAGE_SIZE;
        }
    }

    /// Calls `f(va, pa, flags)` for each 4 KiB page in `[start, end)` that has a frame
    /// (parked ones included: their flags have [`flags::PARKED`]); the pages of a 2 MiB
    /// page come one by one, with its flags less [`flags::HUGE`].
    pub fn for_each_mapped(&self, start: u64, end: u64, mut f: impl FnMut(u64, u64, u64)) {
        self.walk(start, end, |va, entry, leaf| {
            // SAFETY: `entry` is an entry of this space's tables that holds a frame.
            let value = unsafe { *entry };
            let (pa, page_flags) = (value & ADDR_MASK, value & !ADDR_MASK);
            match leaf {
                Leaf::Small => f(va, pa, page_flags),
                Leaf::Huge => {
                    let mut at = va.max(start);
                    while at < (va + HUGE_SIZE).min(end) {
                        f(at, pa + (at - va), page_flags & !flags::HUGE);
                        at += PAGE_SIZE;
                    }
                }
            }
        });
    }

    /// Calls `f(va, pa, flags, size)` for each mapping in `[start, end)`: 4 KiB pages
    /// (size [`PAGE_SIZE`]) and 2 MiB pages (size [`HUGE_PAGE_SIZE`], reported at their
    /// first address, which may lie outside the range if it covers them in part).
    pub fn for_each_leaf(&self, start: u64, end: u64, mut f: impl FnMut(u64, u64, u64, u64)) {
        self.walk(start, end, |va, entry, leaf| {
            // SAFETY: `entry` is an entry of this space's tables that holds a frame.
            let value = unsafe { *entry };
            let size = match leaf {
                Leaf::Small => PAGE_SIZE,
                Leaf::Huge => HUGE_SIZE,
            };
            f(va, value & ADDR_MASK, value & !ADDR_MASK, size);
        });
    }

    /// Unmaps every page in `[start, end)` (parked ones included), handing each frame
    /// to `f(va, pa, size)`: a 4 KiB frame, or a whole 2 MiB block (size
    /// [`HUGE_PAGE_SIZE`]) for a 2 MiB page the range covers; a 2 MiB page it covers in
    /// part is split first and loses only those 4 KiB pages. Flushes the TLB for them and
    /// returns how many 4 KiB pages went. Fails, changing nothing, only if a split finds no
    /// frame for its page table.
    pub fn unmap_range(
        &mut self,
        start: u64,
        end: u64,
        mut f: impl FnMut(u64, u64, u64),
    ) -> Result<u64, MapError> {
        self.split_huge(start, end, false)?;
        let mut flush = TlbFlush::default();
        let mut pages = 0;
        self.walk(start, end, |va, entry, leaf| {
            // SAFETY: `entry` is an entry of this space's tables that holds a frame.
            let value = unsafe { core::ptr::replace(entry, 0) };
            flush.page(va);
            let size = match leaf {
                Leaf::Small => PAGE_SIZE,
                Leaf::Huge => HUGE_SIZE,
            };
            pages += size / PAGE_SIZE;
            f(va, value & ADDR_MASK, size);
        });
        flush.finish();
        Ok(pages)
    }

    /// Replaces the flags of every page with a frame in `[start, end)` by `page_flags`
    /// (plus PRESENT unless they have [`flags::PARKED`]), keeping the frame, and flushes
    /// the TLB for them. With `private`, a page whose frame another owner shares stays
    /// read-only (it is copied on write). A 2 MiB page the range covers in part, or that
    /// is to be parked, is split first. Fails, changing nothing, only if a split finds no
    /// frame for its page table.
    pub fn protect_range(
        &mut self,
        start: u64,
        end: u64,
        page_flags: u64,
        private: bool,
    ) -> Result<(), MapError> {
        let parked = page_flags & flags::PARKED != 0;
        self.split_huge(start, end, parked)?;
        let present = if parked { 0 } else { flags::PRESENT };
        let mut flush = TlbFlush::default();
        self.walk(start, end, |va, entry, leaf| {
            // SAFETY: `entry` is an entry of this space's tables that holds a frame.
            let old = unsafe { *entry };
            let pa = old & ADDR_MASK;
            let mut page_flags = page_flags;
            if private && page_flags & flags::WRITABLE != 0 && leaf.shared(pa) {
                page_flags &= !flags::WRITABLE;
            }
            let extra = match leaf {
                Leaf::Small => 0,
                Leaf::Huge => flags::HUGE | prefetch_bits(page_flags),
            };
            let new = pa | page_flags | present | extra;
            if new != old {
                // SAFETY: as above.
                unsafe { *entry = new };
                if needs_flush(old, new) {
                    flush.page(va);
                }
            }
        });
        flush.finish();
        Ok(())
    }

    /// Frees every user page table of this space and gives up its user pages (a frame
    /// another space shares stays with it). The kernel half is shared and left alone.
    pub fn free_user_half(&mut self) {
        self.release_user_half(true);
    }

    /// Frees the whole space: its user half, then its root ([`Self::free_root`]). The
    /// PML4s' user entries are left as they are, since the PML4s go too: on PVM each write
    /// to a page table the host shadows is a trap (two per top-level entry, ~120k cycles
    /// each on 2026-12-05).
    pub fn free(&mut self) {
        self.release_user_half(false);
        self.free_root();
    }

    /// [`Self::free_user_half`]; the PML4 entries are cleared only if `clear`.
    fn release_user_half(&mut self, clear: bool) {
        fn free_level(table_pa: u64, level: u32) {
            for i in 0..512 {
                // SAFETY: walking tables owned by the dying space.
                let value = unsafe { *table(table_pa).add(i) };
                if value & flags::PRESENT == 0 {
                    if level == 0 && value & flags::PARKED != 0 {
                        refcount::release(value & ADDR_MASK);
                    }
                    continue;
                }
                let pa = value & ADDR_MASK;
                if level == 1 && value & flags::HUGE != 0 {
                    refcount::release_block(pa);
                } else if level > 0 {
                    free_level(pa, level - 1);
                    frame::free_table(pa);
                } else {
                    refcount::release(pa);
                }
            }
        }
        for i in 0..256 {
            // SAFETY: the PML4 is ours.
            let value = unsafe { *table(self.pml4).add(i) };
            if value & flags::PRESENT != 0 {
                free_level(value & ADDR_MASK, 2);
                frame::free_table(value & ADDR_MASK);
                if !clear {
                    continue;
                }
                // SAFETY: as above.
                unsafe { *table(self.pml4).add(i) = 0 };
                if self.user_pml4 != 0 {
                    // SAFETY: the user PML4 shares this entry; clear its copy.
                    unsafe { *table(self.user_pml4).add(i) = 0 };
                }
            }
        }
    }

    /// Frees the PML4 itself (and the user-mode PML4 with its private kernel-half tables,
    /// not the kernel pages they map); the space must not be used afterwards.
    pub fn free_root(&mut self) {
        fn free_tables(table_pa: u64, level: u32) {
            for i in 0..512 {
                // SAFETY: walking tables owned by the dying user-mode PML4.
                let value = unsafe { *table(table_pa).add(i) };
                if value & flags::PRESENT != 0 && level > 0 && value & flags::HUGE == 0 {
                    free_tables(value & ADDR_MASK, level - 1);
                    frame::free_table(value & ADDR_MASK);
                }
            }
        }
        if self.user_pml4 != 0 {
            for i in 256..512 {
                // SAFETY: the user PML4 is ours; its kernel half is private to it.
                let value = unsafe { *table(self.user_pml4).add(i) };
                if value & flags::PRESENT != 0 {
                    free_tables(value & ADDR_MASK, 2);
                    frame::free_table(value & ADDR_MASK);
                }
            }
            frame::free_table(self.user_pml4);
            self.user_pml4 = 0;
        }
        if self.pml4 != 0 {
            frame::free_table(self.pml4);
            self.pml4 = 0;
        }
    }

    /// Makes this space the current one.
    ///
    /// # Safety
    /// The space must map the kernel (it was made by `new_user` from the kernel space).
    pub unsafe fn activate(&self) {
        // SAFETY: guaranteed by the caller.
        unsafe { crate::arch::cpu::write_cr3(self.pml4) };
    }
}

#[cfg(test)]
mod tests {
    use super::flags::*;
    use super::needs_flush;

    #[test]
    fn only_lost_permissions_or_a_new_frame_need_a_flush() {
        let ro = PRESENT | USER | NO_EXECUTE | ACCESSED | 0x5000;
        let rw = ro | WRITABLE | DIRTY;
        // Gaining write access, losing no-execute, the accessed/dirty bits: no flush.
        assert!(!needs_flush(ro, rw));
        assert!(!needs_flush(ro, ro & !NO_EXECUTE));
        assert!(!needs_flush(ro, ro & !ACCESSED));
        // Nothing cached for an entry that was not present.
        assert!(!needs_flush(ro & !PRESENT, rw));
        assert!(!needs_flush(PARKED | 0x5000, rw));
        // Losing write, user or present access, gaining no-execute, a new frame: flush.
        assert!(needs_flush(rw, ro));
        assert!(needs_flush(rw, rw & !USER));
        assert!(needs_flush(rw, (rw & !PRESENT) | PARKED));
        assert!(needs_flush(rw & !NO_EXECUTE, rw));
        assert!(needs_flush(rw, (rw & !0x5000) | 0x6000));
        assert!(needs_flush(rw, rw | GLOBAL));
    }
}

//! Copy-on-write: [`Mm::fork`] copies an address space by sharing its frames, and the
//! first write to a shared private page copies it ([`break_cow`]).
//!
//! Fork gives every frame of the parent one more owner (see [`super::refcount`]) and maps
//! it in the child with the same flags, less write access for private memory, which the
//! parent loses too; `MAP_SHARED` memory stays writable in both, so both write the same
//! frames. A write fault on a read-only page of a private area then copies the frame if
//! another owner still has it, or just makes it writable if the others have let it go.
//!
//! A 2 MiB page is shared whole. Its first write copies it whole into a new 2 MiB page
//! when memory is plentiful and an aligned block is free, else it is split into 512
//! read-only 4 KiB pages over the same frames and only the written one is copied. Copying
//! whole costs one fault and one 2 MiB copy; splitting costs a fault per written 4 KiB
//! page, and on PVM a fault costs more than the copy (the `mm_cow_huge_*` self-test prints
//! both), so whole is the first choice and splitting the fallback.
//!
//! Fork runs with the parent's `Mm` borrowed mutably (its lock, once threads share it) and
//! flushes the parent's translations on this CPU; with several CPUs, the others running
//! threads of the parent will need a TLB shootdown there. The counters themselves are
//! atomic and need no lock.

use super::fault::{huge_page_affordable, FaultError};
use super::paging::{
    flags, prefetch_bits, AddressSpace, Leaf, MapError, TlbFlush, ADDR_MASK, HUGE_PAGE_SIZE,
    USER_END,
};
use super::user::UserMemory;
use super::{frame, phys_to_virt, refcount, Mm, PAGE_SIZE};
use crate::errno::Errno;

impl Leaf {
    /// Its size in bytes.
    pub(super) fn size(self) -> u64 {
        match self {
            Leaf::Small => PAGE_SIZE,
            Leaf::Huge => HUGE_PAGE_SIZE,
        }
    }

    /// True if another owner shares a frame of this leaf at `pa` (copy on write).
    pub(super) fn shared(self, pa: u64) -> bool {
        match self {
            Leaf::Small => refcount::is_shared(pa),
            Leaf::Huge => refcount::block_shared(pa),
        }
    }
}

impl AddressSpace {
    /// Installs the raw leaf entry `value` (a 4 KiB entry, present or parked, or a 2 MiB
    /// page) at `va` in this space, where nothing is mapped. The frames' owners are the
    /// caller's business.
    fn install_leaf(&mut self, va: u64, value: u64, leaf: Leaf) -> Result<(), MapError> {
        let level = match leaf {
            Leaf::Small => 0,
            Leaf::Huge => 1,
        };
        let entry = self.entry_mut(va, level)?;
        // SAFETY: `entry` is in a live table of this space.
        unsafe {
            if *entry != 0 {
                return Err(MapError::AlreadyMapped);
            }
            *entry = value;
        }
        Ok(())
    }

    /// Points the present leaf that maps `va` (a 4 KiB page, or a 2 MiB page when `pa`
    /// is a block) at frame `pa` with `page_flags`, flushing its translation if `flush`;
    /// returns the frame it had, whose owner reference passes to the caller.
    fn replace_leaf(&mut self, va: u64, pa: u64, page_flags: u64, flush: bool) -> Option<u64> {
        let mut old = None;
        let end = va + PAGE_SIZE;
        self.walk(va, end, |at, entry, leaf| {
            // SAFETY: `entry` is an entry of this space's tables that holds a frame.
            let value = unsafe { *entry };
            if value & flags::PRESENT == 0 {
                return;
            }
            let extra = match leaf {
                Leaf::Small => 0,
                Leaf::Huge => flags::HUGE,
            };
            let new = pa | page_flags | flags::PRESENT | extra | prefetch_bits(page_flags);
            // SAFETY: as above.
            unsafe { *entry = new };
            if flush {
                crate::arch::cpu::invlpg(at);
            }
            old = Some(value & ADDR_MASK);
        });
        old
    }

    /// Calls `f(va, entry, leaf)` for every leaf with a frame in `[start, end)` and stores
    /// what it returns as the new entry, flushing the translations that changed.
    fn update_leaves(&mut self, start: u64, end: u64, mut f: impl FnMut(u64, u64, Leaf) -> u64) {
        let mut flush = TlbFlush::default();
        self.walk(start, end, |va, entry, leaf| {
            // SAFETY: `entry` is an entry of this space's tables that holds a frame.
            let value = unsafe { *entry };
            let new = f(va, value, leaf);
            if new != value {
                // SAFETY: as above.
                unsafe { *entry = new };
                flush.page(va);
            }
        });
        flush.finish();
    }
}

fn share(pa: u64, leaf: Leaf) -> Result<(), refcount::ShareError> {
    match leaf {
        Leaf::Small => refcount::share(pa),
        Leaf::Huge => refcount::share_block(pa),
    }
}

fn release(pa: u64, leaf: Leaf) {
    match leaf {
        Leaf::Small => refcount::release(pa),
        Leaf::Huge => refcount::release_block(pa),
    }
}

impl Mm {
    /// fork's copy of this address space: the same areas, break and layout, every page
    /// shared with this one (private pages read-only in both until written, `MAP_SHARED`
    /// ones writable). ENOMEM if a page table, the area list or a reference counter
    /// cannot be had; then nothing is left allocated, and the pages of this space that
    /// lost write access get it back on their next write fault.
    pub fn fork(&mut self) -> Result<Mm, Errno> {
        let space = AddressSpace::new_user(super::kernel_space()).map_err(|_| Errno::ENOMEM)?;
        let mem = UserMemory {
            vmas: self.mem.vmas.try_clone().map_err(|_| Errno::ENOMEM)?,
            brk_start: self.mem.brk_start,
            brk: self.mem.brk,
            mmap_base: self.mem.mmap_base,
            split_huge_cow: self.mem.split_huge_cow,
            ..UserMemory::default()
        };
        // From here on, dropping `child` frees its tables and gives up its references.
        let mut child = crate::task::new_mm(space, mem).map_err(|_| Errno::ENOMEM)?;
        let mut failed = false;
        let vmas = &self.mem.vmas;
        let child_tables = &mut child.space;
        self.space.update_leaves(0, USER_END, |va, value, leaf| {
            if failed {
                return value;
            }
            let pa = value & ADDR_MASK;
            let shared = vmas.find(va).is_some_and(|v| v.flags.shared);
            let value = if shared {
                value
            } else {
                value & !flags::WRITABLE
            };
            if share(pa, leaf).is_err() {
                failed = true;
            } else if child_tables.install_leaf(va, value, leaf).is_err() {
                // Still owned here: this only takes the new reference back.
                release(pa, leaf);
                failed = true;
            }
            value
        });
        if failed {
            // Dropping the child gives up every frame it took a reference on.
            return Err(Errno::ENOMEM);
        }
        Ok(child)
    }
}

/// Copies the 2 MiB page at `base` (block `block`) into a new block mapped with
/// `page_flags`, if memory is plentiful and a block is free; false (nothing changed) if
/// not.
fn copy_huge(space: &mut AddressSpace, base: u64, block: u64, page_flags: u64) -> bool {
    let affordable = {
        let frames = frame::FRAMES.lock();
        huge_page_affordable(frames.free_frames(), frames.total_frames())
    };
    if !affordable {
        return false;
    }
    let Some(new) = frame::FRAMES.lock().alloc_block() else {
        return false;
    };
    // SAFETY: `new` is ours; `block` is mapped read-only everywhere (a private page
    // another owner shares), so nothing changes it while we copy; both are direct-mapped.
    unsafe {
        core::ptr::copy_nonoverlapping(
            phys_to_virt(block) as *const u8,
            phys_to_virt(new) as *mut u8,
            HUGE_PAGE_SIZE as usize,
        )
    };
    match space.replace_leaf(base, new, page_flags, true) {
        Some(old) => {
            refcount::release_block(old);
            true
        }
        None => {
            frame::free_block(new);
            false
        }
    }
}

/// Makes the present page at `page` of a private area writable for a write fault (with
/// `page_flags` afterwards): copies its frame if another owner shares it, else keeps it.
/// A shared 2 MiB page is copied whole, or (with `split`, or when no block is to be had)
/// split so that only this 4 KiB page is copied.
///
/// `faulted`: the CPU took a page fault at `page` for this, which dropped its cached
/// translation of the address (Intel SDM 3A 4.10.4.1; on PVM the host's shadow entry
/// follows the guest's on the next access, and a stale one would only cost a spurious
/// fault that `fault_checked` flushes). A 4 KiB copy then needs no `invlpg`, a trap of
/// ~130k cycles on PVM (2026-12-05: a fork+exit+wait loop's copy faults went from 260k
/// to 130k cycles a round). With a second vCPU, the others running this space will need a
/// shootdown here.
pub(super) fn break_cow(
    space: &mut AddressSpace,
    page: u64,
    page_flags: u64,
    split: bool,
    faulted: bool,
) -> Result<(), FaultError> {
    let oom = |_: MapError| FaultError::OutOfMemory;
    let (pa, have) = space.translate(page).ok_or(FaultError::Unmapped)?;
    if have & flags::HUGE != 0 {
        let base = page & !(HUGE_PAGE_SIZE - 1);
        let block = pa & !(HUGE_PAGE_SIZE - 1);
        if !refcount::block_shared(block) {
            return space
                .protect_range(base, base + HUGE_PAGE_SIZE, page_flags, false)
                .map_err(oom);
        }
        if !split && copy_huge(space, base, block, page_flags) {
            return Ok(());
        }
        space
            .split_huge(base, base + HUGE_PAGE_SIZE, true)
            .map_err(oom)?;
    }
    let (pa, _) = space.translate(page).ok_or(FaultError::Unmapped)?;
    let pa = pa & !(PAGE_SIZE - 1);
    if !refcount::is_shared(pa) {
        return space
            .protect_range(page, page + PAGE_SIZE, page_flags, false)
            .map_err(oom);
    }
    let new = frame::FRAMES
        .lock()
        .alloc()
        .ok_or(FaultError::OutOfMemory)?;
    // SAFETY: `new` is ours; `pa` is mapped read-only by all its owners, so it does not
    // change while we copy; both are direct-mapped.
    unsafe {
        core::ptr::copy_nonoverlapping(
            phys_to_virt(pa) as *const u8,
            phys_to_virt(new) as *mut u8,
            PAGE_SIZE as usize,
        )
    };
    match space.replace_leaf(page, new, page_flags, !faulted) {
        Some(old) => refcount::release(old),
        None => frame::free(new),
    }
    Ok(())
}

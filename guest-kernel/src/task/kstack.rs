//! Kernel stacks: each task's stack lives in its own slot of a dedicated kernel region,
//! with unmapped pages below it, so that an overflow faults at once instead of silently
//! writing over a neighbour in the heap.
//!
//! The region's top-level entry is created at boot, before any user address space copies
//! the kernel half, so every space sees the stacks mapped later (the user-mode tables of
//! kernel isolation never map them: the entry code moves frames from the trampoline).
//! Slots are recycled. A freed stack first goes to a small cache of mapped stacks that the
//! next new task takes, zeroed again, as Linux's cached vmap stacks: that saves a fork and
//! an exit 16 page-table writes and 16 `invlpg`s, each a trap to the host on PVM (about
//! 2.2M cycles a fork+exit there, 2026-12-05). Beyond the cache, a freed stack's frames go
//! back to the frame allocator and its pages are unmapped (and their translations dropped)
//! before the slot can be handed out again. The slot map is a fixed bitmap and the cache a
//! fixed array, so freeing never allocates.

use alloc::string::String;

use spin::Mutex;

use crate::arch::{cpu, platform};
use crate::mm::paging::flags;
use crate::mm::{frame, phys_to_virt, PAGE_SIZE};

/// Base of the region: PML4 slot 480, inside the range a PVM host leaves to guests (see
/// `hypercall_abi::layout::PHYS_MAP_BASE`).
const REGION_BASE: u64 = 0xffff_f000_0000_0000;
/// Usable pages of a stack.
pub const STACK_PAGES: u64 = 16;
/// Size of a stack in bytes.
pub const STACK_SIZE: u64 = STACK_PAGES * PAGE_SIZE;
/// Each slot is twice a stack: the lower half stays unmapped (the guard).
const SLOT_SIZE: u64 = 2 * STACK_SIZE;
/// Most stacks that can exist at once (the region spans 1 GiB).
pub const MAX_STACKS: u64 = (1 << 30) / SLOT_SIZE;

const ADDR_MASK: u64 = 0x000f_ffff_ffff_f000;

/// One bit per slot: set while a stack uses it.
struct Slots([u64; (MAX_STACKS / 64) as usize]);

impl Slots {
    fn take(&mut self) -> Option<u64> {
        let (word, bits) = self
            .0
            .iter_mut()
            .enumerate()
            .find(|(_, w)| **w != u64::MAX)?;
        let bit = bits.trailing_ones() as u64;
        *bits |= 1 << bit;
        Some(word as u64 * 64 + bit)
    }

    fn give_back(&mut self, slot: u64) {
        self.0[(slot / 64) as usize] &= !(1 << (slot % 64));
    }
}

static SLOTS: Mutex<Slots> = Mutex::new(Slots([0; (MAX_STACKS / 64) as usize]));

/// Freed stacks kept mapped (512 KiB at most).
const CACHE_MAX: usize = 8;

/// The slots of freed stacks whose pages are still mapped, `len` of them.
struct Cache {
    slots: [u64; CACHE_MAX],
    len: usize,
}

static CACHE: Mutex<Cache> = Mutex::new(Cache {
    slots: [0; CACHE_MAX],
    len: 0,
});

impl Cache {
    fn pop(&mut self) -> Option<u64> {
        self.len = self.len.checked_sub(1)?;
        Some(self.slots[self.len])
    }

    /// Keeps `slot`; false when full.
    fn push(&mut self, slot: u64) -> bool {
        let Some(free) = self.slots.get_mut(self.len) else {
            return false;
        };
        *free = slot;
        self.len += 1;
        true
    }
}

/// Out of frames or out of slots.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NoStack;

/// A task's kernel stack; dropping it unmaps and frees its pages.
#[derive(Debug)]
pub struct KernelStack {
    slot: u64,
}

fn index(va: u64, level: u32) -> usize {
    ((va >> (12 + 9 * level)) & 511) as usize
}

fn table(pa: u64) -> *mut u64 {
    phys_to_virt(pa) as *mut u64
}

fn table_flags() -> u64 {
    flags::PRESENT | flags::WRITABLE | platform::kernel_pte_flags()
}

/// The kernel's PML4 (every address space shares its kernel half).
fn kernel_pml4() -> u64 {
    crate::mm::kernel_space().pml4_phys()
}

/// The page-table entry for `va` in the region, creating intermediate tables if
/// `create`. `None` when a table is missing (and not created) or no frame is left.
fn pte(va: u64, create: bool) -> Option<*mut u64> {
    let mut table_pa = kernel_pml4();
    for level in (1..4).rev() {
        let entry = table(table_pa).wrapping_add(index(va, level));
        // SAFETY: `entry` is in a live page-table frame of the kernel half, reached
        // through the direct map; the region's tables are changed only under SLOTS.
        let value = unsafe { *entry };
        if value & flags::PRESENT == 0 {
            if !create {
                return None;
            }
            let new = frame::alloc_zeroed()?;
            // SAFETY: as above.
            unsafe { *entry = new | table_flags() };
            table_pa = new;
        } else {
            table_pa = value & ADDR_MASK;
        }
    }
    Some(table(table_pa).wrapping_add(index(va, 0)))
}

/// Creates the region's top-level entry. Call once at boot, after the kernel's page
/// tables are live and before any user address space is created.
pub fn init() {
    let pml4_entry = table(kernel_pml4()).wrapping_add(index(REGION_BASE, 3));
    // SAFETY: the kernel PML4 is live; nothing else uses this slot.
    if unsafe { *pml4_entry } & flags::PRESENT != 0 {
        return;
    }
    let Some(pdpt) = frame::alloc_zeroed() else {
        panic!("out of memory for the kernel stack region");
    };
    // SAFETY: as above; the new PDPT frame is zeroed.
    unsafe { *pml4_entry = pdpt | table_flags() };
}

impl KernelStack {
    /// A zeroed stack: a cached one if there is one, else a fresh one.
    pub fn new() -> Result<Self, NoStack> {
        let cached = CACHE.lock().pop();
        match cached {
            Some(slot) => {
                let stack = KernelStack { slot };
                // Stale return addresses would show in a later fault report's stack scan:
                // clear them as Linux clears a cached stack.
                // SAFETY: the slot's pages stay mapped while cached and are ours now.
                unsafe {
                    core::ptr::write_bytes(stack.bottom() as *mut u8, 0, STACK_SIZE as usize)
                };
                Ok(stack)
            }
            None => Self::with_frames(frame::alloc_zeroed),
        }
    }

    /// A fresh stack whose pages come from `alloc_frame` (zeroed frames; `None`: no
    /// memory).
    fn with_frames(mut alloc_frame: impl FnMut() -> Option<u64>) -> Result<Self, NoStack> {
        let mut slots = SLOTS.lock();
        let slot = slots.take().ok_or(NoStack)?;
        let stack = KernelStack { slot };
        let leaf = flags::PRESENT
            | flags::WRITABLE
            | flags::NO_EXECUTE
            | flags::GLOBAL
            | platform::kernel_pte_flags();
        for page in 0..STACK_PAGES {
            let va = stack.bottom() + page * PAGE_SIZE;
            let mapped = pte(va, true).and_then(|entry| {
                let pa = alloc_frame()?;
                // SAFETY: `entry` is this slot's own page-table entry, unused (slots
                // are unmapped when freed), changed only under SLOTS.
                unsafe { *entry = pa | leaf };
                Some(())
            });
            if mapped.is_none() {
                // Unmap the pages mapped so far and recycle the slot (never into the
                // cache: the stack is incomplete).
                drop(slots);
                core::mem::forget(stack);
                unmap_slot(slot);
                return Err(NoStack);
            }
        }
        Ok(stack)
    }

    /// Lowest address of the stack (the guard pages are just below).
    pub fn bottom(&self) -> u64 {
        bottom_of(self.slot)
    }

    /// One past the highest address: the initial stack pointer.
    pub fn top(&self) -> u64 {
        self.bottom() + STACK_SIZE
    }

    /// `[bottom, top)`.
    pub fn range(&self) -> (u64, u64) {
        (self.bottom(), self.top())
    }
}

/// True if `va` lies in the guard pages of some kernel stack.
pub fn is_guard_address(va: u64) -> bool {
    if !(REGION_BASE..REGION_BASE + MAX_STACKS * SLOT_SIZE).contains(&va) {
        return false;
    }
    (va - REGION_BASE) % SLOT_SIZE < SLOT_SIZE - STACK_SIZE
}

/// One past the highest address of the kernel stack (slot) `va` is in, if it is in the
/// stack region and not in a guard.
pub fn top_of(va: u64) -> Option<u64> {
    if !(REGION_BASE..REGION_BASE + MAX_STACKS * SLOT_SIZE).contains(&va) || is_guard_address(va) {
        return None;
    }
    Some(REGION_BASE + ((va - REGION_BASE) / SLOT_SIZE + 1) * SLOT_SIZE)
}

/// Recurses on a fresh kernel stack until it runs into its guard pages (the boot
/// parameter `astra.kstack_overflow`): the fault report names the overflow and the VM
/// ends as a kernel crash, instead of the kernel writing over whatever lies below.
pub fn overflow_one() -> ! {
    extern "C" fn recurse_forever() -> ! {
        fn deeper(depth: u64) -> u64 {
            let mut frame = [0u8; 256];
            frame[0] = depth as u8;
            let frame = core::hint::black_box(frame);
            if core::hint::black_box(depth) == u64::MAX {
                return 0;
            }
            deeper(depth + 1).wrapping_add(u64::from(frame[1]))
        }
        deeper(0);
        panic!("the recursion ended");
    }
    let stack = KernelStack::new().unwrap_or_else(|_| panic!("no frames for a kernel stack"));
    let top = stack.top();
    core::mem::forget(stack);
    // SAFETY: a fresh stack, mapped, never freed (forgotten), used by nothing else.
    unsafe { crate::arch::context::run_on_stack(top, recurse_forever) }
}

impl Drop for KernelStack {
    fn drop(&mut self) {
        if !CACHE.lock().push(self.slot) {
            unmap_slot(self.slot);
        }
    }
}

/// Lowest address of the stack in `slot`.
fn bottom_of(slot: u64) -> u64 {
    REGION_BASE + slot * SLOT_SIZE + (SLOT_SIZE - STACK_SIZE)
}

/// Unmaps the pages of `slot`, frees their frames and gives the slot back.
fn unmap_slot(slot: u64) {
    let mut slots = SLOTS.lock();
    for page in 0..STACK_PAGES {
        let va = bottom_of(slot) + page * PAGE_SIZE;
        let Some(entry) = pte(va, false) else {
            continue;
        };
        // SAFETY: this slot's own entry, changed only under SLOTS.
        let value = unsafe { core::ptr::replace(entry, 0) };
        if value & flags::PRESENT != 0 {
            cpu::invlpg(va);
            frame::free(value & ADDR_MASK);
        }
    }
    slots.give_back(slot);
}

/// Unmaps and frees every cached stack (tests that count frames; memory pressure).
pub fn drain_cache() {
    loop {
        let cached = CACHE.lock().pop();
        match cached {
            Some(slot) => unmap_slot(slot),
            None => break,
        }
    }
}

/// Self-test (`astra.test`): a stack is mapped and zeroed, the pages below it are not,
/// a freed stack is unmapped and its frames returned, and running out of frames is an
/// error that leaks nothing.
pub fn selftest() -> Result<(), alloc::string::String> {
    use alloc::format;
    let space = crate::mm::kernel_space();
    // The region's page tables stay once made: make them first.
    drop(KernelStack::new().map_err(|_| "no stack")?);
    drain_cache();
    let free_before = frame::FRAMES.lock().free_frames();
    let stack = KernelStack::new().map_err(|_| "no stack")?;
    let (bottom, top) = stack.range();
    for va in [bottom, top - 8] {
        if space.translate(va).is_none() {
            return Err(format!("{va:#x} of the stack is not mapped"));
        }
    }
    for va in [bottom - 8, bottom - STACK_SIZE] {
        if space.translate(va).is_some() || !is_guard_address(va) {
            return Err(format!("{va:#x} below the stack is not a guard page"));
        }
    }
    // SAFETY: the stack is mapped and ours.
    unsafe { core::ptr::write_volatile((top - 8) as *mut u64, 0x5a5a) };
    // Freed, it waits in the cache, mapped; the next stack is that one, zeroed.
    drop(stack);
    if space.translate(bottom).is_none() {
        return Err(String::from("a cached stack was unmapped"));
    }
    let again = KernelStack::new().map_err(|_| "no stack")?;
    // SAFETY: as above.
    let reused = unsafe { core::ptr::read_volatile((again.top() - 8) as *const u64) };
    if again.bottom() != bottom || reused != 0 {
        return Err(format!(
            "the cached stack came back as {:#x} holding {reused:#x}",
            again.bottom()
        ));
    }
    // More stacks freed than the cache holds: the rest are unmapped at once.
    let many: alloc::vec::Vec<KernelStack> = (0..CACHE_MAX + 2)
        .map(|_| KernelStack::new())
        .collect::<Result<_, _>>()
        .map_err(|_| "no stack")?;
    let ranges: alloc::vec::Vec<(u64, u64)> = many.iter().map(KernelStack::range).collect();
    drop(many);
    let still_mapped = ranges
        .iter()
        .filter(|(bottom, _)| space.translate(*bottom).is_some())
        .count();
    if still_mapped != CACHE_MAX {
        return Err(format!(
            "{still_mapped} freed stacks stay mapped, not {CACHE_MAX}"
        ));
    }
    drop(again);
    drain_cache();
    if space.translate(bottom).is_some() || space.translate(top - 8).is_some() {
        return Err(String::from("a drained stack stays mapped"));
    }
    // Without frames: an error, and what was taken on the way is given back.
    let mut budget = 4;
    let failed = KernelStack::with_frames(|| {
        budget -= 1;
        (budget >= 0).then(frame::alloc_zeroed).flatten()
    })
    .is_err();
    if !failed {
        return Err(String::from("a stack was made without frames"));
    }
    drain_cache();
    let free_after = frame::FRAMES.lock().free_frames();
    if free_after != free_before {
        return Err(format!(
            "{} frames lost",
            free_before.saturating_sub(free_after)
        ));
    }
    Ok(())
}

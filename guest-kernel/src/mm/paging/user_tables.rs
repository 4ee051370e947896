//! The user-mode PML4 of an address space on PVM, where kernel pages carry the user bit
//! and only a second set of tables keeps ring 3 out of them: either the second half of a
//! PML4 pair the host switches to by itself (no kernel page at all), or tables that map
//! the few kernel pages the entry code runs on before it switches (see `arch::x86_64::trap`).

use super::{flags, frame, table, AddressSpace, MapError, ADDR_MASK, PAGE_SIZE};

/// A kernel range an address space's user-mode PML4 maps (see
/// [`AddressSpace::isolate_kernel`]), and what user mode's tables may do with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelRange {
    /// First byte.
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
    /// Mapped writable (the entry trampoline only).
    pub writable: bool,
    /// Mapped executable (the entry text only).
    pub executable: bool,
}

impl AddressSpace {
    /// Creates the user-mode PML4: the same user half, and of the kernel half only the
    /// 4 KiB pages of `kernel_ranges` (kernel virtual, mapped to the same frames as in
    /// this space), writable and executable only where a range says so.
    pub fn isolate_kernel(&mut self, kernel_ranges: &[KernelRange]) -> Result<(), MapError> {
        let mut user = AddressSpace::new_empty()?;
        let built = self.map_kernel_ranges(&mut user, kernel_ranges);
        if let Err(e) = built {
            // Free the kernel-half tables too: they are what free_root frees of a user PML4.
            user.user_pml4 = user.pml4;
            user.pml4 = 0;
            user.free_root();
            return Err(e);
        }
        // SAFETY: both PML4s are live; the user half is shared entry by entry.
        unsafe { core::ptr::copy_nonoverlapping(table(self.pml4), table(user.pml4), 256) };
        self.user_pml4 = user.pml4;
        Ok(())
    }

    /// Gives this space the user-mode PML4 a PVM host switches to by itself (see
    /// `platform::host_switches_tables`): the PML4 moves to the first frame of an 8 KiB
    /// aligned pair whose second frame, the user-mode PML4, shares the user half and maps
    /// nothing of the kernel. Only for a space no CPU has loaded yet.
    pub fn pair_user_tables(&mut self) -> Result<(), MapError> {
        debug_assert!(self.user_pml4 == 0);
        let pair = frame::alloc_pair_zeroed().ok_or(MapError::OutOfMemory)?;
        // SAFETY: the old PML4 and the fresh pair are live page-table frames; the pair's
        // second frame gets the user half only (its kernel half stays empty).
        unsafe {
            core::ptr::copy_nonoverlapping(table(self.pml4), table(pair), 512);
            core::ptr::copy_nonoverlapping(table(self.pml4), table(pair + PAGE_SIZE), 256);
        }
        frame::free(self.pml4);
        self.pml4 = pair;
        self.user_pml4 = pair + PAGE_SIZE;
        Ok(())
    }

    /// Calls `f(va)` for each page of the kernel half the user-mode PML4 maps (the first
    /// address of a large page): what ring 3 could reach of the kernel on PVM.
    pub fn for_each_user_mode_kernel_page(&self, mut f: impl FnMut(u64)) {
        fn visit(table_pa: u64, level: u32, base: u64, f: &mut dyn FnMut(u64)) {
            for i in 0..512u64 {
                // SAFETY: walking live tables of the user-mode PML4, read only.
                let value = unsafe { *table(table_pa).add(i as usize) };
                if value & flags::PRESENT == 0 {
                    continue;
                }
                let va = base | (i << (12 + 9 * level));
                if level == 0 || value & flags::HUGE != 0 {
                    f(va);
                } else {
                    visit(value & ADDR_MASK, level - 1, va, f);
                }
            }
        }
        if self.user_pml4 == 0 {
            return;
        }
        for i in 256..512u64 {
            // SAFETY: as above.
            let value = unsafe { *table(self.user_pml4).add(i as usize) };
            if value & flags::PRESENT != 0 {
                let va = 0xffff_0000_0000_0000 | (i << 39);
                visit(value & ADDR_MASK, 2, va, &mut f);
            }
        }
    }

    fn map_kernel_ranges(
        &self,
        user: &mut AddressSpace,
        ranges: &[KernelRange],
    ) -> Result<(), MapError> {
        for r in ranges {
            let mut va = r.start & !(PAGE_SIZE - 1);
            while va < r.end {
                let (pa, page_flags) = self.translate(va).ok_or(MapError::OutOfMemory)?;
                let mut keep = flags::USER | flags::GLOBAL;
                if r.writable {
                    keep |= flags::WRITABLE;
                }
                let nx = if r.executable { 0 } else { flags::NO_EXECUTE };
                user.map(va, pa & !(PAGE_SIZE - 1), (page_flags & keep) | nx)?;
                va += PAGE_SIZE;
            }
        }
        Ok(())
    }
}

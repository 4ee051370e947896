//! The boot page tables: guest-physical `0..1 GiB` mapped with 2 MiB pages twice, at
//! identity and at [`KERNEL_VIRT_BASE`], as the boot protocol promises.

use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use super::layout::{
    BOOT_MAPPED_SIZE, BOOT_PDPT_HIGH_GPA, BOOT_PDPT_LOW_GPA, BOOT_PD_GPA, BOOT_PML4_GPA,
    KERNEL_VIRT_BASE,
};

/// Entries per page-table page.
const ENTRIES: usize = 512;
/// Present.
const PTE_PRESENT: u64 = 1 << 0;
/// Writable.
const PTE_WRITABLE: u64 = 1 << 1;
/// In a PD entry: maps a 2 MiB page instead of pointing at a page table.
const PTE_HUGE: u64 = 1 << 7;
/// User/supervisor: set on every boot entry. A PVM host runs the guest kernel natively at
/// hardware CPL 3 and cannot execute or touch supervisor-only pages there (it refaults
/// forever); on hardware KVM the bit is harmless for the few instructions before the
/// kernel loads its own tables.
const PTE_USER: u64 = 1 << 2;
/// Size of a page mapped by one PD entry.
const HUGE_PAGE_SIZE: u64 = 2 << 20;

/// Errors writing the boot page tables.
#[derive(Debug, thiserror::Error)]
pub enum PagingError {
    /// A table page lies outside guest RAM.
    #[error("Cannot write the boot page tables to guest memory")]
    Write(#[source] vm_memory::GuestMemoryError),
}

/// The four boot page-table pages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BootPageTables {
    /// At `BOOT_PML4_GPA`.
    pub pml4: [u64; ENTRIES],
    /// At `BOOT_PDPT_LOW_GPA`.
    pub pdpt_low: [u64; ENTRIES],
    /// At `BOOT_PDPT_HIGH_GPA`.
    pub pdpt_high: [u64; ENTRIES],
    /// At `BOOT_PD_GPA`.
    pub pd: [u64; ENTRIES],
}

/// The index of `gva` in the page-table level whose entries map `1 << shift` bytes.
const fn index(gva: u64, shift: u32) -> usize {
    ((gva >> shift) & 0x1ff) as usize
}

impl BootPageTables {
    /// Computes the tables.
    pub fn new() -> Self {
        const TABLE: u64 = PTE_PRESENT | PTE_WRITABLE | PTE_USER;
        let mut tables = BootPageTables {
            pml4: [0; ENTRIES],
            pdpt_low: [0; ENTRIES],
            pdpt_high: [0; ENTRIES],
            pd: [0; ENTRIES],
        };
        tables.pml4[0] = BOOT_PDPT_LOW_GPA | TABLE;
        tables.pml4[index(KERNEL_VIRT_BASE, 39)] = BOOT_PDPT_HIGH_GPA | TABLE;
        tables.pdpt_low[0] = BOOT_PD_GPA | TABLE;
        tables.pdpt_high[index(KERNEL_VIRT_BASE, 30)] = BOOT_PD_GPA | TABLE;
        let pages = (BOOT_MAPPED_SIZE / HUGE_PAGE_SIZE) as usize;
        for (i, entry) in tables.pd.iter_mut().take(pages).enumerate() {
            *entry = (i as u64 * HUGE_PAGE_SIZE) | TABLE | PTE_HUGE;
        }
        tables
    }

    /// Writes the tables to their pages in guest memory.
    pub fn write(&self, mem: &GuestMemoryMmap) -> Result<(), PagingError> {
        for (gpa, table) in [
            (BOOT_PML4_GPA, &self.pml4),
            (BOOT_PDPT_LOW_GPA, &self.pdpt_low),
            (BOOT_PDPT_HIGH_GPA, &self.pdpt_high),
            (BOOT_PD_GPA, &self.pd),
        ] {
            let bytes: Vec<u8> = table.iter().flat_map(|e| e.to_le_bytes()).collect();
            mem.write_slice(&bytes, GuestAddress(gpa))
                .map_err(PagingError::Write)?;
        }
        Ok(())
    }

    /// Walks the tables like the MMU would: the guest-physical address `gva` maps to.
    pub fn translate(&self, gva: u64) -> Option<u64> {
        let table_at = |entry: u64| match entry & !0xfff {
            BOOT_PDPT_LOW_GPA => Some(&self.pdpt_low),
            BOOT_PDPT_HIGH_GPA => Some(&self.pdpt_high),
            BOOT_PD_GPA => Some(&self.pd),
            _ => None,
        };
        let pml4e = self.pml4[index(gva, 39)];
        if pml4e & PTE_PRESENT == 0 {
            return None;
        }
        let pdpte = table_at(pml4e)?[index(gva, 30)];
        if pdpte & PTE_PRESENT == 0 {
            return None;
        }
        let pde = table_at(pdpte)?[index(gva, 21)];
        if pde & PTE_PRESENT == 0 || pde & PTE_HUGE == 0 {
            return None;
        }
        Some((pde & !(HUGE_PAGE_SIZE - 1)) + (gva & (HUGE_PAGE_SIZE - 1)))
    }
}

impl Default for BootPageTables {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_low_gib_at_identity_and_kernel_base() {
        let tables = BootPageTables::new();
        assert_eq!(tables.pml4[0], 0xc007);
        assert_eq!(tables.pml4[511], 0xd007);
        assert_eq!(tables.pdpt_low[0], 0xe007);
        assert_eq!(tables.pdpt_high[510], 0xe007);
        assert_eq!(tables.pd[0], 0x87);
        assert_eq!(tables.pd[511], 0x3fe0_0087);
        for gpa in [0, 0x20_0000, 0x1234_5678, (1 << 30) - 1] {
            assert_eq!(tables.translate(gpa), Some(gpa));
            assert_eq!(tables.translate(KERNEL_VIRT_BASE + gpa), Some(gpa));
        }
        assert_eq!(tables.translate(1 << 30), None);
        assert_eq!(tables.translate(KERNEL_VIRT_BASE + (1 << 30)), None);
        assert_eq!(tables.translate(0xffff_8000_0000_0000), None);
    }

    #[test]
    fn writes_little_endian_entries() {
        let mem = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 1 << 20)]).unwrap();
        BootPageTables::new().write(&mem).unwrap();
        let pml4_last: u64 = mem.read_obj(GuestAddress(BOOT_PML4_GPA + 511 * 8)).unwrap();
        assert_eq!(pml4_last, BOOT_PDPT_HIGH_GPA | 7);
        let pd1: u64 = mem.read_obj(GuestAddress(BOOT_PD_GPA + 8)).unwrap();
        assert_eq!(pd1, (2 << 20) | 0x87);
    }

    #[test]
    fn writing_outside_ram_fails_cleanly() {
        let mem = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 0xc000)]).unwrap();
        assert!(BootPageTables::new().write(&mem).is_err());
    }
}

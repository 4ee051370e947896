//! Guest-virtual to guest-physical translation for the debugger: a walk of x86-64
//! four-level page tables (4 KiB, 2 MiB and 1 GiB pages) read from guest memory.
//!
//! The walk is generic: it takes whatever table root it is given (the one the vCPU or the
//! debug request reports, or the kernel's own as a fallback), so it does not depend on how
//! the kernel isolates itself from user mode.

/// Present.
const PTE_PRESENT: u64 = 1 << 0;
/// A PDPT or PD entry maps a 1 GiB or 2 MiB page.
const PTE_HUGE: u64 = 1 << 7;
/// Physical address bits of an entry (bits 12..52).
const PTE_ADDR: u64 = 0x000f_ffff_ffff_f000;
/// Page-table root bits of CR3 (no PCID, no flags).
const CR3_ADDR: u64 = PTE_ADDR;

/// Reads one 8-byte page-table entry at a guest-physical address.
pub trait PhysRead {
    /// The entry, or `None` if `gpa` is not guest RAM.
    fn read_u64(&self, gpa: u64) -> Option<u64>;
}

impl PhysRead for vm_memory::GuestMemoryMmap {
    fn read_u64(&self, gpa: u64) -> Option<u64> {
        use vm_memory::{Bytes, GuestAddress};
        self.read_obj::<u64>(GuestAddress(gpa)).ok()
    }
}

/// True if `gva` is canonical (bits 48..64 copy bit 47).
pub fn is_canonical(gva: u64) -> bool {
    let top = gva >> 47;
    top == 0 || top == 0x1_ffff
}

/// The guest-physical address `gva` maps to under the tables rooted at `cr3`, or `None`
/// if it is not mapped (or the tables point outside RAM).
pub fn translate(mem: &impl PhysRead, cr3: u64, gva: u64) -> Option<u64> {
    if !is_canonical(gva) || cr3 & CR3_ADDR == 0 {
        return None;
    }
    let mut table = cr3 & CR3_ADDR;
    for level in (1..=4u32).rev() {
        let shift = 12 + 9 * (level - 1);
        let index = (gva >> shift) & 0x1ff;
        let entry = mem.read_u64(table + index * 8)?;
        if entry & PTE_PRESENT == 0 {
            return None;
        }
        if level == 1 || (entry & PTE_HUGE != 0 && (level == 2 || level == 3)) {
            let page_mask = (1u64 << shift) - 1;
            return Some((entry & PTE_ADDR & !page_mask) | (gva & page_mask));
        }
        table = entry & PTE_ADDR;
    }
    None
}

/// Translates with the first of `roots` that maps `gva`.
pub fn translate_any(mem: &impl PhysRead, roots: &[u64], gva: u64) -> Option<u64> {
    roots
        .iter()
        .filter(|&&r| r != 0)
        .find_map(|&root| translate(mem, root, gva))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    struct FakeMem(HashMap<u64, u64>);

    impl PhysRead for FakeMem {
        fn read_u64(&self, gpa: u64) -> Option<u64> {
            self.0
                .get(&gpa)
                .copied()
                .or((gpa < 0x100_0000).then_some(0))
        }
    }

    fn idx(gva: u64, level: u32) -> u64 {
        (gva >> (12 + 9 * (level - 1))) & 0x1ff
    }

    #[test]
    fn walks_4k_2m_and_1g_pages() {
        let mut m = HashMap::new();
        let user = 0x5555_5555_4123u64;
        m.insert(0x1000 + idx(user, 4) * 8, 0x2000 | 7);
        m.insert(0x2000 + idx(user, 3) * 8, 0x3000 | 7);
        m.insert(0x3000 + idx(user, 2) * 8, 0x4000 | 7);
        m.insert(0x4000 + idx(user, 1) * 8, 0xab_c000 | 5);
        let kernel = 0xffff_ffff_8020_1234u64;
        m.insert(0x1000 + idx(kernel, 4) * 8, 0x5000 | 3);
        m.insert(0x5000 + idx(kernel, 3) * 8, 0x6000 | 3);
        m.insert(0x6000 + idx(kernel, 2) * 8, 0x20_0000 | 0x83);
        let direct = 0xffff_ec00_4000_0010u64;
        m.insert(0x1000 + idx(direct, 4) * 8, 0x7000 | 3);
        m.insert(0x7000 + idx(direct, 3) * 8, 0x4000_0000 | 0x83);
        let mem = FakeMem(m);
        assert_eq!(translate(&mem, 0x1000, user), Some(0xab_c123));
        assert_eq!(translate(&mem, 0x1000, kernel), Some(0x20_1234));
        assert_eq!(translate(&mem, 0x1000, direct), Some(0x4000_0010));
        assert_eq!(translate(&mem, 0x1000, user + 0x1000), None);
        assert_eq!(translate(&mem, 0x1000, 0x8000_0000_0000), None);
        assert_eq!(translate(&mem, 0, user), None);
        assert_eq!(
            translate_any(&mem, &[0, 0x9000, 0x1000], user),
            Some(0xab_c123)
        );
    }

    #[test]
    fn tables_outside_ram_are_unmapped_not_crashes() {
        let mut m = HashMap::new();
        m.insert(0x1000, 0xdead_0000_0000 | 1);
        let mem = FakeMem(m);
        assert_eq!(translate(&mem, 0x1000, 0x10), None);
        assert_eq!(translate(&mem, 0xffff_ffff_ffff_f000, 0x10), None);
    }
}

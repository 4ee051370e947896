//! Guest RAM: one anonymous mapping from guest-physical 0, accessed only through vm-memory.

use vm_memory::{GuestAddress, GuestMemoryBackend, GuestMemoryMmap, GuestMemoryRegion};

/// Errors creating guest RAM.
#[derive(Debug, thiserror::Error)]
pub enum MemoryError {
    /// The size does not fit the host's address space.
    #[error("Guest RAM size {0:#x} does not fit the host address space")]
    Size(u64),
    /// `mmap` failed.
    #[error("Cannot allocate {0} bytes of guest RAM")]
    Allocate(u64, #[source] vm_memory::mmap::FromRangesError),
}

/// Creates `size` bytes of guest RAM at guest-physical 0.
pub fn create_guest_memory(size: u64) -> Result<GuestMemoryMmap, MemoryError> {
    let len = usize::try_from(size).map_err(|_| MemoryError::Size(size))?;
    let mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), len)])
        .map_err(|e| MemoryError::Allocate(size, e))?;
    for region in mem.iter() {
        // Transparent huge pages: the host backs guest RAM 2 MiB at a time, so a guest
        // filling fresh memory (a 64 MiB `std::fs::read`) takes one host fault per 2 MiB
        // instead of one per 4 KiB page, each a VM exit on PVM (140 -> ~75 ms for that
        // read here; boot time unchanged). Advice only: failure (no THP) is harmless.
        // SAFETY: the range is exactly this region's live anonymous mapping; the advice
        // does not change its contents or validity.
        let ret = unsafe {
            libc::madvise(
                region.as_ptr().cast(),
                region.len() as usize,
                libc::MADV_HUGEPAGE,
            )
        };
        if ret != 0 {
            log::debug!(
                "madvise(MADV_HUGEPAGE) on guest RAM: {}",
                std::io::Error::last_os_error()
            );
        }
    }
    Ok(mem)
}

#[cfg(test)]
mod tests {
    use super::*;
    use vm_memory::Bytes;

    #[test]
    fn ram_starts_at_zero_and_is_bounded() {
        let mem = create_guest_memory(16 << 20).unwrap();
        assert_eq!(mem.num_regions(), 1);
        assert_eq!(mem.last_addr(), GuestAddress((16 << 20) - 1));
        mem.write_obj(0xabu8, GuestAddress(0)).unwrap();
        assert!(mem.write_obj(0u64, GuestAddress((16 << 20) - 4)).is_err());
        assert!(mem.read_obj::<u8>(GuestAddress(16 << 20)).is_err());
    }
}

//! Guest RAM: one anonymous mapping from guest-physical 0, accessed only through vm-memory.

use vm_memory::{GuestAddress, GuestMemoryMmap};

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
    GuestMemoryMmap::from_ranges(&[(GuestAddress(0), len)])
        .map_err(|e| MemoryError::Allocate(size, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use vm_memory::{Bytes, GuestMemoryBackend};

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

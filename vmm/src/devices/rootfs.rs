//! The rootfs device: a TAR file mapped read-only into guest-physical memory.
//!
//! The file is mapped `MAP_PRIVATE`/`PROT_READ` and handed to KVM as a `KVM_MEM_READONLY`
//! slot at [`layout::ROOTFS_GPA`](hypercall_abi::layout::ROOTFS_GPA): nothing is copied, so
//! boot time does not depend on the image size, and a guest write exits to the VMM as MMIO.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::ptr::NonNull;

use hypercall_abi::layout::ROOTFS_MAX;

/// Size of a TAR header block.
const TAR_BLOCK: usize = 512;
/// Page size the mapping is rounded up to.
const PAGE_SIZE: u64 = 4096;

/// Errors opening and mapping the rootfs.
#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    /// The file cannot be opened or read.
    #[error("Rootfs '{0}'")]
    Read(PathBuf, #[source] std::io::Error),
    /// Not a regular file.
    #[error("Rootfs '{0}' is not a regular file")]
    NotAFile(PathBuf),
    /// Zero bytes.
    #[error("Rootfs '{0}' is empty: build one with mkrootfs (make rootfs)")]
    Empty(PathBuf),
    /// Larger than the window.
    #[error("Rootfs '{0}' is {1} bytes, more than the {ROOTFS_MAX} bytes astra-vmm maps")]
    TooLarge(PathBuf, u64),
    /// The first header is not a TAR header.
    #[error("Rootfs '{0}' is not a TAR archive: {1}")]
    NotTar(PathBuf, TarError),
    /// `mmap` failed.
    #[error("Cannot map rootfs '{0}'")]
    Map(PathBuf, #[source] std::io::Error),
}

/// Why a block is not a TAR header.
#[derive(Clone, Copy, Debug, thiserror::Error, PartialEq, Eq)]
pub enum TarError {
    /// Less than one block.
    #[error("shorter than one 512-byte header")]
    Short,
    /// No `ustar` magic at offset 257.
    #[error("the first header has no ustar magic")]
    NoMagic,
    /// The checksum field is unreadable or wrong.
    #[error("the first header's checksum is invalid")]
    BadChecksum,
}

/// Checks that `block` is a ustar (POSIX or GNU) header with a valid checksum, or the
/// all-zero end-of-archive block of an empty archive.
pub fn check_tar_header(block: &[u8]) -> Result<(), TarError> {
    let block = block.get(..TAR_BLOCK).ok_or(TarError::Short)?;
    if block.iter().all(|&b| b == 0) {
        return Ok(());
    }
    if &block[257..262] != b"ustar" {
        return Err(TarError::NoMagic);
    }
    let field = &block[148..156];
    let digits = std::str::from_utf8(field)
        .map_err(|_| TarError::BadChecksum)?
        .trim_matches(|c: char| c == '\0' || c == ' ');
    let stored = u32::from_str_radix(digits, 8).map_err(|_| TarError::BadChecksum)?;
    // The checksum is computed with its own field read as spaces.
    let sum: u32 = block
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                32
            } else {
                u32::from(b)
            }
        })
        .sum();
    if sum != stored {
        return Err(TarError::BadChecksum);
    }
    Ok(())
}

/// A rootfs file mapped read-only into the VMM's address space.
#[derive(Debug)]
pub struct RootfsImage {
    addr: NonNull<libc::c_void>,
    map_len: usize,
    size: u64,
    // Keeps the file open for as long as it is mapped (not required by mmap, but it makes
    // the mapping's origin visible in /proc/PID/fd while debugging).
    _file: File,
}

impl RootfsImage {
    /// Opens, validates and maps the TAR at `path`.
    pub fn open(path: &Path) -> Result<Self, RootfsError> {
        let read_err = |e| RootfsError::Read(path.into(), e);
        let file = File::open(path).map_err(read_err)?;
        let meta = file.metadata().map_err(read_err)?;
        if !meta.is_file() {
            return Err(RootfsError::NotAFile(path.into()));
        }
        let size = meta.len();
        if size == 0 {
            return Err(RootfsError::Empty(path.into()));
        }
        if size > ROOTFS_MAX {
            return Err(RootfsError::TooLarge(path.into(), size));
        }
        let mut header = [0u8; TAR_BLOCK];
        let header_len = (size as usize).min(TAR_BLOCK);
        file.read_exact_at(&mut header[..header_len], 0)
            .map_err(read_err)?;
        check_tar_header(&header[..header_len]).map_err(|e| RootfsError::NotTar(path.into(), e))?;
        let map_len = usize::try_from(size.div_ceil(PAGE_SIZE) * PAGE_SIZE)
            .map_err(|_| RootfsError::TooLarge(path.into(), size))?;
        // SAFETY: a fresh private read-only mapping of a file we own: it aliases no Rust
        // object, and the result is checked before use.
        let addr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_len,
                libc::PROT_READ,
                libc::MAP_PRIVATE,
                std::os::fd::AsRawFd::as_raw_fd(&file),
                0,
            )
        };
        if addr == libc::MAP_FAILED {
            return Err(RootfsError::Map(
                path.into(),
                std::io::Error::last_os_error(),
            ));
        }
        let addr = NonNull::new(addr).ok_or_else(|| {
            RootfsError::Map(path.into(), std::io::Error::other("mmap returned NULL"))
        })?;
        Ok(RootfsImage {
            addr,
            map_len,
            size,
            _file: file,
        })
    }

    /// The host address of the mapping.
    pub fn host_addr(&self) -> u64 {
        self.addr.as_ptr() as u64
    }

    /// The size of the mapping (the file size rounded up to a page).
    pub fn map_len(&self) -> u64 {
        self.map_len as u64
    }

    /// The size of the TAR file.
    pub fn size(&self) -> u64 {
        self.size
    }
}

impl Drop for RootfsImage {
    fn drop(&mut self) {
        // SAFETY: `addr`/`map_len` describe the mapping created in `open`, unmapped only here.
        // The VM that may still reference it is dropped before (see `Vm`'s field order).
        unsafe {
            libc::munmap(self.addr.as_ptr(), self.map_len);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ustar header for a regular file `name` of `size` bytes.
    fn header(name: &str, size: usize) -> Vec<u8> {
        let mut h = vec![0u8; TAR_BLOCK];
        h[..name.len()].copy_from_slice(name.as_bytes());
        h[100..108].copy_from_slice(b"0000644\0");
        h[124..136].copy_from_slice(format!("{size:011o}\0").as_bytes());
        h[156] = b'0';
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        h[148..156].fill(b' ');
        let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
        h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        h
    }

    #[test]
    fn accepts_ustar_and_empty_archives() {
        assert_eq!(check_tar_header(&header("init", 5)), Ok(()));
        let mut gnu = header("init", 5);
        gnu[257..265].copy_from_slice(b"ustar  \0");
        gnu[148..156].fill(b' ');
        let sum: u32 = gnu.iter().map(|&b| u32::from(b)).sum();
        gnu[148..156].copy_from_slice(format!("{sum:07o}\0").as_bytes());
        assert_eq!(check_tar_header(&gnu), Ok(()));
        assert_eq!(check_tar_header(&[0; 1024]), Ok(()));
    }

    #[test]
    fn rejects_what_is_not_a_tar() {
        assert_eq!(check_tar_header(&[0; 100]), Err(TarError::Short));
        assert_eq!(check_tar_header(&[b'x'; 512]), Err(TarError::NoMagic));
        let mut bad = header("init", 5);
        bad[0] = b'j';
        assert_eq!(check_tar_header(&bad), Err(TarError::BadChecksum));
        let mut garbage_sum = header("init", 5);
        garbage_sum[148..156].copy_from_slice(b"zzzzzzz\0");
        assert_eq!(check_tar_header(&garbage_sum), Err(TarError::BadChecksum));
    }

    #[test]
    fn open_validates_and_maps() {
        let dir = std::env::temp_dir().join(format!("astra-vmm-rootfs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("fs.tar");
        let mut tar = header("hello", 3);
        tar.extend_from_slice(b"hi\n");
        tar.resize(2048 + 512, 0);
        std::fs::write(&good, &tar).unwrap();
        let image = RootfsImage::open(&good).unwrap();
        assert_eq!(image.size(), 2560);
        assert_eq!(image.map_len(), 4096);
        // SAFETY: the mapping is `map_len` readable bytes and lives as long as `image`.
        let mapped = unsafe { std::slice::from_raw_parts(image.host_addr() as *const u8, 2560) };
        assert_eq!(mapped, &tar[..]);

        let empty = dir.join("empty.tar");
        std::fs::write(&empty, b"").unwrap();
        assert!(matches!(
            RootfsImage::open(&empty),
            Err(RootfsError::Empty(_))
        ));
        let text = dir.join("text.tar");
        std::fs::write(&text, b"hello").unwrap();
        let err = RootfsImage::open(&text).unwrap_err();
        assert!(matches!(err, RootfsError::NotTar(_, TarError::Short)));
        assert!(err.to_string().contains("text.tar' is not a TAR archive"));
        assert!(matches!(
            RootfsImage::open(&dir.join("missing.tar")),
            Err(RootfsError::Read(..))
        ));
        assert!(matches!(
            RootfsImage::open(&dir),
            Err(RootfsError::NotAFile(_))
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

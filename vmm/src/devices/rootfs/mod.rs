//! The rootfs device: a TAR file mapped read-only into guest-physical memory.
//!
//! The file is mapped `MAP_PRIVATE`/`PROT_READ` and handed to KVM as a `KVM_MEM_READONLY`
//! slot at [`layout::ROOTFS_GPA`](hypercall_abi::layout::ROOTFS_GPA): nothing is copied, so
//! boot time does not depend on the image size, and a guest write exits to the VMM as MMIO.
//! A TAR built in memory (`--rootfs DIR`, a host program, see [`crate::rootfs_build`]) is
//! copied into an anonymous mapping made read-only the same way.

mod tar;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::ptr::NonNull;

use hypercall_abi::layout::ROOTFS_MAX;

use crate::input_file::{self, InputFileError};
pub use tar::{contains, validate, Summary, TarError};

/// Page size the mapping is rounded up to.
const PAGE_SIZE: u64 = 4096;

/// Errors opening and mapping the rootfs.
#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    /// The file cannot be opened or read, or is not a regular file.
    #[error("Rootfs '{0}'")]
    Read(PathBuf, #[source] InputFileError),
    /// Zero bytes.
    #[error("Rootfs '{0}' is empty: build one with mkrootfs (make rootfs)")]
    Empty(PathBuf),
    /// Larger than the window.
    #[error("Rootfs '{0}' is {1} bytes, more than the {ROOTFS_MAX} bytes astra-vmm maps")]
    TooLarge(PathBuf, u64),
    /// The archive is malformed somewhere (checked whole, as the kernel would mount it).
    #[error("Rootfs '{0}' is not a valid TAR: {1}")]
    NotTar(PathBuf, TarError),
    /// `mmap` failed.
    #[error("Cannot map rootfs '{0}'")]
    Map(PathBuf, #[source] std::io::Error),
    /// The file shrank while the guest was running, so part of the guest's rootfs window
    /// lost its backing.
    #[error("Rootfs '{path}' was truncated while the guest ran (from {was} to {now} bytes): do not modify a rootfs in use")]
    Truncated {
        /// The rootfs path.
        path: PathBuf,
        /// Its size at boot.
        was: u64,
        /// Its size now.
        now: u64,
    },
}

/// A rootfs file mapped read-only into the VMM's address space.
#[derive(Debug)]
pub struct RootfsImage {
    addr: NonNull<libc::c_void>,
    map_len: usize,
    size: u64,
    path: PathBuf,
    // Keeps the file open for as long as it is mapped (not required by mmap, but it makes
    // the mapping's origin visible in /proc/PID/fd while debugging); none for an archive
    // built in memory.
    file: Option<File>,
}

impl RootfsImage {
    /// Opens, maps and validates the TAR at `path` (the whole archive, see [`validate`]).
    pub fn open(path: &Path) -> Result<Self, RootfsError> {
        let (file, size) =
            input_file::open_regular(path).map_err(|e| RootfsError::Read(path.into(), e))?;
        if size == 0 {
            return Err(RootfsError::Empty(path.into()));
        }
        if size > ROOTFS_MAX {
            return Err(RootfsError::TooLarge(path.into(), size));
        }
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
        let image = RootfsImage {
            addr,
            map_len,
            size,
            path: path.into(),
            file: Some(file),
        };
        let summary = validate(image.bytes()).map_err(|e| RootfsError::NotTar(path.into(), e))?;
        log::debug!("rootfs: {} entries, {size} bytes", summary.entries);
        Ok(image)
    }

    /// Maps a copy of the TAR `bytes` built in memory (named `name` in messages) read-only,
    /// and validates it like a file.
    pub fn from_bytes(name: &Path, bytes: &[u8]) -> Result<Self, RootfsError> {
        let size = bytes.len() as u64;
        if size == 0 {
            return Err(RootfsError::Empty(name.into()));
        }
        if size > ROOTFS_MAX {
            return Err(RootfsError::TooLarge(name.into(), size));
        }
        let map_len = usize::try_from(size.div_ceil(PAGE_SIZE) * PAGE_SIZE)
            .map_err(|_| RootfsError::TooLarge(name.into(), size))?;
        let map_error = |e| RootfsError::Map(name.into(), e);
        // SAFETY: a fresh private anonymous mapping: it aliases no Rust object, and the
        // result is checked before use.
        let addr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if addr == libc::MAP_FAILED {
            return Err(map_error(std::io::Error::last_os_error()));
        }
        let addr = NonNull::new(addr)
            .ok_or_else(|| map_error(std::io::Error::other("mmap returned NULL")))?;
        let image = RootfsImage {
            addr,
            map_len,
            size,
            path: name.into(),
            file: None,
        };
        // SAFETY: the mapping is `map_len` >= `bytes.len()` writable bytes that nothing else
        // refers to yet; `bytes` is a separate allocation.
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), addr.as_ptr().cast::<u8>(), bytes.len())
        };
        // SAFETY: `addr`/`map_len` is the mapping made above; dropping write access only.
        if unsafe { libc::mprotect(addr.as_ptr(), map_len, libc::PROT_READ) } != 0 {
            return Err(map_error(std::io::Error::last_os_error()));
        }
        let summary = validate(image.bytes()).map_err(|e| RootfsError::NotTar(name.into(), e))?;
        log::debug!(
            "in-memory rootfs: {} entries, {size} bytes",
            summary.entries
        );
        Ok(image)
    }

    /// The archive's bytes, as mapped.
    fn bytes(&self) -> &[u8] {
        // SAFETY: the mapping is `map_len` >= `size` readable bytes, private (no Rust object
        // aliases it) and lives as long as `self`. Only the file shrinking under it could
        // make a page unreadable; `open` reads it right after mapping.
        unsafe { std::slice::from_raw_parts(self.addr.as_ptr().cast::<u8>(), self.size as usize) }
    }

    /// If the file is now shorter than when it was mapped, the error saying so.
    pub fn check_not_truncated(&self) -> Result<(), RootfsError> {
        let Some(file) = &self.file else {
            return Ok(());
        };
        match file.metadata() {
            Ok(meta) if meta.len() < self.size => Err(RootfsError::Truncated {
                path: self.path.clone(),
                was: self.size,
                now: meta.len(),
            }),
            _ => Ok(()),
        }
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

    /// The archive's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.bytes()
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
    use super::tar::test_tar::{end, entry};
    use super::*;

    #[test]
    fn open_validates_and_maps() {
        let dir = std::env::temp_dir().join(format!("astra-vmm-rootfs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("fs.tar");
        let mut tar = entry(b"hello", b'0', b"hi\n", b"");
        tar.extend(end());
        tar.resize(2048 + 512, 0);
        std::fs::write(&good, &tar).unwrap();
        let image = RootfsImage::open(&good).unwrap();
        assert_eq!(image.size(), 2560);
        assert_eq!(image.map_len(), 4096);
        assert_eq!(image.bytes(), &tar[..]);
        image.check_not_truncated().unwrap();
        std::fs::write(&good, &tar[..1024]).unwrap();
        let err = image.check_not_truncated().unwrap_err();
        assert!(
            err.to_string()
                .contains("was truncated while the guest ran (from 2560 to 1024 bytes)"),
            "{err}"
        );

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
        assert!(err.to_string().contains("text.tar' is not a valid TAR"));
        let mut later_bad = entry(b"a", b'0', b"", b"");
        later_bad.extend(entry(b"../b", b'0', b"", b""));
        later_bad.extend(end());
        let bad = dir.join("bad.tar");
        std::fs::write(&bad, &later_bad).unwrap();
        let err = RootfsImage::open(&bad).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "Rootfs '{}' is not a valid TAR: bad name in the header at offset 512",
                bad.display()
            )
        );
        assert!(matches!(
            RootfsImage::open(&dir.join("missing.tar")),
            Err(RootfsError::Read(..))
        ));
        assert!(matches!(
            RootfsImage::open(&dir),
            Err(RootfsError::Read(
                _,
                InputFileError::NotRegular("directory")
            ))
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

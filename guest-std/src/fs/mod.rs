//! Files and directories, shaped like `std::fs`: [`File`] (open, read, write, seek,
//! metadata), [`OpenOptions`], [`metadata`], [`symlink_metadata`], [`read`] and
//! [`read_dir`]. Paths are byte strings (`&str` and `&[u8]` both work); errors are
//! [`Errno`]s.

mod dir;
mod metadata;

use alloc::vec::Vec;
use core::ffi::CStr;

pub use dir::{next_dirent, DirEntry, RawDirent, ReadDir};
pub use metadata::{FileType, Metadata};

use crate::errno::Errno;
use crate::io::{Read, Write};
use crate::syscall::{self, AT_FDCWD};

/// `PATH_MAX`: the longest path the kernel takes, with its NUL.
pub const PATH_MAX: usize = 4096;

/// Open flags (`O_*`, Linux x86-64 values).
pub mod flags {
    /// Read only.
    pub const O_RDONLY: u32 = 0;
    /// Write only.
    pub const O_WRONLY: u32 = 1;
    /// Read and write.
    pub const O_RDWR: u32 = 2;
    /// Create if missing.
    pub const O_CREAT: u32 = 0o100;
    /// With `O_CREAT`: fail if it exists.
    pub const O_EXCL: u32 = 0o200;
    /// Truncate to zero length.
    pub const O_TRUNC: u32 = 0o1000;
    /// Every write goes to the end.
    pub const O_APPEND: u32 = 0o2000;
    /// Fail unless it is a directory.
    pub const O_DIRECTORY: u32 = 0o200_000;
    /// Close on `execve`.
    pub const O_CLOEXEC: u32 = 0o2_000_000;
}

/// `AT_SYMLINK_NOFOLLOW`: look at a symbolic link itself.
const AT_SYMLINK_NOFOLLOW: u32 = 0x100;

/// Calls `f` with `path` as a NUL-terminated string (on the stack, no allocation).
/// A path with a NUL byte is `EINVAL`; one longer than [`PATH_MAX`] is `ENAMETOOLONG`.
pub fn with_c_path<R>(path: &[u8], f: impl FnOnce(&CStr) -> Result<R, Errno>) -> Result<R, Errno> {
    if path.contains(&0) {
        return Err(Errno::EINVAL);
    }
    if path.len() >= PATH_MAX {
        return Err(Errno::ENAMETOOLONG);
    }
    let mut buf = [0u8; PATH_MAX];
    buf[..path.len()].copy_from_slice(path);
    let c_path = CStr::from_bytes_until_nul(&buf).map_err(|_| Errno::EINVAL)?;
    f(c_path)
}

/// How to open a file, like `std::fs::OpenOptions`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OpenOptions {
    read: bool,
    write: bool,
    append: bool,
    truncate: bool,
    create: bool,
    create_new: bool,
    mode: Option<u32>,
}

impl OpenOptions {
    /// Nothing set (opening with that fails with `EINVAL`, as in std).
    pub fn new() -> OpenOptions {
        OpenOptions::default()
    }

    /// Open for reading.
    pub fn read(&mut self, on: bool) -> &mut Self {
        self.read = on;
        self
    }

    /// Open for writing.
    pub fn write(&mut self, on: bool) -> &mut Self {
        self.write = on;
        self
    }

    /// Open for appending (implies writing).
    pub fn append(&mut self, on: bool) -> &mut Self {
        self.append = on;
        self
    }

    /// Truncate to zero length (needs writing).
    pub fn truncate(&mut self, on: bool) -> &mut Self {
        self.truncate = on;
        self
    }

    /// Create the file if it is missing (needs writing or appending).
    pub fn create(&mut self, on: bool) -> &mut Self {
        self.create = on;
        self
    }

    /// Create the file, failing if it exists (needs writing or appending).
    pub fn create_new(&mut self, on: bool) -> &mut Self {
        self.create_new = on;
        self
    }

    /// Permission bits of a created file (default `0o666`, before the umask).
    pub fn mode(&mut self, mode: u32) -> &mut Self {
        self.mode = Some(mode);
        self
    }

    /// The `open` flags these options mean, or `EINVAL` for a combination std refuses.
    pub fn flags(&self) -> Result<u32, Errno> {
        use flags::*;
        let access = match (self.read, self.write, self.append) {
            (true, false, false) => O_RDONLY,
            (false, true, false) => O_WRONLY,
            (true, true, false) => O_RDWR,
            (false, _, true) => O_WRONLY | O_APPEND,
            (true, _, true) => O_RDWR | O_APPEND,
            (false, false, false) => return Err(Errno::EINVAL),
        };
        let writing = self.write || self.append;
        if (self.truncate || self.create || self.create_new) && !writing {
            return Err(Errno::EINVAL);
        }
        if self.truncate && self.append && !self.create_new {
            return Err(Errno::EINVAL);
        }
        let creation = match (self.create, self.truncate, self.create_new) {
            (_, _, true) => O_CREAT | O_EXCL,
            (true, true, false) => O_CREAT | O_TRUNC,
            (true, false, false) => O_CREAT,
            (false, true, false) => O_TRUNC,
            (false, false, false) => 0,
        };
        Ok(access | creation | O_CLOEXEC)
    }

    /// Opens `path` with these options.
    pub fn open(&self, path: impl AsRef<[u8]>) -> Result<File, Errno> {
        let flags = self.flags()?;
        let mode = self.mode.unwrap_or(0o666);
        with_c_path(path.as_ref(), |p| syscall::openat(AT_FDCWD, p, flags, mode)).map(File)
    }
}

/// Where [`File::seek`] measures from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SeekFrom {
    /// From the start.
    Start(u64),
    /// From the end (negative goes back).
    End(i64),
    /// From the current position.
    Current(i64),
}

impl SeekFrom {
    /// `(offset, whence)` for `lseek`; a start offset past `i64::MAX` is `EINVAL`.
    pub fn to_lseek(self) -> Result<(i64, u32), Errno> {
        match self {
            SeekFrom::Start(at) => i64::try_from(at)
                .map(|at| (at, 0))
                .map_err(|_| Errno::EINVAL),
            SeekFrom::Current(by) => Ok((by, 1)),
            SeekFrom::End(by) => Ok((by, 2)),
        }
    }
}

/// An open file; closed when dropped.
#[derive(Debug)]
pub struct File(i32);

impl File {
    /// Opens `path` for reading.
    pub fn open(path: impl AsRef<[u8]>) -> Result<File, Errno> {
        OpenOptions::new().read(true).open(path)
    }

    /// Opens `path` for writing, creating or truncating it.
    pub fn create(path: impl AsRef<[u8]>) -> Result<File, Errno> {
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
    }

    /// The file descriptor.
    pub fn as_raw_fd(&self) -> i32 {
        self.0
    }

    /// Moves the position; returns the new one.
    pub fn seek(&mut self, from: SeekFrom) -> Result<u64, Errno> {
        let (offset, whence) = from.to_lseek()?;
        syscall::lseek(self.0, offset, whence)
    }

    /// Reads at `offset` without moving the position (`pread`).
    pub fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<usize, Errno> {
        syscall::pread(self.0, buf, offset)
    }

    /// The file's metadata (`fstat`).
    pub fn metadata(&self) -> Result<Metadata, Errno> {
        syscall::fstat(self.0).map(|raw| Metadata::from_stat(&raw))
    }
}

impl Read for File {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Errno> {
        syscall::read(self.0, buf)
    }
}

impl Write for File {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Errno> {
        syscall::write(self.0, buf)
    }
}

impl Drop for File {
    fn drop(&mut self) {
        // Like std: a failed close cannot be reported from a destructor.
        let _ = syscall::close(self.0);
    }
}

/// Metadata of `path`, following symbolic links (`stat`).
pub fn metadata(path: impl AsRef<[u8]>) -> Result<Metadata, Errno> {
    with_c_path(path.as_ref(), |p| syscall::fstatat(AT_FDCWD, p, 0))
        .map(|raw| Metadata::from_stat(&raw))
}

/// Metadata of `path` itself, even if it is a symbolic link (`lstat`).
pub fn symlink_metadata(path: impl AsRef<[u8]>) -> Result<Metadata, Errno> {
    with_c_path(path.as_ref(), |p| {
        syscall::fstatat(AT_FDCWD, p, AT_SYMLINK_NOFOLLOW)
    })
    .map(|raw| Metadata::from_stat(&raw))
}

/// The whole contents of `path`.
pub fn read(path: impl AsRef<[u8]>) -> Result<Vec<u8>, Errno> {
    let mut file = File::open(path)?;
    let mut bytes = Vec::new();
    // The size is a hint: the file may change, and some files report 0.
    if let Ok(meta) = file.metadata() {
        let hint = usize::try_from(meta.size).unwrap_or(0);
        bytes.try_reserve_exact(hint).map_err(|_| Errno::ENOMEM)?;
    }
    file.read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// The entries of directory `path` (without `.` and `..`), in the kernel's order.
pub fn read_dir(path: impl AsRef<[u8]>) -> Result<ReadDir, Errno> {
    use flags::*;
    let dir = with_c_path(path.as_ref(), |p| {
        syscall::openat(AT_FDCWD, p, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0)
    })?;
    Ok(ReadDir::new(File(dir)))
}

#[cfg(test)]
mod tests {
    use super::flags::*;
    use super::*;

    #[test]
    fn c_paths() {
        let got = with_c_path(b"/etc/motd", |p| Ok(p.to_bytes().to_vec()));
        assert_eq!(got, Ok(b"/etc/motd".to_vec()));
        assert_eq!(with_c_path(b"a\0b", |_| Ok(())), Err(Errno::EINVAL));
        let long = vec![b'a'; PATH_MAX];
        assert_eq!(with_c_path(&long, |_| Ok(())), Err(Errno::ENAMETOOLONG));
        let longest = vec![b'a'; PATH_MAX - 1];
        assert_eq!(
            with_c_path(&longest, |p| Ok(p.to_bytes().len())),
            Ok(PATH_MAX - 1)
        );
    }

    #[test]
    fn open_options_flags_follow_std() {
        let flags = |f: &mut OpenOptions| f.flags();
        assert_eq!(
            flags(OpenOptions::new().read(true)),
            Ok(O_RDONLY | O_CLOEXEC)
        );
        assert_eq!(
            flags(OpenOptions::new().write(true).create(true).truncate(true)),
            Ok(O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC)
        );
        assert_eq!(
            flags(OpenOptions::new().read(true).write(true)),
            Ok(O_RDWR | O_CLOEXEC)
        );
        assert_eq!(
            flags(OpenOptions::new().append(true).create_new(true)),
            Ok(O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC)
        );
        assert_eq!(flags(&mut OpenOptions::new()), Err(Errno::EINVAL));
        assert_eq!(
            flags(OpenOptions::new().read(true).create(true)),
            Err(Errno::EINVAL)
        );
        assert_eq!(
            flags(OpenOptions::new().read(true).truncate(true)),
            Err(Errno::EINVAL)
        );
        assert_eq!(
            flags(OpenOptions::new().append(true).truncate(true)),
            Err(Errno::EINVAL)
        );
    }

    #[test]
    fn seek_from_maps_to_lseek() {
        assert_eq!(SeekFrom::Start(10).to_lseek(), Ok((10, 0)));
        assert_eq!(SeekFrom::Current(-3).to_lseek(), Ok((-3, 1)));
        assert_eq!(SeekFrom::End(-7).to_lseek(), Ok((-7, 2)));
        assert_eq!(SeekFrom::Start(u64::MAX).to_lseek(), Err(Errno::EINVAL));
    }
}

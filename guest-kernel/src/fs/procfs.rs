//! The piece of `/proc` astra has: `/proc/self/exe`, a symlink to the running program
//! (what `std::env::current_exe` reads), in a small file system mounted on `/proc`.
//!
//! Which program is running is the walking process's business: the walk hands its exec'ed
//! path to [`Inode::readlink_as`]; the canonical target `readlink` shows is computed by the
//! namespace ([`super::vfs::Walker::read_link`]).

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

use super::inode::{FileType, FsStats, Inode, InodeRef, ST_NODEV, ST_NOEXEC, ST_NOSUID};
use super::path;
use super::stat::{Metadata, Timestamp, S_IFDIR, S_IFLNK};
use crate::errno::Errno;

/// The magic path.
pub const EXE_PATH: &str = "/proc/self/exe";

/// The device number reported for `/proc` files.
const PROCFS_DEV: (u32, u32) = (0, 0x16);

/// `PROC_SUPER_MAGIC`.
const PROC_MAGIC: u64 = 0x9fa0;

/// A node of the `/proc` file system.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcNode {
    /// `/proc`.
    Root,
    /// `/proc/self`.
    SelfDir,
    /// `/proc/self/exe`.
    Exe,
}

/// The root of a `/proc` file system, to mount on `/proc`.
pub fn root() -> InodeRef {
    Arc::new(ProcNode::Root)
}

/// The absolute, normalised form of the exec'ed path `exe` (what the walk follows).
pub fn exe_abs(exe: &str) -> String {
    let joined = path::join("/", exe).unwrap_or_else(|_| String::from("/"));
    path::normalize(&joined).unwrap_or(joined)
}

/// Metadata of `/proc/self/exe` whose target is `target_len` bytes long.
pub fn exe_metadata(target_len: usize) -> Metadata {
    ProcNode::Exe.meta(target_len as u64)
}

impl ProcNode {
    fn meta(self, size: u64) -> Metadata {
        let (mode, ino, nlink) = match self {
            ProcNode::Root => (S_IFDIR | 0o555, 1, 3),
            ProcNode::SelfDir => (S_IFDIR | 0o555, 2, 3),
            ProcNode::Exe => (S_IFLNK | 0o777, 3, 1),
        };
        Metadata {
            dev: PROCFS_DEV,
            ino,
            mode,
            nlink,
            uid: 0,
            gid: 0,
            rdev: (0, 0),
            size,
            atime: Timestamp::default(),
            mtime: Timestamp::default(),
            ctime: Timestamp::default(),
            mount_root: self == ProcNode::Root,
        }
    }
}

impl Inode for ProcNode {
    fn fs_id(&self) -> u64 {
        u64::from(PROCFS_DEV.1)
    }

    fn ino(&self) -> u64 {
        self.meta(0).ino
    }

    fn file_type(&self) -> FileType {
        match self {
            ProcNode::Exe => FileType::Symlink,
            _ => FileType::Dir,
        }
    }

    fn metadata(&self) -> Metadata {
        self.meta(0)
    }

    fn lookup(&self, name: &str) -> Result<InodeRef, Errno> {
        let node = match (self, name) {
            (ProcNode::Root, "self") => ProcNode::SelfDir,
            (ProcNode::SelfDir, "exe") => ProcNode::Exe,
            (ProcNode::Exe, _) => return Err(Errno::ENOTDIR),
            _ => return Err(Errno::ENOENT),
        };
        Ok(Arc::new(node))
    }

    fn parent(&self) -> Result<InodeRef, Errno> {
        match self {
            ProcNode::Exe => Err(Errno::ENOTDIR),
            _ => Ok(root()),
        }
    }

    fn readlink(&self) -> Result<String, Errno> {
        // Only a walk knows whose program it is (`readlink_as`).
        Err(Errno::EINVAL)
    }

    fn readlink_as(&self, exe: &str) -> Result<String, Errno> {
        match self {
            ProcNode::Exe => Ok(exe_abs(exe)),
            _ => Err(Errno::EINVAL),
        }
    }

    fn entries(&self) -> Result<Vec<(String, u64, FileType)>, Errno> {
        Ok(match self {
            ProcNode::Root => alloc::vec![(String::from("self"), 2, FileType::Dir)],
            ProcNode::SelfDir => alloc::vec![(String::from("exe"), 3, FileType::Symlink)],
            ProcNode::Exe => return Err(Errno::ENOTDIR),
        })
    }

    // Nothing is created or removed in /proc: Linux says ENOENT for new names there.
    fn create(&self, _: &str, _: FileType, _: u32, _: &str) -> Result<InodeRef, Errno> {
        Err(Errno::ENOENT)
    }

    fn link(&self, _: &str, _: &InodeRef) -> Result<(), Errno> {
        Err(Errno::ENOENT)
    }

    fn unlink(&self, _: &str) -> Result<(), Errno> {
        Err(Errno::EACCES)
    }

    fn rmdir(&self, _: &str) -> Result<(), Errno> {
        Err(Errno::EACCES)
    }

    fn rename(&self, _: &str, _: &InodeRef, _: &str) -> Result<(), Errno> {
        Err(Errno::EACCES)
    }

    fn read_at(&self, _: u64, _: &mut [u8]) -> Result<usize, Errno> {
        Err(Errno::EISDIR)
    }

    fn write_at(&self, _: u64, _: &[u8]) -> Result<usize, Errno> {
        Err(Errno::EISDIR)
    }

    fn truncate(&self, _: u64) -> Result<(), Errno> {
        Err(Errno::EISDIR)
    }

    fn set_mode(&self, _: u32) -> Result<(), Errno> {
        Err(Errno::EPERM)
    }

    fn as_any(&self) -> &dyn core::any::Any {
        self
    }

    fn statfs(&self) -> FsStats {
        FsStats {
            magic: PROC_MAGIC,
            bsize: 4096,
            flags: ST_NOSUID | ST_NODEV | ST_NOEXEC,
            ..FsStats::default()
        }
    }
}

//! The `/dev` directory: a small device filesystem mounted over the rootfs's `/dev`.
//!
//! Character devices with Linux's numbers: `null` (1:3), `zero` (1:5), `random` (1:8),
//! `urandom` (1:9), `tty` (5:0) and `console` (5:1); both of the last two are the VM's
//! console. `random` and `urandom` draw from [`crate::random`].

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

use super::inode::{FileType, FsStats, Inode, InodeRef, ST_NOSUID};
use super::stat::{Metadata, Timestamp, S_IFCHR, S_IFDIR};
use crate::errno::Errno;

/// `TMPFS_MAGIC`: Linux's devtmpfs reports it.
const DEVFS_MAGIC: u64 = 0x0102_1994;

/// The device number of the `/dev` filesystem itself (Linux's devtmpfs is usually 0:5).
pub const DEVFS_DEV: (u32, u32) = (0, 5);

/// A character device under `/dev`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Device {
    /// `/dev/null`: reads end at once, writes vanish.
    Null,
    /// `/dev/zero`: reads give zeros, writes vanish.
    Zero,
    /// `/dev/random`.
    Random,
    /// `/dev/urandom`.
    Urandom,
    /// `/dev/tty`: the console.
    Tty,
    /// `/dev/console`: the console.
    Console,
}

/// Every device, in directory order.
pub const ALL: [Device; 6] = [
    Device::Console,
    Device::Null,
    Device::Random,
    Device::Tty,
    Device::Urandom,
    Device::Zero,
];

impl Device {
    /// The name under `/dev`.
    pub fn name(self) -> &'static str {
        match self {
            Device::Null => "null",
            Device::Zero => "zero",
            Device::Random => "random",
            Device::Urandom => "urandom",
            Device::Tty => "tty",
            Device::Console => "console",
        }
    }

    /// The device called `name` in `/dev`.
    pub fn from_name(name: &str) -> Option<Device> {
        ALL.into_iter().find(|d| d.name() == name)
    }

    /// Its (major, minor) numbers.
    pub fn rdev(self) -> (u32, u32) {
        match self {
            Device::Null => (1, 3),
            Device::Zero => (1, 5),
            Device::Random => (1, 8),
            Device::Urandom => (1, 9),
            Device::Tty => (5, 0),
            Device::Console => (5, 1),
        }
    }

    /// Whether it is the console (a terminal).
    pub fn is_terminal(self) -> bool {
        matches!(self, Device::Tty | Device::Console)
    }

    /// Its inode number in the device filesystem (the directory is 1).
    pub fn ino(self) -> u64 {
        2 + ALL.iter().position(|&d| d == self).unwrap_or(0) as u64
    }

    /// What `stat` reports.
    pub fn metadata(self) -> Metadata {
        let perm = match self {
            Device::Console => 0o600,
            _ => 0o666,
        };
        Metadata {
            dev: DEVFS_DEV,
            ino: self.ino(),
            mode: S_IFCHR | perm,
            nlink: 1,
            uid: 0,
            gid: 0,
            rdev: self.rdev(),
            size: 0,
            atime: Timestamp::default(),
            mtime: Timestamp::default(),
            ctime: Timestamp::default(),
            mount_root: false,
        }
    }
}

/// What `stat` reports for the `/dev` directory.
pub fn dir_metadata() -> Metadata {
    Metadata {
        dev: DEVFS_DEV,
        ino: 1,
        mode: S_IFDIR | 0o755,
        nlink: 2,
        uid: 0,
        gid: 0,
        rdev: (0, 0),
        size: 0,
        atime: Timestamp::default(),
        mtime: Timestamp::default(),
        ctime: Timestamp::default(),
        mount_root: true,
    }
}

/// A node of the device file system: the directory (`None`) or a device.
pub struct DevNode(Option<Device>);

/// The root of a device file system, to mount on `/dev`.
pub fn root() -> InodeRef {
    Arc::new(DevNode(None))
}

impl Inode for DevNode {
    fn fs_id(&self) -> u64 {
        u64::from(DEVFS_DEV.1)
    }

    fn ino(&self) -> u64 {
        self.0.map_or(1, Device::ino)
    }

    fn file_type(&self) -> FileType {
        match self.0 {
            None => FileType::Dir,
            Some(_) => FileType::CharDev,
        }
    }

    fn metadata(&self) -> Metadata {
        self.0.map_or_else(dir_metadata, Device::metadata)
    }

    fn lookup(&self, name: &str) -> Result<InodeRef, Errno> {
        match self.0 {
            None => Device::from_name(name)
                .map(|d| Arc::new(DevNode(Some(d))) as InodeRef)
                .ok_or(Errno::ENOENT),
            Some(_) => Err(Errno::ENOTDIR),
        }
    }

    fn parent(&self) -> Result<InodeRef, Errno> {
        match self.0 {
            None => Ok(root()),
            Some(_) => Err(Errno::ENOTDIR),
        }
    }

    fn readlink(&self) -> Result<String, Errno> {
        Err(Errno::EINVAL)
    }

    fn entries(&self) -> Result<Vec<(String, u64, FileType)>, Errno> {
        if self.0.is_some() {
            return Err(Errno::ENOTDIR);
        }
        Ok(ALL
            .iter()
            .map(|d| (String::from(d.name()), d.ino(), FileType::CharDev))
            .collect())
    }

    // The device directory is fixed: nothing is created, linked or removed in it.
    fn create(&self, _: &str, _: FileType, _: u32, _: &str) -> Result<InodeRef, Errno> {
        Err(Errno::EPERM)
    }

    fn link(&self, _: &str, _: &InodeRef) -> Result<(), Errno> {
        Err(Errno::EPERM)
    }

    fn unlink(&self, _: &str) -> Result<(), Errno> {
        Err(Errno::EPERM)
    }

    fn rmdir(&self, _: &str) -> Result<(), Errno> {
        Err(Errno::EPERM)
    }

    fn rename(&self, _: &str, _: &InodeRef, _: &str) -> Result<(), Errno> {
        Err(Errno::EPERM)
    }

    fn read_at(&self, _: u64, _: &mut [u8]) -> Result<usize, Errno> {
        // Device I/O goes through the open file, never here.
        Err(Errno::EINVAL)
    }

    fn write_at(&self, _: u64, _: &[u8]) -> Result<usize, Errno> {
        Err(Errno::EINVAL)
    }

    fn truncate(&self, _: u64) -> Result<(), Errno> {
        // Linux: truncating a character device is EINVAL; a directory EISDIR.
        Err(match self.0 {
            None => Errno::EISDIR,
            Some(_) => Errno::EINVAL,
        })
    }

    fn set_mode(&self, _: u32) -> Result<(), Errno> {
        Err(Errno::EPERM)
    }

    fn as_any(&self) -> &dyn core::any::Any {
        self
    }

    fn statfs(&self) -> FsStats {
        FsStats {
            magic: DEVFS_MAGIC,
            bsize: 4096,
            files: ALL.len() as u64 + 1,
            flags: ST_NOSUID,
            ..FsStats::default()
        }
    }

    fn device(&self) -> Option<Device> {
        self.0
    }

    fn fs_name(&self) -> &'static str {
        "devtmpfs"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_inodes_are_distinct() {
        for (i, d) in ALL.iter().enumerate() {
            assert_eq!(Device::from_name(d.name()), Some(*d));
            assert_eq!(d.ino(), 2 + i as u64);
            assert_eq!(d.metadata().mode & S_IFCHR, S_IFCHR);
        }
        assert_eq!(Device::from_name("sda"), None);
        assert_eq!(Device::Null.rdev(), (1, 3));
        assert!(Device::Tty.is_terminal() && !Device::Zero.is_terminal());
        // Directory order is by name, as getdents shows it.
        let names: alloc::vec::Vec<_> = ALL.iter().map(|d| d.name()).collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
    }
}

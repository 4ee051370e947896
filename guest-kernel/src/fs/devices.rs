//! The `/dev` directory: a small device filesystem mounted over the rootfs's `/dev`.
//!
//! Character devices with Linux's numbers: `null` (1:3), `zero` (1:5), `full` (1:7),
//! `random` (1:8), `urandom` (1:9), `tty` (5:0) and `console` (5:1); both of the last two
//! are the VM's console. `random` and `urandom` draw from [`crate::random`]. And the links
//! a Linux system's udev makes: `fd` to `/proc/self/fd`, `stdin`, `stdout` and `stderr` to
//! its descriptors 0, 1 and 2.

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

use super::inode::{FileType, FsStats, Inode, InodeRef, ST_NOSUID};
use super::stat::{Metadata, Timestamp, S_IFCHR, S_IFDIR, S_IFLNK};
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
    /// `/dev/full`: reads give zeros, writes fail with `ENOSPC`.
    Full,
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
pub const ALL: [Device; 7] = [
    Device::Console,
    Device::Full,
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
            Device::Full => "full",
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
            Device::Full => (1, 7),
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

/// The links under `/dev` (name, target); the directory lists them with the devices, by
/// name.
pub const LINKS: [(&str, &str); 4] = [
    ("fd", "/proc/self/fd"),
    ("stderr", "/proc/self/fd/2"),
    ("stdin", "/proc/self/fd/0"),
    ("stdout", "/proc/self/fd/1"),
];

/// A node of the device file system.
#[derive(Clone, Copy)]
pub enum DevNode {
    /// `/dev` itself.
    Dir,
    /// A device.
    Dev(Device),
    /// A link: an index into [`LINKS`].
    Link(usize),
}

/// The root of a device file system, to mount on `/dev`.
pub fn root() -> InodeRef {
    Arc::new(DevNode::Dir)
}

/// What `stat` reports for link `i` of [`LINKS`].
fn link_metadata(i: usize) -> Metadata {
    Metadata {
        ino: link_ino(i),
        mode: S_IFLNK | 0o777,
        nlink: 1,
        rdev: (0, 0),
        size: LINKS[i].1.len() as u64,
        mount_root: false,
        ..dir_metadata()
    }
}

/// The inode number of link `i`: after the devices'.
fn link_ino(i: usize) -> u64 {
    2 + (ALL.len() + i) as u64
}

impl DevNode {
    /// The node called `name` in `/dev`.
    fn named(name: &str) -> Option<DevNode> {
        Device::from_name(name).map(DevNode::Dev).or_else(|| {
            LINKS
                .iter()
                .position(|(n, _)| *n == name)
                .map(DevNode::Link)
        })
    }
}

impl Inode for DevNode {
    fn fs_id(&self) -> u64 {
        u64::from(DEVFS_DEV.1)
    }

    fn ino(&self) -> u64 {
        match *self {
            DevNode::Dir => 1,
            DevNode::Dev(d) => d.ino(),
            DevNode::Link(i) => link_ino(i),
        }
    }

    fn file_type(&self) -> FileType {
        match self {
            DevNode::Dir => FileType::Dir,
            DevNode::Dev(_) => FileType::CharDev,
            DevNode::Link(_) => FileType::Symlink,
        }
    }

    fn metadata(&self) -> Metadata {
        match *self {
            DevNode::Dir => dir_metadata(),
            DevNode::Dev(d) => d.metadata(),
            DevNode::Link(i) => link_metadata(i),
        }
    }

    fn lookup(&self, name: &str) -> Result<InodeRef, Errno> {
        match self {
            DevNode::Dir => DevNode::named(name)
                .map(|n| Arc::new(n) as InodeRef)
                .ok_or(Errno::ENOENT),
            _ => Err(Errno::ENOTDIR),
        }
    }

    fn parent(&self) -> Result<InodeRef, Errno> {
        match self {
            DevNode::Dir => Ok(root()),
            _ => Err(Errno::ENOTDIR),
        }
    }

    fn readlink(&self) -> Result<String, Errno> {
        match *self {
            DevNode::Link(i) => Ok(String::from(LINKS[i].1)),
            _ => Err(Errno::EINVAL),
        }
    }

    fn entries(&self) -> Result<Vec<(String, u64, FileType)>, Errno> {
        if !matches!(self, DevNode::Dir) {
            return Err(Errno::ENOTDIR);
        }
        let devices = ALL
            .iter()
            .map(|d| (String::from(d.name()), d.ino(), FileType::CharDev));
        let links = LINKS
            .iter()
            .enumerate()
            .map(|(i, (name, _))| (String::from(*name), link_ino(i), FileType::Symlink));
        let mut all: Vec<_> = devices.chain(links).collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(all)
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
        Err(match self {
            DevNode::Dir => Errno::EISDIR,
            _ => Errno::EINVAL,
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
            files: (ALL.len() + LINKS.len()) as u64 + 1,
            flags: ST_NOSUID,
            ..FsStats::default()
        }
    }

    fn device(&self) -> Option<Device> {
        match *self {
            DevNode::Dev(d) => Some(d),
            _ => None,
        }
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

    #[test]
    fn the_directory_lists_devices_then_links_with_distinct_inodes() {
        let dir = root();
        let entries = dir.entries().unwrap();
        assert_eq!(entries.len(), ALL.len() + LINKS.len());
        let mut inos: alloc::vec::Vec<u64> = entries.iter().map(|e| e.1).collect();
        inos.push(1);
        inos.sort();
        inos.dedup();
        assert_eq!(inos.len(), ALL.len() + LINKS.len() + 1);
        let stdin = dir.lookup("stdin").unwrap();
        assert_eq!(stdin.file_type(), FileType::Symlink);
        assert_eq!(stdin.readlink().unwrap(), "/proc/self/fd/0");
        assert_eq!(stdin.metadata().size, 15);
        assert_eq!(stdin.metadata().mode, S_IFLNK | 0o777);
        assert_eq!(
            dir.lookup("fd").unwrap().readlink().unwrap(),
            "/proc/self/fd"
        );
        let full = dir.lookup("full").unwrap();
        assert_eq!(full.device(), Some(Device::Full));
        assert_eq!(full.metadata().rdev, (1, 7));
        assert_eq!(full.readlink().err(), Some(Errno::EINVAL));
        assert_eq!(stdin.lookup("x").err(), Some(Errno::ENOTDIR));
        assert_eq!(dir.lookup("sda").err(), Some(Errno::ENOENT));
    }
}

//! The `/dev` directory: a small device filesystem mounted over the rootfs's `/dev`.
//!
//! Character devices with Linux's numbers: `null` (1:3), `zero` (1:5), `random` (1:8),
//! `urandom` (1:9), `tty` (5:0) and `console` (5:1); both of the last two are the VM's
//! console. `random` and `urandom` draw from [`crate::random`].

use super::stat::{Metadata, S_IFCHR, S_IFDIR};

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
            mtime: 0,
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
        mtime: 0,
        mount_root: true,
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

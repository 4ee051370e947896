//! File metadata and its two user-visible encodings, byte-exact to x86-64 Linux:
//! `struct stat` (`fstat`, `newfstatat`, `stat`, `lstat`) and `struct statx` (`statx`).

use crate::mm::uaccess::Pod;

/// File type mask of `st_mode`.
pub const S_IFMT: u32 = 0o170_000;
/// Regular file.
pub const S_IFREG: u32 = 0o100_000;
/// Directory.
pub const S_IFDIR: u32 = 0o040_000;
/// Symbolic link.
pub const S_IFLNK: u32 = 0o120_000;
/// Character device.
pub const S_IFCHR: u32 = 0o020_000;
/// Named pipe (FIFO).
pub const S_IFIFO: u32 = 0o010_000;

/// Preferred I/O size reported for every file (one page).
pub const BLOCK_SIZE: u32 = 4096;

/// A file time: seconds and nanoseconds since the epoch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timestamp {
    /// Seconds.
    pub sec: i64,
    /// Nanoseconds (below 1e9).
    pub nsec: u32,
}

impl Timestamp {
    /// Whole seconds.
    pub const fn from_secs(sec: i64) -> Self {
        Timestamp { sec, nsec: 0 }
    }

    /// Nanoseconds since the epoch.
    pub const fn from_ns(ns: u64) -> Self {
        Timestamp {
            sec: (ns / 1_000_000_000) as i64,
            nsec: (ns % 1_000_000_000) as u32,
        }
    }
}

/// The three times `stat` reports, all the same (for files that never change).
pub const fn same_times(t: Timestamp) -> (Timestamp, Timestamp, Timestamp) {
    (t, t, t)
}

/// What `stat` reports about a file, whichever filesystem it lives on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Metadata {
    /// Device holding the file: (major, minor).
    pub dev: (u32, u32),
    /// Inode number, unique within `dev`.
    pub ino: u64,
    /// File type bits (`S_IF*`) and permission bits.
    pub mode: u32,
    /// Number of hard links.
    pub nlink: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// For device files, the device: (major, minor).
    pub rdev: (u32, u32),
    /// Size in bytes.
    pub size: u64,
    /// Last access.
    pub atime: Timestamp,
    /// Last change of the data.
    pub mtime: Timestamp,
    /// Last change of the data or metadata.
    pub ctime: Timestamp,
    /// Whether the file is the root of its filesystem (`STATX_ATTR_MOUNT_ROOT`).
    pub mount_root: bool,
}

impl Metadata {
    /// The file type bits.
    pub fn file_type(&self) -> u32 {
        self.mode & S_IFMT
    }

    /// Whether this is a directory.
    pub fn is_dir(&self) -> bool {
        self.file_type() == S_IFDIR
    }

    /// Whether this is a symbolic link.
    pub fn is_symlink(&self) -> bool {
        self.file_type() == S_IFLNK
    }

    /// Whether this is a regular file.
    pub fn is_regular(&self) -> bool {
        self.file_type() == S_IFREG
    }

    /// 512-byte blocks the file occupies: whole pages for regular files, as tmpfs counts.
    pub fn blocks(&self) -> u64 {
        if self.is_regular() {
            self.size.div_ceil(u64::from(BLOCK_SIZE)) * (u64::from(BLOCK_SIZE) / 512)
        } else {
            0
        }
    }
}

/// Linux's `new_encode_dev`: the `dev_t` user space sees.
pub fn encode_dev((major, minor): (u32, u32)) -> u64 {
    u64::from((minor & 0xff) | (major << 8) | ((minor & !0xff) << 12))
}

/// `struct stat` of x86-64 Linux (`arch/x86/include/uapi/asm/stat.h`).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stat {
    /// Device.
    pub st_dev: u64,
    /// Inode number.
    pub st_ino: u64,
    /// Hard links.
    pub st_nlink: u64,
    /// Type and permissions.
    pub st_mode: u32,
    /// Owner.
    pub st_uid: u32,
    /// Group.
    pub st_gid: u32,
    /// Padding.
    pub pad0: u32,
    /// Device number of a device file.
    pub st_rdev: u64,
    /// Size in bytes.
    pub st_size: i64,
    /// Preferred I/O size.
    pub st_blksize: i64,
    /// 512-byte blocks allocated.
    pub st_blocks: i64,
    /// Access time, seconds.
    pub st_atime: i64,
    /// Access time, nanoseconds.
    pub st_atime_nsec: i64,
    /// Modification time, seconds.
    pub st_mtime: i64,
    /// Modification time, nanoseconds.
    pub st_mtime_nsec: i64,
    /// Status change time, seconds.
    pub st_ctime: i64,
    /// Status change time, nanoseconds.
    pub st_ctime_nsec: i64,
    /// Reserved.
    pub unused: [i64; 3],
}

const _: () = assert!(core::mem::size_of::<Stat>() == 144);
const _: () = assert!(core::mem::offset_of!(Stat, st_mode) == 24);
const _: () = assert!(core::mem::offset_of!(Stat, st_rdev) == 40);
const _: () = assert!(core::mem::offset_of!(Stat, st_size) == 48);
const _: () = assert!(core::mem::offset_of!(Stat, st_blocks) == 64);
const _: () = assert!(core::mem::offset_of!(Stat, st_mtime) == 88);
const _: () = assert!(core::mem::offset_of!(Stat, unused) == 120);

// SAFETY: repr(C), only integer fields laid out without implicit padding (checked above),
// every bit pattern valid.
unsafe impl Pod for Stat {}

impl From<&Metadata> for Stat {
    fn from(m: &Metadata) -> Self {
        Stat {
            st_dev: encode_dev(m.dev),
            st_ino: m.ino,
            st_nlink: u64::from(m.nlink),
            st_mode: m.mode,
            st_uid: m.uid,
            st_gid: m.gid,
            pad0: 0,
            st_rdev: encode_dev(m.rdev),
            st_size: i64::try_from(m.size).unwrap_or(i64::MAX),
            st_blksize: i64::from(BLOCK_SIZE),
            st_blocks: i64::try_from(m.blocks()).unwrap_or(i64::MAX),
            st_atime: m.atime.sec,
            st_atime_nsec: i64::from(m.atime.nsec),
            st_mtime: m.mtime.sec,
            st_mtime_nsec: i64::from(m.mtime.nsec),
            st_ctime: m.ctime.sec,
            st_ctime_nsec: i64::from(m.ctime.nsec),
            unused: [0; 3],
        }
    }
}

/// `struct statx_timestamp`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatxTimestamp {
    /// Seconds since the epoch.
    pub tv_sec: i64,
    /// Nanoseconds.
    pub tv_nsec: u32,
    /// Reserved.
    pub reserved: i32,
}

/// `struct statx` (`include/uapi/linux/stat.h`), 256 bytes.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Statx {
    /// Which fields are filled in (`STATX_*`).
    pub stx_mask: u32,
    /// Preferred I/O size.
    pub stx_blksize: u32,
    /// `STATX_ATTR_*` flags.
    pub stx_attributes: u64,
    /// Hard links.
    pub stx_nlink: u32,
    /// Owner.
    pub stx_uid: u32,
    /// Group.
    pub stx_gid: u32,
    /// Type and permissions.
    pub stx_mode: u16,
    /// Reserved.
    pub spare0: u16,
    /// Inode number.
    pub stx_ino: u64,
    /// Size in bytes.
    pub stx_size: u64,
    /// 512-byte blocks allocated.
    pub stx_blocks: u64,
    /// Which `STATX_ATTR_*` flags the filesystem supports.
    pub stx_attributes_mask: u64,
    /// Access time.
    pub stx_atime: StatxTimestamp,
    /// Creation time.
    pub stx_btime: StatxTimestamp,
    /// Status change time.
    pub stx_ctime: StatxTimestamp,
    /// Modification time.
    pub stx_mtime: StatxTimestamp,
    /// Device number of a device file: major.
    pub stx_rdev_major: u32,
    /// Device number of a device file: minor.
    pub stx_rdev_minor: u32,
    /// Device holding the file: major.
    pub stx_dev_major: u32,
    /// Device holding the file: minor.
    pub stx_dev_minor: u32,
    /// Mount id.
    pub stx_mnt_id: u64,
    /// Direct I/O alignments and later additions, all reserved here.
    pub spare: [u32; 10],
    /// Reserved.
    pub spare3: [u64; 8],
}

const _: () = assert!(core::mem::size_of::<Statx>() == 256);
const _: () = assert!(core::mem::offset_of!(Statx, stx_mode) == 28);
const _: () = assert!(core::mem::offset_of!(Statx, stx_ino) == 32);
const _: () = assert!(core::mem::offset_of!(Statx, stx_atime) == 64);
const _: () = assert!(core::mem::offset_of!(Statx, stx_mtime) == 112);
const _: () = assert!(core::mem::offset_of!(Statx, stx_rdev_major) == 128);
const _: () = assert!(core::mem::offset_of!(Statx, stx_mnt_id) == 144);
const _: () = assert!(core::mem::offset_of!(Statx, spare3) == 192);

// SAFETY: repr(C), integer fields without implicit padding (checked above).
unsafe impl Pod for Statx {}

/// `statx` mask bits.
pub mod statx_mask {
    /// `stx_mode & S_IFMT`.
    pub const TYPE: u32 = 0x1;
    /// Everything `stat` returns (type, mode, nlink, uid, gid, times, ino, size, blocks).
    pub const BASIC_STATS: u32 = 0x7ff;
    /// Creation time (never available on astra's filesystems).
    pub const BTIME: u32 = 0x800;
    /// `stx_mnt_id`.
    pub const MNT_ID: u32 = 0x1000;
    /// Reserved for future extension: asking for it is `EINVAL`.
    pub const RESERVED: u32 = 0x8000_0000;
}

/// `STATX_ATTR_MOUNT_ROOT`.
pub const STATX_ATTR_MOUNT_ROOT: u64 = 0x2000;

/// Fills a `struct statx` from `m`; `mnt_id` identifies the filesystem.
pub fn to_statx(m: &Metadata, mnt_id: u64) -> Statx {
    let t = |t: Timestamp| StatxTimestamp {
        tv_sec: t.sec,
        tv_nsec: t.nsec,
        reserved: 0,
    };
    Statx {
        stx_mask: statx_mask::BASIC_STATS | statx_mask::MNT_ID,
        stx_blksize: BLOCK_SIZE,
        stx_attributes: if m.mount_root {
            STATX_ATTR_MOUNT_ROOT
        } else {
            0
        },
        stx_nlink: m.nlink,
        stx_uid: m.uid,
        stx_gid: m.gid,
        stx_mode: m.mode as u16,
        stx_ino: m.ino,
        stx_size: m.size,
        stx_blocks: m.blocks(),
        stx_attributes_mask: STATX_ATTR_MOUNT_ROOT,
        stx_atime: t(m.atime),
        stx_ctime: t(m.ctime),
        stx_mtime: t(m.mtime),
        stx_rdev_major: m.rdev.0,
        stx_rdev_minor: m.rdev.1,
        stx_dev_major: m.dev.0,
        stx_dev_minor: m.dev.1,
        stx_mnt_id: mnt_id,
        ..Statx::default()
    }
}

/// The bytes of a plain-data value, for layout tests.
#[cfg(test)]
fn bytes_of<T: Pod>(v: &T) -> &[u8] {
    // SAFETY: Pod types have no padding; the slice covers exactly the value.
    unsafe { core::slice::from_raw_parts(v as *const T as *const u8, core::mem::size_of::<T>()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Metadata {
        Metadata {
            dev: (0, 1),
            ino: 42,
            mode: S_IFREG | 0o755,
            nlink: 1,
            uid: 1000,
            gid: 100,
            rdev: (0, 0),
            size: 5000,
            atime: Timestamp::from_secs(1_700_000_000),
            mtime: Timestamp::from_secs(1_700_000_000),
            ctime: Timestamp::from_secs(1_700_000_000),
            mount_root: false,
        }
    }

    fn u64_at(b: &[u8], off: usize) -> u64 {
        u64::from_le_bytes(b[off..off + 8].try_into().unwrap())
    }

    fn u32_at(b: &[u8], off: usize) -> u32 {
        u32::from_le_bytes(b[off..off + 4].try_into().unwrap())
    }

    #[test]
    fn stat_bytes_match_the_linux_layout() {
        let st = Stat::from(&sample());
        let b = bytes_of(&st);
        assert_eq!(b.len(), 144);
        assert_eq!(u64_at(b, 0), 1); // st_dev
        assert_eq!(u64_at(b, 8), 42); // st_ino
        assert_eq!(u64_at(b, 16), 1); // st_nlink
        assert_eq!(u32_at(b, 24), 0o100755); // st_mode
        assert_eq!((u32_at(b, 28), u32_at(b, 32)), (1000, 100));
        assert_eq!(u64_at(b, 48), 5000); // st_size
        assert_eq!(u64_at(b, 56), 4096); // st_blksize
        assert_eq!(u64_at(b, 64), 16); // st_blocks: two pages
        for off in [72, 88, 104] {
            assert_eq!(u64_at(b, off), 1_700_000_000);
            assert_eq!(u64_at(b, off + 8), 0);
        }
        assert!(b[120..].iter().all(|&x| x == 0));
    }

    #[test]
    fn statx_bytes_match_the_linux_layout() {
        let mut m = sample();
        m.mode = S_IFCHR | 0o666;
        m.rdev = (1, 3);
        m.dev = (0, 5);
        m.mount_root = true;
        let sx = to_statx(&m, 7);
        let b = bytes_of(&sx);
        assert_eq!(b.len(), 256);
        assert_eq!(u32_at(b, 0), 0x17ff); // mask
        assert_eq!(u32_at(b, 4), 4096);
        assert_eq!(u64_at(b, 8), STATX_ATTR_MOUNT_ROOT);
        assert_eq!(u32_at(b, 16), 1);
        assert_eq!(u16::from_le_bytes([b[28], b[29]]), 0o20666);
        assert_eq!(u64_at(b, 32), 42);
        assert_eq!(u64_at(b, 40), 5000);
        assert_eq!(u64_at(b, 48), 0); // no blocks for a device
        assert_eq!(u64_at(b, 64), 1_700_000_000); // atime
        assert_eq!(u64_at(b, 80), 0); // no btime
        assert_eq!(u64_at(b, 112), 1_700_000_000); // mtime
        assert_eq!((u32_at(b, 128), u32_at(b, 132)), (1, 3));
        assert_eq!((u32_at(b, 136), u32_at(b, 140)), (0, 5));
        assert_eq!(u64_at(b, 144), 7);
        assert!(b[152..].iter().all(|&x| x == 0));
    }

    #[test]
    fn dev_encoding() {
        assert_eq!(encode_dev((1, 3)), 0x103);
        assert_eq!(encode_dev((8, 0x123)), 0x10_0823);
        assert_eq!(encode_dev((0, 0)), 0);
    }

    #[test]
    fn blocks_count_pages_of_regular_files() {
        let mut m = sample();
        m.size = 0;
        assert_eq!(m.blocks(), 0);
        m.size = 1;
        assert_eq!(m.blocks(), 8);
        m.mode = S_IFDIR | 0o755;
        m.size = 4096;
        assert_eq!(m.blocks(), 0);
        assert!(m.is_dir() && !m.is_regular() && !m.is_symlink());
    }
}

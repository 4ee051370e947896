//! The host file-system device (`astra-vmm --volume HOST_DIR:GUEST_DIR[:ro]`): file
//! operations on shared host directories, forwarded to the VMM one request at a time.
//!
//! The kernel writes the 32-bit guest-physical address of a [`HostFsRequest`] to
//! [`super::port::HOSTFS`]. The VMM reads the block (8-byte aligned, wholly in guest RAM,
//! else it is dropped or gets [`super::status::INVALID`]), carries out `op` and writes the
//! outputs and `status` back. Names and buffers are `(gpa, len)` pairs that must lie wholly
//! in guest RAM, else the status is [`super::status::INVALID`] and nothing is done.
//!
//! Files are named by handles: [`op::VOLUME`] gives the root handle of volume `index`,
//! [`op::LOOKUP`]/[`op::CREATE`] give handles of entries of a directory handle, and
//! [`op::FORGET`] drops one. A handle the VMM did not give (or already forgot) fails with
//! `EBADF`. Names are single path components: non-empty, at most 255 bytes, no `/` or
//! NUL, never `.` or `..` (else `EINVAL`). The VMM resolves every name beneath the
//! directory of the handle (`openat2` with `RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS`, final
//! symlinks not followed): the guest follows symlinks itself, in its own namespace, so
//! nothing outside `HOST_DIR` can be reached. On a read-only volume every operation that
//! would change something fails with `EROFS`.
//!
//! A failed operation has status [`super::status::IO_ERROR`] and `error` a Linux errno.

use core::mem::{offset_of, size_of};

/// Largest `buf_len` the VMM accepts; larger requests are [`super::status::INVALID`].
pub const HOSTFS_IO_MAX: u32 = 1 << 20;

/// Operations ([`HostFsRequest::op`]).
pub mod op {
    /// Volume `flags` (0, 1, ...): `out_handle` its root, `attr`, `out_flags`
    /// ([`super::out_flags::READ_ONLY`]), and its guest path written to `buf` (`count`
    /// bytes, no NUL). `ENOENT` past the last volume; `ERANGE` if `buf` is too small.
    pub const VOLUME: u32 = 1;
    /// Entry `name` of directory `handle` (a final symlink not followed): `out_handle`,
    /// `attr`.
    pub const LOOKUP: u32 = 2;
    /// Drops `handle`.
    pub const FORGET: u32 = 3;
    /// `attr` of `handle`.
    pub const GETATTR: u32 = 4;
    /// Reads up to `buf_len` bytes of regular file `handle` at `offset` into `buf`: `count`.
    pub const READ: u32 = 5;
    /// Writes `buf_len` bytes from `buf` to regular file `handle` at `offset`: `count`.
    pub const WRITE: u32 = 6;
    /// Entries of directory `handle` from entry number `offset` on (`.` and `..` left out),
    /// as many whole [`super::dirent`] records as fit `buf`: `count` bytes, `out_offset` the
    /// number to continue from, `out_flags` [`super::out_flags::END`] when none are left.
    /// `EINVAL` if not even one record fits.
    pub const READDIR: u32 = 7;
    /// Creates `name` in directory `handle`: `mode` has the `S_IF*` type (regular file,
    /// directory, FIFO or symlink) and the permission bits; a symlink's target is `name2`.
    /// `EEXIST` if the name exists. `out_handle`, `attr`.
    pub const CREATE: u32 = 8;
    /// Removes `name` from directory `handle`: a non-directory, or with `flags`
    /// [`super::UNLINK_DIR`] an empty directory (`unlinkat` semantics and errors).
    pub const UNLINK: u32 = 9;
    /// Renames `name` in directory `handle` to `name2` in directory `handle2`; `flags` are
    /// `renameat2` flags (`RENAME_NOREPLACE` 1, `RENAME_EXCHANGE` 2).
    pub const RENAME: u32 = 10;
    /// Sets regular file `handle`'s size to `offset`.
    pub const TRUNCATE: u32 = 11;
    /// The target of symlink `handle` into `buf`: `count` bytes (`ERANGE` if cut short).
    pub const READLINK: u32 = 12;
    /// Sets attributes of `handle` as `flags` ([`super::setattr`] bits) say: the
    /// permission bits from `mode`, times from `atime`/`mtime`. `attr` afterwards.
    pub const SETATTR: u32 = 13;
    /// Adds the hard link `name` in directory `handle` to the non-directory `handle2`.
    pub const LINK: u32 = 14;
    /// File-system statistics of the volume holding `handle` into `attr`'s fields as
    /// [`super::HostFsStatfs`] says.
    pub const STATFS: u32 = 15;
}

/// Bits of [`HostFsRequest::out_flags`].
pub mod out_flags {
    /// [`super::op::VOLUME`]: the volume is read-only.
    pub const READ_ONLY: u32 = 1 << 0;
    /// [`super::op::READDIR`]: no entries are left.
    pub const END: u32 = 1 << 1;
}

/// [`op::UNLINK`] flag: remove a directory (`rmdir`).
pub const UNLINK_DIR: u32 = 1;

/// Bits of [`HostFsRequest::flags`] for [`op::SETATTR`].
pub mod setattr {
    /// Set the permission bits to `mode & 0o7777`.
    pub const MODE: u32 = 1 << 0;
    /// Set the access time to `atime`.
    pub const ATIME: u32 = 1 << 1;
    /// Set the modification time to `mtime`.
    pub const MTIME: u32 = 1 << 2;
}

/// [`op::READDIR`] records: `ino` (u64 LE), `d_type` (u8, `DT_*`), name length (u8), the
/// name; each record padded with zeros to a multiple of 8 bytes.
pub mod dirent {
    /// Bytes before the name.
    pub const HEADER: usize = 10;

    /// The padded size of a record with a name of `name_len` bytes.
    pub const fn record_len(name_len: usize) -> usize {
        (HEADER + name_len + 7) & !7
    }
}

/// A time, as in `struct timespec`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HostFsTime {
    /// Seconds since the epoch.
    pub sec: i64,
    /// Nanoseconds (below 1e9).
    pub nsec: u32,
    /// Explicit padding, zero.
    pub _pad: u32,
}

/// File attributes, as `stat` reports them on the host.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HostFsAttr {
    /// Inode number.
    pub ino: u64,
    /// Size in bytes.
    pub size: u64,
    /// 512-byte blocks allocated.
    pub blocks: u64,
    /// `st_mode`: `S_IF*` type and permission bits.
    pub mode: u32,
    /// Hard links.
    pub nlink: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Last access.
    pub atime: HostFsTime,
    /// Last modification.
    pub mtime: HostFsTime,
    /// Last status change.
    pub ctime: HostFsTime,
}

/// What [`op::STATFS`] writes, in [`HostFsAttr`]'s place: `ino` = block size, `size` =
/// total blocks, `blocks` = free blocks, `atime.sec` = total inodes, `mtime.sec` = free
/// inodes, `ctime.sec` = the host file system's magic number.
pub type HostFsStatfs = HostFsAttr;

/// One request of the host file-system device (see the module documentation).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HostFsRequest {
    /// An [`op`] value.
    pub op: u32,
    /// Operation flags (see each [`op`]).
    pub flags: u32,
    /// The file or directory operated on.
    pub handle: u64,
    /// The second one ([`op::RENAME`]'s new directory, [`op::LINK`]'s file).
    pub handle2: u64,
    /// File offset, entry number or new size.
    pub offset: u64,
    /// Guest-physical address of the name.
    pub name_gpa: u64,
    /// Guest-physical address of the second name.
    pub name2_gpa: u64,
    /// Guest-physical address of the data buffer.
    pub buf_gpa: u64,
    /// Length of the name.
    pub name_len: u32,
    /// Length of the second name.
    pub name2_len: u32,
    /// Length of the data buffer.
    pub buf_len: u32,
    /// `S_IF*` type and permission bits ([`op::CREATE`], [`op::SETATTR`]).
    pub mode: u32,
    /// Access time for [`op::SETATTR`].
    pub atime: HostFsTime,
    /// Modification time for [`op::SETATTR`].
    pub mtime: HostFsTime,
    /// A [`super::status`] value, written by the VMM.
    pub status: u32,
    /// With [`super::status::IO_ERROR`], the Linux errno; written by the VMM.
    pub error: u32,
    /// Bytes moved or written, written by the VMM.
    pub count: u64,
    /// A new handle, written by the VMM.
    pub out_handle: u64,
    /// [`op::READDIR`]'s next entry number, written by the VMM.
    pub out_offset: u64,
    /// [`out_flags`] bits, written by the VMM.
    pub out_flags: u32,
    /// Explicit padding, zero.
    pub _pad: u32,
    /// Attributes, written by the VMM.
    pub attr: HostFsAttr,
}

const _: () = {
    assert!(size_of::<HostFsTime>() == 16);
    assert!(size_of::<HostFsAttr>() == 88);
    assert!(offset_of!(HostFsAttr, atime) == 40);
    assert!(offset_of!(HostFsRequest, handle) == 8);
    assert!(offset_of!(HostFsRequest, name_len) == 56);
    assert!(offset_of!(HostFsRequest, atime) == 72);
    assert!(offset_of!(HostFsRequest, status) == 104);
    assert!(offset_of!(HostFsRequest, error) == 108);
    assert!(offset_of!(HostFsRequest, count) == 112);
    assert!(offset_of!(HostFsRequest, out_handle) == 120);
    assert!(offset_of!(HostFsRequest, out_offset) == 128);
    assert!(offset_of!(HostFsRequest, out_flags) == 136);
    assert!(offset_of!(HostFsRequest, attr) == 144);
    assert!(size_of::<HostFsRequest>() == 144 + 88);
};

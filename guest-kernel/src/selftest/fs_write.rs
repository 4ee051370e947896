//! Self-tests of the system calls that change files and names, run as a real process
//! against the mounted namespace (in a directory of `/tmp` they remove again): the
//! successes, Linux's errors, and hostile arguments (bad pointers, flags, times).

use alloc::string::String;

use super::fs::{Harness, BUF_VA, OBJ_VA, PATH_VA};
use super::{check, TestResult};
use crate::syscall::Errno;

/// A second path buffer.
const PATH2_VA: u64 = PATH_VA + 0x800;
const AT_FDCWD: u64 = -100i64 as u64;
const O_RDONLY: u64 = 0;
const O_WRONLY: u64 = 1;
const O_RDWR: u64 = 2;
const O_CREAT: u64 = 0o100;
const O_EXCL: u64 = 0o200;
const O_TRUNC: u64 = 0o1000;
const O_APPEND: u64 = 0o2000;
const O_DIRECTORY: u64 = 0o200000;
const O_PATH: u64 = 0o10000000;
const AT_REMOVEDIR: u64 = 0x200;
const RENAME_NOREPLACE: u64 = 1;
const RENAME_EXCHANGE: u64 = 2;
const TMPFS_MAGIC: u64 = 0x0102_1994;
const OVERLAYFS_MAGIC: u64 = 0x794c_7630;

mod nr {
    pub const READ: u64 = 0;
    pub const WRITE: u64 = 1;
    pub const OPEN: u64 = 2;
    pub const CLOSE: u64 = 3;
    pub const STAT: u64 = 4;
    pub const FSTAT: u64 = 5;
    pub const LSEEK: u64 = 8;
    pub const PIPE: u64 = 22;
    pub const FSYNC: u64 = 74;
    pub const TRUNCATE: u64 = 76;
    pub const FTRUNCATE: u64 = 77;
    pub const RENAME: u64 = 82;
    pub const MKDIR: u64 = 83;
    pub const RMDIR: u64 = 84;
    pub const LINK: u64 = 86;
    pub const UNLINK: u64 = 87;
    pub const SYMLINK: u64 = 88;
    pub const READLINK: u64 = 89;
    pub const CHMOD: u64 = 90;
    pub const UMASK: u64 = 95;
    pub const STATFS: u64 = 137;
    pub const FSTATFS: u64 = 138;
    pub const UNLINKAT: u64 = 263;
    pub const UTIMENSAT: u64 = 280;
    pub const RENAMEAT2: u64 = 316;
}

/// `struct stat` fields.
const ST_INO: u64 = 8;
const ST_NLINK: u64 = 16;
const ST_MODE: u64 = 24;
const ST_SIZE: u64 = 48;
const ST_MTIME: u64 = 88;

/// Stats `path` into OBJ_VA.
fn stat(h: &mut Harness, path: &str) -> Result<(), String> {
    let p = h.path(PATH_VA, path)?;
    h.ok(nr::STAT, &[p, OBJ_VA])?;
    Ok(())
}

fn p2(h: &mut Harness, a: &str, b: &str) -> Result<(u64, u64), String> {
    Ok((h.path(PATH_VA, a)?, h.path(PATH2_VA, b)?))
}

/// Files: create/exclusive/truncate/append, write and read back, truncate, fsync, umask.
pub fn files(_: Option<&crate::fs::tar::TarFs>) -> TestResult {
    let mut h = Harness::new("/bin/hello")?;
    let d = h.path(PATH_VA, "/tmp/st-files")?;
    h.ok(nr::MKDIR, &[d, 0o755])?;
    let old = h.ok(nr::UMASK, &[0o027])?;
    check(old == 0o022, "initial umask 022")?;
    check(
        h.ok(nr::UMASK, &[0o7777])? == 0o027,
        "umask returns the old mask",
    )?;
    h.ok(nr::UMASK, &[0o022])?;
    let f = h.path(PATH_VA, "/tmp/st-files/f")?;
    let fd = h.ok(nr::OPEN, &[f, O_RDWR | O_CREAT | O_EXCL, 0o666])?;
    h.fails(
        nr::OPEN,
        &[f, O_RDWR | O_CREAT | O_EXCL, 0o666],
        Errno::EEXIST,
    )?;
    h.put(BUF_VA, b"hello world")?;
    check(h.ok(nr::WRITE, &[fd, BUF_VA, 11])? == 11, "write")?;
    h.ok(nr::FSTAT, &[fd, OBJ_VA])?;
    check(h.u32_at(OBJ_VA + ST_MODE)? == 0o100644, "mode 0666 & ~022")?;
    check(h.u64_at(OBJ_VA + ST_SIZE)? == 11, "size after write")?;
    check(h.u64_at(OBJ_VA + ST_MTIME)? > 1_600_000_000, "a real mtime")?;
    // A write from a bad pointer is EFAULT and changes nothing.
    h.fails(nr::WRITE, &[fd, 0x10, 5], Errno::EFAULT)?;
    h.ok(nr::LSEEK, &[fd, 0, 0])?;
    check(h.ok(nr::READ, &[fd, BUF_VA, 64])? == 11, "read back")?;
    check(h.get(BUF_VA, 11)? == b"hello world", "bytes read back")?;
    h.ok(nr::FTRUNCATE, &[fd, 5])?;
    h.fails(nr::FTRUNCATE, &[fd, -1i64 as u64], Errno::EINVAL)?;
    h.ok(nr::FSYNC, &[fd])?;
    h.ok(nr::CLOSE, &[fd])?;
    h.fails(nr::FSYNC, &[fd], Errno::EBADF)?;
    let ap = h.ok(nr::OPEN, &[f, O_WRONLY | O_APPEND])?;
    h.put(BUF_VA, b"!!")?;
    h.ok(nr::WRITE, &[ap, BUF_VA, 2])?;
    stat(&mut h, "/tmp/st-files/f")?;
    check(
        h.u64_at(OBJ_VA + ST_SIZE)? == 7,
        "O_APPEND wrote at the end",
    )?;
    let ro = h.ok(nr::OPEN, &[f, O_RDONLY])?;
    h.fails(nr::FTRUNCATE, &[ro, 0], Errno::EINVAL)?;
    h.fails(nr::WRITE, &[ro, BUF_VA, 1], Errno::EBADF)?;
    let (rd, _) = pipe(&mut h)?;
    h.fails(nr::FSYNC, &[rd], Errno::EINVAL)?;
    let t = h.ok(nr::OPEN, &[f, O_WRONLY | O_TRUNC])?;
    h.ok(nr::FSTAT, &[t, OBJ_VA])?;
    check(h.u64_at(OBJ_VA + ST_SIZE)? == 0, "O_TRUNC")?;
    let f = h.path(PATH_VA, "/tmp/st-files/f")?;
    h.ok(nr::TRUNCATE, &[f, 3])?;
    let d = h.path(PATH_VA, "/tmp/st-files")?;
    h.fails(nr::TRUNCATE, &[d, 0], Errno::EISDIR)?;
    h.fails(nr::TRUNCATE, &[0x10, 0], Errno::EFAULT)?;
    let pth = h.ok(nr::OPEN, &[d, O_PATH])?;
    h.fails(nr::FSYNC, &[pth], Errno::EBADF)?;
    let dfd = h.ok(nr::OPEN, &[d, O_RDONLY | O_DIRECTORY])?;
    h.ok(nr::FSYNC, &[dfd])?;
    let f = h.path(PATH_VA, "/tmp/st-files/f")?;
    h.ok(nr::UNLINK, &[f])?;
    let d = h.path(PATH_VA, "/tmp/st-files")?;
    h.ok(nr::RMDIR, &[d])?;
    Ok(())
}

fn pipe(h: &mut Harness) -> Result<(u64, u64), String> {
    h.ok(nr::PIPE, &[OBJ_VA])?;
    let v = h.u64_at(OBJ_VA)?;
    Ok((v & 0xffff_ffff, v >> 32))
}

/// Names: mkdir/rmdir/unlink/rename(2)/link/symlink and their errors.
pub fn names(_: Option<&crate::fs::tar::TarFs>) -> TestResult {
    let mut h = Harness::new("/bin/hello")?;
    let d = h.path(PATH_VA, "/tmp/st-names")?;
    h.ok(nr::MKDIR, &[d, 0o700])?;
    h.fails(nr::MKDIR, &[d, 0o700], Errno::EEXIST)?;
    let (a, sub) = p2(&mut h, "/tmp/st-names/a", "/tmp/st-names/sub")?;
    h.ok(nr::MKDIR, &[sub, 0o755])?;
    let fd = h.ok(nr::OPEN, &[a, O_WRONLY | O_CREAT, 0o600])?;
    h.ok(nr::CLOSE, &[fd])?;
    let root = h.path(PATH_VA, "/")?;
    h.fails(nr::RMDIR, &[root], Errno::EBUSY)?;
    let tmp = h.path(PATH_VA, "/tmp")?;
    h.fails(nr::RMDIR, &[tmp], Errno::EBUSY)?;
    let dot = h.path(PATH_VA, "/tmp/st-names/.")?;
    h.fails(nr::RMDIR, &[dot], Errno::EINVAL)?;
    let d = h.path(PATH_VA, "/tmp/st-names")?;
    h.fails(nr::RMDIR, &[d], Errno::ENOTEMPTY)?;
    let (a, sub) = p2(&mut h, "/tmp/st-names/a", "/tmp/st-names/sub")?;
    h.fails(nr::UNLINK, &[sub], Errno::EISDIR)?;
    h.fails(nr::RMDIR, &[a], Errno::ENOTDIR)?;
    h.fails(nr::UNLINKAT, &[AT_FDCWD, a, 0x1], Errno::EINVAL)?;
    // Hard link, then rename over it: both names were one file, so nothing changes.
    let (a, b) = p2(&mut h, "/tmp/st-names/a", "/tmp/st-names/b")?;
    h.ok(nr::LINK, &[a, b])?;
    stat(&mut h, "/tmp/st-names/a")?;
    let ino = h.u64_at(OBJ_VA + ST_INO)?;
    check(h.u64_at(OBJ_VA + ST_NLINK)? == 2, "two links")?;
    let (a, b) = p2(&mut h, "/tmp/st-names/a", "/tmp/st-names/b")?;
    h.fails(nr::LINK, &[a, b], Errno::EEXIST)?;
    let (sub, dl) = p2(&mut h, "/tmp/st-names/sub", "/tmp/st-names/dl")?;
    h.fails(nr::LINK, &[sub, dl], Errno::EPERM)?;
    let (a, etc) = p2(&mut h, "/tmp/st-names/a", "/etc/st-link")?;
    h.fails(nr::LINK, &[a, etc], Errno::EXDEV)?;
    h.fails(nr::RENAME, &[a, etc], Errno::EXDEV)?;
    let (a, b) = p2(&mut h, "/tmp/st-names/a", "/tmp/st-names/b")?;
    h.fails(
        nr::RENAMEAT2,
        &[AT_FDCWD, a, AT_FDCWD, b, RENAME_NOREPLACE],
        Errno::EEXIST,
    )?;
    h.fails(
        nr::RENAMEAT2,
        &[AT_FDCWD, a, AT_FDCWD, b, RENAME_NOREPLACE | RENAME_EXCHANGE],
        Errno::EINVAL,
    )?;
    h.fails(nr::RENAMEAT2, &[AT_FDCWD, a, AT_FDCWD, b, 8], Errno::EINVAL)?;
    let (b, c) = p2(&mut h, "/tmp/st-names/b", "/tmp/st-names/c")?;
    h.ok(nr::RENAME, &[b, c])?;
    stat(&mut h, "/tmp/st-names/c")?;
    check(h.u64_at(OBJ_VA + ST_INO)? == ino, "rename keeps the inode")?;
    // Exchange a file and a directory.
    let (c, sub) = p2(&mut h, "/tmp/st-names/c", "/tmp/st-names/sub")?;
    h.ok(
        nr::RENAMEAT2,
        &[AT_FDCWD, c, AT_FDCWD, sub, RENAME_EXCHANGE],
    )?;
    stat(&mut h, "/tmp/st-names/sub")?;
    check(
        h.u32_at(OBJ_VA + ST_MODE)? & 0o170000 == 0o100000,
        "sub is the file now",
    )?;
    let (c, missing) = p2(&mut h, "/tmp/st-names/c", "/tmp/st-names/none")?;
    h.fails(
        nr::RENAMEAT2,
        &[AT_FDCWD, c, AT_FDCWD, missing, RENAME_EXCHANGE],
        Errno::ENOENT,
    )?;
    let (c, inside) = p2(&mut h, "/tmp/st-names/c", "/tmp/st-names/c/in")?;
    h.fails(nr::RENAME, &[c, inside], Errno::EINVAL)?;
    // Symlinks.
    let (t, l) = p2(&mut h, "sub", "/tmp/st-names/l")?;
    h.ok(nr::SYMLINK, &[t, l])?;
    h.fails(nr::SYMLINK, &[t, l], Errno::EEXIST)?;
    h.fails(nr::SYMLINK, &[0x10, l], Errno::EFAULT)?;
    let l = h.path(PATH_VA, "/tmp/st-names/l")?;
    check(h.ok(nr::READLINK, &[l, BUF_VA, 64])? == 3, "readlink")?;
    check(h.get(BUF_VA, 3)? == b"sub", "link target")?;
    // Clean up: /tmp/st-names/{a, sub (file), c (dir), l}.
    for (path, dir) in [("a", false), ("sub", false), ("l", false), ("c", true)] {
        let p = h.path(PATH_VA, &alloc::format!("/tmp/st-names/{path}"))?;
        let flags = if dir { AT_REMOVEDIR } else { 0 };
        h.ok(nr::UNLINKAT, &[AT_FDCWD, p, flags])
            .map_err(|e| alloc::format!("{path}: {e}"))?;
    }
    let d = h.path(PATH_VA, "/tmp/st-names")?;
    h.ok(nr::RMDIR, &[d])?;
    h.fails(nr::MKDIR, &[0x10, 0o755], Errno::EFAULT)?;
    Ok(())
}

/// Attributes: chmod, utimensat (UTIME_NOW/OMIT, bad nsec, bad pointers), statfs.
pub fn attributes(_: Option<&crate::fs::tar::TarFs>) -> TestResult {
    let mut h = Harness::new("/bin/hello")?;
    let f = h.path(PATH_VA, "/tmp/st-attr")?;
    let fd = h.ok(nr::OPEN, &[f, O_WRONLY | O_CREAT, 0o644])?;
    h.ok(nr::CHMOD, &[f, 0o4751])?;
    stat(&mut h, "/tmp/st-attr")?;
    check(h.u32_at(OBJ_VA + ST_MODE)? == 0o104751, "chmod")?;
    // times[2]: atime = 1000.5, mtime omitted.
    let ts: [i64; 4] = [1000, 500_000_000, 0, (1 << 30) - 2];
    let bytes: alloc::vec::Vec<u8> = ts.iter().flat_map(|v| v.to_le_bytes()).collect();
    h.put(BUF_VA, &bytes)?;
    let f = h.path(PATH_VA, "/tmp/st-attr")?;
    h.ok(nr::UTIMENSAT, &[AT_FDCWD, f, BUF_VA, 0])?;
    stat(&mut h, "/tmp/st-attr")?;
    check(h.u64_at(OBJ_VA + 72)? == 1000, "atime seconds")?;
    check(h.u64_at(OBJ_VA + 80)? == 500_000_000, "atime nanoseconds")?;
    check(h.u64_at(OBJ_VA + ST_MTIME)? > 1000, "mtime left alone")?;
    let bad: [i64; 4] = [0, 1_000_000_000, 0, 0];
    let bytes: alloc::vec::Vec<u8> = bad.iter().flat_map(|v| v.to_le_bytes()).collect();
    h.put(BUF_VA, &bytes)?;
    let f = h.path(PATH_VA, "/tmp/st-attr")?;
    h.fails(nr::UTIMENSAT, &[AT_FDCWD, f, BUF_VA, 0], Errno::EINVAL)?;
    h.fails(nr::UTIMENSAT, &[AT_FDCWD, f, 0x10, 0], Errno::EFAULT)?;
    h.fails(nr::UTIMENSAT, &[AT_FDCWD, f, 0, 0x4], Errno::EINVAL)?;
    // A NULL path names the descriptor (futimens); NULL times is now.
    h.ok(nr::UTIMENSAT, &[fd, 0, 0, 0])?;
    h.ok(nr::STATFS, &[f, BUF_VA])?;
    check(h.u64_at(BUF_VA)? == TMPFS_MAGIC, "statfs /tmp is a tmpfs")?;
    check(h.u64_at(BUF_VA + 8)? == 4096, "block size")?;
    h.ok(nr::FSTATFS, &[fd, BUF_VA])?;
    check(h.u64_at(BUF_VA)? == TMPFS_MAGIC, "fstatfs")?;
    let root = h.path(PATH_VA, "/")?;
    h.ok(nr::STATFS, &[root, BUF_VA])?;
    check(
        h.u64_at(BUF_VA)? == OVERLAYFS_MAGIC,
        "statfs / is an overlay",
    )?;
    h.fails(nr::STATFS, &[root, 0x10], Errno::EFAULT)?;
    h.fails(nr::FSTATFS, &[999, BUF_VA], Errno::EBADF)?;
    let f = h.path(PATH_VA, "/tmp/st-attr")?;
    h.ok(nr::UNLINK, &[f])?;
    // The descriptor still works on the unlinked file.
    h.ok(nr::FSTAT, &[fd, OBJ_VA])?;
    check(
        h.u64_at(OBJ_VA + ST_NLINK)? == 0,
        "unlinked file has no links",
    )?;
    Ok(())
}

//! System calls on file attributes and contents: `chmod`/`fchmod(at)`, `chown` family,
//! `truncate`/`ftruncate`, `fsync`/`fdatasync`/`sync`/`syncfs`, `umask`, `utimensat`,
//! `statfs`/`fstatfs`.

use super::fs::{fd_vnode, lookup_at, read_path_or_empty, walker, AT_EMPTY_PATH};
use super::fs::{start_for, AT_SYMLINK_NOFOLLOW};
use super::io::fd_arg;
use super::{Ctx, Errno, SysResult};
use crate::fs::inode::{FileType, FsStats, InodeRef, NAME_MAX};
use crate::fs::stat::{encode_dev, Timestamp};
use crate::fs::vfs::{self, Vnode};
use crate::mm::uaccess::Pod;
use crate::time::Timespec;

/// `AT_FDCWD` as a raw argument.
const CWD: u64 = super::fs::AT_FDCWD as u64;

/// The node `v` names; pipes have none to change (Linux: their pipefs inode; astra keeps
/// none).
fn node_of(v: Vnode) -> Result<InodeRef, Errno> {
    match v {
        Vnode::Node(n) => Ok(n),
        Vnode::Pipe(_) => Err(Errno::EPERM),
    }
}

fn path_node(ctx: &Ctx<'_>, dirfd: u64, path_va: u64, flags: u32) -> Result<InodeRef, Errno> {
    node_of(lookup_at(ctx, dirfd, path_va, flags, true)?)
}

/// An open descriptor's node (`O_PATH` ones give EBADF, as `fchmod` and `fchown` do).
fn fd_node(ctx: &Ctx<'_>, fd: u64) -> Result<InodeRef, Errno> {
    node_of(ctx.task.files.lock().get(fd_arg(fd))?.vnode())
}

/// chmod(path, mode)
pub fn chmod(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    path_node(ctx, CWD, a[0], 0)?.set_mode(a[1] as u32 & 0o7777)?;
    Ok(0)
}

/// fchmod(fd, mode)
pub fn fchmod(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    fd_node(ctx, a[0])?.set_mode(a[1] as u32 & 0o7777)?;
    Ok(0)
}

/// fchmodat(dirfd, path, mode): the system call has no flags.
pub fn fchmodat(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    path_node(ctx, a[0], a[1], 0)?.set_mode(a[2] as u32 & 0o7777)?;
    Ok(0)
}

/// fchmodat2(dirfd, path, mode, flags)
pub fn fchmodat2(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    let flags = a[3] as u32;
    if flags & !(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL);
    }
    let node = path_node(ctx, a[0], a[1], flags)?;
    if node.file_type() == FileType::Symlink {
        // Linux: symlink modes cannot change.
        return Err(Errno::EOPNOTSUPP);
    }
    node.set_mode(a[2] as u32 & 0o7777)?;
    Ok(0)
}

/// Changes the owner of `node`; -1 leaves an id as it is.
fn chown_node(node: &InodeRef, uid: u64, gid: u64) -> SysResult {
    let m = node.metadata();
    let pick = |raw: u64, old: u32| {
        if raw as u32 == u32::MAX {
            old
        } else {
            raw as u32
        }
    };
    node.set_owner(pick(uid, m.uid), pick(gid, m.gid))?;
    Ok(0)
}

/// chown(path, uid, gid)
pub fn chown(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    chown_node(&path_node(ctx, CWD, a[0], 0)?, a[1], a[2])
}

/// lchown(path, uid, gid)
pub fn lchown(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    chown_node(&path_node(ctx, CWD, a[0], AT_SYMLINK_NOFOLLOW)?, a[1], a[2])
}

/// fchown(fd, uid, gid)
pub fn fchown(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    chown_node(&fd_node(ctx, a[0])?, a[1], a[2])
}

/// fchownat(dirfd, path, uid, gid, flags)
pub fn fchownat(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    let flags = a[4] as u32;
    if flags & !(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL);
    }
    chown_node(&path_node(ctx, a[0], a[1], flags)?, a[2], a[3])
}

/// Truncates regular file `node` to `len` (a signed argument).
fn truncate_node(node: &InodeRef, len: u64) -> SysResult {
    if (len as i64) < 0 {
        return Err(Errno::EINVAL);
    }
    match node.file_type() {
        FileType::Dir => return Err(Errno::EISDIR),
        FileType::Regular => {}
        _ => return Err(Errno::EINVAL),
    }
    node.truncate(len)?;
    Ok(0)
}

/// truncate(path, length)
pub fn truncate(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    if (a[1] as i64) < 0 {
        return Err(Errno::EINVAL);
    }
    truncate_node(&path_node(ctx, CWD, a[0], 0)?, a[1])
}

/// ftruncate(fd, length): EINVAL unless a regular file open for writing.
pub fn ftruncate(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    if (a[1] as i64) < 0 {
        return Err(Errno::EINVAL);
    }
    let file = ctx.task.files.lock().get(fd_arg(a[0]))?;
    match file.regular() {
        Some(node) if file.is_writable() => truncate_node(node, a[1]),
        _ => Err(Errno::EINVAL),
    }
}

/// fsync(fd) and fdatasync(fd): files live in memory, so there is nothing to write back;
/// regular files and directories answer 0, other files EINVAL (they have no fsync).
pub fn fsync(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    let file = ctx.task.files.lock().get(fd_arg(a[0]))?;
    let kind = file.vnode().node().map(|n| n.file_type());
    if let Some(node) = file.regular() {
        node.sync()?;
        Ok(0)
    } else if kind == Some(FileType::Dir) && !file.is_path() {
        Ok(0)
    } else {
        Err(Errno::EINVAL)
    }
}

/// sync(): nothing to write back.
pub fn sync(_ctx: &mut Ctx<'_>, _a: [u64; 6]) -> SysResult {
    Ok(0)
}

/// syncfs(fd): nothing to write back; EBADF for a descriptor that is not open.
pub fn syncfs(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    ctx.task.files.lock().get(fd_arg(a[0]))?;
    Ok(0)
}

/// umask(mask): the old mask.
pub fn umask(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    let mut fs = ctx.task.fs.lock();
    let old = fs.umask;
    fs.umask = a[0] as u32 & 0o777;
    Ok(u64::from(old))
}

/// `utimensat`: set to now.
const UTIME_NOW: i64 = (1 << 30) - 1;
/// `utimensat`: leave as it is.
const UTIME_OMIT: i64 = (1 << 30) - 2;

/// One `utimensat` time: `Some(time)` to set, `None` to leave.
fn utime_arg(t: Timespec, now: Timestamp) -> Result<Option<Timestamp>, Errno> {
    match t.nsec {
        UTIME_OMIT => Ok(None),
        UTIME_NOW => Ok(Some(now)),
        n if (0..1_000_000_000).contains(&n) => Ok(Some(Timestamp {
            sec: t.sec,
            nsec: n as u32,
        })),
        _ => Err(Errno::EINVAL),
    }
}

/// utimensat(dirfd, path, times[2], flags); a NULL path names `dirfd` (`futimens`).
pub fn utimensat(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    let now = Timestamp::from_ns(crate::time::realtime_ns());
    let (atime, mtime) = if a[2] == 0 {
        (Some(now), Some(now))
    } else {
        let at: Timespec = ctx.read_obj(a[2])?;
        let mt: Timespec = ctx.read_obj(a[2] + 16)?;
        (utime_arg(at, now)?, utime_arg(mt, now)?)
    };
    let flags = a[3] as u32;
    if flags & !(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL);
    }
    let node = if a[1] == 0 {
        node_of(fd_vnode(ctx, a[0])?)?
    } else {
        path_node(ctx, a[0], a[1], flags)?
    };
    if atime.is_none() && mtime.is_none() {
        return Ok(0);
    }
    node.set_times(atime, mtime)?;
    Ok(0)
}

/// A `struct timeval` of `utimes`/`futimesat` as a timestamp; `EINVAL` for microseconds
/// outside 0..1e6 (Linux).
fn timeval_arg(t: crate::time::Timeval) -> Result<Timestamp, Errno> {
    if !(0..1_000_000).contains(&t.usec) {
        return Err(Errno::EINVAL);
    }
    Ok(Timestamp {
        sec: t.sec,
        nsec: (t.usec * 1000) as u32,
    })
}

/// futimesat(dirfd, path, times[2]): access and modification times from two timevals,
/// now for a NULL `times`; a NULL `path` names `dirfd` itself.
pub fn futimesat(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    let (atime, mtime) = if a[2] == 0 {
        let now = Timestamp::from_ns(crate::time::realtime_ns());
        (now, now)
    } else {
        let at: crate::time::Timeval = ctx.read_obj(a[2])?;
        let mt: crate::time::Timeval = ctx.read_obj(a[2] + 16)?;
        (timeval_arg(at)?, timeval_arg(mt)?)
    };
    let node = if a[1] == 0 {
        node_of(fd_vnode(ctx, a[0])?)?
    } else {
        path_node(ctx, a[0], a[1], 0)?
    };
    node.set_times(Some(atime), Some(mtime))?;
    Ok(0)
}

/// utimes(path, times[2]): `futimesat` relative to the working directory.
pub fn utimes(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    if a[0] == 0 {
        return Err(Errno::EFAULT);
    }
    futimesat(ctx, [CWD, a[0], a[1], 0, 0, 0])
}

/// utime(path, times): a `struct utimbuf` of whole seconds (access, modification), now
/// for NULL.
pub fn utime(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    let (atime, mtime) = if a[1] == 0 {
        let now = Timestamp::from_ns(crate::time::realtime_ns());
        (now, now)
    } else {
        let times: [i64; 2] = ctx.read_obj(a[1])?;
        let at = |sec| Timestamp { sec, nsec: 0 };
        (at(times[0]), at(times[1]))
    };
    path_node(ctx, CWD, a[0], 0)?.set_times(Some(atime), Some(mtime))?;
    Ok(0)
}

/// `fallocate` mode bits.
const FALLOC_FL_KEEP_SIZE: u32 = 0x01;
const FALLOC_FL_PUNCH_HOLE: u32 = 0x02;
/// Every mode bit Linux knows (up to `FALLOC_FL_UNSHARE_RANGE`).
const FALLOC_FL_KNOWN: u32 = 0x7f;

/// fallocate(fd, mode, offset, len): mode 0 allocates the range (its pages exist and are
/// charged to the file system, `ENOSPC` when it is full) and grows the file to cover it;
/// `PUNCH_HOLE | KEEP_SIZE` frees the range's pages (it reads as zeros, every shared
/// mapping of it refaults zeros, the size stays). The other modes (keep size alone,
/// collapse, zero range, insert range) are not supported: `EOPNOTSUPP`, as Linux answers
/// for a file system without them; so do host volumes for every mode.
pub fn fallocate(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    let (mode, offset, len) = (a[1] as u32, a[2] as i64, a[3] as i64);
    if offset < 0 || len <= 0 {
        return Err(Errno::EINVAL);
    }
    // As Linux's vfs_fallocate: unknown bits, and a punch that would change the size.
    if mode & !FALLOC_FL_KNOWN != 0
        || (mode & FALLOC_FL_PUNCH_HOLE != 0 && mode & FALLOC_FL_KEEP_SIZE == 0)
    {
        return Err(Errno::EOPNOTSUPP);
    }
    let file = ctx.task.files.lock().get(fd_arg(a[0]))?;
    if !file.is_writable() {
        return Err(Errno::EBADF);
    }
    if file.pipe_end().is_some() {
        return Err(Errno::ESPIPE);
    }
    let Some(node) = file.regular() else {
        return match node_of(file.vnode()).map(|n| n.file_type()) {
            Ok(FileType::Dir) => Err(Errno::EISDIR),
            _ => Err(Errno::ENODEV),
        };
    };
    if offset.checked_add(len).is_none() {
        return Err(Errno::EFBIG);
    }
    match mode {
        0 => node.allocate(offset as u64, len as u64)?,
        m if m == FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE => {
            node.punch_hole(offset as u64, len as u64)?
        }
        _ => return Err(Errno::EOPNOTSUPP),
    }
    Ok(0)
}

/// `struct statfs` of x86-64 Linux.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatFs {
    f_type: i64,
    f_bsize: i64,
    f_blocks: u64,
    f_bfree: u64,
    f_bavail: u64,
    f_files: u64,
    f_ffree: u64,
    f_fsid: [i32; 2],
    f_namelen: i64,
    f_frsize: i64,
    f_flags: i64,
    f_spare: [i64; 4],
}

const _: () = assert!(core::mem::size_of::<StatFs>() == 120);

// SAFETY: repr(C), integer fields only, no implicit padding (checked above), every bit
// pattern valid.
unsafe impl Pod for StatFs {}

/// `ST_VALID`: `f_flags` is filled in.
const ST_VALID: u64 = 0x20;

/// The `struct statfs` of the file system holding `node`.
fn statfs_of(node: &InodeRef) -> StatFs {
    let s: FsStats = node.statfs();
    let dev = encode_dev(node.metadata().dev);
    StatFs {
        f_type: s.magic as i64,
        f_bsize: s.bsize as i64,
        f_blocks: s.blocks,
        f_bfree: s.bfree,
        f_bavail: s.bfree,
        f_files: s.files,
        f_ffree: s.ffree,
        f_fsid: [dev as i32, (dev >> 32) as i32],
        f_namelen: NAME_MAX as i64,
        f_frsize: s.bsize as i64,
        f_flags: (s.flags | ST_VALID) as i64,
        f_spare: [0; 4],
    }
}

/// statfs(path, buf)
pub fn statfs(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    let path = read_path_or_empty(ctx, a[0])?;
    let start = start_for(ctx, CWD, &path)?;
    let node = walker(ctx.task).lookup(&start, &path, vfs::follow(true))?;
    ctx.write_obj(a[1], &statfs_of(&node))?;
    Ok(0)
}

/// fstatfs(fd, buf)
pub fn fstatfs(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    let v = ctx.task.files.lock().get_raw(fd_arg(a[0]))?.vnode();
    let st = match v {
        Vnode::Node(n) => statfs_of(&n),
        // pipefs.
        Vnode::Pipe(_) => StatFs {
            f_type: 0x5049_5045,
            f_bsize: 4096,
            f_namelen: NAME_MAX as i64,
            f_frsize: 4096,
            f_flags: ST_VALID as i64,
            ..StatFs::default()
        },
    };
    ctx.write_obj(a[1], &st)?;
    Ok(0)
}

//! File system calls on paths: `open`, `openat`, `close`, the `stat` family, `statx`,
//! `readlink(at)`, `access`/`faccessat(2)`; and the helpers the other `fs_*` families
//! share to turn `(dirfd, path)` pairs into files.

use alloc::string::String;

use super::io::fd_arg;
use super::{Ctx, Errno, SysResult, PATH_MAX};
use crate::fs::inode::{FileType, InodeRef};
use crate::fs::open::{
    self,
    flags::{O_CLOEXEC, O_NONBLOCK, O_PATH},
};
use crate::fs::stat::{statx_mask, to_statx, Metadata, Stat};
use crate::fs::stream_node::{as_stream, Stream};
use crate::fs::vfs::{self, Vnode, Walker};
use crate::fs::{self, path, OpenFile};
use crate::task::Task;

/// `dirfd` meaning the working directory.
pub const AT_FDCWD: i32 = -100;
/// Do not follow a final symlink.
pub const AT_SYMLINK_NOFOLLOW: u32 = 0x100;
/// `faccessat2`: check with the effective ids.
pub const AT_EACCESS: u32 = 0x200;
/// Do not trigger automounts.
pub const AT_NO_AUTOMOUNT: u32 = 0x800;
/// An empty path names `dirfd` itself.
pub const AT_EMPTY_PATH: u32 = 0x1000;
/// `statx` synchronisation bits.
pub const AT_STATX_SYNC_TYPE: u32 = 0x6000;

/// The namespace as task `task` sees it.
pub fn walker(task: &Task) -> Walker<'_> {
    Walker::new(fs::namespace(), task.name())
}

/// The working directory's node.
pub fn cwd_node(ctx: &Ctx<'_>) -> Result<InodeRef, Errno> {
    let cwd = ctx.task.fs.lock().cwd.clone();
    walker(ctx.task).dir_at(&cwd)
}

/// The directory `dirfd` names: the working directory for `AT_FDCWD`, `EBADF`/`ENOTDIR`
/// for a bad descriptor.
pub fn dir_node(ctx: &Ctx<'_>, dirfd: u64) -> Result<InodeRef, Errno> {
    let dirfd = dirfd as i32;
    if dirfd == AT_FDCWD {
        return cwd_node(ctx);
    }
    if dirfd < 0 {
        return Err(Errno::EBADF);
    }
    let file = ctx.task.files.lock().get_raw(dirfd as u64)?;
    match file.vnode() {
        Vnode::Node(n) if n.file_type() == FileType::Dir => Ok(n),
        _ => Err(Errno::ENOTDIR),
    }
}

/// Where a walk of `path` starts: `/` when it is absolute (and `dirfd` unchecked, as on
/// Linux), else the directory `dirfd` names.
pub fn start_for(ctx: &Ctx<'_>, dirfd: u64, path: &str) -> Result<InodeRef, Errno> {
    if path::is_absolute(path) {
        Ok(fs::namespace().root.clone())
    } else {
        dir_node(ctx, dirfd)
    }
}

/// The file `dirfd` itself names (for `AT_EMPTY_PATH`).
pub fn fd_vnode(ctx: &Ctx<'_>, dirfd: u64) -> Result<Vnode, Errno> {
    let dirfd = dirfd as i32;
    if dirfd == AT_FDCWD {
        return cwd_node(ctx).map(Vnode::Node);
    }
    if dirfd < 0 {
        return Err(Errno::EBADF);
    }
    Ok(ctx.task.files.lock().get_raw(dirfd as u64)?.vnode())
}

/// Reads a path that may be empty: `EFAULT`, `ENAMETOOLONG`; non-UTF-8 names no file.
pub fn read_path_or_empty(ctx: &Ctx<'_>, va: u64) -> Result<String, Errno> {
    let raw = ctx.read_cstr(va, PATH_MAX - 1)?;
    String::from_utf8(raw).map_err(|_| Errno::ENOENT)
}

/// Resolves the `(dirfd, path, flags)` of an `*at` call; `AT_EMPTY_PATH` with an empty path
/// names `dirfd` itself, otherwise an empty path is `ENOENT`.
pub fn lookup_at(
    ctx: &Ctx<'_>,
    dirfd: u64,
    path_va: u64,
    flags: u32,
    follow: bool,
) -> Result<Vnode, Errno> {
    let path = read_path_or_empty(ctx, path_va)?;
    if path.is_empty() {
        if flags & AT_EMPTY_PATH == 0 {
            return Err(Errno::ENOENT);
        }
        return fd_vnode(ctx, dirfd);
    }
    let start = start_for(ctx, dirfd, &path)?;
    let follow = follow && flags & AT_SYMLINK_NOFOLLOW == 0;
    walker(ctx.task)
        .lookup(&start, &path, vfs::follow(follow))
        .map(Vnode::Node)
}

fn do_open(ctx: &mut Ctx<'_>, dirfd: u64, path_va: u64, flags: u32, mode: u64) -> SysResult {
    let path = ctx.read_path(path_va)?;
    ctx.task.files.lock().check_free()?;
    let start = start_for(ctx, dirfd, &path)?;
    let mode = mode as u32 & 0o7777 & !ctx.task.fs.lock().umask;
    let opened = open::open(&walker(ctx.task), &start, &path, flags, mode)?;
    let origin = (start, path);
    let (read, write) = (open::readable(opened.status), open::writable(opened.status));
    let nonblock = opened.status & O_NONBLOCK != 0;
    let stream = opened
        .vnode
        .node()
        .and_then(|n| as_stream(n))
        .map(|s| s.stream().clone());
    let file = match (stream, opened.vnode.node()) {
        _ if opened.status & O_PATH != 0 => OpenFile::new(opened),
        // A pipe or host stream through /proc/[pid]/fd/N: the same one again.
        (Some(Stream::Pipe(pipe)), _) => {
            let end = pipe.open(read, write);
            OpenFile::fifo(opened, end)
        }
        (Some(Stream::Host(stream, _)), _) => OpenFile::reopen_host_stream(opened, stream)?,
        (None, Some(n)) if n.file_type() == FileType::Fifo => {
            let key = (n.fs_id(), n.ino());
            let end = crate::fs::pipe::open_fifo(key, n.ino(), read, write, nonblock)?;
            OpenFile::fifo(opened, end)
        }
        _ => OpenFile::new(opened),
    };
    if matches!(file.vnode().node(), Some(n) if n.file_type() == FileType::Regular) {
        file.set_origin(origin.0, origin.1);
    }
    ctx.task.files.lock().insert(file, flags & O_CLOEXEC != 0)
}

/// open(path, flags, mode)
pub fn open(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    do_open(ctx, AT_FDCWD as u64, a[0], a[1] as u32, a[2])
}

/// openat(dirfd, path, flags, mode)
pub fn openat(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    do_open(ctx, a[0], a[1], a[2] as u32, a[3])
}

/// creat(path, mode): `open(path, O_CREAT|O_WRONLY|O_TRUNC, mode)`.
pub fn creat(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    use crate::fs::open::flags::{O_CREAT, O_TRUNC, O_WRONLY};
    do_open(
        ctx,
        AT_FDCWD as u64,
        a[0],
        O_CREAT | O_WRONLY | O_TRUNC,
        a[1],
    )
}

/// close(fd)
pub fn close(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    let file = ctx.task.files.lock().close(fd_arg(a[0]))?;
    // POSIX: closing any descriptor of a file drops the process's record locks on it.
    crate::fs::lock::release_process(ctx.task.pid(), super::fs_lock::key_of(&file));
    Ok(0)
}

fn write_stat(ctx: &mut Ctx<'_>, va: u64, meta: &Metadata) -> SysResult {
    ctx.write_obj(va, &Stat::from(meta))?;
    Ok(0)
}

/// fstat(fd, statbuf)
pub fn fstat(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    let file = ctx.task.files.lock().get_raw(fd_arg(a[0]))?;
    let meta = walker(ctx.task).metadata(&file.vnode());
    write_stat(ctx, a[1], &meta)
}

fn stat_path(ctx: &mut Ctx<'_>, a: [u64; 6], follow: bool) -> SysResult {
    let path = ctx.read_path(a[0])?;
    let start = start_for(ctx, AT_FDCWD as u64, &path)?;
    let meta = {
        let w = walker(ctx.task);
        let node = w.lookup(&start, &path, vfs::follow(follow))?;
        w.metadata(&Vnode::Node(node))
    };
    write_stat(ctx, a[1], &meta)
}

/// stat(path, statbuf)
pub fn stat(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    stat_path(ctx, a, true)
}

/// lstat(path, statbuf)
pub fn lstat(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    stat_path(ctx, a, false)
}

/// newfstatat(dirfd, path, statbuf, flags)
pub fn newfstatat(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    let flags = a[3] as u32;
    if flags & !(AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT | AT_EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL);
    }
    let v = lookup_at(ctx, a[0], a[1], flags, true)?;
    let meta = walker(ctx.task).metadata(&v);
    write_stat(ctx, a[2], &meta)
}

/// The mount id `statx` reports: one per file system instance.
fn mnt_id(v: &Vnode) -> u64 {
    match v {
        Vnode::Node(n) => n.fs_id(),
        Vnode::Pipe(_) => 4,
    }
}

/// statx(dirfd, path, flags, mask, statxbuf)
pub fn statx(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    let flags = a[2] as u32;
    let valid = AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT | AT_EMPTY_PATH | AT_STATX_SYNC_TYPE;
    if flags & !valid != 0 || flags & AT_STATX_SYNC_TYPE == AT_STATX_SYNC_TYPE {
        return Err(Errno::EINVAL);
    }
    if a[3] as u32 & statx_mask::RESERVED != 0 {
        return Err(Errno::EINVAL);
    }
    // Since Linux 6.11 a NULL path with AT_EMPTY_PATH names dirfd.
    let v = if a[1] == 0 && flags & AT_EMPTY_PATH != 0 {
        fd_vnode(ctx, a[0])?
    } else {
        lookup_at(ctx, a[0], a[1], flags, true)?
    };
    let sx = to_statx(&walker(ctx.task).metadata(&v), mnt_id(&v));
    ctx.write_obj(a[4], &sx)?;
    Ok(0)
}

fn do_readlink(ctx: &mut Ctx<'_>, dirfd: u64, path_va: u64, buf: u64, size: u64) -> SysResult {
    let size = size as i32;
    if size <= 0 {
        return Err(Errno::EINVAL);
    }
    let path = read_path_or_empty(ctx, path_va)?;
    let v = if path.is_empty() {
        // readlinkat(fd, "") reads an O_PATH descriptor's symlink.
        match fd_vnode(ctx, dirfd)? {
            v if walker(ctx.task).metadata(&v).is_symlink() => v,
            _ => return Err(Errno::ENOENT),
        }
    } else {
        let start = start_for(ctx, dirfd, &path)?;
        Vnode::Node(walker(ctx.task).lookup(&start, &path, vfs::follow(false))?)
    };
    let target = walker(ctx.task).read_link(&v)?;
    let n = target.len().min(size as usize);
    ctx.write_user(buf, &target.as_bytes()[..n])?;
    Ok(n as u64)
}

/// readlink(path, buf, bufsiz)
pub fn readlink(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    do_readlink(ctx, AT_FDCWD as u64, a[0], a[1], a[2])
}

/// readlinkat(dirfd, path, buf, bufsiz)
pub fn readlinkat(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    do_readlink(ctx, a[0], a[1], a[2], a[3])
}

fn do_access(ctx: &mut Ctx<'_>, dirfd: u64, path_va: u64, mode: u64, flags: u32) -> SysResult {
    if mode & !7 != 0 || flags & !(AT_EACCESS | AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL);
    }
    let v = lookup_at(ctx, dirfd, path_va, flags, true)?;
    open::check_access(&walker(ctx.task), &v, mode as u32)?;
    Ok(0)
}

/// access(path, mode)
pub fn access(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    do_access(ctx, AT_FDCWD as u64, a[0], a[1], 0)
}

/// faccessat(dirfd, path, mode): the system call has no flags.
pub fn faccessat(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    do_access(ctx, a[0], a[1], a[2], 0)
}

/// faccessat2(dirfd, path, mode, flags)
pub fn faccessat2(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    do_access(ctx, a[0], a[1], a[2], a[3] as u32)
}

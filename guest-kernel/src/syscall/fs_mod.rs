//! System calls that change the namespace: `mkdir(at)`, `rmdir`, `unlink(at)`,
//! `rename(at)(2)`, `link(at)`, `symlink(at)`; with the checks and error order of Linux
//! (`EEXIST`, `ENOTEMPTY`, `EBUSY` for mount points and `.`/`..`, `EXDEV` across file
//! systems, `ENOTDIR`/`EISDIR` for trailing slashes).

use alloc::string::String;

use super::fs::{fd_vnode, read_path_or_empty, start_for, walker, AT_EMPTY_PATH};
use super::{Ctx, Errno, SysResult};
use crate::fs::inode::{same_node, FileType, InodeRef};
use crate::fs::vfs::{self, Vnode};

/// `unlinkat`: remove a directory.
pub const AT_REMOVEDIR: u32 = 0x200;
/// `linkat`: follow a final symlink of the source.
pub const AT_SYMLINK_FOLLOW: u32 = 0x400;
/// `renameat2`: fail if the new name exists.
pub const RENAME_NOREPLACE: u64 = 1;
/// `renameat2`: swap the two names.
pub const RENAME_EXCHANGE: u64 = 2;
/// `renameat2`: leave a whiteout (overlayfs internals; not offered).
pub const RENAME_WHITEOUT: u64 = 4;

/// `AT_FDCWD` as a raw argument.
const CWD: u64 = super::fs::AT_FDCWD as u64;

/// The parent directory and last name of `path` (from `dirfd`), and whether it ended in `/`.
struct Last {
    dir: InodeRef,
    name: Option<String>,
    slash: bool,
    path: String,
}

fn last_of(ctx: &Ctx<'_>, dirfd: u64, path_va: u64) -> Result<Last, Errno> {
    let path = ctx.read_path(path_va)?;
    let start = start_for(ctx, dirfd, &path)?;
    let (dir, name, slash) = walker(ctx.task).lookup_parent(&start, &path)?;
    Ok(Last {
        dir,
        name,
        slash,
        path,
    })
}

/// Whether `path`'s last component is `.` (else `..` or `/`).
fn ends_in_dot(path: &str) -> bool {
    path.trim_end_matches('/').rsplit('/').next() == Some(".")
}

/// The entry `name` of `dir`; EBUSY if something is mounted on it.
fn entry(dir: &InodeRef, name: &str) -> Result<InodeRef, Errno> {
    let node = dir.lookup(name)?;
    let mounts = &crate::fs::namespace().mounts;
    if !same_node(&mounts.enter(node.clone()), &node) {
        return Err(Errno::EBUSY);
    }
    Ok(node)
}

fn do_mkdir(ctx: &mut Ctx<'_>, dirfd: u64, path_va: u64, mode: u64) -> SysResult {
    let l = last_of(ctx, dirfd, path_va)?;
    let name = l.name.ok_or(Errno::EEXIST)?;
    let mode = mode as u32 & 0o7777 & !ctx.task.fs.lock().umask;
    l.dir.create(&name, FileType::Dir, mode, "")?;
    Ok(0)
}

/// `mknod` file types.
const S_IFMT: u32 = 0o170000;
const S_IFREG: u32 = 0o100000;
const S_IFIFO: u32 = 0o010000;
const S_IFCHR: u32 = 0o020000;
const S_IFBLK: u32 = 0o060000;
const S_IFSOCK: u32 = 0o140000;

fn do_mknod(ctx: &mut Ctx<'_>, dirfd: u64, path_va: u64, mode: u64) -> SysResult {
    let mode = mode as u32;
    let kind = match mode & S_IFMT {
        0 | S_IFREG => FileType::Regular,
        S_IFIFO => FileType::Fifo,
        // Device nodes need CAP_MKNOD, which astra's processes do not have; sockets are
        // not there yet.
        S_IFCHR | S_IFBLK | S_IFSOCK => return Err(Errno::EPERM),
        _ => return Err(Errno::EINVAL),
    };
    let l = last_of(ctx, dirfd, path_va)?;
    let name = l.name.ok_or(Errno::EEXIST)?;
    if l.slash {
        // Linux: a trailing slash names a directory, which mknod does not make.
        return Err(match l.dir.lookup(&name) {
            Ok(_) => Errno::EEXIST,
            Err(_) => Errno::ENOENT,
        });
    }
    let perm = mode & 0o7777 & !ctx.task.fs.lock().umask;
    l.dir.create(&name, kind, perm, "")?;
    Ok(0)
}

/// mknod(path, mode, dev): regular files and FIFOs.
pub fn mknod(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    do_mknod(ctx, CWD, a[0], a[1])
}

/// mknodat(dirfd, path, mode, dev)
pub fn mknodat(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    do_mknod(ctx, a[0], a[1], a[2])
}

/// mkdir(path, mode)
pub fn mkdir(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    do_mkdir(ctx, CWD, a[0], a[1])
}

/// mkdirat(dirfd, path, mode)
pub fn mkdirat(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    do_mkdir(ctx, a[0], a[1], a[2])
}

fn do_rmdir(ctx: &mut Ctx<'_>, dirfd: u64, path_va: u64) -> SysResult {
    let l = last_of(ctx, dirfd, path_va)?;
    let Some(name) = l.name else {
        // Linux: `.` is EINVAL, `..` ENOTEMPTY, `/` EBUSY.
        return Err(if ends_in_dot(&l.path) {
            Errno::EINVAL
        } else if l.path.trim_end_matches('/').is_empty() {
            Errno::EBUSY
        } else {
            Errno::ENOTEMPTY
        });
    };
    entry(&l.dir, &name)?;
    l.dir.rmdir(&name)?;
    Ok(0)
}

/// rmdir(path)
pub fn rmdir(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    do_rmdir(ctx, CWD, a[0])
}

fn do_unlink(ctx: &mut Ctx<'_>, dirfd: u64, path_va: u64) -> SysResult {
    let l = last_of(ctx, dirfd, path_va)?;
    let name = l.name.ok_or(Errno::EISDIR)?;
    let node = entry(&l.dir, &name)?;
    if node.file_type() == FileType::Dir {
        return Err(Errno::EISDIR);
    }
    if l.slash {
        return Err(Errno::ENOTDIR);
    }
    l.dir.unlink(&name)?;
    Ok(0)
}

/// unlink(path)
pub fn unlink(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    do_unlink(ctx, CWD, a[0])
}

/// unlinkat(dirfd, path, flags)
pub fn unlinkat(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    let flags = a[2] as u32;
    if flags & !AT_REMOVEDIR != 0 {
        return Err(Errno::EINVAL);
    }
    if flags & AT_REMOVEDIR != 0 {
        do_rmdir(ctx, a[0], a[1])
    } else {
        do_unlink(ctx, a[0], a[1])
    }
}

fn do_rename(ctx: &mut Ctx<'_>, a: [u64; 6], flags: u64) -> SysResult {
    if flags & !(RENAME_NOREPLACE | RENAME_EXCHANGE | RENAME_WHITEOUT) != 0
        || flags & RENAME_WHITEOUT != 0
        || flags & (RENAME_NOREPLACE | RENAME_EXCHANGE) == RENAME_NOREPLACE | RENAME_EXCHANGE
    {
        return Err(Errno::EINVAL);
    }
    let old = last_of(ctx, a[0], a[1])?;
    let new = last_of(ctx, a[2], a[3])?;
    let (Some(oname), Some(nname)) = (old.name, new.name) else {
        return Err(Errno::EBUSY);
    };
    if old.dir.fs_id() != new.dir.fs_id() {
        return Err(Errno::EXDEV);
    }
    let node = entry(&old.dir, &oname)?;
    let target = match entry(&new.dir, &nname) {
        Ok(t) => Some(t),
        Err(Errno::ENOENT) => None,
        Err(e) => return Err(e),
    };
    let is_dir = node.file_type() == FileType::Dir;
    if (old.slash || new.slash) && !is_dir {
        return Err(Errno::ENOTDIR);
    }
    if flags & RENAME_EXCHANGE != 0 {
        let target = target.ok_or(Errno::ENOENT)?;
        if new.slash && target.file_type() != FileType::Dir {
            return Err(Errno::ENOTDIR);
        }
        old.dir.exchange(&oname, &new.dir, &nname)?;
        return Ok(0);
    }
    if target.is_some() && flags & RENAME_NOREPLACE != 0 {
        return Err(Errno::EEXIST);
    }
    if let Some(t) = &target {
        // Linux checks the kinds before emptiness.
        match (is_dir, t.file_type() == FileType::Dir) {
            (false, true) if !same_node(t, &node) => return Err(Errno::EISDIR),
            (true, false) => return Err(Errno::ENOTDIR),
            _ => {}
        }
    }
    old.dir.rename(&oname, &new.dir, &nname)?;
    Ok(0)
}

/// rename(old, new)
pub fn rename(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    do_rename(ctx, [CWD, a[0], CWD, a[1], 0, 0], 0)
}

/// renameat(olddirfd, old, newdirfd, new)
pub fn renameat(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    do_rename(ctx, a, 0)
}

/// renameat2(olddirfd, old, newdirfd, new, flags)
pub fn renameat2(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    do_rename(ctx, a, a[4] & 0xffff_ffff)
}

fn do_link(ctx: &mut Ctx<'_>, a: [u64; 6], flags: u32) -> SysResult {
    if flags & !(AT_SYMLINK_FOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL);
    }
    let path = read_path_or_empty(ctx, a[1])?;
    let src = if path.is_empty() {
        if flags & AT_EMPTY_PATH == 0 {
            return Err(Errno::ENOENT);
        }
        match fd_vnode(ctx, a[0])? {
            Vnode::Node(n) => n,
            Vnode::Pipe(_) => return Err(Errno::ENOENT),
        }
    } else {
        let start = start_for(ctx, a[0], &path)?;
        let follow = vfs::follow(flags & AT_SYMLINK_FOLLOW != 0);
        walker(ctx.task).lookup(&start, &path, follow)?
    };
    // A pipe or host stream has no directory to be linked from (Linux: an anonymous
    // pipe's inode has no links, ENOENT).
    if crate::fs::stream_node::is_stream(&src) {
        return Err(Errno::ENOENT);
    }
    let new = last_of(ctx, a[2], a[3])?;
    let name = new.name.ok_or(Errno::EEXIST)?;
    match new.dir.lookup(&name) {
        Ok(_) => return Err(Errno::EEXIST),
        Err(Errno::ENOENT) if new.slash => return Err(Errno::ENOENT),
        Err(Errno::ENOENT) => {}
        Err(e) => return Err(e),
    }
    if src.file_type() == FileType::Dir {
        return Err(Errno::EPERM);
    }
    if src.fs_id() != new.dir.fs_id() {
        return Err(Errno::EXDEV);
    }
    new.dir.link(&name, &src)?;
    Ok(0)
}

/// link(old, new)
pub fn link(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    do_link(ctx, [CWD, a[0], CWD, a[1], 0, 0], 0)
}

/// linkat(olddirfd, old, newdirfd, new, flags)
pub fn linkat(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    do_link(ctx, a, a[4] as u32)
}

fn do_symlink(ctx: &mut Ctx<'_>, target_va: u64, dirfd: u64, path_va: u64) -> SysResult {
    let target = ctx.read_path(target_va)?;
    let l = last_of(ctx, dirfd, path_va)?;
    let name = l.name.ok_or(Errno::EEXIST)?;
    match l.dir.lookup(&name) {
        Ok(_) => return Err(Errno::EEXIST),
        Err(Errno::ENOENT) if l.slash => return Err(Errno::ENOENT),
        Err(Errno::ENOENT) => {}
        Err(e) => return Err(e),
    }
    l.dir.create(&name, FileType::Symlink, 0o777, &target)?;
    Ok(0)
}

/// symlink(target, linkpath)
pub fn symlink(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    do_symlink(ctx, a[0], CWD, a[1])
}

/// symlinkat(target, newdirfd, linkpath)
pub fn symlinkat(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    do_symlink(ctx, a[0], a[1], a[2])
}

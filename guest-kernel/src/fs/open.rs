//! `open` flags and the checks `open` and `access` make, with Linux's errors and their order:
//! `O_CREAT` (with `O_EXCL`, through dangling symlinks), `O_TRUNC`, `O_DIRECTORY`,
//! `O_NOFOLLOW`, `O_PATH`. Processes run as root, so permission bits only matter for `X_OK`;
//! a file system mounted read-only gives `EROFS` for writes.

use alloc::string::String;

use super::inode::{FileType, InodeRef, WalkFlags, MAX_SYMLINKS, ST_RDONLY};
use super::vfs::{Vnode, Walker};
use crate::errno::Errno;

/// Open flags (x86-64 values).
pub mod flags {
    /// Access mode mask.
    pub const O_ACCMODE: u32 = 0o3;
    /// Read only.
    pub const O_RDONLY: u32 = 0o0;
    /// Write only.
    pub const O_WRONLY: u32 = 0o1;
    /// Read and write.
    pub const O_RDWR: u32 = 0o2;
    /// Create if missing.
    pub const O_CREAT: u32 = 0o100;
    /// With `O_CREAT`: fail if it exists.
    pub const O_EXCL: u32 = 0o200;
    /// Do not become the controlling terminal.
    pub const O_NOCTTY: u32 = 0o400;
    /// Truncate.
    pub const O_TRUNC: u32 = 0o1000;
    /// Append on each write.
    pub const O_APPEND: u32 = 0o2000;
    /// Non-blocking I/O.
    pub const O_NONBLOCK: u32 = 0o4000;
    /// Signal-driven I/O.
    pub const O_ASYNC: u32 = 0o20000;
    /// Direct I/O.
    pub const O_DIRECT: u32 = 0o40000;
    /// Large-file offsets (always on for 64-bit processes).
    pub const O_LARGEFILE: u32 = 0o100000;
    /// Must be a directory.
    pub const O_DIRECTORY: u32 = 0o200000;
    /// Do not follow a final symlink.
    pub const O_NOFOLLOW: u32 = 0o400000;
    /// Do not update the access time.
    pub const O_NOATIME: u32 = 0o1000000;
    /// Close on exec (a descriptor flag, not kept in the file's status flags).
    pub const O_CLOEXEC: u32 = 0o2000000;
    /// A path-only descriptor.
    pub const O_PATH: u32 = 0o10000000;
    /// An unnamed temporary file (includes `O_DIRECTORY`).
    pub const O_TMPFILE: u32 = 0o20200000;
    /// The bit of `O_TMPFILE` besides `O_DIRECTORY`.
    pub const __O_TMPFILE: u32 = 0o20000000;
    /// The flags `F_SETFL` may change.
    pub const SETFL_MASK: u32 = O_APPEND | O_ASYNC | O_DIRECT | O_NOATIME | O_NONBLOCK;
    /// The flags an `O_PATH` open keeps.
    pub const O_PATH_FLAGS: u32 = O_DIRECTORY | O_NOFOLLOW | O_PATH | O_CLOEXEC;
}

use flags::*;

/// `access` modes.
pub const F_OK: u32 = 0;
/// Executable.
pub const X_OK: u32 = 1;
/// Writable.
pub const W_OK: u32 = 2;
/// Readable.
pub const R_OK: u32 = 4;

/// The result of a successful open: what was opened and the file's status flags (what
/// `F_GETFL` reports).
#[derive(Debug, Clone, PartialEq)]
pub struct Opened {
    /// The file.
    pub vnode: Vnode,
    /// Access mode and status flags.
    pub status: u32,
}

/// Whether an open with these flags reads.
pub fn readable(status: u32) -> bool {
    status & O_PATH == 0 && matches!(status & O_ACCMODE, O_RDONLY | O_RDWR)
}

/// Whether an open with these flags writes.
pub fn writable(status: u32) -> bool {
    status & O_PATH == 0 && matches!(status & O_ACCMODE, O_WRONLY | O_RDWR)
}

/// Whether `n` is on a file system mounted read-only.
pub fn read_only(n: &InodeRef) -> bool {
    n.statfs().flags & ST_RDONLY != 0
}

/// Opens `path` (relative to directory `start`) with open(2) `flags`; a created file gets
/// the permission bits `mode` (the caller has applied the umask).
pub fn open(
    w: &Walker<'_>,
    start: &InodeRef,
    path: &str,
    flags: u32,
    mode: u32,
) -> Result<Opened, Errno> {
    if flags & O_PATH != 0 {
        let flags = flags & O_PATH_FLAGS;
        let walk = WalkFlags {
            follow: flags & O_NOFOLLOW == 0,
            directory: flags & O_DIRECTORY != 0,
        };
        let node = w.lookup(start, path, walk)?;
        return Ok(Opened {
            vnode: Vnode::Node(node),
            status: flags & !O_CLOEXEC,
        });
    }
    let acc = flags & O_ACCMODE;
    let wants_write = acc != O_RDONLY || flags & O_TRUNC != 0;
    if flags & __O_TMPFILE != 0 {
        // As Linux's build_open_flags: O_TMPFILE (which includes O_DIRECTORY), no
        // O_CREAT, and opened for writing.
        if flags & (O_TMPFILE | O_CREAT) != O_TMPFILE || (acc != O_WRONLY && acc != O_RDWR) {
            return Err(Errno::EINVAL);
        }
        let walk = WalkFlags {
            follow: flags & O_NOFOLLOW == 0,
            directory: true,
        };
        let dir = w.lookup(start, path, walk)?;
        if dir.file_type() != FileType::Dir {
            return Err(Errno::ENOTDIR);
        }
        if read_only(&dir) {
            return Err(Errno::EROFS);
        }
        let node = dir.tmpfile(mode, flags & O_EXCL == 0)?;
        let dropped = O_EXCL | O_NOCTTY | O_TRUNC | O_CLOEXEC | O_TMPFILE;
        return Ok(Opened {
            vnode: Vnode::Node(node),
            status: (flags & !dropped) | O_LARGEFILE,
        });
    }
    if flags & O_CREAT != 0 && flags & O_DIRECTORY != 0 {
        return Err(Errno::EINVAL);
    }
    let (node, created) = if flags & O_CREAT != 0 {
        open_creating(w, start, path, flags, mode)?
    } else {
        let walk = WalkFlags {
            follow: flags & O_NOFOLLOW == 0,
            directory: false,
        };
        (w.lookup(start, path, walk)?, false)
    };
    let kind = node.file_type();
    if kind == FileType::Symlink {
        return Err(Errno::ELOOP);
    }
    if flags & O_DIRECTORY != 0 && kind != FileType::Dir {
        return Err(Errno::ENOTDIR);
    }
    if kind == FileType::Dir && wants_write {
        return Err(Errno::EISDIR);
    }
    if wants_write && read_only(&node) {
        return Err(Errno::EROFS);
    }
    if flags & O_TRUNC != 0 && !created && kind == FileType::Regular {
        node.truncate(0)?;
    }
    let dropped = O_CREAT | O_EXCL | O_NOCTTY | O_TRUNC | O_CLOEXEC;
    Ok(Opened {
        vnode: Vnode::Node(node),
        status: (flags & !dropped) | O_LARGEFILE,
    })
}

/// The `O_CREAT` walk: the existing file (a final symlink followed unless `O_EXCL` or
/// `O_NOFOLLOW`, also to create its missing target as Linux does) or a new regular file;
/// whether it was created.
fn open_creating(
    w: &Walker<'_>,
    start: &InodeRef,
    path: &str,
    flags: u32,
    mode: u32,
) -> Result<(InodeRef, bool), Errno> {
    let exclusive = flags & O_EXCL != 0;
    let follow = !exclusive && flags & O_NOFOLLOW == 0;
    let mut start = start.clone();
    let mut path = String::from(path);
    for _ in 0..=MAX_SYMLINKS {
        let (dir, name, slash) = w.lookup_parent(&start, &path)?;
        let Some(name) = name else {
            // `/`, `.` or `..`: a directory.
            return Err(Errno::EISDIR);
        };
        if slash {
            // Linux: O_CREAT with a trailing slash is EISDIR, whatever the name is.
            return Err(Errno::EISDIR);
        }
        let node = match dir.lookup(&name) {
            Ok(n) => w.ns.mounts.enter(n),
            Err(Errno::ENOENT) => {
                let node = dir.create(&name, FileType::Regular, mode & 0o7777, "")?;
                return Ok((node, true));
            }
            Err(e) => return Err(e),
        };
        if exclusive {
            return Err(Errno::EEXIST);
        }
        // A `/proc/[pid]/fd/N` link (`> /dev/stdout`): the open file itself.
        let node = match node.magic_target() {
            Some(target) if follow => target,
            _ => node,
        };
        if node.file_type() == FileType::Symlink && follow {
            path = node.readlink_as(w.exe)?;
            if path.is_empty() {
                return Err(Errno::ENOENT);
            }
            start = dir;
            continue;
        }
        if node.file_type() == FileType::Dir {
            return Err(Errno::EISDIR);
        }
        return Ok((node, false));
    }
    Err(Errno::ELOOP)
}

/// The `access`/`faccessat` check of `mode` (`R_OK|W_OK|X_OK` or `F_OK`) on `v`, for root.
pub fn check_access(w: &Walker<'_>, v: &Vnode, mode: u32) -> Result<(), Errno> {
    if mode & !(R_OK | W_OK | X_OK) != 0 {
        return Err(Errno::EINVAL);
    }
    let meta = w.metadata(v);
    if mode & W_OK != 0 && v.node().is_some_and(read_only) {
        return Err(Errno::EROFS);
    }
    // Root may execute anything with an execute bit, and search every directory.
    if mode & X_OK != 0 && !meta.is_dir() && meta.mode & 0o111 == 0 {
        return Err(Errno::EACCES);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::devices::Device;
    use super::super::vfs::tests::sample_ns;
    use super::*;

    fn opener() -> Walker<'static> {
        Walker::new(sample_ns(), "/bin/app")
    }

    fn open_in(w: &Walker<'_>, path: &str, flags: u32) -> Result<Opened, Errno> {
        let etc = w.dir_at("/etc").unwrap();
        open(w, &etc, path, flags, 0o640)
    }

    fn open_at(path: &str, flags: u32) -> Result<Opened, Errno> {
        open_in(&opener(), path, flags)
    }

    fn size(o: &Opened) -> u64 {
        o.vnode.node().unwrap().metadata().size
    }

    #[test]
    fn tmpfiles_are_unnamed_until_linked() {
        let w = opener();
        let etc = w.dir_at("/etc").unwrap();
        let t = open_in(&w, "/etc", O_TMPFILE | O_RDWR).unwrap();
        assert_eq!(t.status, O_RDWR | O_LARGEFILE);
        let node = t.vnode.node().unwrap();
        assert_eq!(node.file_type(), FileType::Regular);
        assert_eq!(node.metadata().nlink, 0);
        assert_eq!(node.metadata().mode & 0o777, 0o640);
        node.write_at(0, b"tmp").unwrap();
        assert!(etc.entries().unwrap().iter().all(|e| e.0 != "named"));
        etc.link("named", node).unwrap();
        assert_eq!(node.metadata().nlink, 1);
        let again = open_in(&w, "named", O_RDONLY).unwrap();
        assert_eq!(size(&again), 3);
        // Linkable once: unlinked again, it stays unnamed.
        etc.unlink("named").unwrap();
        assert_eq!(etc.link("named", node), Err(Errno::ENOENT));
        // O_EXCL: never linkable.
        let x = open_in(&w, "/etc", O_TMPFILE | O_WRONLY | O_EXCL).unwrap();
        assert_eq!(
            etc.link("excl", x.vnode.node().unwrap()),
            Err(Errno::ENOENT)
        );
    }

    #[test]
    fn read_only_opens() {
        let o = open_at("motd", O_RDONLY | O_CLOEXEC).unwrap();
        assert_eq!(o.status, O_RDONLY | O_LARGEFILE);
        assert!(readable(o.status) && !writable(o.status));
        let o = open_at("/", O_RDONLY | O_DIRECTORY | O_NONBLOCK).unwrap();
        assert_eq!(o.status, O_DIRECTORY | O_NONBLOCK | O_LARGEFILE);
        assert_eq!(open_at("missing", O_RDONLY), Err(Errno::ENOENT));
        assert_eq!(open_at("motd/", O_RDONLY), Err(Errno::ENOTDIR));
        assert_eq!(open_at("motd", O_DIRECTORY), Err(Errno::ENOTDIR));
        assert_eq!(open_at("motd/x", O_RDONLY), Err(Errno::ENOTDIR));
        // An existing file with O_CREAT but no O_EXCL opens.
        assert!(open_at("motd", O_RDONLY | O_CREAT).is_ok());
    }

    #[test]
    fn creating_truncating_and_their_errors() {
        let w = opener();
        let o = open_in(&w, "new", O_WRONLY | O_CREAT).unwrap();
        assert_eq!(o.status, O_WRONLY | O_LARGEFILE);
        let m = o.vnode.node().unwrap().metadata();
        assert_eq!(m.mode, super::super::stat::S_IFREG | 0o640);
        o.vnode.node().unwrap().write_at(0, b"abc").unwrap();
        assert_eq!(open_in(&w, "new", O_CREAT | O_EXCL), Err(Errno::EEXIST));
        let again = open_in(&w, "new", O_RDWR | O_CREAT).unwrap();
        assert_eq!(size(&again), 3);
        assert_eq!(again.vnode, o.vnode);
        let t = open_in(&w, "new", O_WRONLY | O_TRUNC).unwrap();
        assert_eq!(size(&t), 0);
        // The image's own files are writable too (copied up).
        let motd = open_in(&w, "motd", O_RDWR).unwrap();
        assert_eq!(size(&motd), 11);
        assert_eq!(open_in(&w, "/nodir/new", O_CREAT), Err(Errno::ENOENT));
        assert_eq!(open_in(&w, "motd/new", O_CREAT), Err(Errno::ENOTDIR));
        assert_eq!(open_in(&w, "motd", O_CREAT | O_EXCL), Err(Errno::EEXIST));
        assert_eq!(open_in(&w, "/etc", O_CREAT), Err(Errno::EISDIR));
        assert_eq!(open_in(&w, "fresh/", O_CREAT), Err(Errno::EISDIR));
        assert_eq!(open_in(&w, "/etc", O_WRONLY), Err(Errno::EISDIR));
        assert_eq!(
            open_in(&w, "/etc", O_CREAT | O_DIRECTORY),
            Err(Errno::EINVAL)
        );
        assert_eq!(open_in(&w, "/etc", O_TMPFILE), Err(Errno::EINVAL));
        assert_eq!(
            open_in(&w, "/etc", O_TMPFILE | O_RDWR | O_CREAT),
            Err(Errno::EINVAL)
        );
        assert_eq!(
            open_in(&w, "/etc", __O_TMPFILE | O_RDWR),
            Err(Errno::EINVAL)
        );
        assert_eq!(open_in(&w, "motd", O_TMPFILE | O_RDWR), Err(Errno::ENOTDIR));
        assert_eq!(
            open_in(&w, "/proc", O_TMPFILE | O_RDWR),
            Err(Errno::EOPNOTSUPP)
        );
        assert_eq!(open_in(&w, "/proc/new", O_CREAT), Err(Errno::ENOENT));
        // Devices stay devices.
        let o = open_in(&w, "/dev/null", O_WRONLY | O_TRUNC | O_CREAT).unwrap();
        assert_eq!(o.vnode.node().unwrap().device(), Some(Device::Null));
        assert_eq!(o.status, O_WRONLY | O_LARGEFILE);
        assert!(writable(o.status) && !readable(o.status));
    }

    #[test]
    fn o_creat_through_a_dangling_symlink_creates_its_target() {
        let w = opener();
        let tmp = w.dir_at("/tmp").unwrap();
        tmp.create("dangling", FileType::Symlink, 0, "target")
            .unwrap();
        let o = open(&w, &tmp, "dangling", O_WRONLY | O_CREAT, 0o600).unwrap();
        assert_eq!(Vnode::Node(tmp.lookup("target").unwrap()), o.vnode);
        assert_eq!(
            open(&w, &tmp, "dangling", O_WRONLY | O_CREAT | O_EXCL, 0),
            Err(Errno::EEXIST)
        );
        assert_eq!(
            open(&w, &tmp, "dangling", O_WRONLY | O_CREAT | O_NOFOLLOW, 0),
            Err(Errno::ELOOP)
        );
    }

    #[test]
    fn symlinks_and_nofollow() {
        // /etc/link -> motd
        let w = opener();
        let open_at = |p: &str, f: u32| open_in(&w, p, f);
        let target = open_at("motd", O_RDONLY).unwrap().vnode;
        assert_eq!(open_at("link", O_RDONLY).unwrap().vnode, target);
        assert_eq!(open_at("link", O_NOFOLLOW), Err(Errno::ELOOP));
        assert_eq!(open_at("loop", O_RDONLY), Err(Errno::ELOOP));
        assert_eq!(open_at("link", O_CREAT | O_EXCL), Err(Errno::EEXIST));
        // O_PATH|O_NOFOLLOW gives the link itself.
        let o = open_at("link", O_PATH | O_NOFOLLOW | O_RDWR | O_CLOEXEC).unwrap();
        assert_ne!(o.vnode, target);
        assert_eq!(o.status, O_PATH | O_NOFOLLOW);
        assert!(!readable(o.status) && !writable(o.status));
        assert_eq!(open_at("motd", O_PATH | O_DIRECTORY), Err(Errno::ENOTDIR));
    }

    #[test]
    fn access_modes() {
        let w = opener();
        let get = |p: &str| w.resolve("/", p, true).unwrap();
        let (motd, app, etc, null) = (
            get("/etc/motd"),
            get("/bin/app"),
            get("/etc"),
            get("/dev/null"),
        );
        assert_eq!(check_access(&w, &motd, F_OK), Ok(()));
        assert_eq!(check_access(&w, &motd, R_OK | W_OK), Ok(()));
        assert_eq!(check_access(&w, &motd, X_OK), Err(Errno::EACCES));
        assert_eq!(check_access(&w, &app, R_OK | X_OK), Ok(()));
        assert_eq!(check_access(&w, &etc, X_OK), Ok(()));
        assert_eq!(check_access(&w, &null, R_OK | W_OK), Ok(()));
        assert_eq!(check_access(&w, &null, 8), Err(Errno::EINVAL));
    }
}

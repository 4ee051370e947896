//! `open` flags and the checks `open` and `access` make, with Linux's errors and their order.
//! The root filesystem is read-only, as if mounted `ro`: creating or writing a rootfs file
//! fails with `EROFS`; devices stay writable. Processes run as root, so permission bits
//! only matter for `X_OK`.

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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

/// Whether the rootfs (read-only) holds `v`.
fn on_rootfs(v: Vnode) -> bool {
    matches!(v, Vnode::Tar(_))
}

/// Opens `path` (relative to directory path `base`) with open(2) `flags`.
pub fn open(w: &Walker<'_>, base: &str, path: &str, flags: u32) -> Result<Opened, Errno> {
    if flags & O_PATH != 0 {
        let flags = flags & O_PATH_FLAGS;
        let vnode = w.resolve(base, path, flags & O_NOFOLLOW == 0)?;
        if flags & O_DIRECTORY != 0 && !w.is_dir(vnode) {
            return Err(Errno::ENOTDIR);
        }
        return Ok(Opened {
            vnode,
            status: flags & !O_CLOEXEC,
        });
    }
    let acc = flags & O_ACCMODE;
    let wants_write = acc != O_RDONLY || flags & O_TRUNC != 0;
    if flags & O_TMPFILE == O_TMPFILE {
        if acc != O_WRONLY && acc != O_RDWR {
            return Err(Errno::EINVAL);
        }
        let dir = w.resolve(base, path, true)?;
        return Err(if w.is_dir(dir) {
            Errno::EROFS
        } else {
            Errno::ENOTDIR
        });
    }
    if flags & O_CREAT != 0 && flags & O_DIRECTORY != 0 {
        return Err(Errno::EINVAL);
    }
    let vnode = if flags & O_CREAT != 0 {
        let exclusive = flags & O_EXCL != 0;
        let follow = !exclusive && flags & O_NOFOLLOW == 0;
        match w.resolve(base, path, follow) {
            Ok(_) if exclusive => return Err(Errno::EEXIST),
            Ok(v) if w.is_dir(v) => return Err(Errno::EISDIR),
            Ok(v) => v,
            Err(Errno::ENOENT) => {
                w.resolve_parent(base, path)?;
                if super::path::has_trailing_slash(path) {
                    return Err(Errno::EISDIR);
                }
                return Err(Errno::EROFS);
            }
            Err(e) => return Err(e),
        }
    } else {
        w.resolve(base, path, flags & O_NOFOLLOW == 0)?
    };
    let meta = w.metadata(vnode);
    if meta.is_symlink() {
        return Err(Errno::ELOOP);
    }
    if flags & O_DIRECTORY != 0 && !meta.is_dir() {
        return Err(Errno::ENOTDIR);
    }
    if meta.is_dir() && wants_write {
        return Err(Errno::EISDIR);
    }
    if on_rootfs(vnode) && wants_write {
        return Err(Errno::EROFS);
    }
    let dropped = O_CREAT | O_EXCL | O_NOCTTY | O_TRUNC | O_CLOEXEC;
    Ok(Opened {
        vnode,
        status: (flags & !dropped) | O_LARGEFILE,
    })
}

/// The `access`/`faccessat` check of `mode` (`R_OK|W_OK|X_OK` or `F_OK`) on `v`, for root.
pub fn check_access(w: &Walker<'_>, v: Vnode, mode: u32) -> Result<(), Errno> {
    if mode & !(R_OK | W_OK | X_OK) != 0 {
        return Err(Errno::EINVAL);
    }
    let meta = w.metadata(v);
    if mode & W_OK != 0 && on_rootfs(v) {
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
    use super::super::testfs;
    use super::*;

    fn open_at(path: &str, flags: u32) -> Result<Opened, Errno> {
        let fs = testfs::sample();
        let w = Walker::new(fs, "/bin/app");
        open(&w, "/etc", path, flags)
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
    fn writes_are_refused_on_the_read_only_root() {
        assert_eq!(open_at("motd", O_WRONLY), Err(Errno::EROFS));
        assert_eq!(open_at("motd", O_RDWR), Err(Errno::EROFS));
        assert_eq!(open_at("motd", O_RDONLY | O_TRUNC), Err(Errno::EROFS));
        assert_eq!(open_at("new", O_WRONLY | O_CREAT), Err(Errno::EROFS));
        assert_eq!(
            open_at("new", O_RDONLY | O_CREAT | O_EXCL),
            Err(Errno::EROFS)
        );
        assert_eq!(open_at("/nodir/new", O_CREAT), Err(Errno::ENOENT));
        assert_eq!(open_at("motd/new", O_CREAT), Err(Errno::ENOTDIR));
        assert_eq!(open_at("motd", O_CREAT | O_EXCL), Err(Errno::EEXIST));
        assert_eq!(open_at("/etc", O_CREAT), Err(Errno::EISDIR));
        assert_eq!(open_at("/etc", O_WRONLY), Err(Errno::EISDIR));
        assert_eq!(open_at("/etc", O_CREAT | O_DIRECTORY), Err(Errno::EINVAL));
        assert_eq!(open_at("/etc", O_TMPFILE | O_RDWR), Err(Errno::EROFS));
        assert_eq!(open_at("/etc", O_TMPFILE), Err(Errno::EINVAL));
        // Devices stay writable.
        let o = open_at("/dev/null", O_WRONLY | O_TRUNC | O_CREAT).unwrap();
        assert_eq!(o.vnode, Vnode::Device(Device::Null));
        assert_eq!(o.status, O_WRONLY | O_LARGEFILE);
        assert!(writable(o.status) && !readable(o.status));
    }

    #[test]
    fn symlinks_and_nofollow() {
        // /etc/link -> motd
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
        let fs = testfs::sample();
        let w = Walker::new(fs, "/bin/app");
        let motd = w.resolve("/", "/etc/motd", true).unwrap();
        let app = w.resolve("/", "/bin/app", true).unwrap();
        let etc = w.resolve("/", "/etc", true).unwrap();
        let null = w.resolve("/", "/dev/null", true).unwrap();
        assert_eq!(check_access(&w, motd, F_OK), Ok(()));
        assert_eq!(check_access(&w, motd, R_OK), Ok(()));
        assert_eq!(check_access(&w, motd, W_OK), Err(Errno::EROFS));
        assert_eq!(check_access(&w, motd, X_OK), Err(Errno::EACCES));
        assert_eq!(check_access(&w, app, R_OK | X_OK), Ok(()));
        assert_eq!(check_access(&w, etc, X_OK), Ok(()));
        assert_eq!(check_access(&w, null, R_OK | W_OK), Ok(()));
        assert_eq!(check_access(&w, null, 8), Err(Errno::EINVAL));
    }
}

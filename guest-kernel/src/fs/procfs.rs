//! The one piece of `/proc` astra has: `/proc/self/exe`, a symlink to the running program
//! (what `std::env::current_exe` reads). All `/proc` special-casing lives here.

use alloc::string::String;

use super::path;
use super::stat::{Metadata, S_IFLNK};
use super::vfs::{Vnode, Walker};
use crate::errno::Errno;

/// The magic path.
pub const EXE_PATH: &str = "/proc/self/exe";

/// The device number reported for `/proc` files.
const PROCFS_DEV: (u32, u32) = (0, 0x16);

/// Resolves `normalized` (a lexically normalised absolute path) if it names a `/proc` file;
/// `None` for every other path. `dir_wanted`: the path ended in `/`, `.` or `..`.
pub fn resolve(
    w: &Walker<'_>,
    normalized: &str,
    follow: bool,
    dir_wanted: bool,
) -> Option<Result<Vnode, Errno>> {
    if normalized != EXE_PATH {
        return None;
    }
    if !follow && !dir_wanted {
        return Some(Ok(Vnode::ProcExe));
    }
    let target = exe_target(w);
    Some(match w.fs.lookup(&target, true) {
        Ok(_) if dir_wanted => Err(Errno::ENOTDIR),
        Ok(id) => Ok(Vnode::Tar(id)),
        Err(e) => Err(super::vfs::fs_err(e)),
    })
}

/// The absolute path of the running program, with symlinks resolved as Linux shows it;
/// the (normalised) exec'ed path if the program is not in the rootfs.
pub fn exe_target(w: &Walker<'_>) -> String {
    let exec_path = path::join("/", w.exe)
        .ok()
        .unwrap_or_else(|| String::from("/"));
    w.fs.lookup(&exec_path, true)
        .ok()
        .and_then(|id| w.path_of(Vnode::Tar(id)))
        .or_else(|| path::normalize(&exec_path).ok())
        .unwrap_or(exec_path)
}

/// What `lstat("/proc/self/exe")` reports.
pub fn exe_metadata(w: &Walker<'_>) -> Metadata {
    Metadata {
        dev: PROCFS_DEV,
        ino: 1,
        mode: S_IFLNK | 0o777,
        nlink: 1,
        uid: 0,
        gid: 0,
        rdev: (0, 0),
        size: exe_target(w).len() as u64,
        mtime: 0,
        mount_root: false,
    }
}

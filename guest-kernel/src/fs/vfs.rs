//! The file namespace a process sees: the read-only tarfs root with the device directory
//! mounted on `/dev` and `/proc/self/exe`.
//!
//! A [`Vnode`] names a file in that namespace; a [`Walker`] resolves paths (relative to a
//! base directory, with Linux's errors) and answers metadata, directory and symlink queries.
//! Paths are joined onto the base and handed to [`TarFs::lookup`], which follows symlinks;
//! the mounts are matched on the lexically normalised path first.

use alloc::string::String;
use alloc::vec::Vec;

use super::devices::{self, Device};
use super::dirent::{self, DT_DIR};
use super::path::{self, PathError};
use super::procfs;
use super::stat::{Metadata, S_IFDIR, S_IFIFO, S_IFLNK, S_IFREG};
use super::tar::{FsError, NodeId, NodeKind, TarFs};
use crate::errno::Errno;

/// The device number reported for rootfs files.
pub const ROOTFS_DEV: (u32, u32) = (0, 1);

/// A file in the namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vnode {
    /// A rootfs node.
    Tar(NodeId),
    /// The `/dev` directory.
    DevDir,
    /// A device under `/dev`.
    Device(Device),
    /// The `/proc/self/exe` symlink itself (only when not followed).
    ProcExe,
    /// A pipe, by inode number.
    Pipe(u64),
}

/// The Linux errno for a tarfs error.
pub fn fs_err(e: FsError) -> Errno {
    match e {
        FsError::NotFound => Errno::ENOENT,
        FsError::NotADirectory => Errno::ENOTDIR,
        FsError::IsADirectory => Errno::EISDIR,
        FsError::Loop => Errno::ELOOP,
        FsError::InvalidArgument => Errno::EINVAL,
        FsError::NameTooLong => Errno::ENAMETOOLONG,
    }
}

/// The Linux errno for a path error.
pub fn path_err(e: PathError) -> Errno {
    match e {
        PathError::Empty => Errno::ENOENT,
        PathError::NameTooLong => Errno::ENAMETOOLONG,
    }
}

/// Rewrites a joined absolute path that enters a mount at the root and leaves it again
/// with `..` (`/dev/../etc`) to the part after it (`/etc`), which tarfs alone could not
/// resolve when the rootfs has no `/dev`. Both mounts are flat, so `..` right after the
/// mount point is exact.
fn leave_mounts(abs: &mut String) {
    for mount in ["/dev/../", "/proc/../"] {
        while let Some(rest) = abs.strip_prefix(mount) {
            *abs = alloc::format!("/{rest}");
        }
    }
    for mount in ["/dev/..", "/proc/.."] {
        if abs == mount {
            *abs = String::from("/");
        }
    }
}

/// One directory entry, as `getdents64` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DirEntry<'a> {
    /// Position of the entry in the directory (`.` is 0, `..` is 1).
    pub index: u64,
    /// Inode number.
    pub ino: u64,
    /// `DT_*` type.
    pub dtype: u8,
    /// Name.
    pub name: &'a str,
}

/// Resolves paths and answers queries about files for one process.
pub struct Walker<'a> {
    /// The root filesystem.
    pub fs: &'a TarFs,
    /// The path the running program was exec'ed as (for `/proc/self/exe`).
    pub exe: &'a str,
}

impl<'a> Walker<'a> {
    /// A walker over `fs` for a process running `exe`.
    pub fn new(fs: &'a TarFs, exe: &'a str) -> Self {
        Walker { fs, exe }
    }

    /// Resolves `path` relative to the absolute directory path `base` (ignored when `path`
    /// is absolute), following a final symlink if `follow` (a trailing `/` always does).
    pub fn resolve(&self, base: &str, path: &str, follow: bool) -> Result<Vnode, Errno> {
        let mut abs = path::join(base, path).map_err(path_err)?;
        let last = path.rsplit('/').next().unwrap_or("");
        let dir_wanted = path::has_trailing_slash(path) || last == "." || last == "..";
        if dir_wanted && !abs.ends_with('/') {
            // `join` drops a final `.`; keep its "must be a directory" meaning.
            abs.push('/');
        }
        leave_mounts(&mut abs);
        if let Some(r) = self.resolve_mounts(&abs, follow, dir_wanted) {
            return r;
        }
        self.fs.lookup(&abs, follow).map(Vnode::Tar).map_err(fs_err)
    }

    fn resolve_mounts(
        &self,
        abs: &str,
        follow: bool,
        dir_wanted: bool,
    ) -> Option<Result<Vnode, Errno>> {
        let norm = path::normalize(abs).ok()?;
        if norm == "/dev" {
            return Some(Ok(Vnode::DevDir));
        }
        if let Some(rest) = norm.strip_prefix("/dev/") {
            let (name, below) = match rest.split_once('/') {
                Some((name, _)) => (name, true),
                None => (rest, false),
            };
            return Some(match Device::from_name(name) {
                None => Err(Errno::ENOENT),
                Some(_) if below || dir_wanted => Err(Errno::ENOTDIR),
                Some(d) => Ok(Vnode::Device(d)),
            });
        }
        procfs::resolve(self, &norm, follow, dir_wanted)
    }

    /// Resolves the parent directory of `path` (for a path that names something to create):
    /// `Ok` if it exists and is a directory.
    pub fn resolve_parent(&self, base: &str, path: &str) -> Result<Vnode, Errno> {
        let abs = path::join(base, path).map_err(path_err)?;
        let parent = match path::split_parent(&abs) {
            Some((parent, _)) => parent,
            None => "/",
        };
        let v = self.resolve("/", parent, true)?;
        if self.is_dir(v) {
            Ok(v)
        } else {
            Err(Errno::ENOTDIR)
        }
    }

    /// Whether `v` is a directory.
    pub fn is_dir(&self, v: Vnode) -> bool {
        match v {
            Vnode::Tar(id) => self.fs.node(id).kind == NodeKind::Dir,
            Vnode::DevDir => true,
            Vnode::Device(_) | Vnode::ProcExe | Vnode::Pipe(_) => false,
        }
    }

    /// What `stat` reports for `v`.
    pub fn metadata(&self, v: Vnode) -> Metadata {
        match v {
            Vnode::Tar(id) => {
                let n = self.fs.node(id);
                let file_type = match n.kind {
                    NodeKind::File => S_IFREG,
                    NodeKind::Dir => S_IFDIR,
                    NodeKind::Symlink => S_IFLNK,
                };
                Metadata {
                    dev: ROOTFS_DEV,
                    ino: id.index() as u64 + 1,
                    mode: file_type | (n.mode & 0o7777),
                    nlink: n.nlink,
                    uid: n.uid,
                    gid: n.gid,
                    rdev: (0, 0),
                    size: n.size(),
                    mtime: n.mtime,
                    mount_root: id == self.fs.root(),
                }
            }
            Vnode::DevDir => devices::dir_metadata(),
            Vnode::Device(d) => d.metadata(),
            Vnode::ProcExe => procfs::exe_metadata(self),
            Vnode::Pipe(ino) => Metadata {
                dev: super::pipe::PIPEFS_DEV,
                ino,
                mode: S_IFIFO | 0o600,
                nlink: 1,
                uid: 0,
                gid: 0,
                rdev: (0, 0),
                size: 0,
                mtime: 0,
                mount_root: false,
            },
        }
    }

    /// The target of symlink `v` (`EINVAL` if it is not one).
    pub fn read_link(&self, v: Vnode) -> Result<String, Errno> {
        match v {
            Vnode::Tar(id) => self.fs.read_link(id).map(String::from).map_err(fs_err),
            Vnode::ProcExe => Ok(procfs::exe_target(self)),
            _ => Err(Errno::EINVAL),
        }
    }

    /// The absolute path naming `v` (symlinks resolved), as `getcwd` reports a directory.
    pub fn path_of(&self, v: Vnode) -> Option<String> {
        match v {
            Vnode::Tar(id) => self.tar_path(id),
            Vnode::DevDir => Some(String::from("/dev")),
            Vnode::Device(d) => Some(alloc::format!("/dev/{}", d.name())),
            Vnode::ProcExe => Some(String::from(procfs::EXE_PATH)),
            Vnode::Pipe(ino) => Some(alloc::format!("pipe:[{ino}]")),
        }
    }

    fn tar_path(&self, id: NodeId) -> Option<String> {
        let mut names: Vec<&str> = Vec::new();
        let mut cur = id;
        while cur != self.fs.root() {
            if names.len() > self.fs.node_count() {
                return None;
            }
            let parent = self.fs.node(cur).parent;
            let (name, _) = self.fs.read_dir(parent).ok()?.find(|&(_, c)| c == cur)?;
            names.push(name);
            cur = parent;
        }
        let mut out = String::new();
        for name in names.iter().rev() {
            out.push('/');
            out.push_str(name);
        }
        if out.is_empty() {
            out.push('/');
        }
        Some(out)
    }

    /// Calls `f` on the entries of directory `v` from position `start` on, `.` and `..`
    /// first, until `f` returns false. `ENOTDIR` if `v` is not a directory.
    pub fn read_dir_from(
        &self,
        v: Vnode,
        start: u64,
        mut f: impl FnMut(DirEntry<'_>) -> bool,
    ) -> Result<(), Errno> {
        let root_ino = self.metadata(Vnode::Tar(self.fs.root())).ino;
        let (self_ino, parent_ino) = match v {
            Vnode::Tar(id) => {
                if self.fs.node(id).kind != NodeKind::Dir {
                    return Err(Errno::ENOTDIR);
                }
                let parent = self.fs.node(id).parent;
                (id.index() as u64 + 1, parent.index() as u64 + 1)
            }
            Vnode::DevDir => (devices::dir_metadata().ino, root_ino),
            _ => return Err(Errno::ENOTDIR),
        };
        let dots = [(0u64, self_ino, "."), (1, parent_ino, "..")];
        for (index, ino, name) in dots {
            if index >= start {
                let e = DirEntry {
                    index,
                    ino,
                    dtype: DT_DIR,
                    name,
                };
                if !f(e) {
                    return Ok(());
                }
            }
        }
        match v {
            Vnode::Tar(id) => self.read_tar_children(id, start, &mut f),
            _ => {
                for (i, d) in devices::ALL.into_iter().enumerate() {
                    let index = 2 + i as u64;
                    if index >= start {
                        let e = DirEntry {
                            index,
                            ino: d.ino(),
                            dtype: dirent::DT_CHR,
                            name: d.name(),
                        };
                        if !f(e) {
                            break;
                        }
                    }
                }
                Ok(())
            }
        }
    }

    /// The children of tar directory `id` from position `start` (children start at 2), and
    /// in the root the `/dev` mount point when the rootfs has no `dev` of its own.
    fn read_tar_children(
        &self,
        id: NodeId,
        start: u64,
        f: &mut impl FnMut(DirEntry<'_>) -> bool,
    ) -> Result<(), Errno> {
        let skip = start.saturating_sub(2);
        let children = self.fs.read_dir(id).map_err(fs_err)?;
        for (i, (name, child)) in children.enumerate().skip(skip as usize) {
            let m = self.metadata(Vnode::Tar(child));
            let e = DirEntry {
                index: 2 + i as u64,
                ino: m.ino,
                dtype: dirent::dtype_of_mode(m.mode),
                name,
            };
            if !f(e) {
                return Ok(());
            }
        }
        if id == self.fs.root() {
            let count = self.fs.node(id).child_count() as u64;
            let has_dev = self
                .fs
                .read_dir(id)
                .map_err(fs_err)?
                .any(|(n, _)| n == "dev");
            if !has_dev && 2 + count >= start {
                f(DirEntry {
                    index: 2 + count,
                    ino: devices::dir_metadata().ino,
                    dtype: DT_DIR,
                    name: "dev",
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::testfs;
    use super::*;
    use alloc::vec;

    fn w() -> Walker<'static> {
        Walker::new(testfs::sample(), "/bin/sh")
    }

    fn tar(w: &Walker<'_>, p: &str) -> Vnode {
        Vnode::Tar(w.fs.lookup(p, false).unwrap())
    }

    #[test]
    fn relative_paths_resolve_against_the_base() {
        let w = w();
        let motd = tar(&w, "/etc/motd");
        assert_eq!(w.resolve("/etc", "motd", true), Ok(motd));
        assert_eq!(w.resolve("/etc/sub", "../motd", true), Ok(motd));
        assert_eq!(w.resolve("/bin", "/etc/motd", true), Ok(motd));
        assert_eq!(w.resolve("/", "lnk/motd", true), Ok(motd));
        assert_eq!(w.resolve("/etc", "link", true), Ok(motd));
        assert_eq!(w.resolve("/etc", "link", false), Ok(tar(&w, "/etc/link")));
        assert_eq!(w.resolve("/etc", ".", true), Ok(tar(&w, "/etc")));
        assert_eq!(w.resolve("/", "lnk", false), Ok(tar(&w, "/lnk")));
        assert_eq!(w.resolve("/", "lnk/", false), Ok(tar(&w, "/etc")));
        assert_eq!(w.resolve("/", "", true), Err(Errno::ENOENT));
        assert_eq!(w.resolve("/etc", "nope", true), Err(Errno::ENOENT));
        assert_eq!(w.resolve("/etc", "motd/.", true), Err(Errno::ENOTDIR));
        assert_eq!(w.resolve("/etc", "motd/", true), Err(Errno::ENOTDIR));
        assert_eq!(w.resolve("/etc", "loop", true), Err(Errno::ELOOP));
        let long = "x".repeat(300);
        assert_eq!(w.resolve("/", &long, true), Err(Errno::ENAMETOOLONG));
        assert_eq!(
            w.resolve("/", &"/a".repeat(2100), true),
            Err(Errno::ENAMETOOLONG)
        );
    }

    #[test]
    fn dev_is_mounted_over_the_rootfs() {
        let w = w();
        assert_eq!(
            w.resolve("/dev", "../etc/motd", true),
            Ok(tar(&w, "/etc/motd"))
        );
        assert_eq!(
            w.resolve("/", "/dev/../dev/../lnk", false),
            Ok(tar(&w, "/lnk"))
        );
        assert_eq!(w.resolve("/", "/proc/..", true), Ok(tar(&w, "/")));
        assert_eq!(w.resolve("/dev", "..", true), Ok(tar(&w, "/")));
        assert_eq!(w.resolve("/", "/dev", true), Ok(Vnode::DevDir));
        assert_eq!(
            w.resolve("/etc", "../dev/./null", true),
            Ok(Vnode::Device(Device::Null))
        );
        assert_eq!(
            w.resolve("/dev", "zero", true),
            Ok(Vnode::Device(Device::Zero))
        );
        assert_eq!(w.resolve("/", "/dev/sda", true), Err(Errno::ENOENT));
        assert_eq!(w.resolve("/", "/dev/null/", true), Err(Errno::ENOTDIR));
        assert_eq!(w.resolve("/", "/dev/null/x", true), Err(Errno::ENOTDIR));
        let m = w.metadata(Vnode::Device(Device::Urandom));
        assert_eq!((m.rdev, m.mode), ((1, 9), 0o20666));
        assert!(w.is_dir(Vnode::DevDir) && !w.is_dir(Vnode::Device(Device::Tty)));
        assert_eq!(
            w.path_of(Vnode::Device(Device::Tty)).as_deref(),
            Some("/dev/tty")
        );
    }

    #[test]
    fn proc_self_exe_names_the_program() {
        let w = w();
        let app = tar(&w, "/bin/app");
        assert_eq!(w.resolve("/", "/proc/self/exe", true), Ok(app));
        assert_eq!(
            w.resolve("/etc", "../proc/self/exe", false),
            Ok(Vnode::ProcExe)
        );
        // The exec'ed path was /bin/sh, a symlink: Linux shows the file itself.
        assert_eq!(w.read_link(Vnode::ProcExe).as_deref(), Ok("/bin/app"));
        let m = w.metadata(Vnode::ProcExe);
        assert!(m.is_symlink());
        assert_eq!(m.size, 8);
        assert_eq!(w.resolve("/", "/proc/self/exe/", true), Err(Errno::ENOTDIR));
        assert_eq!(w.resolve("/", "/proc/self", true), Err(Errno::ENOENT));
        // A program that is not in the rootfs still has an absolute name.
        let fs = testfs::sample();
        let odd = Walker::new(fs, "tmp/../gone");
        assert_eq!(odd.read_link(Vnode::ProcExe).as_deref(), Ok("/gone"));
        assert_eq!(odd.resolve("/", "/proc/self/exe", true), Err(Errno::ENOENT));
    }

    #[test]
    fn metadata_and_links() {
        let w = w();
        let m = w.metadata(tar(&w, "/bin/app"));
        assert_eq!(m.mode, S_IFREG | 0o755);
        assert_eq!(
            (m.uid, m.gid, m.size, m.mtime),
            (1000, 100, 8, 1_700_000_000)
        );
        assert_eq!(m.dev, ROOTFS_DEV);
        assert!(!m.mount_root);
        let root = w.metadata(tar(&w, "/"));
        assert!(root.is_dir() && root.mount_root && root.ino == 1);
        let l = tar(&w, "/etc/link");
        assert!(w.metadata(l).is_symlink());
        assert_eq!(w.read_link(l).as_deref(), Ok("motd"));
        assert_eq!(w.read_link(tar(&w, "/etc/motd")), Err(Errno::EINVAL));
    }

    #[test]
    fn canonical_paths() {
        let w = w();
        assert_eq!(w.path_of(tar(&w, "/")).as_deref(), Some("/"));
        assert_eq!(w.path_of(tar(&w, "/etc/sub")).as_deref(), Some("/etc/sub"));
        let via_link = w.resolve("/", "/lnk/sub", true).unwrap();
        assert_eq!(w.path_of(via_link).as_deref(), Some("/etc/sub"));
        assert_eq!(w.path_of(Vnode::DevDir).as_deref(), Some("/dev"));
    }

    fn listing(w: &Walker<'_>, v: Vnode, start: u64) -> Vec<(u64, String, u8)> {
        let mut out = vec![];
        w.read_dir_from(v, start, |e| {
            out.push((e.index, String::from(e.name), e.dtype));
            true
        })
        .unwrap();
        out
    }

    #[test]
    fn directory_listings() {
        let w = w();
        let names =
            |v, start| -> Vec<String> { listing(&w, v, start).into_iter().map(|e| e.1).collect() };
        let root = tar(&w, "/");
        assert_eq!(
            names(root, 0),
            [".", "..", "bin", "data", "etc", "lnk", "dev"]
        );
        assert_eq!(names(root, 5), ["lnk", "dev"]);
        assert_eq!(names(root, 6), ["dev"]);
        assert!(names(root, 7).is_empty());
        let etc = listing(&w, tar(&w, "/etc"), 0);
        assert_eq!(etc[2], (2, String::from("link"), dirent::DT_LNK));
        assert_eq!(etc[4], (4, String::from("motd"), dirent::DT_REG));
        assert_eq!(etc[5], (5, String::from("sub"), DT_DIR));
        let dev = names(Vnode::DevDir, 0);
        assert_eq!(
            dev,
            [".", "..", "console", "null", "random", "tty", "urandom", "zero"]
        );
        assert_eq!(
            w.read_dir_from(tar(&w, "/etc/motd"), 0, |_| true),
            Err(Errno::ENOTDIR)
        );
        // Stopping early is honoured.
        let mut n = 0;
        w.read_dir_from(root, 0, |_| {
            n += 1;
            n < 3
        })
        .unwrap();
        assert_eq!(n, 3);
    }

    #[test]
    fn parents_of_new_names() {
        let w = w();
        assert_eq!(w.resolve_parent("/", "/etc/new"), Ok(tar(&w, "/etc")));
        assert_eq!(w.resolve_parent("/etc", "new"), Ok(tar(&w, "/etc")));
        assert_eq!(w.resolve_parent("/", "/etc/motd/new"), Err(Errno::ENOTDIR));
        assert_eq!(w.resolve_parent("/", "/none/new"), Err(Errno::ENOENT));
    }
}

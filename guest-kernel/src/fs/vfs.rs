//! The file namespace a process sees (issue 9): `/` is the TAR image under a writable
//! tmpfs ([`super::overlay`]), with the device directory on `/dev`, `/proc/self/exe` on
//! `/proc`, and tmpfs instances on `/tmp` and `/run`.
//!
//! A [`Vnode`] names a file (a node of some mounted file system, or a pipe); a [`Walker`]
//! resolves paths component by component from a directory node ([`super::inode::walk`])
//! and answers metadata, directory and symlink queries for one process.

use alloc::string::String;
use alloc::vec::Vec;

use super::dirent::{DT_CHR, DT_DIR, DT_LNK, DT_REG};
use super::inode::{self, same_node, FileType, InodeRef, MountTable, WalkCtx, WalkFlags};
use super::path::PathError;
use super::procfs::{self, ProcNode};
use super::stat::{Metadata, Timestamp, S_IFIFO};
use super::tar::{FsError, TarFs};
use super::{devices, overlay, tar_inode, tmpfs::TmpFs};
use crate::errno::Errno;

/// The device number reported for rootfs files.
pub const ROOTFS_DEV: (u32, u32) = (0, 1);

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

/// A file in the namespace.
#[derive(Clone)]
pub enum Vnode {
    /// A node of a mounted file system.
    Node(InodeRef),
    /// A pipe (or a host stream that is not a terminal), by inode number.
    Pipe(u64),
}

impl PartialEq for Vnode {
    fn eq(&self, other: &Vnode) -> bool {
        match (self, other) {
            (Vnode::Node(a), Vnode::Node(b)) => same_node(a, b),
            (Vnode::Pipe(a), Vnode::Pipe(b)) => a == b,
            _ => false,
        }
    }
}

impl core::fmt::Debug for Vnode {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Vnode::Node(n) => write!(f, "Node({}:{})", n.fs_id(), n.ino()),
            Vnode::Pipe(ino) => write!(f, "Pipe({ino})"),
        }
    }
}

impl Vnode {
    /// The node, unless this is a pipe.
    pub fn node(&self) -> Option<&InodeRef> {
        match self {
            Vnode::Node(n) => Some(n),
            Vnode::Pipe(_) => None,
        }
    }

    /// Whether this is `/proc/self/exe`.
    fn is_proc_exe(&self) -> bool {
        self.node()
            .and_then(|n| n.as_any().downcast_ref::<ProcNode>())
            .is_some_and(ProcNode::is_own_exe)
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

/// The `d_type` of a node kind.
pub fn dtype(kind: FileType) -> u8 {
    match kind {
        FileType::Regular => DT_REG,
        FileType::Dir => DT_DIR,
        FileType::Symlink => DT_LNK,
        FileType::CharDev => DT_CHR,
        FileType::Fifo => 1,
    }
}

/// The mounted file systems and the root every process starts from.
pub struct Namespace {
    /// The mounts.
    pub mounts: MountTable,
    /// `/`.
    pub root: InodeRef,
}

/// Sizes of the writable file systems, in bytes of file data.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The upper layer of `/`.
    pub root: u64,
    /// `/tmp`.
    pub tmp: u64,
    /// `/run`.
    pub run: u64,
}

impl Limits {
    /// Linux's defaults for a machine of `ram` bytes: half of it for `/` and `/tmp` (tmpfs's
    /// default), a tenth for `/run`.
    pub fn for_ram(ram: u64) -> Limits {
        Limits {
            root: ram / 2,
            tmp: ram / 2,
            run: ram / 10,
        }
    }
}

impl Namespace {
    /// `/` = `tar` under a fresh tmpfs, with `/dev`, `/proc`, `/tmp` and `/run` mounted
    /// (their mount-point directories are made in the upper layer where the image has
    /// none; where the image has something else by that name, nothing is mounted there).
    /// `now` gives file times.
    pub fn new(tar: &'static TarFs, limits: Limits, now: fn() -> Timestamp) -> Self {
        let upper = TmpFs::new(limits.root, now);
        let root = overlay::new(tar_inode::root(tar), upper.root());
        let mut mounts = MountTable::new();
        let mounted: [(&str, u32, InodeRef); 4] = [
            ("dev", 0o755, devices::root()),
            ("proc", 0o555, procfs::root()),
            ("tmp", 0o1777, TmpFs::new(limits.tmp, now).root()),
            ("run", 0o755, TmpFs::new(limits.run, now).root()),
        ];
        for (name, mode, fs_root) in mounted {
            let point = match root.lookup(name) {
                Err(Errno::ENOENT) => root.create(name, FileType::Dir, mode, ""),
                found => found,
            };
            // A hostile image's file by that name just stays a file.
            if let Ok(point) = point {
                let _ = mounts.mount(point, fs_root);
            }
        }
        Namespace { mounts, root }
    }

    /// Mounts `fs_root` on the absolute path `path`, making missing directories on the
    /// way (mode 0755, in the writable upper layer) as `mkdir -p` would; symlinks on the
    /// way are not followed (ENOTDIR). What `--volume` uses.
    pub fn mount_path(&mut self, path: &str, fs_root: InodeRef) -> Result<(), Errno> {
        let mut dir = self.root.clone();
        for name in path.split('/').filter(|c| !c.is_empty() && *c != ".") {
            if name == ".." || name.len() > inode::NAME_MAX {
                return Err(Errno::EINVAL);
            }
            let node = match dir.lookup(name) {
                Err(Errno::ENOENT) => dir.create(name, FileType::Dir, 0o755, "")?,
                found => found?,
            };
            dir = self.mounts.enter(node);
            if dir.file_type() != FileType::Dir {
                return Err(Errno::ENOTDIR);
            }
        }
        if same_node(&dir, &self.root) {
            return Err(Errno::EBUSY);
        }
        self.mounts.mount(dir, fs_root)
    }
}

/// Resolves paths and answers queries about files for one process.
pub struct Walker<'a> {
    /// The namespace.
    pub ns: &'a Namespace,
    /// The path the running program was exec'ed as (for `/proc/self/exe`).
    pub exe: &'a str,
}

/// How a walk treats the last component: follow a final symlink or not.
pub fn follow(yes: bool) -> WalkFlags {
    WalkFlags {
        follow: yes,
        directory: false,
    }
}

impl<'a> Walker<'a> {
    /// A walker over `ns` for a process running `exe`.
    pub fn new(ns: &'a Namespace, exe: &'a str) -> Self {
        Walker { ns, exe }
    }

    /// `/`.
    pub fn root(&self) -> &InodeRef {
        &self.ns.root
    }

    fn ctx<'b>(&'b self, start: &'b InodeRef) -> WalkCtx<'b> {
        WalkCtx {
            mounts: &self.ns.mounts,
            root: &self.ns.root,
            start,
            exe: self.exe,
        }
    }

    /// Resolves `path` from the directory `start` (ignored when `path` is absolute).
    pub fn lookup(
        &self,
        start: &InodeRef,
        path: &str,
        flags: WalkFlags,
    ) -> Result<InodeRef, Errno> {
        inode::walk(&self.ctx(start), path, flags)
    }

    /// Resolves all but the last component of `path` from `start`: the directory, the last
    /// name (`None` for `/`, `.` and `..`, the directory then being the file named) and
    /// whether a trailing `/` was given.
    pub fn lookup_parent(
        &self,
        start: &InodeRef,
        path: &str,
    ) -> Result<(InodeRef, Option<String>, bool), Errno> {
        let (dir, name, slash) = inode::walk_parent(&self.ctx(start), path)?;
        if dir.file_type() != FileType::Dir {
            return Err(Errno::ENOTDIR);
        }
        Ok((dir, name, slash))
    }

    /// The directory node an absolute path names (a working directory).
    pub fn dir_at(&self, abs: &str) -> Result<InodeRef, Errno> {
        let flags = WalkFlags {
            follow: true,
            directory: true,
        };
        self.lookup(&self.ns.root, abs, flags)
    }

    /// Resolves `path` relative to the absolute directory path `base`, following a final
    /// symlink if `follow` (a trailing `/` always does).
    pub fn resolve(&self, base: &str, path: &str, follow_last: bool) -> Result<Vnode, Errno> {
        let start = if path.starts_with('/') {
            self.ns.root.clone()
        } else {
            self.dir_at(base)?
        };
        self.lookup(&start, path, follow(follow_last))
            .map(Vnode::Node)
    }

    /// Whether `v` is a directory.
    pub fn is_dir(&self, v: &Vnode) -> bool {
        v.node().is_some_and(|n| n.file_type() == FileType::Dir)
    }

    /// What `stat` reports for `v`.
    pub fn metadata(&self, v: &Vnode) -> Metadata {
        match v {
            Vnode::Pipe(ino) => super::stream_node::metadata(*ino, S_IFIFO | 0o600),
            Vnode::Node(n) if v.is_proc_exe() => Metadata {
                size: self.exe_target().len() as u64,
                ..n.metadata()
            },
            Vnode::Node(n) => n.metadata(),
        }
    }

    /// The target of symlink `v` (`EINVAL` if it is not one).
    pub fn read_link(&self, v: &Vnode) -> Result<String, Errno> {
        if v.is_proc_exe() {
            return Ok(self.exe_target());
        }
        match v {
            Vnode::Node(n) => n.readlink(),
            Vnode::Pipe(_) => Err(Errno::EINVAL),
        }
    }

    /// The absolute path of the running program with symlinks resolved, as Linux shows it
    /// in `/proc/self/exe`; the normalised exec'ed path if it cannot be resolved.
    pub fn exe_target(&self) -> String {
        let abs = procfs::exe_abs(self.exe);
        self.canonical(&abs).unwrap_or(abs)
    }

    /// The canonical absolute path of the file `abs` names, final symlinks followed.
    fn canonical(&self, abs: &str) -> Option<String> {
        let mut path = String::from(abs);
        for _ in 0..=inode::MAX_SYMLINKS {
            let (dir, name, _) = self.lookup_parent(&self.ns.root, &path).ok()?;
            let Some(name) = name else {
                return self.path_of(&Vnode::Node(dir));
            };
            let node = dir.lookup(&name).ok()?;
            let dir_path = self.path_of(&Vnode::Node(dir))?;
            if node.file_type() != FileType::Symlink {
                return Some(join_name(&dir_path, &name));
            }
            let target = node.readlink_as(self.exe).ok()?;
            path = if target.starts_with('/') {
                target
            } else {
                join_name(&dir_path, &target)
            };
        }
        None
    }

    /// The absolute path naming `v` (symlinks resolved), as `getcwd` reports a directory.
    pub fn path_of(&self, v: &Vnode) -> Option<String> {
        let mut node = match v {
            Vnode::Node(n) => n.clone(),
            Vnode::Pipe(ino) => return Some(alloc::format!("pipe:[{ino}]")),
        };
        if let Some(stream) = super::stream_node::as_stream(&node) {
            return Some(stream.link_text());
        }
        if v.is_proc_exe() {
            return Some(String::from(procfs::EXE_PATH));
        }
        let mut names: Vec<String> = Vec::new();
        for _ in 0..4096 {
            if same_node(&node, &self.ns.root) {
                let mut out = String::new();
                for name in names.iter().rev() {
                    out.push('/');
                    out.push_str(name);
                }
                if out.is_empty() {
                    out.push('/');
                }
                return Some(out);
            }
            if let Some(point) = self.ns.mounts.covered(&node) {
                node = point;
                continue;
            }
            let parent = node.parent().ok()?;
            if same_node(&parent, &node) {
                return None;
            }
            let ino = node.ino();
            let (name, _, _) = parent.entries().ok()?.into_iter().find(|e| e.1 == ino)?;
            names.push(name);
            node = parent;
        }
        None
    }

    /// The absolute path naming `node`, which `path` from directory `start` reached when
    /// it was opened: the path of the directory it is in now under the name it has there
    /// (symlinks on the way resolved), `" (deleted)"` added as Linux does if that name is
    /// gone and so are the file's links; `None` if the name leads elsewhere now (renamed).
    pub fn path_by(&self, start: &InodeRef, path: &str, node: &InodeRef) -> Option<String> {
        let (mut start, mut path) = (start.clone(), String::from(path));
        for _ in 0..=inode::MAX_SYMLINKS {
            let (dir, name, _) = self.lookup_parent(&start, &path).ok()?;
            let name = name?;
            let dir_path = self.path_of(&Vnode::Node(dir.clone()))?;
            let full = join_name(&dir_path, &name);
            let found = dir.lookup(&name).map(|n| self.ns.mounts.enter(n));
            match found {
                Ok(found) if same_node(&found, node) => return Some(full),
                Ok(found) if found.file_type() == FileType::Symlink => {
                    path = found.readlink_as(self.exe).ok()?;
                }
                _ if node.metadata().nlink == 0 => return Some(alloc::format!("{full} (deleted)")),
                _ => return None,
            }
            start = dir;
        }
        None
    }

    /// The inode number of `..` of directory `dir`, across mounts and never above `/`.
    fn dotdot_ino(&self, dir: &InodeRef) -> u64 {
        if same_node(dir, &self.ns.root) {
            return dir.ino();
        }
        let ctx = self.ctx(dir);
        inode::walk(&ctx, "..", follow(true)).map_or(dir.ino(), |p| p.ino())
    }

    /// Calls `f` on the entries of directory `v` from position `start` on, `.` and `..`
    /// first, until `f` returns false. Entries come in name order; `after` (the last name
    /// returned before, at position `start - 1`) resumes after that name even if entries
    /// before it were removed meanwhile. `ENOTDIR` if `v` is not a directory.
    pub fn read_dir_from(
        &self,
        v: &Vnode,
        start: u64,
        after: Option<&str>,
        mut f: impl FnMut(DirEntry<'_>) -> bool,
    ) -> Result<(), Errno> {
        let Some(dir) = v.node().filter(|n| n.file_type() == FileType::Dir) else {
            return Err(Errno::ENOTDIR);
        };
        let dots = [(0u64, dir.ino(), "."), (1, self.dotdot_ino(dir), "..")];
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
        let entries = dir.entries()?;
        let (first, base) = match after {
            Some(last) if start >= 2 => (entries.partition_point(|e| e.0.as_str() <= last), start),
            _ => {
                let skip = start.saturating_sub(2) as usize;
                (skip, 2 + skip as u64)
            }
        };
        for (i, (name, ino, kind)) in entries.iter().enumerate().skip(first) {
            let e = DirEntry {
                index: base + (i - first) as u64,
                ino: *ino,
                dtype: dtype(*kind),
                name,
            };
            if !f(e) {
                break;
            }
        }
        Ok(())
    }
}

/// `/proc/mounts`: `/` and each mount, as `device path type options 0 0` lines.
pub fn mounts_text(ns: &Namespace) -> String {
    let walker = Walker::new(ns, "");
    let mut out = String::new();
    let mut line = |path: &str, root: &InodeRef| {
        let st = root.statfs();
        let mut opts = String::from(if st.flags & inode::ST_RDONLY != 0 {
            "ro"
        } else {
            "rw"
        });
        for (bit, name) in [
            (inode::ST_NOSUID, ",nosuid"),
            (inode::ST_NODEV, ",nodev"),
            (inode::ST_NOEXEC, ",noexec"),
        ] {
            if st.flags & bit != 0 {
                opts.push_str(name);
            }
        }
        let kind = root.fs_name();
        out.push_str(&alloc::format!("{kind} {path} {kind} {opts} 0 0\n"));
    };
    line("/", &ns.root);
    for (point, root) in ns.mounts.iter() {
        if let Some(path) = walker.path_of(&Vnode::Node(point.clone())) {
            line(&path, root);
        }
    }
    out
}

/// `dir/name` for an absolute directory path.
fn join_name(dir: &str, name: &str) -> String {
    let mut s = String::from(dir);
    if !s.ends_with('/') {
        s.push('/');
    }
    s.push_str(name);
    s
}

#[cfg(test)]
pub mod tests;

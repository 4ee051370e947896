//! The node layer of the writable VFS (issue 9): the [`Inode`] trait every file system's
//! nodes implement, a [`MountTable`], and [`walk`], which resolves a path component by
//! component from a directory node with Linux's rules: `.` and `..` (also across mounts and
//! never above the process root), symlinks (40 at most per walk, also across mounts),
//! trailing slashes, and the ENAMETOOLONG / ENOTDIR / ENOENT / ELOOP errors Linux gives.
//!
//! Nothing here knows a concrete file system: [`super::tmpfs`], [`super::tar_inode`],
//! [`super::overlay`], [`super::devices`] and [`super::procfs`] implement the trait, and the
//! process namespace ([`super::vfs`]) mounts them.

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

use super::devices::Device;
use super::stat::{Metadata, Timestamp};
use crate::errno::Errno;

/// Longest path a system call accepts, terminating NUL included (Linux's `PATH_MAX`).
pub const PATH_MAX: usize = 4096;
/// Longest file name (Linux's `NAME_MAX`).
pub const NAME_MAX: usize = 255;
/// Most symlinks one walk follows before ELOOP (Linux's `MAXSYMLINKS`).
pub const MAX_SYMLINKS: u32 = 40;

/// What kind of file a node is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileType {
    /// A regular file.
    Regular,
    /// A directory.
    Dir,
    /// A symbolic link.
    Symlink,
    /// A named pipe.
    Fifo,
    /// A character device.
    CharDev,
}

/// What `statfs` reports about a file system (in `bsize` blocks).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FsStats {
    /// `f_type`: the file system's magic number.
    pub magic: u64,
    /// Block size.
    pub bsize: u64,
    /// Total blocks.
    pub blocks: u64,
    /// Free blocks.
    pub bfree: u64,
    /// Total inodes (0: no limit).
    pub files: u64,
    /// Free inodes.
    pub ffree: u64,
    /// `ST_*` mount flags.
    pub flags: u64,
}

/// `ST_RDONLY`: mounted read-only.
pub const ST_RDONLY: u64 = 1;
/// `ST_NOSUID`.
pub const ST_NOSUID: u64 = 2;
/// `ST_NODEV`.
pub const ST_NODEV: u64 = 4;
/// `ST_NOEXEC`.
pub const ST_NOEXEC: u64 = 8;

/// A shared reference to a node.
pub type InodeRef = Arc<dyn Inode>;

/// A file of some file system. Nodes are reference counted: a directory entry, an open
/// file and a process's cwd each hold one.
pub trait Inode: Send + Sync {
    /// The file system this node belongs to (unique per mounted instance).
    fn fs_id(&self) -> u64;
    /// The inode number, stable while the node exists.
    fn ino(&self) -> u64;
    /// The node's kind.
    fn file_type(&self) -> FileType;
    /// What `stat` reports.
    fn metadata(&self) -> Metadata;
    // The directory operations' defaults are those of a node that is not a directory
    // (ENOTDIR; EINVAL for readlink of a non-symlink): leaf-only file systems keep them.

    /// The entry `name` of this directory (never `.` or `..`).
    fn lookup(&self, name: &str) -> Result<InodeRef, Errno> {
        let _ = name;
        Err(Errno::ENOTDIR)
    }
    /// The directory containing this one; the root of its file system returns itself.
    fn parent(&self) -> Result<InodeRef, Errno> {
        Err(Errno::ENOTDIR)
    }
    /// The target of a symlink (EINVAL for other kinds).
    fn readlink(&self) -> Result<String, Errno> {
        Err(Errno::EINVAL)
    }
    /// The entries of a directory, without `.` and `..`: (name, inode number, kind).
    fn entries(&self) -> Result<Vec<(String, u64, FileType)>, Errno> {
        Err(Errno::ENOTDIR)
    }
    /// Creates `name` in this directory: a regular file, directory or FIFO with `mode`'s
    /// permission bits, or a symlink to `target`. EEXIST if the name exists.
    fn create(
        &self,
        name: &str,
        kind: FileType,
        mode: u32,
        target: &str,
    ) -> Result<InodeRef, Errno> {
        let _ = (name, kind, mode, target);
        Err(Errno::ENOTDIR)
    }
    /// Adds a hard link `name` to `node` (EXDEV if it is on another file system).
    fn link(&self, name: &str, node: &InodeRef) -> Result<(), Errno> {
        let _ = (name, node);
        Err(Errno::ENOTDIR)
    }
    /// Removes the non-directory `name` (EISDIR for a directory).
    fn unlink(&self, name: &str) -> Result<(), Errno> {
        let _ = name;
        Err(Errno::ENOTDIR)
    }
    /// Removes the empty directory `name` (ENOTDIR, ENOTEMPTY).
    fn rmdir(&self, name: &str) -> Result<(), Errno> {
        let _ = name;
        Err(Errno::ENOTDIR)
    }
    /// Moves `name` to `new_name` in `new_dir` (a directory of the same file system),
    /// replacing a compatible target as `rename(2)` does.
    fn rename(&self, name: &str, new_dir: &InodeRef, new_name: &str) -> Result<(), Errno> {
        let _ = (name, new_dir, new_name);
        Err(Errno::ENOTDIR)
    }
    /// Reads file bytes at `offset`; returns the count (0 at or past the end).
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize, Errno>;
    /// Writes file bytes at `offset`, growing the file; returns the count.
    fn write_at(&self, offset: u64, buf: &[u8]) -> Result<usize, Errno>;
    /// Sets the file size, zero-filling growth.
    fn truncate(&self, size: u64) -> Result<(), Errno>;

    /// Allocates `[offset, offset + len)` of a regular file (`fallocate` mode 0): its
    /// pages exist afterwards, charged to the file system, and the size covers them.
    /// File systems that cannot give `EOPNOTSUPP`, as Linux's do.
    fn allocate(&self, offset: u64, len: u64) -> Result<(), Errno> {
        let _ = (offset, len);
        Err(Errno::EOPNOTSUPP)
    }
    /// Makes `[offset, offset + len)` of a regular file a hole (`fallocate`
    /// `PUNCH_HOLE | KEEP_SIZE`, `MADV_REMOVE`): its pages are freed, it reads as zeros,
    /// the size stays. File systems that cannot give `EOPNOTSUPP`, as Linux's do.
    fn punch_hole(&self, offset: u64, len: u64) -> Result<(), Errno> {
        let _ = (offset, len);
        Err(Errno::EOPNOTSUPP)
    }
    /// Sets the permission bits (the file type stays).
    fn set_mode(&self, mode: u32) -> Result<(), Errno>;
    /// For downcasting to the concrete node type of the same file system.
    fn as_any(&self) -> &dyn core::any::Any;
    /// What `statfs` reports for the file system holding this node.
    fn statfs(&self) -> FsStats;
    /// Swaps the entries `name` here and `new_name` in `new_dir` (`RENAME_EXCHANGE`).
    fn exchange(&self, _name: &str, _new_dir: &InodeRef, _new_name: &str) -> Result<(), Errno> {
        Err(Errno::EINVAL)
    }
    /// Sets the access and modification times (`None` leaves one as it is); the change
    /// time becomes now.
    fn set_times(&self, _atime: Option<Timestamp>, _mtime: Option<Timestamp>) -> Result<(), Errno> {
        Err(Errno::EROFS)
    }
    /// Sets the owner (a copy-up keeps the lower file's).
    fn set_owner(&self, _uid: u32, _gid: u32) -> Result<(), Errno> {
        Err(Errno::EROFS)
    }
    /// The target of a symlink as process running `exe` (its exec'ed path) sees it; only
    /// `/proc/self/exe` depends on that.
    fn readlink_as(&self, _exe: &str) -> Result<String, Errno> {
        self.readlink()
    }
    /// The device a device node stands for.
    fn device(&self) -> Option<Device> {
        None
    }
    /// The file system's type as `/proc/mounts` names it.
    fn fs_name(&self) -> &'static str {
        super::procinfo::fs_type(self.statfs().magic)
    }
    /// Bytes per step when `read`/`write` stage a transfer through a kernel buffer: file
    /// systems whose every call is a VM exit (hostfs) ask for more than a page.
    fn io_chunk(&self) -> usize {
        4096
    }
    /// The file's bytes when they live in memory as long as the kernel runs (TAR files):
    /// read and mapped without a copy.
    fn static_bytes(&self) -> Option<&'static [u8]> {
        None
    }
    /// For a `/proc/[pid]/fd/N` link: the open file's node itself, which following the
    /// link reaches without its path (so an unlinked or unnamed file is reached too).
    fn magic_target(&self) -> Option<InodeRef> {
        None
    }
    /// `O_TMPFILE` in this directory: a new regular file with permissions `mode` that no
    /// directory names; `linkable` (no `O_EXCL`) lets `linkat` give it a name once.
    /// `EOPNOTSUPP` for file systems without unnamed files, `ENOTDIR` for non-directories.
    fn tmpfile(&self, _mode: u32, _linkable: bool) -> Result<InodeRef, Errno> {
        Err(if self.file_type() == FileType::Dir {
            Errno::EOPNOTSUPP
        } else {
            Errno::ENOTDIR
        })
    }
    /// True if the file keeps its data in frames that `MAP_SHARED` mappings map
    /// themselves ([`Self::shared_frame`]): tmpfs files, the overlay's.
    fn has_shared_pages(&self) -> bool {
        false
    }
    /// The frame of the file's page `index`, with one more owner for a mapping's page-table
    /// entry (a hole gets a zeroed page): `ENODEV` for file systems without such pages,
    /// `ENXIO` past the end.
    fn shared_frame(&self, _index: u64) -> Result<u64, Errno> {
        Err(Errno::ENODEV)
    }
    /// Like [`Self::shared_frame`] but only for a page the file has already (none for a
    /// hole): what a fault maps around the faulting page.
    fn existing_frame(&self, _index: u64) -> Option<u64> {
        None
    }
    /// Writes cached data back to where the file lives (`fsync`, `msync`): only host
    /// volumes cache anything ([`super::hostcache`]).
    fn sync(&self) -> Result<(), Errno> {
        Ok(())
    }
    /// A shared mapping of the file went (`munmap`, exit): a cache writes back and lets
    /// its unmapped pages go.
    fn unmapped(&self) {}
    /// A mapping of a file open for writing maps its pages: a cache may get stores to
    /// write back (one only read never writes, so the host file keeps its times).
    fn mapped_writable(&self) {}
}

/// Whether `a` and `b` are the same node.
pub fn same_node(a: &InodeRef, b: &InodeRef) -> bool {
    a.fs_id() == b.fs_id() && a.ino() == b.ino()
}

/// The mounts of a namespace: which directory each mounted file system's root covers.
#[derive(Default, Clone)]
pub struct MountTable {
    /// (mount point, root of the file system mounted on it), newest last.
    mounts: Vec<(InodeRef, InodeRef)>,
}

impl MountTable {
    /// An empty table.
    pub fn new() -> Self {
        MountTable { mounts: Vec::new() }
    }

    /// Mounts `root` on the directory `point` (EBUSY if something is mounted there,
    /// ENOTDIR if it is not a directory).
    pub fn mount(&mut self, point: InodeRef, root: InodeRef) -> Result<(), Errno> {
        if point.file_type() != FileType::Dir || root.file_type() != FileType::Dir {
            return Err(Errno::ENOTDIR);
        }
        if self.mounts.iter().any(|(p, _)| same_node(p, &point)) {
            return Err(Errno::EBUSY);
        }
        self.mounts.try_reserve(1).map_err(|_| Errno::ENOMEM)?;
        self.mounts.push((point, root));
        Ok(())
    }

    /// `node`, or the root of what is mounted on it (repeatedly, for stacked mounts).
    pub fn enter(&self, mut node: InodeRef) -> InodeRef {
        while let Some((_, root)) = self.mounts.iter().find(|(p, _)| same_node(p, &node)) {
            node = root.clone();
        }
        node
    }

    /// The mount point `node` is the mounted root of, if it is one.
    pub fn covered(&self, node: &InodeRef) -> Option<InodeRef> {
        self.mounts
            .iter()
            .rev()
            .find(|(_, r)| same_node(r, node))
            .map(|(p, _)| p.clone())
    }

    /// The mounts, oldest first: (mount point, mounted root).
    pub fn iter(&self) -> impl Iterator<Item = &(InodeRef, InodeRef)> {
        self.mounts.iter()
    }

    /// The physical parent of the directory `dir`, stepping out of mounts: `..` of a
    /// mounted root is `..` of the directory it covers.
    fn parent_of(&self, dir: &InodeRef) -> Result<InodeRef, Errno> {
        let mut node = dir.clone();
        while let Some(point) = self.covered(&node) {
            node = point;
        }
        let parent = node.parent()?;
        Ok(self.enter(parent))
    }
}

/// How [`walk`] treats the last component.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WalkFlags {
    /// Follow a final symlink (no `AT_SYMLINK_NOFOLLOW` / `O_NOFOLLOW`). A trailing slash
    /// always follows.
    pub follow: bool,
    /// The result must be a directory (`O_DIRECTORY`).
    pub directory: bool,
}

/// Where a walk starts and what it may not climb above.
pub struct WalkCtx<'a> {
    /// The mounts.
    pub mounts: &'a MountTable,
    /// The process root (`..` stops here; absolute paths and symlinks start here).
    pub root: &'a InodeRef,
    /// The directory relative paths start from (the cwd or an `*at` dirfd).
    pub start: &'a InodeRef,
    /// The walking process's exec'ed path (for `/proc/self/exe`).
    pub exe: &'a str,
}

/// Checks a path's length and its components' lengths as Linux does.
fn check_path(path: &str) -> Result<(), Errno> {
    if path.is_empty() {
        return Err(Errno::ENOENT);
    }
    if path.len() >= PATH_MAX {
        return Err(Errno::ENAMETOOLONG);
    }
    if path.split('/').any(|c| c.len() > NAME_MAX) {
        return Err(Errno::ENAMETOOLONG);
    }
    Ok(())
}

/// The pending work of a walk: components still to resolve, last one at index 0, and
/// whether the path (or the symlink text that produced the tail) ended in `/`.
struct Pending {
    rev: Vec<String>,
    trailing_slash: bool,
}

impl Pending {
    fn push_path(&mut self, path: &str) -> Result<(), Errno> {
        let comps: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
        self.rev
            .try_reserve(comps.len())
            .map_err(|_| Errno::ENOMEM)?;
        for c in comps.into_iter().rev() {
            self.rev.push(String::from(c));
        }
        Ok(())
    }
}

/// Resolves `path` to a node; see the module doc for the rules.
pub fn walk(ctx: &WalkCtx<'_>, path: &str, flags: WalkFlags) -> Result<InodeRef, Errno> {
    let mut links = 0;
    let (dir, last, must_dir) = walk_inner(ctx, path, &mut links)?;
    let Some(last) = last else {
        // The path resolved to a directory (`/`, `..`, `a/.`).
        return Ok(dir);
    };
    let mut dir = dir;
    let mut name = last;
    let mut must_dir = must_dir || flags.directory;
    loop {
        let node = ctx.mounts.enter(dir.lookup(&name)?);
        let follow = flags.follow || must_dir;
        if node.file_type() == FileType::Symlink && follow {
            links += 1;
            if links > MAX_SYMLINKS {
                return Err(Errno::ELOOP);
            }
            if let Some(target) = node.magic_target() {
                return check_dir(target, must_dir);
            }
            let target = node.readlink_as(ctx.exe)?;
            if target.is_empty() {
                return Err(Errno::ENOENT);
            }
            let base = if target.starts_with('/') {
                ctx.root.clone()
            } else {
                dir
            };
            let sub = WalkCtx {
                mounts: ctx.mounts,
                root: ctx.root,
                start: &base,
                exe: ctx.exe,
            };
            let (d, l, m) = walk_inner(&sub, &target, &mut links)?;
            must_dir |= m;
            match l {
                None => return check_dir(d, must_dir),
                Some(l) => {
                    dir = d;
                    name = l;
                }
            }
            continue;
        }
        return check_dir(node, must_dir);
    }
}

fn check_dir(node: InodeRef, must_dir: bool) -> Result<InodeRef, Errno> {
    if must_dir && node.file_type() != FileType::Dir {
        return Err(Errno::ENOTDIR);
    }
    Ok(node)
}

/// Resolves all but the last component of `path`: the directory that holds the last
/// component, its name (`None` when the path ends in `.`, `..` or is `/`, with the
/// directory then being the result), and whether a trailing `/` requires a directory.
/// What creating calls (`mkdir`, `O_CREAT`, `rename`, `link`) walk.
pub fn walk_parent(
    ctx: &WalkCtx<'_>,
    path: &str,
) -> Result<(InodeRef, Option<String>, bool), Errno> {
    walk_parent_inner(ctx, path)
}

fn walk_parent_inner(
    ctx: &WalkCtx<'_>,
    path: &str,
) -> Result<(InodeRef, Option<String>, bool), Errno> {
    let mut links = 0;
    walk_inner(ctx, path, &mut links)
}

fn walk_inner(
    ctx: &WalkCtx<'_>,
    path: &str,
    links: &mut u32,
) -> Result<(InodeRef, Option<String>, bool), Errno> {
    check_path(path)?;
    let mut cur = if path.starts_with('/') {
        ctx.root.clone()
    } else {
        ctx.start.clone()
    };
    let mut p = Pending {
        rev: Vec::new(),
        trailing_slash: path.ends_with('/'),
    };
    p.push_path(path)?;
    while let Some(comp) = p.rev.pop() {
        if cur.file_type() != FileType::Dir {
            return Err(Errno::ENOTDIR);
        }
        match comp.as_str() {
            "." => {
                if p.rev.is_empty() {
                    return Ok((cur, None, true));
                }
            }
            ".." => {
                if !same_node(&cur, ctx.root) {
                    cur = ctx.mounts.parent_of(&cur)?;
                }
                if p.rev.is_empty() {
                    return Ok((cur, None, true));
                }
            }
            _ if p.rev.is_empty() => return Ok((cur, Some(comp), p.trailing_slash)),
            name => {
                let node = ctx.mounts.enter(cur.lookup(name)?);
                if node.file_type() == FileType::Symlink {
                    *links += 1;
                    if *links > MAX_SYMLINKS {
                        return Err(Errno::ELOOP);
                    }
                    if let Some(target) = node.magic_target() {
                        cur = target;
                        continue;
                    }
                    let target = node.readlink_as(ctx.exe)?;
                    if target.is_empty() {
                        return Err(Errno::ENOENT);
                    }
                    if target.starts_with('/') {
                        cur = ctx.root.clone();
                    }
                    p.push_path(&target)?;
                    if p.rev.is_empty() {
                        // A symlink to `/`: the rest of the path continues from the root.
                        continue;
                    }
                } else {
                    cur = node;
                }
            }
        }
    }
    // Only `/` (or a symlink chain ending in `/`) empties the list without a last name.
    Ok((cur, None, true))
}

#[cfg(test)]
mod tests {
    use super::super::tmpfs::TmpFs;
    use super::*;

    fn ctx_parts() -> (MountTable, InodeRef) {
        let fs = TmpFs::new(1 << 20, Timestamp::default);
        (MountTable::new(), fs.root())
    }

    fn mk(dir: &InodeRef, name: &str, kind: FileType, target: &str) -> InodeRef {
        dir.create(name, kind, 0o755, target).unwrap()
    }

    fn w(
        m: &MountTable,
        root: &InodeRef,
        start: &InodeRef,
        path: &str,
        follow: bool,
    ) -> Result<InodeRef, Errno> {
        let ctx = WalkCtx {
            mounts: m,
            root,
            start,
            exe: "",
        };
        walk(
            &ctx,
            path,
            WalkFlags {
                follow,
                directory: false,
            },
        )
    }

    #[test]
    fn walks_dirs_dots_and_symlinks() {
        let (m, root) = ctx_parts();
        let etc = mk(&root, "etc", FileType::Dir, "");
        let motd = mk(&etc, "motd", FileType::Regular, "");
        mk(&etc, "link", FileType::Symlink, "motd");
        mk(&root, "lnk", FileType::Symlink, "/etc");
        mk(&root, "rel", FileType::Symlink, "etc/../etc/.");
        assert!(same_node(
            &w(&m, &root, &root, "/etc/motd", true).unwrap(),
            &motd
        ));
        assert!(same_node(&w(&m, &root, &etc, "motd", true).unwrap(), &motd));
        assert!(same_node(&w(&m, &root, &etc, "link", true).unwrap(), &motd));
        let l = w(&m, &root, &etc, "link", false).unwrap();
        assert_eq!(l.file_type(), FileType::Symlink);
        assert!(same_node(
            &w(&m, &root, &root, "/lnk/motd", true).unwrap(),
            &motd
        ));
        assert!(same_node(
            &w(&m, &root, &root, "rel/link", true).unwrap(),
            &motd
        ));
        assert!(same_node(
            &w(&m, &root, &root, "/../..", true).unwrap(),
            &root
        ));
        assert!(same_node(&w(&m, &root, &etc, "..", true).unwrap(), &root));
        assert!(same_node(&w(&m, &root, &root, "/", true).unwrap(), &root));
        assert!(same_node(
            &w(&m, &root, &root, "lnk/", false).unwrap(),
            &etc
        ));
        assert!(same_node(
            &w(&m, &root, &root, "etc/.", false).unwrap(),
            &etc
        ));
    }

    #[test]
    fn errors_are_linuxs() {
        let (m, root) = ctx_parts();
        let etc = mk(&root, "etc", FileType::Dir, "");
        mk(&etc, "motd", FileType::Regular, "");
        mk(&etc, "loop", FileType::Symlink, "loop");
        mk(&etc, "dangling", FileType::Symlink, "nowhere");
        let e = |p: &str, f| w(&m, &root, &root, p, f).err();
        assert_eq!(e("", true), Some(Errno::ENOENT));
        assert_eq!(e("/nope", true), Some(Errno::ENOENT));
        assert_eq!(e("/etc/motd/", true), Some(Errno::ENOTDIR));
        assert_eq!(e("/etc/motd/x", true), Some(Errno::ENOTDIR));
        assert_eq!(e("/etc/motd/.", true), Some(Errno::ENOTDIR));
        assert_eq!(e("/etc/loop", true), Some(Errno::ELOOP));
        assert_eq!(e("/etc/loop/x", true), Some(Errno::ELOOP));
        assert!(w(&m, &root, &root, "/etc/loop", false).is_ok());
        assert_eq!(e("/etc/dangling", true), Some(Errno::ENOENT));
        assert!(w(&m, &root, &root, "/etc/dangling", false).is_ok());
        let long_name = "a".repeat(256);
        assert_eq!(e(&long_name, true), Some(Errno::ENAMETOOLONG));
        let long_path = "a/".repeat(2048);
        assert_eq!(e(&long_path, true), Some(Errno::ENAMETOOLONG));
        let ctx = WalkCtx {
            mounts: &m,
            root: &root,
            start: &root,
            exe: "",
        };
        let dir_only = WalkFlags {
            follow: true,
            directory: true,
        };
        assert_eq!(
            walk(&ctx, "/etc/motd", dir_only).err(),
            Some(Errno::ENOTDIR)
        );
    }

    #[test]
    fn forty_links_resolve_and_the_41st_loops() {
        let (m, root) = ctx_parts();
        mk(&root, "f", FileType::Regular, "");
        mk(&root, "l0", FileType::Symlink, "f");
        for i in 1..=40 {
            let target = alloc::format!("l{}", i - 1);
            mk(&root, &alloc::format!("l{i}"), FileType::Symlink, &target);
        }
        assert!(w(&m, &root, &root, "l39", true).is_ok());
        assert_eq!(w(&m, &root, &root, "l40", true).err(), Some(Errno::ELOOP));
    }

    #[test]
    fn mounts_are_entered_and_left() {
        let (mut m, root) = ctx_parts();
        let tmp = mk(&root, "tmp", FileType::Dir, "");
        let other = TmpFs::new(1 << 20, Timestamp::default);
        let oroot = other.root();
        let inner = mk(&oroot, "inner", FileType::Regular, "");
        mk(&oroot, "up", FileType::Symlink, "../etc");
        let etc = mk(&root, "etc", FileType::Dir, "");
        m.mount(tmp.clone(), oroot.clone()).unwrap();
        assert_eq!(
            m.mount(tmp.clone(), oroot.clone()).err(),
            Some(Errno::EBUSY)
        );
        assert!(same_node(
            &w(&m, &root, &root, "/tmp/inner", true).unwrap(),
            &inner
        ));
        assert!(same_node(
            &w(&m, &root, &root, "/tmp", true).unwrap(),
            &oroot
        ));
        assert!(same_node(
            &w(&m, &root, &root, "/tmp/..", true).unwrap(),
            &root
        ));
        assert!(same_node(
            &w(&m, &root, &root, "/tmp/up", true).unwrap(),
            &etc
        ));
        // A process rooted inside the mount cannot climb out of it.
        assert!(same_node(
            &w(&m, &oroot, &oroot, "/../..", true).unwrap(),
            &oroot
        ));
    }

    #[test]
    fn walk_parent_names_the_last_component() {
        let (m, root) = ctx_parts();
        let etc = mk(&root, "etc", FileType::Dir, "");
        let ctx = WalkCtx {
            mounts: &m,
            root: &root,
            start: &root,
            exe: "",
        };
        let (d, name, slash) = walk_parent(&ctx, "/etc/new/").unwrap();
        assert!(same_node(&d, &etc));
        assert_eq!(name.as_deref(), Some("new"));
        assert!(slash);
        let (d, name, _) = walk_parent(&ctx, "etc/..").unwrap();
        assert!(same_node(&d, &root));
        assert_eq!(name, None);
        assert_eq!(walk_parent(&ctx, "/nope/x").err(), Some(Errno::ENOENT));
    }
}

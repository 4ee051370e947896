//! The overlay root (issue 9): a read-only lower tree (the TAR image) under a writable upper
//! tree (a tmpfs), as Linux's overlayfs combines them. Reads of untouched files go to the
//! lower node; the first change copies a file (and its parent directories) up; unlink and
//! rename of lower entries leave whiteouts; a directory created over a whiteout is opaque
//! (hides the lower directory of the same name). The lower tree is never written.
//!
//! Like overlayfs without `redirect_dir`, renaming a directory that exists in the lower tree
//! gives EXDEV (`mv` then copies). Inode numbers are the lower node's where there is one,
//! so a copy-up does not change them; a copy-up keeps the owner, mode and times. A renamed
//! node moves itself (its parent and name change), so `..` of a held directory follows it.

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::string::String;
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

use spin::Mutex;

use super::inode::{FileType, FsStats, Inode, InodeRef};
use super::stat::{Metadata, Timestamp};
use crate::errno::Errno;

/// Inode numbers of upper-only nodes are offset past any lower inode number.
const UPPER_INO_BASE: u64 = 1 << 40;

/// `OVERLAYFS_SUPER_MAGIC`.
pub const OVERLAYFS_MAGIC: u64 = 0x794c_7630;

static NEXT_FS_ID: AtomicU64 = AtomicU64::new(0x200);

#[derive(Default)]
struct DirState {
    whiteouts: BTreeSet<String>,
    opaque: bool,
    /// Nodes handed out, so every lookup of a name finds the same node.
    children: BTreeMap<String, Weak<Node>>,
    /// Child directories are kept alive: their whiteouts and opacity live in them.
    dirs: BTreeMap<String, Arc<Node>>,
}

/// Inode numbers of copied-up nodes: upper inode number -> the lower node's, so a file
/// keeps its number through a copy-up, a rename and the node cache dropping it.
type InoMap = Arc<Mutex<BTreeMap<u64, u64>>>;

/// A node of the overlay.
pub struct Node {
    fs_id: u64,
    inos: InoMap,
    me: Weak<Node>,
    /// The directory holding this node (`None` for the root); changes on rename.
    parent: Mutex<Option<Arc<Node>>>,
    name: Mutex<String>,
    kind: FileType,
    lower: Option<InodeRef>,
    upper: Mutex<Option<InodeRef>>,
    dir: Mutex<DirState>,
}

/// Builds the overlay of `upper_root` over `lower_root` (both directories); returns its root.
pub fn new(lower_root: InodeRef, upper_root: InodeRef) -> InodeRef {
    Arc::new_cyclic(|me| Node {
        fs_id: NEXT_FS_ID.fetch_add(1, Ordering::Relaxed),
        inos: Arc::new(Mutex::new(BTreeMap::new())),
        me: me.clone(),
        parent: Mutex::new(None),
        name: Mutex::new(String::new()),
        kind: FileType::Dir,
        lower: Some(lower_root),
        upper: Mutex::new(Some(upper_root)),
        dir: Mutex::new(DirState::default()),
    })
}

fn clone_str(s: &str) -> Result<String, Errno> {
    let mut o = String::new();
    o.try_reserve(s.len()).map_err(|_| Errno::ENOMEM)?;
    o.push_str(s);
    Ok(o)
}

impl Node {
    fn upper(&self) -> Option<InodeRef> {
        self.upper.lock().clone()
    }

    /// The node answering reads: the upper one once it exists.
    fn current(&self) -> InodeRef {
        match (self.upper(), &self.lower) {
            (Some(u), _) => u,
            (None, Some(l)) => l.clone(),
            // Every node has at least one layer.
            (None, None) => unreachable!("overlay node without layers"),
        }
    }

    fn arc(&self) -> Result<Arc<Node>, Errno> {
        self.me.upgrade().ok_or(Errno::ENOENT)
    }

    fn child(
        &self,
        name: &str,
        lower: Option<InodeRef>,
        upper: Option<InodeRef>,
    ) -> Result<Arc<Node>, Errno> {
        let kind = match (&upper, &lower) {
            (Some(u), _) => u.file_type(),
            (None, Some(l)) => l.file_type(),
            (None, None) => return Err(Errno::ENOENT),
        };
        let parent = self.arc()?;
        let node = Arc::new_cyclic(|me| Node {
            fs_id: self.fs_id,
            inos: self.inos.clone(),
            me: me.clone(),
            parent: Mutex::new(Some(parent)),
            name: Mutex::new(clone_str(name).unwrap_or_default()),
            kind,
            lower,
            upper: Mutex::new(upper),
            dir: Mutex::new(DirState::default()),
        });
        Ok(node)
    }

    /// Makes sure this node exists in the upper tree, copying it (and its ancestors) up.
    fn copy_up(&self) -> Result<InodeRef, Errno> {
        // Held throughout, so two copy-ups of one node cannot race.
        let mut slot = self.upper.lock();
        if let Some(u) = slot.as_ref() {
            return Ok(u.clone());
        }
        let parent = self.parent.lock().clone().ok_or(Errno::EIO)?;
        let pu = parent.copy_up()?;
        let lower = self.lower.as_ref().ok_or(Errno::EIO)?;
        let name = self.name.lock().clone();
        let meta = lower.metadata();
        let up = self.copy_up_into(&pu, &name, lower, &meta)?;
        self.inos.lock().insert(up.ino(), lower.ino());
        *slot = Some(up.clone());
        Ok(up)
    }

    /// Makes the upper copy of `lower` as `name` in `pu`, with its owner and times.
    fn copy_up_into(
        &self,
        pu: &InodeRef,
        name: &str,
        lower: &InodeRef,
        meta: &Metadata,
    ) -> Result<InodeRef, Errno> {
        let up = match self.kind {
            // The copied directory's lower entries still show through it.
            FileType::Dir => pu.create(name, FileType::Dir, meta.mode, "")?,
            FileType::Symlink => pu.create(name, FileType::Symlink, 0, &lower.readlink()?)?,
            kind => {
                let up = pu.create(name, kind, meta.mode, "")?;
                let mut buf = [0u8; 4096];
                let mut off = 0u64;
                loop {
                    let n = lower.read_at(off, &mut buf)?;
                    if n == 0 {
                        break;
                    }
                    if let Err(e) = up.write_at(off, &buf[..n]) {
                        let _ = pu.unlink(name);
                        return Err(e);
                    }
                    off += n as u64;
                }
                up
            }
        };
        // Best effort, as overlayfs: the copy exists either way.
        let _ = up.set_owner(meta.uid, meta.gid);
        let _ = up.set_times(Some(meta.atime), Some(meta.mtime));
        Ok(up)
    }

    /// The overlay inode number of the upper node numbered `ino`.
    fn upper_ino(&self, ino: u64) -> u64 {
        match self.inos.lock().get(&ino) {
            Some(&lower) => lower,
            None => UPPER_INO_BASE + ino,
        }
    }

    /// Whether the lower directory (seen through this one) has an entry `name`.
    fn lower_has(&self, name: &str) -> bool {
        let st = self.dir.lock();
        if st.opaque {
            return false;
        }
        drop(st);
        self.lower.as_ref().is_some_and(|l| l.lookup(name).is_ok())
    }

    /// Records `node` as the entry `name` of this directory in the caches.
    fn cache(&self, name: &str, node: &Arc<Node>) -> Result<(), Errno> {
        let mut st = self.dir.lock();
        st.children.retain(|_, w| w.strong_count() > 0);
        st.children.insert(clone_str(name)?, Arc::downgrade(node));
        if node.kind == FileType::Dir {
            st.dirs.insert(clone_str(name)?, node.clone());
        } else {
            st.dirs.remove(name);
        }
        Ok(())
    }

    /// Forgets the entry `name` in the caches; whiteouts it if the lower tree has it.
    fn forget(&self, name: &str) -> Result<(), Errno> {
        let hide = self.lower_has(name);
        let mut st = self.dir.lock();
        st.children.remove(name);
        st.dirs.remove(name);
        if hide {
            st.whiteouts.insert(clone_str(name)?);
        }
        Ok(())
    }

    /// The overlay node named `name` in this directory, if any.
    fn find(&self, name: &str) -> Result<Arc<Node>, Errno> {
        if self.kind != FileType::Dir {
            return Err(Errno::ENOTDIR);
        }
        let st = self.dir.lock();
        if let Some(n) = st.dirs.get(name).cloned() {
            return Ok(n);
        }
        if let Some(n) = st.children.get(name).and_then(Weak::upgrade) {
            return Ok(n);
        }
        let upper = match self.upper() {
            Some(u) => match u.lookup(name) {
                Ok(n) => Some(n),
                Err(Errno::ENOENT) => None,
                Err(e) => return Err(e),
            },
            None => None,
        };
        let hidden = st.opaque || st.whiteouts.contains(name);
        let lower = match (&self.lower, hidden) {
            (Some(l), false) => match l.lookup(name) {
                Ok(n) => Some(n),
                Err(Errno::ENOENT) => None,
                Err(e) => return Err(e),
            },
            _ => None,
        };
        // A lower entry only merges under an upper directory when both are directories.
        let lower = match (&upper, lower) {
            (Some(u), Some(l))
                if u.file_type() == FileType::Dir && l.file_type() == FileType::Dir =>
            {
                Some(l)
            }
            (Some(_), _) => None,
            (None, l) => l,
        };
        drop(st);
        let node = self.child(name, lower, upper)?;
        self.cache(name, &node)?;
        Ok(node)
    }

    /// Removes `name` (a directory if `dir`), leaving a whiteout over a lower entry.
    fn remove(&self, name: &str, dir: bool) -> Result<(), Errno> {
        let node = self.find(name)?;
        match (dir, node.kind == FileType::Dir) {
            (true, false) => return Err(Errno::ENOTDIR),
            (false, true) => return Err(Errno::EISDIR),
            _ => {}
        }
        if dir && !node.entries()?.is_empty() {
            return Err(Errno::ENOTEMPTY);
        }
        let pu = self.copy_up()?;
        if node.upper().is_some() {
            if dir {
                // Whiteouts only live in the overlay's state, so the upper dir is empty.
                pu.rmdir(name)?;
            } else {
                pu.unlink(name)?;
            }
        }
        self.forget(name)
    }

    /// The overlay directory behind `r`, if it is one of this overlay.
    fn same_fs<'a>(&self, r: &'a InodeRef) -> Result<&'a Node, Errno> {
        r.as_any()
            .downcast_ref::<Node>()
            .filter(|n| n.fs_id == self.fs_id)
            .ok_or(Errno::EXDEV)
    }

    /// Moves the cached node itself to `name` in `dir`.
    fn moved(node: &Arc<Node>, dir: &Node, name: &str) -> Result<(), Errno> {
        *node.name.lock() = clone_str(name)?;
        *node.parent.lock() = Some(dir.arc()?);
        dir.dir.lock().whiteouts.remove(name);
        dir.cache(name, node)
    }
}

impl Inode for Node {
    fn fs_id(&self) -> u64 {
        self.fs_id
    }

    fn ino(&self) -> u64 {
        match (&self.lower, self.upper()) {
            (Some(l), _) => l.ino(),
            (None, Some(u)) => self.upper_ino(u.ino()),
            (None, None) => 0,
        }
    }

    fn file_type(&self) -> FileType {
        self.kind
    }

    fn metadata(&self) -> Metadata {
        let mut m = self.current().metadata();
        m.ino = self.ino();
        m.dev = (0, self.fs_id as u32);
        m.mount_root = self.parent.lock().is_none();
        m
    }

    fn lookup(&self, name: &str) -> Result<InodeRef, Errno> {
        self.find(name).map(|n| n as InodeRef)
    }

    fn parent(&self) -> Result<InodeRef, Errno> {
        match self.parent.lock().clone() {
            Some(p) => Ok(p),
            None => Ok(self.arc()?),
        }
    }

    fn readlink(&self) -> Result<String, Errno> {
        self.current().readlink()
    }

    fn entries(&self) -> Result<Vec<(String, u64, FileType)>, Errno> {
        if self.kind != FileType::Dir {
            return Err(Errno::ENOTDIR);
        }
        let (hidden, opaque) = {
            let st = self.dir.lock();
            (st.whiteouts.clone(), st.opaque)
        };
        let mut merged: BTreeMap<String, (u64, FileType)> = BTreeMap::new();
        if let (Some(l), false) = (&self.lower, opaque) {
            for (name, ino, kind) in l.entries()? {
                if !hidden.contains(&name) {
                    merged.insert(name, (ino, kind));
                }
            }
        }
        if let Some(u) = self.upper() {
            for (name, ino, kind) in u.entries()? {
                let ino = match merged.get(&name) {
                    Some(&(lower_ino, FileType::Dir)) if kind == FileType::Dir => lower_ino,
                    _ => self.upper_ino(ino),
                };
                merged.insert(name, (ino, kind));
            }
        }
        let mut v = Vec::new();
        v.try_reserve(merged.len()).map_err(|_| Errno::ENOMEM)?;
        v.extend(merged.into_iter().map(|(n, (i, k))| (n, i, k)));
        Ok(v)
    }

    fn create(
        &self,
        name: &str,
        kind: FileType,
        mode: u32,
        target: &str,
    ) -> Result<InodeRef, Errno> {
        match self.find(name) {
            Ok(_) => return Err(Errno::EEXIST),
            Err(Errno::ENOENT) => {}
            Err(e) => return Err(e),
        }
        let pu = self.copy_up()?;
        let up = pu.create(name, kind, mode, target)?;
        let was_hidden = {
            let mut st = self.dir.lock();
            let w = st.whiteouts.remove(name);
            st.children.remove(name);
            st.dirs.remove(name);
            w
        };
        let node = self.child(name, None, Some(up))?;
        if kind == FileType::Dir && was_hidden {
            node.dir.lock().opaque = true;
        }
        self.cache(name, &node)?;
        Ok(node)
    }

    fn link(&self, name: &str, node: &InodeRef) -> Result<(), Errno> {
        let src = self.same_fs(node)?;
        match self.find(name) {
            Ok(_) => return Err(Errno::EEXIST),
            Err(Errno::ENOENT) => {}
            Err(e) => return Err(e),
        }
        let su = src.copy_up()?;
        self.copy_up()?.link(name, &su)?;
        let mut st = self.dir.lock();
        st.whiteouts.remove(name);
        st.children.remove(name);
        st.dirs.remove(name);
        Ok(())
    }

    fn unlink(&self, name: &str) -> Result<(), Errno> {
        self.remove(name, false)
    }

    fn rmdir(&self, name: &str) -> Result<(), Errno> {
        self.remove(name, true)
    }

    fn rename(&self, name: &str, new_dir: &InodeRef, new_name: &str) -> Result<(), Errno> {
        let dst = self.same_fs(new_dir)?;
        let node = self.find(name)?;
        if node.kind == FileType::Dir && node.lower.is_some() {
            return Err(Errno::EXDEV);
        }
        if node.kind == FileType::Dir && is_below(dst, &node) {
            return Err(Errno::EINVAL);
        }
        let old = match dst.find(new_name) {
            Ok(old) if Arc::ptr_eq(&old, &node) => return Ok(()),
            Ok(old) => match (node.kind == FileType::Dir, old.kind == FileType::Dir) {
                (false, true) => return Err(Errno::EISDIR),
                (true, false) => return Err(Errno::ENOTDIR),
                _ => Some(old),
            },
            Err(Errno::ENOENT) => None,
            Err(e) => return Err(e),
        };
        // Everything that can fail for want of space first, so a failure changes nothing.
        node.copy_up()?;
        let du = dst.copy_up()?;
        let su = self.copy_up()?;
        if let Some(old) = old {
            dst.remove(new_name, old.kind == FileType::Dir)?;
        }
        su.rename(name, &du, new_name)?;
        self.forget(name)?;
        Self::moved(&node, dst, new_name)
    }

    fn exchange(&self, name: &str, new_dir: &InodeRef, new_name: &str) -> Result<(), Errno> {
        let dst = self.same_fs(new_dir)?;
        let a = self.find(name)?;
        let b = dst.find(new_name)?;
        if Arc::ptr_eq(&a, &b) {
            return Ok(());
        }
        if [&a, &b]
            .iter()
            .any(|n| n.kind == FileType::Dir && n.lower.is_some())
        {
            return Err(Errno::EXDEV);
        }
        a.copy_up()?;
        b.copy_up()?;
        let du = dst.copy_up()?;
        self.copy_up()?.exchange(name, &du, new_name)?;
        Self::moved(&a, dst, new_name)?;
        Self::moved(&b, self, name)
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        self.current().read_at(offset, buf)
    }

    fn write_at(&self, offset: u64, buf: &[u8]) -> Result<usize, Errno> {
        if self.kind == FileType::Dir {
            return Err(Errno::EISDIR);
        }
        self.copy_up()?.write_at(offset, buf)
    }

    fn truncate(&self, size: u64) -> Result<(), Errno> {
        if self.kind == FileType::Dir {
            return Err(Errno::EISDIR);
        }
        self.copy_up()?.truncate(size)
    }

    fn allocate(&self, offset: u64, len: u64) -> Result<(), Errno> {
        if self.kind != FileType::Regular {
            return Err(Errno::ENODEV);
        }
        self.copy_up()?.allocate(offset, len)
    }

    fn punch_hole(&self, offset: u64, len: u64) -> Result<(), Errno> {
        if self.kind != FileType::Regular {
            return Err(Errno::ENODEV);
        }
        self.copy_up()?.punch_hole(offset, len)
    }

    fn set_mode(&self, mode: u32) -> Result<(), Errno> {
        self.copy_up()?.set_mode(mode)
    }

    fn set_times(&self, atime: Option<Timestamp>, mtime: Option<Timestamp>) -> Result<(), Errno> {
        self.copy_up()?.set_times(atime, mtime)
    }

    fn set_owner(&self, uid: u32, gid: u32) -> Result<(), Errno> {
        self.copy_up()?.set_owner(uid, gid)
    }

    fn statfs(&self) -> FsStats {
        let root_upper = {
            let mut n = self.arc().ok();
            while let Some(p) = n.as_ref().and_then(|n| n.parent.lock().clone()) {
                n = Some(p);
            }
            n.and_then(|n| n.upper())
        };
        let mut st = root_upper.map(|u| u.statfs()).unwrap_or_default();
        st.magic = OVERLAYFS_MAGIC;
        st
    }

    /// An unnamed file of the upper layer (the directory is copied up for it).
    fn tmpfile(&self, mode: u32, linkable: bool) -> Result<InodeRef, Errno> {
        if self.kind != FileType::Dir {
            return Err(Errno::ENOTDIR);
        }
        let up = self.copy_up()?.tmpfile(mode, linkable)?;
        let node: InodeRef = self.child("", None, Some(up))?;
        Ok(node)
    }

    fn has_shared_pages(&self) -> bool {
        self.kind == FileType::Regular
    }

    /// The upper file's page: a shared mapping of an image file copies it up first (it is
    /// only asked for by a mapping of a file opened for writing, or already copied up).
    fn shared_frame(&self, index: u64) -> Result<u64, Errno> {
        if self.kind != FileType::Regular {
            return Err(Errno::ENODEV);
        }
        self.copy_up()?.shared_frame(index)
    }

    fn existing_frame(&self, index: u64) -> Option<u64> {
        self.upper()?.existing_frame(index)
    }

    fn static_bytes(&self) -> Option<&'static [u8]> {
        match (self.upper(), &self.lower) {
            (None, Some(l)) => l.static_bytes(),
            _ => None,
        }
    }

    fn as_any(&self) -> &dyn core::any::Any {
        self
    }
}

/// Whether `dir` is `node` or below it.
fn is_below(dir: &Node, node: &Arc<Node>) -> bool {
    let mut cur = dir.arc().ok();
    while let Some(c) = cur {
        if Arc::ptr_eq(&c, node) {
            return true;
        }
        cur = c.parent.lock().clone();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::super::tmpfs::TmpFs;
    use super::*;

    fn now() -> Timestamp {
        Timestamp::from_secs(7)
    }

    /// A lower tree `/etc/motd` ("lower motd"), `/etc/keep`, `/bin/` (with `sh`), `/ln ->
    /// etc`, and the overlay over it with a fresh upper tmpfs.
    fn setup() -> (TmpFs, TmpFs, InodeRef) {
        let lower = TmpFs::new(1 << 20, now);
        let upper = TmpFs::new(64 * 1024, now);
        let l = lower.root();
        let etc = l.create("etc", FileType::Dir, 0o755, "").unwrap();
        etc.create("motd", FileType::Regular, 0o644, "")
            .unwrap()
            .write_at(0, b"lower motd")
            .unwrap();
        etc.create("keep", FileType::Regular, 0o600, "").unwrap();
        let bin = l.create("bin", FileType::Dir, 0o755, "").unwrap();
        bin.create("sh", FileType::Regular, 0o755, "").unwrap();
        l.create("ln", FileType::Symlink, 0, "etc").unwrap();
        let root = new(lower.root(), upper.root());
        (lower, upper, root)
    }

    fn read_all(n: &InodeRef) -> Vec<u8> {
        let mut buf = [0u8; 256];
        let k = n.read_at(0, &mut buf).unwrap();
        buf[..k].to_vec()
    }

    fn names(n: &InodeRef) -> Vec<String> {
        n.entries().unwrap().into_iter().map(|e| e.0).collect()
    }

    #[test]
    fn reads_come_from_the_lower_tree_until_a_write_copies_up() {
        let (lower, upper, root) = setup();
        let etc = root.lookup("etc").unwrap();
        let motd = etc.lookup("motd").unwrap();
        let ino = motd.ino();
        assert_eq!(read_all(&motd), b"lower motd");
        assert_eq!(upper.used_bytes(), 0);
        motd.write_at(0, b"UPPER").unwrap();
        assert_eq!(read_all(&motd), b"UPPER motd");
        // The same node is found again, with the same inode number; the lower file is unchanged.
        assert_eq!(read_all(&etc.lookup("motd").unwrap()), b"UPPER motd");
        assert_eq!(etc.lookup("motd").unwrap().ino(), ino);
        let lmotd = lower.root().lookup("etc").unwrap().lookup("motd").unwrap();
        assert_eq!(read_all(&lmotd), b"lower motd");
        assert!(upper.root().lookup("etc").unwrap().lookup("motd").is_ok());
        assert_eq!(motd.metadata().mode & 0o7777, 0o644);
        assert_eq!(root.lookup("ln").unwrap().readlink().unwrap(), "etc");
        assert_eq!(names(&etc), ["keep", "motd"]);
    }

    #[test]
    fn unlink_leaves_a_whiteout_and_create_over_it_works() {
        let (lower, _upper, root) = setup();
        let etc = root.lookup("etc").unwrap();
        etc.unlink("motd").unwrap();
        assert_eq!(etc.lookup("motd").err(), Some(Errno::ENOENT));
        assert_eq!(names(&etc), ["keep"]);
        assert!(lower.root().lookup("etc").unwrap().lookup("motd").is_ok());
        assert_eq!(etc.unlink("motd").err(), Some(Errno::ENOENT));
        let again = etc.create("motd", FileType::Regular, 0o600, "").unwrap();
        assert_eq!(read_all(&again), b"");
        assert_eq!(names(&etc), ["keep", "motd"]);
        assert_eq!(root.rmdir("bin").err(), Some(Errno::ENOTEMPTY));
        root.lookup("bin").unwrap().unlink("sh").unwrap();
        root.rmdir("bin").unwrap();
        assert_eq!(root.lookup("bin").err(), Some(Errno::ENOENT));
        // A directory made where a lower one was removed is opaque: empty.
        let bin = root.create("bin", FileType::Dir, 0o755, "").unwrap();
        assert!(names(&bin).is_empty());
        assert_eq!(bin.lookup("sh").err(), Some(Errno::ENOENT));
        assert_eq!(root.unlink("etc").err(), Some(Errno::EISDIR));
        assert_eq!(root.rmdir("ln").err(), Some(Errno::ENOTDIR));
    }

    #[test]
    fn rename_and_link_copy_up_and_whiteout_the_source() {
        let (_lower, _upper, root) = setup();
        let etc = root.lookup("etc").unwrap();
        etc.rename("motd", &root, "moved").unwrap();
        assert_eq!(etc.lookup("motd").err(), Some(Errno::ENOENT));
        assert_eq!(read_all(&root.lookup("moved").unwrap()), b"lower motd");
        etc.rename("keep", &root, "moved").unwrap();
        assert_eq!(read_all(&root.lookup("moved").unwrap()), b"");
        assert_eq!(names(&etc), Vec::<String>::new());
        // Lower directories cannot move (overlayfs without redirect_dir).
        assert_eq!(root.rename("bin", &root, "bin2").err(), Some(Errno::EXDEV));
        let d = root.create("new", FileType::Dir, 0o755, "").unwrap();
        root.rename("new", &etc, "sub").unwrap();
        assert_eq!(etc.lookup("sub").unwrap().ino(), d.ino());
        let sh = root.lookup("bin").unwrap().lookup("sh").unwrap();
        root.link("sh2", &sh).unwrap();
        assert_eq!(root.lookup("sh2").unwrap().metadata().nlink, 2);
        assert_eq!(
            root.create("sh2", FileType::Regular, 0, "").err(),
            Some(Errno::EEXIST)
        );
    }

    #[test]
    fn kinds_are_checked_first_and_moved_nodes_keep_their_identity() {
        let (_lower, upper, root) = setup();
        let etc = root.lookup("etc").unwrap();
        let motd = etc.lookup("motd").unwrap();
        let (ino, meta) = (motd.ino(), motd.metadata());
        // A file over a non-empty directory: EISDIR before ENOTEMPTY, as Linux.
        assert_eq!(etc.rename("motd", &root, "bin").err(), Some(Errno::EISDIR));
        motd.write_at(0, b"X").unwrap();
        let m = motd.metadata();
        assert_eq!((m.uid, m.gid, m.mode), (meta.uid, meta.gid, meta.mode));
        assert_eq!(m.ino, ino);
        // Dropped from the cache and found again: the same number, in stat and listings.
        drop(motd);
        let again = etc.lookup("motd").unwrap();
        assert_eq!(again.ino(), ino);
        assert!(etc
            .entries()
            .unwrap()
            .iter()
            .any(|e| e.0 == "motd" && e.1 == ino));
        // A new directory moved: `..` of the held node follows it.
        let d = root.create("d", FileType::Dir, 0o755, "").unwrap();
        root.rename("d", &etc, "moved").unwrap();
        assert_eq!(d.parent().unwrap().ino(), etc.ino());
        // Exchange a file and a directory.
        etc.exchange("motd", &etc, "moved").unwrap();
        assert_eq!(etc.lookup("moved").unwrap().ino(), ino);
        assert_eq!(etc.lookup("motd").unwrap().file_type(), FileType::Dir);
        assert_eq!(etc.exchange("keep", &root, "bin").err(), Some(Errno::EXDEV));
        assert!(upper.used_bytes() > 0);
    }

    #[test]
    fn a_full_upper_layer_gives_enospc_and_leaves_the_lower_file() {
        let lower = TmpFs::new(1 << 20, now);
        lower
            .root()
            .create("big", FileType::Regular, 0o644, "")
            .unwrap()
            .write_at(0, &[5u8; 8192])
            .unwrap();
        let upper = TmpFs::new(4096, now);
        let root = new(lower.root(), upper.root());
        let big = root.lookup("big").unwrap();
        assert_eq!(big.write_at(0, b"x").err(), Some(Errno::ENOSPC));
        assert_eq!(read_all(&big)[0], 5);
        assert_eq!(upper.root().lookup("big").err(), Some(Errno::ENOENT));
        assert_eq!(upper.used_bytes(), 0);
    }
}

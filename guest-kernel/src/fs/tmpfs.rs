//! tmpfs: a file system held in memory, with a size limit (issue 9).
//!
//! File data lives in whole pages of the page allocator ([`super::pages`]), each charged
//! to the instance's budget before it is allocated, so a full tmpfs answers ENOSPC and
//! never runs the kernel out of memory. Nodes (names, directory maps) are small kernel-heap
//! objects: each creation is checked against the heap budget ([`crate::mm::kalloc`]) and
//! against the instance's inode limit. Inode numbers count up from 1 (the root) and are
//! never reused while the instance lives; timestamps come from the clock given at creation.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use spin::Mutex;

use super::inode::{FileType, FsStats, Inode, InodeRef, NAME_MAX, ST_NODEV, ST_NOSUID};
use super::pages::{Budget, FileData, PAGE};
use super::stat::{Metadata, Timestamp, S_IFDIR, S_IFIFO, S_IFLNK, S_IFREG};
use crate::errno::Errno;

mod dir_ops;

/// `TMPFS_MAGIC`.
pub const TMPFS_MAGIC: u64 = 0x0102_1994;

/// Heap bytes a node costs beyond its name, charged to the kernel-heap budget at creation.
const NODE_COST: usize = 256;

/// Device numbers handed to tmpfs instances count up from this minor (major 0, as Linux's
/// anonymous devices).
static NEXT_FS_ID: AtomicU64 = AtomicU64::new(0x100);

/// State shared by every node of one instance.
struct Shared {
    id: u64,
    limit_pages: u64,
    used_pages: AtomicU64,
    max_inodes: u64,
    inodes: AtomicU64,
    next_ino: AtomicU64,
    now: fn() -> Timestamp,
}

impl Budget for Shared {
    fn charge_page(&self) -> Result<(), Errno> {
        self.used_pages
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(1).filter(|&n| n <= self.limit_pages)
            })
            .map(|_| ())
            .map_err(|_| Errno::ENOSPC)
    }

    fn release_page(&self) {
        self.used_pages.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Shared {
    /// Takes an inode from the limit and checks the heap can hold a node named `name`.
    fn charge_inode(&self, name: &str) -> Result<(), Errno> {
        crate::mm::kalloc::charge(NODE_COST + name.len()).map_err(|_| Errno::ENOMEM)?;
        self.inodes
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                n.checked_add(1).filter(|&n| n <= self.max_inodes)
            })
            .map(|_| ())
            .map_err(|_| Errno::ENOSPC)
    }
}

enum Body {
    File(FileData),
    Dir {
        entries: BTreeMap<String, Arc<Node>>,
        parent: Weak<Node>,
    },
    Symlink(String),
    Fifo,
}

struct State {
    mode: u32,
    uid: u32,
    gid: u32,
    nlink: u32,
    atime: Timestamp,
    mtime: Timestamp,
    ctime: Timestamp,
    body: Body,
}

/// A tmpfs node.
pub struct Node {
    shared: Arc<Shared>,
    /// This node's own `Arc`, for handing out references from `&self`.
    me: Weak<Node>,
    ino: u64,
    kind: FileType,
    state: Mutex<State>,
    /// An `O_TMPFILE` file that `link` may still name although it has no links.
    linkable: AtomicBool,
}

impl Drop for Node {
    fn drop(&mut self) {
        let shared = self.shared.clone();
        if let Body::File(data) = &mut self.state.get_mut().body {
            data.clear(&*shared);
        }
        self.shared.inodes.fetch_sub(1, Ordering::AcqRel);
    }
}

/// One tmpfs instance.
pub struct TmpFs {
    root: Arc<Node>,
}

impl TmpFs {
    /// An empty tmpfs holding at most `limit_bytes` of file data (whole pages) and
    /// `limit_bytes / 4096` nodes, at least 1024; `now` gives the time.
    pub fn new(limit_bytes: u64, now: fn() -> Timestamp) -> Self {
        let limit_pages = limit_bytes / PAGE as u64;
        let shared = Arc::new(Shared {
            id: NEXT_FS_ID.fetch_add(1, Ordering::Relaxed),
            limit_pages,
            used_pages: AtomicU64::new(0),
            max_inodes: limit_pages.max(1024),
            inodes: AtomicU64::new(1),
            next_ino: AtomicU64::new(2),
            now,
        });
        let t = now();
        let root = Arc::new_cyclic(|me| Node {
            me: me.clone(),
            ino: 1,
            kind: FileType::Dir,
            state: Mutex::new(State {
                mode: 0o1777,
                uid: 0,
                gid: 0,
                nlink: 2,
                atime: t,
                mtime: t,
                ctime: t,
                body: Body::Dir {
                    entries: BTreeMap::new(),
                    parent: me.clone(),
                },
            }),
            shared,
            linkable: AtomicBool::new(false),
        });
        TmpFs { root }
    }

    /// The root directory.
    pub fn root(&self) -> InodeRef {
        self.root.clone()
    }

    /// Bytes of file data in use (whole pages).
    pub fn used_bytes(&self) -> u64 {
        self.root.shared.used_pages.load(Ordering::Acquire) * PAGE as u64
    }
}

fn check_name(name: &str) -> Result<(), Errno> {
    if name.len() > NAME_MAX {
        return Err(Errno::ENAMETOOLONG);
    }
    if name.is_empty() || name == "." || name == ".." || name.contains('/') {
        return Err(Errno::EINVAL);
    }
    Ok(())
}

fn try_string(s: &str) -> Result<String, Errno> {
    let mut o = String::new();
    o.try_reserve(s.len()).map_err(|_| Errno::ENOMEM)?;
    o.push_str(s);
    Ok(o)
}

impl Node {
    /// The node behind `r`, if it is a node of this instance.
    fn same_fs<'a>(&self, r: &'a InodeRef) -> Result<&'a Node, Errno> {
        match r.as_any().downcast_ref::<Node>() {
            Some(n) if Arc::ptr_eq(&n.shared, &self.shared) => Ok(n),
            _ => Err(Errno::EXDEV),
        }
    }

    fn now(&self) -> Timestamp {
        (self.shared.now)()
    }

    /// A change of the contents: mtime and ctime become now.
    fn touch(&self, st: &mut State) {
        let t = self.now();
        st.mtime = t;
        st.ctime = t;
    }

    /// A change of the metadata only.
    fn changed(&self, st: &mut State) {
        st.ctime = self.now();
    }

    fn not_file(&self) -> Errno {
        if self.kind == FileType::Dir {
            Errno::EISDIR
        } else {
            Errno::EINVAL
        }
    }
}

impl Inode for Node {
    fn fs_id(&self) -> u64 {
        self.shared.id
    }

    fn ino(&self) -> u64 {
        self.ino
    }

    fn file_type(&self) -> FileType {
        self.kind
    }

    fn metadata(&self) -> Metadata {
        let st = self.state.lock();
        let (type_bits, size) = match &st.body {
            Body::File(d) => (S_IFREG, d.len()),
            Body::Dir { entries, .. } => (S_IFDIR, (entries.len() as u64 + 2) * 20),
            Body::Symlink(t) => (S_IFLNK, t.len() as u64),
            Body::Fifo => (S_IFIFO, 0),
        };
        Metadata {
            dev: (0, self.shared.id as u32),
            ino: self.ino,
            mode: type_bits | (st.mode & 0o7777),
            nlink: st.nlink,
            uid: st.uid,
            gid: st.gid,
            rdev: (0, 0),
            size,
            atime: st.atime,
            mtime: st.mtime,
            ctime: st.ctime,
            mount_root: self.ino == 1,
        }
    }

    fn lookup(&self, name: &str) -> Result<InodeRef, Errno> {
        match &self.state.lock().body {
            Body::Dir { entries, .. } => entries
                .get(name)
                .map(|n| n.clone() as InodeRef)
                .ok_or(Errno::ENOENT),
            _ => Err(Errno::ENOTDIR),
        }
    }

    fn parent(&self) -> Result<InodeRef, Errno> {
        match &self.state.lock().body {
            // A removed directory's parent is gone; Linux walks `..` of it to ENOENT.
            Body::Dir { parent, .. } => {
                parent.upgrade().map(|p| p as InodeRef).ok_or(Errno::ENOENT)
            }
            _ => Err(Errno::ENOTDIR),
        }
    }

    fn readlink(&self) -> Result<String, Errno> {
        match &self.state.lock().body {
            Body::Symlink(t) => try_string(t),
            _ => Err(Errno::EINVAL),
        }
    }

    fn entries(&self) -> Result<Vec<(String, u64, FileType)>, Errno> {
        match &self.state.lock().body {
            Body::Dir { entries, .. } => {
                let mut v = Vec::new();
                crate::mm::kalloc::try_reserve(&mut v, entries.len())?;
                for (name, n) in entries {
                    v.push((try_string(name)?, n.ino, n.kind));
                }
                Ok(v)
            }
            _ => Err(Errno::ENOTDIR),
        }
    }

    fn create(
        &self,
        name: &str,
        kind: FileType,
        mode: u32,
        target: &str,
    ) -> Result<InodeRef, Errno> {
        self.create_entry(name, kind, mode, target)
    }

    fn link(&self, name: &str, node: &InodeRef) -> Result<(), Errno> {
        self.link_entry(name, node)
    }

    fn unlink(&self, name: &str) -> Result<(), Errno> {
        self.unlink_entry(name)
    }

    fn rmdir(&self, name: &str) -> Result<(), Errno> {
        self.rmdir_entry(name)
    }

    fn rename(&self, name: &str, new_dir: &InodeRef, new_name: &str) -> Result<(), Errno> {
        self.rename_entry(name, new_dir, new_name)
    }

    fn exchange(&self, name: &str, new_dir: &InodeRef, new_name: &str) -> Result<(), Errno> {
        self.exchange_entry(name, new_dir, new_name)
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        match &self.state.lock().body {
            Body::File(d) => Ok(d.read_at(offset, buf)),
            _ => Err(self.not_file()),
        }
    }

    fn write_at(&self, offset: u64, buf: &[u8]) -> Result<usize, Errno> {
        let mut st = self.state.lock();
        let Body::File(d) = &mut st.body else {
            return Err(self.not_file());
        };
        d.write_at(offset, buf, &*self.shared)?;
        self.touch(&mut st);
        Ok(buf.len())
    }

    fn allocate(&self, offset: u64, len: u64) -> Result<(), Errno> {
        let end = offset.checked_add(len).ok_or(Errno::EFBIG)?;
        let mut st = self.state.lock();
        let Body::File(d) = &mut st.body else {
            return Err(self.not_file());
        };
        d.allocate(offset, end, &*self.shared)?;
        self.touch(&mut st);
        Ok(())
    }

    fn punch_hole(&self, offset: u64, len: u64) -> Result<(), Errno> {
        let end = offset.saturating_add(len);
        let mut st = self.state.lock();
        let Body::File(d) = &mut st.body else {
            return Err(self.not_file());
        };
        let mapped = d.punch_hole(offset, end, &*self.shared);
        self.touch(&mut st);
        drop(st);
        super::pages::unmap_dropped(&mapped);
        Ok(())
    }

    fn truncate(&self, size: u64) -> Result<(), Errno> {
        let mut st = self.state.lock();
        let Body::File(d) = &mut st.body else {
            return Err(self.not_file());
        };
        let mapped = d.truncate(size, &*self.shared)?;
        self.touch(&mut st);
        drop(st);
        super::pages::unmap_dropped(&mapped);
        Ok(())
    }

    fn tmpfile(&self, mode: u32, linkable: bool) -> Result<InodeRef, Errno> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        if self.kind != FileType::Dir {
            return Err(Errno::ENOTDIR);
        }
        // Made under a name no one can pick and unnamed at once (the kernel runs one
        // call at a time, so no one sees the name).
        let name = alloc::format!(".astra-tmpfile-{}", NEXT.fetch_add(1, Ordering::Relaxed));
        let node = self.create(&name, FileType::Regular, mode, "")?;
        self.unlink(&name)?;
        if let Some(n) = node.as_any().downcast_ref::<Node>() {
            n.linkable.store(linkable, Ordering::Release);
        }
        Ok(node)
    }

    fn has_shared_pages(&self) -> bool {
        self.kind == FileType::Regular
    }

    #[cfg(not(test))]
    fn shared_frame(&self, index: u64) -> Result<u64, Errno> {
        let mut st = self.state.lock();
        let Body::File(d) = &mut st.body else {
            return Err(Errno::ENODEV);
        };
        let index = usize::try_from(index).map_err(|_| Errno::ENXIO)?;
        d.share_frame(index, &*self.shared)
    }

    #[cfg(not(test))]
    fn existing_frame(&self, index: u64) -> Option<u64> {
        match &self.state.lock().body {
            Body::File(d) => d.existing_frame(usize::try_from(index).ok()?),
            _ => None,
        }
    }

    fn set_mode(&self, mode: u32) -> Result<(), Errno> {
        let mut st = self.state.lock();
        st.mode = mode & 0o7777;
        self.changed(&mut st);
        Ok(())
    }

    fn set_times(&self, atime: Option<Timestamp>, mtime: Option<Timestamp>) -> Result<(), Errno> {
        let mut st = self.state.lock();
        if let Some(t) = atime {
            st.atime = t;
        }
        if let Some(t) = mtime {
            st.mtime = t;
        }
        self.changed(&mut st);
        Ok(())
    }

    fn set_owner(&self, uid: u32, gid: u32) -> Result<(), Errno> {
        let mut st = self.state.lock();
        st.uid = uid;
        st.gid = gid;
        self.changed(&mut st);
        Ok(())
    }

    fn statfs(&self) -> FsStats {
        let s = &self.shared;
        let used = s.used_pages.load(Ordering::Acquire);
        let inodes = s.inodes.load(Ordering::Acquire);
        FsStats {
            magic: TMPFS_MAGIC,
            bsize: PAGE as u64,
            blocks: s.limit_pages,
            bfree: s.limit_pages.saturating_sub(used),
            files: s.max_inodes,
            ffree: s.max_inodes.saturating_sub(inodes),
            flags: ST_NOSUID | ST_NODEV,
        }
    }

    fn as_any(&self) -> &dyn core::any::Any {
        self
    }
}

/// Whether directory `dir` is `node` or below it.
fn is_ancestor(node: &Arc<Node>, dir: &Arc<Node>) -> bool {
    let mut d = dir.clone();
    loop {
        if Arc::ptr_eq(&d, node) {
            return true;
        }
        let p = match &d.state.lock().body {
            Body::Dir { parent, .. } => parent.upgrade(),
            _ => None,
        };
        match p {
            Some(p) if !Arc::ptr_eq(&p, &d) => d = p,
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        Timestamp::from_secs(1_700_000_000)
    }

    #[test]
    fn files_read_write_truncate_and_count_pages() {
        let fs = TmpFs::new(64 * 1024, now);
        let root = fs.root();
        let f = root.create("f", FileType::Regular, 0o644, "").unwrap();
        assert_eq!(f.write_at(0, b"hello").unwrap(), 5);
        assert_eq!(f.write_at(8000, b"x").unwrap(), 1);
        assert_eq!(fs.used_bytes(), 8192);
        let mut buf = [0xffu8; 10];
        assert_eq!(f.read_at(3, &mut buf).unwrap(), 10);
        assert_eq!(&buf, b"lo\0\0\0\0\0\0\0\0");
        assert_eq!(f.read_at(8001, &mut buf).unwrap(), 0);
        f.truncate(2).unwrap();
        assert_eq!(f.metadata().size, 2);
        assert_eq!(fs.used_bytes(), 4096);
        assert_eq!(f.metadata().mode, S_IFREG | 0o644);
        assert_eq!(f.metadata().mtime, now());
        root.unlink("f").unwrap();
        // The open file keeps its data until the last reference goes.
        assert_eq!(fs.used_bytes(), 4096);
        drop(f);
        assert_eq!(fs.used_bytes(), 0);
    }

    #[test]
    fn a_full_tmpfs_gives_enospc_and_frees_on_unlink() {
        let fs = TmpFs::new(3 * 4096, now);
        let root = fs.root();
        let f = root.create("f", FileType::Regular, 0o644, "").unwrap();
        assert_eq!(f.write_at(0, &[1u8; 3 * 4096]).unwrap(), 3 * 4096);
        assert_eq!(f.write_at(3 * 4096, b"!").err(), Some(Errno::ENOSPC));
        let g = root.create("g", FileType::Regular, 0o644, "").unwrap();
        assert_eq!(g.write_at(0, b"x").err(), Some(Errno::ENOSPC));
        // Growing by truncation makes a hole, which takes no pages.
        g.truncate(1).unwrap();
        assert_eq!(f.metadata().size, 3 * 4096);
        root.unlink("f").unwrap();
        drop(f);
        assert_eq!(g.write_at(0, b"x").unwrap(), 1);
        // Sizes that cannot be represented fail without allocating.
        assert_eq!(g.write_at(u64::MAX, b"x").err(), Some(Errno::EFBIG));
        assert_eq!(g.truncate(u64::MAX).err(), Some(Errno::EFBIG));
    }

    #[test]
    fn directories_link_counts_and_errors() {
        let fs = TmpFs::new(1 << 20, now);
        let root = fs.root();
        let d = root.create("d", FileType::Dir, 0o755, "").unwrap();
        assert_eq!(root.metadata().nlink, 3);
        assert_eq!(
            root.create("d", FileType::Regular, 0o644, "").err(),
            Some(Errno::EEXIST)
        );
        let f = d.create("f", FileType::Regular, 0o644, "").unwrap();
        assert_eq!(root.rmdir("d").err(), Some(Errno::ENOTEMPTY));
        assert_eq!(root.unlink("d").err(), Some(Errno::EISDIR));
        assert_eq!(d.rmdir("f").err(), Some(Errno::ENOTDIR));
        root.link("hard", &f).unwrap();
        assert_eq!(f.metadata().nlink, 2);
        assert_eq!(root.link("dlink", &d).err(), Some(Errno::EPERM));
        d.unlink("f").unwrap();
        assert_eq!(f.metadata().nlink, 1);
        root.rmdir("d").unwrap();
        assert_eq!(root.metadata().nlink, 2);
        assert_eq!(d.parent().err(), Some(Errno::ENOENT));
        assert_eq!(
            d.create("x", FileType::Regular, 0o644, "").err(),
            Some(Errno::ENOENT)
        );
        let names: Vec<String> = root.entries().unwrap().into_iter().map(|e| e.0).collect();
        assert_eq!(names, ["hard"]);
        let other = TmpFs::new(1 << 20, now);
        assert_eq!(other.root().link("x", &f).err(), Some(Errno::EXDEV));
        assert_eq!(
            root.create("a/b", FileType::Regular, 0, "").err(),
            Some(Errno::EINVAL)
        );
        let long = "n".repeat(256);
        assert_eq!(
            root.create(&long, FileType::Regular, 0, "").err(),
            Some(Errno::ENAMETOOLONG)
        );
    }

    #[test]
    fn rename_moves_replaces_and_refuses_cycles() {
        let fs = TmpFs::new(1 << 20, now);
        let root = fs.root();
        let a = root.create("a", FileType::Dir, 0o755, "").unwrap();
        let b = a.create("b", FileType::Dir, 0o755, "").unwrap();
        let f = root.create("f", FileType::Regular, 0o644, "").unwrap();
        let g = root.create("g", FileType::Regular, 0o644, "").unwrap();
        root.rename("f", &b, "moved").unwrap();
        assert_eq!(b.lookup("moved").unwrap().ino(), f.ino());
        assert_eq!(root.lookup("f").err(), Some(Errno::ENOENT));
        b.rename("moved", &root, "g").unwrap();
        assert_eq!(root.lookup("g").unwrap().ino(), f.ino());
        assert_eq!(g.metadata().nlink, 0);
        assert_eq!(root.rename("a", &b, "x").err(), Some(Errno::EINVAL));
        root.create("e", FileType::Dir, 0o755, "").unwrap();
        assert_eq!(root.rename("g", &root, "e").err(), Some(Errno::EISDIR));
        assert_eq!(root.rename("e", &root, "g").err(), Some(Errno::ENOTDIR));
        a.rename("b", &root, "e").unwrap();
        assert!(
            Arc::ptr_eq(&(b.parent().unwrap()), &root) || b.parent().unwrap().ino() == root.ino()
        );
        assert_eq!(a.metadata().nlink, 2);
        let s = root.create("s", FileType::Symlink, 0, "target").unwrap();
        assert_eq!(s.readlink().unwrap(), "target");
        assert_eq!(s.metadata().mode, S_IFLNK | 0o777);
        assert_eq!(f.readlink().err(), Some(Errno::EINVAL));
    }
}

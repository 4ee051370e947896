//! tmpfs: a file system held in kernel memory, with a byte limit (issue 9).
//!
//! File data is charged to the instance's budget in whole pages before it is allocated, and
//! allocated fallibly (`try_reserve`), so a full tmpfs answers ENOSPC and never runs the
//! kernel heap out. Inode numbers count up from 1 (the root) and are never reused while the
//! instance lives; timestamps come from the clock given at creation.
#![allow(dead_code)] // mounted on /tmp and /run by the next step

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

use spin::Mutex;

use super::inode::{FileType, Inode, InodeRef, NAME_MAX};
use super::stat::{Metadata, S_IFDIR, S_IFIFO, S_IFLNK, S_IFREG};
use crate::errno::Errno;

/// Bytes charged per page of file data.
const PAGE: u64 = 4096;

/// Device numbers handed to tmpfs instances count up from this minor (major 0, as Linux's
/// anonymous devices).
static NEXT_FS_ID: AtomicU64 = AtomicU64::new(0x100);

/// State shared by every node of one instance.
struct Shared {
    id: u64,
    limit_bytes: u64,
    used_bytes: AtomicU64,
    next_ino: AtomicU64,
    now: fn() -> i64,
}

impl Shared {
    /// Charges `bytes` to the budget; ENOSPC if it would exceed the limit.
    fn charge(&self, bytes: u64) -> Result<(), Errno> {
        self.used_bytes
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(bytes).filter(|&n| n <= self.limit_bytes)
            })
            .map(|_| ())
            .map_err(|_| Errno::ENOSPC)
    }

    fn release(&self, bytes: u64) {
        self.used_bytes.fetch_sub(bytes, Ordering::AcqRel);
    }
}

/// Pages needed for `len` bytes, in bytes.
fn pages_bytes(len: u64) -> u64 {
    len.div_ceil(PAGE) * PAGE
}

enum Body {
    File(Vec<u8>),
    Dir {
        entries: BTreeMap<String, Arc<Node>>,
        parent: Weak<Node>,
    },
    Symlink(String),
    Fifo,
}

struct State {
    mode: u32,
    nlink: u32,
    mtime: i64,
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
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Body::File(data) = &self.state.get_mut().body {
            self.shared.release(pages_bytes(data.len() as u64));
        }
    }
}

/// One tmpfs instance.
pub struct TmpFs {
    root: Arc<Node>,
}

impl TmpFs {
    /// An empty tmpfs holding at most `limit_bytes` of file data; `now` gives the time in
    /// seconds since the epoch.
    pub fn new(limit_bytes: u64, now: fn() -> i64) -> Self {
        let shared = Arc::new(Shared {
            id: NEXT_FS_ID.fetch_add(1, Ordering::Relaxed),
            limit_bytes,
            used_bytes: AtomicU64::new(0),
            next_ino: AtomicU64::new(2),
            now,
        });
        let root = Arc::new_cyclic(|me| Node {
            me: me.clone(),
            ino: 1,
            kind: FileType::Dir,
            state: Mutex::new(State {
                mode: 0o1777,
                nlink: 2,
                mtime: now(),
                body: Body::Dir {
                    entries: BTreeMap::new(),
                    parent: me.clone(),
                },
            }),
            shared,
        });
        TmpFs { root }
    }

    /// The root directory.
    pub fn root(&self) -> InodeRef {
        self.root.clone()
    }

    /// Bytes of file data in use (whole pages).
    pub fn used_bytes(&self) -> u64 {
        self.root.shared.used_bytes.load(Ordering::Acquire)
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

impl Node {
    /// The node behind `r`, if it is a node of this instance.
    fn same_fs<'a>(&self, r: &'a InodeRef) -> Result<&'a Node, Errno> {
        match r.as_any().downcast_ref::<Node>() {
            Some(n) if Arc::ptr_eq(&n.shared, &self.shared) => Ok(n),
            _ => Err(Errno::EXDEV),
        }
    }

    fn touch(&self, st: &mut State) {
        st.mtime = (self.shared.now)();
    }

    /// Resizes a file body to `new_len`, charging or releasing whole pages.
    fn resize(&self, data: &mut Vec<u8>, new_len: u64) -> Result<(), Errno> {
        let old = pages_bytes(data.len() as u64);
        let new = pages_bytes(new_len);
        let new_len = usize::try_from(new_len).map_err(|_| Errno::EFBIG)?;
        if new > old {
            self.shared.charge(new - old)?;
            if data.try_reserve(new_len - data.len()).is_err() {
                self.shared.release(new - old);
                return Err(Errno::ENOSPC);
            }
        }
        data.resize(new_len, 0);
        if new < old {
            self.shared.release(old - new);
            data.shrink_to(new as usize);
        }
        Ok(())
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
            Body::File(d) => (S_IFREG, d.len() as u64),
            Body::Dir { entries, .. } => (S_IFDIR, (entries.len() as u64 + 2) * 20),
            Body::Symlink(t) => (S_IFLNK, t.len() as u64),
            Body::Fifo => (S_IFIFO, 0),
        };
        Metadata {
            dev: (0, self.shared.id as u32),
            ino: self.ino,
            mode: type_bits | (st.mode & 0o7777),
            nlink: st.nlink,
            uid: 0,
            gid: 0,
            rdev: (0, 0),
            size,
            mtime: st.mtime,
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
            Body::Symlink(t) => {
                let mut s = String::new();
                s.try_reserve(t.len()).map_err(|_| Errno::ENOMEM)?;
                s.push_str(t);
                Ok(s)
            }
            _ => Err(Errno::EINVAL),
        }
    }

    fn entries(&self) -> Result<Vec<(String, u64, FileType)>, Errno> {
        match &self.state.lock().body {
            Body::Dir { entries, .. } => {
                let mut v = Vec::new();
                v.try_reserve(entries.len()).map_err(|_| Errno::ENOMEM)?;
                for (name, n) in entries {
                    v.push((name.clone(), n.ino, n.kind));
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
        check_name(name)?;
        let mut st = self.state.lock();
        if st.nlink == 0 && self.kind == FileType::Dir {
            // Linux refuses new entries in a removed directory.
            return Err(Errno::ENOENT);
        }
        let Body::Dir { entries, .. } = &mut st.body else {
            return Err(Errno::ENOTDIR);
        };
        if entries.contains_key(name) {
            return Err(Errno::EEXIST);
        }
        let now = (self.shared.now)();
        let ino = self.shared.next_ino.fetch_add(1, Ordering::Relaxed);
        let me = self.as_weak()?;
        let (body, nlink, mode) = match kind {
            FileType::Regular => (Body::File(Vec::new()), 1, mode & 0o7777),
            FileType::Dir => (
                Body::Dir {
                    entries: BTreeMap::new(),
                    parent: me,
                },
                2,
                mode & 0o7777,
            ),
            FileType::Symlink => {
                let mut t = String::new();
                t.try_reserve(target.len()).map_err(|_| Errno::ENOSPC)?;
                t.push_str(target);
                (Body::Symlink(t), 1, 0o777)
            }
            FileType::Fifo => (Body::Fifo, 1, mode & 0o7777),
        };
        let node = Arc::new_cyclic(|me| Node {
            me: me.clone(),
            shared: self.shared.clone(),
            ino,
            kind,
            state: Mutex::new(State {
                mode,
                nlink,
                mtime: now,
                body,
            }),
        });
        entries.insert(String::from(name), node.clone());
        if kind == FileType::Dir {
            st.nlink += 1;
        }
        st.mtime = now;
        Ok(node)
    }

    fn link(&self, name: &str, node: &InodeRef) -> Result<(), Errno> {
        check_name(name)?;
        let target = self.same_fs(node)?;
        if target.kind == FileType::Dir {
            return Err(Errno::EPERM);
        }
        let target = self.arc_of(target)?;
        let mut st = self.state.lock();
        if st.nlink == 0 && self.kind == FileType::Dir {
            // Linux refuses new entries in a removed directory.
            return Err(Errno::ENOENT);
        }
        let Body::Dir { entries, .. } = &mut st.body else {
            return Err(Errno::ENOTDIR);
        };
        if entries.contains_key(name) {
            return Err(Errno::EEXIST);
        }
        entries.insert(String::from(name), target.clone());
        target.state.lock().nlink += 1;
        self.touch(&mut st);
        Ok(())
    }

    fn unlink(&self, name: &str) -> Result<(), Errno> {
        let mut st = self.state.lock();
        let Body::Dir { entries, .. } = &mut st.body else {
            return Err(Errno::ENOTDIR);
        };
        let node = entries.get(name).ok_or(Errno::ENOENT)?;
        if node.kind == FileType::Dir {
            return Err(Errno::EISDIR);
        }
        if let Some(node) = entries.remove(name) {
            node.state.lock().nlink -= 1;
        }
        self.touch(&mut st);
        Ok(())
    }

    fn rmdir(&self, name: &str) -> Result<(), Errno> {
        let mut st = self.state.lock();
        let Body::Dir { entries, .. } = &mut st.body else {
            return Err(Errno::ENOTDIR);
        };
        let node = entries.get(name).ok_or(Errno::ENOENT)?;
        {
            let mut child = node.state.lock();
            match &mut child.body {
                Body::Dir { entries, parent } if entries.is_empty() => *parent = Weak::new(),
                Body::Dir { .. } => return Err(Errno::ENOTEMPTY),
                _ => return Err(Errno::ENOTDIR),
            }
            child.nlink = 0;
        }
        entries.remove(name);
        st.nlink -= 1;
        self.touch(&mut st);
        Ok(())
    }

    fn rename(&self, name: &str, new_dir: &InodeRef, new_name: &str) -> Result<(), Errno> {
        check_name(new_name)?;
        let dst = self.same_fs(new_dir)?;
        let dst = self.arc_of(dst)?;
        let src_arc = self.arc_self()?;
        let node = self.lookup(name)?;
        let node = self.arc_of(self.same_fs(&node)?)?;
        if node.kind == FileType::Dir {
            // A directory may not move below itself.
            let mut d: Arc<Node> = dst.clone();
            loop {
                if Arc::ptr_eq(&d, &node) {
                    return Err(Errno::EINVAL);
                }
                let p = match &d.state.lock().body {
                    Body::Dir { parent, .. } => parent.upgrade(),
                    _ => None,
                };
                match p {
                    Some(p) if !Arc::ptr_eq(&p, &d) => d = p,
                    _ => break,
                }
            }
        }
        if Arc::ptr_eq(&src_arc, &dst) && name == new_name {
            return Ok(());
        }
        if let Ok(old) = dst.lookup(new_name) {
            match (node.kind == FileType::Dir, old.file_type() == FileType::Dir) {
                (true, true) => dst.rmdir(new_name)?,
                (false, false) => dst.unlink(new_name)?,
                (true, false) => return Err(Errno::ENOTDIR),
                (false, true) => return Err(Errno::EISDIR),
            }
        }
        let is_dir = node.kind == FileType::Dir;
        {
            let mut st = self.state.lock();
            if let Body::Dir { entries, .. } = &mut st.body {
                entries.remove(name);
            }
            if is_dir {
                st.nlink -= 1;
            }
            self.touch(&mut st);
        }
        {
            let mut st = dst.state.lock();
            if let Body::Dir { entries, .. } = &mut st.body {
                entries.insert(String::from(new_name), node.clone());
            }
            if is_dir {
                st.nlink += 1;
            }
            dst.touch(&mut st);
        }
        if let Body::Dir { parent, .. } = &mut node.state.lock().body {
            *parent = Arc::downgrade(&dst);
        }
        Ok(())
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        match &self.state.lock().body {
            Body::File(d) => {
                let start = usize::try_from(offset).unwrap_or(usize::MAX).min(d.len());
                let n = buf.len().min(d.len() - start);
                buf[..n].copy_from_slice(&d[start..start + n]);
                Ok(n)
            }
            Body::Dir { .. } => Err(Errno::EISDIR),
            _ => Err(Errno::EINVAL),
        }
    }

    fn write_at(&self, offset: u64, buf: &[u8]) -> Result<usize, Errno> {
        let mut st = self.state.lock();
        let Body::File(d) = &mut st.body else {
            return Err(if self.kind == FileType::Dir {
                Errno::EISDIR
            } else {
                Errno::EINVAL
            });
        };
        let end = offset.checked_add(buf.len() as u64).ok_or(Errno::EFBIG)?;
        if end > d.len() as u64 {
            self.resize(d, end)?;
        }
        let start = offset as usize;
        d[start..start + buf.len()].copy_from_slice(buf);
        self.touch(&mut st);
        Ok(buf.len())
    }

    fn truncate(&self, size: u64) -> Result<(), Errno> {
        let mut st = self.state.lock();
        let Body::File(d) = &mut st.body else {
            return Err(if self.kind == FileType::Dir {
                Errno::EISDIR
            } else {
                Errno::EINVAL
            });
        };
        self.resize(d, size)?;
        self.touch(&mut st);
        Ok(())
    }

    fn set_mode(&self, mode: u32) -> Result<(), Errno> {
        self.state.lock().mode = mode & 0o7777;
        Ok(())
    }

    fn as_any(&self) -> &dyn core::any::Any {
        self
    }
}

impl Node {
    /// A weak reference to this node.
    fn as_weak(&self) -> Result<Weak<Node>, Errno> {
        Ok(self.me.clone())
    }

    /// The `Arc` holding this node.
    fn arc_self(&self) -> Result<Arc<Node>, Errno> {
        self.me.upgrade().ok_or(Errno::ENOENT)
    }

    /// The `Arc` holding `n`.
    fn arc_of(&self, n: &Node) -> Result<Arc<Node>, Errno> {
        n.me.upgrade().ok_or(Errno::ENOENT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> i64 {
        1_700_000_000
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
        assert_eq!(f.metadata().mtime, 1_700_000_000);
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
        assert_eq!(g.truncate(1).err(), Some(Errno::ENOSPC));
        assert_eq!(f.metadata().size, 3 * 4096);
        root.unlink("f").unwrap();
        drop(f);
        assert_eq!(g.write_at(0, b"x").unwrap(), 1);
        // Sizes that cannot be represented fail without allocating.
        assert_eq!(g.write_at(u64::MAX, b"x").err(), Some(Errno::EFBIG));
        assert!(g.truncate(u64::MAX / 2).is_err());
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

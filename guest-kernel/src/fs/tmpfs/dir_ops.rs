//! The directory operations of tmpfs nodes (create, link, unlink, rmdir, rename,
//! exchange), apart from the rest of [`super::Node`]'s `Inode` implementation, which
//! calls them.

use alloc::sync::Arc;

use super::*;

impl Node {
    /// [`Inode::create`] of this node.
    pub(super) fn create_entry(
        &self,
        name: &str,
        kind: FileType,
        mode: u32,
        target: &str,
    ) -> Result<InodeRef, Errno> {
        check_name(name)?;
        if kind == FileType::CharDev {
            return Err(Errno::EPERM);
        }
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
        let (body, nlink, mode) = match kind {
            FileType::Dir => (
                Body::Dir {
                    entries: BTreeMap::new(),
                    parent: self.me.clone(),
                },
                2,
                mode & 0o7777,
            ),
            FileType::Symlink => (Body::Symlink(try_string(target)?), 1, 0o777),
            FileType::Fifo => (Body::Fifo, 1, mode & 0o7777),
            _ => (Body::File(FileData::default()), 1, mode & 0o7777),
        };
        let key = try_string(name)?;
        self.shared.charge_inode(name)?;
        let now = self.now();
        let ino = self.shared.next_ino.fetch_add(1, Ordering::Relaxed);
        let node = Arc::new_cyclic(|me| Node {
            me: me.clone(),
            shared: self.shared.clone(),
            ino,
            kind,
            state: Mutex::new(State {
                mode,
                uid: 0,
                gid: 0,
                nlink,
                atime: now,
                mtime: now,
                ctime: now,
                body,
            }),
            linkable: AtomicBool::new(false),
        });
        entries.insert(key, node.clone());
        if kind == FileType::Dir {
            st.nlink += 1;
        }
        st.mtime = now;
        st.ctime = now;
        Ok(node)
    }

    /// [`Inode::link`] of this node.
    pub(super) fn link_entry(&self, name: &str, node: &InodeRef) -> Result<(), Errno> {
        check_name(name)?;
        let target = self.same_fs(node)?;
        if target.kind == FileType::Dir {
            return Err(Errno::EPERM);
        }
        let target = target.me.upgrade().ok_or(Errno::ENOENT)?;
        let key = try_string(name)?;
        crate::mm::kalloc::charge(name.len() + 64).map_err(|_| Errno::ENOMEM)?;
        let mut st = self.state.lock();
        if st.nlink == 0 && self.kind == FileType::Dir {
            return Err(Errno::ENOENT);
        }
        let Body::Dir { entries, .. } = &mut st.body else {
            return Err(Errno::ENOTDIR);
        };
        if entries.contains_key(name) {
            return Err(Errno::EEXIST);
        }
        {
            let mut t = target.state.lock();
            // Linux: linking an unlinked file is ENOENT, but for the first link of an
            // `O_TMPFILE` file opened without `O_EXCL`.
            if t.nlink == 0 && !target.linkable.swap(false, Ordering::AcqRel) {
                return Err(Errno::ENOENT);
            }
            t.nlink += 1;
            t.ctime = self.now();
        }
        entries.insert(key, target);
        self.touch(&mut st);
        Ok(())
    }

    /// [`Inode::unlink`] of this node.
    pub(super) fn unlink_entry(&self, name: &str) -> Result<(), Errno> {
        let mut st = self.state.lock();
        let Body::Dir { entries, .. } = &mut st.body else {
            return Err(Errno::ENOTDIR);
        };
        let node = entries.get(name).ok_or(Errno::ENOENT)?;
        if node.kind == FileType::Dir {
            return Err(Errno::EISDIR);
        }
        if let Some(node) = entries.remove(name) {
            let mut n = node.state.lock();
            n.nlink -= 1;
            n.ctime = self.now();
        }
        self.touch(&mut st);
        Ok(())
    }

    /// [`Inode::rmdir`] of this node.
    pub(super) fn rmdir_entry(&self, name: &str) -> Result<(), Errno> {
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

    /// [`Inode::rename`] of this node.
    pub(super) fn rename_entry(
        &self,
        name: &str,
        new_dir: &InodeRef,
        new_name: &str,
    ) -> Result<(), Errno> {
        check_name(new_name)?;
        let dst = self.same_fs(new_dir)?;
        let dst = dst.me.upgrade().ok_or(Errno::ENOENT)?;
        let src_arc = self.me.upgrade().ok_or(Errno::ENOENT)?;
        let node = self.lookup(name)?;
        let node = self.same_fs(&node)?.me.upgrade().ok_or(Errno::ENOENT)?;
        if node.kind == FileType::Dir && is_ancestor(&node, &dst) {
            // A directory may not move below itself.
            return Err(Errno::EINVAL);
        }
        if let Ok(old) = dst.lookup(new_name) {
            if old.ino() == node.ino() {
                // Two names of one file: rename does nothing.
                return Ok(());
            }
            match (node.kind == FileType::Dir, old.file_type() == FileType::Dir) {
                (true, true) => dst.rmdir(new_name)?,
                (false, false) => dst.unlink(new_name)?,
                (true, false) => return Err(Errno::ENOTDIR),
                (false, true) => return Err(Errno::EISDIR),
            }
        }
        let key = try_string(new_name)?;
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
        let _ = src_arc;
        {
            let mut st = dst.state.lock();
            if let Body::Dir { entries, .. } = &mut st.body {
                entries.insert(key, node.clone());
            }
            if is_dir {
                st.nlink += 1;
            }
            dst.touch(&mut st);
        }
        let mut n = node.state.lock();
        if let Body::Dir { parent, .. } = &mut n.body {
            *parent = Arc::downgrade(&dst);
        }
        n.ctime = self.now();
        Ok(())
    }

    /// [`Inode::exchange`] of this node.
    pub(super) fn exchange_entry(
        &self,
        name: &str,
        new_dir: &InodeRef,
        new_name: &str,
    ) -> Result<(), Errno> {
        let dst = self.same_fs(new_dir)?;
        let dst = dst.me.upgrade().ok_or(Errno::ENOENT)?;
        let a = self.lookup(name)?;
        let a = self.same_fs(&a)?.me.upgrade().ok_or(Errno::ENOENT)?;
        let b = dst.lookup(new_name)?;
        let b = self.same_fs(&b)?.me.upgrade().ok_or(Errno::ENOENT)?;
        let me = self.me.upgrade().ok_or(Errno::ENOENT)?;
        if Arc::ptr_eq(&a, &b) {
            return Ok(());
        }
        if (a.kind == FileType::Dir && is_ancestor(&a, &dst))
            || (b.kind == FileType::Dir && is_ancestor(&b, &me))
        {
            return Err(Errno::EINVAL);
        }
        let put = |dir: &Arc<Node>, key: &str, n: &Arc<Node>| {
            let mut st = dir.state.lock();
            if let Body::Dir { entries, .. } = &mut st.body {
                if let Some(slot) = entries.get_mut(key) {
                    *slot = n.clone();
                }
            }
            dir.touch(&mut st);
        };
        put(&me, name, &b);
        put(&dst, new_name, &a);
        let dirs = (a.kind == FileType::Dir) as i32 - (b.kind == FileType::Dir) as i32;
        if !Arc::ptr_eq(&me, &dst) && dirs != 0 {
            let adjust = |dir: &Arc<Node>, d: i32| {
                let mut st = dir.state.lock();
                st.nlink = (st.nlink as i32 + d) as u32;
            };
            adjust(&me, -dirs);
            adjust(&dst, dirs);
        }
        for (n, parent) in [(&a, &dst), (&b, &me)] {
            let mut st = n.state.lock();
            if let Body::Dir { parent: p, .. } = &mut st.body {
                *p = Arc::downgrade(parent);
            }
            st.ctime = self.now();
        }
        Ok(())
    }
}

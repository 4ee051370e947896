//! The read-only TAR root seen through the [`Inode`] trait, as the lower layer of the
//! overlay root. File bytes stay in the mapped archive (`Node::data`); every change gives
//! EROFS.

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

use super::inode::{FileType, FsStats, Inode, InodeRef, ST_RDONLY};
use super::stat::{Metadata, Timestamp, S_IFDIR, S_IFLNK, S_IFREG};
use super::tar::{NodeId, NodeKind, TarFs};
use super::vfs::{fs_err, ROOTFS_DEV};
use crate::errno::Errno;

/// File-system id of the TAR root (its device number's minor).
const TAR_FS_ID: u64 = ROOTFS_DEV.1 as u64;

/// A node of the TAR root.
pub struct TarInode {
    fs: &'static TarFs,
    id: NodeId,
}

/// The root directory of `fs` as an inode.
pub fn root(fs: &'static TarFs) -> InodeRef {
    Arc::new(TarInode { fs, id: fs.root() })
}

fn kind(k: NodeKind) -> FileType {
    match k {
        NodeKind::File => FileType::Regular,
        NodeKind::Dir => FileType::Dir,
        NodeKind::Symlink => FileType::Symlink,
    }
}

impl TarInode {
    fn at(&self, id: NodeId) -> InodeRef {
        Arc::new(TarInode { fs: self.fs, id })
    }

    /// The file's bytes in the archive.
    pub fn data(&self) -> &'static [u8] {
        self.fs.node(self.id).data
    }
}

impl Inode for TarInode {
    fn fs_id(&self) -> u64 {
        TAR_FS_ID
    }

    fn ino(&self) -> u64 {
        self.id.index() as u64 + 1
    }

    fn file_type(&self) -> FileType {
        kind(self.fs.node(self.id).kind)
    }

    fn metadata(&self) -> Metadata {
        let n = self.fs.node(self.id);
        let type_bits = match n.kind {
            NodeKind::File => S_IFREG,
            NodeKind::Dir => S_IFDIR,
            NodeKind::Symlink => S_IFLNK,
        };
        Metadata {
            dev: ROOTFS_DEV,
            ino: self.ino(),
            mode: type_bits | (n.mode & 0o7777),
            nlink: n.nlink,
            uid: n.uid,
            gid: n.gid,
            rdev: (0, 0),
            size: n.size(),
            atime: Timestamp::from_secs(n.mtime),
            mtime: Timestamp::from_secs(n.mtime),
            ctime: Timestamp::from_secs(n.mtime),
            mount_root: self.id == self.fs.root(),
        }
    }

    fn lookup(&self, name: &str) -> Result<InodeRef, Errno> {
        self.fs
            .child(self.id, name)
            .map(|id| self.at(id))
            .map_err(fs_err)
    }

    fn parent(&self) -> Result<InodeRef, Errno> {
        let n = self.fs.node(self.id);
        if n.kind != NodeKind::Dir {
            return Err(Errno::ENOTDIR);
        }
        Ok(self.at(n.parent))
    }

    fn readlink(&self) -> Result<String, Errno> {
        let t = self.fs.read_link(self.id).map_err(fs_err)?;
        let mut s = String::new();
        s.try_reserve(t.len()).map_err(|_| Errno::ENOMEM)?;
        s.push_str(t);
        Ok(s)
    }

    fn entries(&self) -> Result<Vec<(String, u64, FileType)>, Errno> {
        let it = self.fs.read_dir(self.id).map_err(fs_err)?;
        let mut v = Vec::new();
        v.try_reserve(self.fs.node(self.id).child_count())
            .map_err(|_| Errno::ENOMEM)?;
        for (name, id) in it {
            let mut s = String::new();
            s.try_reserve(name.len()).map_err(|_| Errno::ENOMEM)?;
            s.push_str(name);
            v.push((s, id.index() as u64 + 1, kind(self.fs.node(id).kind)));
        }
        Ok(v)
    }

    fn create(&self, _: &str, _: FileType, _: u32, _: &str) -> Result<InodeRef, Errno> {
        Err(Errno::EROFS)
    }

    fn link(&self, _: &str, _: &InodeRef) -> Result<(), Errno> {
        Err(Errno::EROFS)
    }

    fn unlink(&self, _: &str) -> Result<(), Errno> {
        Err(Errno::EROFS)
    }

    fn rmdir(&self, _: &str) -> Result<(), Errno> {
        Err(Errno::EROFS)
    }

    fn rename(&self, _: &str, _: &InodeRef, _: &str) -> Result<(), Errno> {
        Err(Errno::EROFS)
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        self.fs.read_at(self.id, offset, buf).map_err(fs_err)
    }

    fn write_at(&self, _: u64, _: &[u8]) -> Result<usize, Errno> {
        Err(Errno::EROFS)
    }

    fn truncate(&self, _: u64) -> Result<(), Errno> {
        Err(Errno::EROFS)
    }

    fn set_mode(&self, _: u32) -> Result<(), Errno> {
        Err(Errno::EROFS)
    }

    fn as_any(&self) -> &dyn core::any::Any {
        self
    }

    fn statfs(&self) -> FsStats {
        FsStats {
            magic: TAR_MAGIC,
            bsize: 4096,
            blocks: self.fs.data_bytes().div_ceil(4096),
            files: self.fs.node_count() as u64,
            flags: ST_RDONLY,
            ..FsStats::default()
        }
    }

    fn static_bytes(&self) -> Option<&'static [u8]> {
        (self.fs.node(self.id).kind == NodeKind::File).then(|| self.data())
    }
}

/// The `f_type` `statfs` reports for the TAR root (no Linux file system of its own; the
/// bytes of "tar" for recognisability).
pub const TAR_MAGIC: u64 = 0x0074_6172;

#[cfg(test)]
mod tests {
    use super::super::inode::{walk, MountTable, WalkCtx, WalkFlags};
    use super::super::overlay;
    use super::super::testfs;
    use super::super::tmpfs::TmpFs;
    use super::*;

    #[test]
    fn the_tar_tree_walks_and_refuses_changes() {
        let fs = testfs::sample();
        let r = root(fs);
        let m = MountTable::new();
        let ctx = WalkCtx {
            mounts: &m,
            root: &r,
            start: &r,
            exe: "",
        };
        let follow = WalkFlags {
            follow: true,
            directory: false,
        };
        let motd = walk(&ctx, "/lnk/link", follow).unwrap();
        let mut buf = [0u8; 32];
        let n = motd.read_at(0, &mut buf).unwrap();
        assert_eq!(&buf[..n], b"hello motd\n");
        assert_eq!(walk(&ctx, "/etc/loop", follow).err(), Some(Errno::ELOOP));
        assert_eq!(
            walk(&ctx, "/bin/sh", follow).unwrap().ino(),
            walk(&ctx, "/bin/app", follow).unwrap().ino()
        );
        assert_eq!(motd.write_at(0, b"x").err(), Some(Errno::EROFS));
        assert_eq!(r.unlink("lnk").err(), Some(Errno::EROFS));
        assert!(same_names(
            &r.entries().unwrap(),
            &["bin", "data", "etc", "lnk"]
        ));
    }

    fn same_names(v: &[(String, u64, FileType)], want: &[&str]) -> bool {
        v.iter().map(|e| e.0.as_str()).eq(want.iter().copied())
    }

    #[test]
    fn an_overlay_over_the_tar_edits_and_deletes_without_touching_the_archive() {
        let fs = testfs::sample();
        let before: Vec<u8> = fs
            .node(
                fs.child(fs.child(fs.root(), "etc").unwrap(), "motd")
                    .unwrap(),
            )
            .data
            .to_vec();
        let upper = TmpFs::new(1 << 20, Timestamp::default);
        let r = overlay::new(root(fs), upper.root());
        let m = MountTable::new();
        let ctx = WalkCtx {
            mounts: &m,
            root: &r,
            start: &r,
            exe: "",
        };
        let follow = WalkFlags {
            follow: true,
            directory: false,
        };
        let motd = walk(&ctx, "/lnk/motd", follow).unwrap();
        motd.write_at(0, b"HELLO").unwrap();
        let mut buf = [0u8; 32];
        let n = walk(&ctx, "/etc/link", follow)
            .unwrap()
            .read_at(0, &mut buf)
            .unwrap();
        assert_eq!(&buf[..n], b"HELLO motd\n");
        walk(&ctx, "/data", follow).unwrap().unlink("big").unwrap();
        assert_eq!(walk(&ctx, "/data/big", follow).err(), Some(Errno::ENOENT));
        let after = fs
            .node(
                fs.child(fs.child(fs.root(), "etc").unwrap(), "motd")
                    .unwrap(),
            )
            .data;
        assert_eq!(after, &before[..]);
        assert!(fs
            .child(fs.child(fs.root(), "data").unwrap(), "big")
            .is_ok());
    }
}

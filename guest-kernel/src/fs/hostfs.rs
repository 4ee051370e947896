//! `hostfs`: the host directories shared with `--volume`, as a file system whose every
//! operation is a request to the VMM's host file-system device ([`crate::drivers::hostfs`]).
//!
//! A [`HostNode`] holds a device handle (dropped with [`op::FORGET`] when the node goes)
//! and the attributes last seen. Lookups go one component at a time, as the VFS walks:
//! the VMM resolves each name beneath its directory on the host, and symlinks are followed
//! here, in the guest's namespace, so a link to `/etc` means the guest's `/etc` and `..`
//! at the mount root leaves the volume into the guest's tree, never the host's. The
//! device's replies are checked before use (records in bounds, names UTF-8).

use alloc::string::String;
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

use hypercall_abi::hostfs::{dirent, op, out_flags, setattr, UNLINK_DIR};
use hypercall_abi::{HostFsAttr, HostFsTime};
use spin::Mutex;

use super::dirent::{DT_CHR, DT_DIR, DT_LNK, DT_REG};
use super::hostcache::{HostIo, PageCache};
use super::inode::{FileType, FsStats, Inode, InodeRef, ST_RDONLY};
use super::stat::{Metadata, Timestamp, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFMT, S_IFREG};
use crate::drivers::hostfs::{self as dev, Call, IO_CHUNK};
use crate::errno::Errno;

#[path = "hostfs_io.rs"]
mod io;

/// `f_type` of a shared directory: FUSE's, as Linux's virtiofs reports.
pub const HOSTFS_MAGIC: u64 = 0x6573_5546;
/// `DT_FIFO`.
const DT_FIFO: u8 = 1;
/// Most directory entries one listing keeps.
const MAX_ENTRIES: usize = 1 << 16;

static NEXT_ID: AtomicU64 = AtomicU64::new(0x4000);

/// One mounted volume.
pub struct Volume {
    id: u64,
    read_only: bool,
    /// The page caches of its files with cached pages, by inode number.
    caches: Mutex<Vec<(u64, Arc<PageCache>)>>,
}

/// A file or directory of a volume.
pub struct HostNode {
    vol: Arc<Volume>,
    handle: u64,
    ino: u64,
    kind: FileType,
    attr: Mutex<HostFsAttr>,
    /// The directory it was found in (`None` for the volume root).
    parent: Option<InodeRef>,
    me: Weak<HostNode>,
}

/// The kind of file `mode`'s type bits name (sockets and block devices, which the kernel
/// has no node kind for, show as character devices: opening them fails on the host).
pub fn kind_of(mode: u32) -> FileType {
    match mode & S_IFMT {
        S_IFDIR => FileType::Dir,
        S_IFLNK => FileType::Symlink,
        S_IFIFO => FileType::Fifo,
        S_IFREG => FileType::Regular,
        _ => FileType::CharDev,
    }
}

fn stamp(t: HostFsTime) -> Timestamp {
    Timestamp {
        sec: t.sec,
        nsec: t.nsec.min(999_999_999),
    }
}

/// What `stat` shows for host attributes `a` on the volume with device id `id`.
pub fn metadata_of(a: &HostFsAttr, id: u64, root: bool) -> Metadata {
    let kind_bits = match kind_of(a.mode) {
        FileType::CharDev => S_IFCHR,
        _ => a.mode & S_IFMT,
    };
    Metadata {
        dev: (0, id as u32),
        ino: a.ino,
        mode: kind_bits | (a.mode & 0o7777),
        nlink: a.nlink,
        uid: a.uid,
        gid: a.gid,
        rdev: (0, 0),
        size: a.size,
        atime: stamp(a.atime),
        mtime: stamp(a.mtime),
        ctime: stamp(a.ctime),
        mount_root: root,
    }
}

/// Appends the [`dirent`] records of `buf` to `out` (names that are not UTF-8 are left
/// out: no path can name them here). `EIO` for a malformed record.
pub fn parse_dirents(buf: &[u8], out: &mut Vec<(String, u64, FileType)>) -> Result<(), Errno> {
    let mut at = 0;
    while at < buf.len() {
        let rest = &buf[at..];
        if rest.len() < dirent::HEADER {
            return Err(Errno::EIO);
        }
        let ino = u64::from_le_bytes(rest[..8].try_into().map_err(|_| Errno::EIO)?);
        let (dtype, len) = (rest[8], rest[9] as usize);
        let rec = dirent::record_len(len);
        if len == 0 || rec > rest.len() {
            return Err(Errno::EIO);
        }
        let name = &rest[dirent::HEADER..dirent::HEADER + len];
        at += rec;
        let Ok(name) = core::str::from_utf8(name) else {
            continue;
        };
        if name == "." || name == ".." || name.contains('/') {
            continue;
        }
        let kind = match dtype {
            DT_DIR => FileType::Dir,
            DT_REG => FileType::Regular,
            DT_LNK => FileType::Symlink,
            DT_FIFO => FileType::Fifo,
            DT_CHR => FileType::CharDev,
            _ => FileType::CharDev,
        };
        if out.len() >= MAX_ENTRIES {
            return Err(Errno::ENOMEM);
        }
        out.try_reserve(1).map_err(|_| Errno::ENOMEM)?;
        out.push((String::from(name), ino, kind));
    }
    Ok(())
}

/// Mounts the shared volumes: calls `mount(guest_path, root)` for each.
pub fn volumes(mut mount: impl FnMut(&str, InodeRef)) {
    for index in 0..dev::volume_count() {
        let mut path = alloc::vec![0u8; 4096];
        let call = Call {
            op: op::VOLUME,
            flags: index,
            ..Call::default()
        };
        match dev::call(&call, &mut path) {
            Ok(r) => {
                let Ok(guest) = core::str::from_utf8(&path[..r.count]) else {
                    crate::kprintln!("astra: volume {index}: guest path is not UTF-8");
                    continue;
                };
                let vol = Arc::new(Volume {
                    id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
                    read_only: r.flags & out_flags::READ_ONLY != 0,
                    caches: Mutex::new(Vec::new()),
                });
                let root = HostNode::make(vol, r.handle, r.attr, None);
                mount(guest, root);
            }
            Err(e) => crate::kprintln!("astra: volume {index}: {}", e.message()),
        }
    }
}

impl HostNode {
    fn make(vol: Arc<Volume>, handle: u64, attr: HostFsAttr, parent: Option<InodeRef>) -> InodeRef {
        Arc::new_cyclic(|me| HostNode {
            vol,
            handle,
            ino: attr.ino,
            kind: kind_of(attr.mode),
            attr: Mutex::new(attr),
            parent,
            me: me.clone(),
        })
    }

    fn me(&self) -> Result<InodeRef, Errno> {
        let me: Arc<HostNode> = self.me.upgrade().ok_or(Errno::ESTALE)?;
        Ok(me)
    }

    fn writable(&self) -> Result<(), Errno> {
        if self.vol.read_only {
            return Err(Errno::EROFS);
        }
        Ok(())
    }

    fn call(&self, c: Call<'_>) -> Result<dev::Reply, Errno> {
        dev::call(
            &Call {
                handle: self.handle,
                ..c
            },
            &mut [],
        )
    }

    fn child(&self, r: dev::Reply) -> Result<InodeRef, Errno> {
        Ok(HostNode::make(
            self.vol.clone(),
            r.handle,
            r.attr,
            Some(self.me()?),
        ))
    }

    fn peer<'a>(&self, other: &'a InodeRef) -> Result<&'a HostNode, Errno> {
        match other.as_any().downcast_ref::<HostNode>() {
            Some(n) if Arc::ptr_eq(&n.vol, &self.vol) => Ok(n),
            _ => Err(Errno::EXDEV),
        }
    }

    fn set_attr(
        &self,
        flags: u32,
        mode: u32,
        atime: HostFsTime,
        mtime: HostFsTime,
    ) -> Result<(), Errno> {
        self.writable()?;
        let r = self.call(Call {
            op: op::SETATTR,
            flags,
            mode,
            atime,
            mtime,
            ..Call::default()
        })?;
        *self.attr.lock() = r.attr;
        Ok(())
    }
}

impl Drop for HostNode {
    fn drop(&mut self) {
        // The last node of the file (its last open file, `close`) writes its cache back.
        if self.kind == FileType::Regular {
            let _ = self.write_back(true);
        }
        // A failure leaves a descriptor in the VMM until it exits; nothing else to do.
        let _ = self.call(Call {
            op: op::FORGET,
            ..Call::default()
        });
    }
}

fn time_arg(t: Option<Timestamp>) -> HostFsTime {
    let t = t.unwrap_or_default();
    HostFsTime {
        sec: t.sec,
        nsec: t.nsec,
        _pad: 0,
    }
}

impl Inode for HostNode {
    fn fs_id(&self) -> u64 {
        self.vol.id
    }

    fn ino(&self) -> u64 {
        self.ino
    }

    fn file_type(&self) -> FileType {
        self.kind
    }

    fn metadata(&self) -> Metadata {
        let fresh = self.call(Call {
            op: op::GETATTR,
            ..Call::default()
        });
        let mut attr = self.attr.lock();
        if let Ok(r) = fresh {
            // The type of a node never changes under a handle.
            if kind_of(r.attr.mode) == self.kind {
                *attr = r.attr;
            }
        }
        metadata_of(&attr, self.vol.id, self.parent.is_none())
    }

    fn lookup(&self, name: &str) -> Result<InodeRef, Errno> {
        if self.kind != FileType::Dir {
            return Err(Errno::ENOTDIR);
        }
        let r = self.call(Call {
            op: op::LOOKUP,
            name: name.as_bytes(),
            ..Call::default()
        })?;
        self.child(r)
    }

    fn parent(&self) -> Result<InodeRef, Errno> {
        match &self.parent {
            Some(p) => Ok(p.clone()),
            None => self.me(),
        }
    }

    fn readlink(&self) -> Result<String, Errno> {
        if self.kind != FileType::Symlink {
            return Err(Errno::EINVAL);
        }
        let mut buf = alloc::vec![0u8; 4096];
        let r = dev::call(
            &Call {
                op: op::READLINK,
                handle: self.handle,
                ..Call::default()
            },
            &mut buf,
        )?;
        buf.truncate(r.count);
        String::from_utf8(buf).map_err(|_| Errno::EINVAL)
    }

    fn entries(&self) -> Result<Vec<(String, u64, FileType)>, Errno> {
        if self.kind != FileType::Dir {
            return Err(Errno::ENOTDIR);
        }
        let mut out = Vec::new();
        let mut buf = alloc::vec![0u8; 8192];
        let mut next = 0;
        loop {
            let r = dev::call(
                &Call {
                    op: op::READDIR,
                    handle: self.handle,
                    offset: next,
                    ..Call::default()
                },
                &mut buf,
            )?;
            parse_dirents(&buf[..r.count], &mut out)?;
            if r.flags & out_flags::END != 0 {
                break;
            }
            // The host must make progress; a reply that does not is refused.
            if r.next <= next {
                return Err(Errno::EIO);
            }
            next = r.next;
        }
        out.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    fn create(
        &self,
        name: &str,
        kind: FileType,
        mode: u32,
        target: &str,
    ) -> Result<InodeRef, Errno> {
        self.writable()?;
        let type_bits = match kind {
            FileType::Regular => S_IFREG,
            FileType::Dir => S_IFDIR,
            FileType::Symlink => S_IFLNK,
            FileType::Fifo => S_IFIFO,
            FileType::CharDev => return Err(Errno::EPERM),
        };
        let r = self.call(Call {
            op: op::CREATE,
            name: name.as_bytes(),
            name2: target.as_bytes(),
            mode: type_bits | (mode & 0o7777),
            ..Call::default()
        })?;
        self.child(r)
    }

    fn link(&self, name: &str, node: &InodeRef) -> Result<(), Errno> {
        self.writable()?;
        let target = self.peer(node)?;
        self.call(Call {
            op: op::LINK,
            name: name.as_bytes(),
            handle2: target.handle,
            ..Call::default()
        })
        .map(drop)
    }

    fn unlink(&self, name: &str) -> Result<(), Errno> {
        self.writable()?;
        self.call(Call {
            op: op::UNLINK,
            name: name.as_bytes(),
            ..Call::default()
        })
        .map(drop)
    }

    fn rmdir(&self, name: &str) -> Result<(), Errno> {
        self.writable()?;
        self.call(Call {
            op: op::UNLINK,
            flags: UNLINK_DIR,
            name: name.as_bytes(),
            ..Call::default()
        })
        .map(drop)
    }

    fn rename(&self, name: &str, new_dir: &InodeRef, new_name: &str) -> Result<(), Errno> {
        self.writable()?;
        let to = self.peer(new_dir)?;
        self.call(Call {
            op: op::RENAME,
            name: name.as_bytes(),
            handle2: to.handle,
            name2: new_name.as_bytes(),
            ..Call::default()
        })
        .map(drop)
    }

    fn exchange(&self, name: &str, new_dir: &InodeRef, new_name: &str) -> Result<(), Errno> {
        self.writable()?;
        let to = self.peer(new_dir)?;
        self.call(Call {
            op: op::RENAME,
            flags: 2, // RENAME_EXCHANGE
            name: name.as_bytes(),
            handle2: to.handle,
            name2: new_name.as_bytes(),
            ..Call::default()
        })
        .map(drop)
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        let n = self.read_host(offset, buf)?;
        if let Some(cache) = self.cache() {
            cache.overlay_read(offset, &mut buf[..n]);
        }
        Ok(n)
    }

    fn write_at(&self, offset: u64, buf: &[u8]) -> Result<usize, Errno> {
        let n = self.write_host(offset, buf)?;
        if let Some(cache) = self.cache() {
            cache.wrote(offset, &buf[..n]);
        }
        Ok(n)
    }

    fn truncate(&self, size: u64) -> Result<(), Errno> {
        self.writable()?;
        self.call(Call {
            op: op::TRUNCATE,
            offset: size,
            ..Call::default()
        })?;
        if let Some(cache) = self.cache() {
            super::pages::unmap_dropped(&cache.truncated(size));
        }
        Ok(())
    }

    /// Writable volumes' files map shared through their page cache.
    fn has_shared_pages(&self) -> bool {
        self.kind == FileType::Regular && !self.vol.read_only
    }

    #[cfg(not(test))]
    fn shared_frame(&self, index: u64) -> Result<u64, Errno> {
        if !self.has_shared_pages() {
            return Err(Errno::ENODEV);
        }
        self.cache_or_new()?.shared_frame(index, self)
    }

    #[cfg(not(test))]
    fn existing_frame(&self, index: u64) -> Option<u64> {
        self.cache()?.existing_frame(index)
    }

    fn sync(&self) -> Result<(), Errno> {
        self.write_back(false)
    }

    fn unmapped(&self) {
        let _ = self.write_back(true);
    }

    fn mapped_writable(&self) {
        if let Ok(cache) = self.cache_or_new() {
            cache.mark_dirty();
        }
    }

    fn set_mode(&self, mode: u32) -> Result<(), Errno> {
        let t = HostFsTime::default();
        self.set_attr(setattr::MODE, mode & 0o7777, t, t)
    }

    fn set_times(&self, atime: Option<Timestamp>, mtime: Option<Timestamp>) -> Result<(), Errno> {
        let mut flags = 0;
        if atime.is_some() {
            flags |= setattr::ATIME;
        }
        if mtime.is_some() {
            flags |= setattr::MTIME;
        }
        if flags == 0 {
            return self.writable();
        }
        self.set_attr(flags, 0, time_arg(atime), time_arg(mtime))
    }

    fn set_owner(&self, _uid: u32, _gid: u32) -> Result<(), Errno> {
        // Files on the host keep the owner the VMM's user gives them.
        self.writable()?;
        Err(Errno::EPERM)
    }

    fn as_any(&self) -> &dyn core::any::Any {
        self
    }

    fn io_chunk(&self) -> usize {
        IO_CHUNK
    }

    fn statfs(&self) -> FsStats {
        let flags = if self.vol.read_only { ST_RDONLY } else { 0 };
        let r = self.call(Call {
            op: op::STATFS,
            ..Call::default()
        });
        let a = r.map(|r| r.attr).unwrap_or_default();
        FsStats {
            magic: HOSTFS_MAGIC,
            bsize: a.ino,
            blocks: a.size,
            bfree: a.blocks,
            files: a.atime.sec as u64,
            ffree: a.mtime.sec as u64,
            flags,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(ino: u64, dtype: u8, name: &[u8]) -> Vec<u8> {
        let mut r = ino.to_le_bytes().to_vec();
        r.push(dtype);
        r.push(name.len() as u8);
        r.extend_from_slice(name);
        r.resize(dirent::record_len(name.len()), 0);
        r
    }

    #[test]
    fn parses_records_and_refuses_malformed_ones() {
        let mut buf = record(7, DT_DIR, b"sub");
        buf.extend(record(9, DT_REG, b"a.txt"));
        buf.extend(record(10, DT_REG, b"\xff\xfe"));
        buf.extend(record(11, DT_LNK, b".."));
        let mut out = Vec::new();
        parse_dirents(&buf, &mut out).unwrap();
        assert_eq!(
            out,
            [
                (String::from("sub"), 7, FileType::Dir),
                (String::from("a.txt"), 9, FileType::Regular)
            ]
        );
        // A name running past the end, a zero-length name, a cut header.
        let mut long = record(1, DT_REG, b"abc");
        long[9] = 200;
        let zero = record(1, DT_REG, b"");
        for bad in [&long[..], &zero[..], &record(1, DT_REG, b"x")[..5]] {
            assert_eq!(parse_dirents(bad, &mut Vec::new()), Err(Errno::EIO));
        }
    }

    #[test]
    fn metadata_keeps_types_and_bounds_times() {
        let a = HostFsAttr {
            ino: 5,
            size: 3,
            mode: S_IFREG | 0o640,
            nlink: 1,
            uid: 1000,
            mtime: HostFsTime {
                sec: 10,
                nsec: u32::MAX,
                _pad: 0,
            },
            ..Default::default()
        };
        let m = metadata_of(&a, 0x4000, false);
        assert_eq!(
            (m.ino, m.mode, m.size, m.uid),
            (5, S_IFREG | 0o640, 3, 1000)
        );
        assert_eq!(m.mtime.nsec, 999_999_999);
        assert_eq!(kind_of(0o140_000), FileType::CharDev, "a socket");
        assert_eq!(kind_of(S_IFLNK | 0o777), FileType::Symlink);
    }
}

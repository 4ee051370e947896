//! tarfs: the read-only root filesystem, a TAR archive mapped into guest memory.
//!
//! [`TarFs::new`] walks the archive once and builds an in-memory tree of [`Node`]s; file data
//! and names stay subslices of the archive (zero copy). Understood formats: v7, ustar (the
//! `prefix` field), GNU (`L` long names, `K` long link names, base-256 numbers) and pax (`x`
//! headers with `path`, `linkpath`, `size`, `uid`, `gid`, `mtime`; `g` headers are skipped).
//! Entry types: regular files (`0`, NUL, and `7` contiguous files), directories (`5`), symlinks
//! (`2`) and hard links (`1`, another name for the target's node); other types are skipped.
//! The archive is untrusted: every malformed header is an error naming its offset, never a
//! panic.
//!
//! [`TarFs::lookup`] resolves paths with Linux semantics: `.`, `..`, symlinks with absolute and
//! relative targets, at most [`MAX_SYMLINKS`] of them per lookup.

mod header;

use super::path::{self, Component, PathError};
use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::fmt;
use header::{
    field, parse_number, parse_pax, parse_signed, until_nul, verify_checksum, Pending, BLOCK,
};

/// Most symlinks followed during one lookup (Linux `MAXSYMLINKS`).
pub const MAX_SYMLINKS: u32 = 40;

/// Permission bits given to directories implied by a deeper entry.
const IMPLIED_DIR_MODE: u32 = 0o755;

/// Why an archive could not be mounted. Every variant names the byte offset of the header at
/// fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TarError {
    /// The header checksum does not match its contents.
    BadChecksum {
        /// Offset of the header.
        offset: usize,
    },
    /// The archive ends inside a header or inside an entry's data.
    Truncated {
        /// Offset of the header.
        offset: usize,
    },
    /// A numeric header field is not valid octal or base-256, or is out of range.
    BadNumber {
        /// Offset of the header.
        offset: usize,
        /// Name of the field.
        field: &'static str,
    },
    /// An entry name or link target is empty where it may not be, not UTF-8, contains `..`,
    /// or is too long.
    BadName {
        /// Offset of the header.
        offset: usize,
    },
    /// A pax extended header is malformed.
    BadPax {
        /// Offset of the header.
        offset: usize,
    },
    /// An entry would be created below something that is not a directory, or would replace
    /// the root with a non-directory.
    NotADirectory {
        /// Offset of the header.
        offset: usize,
    },
    /// A hard link names no earlier entry, or names a directory.
    BadHardLink {
        /// Offset of the header.
        offset: usize,
    },
    /// The kernel heap's budget ([`crate::mm::kalloc`]) has no room for the entry's node.
    OutOfMemory {
        /// Offset of the header.
        offset: usize,
    },
}

impl fmt::Display for TarError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TarError::BadChecksum { offset } => write!(f, "bad header checksum at offset {offset}"),
            TarError::Truncated { offset } => {
                write!(f, "archive truncated in the entry at offset {offset}")
            }
            TarError::BadNumber { offset, field } => {
                write!(f, "bad {field} field in the header at offset {offset}")
            }
            TarError::BadName { offset } => write!(f, "bad name in the header at offset {offset}"),
            TarError::BadPax { offset } => {
                write!(f, "malformed pax extended header at offset {offset}")
            }
            TarError::NotADirectory { offset } => write!(
                f,
                "entry at offset {offset} lies below something that is not a directory"
            ),
            TarError::BadHardLink { offset } => {
                write!(f, "hard link at offset {offset} has no valid target")
            }
            TarError::OutOfMemory { offset } => write!(
                f,
                "out of kernel memory at the entry at offset {offset}: the archive has too \
                 many entries for the kernel heap (an eighth of --mem, at most 64 MiB); give \
                 the VM more --mem or use fewer entries"
            ),
        }
    }
}

/// Why a filesystem operation failed; [`FsError::errno`] gives the Linux errno.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsError {
    /// No such file or directory (`ENOENT`).
    NotFound,
    /// A component used as a directory is not one (`ENOTDIR`).
    NotADirectory,
    /// The operation needs a non-directory (`EISDIR`).
    IsADirectory,
    /// Too many symlinks followed (`ELOOP`).
    Loop,
    /// The operation does not apply to this node (`EINVAL`).
    InvalidArgument,
    /// Path or component too long (`ENAMETOOLONG`).
    NameTooLong,
}

impl FsError {
    /// The Linux errno for this error.
    pub fn errno(self) -> i32 {
        match self {
            FsError::NotFound => 2,
            FsError::NotADirectory => 20,
            FsError::IsADirectory => 21,
            FsError::InvalidArgument => 22,
            FsError::NameTooLong => 36,
            FsError::Loop => 40,
        }
    }
}

impl From<PathError> for FsError {
    fn from(e: PathError) -> Self {
        match e {
            PathError::Empty => FsError::NotFound,
            PathError::NameTooLong => FsError::NameTooLong,
        }
    }
}

impl fmt::Display for FsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FsError::NotFound => "no such file or directory",
            FsError::NotADirectory => "not a directory",
            FsError::IsADirectory => "is a directory",
            FsError::Loop => "too many levels of symbolic links",
            FsError::InvalidArgument => "invalid argument",
            FsError::NameTooLong => "file name too long",
        })
    }
}

/// Index of a node in the tree; stable for the life of the [`TarFs`], usable as an inode
/// number (`index() + 1`, so the root is inode 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId(usize);

impl NodeId {
    /// The position of the node in the tree's node table.
    pub fn index(self) -> usize {
        self.0
    }
}

/// What a node is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeKind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link.
    Symlink,
}

/// One file, directory or symlink of the archive.
#[derive(Debug, Clone)]
pub struct Node {
    /// What this node is.
    pub kind: NodeKind,
    /// Permission bits (`0o7777` at most; the file type is in `kind`).
    pub mode: u32,
    /// Owner user id.
    pub uid: u32,
    /// Owner group id.
    pub gid: u32,
    /// Modification time, seconds since the Unix epoch.
    pub mtime: i64,
    /// Number of directory entries naming this node (hard links; 2 for a directory plus one
    /// per subdirectory, as on Linux).
    pub nlink: u32,
    /// File contents, a subslice of the archive; empty for directories and symlinks.
    pub data: &'static [u8],
    /// Symlink target as stored in the archive; empty for files and directories.
    pub link_target: &'static str,
    /// The directory holding this node (the root is its own parent; for a hard-linked file,
    /// the directory of its first name).
    pub parent: NodeId,
    children: BTreeMap<&'static str, NodeId>,
}

impl Node {
    /// Size in bytes as `stat` reports it: file length, link target length, 0 for directories.
    pub fn size(&self) -> u64 {
        match self.kind {
            NodeKind::File => self.data.len() as u64,
            NodeKind::Symlink => self.link_target.len() as u64,
            NodeKind::Dir => 0,
        }
    }

    /// Number of entries in a directory (0 for other kinds), without `.` and `..`.
    pub fn child_count(&self) -> usize {
        self.children.len()
    }
}

/// A mounted read-only TAR filesystem.
#[derive(Debug)]
pub struct TarFs {
    nodes: Vec<Node>,
}

/// Metadata collected for one entry from its header and any preceding extension headers.
struct Entry {
    offset: usize,
    typeflag: u8,
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: i64,
    data: &'static [u8],
    link: &'static str,
}

const ROOT: NodeId = NodeId(0);

impl TarFs {
    /// Parses `data` and builds the tree. Errors on any malformed header; the archive ends at
    /// two zero blocks (one suffices) or at the end of `data`.
    pub fn new(data: &'static [u8]) -> Result<TarFs, TarError> {
        let mut fs = TarFs {
            nodes: alloc::vec![Node {
                kind: NodeKind::Dir,
                mode: IMPLIED_DIR_MODE,
                uid: 0,
                gid: 0,
                mtime: 0,
                nlink: 2,
                data: &[],
                link_target: "",
                parent: ROOT,
                children: BTreeMap::new(),
            }],
        };
        let mut pending = Pending::default();
        let mut offset = 0usize;
        while offset < data.len() {
            let rest = data.get(offset..).unwrap_or(&[]);
            if rest.iter().take(BLOCK).all(|&b| b == 0) {
                // A zero block, or zero padding cut short by the end of the data.
                break;
            }
            let header = rest.get(..BLOCK).ok_or(TarError::Truncated { offset })?;
            verify_checksum(header, offset)?;
            let typeflag = header[156];
            let header_size = parse_number(field(header, 124, 12), offset, "size")?;
            let is_extension = matches!(typeflag, b'L' | b'K' | b'x' | b'g');
            let size = match pending.size {
                Some(pax_size) if !is_extension => pax_size,
                _ => header_size,
            };
            let size = usize::try_from(size).map_err(|_| TarError::Truncated { offset })?;
            let data_start = offset + BLOCK;
            let data_end = data_start
                .checked_add(size)
                .filter(|&end| end <= data.len())
                .ok_or(TarError::Truncated { offset })?;
            let body = data
                .get(data_start..data_end)
                .ok_or(TarError::Truncated { offset })?;
            let next = data_end.checked_add(BLOCK - 1).map(|n| n / BLOCK * BLOCK);
            match typeflag {
                b'L' => pending.path = Some(until_nul(body)),
                b'K' => pending.link = Some(until_nul(body)),
                b'x' => parse_pax(body, offset, &mut pending)?,
                b'g' => {}
                _ => {
                    let taken = core::mem::take(&mut pending);
                    fs.add_entry(header, taken, typeflag, body, offset)?;
                }
            }
            match next {
                Some(n) => offset = n,
                None => break,
            }
        }
        Ok(fs)
    }

    /// The root directory.
    pub fn root(&self) -> NodeId {
        ROOT
    }

    /// Bytes of file data in the tree.
    pub fn data_bytes(&self) -> u64 {
        self.nodes.iter().map(|n| n.data.len() as u64).sum()
    }

    /// Number of nodes in the tree (files, directories and symlinks).
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// The node `id`. Ids come from this filesystem, so they are always valid; a foreign id
    /// out of range yields the root rather than a panic.
    pub fn node(&self, id: NodeId) -> &Node {
        self.nodes.get(id.0).unwrap_or(&self.nodes[0])
    }

    /// Resolves `path` (relative paths start at the root) to a node, following symlinks in the
    /// middle of the path and, if `follow_final_symlink`, at its end. A trailing `/` requires a
    /// directory and always follows a final symlink, as on Linux.
    pub fn lookup(&self, path: &str, follow_final_symlink: bool) -> Result<NodeId, FsError> {
        path::check(path)?;
        // "a/", "a/." and "a/.." all need "a" to be a directory.
        let last_raw = path.rsplit('/').next().unwrap_or("");
        let must_be_dir = path::has_trailing_slash(path) || last_raw == "." || last_raw == "..";
        let follow_final = follow_final_symlink || must_be_dir;
        // Components still to walk, the next one last; symlink targets are pushed on top.
        let mut todo: Vec<Component<'_>> = path::components(path).rev().collect();
        let mut cur = ROOT;
        let mut links = 0u32;
        while let Some(c) = todo.pop() {
            let dir = self.node(cur);
            if dir.kind != NodeKind::Dir {
                return Err(FsError::NotADirectory);
            }
            let name = match c {
                Component::ParentDir => {
                    cur = dir.parent;
                    continue;
                }
                Component::Normal(name) => name,
            };
            if name.len() > path::NAME_MAX {
                return Err(FsError::NameTooLong);
            }
            let child = *dir.children.get(name).ok_or(FsError::NotFound)?;
            let node = self.node(child);
            let is_last = todo.is_empty();
            if node.kind == NodeKind::Symlink && (!is_last || follow_final) {
                links += 1;
                if links > MAX_SYMLINKS {
                    return Err(FsError::Loop);
                }
                if node.link_target.is_empty() {
                    return Err(FsError::NotFound);
                }
                if path::is_absolute(node.link_target) {
                    cur = ROOT;
                }
                todo.extend(path::components(node.link_target).rev());
                continue;
            }
            cur = child;
        }
        if must_be_dir && self.node(cur).kind != NodeKind::Dir {
            return Err(FsError::NotADirectory);
        }
        Ok(cur)
    }

    /// The entries of directory `id`, sorted by name (bytewise), without `.` and `..`.
    pub fn read_dir(
        &self,
        id: NodeId,
    ) -> Result<impl Iterator<Item = (&str, NodeId)> + '_, FsError> {
        let node = self.node(id);
        if node.kind != NodeKind::Dir {
            return Err(FsError::NotADirectory);
        }
        Ok(node.children.iter().map(|(name, id)| (*name, *id)))
    }

    /// The entry `name` of directory `id` (no symlink following, no `.`/`..`).
    pub fn child(&self, id: NodeId, name: &str) -> Result<NodeId, FsError> {
        let node = self.node(id);
        if node.kind != NodeKind::Dir {
            return Err(FsError::NotADirectory);
        }
        node.children.get(name).copied().ok_or(FsError::NotFound)
    }

    /// Copies file bytes starting at `offset` into `buf`; returns how many were copied (0 at or
    /// past the end of the file).
    pub fn read_at(&self, id: NodeId, offset: u64, buf: &mut [u8]) -> Result<usize, FsError> {
        let node = self.node(id);
        match node.kind {
            NodeKind::File => {}
            NodeKind::Dir => return Err(FsError::IsADirectory),
            NodeKind::Symlink => return Err(FsError::InvalidArgument),
        }
        let start = match usize::try_from(offset) {
            Ok(start) if start < node.data.len() => start,
            _ => return Ok(0),
        };
        let src = node.data.get(start..).unwrap_or(&[]);
        let n = src.len().min(buf.len());
        buf[..n].copy_from_slice(&src[..n]);
        Ok(n)
    }

    /// Target of symlink `id`.
    pub fn read_link(&self, id: NodeId) -> Result<&'static str, FsError> {
        let node = self.node(id);
        if node.kind != NodeKind::Symlink {
            return Err(FsError::InvalidArgument);
        }
        Ok(node.link_target)
    }

    /// Adds a node within the kernel-heap budget, with room for one more directory-map
    /// entry (a B-tree insertion allocates at most a few nodes).
    fn push(&mut self, node: Node, offset: usize) -> Result<NodeId, TarError> {
        const MAP_INSERT_BYTES: usize = 4096;
        let oom = TarError::OutOfMemory { offset };
        crate::mm::kalloc::charge(MAP_INSERT_BYTES).map_err(|_| oom)?;
        crate::mm::kalloc::try_push(&mut self.nodes, node).map_err(|_| oom)?;
        Ok(NodeId(self.nodes.len() - 1))
    }

    fn add_entry(
        &mut self,
        header: &'static [u8],
        p: Pending,
        typeflag: u8,
        body: &'static [u8],
        offset: usize,
    ) -> Result<(), TarError> {
        let kind = match typeflag {
            b'0' | 0 | b'7' => NodeKind::File,
            b'5' => NodeKind::Dir,
            b'2' => NodeKind::Symlink,
            b'1' => NodeKind::File,
            _ => return Ok(()),
        };
        let num = |start, len, name| parse_number(field(header, start, len), offset, name);
        let mode = (num(100, 8, "mode")? & 0o7777) as u32;
        let uid = p.uid.map_or_else(|| num(108, 8, "uid"), Ok)?;
        let gid = p.gid.map_or_else(|| num(116, 8, "gid"), Ok)?;
        let mtime = match p.mtime {
            Some(t) => t,
            None => parse_signed(field(header, 136, 12), offset, "mtime")?,
        };
        let bad_id = |field| TarError::BadNumber { offset, field };
        let link = match p.link {
            Some(l) => l,
            None => until_nul(field(header, 157, 100)),
        };
        let link = core::str::from_utf8(link).map_err(|_| TarError::BadName { offset })?;
        let entry = Entry {
            offset,
            typeflag,
            mode,
            uid: u32::try_from(uid).map_err(|_| bad_id("uid"))?,
            gid: u32::try_from(gid).map_err(|_| bad_id("gid"))?,
            mtime,
            data: body,
            link,
        };
        // The name: a GNU/pax long name, or ustar prefix + name.
        let name = until_nul(field(header, 0, 100));
        let ustar = field(header, 257, 6) == b"ustar\0";
        let prefix: &'static [u8] = match p.path {
            Some(_) => &[],
            None if ustar => until_nul(field(header, 345, 155)),
            None => &[],
        };
        let name = p.path.unwrap_or(name);
        let mut names: Vec<&'static str> = Vec::new();
        for part in [prefix, name] {
            let part = core::str::from_utf8(part).map_err(|_| TarError::BadName { offset })?;
            for c in path::components(part) {
                match c {
                    Component::Normal(n) if n.len() <= path::NAME_MAX => names.push(n),
                    _ => return Err(TarError::BadName { offset }),
                }
            }
        }
        self.insert(&names, kind, entry)
    }

    fn insert(&mut self, names: &[&'static str], kind: NodeKind, e: Entry) -> Result<(), TarError> {
        let offset = e.offset;
        let Some((&last, dirs)) = names.split_last() else {
            // "./" or "/": metadata of the root itself.
            if kind != NodeKind::Dir {
                return Err(TarError::NotADirectory { offset });
            }
            let root = &mut self.nodes[0];
            (root.mode, root.uid, root.gid, root.mtime) = (e.mode, e.uid, e.gid, e.mtime);
            return Ok(());
        };
        let mut dir = ROOT;
        for &name in dirs {
            dir = match self.nodes[dir.0].children.get(name) {
                Some(&child) if self.nodes[child.0].kind == NodeKind::Dir => child,
                Some(_) => return Err(TarError::NotADirectory { offset }),
                None => {
                    let node = Self::dir_node(dir, IMPLIED_DIR_MODE, 0, 0, 0);
                    self.new_child(dir, name, node, offset)?
                }
            };
        }
        let existing = self.nodes[dir.0].children.get(last).copied();
        if e.typeflag == b'1' {
            let target = self
                .hard_link_target(e.link)
                .ok_or(TarError::BadHardLink { offset })?;
            if existing == Some(target) {
                return Ok(());
            }
            crate::mm::kalloc::charge(4096).map_err(|_| TarError::OutOfMemory { offset })?;
            self.unlink(dir, last);
            self.nodes[dir.0].children.insert(last, target);
            self.nodes[target.0].nlink = self.nodes[target.0].nlink.saturating_add(1);
            return Ok(());
        }
        if kind == NodeKind::Dir {
            if let Some(id) = existing.filter(|id| self.nodes[id.0].kind == NodeKind::Dir) {
                // A directory entry after an implied one, or a repeat: update its metadata.
                let node = &mut self.nodes[id.0];
                (node.mode, node.uid, node.gid, node.mtime) = (e.mode, e.uid, e.gid, e.mtime);
                return Ok(());
            }
        }
        if kind == NodeKind::Symlink && e.link.is_empty() {
            return Err(TarError::BadName { offset });
        }
        self.unlink(dir, last);
        let node = match kind {
            NodeKind::Dir => Self::dir_node(dir, e.mode, e.uid, e.gid, e.mtime),
            NodeKind::File | NodeKind::Symlink => Node {
                kind,
                mode: e.mode,
                uid: e.uid,
                gid: e.gid,
                mtime: e.mtime,
                nlink: 1,
                data: if kind == NodeKind::File { e.data } else { &[] },
                link_target: if kind == NodeKind::Symlink {
                    e.link
                } else {
                    ""
                },
                parent: dir,
                children: BTreeMap::new(),
            },
        };
        self.new_child(dir, last, node, offset)?;
        Ok(())
    }

    fn dir_node(parent: NodeId, mode: u32, uid: u32, gid: u32, mtime: i64) -> Node {
        Node {
            kind: NodeKind::Dir,
            mode,
            uid,
            gid,
            mtime,
            nlink: 2,
            data: &[],
            link_target: "",
            parent,
            children: BTreeMap::new(),
        }
    }

    fn new_child(
        &mut self,
        dir: NodeId,
        name: &'static str,
        node: Node,
        offset: usize,
    ) -> Result<NodeId, TarError> {
        let is_dir = node.kind == NodeKind::Dir;
        let id = self.push(node, offset)?;
        let parent = &mut self.nodes[dir.0];
        parent.children.insert(name, id);
        if is_dir {
            parent.nlink = parent.nlink.saturating_add(1);
        }
        Ok(id)
    }

    /// Removes `name` from `dir` as a later entry of the same name replaces it (the node itself
    /// stays in the table, unreachable if it had no other name).
    fn unlink(&mut self, dir: NodeId, name: &str) {
        if let Some(old) = self.nodes[dir.0].children.remove(name) {
            let old = &mut self.nodes[old.0];
            old.nlink = old.nlink.saturating_sub(1);
            if old.kind == NodeKind::Dir {
                let parent = &mut self.nodes[dir.0];
                parent.nlink = parent.nlink.saturating_sub(1);
            }
        }
    }

    /// A hard link names an archive member by its path, without following symlinks.
    fn hard_link_target(&self, link: &str) -> Option<NodeId> {
        let mut cur = ROOT;
        for c in path::components(link) {
            let Component::Normal(name) = c else {
                return None;
            };
            let dir = self.nodes.get(cur.0)?;
            if dir.kind != NodeKind::Dir {
                return None;
            }
            cur = *dir.children.get(name)?;
        }
        let node = self.nodes.get(cur.0)?;
        (node.kind != NodeKind::Dir).then_some(cur)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::boxed::Box;
    use alloc::string::String;
    use alloc::vec;

    fn leak(v: Vec<u8>) -> &'static [u8] {
        Box::leak(v.into_boxed_slice())
    }

    /// A ustar header with `name`, `typeflag`, octal `size`, mode 0644, uid/gid 0, mtime 1000.
    fn header(name: &[u8], typeflag: u8, size: u64) -> [u8; BLOCK] {
        let mut h = [0u8; BLOCK];
        h[..name.len()].copy_from_slice(name);
        h[100..108].copy_from_slice(b"0000644\0");
        h[108..116].copy_from_slice(b"0001750\0");
        h[116..124].copy_from_slice(b"0000144\0");
        let size = alloc::format!("{size:011o}\0");
        h[124..136].copy_from_slice(size.as_bytes());
        h[136..148].copy_from_slice(b"00000001750\0");
        h[156] = typeflag;
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        fix_checksum(&mut h);
        h
    }

    fn fix_checksum(h: &mut [u8; BLOCK]) {
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
        h[148..156].copy_from_slice(alloc::format!("{sum:06o}\0 ").as_bytes());
    }

    fn with_link(mut h: [u8; BLOCK], link: &[u8]) -> [u8; BLOCK] {
        h[157..157 + link.len()].copy_from_slice(link);
        fix_checksum(&mut h);
        h
    }

    /// Header followed by `data` padded to a block.
    fn member(h: [u8; BLOCK], data: &[u8]) -> Vec<u8> {
        let mut v = h.to_vec();
        v.extend_from_slice(data);
        v.resize(v.len().div_ceil(BLOCK) * BLOCK, 0);
        v
    }

    fn file(name: &str, data: &[u8]) -> Vec<u8> {
        member(header(name.as_bytes(), b'0', data.len() as u64), data)
    }

    fn symlink(name: &str, target: &str) -> Vec<u8> {
        member(
            with_link(header(name.as_bytes(), b'2', 0), target.as_bytes()),
            &[],
        )
    }

    fn archive(members: &[Vec<u8>]) -> &'static [u8] {
        let mut v: Vec<u8> = members.concat();
        v.extend_from_slice(&[0u8; 2 * BLOCK]);
        leak(v)
    }

    fn pax_record(key: &str, value: &str) -> String {
        let body = alloc::format!(" {key}={value}\n");
        let mut len = body.len() + 1;
        while alloc::format!("{len}").len() + body.len() != len {
            len += 1;
        }
        alloc::format!("{len}{body}")
    }

    fn contents(fs: &TarFs, path: &str) -> Vec<u8> {
        let id = fs.lookup(path, true).unwrap();
        fs.node(id).data.to_vec()
    }

    fn names(fs: &TarFs, path: &str) -> Vec<String> {
        let id = fs.lookup(path, true).unwrap();
        fs.read_dir(id)
            .unwrap()
            .map(|(n, _)| String::from(n))
            .collect()
    }

    #[test]
    fn archive_from_tar_crate() {
        let mut b = tar::Builder::new(Vec::new());
        let mut add = |path: &str, kind, mode, link: Option<&str>, data: &[u8]| {
            crate::fs::testfs::append(&mut b, path, kind, mode, link, data)
        };
        add("bin/", tar::EntryType::Directory, 0o755, None, b"");
        add(
            "bin/hello",
            tar::EntryType::Regular,
            0o755,
            None,
            b"\x7fELF hello",
        );
        add(
            "etc/motd",
            tar::EntryType::Regular,
            0o644,
            None,
            b"welcome\n",
        );
        add(
            "etc/hello",
            tar::EntryType::Symlink,
            0o777,
            Some("../bin/hello"),
            b"",
        );
        add(
            "bin/hi",
            tar::EntryType::Link,
            0o755,
            Some("bin/hello"),
            b"",
        );
        let long = alloc::format!("deep/{}/file.txt", "x".repeat(150));
        add(&long, tar::EntryType::Regular, 0o600, None, &[7u8; 1000]);
        let fs = TarFs::new(leak(b.into_inner().unwrap())).unwrap();

        let hello = fs.lookup("/bin/hello", true).unwrap();
        let n = fs.node(hello);
        assert_eq!(n.kind, NodeKind::File);
        assert_eq!(
            (n.mode, n.uid, n.gid, n.mtime),
            (0o755, 1000, 100, 1_700_000_000)
        );
        assert_eq!(n.data, b"\x7fELF hello");
        assert_eq!(n.nlink, 2);
        assert_eq!(fs.lookup("/bin/hi", true), Ok(hello));
        assert_eq!(fs.lookup("/etc/hello", true), Ok(hello));
        let link = fs.lookup("/etc/hello", false).unwrap();
        assert_eq!(fs.node(link).kind, NodeKind::Symlink);
        assert_eq!(fs.read_link(link), Ok("../bin/hello"));
        assert_eq!(fs.node(link).size(), 12);
        assert_eq!(contents(&fs, &long), vec![7u8; 1000]);
        assert_eq!(names(&fs, "/"), ["bin", "deep", "etc"]);
        assert_eq!(names(&fs, "/etc"), ["hello", "motd"]);
        // Implied directories get default metadata.
        let etc = fs.node(fs.lookup("/etc", true).unwrap());
        assert_eq!((etc.kind, etc.mode), (NodeKind::Dir, IMPLIED_DIR_MODE));
        assert_eq!(fs.node(fs.root()).nlink, 5);
    }

    #[test]
    fn read_at_bounds() {
        let fs = TarFs::new(archive(&[file("f", b"0123456789")])).unwrap();
        let id = fs.lookup("/f", true).unwrap();
        let mut buf = [0u8; 4];
        assert_eq!(fs.read_at(id, 0, &mut buf), Ok(4));
        assert_eq!(&buf, b"0123");
        assert_eq!(fs.read_at(id, 8, &mut buf), Ok(2));
        assert_eq!(&buf[..2], b"89");
        assert_eq!(fs.read_at(id, 10, &mut buf), Ok(0));
        assert_eq!(fs.read_at(id, u64::MAX, &mut buf), Ok(0));
        assert_eq!(
            fs.read_at(fs.root(), 0, &mut buf),
            Err(FsError::IsADirectory)
        );
        assert_eq!(fs.read_dir(id).err(), Some(FsError::NotADirectory));
        assert_eq!(fs.read_link(id), Err(FsError::InvalidArgument));
    }

    #[test]
    fn name_forms_and_implied_dirs() {
        let fs = TarFs::new(archive(&[
            member(header(b"./", b'5', 0), &[]),
            file("./a/b/c.txt", b"c"),
            file("/abs/x", b"x"),
            file("plain", b"p"),
            member(header(b"./a/", b'5', 0), &[]),
        ]))
        .unwrap();
        assert_eq!(contents(&fs, "/a/b/c.txt"), b"c");
        assert_eq!(contents(&fs, "/abs/x"), b"x");
        assert_eq!(contents(&fs, "plain"), b"p");
        assert_eq!(names(&fs, "/"), ["a", "abs", "plain"]);
        // The explicit "./a/" entry after its implied creation updates the metadata only.
        let a = fs.node(fs.lookup("/a", true).unwrap());
        assert_eq!((a.mode, a.uid), (0o644, 0o1750));
        assert_eq!(names(&fs, "/a"), ["b"]);
        assert_eq!(fs.node(fs.root()).mode, 0o644);
        assert_eq!(
            fs.node(fs.lookup("/a/b", true).unwrap()).parent,
            fs.lookup("/a", true).unwrap()
        );
    }

    #[test]
    fn ustar_prefix_joined() {
        let mut h = header(b"name.txt", b'0', 3);
        h[345..345 + 11].copy_from_slice(b"some/prefix");
        fix_checksum(&mut h);
        let fs = TarFs::new(archive(&[member(h, b"abc")])).unwrap();
        assert_eq!(contents(&fs, "/some/prefix/name.txt"), b"abc");
    }

    #[test]
    fn gnu_long_name_and_link() {
        let long_name = alloc::format!("dir/{}", "n".repeat(200));
        let long_link = alloc::format!("/dir/{}", "n".repeat(200));
        let mut name_data = long_name.clone().into_bytes();
        name_data.push(0);
        let mut link_data = long_link.into_bytes();
        link_data.push(0);
        let mut gnu = header(b"././@LongLink", b'L', name_data.len() as u64);
        gnu[257..265].copy_from_slice(b"ustar  \0");
        fix_checksum(&mut gnu);
        let fs = TarFs::new(archive(&[
            member(gnu, &name_data),
            file("ignored-short-name", b"long"),
            member(header(b"././@LongLink", b'L', 7), b"l.link\0"),
            member(
                header(b"././@LongLink", b'K', link_data.len() as u64),
                &link_data,
            ),
            symlink("short", "short-target"),
        ]))
        .unwrap();
        assert_eq!(contents(&fs, &long_name), b"long");
        assert_eq!(contents(&fs, "/l.link"), b"long");
        assert_eq!(
            fs.lookup("/ignored-short-name", true),
            Err(FsError::NotFound)
        );
    }

    #[test]
    fn pax_headers() {
        let q = "q".repeat(100);
        let long = alloc::format!("p/{q}/{q}/{q}");
        let records = [
            pax_record("path", &long),
            pax_record("mtime", "1234567890.5"),
            pax_record("uid", "70000"),
            pax_record("comment", "ignored"),
        ]
        .concat();
        let link_records = [
            pax_record("linkpath", &alloc::format!("/{long}")),
            pax_record("path", "p/lnk"),
        ]
        .concat();
        let global = pax_record("path", "must/not/apply");
        // The pax size overrides the header's (here deliberately wrong) size.
        let sized = pax_record("size", "5");
        let fs = TarFs::new(archive(&[
            member(
                header(b"pax_global_header", b'g', global.len() as u64),
                global.as_bytes(),
            ),
            member(
                header(b"PaxHeaders/x", b'x', records.len() as u64),
                records.as_bytes(),
            ),
            file("short", b"paxdata"),
            member(
                header(b"PaxHeaders/y", b'x', link_records.len() as u64),
                link_records.as_bytes(),
            ),
            symlink("ignored", "ignored"),
            member(
                header(b"PaxHeaders/z", b'x', sized.len() as u64),
                sized.as_bytes(),
            ),
            member(header(b"sized", b'0', 99), b"12345"),
            file("after", b"ok"),
        ]))
        .unwrap();
        let id = fs.lookup(&long, true).unwrap();
        assert_eq!(fs.node(id).data, b"paxdata");
        assert_eq!((fs.node(id).mtime, fs.node(id).uid), (1_234_567_890, 70000));
        assert_eq!(fs.lookup("/p/lnk", true), Ok(id));
        assert_eq!(fs.lookup("/must", true), Err(FsError::NotFound));
        assert_eq!(contents(&fs, "/sized"), b"12345");
        assert_eq!(contents(&fs, "/after"), b"ok");
        assert_eq!(names(&fs, "/"), ["after", "p", "sized"]);
    }

    #[test]
    fn malformed_pax_is_an_error() {
        for bad in [
            "30 path=x\n",
            "x path=x\n",
            "9 pathx\n",
            "4 a\n",
            "12 path=x\nAB",
        ] {
            let t = archive(&[
                member(header(b"x", b'x', bad.len() as u64), bad.as_bytes()),
                file("f", b""),
            ]);
            assert_eq!(
                TarFs::new(t).err(),
                Some(TarError::BadPax { offset: 0 }),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn base256_numbers() {
        let mut h = header(b"big", b'0', 0);
        h[124..136].copy_from_slice(&[0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, 0x01]);
        h[136..148].copy_from_slice(&[0xff; 12]); // -1
        fix_checksum(&mut h);
        let data = vec![9u8; 513];
        let fs = TarFs::new(archive(&[member(h, &data)])).unwrap();
        let id = fs.lookup("/big", true).unwrap();
        assert_eq!(fs.node(id).data.len(), 513);
        assert_eq!(fs.node(id).mtime, -1);
        // A negative size, or one that overflows 64 bits, is an error.
        let mut h = header(b"neg", b'0', 0);
        h[124..136].copy_from_slice(&[0xff; 12]);
        fix_checksum(&mut h);
        assert_eq!(
            TarFs::new(archive(&[member(h, &[])])).err(),
            Some(TarError::BadNumber {
                offset: 0,
                field: "size"
            })
        );
        let mut h = header(b"huge", b'0', 0);
        h[124..136].copy_from_slice(&[0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
        fix_checksum(&mut h);
        assert!(TarFs::new(archive(&[member(h, &[])])).is_err());
    }

    #[test]
    fn bad_checksum_names_offset() {
        let mut second = header(b"b", b'0', 0);
        second[0] = b'c';
        let t = archive(&[file("a", b"12"), member(second, &[])]);
        let err = TarFs::new(t).unwrap_err();
        assert_eq!(err, TarError::BadChecksum { offset: 1024 });
        assert_eq!(
            alloc::format!("{err}"),
            "bad header checksum at offset 1024"
        );
        let mut garbage = [b'x'; BLOCK];
        garbage[148..156].copy_from_slice(b"garbage!");
        assert_eq!(
            TarFs::new(leak(garbage.to_vec())).err(),
            Some(TarError::BadChecksum { offset: 0 })
        );
    }

    #[test]
    fn signed_checksum_accepted() {
        let mut h = header(b"\xc3\xa9t\xc3\xa9", b'0', 0);
        h[148..156].copy_from_slice(b"        ");
        let sum: i64 = h.iter().map(|&b| i64::from(b as i8)).sum();
        h[148..156].copy_from_slice(alloc::format!("{sum:06o}\0 ").as_bytes());
        let fs = TarFs::new(archive(&[member(h, &[])])).unwrap();
        assert!(fs.lookup("/été", true).is_ok());
    }

    #[test]
    fn truncated_archives() {
        let full = archive(&[file("a", b"hello"), file("b", &[1u8; 600])]);
        // Cut inside the second header, and inside the second file's data.
        for (cut, offset) in [(1024 + 100, 1024), (1536 + 100, 1024)] {
            let t = leak(full[..cut].to_vec());
            assert_eq!(
                TarFs::new(t).err(),
                Some(TarError::Truncated { offset }),
                "cut {cut}"
            );
        }
        // Missing end-of-archive blocks and missing final padding are fine.
        assert!(TarFs::new(leak(full[..1536 + 600].to_vec())).is_ok());
        assert!(TarFs::new(leak(full[..1024].to_vec())).is_ok());
        assert_eq!(TarFs::new(leak(Vec::new())).unwrap().node_count(), 1);
        // A size that points past the end of the data.
        let t = leak(header(b"a", b'0', 1 << 30).to_vec());
        assert_eq!(TarFs::new(t).err(), Some(TarError::Truncated { offset: 0 }));
        let t = leak(header(b"a", b'0', 0o77777777777).to_vec());
        assert_eq!(TarFs::new(t).err(), Some(TarError::Truncated { offset: 0 }));
    }

    #[test]
    fn bad_entries() {
        let dotdot = archive(&[file("a/../../etc/passwd", b"")]);
        assert_eq!(
            TarFs::new(dotdot).err(),
            Some(TarError::BadName { offset: 0 })
        );
        let mut h = header(b"bad\xff", b'0', 0);
        fix_checksum(&mut h);
        assert_eq!(
            TarFs::new(archive(&[member(h, &[])])).err(),
            Some(TarError::BadName { offset: 0 })
        );
        let below_file = archive(&[file("f", b""), file("f/g", b"")]);
        assert_eq!(
            TarFs::new(below_file).err(),
            Some(TarError::NotADirectory { offset: 512 })
        );
        let root_file = archive(&[file("./", b"")]);
        assert_eq!(
            TarFs::new(root_file).err(),
            Some(TarError::NotADirectory { offset: 0 })
        );
        let dangling = archive(&[member(with_link(header(b"h", b'1', 0), b"nothere"), &[])]);
        assert_eq!(
            TarFs::new(dangling).err(),
            Some(TarError::BadHardLink { offset: 0 })
        );
        let to_dir = archive(&[
            member(header(b"d/", b'5', 0), &[]),
            member(with_link(header(b"h", b'1', 0), b"d"), &[]),
        ]);
        assert_eq!(
            TarFs::new(to_dir).err(),
            Some(TarError::BadHardLink { offset: 512 })
        );
        let empty_symlink = archive(&[symlink("s", "")]);
        assert_eq!(
            TarFs::new(empty_symlink).err(),
            Some(TarError::BadName { offset: 0 })
        );
        let mut bad_mode = header(b"m", b'0', 0);
        bad_mode[100..108].copy_from_slice(b"0x00644\0");
        fix_checksum(&mut bad_mode);
        assert_eq!(
            TarFs::new(archive(&[member(bad_mode, &[])])).err(),
            Some(TarError::BadNumber {
                offset: 0,
                field: "mode"
            })
        );
    }

    #[test]
    fn later_entries_replace_earlier_ones_and_others_are_skipped() {
        let fs = TarFs::new(archive(&[
            file("x", b"old"),
            file("x", b"new"),
            member(header(b"fifo", b'6', 0), &[]),
            member(header(b"chr", b'3', 0), &[]),
            member(header(b"sparse", b'S', 4), b"junk"),
            file("y", b"y"),
        ]))
        .unwrap();
        assert_eq!(contents(&fs, "/x"), b"new");
        assert_eq!(names(&fs, "/"), ["x", "y"]);
    }

    #[test]
    fn lookup_semantics() {
        let fs = TarFs::new(archive(&[
            file("usr/bin/tool", b"t"),
            file("usr/lib/libc.a", b"l"),
            symlink("bin", "usr/bin"),
            symlink("usr/bin/rel", "../lib/libc.a"),
            symlink("usr/abs", "/usr/lib"),
            symlink("dangling", "/nowhere"),
            symlink("up", ".."),
        ]))
        .unwrap();
        let tool = fs.lookup("/usr/bin/tool", true).unwrap();
        assert_eq!(fs.lookup("/bin/tool", true), Ok(tool));
        assert_eq!(fs.lookup("bin/tool", false), Ok(tool));
        assert_eq!(fs.lookup("/usr/./bin/../bin//tool", true), Ok(tool));
        assert_eq!(fs.lookup("/../../usr/bin/tool", true), Ok(tool));
        assert_eq!(contents(&fs, "/bin/rel"), b"l");
        assert_eq!(contents(&fs, "/usr/abs/libc.a"), b"l");
        // ".." after a symlink goes to the parent of the target, not of the link.
        assert_eq!(fs.lookup("/bin/..", true), fs.lookup("/usr", true));
        assert_eq!(fs.lookup("/up", true), Ok(fs.root()));
        assert_eq!(fs.lookup("/", true), Ok(fs.root()));
        assert_eq!(
            fs.node(fs.lookup("/bin", false).unwrap()).kind,
            NodeKind::Symlink
        );
        assert_eq!(
            fs.node(fs.lookup("/bin/", false).unwrap()).kind,
            NodeKind::Dir
        );
        assert_eq!(fs.lookup("/dangling", true), Err(FsError::NotFound));
        assert_eq!(
            fs.node(fs.lookup("/dangling", false).unwrap()).kind,
            NodeKind::Symlink
        );
        assert_eq!(fs.lookup("/nope", true), Err(FsError::NotFound));
        assert_eq!(
            fs.lookup("/usr/bin/tool/x", true),
            Err(FsError::NotADirectory)
        );
        assert_eq!(
            fs.lookup("/usr/bin/tool/", true),
            Err(FsError::NotADirectory)
        );
        assert_eq!(
            fs.lookup("/usr/bin/tool/.", true),
            Err(FsError::NotADirectory)
        );
        assert_eq!(
            fs.lookup("/usr/bin/tool/..", true),
            Err(FsError::NotADirectory)
        );
        assert_eq!(fs.lookup("", true), Err(FsError::NotFound));
        assert_eq!(fs.lookup(&"a".repeat(300), true), Err(FsError::NameTooLong));
        assert_eq!(
            fs.lookup(&"/a".repeat(2048), true),
            Err(FsError::NameTooLong)
        );
    }

    #[test]
    fn symlink_loops() {
        let mut members = vec![
            symlink("self", "self"),
            symlink("a", "b"),
            symlink("b", "a"),
        ];
        // A chain of exactly MAX_SYMLINKS links resolves; one more is a loop.
        for i in 0..=MAX_SYMLINKS {
            members.push(symlink(
                &alloc::format!("c{i}"),
                &alloc::format!("c{}", i + 1),
            ));
        }
        members.push(file(&alloc::format!("c{}", MAX_SYMLINKS + 1), b"end"));
        let fs = TarFs::new(archive(&members)).unwrap();
        assert_eq!(fs.lookup("/self", true), Err(FsError::Loop));
        assert_eq!(fs.lookup("/a/x", false), Err(FsError::Loop));
        assert!(fs.lookup("/a", false).is_ok());
        assert_eq!(contents(&fs, "/c1"), b"end");
        assert_eq!(fs.lookup("/c0", true), Err(FsError::Loop));
        assert_eq!(FsError::Loop.errno(), 40);
    }

    #[test]
    fn errno_values() {
        let all = [
            (FsError::NotFound, 2),
            (FsError::NotADirectory, 20),
            (FsError::IsADirectory, 21),
            (FsError::InvalidArgument, 22),
            (FsError::NameTooLong, 36),
            (FsError::Loop, 40),
        ];
        for (e, errno) in all {
            assert_eq!(e.errno(), errno);
        }
    }

    #[test]
    fn hostile_mutations_never_panic() {
        let base = archive(&[
            file("./etc/motd", b"hello world"),
            symlink("l", "etc/motd"),
            member(with_link(header(b"h", b'1', 0), b"etc/motd"), &[]),
            member(header(b"x", b'x', 12), b"12 path=x/y\n"),
            file("z", &[3u8; 700]),
        ]);
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..3000 {
            let mut v = base.to_vec();
            for _ in 0..1 + next() % 8 {
                let i = (next() % v.len() as u64) as usize;
                v[i] = next() as u8;
            }
            // Keep the checksums right half of the time so the parser gets past them.
            if next() % 2 == 0 {
                for chunk in v.chunks_exact_mut(BLOCK) {
                    if chunk[257..262] == *b"ustar" {
                        fix_checksum(chunk.try_into().unwrap());
                    }
                }
            }
            let cut = (next() % (v.len() as u64 + 1)) as usize;
            if let Ok(fs) = TarFs::new(leak(v[..cut].to_vec())) {
                for p in ["/etc/motd", "/l", "/h", "/x/y", "/z", "/etc/"] {
                    if let Ok(id) = fs.lookup(p, true) {
                        let _ = fs.read_at(id, 5, &mut [0u8; 16]);
                        let _ = fs.read_dir(id).map(|d| d.count());
                    }
                }
            }
        }
    }
}

//! `/proc`: a directory per process (`/proc/[pid]` with `stat status statm cmdline comm
//! environ maps mounts exe cwd fd/ fdinfo/`), `/proc/self` naming the caller's, the machine
//! files `cpuinfo filesystems loadavg meminfo mounts stat uptime version`, and the
//! read-only `/proc/sys` tree, in a small file system mounted on `/proc`. Their text comes
//! from [`super::procinfo`] and [`super::procsys`], made afresh for each read.
//!
//! `/proc/self/exe` is the walking process's business: the walk hands its exec'ed path
//! to [`Inode::readlink_as`]; the canonical target `readlink` shows is computed by the
//! namespace ([`super::vfs::Walker::read_link`]).

use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec::Vec;

use super::inode::{FileType, FsStats, Inode, InodeRef, ST_NODEV, ST_NOEXEC, ST_NOSUID};
use super::path;
use super::procinfo;
use super::procsys;
use super::stat::{Metadata, Timestamp, S_IFDIR, S_IFLNK, S_IFREG};
use crate::errno::Errno;

/// The magic path.
pub const EXE_PATH: &str = "/proc/self/exe";

/// The device number reported for `/proc` files.
const PROCFS_DEV: (u32, u32) = (0, 0x16);

/// `PROC_SUPER_MAGIC`.
const PROC_MAGIC: u64 = 0x9fa0;

/// The machine-wide files of `/proc`.
const GLOBALS: [&str; 8] = [
    "cpuinfo",
    "filesystems",
    "loadavg",
    "meminfo",
    "mounts",
    "stat",
    "uptime",
    "version",
];

/// The files of a `/proc/[pid]` directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PidFile {
    Cmdline,
    Comm,
    Environ,
    Maps,
    Mounts,
    Stat,
    Statm,
    Status,
}

/// Names of a `/proc/[pid]` directory's regular files, in name order.
const PID_FILES: [(&str, PidFile); 8] = [
    ("cmdline", PidFile::Cmdline),
    ("comm", PidFile::Comm),
    ("environ", PidFile::Environ),
    ("maps", PidFile::Maps),
    ("mounts", PidFile::Mounts),
    ("stat", PidFile::Stat),
    ("statm", PidFile::Statm),
    ("status", PidFile::Status),
];

/// A node of the `/proc` file system.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcNode {
    /// `/proc`.
    Root,
    /// `/proc/self`, a symlink to the caller's directory.
    SelfLink,
    /// A machine-wide file (index into [`GLOBALS`]).
    Global(usize),
    /// `/proc/[pid]`.
    Pid(u32),
    /// A file of `/proc/[pid]`.
    File(u32, PidFile),
    /// `/proc/[pid]/exe`.
    Exe(u32),
    /// `/proc/[pid]/cwd`.
    Cwd(u32),
    /// `/proc/[pid]/fd`.
    Fds(u32),
    /// `/proc/[pid]/fd/N`.
    Fd(u32, u32),
    /// `/proc/[pid]/fdinfo`.
    FdInfos(u32),
    /// `/proc/[pid]/fdinfo/N`.
    FdInfo(u32, u32),
    /// A directory of `/proc/sys` (index into [`procsys::DIRS`]; 0 is `/proc/sys`).
    SysDir(usize),
    /// A file of `/proc/sys` (index into [`procsys::FILES`]).
    SysFile(usize),
}

/// The root of a `/proc` file system, to mount on `/proc`.
pub fn root() -> InodeRef {
    Arc::new(ProcNode::Root)
}

/// The absolute, normalised form of the exec'ed path `exe` (what the walk follows).
pub fn exe_abs(exe: &str) -> String {
    let joined = path::join("/", exe).unwrap_or_else(|_| String::from("/"));
    path::normalize(&joined).unwrap_or(joined)
}

impl ProcNode {
    /// Whether this is the caller's `exe` link.
    pub fn is_own_exe(&self) -> bool {
        matches!(self, ProcNode::Exe(pid) if Some(*pid) == procinfo::self_pid())
    }

    fn ino_of(self) -> u64 {
        let base = |pid: u32| (u64::from(pid) + 1) << 32;
        match self {
            ProcNode::Root => 1,
            ProcNode::SelfLink => 2,
            ProcNode::Global(i) => 3 + i as u64,
            ProcNode::SysDir(i) => 16 + i as u64,
            ProcNode::SysFile(i) => 32 + i as u64,
            ProcNode::Pid(pid) => base(pid),
            ProcNode::File(pid, f) => base(pid) + 1 + f as u64,
            ProcNode::Exe(pid) => base(pid) + 32,
            ProcNode::Cwd(pid) => base(pid) + 33,
            ProcNode::Fds(pid) => base(pid) + 34,
            ProcNode::Fd(pid, fd) => base(pid) + (1 << 20) + u64::from(fd),
            ProcNode::FdInfos(pid) => base(pid) + 35,
            ProcNode::FdInfo(pid, fd) => base(pid) + (2 << 20) + u64::from(fd),
        }
    }

    fn meta(self, size: u64) -> Metadata {
        let (mode, nlink) = match self {
            ProcNode::Root | ProcNode::Pid(_) | ProcNode::SysDir(_) => (S_IFDIR | 0o555, 3),
            ProcNode::Fds(_) => (S_IFDIR | 0o500, 2),
            ProcNode::FdInfos(_) => (S_IFDIR | 0o555, 2),
            ProcNode::SelfLink | ProcNode::Exe(_) | ProcNode::Cwd(_) => (S_IFLNK | 0o777, 1),
            ProcNode::Fd(pid, fd) => (S_IFLNK | procinfo::fd_link_mode(pid, fd), 1),
            ProcNode::File(_, PidFile::Environ) => (S_IFREG | 0o400, 1),
            ProcNode::File(..)
            | ProcNode::Global(_)
            | ProcNode::FdInfo(..)
            | ProcNode::SysFile(_) => (S_IFREG | 0o444, 1),
        };
        Metadata {
            dev: PROCFS_DEV,
            ino: self.ino_of(),
            mode,
            nlink,
            uid: 0,
            gid: 0,
            rdev: (0, 0),
            size,
            atime: Timestamp::default(),
            mtime: Timestamp::default(),
            ctime: Timestamp::default(),
            mount_root: self == ProcNode::Root,
        }
    }

    /// The text of a readable file, made now.
    fn content(self) -> Result<Vec<u8>, Errno> {
        let text = match self {
            ProcNode::Global(i) => match GLOBALS[i] {
                "cpuinfo" => {
                    let mhz = crate::time::tsc_khz().unwrap_or(0) / 1000;
                    Some(procsys::format_cpuinfo(procsys::cpuid(), 1, mhz))
                }
                "filesystems" => Some(procsys::filesystems()),
                "version" => Some(procsys::version()),
                name => procinfo::global(name),
            },
            ProcNode::SysFile(i) => Some((procsys::FILES[i].text)()),
            ProcNode::FdInfo(pid, fd) => procinfo::fd_info(pid, fd),
            ProcNode::File(pid, f) => match f {
                PidFile::Cmdline => return procinfo::strings(pid, true).ok_or(Errno::ESRCH),
                PidFile::Environ => return procinfo::strings(pid, false).ok_or(Errno::ESRCH),
                PidFile::Maps => procinfo::maps(pid).or_else(|| {
                    // A zombie has no address space: an empty file.
                    procinfo::exists(pid).then(String::new)
                }),
                PidFile::Mounts => procinfo::global("mounts"),
                PidFile::Comm => procinfo::view(pid).map(|v| v.comm + "\n"),
                PidFile::Stat => procinfo::view(pid).map(|v| procinfo::format_stat(&v)),
                PidFile::Statm => procinfo::view(pid).map(|v| procinfo::format_statm(&v)),
                PidFile::Status => procinfo::view(pid).map(|v| procinfo::format_status(&v)),
            },
            _ => return Err(Errno::EISDIR),
        };
        text.map(String::into_bytes).ok_or(Errno::ESRCH)
    }

    fn file_type_of(self) -> FileType {
        match self {
            ProcNode::Root
            | ProcNode::Pid(_)
            | ProcNode::Fds(_)
            | ProcNode::FdInfos(_)
            | ProcNode::SysDir(_) => FileType::Dir,
            ProcNode::SelfLink | ProcNode::Exe(_) | ProcNode::Cwd(_) | ProcNode::Fd(..) => {
                FileType::Symlink
            }
            ProcNode::Global(_)
            | ProcNode::File(..)
            | ProcNode::FdInfo(..)
            | ProcNode::SysFile(_) => FileType::Regular,
        }
    }
}

/// A decimal number without sign or leading zeros (a pid or descriptor name).
fn parse_num(name: &str) -> Option<u32> {
    if (name.starts_with('0') && name != "0") || !name.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    name.parse().ok()
}

fn entry(node: ProcNode, name: String) -> (String, u64, FileType) {
    (name, node.ino_of(), node.file_type_of())
}

impl Inode for ProcNode {
    fn fs_id(&self) -> u64 {
        u64::from(PROCFS_DEV.1)
    }

    fn ino(&self) -> u64 {
        self.ino_of()
    }

    fn file_type(&self) -> FileType {
        self.file_type_of()
    }

    fn metadata(&self) -> Metadata {
        self.meta(0)
    }

    fn lookup(&self, name: &str) -> Result<InodeRef, Errno> {
        let gone = |pid: u32| !procinfo::exists(pid);
        let node = match *self {
            ProcNode::Root => match name {
                "self" => ProcNode::SelfLink,
                "sys" => ProcNode::SysDir(0),
                _ => match GLOBALS.iter().position(|g| *g == name) {
                    Some(i) => ProcNode::Global(i),
                    None => match parse_num(name) {
                        Some(pid) if !gone(pid) => ProcNode::Pid(pid),
                        _ => return Err(Errno::ENOENT),
                    },
                },
            },
            ProcNode::Pid(pid) if gone(pid) => return Err(Errno::ENOENT),
            ProcNode::Pid(pid) => match name {
                "exe" => ProcNode::Exe(pid),
                "cwd" => ProcNode::Cwd(pid),
                "fd" => ProcNode::Fds(pid),
                "fdinfo" => ProcNode::FdInfos(pid),
                _ => match PID_FILES.iter().find(|(n, _)| *n == name) {
                    Some((_, f)) => ProcNode::File(pid, *f),
                    None => return Err(Errno::ENOENT),
                },
            },
            ProcNode::Fds(pid) => match parse_num(name) {
                Some(fd) if procinfo::fds(pid).contains(&fd) => ProcNode::Fd(pid, fd),
                _ => return Err(Errno::ENOENT),
            },
            ProcNode::FdInfos(pid) => match parse_num(name) {
                Some(fd) if procinfo::fds(pid).contains(&fd) => ProcNode::FdInfo(pid, fd),
                _ => return Err(Errno::ENOENT),
            },
            ProcNode::SysDir(dir) => match procsys::subdir(dir, name) {
                Some(sub) => ProcNode::SysDir(sub),
                None => ProcNode::SysFile(procsys::file(dir, name).ok_or(Errno::ENOENT)?),
            },
            _ => return Err(Errno::ENOTDIR),
        };
        Ok(Arc::new(node))
    }

    fn parent(&self) -> Result<InodeRef, Errno> {
        Ok(Arc::new(match *self {
            ProcNode::Root | ProcNode::SelfLink | ProcNode::Global(_) | ProcNode::Pid(_) => {
                ProcNode::Root
            }
            ProcNode::File(pid, _) | ProcNode::Exe(pid) | ProcNode::Cwd(pid) => ProcNode::Pid(pid),
            ProcNode::Fds(pid) | ProcNode::FdInfos(pid) => ProcNode::Pid(pid),
            ProcNode::Fd(pid, _) => ProcNode::Fds(pid),
            ProcNode::FdInfo(pid, _) => ProcNode::FdInfos(pid),
            ProcNode::SysDir(0) => ProcNode::Root,
            ProcNode::SysDir(dir) => {
                let parent = procsys::DIRS[dir].rsplit_once('/').map_or("", |(p, _)| p);
                let up = procsys::DIRS.iter().position(|d| *d == parent).unwrap_or(0);
                ProcNode::SysDir(up)
            }
            ProcNode::SysFile(i) => ProcNode::SysDir(procsys::FILES[i].dir),
        }))
    }

    fn readlink(&self) -> Result<String, Errno> {
        match *self {
            ProcNode::SelfLink => procinfo::self_pid()
                .map(|p| p.to_string())
                .ok_or(Errno::ENOENT),
            ProcNode::Exe(pid) => procinfo::exe(pid).ok_or(Errno::ENOENT),
            ProcNode::Cwd(pid) => procinfo::cwd(pid).ok_or(Errno::ENOENT),
            ProcNode::Fd(pid, fd) => procinfo::fd_target(pid, fd).ok_or(Errno::ENOENT),
            _ => Err(Errno::EINVAL),
        }
    }

    fn magic_target(&self) -> Option<InodeRef> {
        match *self {
            ProcNode::Fd(pid, fd) => procinfo::fd_node(pid, fd),
            _ => None,
        }
    }

    fn readlink_as(&self, exe: &str) -> Result<String, Errno> {
        if self.is_own_exe() {
            return Ok(exe_abs(exe));
        }
        self.readlink()
    }

    fn entries(&self) -> Result<Vec<(String, u64, FileType)>, Errno> {
        let mut out = Vec::new();
        match *self {
            ProcNode::Root => {
                for pid in procinfo::pids() {
                    out.push(entry(ProcNode::Pid(pid), pid.to_string()));
                }
                for (i, g) in GLOBALS.iter().enumerate() {
                    out.push(entry(ProcNode::Global(i), String::from(*g)));
                }
                out.push(entry(ProcNode::SelfLink, String::from("self")));
                out.push(entry(ProcNode::SysDir(0), String::from("sys")));
            }
            ProcNode::Pid(pid) => {
                out.push(entry(ProcNode::Cwd(pid), String::from("cwd")));
                out.push(entry(ProcNode::Exe(pid), String::from("exe")));
                out.push(entry(ProcNode::Fds(pid), String::from("fd")));
                out.push(entry(ProcNode::FdInfos(pid), String::from("fdinfo")));
                for (name, f) in PID_FILES {
                    out.push(entry(ProcNode::File(pid, f), String::from(name)));
                }
            }
            ProcNode::Fds(pid) => {
                for fd in procinfo::fds(pid) {
                    out.push(entry(ProcNode::Fd(pid, fd), fd.to_string()));
                }
            }
            ProcNode::FdInfos(pid) => {
                for fd in procinfo::fds(pid) {
                    out.push(entry(ProcNode::FdInfo(pid, fd), fd.to_string()));
                }
            }
            ProcNode::SysDir(dir) => {
                for (sub, name) in procsys::subdirs(dir) {
                    out.push(entry(ProcNode::SysDir(sub), String::from(name)));
                }
                for (i, f) in procsys::FILES.iter().enumerate() {
                    if f.dir == dir {
                        out.push(entry(ProcNode::SysFile(i), String::from(f.name)));
                    }
                }
            }
            _ => return Err(Errno::ENOTDIR),
        }
        // Directory readers resume by name: keep name order.
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    // Nothing is created or removed in /proc: Linux says ENOENT for new names there.
    fn create(&self, _: &str, _: FileType, _: u32, _: &str) -> Result<InodeRef, Errno> {
        Err(Errno::ENOENT)
    }

    fn link(&self, _: &str, _: &InodeRef) -> Result<(), Errno> {
        Err(Errno::ENOENT)
    }

    fn unlink(&self, _: &str) -> Result<(), Errno> {
        Err(Errno::EACCES)
    }

    fn rmdir(&self, _: &str) -> Result<(), Errno> {
        Err(Errno::EACCES)
    }

    fn rename(&self, _: &str, _: &InodeRef, _: &str) -> Result<(), Errno> {
        Err(Errno::EACCES)
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        let text = self.content()?;
        let Ok(start) = usize::try_from(offset) else {
            return Ok(0);
        };
        if start >= text.len() {
            return Ok(0);
        }
        let n = buf.len().min(text.len() - start);
        buf[..n].copy_from_slice(&text[start..start + n]);
        Ok(n)
    }

    fn write_at(&self, _: u64, _: &[u8]) -> Result<usize, Errno> {
        match (self, self.file_type_of()) {
            (_, FileType::Dir) => Err(Errno::EISDIR),
            // No tunables: /proc/sys refuses writes as Linux does a writer without the
            // right.
            (ProcNode::SysFile(_), _) => Err(Errno::EACCES),
            _ => Err(Errno::EINVAL),
        }
    }

    fn truncate(&self, _: u64) -> Result<(), Errno> {
        match self.file_type_of() {
            FileType::Dir => Err(Errno::EISDIR),
            _ => Err(Errno::EPERM),
        }
    }

    fn set_mode(&self, _: u32) -> Result<(), Errno> {
        Err(Errno::EPERM)
    }

    fn as_any(&self) -> &dyn core::any::Any {
        self
    }

    fn statfs(&self) -> FsStats {
        FsStats {
            magic: PROC_MAGIC,
            bsize: 4096,
            flags: ST_NOSUID | ST_NODEV | ST_NOEXEC,
            ..FsStats::default()
        }
    }
}

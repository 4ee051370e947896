//! The host side of `--volume`: a table of handles (`O_PATH` descriptors) to files under
//! the shared directories, and the file operations on them, confined to each directory.
//!
//! Confinement: the guest names files one component at a time, relative to a handle it
//! was given. A name is checked ([`check_name`]: no `/`, not `.` or `..`) and then resolved
//! with `openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_SYMLINKS)` without
//! following a final symlink, so neither `..`, nor an absolute or relative symlink, nor a
//! directory moved meanwhile can take a lookup out of the shared directory; the guest
//! follows symlinks itself, in its own namespace. Creating calls (`mkdirat`, `unlinkat`,
//! `renameat2`, `symlinkat`, `linkat`) take the same single checked component. Data is
//! read and written only on regular files, through the descriptor re-opened by
//! `/proc/self/fd` (the file the handle already names; never a symlink, FIFO or device).
//!
//! Errors are Linux errno values (the host is Linux: the same numbers the guest uses).

use std::collections::HashMap;
use std::ffi::CString;
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirEntryExt, FileExt, FileTypeExt};
use std::path::PathBuf;

use hypercall_abi::{HostFsAttr, HostFsTime};

/// A Linux errno value.
pub type Errno = i32;

/// Most handles the guest may hold at once (each is a host descriptor).
pub const MAX_HANDLES: usize = 4096;
/// Longest name (Linux's `NAME_MAX`).
const NAME_MAX: usize = 255;

/// One shared directory.
pub struct Volume {
    /// `O_PATH` descriptor of the host directory.
    root: OwnedFd,
    /// Where the guest mounts it.
    pub guest_path: String,
    /// Writes are refused with `EROFS`.
    pub read_only: bool,
}

impl Volume {
    /// Opens `host_dir` for sharing at `guest_path`.
    pub fn open(
        host_dir: &std::path::Path,
        guest_path: &str,
        read_only: bool,
    ) -> std::io::Result<Volume> {
        let path = CString::new(host_dir.as_os_str().as_bytes())
            .map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?;
        // SAFETY: a plain open of a NUL-terminated path; the result is checked.
        let fd = unsafe {
            libc::open(
                path.as_ptr(),
                libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: `fd` was just opened and is owned by nobody else.
        let root = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Volume {
            root,
            guest_path: guest_path.to_owned(),
            read_only,
        })
    }
}

struct Entry {
    fd: OwnedFd,
    volume: usize,
    reader: Option<File>,
    writer: Option<File>,
}

/// The shared directories and the handles the guest holds.
pub struct HostFs {
    volumes: Vec<Volume>,
    handles: HashMap<u64, Entry>,
    next: u64,
}

fn last_errno() -> Errno {
    std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

fn io_errno(e: &std::io::Error) -> Errno {
    e.raw_os_error().unwrap_or(libc::EIO)
}

/// Checks a single path component from the guest: `EINVAL` for empty, `.`, `..`, or one
/// containing `/` or NUL; `ENAMETOOLONG` past 255 bytes.
pub fn check_name(name: &[u8]) -> Result<CString, Errno> {
    if name.len() > NAME_MAX {
        return Err(libc::ENAMETOOLONG);
    }
    if name.is_empty() || name == b"." || name == b".." || name.contains(&b'/') {
        return Err(libc::EINVAL);
    }
    CString::new(name).map_err(|_| libc::EINVAL)
}

fn time(sec: i64, nsec: i64) -> HostFsTime {
    HostFsTime {
        sec,
        nsec: nsec.clamp(0, 999_999_999) as u32,
        _pad: 0,
    }
}

fn fstat(fd: RawFd) -> Result<libc::stat, Errno> {
    // SAFETY: an all-zero stat is a valid value to be overwritten.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    let empty = c"";
    // SAFETY: `st` is a valid out pointer; AT_EMPTY_PATH stats `fd` itself (an O_PATH
    // descriptor is allowed) without following anything.
    let r = unsafe {
        libc::fstatat(
            fd,
            empty.as_ptr(),
            &mut st,
            libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    if r < 0 {
        return Err(last_errno());
    }
    Ok(st)
}

fn attr_of(st: &libc::stat) -> HostFsAttr {
    HostFsAttr {
        ino: st.st_ino,
        size: st.st_size as u64,
        blocks: st.st_blocks as u64,
        mode: st.st_mode,
        nlink: st.st_nlink as u32,
        uid: st.st_uid,
        gid: st.st_gid,
        atime: time(st.st_atime, st.st_atime_nsec),
        mtime: time(st.st_mtime, st.st_mtime_nsec),
        ctime: time(st.st_ctime, st.st_ctime_nsec),
    }
}

/// `openat2` of the single component `name` beneath `dir`, as the module doc says.
fn open_beneath(dir: RawFd, name: &CString, flags: i32, mode: u32) -> Result<OwnedFd, Errno> {
    // SAFETY: open_how is plain integers; all-zero is valid (and what unused fields need).
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (flags | libc::O_CLOEXEC | libc::O_NOFOLLOW) as u64;
    how.mode = if flags & libc::O_CREAT != 0 {
        u64::from(mode)
    } else {
        0
    };
    how.resolve = libc::RESOLVE_BENEATH | libc::RESOLVE_NO_MAGICLINKS | libc::RESOLVE_NO_SYMLINKS;
    // SAFETY: openat2 with a NUL-terminated name and a valid open_how of the size passed;
    // the result is checked.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            dir,
            name.as_ptr(),
            &how as *const libc::open_how,
            std::mem::size_of::<libc::open_how>(),
        )
    };
    if fd < 0 {
        // With RESOLVE_NO_SYMLINKS, a final symlink under O_PATH|O_NOFOLLOW is opened
        // as itself; ELOOP only comes for other flag combinations.
        return Err(last_errno());
    }
    // SAFETY: openat2 returned a new descriptor that nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

fn proc_path(fd: RawFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{fd}"))
}

fn check(r: libc::c_int) -> Result<(), Errno> {
    if r < 0 {
        Err(last_errno())
    } else {
        Ok(())
    }
}

impl HostFs {
    /// The device's state over `volumes`.
    pub fn new(volumes: Vec<Volume>) -> Self {
        HostFs {
            volumes,
            handles: HashMap::new(),
            next: 1,
        }
    }

    /// The number of volumes.
    pub fn volume_count(&self) -> usize {
        self.volumes.len()
    }

    /// The number of handles held.
    pub fn handle_count(&self) -> usize {
        self.handles.len()
    }

    fn entry(&self, handle: u64) -> Result<&Entry, Errno> {
        self.handles.get(&handle).ok_or(libc::EBADF)
    }

    fn writable(&self, handle: u64) -> Result<&Entry, Errno> {
        let e = self.entry(handle)?;
        if self.volumes[e.volume].read_only {
            return Err(libc::EROFS);
        }
        Ok(e)
    }

    fn insert(&mut self, fd: OwnedFd, volume: usize) -> Result<(u64, HostFsAttr), Errno> {
        if self.handles.len() >= MAX_HANDLES {
            return Err(libc::ENFILE);
        }
        let attr = attr_of(&fstat(fd.as_raw_fd())?);
        let handle = self.next;
        self.next += 1;
        self.handles.insert(
            handle,
            Entry {
                fd,
                volume,
                reader: None,
                writer: None,
            },
        );
        Ok((handle, attr))
    }

    /// A new handle on the root of volume `index`: (handle, attributes, read-only, guest path).
    pub fn volume(&mut self, index: u32) -> Result<(u64, HostFsAttr, bool, String), Errno> {
        let i = index as usize;
        let v = self.volumes.get(i).ok_or(libc::ENOENT)?;
        let fd = v.root.try_clone().map_err(|e| io_errno(&e))?;
        let (ro, path) = (v.read_only, v.guest_path.clone());
        let (h, attr) = self.insert(fd, i)?;
        Ok((h, attr, ro, path))
    }

    /// Entry `name` of directory `dir`.
    pub fn lookup(&mut self, dir: u64, name: &[u8]) -> Result<(u64, HostFsAttr), Errno> {
        let name = check_name(name)?;
        let e = self.entry(dir)?;
        let volume = e.volume;
        let fd = open_beneath(e.fd.as_raw_fd(), &name, libc::O_PATH, 0)?;
        self.insert(fd, volume)
    }

    /// Drops `handle`.
    pub fn forget(&mut self, handle: u64) -> Result<(), Errno> {
        self.handles.remove(&handle).map(drop).ok_or(libc::EBADF)
    }

    /// The attributes of `handle`.
    pub fn getattr(&self, handle: u64) -> Result<HostFsAttr, Errno> {
        Ok(attr_of(&fstat(self.entry(handle)?.fd.as_raw_fd())?))
    }

    /// The regular file `handle` opened for reading or writing (cached).
    fn io_file(&mut self, handle: u64, write: bool) -> Result<&File, Errno> {
        let e = if write {
            self.writable(handle)?
        } else {
            self.entry(handle)?
        };
        let st = fstat(e.fd.as_raw_fd())?;
        match st.st_mode & libc::S_IFMT {
            libc::S_IFREG => {}
            libc::S_IFDIR => return Err(libc::EISDIR),
            _ => return Err(libc::EINVAL),
        }
        let path = proc_path(e.fd.as_raw_fd());
        let e = self.handles.get_mut(&handle).ok_or(libc::EBADF)?;
        let slot = if write { &mut e.writer } else { &mut e.reader };
        if slot.is_none() {
            use std::os::unix::fs::OpenOptionsExt;
            let file = std::fs::OpenOptions::new()
                .read(!write)
                .write(write)
                .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
                .open(path)
                .map_err(|e| io_errno(&e))?;
            *slot = Some(file);
        }
        slot.as_ref().ok_or(libc::EIO)
    }

    /// Reads up to `len` bytes of `handle` at `offset`.
    pub fn read(&mut self, handle: u64, offset: u64, len: usize) -> Result<Vec<u8>, Errno> {
        let file = self.io_file(handle, false)?;
        let mut buf = vec![0u8; len];
        let n = file.read_at(&mut buf, offset).map_err(|e| io_errno(&e))?;
        buf.truncate(n);
        Ok(buf)
    }

    /// Writes `data` to `handle` at `offset`; the count written.
    pub fn write(&mut self, handle: u64, offset: u64, data: &[u8]) -> Result<usize, Errno> {
        if offset > i64::MAX as u64 {
            return Err(libc::EFBIG);
        }
        let file = self.io_file(handle, true)?;
        file.write_at(data, offset).map_err(|e| io_errno(&e))
    }

    /// Sets the size of regular file `handle`.
    pub fn truncate(&mut self, handle: u64, size: u64) -> Result<(), Errno> {
        if size > i64::MAX as u64 {
            return Err(libc::EINVAL);
        }
        let file = self.io_file(handle, true)?;
        file.set_len(size).map_err(|e| io_errno(&e))
    }

    /// The entries of directory `handle` from number `start` on, packed as
    /// [`hypercall_abi::hostfs::dirent`] records into at most `cap` bytes: (records, next
    /// number, whether none are left).
    pub fn readdir(
        &self,
        handle: u64,
        start: u64,
        cap: usize,
    ) -> Result<(Vec<u8>, u64, bool), Errno> {
        use hypercall_abi::hostfs::dirent::{record_len, HEADER};
        let e = self.entry(handle)?;
        if fstat(e.fd.as_raw_fd())?.st_mode & libc::S_IFMT != libc::S_IFDIR {
            return Err(libc::ENOTDIR);
        }
        let dir = std::fs::read_dir(proc_path(e.fd.as_raw_fd())).map_err(|e| io_errno(&e))?;
        let mut out = Vec::new();
        let mut index = 0u64;
        for entry in dir {
            let entry = entry.map_err(|e| io_errno(&e))?;
            if index < start {
                index += 1;
                continue;
            }
            let name = entry.file_name();
            let name = name.as_bytes();
            let len = record_len(name.len());
            if out.len() + len > cap {
                if out.is_empty() {
                    return Err(libc::EINVAL);
                }
                return Ok((out, index, false));
            }
            let dtype = match entry.file_type() {
                Ok(t) if t.is_dir() => libc::DT_DIR,
                Ok(t) if t.is_file() => libc::DT_REG,
                Ok(t) if t.is_symlink() => libc::DT_LNK,
                Ok(t) if t.is_fifo() => libc::DT_FIFO,
                Ok(t) if t.is_char_device() => libc::DT_CHR,
                Ok(t) if t.is_block_device() => libc::DT_BLK,
                Ok(t) if t.is_socket() => libc::DT_SOCK,
                _ => libc::DT_UNKNOWN,
            };
            let at = out.len();
            out.resize(at + len, 0);
            out[at..at + 8].copy_from_slice(&entry.ino().to_le_bytes());
            out[at + 8] = dtype;
            out[at + 9] = name.len() as u8;
            out[at + HEADER..at + HEADER + name.len()].copy_from_slice(name);
            index += 1;
        }
        Ok((out, index, true))
    }

    /// Creates `name` in `dir` with `mode` (`S_IF*` type and permission bits); a symlink
    /// points to `target`.
    pub fn create(
        &mut self,
        dir: u64,
        name: &[u8],
        mode: u32,
        target: &[u8],
    ) -> Result<(u64, HostFsAttr), Errno> {
        let cname = check_name(name)?;
        let e = self.writable(dir)?;
        let dfd = e.fd.as_raw_fd();
        let perm = mode & 0o7777;
        match mode & libc::S_IFMT {
            libc::S_IFREG => {
                open_beneath(
                    dfd,
                    &cname,
                    libc::O_CREAT | libc::O_EXCL | libc::O_WRONLY,
                    perm,
                )?;
            }
            libc::S_IFDIR => {
                // SAFETY: mkdirat on a live descriptor with a checked single-component
                // NUL-terminated name; the result is checked.
                check(unsafe { libc::mkdirat(dfd, cname.as_ptr(), perm) })?
            }
            libc::S_IFIFO => {
                // SAFETY: as for mkdirat.
                check(unsafe { libc::mknodat(dfd, cname.as_ptr(), libc::S_IFIFO | perm, 0) })?
            }
            libc::S_IFLNK => {
                if target.is_empty() || target.len() >= 4096 {
                    return Err(if target.is_empty() {
                        libc::ENOENT
                    } else {
                        libc::ENAMETOOLONG
                    });
                }
                let t = CString::new(target).map_err(|_| libc::EINVAL)?;
                // SAFETY: symlinkat with two NUL-terminated strings, a live descriptor and
                // a checked name (the target is only text to the host).
                check(unsafe { libc::symlinkat(t.as_ptr(), dfd, cname.as_ptr()) })?
            }
            _ => return Err(libc::EINVAL),
        }
        let (h, attr) = self.lookup(dir, name)?;
        // The guest applied its own umask: the VMM's must not narrow the mode further.
        if mode & libc::S_IFMT != libc::S_IFLNK && attr.mode & 0o7777 != perm {
            if let Ok(attr) = self.setattr(h, Some(perm), None, None) {
                return Ok((h, attr));
            }
        }
        Ok((h, attr))
    }

    /// Removes `name` from `dir` (an empty directory if `is_dir`).
    pub fn unlink(&self, dir: u64, name: &[u8], is_dir: bool) -> Result<(), Errno> {
        let cname = check_name(name)?;
        let e = self.writable(dir)?;
        let flags = if is_dir { libc::AT_REMOVEDIR } else { 0 };
        // SAFETY: unlinkat on a live descriptor and a checked component.
        check(unsafe { libc::unlinkat(e.fd.as_raw_fd(), cname.as_ptr(), flags) })
    }

    /// `renameat2(dir, name, new_dir, new_name, flags)` within one volume.
    pub fn rename(
        &self,
        dir: u64,
        name: &[u8],
        new_dir: u64,
        new_name: &[u8],
        flags: u32,
    ) -> Result<(), Errno> {
        let (a, b) = (check_name(name)?, check_name(new_name)?);
        let (from, to) = (self.writable(dir)?, self.writable(new_dir)?);
        if from.volume != to.volume {
            return Err(libc::EXDEV);
        }
        if flags & !(libc::RENAME_NOREPLACE | libc::RENAME_EXCHANGE) != 0 {
            return Err(libc::EINVAL);
        }
        // SAFETY: renameat2 on live descriptors and checked components.
        let r = unsafe {
            libc::syscall(
                libc::SYS_renameat2,
                from.fd.as_raw_fd(),
                a.as_ptr(),
                to.fd.as_raw_fd(),
                b.as_ptr(),
                flags,
            )
        };
        check(r as libc::c_int)
    }

    /// Adds the hard link `name` in `dir` to the non-directory `target`.
    pub fn link(&self, dir: u64, name: &[u8], target: u64) -> Result<(), Errno> {
        let cname = check_name(name)?;
        let (d, t) = (self.writable(dir)?, self.entry(target)?);
        if d.volume != t.volume {
            return Err(libc::EXDEV);
        }
        match fstat(t.fd.as_raw_fd())?.st_mode & libc::S_IFMT {
            libc::S_IFDIR => return Err(libc::EPERM),
            // Through the magic link a symlink's target could be reached: not offered.
            libc::S_IFLNK => return Err(libc::EOPNOTSUPP),
            _ => {}
        }
        let from = CString::new(proc_path(t.fd.as_raw_fd()).into_os_string().as_bytes())
            .map_err(|_| libc::EINVAL)?;
        // SAFETY: linkat from the magic link of our own descriptor (AT_SYMLINK_FOLLOW
        // resolves it to the file the handle names, never further) to a checked component.
        check(unsafe {
            libc::linkat(
                libc::AT_FDCWD,
                from.as_ptr(),
                d.fd.as_raw_fd(),
                cname.as_ptr(),
                libc::AT_SYMLINK_FOLLOW,
            )
        })
    }

    /// The target of symlink `handle`.
    pub fn readlink(&self, handle: u64) -> Result<Vec<u8>, Errno> {
        let e = self.entry(handle)?;
        let mut buf = vec![0u8; 4096];
        // SAFETY: readlinkat of the O_PATH symlink descriptor itself (empty path) into a
        // buffer of the length passed.
        let n = unsafe {
            libc::readlinkat(
                e.fd.as_raw_fd(),
                c"".as_ptr(),
                buf.as_mut_ptr().cast(),
                buf.len(),
            )
        };
        if n < 0 {
            let err = last_errno();
            // Linux says ENOENT for a non-symlink with an empty path; readlink(2) says EINVAL.
            return Err(if err == libc::ENOENT {
                libc::EINVAL
            } else {
                err
            });
        }
        buf.truncate(n as usize);
        Ok(buf)
    }

    /// Sets the permission bits and/or times of `handle` (`None`: unchanged).
    pub fn setattr(
        &self,
        handle: u64,
        mode: Option<u32>,
        atime: Option<HostFsTime>,
        mtime: Option<HostFsTime>,
    ) -> Result<HostFsAttr, Errno> {
        let e = self.writable(handle)?;
        let st = fstat(e.fd.as_raw_fd())?;
        if st.st_mode & libc::S_IFMT == libc::S_IFLNK {
            // Through the magic link this would reach the symlink's target.
            return Err(libc::EOPNOTSUPP);
        }
        let path = CString::new(proc_path(e.fd.as_raw_fd()).into_os_string().as_bytes())
            .map_err(|_| libc::EINVAL)?;
        if let Some(mode) = mode {
            // SAFETY: chmod of our own descriptor's magic link (not a symlink: checked).
            check(unsafe { libc::chmod(path.as_ptr(), mode & 0o7777) })?;
        }
        if atime.is_some() || mtime.is_some() {
            let ts = |t: Option<HostFsTime>| match t {
                Some(t) if t.nsec < 1_000_000_000 => Ok(libc::timespec {
                    tv_sec: t.sec,
                    tv_nsec: i64::from(t.nsec),
                }),
                Some(_) => Err(libc::EINVAL),
                None => Ok(libc::timespec {
                    tv_sec: 0,
                    tv_nsec: libc::UTIME_OMIT,
                }),
            };
            let times = [ts(atime)?, ts(mtime)?];
            // SAFETY: utimensat of our own descriptor's magic link with two timespecs.
            check(unsafe { libc::utimensat(libc::AT_FDCWD, path.as_ptr(), times.as_ptr(), 0) })?;
        }
        self.getattr(handle)
    }

    /// `statfs` of the file system holding `handle`, packed as
    /// [`hypercall_abi::hostfs::HostFsStatfs`] says.
    pub fn statfs(&self, handle: u64) -> Result<HostFsAttr, Errno> {
        let e = self.entry(handle)?;
        // SAFETY: an all-zero statfs is a valid value to be overwritten.
        let mut s: libc::statfs = unsafe { std::mem::zeroed() };
        // SAFETY: fstatfs on a live descriptor (O_PATH allowed) into a valid struct.
        check(unsafe { libc::fstatfs(e.fd.as_raw_fd(), &mut s) })?;
        let t = |v: u64| time(v as i64, 0);
        Ok(HostFsAttr {
            ino: s.f_bsize as u64,
            size: s.f_blocks,
            blocks: s.f_bavail,
            atime: t(s.f_files),
            mtime: t(s.f_ffree),
            ctime: t(s.f_type as u64),
            ..Default::default()
        })
    }
}

#[cfg(test)]
#[path = "host_tests.rs"]
mod tests;

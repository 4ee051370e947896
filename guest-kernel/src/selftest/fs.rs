//! Self-tests of the file-system system calls: the handlers run against a real process
//! (its own address space and user memory, the mounted rootfs), plus one ring-3 program
//! that opens and reads a file through the `syscall` instruction.

use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::arch::global_asm;

use super::{blob, check, run_blob, TestResult};
use crate::arch::trap::TrapFrame;
use crate::fs::tar::TarFs;
use crate::mm::paging::{flags, AddressSpace};
use crate::mm::{self, frame, uaccess, PAGE_SIZE};
use crate::syscall::{self, Errno, SysResult};
use crate::task::Task;
use crate::time;

/// Where the harness maps user memory.
const DATA_VA: u64 = 0x60_0000;
/// How much (256 KiB).
const DATA_PAGES: u64 = 64;
/// Scratch areas inside it.
pub(super) const PATH_VA: u64 = DATA_VA;
const PATH2_VA: u64 = DATA_VA + 0x1000;
pub(super) const OBJ_VA: u64 = DATA_VA + 0x2000;
pub(super) const BUF_VA: u64 = DATA_VA + 0x3000;
const BUF_LEN: u64 = (DATA_PAGES - 3) * PAGE_SIZE;

const AT_FDCWD: u64 = -100i64 as u64;
const O_RDONLY: u64 = 0;
const O_WRONLY: u64 = 1;
const O_RDWR: u64 = 2;
const O_CREAT: u64 = 0o100;
const O_DIRECTORY: u64 = 0o200000;
const O_CLOEXEC: u64 = 0o2000000;
const O_PATH: u64 = 0o10000000;
const O_NOFOLLOW: u64 = 0o400000;
const AT_SYMLINK_NOFOLLOW: u64 = 0x100;
const AT_EMPTY_PATH: u64 = 0x1000;

mod nr {
    pub const READ: u64 = 0;
    pub const WRITE: u64 = 1;
    pub const OPEN: u64 = 2;
    pub const CLOSE: u64 = 3;
    pub const STAT: u64 = 4;
    pub const FSTAT: u64 = 5;
    pub const LSTAT: u64 = 6;
    pub const POLL: u64 = 7;
    pub const LSEEK: u64 = 8;
    pub const IOCTL: u64 = 16;
    pub const PREAD64: u64 = 17;
    pub const READV: u64 = 19;
    pub const ACCESS: u64 = 21;
    pub const DUP: u64 = 32;
    pub const DUP2: u64 = 33;
    pub const FCNTL: u64 = 72;
    pub const GETCWD: u64 = 79;
    pub const CHDIR: u64 = 80;
    pub const FCHDIR: u64 = 81;
    pub const READLINK: u64 = 89;
    pub const GETDENTS64: u64 = 217;
    pub const OPENAT: u64 = 257;
    pub const NEWFSTATAT: u64 = 262;
    pub const PPOLL: u64 = 271;
    pub const DUP3: u64 = 292;
    pub const STATX: u64 = 332;
}

/// A process that is never run, whose system calls the tests make directly.
pub(super) struct Harness {
    proc: Box<Task>,
    frame: TrapFrame,
    /// The fatal status a call marked (out of memory), taken so that it cannot reach a
    /// task that runs later.
    fatal: Option<u8>,
}

impl Harness {
    pub(super) fn new(name: &str) -> Result<Self, String> {
        let mut space = AddressSpace::new_user(mm::kernel_space()).map_err(|e| format!("{e:?}"))?;
        for i in 0..DATA_PAGES {
            let pa = frame::alloc_zeroed().ok_or("out of frames")?;
            let f = flags::USER | flags::WRITABLE | flags::NO_EXECUTE;
            space
                .map(DATA_VA + i * PAGE_SIZE, pa, f)
                .map_err(|e| format!("{e:?}"))?;
        }
        let top = DATA_VA + DATA_PAGES * PAGE_SIZE;
        let proc = Task::new(name, space, 0x40_0000, top).map_err(|e| format!("{e:?}"))?;
        Ok(Harness {
            proc,
            frame: TrapFrame::new_user(0x40_0000, top),
            fatal: None,
        })
    }

    pub(super) fn call(&mut self, nr: u64, args: &[u64]) -> SysResult {
        let mut a = [0u64; 6];
        a[..args.len()].copy_from_slice(args);
        let result = syscall::invoke(&mut self.proc, &mut self.frame, nr, a);
        if let Some(status) = crate::task::sched::take_pending_fatal() {
            self.fatal.get_or_insert(status);
        }
        result
    }

    /// The fatal status a call marked the harness's task with, if any.
    pub(super) fn fatal(&self) -> Option<u8> {
        self.fatal
    }

    /// The harness's task (to share what it opened with another harness).
    pub(super) fn task(&self) -> &Task {
        &self.proc
    }

    /// Its task, writable.
    pub(super) fn task_mut(&mut self) -> &mut Task {
        &mut self.proc
    }

    /// Like `call`, expecting success.
    pub(super) fn ok(&mut self, nr: u64, args: &[u64]) -> Result<u64, String> {
        self.call(nr, args)
            .map_err(|e| format!("syscall {nr}{args:x?} failed with {e:?}"))
    }

    /// Like `call`, expecting `want`.
    pub(super) fn fails(&mut self, nr: u64, args: &[u64], want: Errno) -> TestResult {
        match self.call(nr, args) {
            Err(e) if e == want => Ok(()),
            other => Err(format!(
                "syscall {nr}{args:x?}: {other:?}, expected {want:?}"
            )),
        }
    }

    pub(super) fn put(&mut self, va: u64, bytes: &[u8]) -> Result<(), String> {
        uaccess::copy_to_user(&self.proc.mm_mut().space, va, bytes)
            .map_err(|e| format!("put: {e:?}"))
    }

    pub(super) fn get(&self, va: u64, len: usize) -> Result<Vec<u8>, String> {
        uaccess::read_vec(&self.proc.mm.lock().space, va, len).map_err(|e| format!("get: {e:?}"))
    }

    /// Writes `s` NUL-terminated at `va`; returns `va`.
    pub(super) fn path(&mut self, va: u64, s: &str) -> Result<u64, String> {
        let mut b = Vec::from(s.as_bytes());
        b.push(0);
        self.put(va, &b)?;
        Ok(va)
    }

    pub(super) fn u64_at(&self, va: u64) -> Result<u64, String> {
        let b = self.get(va, 8)?;
        Ok(u64::from_le_bytes(b.try_into().unwrap_or_default()))
    }

    /// Reopens descriptors 0-2 as a process whose VMM has the terminals `terminals`
    /// ([`hypercall_abi::host_stdio`] bits) gets them, whatever the host running the
    /// tests has.
    pub(super) fn set_stdio(&mut self, terminals: u32) {
        *self.proc.files.lock() = crate::fs::FdTable::with_stdio_for(terminals);
    }

    pub(super) fn u32_at(&self, va: u64) -> Result<u32, String> {
        let b = self.get(va, 4)?;
        Ok(u32::from_le_bytes(b.try_into().unwrap_or_default()))
    }
}

fn file_bytes(fs: &TarFs, path: &str) -> Result<&'static [u8], String> {
    let id = fs
        .lookup(path, true)
        .map_err(|e| format!("{path}: {e:?}"))?;
    Ok(fs.node(id).data)
}

/// open, read, lseek, pread, readv, close on a rootfs file, compared with tarfs.
pub fn open_read_close(rootfs: Option<&TarFs>) -> TestResult {
    let fs = rootfs.ok_or("no rootfs")?;
    let want = file_bytes(fs, "/etc/motd")?;
    let mut h = Harness::new("/bin/hello")?;
    let p = h.path(PATH_VA, "/etc/motd")?;
    let fd = h.ok(nr::OPENAT, &[AT_FDCWD, p, O_RDONLY | O_CLOEXEC])?;
    check(fd == 3, "the first free descriptor is 3")?;
    let n = h.ok(nr::READ, &[fd, BUF_VA, 5])?;
    check(n == 5 && h.get(BUF_VA, 5)? == want[..5], "first 5 bytes")?;
    let n = h.ok(nr::READ, &[fd, BUF_VA, BUF_LEN])?;
    check(n as usize == want.len() - 5, "rest of the file")?;
    check(h.get(BUF_VA, n as usize)? == want[5..], "contents")?;
    check(h.ok(nr::READ, &[fd, BUF_VA, 10])? == 0, "end of file")?;
    check(h.ok(nr::LSEEK, &[fd, 0, 0])? == 0, "lseek SEEK_SET")?;
    check(
        h.ok(nr::LSEEK, &[fd, -3i64 as u64, 2])? == want.len() as u64 - 3,
        "SEEK_END",
    )?;
    check(h.ok(nr::PREAD64, &[fd, BUF_VA, 4, 1])? == 4, "pread")?;
    check(h.get(BUF_VA, 4)? == want[1..5], "pread contents")?;
    h.fails(nr::PREAD64, &[fd, BUF_VA, 4, -1i64 as u64], Errno::EINVAL)?;
    // readv into two pieces, from the offset pread left alone (size - 3).
    let iov = [BUF_VA, 1, BUF_VA + 100, 10];
    let iov_bytes: Vec<u8> = iov.iter().flat_map(|v| v.to_le_bytes()).collect();
    h.put(OBJ_VA, &iov_bytes)?;
    check(h.ok(nr::READV, &[fd, OBJ_VA, 2])? == 3, "readv")?;
    check(
        h.get(BUF_VA + 100, 2)? == want[want.len() - 2..],
        "readv second piece",
    )?;
    h.fails(nr::READV, &[fd, OBJ_VA, 2000], Errno::EINVAL)?;
    // A buffer that faults: nothing moved → EFAULT; part moved → the count.
    h.ok(nr::LSEEK, &[fd, 0, 0])?;
    h.fails(nr::READ, &[fd, 0x10_0000, 4], Errno::EFAULT)?;
    let end = DATA_VA + DATA_PAGES * PAGE_SIZE;
    check(
        h.ok(nr::READ, &[fd, end - 3, 10])? == 3,
        "short read up to a fault",
    )?;
    h.fails(nr::READ, &[fd, u64::MAX - 2, 10], Errno::EFAULT)?;
    h.ok(nr::CLOSE, &[fd])?;
    h.fails(nr::READ, &[fd, BUF_VA, 1], Errno::EBADF)?;
    h.fails(nr::CLOSE, &[fd], Errno::EBADF)?;
    h.fails(nr::READ, &[fd + (1 << 32) + 100, BUF_VA, 1], Errno::EBADF)?;
    Ok(())
}

/// A whole program read, as `std::fs::read` does it: a large buffer, one call.
pub fn large_read(rootfs: Option<&TarFs>) -> TestResult {
    let fs = rootfs.ok_or("no rootfs")?;
    let want = file_bytes(fs, "/init")?;
    let mut h = Harness::new("/init")?;
    let p = h.path(PATH_VA, "/init")?;
    let fd = h.ok(nr::OPEN, &[p, O_RDONLY])?;
    let start = time::monotonic_ns();
    let n = h.ok(nr::READ, &[fd, BUF_VA, BUF_LEN])? as usize;
    let us = (time::monotonic_ns() - start) / 1000;
    check(n == want.len().min(BUF_LEN as usize), "read length")?;
    check(h.get(BUF_VA, n)? == want[..n], "contents")?;
    crate::kprintln!("  read {n} bytes in one call in {us} us");
    Ok(())
}

/// stat, fstat, lstat, newfstatat and statx fields.
pub fn stat_family(rootfs: Option<&TarFs>) -> TestResult {
    let fs = rootfs.ok_or("no rootfs")?;
    let size = file_bytes(fs, "/etc/motd")?.len() as u64;
    let mut h = Harness::new("/bin/hello")?;
    let p = h.path(PATH_VA, "/etc/motd")?;
    h.ok(nr::STAT, &[p, OBJ_VA])?;
    check(h.u64_at(OBJ_VA + 48)? == size, "st_size")?;
    check(h.u32_at(OBJ_VA + 24)? == 0o100644, "st_mode")?;
    check(h.u64_at(OBJ_VA + 56)? == 4096, "st_blksize")?;
    let ino = h.u64_at(OBJ_VA + 8)?;
    let fd = h.ok(nr::OPEN, &[p, O_RDONLY])?;
    h.put(OBJ_VA, &[0u8; 144])?;
    h.ok(nr::FSTAT, &[fd, OBJ_VA])?;
    check(h.u64_at(OBJ_VA + 8)? == ino, "fstat inode")?;
    let sh = h.path(PATH2_VA, "/bin/sh")?;
    h.ok(nr::LSTAT, &[sh, OBJ_VA])?;
    check(
        h.u32_at(OBJ_VA + 24)? & 0o170000 == 0o120000,
        "lstat of a symlink",
    )?;
    h.ok(nr::STAT, &[sh, OBJ_VA])?;
    check(
        h.u32_at(OBJ_VA + 24)? & 0o170000 == 0o100000,
        "stat follows",
    )?;
    let empty = h.path(PATH2_VA, "")?;
    h.ok(nr::NEWFSTATAT, &[fd, empty, OBJ_VA, AT_EMPTY_PATH])?;
    check(
        h.u64_at(OBJ_VA + 8)? == ino,
        "AT_EMPTY_PATH names the descriptor",
    )?;
    h.fails(nr::NEWFSTATAT, &[fd, empty, OBJ_VA, 0], Errno::ENOENT)?;
    h.fails(
        nr::NEWFSTATAT,
        &[fd, empty, OBJ_VA, 0x8000_0000],
        Errno::EINVAL,
    )?;
    let rel = h.path(PATH2_VA, "motd")?;
    h.fails(nr::NEWFSTATAT, &[fd, rel, OBJ_VA, 0], Errno::ENOTDIR)?;
    h.fails(nr::NEWFSTATAT, &[99, rel, OBJ_VA, 0], Errno::EBADF)?;
    let etc = h.path(PATH2_VA + 64, "/etc")?;
    let dirfd = h.ok(nr::OPEN, &[etc, O_RDONLY | O_DIRECTORY])?;
    h.ok(nr::NEWFSTATAT, &[dirfd, rel, OBJ_VA, AT_SYMLINK_NOFOLLOW])?;
    check(
        h.u64_at(OBJ_VA + 8)? == ino,
        "relative to a directory descriptor",
    )?;
    // statx: mask, size, mode, inode.
    h.ok(nr::STATX, &[AT_FDCWD, p, 0, 0xfff, OBJ_VA])?;
    check(h.u32_at(OBJ_VA)? & 0x7ff == 0x7ff, "statx basic mask")?;
    check(h.u64_at(OBJ_VA + 40)? == size, "stx_size")?;
    check(h.u64_at(OBJ_VA + 32)? == ino, "stx_ino")?;
    check(
        h.get(OBJ_VA + 28, 2)? == 0o100644u16.to_le_bytes(),
        "stx_mode",
    )?;
    h.fails(
        nr::STATX,
        &[AT_FDCWD, p, 0x6000, 0xfff, OBJ_VA],
        Errno::EINVAL,
    )?;
    h.fails(
        nr::STATX,
        &[AT_FDCWD, p, 0, 0x8000_0000, OBJ_VA],
        Errno::EINVAL,
    )?;
    h.ok(nr::STATX, &[fd, 0, AT_EMPTY_PATH, 0xfff, OBJ_VA])?;
    h.fails(nr::STAT, &[p, 0x10], Errno::EFAULT)?;
    Ok(())
}

/// The errors Linux gives for bad paths and opens.
pub fn open_errors(_rootfs: Option<&TarFs>) -> TestResult {
    let mut h = Harness::new("/bin/hello")?;
    let cases: [(&str, u64, Errno); 10] = [
        ("/no/such/file", O_RDONLY, Errno::ENOENT),
        ("/etc/motd/", O_WRONLY | O_CREAT, Errno::EISDIR),
        ("/etc/new/", O_RDWR | O_CREAT, Errno::EISDIR),
        ("/proc/new", O_WRONLY | O_CREAT, Errno::ENOENT),
        ("/etc/motd/x", O_RDONLY, Errno::ENOTDIR),
        ("/etc/motd", O_DIRECTORY, Errno::ENOTDIR),
        ("/etc", O_RDWR, Errno::EISDIR),
        ("/bin/sh", O_NOFOLLOW, Errno::ELOOP),
        ("", O_RDONLY, Errno::ENOENT),
        ("/dev/nothing", O_RDONLY, Errno::ENOENT),
    ];
    for (path, flags, want) in cases {
        let p = h.path(PATH_VA, path)?;
        h.fails(nr::OPEN, &[p, flags], want)
            .map_err(|e| format!("{path}: {e}"))?;
    }
    let long = "a/".repeat(2100);
    let p = h.path(PATH_VA, &long)?;
    h.fails(nr::OPEN, &[p, O_RDONLY], Errno::ENAMETOOLONG)?;
    h.fails(nr::OPEN, &[0x10, O_RDONLY], Errno::EFAULT)?;
    let etc = h.path(PATH_VA, "/etc")?;
    let d = h.ok(nr::OPEN, &[etc, O_RDONLY])?;
    h.fails(nr::READ, &[d, BUF_VA, 10], Errno::EISDIR)?;
    // O_PATH descriptors: fstat works, read does not.
    let sh = h.path(PATH_VA, "/bin/sh")?;
    let p = h.ok(nr::OPEN, &[sh, O_PATH | O_NOFOLLOW])?;
    h.ok(nr::FSTAT, &[p, OBJ_VA])?;
    check(
        h.u32_at(OBJ_VA + 24)? & 0o170000 == 0o120000,
        "O_PATH on the link",
    )?;
    h.fails(nr::READ, &[p, BUF_VA, 1], Errno::EBADF)?;
    let motd = h.path(PATH_VA, "/etc/motd")?;
    h.ok(nr::ACCESS, &[motd, 4])?;
    h.ok(nr::ACCESS, &[motd, 2])?;
    h.fails(nr::ACCESS, &[motd, 1], Errno::EACCES)?;
    h.fails(nr::ACCESS, &[motd, 8], Errno::EINVAL)?;
    Ok(())
}

/// getdents64 over the root, resumed across calls, with the mount points.
pub fn getdents(rootfs: Option<&TarFs>) -> TestResult {
    let fs = rootfs.ok_or("no rootfs")?;
    let mut h = Harness::new("/bin/hello")?;
    let root = h.path(PATH_VA, "/")?;
    let fd = h.ok(nr::OPEN, &[root, O_RDONLY | O_DIRECTORY])?;
    let mut names = Vec::new();
    loop {
        // A small buffer forces several calls.
        let n = h.ok(nr::GETDENTS64, &[fd, BUF_VA, 64])? as usize;
        if n == 0 {
            break;
        }
        let buf = h.get(BUF_VA, n)?;
        let mut at = 0;
        while at + 19 < buf.len() {
            let reclen = u16::from_le_bytes([buf[at + 16], buf[at + 17]]) as usize;
            let name = &buf[at + 19..at + reclen];
            let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
            names.push(String::from_utf8_lossy(&name[..end]).into_owned());
            check(reclen.is_multiple_of(8) && reclen > 19, "record length")?;
            at += reclen;
        }
    }
    let mut want: Vec<String> = [".", ".."].iter().map(|s| String::from(*s)).collect();
    let root_id = fs.root();
    for (name, _) in fs.read_dir(root_id).map_err(|e| format!("{e:?}"))? {
        want.push(String::from(name));
    }
    // The mount points the namespace adds where the image has none, in name order.
    for point in ["dev", "proc", "run", "tmp"] {
        if !want.iter().any(|n| n == point) {
            want.push(String::from(point));
        }
    }
    want[2..].sort();
    check(
        names == want,
        &format!("names {names:?}, expected {want:?}"),
    )?;
    // At the end, any buffer gets 0.
    check(h.call(nr::GETDENTS64, &[fd, BUF_VA, 10]) == Ok(0), "end")?;
    h.ok(nr::LSEEK, &[fd, 0, 0])?;
    h.fails(nr::GETDENTS64, &[fd, BUF_VA, 10], Errno::EINVAL)?;
    h.fails(nr::GETDENTS64, &[1, BUF_VA, 4096], Errno::ENOTDIR)?;
    h.fails(nr::GETDENTS64, &[fd, 0x10, 4096], Errno::EFAULT)?;
    Ok(())
}

/// getcwd, chdir, fchdir, relative opens, /proc/self/exe.
pub fn cwd_and_links(rootfs: Option<&TarFs>) -> TestResult {
    let fs = rootfs.ok_or("no rootfs")?;
    let mut h = Harness::new("/bin/sh")?;
    let n = h.ok(nr::GETCWD, &[BUF_VA, 100])?;
    check(n == 2 && h.get(BUF_VA, 2)? == b"/\0", "initial cwd")?;
    let etc = h.path(PATH_VA, "/bin/../etc/")?;
    h.ok(nr::CHDIR, &[etc])?;
    let n = h.ok(nr::GETCWD, &[BUF_VA, 100])?;
    check(h.get(BUF_VA, n as usize)? == b"/etc\0", "cwd after chdir")?;
    h.fails(nr::GETCWD, &[BUF_VA, 4], Errno::ERANGE)?;
    let motd = h.path(PATH_VA, "motd")?;
    let fd = h.ok(nr::OPEN, &[motd, O_RDONLY])?;
    h.fails(nr::CHDIR, &[motd], Errno::ENOTDIR)?;
    h.fails(nr::FCHDIR, &[fd], Errno::ENOTDIR)?;
    let root = h.path(PATH_VA, "/")?;
    let rootfd = h.ok(nr::OPEN, &[root, O_PATH])?;
    h.ok(nr::FCHDIR, &[rootfd])?;
    let n = h.ok(nr::GETCWD, &[BUF_VA, 100])?;
    check(h.get(BUF_VA, n as usize)? == b"/\0", "cwd after fchdir")?;
    // /proc/self/exe: the program's real path (/bin/sh is a symlink to busybox).
    let exe = h.path(PATH_VA, "/proc/self/exe")?;
    let n = h.ok(nr::READLINK, &[exe, BUF_VA, 100])?;
    check(
        h.get(BUF_VA, n as usize)? == b"/bin/busybox",
        "readlink /proc/self/exe",
    )?;
    check(
        h.ok(nr::READLINK, &[exe, BUF_VA, 4])? == 4,
        "truncated readlink",
    )?;
    h.fails(nr::READLINK, &[exe, BUF_VA, 0], Errno::EINVAL)?;
    let fd = h.ok(nr::OPEN, &[exe, O_RDONLY])?;
    let size = file_bytes(fs, "/bin/busybox")?.len() as u64;
    check(
        h.ok(nr::LSEEK, &[fd, 0, 2])? == size,
        "/proc/self/exe opens the program",
    )?;
    let motd = h.path(PATH_VA, "/etc/motd")?;
    h.fails(nr::READLINK, &[motd, BUF_VA, 100], Errno::EINVAL)?;
    Ok(())
}

/// dup, dup2, dup3, fcntl: shared offsets, descriptor flags, status flags.
pub fn descriptors(_rootfs: Option<&TarFs>) -> TestResult {
    let mut h = Harness::new("/bin/hello")?;
    let p = h.path(PATH_VA, "/etc/motd")?;
    let fd = h.ok(nr::OPEN, &[p, O_RDONLY | O_CLOEXEC])?;
    check(h.ok(nr::FCNTL, &[fd, 1])? == 1, "F_GETFD after O_CLOEXEC")?;
    check(
        h.ok(nr::FCNTL, &[fd, 3])? == 0o100000,
        "F_GETFL is O_LARGEFILE",
    )?;
    let d = h.ok(nr::DUP, &[fd])?;
    check(
        d == fd + 1 && h.ok(nr::FCNTL, &[d, 1])? == 0,
        "dup clears FD_CLOEXEC",
    )?;
    h.ok(nr::READ, &[fd, BUF_VA, 3])?;
    check(
        h.ok(nr::LSEEK, &[d, 0, 1])? == 3,
        "dup'ed descriptors share the offset",
    )?;
    h.ok(nr::FCNTL, &[d, 4, 0o4000])?;
    check(
        h.ok(nr::FCNTL, &[fd, 3])? == 0o104000,
        "and the status flags",
    )?;
    check(h.ok(nr::DUP2, &[fd, 50])? == 50, "dup2")?;
    check(h.ok(nr::DUP2, &[50, 50])? == 50, "dup2 onto itself")?;
    h.fails(nr::DUP2, &[77, 77], Errno::EBADF)?;
    h.fails(nr::DUP2, &[fd, 1024], Errno::EBADF)?;
    h.fails(nr::DUP3, &[fd, fd, 0], Errno::EINVAL)?;
    h.fails(nr::DUP3, &[fd, 9, 1], Errno::EINVAL)?;
    check(h.ok(nr::DUP3, &[fd, 9, O_CLOEXEC])? == 9, "dup3")?;
    check(h.ok(nr::FCNTL, &[9, 1])? == 1, "dup3 O_CLOEXEC")?;
    check(h.ok(nr::FCNTL, &[fd, 0, 40])? == 40, "F_DUPFD")?;
    check(h.ok(nr::FCNTL, &[fd, 1030, 40])? == 41, "F_DUPFD_CLOEXEC")?;
    h.fails(nr::FCNTL, &[fd, 0, 1024], Errno::EINVAL)?;
    h.ok(nr::FCNTL, &[fd, 2, 0])?;
    check(h.ok(nr::FCNTL, &[fd, 1])? == 0, "F_SETFD")?;
    h.fails(nr::FCNTL, &[fd, 9999], Errno::EINVAL)?;
    h.fails(nr::FCNTL, &[999, 1], Errno::EBADF)?;
    // Fill the table: EMFILE.
    let mut opened = 0;
    let last = loop {
        match h.call(nr::OPEN, &[p, O_RDONLY]) {
            Ok(_) => opened += 1,
            Err(e) => break e,
        }
        if opened > 2000 {
            break Errno::EIO;
        }
    };
    check(last == Errno::EMFILE, &format!("table full: {last:?}"))?;
    h.fails(nr::DUP, &[fd], Errno::EMFILE)?;
    Ok(())
}

/// Devices and the console: /dev/null, /dev/zero, /dev/urandom, terminal ioctls, poll.
pub fn devices_and_poll(_rootfs: Option<&TarFs>) -> TestResult {
    let mut h = Harness::new("/bin/hello")?;
    h.set_stdio(hypercall_abi::host_stdio::ALL);
    let null = h.path(PATH_VA, "/dev/null")?;
    let fd = h.ok(nr::OPEN, &[null, O_RDWR])?;
    check(
        h.ok(nr::READ, &[fd, BUF_VA, 10])? == 0,
        "/dev/null reads nothing",
    )?;
    check(
        h.ok(nr::WRITE, &[fd, 0x10, 10])? == 10,
        "/dev/null swallows",
    )?;
    let zero = h.path(PATH_VA, "/dev/zero")?;
    let z = h.ok(nr::OPEN, &[zero, O_RDONLY])?;
    h.put(BUF_VA, &[0xaa; 5000])?;
    check(h.ok(nr::READ, &[z, BUF_VA, 5000])? == 5000, "/dev/zero")?;
    check(h.get(BUF_VA, 5000)?.iter().all(|&b| b == 0), "zeros")?;
    let ur = h.path(PATH_VA, "/dev/urandom")?;
    let r = h.ok(nr::OPEN, &[ur, O_RDONLY])?;
    check(h.ok(nr::READ, &[r, BUF_VA, 64])? == 64, "/dev/urandom")?;
    check(h.get(BUF_VA, 64)?.iter().any(|&b| b != 0), "random bytes")?;
    h.ok(nr::FSTAT, &[r, OBJ_VA])?;
    check(h.u64_at(OBJ_VA + 40)? == 0x109, "st_rdev 1:9")?;
    // The console is a terminal: TCGETS, TIOCGWINSZ; a file is not.
    h.ok(nr::IOCTL, &[1, 0x5401, OBJ_VA])?;
    check(h.u32_at(OBJ_VA + 12)? == 0x8a3b, "termios c_lflag")?;
    h.ok(nr::IOCTL, &[2, 0x5413, OBJ_VA])?;
    check(h.get(OBJ_VA, 4)? == [24, 0, 80, 0], "80x24")?;
    h.fails(nr::IOCTL, &[z, 0x5401, OBJ_VA], Errno::ENOTTY)?;
    h.fails(nr::IOCTL, &[1, 0x5401, 0x10], Errno::EFAULT)?;
    h.fails(nr::IOCTL, &[99, 0x5401, OBJ_VA], Errno::EBADF)?;
    h.put(OBJ_VA, &1i32.to_le_bytes())?;
    h.ok(nr::IOCTL, &[z, 0x5421, OBJ_VA])?;
    check(
        h.ok(nr::FCNTL, &[z, 3])? & 0o4000 != 0,
        "FIONBIO sets O_NONBLOCK",
    )?;
    // The console writes; pwrite on it is ESPIPE and lseek too.
    h.fails(nr::LSEEK, &[1, 0, 0], Errno::ESPIPE)?;
    // poll: stdout writable, a file readable, a bad fd POLLNVAL, a negative fd ignored.
    let pfds: [(i32, u16); 4] = [(1, 4), (z as i32, 1), (99, 1), (-1, 1)];
    let raw: Vec<u8> = pfds
        .iter()
        .flat_map(|&(fd, ev)| [fd.to_le_bytes().as_slice(), &ev.to_le_bytes(), &[0, 0]].concat())
        .collect();
    h.put(OBJ_VA, &raw)?;
    check(h.ok(nr::POLL, &[OBJ_VA, 4, 0])? == 3, "three ready")?;
    let back = h.get(OBJ_VA, 32)?;
    let rev = |i: usize| u16::from_le_bytes([back[i * 8 + 6], back[i * 8 + 7]]);
    let got = [rev(0), rev(1), rev(2), rev(3)];
    check(got == [4, 1, 0x20, 0], &format!("revents {got:x?}"))?;
    // ppoll with nothing to wait for sleeps for its timeout, halting.
    h.put(OBJ_VA, &[0, 0, 0, 0, 0, 0, 0, 0])?;
    h.put(
        OBJ_VA + 64,
        &[0u64.to_le_bytes(), 30_000_000u64.to_le_bytes()].concat(),
    )?;
    let start = time::monotonic_ns();
    check(
        h.ok(nr::PPOLL, &[OBJ_VA, 0, OBJ_VA + 64, 0, 8])? == 0,
        "timeout",
    )?;
    let ms = (time::monotonic_ns() - start) / 1_000_000;
    check(
        (25..500).contains(&ms),
        &format!("30 ms timeout took {ms} ms"),
    )?;
    check(
        h.u64_at(OBJ_VA + 72)? < 30_000_000,
        "remaining time written back",
    )?;
    h.put(
        OBJ_VA + 64,
        &[0u64.to_le_bytes(), 2_000_000_000u64.to_le_bytes()].concat(),
    )?;
    h.fails(nr::PPOLL, &[OBJ_VA, 0, OBJ_VA + 64, 0, 8], Errno::EINVAL)?;
    h.fails(nr::POLL, &[OBJ_VA, 5000, 0], Errno::EINVAL)?;
    Ok(())
}

global_asm!(
    ".section .rodata.selftest, \"a\"",
    // openat(AT_FDCWD, "/etc/motd", O_RDONLY); read(fd, stack, 256); exit(bytes read),
    // or exit(250) if the open failed.
    ".global selftest_blob_fs_read",
    ".global selftest_blob_fs_read_end",
    "selftest_blob_fs_read:",
    "lea rsi, [rip + 2f]",
    "mov rdi, -100",
    "xor edx, edx",
    "mov eax, 257",
    "syscall",
    "test rax, rax",
    "js 1f",
    "mov edi, eax",
    "sub rsp, 256",
    "mov rsi, rsp",
    "mov edx, 256",
    "xor eax, eax",
    "syscall",
    "mov edi, eax",
    "mov eax, 231",
    "syscall",
    "1: mov edi, 250",
    "mov eax, 231",
    "syscall",
    "2: .asciz \"/etc/motd\"",
    "selftest_blob_fs_read_end:",
);

extern "C" {
    static selftest_blob_fs_read: u8;
    static selftest_blob_fs_read_end: u8;
}

/// A ring-3 program opens and reads a file through the `syscall` instruction.
pub fn ring3_open_read(rootfs: Option<&TarFs>) -> TestResult {
    let fs = rootfs.ok_or("no rootfs")?;
    let want = file_bytes(fs, "/etc/motd")?.len().min(256) as u8;
    // SAFETY: linker-provided labels of the blob above.
    let code = blob(unsafe { &selftest_blob_fs_read }, unsafe {
        &selftest_blob_fs_read_end
    });
    let proc = run_blob(code, false)?;
    match proc.exit_status() {
        Some(s) if s == want => Ok(()),
        other => Err(format!("exit status {other:?}, expected {want}")),
    }
}

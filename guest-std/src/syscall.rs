//! Raw system calls over `int 0x80`, the Linux x86-64 numbers, and typed wrappers.
//!
//! On astra `int 0x80` takes the x86-64 numbers and registers (unlike Linux, where it is the
//! i386 ABI): number in `rax`, arguments in `rdi, rsi, rdx, r10, r8, r9`, result in `rax`,
//! `-errno` on failure. The kernel preserves every other register; `rcx` and `r11` are still
//! declared clobbered so that the same code stays right if it is ever switched to `syscall`.

use crate::errno::Errno;

/// Linux x86-64 system call numbers (`arch/x86/entry/syscalls/syscall_64.tbl`).
pub mod nr {
    #![allow(missing_docs)]
    pub const READ: usize = 0;
    pub const WRITE: usize = 1;
    pub const OPEN: usize = 2;
    pub const CLOSE: usize = 3;
    pub const STAT: usize = 4;
    pub const FSTAT: usize = 5;
    pub const LSTAT: usize = 6;
    pub const POLL: usize = 7;
    pub const LSEEK: usize = 8;
    pub const MMAP: usize = 9;
    pub const MPROTECT: usize = 10;
    pub const MUNMAP: usize = 11;
    pub const BRK: usize = 12;
    pub const RT_SIGACTION: usize = 13;
    pub const RT_SIGPROCMASK: usize = 14;
    pub const IOCTL: usize = 16;
    pub const PREAD64: usize = 17;
    pub const PWRITE64: usize = 18;
    pub const READV: usize = 19;
    pub const WRITEV: usize = 20;
    pub const ACCESS: usize = 21;
    pub const PIPE: usize = 22;
    pub const SCHED_YIELD: usize = 24;
    pub const DUP: usize = 32;
    pub const DUP2: usize = 33;
    pub const NANOSLEEP: usize = 35;
    pub const GETPID: usize = 39;
    pub const CLONE: usize = 56;
    pub const FORK: usize = 57;
    pub const VFORK: usize = 58;
    pub const EXECVE: usize = 59;
    pub const EXIT: usize = 60;
    pub const WAIT4: usize = 61;
    pub const KILL: usize = 62;
    pub const UNAME: usize = 63;
    pub const FCNTL: usize = 72;
    pub const GETCWD: usize = 79;
    pub const CHDIR: usize = 80;
    pub const MKDIR: usize = 83;
    pub const UNLINK: usize = 87;
    pub const READLINK: usize = 89;
    pub const GETTIMEOFDAY: usize = 96;
    pub const GETUID: usize = 102;
    pub const GETGID: usize = 104;
    pub const GETEUID: usize = 107;
    pub const GETEGID: usize = 108;
    pub const GETPPID: usize = 110;
    pub const SIGALTSTACK: usize = 131;
    pub const ARCH_PRCTL: usize = 158;
    pub const GETTID: usize = 186;
    pub const FUTEX: usize = 202;
    pub const GETDENTS64: usize = 217;
    pub const SET_TID_ADDRESS: usize = 218;
    pub const CLOCK_GETTIME: usize = 228;
    pub const CLOCK_NANOSLEEP: usize = 230;
    pub const EXIT_GROUP: usize = 231;
    pub const OPENAT: usize = 257;
    pub const NEWFSTATAT: usize = 262;
    pub const SET_ROBUST_LIST: usize = 273;
    pub const PRLIMIT64: usize = 302;
    pub const GETRANDOM: usize = 318;
    pub const STATX: usize = 332;
    pub const RSEQ: usize = 334;
}

/// Standard file descriptors.
pub mod fd {
    /// Standard input.
    pub const STDIN: i32 = 0;
    /// Standard output.
    pub const STDOUT: i32 = 1;
    /// Standard error.
    pub const STDERR: i32 = 2;
}

/// The instruction that enters the kernel: `int 0x80`, or `syscall` with the
/// `syscall-instruction` feature (astra takes both with the x86-64 numbers; Linux takes
/// only `syscall` that way, so the feature lets guest-std programs run on Linux too, for
/// reference runs).
#[cfg(not(feature = "syscall-instruction"))]
macro_rules! kernel_entry {
    () => {
        "int 0x80"
    };
}
#[cfg(feature = "syscall-instruction")]
macro_rules! kernel_entry {
    () => {
        "syscall"
    };
}

mod raw {
    use core::arch::asm;

    /// System call with no arguments.
    ///
    /// # Safety
    /// The call must be sound for the kernel to perform: any pointer arguments it implies must
    /// be valid for what the call reads or writes, and it must not break Rust's invariants
    /// (for example by unmapping memory that is still borrowed).
    #[inline(always)]
    pub unsafe fn syscall0(n: usize) -> isize {
        let ret: isize;
        // SAFETY: the caller upholds the system call's own contract; the asm only enters the
        // kernel, which preserves all registers but rax (rcx and r11 declared for `syscall`).
        unsafe {
            asm!(kernel_entry!(), inlateout("rax") n as isize => ret,
                 lateout("rcx") _, lateout("r11") _)
        };
        ret
    }

    /// System call with one argument.
    ///
    /// # Safety
    /// As for [`syscall0`].
    #[inline(always)]
    pub unsafe fn syscall1(n: usize, a1: usize) -> isize {
        let ret: isize;
        // SAFETY: as in `syscall0`.
        unsafe {
            asm!(kernel_entry!(), inlateout("rax") n as isize => ret, in("rdi") a1,
                 lateout("rcx") _, lateout("r11") _)
        };
        ret
    }

    /// System call with two arguments.
    ///
    /// # Safety
    /// As for [`syscall0`].
    #[inline(always)]
    pub unsafe fn syscall2(n: usize, a1: usize, a2: usize) -> isize {
        let ret: isize;
        // SAFETY: as in `syscall0`.
        unsafe {
            asm!(kernel_entry!(), inlateout("rax") n as isize => ret, in("rdi") a1, in("rsi") a2,
                 lateout("rcx") _, lateout("r11") _)
        };
        ret
    }

    /// System call with three arguments.
    ///
    /// # Safety
    /// As for [`syscall0`].
    #[inline(always)]
    pub unsafe fn syscall3(n: usize, a1: usize, a2: usize, a3: usize) -> isize {
        let ret: isize;
        // SAFETY: as in `syscall0`.
        unsafe {
            asm!(kernel_entry!(), inlateout("rax") n as isize => ret, in("rdi") a1, in("rsi") a2,
                 in("rdx") a3, lateout("rcx") _, lateout("r11") _)
        };
        ret
    }

    /// System call with four arguments (the fourth in `r10`, as for `syscall`).
    ///
    /// # Safety
    /// As for [`syscall0`].
    #[inline(always)]
    pub unsafe fn syscall4(n: usize, a1: usize, a2: usize, a3: usize, a4: usize) -> isize {
        let ret: isize;
        // SAFETY: as in `syscall0`.
        unsafe {
            asm!(kernel_entry!(), inlateout("rax") n as isize => ret, in("rdi") a1, in("rsi") a2,
                 in("rdx") a3, in("r10") a4, lateout("rcx") _, lateout("r11") _)
        };
        ret
    }

    /// System call with five arguments.
    ///
    /// # Safety
    /// As for [`syscall0`].
    #[inline(always)]
    pub unsafe fn syscall5(
        n: usize,
        a1: usize,
        a2: usize,
        a3: usize,
        a4: usize,
        a5: usize,
    ) -> isize {
        let ret: isize;
        // SAFETY: as in `syscall0`.
        unsafe {
            asm!(kernel_entry!(), inlateout("rax") n as isize => ret, in("rdi") a1, in("rsi") a2,
                 in("rdx") a3, in("r10") a4, in("r8") a5, lateout("rcx") _, lateout("r11") _)
        };
        ret
    }

    /// System call with six arguments.
    ///
    /// # Safety
    /// As for [`syscall0`].
    #[inline(always)]
    pub unsafe fn syscall6(
        n: usize,
        a1: usize,
        a2: usize,
        a3: usize,
        a4: usize,
        a5: usize,
        a6: usize,
    ) -> isize {
        let ret: isize;
        // SAFETY: as in `syscall0`.
        unsafe {
            asm!(kernel_entry!(), inlateout("rax") n as isize => ret, in("rdi") a1, in("rsi") a2,
                 in("rdx") a3, in("r10") a4, in("r8") a5, in("r9") a6,
                 lateout("rcx") _, lateout("r11") _)
        };
        ret
    }
}

pub use raw::{syscall0, syscall1, syscall2, syscall3, syscall4, syscall5, syscall6};

/// One buffer of a gather write, laid out as Linux's `struct iovec`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct IoVec {
    /// Start of the buffer.
    pub base: *const u8,
    /// Length of the buffer in bytes.
    pub len: usize,
}

impl IoVec {
    /// An `IoVec` over `buf`; the borrow must outlive the system call that uses it.
    pub const fn new(buf: &[u8]) -> IoVec {
        IoVec {
            base: buf.as_ptr(),
            len: buf.len(),
        }
    }
}

/// `write(2)`: writes up to `buf.len()` bytes to `fd`, returns how many were written.
pub fn write(fd: i32, buf: &[u8]) -> Result<usize, Errno> {
    // SAFETY: the kernel only reads `buf.len()` bytes from `buf`, which is a live borrow.
    let ret = unsafe { syscall3(nr::WRITE, fd as usize, buf.as_ptr() as usize, buf.len()) };
    Errno::from_ret(ret)
}

/// `writev(2)`: writes the buffers of `iov` in order, returns how many bytes were written.
pub fn writev(fd: i32, iov: &[IoVec]) -> Result<usize, Errno> {
    // SAFETY: `iov` is a live slice of `struct iovec`; each `IoVec::new` borrowed a buffer
    // that the caller keeps alive across this call (the kernel only reads them).
    let ret = unsafe { syscall3(nr::WRITEV, fd as usize, iov.as_ptr() as usize, iov.len()) };
    Errno::from_ret(ret)
}

/// `read(2)`: reads up to `buf.len()` bytes from `fd`; 0 means end of file.
pub fn read(fd: i32, buf: &mut [u8]) -> Result<usize, Errno> {
    // SAFETY: the kernel writes at most `buf.len()` bytes into `buf`, a live mutable borrow.
    let ret = unsafe { syscall3(nr::READ, fd as usize, buf.as_mut_ptr() as usize, buf.len()) };
    Errno::from_ret(ret)
}

/// `pread64(2)`: reads up to `buf.len()` bytes at `offset` without moving the file position.
pub fn pread(fd: i32, buf: &mut [u8], offset: u64) -> Result<usize, Errno> {
    // SAFETY: as for `read`.
    let ret = unsafe {
        syscall4(
            nr::PREAD64,
            fd as usize,
            buf.as_mut_ptr() as usize,
            buf.len(),
            offset as usize,
        )
    };
    Errno::from_ret(ret)
}

/// `AT_FDCWD`: relative paths are resolved from the current directory.
pub const AT_FDCWD: i32 = -100;

/// `openat(2)` with `path` a NUL-terminated byte string; returns the new descriptor.
pub fn openat(dirfd: i32, path: &core::ffi::CStr, flags: u32, mode: u32) -> Result<i32, Errno> {
    // SAFETY: `path` is a live NUL-terminated string the kernel only reads.
    let ret = unsafe {
        syscall4(
            nr::OPENAT,
            dirfd as isize as usize,
            path.as_ptr() as usize,
            flags as usize,
            mode as usize,
        )
    };
    Errno::from_ret(ret).map(|fd| fd as i32)
}

/// `close(2)`.
pub fn close(fd: i32) -> Result<(), Errno> {
    // SAFETY: close touches no memory of ours.
    let ret = unsafe { syscall1(nr::CLOSE, fd as usize) };
    Errno::from_ret(ret).map(drop)
}

/// `lseek(2)`: moves the position of `fd`; `whence` is `SEEK_SET`, `SEEK_CUR` or
/// `SEEK_END` (0, 1, 2). Returns the new position.
pub fn lseek(fd: i32, offset: i64, whence: u32) -> Result<u64, Errno> {
    // SAFETY: lseek touches no memory of ours.
    let ret = unsafe { syscall3(nr::LSEEK, fd as usize, offset as usize, whence as usize) };
    Errno::from_ret(ret).map(|pos| pos as u64)
}

/// Size of Linux x86-64's `struct stat`.
pub const STAT_LEN: usize = 144;

/// `fstat(2)`: the raw `struct stat` of `fd` (decode it with `fs::Metadata`).
pub fn fstat(fd: i32) -> Result<[u8; STAT_LEN], Errno> {
    let mut buf = [0u8; STAT_LEN];
    // SAFETY: the kernel writes one `struct stat` (144 bytes) into `buf`, which is that large.
    let ret = unsafe { syscall2(nr::FSTAT, fd as usize, buf.as_mut_ptr() as usize) };
    Errno::from_ret(ret).map(|_| buf)
}

/// `newfstatat(2)`: the raw `struct stat` of `path` (`flags` may hold
/// `AT_SYMLINK_NOFOLLOW`, 0x100).
pub fn fstatat(dirfd: i32, path: &core::ffi::CStr, flags: u32) -> Result<[u8; STAT_LEN], Errno> {
    let mut buf = [0u8; STAT_LEN];
    // SAFETY: the kernel reads the NUL-terminated `path` and writes one `struct stat` into
    // `buf`, which is that large.
    let ret = unsafe {
        syscall4(
            nr::NEWFSTATAT,
            dirfd as isize as usize,
            path.as_ptr() as usize,
            buf.as_mut_ptr() as usize,
            flags as usize,
        )
    };
    Errno::from_ret(ret).map(|_| buf)
}

/// `getdents64(2)`: fills `buf` with directory records of `fd`; 0 at the end.
pub fn getdents64(fd: i32, buf: &mut [u8]) -> Result<usize, Errno> {
    // SAFETY: the kernel writes at most `buf.len()` bytes into `buf`, a live mutable borrow.
    let ret = unsafe {
        syscall3(
            nr::GETDENTS64,
            fd as usize,
            buf.as_mut_ptr() as usize,
            buf.len(),
        )
    };
    Errno::from_ret(ret)
}

/// `mmap(2)` of fresh anonymous memory: `len` bytes, read-write, private. Returns its
/// address.
pub fn mmap_anonymous(len: usize) -> Result<usize, Errno> {
    const PROT_READ_WRITE: usize = 0x1 | 0x2;
    const MAP_PRIVATE_ANONYMOUS: usize = 0x02 | 0x20;
    // SAFETY: an anonymous mapping at an address of the kernel's choosing cannot overlap
    // memory Rust already uses.
    let ret = unsafe {
        syscall6(
            nr::MMAP,
            0,
            len,
            PROT_READ_WRITE,
            MAP_PRIVATE_ANONYMOUS,
            usize::MAX, // fd -1
            0,
        )
    };
    Errno::from_ret(ret)
}

/// `munmap(2)`.
///
/// # Safety
/// Nothing may use `addr..addr + len` afterwards: no reference into it may be live.
pub unsafe fn munmap(addr: usize, len: usize) -> Result<(), Errno> {
    // SAFETY: the caller guarantees the range is no longer used.
    let ret = unsafe { syscall2(nr::MUNMAP, addr, len) };
    Errno::from_ret(ret).map(drop)
}

/// `brk(2)`: asks for the program break at `addr` (0 to query); returns the break the
/// kernel settled on, which is the old one if it refused. Linux never fails `brk` itself;
/// an error here means a kernel without it (`ENOSYS`).
///
/// # Safety
/// Moving the break down releases the memory above it: nothing may use memory between the
/// new and the old break afterwards. Querying (`addr == 0`) and growing are always sound.
pub unsafe fn brk(addr: usize) -> Result<usize, Errno> {
    // SAFETY: the caller guarantees that memory released by a lower break is unused.
    let ret = unsafe { syscall1(nr::BRK, addr) };
    Errno::from_ret(ret)
}

/// Linux clock ids for [`clock_gettime`].
pub mod clock {
    /// Wall-clock time.
    pub const REALTIME: u32 = 0;
    /// Time since boot, never set back.
    pub const MONOTONIC: u32 = 1;
}

/// `clock_gettime(2)`: `(seconds, nanoseconds)` of clock `id`.
pub fn clock_gettime(id: u32) -> Result<(i64, i64), Errno> {
    let mut ts = [0i64; 2];
    // SAFETY: the kernel writes one 16-byte `struct timespec` into `ts`, which is that large.
    let ret = unsafe { syscall2(nr::CLOCK_GETTIME, id as usize, ts.as_mut_ptr() as usize) };
    Errno::from_ret(ret).map(|_| (ts[0], ts[1]))
}

/// `nanosleep(2)`: sleeps for `(seconds, nanoseconds)`; on `EINTR`, `Err` carries what is
/// left through `remaining`.
pub fn nanosleep(request: (i64, i64), remaining: &mut (i64, i64)) -> Result<(), Errno> {
    let req = [request.0, request.1];
    let mut rem = [0i64; 2];
    // SAFETY: the kernel reads one `struct timespec` from `req` and may write one into `rem`;
    // both are 16 bytes and live across the call.
    let ret = unsafe {
        syscall2(
            nr::NANOSLEEP,
            req.as_ptr() as usize,
            rem.as_mut_ptr() as usize,
        )
    };
    *remaining = (rem[0], rem[1]);
    Errno::from_ret(ret).map(drop)
}

/// `getpid(2)`: the calling process's id.
pub fn getpid() -> Result<u32, Errno> {
    // SAFETY: getpid takes no arguments and touches no memory.
    let ret = unsafe { syscall0(nr::GETPID) };
    Errno::from_ret(ret).map(|pid| pid as u32)
}

/// `exit(2)`: ends the calling thread with `status` (the low 8 bits reach the parent).
pub fn exit(status: i32) -> ! {
    // SAFETY: exit touches no memory and does not return.
    unsafe { syscall1(nr::EXIT, status as usize) };
    unreachable_after_exit()
}

/// `exit_group(2)`: ends the whole process with `status`.
pub fn exit_group(status: i32) -> ! {
    // SAFETY: exit_group touches no memory and does not return.
    unsafe { syscall1(nr::EXIT_GROUP, status as usize) };
    unreachable_after_exit()
}

/// What follows an exit call that returned anyway (a kernel bug): trap rather than run on.
#[cold]
fn unreachable_after_exit() -> ! {
    loop {
        // SAFETY: `ud2` raises #UD, which ends the process; it touches no memory.
        unsafe { core::arch::asm!("ud2", options(nomem, nostack)) };
    }
}

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
            asm!("int 0x80", inlateout("rax") n as isize => ret,
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
            asm!("int 0x80", inlateout("rax") n as isize => ret, in("rdi") a1,
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
            asm!("int 0x80", inlateout("rax") n as isize => ret, in("rdi") a1, in("rsi") a2,
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
            asm!("int 0x80", inlateout("rax") n as isize => ret, in("rdi") a1, in("rsi") a2,
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
            asm!("int 0x80", inlateout("rax") n as isize => ret, in("rdi") a1, in("rsi") a2,
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
            asm!("int 0x80", inlateout("rax") n as isize => ret, in("rdi") a1, in("rsi") a2,
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
            asm!("int 0x80", inlateout("rax") n as isize => ret, in("rdi") a1, in("rsi") a2,
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

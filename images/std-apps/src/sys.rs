//! The few kernel calls `std` does not wrap, made directly: `uname`, the monotonic clock's
//! absolute reading, and raw `syscall` / `int 0x80` entries for the bad-pointer tests.
//!
//! The `int 0x80` entry means different things on the two kernels these programs run on:
//! astra takes the x86-64 numbers and registers there (like `syscall`), Linux takes the
//! i386 ABI (other numbers, arguments in `ebx, ecx, edx`). [`int80_abi`] finds out which
//! with a call that is harmless under both readings.

use std::arch::asm;
use std::io;
use std::time::Duration;

/// Linux x86-64 system call numbers used here.
pub mod nr {
    /// `read(fd, buf, count)`.
    pub const READ: usize = 0;
    /// `write(fd, buf, count)`.
    pub const WRITE: usize = 1;
    /// `getpid()`.
    pub const GETPID: usize = 39;
    /// `uname(buf)`.
    pub const UNAME: usize = 63;
    /// `clock_gettime(clock, ts)`.
    pub const CLOCK_GETTIME: usize = 228;
}

/// Linux i386 system call numbers, for `int 0x80` on a Linux host.
pub mod nr_i386 {
    /// `read(fd, buf, count)`.
    pub const READ: usize = 3;
    /// `write(fd, buf, count)`.
    pub const WRITE: usize = 4;
    /// `mkdir(path, mode)`.
    pub const MKDIR: usize = 39;
}

/// `EFAULT`: a bad address was handed to the kernel.
pub const EFAULT: isize = 14;

/// A raw three-argument system call through the `syscall` instruction (x86-64 ABI).
///
/// # Safety
/// The call must be sound for the kernel to perform on this process: any memory it writes
/// must be memory no Rust reference depends on (or memory the kernel will refuse to touch,
/// which is what the bad-pointer tests pass).
pub unsafe fn syscall3(number: usize, a1: usize, a2: usize, a3: usize) -> isize {
    let ret: isize;
    // SAFETY: the caller vouches for the call; `syscall` clobbers rcx and r11 only.
    unsafe {
        asm!("syscall", inlateout("rax") number as isize => ret, in("rdi") a1, in("rsi") a2,
             in("rdx") a3, lateout("rcx") _, lateout("r11") _, options(nostack))
    };
    ret
}

/// A raw four-argument system call through the `syscall` instruction (the fourth in r10).
///
/// # Safety
/// As for [`syscall3`].
pub unsafe fn syscall4(number: usize, a1: usize, a2: usize, a3: usize, a4: usize) -> isize {
    let ret: isize;
    // SAFETY: the caller vouches for the call; `syscall` clobbers rcx and r11 only.
    unsafe {
        asm!("syscall", inlateout("rax") number as isize => ret, in("rdi") a1, in("rsi") a2,
             in("rdx") a3, in("r10") a4, lateout("rcx") _, lateout("r11") _, options(nostack))
    };
    ret
}

/// A raw six-argument system call (`mmap`, `splice`, `copy_file_range`...).
///
/// # Safety
/// As for [`syscall3`].
pub unsafe fn syscall6(number: usize, a: [usize; 6]) -> isize {
    let ret: isize;
    // SAFETY: the caller vouches for the call; `syscall` clobbers rcx and r11 only.
    unsafe {
        asm!("syscall", inlateout("rax") number as isize => ret, in("rdi") a[0], in("rsi") a[1],
             in("rdx") a[2], in("r10") a[3], in("r8") a[4], in("r9") a[5], lateout("rcx") _,
             lateout("r11") _, options(nostack))
    };
    ret
}

/// A raw three-argument system call through `int 0x80` with the x86-64 numbers and
/// registers (astra's reading of `int 0x80`).
///
/// # Safety
/// As for [`syscall3`], and only on a kernel whose `int 0x80` takes the x86-64 ABI
/// ([`Int80Abi::X86_64`]).
pub unsafe fn int80_x86_64_3(number: usize, a1: usize, a2: usize, a3: usize) -> isize {
    let ret: isize;
    // SAFETY: as for `syscall3`; rcx and r11 are declared for kernels that treat both
    // entries alike.
    unsafe {
        asm!("int 0x80", inlateout("rax") number as isize => ret, in("rdi") a1, in("rsi") a2,
             in("rdx") a3, lateout("rcx") _, lateout("r11") _, options(nostack))
    };
    ret
}

/// A raw three-argument system call through `int 0x80` with the i386 numbers and
/// registers (`ebx, ecx, edx`), as Linux reads it. The result is the low 32 bits,
/// sign-extended, as an i386 program sees it.
///
/// # Safety
/// As for [`syscall3`] (pointers are truncated to 32 bits), and only on a kernel whose
/// `int 0x80` takes the i386 ABI ([`Int80Abi::I386`]).
pub unsafe fn int80_i386_3(number: usize, b: u32, c: u32, d: u32) -> isize {
    let ret: usize;
    // SAFETY: as for `syscall3`. LLVM reserves rbx, so the first argument is swapped into
    // it around the trap and the original value restored after.
    unsafe {
        asm!("xchg {b:r}, rbx", "int 0x80", "xchg {b:r}, rbx",
             b = inout(reg) u64::from(b) => _,
             inlateout("rax") number => ret, in("rcx") c, in("rdx") d,
             lateout("r11") _, options(nostack))
    };
    ret as u32 as i32 as isize
}

/// How the running kernel reads `int 0x80`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Int80Abi {
    /// x86-64 numbers and registers: astra.
    X86_64,
    /// i386 numbers and registers: Linux (IA-32 emulation).
    I386,
}

/// Finds out how `int 0x80` is read, with number 39: `getpid()` under the x86-64 numbers (a
/// positive pid), `mkdir(NULL, 0)` under the i386 ones (`-EFAULT`, nothing created).
pub fn int80_abi() -> Int80Abi {
    let ret: isize;
    // SAFETY: under either reading the call touches no memory of ours: getpid takes no
    // arguments, and mkdir fails on the NULL path (ebx = rdi = 0) before doing anything.
    unsafe {
        asm!("xchg {b:r}, rbx", "int 0x80", "xchg {b:r}, rbx",
             b = inout(reg) 0u64 => _,
             inlateout("rax") nr::GETPID as isize => ret, in("rdi") 0usize, in("rcx") 0usize,
             lateout("r11") _, options(nostack))
    };
    if ret > 0 {
        Int80Abi::X86_64
    } else {
        Int80Abi::I386
    }
}

/// The kernel's identity, from `uname(2)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Uname {
    /// Operating system name (`Linux`).
    pub sysname: String,
    /// Host name.
    pub nodename: String,
    /// Kernel release.
    pub release: String,
    /// Kernel version string.
    pub version: String,
    /// Hardware name (`x86_64`).
    pub machine: String,
}

/// Length of each field of Linux's `struct utsname`.
const UTS_FIELD_LEN: usize = 65;
/// `struct utsname`: sysname, nodename, release, version, machine, domainname.
const UTS_FIELDS: usize = 6;

/// Calls `uname(2)`.
pub fn uname() -> io::Result<Uname> {
    let mut buf = [0u8; UTS_FIELD_LEN * UTS_FIELDS];
    // SAFETY: the kernel writes at most the 390 bytes of a `struct utsname` into `buf`,
    // which is exactly that large and borrowed mutably for the call.
    let ret = unsafe { syscall3(nr::UNAME, buf.as_mut_ptr() as usize, 0, 0) };
    if ret < 0 {
        return Err(io::Error::from_raw_os_error(-ret as i32));
    }
    Ok(parse_utsname(&buf))
}

/// Decodes the NUL-padded fields of a `struct utsname`.
fn parse_utsname(buf: &[u8; UTS_FIELD_LEN * UTS_FIELDS]) -> Uname {
    let field = |index: usize| {
        let raw = &buf[index * UTS_FIELD_LEN..(index + 1) * UTS_FIELD_LEN];
        let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
        String::from_utf8_lossy(&raw[..end]).into_owned()
    };
    Uname {
        sysname: field(0),
        nodename: field(1),
        release: field(2),
        version: field(3),
        machine: field(4),
    }
}

/// `CLOCK_MONOTONIC`.
const CLOCK_MONOTONIC: usize = 1;
/// `CLOCK_PROCESS_CPUTIME_ID`.
pub const CLOCK_PROCESS_CPUTIME_ID: usize = 2;
/// `CLOCK_THREAD_CPUTIME_ID`.
pub const CLOCK_THREAD_CPUTIME_ID: usize = 3;

/// The monotonic clock's reading: on Linux and on astra, the time since boot.
pub fn monotonic_since_boot() -> io::Result<Duration> {
    clock_time(CLOCK_MONOTONIC)
}

/// The reading of clock `clock_id` (`clock_gettime`).
pub fn clock_time(clock_id: usize) -> io::Result<Duration> {
    let mut ts = [0i64; 2];
    // SAFETY: the kernel writes one 16-byte `struct timespec` into `ts`, which is that large
    // and borrowed mutably for the call.
    let ret = unsafe { syscall3(nr::CLOCK_GETTIME, clock_id, ts.as_mut_ptr() as usize, 0) };
    if ret < 0 {
        return Err(io::Error::from_raw_os_error(-ret as i32));
    }
    let (secs, nanos) = (ts[0], ts[1]);
    if secs < 0 || !(0..1_000_000_000).contains(&nanos) {
        return Err(io::Error::other(format!(
            "clock_gettime returned a malformed timespec ({secs}, {nanos})"
        )));
    }
    Ok(Duration::new(secs as u64, nanos as u32))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utsname_fields_stop_at_their_nul() {
        let mut buf = [0u8; UTS_FIELD_LEN * UTS_FIELDS];
        for (index, text) in ["Linux", "box", "6.1.0", "#1 SMP", "x86_64", "(none)"]
            .iter()
            .enumerate()
        {
            buf[index * UTS_FIELD_LEN..][..text.len()].copy_from_slice(text.as_bytes());
        }
        let uts = parse_utsname(&buf);
        assert_eq!(uts.sysname, "Linux");
        assert_eq!(uts.nodename, "box");
        assert_eq!(uts.release, "6.1.0");
        assert_eq!(uts.version, "#1 SMP");
        assert_eq!(uts.machine, "x86_64");
        // A field without a NUL is taken whole.
        buf[..UTS_FIELD_LEN].fill(b'a');
        assert_eq!(parse_utsname(&buf).sysname.len(), UTS_FIELD_LEN);
    }

    #[test]
    fn host_kernel_answers() {
        // These tests run on a Linux host.
        let uts = uname().unwrap();
        assert_eq!(uts.sysname, "Linux");
        assert_eq!(uts.machine, "x86_64");
        let a = monotonic_since_boot().unwrap();
        let b = monotonic_since_boot().unwrap();
        assert!(b >= a);
        // SAFETY: getpid touches no memory.
        let pid = unsafe { syscall3(nr::GETPID, 0, 0, 0) };
        assert_eq!(pid as u32, std::process::id());
    }

    #[test]
    fn bad_pointers_are_efault_through_syscall() {
        // SAFETY: the kernel refuses the unmapped source address before writing anything.
        let ret = unsafe { syscall3(nr::WRITE, 1, 1, 10) };
        assert_eq!(ret, -EFAULT);
    }
}

// A signal handler's return path for a raw `rt_sigaction` (what libc's `__restore_rt` is).
core::arch::global_asm!(
    ".globl astra_std_apps_restorer",
    "astra_std_apps_restorer:",
    "mov eax, 15",
    "syscall",
);

extern "C" {
    fn astra_std_apps_restorer();
}

/// `struct sigaction` as the kernel takes it.
#[repr(C)]
struct KernelSigaction {
    handler: usize,
    flags: u64,
    restorer: usize,
    mask: u64,
}

/// `SA_RESTORER`: the kernel returns from a handler through `sa_restorer`.
const SA_RESTORER: u64 = 0x0400_0000;

/// Installs `handler` (the address of an `extern "C"` function, or 0/1 for SIG_DFL/SIG_IGN)
/// for `signal` with `flags` (plus `SA_RESTORER`) and an empty mask through a raw
/// `rt_sigaction`: the result, or `-errno`.
pub fn set_signal_action(signal: usize, handler: usize, flags: u64) -> isize {
    let action = KernelSigaction {
        handler,
        flags: flags | SA_RESTORER,
        restorer: astra_std_apps_restorer as *const () as usize,
        mask: 0,
    };
    // SAFETY: a valid sigaction whose restorer lives as long as the program; the caller's
    // handler is an `extern "C"` function of it.
    unsafe { syscall4(13, signal, &action as *const KernelSigaction as usize, 0, 8) }
}

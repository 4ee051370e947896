//! THE system call table: Linux x86-64 number → name, argument shapes, handler.

use super::strace::Arg::{self, *};
use super::strace::{Ret, Shape};
use super::{
    exec, fs, fs_attr, fs_copy, fs_ctl, fs_dir, fs_lock, fs_mod, fs_poll, futex, info, io, mem,
    mremap, proc, process, signal, signal_wait, splice, thread, time, Ctx, SysResult,
};

/// A system call handler.
pub type Handler = fn(&mut Ctx<'_>, [u64; 6]) -> SysResult;

/// One row of the table.
pub struct Entry {
    /// Linux name.
    pub name: &'static str,
    /// How `--strace` shows each argument.
    pub args: &'static [Arg],
    /// How `--strace` shows the result.
    pub ret: Ret,
    /// The implementation.
    pub handler: Handler,
}

impl Entry {
    /// What `--strace` needs to know about the call.
    pub fn shape(&self) -> Shape {
        Shape {
            name: self.name,
            args: self.args,
            ret: self.ret,
        }
    }
}

macro_rules! syscall_table {
    ($($nr:literal => $name:ident($($arg:expr),*) $(-> $ret:ident)? = $handler:path;)*) => {
        /// The entry for system call `nr`, if astra implements it.
        pub fn lookup(nr: u64) -> Option<Entry> {
            match nr {
                $($nr => Some(Entry {
                    name: stringify!($name),
                    args: &[$($arg),*],
                    ret: ret_shape!($($ret)?),
                    handler: $handler,
                }),)*
                _ => None,
            }
        }

        /// The name of every implemented system call with its number.
        #[allow(dead_code)]
        pub const IMPLEMENTED: &[(u64, &str)] = &[$(($nr, stringify!($name))),*];
    };
}

/// A row's result shape: `-> Addr` or `-> Never` after the arguments, [`Ret::Int`] if none.
macro_rules! ret_shape {
    () => {
        Ret::Int
    };
    ($ret:ident) => {
        Ret::$ret
    };
}

syscall_table! {
    0 => read(Fd, OutBuf, UInt) = io::read;
    1 => write(Fd, Buf(2), UInt) = io::write;
    2 => open(Str, OpenFlags, Mode) = fs::open;
    3 => close(Fd) = fs::close;
    4 => stat(Str, OutStat) = fs::stat;
    5 => fstat(Fd, OutStat) = fs::fstat;
    6 => lstat(Str, OutStat) = fs::lstat;
    7 => poll(Pollfds(1), UInt, Int) = fs_poll::poll;
    8 => lseek(Fd, Int, Whence) = io::lseek;
    9 => mmap(Ptr, UInt, Prot, MapFlags, Fd, UInt) -> Addr = mem::mmap;
    10 => mprotect(Ptr, UInt, Prot) = mem::mprotect;
    11 => munmap(Ptr, UInt) = mem::munmap;
    12 => brk(Ptr) -> Addr = mem::brk;
    13 => rt_sigaction(Signal, Sigaction, OutSigaction, UInt) = signal::rt_sigaction;
    14 => rt_sigprocmask(SigHow, Sigset, OutSigset, UInt) = signal::rt_sigprocmask;
    15 => rt_sigreturn() = signal::rt_sigreturn;
    16 => ioctl(Fd, IoctlReq, Ptr) = fs_ctl::ioctl;
    17 => pread64(Fd, OutBuf, UInt, Int) = io::pread64;
    18 => pwrite64(Fd, Buf(2), UInt, Int) = io::pwrite64;
    19 => readv(Fd, Iovec(2), Int) = io::readv;
    20 => writev(Fd, Iovec(2), Int) = io::writev;
    21 => access(Str, Int) = fs::access;
    22 => pipe(OutFdPair) = fs_ctl::pipe;
    24 => sched_yield() = thread::sched_yield;
    25 => mremap(Ptr, UInt, UInt, Ptr, Ptr) -> Addr = mremap::mremap;
    26 => msync(Ptr, UInt, Int) = mem::msync;
    27 => mincore(Ptr, UInt, Ptr) = mem::mincore;
    28 => madvise(Ptr, UInt, Advice) = mem::madvise;
    32 => dup(Fd) = fs_ctl::dup;
    33 => dup2(Fd, Fd) = fs_ctl::dup2;
    34 => pause() = signal_wait::pause;
    35 => nanosleep(Timespec, Ptr) = time::nanosleep;
    36 => getitimer(Int, Ptr) = signal_wait::getitimer;
    37 => alarm(UInt) = signal_wait::alarm;
    38 => setitimer(Int, Ptr, Ptr) = signal_wait::setitimer;
    39 => getpid() = proc::getpid;
    40 => sendfile(Fd, Fd, Ptr, UInt) = fs_copy::sendfile;
    56 => clone(CloneFlags, Ptr, Ptr, Ptr, Ptr) = thread::clone;
    57 => fork() = process::sys_fork;
    58 => vfork() = process::sys_vfork;
    59 => execve(Str, Argv, Envp) = exec::execve;
    60 => exit(Int) -> Never = proc::exit;
    61 => wait4(Pid, WaitStatus, WaitOptions, Ptr) = process::wait4;
    62 => kill(Pid, Signal) = signal::kill;
    63 => uname(Ptr) = info::uname;
    72 => fcntl(Fd, FcntlCmd, Int) = fs_ctl::fcntl;
    73 => flock(Fd, Int) = fs_lock::flock;
    74 => fsync(Fd) = fs_attr::fsync;
    75 => fdatasync(Fd) = fs_attr::fsync;
    76 => truncate(Str, Int) = fs_attr::truncate;
    77 => ftruncate(Fd, Int) = fs_attr::ftruncate;
    79 => getcwd(OutBuf, UInt) = fs_dir::getcwd;
    80 => chdir(Str) = fs_dir::chdir;
    81 => fchdir(Fd) = fs_dir::fchdir;
    82 => rename(Str, Str) = fs_mod::rename;
    83 => mkdir(Str, Mode) = fs_mod::mkdir;
    84 => rmdir(Str) = fs_mod::rmdir;
    85 => creat(Str, Mode) = fs::creat;
    86 => link(Str, Str) = fs_mod::link;
    87 => unlink(Str) = fs_mod::unlink;
    88 => symlink(Str, Str) = fs_mod::symlink;
    89 => readlink(Str, OutBuf, UInt) = fs::readlink;
    90 => chmod(Str, Mode) = fs_attr::chmod;
    91 => fchmod(Fd, Mode) = fs_attr::fchmod;
    92 => chown(Str, Int, Int) = fs_attr::chown;
    93 => fchown(Fd, Int, Int) = fs_attr::fchown;
    94 => lchown(Str, Int, Int) = fs_attr::lchown;
    95 => umask(Mode) = fs_attr::umask;
    96 => gettimeofday(Ptr, Ptr) = time::gettimeofday;
    97 => getrlimit(Int, Ptr) = info::getrlimit;
    98 => getrusage(Int, Ptr) = thread::getrusage;
    99 => sysinfo(Ptr) = info::sysinfo;
    100 => times(Ptr) = thread::times;
    102 => getuid() = proc::get_root_id;
    104 => getgid() = proc::get_root_id;
    107 => geteuid() = proc::get_root_id;
    108 => getegid() = proc::get_root_id;
    109 => setpgid(Pid, Pid) = process::setpgid;
    110 => getppid() = proc::getppid;
    111 => getpgrp() = process::getpgrp;
    112 => setsid() = process::setsid;
    118 => getresuid(Ptr, Ptr, Ptr) = proc::getres_ids;
    120 => getresgid(Ptr, Ptr, Ptr) = proc::getres_ids;
    121 => getpgid(Pid) = process::getpgid;
    124 => getsid(Pid) = process::getsid;
    127 => rt_sigpending(OutSigset, UInt) = signal::rt_sigpending;
    128 => rt_sigtimedwait(Sigset, Ptr, Timespec, UInt) = signal_wait::rt_sigtimedwait;
    129 => rt_sigqueueinfo(Pid, Signal, Ptr) = signal_wait::rt_sigqueueinfo;
    130 => rt_sigsuspend(Sigset, UInt) = signal_wait::rt_sigsuspend;
    131 => sigaltstack(Ptr, Ptr) = signal::sigaltstack;
    132 => utime(Str, Ptr) = fs_attr::utime;
    133 => mknod(Str, Mode, UInt) = fs_mod::mknod;
    137 => statfs(Str, Ptr) = fs_attr::statfs;
    138 => fstatfs(Fd, Ptr) = fs_attr::fstatfs;
    158 => arch_prctl(ArchPrctlCode, Ptr) = proc::arch_prctl;
    157 => prctl(Int, Ptr, UInt, UInt, UInt) = info::prctl;
    160 => setrlimit(Int, Ptr) = info::setrlimit;
    162 => sync() = fs_attr::sync;
    186 => gettid() = proc::gettid;
    200 => tkill(Pid, Signal) = signal::tkill;
    201 => time(Ptr) = time::time;
    202 => futex(Ptr, FutexOp, UInt, Ptr, Ptr, UInt) = futex::futex;
    203 => sched_setaffinity(Int, UInt, Ptr) = info::sched_setaffinity;
    204 => sched_getaffinity(Int, UInt, Ptr) = info::sched_getaffinity;
    217 => getdents64(Fd, Ptr, UInt) = fs_dir::getdents64;
    218 => set_tid_address(Ptr) = proc::set_tid_address;
    228 => clock_gettime(ClockId, OutTimespec) = time::clock_gettime;
    229 => clock_getres(ClockId, OutTimespec) = time::clock_getres;
    230 => clock_nanosleep(ClockId, Int, Timespec, Ptr) = time::clock_nanosleep;
    231 => exit_group(Int) -> Never = proc::exit_group;
    234 => tgkill(Pid, Pid, Signal) = signal::tgkill;
    235 => utimes(Str, Ptr) = fs_attr::utimes;
    247 => waitid(Int, Pid, Ptr, WaitOptions, Ptr) = process::waitid;
    257 => openat(AtFd, Str, OpenFlags, Mode) = fs::openat;
    258 => mkdirat(AtFd, Str, Mode) = fs_mod::mkdirat;
    259 => mknodat(AtFd, Str, Mode, UInt) = fs_mod::mknodat;
    260 => fchownat(AtFd, Str, Int, Int, AtFlags) = fs_attr::fchownat;
    261 => futimesat(AtFd, Str, Ptr) = fs_attr::futimesat;
    262 => newfstatat(AtFd, Str, OutStat, AtFlags) = fs::newfstatat;
    263 => unlinkat(AtFd, Str, AtFlags) = fs_mod::unlinkat;
    264 => renameat(AtFd, Str, AtFd, Str) = fs_mod::renameat;
    265 => linkat(AtFd, Str, AtFd, Str, AtFlags) = fs_mod::linkat;
    266 => symlinkat(Str, AtFd, Str) = fs_mod::symlinkat;
    267 => readlinkat(AtFd, Str, OutBuf, UInt) = fs::readlinkat;
    268 => fchmodat(AtFd, Str, Mode) = fs_attr::fchmodat;
    269 => faccessat(AtFd, Str, Int) = fs::faccessat;
    271 => ppoll(Pollfds(1), UInt, Timespec, Sigset, UInt) = fs_poll::ppoll;
    273 => set_robust_list(Ptr, UInt) = proc::set_robust_list;
    274 => get_robust_list(Int, Ptr, Ptr) = proc::get_robust_list;
    275 => splice(Fd, Ptr, Fd, Ptr, UInt, UInt) = splice::splice;
    276 => tee(Fd, Fd, UInt, UInt) = splice::tee;
    278 => vmsplice(Fd, Ptr, UInt, UInt) = splice::vmsplice;
    280 => utimensat(AtFd, Str, Ptr, AtFlags) = fs_attr::utimensat;
    285 => fallocate(Fd, Int, Int, Int) = fs_attr::fallocate;
    292 => dup3(Fd, Fd, OpenFlags) = fs_ctl::dup3;
    293 => pipe2(OutFdPair, PipeFlags) = fs_ctl::pipe2;
    295 => preadv(Fd, Iovec(2), Int, Int) = io::preadv;
    296 => pwritev(Fd, Iovec(2), Int, Int) = io::pwritev;
    297 => rt_tgsigqueueinfo(Pid, Pid, Signal, Ptr) = signal::rt_tgsigqueueinfo;
    302 => prlimit64(Int, Int, Ptr, Ptr) = info::prlimit64;
    306 => syncfs(Fd) = fs_attr::syncfs;
    309 => getcpu(Ptr, Ptr, Ptr) = info::getcpu;
    316 => renameat2(AtFd, Str, AtFd, Str, UInt) = fs_mod::renameat2;
    318 => getrandom(OutBuf, UInt, Int) = info::getrandom;
    319 => memfd_create(Str, UInt) = fs_copy::memfd_create;
    322 => execveat(AtFd, Str, Argv, Envp, AtFlags) = exec::execveat;
    326 => copy_file_range(Fd, Ptr, Fd, Ptr, UInt, UInt) = fs_copy::copy_file_range;
    332 => statx(AtFd, Str, AtFlags, UInt, Ptr) = fs::statx;
    334 => rseq(Ptr, UInt, Int, Ptr) = proc::rseq;
    435 => clone3(Ptr, UInt) = thread::clone3;
    439 => faccessat2(AtFd, Str, Int, AtFlags) = fs::faccessat2;
    452 => fchmodat2(AtFd, Str, Mode, AtFlags) = fs_attr::fchmodat2;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_names_are_unique() {
        for (i, (nr, name)) in IMPLEMENTED.iter().enumerate() {
            for (nr2, name2) in &IMPLEMENTED[i + 1..] {
                assert_ne!(nr, nr2);
                assert_ne!(name, name2);
            }
            assert_eq!(lookup(*nr).map(|e| e.name), Some(*name));
        }
        assert!(lookup(9999).is_none());
        assert_eq!(lookup(1).map(|e| e.ret), Some(Ret::Int));
        assert_eq!(lookup(231).map(|e| e.ret), Some(Ret::Never));
    }
}

//! `--strace`: one line per system call in strace's format, on the kernel's diagnostic
//! channel (the VMM's stderr):
//!
//! ```text
//! [pid 1] openat(AT_FDCWD, "/etc/hosts", O_RDONLY|O_CLOEXEC) = 3
//! [pid 1] read(3, "127.0.0.1 localhost\n", 4096) = 20
//! [pid 1] open("/nope", O_RDONLY) = -1 ENOENT (No such file or directory)
//! [pid 1] mmap(NULL, 8192, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) = 0x7f0000000000
//! [pid 1] clone(0x1200011, 0, 0, 0, 0x7f10, 0) = -1 ENOSYS (Function not implemented)
//! [pid 1] syscall_0x1f4(0x1, 0, 0, 0, 0, 0) = -1 ENOSYS (Function not implemented)
//! [pid 1] exit_group(0) = ?
//! ```
//!
//! The table gives every argument an [`Arg`] shape and every call a [`Ret`] shape, so names
//! and decoding come from the one table. A line is built in two steps, as strace does:
//! [`Call::begin`] formats the input arguments before the handler runs (it may change or
//! replace the memory they point to), [`Call::finish`] formats the output arguments (from
//! the first [`Arg::OutBuf`] on, with the returned length) and the result after it. Calls
//! that never return ([`Ret::Never`]) are printed before the handler runs, ending in `= ?`.
//!
//! The decoders are pure ([`decode`]); user memory is read through [`UserMemory`], so the
//! whole line is host-tested with a fake process memory.

pub mod decode;
mod decode_struct;
mod decode_task;
pub mod open;
pub mod stats;

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;

use super::{Ctx, Errno, SysResult, PATH_MAX};
use decode_struct::{SIGACTION_SIZE, STAT_SIZE, TIMESPEC_SIZE};

/// How an argument is shown.
///
/// The table names a shape for every argument; the formatter decodes it the way strace
/// does (flags as `O_RDONLY|O_CLOEXEC`, strings quoted, `AT_FDCWD`...).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arg {
    /// A signed integer.
    Int,
    /// An unsigned integer (sizes, counts).
    UInt,
    /// A C `int` (a pid, a process group): the low 32 bits, signed.
    Pid,
    /// A pointer or opaque value, in hex (`NULL` for 0).
    Ptr,
    /// A file descriptor.
    Fd,
    /// A directory file descriptor (`AT_FDCWD` for -100).
    AtFd,
    /// A buffer the kernel reads, whose length is argument N (quoted, truncated).
    Buf(usize),
    /// A buffer the kernel fills, whose length is the return value (shown after the call).
    OutBuf,
    /// A NUL-terminated string (a path).
    Str,
    /// `open` flags (`O_RDONLY|O_CLOEXEC`).
    OpenFlags,
    /// A file mode, in octal (`0644`).
    Mode,
    /// `mmap`/`mprotect` protection (`PROT_READ|PROT_WRITE`).
    Prot,
    /// `mmap` flags (`MAP_PRIVATE|MAP_ANONYMOUS`).
    MapFlags,
    /// `*at` flags (`AT_SYMLINK_NOFOLLOW`, `AT_EMPTY_PATH`...).
    AtFlags,
    /// A signal number (`SIGSEGV`).
    Signal,
    /// `rt_sigprocmask` how (`SIG_BLOCK`...).
    SigHow,
    /// A clock id (`CLOCK_MONOTONIC`).
    ClockId,
    /// `lseek` whence (`SEEK_SET`...).
    Whence,
    /// An `fcntl` command (`F_GETFD`...).
    FcntlCmd,
    /// An `ioctl` request (`TCGETS`...).
    IoctlReq,
    /// An `arch_prctl` code (`ARCH_SET_FS`).
    ArchPrctlCode,
    /// `madvise` advice (`MADV_DONTNEED`).
    Advice,
    /// `clone` flags with the exit signal (`CLONE_VM|...|SIGCHLD`).
    CloneFlags,
    /// Where `wait4` stores the status: shown after the call, decoded
    /// (`[{WIFEXITED(s) && WEXITSTATUS(s) == 0}]`) when it reported a child.
    WaitStatus,
    /// `wait4`/`waitid` options (`WNOHANG|WUNTRACED`).
    WaitOptions,
    /// A `struct timespec` the kernel reads (`{tv_sec=1, tv_nsec=0}`).
    Timespec,
    /// A `struct timespec` the kernel fills (shown after a successful call).
    OutTimespec,
    /// A signal set the kernel reads (`[INT QUIT]`).
    Sigset,
    /// A signal set the kernel fills (shown after a successful call).
    OutSigset,
    /// A `struct sigaction` the kernel reads.
    Sigaction,
    /// A `struct sigaction` the kernel fills (shown after a successful call).
    OutSigaction,
    /// A `struct stat` the kernel fills (`{st_mode=S_IFREG|0644, st_size=29, ...}`).
    OutStat,
    /// An array of `struct pollfd` whose length is argument N.
    Pollfds(usize),
    /// The two descriptors `pipe` fills (`[3, 4]`).
    OutFdPair,
    /// `pipe2` flags (`O_CLOEXEC|O_NONBLOCK`, `0`): open flags without an access mode.
    PipeFlags,
    /// A futex operation (`FUTEX_WAIT_PRIVATE`).
    FutexOp,
    /// An iovec array whose length is argument N.
    Iovec(usize),
    /// A NULL-terminated array of strings (execve's argv): `["ls", "-l"]`.
    Argv,
    /// A NULL-terminated array of strings shown by count (execve's envp):
    /// `0x7ffc... /* 3 vars */`.
    Envp,
}

/// How a call's successful result is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ret {
    /// A signed decimal (`= 3`); the default.
    Int,
    /// An address, in hex (`= 0x7f0000000000`): `mmap`, `brk`, `mremap`.
    Addr,
    /// The call does not return (`exit`, `exit_group`): the line ends in `= ?` and is
    /// printed before the handler runs.
    Never,
}

/// What the table says about a call.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    /// Linux name.
    pub name: &'static str,
    /// Argument shapes.
    pub args: &'static [Arg],
    /// Result shape.
    pub ret: Ret,
}

/// Bytes of a buffer or string shown before `...` (strace's default `-s 32`).
pub const MAX_SHOWN: usize = 32;
/// Elements of an array shown before `...`.
pub const MAX_ELEMENTS: usize = 32;

/// Read access to the traced process's memory.
pub trait UserMemory {
    /// Exactly `len` bytes at `va`, or `None` if they are not all readable.
    fn read_bytes(&self, va: u64, len: usize) -> Option<Vec<u8>>;
    /// The NUL-terminated string at `va`, at most `max` bytes of it, and whether it ended
    /// (a NUL came within `max`); `None` if `va` is unreadable.
    fn read_str(&self, va: u64, max: usize) -> Option<(Vec<u8>, bool)>;
}

impl UserMemory for Ctx<'_> {
    fn read_bytes(&self, va: u64, len: usize) -> Option<Vec<u8>> {
        self.read_vec(va, len).ok()
    }

    fn read_str(&self, va: u64, max: usize) -> Option<(Vec<u8>, bool)> {
        match self.read_cstr(va, max) {
            Ok(bytes) => Some((bytes, true)),
            Err(Errno::ENAMETOOLONG) => self.read_vec(va, max).ok().map(|b| (b, false)),
            Err(_) => None,
        }
    }
}

/// A call being traced: the line so far and what is needed to finish it.
pub struct Call {
    line: String,
    shape: Option<Shape>,
    args: [u64; 6],
    /// Arguments from this index on are output arguments, formatted after the call.
    deferred: usize,
}

impl Call {
    /// Starts the line of call `nr` (`shape` `None` if the table does not know it) by
    /// process `pid`: the name and every argument up to the first output argument.
    pub fn begin(
        mem: &dyn UserMemory,
        pid: u32,
        nr: u64,
        shape: Option<Shape>,
        args: &[u64; 6],
    ) -> Call {
        let mut line = String::new();
        let _ = write!(line, "[pid {pid}] ");
        let Some(shape) = shape else {
            match super::names::linux_name(nr) {
                Some(name) => {
                    let _ = write!(line, "{name}(");
                }
                None => {
                    let _ = write!(line, "syscall_{nr:#x}(");
                }
            }
            for (i, &value) in args.iter().enumerate() {
                if i > 0 {
                    line.push_str(", ");
                }
                decode::raw(&mut line, value);
            }
            return Call {
                line,
                shape: None,
                args: *args,
                deferred: 6,
            };
        };
        line.push_str(shape.name);
        line.push('(');
        let deferred = (0..shape.args.len())
            .find(|&i| is_output(&shape, i))
            .unwrap_or(shape.args.len());
        let mut call = Call {
            line,
            shape: Some(shape),
            args: *args,
            deferred,
        };
        call.format_args(mem, 0..deferred, None);
        call
    }

    /// The call's name and whether output arguments follow the line so far (`None` for
    /// a number the table does not know: those fail at once, they never wait).
    pub fn open_info(&self) -> Option<(&'static str, bool)> {
        let shape = self.shape?;
        let more = (self.deferred..shape.args.len()).any(|i| is_shown(&shape, &self.args, i));
        Some((shape.name, more))
    }

    /// The line so far: `[pid N] name(` and the input arguments.
    pub fn prefix(&self) -> &str {
        &self.line
    }

    /// Whether the call never returns, so its line must be printed before it runs.
    pub fn never_returns(&self) -> bool {
        self.shape.is_some_and(|s| s.ret == Ret::Never)
    }

    /// The line of a call that does not return: `[pid 1] exit_group(0) = ?`.
    pub fn unfinished_line(&self) -> String {
        let mut line = self.line.clone();
        line.push_str(") = ?");
        line
    }

    /// Completes the line after the handler returned `result`: output arguments, then
    /// ` = value` or ` = -1 ENAME (message)`.
    pub fn finish(mut self, mem: &dyn UserMemory, result: &SysResult) -> String {
        let count = self.shape.map_or(0, |s| s.args.len());
        let returned = result.as_ref().ok().copied();
        self.format_args(mem, self.deferred..count, returned);
        self.line.push_str(") = ");
        match result {
            Ok(value) => self.format_result(*value),
            // The restart errors never reach the program (strace prints them with `?`).
            Err(e) if *e == Errno::ERESTARTSYS => {
                let _ = write!(self.line, "? {} ({})", e.name(), e.message());
            }
            Err(e) => {
                let _ = write!(self.line, "-1 {} ({})", e.name(), e.message());
            }
        }
        self.line
    }

    fn format_result(&mut self, value: u64) {
        let line = &mut self.line;
        match self.shape {
            Some(shape) if shape.ret == Ret::Addr => {
                let _ = write!(line, "{value:#x}");
            }
            Some(shape) => match result_flags(&shape, &self.args) {
                Some(decode) => {
                    let _ = write!(line, "{value:#x} (flags ");
                    decode(line, value);
                    line.push(')');
                }
                None => {
                    let _ = write!(line, "{}", value as i64);
                }
            },
            None => {
                let _ = write!(line, "{}", value as i64);
            }
        }
    }

    /// Appends arguments `range`; `returned` is the call's result once it has one.
    fn format_args(
        &mut self,
        mem: &dyn UserMemory,
        range: core::ops::Range<usize>,
        returned: Option<u64>,
    ) {
        let Some(shape) = self.shape else { return };
        for i in range {
            if !is_shown(&shape, &self.args, i) {
                continue;
            }
            if i > 0 {
                self.line.push_str(", ");
            }
            format_arg(&mut self.line, mem, &shape, &self.args, i, returned);
        }
    }
}

/// The decoder of a result that is a set of flags: fcntl's `F_GETFD` and `F_GETFL`.
fn result_flags(shape: &Shape, args: &[u64; 6]) -> Option<fn(&mut String, u64)> {
    let cmd = shape.args.iter().position(|a| *a == Arg::FcntlCmd)?;
    match args[cmd] & 0xffff_ffff {
        decode::fcntl::F_GETFD => Some(decode::fd_flags),
        decode::fcntl::F_GETFL => Some(decode::open_flags),
        _ => None,
    }
}

/// Whether argument `i` is filled in by the call (so shown after it).
fn is_output(shape: &Shape, i: usize) -> bool {
    match shape.args[i] {
        Arg::OutBuf
        | Arg::WaitStatus
        | Arg::OutTimespec
        | Arg::OutSigset
        | Arg::OutSigaction
        | Arg::OutStat
        | Arg::OutFdPair => true,
        Arg::Iovec(_) => matches!(shape.name, "readv" | "preadv" | "preadv2"),
        _ => false,
    }
}

/// Whether argument `i` is printed: strace leaves out `open`'s mode unless the flags
/// create a file, and `fcntl`'s argument for commands that take none.
fn is_shown(shape: &Shape, args: &[u64; 6], i: usize) -> bool {
    let before = |kind: Arg| shape.args[..i].iter().position(|a| *a == kind);
    match shape.args[i] {
        Arg::Mode => before(Arg::OpenFlags)
            .is_none_or(|f| args[f] & (decode::O_CREAT | decode::O_TMPFILE) != 0),
        _ => match before(Arg::FcntlCmd) {
            Some(c) if c + 1 == i => !decode::fcntl::takes_no_arg(args[c] & 0xffff_ffff),
            _ => true,
        },
    }
}

/// Appends argument `i`.
fn format_arg(
    out: &mut String,
    mem: &dyn UserMemory,
    shape: &Shape,
    args: &[u64; 6],
    i: usize,
    returned: Option<u64>,
) {
    let value = args[i];
    // fcntl's argument depends on the command.
    if i > 0 && shape.args[i - 1] == Arg::FcntlCmd {
        match args[i - 1] & 0xffff_ffff {
            decode::fcntl::F_SETFD => return decode::fd_flags(out, value),
            decode::fcntl::F_SETFL => return decode::open_flags(out, value),
            decode::fcntl::F_DUPFD | decode::fcntl::F_DUPFD_CLOEXEC => {
                let _ = write!(out, "{}", value as i32);
                return;
            }
            _ => {}
        }
    }
    match shape.args[i] {
        Arg::Int => {
            let _ = write!(out, "{}", value as i64);
        }
        Arg::UInt => {
            let _ = write!(out, "{value}");
        }
        Arg::Fd | Arg::Pid => {
            let _ = write!(out, "{}", value as i32);
        }
        Arg::Ptr => decode::pointer(out, value),
        Arg::AtFd => decode::dirfd(out, value),
        Arg::Buf(len_index) => {
            let len = args.get(len_index).copied().unwrap_or(0);
            buffer(out, mem, value, len);
        }
        Arg::OutBuf => match returned {
            Some(len) => buffer(out, mem, value, len),
            None => decode::pointer(out, value),
        },
        Arg::Str => string(out, mem, value),
        Arg::OpenFlags => decode::open_flags(out, value),
        Arg::Mode => decode::mode(out, value),
        Arg::Prot => decode::prot(out, value),
        Arg::MapFlags => decode::map_flags(out, value),
        Arg::AtFlags => decode::at_flags(out, value),
        Arg::Signal => decode::signal(out, value),
        Arg::SigHow => decode::sig_how(out, value),
        Arg::ClockId => decode::clock_id(out, value),
        Arg::Whence => decode::whence(out, value),
        Arg::FcntlCmd => decode::fcntl_cmd(out, value),
        Arg::IoctlReq => decode::ioctl_req(out, value),
        Arg::ArchPrctlCode => decode::arch_prctl_code(out, value),
        Arg::Advice => decode::advice(out, value),
        Arg::CloneFlags => decode_task::clone_flags(out, value),
        Arg::WaitOptions => decode_task::wait_options(out, value),
        Arg::Timespec => structure(out, mem, value, TIMESPEC_SIZE, decode_struct::timespec),
        Arg::Sigset => structure(out, mem, value, 8, sigset_bytes),
        Arg::Sigaction => structure(out, mem, value, SIGACTION_SIZE, decode_struct::sigaction),
        Arg::OutTimespec | Arg::OutSigset | Arg::OutSigaction | Arg::OutStat | Arg::OutFdPair
            if returned.is_none() =>
        {
            decode::pointer(out, value)
        }
        Arg::OutTimespec => structure(out, mem, value, TIMESPEC_SIZE, decode_struct::timespec),
        Arg::OutSigset => structure(out, mem, value, 8, sigset_bytes),
        Arg::OutSigaction => structure(out, mem, value, SIGACTION_SIZE, decode_struct::sigaction),
        Arg::OutStat => structure(out, mem, value, STAT_SIZE, decode_struct::stat),
        Arg::OutFdPair => structure(out, mem, value, 8, decode_struct::fd_pair),
        Arg::PipeFlags => decode_struct::pipe_flags(out, value),
        Arg::Pollfds(count_index) => {
            let count = args.get(count_index).copied().unwrap_or(0);
            let shown = count.min(decode_struct::MAX_POLLFDS as u64) as usize;
            structure(out, mem, value, shown * 8, |o, b| {
                decode_struct::pollfds(o, b, count)
            })
        }
        Arg::WaitStatus => {
            let status = mem
                .read_bytes(value, 4)
                .and_then(|b| <[u8; 4]>::try_from(b.get(..4)?).ok())
                .map(i32::from_le_bytes);
            match (returned, status) {
                (Some(pid), Some(status)) if value != 0 && pid != 0 => {
                    decode_task::wait_status(out, status)
                }
                _ => decode::pointer(out, value),
            }
        }
        Arg::FutexOp => decode_task::futex_op(out, value),
        Arg::Argv => string_array(out, mem, value, false),
        Arg::Envp => string_array(out, mem, value, true),
        Arg::Iovec(count_index) => {
            let count = args.get(count_index).copied().unwrap_or(0) as i32;
            // An output iovec holds data only up to the returned length.
            let limit = if is_output(shape, i) {
                returned
            } else {
                Some(u64::MAX)
            };
            iovec(out, mem, value, count, limit);
        }
    }
}

/// The structure of `size` bytes at `va`, decoded by `decode`; `NULL`, or the pointer if
/// it cannot be read.
fn structure(
    out: &mut String,
    mem: &dyn UserMemory,
    va: u64,
    size: usize,
    decode: impl FnOnce(&mut String, &[u8]) -> bool,
) {
    if va == 0 {
        return out.push_str("NULL");
    }
    let mut shown = String::new();
    match mem.read_bytes(va, size) {
        Some(bytes) if decode(&mut shown, &bytes) => out.push_str(&shown),
        _ => decode::pointer(out, va),
    }
}

/// A 64-signal set from its 8 bytes.
fn sigset_bytes(out: &mut String, bytes: &[u8]) -> bool {
    match bytes.get(..8).and_then(|b| <[u8; 8]>::try_from(b).ok()) {
        Some(b) => {
            decode_struct::sigset(out, u64::from_le_bytes(b));
            true
        }
        None => false,
    }
}

/// A buffer of `len` bytes: its first [`MAX_SHOWN`] quoted, or the pointer if unreadable.
fn buffer(out: &mut String, mem: &dyn UserMemory, va: u64, len: u64) {
    let shown = len.min(MAX_SHOWN as u64) as usize;
    match mem.read_bytes(va, shown) {
        Some(bytes) => decode::quote(out, &bytes, len > shown as u64),
        None => decode::pointer(out, va),
    }
}

/// A NULL-terminated array of string pointers: the strings (at most [`MAX_ELEMENTS`],
/// each cut at [`MAX_SHOWN`] bytes), or only their count (`count_only`, as strace shows
/// an environment), or the pointer if unreadable.
fn string_array(out: &mut String, mem: &dyn UserMemory, va: u64, count_only: bool) {
    if va == 0 {
        return decode::pointer(out, va);
    }
    let mut items = alloc::vec::Vec::new();
    let mut count = 0usize;
    let mut at = va;
    loop {
        let Some(word) = mem.read_bytes(at, 8) else {
            return decode::pointer(out, va);
        };
        let mut b = [0u8; 8];
        b.copy_from_slice(&word);
        let ptr = u64::from_le_bytes(b);
        if ptr == 0 || count >= 4096 {
            break;
        }
        if !count_only && items.len() < MAX_ELEMENTS {
            items.push(ptr);
        }
        count += 1;
        at = at.wrapping_add(8);
    }
    if count_only {
        decode::pointer(out, va);
        let _ = write!(out, " /* {count} vars */");
        return;
    }
    out.push('[');
    for (n, ptr) in items.iter().enumerate() {
        if n > 0 {
            out.push_str(", ");
        }
        match mem.read_str(*ptr, MAX_SHOWN) {
            Some((bytes, ended)) => decode::quote(out, &bytes, !ended),
            None => decode::pointer(out, *ptr),
        }
    }
    if count > items.len() {
        out.push_str(", ...");
    }
    out.push(']');
}

/// A NUL-terminated string (a path: shown whole up to `PATH_MAX`), or the pointer.
fn string(out: &mut String, mem: &dyn UserMemory, va: u64) {
    match mem.read_str(va, PATH_MAX) {
        Some((bytes, ended)) => decode::quote(out, &bytes, !ended),
        None => decode::pointer(out, va),
    }
}

/// An iovec array: `[{iov_base="hi\n", iov_len=3}, ...]`, each base showing at most
/// [`MAX_SHOWN`] bytes and, in all, at most `limit` bytes (`None`: the call failed, show
/// the pointer).
fn iovec(out: &mut String, mem: &dyn UserMemory, va: u64, count: i32, limit: Option<u64>) {
    let Some(mut left) = limit else {
        return decode::pointer(out, va);
    };
    let count = count.max(0) as usize;
    let shown = count.min(MAX_ELEMENTS);
    let Some(raw) = mem.read_bytes(va, shown * 16) else {
        return decode::pointer(out, va);
    };
    out.push('[');
    for (n, entry) in raw.chunks_exact(16).enumerate() {
        if n > 0 {
            out.push_str(", ");
        }
        let word = |at: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&entry[at..at + 8]);
            u64::from_le_bytes(b)
        };
        let (base, len) = (word(0), word(8));
        out.push_str("{iov_base=");
        let data = len.min(left);
        buffer(out, mem, base, data);
        left -= data;
        let _ = write!(out, ", iov_len={len}}}");
    }
    if count > shown {
        out.push_str(", ...");
    }
    out.push(']');
}

#[cfg(test)]
mod tests;

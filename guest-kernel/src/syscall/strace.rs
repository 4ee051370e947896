//! `--strace`: one line per system call in strace's format.

use alloc::string::String;
use core::fmt::Write;

use super::table::Entry;
use super::{Errno, SysResult};
use crate::mm::uaccess;
use crate::process::Process;

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
    /// An iovec array whose length is argument N.
    Iovec(usize),
}

const MAX_SHOWN: usize = 32;

/// Escapes bytes the way strace does.
pub fn quote(bytes: &[u8], truncated: bool, out: &mut String) {
    out.push('"');
    for &b in bytes {
        match b {
            b'\n' => out.push_str("\\n"),
            b'\t' => out.push_str("\\t"),
            b'\r' => out.push_str("\\r"),
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            0x20..=0x7e => out.push(b as char),
            _ => {
                let _ = write!(out, "\\{:o}", b);
            }
        }
    }
    out.push('"');
    if truncated {
        out.push_str("...");
    }
}

/// Formats the call part of the line: `[pid 1] write(1, "hi\n", 3`.
pub fn begin(proc: &Process, nr: u64, entry: Option<&Entry>, args: &[u64; 6]) -> String {
    let mut line = String::new();
    let _ = write!(line, "[pid {}] ", proc.pid);
    let Some(entry) = entry else {
        let _ = write!(
            line,
            "syscall_{nr}({:#x}, {:#x}, {:#x}, {:#x}, {:#x}, {:#x}",
            args[0], args[1], args[2], args[3], args[4], args[5]
        );
        return line;
    };
    line.push_str(entry.name);
    line.push('(');
    for (i, kind) in entry.args.iter().enumerate() {
        if i > 0 {
            line.push_str(", ");
        }
        let value = args[i];
        match *kind {
            Arg::Int | Arg::Fd => {
                let _ = write!(line, "{}", value as i64);
            }
            Arg::UInt => {
                let _ = write!(line, "{value}");
            }
            Arg::Ptr
            | Arg::OutBuf
            | Arg::Iovec(_)
            | Arg::OpenFlags
            | Arg::Prot
            | Arg::MapFlags
            | Arg::AtFlags
            | Arg::IoctlReq
            | Arg::ArchPrctlCode => {
                if value == 0 {
                    line.push_str("NULL");
                } else {
                    let _ = write!(line, "{value:#x}");
                }
            }
            Arg::Buf(len_index) => {
                let len = args.get(len_index).copied().unwrap_or(0) as usize;
                let shown = len.min(MAX_SHOWN);
                match uaccess::read_vec(&proc.space, value, shown) {
                    Ok(bytes) => quote(&bytes, len > shown, &mut line),
                    Err(_) => {
                        let _ = write!(line, "{value:#x}");
                    }
                }
            }
            Arg::Str => {
                let _ = write!(line, "{value:#x}");
            }
            Arg::AtFd
            | Arg::Signal
            | Arg::SigHow
            | Arg::ClockId
            | Arg::Whence
            | Arg::FcntlCmd
            | Arg::Advice => {
                let _ = write!(line, "{}", value as i64);
            }
            Arg::Mode => {
                let _ = write!(line, "{value:#o}");
            }
        }
    }
    line
}

/// Appends the result and prints the line.
pub fn finish(line: &mut String, result: &SysResult) {
    match result {
        Ok(value) => {
            let _ = write!(line, ") = {}", *value as i64);
        }
        Err(e) => {
            let _ = write!(line, ") = -1 {} ({})", e.name(), e.message());
        }
    }
    crate::kprintln!("{}", line);
}

/// Formats a failed result like strace.
#[allow(dead_code)]
pub fn format_error(e: Errno) -> String {
    let mut s = String::new();
    let _ = write!(s, "-1 {} ({})", e.name(), e.message());
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_like_strace() {
        let mut s = String::new();
        quote(b"hi\n\"x\"\x01", true, &mut s);
        assert_eq!(s, "\"hi\\n\\\"x\\\"\\1\"...");
    }

    #[test]
    fn errors_read_like_strace() {
        assert_eq!(
            format_error(Errno::ENOENT),
            "-1 ENOENT (No such file or directory)"
        );
    }
}

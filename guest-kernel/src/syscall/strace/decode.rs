//! Pure decoders for `--strace`: Linux constants and flag sets printed the way strace
//! prints them (`O_RDONLY|O_CLOEXEC`, `0644`, `PROT_READ|PROT_WRITE`, `SIGSEGV`,
//! `0x5 /* SEEK_??? */`...). Everything appends to a `String` and never fails.

use alloc::string::String;
use core::fmt::Write;

/// How strace prints the bits a flag table does not name.
#[derive(Clone, Copy)]
pub(super) enum Rest {
    /// `|0x40000000`
    Hex,
    /// `|040000000000` (open flags)
    Octal,
}

/// Appends `value` as `NAME|NAME|rest`, names taken in table order (multi-bit entries
/// first where they overlap), `zero` when nothing is set.
pub(super) fn flags(out: &mut String, value: u64, table: &[(u64, &str)], zero: &str, rest: Rest) {
    let mut left = value;
    let mut first = true;
    let mut sep = |out: &mut String| {
        if !first {
            out.push('|');
        }
        first = false;
    };
    for &(mask, name) in table {
        if mask != 0 && left & mask == mask {
            sep(out);
            out.push_str(name);
            left &= !mask;
        }
    }
    if left != 0 {
        sep(out);
        let _ = match rest {
            Rest::Hex => write!(out, "{left:#x}"),
            Rest::Octal => write!(out, "0{left:o}"),
        };
    } else if value == 0 {
        out.push_str(zero);
    }
}

/// Appends the name of `value` in `table`, or `0x5 /* PREFIX??? */` like strace.
fn enumerated(out: &mut String, value: u64, table: &[(u64, &str)], unknown_prefix: &str) {
    match table.iter().find(|(v, _)| *v == value) {
        Some((_, name)) => out.push_str(name),
        None => {
            let _ = write!(out, "{value:#x} /* {unknown_prefix}??? */");
        }
    }
}

/// Escapes `bytes` inside double quotes as strace does (`\n`, `\"`, octal for the rest),
/// followed by `...` if `truncated`.
pub fn quote(out: &mut String, bytes: &[u8], truncated: bool) {
    out.push('"');
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\t' => out.push_str("\\t"),
            b'\r' => out.push_str("\\r"),
            0x0b => out.push_str("\\v"),
            0x0c => out.push_str("\\f"),
            0x20..=0x7e => out.push(b as char),
            _ => {
                // Short octal, unless an octal digit follows and would be read as part of it.
                let next_is_digit = matches!(bytes.get(i + 1), Some(b'0'..=b'7'));
                let _ = if next_is_digit {
                    write!(out, "\\{b:03o}")
                } else {
                    write!(out, "\\{b:o}")
                };
            }
        }
    }
    out.push('"');
    if truncated {
        out.push_str("...");
    }
}

/// A pointer: `NULL` or hex.
pub fn pointer(out: &mut String, value: u64) {
    if value == 0 {
        out.push_str("NULL");
    } else {
        let _ = write!(out, "{value:#x}");
    }
}

/// A raw argument of an unknown system call: `0` or hex.
pub fn raw(out: &mut String, value: u64) {
    if value == 0 {
        out.push('0');
    } else {
        let _ = write!(out, "{value:#x}");
    }
}

/// `AT_FDCWD` for -100, else the descriptor.
pub fn dirfd(out: &mut String, value: u64) {
    match value as i32 {
        -100 => out.push_str("AT_FDCWD"),
        fd => {
            let _ = write!(out, "{fd}");
        }
    }
}

/// `O_CREAT`: open flags that take a mode argument.
pub const O_CREAT: u64 = 0o100;
/// `O_TMPFILE` (includes `O_DIRECTORY`).
pub const O_TMPFILE: u64 = 0o20200000;

const OPEN_FLAGS: &[(u64, &str)] = &[
    (O_CREAT, "O_CREAT"),
    (0o200, "O_EXCL"),
    (0o400, "O_NOCTTY"),
    (0o1000, "O_TRUNC"),
    (0o2000, "O_APPEND"),
    (0o4000, "O_NONBLOCK"),
    // O_SYNC is __O_SYNC|O_DSYNC: before O_DSYNC so it wins when both bits are set.
    (0o4010000, "O_SYNC"),
    (0o10000, "O_DSYNC"),
    (0o20000, "O_ASYNC"),
    (0o40000, "O_DIRECT"),
    (0o100000, "O_LARGEFILE"),
    // O_TMPFILE includes O_DIRECTORY: before it.
    (O_TMPFILE, "O_TMPFILE"),
    (0o200000, "O_DIRECTORY"),
    (0o400000, "O_NOFOLLOW"),
    (0o1000000, "O_NOATIME"),
    (0o2000000, "O_CLOEXEC"),
    (0o10000000, "O_PATH"),
];

/// `open` flags: the access mode first (`O_RDONLY`, `O_WRONLY`, `O_RDWR`, `O_ACCMODE`),
/// then the flags, unknown bits in octal.
pub fn open_flags(out: &mut String, value: u64) {
    let value = value & 0xffff_ffff;
    out.push_str(match value & 3 {
        0 => "O_RDONLY",
        1 => "O_WRONLY",
        2 => "O_RDWR",
        _ => "O_ACCMODE",
    });
    let rest = value & !3;
    if rest != 0 {
        out.push('|');
        flags(out, rest, OPEN_FLAGS, "", Rest::Octal);
    }
}

const FILE_TYPES: &[(u64, &str)] = &[
    (0o140000, "S_IFSOCK"),
    (0o120000, "S_IFLNK"),
    (0o100000, "S_IFREG"),
    (0o060000, "S_IFBLK"),
    (0o040000, "S_IFDIR"),
    (0o020000, "S_IFCHR"),
    (0o010000, "S_IFIFO"),
];

/// A file mode in octal as strace prints it (`0644`, `000`), after its file type if any
/// (`S_IFREG|0644`).
pub fn mode(out: &mut String, value: u64) {
    let value = value & 0xffff_ffff;
    let file_type = value & 0o170000;
    if file_type != 0 {
        enumerated(out, file_type, FILE_TYPES, "S_IF");
        out.push('|');
    }
    let perms = value & !0o170000;
    let digits = if perms == 0 {
        String::from("0")
    } else {
        let mut s = String::new();
        let _ = write!(s, "0{perms:o}");
        s
    };
    for _ in digits.len()..3 {
        out.push('0');
    }
    out.push_str(&digits);
}

/// `mmap`/`mprotect` protection.
pub fn prot(out: &mut String, value: u64) {
    const PROT: &[(u64, &str)] = &[
        (0x1, "PROT_READ"),
        (0x2, "PROT_WRITE"),
        (0x4, "PROT_EXEC"),
        (0x8, "PROT_SEM"),
        (0x0100_0000, "PROT_GROWSDOWN"),
        (0x0200_0000, "PROT_GROWSUP"),
    ];
    flags(out, value, PROT, "PROT_NONE", Rest::Hex);
}

/// `mmap` flags: the mapping type first (`MAP_PRIVATE`), then the flags.
pub fn map_flags(out: &mut String, value: u64) {
    const MAP: &[(u64, &str)] = &[
        (0x10, "MAP_FIXED"),
        (0x20, "MAP_ANONYMOUS"),
        (0x40, "MAP_32BIT"),
        (0x100, "MAP_GROWSDOWN"),
        (0x800, "MAP_DENYWRITE"),
        (0x1000, "MAP_EXECUTABLE"),
        (0x2000, "MAP_LOCKED"),
        (0x4000, "MAP_NORESERVE"),
        (0x8000, "MAP_POPULATE"),
        (0x10000, "MAP_NONBLOCK"),
        (0x20000, "MAP_STACK"),
        (0x40000, "MAP_HUGETLB"),
        (0x80000, "MAP_SYNC"),
        (0x10_0000, "MAP_FIXED_NOREPLACE"),
    ];
    let kind = match value & 0xf {
        1 => Some("MAP_SHARED"),
        2 => Some("MAP_PRIVATE"),
        3 => Some("MAP_SHARED_VALIDATE"),
        _ => None,
    };
    let rest = match kind {
        Some(name) => {
            out.push_str(name);
            value & !0xf
        }
        None => value,
    };
    if rest != 0 || kind.is_none() {
        if kind.is_some() {
            out.push('|');
        }
        flags(out, rest, MAP, "0", Rest::Hex);
    }
}

/// `*at` flags.
pub fn at_flags(out: &mut String, value: u64) {
    const AT: &[(u64, &str)] = &[
        (0x100, "AT_SYMLINK_NOFOLLOW"),
        (0x200, "AT_REMOVEDIR"),
        (0x400, "AT_SYMLINK_FOLLOW"),
        (0x800, "AT_NO_AUTOMOUNT"),
        (0x1000, "AT_EMPTY_PATH"),
        (0x2000, "AT_STATX_FORCE_SYNC"),
        (0x4000, "AT_STATX_DONT_SYNC"),
        (0x8000, "AT_RECURSIVE"),
    ];
    flags(out, value & 0xffff_ffff, AT, "0", Rest::Hex);
}

/// A signal number: `SIGSEGV`, `SIGRTMIN`, `SIGRT_3`, or the number.
pub fn signal(out: &mut String, value: u64) {
    let sig = value as i32;
    match sig {
        0..=31 => out.push_str(crate::signal::name(sig as u8)),
        32 => out.push_str("SIGRTMIN"),
        33..=64 => {
            let _ = write!(out, "SIGRT_{}", sig - 32);
        }
        _ => {
            let _ = write!(out, "{sig}");
        }
    }
}

/// `rt_sigprocmask` how.
pub fn sig_how(out: &mut String, value: u64) {
    const HOW: &[(u64, &str)] = &[(0, "SIG_BLOCK"), (1, "SIG_UNBLOCK"), (2, "SIG_SETMASK")];
    enumerated(out, value & 0xffff_ffff, HOW, "SIG_");
}

/// A clock id.
pub fn clock_id(out: &mut String, value: u64) {
    const CLOCKS: &[(u64, &str)] = &[
        (0, "CLOCK_REALTIME"),
        (1, "CLOCK_MONOTONIC"),
        (2, "CLOCK_PROCESS_CPUTIME_ID"),
        (3, "CLOCK_THREAD_CPUTIME_ID"),
        (4, "CLOCK_MONOTONIC_RAW"),
        (5, "CLOCK_REALTIME_COARSE"),
        (6, "CLOCK_MONOTONIC_COARSE"),
        (7, "CLOCK_BOOTTIME"),
        (8, "CLOCK_REALTIME_ALARM"),
        (9, "CLOCK_BOOTTIME_ALARM"),
        (11, "CLOCK_TAI"),
    ];
    enumerated(out, value & 0xffff_ffff, CLOCKS, "CLOCK_");
}

/// `lseek` whence.
pub fn whence(out: &mut String, value: u64) {
    const WHENCE: &[(u64, &str)] = &[
        (0, "SEEK_SET"),
        (1, "SEEK_CUR"),
        (2, "SEEK_END"),
        (3, "SEEK_DATA"),
        (4, "SEEK_HOLE"),
    ];
    enumerated(out, value & 0xffff_ffff, WHENCE, "SEEK_");
}

/// `fcntl` commands.
pub mod fcntl {
    /// `F_DUPFD`
    pub const F_DUPFD: u64 = 0;
    /// `F_GETFD`
    pub const F_GETFD: u64 = 1;
    /// `F_SETFD`
    pub const F_SETFD: u64 = 2;
    /// `F_GETFL`
    pub const F_GETFL: u64 = 3;
    /// `F_SETFL`
    pub const F_SETFL: u64 = 4;
    /// `F_DUPFD_CLOEXEC`
    pub const F_DUPFD_CLOEXEC: u64 = 1030;

    /// Every command strace names.
    pub(super) const NAMES: &[(u64, &str)] = &[
        (F_DUPFD, "F_DUPFD"),
        (F_GETFD, "F_GETFD"),
        (F_SETFD, "F_SETFD"),
        (F_GETFL, "F_GETFL"),
        (F_SETFL, "F_SETFL"),
        (5, "F_GETLK"),
        (6, "F_SETLK"),
        (7, "F_SETLKW"),
        (8, "F_SETOWN"),
        (9, "F_GETOWN"),
        (10, "F_SETSIG"),
        (11, "F_GETSIG"),
        (15, "F_SETOWN_EX"),
        (16, "F_GETOWN_EX"),
        (36, "F_OFD_GETLK"),
        (37, "F_OFD_SETLK"),
        (38, "F_OFD_SETLKW"),
        (1024, "F_SETLEASE"),
        (1025, "F_GETLEASE"),
        (1026, "F_NOTIFY"),
        (F_DUPFD_CLOEXEC, "F_DUPFD_CLOEXEC"),
        (1031, "F_SETPIPE_SZ"),
        (1032, "F_GETPIPE_SZ"),
        (1033, "F_ADD_SEALS"),
        (1034, "F_GET_SEALS"),
    ];

    /// Commands that take no third argument (strace leaves it out).
    pub fn takes_no_arg(cmd: u64) -> bool {
        matches!(cmd, F_GETFD | F_GETFL | 9 | 11 | 1025 | 1032 | 1034)
    }
}

/// An `fcntl` command.
pub fn fcntl_cmd(out: &mut String, value: u64) {
    enumerated(out, value & 0xffff_ffff, fcntl::NAMES, "F_");
}

/// File descriptor flags (`F_SETFD`'s argument, `F_GETFD`'s result).
pub fn fd_flags(out: &mut String, value: u64) {
    flags(out, value, &[(1, "FD_CLOEXEC")], "0", Rest::Hex);
}

const IOCTLS: &[(u64, &str)] = &[
    (0x5401, "TCGETS"),
    (0x5402, "TCSETS"),
    (0x5403, "TCSETSW"),
    (0x5404, "TCSETSF"),
    (0x5405, "TCGETA"),
    (0x5406, "TCSETA"),
    (0x5407, "TCSETAW"),
    (0x5408, "TCSETAF"),
    (0x5409, "TCSBRK"),
    (0x540a, "TCXONC"),
    (0x540b, "TCFLSH"),
    (0x540c, "TIOCEXCL"),
    (0x540d, "TIOCNXCL"),
    (0x540e, "TIOCSCTTY"),
    (0x540f, "TIOCGPGRP"),
    (0x5410, "TIOCSPGRP"),
    (0x5411, "TIOCOUTQ"),
    (0x5412, "TIOCSTI"),
    (0x5413, "TIOCGWINSZ"),
    (0x5414, "TIOCSWINSZ"),
    (0x5415, "TIOCMGET"),
    (0x5416, "TIOCMBIS"),
    (0x5417, "TIOCMBIC"),
    (0x5418, "TIOCMSET"),
    (0x541b, "FIONREAD"),
    (0x541c, "TIOCLINUX"),
    (0x541d, "TIOCCONS"),
    (0x5420, "TIOCPKT"),
    (0x5421, "FIONBIO"),
    (0x5422, "TIOCNOTTY"),
    (0x5423, "TIOCSETD"),
    (0x5424, "TIOCGETD"),
    (0x5429, "TIOCGSID"),
    (0x5450, "FIONCLEX"),
    (0x5451, "FIOCLEX"),
    (0x5452, "FIOASYNC"),
    (0x5460, "FIOQSIZE"),
    (0x8004_5430, "TIOCGPTN"),
    (0x4004_5431, "TIOCSPTLCK"),
    (0x8008_1272, "BLKGETSIZE64"),
    (0x1260, "BLKGETSIZE"),
    (0x2, "FIGETBSZ"),
];

/// An `ioctl` request: its name, else `_IOC(dir, type, nr, size)` for encoded requests,
/// else hex.
pub fn ioctl_req(out: &mut String, value: u64) {
    let req = value & 0xffff_ffff;
    if let Some((_, name)) = IOCTLS.iter().find(|(v, _)| *v == req) {
        out.push_str(name);
        return;
    }
    let (dir, size) = (req >> 30, (req >> 16) & 0x3fff);
    if dir == 0 && size == 0 {
        let _ = write!(out, "{req:#x}");
        return;
    }
    let dir = match dir {
        0 => "_IOC_NONE",
        1 => "_IOC_WRITE",
        2 => "_IOC_READ",
        _ => "_IOC_READ|_IOC_WRITE",
    };
    let _ = write!(
        out,
        "_IOC({dir}, {:#x}, {:#x}, {size:#x})",
        (req >> 8) & 0xff,
        req & 0xff
    );
}

/// An `arch_prctl` code.
pub fn arch_prctl_code(out: &mut String, value: u64) {
    const CODES: &[(u64, &str)] = &[
        (0x1001, "ARCH_SET_GS"),
        (0x1002, "ARCH_SET_FS"),
        (0x1003, "ARCH_GET_FS"),
        (0x1004, "ARCH_GET_GS"),
        (0x1011, "ARCH_GET_CPUID"),
        (0x1012, "ARCH_SET_CPUID"),
        (0x1021, "ARCH_GET_XCOMP_SUPP"),
        (0x1022, "ARCH_GET_XCOMP_PERM"),
        (0x1023, "ARCH_REQ_XCOMP_PERM"),
        (0x1024, "ARCH_GET_XCOMP_GUEST_PERM"),
        (0x1025, "ARCH_REQ_XCOMP_GUEST_PERM"),
        (0x2001, "ARCH_MAP_VDSO_X32"),
        (0x2002, "ARCH_MAP_VDSO_32"),
        (0x2003, "ARCH_MAP_VDSO_64"),
    ];
    enumerated(out, value & 0xffff_ffff, CODES, "ARCH_");
}

/// `madvise` advice.
pub fn advice(out: &mut String, value: u64) {
    const ADVICE: &[(u64, &str)] = &[
        (0, "MADV_NORMAL"),
        (1, "MADV_RANDOM"),
        (2, "MADV_SEQUENTIAL"),
        (3, "MADV_WILLNEED"),
        (4, "MADV_DONTNEED"),
        (8, "MADV_FREE"),
        (9, "MADV_REMOVE"),
        (10, "MADV_DONTFORK"),
        (11, "MADV_DOFORK"),
        (12, "MADV_MERGEABLE"),
        (13, "MADV_UNMERGEABLE"),
        (14, "MADV_HUGEPAGE"),
        (15, "MADV_NOHUGEPAGE"),
        (16, "MADV_DONTDUMP"),
        (17, "MADV_DODUMP"),
        (18, "MADV_WIPEONFORK"),
        (19, "MADV_KEEPONFORK"),
        (20, "MADV_COLD"),
        (21, "MADV_PAGEOUT"),
        (22, "MADV_POPULATE_READ"),
        (23, "MADV_POPULATE_WRITE"),
        (24, "MADV_DONTNEED_LOCKED"),
        (25, "MADV_COLLAPSE"),
        (100, "MADV_HWPOISON"),
        (101, "MADV_SOFT_OFFLINE"),
    ];
    enumerated(out, value & 0xffff_ffff, ADVICE, "MADV_");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn show(f: fn(&mut String, u64), value: u64) -> String {
        let mut s = String::new();
        f(&mut s, value);
        s
    }

    #[test]
    fn quotes_like_strace() {
        let mut s = String::new();
        quote(&mut s, b"hi\n\"x\"\x01\t\\", true);
        assert_eq!(s, r#""hi\n\"x\"\1\t\\"..."#);
        // Octal escapes grow to three digits when an octal digit follows.
        let mut s = String::new();
        quote(&mut s, b"\x00\x001\x7f8\xff\x0b\x0c\r", false);
        assert_eq!(s, r#""\0\0001\1778\377\v\f\r""#);
        let mut s = String::new();
        quote(&mut s, b"", false);
        assert_eq!(s, r#""""#);
    }

    #[test]
    fn pointers_and_raw_values() {
        assert_eq!(show(pointer, 0), "NULL");
        assert_eq!(show(pointer, 0x7fff_1000), "0x7fff1000");
        assert_eq!(show(raw, 0), "0");
        assert_eq!(show(raw, 255), "0xff");
    }

    #[test]
    fn dirfds() {
        assert_eq!(show(dirfd, (-100i64) as u64), "AT_FDCWD");
        assert_eq!(show(dirfd, 0xffff_ff9c), "AT_FDCWD");
        assert_eq!(show(dirfd, 3), "3");
        assert_eq!(show(dirfd, (-1i64) as u64), "-1");
    }

    #[test]
    fn open_flags_put_the_access_mode_first() {
        assert_eq!(show(open_flags, 0), "O_RDONLY");
        assert_eq!(show(open_flags, 0o2000000), "O_RDONLY|O_CLOEXEC");
        assert_eq!(
            show(open_flags, 0o1 | 0o100 | 0o1000 | 0o2000000),
            "O_WRONLY|O_CREAT|O_TRUNC|O_CLOEXEC"
        );
        assert_eq!(
            show(open_flags, 2 | 0o4000 | 0o100000 | 0o200000),
            "O_RDWR|O_NONBLOCK|O_LARGEFILE|O_DIRECTORY"
        );
        assert_eq!(show(open_flags, 3), "O_ACCMODE");
        assert_eq!(show(open_flags, 0o4010000), "O_RDONLY|O_SYNC");
        assert_eq!(show(open_flags, 0o10000), "O_RDONLY|O_DSYNC");
        assert_eq!(show(open_flags, 2 | O_TMPFILE), "O_RDWR|O_TMPFILE");
        // Unknown bits in octal, after the known ones.
        assert_eq!(
            show(open_flags, 0o2000000 | 0o10000000000),
            "O_RDONLY|O_CLOEXEC|010000000000"
        );
    }

    #[test]
    fn modes_in_octal() {
        assert_eq!(show(mode, 0o644), "0644");
        assert_eq!(show(mode, 0o755), "0755");
        assert_eq!(show(mode, 0), "000");
        assert_eq!(show(mode, 0o7), "007");
        assert_eq!(show(mode, 0o17), "017");
        assert_eq!(show(mode, 0o4755), "04755");
        assert_eq!(show(mode, 0o100644), "S_IFREG|0644");
        assert_eq!(show(mode, 0o020620), "S_IFCHR|0620");
        assert_eq!(show(mode, 0o170000), "0xf000 /* S_IF??? */|000");
    }

    #[test]
    fn protection_and_map_flags() {
        assert_eq!(show(prot, 0), "PROT_NONE");
        assert_eq!(show(prot, 3), "PROT_READ|PROT_WRITE");
        assert_eq!(show(prot, 5), "PROT_READ|PROT_EXEC");
        assert_eq!(show(prot, 0x1_0000_0001), "PROT_READ|0x100000000");
        assert_eq!(show(map_flags, 0x22), "MAP_PRIVATE|MAP_ANONYMOUS");
        assert_eq!(
            show(map_flags, 0x812),
            "MAP_PRIVATE|MAP_FIXED|MAP_DENYWRITE"
        );
        assert_eq!(show(map_flags, 0x1), "MAP_SHARED");
        assert_eq!(
            show(map_flags, 0x20022),
            "MAP_PRIVATE|MAP_ANONYMOUS|MAP_STACK"
        );
        assert_eq!(
            show(map_flags, 0x100022),
            "MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED_NOREPLACE"
        );
        assert_eq!(show(map_flags, 0x20), "MAP_ANONYMOUS");
        assert_eq!(show(map_flags, 0), "0");
        assert_eq!(show(map_flags, 0x8000_0002), "MAP_PRIVATE|0x80000000");
    }

    #[test]
    fn at_flags_names() {
        assert_eq!(show(at_flags, 0), "0");
        assert_eq!(show(at_flags, 0x100), "AT_SYMLINK_NOFOLLOW");
        assert_eq!(show(at_flags, 0x1100), "AT_SYMLINK_NOFOLLOW|AT_EMPTY_PATH");
        assert_eq!(show(at_flags, 0x1001), "AT_EMPTY_PATH|0x1");
    }

    #[test]
    fn signals() {
        assert_eq!(show(signal, 11), "SIGSEGV");
        assert_eq!(show(signal, 9), "SIGKILL");
        assert_eq!(show(signal, 31), "SIGSYS");
        assert_eq!(show(signal, 0), "0");
        assert_eq!(show(signal, 32), "SIGRTMIN");
        assert_eq!(show(signal, 33), "SIGRT_1");
        assert_eq!(show(signal, 64), "SIGRT_32");
        assert_eq!(show(signal, 65), "65");
        assert_eq!(show(signal, (-1i64) as u64), "-1");
    }

    #[test]
    fn enumerations_name_known_values_and_mark_unknown_ones() {
        assert_eq!(show(sig_how, 0), "SIG_BLOCK");
        assert_eq!(show(sig_how, 2), "SIG_SETMASK");
        assert_eq!(show(sig_how, 3), "0x3 /* SIG_??? */");
        assert_eq!(show(clock_id, 1), "CLOCK_MONOTONIC");
        assert_eq!(show(clock_id, 0), "CLOCK_REALTIME");
        assert_eq!(show(clock_id, 11), "CLOCK_TAI");
        assert_eq!(show(clock_id, 10), "0xa /* CLOCK_??? */");
        assert_eq!(show(whence, 0), "SEEK_SET");
        assert_eq!(show(whence, 2), "SEEK_END");
        assert_eq!(show(whence, 5), "0x5 /* SEEK_??? */");
        assert_eq!(show(fcntl_cmd, 1), "F_GETFD");
        assert_eq!(show(fcntl_cmd, 1030), "F_DUPFD_CLOEXEC");
        assert_eq!(show(fcntl_cmd, 99), "0x63 /* F_??? */");
        assert_eq!(show(arch_prctl_code, 0x1002), "ARCH_SET_FS");
        assert_eq!(show(arch_prctl_code, 0x3001), "0x3001 /* ARCH_??? */");
        assert_eq!(show(advice, 4), "MADV_DONTNEED");
        assert_eq!(show(advice, 0), "MADV_NORMAL");
        assert_eq!(show(advice, 7), "0x7 /* MADV_??? */");
        assert_eq!(show(fd_flags, 1), "FD_CLOEXEC");
        assert_eq!(show(fd_flags, 0), "0");
        assert!(fcntl::takes_no_arg(fcntl::F_GETFL));
        assert!(!fcntl::takes_no_arg(fcntl::F_SETFL));
    }

    #[test]
    fn ioctl_requests() {
        assert_eq!(show(ioctl_req, 0x5401), "TCGETS");
        assert_eq!(show(ioctl_req, 0x5413), "TIOCGWINSZ");
        assert_eq!(show(ioctl_req, 0x5421), "FIONBIO");
        assert_eq!(show(ioctl_req, 0x8004_5430), "TIOCGPTN");
        assert_eq!(show(ioctl_req, 0x1234), "0x1234");
        assert_eq!(
            show(ioctl_req, 0xc008_ab01),
            "_IOC(_IOC_READ|_IOC_WRITE, 0xab, 0x1, 0x8)"
        );
        assert_eq!(
            show(ioctl_req, 0x4004_ab02),
            "_IOC(_IOC_WRITE, 0xab, 0x2, 0x4)"
        );
    }
}

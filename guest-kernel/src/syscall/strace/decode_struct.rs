//! Structures shown as strace shows them, from their bytes: `struct timespec`
//! (`{tv_sec=1, tv_nsec=500000000}`), signal sets (`[INT QUIT]`, `~[KILL STOP]`), the
//! kernel's `struct sigaction` and `struct stat` (`{st_mode=S_IFREG|0644, st_size=29, ...}`).
//! Pure: the caller reads the bytes (or shows the pointer when it cannot).

use alloc::string::String;
use core::fmt::Write;

use super::decode::{flags, mode, pointer, Rest};

fn u64_at(bytes: &[u8], offset: usize) -> Option<u64> {
    Some(u64::from_le_bytes(
        bytes.get(offset..offset + 8)?.try_into().ok()?,
    ))
}

fn u32_at(bytes: &[u8], offset: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        bytes.get(offset..offset + 4)?.try_into().ok()?,
    ))
}

/// Size of `struct timespec`.
pub const TIMESPEC_SIZE: usize = 16;
/// Size of the kernel's `struct sigaction` on x86-64 (handler, flags, restorer, mask).
pub const SIGACTION_SIZE: usize = 32;
/// Size of `struct stat` on x86-64.
pub const STAT_SIZE: usize = 144;

/// `{tv_sec=1, tv_nsec=500000000}`; false if `bytes` is too short.
pub fn timespec(out: &mut String, bytes: &[u8]) -> bool {
    let (Some(sec), Some(nsec)) = (u64_at(bytes, 0), u64_at(bytes, 8)) else {
        return false;
    };
    let _ = write!(out, "{{tv_sec={}, tv_nsec={}}}", sec as i64, nsec as i64);
    true
}

/// A signal set of 64 signals as strace shows it: `[]`, `[INT CHLD]`, `[RTMIN RT_1]`, or
/// for more than half of them set, the complement: `~[KILL STOP]`.
pub fn sigset(out: &mut String, mask: u64) {
    let name = |out: &mut String, sig: u32| match sig {
        1..=31 => {
            let full = crate::signal::name(sig as u8);
            out.push_str(full.strip_prefix("SIG").unwrap_or(full));
        }
        32 => out.push_str("RTMIN"),
        _ => {
            let _ = write!(out, "RT_{}", sig - 32);
        }
    };
    let (shown, prefix) = if mask.count_ones() > 32 {
        (!mask, "~[")
    } else {
        (mask, "[")
    };
    out.push_str(prefix);
    let mut first = true;
    for sig in 1..=64u32 {
        if shown & (1 << (sig - 1)) != 0 {
            if !first {
                out.push(' ');
            }
            first = false;
            name(out, sig);
        }
    }
    out.push(']');
}

/// `SA_*` flags of a `struct sigaction`.
const SA_FLAGS: &[(u64, &str)] = &[
    (0x1, "SA_NOCLDSTOP"),
    (0x2, "SA_NOCLDWAIT"),
    (0x4, "SA_SIGINFO"),
    (0x0400_0000, "SA_RESTORER"),
    (0x0800_0000, "SA_ONSTACK"),
    (0x1000_0000, "SA_RESTART"),
    (0x4000_0000, "SA_NODEFER"),
    (0x8000_0000, "SA_RESETHAND"),
];

/// The kernel's `struct sigaction`: `{sa_handler=SIG_IGN, sa_mask=[], sa_flags=SA_RESTORER,
/// sa_restorer=0x4011d0}`; false if `bytes` is too short.
pub fn sigaction(out: &mut String, bytes: &[u8]) -> bool {
    let (Some(handler), Some(flag_bits), Some(restorer), Some(mask)) = (
        u64_at(bytes, 0),
        u64_at(bytes, 8),
        u64_at(bytes, 16),
        u64_at(bytes, 24),
    ) else {
        return false;
    };
    out.push_str("{sa_handler=");
    match handler {
        0 => out.push_str("SIG_DFL"),
        1 => out.push_str("SIG_IGN"),
        h => {
            let _ = write!(out, "{h:#x}");
        }
    }
    out.push_str(", sa_mask=");
    sigset(out, mask);
    out.push_str(", sa_flags=");
    flags(out, flag_bits & 0xffff_ffff, SA_FLAGS, "0", Rest::Hex);
    if flag_bits & 0x0400_0000 != 0 {
        out.push_str(", sa_restorer=");
        pointer(out, restorer);
    }
    out.push('}');
    true
}

/// `struct stat` as strace abbreviates it: `{st_mode=S_IFREG|0644, st_size=29, ...}`;
/// false if `bytes` is too short.
pub fn stat(out: &mut String, bytes: &[u8]) -> bool {
    // x86-64: st_dev 0, st_ino 8, st_nlink 16, st_mode 24 (u32), st_uid 28, st_gid 32,
    // st_rdev 40, st_size 48.
    let (Some(st_mode), Some(size), Some(rdev)) =
        (u32_at(bytes, 24), u64_at(bytes, 48), u64_at(bytes, 40))
    else {
        return false;
    };
    out.push_str("{st_mode=");
    mode(out, u64::from(st_mode));
    let file_type = st_mode & 0o170000;
    if file_type == 0o020000 || file_type == 0o060000 {
        // Character and block devices show their device number instead of a size.
        let (major, minor) = ((rdev >> 8) & 0xfff, (rdev & 0xff) | ((rdev >> 12) & !0xff));
        let _ = write!(out, ", st_rdev=makedev({major:#x}, {minor:#x}), ...}}");
    } else {
        let _ = write!(out, ", st_size={}, ...}}", size as i64);
    }
    true
}

/// `poll` event bits.
const POLL_EVENTS: &[(u64, &str)] = &[
    (0x1, "POLLIN"),
    (0x2, "POLLPRI"),
    (0x4, "POLLOUT"),
    (0x8, "POLLERR"),
    (0x10, "POLLHUP"),
    (0x20, "POLLNVAL"),
    (0x40, "POLLRDNORM"),
    (0x80, "POLLRDBAND"),
    (0x100, "POLLWRNORM"),
    (0x200, "POLLWRBAND"),
    (0x400, "POLLMSG"),
    (0x2000, "POLLRDHUP"),
];

/// Most `pollfd`s shown before `...`.
pub const MAX_POLLFDS: usize = 16;

/// An array of `struct pollfd` (8 bytes each) as `poll` reads it:
/// `[{fd=0, events=POLLIN}, {fd=3, events=POLLIN|POLLOUT}]`, `...` after [`MAX_POLLFDS`]
/// (`total` is how many the call was given); false if `bytes` is too short.
pub fn pollfds(out: &mut String, bytes: &[u8], total: u64) -> bool {
    let shown = (total as usize).min(MAX_POLLFDS);
    if bytes.len() < shown * 8 {
        return false;
    }
    out.push('[');
    for (i, entry) in bytes.chunks_exact(8).take(shown).enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        let fd = i32::from_le_bytes([entry[0], entry[1], entry[2], entry[3]]);
        let events = u16::from_le_bytes([entry[4], entry[5]]);
        let _ = write!(out, "{{fd={fd}, events=");
        flags(out, u64::from(events), POLL_EVENTS, "0", Rest::Hex);
        out.push('}');
    }
    if total as usize > shown {
        out.push_str(", ...");
    }
    out.push(']');
    true
}

/// The two descriptors `pipe` returns: `[3, 4]`; false if `bytes` is too short.
pub fn fd_pair(out: &mut String, bytes: &[u8]) -> bool {
    let (Some(a), Some(b)) = (u32_at(bytes, 0), u32_at(bytes, 4)) else {
        return false;
    };
    let _ = write!(out, "[{}, {}]", a as i32, b as i32);
    true
}

/// `pipe2` flags: `O_CLOEXEC|O_NONBLOCK`, `0` (no access mode, unlike `open`'s).
pub fn pipe_flags(out: &mut String, value: u64) {
    const PIPE: &[(u64, &str)] = &[
        (0o4000, "O_NONBLOCK"),
        (0o40000, "O_DIRECT"),
        (0o2000000, "O_CLOEXEC"),
    ];
    flags(out, value & 0xffff_ffff, PIPE, "0", Rest::Octal);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn show(f: impl FnOnce(&mut String) -> bool) -> String {
        let mut s = String::new();
        assert!(f(&mut s));
        s
    }

    #[test]
    fn timespecs_and_short_buffers() {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&1u64.to_le_bytes());
        b[8..].copy_from_slice(&500_000_000u64.to_le_bytes());
        assert_eq!(show(|s| timespec(s, &b)), "{tv_sec=1, tv_nsec=500000000}");
        assert!(!timespec(&mut String::new(), &b[..12]));
    }

    #[test]
    fn signal_sets_read_like_strace() {
        let s = |mask: u64| {
            let mut out = String::new();
            sigset(&mut out, mask);
            out
        };
        assert_eq!(s(0), "[]");
        assert_eq!(s((1 << 1) | (1 << 16)), "[INT CHLD]");
        assert_eq!(s((1 << 31) | (1 << 32)), "[RTMIN RT_1]");
        assert_eq!(s(!((1 << 8) | (1 << 18))), "~[KILL STOP]");
        assert_eq!(s(u64::MAX), "~[]");
    }

    #[test]
    fn sigactions_read_like_strace() {
        let mut b = [0u8; 32];
        b[..8].copy_from_slice(&0x4011d0u64.to_le_bytes());
        b[8..16].copy_from_slice(&0x1400_0000u64.to_le_bytes());
        b[16..24].copy_from_slice(&0x401000u64.to_le_bytes());
        b[24..].copy_from_slice(&(1u64 << 1).to_le_bytes());
        assert_eq!(
            show(|s| sigaction(s, &b)),
            "{sa_handler=0x4011d0, sa_mask=[INT], sa_flags=SA_RESTORER|SA_RESTART, sa_restorer=0x401000}"
        );
        let mut ign = [0u8; 32];
        ign[0] = 1;
        assert_eq!(
            show(|s| sigaction(s, &ign)),
            "{sa_handler=SIG_IGN, sa_mask=[], sa_flags=0}"
        );
    }

    #[test]
    fn pollfds_and_pipe_fds() {
        let mut b = [0u8; 16];
        b[4] = 1;
        b[8..12].copy_from_slice(&3i32.to_le_bytes());
        b[12] = 5;
        assert_eq!(
            show(|s| pollfds(s, &b, 2)),
            "[{fd=0, events=POLLIN}, {fd=3, events=POLLIN|POLLOUT}]"
        );
        assert_eq!(show(|s| pollfds(s, &b[..8], 1)), "[{fd=0, events=POLLIN}]");
        assert!(!pollfds(&mut String::new(), &b[..8], 2));
        let pair = [3, 0, 0, 0, 4, 0, 0, 0];
        assert_eq!(show(|s| fd_pair(s, &pair)), "[3, 4]");
        let flags = |v: u64| {
            let mut s = String::new();
            pipe_flags(&mut s, v);
            s
        };
        assert_eq!(flags(0), "0");
        assert_eq!(flags(0o2004000), "O_NONBLOCK|O_CLOEXEC");
    }

    #[test]
    fn stats_show_mode_and_size_or_device() {
        let mut b = [0u8; STAT_SIZE];
        b[24..28].copy_from_slice(&0o100644u32.to_le_bytes());
        b[48..56].copy_from_slice(&29u64.to_le_bytes());
        assert_eq!(
            show(|s| stat(s, &b)),
            "{st_mode=S_IFREG|0644, st_size=29, ...}"
        );
        b[24..28].copy_from_slice(&0o020666u32.to_le_bytes());
        b[40..48].copy_from_slice(&((1u64 << 8) | 3).to_le_bytes());
        assert_eq!(
            show(|s| stat(s, &b)),
            "{st_mode=S_IFCHR|0666, st_rdev=makedev(0x1, 0x3), ...}"
        );
    }
}

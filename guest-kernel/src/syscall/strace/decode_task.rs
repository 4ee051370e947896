//! `--strace` decoding of the task calls' arguments: clone flags and futex operations.

use alloc::string::String;
use core::fmt::Write;

use super::decode::{flags, signal, Rest};
use crate::syscall::futex::op;
use crate::syscall::thread::clone_flags::*;

/// `clone` flags as strace shows them: `CLONE_VM|CLONE_FS|...`, the exit signal last
/// (`|SIGCHLD`).
pub fn clone_flags(out: &mut String, value: u64) {
    const CLONE: &[(u64, &str)] = &[
        (CLONE_VM, "CLONE_VM"),
        (CLONE_FS, "CLONE_FS"),
        (CLONE_FILES, "CLONE_FILES"),
        (CLONE_SIGHAND, "CLONE_SIGHAND"),
        (CLONE_PIDFD, "CLONE_PIDFD"),
        (CLONE_PTRACE, "CLONE_PTRACE"),
        (CLONE_VFORK, "CLONE_VFORK"),
        (CLONE_PARENT, "CLONE_PARENT"),
        (CLONE_THREAD, "CLONE_THREAD"),
        (CLONE_NEWNS, "CLONE_NEWNS"),
        (CLONE_SYSVSEM, "CLONE_SYSVSEM"),
        (CLONE_SETTLS, "CLONE_SETTLS"),
        (CLONE_PARENT_SETTID, "CLONE_PARENT_SETTID"),
        (CLONE_CHILD_CLEARTID, "CLONE_CHILD_CLEARTID"),
        (CLONE_DETACHED, "CLONE_DETACHED"),
        (CLONE_UNTRACED, "CLONE_UNTRACED"),
        (CLONE_CHILD_SETTID, "CLONE_CHILD_SETTID"),
        (CLONE_NEWCGROUP, "CLONE_NEWCGROUP"),
        (CLONE_NEWUTS, "CLONE_NEWUTS"),
        (CLONE_NEWIPC, "CLONE_NEWIPC"),
        (CLONE_NEWUSER, "CLONE_NEWUSER"),
        (CLONE_NEWPID, "CLONE_NEWPID"),
        (CLONE_NEWNET, "CLONE_NEWNET"),
        (CLONE_IO, "CLONE_IO"),
    ];
    let sig = value & CSIGNAL;
    let rest = value & !CSIGNAL;
    if rest != 0 || sig == 0 {
        flags(out, rest, CLONE, "0", Rest::Hex);
    }
    if sig != 0 {
        if rest != 0 {
            out.push('|');
        }
        signal(out, sig);
    }
}

/// A futex operation: `FUTEX_WAIT_PRIVATE`, `FUTEX_WAIT_BITSET|FUTEX_CLOCK_REALTIME`.
pub fn futex_op(out: &mut String, value: u64) {
    let v = value as u32;
    let cmd = v & op::CMD_MASK;
    match op::NAMES.get(cmd as usize) {
        Some(name) => out.push_str(name),
        None => {
            let _ = write!(out, "{cmd:#x}");
        }
    }
    if v & op::PRIVATE_FLAG != 0 {
        out.push_str("_PRIVATE");
    }
    if v & op::CLOCK_REALTIME != 0 {
        out.push_str("|FUTEX_CLOCK_REALTIME");
    }
}

/// `wait4`/`waitid` options: `WNOHANG|WUNTRACED`, `0`.
pub fn wait_options(out: &mut String, value: u64) {
    const OPTIONS: &[(u64, &str)] = &[
        (1, "WNOHANG"),
        (2, "WSTOPPED"),
        (4, "WEXITED"),
        (8, "WCONTINUED"),
        (0x0100_0000, "WNOWAIT"),
        (0x2000_0000, "__WNOTHREAD"),
        (0x4000_0000, "__WALL"),
        (0x8000_0000, "__WCLONE"),
    ];
    // wait4 says WUNTRACED for what waitid calls WSTOPPED (the same bit).
    let mut s = String::new();
    flags(&mut s, value & 0xffff_ffff, OPTIONS, "0", Rest::Hex);
    out.push_str(&s.replace("WSTOPPED", "WUNTRACED"));
}

/// A wait status as strace shows it: `[{WIFEXITED(s) && WEXITSTATUS(s) == 0}]`.
pub fn wait_status(out: &mut String, status: i32) {
    let sig = (status & 0x7f) as u64;
    out.push_str("[{");
    if sig == 0 {
        let _ = write!(
            out,
            "WIFEXITED(s) && WEXITSTATUS(s) == {}",
            (status >> 8) & 0xff
        );
    } else if status == 0xffff {
        out.push_str("WIFCONTINUED(s)");
    } else if sig == 0x7f {
        out.push_str("WIFSTOPPED(s) && WSTOPSIG(s) == ");
        signal(out, ((status >> 8) & 0xff) as u64);
    } else {
        out.push_str("WIFSIGNALED(s) && WTERMSIG(s) == ");
        signal(out, sig);
        if status & 0x80 != 0 {
            out.push_str(" && WCOREDUMP(s)");
        }
    }
    out.push_str("}]");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_statuses_and_options_read_like_strace() {
        let show = |status: i32| {
            let mut s = String::new();
            wait_status(&mut s, status);
            s
        };
        assert_eq!(show(0), "[{WIFEXITED(s) && WEXITSTATUS(s) == 0}]");
        assert_eq!(show(3 << 8), "[{WIFEXITED(s) && WEXITSTATUS(s) == 3}]");
        assert_eq!(show(2), "[{WIFSIGNALED(s) && WTERMSIG(s) == SIGINT}]");
        assert_eq!(
            show(11 | 0x80),
            "[{WIFSIGNALED(s) && WTERMSIG(s) == SIGSEGV && WCOREDUMP(s)}]"
        );
        assert_eq!(
            show((20 << 8) | 0x7f),
            "[{WIFSTOPPED(s) && WSTOPSIG(s) == SIGTSTP}]"
        );
        assert_eq!(show(0xffff), "[{WIFCONTINUED(s)}]");
        let opts = |v: u64| {
            let mut s = String::new();
            wait_options(&mut s, v);
            s
        };
        assert_eq!(opts(0), "0");
        assert_eq!(opts(1 | 2), "WNOHANG|WUNTRACED");
        assert_eq!(opts(0x4000_0000 | 8), "WCONTINUED|__WALL");
    }

    #[test]
    fn musl_pthread_create_flags_read_like_strace() {
        let mut s = String::new();
        clone_flags(&mut s, 0x7d0f00);
        assert_eq!(
            s,
            "CLONE_VM|CLONE_FS|CLONE_FILES|CLONE_SIGHAND|CLONE_THREAD|CLONE_SYSVSEM|CLONE_SETTLS|CLONE_PARENT_SETTID|CLONE_CHILD_CLEARTID|CLONE_DETACHED"
        );
        let mut s = String::new();
        clone_flags(&mut s, 0x4111);
        assert_eq!(s, "CLONE_VM|CLONE_VFORK|SIGCHLD");
    }

    #[test]
    fn futex_ops_read_like_strace() {
        let mut s = String::new();
        futex_op(&mut s, 128);
        assert_eq!(s, "FUTEX_WAIT_PRIVATE");
        let mut s = String::new();
        futex_op(&mut s, 9 | 128 | 256);
        assert_eq!(s, "FUTEX_WAIT_BITSET_PRIVATE|FUTEX_CLOCK_REALTIME");
        let mut s = String::new();
        futex_op(&mut s, 99);
        assert_eq!(s, "0x63");
    }
}

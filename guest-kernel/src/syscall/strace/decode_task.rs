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

#[cfg(test)]
mod tests {
    use super::*;

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

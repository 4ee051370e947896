//! Self-tests of `pipe2` through the system-call handlers.

use super::fs::{Harness, BUF_VA, OBJ_VA};
use super::{check, TestResult};
use crate::syscall::Errno;

const READ: u64 = 0;
const WRITE: u64 = 1;
const CLOSE: u64 = 3;
const FSTAT: u64 = 5;
const LSEEK: u64 = 8;
const IOCTL: u64 = 16;
const FCNTL: u64 = 72;
const PIPE2: u64 = 293;
const O_NONBLOCK: u64 = 0o4000;
const O_CLOEXEC: u64 = 0o2000000;

/// Bytes through a pipe, its ends closing, non-blocking mode and errors.
pub fn pipe_round_trip() -> TestResult {
    let mut h = Harness::new("/bin/hello")?;
    h.ok(PIPE2, &[OBJ_VA, O_NONBLOCK | O_CLOEXEC])?;
    let (r, w) = (
        u64::from(h.u32_at(OBJ_VA)?),
        u64::from(h.u32_at(OBJ_VA + 4)?),
    );
    check((r, w) == (3, 4), "the two lowest descriptors")?;
    check(h.ok(FCNTL, &[r, 1])? == 1, "O_CLOEXEC")?;
    check(
        h.ok(FCNTL, &[w, 3])? == 0o4001,
        "write end: O_WRONLY|O_NONBLOCK",
    )?;
    h.fails(READ, &[r, BUF_VA, 10], Errno::EAGAIN)?;
    h.put(BUF_VA, b"through the pipe")?;
    check(h.ok(WRITE, &[w, BUF_VA, 16])? == 16, "write")?;
    h.ok(IOCTL, &[r, 0x541b, OBJ_VA + 16])?;
    check(h.u32_at(OBJ_VA + 16)? == 16, "FIONREAD")?;
    check(h.ok(READ, &[r, BUF_VA + 100, 7])? == 7, "read")?;
    check(h.get(BUF_VA + 100, 7)? == b"through", "contents")?;
    h.fails(WRITE, &[r, BUF_VA, 1], Errno::EBADF)?;
    h.fails(LSEEK, &[r, 0, 0], Errno::ESPIPE)?;
    h.ok(FSTAT, &[r, OBJ_VA + 32])?;
    check(
        h.u32_at(OBJ_VA + 32 + 24)? & 0o170000 == 0o010000,
        "S_IFIFO",
    )?;
    h.ok(CLOSE, &[w])?;
    check(
        h.ok(READ, &[r, BUF_VA, 100])? == 9,
        "rest after the writer closed",
    )?;
    check(h.ok(READ, &[r, BUF_VA, 100])? == 0, "then end of file")?;
    h.ok(PIPE2, &[OBJ_VA, 0])?;
    let (r, w) = (
        u64::from(h.u32_at(OBJ_VA)?),
        u64::from(h.u32_at(OBJ_VA + 4)?),
    );
    h.ok(CLOSE, &[r])?;
    h.fails(WRITE, &[w, BUF_VA, 1], Errno::EPIPE)?;
    h.fails(PIPE2, &[OBJ_VA, 0o40000], Errno::EINVAL)?;
    h.fails(PIPE2, &[0x10, 0], Errno::EFAULT)?;
    // The failed pipe2 left no descriptors behind: the next one is r again.
    h.ok(PIPE2, &[OBJ_VA, 0])?;
    check(u64::from(h.u32_at(OBJ_VA)?) == r, "no leaked descriptors")?;
    Ok(())
}

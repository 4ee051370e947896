//! Self-tests of `pipe2`, and of the standard streams that are FIFOs, through the
//! system-call handlers.

use super::fs::{Harness, BUF_VA, OBJ_VA};
use super::{check, TestResult};
use alloc::format;

use crate::errno::Errno;

const READ: u64 = 0;
const WRITE: u64 = 1;
const CLOSE: u64 = 3;
const OPEN: u64 = 2;
const FSTAT: u64 = 5;
const POLL: u64 = 7;
const LSEEK: u64 = 8;
const IOCTL: u64 = 16;
const FCNTL: u64 = 72;
const PIPE2: u64 = 293;
const O_RDWR: u64 = 2;
const O_NONBLOCK: u64 = 0o4000;
const TCGETS: u64 = 0x5401;
const TIOCGWINSZ: u64 = 0x5413;
const FIONREAD: u64 = 0x541b;
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

/// Standard streams whose host streams are not terminals: FIFOs open one way, no terminal
/// `ioctl`s, writes to the console; `/dev/tty` stays the terminal. A VMM with a terminal
/// on stderr only (`prog < file > out`).
pub fn host_stdio_streams() -> TestResult {
    let mut h = Harness::new("/bin/hello")?;
    h.set_stdio(hypercall_abi::host_stdio::STDERR_TERMINAL);
    for fd in [0, 1] {
        h.fails(IOCTL, &[fd, TCGETS, OBJ_VA], Errno::ENOTTY)?;
        h.fails(IOCTL, &[fd, TIOCGWINSZ, OBJ_VA], Errno::ENOTTY)?;
        h.fails(LSEEK, &[fd, 0, 1], Errno::ESPIPE)?;
        h.ok(FSTAT, &[fd, OBJ_VA + 32])?;
        check(
            h.u32_at(OBJ_VA + 32 + 24)? & 0o170000 == 0o010000,
            "S_IFIFO",
        )?;
    }
    check(h.ok(FCNTL, &[0, 3])? == 0, "stdin: O_RDONLY")?;
    // `< /dev/null` on the host: a character device in the guest.
    h.set_stdio(hypercall_abi::host_stdio::STDIN_CHAR_DEVICE);
    h.ok(FSTAT, &[0, OBJ_VA + 32])?;
    check(
        h.u32_at(OBJ_VA + 32 + 24)? & 0o170000 == 0o020000,
        "a /dev/null stdin is S_IFCHR",
    )?;
    h.set_stdio(hypercall_abi::host_stdio::STDERR_TERMINAL);
    check(h.ok(FCNTL, &[1, 3])? == 1, "stdout: O_WRONLY")?;
    h.fails(WRITE, &[0, BUF_VA, 1], Errno::EBADF)?;
    h.fails(READ, &[1, BUF_VA, 1], Errno::EBADF)?;
    check(h.ok(WRITE, &[1, BUF_VA, 0])? == 0, "an empty write")?;
    h.ok(IOCTL, &[1, FIONREAD, OBJ_VA])?;
    check(h.u32_at(OBJ_VA)? == 0, "FIONREAD on output")?;
    // stdout is always writable.
    h.put(OBJ_VA, &[1, 0, 0, 0, 4, 0, 0, 0])?;
    check(h.ok(POLL, &[OBJ_VA, 1, 0])? == 1, "stdout writable")?;
    check(h.get(OBJ_VA + 6, 2)? == [4, 0], "POLLOUT")?;
    // The terminal on stderr, and /dev/tty whatever the standard streams are.
    h.ok(IOCTL, &[2, TCGETS, OBJ_VA])?;
    h.path(OBJ_VA + 256, "/dev/tty")?;
    let tty = h.ok(OPEN, &[OBJ_VA + 256, O_RDWR])?;
    h.ok(IOCTL, &[tty, TIOCGWINSZ, OBJ_VA])?;
    check(h.get(OBJ_VA, 4)? == [24, 0, 80, 0], "/dev/tty is 80x24")?;
    Ok(())
}

/// Makes the frame allocator refuse every allocation while it lives.
struct Exhausted;

impl Exhausted {
    fn start() -> Self {
        crate::mm::frame::FRAMES.lock().set_refusing(true);
        Exhausted
    }
}

impl Drop for Exhausted {
    fn drop(&mut self) {
        crate::mm::frame::FRAMES.lock().set_refusing(false);
    }
}

/// Regression: running out of memory while a pipe's bytes are copied out to the reader
/// (under the pipe's lock) marks the reader to be killed (137) and unwinds with the pipe
/// unlocked: another task then reads and writes the same pipe.
pub fn pipe_oom_in_copy_releases_the_pipe() -> TestResult {
    const MMAP: u64 = 9;
    let mut a = Harness::new("/bin/hello")?;
    a.ok(PIPE2, &[OBJ_VA, 0])?;
    let (r, w) = (
        u64::from(a.u32_at(OBJ_VA)?),
        u64::from(a.u32_at(OBJ_VA + 4)?),
    );
    a.put(BUF_VA, b"sixteen bytes ok")?;
    check(a.ok(WRITE, &[w, BUF_VA, 16])? == 16, "write")?;
    // An untouched anonymous buffer: the copy must fault its first page in.
    let untouched = a.ok(MMAP, &[0, 1 << 21, 3, 0x22, u64::MAX, 0])?;
    let exhausted = Exhausted::start();
    let got = a.call(READ, &[r, untouched, 16]);
    drop(exhausted);
    check(got.is_err(), &format!("read with no memory: {got:?}"))?;
    check(
        a.fatal() == Some(128 + crate::signal::sig::SIGKILL),
        &format!("the reader is marked to die with 137: {:?}", a.fatal()),
    )?;
    let (rf, wf) = {
        let files = a.task().files.lock();
        (files.get(r), files.get(w))
    };
    let (rf, wf) = (
        rf.map_err(|e| format!("{e:?}"))?,
        wf.map_err(|e| format!("{e:?}"))?,
    );
    let mut b = Harness::new("/bin/hello")?;
    {
        let mut files = b.task_mut().files.lock();
        files.install(10, rf, false).map_err(|e| format!("{e:?}"))?;
        files.install(11, wf, false).map_err(|e| format!("{e:?}"))?;
    }
    check(
        b.ok(READ, &[10, BUF_VA + 64, 100])? == 16,
        "the other task reads the pipe",
    )?;
    check(b.get(BUF_VA + 64, 16)? == b"sixteen bytes ok", "contents")?;
    check(b.ok(WRITE, &[11, BUF_VA, 4])? == 4, "and writes it")?;
    check(b.fatal().is_none(), "the other task is not marked")?;
    Ok(())
}

//! Pipe capacity: `fcntl` `F_GETPIPE_SZ` / `F_SETPIPE_SZ` on pipes and FIFOs (rounding to
//! a power-of-two number of pages, `EBUSY` below the data queued, `EBADF` on other files)
//! and writers held to the capacity set. One `PASS`/`FAIL` line per check.

use std::os::fd::AsRawFd;
use std::time::Duration;

use astra_std_apps::checks::{ensure, CheckResult, Checks};
use astra_std_apps::sys::syscall3;

const F_SETPIPE_SZ: usize = 1031;
const F_GETPIPE_SZ: usize = 1032;
const O_NONBLOCK: usize = 0o4000;
const O_RDWR: usize = 2;
const EAGAIN: isize = -11;
const EBADF: isize = -9;
const EBUSY: isize = -16;

fn fcntl(fd: usize, cmd: usize, arg: usize) -> isize {
    // SAFETY: the pipe-size commands touch no user memory.
    unsafe { syscall3(72, fd, cmd, arg) }
}

fn pipe(flags: usize) -> Result<(usize, usize), String> {
    let mut fds = [0i32; 2];
    // SAFETY: the kernel writes two ints into a live array.
    let r = unsafe { syscall3(293, fds.as_mut_ptr() as usize, flags, 0) };
    ensure(r == 0, || format!("pipe2: {r}"))?;
    Ok((fds[0] as usize, fds[1] as usize))
}

fn write(fd: usize, data: &[u8]) -> isize {
    // SAFETY: the kernel reads from a live slice.
    unsafe { syscall3(1, fd, data.as_ptr() as usize, data.len()) }
}

fn read(fd: usize, buf: &mut [u8]) -> isize {
    // SAFETY: the kernel writes into a live slice.
    unsafe { syscall3(0, fd, buf.as_mut_ptr() as usize, buf.len()) }
}

fn close(fd: usize) {
    // SAFETY: closes a descriptor this program owns.
    unsafe { syscall3(3, fd, 0, 0) };
}

/// Default size, rounding, a full pipe at the new size, EBUSY, growing again.
fn sizes_on_a_pipe() -> CheckResult {
    let (r, w) = pipe(O_NONBLOCK)?;
    let got = [
        fcntl(w, F_GETPIPE_SZ, 0),
        fcntl(r, F_SETPIPE_SZ, 5000),
        fcntl(w, F_GETPIPE_SZ, 0),
        write(w, &[1u8; 10_000]),
        write(w, b"x"),
        fcntl(w, F_SETPIPE_SZ, 4096),
        fcntl(w, F_SETPIPE_SZ, 1 << 20),
        write(w, &[2u8; 10_000]),
    ];
    let mut buf = vec![0u8; 1 << 16];
    let drained = read(r, &mut buf);
    let tail = [fcntl(w, F_SETPIPE_SZ, 0), fcntl(w, F_SETPIPE_SZ, 12_288)];
    close(r);
    close(w);
    let want = [65536, 8192, 8192, 8192, EAGAIN, EBUSY, 1 << 20, 10_000];
    ensure(got == want, || format!("got {got:?}, want {want:?}"))?;
    ensure(drained == 18_192, || format!("read {drained}"))?;
    ensure(tail == [4096, 16_384], || format!("then {tail:?}"))?;
    Ok(String::new())
}

/// A blocking writer of 6000 bytes into a one-page pipe waits with 4096 queued until the
/// reader drains it.
fn writer_blocks_at_capacity() -> CheckResult {
    let (r, w) = pipe(0)?;
    ensure(fcntl(w, F_SETPIPE_SZ, 1) == 4096, || "set".into())?;
    let writer = std::thread::spawn(move || write(w, &[3u8; 6000]));
    std::thread::sleep(Duration::from_millis(100));
    let mut queued = 0i32;
    // SAFETY: FIONREAD writes an int into a live variable.
    unsafe { syscall3(16, r, 0x541b, &mut queued as *mut i32 as usize) };
    let finished_early = writer.is_finished();
    let mut buf = [0u8; 8192];
    let mut total = 0;
    while total < 6000 {
        let n = read(r, &mut buf);
        ensure(n > 0, || format!("read: {n}"))?;
        total += n;
    }
    let wrote = writer.join().map_err(|_| "writer panicked".to_string())?;
    close(r);
    close(w);
    ensure(queued == 4096 && !finished_early, || {
        format!("queued {queued}, writer done early: {finished_early}")
    })?;
    ensure(wrote == 6000 && total == 6000, || {
        format!("wrote {wrote}, read {total}")
    })?;
    Ok(String::new())
}

/// A FIFO has the same sizes; a regular file gives EBADF.
fn fifo_and_other_files() -> CheckResult {
    let path = format!("/tmp/pipesz-fifo-{}\0", std::process::id());
    // SAFETY: mknodat(AT_FDCWD, path, S_IFIFO | 0600, 0) reads a NUL-terminated string.
    let r = unsafe { syscall3(259, -100isize as usize, path.as_ptr() as usize, 0o10600) };
    ensure(r == 0, || format!("mknodat: {r}"))?;
    // SAFETY: openat reads a NUL-terminated string.
    let fd = unsafe {
        syscall3(
            257,
            -100isize as usize,
            path.as_ptr() as usize,
            O_RDWR | O_NONBLOCK,
        )
    };
    let _ = std::fs::remove_file(path.trim_end_matches('\0'));
    ensure(fd >= 0, || format!("open fifo: {fd}"))?;
    let fd = fd as usize;
    let got = [
        fcntl(fd, F_GETPIPE_SZ, 0),
        fcntl(fd, F_SETPIPE_SZ, 4096),
        write(fd, &[4u8; 5000]),
    ];
    close(fd);
    ensure(got == [65536, 4096, 4096], || format!("fifo: {got:?}"))?;
    let exe = std::fs::File::open("/proc/self/exe").map_err(|e| e.to_string())?;
    let fd = exe.as_raw_fd() as usize;
    let other = [fcntl(fd, F_GETPIPE_SZ, 0), fcntl(fd, F_SETPIPE_SZ, 4096)];
    ensure(other == [EBADF, EBADF], || {
        format!("regular file: {other:?}")
    })?;
    Ok(String::new())
}

fn main() -> std::process::ExitCode {
    let mut checks = Checks::stdout("pipesz");
    checks.run("sizes_on_a_pipe", sizes_on_a_pipe);
    checks.run("writer_blocks_at_capacity", writer_blocks_at_capacity);
    checks.run("fifo_and_other_files", fifo_and_other_files);
    checks.finish()
}

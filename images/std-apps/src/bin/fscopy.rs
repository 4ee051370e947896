//! In-kernel copies and unnamed files: `sendfile` (from a file's position or an offset,
//! to a file or a pipe), `copy_file_range` (offsets, overlap and argument errors) and
//! `memfd_create` (read/write/seek/size, `MFD_CLOEXEC`, bad flags and names), each checked
//! against Linux. One `PASS`/`FAIL` line per check.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::{AsRawFd, FromRawFd};
use std::process::ExitCode;

use astra_std_apps::checks::{ensure, CheckResult, Checks};
use astra_std_apps::sys::{syscall3, syscall4};

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8).collect()
}

fn fresh(path: &str, data: &[u8]) -> Result<File, String> {
    let mut f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .map_err(|e| format!("{path}: {e}"))?;
    f.write_all(data).map_err(|e| e.to_string())?;
    f.seek(SeekFrom::Start(0)).map_err(|e| e.to_string())?;
    Ok(f)
}

fn sendfile(out: i32, inp: i32, off: Option<&mut i64>, count: usize) -> isize {
    let off = off.map_or(0, |o| o as *mut i64 as usize);
    // SAFETY: two descriptors, an optional loff_t the call updates, a count.
    unsafe { syscall4(40, out as usize, inp as usize, off, count) }
}

fn copy_range(
    fin: i32,
    oin: Option<&mut i64>,
    fout: i32,
    oout: Option<&mut i64>,
    len: usize,
    flags: usize,
) -> isize {
    let oin = oin.map_or(0, |o| o as *mut i64 as usize);
    let oout = oout.map_or(0, |o| o as *mut i64 as usize);
    let args = [fin as usize, oin, fout as usize, oout, len, flags];
    let ret: isize;
    // SAFETY: copy_file_range with descriptors and optional loff_t pointers we own.
    unsafe {
        std::arch::asm!(
            "syscall",
            inlateout("rax") 326isize => ret,
            in("rdi") args[0], in("rsi") args[1], in("rdx") args[2],
            in("r10") args[3], in("r8") args[4], in("r9") args[5],
            lateout("rcx") _, lateout("r11") _,
            options(nostack),
        );
    }
    ret
}

fn sendfile_between_files_and_into_a_pipe() -> CheckResult {
    let data = pattern(200_000);
    let mut src = fresh("/tmp/fscopy-src", &data)?;
    let dst = fresh("/tmp/fscopy-dst", b"")?;
    src.seek(SeekFrom::Start(1000)).map_err(|e| e.to_string())?;
    let n = sendfile(dst.as_raw_fd(), src.as_raw_fd(), None, 150_000);
    ensure(n == 150_000, || format!("sendfile: {n}"))?;
    let pos = src.stream_position().map_err(|e| e.to_string())?;
    ensure(pos == 151_000, || format!("position after: {pos}"))?;
    let mut off = 190_000i64;
    let n = sendfile(dst.as_raw_fd(), src.as_raw_fd(), Some(&mut off), 50_000);
    ensure(n == 10_000 && off == 200_000, || {
        format!("with offset: {n}, offset {off}")
    })?;
    let pos = src.stream_position().map_err(|e| e.to_string())?;
    ensure(pos == 151_000, || format!("position moved: {pos}"))?;
    let got = std::fs::read("/tmp/fscopy-dst").map_err(|e| e.to_string())?;
    let mut want = data[1000..151_000].to_vec();
    want.extend_from_slice(&data[190_000..]);
    ensure(got == want, || {
        format!("copied {} bytes, differ", got.len())
    })?;
    let mut fds = [0i32; 2];
    // SAFETY: room for two descriptors.
    let r = unsafe { syscall3(22, fds.as_mut_ptr() as usize, 0, 0) };
    ensure(r == 0, || format!("pipe: {r}"))?;
    // SAFETY: both descriptors are ours from here on.
    let (mut rd, wr) = unsafe { (File::from_raw_fd(fds[0]), File::from_raw_fd(fds[1])) };
    let mut off = 0i64;
    let n = sendfile(wr.as_raw_fd(), src.as_raw_fd(), Some(&mut off), 5);
    ensure(n == 5, || format!("into a pipe: {n}"))?;
    let n = sendfile(dst.as_raw_fd(), rd.as_raw_fd(), None, 5);
    ensure(n == -22, || format!("from a pipe: {n}"))?;
    drop(wr);
    let mut five = Vec::new();
    rd.read_to_end(&mut five).map_err(|e| e.to_string())?;
    ensure(five == data[..5], || format!("pipe got {five:?}"))?;
    let ro = File::open("/tmp/fscopy-src").map_err(|e| e.to_string())?;
    let n = sendfile(ro.as_raw_fd(), src.as_raw_fd(), None, 5);
    ensure(n == -9, || format!("to a read-only file: {n}"))?;
    Ok(String::new())
}

fn copy_file_range_offsets_and_errors() -> CheckResult {
    let data = pattern(100_000);
    let src = fresh("/tmp/fscopy-a", &data)?;
    let dst = fresh("/tmp/fscopy-b", &[0u8; 10])?;
    let (mut oi, mut oo) = (50_000i64, 5i64);
    let n = copy_range(
        src.as_raw_fd(),
        Some(&mut oi),
        dst.as_raw_fd(),
        Some(&mut oo),
        20_000,
        0,
    );
    ensure(n == 20_000 && oi == 70_000 && oo == 20_005, || {
        format!("{n} {oi} {oo}")
    })?;
    let got = std::fs::read("/tmp/fscopy-b").map_err(|e| e.to_string())?;
    ensure(
        got.len() == 20_005 && got[5..] == data[50_000..70_000],
        || "contents".into(),
    )?;
    // From the positions, which advance.
    let n = copy_range(src.as_raw_fd(), None, dst.as_raw_fd(), None, 100, 0);
    ensure(n == 100, || format!("from positions: {n}"))?;
    let mut d = &dst;
    let pos = d.stream_position().map_err(|e| e.to_string())?;
    ensure(pos == 100, || format!("output position {pos}"))?;
    let n = copy_range(src.as_raw_fd(), None, dst.as_raw_fd(), None, 10, 1);
    ensure(n == -22, || format!("flags 1: {n}"))?;
    let (mut a, mut b) = (0i64, 10i64);
    let n = copy_range(
        src.as_raw_fd(),
        Some(&mut a),
        src.as_raw_fd(),
        Some(&mut b),
        100,
        0,
    );
    ensure(n == -22, || format!("overlap: {n}"))?;
    let ro = File::open("/tmp/fscopy-b").map_err(|e| e.to_string())?;
    let n = copy_range(src.as_raw_fd(), None, ro.as_raw_fd(), None, 10, 0);
    ensure(n == -9, || format!("read-only output: {n}"))?;
    let mut end = 100_000i64;
    let n = copy_range(
        src.as_raw_fd(),
        Some(&mut end),
        dst.as_raw_fd(),
        None,
        10,
        0,
    );
    ensure(n == 0, || format!("at end of file: {n}"))?;
    Ok(String::new())
}

fn memfd_is_an_unnamed_file() -> CheckResult {
    let name = b"astra-memfd\0";
    // SAFETY: a NUL-terminated name and flags.
    let fd = unsafe { syscall3(319, name.as_ptr() as usize, 1, 0) };
    ensure(fd >= 0, || format!("memfd_create: {fd}"))?;
    // SAFETY: F_GETFD on our descriptor.
    let cloexec = unsafe { syscall3(72, fd as usize, 1, 0) };
    ensure(cloexec == 1, || format!("FD_CLOEXEC: {cloexec}"))?;
    // SAFETY: the descriptor is ours.
    let mut f = unsafe { File::from_raw_fd(fd as i32) };
    let data = pattern(70_000);
    f.write_all(&data).map_err(|e| e.to_string())?;
    let meta = f.metadata().map_err(|e| e.to_string())?;
    ensure(meta.len() == 70_000 && meta.is_file(), || {
        format!("{meta:?}")
    })?;
    f.seek(SeekFrom::Start(0)).map_err(|e| e.to_string())?;
    let mut back = Vec::new();
    f.read_to_end(&mut back).map_err(|e| e.to_string())?;
    ensure(back == data, || "read back".into())?;
    f.set_len(10).map_err(|e| e.to_string())?;
    ensure(f.metadata().map(|m| m.len()).ok() == Some(10), || {
        "truncate".into()
    })?;
    // SAFETY: bad flags.
    let r = unsafe { syscall3(319, name.as_ptr() as usize, 0x100, 0) };
    ensure(r == -22, || format!("bad flags: {r}"))?;
    let long = [b'x'; 251];
    let mut long = long.to_vec();
    long.push(0);
    // SAFETY: a NUL-terminated name longer than 249 bytes.
    let r = unsafe { syscall3(319, long.as_ptr() as usize, 0, 0) };
    ensure(r == -22, || format!("long name: {r}"))?;
    // SAFETY: an unmapped name.
    let r = unsafe { syscall3(319, 8, 0, 0) };
    ensure(r == -14, || format!("bad pointer: {r}"))?;
    Ok(String::new())
}

const O_RDONLY: usize = 0;
const O_WRONLY: usize = 1;
const O_RDWR: usize = 2;
const O_CREAT: usize = 0o100;
const O_EXCL: usize = 0o200;
const O_TMPFILE: usize = 0o20200000;
const AT_FDCWD: usize = -100isize as usize;
const AT_SYMLINK_FOLLOW: usize = 0x400;
const AT_EMPTY_PATH: usize = 0x1000;

fn open_raw(path: &str, flags: usize) -> isize {
    let c = std::ffi::CString::new(path).expect("no NUL");
    // SAFETY: open with a NUL-terminated path and a mode.
    unsafe { syscall3(2, c.as_ptr() as usize, flags, 0o600) }
}

fn syscall6(nr: usize, a: [usize; 6]) -> isize {
    // SAFETY: every caller passes arguments the kernel checks (descriptors we own,
    // addresses of our own buffers and mappings).
    unsafe { astra_std_apps::sys::syscall6(nr, a) }
}

fn linkat(fd: usize, old: &str, new: &str, flags: usize) -> isize {
    let old = std::ffi::CString::new(old).expect("no NUL");
    let new = std::ffi::CString::new(new).expect("no NUL");
    let args = [
        fd,
        old.as_ptr() as usize,
        AT_FDCWD,
        new.as_ptr() as usize,
        flags,
        0,
    ];
    syscall6(265, args)
}

fn nlink(f: &File) -> Result<u64, String> {
    use std::os::unix::fs::MetadataExt;
    Ok(f.metadata().map_err(|e| e.to_string())?.nlink())
}

fn tmpfile_is_unnamed_until_linked() -> CheckResult {
    let fd = open_raw("/tmp", O_TMPFILE | O_RDWR);
    ensure(fd >= 0, || format!("O_TMPFILE in /tmp: {fd}"))?;
    // SAFETY: the descriptor is ours.
    let mut f = unsafe { File::from_raw_fd(fd as i32) };
    f.write_all(b"unnamed").map_err(|e| e.to_string())?;
    ensure(nlink(&f)? == 0, || "a tmpfile has links".into())?;
    let r = linkat(fd as usize, "", "/tmp/fscopy-named", AT_EMPTY_PATH);
    ensure(r == 0, || format!("linkat AT_EMPTY_PATH: {r}"))?;
    ensure(nlink(&f)? == 1, || "not linked".into())?;
    let got = std::fs::read("/tmp/fscopy-named").map_err(|e| e.to_string())?;
    ensure(got == b"unnamed", || format!("named file holds {got:?}"))?;
    // Through /proc/self/fd, in the writable root.
    let fd2 = open_raw("/", O_TMPFILE | O_WRONLY);
    ensure(fd2 >= 0, || format!("O_TMPFILE in /: {fd2}"))?;
    // SAFETY: the descriptor is ours.
    let mut g = unsafe { File::from_raw_fd(fd2 as i32) };
    g.write_all(b"root").map_err(|e| e.to_string())?;
    let proc_path = format!("/proc/self/fd/{fd2}");
    let r = linkat(AT_FDCWD, &proc_path, "/fscopy-named", AT_SYMLINK_FOLLOW);
    ensure(r == 0, || format!("linkat through {proc_path}: {r}"))?;
    let got = std::fs::read("/fscopy-named").map_err(|e| e.to_string())?;
    ensure(got == b"root", || format!("named root file holds {got:?}"))?;
    let _ = std::fs::remove_file("/fscopy-named");
    // O_EXCL: never linked.
    let fd3 = open_raw("/tmp", O_TMPFILE | O_RDWR | O_EXCL);
    ensure(fd3 >= 0, || format!("O_TMPFILE|O_EXCL: {fd3}"))?;
    // SAFETY: the descriptor is ours.
    let _h = unsafe { File::from_raw_fd(fd3 as i32) };
    let r = linkat(fd3 as usize, "", "/tmp/fscopy-excl", AT_EMPTY_PATH);
    ensure(r == -2, || {
        format!("linking an O_EXCL tmpfile: {r}, not -ENOENT")
    })?;
    // Bad combinations.
    for (path, flags, want) in [
        ("/tmp", O_TMPFILE | O_RDONLY, -22),
        ("/tmp", O_TMPFILE | O_RDWR | O_CREAT, -22),
        ("/tmp", 0o20000000 | O_RDWR, -22),
        ("/etc/motd", O_TMPFILE | O_RDWR, -20),
        ("/tmp/none", O_TMPFILE | O_RDWR, -2),
    ] {
        let r = open_raw(path, flags);
        ensure(r == want, || format!("{path} {flags:#o}: {r}, not {want}"))?;
    }
    Ok(String::new())
}

fn pipe2() -> Result<(i32, i32), String> {
    let mut fds = [0i32; 2];
    // SAFETY: pipe2 into our two-int array.
    let r = unsafe { syscall3(293, fds.as_mut_ptr() as usize, 0, 0) };
    ensure(r == 0, || format!("pipe2: {r}"))?;
    Ok((fds[0], fds[1]))
}

fn raw_write(fd: i32, data: &[u8]) -> isize {
    // SAFETY: write from our buffer.
    unsafe { syscall3(1, fd as usize, data.as_ptr() as usize, data.len()) }
}

fn raw_read(fd: i32, n: usize) -> Result<Vec<u8>, String> {
    let mut buf = vec![0u8; n];
    // SAFETY: read into our buffer.
    let r = unsafe { syscall3(0, fd as usize, buf.as_mut_ptr() as usize, n) };
    ensure(r >= 0, || format!("read: {r}"))?;
    buf.truncate(r as usize);
    Ok(buf)
}

fn splice(
    fd_in: i32,
    off_in: Option<&mut i64>,
    fd_out: i32,
    off_out: Option<&mut i64>,
    len: usize,
    flags: usize,
) -> isize {
    let oi = off_in.map_or(0, |o| o as *mut i64 as usize);
    let oo = off_out.map_or(0, |o| o as *mut i64 as usize);
    syscall6(275, [fd_in as usize, oi, fd_out as usize, oo, len, flags])
}

fn tee(fd_in: i32, fd_out: i32, len: usize, flags: usize) -> isize {
    syscall6(276, [fd_in as usize, fd_out as usize, len, flags, 0, 0])
}

fn close(fd: i32) {
    // SAFETY: closes a descriptor of ours.
    unsafe { syscall3(3, fd as usize, 0, 0) };
}

fn splice_tee_and_vmsplice() -> CheckResult {
    const NONBLOCK: usize = 2;
    let (r1, w1) = pipe2()?;
    let (r2, w2) = pipe2()?;
    let f = fresh("/tmp/fscopy-splice", b"0123456789")?;
    let fd = f.as_raw_fd();
    // Pipe to file, at an offset (updated; the position untouched).
    ensure(raw_write(w1, b"hello world") == 11, || "write".into())?;
    let mut off = 3i64;
    let n = splice(r1, None, fd, Some(&mut off), 5, 0);
    ensure(n == 5 && off == 8, || {
        format!("pipe to file: {n}, offset {off}")
    })?;
    let got = std::fs::read("/tmp/fscopy-splice").map_err(|e| e.to_string())?;
    ensure(got == b"012hello89", || format!("file holds {got:?}"))?;
    // Pipe to pipe: what is there, up to len.
    let n = splice(r1, None, w2, None, 100, 0);
    ensure(n == 6, || format!("pipe to pipe: {n}"))?;
    ensure(raw_read(r2, 100)? == b" world", || {
        "pipe to pipe moved wrong bytes".into()
    })?;
    // File to pipe, from the position (advanced), then from an offset.
    let n = splice(fd, None, w1, None, 4, 0);
    ensure(n == 4, || format!("file to pipe: {n}"))?;
    let mut g = &f;
    let pos = g.stream_position().map_err(|e| e.to_string())?;
    ensure(pos == 4, || format!("position after file to pipe: {pos}"))?;
    let mut off = 8i64;
    let n = splice(fd, Some(&mut off), w1, None, 100, 0);
    ensure(n == 2 && off == 10, || {
        format!("file to pipe at 8: {n}, {off}")
    })?;
    ensure(raw_read(r1, 100)? == b"012h89", || {
        "file to pipe bytes".into()
    })?;
    // tee copies without consuming.
    ensure(raw_write(w1, b"tee") == 3, || "write".into())?;
    let n = tee(r1, w2, 100, 0);
    ensure(n == 3, || format!("tee: {n}"))?;
    ensure(
        raw_read(r2, 100)? == b"tee" && raw_read(r1, 100)? == b"tee",
        || "tee lost or moved data".into(),
    )?;
    // Empty pipes with SPLICE_F_NONBLOCK.
    let n = splice(r1, None, fd, None, 10, NONBLOCK);
    ensure(n == -11, || {
        format!("nonblocking splice of an empty pipe: {n}")
    })?;
    let n = tee(r1, w2, 10, NONBLOCK);
    ensure(n == -11, || {
        format!("nonblocking tee of an empty pipe: {n}")
    })?;
    // Argument errors.
    let mut zero = 0i64;
    let mut neg = -1i64;
    for (what, n, want) in [
        ("len 0", splice(-1, None, -1, None, 0, 0), 0),
        ("bad flags", splice(r1, None, fd, None, 1, 0x10), -22),
        ("bad fd", splice(99, None, fd, None, 1, 0), -9),
        (
            "pipe offset",
            splice(r1, Some(&mut zero), fd, None, 1, 0),
            -29,
        ),
        ("file to file", splice(fd, None, fd, None, 1, 0), -22),
        ("same pipe", splice(r1, None, w1, None, 1, 0), -22),
        ("from a write end", splice(w1, None, fd, None, 1, 0), -9),
        (
            "negative offset",
            splice(fd, Some(&mut neg), w1, None, 1, 0),
            -22,
        ),
        ("tee to a file", tee(r1, fd, 1, 0), -22),
        ("tee same pipe", tee(r1, w1, 1, 0), -22),
        ("tee bad flags", tee(r1, w2, 1, 0x10), -22),
        ("tee from a write end", tee(w1, w2, 1, 0), -9),
    ] {
        ensure(n == want, || format!("{what}: {n}, not {want}"))?;
    }
    // O_APPEND output.
    let app = OpenOptions::new()
        .append(true)
        .open("/tmp/fscopy-splice")
        .map_err(|e| e.to_string())?;
    ensure(raw_write(w1, b"x") == 1, || "write".into())?;
    let n = splice(r1, None, app.as_raw_fd(), None, 1, 0);
    ensure(n == -22, || format!("to an O_APPEND file: {n}"))?;
    // vmsplice: user memory into the pipe; a regular file is EBADF.
    let data = b"vm";
    let iov = [data.as_ptr() as usize, data.len()];
    let n = syscall6(278, [w2 as usize, iov.as_ptr() as usize, 1, 0, 0, 0]);
    ensure(n == 2 && raw_read(r2, 10)? == b"vm", || {
        format!("vmsplice: {n}")
    })?;
    let n = syscall6(278, [fd as usize, iov.as_ptr() as usize, 1, 0, 0, 0]);
    ensure(n == -9, || format!("vmsplice on a file: {n}"))?;
    for p in [r1, w1, r2, w2] {
        close(p);
    }
    Ok(String::new())
}

/// A time as (seconds, nanoseconds).
type Time = (i64, i64);

/// Access and modification times of `path`.
fn file_times(path: &str) -> Result<(Time, Time), String> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).map_err(|e| e.to_string())?;
    Ok(((m.atime(), m.atime_nsec()), (m.mtime(), m.mtime_nsec())))
}

fn utimes_futimesat_and_utime() -> CheckResult {
    const SYS_UTIME: usize = 132;
    const SYS_UTIMES: usize = 235;
    const SYS_FUTIMESAT: usize = 261;
    const AT_FDCWD: usize = -100isize as usize;
    const EINVAL: isize = 22;
    let path = "/tmp/fscopy-times";
    std::fs::write(path, b"t").map_err(|e| e.to_string())?;
    let c_path = std::ffi::CString::new(path).expect("no NUL");
    let p = c_path.as_ptr() as usize;
    // Two timevals: access 1000.5 s, modification 2000.25 s.
    let tv: [i64; 4] = [1000, 500_000, 2000, 250_000];
    // SAFETY: raw calls with a live path and timeval array.
    let r = unsafe { syscall3(SYS_UTIMES, p, tv.as_ptr() as usize, 0) };
    ensure(r == 0, || format!("utimes: {r}"))?;
    let times = file_times(path)?;
    ensure(times == ((1000, 500_000_000), (2000, 250_000_000)), || {
        format!("after utimes: {times:?}")
    })?;
    let bad: [i64; 4] = [1, 1_000_000, 2, 0];
    // SAFETY: as above.
    let r = unsafe { syscall4(SYS_FUTIMESAT, AT_FDCWD, p, bad.as_ptr() as usize, 0) };
    ensure(r == -EINVAL, || format!("futimesat with 1e6 us: {r}"))?;
    // utime: whole seconds from a struct utimbuf.
    let buf: [i64; 2] = [3000, 4000];
    // SAFETY: as above.
    let r = unsafe { syscall3(SYS_UTIME, p, buf.as_ptr() as usize, 0) };
    ensure(r == 0, || format!("utime: {r}"))?;
    let times = file_times(path)?;
    ensure(times == ((3000, 0), (4000, 0)), || {
        format!("after utime: {times:?}")
    })?;
    // A NULL times: now.
    // SAFETY: as above.
    let r = unsafe { syscall4(SYS_FUTIMESAT, AT_FDCWD, p, 0, 0) };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|e| e.to_string())?
        .as_secs() as i64;
    let times = file_times(path)?;
    ensure(r == 0 && (times.1 .0 - now).abs() <= 5, || {
        format!("futimesat(NULL): {r}, {times:?} vs now {now}")
    })?;
    Ok("utimes, utime, futimesat(NULL) set the times; 1e6 us is EINVAL".into())
}

fn fallocate_grows_and_checks() -> CheckResult {
    const SYS_FALLOCATE: usize = 285;
    const EINVAL: isize = 22;
    const EBADF: isize = 9;
    const ESPIPE: isize = 29;
    let fallocate = |fd: i32, offset: usize, len: usize| {
        // SAFETY: fallocate with integer arguments.
        unsafe { syscall4(SYS_FALLOCATE, fd as usize, 0, offset, len) }
    };
    let path = "/tmp/fscopy-falloc";
    std::fs::write(path, b"data").map_err(|e| e.to_string())?;
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| e.to_string())?;
    let fd = file.as_raw_fd();
    // Inside the size: nothing changes; past it, the file grows, the new bytes are zeros.
    let r = fallocate(fd, 0, 4);
    ensure(r == 0, || format!("fallocate inside: {r}"))?;
    let r = fallocate(fd, 2, 10_000);
    ensure(r == 0, || format!("fallocate past the end: {r}"))?;
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    ensure(
        bytes.len() == 10_002 && &bytes[..4] == b"data" && bytes[4..].iter().all(|&b| b == 0),
        || format!("{} bytes after fallocate", bytes.len()),
    )?;
    let r = fallocate(fd, 0, 0);
    ensure(r == -EINVAL, || format!("zero length: {r}"))?;
    let read_only = File::open(path).map_err(|e| e.to_string())?;
    let r = fallocate(read_only.as_raw_fd(), 0, 10);
    ensure(r == -EBADF, || format!("read-only descriptor: {r}"))?;
    let mut fds = [0i32; 2];
    // SAFETY: pipe fills the two ints.
    unsafe { syscall3(22, fds.as_mut_ptr() as usize, 0, 0) };
    let r = fallocate(fds[1], 0, 10);
    for fd in fds {
        // SAFETY: closing our own descriptors.
        unsafe { syscall3(3, fd as usize, 0, 0) };
    }
    ensure(r == -ESPIPE, || format!("pipe: {r}"))?;
    Ok("grows with zeros, keeps data; EINVAL, EBADF, ESPIPE".into())
}

fn main() -> ExitCode {
    let mut checks = Checks::stdout("fscopy");
    checks.run(
        "sendfile_between_files_and_into_a_pipe",
        sendfile_between_files_and_into_a_pipe,
    );
    checks.run(
        "copy_file_range_offsets_and_errors",
        copy_file_range_offsets_and_errors,
    );
    checks.run("memfd_is_an_unnamed_file", memfd_is_an_unnamed_file);
    checks.run(
        "tmpfile_is_unnamed_until_linked",
        tmpfile_is_unnamed_until_linked,
    );
    checks.run("splice_tee_and_vmsplice", splice_tee_and_vmsplice);
    checks.run("utimes_futimesat_and_utime", utimes_futimesat_and_utime);
    checks.run("fallocate_grows_and_checks", fallocate_grows_and_checks);
    for f in [
        "/tmp/fscopy-falloc",
        "/tmp/fscopy-times",
        "/tmp/fscopy-src",
        "/tmp/fscopy-dst",
        "/tmp/fscopy-a",
        "/tmp/fscopy-b",
        "/tmp/fscopy-named",
        "/tmp/fscopy-splice",
    ] {
        let _ = std::fs::remove_file(f);
    }
    checks.finish()
}

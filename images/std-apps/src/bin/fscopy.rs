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
    let ret: isize;
    // SAFETY: a raw system call whose pointer arguments point at our own live buffers.
    unsafe {
        std::arch::asm!(
            "syscall",
            inlateout("rax") nr as isize => ret,
            in("rdi") a[0], in("rsi") a[1], in("rdx") a[2],
            in("r10") a[3], in("r8") a[4], in("r9") a[5],
            lateout("rcx") _, lateout("r11") _,
            options(nostack),
        );
    }
    ret
}

fn linkat(fd: usize, old: &str, new: &str, flags: usize) -> isize {
    let old = std::ffi::CString::new(old).expect("no NUL");
    let new = std::ffi::CString::new(new).expect("no NUL");
    let args = [fd, old.as_ptr() as usize, AT_FDCWD, new.as_ptr() as usize, flags, 0];
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
    ensure(r == -2, || format!("linking an O_EXCL tmpfile: {r}, not -ENOENT"))?;
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
    for f in [
        "/tmp/fscopy-src",
        "/tmp/fscopy-dst",
        "/tmp/fscopy-a",
        "/tmp/fscopy-b",
        "/tmp/fscopy-named",
    ] {
        let _ = std::fs::remove_file(f);
    }
    checks.finish()
}

//! Shared file mappings: `MAP_SHARED` pages of a tmpfs file, a file of the writable root
//! and a memfd are the file's own, so a store through one mapping is seen by `read`, by
//! another mapping (independent, or inherited over `fork`) and by a later one; `write` shows
//! through existing mappings; shrinking the file makes access past the end SIGBUS; read-only
//! files refuse writable shared mappings (`mmap` and `mprotect`: EACCES); `msync` checks its
//! flags. Each check is compared with Linux. One `PASS`/`FAIL` line per check.

use std::fs::{File, OpenOptions};
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::fs::FileExt;
use std::process::ExitCode;

use astra_std_apps::checks::{ensure, CheckResult, Checks};
use astra_std_apps::sys::{syscall3, syscall4};

mod volume;

const PAGE: usize = 4096;
const PROT_READ: usize = 1;
const PROT_WRITE: usize = 2;
const MAP_SHARED: usize = 1;
const MAP_PRIVATE: usize = 2;
const EACCES: isize = 13;
const EINVAL: isize = 22;
const SIGBUS: i32 = 7;

fn syscall6(nr: usize, a: [usize; 6]) -> isize {
    // SAFETY: every caller passes arguments the kernel checks (descriptors we own,
    // addresses of our own buffers and mappings).
    unsafe { astra_std_apps::sys::syscall6(nr, a) }
}

/// A mapping we own: unmapped when dropped.
struct Map {
    addr: usize,
    len: usize,
}

impl Map {
    fn new(fd: i32, len: usize, prot: usize, flags: usize) -> Result<Map, isize> {
        let r = syscall6(9, [0, len, prot, flags, fd as usize, 0]);
        if r < 0 {
            return Err(-r);
        }
        Ok(Map {
            addr: r as usize,
            len,
        })
    }

    fn get(&self, at: usize) -> u8 {
        assert!(at < self.len);
        // SAFETY: inside our mapping; the file covers it (callers keep to its size).
        unsafe { std::ptr::read_volatile((self.addr + at) as *const u8) }
    }

    fn set(&self, at: usize, v: u8) {
        assert!(at < self.len);
        // SAFETY: inside our writable mapping, within the file's size.
        unsafe { std::ptr::write_volatile((self.addr + at) as *mut u8, v) }
    }

    fn put(&self, at: usize, bytes: &[u8]) {
        for (i, &b) in bytes.iter().enumerate() {
            self.set(at + i, b);
        }
    }

    fn bytes(&self, at: usize, n: usize) -> Vec<u8> {
        (at..at + n).map(|i| self.get(i)).collect()
    }
}

impl Drop for Map {
    fn drop(&mut self) {
        // SAFETY: unmaps our own mapping, which nothing uses any more.
        unsafe { syscall3(11, self.addr, self.len, 0) };
    }
}

fn file(path: &str, size: usize) -> Result<File, String> {
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .map_err(|e| format!("{path}: {e}"))?;
    f.set_len(size as u64).map_err(|e| e.to_string())?;
    Ok(f)
}

fn read_back(f: &File, at: u64, n: usize) -> Result<Vec<u8>, String> {
    let mut buf = vec![0u8; n];
    f.read_exact_at(&mut buf, at).map_err(|e| e.to_string())?;
    Ok(buf)
}

fn map(f: &File, len: usize, prot: usize, flags: usize) -> Result<Map, String> {
    Map::new(f.as_raw_fd(), len, prot, flags).map_err(|e| format!("mmap: errno {e}"))
}

/// Runs `child` in a forked child (which exits with its return value) and returns the
/// child's raw wait status.
fn in_child(child: impl FnOnce() -> i32) -> Result<i32, String> {
    in_child_while(child, || Ok(()))
}

/// Like [`in_child`], running `meanwhile` in the parent before waiting.
fn in_child_while(
    child: impl FnOnce() -> i32,
    meanwhile: impl FnOnce() -> Result<(), String>,
) -> Result<i32, String> {
    // SAFETY: fork; the child only touches memory and makes raw system calls, then exits
    // without running any destructor.
    let pid = unsafe { syscall3(57, 0, 0, 0) };
    if pid < 0 {
        return Err(format!("fork: errno {}", -pid));
    }
    if pid == 0 {
        let code = child();
        // SAFETY: _exit of the child.
        unsafe { syscall3(60, code as usize, 0, 0) };
        unreachable!();
    }
    meanwhile()?;
    let mut status = 0i32;
    // SAFETY: wait4 for our child into a local.
    let r = unsafe { syscall4(61, pid as usize, &mut status as *mut i32 as usize, 0, 0) };
    if r != pid {
        return Err(format!("wait4: {r}"));
    }
    Ok(status)
}

fn stores_and_writes_are_the_files(path: &str) -> CheckResult {
    let f = file(path, 2 * PAGE)?;
    let m = map(&f, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED)?;
    m.put(100, b"mapped");
    m.put(PAGE + 7, b"page two");
    ensure(read_back(&f, 100, 6)? == b"mapped", || {
        "read misses a store".into()
    })?;
    ensure(read_back(&f, PAGE as u64 + 7, 8)? == b"page two", || {
        "read misses a store on page 2".into()
    })?;
    f.write_all_at(b"written", 3000)
        .map_err(|e| e.to_string())?;
    ensure(m.bytes(3000, 7) == b"written", || {
        "write not seen through the mapping".into()
    })?;
    // An independent mapping, a read-only one through another descriptor, and a later one.
    let other = map(&f, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED)?;
    ensure(other.bytes(100, 6) == b"mapped", || {
        "second mapping differs".into()
    })?;
    other.set(101, b'A');
    ensure(m.get(101) == b'A', || {
        "stores not shared between mappings".into()
    })?;
    let ro = File::open(path).map_err(|e| e.to_string())?;
    let rom = map(&ro, 2 * PAGE, PROT_READ, MAP_SHARED)?;
    ensure(rom.bytes(100, 6) == b"mApped", || {
        "read-only mapping differs".into()
    })?;
    m.set(102, b'P');
    ensure(rom.get(102) == b'P', || {
        "read-only mapping misses a store".into()
    })?;
    // A private mapping made now sees the file as it is.
    let private = map(&f, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE)?;
    private.set(100, b'p');
    ensure(m.get(100) == b'm', || {
        "a private store reached the file".into()
    })?;
    drop((m, other, rom, private));
    let later = map(&f, 2 * PAGE, PROT_READ, MAP_SHARED)?;
    ensure(later.bytes(100, 6) == b"mAPped", || {
        "a later mapping lost data".into()
    })?;
    let size = f.metadata().map_err(|e| e.to_string())?.len();
    ensure(size == 2 * PAGE as u64, || {
        format!("size changed to {size}")
    })?;
    Ok(String::new())
}

fn fork_shares_the_pages() -> CheckResult {
    let f = file("/tmp/shmap-fork", 3 * PAGE)?;
    let m = map(&f, 3 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED)?;
    m.set(0, b'p');
    let status = in_child(|| {
        // One page the parent touched, one touched first here.
        m.set(1, b'c');
        m.set(2 * PAGE, b'C');
        i32::from(m.get(0) != b'p')
    })?;
    ensure(status == 0, || format!("child status {status:#x}"))?;
    ensure(m.get(1) == b'c' && m.get(2 * PAGE) == b'C', || {
        "the child's stores are not in the parent's mapping".into()
    })?;
    ensure(read_back(&f, 2 * PAGE as u64, 1)? == b"C", || {
        "the child's store is not in the file".into()
    })?;
    Ok(String::new())
}

fn shrinking_gives_sigbus() -> CheckResult {
    let f = file("/tmp/shmap-trunc", 2 * PAGE)?;
    let m = map(&f, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED)?;
    m.set(10, b'a');
    m.set(PAGE + 10, b'b');
    f.set_len(PAGE as u64).map_err(|e| e.to_string())?;
    let status = in_child(|| i32::from(m.get(PAGE + 10)))?;
    let signal = status & 0x7f;
    ensure(signal == SIGBUS, || {
        format!("reading past the end: wait status {status:#x}, not SIGBUS")
    })?;
    let status = in_child(|| {
        m.set(PAGE, 1);
        0
    })?;
    ensure(status & 0x7f == SIGBUS, || {
        format!("writing past the end: wait status {status:#x}")
    })?;
    ensure(m.get(10) == b'a', || "the first page lost its data".into())?;
    // Another process maps the page when the file shrinks: it loses it too.
    f.set_len(2 * PAGE as u64).map_err(|e| e.to_string())?;
    m.set(PAGE + 10, b'c');
    let mut fds = [0i32; 2];
    // SAFETY: pipe2 into our array.
    let r = unsafe { syscall3(293, fds.as_mut_ptr() as usize, 0, 0) };
    ensure(r == 0, || format!("pipe2: {r}"))?;
    let status = in_child_while(
        || {
            let seen = m.get(PAGE + 10);
            let mut byte = 0u8;
            // SAFETY: read one byte into a local: the parent's go-ahead.
            unsafe { syscall3(0, fds[0] as usize, &mut byte as *mut u8 as usize, 1) };
            i32::from(seen) + i32::from(m.get(PAGE + 10))
        },
        || {
            f.set_len(PAGE as u64).map_err(|e| e.to_string())?;
            // SAFETY: write one byte from a local.
            let r = unsafe { syscall3(1, fds[1] as usize, b"g".as_ptr() as usize, 1) };
            ensure(r == 1, || format!("write: {r}")).map(|_| ())
        },
    )?;
    ensure(status & 0x7f == SIGBUS, || {
        format!("another process after the shrink: wait status {status:#x}")
    })?;
    for fd in fds {
        // SAFETY: closes our pipe's descriptors.
        unsafe { syscall3(3, fd as usize, 0, 0) };
    }
    // Grown again: the cut page reads as zeros.
    f.set_len(2 * PAGE as u64).map_err(|e| e.to_string())?;
    ensure(m.get(PAGE + 10) == 0, || {
        "the cut page kept its data".into()
    })?;
    m.set(PAGE + 11, b'z');
    ensure(read_back(&f, PAGE as u64 + 11, 1)? == b"z", || {
        "a store after regrowing is lost".into()
    })?;
    Ok(String::new())
}

fn read_only_files_refuse_writable_shared_maps() -> CheckResult {
    let _ = file("/tmp/shmap-ro", PAGE)?;
    let ro = File::open("/tmp/shmap-ro").map_err(|e| e.to_string())?;
    let e = Map::new(ro.as_raw_fd(), PAGE, PROT_READ | PROT_WRITE, MAP_SHARED).err();
    ensure(e == Some(EACCES), || format!("mmap gave {e:?}, not EACCES"))?;
    let m = map(&ro, PAGE, PROT_READ, MAP_SHARED)?;
    // SAFETY: mprotect of our own mapping.
    let r = unsafe { syscall3(10, m.addr, PAGE, PROT_READ | PROT_WRITE) };
    ensure(r == -EACCES, || format!("mprotect gave {r}, not -EACCES"))?;
    let p = map(&ro, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE)?;
    p.set(0, 1);
    Ok(String::new())
}

fn msync_checks_flags() -> CheckResult {
    let f = file("/tmp/shmap-msync", PAGE)?;
    let m = map(&f, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED)?;
    m.put(0, b"sync");
    let msync = |addr: usize, flags: usize| {
        // SAFETY: msync of our own mapping (or an unaligned address, refused).
        unsafe { syscall3(26, addr, PAGE, flags) }
    };
    for (flags, want) in [(4, 0), (1, 0), (2, 0), (6, 0), (5, -EINVAL), (8, -EINVAL)] {
        let r = msync(m.addr, flags);
        ensure(r == want, || {
            format!("msync flags {flags}: {r}, not {want}")
        })?;
    }
    let r = msync(m.addr + 1, 4);
    ensure(r == -EINVAL, || format!("unaligned msync: {r}"))?;
    ensure(read_back(&f, 0, 4)? == b"sync", || "data lost".into())?;
    Ok(String::new())
}

fn memfd_maps_shared() -> CheckResult {
    // SAFETY: memfd_create with a NUL-terminated name and no flags.
    let fd = unsafe { syscall3(319, c"shmap".as_ptr() as usize, 0, 0) };
    ensure(fd >= 0, || format!("memfd_create: {fd}"))?;
    // SAFETY: the descriptor is ours.
    let f = unsafe { File::from_raw_fd(fd as i32) };
    f.set_len(3 * PAGE as u64).map_err(|e| e.to_string())?;
    let m = map(&f, 3 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED)?;
    m.put(2 * PAGE + 5, b"memfd");
    ensure(read_back(&f, 2 * PAGE as u64 + 5, 5)? == b"memfd", || {
        "read misses a store".into()
    })?;
    let status = in_child(|| {
        m.put(3, b"kid");
        0
    })?;
    ensure(status == 0 && m.bytes(3, 3) == b"kid", || {
        "the child's store is lost".into()
    })?;
    Ok(String::new())
}

/// Free blocks of the file system holding `path` (statfs's `f_bfree`).
fn free_blocks(path: &std::ffi::CStr) -> Result<u64, String> {
    let mut buf = [0u64; 15];
    // SAFETY: statfs into our 120-byte buffer.
    let r = unsafe { syscall3(137, path.as_ptr() as usize, buf.as_mut_ptr() as usize, 0) };
    ensure(r == 0, || format!("statfs: {r}"))?;
    Ok(buf[3])
}

fn madvise(m: &Map, at: usize, len: usize, advice: usize) -> isize {
    // SAFETY: madvise of (a part of) our own mapping.
    unsafe { syscall3(28, m.addr + at, len, advice) }
}

/// MADV_REMOVE and fallocate(PUNCH_HOLE | KEEP_SIZE) on a tmpfs file punch a hole: the
/// pages are freed (the tmpfs has them back), every mapping and `read` see zeros there,
/// the size stays; private mappings and read-only files refuse it.
fn remove_punches_holes() -> CheckResult {
    const MADV_REMOVE: usize = 9;
    let f = file("/tmp/shmap-hole", 4 * PAGE)?;
    let m = map(&f, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED)?;
    let other = map(&f, 4 * PAGE, PROT_READ, MAP_SHARED)?;
    for page in 0..4 {
        m.put(page * PAGE, &[1; PAGE]);
    }
    ensure(other.get(2 * PAGE + 7) == 1, || "not shared".into())?;
    let before = free_blocks(c"/tmp")?;
    let r = madvise(&m, PAGE, 2 * PAGE, MADV_REMOVE);
    ensure(r == 0, || format!("MADV_REMOVE: {r}"))?;
    let after = free_blocks(c"/tmp")?;
    ensure(after >= before + 2, || {
        format!("free blocks {before} -> {after}: the pages were not freed")
    })?;
    ensure(
        m.get(PAGE) == 0 && m.get(3 * PAGE - 1) == 0 && other.get(2 * PAGE + 7) == 0,
        || "a mapping still sees the removed bytes".into(),
    )?;
    ensure(m.get(PAGE - 1) == 1 && other.get(3 * PAGE) == 1, || {
        "bytes outside the range were lost".into()
    })?;
    ensure(read_back(&f, PAGE as u64, PAGE)? == vec![0; PAGE], || {
        "read sees the removed bytes".into()
    })?;
    let size = f.metadata().map_err(|e| e.to_string())?.len();
    ensure(size == 4 * PAGE as u64, || format!("size now {size}"))?;
    m.set(PAGE + 1, 5);
    ensure(read_back(&f, PAGE as u64 + 1, 1)? == [5], || {
        "a store into the hole is lost".into()
    })?;
    // fallocate's hole: a part of page 3 (zeroed in place) and page 0 (freed).
    let punch = |mode: usize, off: usize, len: usize| {
        // SAFETY: fallocate on our own descriptor.
        unsafe { syscall4(285, f.as_raw_fd() as usize, mode, off, len) }
    };
    ensure(punch(2, 0, PAGE) == -95, || {
        "PUNCH_HOLE without KEEP_SIZE is not EOPNOTSUPP".into()
    })?;
    let r = punch(3, 3 * PAGE + 10, 20);
    ensure(r == 0, || format!("fallocate(PUNCH_HOLE|KEEP_SIZE): {r}"))?;
    ensure(
        m.bytes(3 * PAGE + 9, 22) == [&[1][..], &[0; 20], &[1]].concat(),
        || format!("after a partial punch: {:?}", m.bytes(3 * PAGE + 9, 22)),
    )?;
    // (Measured before the mappings touch the page again: that faults a new one in.)
    let before = free_blocks(c"/tmp")?;
    let r = punch(3, 0, PAGE);
    let after = free_blocks(c"/tmp")?;
    ensure(r == 0 && after > before, || {
        format!("punching page 0: {r}, free blocks {before} -> {after}")
    })?;
    ensure(m.get(5) == 0 && other.get(PAGE - 1) == 0, || {
        "a punched page is not zeros".into()
    })?;
    // Refusals: private anonymous memory (EINVAL), a private file mapping and a shared
    // mapping of a file open read-only (EACCES).
    let anon = Map::new(-1, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | 0x20)
        .map_err(|e| format!("anonymous mmap: {e}"))?;
    let r = madvise(&anon, 0, PAGE, MADV_REMOVE);
    ensure(r == -EINVAL, || format!("private anonymous: {r}"))?;
    let private = map(&f, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE)?;
    let r = madvise(&private, 0, PAGE, MADV_REMOVE);
    ensure(r == -EACCES, || format!("private file mapping: {r}"))?;
    let ro = File::open("/tmp/shmap-hole").map_err(|e| e.to_string())?;
    let ro_map = map(&ro, PAGE, PROT_READ, MAP_SHARED)?;
    let r = madvise(&ro_map, 0, PAGE, MADV_REMOVE);
    ensure(r == -EACCES, || format!("read-only file: {r}"))?;
    Ok(String::new())
}

/// MADV_REMOVE on a memfd and on shared anonymous memory: zeros afterwards, in a forked
/// child's view too.
fn remove_on_memfd_and_shared_memory() -> CheckResult {
    // SAFETY: memfd_create with a NUL-terminated name and no flags.
    let fd = unsafe { syscall3(319, c"shmap-hole".as_ptr() as usize, 0, 0) };
    ensure(fd >= 0, || format!("memfd_create: {fd}"))?;
    // SAFETY: the descriptor is ours.
    let f = unsafe { File::from_raw_fd(fd as i32) };
    f.set_len(2 * PAGE as u64).map_err(|e| e.to_string())?;
    let memfd = map(&f, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED)?;
    let anon = Map::new(-1, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | 0x20)
        .map_err(|e| format!("shared anonymous mmap: {e}"))?;
    for m in [&memfd, &anon] {
        m.put(0, &[9; 2 * PAGE]);
        let status = in_child(|| {
            let r = madvise(m, PAGE, PAGE, 9);
            i32::from(r != 0 || m.get(PAGE) != 0 || m.get(0) != 9)
        })?;
        ensure(status == 0, || format!("in the child: status {status:#x}"))?;
        ensure(
            m.get(PAGE) == 0 && m.get(2 * PAGE - 1) == 0 && m.get(PAGE - 1) == 9,
            || "the parent still sees removed bytes".into(),
        )?;
    }
    ensure(read_back(&f, PAGE as u64, 4)? == [0; 4], || {
        "memfd read".into()
    })?;
    Ok(String::new())
}

fn dev_zero_maps_shared_memory() -> CheckResult {
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/zero")
        .map_err(|e| e.to_string())?;
    let m = map(&f, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED)?;
    ensure(m.get(5) == 0, || "not zero".into())?;
    m.set(5, 1);
    let status = in_child(|| {
        m.set(PAGE + 1, 2);
        i32::from(m.get(5) != 1)
    })?;
    ensure(status == 0 && m.get(PAGE + 1) == 2, || {
        format!("not shared with a child (status {status:#x})")
    })?;
    let again = map(&f, PAGE, PROT_READ, MAP_SHARED)?;
    ensure(again.get(5) == 0, || {
        "a new mapping is not new memory".into()
    })?;
    let ro = File::open("/dev/zero").map_err(|e| e.to_string())?;
    let e = Map::new(ro.as_raw_fd(), PAGE, PROT_READ | PROT_WRITE, MAP_SHARED).err();
    ensure(e == Some(EACCES), || {
        format!("read-only /dev/zero gave {e:?}")
    })?;
    Ok(String::new())
}

fn root_files_map_shared() -> CheckResult {
    // A new file in the root's layer, and a file of the image (copied up).
    stores_and_writes_are_the_files("/shmap-root")?;
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/etc/astra/lines.txt")
        .map_err(|e| e.to_string())?;
    let m = map(&f, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED)?;
    ensure(m.bytes(0, 3) == b"one", || "image file bytes differ".into())?;
    m.put(0, b"ONE");
    drop(m);
    let text = std::fs::read_to_string("/etc/astra/lines.txt").map_err(|e| e.to_string())?;
    ensure(text == "ONE\ntwo\nthree\nfour\nfive\n", || {
        format!("now {text:?}")
    })?;
    // As it was, so that the program can run again.
    let m = map(&f, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED)?;
    m.put(0, b"one");
    Ok(String::new())
}

/// `shmap --fill`: stores through a shared mapping of a sparse 1 GiB file in `/tmp` fill
/// the tmpfs; the store that finds it full gets SIGBUS (in a child), and once the file is
/// gone mappings work again.
fn fill() -> ExitCode {
    let run = || -> Result<(), String> {
        fill_until_sigbus("/tmp/shmap-fill")?;
        stores_and_writes_are_the_files("/tmp/shmap-a")?;
        std::fs::remove_file("/tmp/shmap-a").map_err(|e| e.to_string())
    };
    match run() {
        Ok(()) => {
            println!("shmap fill: a full tmpfs stopped the stores with SIGBUS, then recovered");
            ExitCode::SUCCESS
        }
        Err(why) => {
            println!("shmap fill: {why}");
            ExitCode::FAILURE
        }
    }
}

/// Stores into every page of a shared mapping of a new sparse 1 GiB file at `path`, in a
/// child, which must end with SIGBUS (whatever backs the file filled up); then removes
/// the file.
fn fill_until_sigbus(path: &str) -> Result<(), String> {
    const LEN: usize = 1 << 30;
    let f = file(path, LEN)?;
    let m = map(&f, LEN, PROT_READ | PROT_WRITE, MAP_SHARED)?;
    let status = in_child(|| {
        for page in (0..LEN).step_by(PAGE) {
            m.set(page, 1);
        }
        0
    })?;
    ensure(status & 0x7f == SIGBUS, || {
        format!("filling: wait status {status:#x}, not SIGBUS")
    })?;
    drop(m);
    drop(f);
    std::fs::remove_file(path).map_err(|e| e.to_string())
}

/// `shmap --bench`: milliseconds to touch each page of a 64 MiB file through a shared
/// mapping: reading a file `write` filled, then storing into a sparse one (each page a
/// fault into a hole). A measurement, not a check.
fn bench() -> ExitCode {
    const LEN: usize = 64 << 20;
    let run = || -> Result<(f64, f64), String> {
        let f = file("/tmp/shmap-bench", 0)?;
        let chunk = vec![7u8; 1 << 20];
        for i in 0..LEN / chunk.len() {
            f.write_all_at(&chunk, (i * chunk.len()) as u64)
                .map_err(|e| e.to_string())?;
        }
        let m = map(&f, LEN, PROT_READ, MAP_SHARED)?;
        let t = std::time::Instant::now();
        let sum: usize = (0..LEN).step_by(PAGE).map(|i| usize::from(m.get(i))).sum();
        let read_ms = t.elapsed().as_secs_f64() * 1e3;
        ensure(sum == 7 * LEN / PAGE, || format!("sum {sum}"))?;
        drop(m);
        let g = file("/tmp/shmap-bench", LEN)?;
        let m = map(&g, LEN, PROT_READ | PROT_WRITE, MAP_SHARED)?;
        let t = std::time::Instant::now();
        for i in (0..LEN).step_by(PAGE) {
            m.set(i, 1);
        }
        let write_ms = t.elapsed().as_secs_f64() * 1e3;
        drop(m);
        let _ = std::fs::remove_file("/tmp/shmap-bench");
        Ok((read_ms, write_ms))
    };
    match run() {
        Ok((r, w)) => {
            println!("shmap bench: 64 MiB shared mapping, a byte per page: read a written file {r:.1} ms, store into a sparse file {w:.1} ms");
            ExitCode::SUCCESS
        }
        Err(why) => {
            println!("shmap bench: {why}");
            ExitCode::FAILURE
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    match args.as_slice() {
        [_, flag] if flag == "--bench" => return bench(),
        [_, flag, path] if flag == "--volume-file" => return volume::volume_file(path, false),
        [_, flag, path, remove] if flag == "--volume-file" && remove == "--remove" => {
            return volume::volume_file(path, true)
        }
        [_, flag, path] if flag == "--volume-exit" => return volume::volume_exit(path),
        [_, flag, dir] if flag == "--volume-fill" => return volume::volume_fill(dir),
        [_, flag] if flag == "--fill" => return fill(),
        _ => {}
    }
    let mut checks = Checks::stdout("shmap");
    checks.run("stores_and_writes_are_the_files", || {
        stores_and_writes_are_the_files("/tmp/shmap-a")
    });
    checks.run("fork_shares_the_pages", fork_shares_the_pages);
    checks.run("shrinking_gives_sigbus", shrinking_gives_sigbus);
    checks.run(
        "read_only_files_refuse_writable_shared_maps",
        read_only_files_refuse_writable_shared_maps,
    );
    checks.run("msync_checks_flags", msync_checks_flags);
    checks.run("memfd_maps_shared", memfd_maps_shared);
    checks.run("root_files_map_shared", root_files_map_shared);
    checks.run("dev_zero_maps_shared_memory", dev_zero_maps_shared_memory);
    checks.run("remove_punches_holes", remove_punches_holes);
    checks.run(
        "remove_on_memfd_and_shared_memory",
        remove_on_memfd_and_shared_memory,
    );
    for f in ["a", "fork", "trunc", "ro", "msync", "hole"] {
        let _ = std::fs::remove_file(format!("/tmp/shmap-{f}"));
    }
    let _ = std::fs::remove_file("/shmap-root");
    checks.finish()
}

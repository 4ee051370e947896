//! Whole `--strace` lines, built against a fake process memory.

use super::Arg::*;
use super::*;
use alloc::vec;

/// Process memory: a few readable regions.
#[derive(Default)]
struct FakeMemory {
    regions: Vec<(u64, Vec<u8>)>,
}

impl FakeMemory {
    fn with(mut self, va: u64, bytes: &[u8]) -> Self {
        self.regions.push((va, bytes.to_vec()));
        self
    }
}

impl UserMemory for FakeMemory {
    fn read_bytes(&self, va: u64, len: usize) -> Option<Vec<u8>> {
        self.regions.iter().find_map(|(base, bytes)| {
            let off = va.checked_sub(*base)? as usize;
            bytes.get(off..off.checked_add(len)?).map(<[u8]>::to_vec)
        })
    }

    fn read_str(&self, va: u64, max: usize) -> Option<(Vec<u8>, bool)> {
        let (base, bytes) = self
            .regions
            .iter()
            .find(|(base, bytes)| va >= *base && va < base + bytes.len() as u64)?;
        let rest = &bytes[(va - base) as usize..];
        match rest.iter().position(|&b| b == 0) {
            Some(nul) if nul <= max => Some((rest[..nul].to_vec(), true)),
            _ => Some((rest[..rest.len().min(max)].to_vec(), false)),
        }
    }
}

fn shape(name: &'static str, args: &'static [Arg]) -> Option<Shape> {
    Some(Shape {
        name,
        args,
        ret: Ret::Int,
    })
}

fn line(mem: &FakeMemory, shape: Option<Shape>, args: [u64; 6], result: SysResult) -> String {
    Call::begin(mem, 1, 0, shape, &args).finish(mem, &result)
}

const AT_FDCWD: u64 = (-100i64) as u64;

#[test]
fn openat_shows_the_path_flags_and_no_mode_unless_creating() {
    let mem = FakeMemory::default().with(0x1000, b"/etc/hosts\0");
    let openat = shape("openat", &[AtFd, Str, OpenFlags, Mode]);
    assert_eq!(
        line(&mem, openat, [AT_FDCWD, 0x1000, 0o2000000, 0, 0, 0], Ok(3)),
        r#"[pid 1] openat(AT_FDCWD, "/etc/hosts", O_RDONLY|O_CLOEXEC) = 3"#
    );
    assert_eq!(
        line(
            &mem,
            openat,
            [AT_FDCWD, 0x1000, 0o1101, 0o644, 0, 0],
            Err(Errno::EROFS)
        ),
        r#"[pid 1] openat(AT_FDCWD, "/etc/hosts", O_WRONLY|O_CREAT|O_TRUNC, 0644) = -1 EROFS (Read-only file system)"#
    );
    assert_eq!(
        line(&mem, openat, [3, 0x1000, 0, 0, 0, 0], Err(Errno::ENOENT)),
        r#"[pid 1] openat(3, "/etc/hosts", O_RDONLY) = -1 ENOENT (No such file or directory)"#
    );
}

#[test]
fn unreadable_pointers_show_as_addresses() {
    let mem = FakeMemory::default();
    let open = shape("open", &[Str, OpenFlags, Mode]);
    assert_eq!(
        line(&mem, open, [0xdead_0000, 0, 0, 0, 0, 0], Err(Errno::EFAULT)),
        "[pid 1] open(0xdead0000, O_RDONLY) = -1 EFAULT (Bad address)"
    );
    let write = shape("write", &[Fd, Buf(2), UInt]);
    assert_eq!(
        line(&mem, write, [1, 0, 5, 0, 0, 0], Err(Errno::EFAULT)),
        "[pid 1] write(1, NULL, 5) = -1 EFAULT (Bad address)"
    );
}

#[test]
fn write_buffers_are_quoted_and_truncated_at_32_bytes() {
    let text = b"hello, world! this line is longer than thirty-two bytes\n";
    let mem = FakeMemory::default().with(0x2000, text);
    let write = shape("write", &[Fd, Buf(2), UInt]);
    assert_eq!(
        line(&mem, write, [1, 0x2000, 6, 0, 0, 0], Ok(6)),
        r#"[pid 1] write(1, "hello,", 6) = 6"#
    );
    assert_eq!(
        line(&mem, write, [2, 0x2000, text.len() as u64, 0, 0, 0], Ok(56)),
        r#"[pid 1] write(2, "hello, world! this line is longe"..., 56) = 56"#
    );
    assert_eq!(
        line(&mem, write, [1, 0x2000, 0, 0, 0, 0], Ok(0)),
        r#"[pid 1] write(1, "", 0) = 0"#
    );
}

#[test]
fn output_buffers_are_shown_after_the_call_with_the_returned_length() {
    let mem = FakeMemory::default().with(0x3000, b"127.0.0.1 localhost\n\0\0\0\0");
    let read = shape("read", &[Fd, OutBuf, UInt]);
    // The line is begun before the call: the buffer must not be read yet.
    let call = Call::begin(
        &FakeMemory::default(),
        1,
        0,
        read,
        &[3, 0x3000, 4096, 0, 0, 0],
    );
    assert_eq!(
        call.finish(&mem, &Ok(20)),
        r#"[pid 1] read(3, "127.0.0.1 localhost\n", 4096) = 20"#
    );
    assert_eq!(
        line(&mem, read, [3, 0x3000, 4096, 0, 0, 0], Ok(0)),
        r#"[pid 1] read(3, "", 4096) = 0"#
    );
    assert_eq!(
        line(&mem, read, [9, 0x3000, 4096, 0, 0, 0], Err(Errno::EBADF)),
        "[pid 1] read(9, 0x3000, 4096) = -1 EBADF (Bad file descriptor)"
    );
}

#[test]
fn iovecs_show_each_base_and_length() {
    let mut iov = Vec::new();
    for (base, len) in [(0x5000u64, 3u64), (0x5003, 5)] {
        iov.extend_from_slice(&base.to_le_bytes());
        iov.extend_from_slice(&len.to_le_bytes());
    }
    let mem = FakeMemory::default()
        .with(0x4000, &iov)
        .with(0x5000, b"hi\nthere");
    let writev = shape("writev", &[Fd, Iovec(2), Int]);
    assert_eq!(
        line(&mem, writev, [1, 0x4000, 2, 0, 0, 0], Ok(8)),
        r#"[pid 1] writev(1, [{iov_base="hi\n", iov_len=3}, {iov_base="there", iov_len=5}], 2) = 8"#
    );
    assert_eq!(
        line(&mem, writev, [1, 0x4000, 0, 0, 0, 0], Ok(0)),
        "[pid 1] writev(1, [], 0) = 0"
    );
    assert_eq!(
        line(&mem, writev, [1, 0x9000, 2, 0, 0, 0], Err(Errno::EFAULT)),
        "[pid 1] writev(1, 0x9000, 2) = -1 EFAULT (Bad address)"
    );
    // readv fills its buffers: shown after the call, up to the returned total (no "..."
    // for what the call did not fill, as strace).
    let readv = shape("readv", &[Fd, Iovec(2), Int]);
    assert_eq!(
        line(&mem, readv, [0, 0x4000, 2, 0, 0, 0], Ok(5)),
        r#"[pid 1] readv(0, [{iov_base="hi\n", iov_len=3}, {iov_base="th", iov_len=5}], 2) = 5"#
    );
}

#[test]
fn long_iovec_arrays_are_abbreviated() {
    let mut iov = Vec::new();
    for _ in 0..40 {
        iov.extend_from_slice(&0x5000u64.to_le_bytes());
        iov.extend_from_slice(&1u64.to_le_bytes());
    }
    let mem = FakeMemory::default().with(0x4000, &iov).with(0x5000, b"x");
    let writev = shape("writev", &[Fd, Iovec(2), Int]);
    let text = line(&mem, writev, [1, 0x4000, 40, 0, 0, 0], Ok(40));
    assert_eq!(text.matches("iov_base=").count(), MAX_ELEMENTS);
    assert!(
        text.ends_with(r#"{iov_base="x", iov_len=1}, ...], 40) = 40"#),
        "{text}"
    );
}

#[test]
fn mmap_returns_an_address_in_hex() {
    let mmap = Some(Shape {
        name: "mmap",
        args: &[Ptr, UInt, Prot, MapFlags, Fd, UInt],
        ret: Ret::Addr,
    });
    let mem = FakeMemory::default();
    assert_eq!(
        line(
            &mem,
            mmap,
            [0, 8192, 3, 0x22, u64::MAX, 0],
            Ok(0x7f12_3456_7000)
        ),
        "[pid 1] mmap(NULL, 8192, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) = 0x7f1234567000"
    );
    assert_eq!(
        line(&mem, mmap, [0, 1 << 40, 3, 0x22, u64::MAX, 0], Err(Errno::ENOMEM)),
        "[pid 1] mmap(NULL, 1099511627776, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) = -1 ENOMEM (Cannot allocate memory)"
    );
}

#[test]
fn calls_that_never_return_end_in_a_question_mark() {
    let exit_group = Some(Shape {
        name: "exit_group",
        args: &[Int],
        ret: Ret::Never,
    });
    let call = Call::begin(&FakeMemory::default(), 7, 231, exit_group, &[0; 6]);
    assert!(call.never_returns());
    assert_eq!(call.unfinished_line(), "[pid 7] exit_group(0) = ?");
    let write = Call::begin(&FakeMemory::default(), 7, 1, shape("getpid", &[]), &[0; 6]);
    assert!(!write.never_returns());
    assert_eq!(
        write.finish(&FakeMemory::default(), &Ok(7)),
        "[pid 7] getpid() = 7"
    );
}

#[test]
fn unknown_syscalls_show_their_number_and_raw_arguments() {
    let mem = FakeMemory::default();
    let call = Call::begin(&mem, 1, 0x1f4, None, &[1, 0, 0x7ffd_0000, 0, 0, u64::MAX]);
    assert_eq!(
        call.finish(&mem, &Err(Errno::ENOSYS)),
        "[pid 1] syscall_0x1f4(0x1, 0, 0x7ffd0000, 0, 0, 0xffffffffffffffff) = -1 ENOSYS (Function not implemented)"
    );
}

#[test]
fn unimplemented_linux_syscalls_show_their_linux_name() {
    let mem = FakeMemory::default();
    let call = Call::begin(&mem, 1, 56, None, &[0x7d0f00, 0, 0, 0, 0, 0]);
    assert_eq!(
        call.finish(&mem, &Err(Errno::ENOSYS)),
        "[pid 1] clone(0x7d0f00, 0, 0, 0, 0, 0) = -1 ENOSYS (Function not implemented)"
    );
}

#[test]
fn fcntl_arguments_and_results_depend_on_the_command() {
    let fcntl = shape("fcntl", &[Fd, FcntlCmd, UInt]);
    let mem = FakeMemory::default();
    assert_eq!(
        line(&mem, fcntl, [3, 1, 0xdead, 0, 0, 0], Ok(1)),
        "[pid 1] fcntl(3, F_GETFD) = 0x1 (flags FD_CLOEXEC)"
    );
    assert_eq!(
        line(&mem, fcntl, [3, 2, 1, 0, 0, 0], Ok(0)),
        "[pid 1] fcntl(3, F_SETFD, FD_CLOEXEC) = 0"
    );
    assert_eq!(
        line(&mem, fcntl, [3, 3, 0, 0, 0, 0], Ok(0o100002)),
        "[pid 1] fcntl(3, F_GETFL) = 0x8002 (flags O_RDWR|O_LARGEFILE)"
    );
    assert_eq!(
        line(&mem, fcntl, [3, 4, 0o4002, 0, 0, 0], Ok(0)),
        "[pid 1] fcntl(3, F_SETFL, O_RDWR|O_NONBLOCK) = 0"
    );
    assert_eq!(
        line(&mem, fcntl, [3, 1030, 10, 0, 0, 0], Ok(10)),
        "[pid 1] fcntl(3, F_DUPFD_CLOEXEC, 10) = 10"
    );
    assert_eq!(
        line(&mem, fcntl, [3, 1, 0, 0, 0, 0], Err(Errno::EBADF)),
        "[pid 1] fcntl(3, F_GETFD) = -1 EBADF (Bad file descriptor)"
    );
}

#[test]
fn every_other_shape_decodes() {
    let mem = FakeMemory::default().with(0x6000, b"/tmp/x\0");
    let cases: Vec<(Option<Shape>, [u64; 6], SysResult, &str)> = vec![
        (
            shape("ioctl", &[Fd, IoctlReq, Ptr]),
            [1, 0x5413, 0x7ffc_0000, 0, 0, 0],
            Err(Errno::ENOTTY),
            "ioctl(1, TIOCGWINSZ, 0x7ffc0000) = -1 ENOTTY (Inappropriate ioctl for device)",
        ),
        (
            shape("arch_prctl", &[ArchPrctlCode, Ptr]),
            [0x1002, 0x4a_1000, 0, 0, 0, 0],
            Ok(0),
            "arch_prctl(ARCH_SET_FS, 0x4a1000) = 0",
        ),
        (
            shape("rt_sigprocmask", &[SigHow, Ptr, Ptr, UInt]),
            [0, 0x7000, 0, 8, 0, 0],
            Ok(0),
            "rt_sigprocmask(SIG_BLOCK, 0x7000, NULL, 8) = 0",
        ),
        (
            shape("kill", &[Int, Signal]),
            [1, 11, 0, 0, 0, 0],
            Ok(0),
            "kill(1, SIGSEGV) = 0",
        ),
        (
            shape("clock_gettime", &[ClockId, Ptr]),
            [1, 0x7000, 0, 0, 0, 0],
            Ok(0),
            "clock_gettime(CLOCK_MONOTONIC, 0x7000) = 0",
        ),
        (
            shape("lseek", &[Fd, Int, Whence]),
            [3, (-5i64) as u64, 2, 0, 0, 0],
            Ok(95),
            "lseek(3, -5, SEEK_END) = 95",
        ),
        (
            shape("madvise", &[Ptr, UInt, Advice]),
            [0x1000, 4096, 4, 0, 0, 0],
            Ok(0),
            "madvise(0x1000, 4096, MADV_DONTNEED) = 0",
        ),
        (
            shape("mprotect", &[Ptr, UInt, Prot]),
            [0x1000, 4096, 0, 0, 0, 0],
            Ok(0),
            "mprotect(0x1000, 4096, PROT_NONE) = 0",
        ),
        (
            shape("newfstatat", &[AtFd, Str, Ptr, AtFlags]),
            [AT_FDCWD, 0x6000, 0x7000, 0x100, 0, 0],
            Ok(0),
            r#"newfstatat(AT_FDCWD, "/tmp/x", 0x7000, AT_SYMLINK_NOFOLLOW) = 0"#,
        ),
        (
            shape("mkdir", &[Str, Mode]),
            [0x6000, 0o755, 0, 0, 0, 0],
            Err(Errno::EROFS),
            r#"mkdir("/tmp/x", 0755) = -1 EROFS (Read-only file system)"#,
        ),
        (
            shape("getrandom", &[OutBuf, UInt, UInt]),
            [0x6000, 3, 0, 0, 0, 0],
            Ok(3),
            r#"getrandom("/tm", 3, 0) = 3"#,
        ),
    ];
    for (shape, args, result, expected) in cases {
        let got = line(&mem, shape, args, result);
        assert_eq!(got, alloc::format!("[pid 1] {expected}"));
    }
}

#[test]
fn paths_without_a_nul_are_truncated() {
    let long = [b'a'; 8];
    let mem = FakeMemory::default().with(0x6000, &long);
    let chdir = shape("chdir", &[Str]);
    assert_eq!(
        line(
            &mem,
            chdir,
            [0x6000, 0, 0, 0, 0, 0],
            Err(Errno::ENAMETOOLONG)
        ),
        r#"[pid 1] chdir("aaaaaaaa"...) = -1 ENAMETOOLONG (File name too long)"#
    );
}

#[test]
fn structures_are_decoded_inputs_before_and_outputs_after_a_successful_call() {
    let mut stat = [0u8; 144];
    stat[24..28].copy_from_slice(&0o100644u32.to_le_bytes());
    stat[48..56].copy_from_slice(&29u64.to_le_bytes());
    let mem = FakeMemory::default()
        .with(0x1000, &(1u64 << 1).to_le_bytes())
        .with(0x2000, &0u64.to_le_bytes())
        .with(0x3000, &stat);
    let mask = shape("rt_sigprocmask", &[SigHow, Sigset, OutSigset, UInt]);
    assert_eq!(
        line(&mem, mask, [0, 0x1000, 0x2000, 8, 0, 0], Ok(0)),
        "[pid 1] rt_sigprocmask(SIG_BLOCK, [INT], [], 8) = 0"
    );
    // A failed call filled nothing: its output is the pointer.
    assert_eq!(
        line(&mem, mask, [0, 0x1000, 0x2000, 8, 0, 0], Err(Errno::EINVAL)),
        "[pid 1] rt_sigprocmask(SIG_BLOCK, [INT], 0x2000, 8) = -1 EINVAL (Invalid argument)"
    );
    let fstat = shape("fstat", &[Fd, OutStat]);
    assert_eq!(
        line(&mem, fstat, [3, 0x3000, 0, 0, 0, 0], Ok(0)),
        "[pid 1] fstat(3, {st_mode=S_IFREG|0644, st_size=29, ...}) = 0"
    );
    // NULL, and an unreadable structure, as strace shows them.
    assert_eq!(
        line(&mem, mask, [2, 0, 0x9000, 8, 0, 0], Ok(0)),
        "[pid 1] rt_sigprocmask(SIG_SETMASK, NULL, 0x9000, 8) = 0"
    );
}

//! Hostile input to `astra-vmm` itself (issue 11's red-team findings): flag values at the
//! edges, files that are not what they claim, kernels and rootfs images corrupt past their
//! first bytes, a rootfs changed under a running guest, and a broken stderr. Each must end
//! with the documented exit code and a message naming the problem, promptly.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use astra_tests::tempdir::TempDir;
use astra_tests::{exit, run_vmm, Outcome, Workspace, VMM_ERROR_PREFIX};

/// Refusing bad input involves no guest; anything near this means the VMM hangs.
const WALL_TIMEOUT: Duration = Duration::from_secs(30);

fn s(path: &Path) -> String {
    path.display().to_string()
}

/// Runs `astra-vmm args -- /bin/true` and checks it ends with 250 and a `astra-vmm: error:`
/// message containing every one of `needles` (case-insensitive).
fn expect_usage_error(args: &[String], needles: &[&str]) -> Outcome {
    let mut args = args.to_vec();
    args.extend(["--timeout", "10", "--", "/bin/true"].map(String::from));
    let outcome = run_vmm(&args, WALL_TIMEOUT);
    assert_eq!(
        outcome.status,
        exit::USAGE,
        "expected exit {}, got {}\n{}",
        exit::describe(exit::USAGE),
        exit::describe(outcome.status),
        outcome.report()
    );
    let errors: Vec<&str> = outcome
        .stderr
        .lines()
        .filter(|l| l.starts_with(VMM_ERROR_PREFIX))
        .collect();
    assert_eq!(
        errors.len(),
        1,
        "expected one error line\n{}",
        outcome.report()
    );
    let stderr = outcome.stderr.to_lowercase();
    for needle in needles {
        assert!(
            stderr.contains(&needle.to_lowercase()),
            "the error message does not mention `{needle}`\n{}",
            outcome.report()
        );
    }
    outcome
}

fn vm_args(kernel: &Path, rootfs: &Path) -> Vec<String> {
    vec!["--kernel".into(), s(kernel), "--rootfs".into(), s(rootfs)]
}

#[test]
fn timeouts_that_overflow_or_round_to_zero_are_refused() {
    let ws = Workspace::locate();
    for bad in ["1e19", "9.3e18", "1e-300", "0.0001"] {
        let mut args = ws.default_vm_args();
        args.extend(["--timeout".into(), bad.into()]);
        let outcome = expect_usage_error(&args, &["--timeout", bad, "0.001"]);
        assert!(
            outcome.elapsed < Duration::from_secs(5),
            "{}",
            outcome.report()
        );
    }
}

fn mkfifo(dir: &TempDir, name: &str) -> PathBuf {
    let path = dir.path().join(name);
    let status = Command::new("mkfifo")
        .arg(&path)
        .status()
        .expect("run mkfifo");
    assert!(status.success(), "mkfifo {} failed", path.display());
    path
}

#[test]
fn fifos_and_devices_are_refused_without_blocking_or_reading() {
    let ws = Workspace::locate();
    let dir = TempDir::new("hostile-files");
    let fifo = mkfifo(&dir, "no-writer");
    let cases = [
        (vm_args(&fifo, &ws.rootfs()), "FIFO"),
        (vm_args(&ws.kernel(), &fifo), "FIFO"),
        (
            vm_args(Path::new("/dev/zero"), &ws.rootfs()),
            "character device",
        ),
        (
            vm_args(Path::new("/dev/urandom"), &ws.rootfs()),
            "character device",
        ),
        (
            vm_args(&ws.kernel(), Path::new("/dev/zero")),
            "character device",
        ),
        (vm_args(Path::new("/tmp"), &ws.rootfs()), "directory"),
    ];
    for (args, kind) in cases {
        let outcome = expect_usage_error(&args, &["not a regular file", kind]);
        assert!(
            outcome.elapsed < Duration::from_secs(5),
            "{}",
            outcome.report()
        );
    }
    // A directory is a rootfs to pack; a FIFO inside it is refused by name, unread.
    let outcome = expect_usage_error(
        &vm_args(&ws.kernel(), dir.path()),
        &["not a file, directory or symlink", "no-writer"],
    );
    assert!(
        outcome.elapsed < Duration::from_secs(5),
        "{}",
        outcome.report()
    );
}

/// Runs the VMM with a stderr whose reader is gone: every write to it fails with `EPIPE`.
fn status_with_broken_stderr(args: &[&str]) -> i32 {
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    let ws = Workspace::locate();
    let mut full: Vec<String> = ws.default_vm_args();
    full.extend(args.iter().map(|a| a.to_string()));
    let status = Command::new(ws.vmm())
        .args(&full)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(writer)
        .status()
        .expect("run astra-vmm");
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

#[test]
fn a_broken_stderr_keeps_the_documented_exit_codes() {
    astra_tests::require_kvm();
    let cases: [(&[&str], i32); 5] = [
        (&["--no-such-flag"], exit::USAGE),
        (
            &["--timeout", "10", "--cmdline", "astra.panic"],
            exit::KERNEL_PANIC,
        ),
        (&["--timeout", "0.5", "--", "/bin/spin"], exit::TIMEOUT),
        (
            &["--timeout", "10", "--stats", "--strace", "--", "/bin/hello"],
            0,
        ),
        (&["--timeout", "10", "--", "/bin/segv"], 139),
    ];
    for (args, expected) in cases {
        let status = status_with_broken_stderr(args);
        assert_eq!(status, expected, "astra-vmm {args:?} with a broken stderr");
    }
}

/// Program header `index` field at `offset` of an ELF64 file.
fn phdr_field(elf: &mut [u8], index: usize, offset: usize) -> &mut [u8] {
    let phoff = u64::from_le_bytes(elf[32..40].try_into().unwrap()) as usize;
    let at = phoff + index * 56 + offset;
    &mut elf[at..at + 8]
}

fn phdr_type(elf: &[u8], index: usize) -> u32 {
    let phoff = u64::from_le_bytes(elf[32..40].try_into().unwrap()) as usize;
    let at = phoff + index * 56;
    u32::from_le_bytes(elf[at..at + 4].try_into().unwrap())
}

fn phnum(elf: &[u8]) -> usize {
    u16::from_le_bytes(elf[56..58].try_into().unwrap()) as usize
}

#[test]
fn kernel_segments_that_would_load_wrong_are_refused() {
    const PT_LOAD: u32 = 1;
    const PT_NOTE: u32 = 4;
    let ws = Workspace::locate();
    let dir = TempDir::new("hostile-elf");
    let kernel = std::fs::read(ws.kernel()).expect("read build/guest.elf");
    let loads: Vec<usize> = (0..phnum(&kernel))
        .filter(|&i| phdr_type(&kernel, i) == PT_LOAD)
        .collect();
    let note = (0..phnum(&kernel))
        .find(|&i| phdr_type(&kernel, i) == PT_NOTE)
        .expect("a PT_NOTE");
    assert!(loads.len() >= 2, "the kernel has several PT_LOADs");
    let get =
        |elf: &mut Vec<u8>, i, off| u64::from_le_bytes(phdr_field(elf, i, off).try_into().unwrap());

    let mut no_memory = kernel.clone();
    phdr_field(&mut no_memory, loads[0], 40).copy_from_slice(&0u64.to_le_bytes());
    let mut at_zero = kernel.clone();
    phdr_field(&mut at_zero, loads[0], 24).copy_from_slice(&0u64.to_le_bytes());
    let mut overlapping = kernel.clone();
    let first = get(&mut overlapping, loads[0], 24);
    phdr_field(&mut overlapping, loads[1], 24).copy_from_slice(&(first + 0x1000).to_le_bytes());
    let mut huge_note = kernel.clone();
    let note_off = get(&mut huge_note, note, 8) as usize;
    huge_note[note_off..note_off + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    let cases = [
        (no_memory, "file size exceeds its memory size"),
        (at_zero, "outside usable guest RAM"),
        (overlapping, "overlapping segments"),
        (huge_note, "malformed note"),
    ];
    for (i, (image, reason)) in cases.into_iter().enumerate() {
        let path = dir.write(&format!("k{i}.elf"), &image);
        expect_usage_error(&vm_args(&path, &ws.rootfs()), &[&s(&path), reason]);
    }
}

/// Offsets of the headers of `tar` (of real entries and extension headers alike).
fn tar_headers(tar: &[u8]) -> Vec<usize> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 512 <= tar.len() && tar[at..at + 512].iter().any(|&b| b != 0) {
        out.push(at);
        let size_field = std::str::from_utf8(&tar[at + 124..at + 135]).unwrap();
        let size =
            usize::from_str_radix(size_field.trim_matches(|c| c == '\0' || c == ' '), 8).unwrap();
        at += 512 + size.div_ceil(512) * 512;
    }
    out
}

fn seal(header: &mut [u8]) {
    header[148..156].fill(b' ');
    let sum: u32 = header[..512].iter().map(|&b| u32::from(b)).sum();
    header[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
}

fn set_name(header: &mut [u8], name: &[u8]) {
    header[..100].fill(0);
    header[345..500].fill(0);
    header[..name.len()].copy_from_slice(name);
}

#[test]
fn rootfs_corrupt_past_its_first_header_is_refused_with_the_reason() {
    let ws = Workspace::locate();
    let dir = TempDir::new("hostile-tar");
    let tar = std::fs::read(ws.rootfs()).expect("read build/fs.tar");
    let headers = tar_headers(&tar);
    assert!(headers.len() > 5, "build/fs.tar has entries");
    // A regular file with data, past the first few headers, and the name of an earlier one.
    let file_at = *headers[3..]
        .iter()
        .find(|&&h| tar[h + 156] == b'0' && tar[h + 124..h + 135] != *b"00000000000")
        .expect("a regular file with data");
    let earlier_file = *headers
        .iter()
        .find(|&&h| h < file_at && tar[h + 156] == b'0')
        .expect("an earlier regular file");
    let earlier_name: Vec<u8> = tar[earlier_file..earlier_file + 100]
        .split(|&b| b == 0)
        .next()
        .unwrap()
        .to_vec();
    let edit = |f: &dyn Fn(&mut [u8])| {
        let mut copy = tar.clone();
        f(&mut copy[file_at..file_at + 512]);
        copy
    };
    let mut below_file = earlier_name.clone();
    below_file.extend_from_slice(b"/x");
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (edit(&|h| h[0] ^= 0x20), "bad header checksum"),
        (tar[..file_at + 700].to_vec(), "truncated"),
        (
            edit(&|h| {
                set_name(h, b"../escape");
                seal(h)
            }),
            "bad name",
        ),
        (
            edit(&|h| {
                set_name(h, b"bin/\xff\xfe");
                seal(h)
            }),
            "bad name",
        ),
        (
            edit(&|h| {
                h[124..136].fill(0xff);
                seal(h)
            }),
            "bad size field",
        ),
        (
            edit(&|h| {
                h[124..136].copy_from_slice(b"77777777777\0");
                seal(h)
            }),
            "truncated",
        ),
        (
            edit(&|h| {
                h[156] = b'x';
                seal(h)
            }),
            "malformed pax",
        ),
        (
            edit(&|h| {
                h[156] = b'1';
                h[157..164].copy_from_slice(b"no/such");
                seal(h)
            }),
            "hard link",
        ),
        (
            edit(&|h| {
                set_name(h, &below_file);
                seal(h)
            }),
            "not a directory",
        ),
    ];
    for (i, (image, reason)) in cases.into_iter().enumerate() {
        let path = dir.write(&format!("fs{i}.tar"), &image);
        let outcome = expect_usage_error(
            &vm_args(&ws.kernel(), &path),
            &[&s(&path), "is not a valid TAR", reason],
        );
        assert!(
            !outcome.stderr.contains("no rootfs"),
            "{}",
            outcome.report()
        );
    }
}

#[test]
fn a_rootfs_truncated_under_a_running_guest_is_named() {
    astra_tests::require_kvm();
    let ws = Workspace::locate();
    let dir = TempDir::new("hostile-truncate");
    let tar = std::fs::read(ws.rootfs()).expect("read build/fs.tar");
    let headers = tar_headers(&tar);
    // The last regular file: its data lies at the end of the archive.
    let last_file = *headers
        .iter()
        .rev()
        .find(|&&h| tar[h + 156] == b'0')
        .unwrap();
    let name = String::from_utf8(
        tar[last_file..last_file + 100]
            .split(|&b| b == 0)
            .next()
            .unwrap()
            .to_vec(),
    )
    .unwrap();
    let rootfs = dir.write("fs.tar", &tar);
    let mut args = vm_args(&ws.kernel(), &rootfs);
    args.extend([
        "--timeout".into(),
        "20".into(),
        "--".into(),
        "/bin/cat".into(),
        "-".into(),
        format!("/{name}"),
    ]);
    let mut child = Command::new(ws.vmm())
        .args(&args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run astra-vmm");
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    stdin.write_all(b"ready\n").unwrap();
    // cat echoes stdin: once "ready" is back, the guest runs with the rootfs mounted.
    let mut seen = [0u8; 6];
    std::io::Read::read_exact(&mut stdout, &mut seen).expect("the guest echoes its input");
    assert_eq!(&seen, b"ready\n");
    std::fs::OpenOptions::new()
        .write(true)
        .open(&rootfs)
        .unwrap()
        .set_len(4096)
        .unwrap();
    drop(stdin);
    let started = Instant::now();
    let out = child.wait_with_output().expect("wait for astra-vmm");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(started.elapsed() < Duration::from_secs(15));
    assert_eq!(out.status.code(), Some(exit::USAGE), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "Rootfs '{}' was truncated while the guest ran",
            rootfs.display()
        )),
        "{stderr}"
    );
}

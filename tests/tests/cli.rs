//! Bad input to `astra-vmm`: each case must end with exit code 250 and an
//! `astra-vmm: error: ` message on stderr that names the problem, before any guest runs.
//!
//! Each case changes one thing and keeps the rest valid (the built kernel and rootfs), so
//! the message can only be about that one thing.

use std::path::Path;
use std::time::Duration;

use astra_tests::elf::{find_abi_note, hide_abi_note, patch_abi_version, set_machine};
use astra_tests::tempdir::TempDir;
use astra_tests::{exit, run_vmm, Outcome, Workspace, VMM_ERROR_PREFIX};
use hypercall_abi::ABI_VERSION;

/// Rejecting bad input involves no guest; anything near this means the VMM hangs.
const WALL_TIMEOUT: Duration = Duration::from_secs(30);

fn path_arg(path: &Path) -> String {
    path.display().to_string()
}

/// Runs `astra-vmm args -- /bin/true` and checks it is refused with exit 250 and an error
/// message containing every one of `needles` (case-insensitive).
fn expect_usage_error(args: &[String], needles: &[&str]) -> Outcome {
    let mut args = args.to_vec();
    args.extend([
        "--timeout".into(),
        "10".into(),
        "--".into(),
        "/bin/true".into(),
    ]);
    let outcome = run_vmm(&args, WALL_TIMEOUT);
    assert_eq!(
        outcome.status,
        exit::USAGE,
        "expected exit {} for bad input, got {}\n{}",
        exit::describe(exit::USAGE),
        exit::describe(outcome.status),
        outcome.report()
    );
    let error_lines: Vec<&str> = outcome
        .stderr
        .lines()
        .filter(|l| l.starts_with(VMM_ERROR_PREFIX))
        .collect();
    assert!(
        !error_lines.is_empty(),
        "no line starting with `{VMM_ERROR_PREFIX}` on stderr\n{}",
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

fn with_kernel(ws: &Workspace, kernel: &Path) -> Vec<String> {
    vec![
        "--kernel".into(),
        path_arg(kernel),
        "--rootfs".into(),
        path_arg(&ws.rootfs()),
    ]
}

fn with_rootfs(ws: &Workspace, rootfs: &Path) -> Vec<String> {
    vec![
        "--kernel".into(),
        path_arg(&ws.kernel()),
        "--rootfs".into(),
        path_arg(rootfs),
    ]
}

#[test]
fn the_built_kernel_carries_the_current_abi_note() {
    let ws = Workspace::locate();
    let kernel = std::fs::read(ws.kernel()).expect("read build/guest.elf");
    let note = find_abi_note(&kernel)
        .unwrap_or_else(|err| panic!("build/guest.elf has no usable ABI note: {err}"));
    assert_eq!(
        note.version, ABI_VERSION,
        "build/guest.elf was built against another ABI version"
    );
}

#[test]
fn missing_kernel_names_the_path() {
    let ws = Workspace::locate();
    let dir = TempDir::new("cli");
    let missing = dir.path().join("no-such-kernel.elf");
    expect_usage_error(&with_kernel(&ws, &missing), &[&path_arg(&missing)]);
}

#[test]
fn kernel_that_is_not_elf_is_refused() {
    let ws = Workspace::locate();
    let dir = TempDir::new("cli");
    let junk = dir.write(
        "junk.elf",
        &b"this is not an ELF file, just junk\n".repeat(64),
    );
    expect_usage_error(&with_kernel(&ws, &junk), &["ELF"]);
}

#[test]
fn host_executable_is_refused() {
    // A host x86-64 program: no ABI note, and on most distributions a PIE rather than the
    // ET_EXEC a kernel is; either is reason enough, as long as the message names the file.
    let ws = Workspace::locate();
    let host_binary = ["/bin/true", "/usr/bin/true"]
        .into_iter()
        .map(Path::new)
        .find(|p| p.is_file())
        .expect("a host /bin/true to use as a foreign ELF");
    let bytes = std::fs::read(host_binary).expect("read the host binary");
    assert!(
        find_abi_note(&bytes).is_err(),
        "{} unexpectedly carries an astra ABI note",
        host_binary.display()
    );
    expect_usage_error(&with_kernel(&ws, host_binary), &[&path_arg(host_binary)]);
}

#[test]
fn kernel_without_the_abi_note_is_refused() {
    let ws = Workspace::locate();
    let mut kernel = std::fs::read(ws.kernel()).expect("read build/guest.elf");
    hide_abi_note(&mut kernel)
        .unwrap_or_else(|err| panic!("cannot find the ABI note of build/guest.elf: {err}"));
    let dir = TempDir::new("cli");
    let stripped = dir.write("guest-no-note.elf", &kernel);
    expect_usage_error(&with_kernel(&ws, &stripped), &["ABI", "note"]);
}

#[test]
fn kernel_for_another_architecture_is_refused() {
    let ws = Workspace::locate();
    let mut kernel = std::fs::read(ws.kernel()).expect("read build/guest.elf");
    const EM_AARCH64: u16 = 183;
    set_machine(&mut kernel, EM_AARCH64).expect("build/guest.elf is an ELF");
    let dir = TempDir::new("cli");
    let foreign = dir.write("guest-aarch64.elf", &kernel);
    expect_usage_error(&with_kernel(&ws, &foreign), &["x86"]);
}

#[test]
fn kernel_with_a_wrong_abi_version_is_refused() {
    let ws = Workspace::locate();
    let mut kernel = std::fs::read(ws.kernel()).expect("read build/guest.elf");
    let note = patch_abi_version(&mut kernel, 999)
        .unwrap_or_else(|err| panic!("cannot patch the ABI note of build/guest.elf: {err}"));
    assert_eq!(note.version, ABI_VERSION);
    let dir = TempDir::new("cli");
    let patched = dir.write("guest-abi999.elf", &kernel);
    // The message must say it is about the ABI and show the version found.
    expect_usage_error(&with_kernel(&ws, &patched), &["ABI", "999"]);
}

#[test]
fn without_kernel_flag_the_kernel_installed_beside_the_vmm_is_used() {
    // A copy of astra-vmm in DIR/bin with junk at DIR/share/astra/guest.elf: that file is
    // the first place looked at, so the error names it (the build tree's kernel, the last
    // resort, is not reached).
    let ws = Workspace::locate();
    let dir = TempDir::new("cli");
    std::fs::create_dir_all(dir.path().join("bin")).unwrap();
    std::fs::create_dir_all(dir.path().join("share/astra")).unwrap();
    let vmm = dir.path().join("bin/astra-vmm");
    std::fs::copy(ws.vmm(), &vmm).unwrap();
    let junk = dir.write("share/astra/guest.elf", &b"not a kernel ".repeat(100));
    let outcome = astra_tests::try_run(
        &vmm,
        &[
            "--rootfs".to_string(),
            path_arg(&ws.rootfs()),
            "/bin/true".into(),
        ],
        WALL_TIMEOUT,
    );
    let outcome = outcome.expect("run the copied astra-vmm");
    assert_eq!(outcome.status, exit::USAGE, "{}", outcome.report());
    assert!(
        outcome.stderr.contains(&path_arg(&junk)),
        "{}",
        outcome.report()
    );
}

#[test]
fn missing_rootfs_names_the_path() {
    let ws = Workspace::locate();
    let dir = TempDir::new("cli");
    let missing = dir.path().join("no-such-rootfs.tar");
    expect_usage_error(&with_rootfs(&ws, &missing), &[&path_arg(&missing)]);
}

#[test]
fn rootfs_that_is_not_tar_is_refused() {
    let ws = Workspace::locate();
    let dir = TempDir::new("cli");
    // Enough junk for several 512-byte TAR headers, none of them valid.
    let junk = dir.write("junk.tar", &b"not a tar archive at all; ".repeat(200));
    expect_usage_error(&with_rootfs(&ws, &junk), &["TAR"]);
}

#[test]
fn empty_rootfs_is_refused() {
    let ws = Workspace::locate();
    let dir = TempDir::new("cli");
    let empty = dir.write("empty.tar", b"");
    expect_usage_error(&with_rootfs(&ws, &empty), &["empty"]);
}

fn default_args(ws: &Workspace, extra: &[&str]) -> Vec<String> {
    let mut args = ws.default_vm_args();
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

#[test]
fn mem_below_the_minimum_is_refused() {
    let ws = Workspace::locate();
    expect_usage_error(&default_args(&ws, &["--mem", "1K"]), &["--mem"]);
}

#[test]
fn mem_above_the_maximum_is_refused() {
    let ws = Workspace::locate();
    expect_usage_error(&default_args(&ws, &["--mem", "99T"]), &["--mem"]);
}

#[test]
fn mem_that_is_not_a_size_is_refused() {
    let ws = Workspace::locate();
    expect_usage_error(&default_args(&ws, &["--mem", "abc"]), &["--mem", "abc"]);
}

#[test]
fn more_than_one_cpu_is_not_supported() {
    let ws = Workspace::locate();
    expect_usage_error(
        &default_args(&ws, &["--cpus", "2"]),
        &["--cpus", "supported"],
    );
}

#[test]
fn unknown_flag_is_named() {
    let ws = Workspace::locate();
    expect_usage_error(&default_args(&ws, &["--no-such-flag"]), &["--no-such-flag"]);
}

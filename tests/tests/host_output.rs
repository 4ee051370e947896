//! The host's output errors reach the program as Linux reports them (issue 11, item 10):
//! the console-output device hands the failed host write's errno back, and the kernel fails
//! the program's `write` with it (`EPIPE` with `SIGPIPE`, `ENOSPC`, `EIO`).

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use astra_tests::{require_kvm, Workspace};

/// Runs `astra-vmm --timeout 20 -- program` with stdout to `stdout` and stdin from `stdin`;
/// returns its exit code and stderr.
fn run(program: &[&str], stdin: Stdio, stdout: Stdio) -> (i32, String) {
    let ws = Workspace::locate();
    let mut args = ws.default_vm_args();
    args.extend(["--timeout", "20", "--"].map(String::from));
    args.extend(program.iter().map(|a| a.to_string()));
    let out = Command::new(ws.vmm())
        .args(&args)
        .stdin(stdin)
        .stdout(stdout)
        .stderr(Stdio::piped())
        .output()
        .expect("run astra-vmm");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.status.code().unwrap_or(-1), stderr)
}

fn dev_full() -> Stdio {
    std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .expect("open /dev/full")
        .into()
}

#[test]
fn a_std_program_writing_to_a_full_device_panics_as_on_linux() {
    require_kvm();
    let (status, stderr) = run(&["/bin/hello-std"], Stdio::null(), dev_full());
    assert_eq!(status, 101, "{stderr}");
    assert!(stderr.contains("No space left on device"), "{stderr}");
}

#[test]
fn cat_to_a_full_device_fails_with_enospc() {
    require_kvm();
    let input = std::fs::File::open(Workspace::locate().kernel()).unwrap();
    let (status, stderr) = run(&["/bin/cat"], input.into(), dev_full());
    assert_eq!(status, 1, "{stderr}");
    assert!(
        stderr.contains("cat: write error: No space left on device"),
        "{stderr}"
    );
}

/// Runs `program` with stdout into a pipe the test closes after `keep` bytes; returns the
/// VMM's exit code, its stderr, and how long it took after the close.
fn run_into_closed_pipe(program: &[&str], stdin: Stdio, keep: usize) -> (i32, String, Duration) {
    let ws = Workspace::locate();
    let mut args = ws.default_vm_args();
    args.extend(["--timeout", "20", "--"].map(String::from));
    args.extend(program.iter().map(|a| a.to_string()));
    let mut child = Command::new(ws.vmm())
        .args(&args)
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run astra-vmm");
    let mut stdout = child.stdout.take().unwrap();
    let mut head = vec![0u8; keep];
    stdout
        .read_exact(&mut head)
        .expect("the program's first bytes");
    drop(stdout);
    let closed = Instant::now();
    let out = child.wait_with_output().expect("wait for astra-vmm");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.status.code().unwrap_or(-1), stderr, closed.elapsed())
}

#[test]
fn a_program_writing_into_a_closed_pipe_dies_of_sigpipe() {
    require_kvm();
    // guest-std's stdio leaves SIGPIPE at its default: the write kills it, as `yes | head`.
    let (status, stderr, took) =
        run_into_closed_pipe(&["/bin/stdio", "1000000000"], Stdio::null(), 10);
    assert_eq!(status, 128 + 13, "{stderr}");
    assert!(stderr.contains("SIGPIPE"), "{stderr}");
    assert!(
        took < Duration::from_secs(10),
        "took {took:?} after the reader left"
    );
}

#[test]
fn a_std_program_gets_epipe_promptly_instead_of_spinning() {
    require_kvm();
    // Rust's runtime ignores SIGPIPE, so on Linux this cat reports the error and exits 1
    // (`cat < /dev/zero | head -c 10`); it must not spin writing into the void.
    let zero = std::fs::File::open("/dev/zero").unwrap();
    let (status, stderr, took) = run_into_closed_pipe(&["/bin/cat"], zero.into(), 10);
    assert_eq!(status, 1, "{stderr}");
    assert!(stderr.contains("cat: write error: Broken pipe"), "{stderr}");
    assert!(
        took < Duration::from_secs(10),
        "took {took:?} after the reader left"
    );
}

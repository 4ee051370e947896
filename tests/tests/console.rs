//! Where guest output lands, and the diagnostics built on it: a program's standard output
//! is `astra-vmm`'s stdout and nothing else; its standard error, kernel messages, panics,
//! `--strace` and `--stats` are on stderr; output is batched (a few VM exits for 64 KiB).

use std::time::Duration;

use astra_tests::report::exit_count;
use astra_tests::{require_kvm, run_vmm, Outcome, Workspace};

/// Every boot here takes well under a second; anything near this means the VMM hangs.
const WALL_TIMEOUT: Duration = Duration::from_secs(60);

/// Boots the default kernel and rootfs with `args` (a guest timeout included).
fn boot(args: &[&str]) -> Outcome {
    require_kvm();
    let mut all = Workspace::locate().default_vm_args();
    all.extend(["--timeout".to_string(), "20".to_string()]);
    all.extend(args.iter().map(|a| a.to_string()));
    run_vmm(&all, WALL_TIMEOUT)
}

fn expect_status(out: &Outcome, status: i32) {
    assert_eq!(out.status, status, "{}", out.report());
}

#[test]
fn program_stdout_and_stderr_reach_the_vmm_stdout_and_stderr() {
    let out = boot(&["--", "/bin/stdio"]);
    expect_status(&out, 0);
    assert_eq!(out.stdout, "stdio: to stdout\n", "{}", out.report());
    assert_eq!(out.stderr, "stdio: to stderr\n", "{}", out.report());
}

#[test]
fn bulk_output_is_exact_and_batched() {
    let out = boot(&["--stats", "--", "/bin/stdio", "65536"]);
    expect_status(&out, 0);
    assert_eq!(out.stdout.len(), 65536, "{}", out.report());
    let line = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789a\n";
    assert!(out.stdout.lines().all(|l| format!("{l}\n") == line));
    assert_eq!(out.stdout.lines().count(), 1024);
    // 16 writes of 4 KiB: one console-output exit each, plus a handful for the kernel's
    // --stats table; byte-at-a-time output would take 65,536.
    let exits = exit_count(&out.stderr, "io-out 0x503 (console output)");
    assert!(
        (16..=40).contains(&exits),
        "{exits} exits\n{}",
        out.report()
    );
    assert_eq!(exit_count(&out.stderr, "io-out 0x3f8 (16550 console)"), 0);
}

#[test]
fn strace_lines_go_to_stderr_only() {
    let out = boot(&["--strace", "--", "/bin/hello", "x"]);
    expect_status(&out, 0);
    assert_eq!(
        out.stdout,
        "Hello from astra!\nargv: /bin/hello x\n",
        "{}",
        out.report()
    );
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(
        lines,
        [
            r#"[pid 1] write(1, "Hello from astra!\n", 18) = 18"#,
            r#"[pid 1] write(1, "argv: /bin/hello x\n", 19) = 19"#,
            "[pid 1] exit_group(0) = ?",
        ],
        "{}",
        out.report()
    );
}

#[test]
fn strace_shows_writes_to_stderr_after_their_output() {
    let out = boot(&["--strace", "--", "/bin/stdio"]);
    expect_status(&out, 0);
    assert!(
        out.stderr
            .contains(r#"[pid 1] write(2, "stdio: to stderr\n", 17) = 17"#),
        "{}",
        out.report()
    );
    // The program's own stderr line comes before the trace line of the write that made it.
    let own = out.stderr.find("stdio: to stderr\n[pid 1] write(2,");
    assert!(own.is_some(), "{}", out.report());
}

#[test]
fn stats_print_the_syscall_and_vm_exit_tables() {
    let out = boot(&["--stats", "--", "/bin/hello"]);
    expect_status(&out, 0);
    assert_eq!(out.stdout, "Hello from astra!\nargv: /bin/hello\n");
    let stderr = &out.stderr;
    let row = |name: &str| {
        stderr
            .lines()
            .find(|l| {
                let words: Vec<&str> = l.split_whitespace().collect();
                words.len() >= 5 && words.last() == Some(&name)
            })
            .unwrap_or_else(|| panic!("no `{name}` row\n{}", out.report()))
            .split_whitespace()
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    assert!(
        stderr.contains("% time     seconds  usecs/call     calls    errors syscall\n"),
        "{}",
        out.report()
    );
    // % time, seconds, usecs/call, calls, [errors,] name.
    assert_eq!(row("write")[3], "2", "{}", out.report());
    assert_eq!(row("exit_group")[3], "1", "{}", out.report());
    assert_eq!(row("total")[3], "3", "{}", out.report());
    // The VMM's table comes after the kernel's, with at least the exit-device write.
    let vmm = stderr
        .find("astra-vmm: VM exits: ")
        .unwrap_or_else(|| panic!("no VM-exit table\n{}", out.report()));
    assert!(stderr.find("% time").unwrap() < vmm);
    assert_eq!(exit_count(stderr, "io-out 0x501 (exit)"), 1);
    assert!(exit_count(stderr, "io-out 0x503 (console output)") >= 2);
}

#[test]
fn fault_reports_are_on_stderr() {
    let out = boot(&["--", "/bin/fault"]);
    expect_status(&out, 139);
    assert_eq!(
        out.stdout,
        "fault: writing to address 0x0\n",
        "{}",
        out.report()
    );
    assert!(
        out.stderr
            .starts_with("astra: /bin/fault killed by SIGSEGV: page fault at 0x0"),
        "{}",
        out.report()
    );
}

#[test]
fn kernel_panics_are_on_stderr() {
    let out = boot(&["--cmdline", "astra.panic", "--", "/bin/true"]);
    expect_status(&out, astra_tests::exit::KERNEL_PANIC);
    assert_eq!(out.stdout, "", "{}", out.report());
    assert!(
        out.stderr
            .contains("astra: kernel panic: panicked at guest-kernel/src/main.rs"),
        "{}",
        out.report()
    );
    assert!(out
        .stderr
        .contains("panic requested on the kernel command line (astra.panic)"));
    assert!(out.stderr.ends_with("astra-vmm: guest kernel panicked\n"));
}

#[test]
fn kernel_messages_are_on_stderr() {
    let out = boot(&["--cmdline", "no.such.param", "--", "/bin/true"]);
    expect_status(&out, 0);
    assert_eq!(out.stdout, "");
    assert_eq!(
        out.stderr,
        "astra: ignoring unknown kernel parameter 'no.such.param'\n",
        "{}",
        out.report()
    );
}

#[test]
fn a_timed_out_run_still_prints_its_vm_exit_table() {
    let out = boot(&["--timeout", "0.5", "--stats", "--", "/bin/spin"]);
    expect_status(&out, astra_tests::exit::TIMEOUT);
    assert!(
        out.stderr.contains("astra-vmm: VM exits: "),
        "{}",
        out.report()
    );
    assert!(out.stderr.contains("timed out"), "{}", out.report());
    assert_eq!(out.stdout, "");
}

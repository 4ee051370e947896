//! Running your own program: what reaches it (argv with empty strings and spaces, large
//! argument lists, the environment from `-e` and `--env-host`, the working directory).

use std::os::unix::process::CommandExt;
use std::time::Duration;

use astra_tests::{exit, run_vmm, Outcome, Workspace};

const WALL_TIMEOUT: Duration = Duration::from_secs(60);

/// `astra-vmm --kernel K --rootfs R --timeout 20 <args>`.
fn astra(ws: &Workspace, args: &[&str]) -> Outcome {
    let mut all = ws.default_vm_args();
    all.extend(["--timeout".into(), "20".into()]);
    all.extend(args.iter().map(|a| a.to_string()));
    run_vmm(&all, WALL_TIMEOUT)
}

fn expect_ok(outcome: &Outcome) {
    assert_eq!(outcome.status, 0, "{}", outcome.report());
}

#[test]
fn empty_arguments_and_spaces_reach_the_program_intact() {
    let ws = Workspace::locate();
    let out = astra(
        &ws,
        &[
            "--",
            "/bin/busybox",
            "sh",
            "-c",
            r#"echo "$#"; for a in "$@"; do printf '[%s]' "$a"; done; echo"#,
            "sh",
            "",
            "a b",
            "",
            "  two  spaces ",
            "",
        ],
    );
    expect_ok(&out);
    assert_eq!(
        out.stdout,
        "5\n[][a b][][  two  spaces ][]\n",
        "{}",
        out.report()
    );
}

#[test]
fn without_double_dash_empty_arguments_are_kept_too() {
    let ws = Workspace::locate();
    let out = astra(&ws, &["/bin/busybox", "sh", "-c", "echo $#", "sh", "", ""]);
    expect_ok(&out);
    assert_eq!(out.stdout, "2\n", "{}", out.report());
}

#[test]
fn large_argument_lists_reach_the_program() {
    // 128 KiB - 1 in one argument (Linux's MAX_ARG_STRLEN with the NUL) and 300 KiB over
    // 3000 arguments: far beyond the old 8 KiB area.
    let ws = Workspace::locate();
    let long = "L".repeat(128 * 1024 - 1);
    let many: Vec<String> = (0..3000).map(|i| format!("{i:099}")).collect();
    let mut args = vec![
        "--",
        "/bin/busybox",
        "sh",
        "-c",
        r#"echo "${#1} $# ${2} ${3001}""#,
        "sh",
        &long,
    ];
    args.extend(many.iter().map(String::as_str));
    let out = astra(&ws, &args);
    expect_ok(&out);
    assert_eq!(
        out.stdout,
        format!("{} 3001 {} {}\n", long.len(), many[0], many[2999]),
        "{}",
        out.report()
    );
}

#[test]
fn too_large_argument_lists_are_refused_before_the_guest_runs() {
    let ws = Workspace::locate();
    // (One string over Linux's MAX_ARG_STRLEN cannot even reach astra-vmm: the host's
    // execve refuses it; the VMM's own check of it is a unit test.)
    let piece = "y".repeat(100 * 1024);
    let mut args = vec!["--", "/bin/true"];
    args.extend(std::iter::repeat_n(piece.as_str(), 10));
    let out = astra(&ws, &args);
    assert_eq!(out.status, exit::USAGE, "{}", out.report());
    assert!(
        out.stderr.contains("at most 983040 fit"),
        "{}",
        out.report()
    );
}

#[test]
fn default_environment_and_env_flags() {
    let ws = Workspace::locate();
    let out = astra(&ws, &["--", "/bin/busybox", "env"]);
    expect_ok(&out);
    assert_eq!(
        out.stdout,
        "PATH=/bin\nHOME=/\nTERM=dumb\n",
        "{}",
        out.report()
    );
    let out = astra(
        &ws,
        &[
            "-e",
            "A=1",
            "--env",
            "SPACED=a b  c",
            "-e",
            "EMPTY=",
            "-e",
            "HOME=/root",
            "--",
            "/bin/busybox",
            "env",
        ],
    );
    expect_ok(&out);
    assert_eq!(
        out.stdout,
        "PATH=/bin\nHOME=/root\nTERM=dumb\nA=1\nSPACED=a b  c\nEMPTY=\n",
        "{}",
        out.report()
    );
}

#[test]
fn env_host_passes_the_host_environment() {
    let ws = Workspace::locate();
    let mut args = ws.default_vm_args();
    args.extend(
        [
            "--timeout",
            "20",
            "--env-host",
            "-e",
            "ASTRA_B=set",
            "-e",
            "ASTRA_C",
        ]
        .map(String::from),
    );
    args.extend(["--", "/bin/busybox", "env"].map(String::from));
    let vmm = ws.vmm();
    let out = std::process::Command::new(&vmm)
        .args(&args)
        .env_clear()
        .env("ASTRA_A", "from host")
        .env("ASTRA_C", "copied")
        .output()
        .expect("run astra-vmm");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert_eq!(stdout, "ASTRA_A=from host\nASTRA_C=copied\nASTRA_B=set\n");
}

#[test]
fn cwd_sets_where_the_program_starts() {
    let ws = Workspace::locate();
    let out = astra(
        &ws,
        &[
            "--cwd",
            "/etc/astra/dir",
            "--",
            "/bin/busybox",
            "sh",
            "-c",
            "pwd; cat a.txt; cd sub && pwd",
        ],
    );
    expect_ok(&out);
    assert_eq!(
        out.stdout,
        "/etc/astra/dir\nalpha\n/etc/astra/dir/sub\n",
        "{}",
        out.report()
    );
    let out = astra(&ws, &["--cwd", "/no/such/dir", "--", "/bin/busybox", "pwd"]);
    assert_eq!(out.status, 127, "{}", out.report());
    assert!(
        out.stderr
            .contains("cannot change directory to '/no/such/dir': No such file or directory"),
        "{}",
        out.report()
    );
    let out = astra(&ws, &["--cwd", "relative", "--", "/bin/busybox", "pwd"]);
    assert_eq!(out.status, exit::USAGE, "{}", out.report());
    assert!(
        out.stderr.contains("must be an absolute path"),
        "{}",
        out.report()
    );
}

#[test]
fn the_built_kernel_is_the_default_and_no_double_dash_is_needed() {
    let ws = Workspace::locate();
    let args = [
        "--rootfs".to_string(),
        ws.rootfs().display().to_string(),
        "--timeout".into(),
        "20".into(),
        "/bin/hello".into(),
        "one".into(),
        "--strace".into(),
    ];
    let out = run_vmm(&args, WALL_TIMEOUT);
    expect_ok(&out);
    assert!(
        out.stdout.contains("argv: /bin/hello one --strace"),
        "{}",
        out.report()
    );
}

#[test]
fn strace_file_keeps_the_trace_out_of_stderr() {
    let ws = Workspace::locate();
    let dir = astra_tests::tempdir::TempDir::new("trace");
    let trace = dir.path().join("trace.txt");
    let trace_arg = trace.display().to_string();
    let out = astra(
        &ws,
        &[
            "--strace-file",
            &trace_arg,
            "--",
            "/bin/busybox",
            "sh",
            "-c",
            "echo out; echo err >&2",
        ],
    );
    expect_ok(&out);
    assert_eq!(out.stdout, "out\n", "{}", out.report());
    assert_eq!(out.stderr, "err\n", "{}", out.report());
    let text = std::fs::read_to_string(&trace).expect("the trace file");
    assert!(text.contains(r#"write(1, "out\n", 4) = 4"#), "{text}");
    // (busybox writes "err" through fd 1 after a dup2 of fd 2 onto it.)
    assert!(text.contains(r#", "err\n", 4) = 4"#), "{text}");
    assert!(text.contains("exit_group(0) = ?"), "{text}");
    // -o is the short form, as in strace; a file that cannot be created is a usage error.
    let out = astra(&ws, &["-o", "/nonexistent-dir/t.txt", "--", "/bin/true"]);
    assert_eq!(out.status, exit::USAGE, "{}", out.report());
    assert!(
        out.stderr.contains("/nonexistent-dir/t.txt"),
        "{}",
        out.report()
    );
}

#[test]
fn stats_json_describes_the_run() {
    let ws = Workspace::locate();
    let dir = astra_tests::tempdir::TempDir::new("stats");
    let json = dir.path().join("stats.json");
    let json_arg = json.display().to_string();
    let out = astra(&ws, &["--stats-json", &json_arg, "--", "/bin/hello", "x"]);
    expect_ok(&out);
    // Without --stats, nothing on stderr.
    assert_eq!(out.stderr, "", "{}", out.report());
    let text = std::fs::read_to_string(&json).expect("the JSON file");
    for needle in [
        r#"{"outcome":"program","exit_code":0,"#,
        r#""vm_exits":{"total":"#,
        r#""kind":"io-out 0x501 (exit)","exits":1,"#,
        r#""syscalls":[{"name":"write","calls":2,"errors":0,"#,
        r#"{"name":"total","calls":3,"#,
    ] {
        assert!(text.contains(needle), "no `{needle}` in {text}");
    }
    assert!(text.ends_with("}\n") && text.lines().count() == 1, "{text}");
    // A timeout still writes it, with the calls counted so far (read from the stopped
    // guest: the kernel never got to print them).
    let out = astra(
        &ws,
        &[
            "--timeout",
            "0.5",
            "--stats-json",
            &json_arg,
            "--",
            "/bin/busybox",
            "sh",
            "-c",
            "while :; do echo x > /dev/null; done",
        ],
    );
    assert_eq!(out.status, exit::TIMEOUT, "{}", out.report());
    let text = std::fs::read_to_string(&json).expect("the JSON file");
    assert!(
        text.starts_with(r#"{"outcome":"timeout","exit_code":253,"#),
        "{text}"
    );
    assert!(text.contains(r#""syscalls":[{"name":"#), "{text}");
    assert!(text.contains(r#"{"name":"dup2","calls":"#), "{text}");
}

/// Starts astra-vmm on `busybox sh -c script` with `extra` options, sends it `signals`
/// (kill names) 500 ms apart, the first after `delay`, and returns its output.
fn signal_a_run(extra: &[&str], script: &str, signals: &[&str]) -> std::process::Output {
    let ws = Workspace::locate();
    let mut child = std::process::Command::new(ws.vmm())
        .args(ws.default_vm_args())
        .args(["--timeout", "30"])
        .args(extra)
        .args(["--", "/bin/busybox", "sh", "-c", script])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start astra-vmm");
    let mut stdout = std::io::BufReader::new(child.stdout.take().expect("piped stdout"));
    // A script that sets traps says `ready` after them: signal it only then.
    if script.contains("echo ready") {
        let mut first = String::new();
        std::io::BufRead::read_line(&mut stdout, &mut first).expect("read the first line");
        assert_eq!(first, "ready\n");
    }
    for name in signals {
        std::thread::sleep(Duration::from_millis(500));
        let status = std::process::Command::new("kill")
            .args([format!("-{name}"), child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success());
    }
    let mut rest = Vec::new();
    std::io::Read::read_to_end(&mut stdout, &mut rest).expect("read stdout");
    let mut out = child.wait_with_output().expect("wait for astra-vmm");
    out.stdout = rest;
    out
}

#[test]
fn sigterm_stops_the_guest_and_still_prints_stats() {
    let out = signal_a_run(
        &["--stats"],
        "while :; do echo x > /dev/null; done",
        &["TERM"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(128 + libc_sig::TERM), "{stderr}");
    assert!(stderr.contains("astra-vmm: VM exits:"), "{stderr}");
    // The kernel's table too, read from the stopped guest.
    assert!(stderr.contains("% time     seconds"), "{stderr}");
    assert!(stderr.contains(" dup2\n"), "{stderr}");
    assert!(
        stderr.contains(&format!("stopped the guest on signal {}", libc_sig::TERM)),
        "{stderr}"
    );
}

#[test]
fn ctrl_c_kills_a_guest_program_that_does_not_handle_it() {
    // As on Linux: the shell dies of SIGINT (status 130), and its run ends normally, with
    // the kernel's own statistics.
    let out = signal_a_run(
        &["--stats"],
        "while :; do echo x > /dev/null; done",
        &["INT"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(128 + libc_sig::INT), "{stderr}");
    assert!(stderr.contains(" dup2\n"), "{stderr}");
    assert!(!stderr.contains("stopped the guest"), "{stderr}");
    // SIGQUIT (Ctrl-\\): a shell ignores it, as on Linux, but its foreground child dies of
    // it (131), and the shell reports that.
    let out = signal_a_run(&[], "sleep 10; echo status $?", &["QUIT"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert_eq!(stdout, "status 131\n");
}

#[test]
fn ctrl_c_reaches_a_guest_handler_and_is_ignored_when_the_guest_ignores_it() {
    let out = signal_a_run(
        &[],
        "trap 'echo caught INT; exit 7' INT; echo ready; while :; do sleep 0.05; done",
        &["INT"],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(7), "{stdout}");
    assert_eq!(stdout, "caught INT\n");

    // Ignored, twice (each taken before the next): the program runs to its end.
    let out = signal_a_run(
        &[],
        "trap '' INT; echo ready; i=0; while [ $i -lt 30 ]; do sleep 0.05; i=$((i+1)); done; echo survived",
        &["INT", "INT"],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(stdout, "survived\n");
}

/// The state letter of process `pid` (`T`: stopped), from /proc.
fn process_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit(") ").next()?.chars().next()
}

#[test]
fn ctrl_z_without_guest_job_control_suspends_astra_vmm_until_sigcont() {
    let ws = Workspace::locate();
    // In a process group of its own whose parent (this test) is in another: as a shell
    // runs a job. Linux discards the stop of SIGTSTP in an orphaned group (nobody could
    // continue it), which the group of a test run from make or CI may well be.
    let mut child = std::process::Command::new(ws.vmm())
        .process_group(0)
        .args(ws.default_vm_args())
        .args(["--timeout", "30", "--", "/bin/busybox", "sh", "-c"])
        .arg("echo started; sleep 1; echo done")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start astra-vmm");
    let pid = child.id();
    // Once the program runs (a signal before that waits for it, but this checks the run).
    let mut stdout = std::io::BufReader::new(child.stdout.take().expect("piped stdout"));
    let mut first = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut first).expect("read the first line");
    assert_eq!(first, "started\n");
    let kill = |sig: &str| {
        let status = std::process::Command::new("kill")
            .args([format!("-{sig}"), pid.to_string()])
            .status()
            .expect("run kill");
        assert!(status.success());
    };
    kill("TSTP");
    // The guest hands Ctrl-Z back (its foreground group is init's): the VMM stops.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while process_state(pid) != Some('T') {
        assert!(
            std::time::Instant::now() < deadline,
            "astra-vmm did not stop: state {:?}",
            process_state(pid)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Stopped well past the guest's own sleep, it still finishes normally once continued.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(process_state(pid), Some('T'));
    kill("CONT");
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).expect("read the rest");
    let out = child.wait_with_output().expect("wait for astra-vmm");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(rest, "done\n");
}

/// Signal numbers (x86-64 Linux).
mod libc_sig {
    pub const INT: i32 = 2;
    pub const TERM: i32 = 15;
}

#[test]
fn environment_variables_give_the_common_options_defaults() {
    let ws = Workspace::locate();
    let run = |envs: &[(&str, String)], args: &[&str]| {
        let mut command = std::process::Command::new(ws.vmm());
        command.args(args);
        for (key, value) in envs {
            command.env(key, value);
        }
        command.output().expect("run astra-vmm")
    };
    let rootfs = ws.rootfs().display().to_string();
    let kernel = ws.kernel().display().to_string();
    let env = [
        ("ASTRA_KERNEL", kernel),
        ("ASTRA_ROOTFS", rootfs),
        ("ASTRA_TIMEOUT", "0.3".to_string()),
    ];
    let out = run(&env, &["/bin/hello"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("Hello from astra!"));
    let out = run(&env, &["/bin/spin"]);
    assert_eq!(out.status.code(), Some(exit::TIMEOUT));
    // A flag wins over the environment.
    let out = run(&env, &["--timeout", "20", "/bin/true"]);
    assert_eq!(out.status.code(), Some(0));
    // Empty means unset (the default kernel, 256M, no timeout), not an invalid value.
    let empty = [
        ("ASTRA_KERNEL", String::new()),
        ("ASTRA_ROOTFS", ws.rootfs().display().to_string()),
        ("ASTRA_MEM", String::new()),
        ("ASTRA_TIMEOUT", String::new()),
    ];
    let out = run(&empty, &["/bin/hello"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

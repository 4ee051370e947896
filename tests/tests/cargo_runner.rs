//! astra as a cargo runner (issue 13): `cargo test --target x86_64-unknown-linux-musl` and
//! `cargo run` of the sample crate `tests/runner-sample/` with
//! `CARGO_TARGET_X86_64_UNKNOWN_LINUX_MUSL_RUNNER` set to one astra-vmm command line that
//! shares the workspace at the same path (`--volume ROOT:ROOT`), so the test binary, its
//! fixtures (found through `env!("CARGO_MANIFEST_DIR")`) and the target directory are
//! where cargo put them. The tests pass as on the host; a failing test fails the run with
//! libtest's output.
//! `--env-host` passes the environment cargo sets at run time to the program.

use std::path::Path;
use std::process::{Command, Output};

use astra_tests::{require_kvm, Workspace};

const MUSL: &str = "x86_64-unknown-linux-musl";
const RUN_TIME_ENV_TEST: &str = "sees_the_variables_cargo_sets_at_run_time";

/// The runner line, as the README documents it (with this build's paths).
fn runner_line(ws: &Workspace) -> String {
    let root = ws.root.display();
    format!(
        "{} --kernel {} --rootfs {} --timeout 120 --log-level info --volume {root}:{root} --env-host --",
        ws.vmm().display(),
        ws.kernel().display(),
        ws.rootfs().display(),
    )
}

/// `cargo ARGS --manifest-path ... --target MUSL -- PROGRAM_ARGS` with the runner set.
fn cargo(ws: &Workspace, args: &[&str], program_args: &[&str]) -> Output {
    require_kvm();
    cargo_with_runner(ws, args, program_args, Some(&runner_line(ws)))
}

/// The same without a runner when `runner` is `None` (the musl binaries run on the host).
fn cargo_with_runner(
    ws: &Workspace,
    args: &[&str],
    program_args: &[&str],
    runner: Option<&str>,
) -> Output {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    assert!(
        !ws.root.display().to_string().contains(' '),
        "cargo splits the runner on spaces"
    );
    let mut cmd = Command::new(cargo);
    match runner {
        Some(line) => cmd.env("CARGO_TARGET_X86_64_UNKNOWN_LINUX_MUSL_RUNNER", line),
        None => cmd.env_remove("CARGO_TARGET_X86_64_UNKNOWN_LINUX_MUSL_RUNNER"),
    };
    let out = cmd
        .args(args)
        .arg("--manifest-path")
        .arg(ws.root.join("tests/runner-sample/Cargo.toml"))
        .arg("--target")
        .arg(MUSL)
        .arg("--")
        .args(program_args)
        .env("CARGO_TARGET_DIR", ws.root.join("target/runner-sample"))
        .current_dir(ws.root.join("tests/runner-sample"))
        .output()
        .expect("cargo runs");
    out
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn cargo_test_passes_through_astra_and_a_failing_test_fails_the_run() {
    let ws = Workspace::locate();
    let out = cargo(&ws, &["test"], &[]);
    let (stdout, stderr) = text(&out);
    let report = format!("stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(out.status.success(), "{report}");
    // The unit tests, then tests/runner.rs: fixture, build-time variables, temp file, threads.
    assert!(
        stdout.contains("test result: ok. 2 passed; 0 failed"),
        "{report}"
    );
    assert!(
        stdout
            .contains("test result: ok. 7 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out"),
        "{report}"
    );
    for name in [
        "reads_a_fixture_relative_to_the_manifest_dir",
        "sees_the_variables_cargo_sets_at_build_time",
        "writes_and_reads_back_a_temporary_file",
        "spawns_threads",
        "spawns_a_process",
        RUN_TIME_ENV_TEST,
    ] {
        assert!(
            stdout.contains(&format!("test {name} ... ok")),
            "{name}: {report}"
        );
    }
    // They ran in astra: the VMM's own log line, once per test binary.
    let boots = stderr.matches("kernel and rootfs loaded").count();
    assert!(boots >= 3, "{boots} boots: {report}");
    assert!(stderr.contains("Running unittests src/lib.rs"), "{report}");

    let out = cargo(&ws, &["test", "--features", "fail"], &[]);
    let (stdout, stderr) = text(&out);
    let report = format!("stdout:\n{stdout}\nstderr:\n{stderr}");
    assert_eq!(out.status.code(), Some(101), "{report}");
    assert!(
        stdout.contains("test tests::deliberately_fails ... FAILED"),
        "{report}"
    );
    assert!(stdout.contains("this test fails on purpose"), "{report}");
    assert!(
        stdout.contains("test result: FAILED. 2 passed; 1 failed"),
        "{report}"
    );
    assert!(
        stderr.contains("error: test failed, to rerun pass `--lib`"),
        "{report}"
    );
}

#[test]
fn the_same_tests_pass_on_the_host_with_the_run_time_variables() {
    let ws = Workspace::locate();
    let out = cargo_with_runner(&ws, &["test"], &[], None);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(
        stdout.contains("test result: ok. 7 passed; 0 failed"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("test {RUN_TIME_ENV_TEST} ... ok")),
        "{stdout}"
    );
}

#[test]
fn cargo_run_goes_through_the_runner_with_arguments() {
    let ws = Workspace::locate();
    let out = cargo(&ws, &["run", "--bin", "sample"], &["one", "two three"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert_eq!(stdout, "sample: 3 words\n", "{stderr}");
    assert!(stderr.contains("kernel and rootfs loaded"), "{stderr}");
    let out = cargo(&ws, &["run", "--bin", "sample"], &[]);
    let (stdout, stderr) = text(&out);
    assert_eq!(stdout, "sample: 4 words\n", "the fixture: {stderr}");
    assert!(Path::new(&ws.root)
        .join("tests/runner-sample/tests/fixtures/words.txt")
        .is_file());
}

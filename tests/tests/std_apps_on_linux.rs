//! The reference tier: every scenario of `tests/scenarios.txt` whose program is a Linux
//! static-pie (the std programs of `images/std-apps`) or Debian's busybox-static must also pass on the host's Linux,
//! run from the same `build/fs.tar` in a chroot made like astra's root (the image, read-only,
//! under a tmpfs overlay; tmpfs on `/tmp` and `/run`) with astra's environment. So the
//! scenarios' expectations are Linux behaviour, not astra's guesses, and a scenario that
//! fails on astra but passes here is an astra bug.
//!
//! Needs root (a private mount namespace, a read-only bind mount, overlay and tmpfs mounts,
//! chroot); without it the test fails and says so, it never skips. Does not need KVM.

use std::time::Duration;

use astra_tests::linux::{
    chroot_command_in, extract, is_static_pie, scenario_env_and_cwd, scenario_program,
};
use astra_tests::scenario::{self, Scenario};
use astra_tests::tempdir::TempDir;
use astra_tests::{try_run, Workspace};

/// The std programs of the default image (`images/std-apps`): stock musl builds.
const STD_PROGRAMS: [&str; 19] = [
    "/bin/fscopy",
    "/bin/shmap",
    "/bin/locks",
    "/bin/procs",
    "/bin/sigs",
    "/bin/rtsigs",
    "/bin/pipesz",
    "/init",
    "/bin/stdcheck",
    "/bin/fscheck",
    "/bin/cat",
    "/bin/panic",
    "/bin/segv",
    "/bin/stackoverflow",
    "/bin/badptr",
    "/bin/bigalloc",
    "/bin/readfile",
    "/bin/hello-std",
    "/bin/isatty",
];

/// Wall timeout of one program run on the host.
const WALL_TIMEOUT: Duration = Duration::from_secs(60);
/// The std-program scenarios there must be at least (guards against silently running none).
const MIN_STD_SCENARIOS: usize = 10;

#[test]
fn std_scenarios_pass_on_linux() {
    let ws = Workspace::locate();
    let rootfs = ws.rootfs();
    let scenarios = scenario::load(&ws.scenarios_file()).unwrap_or_else(|err| panic!("{err}"));
    let base = TempDir::new("linux-ref");
    let root = base.path().join("root");
    let layers = base.path().join("layers");
    for dir in [&root, &layers] {
        std::fs::create_dir(dir).unwrap_or_else(|err| panic!("{}: {err}", dir.display()));
    }
    extract(&rootfs, &root).unwrap_or_else(|err| panic!("{err}"));

    let mut ran = Vec::new();
    let mut failures = Vec::new();
    for scenario in &scenarios {
        let Some((program, args)) = scenario_program(&scenario.args) else {
            continue;
        };
        let host_path = root.join(program.trim_start_matches('/'));
        let Ok(bytes) = std::fs::read(&host_path) else {
            continue;
        };
        // The std programs, and Debian's busybox-static (a static ET_EXEC).
        if !is_static_pie(&bytes) && program != "/bin/busybox" {
            continue;
        }
        // Signalled from the host: the VMM's part (tests/tests/run_own_program.rs checks
        // the same shell behaviour against Linux's).
        if scenario.signal.is_some() {
            continue;
        }
        // A --cwd the root lacks: astra's own message and status, not Linux's.
        let (_, cwd) = scenario_env_and_cwd(&scenario.args);
        if cwd.is_some() && scenario.expected_exit != 0 {
            continue;
        }
        ran.push(scenario.name.clone());
        match run_on_linux(&root, &layers, scenario, &program, &args) {
            Ok(()) => println!("linux {} ... ok", scenario.name),
            Err(report) => {
                println!("linux {} ... FAILED", scenario.name);
                failures.push(report);
            }
        }
    }
    println!(
        "std scenarios on Linux: {} run ({}), {} failed",
        ran.len(),
        ran.join(" "),
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} std scenario(s) fail on Linux itself, so their expectations are wrong:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
    assert!(
        ran.len() >= MIN_STD_SCENARIOS,
        "only {} std scenarios found in {} (expected at least {MIN_STD_SCENARIOS}): are the \
         std programs in build/fs.tar? Run `make`.",
        ran.len(),
        rootfs.display()
    );
}

/// What stock `cargo build --target x86_64-unknown-linux-musl` makes is a static-pie: an
/// `ET_DYN` executable without an interpreter. The image must carry exactly that.
#[test]
fn std_programs_in_the_image_are_static_pie() {
    let ws = Workspace::locate();
    let root = TempDir::new("linux-static-pie");
    extract(&ws.rootfs(), root.path()).unwrap_or_else(|err| panic!("{err}"));
    for program in STD_PROGRAMS {
        let path = root.path().join(program.trim_start_matches('/'));
        let bytes = std::fs::read(&path)
            .unwrap_or_else(|err| panic!("{program} is not in build/fs.tar: {err}"));
        assert!(
            is_static_pie(&bytes),
            "{program} in build/fs.tar is not a static-pie (ET_DYN without PT_INTERP)"
        );
    }
}

fn run_on_linux(
    root: &std::path::Path,
    layers: &std::path::Path,
    scenario: &Scenario,
    program: &str,
    args: &[String],
) -> Result<(), String> {
    let header = format!(
        "=== scenario `{}` (tests/scenarios.txt line {}) on Linux ===",
        scenario.name, scenario.line
    );
    let (env, cwd) = scenario_env_and_cwd(&scenario.args);
    let cwd = cwd.unwrap_or_else(|| "/".into());
    let (unshare, full_args) = chroot_command_in(root, layers, &env, &cwd, program, args);
    let outcome = try_run(&unshare, &full_args, WALL_TIMEOUT)
        .map_err(|err| format!("{header}\n{err}\n{}", needs_root_hint()))?;
    let mut problems = Vec::new();
    if outcome.status != scenario.expected_exit {
        problems.push(format!(
            "exit code: expected {}, got {}",
            scenario.expected_exit, outcome.status
        ));
    }
    if let Some(expected) = &scenario.expected_output {
        if !expected.found_in(&outcome.stdout, &outcome.stderr) {
            problems.push(format!(
                "output: `{}` does not appear on {:?}",
                expected.text, expected.stream
            ));
        }
    }
    if outcome.stderr.contains("unshare:") || outcome.stderr.contains("mount:") {
        problems.push(needs_root_hint());
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{header}\n{}\n{}",
            problems.join("\n"),
            outcome.report()
        ))
    }
}

fn needs_root_hint() -> String {
    "(this test runs the std programs in a read-only chroot: it needs root, `unshare`, \
     `mount` and `chroot`)"
        .to_string()
}

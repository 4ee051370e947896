//! Boots every scenario of `tests/scenarios.txt` on this machine's KVM and checks exit code
//! and output. All scenarios run even when some fail; the failures are reported together.
//!
//! Run one scenario with `ASTRA_SCENARIO=name cargo test --release -p astra-tests --test
//! scenarios -- --nocapture`.

use std::time::Duration;

use astra_tests::scenario::{self, Scenario};
use astra_tests::{exit, require_kvm, try_run_signalled, Input, Workspace};

/// Guest timeout added to scenarios that set none, so a hung guest ends as exit 253.
const DEFAULT_GUEST_TIMEOUT_SECS: u64 = 20;
/// Host wall time allowed beyond the guest timeout before the VMM itself counts as hung.
const WALL_MARGIN_SECS: u64 = 15;

#[test]
fn all_scenarios_pass() {
    require_kvm();
    let ws = Workspace::locate();
    let path = ws.scenarios_file();
    let scenarios = scenario::load(&path).unwrap_or_else(|err| panic!("{err}"));
    assert!(
        !scenarios.is_empty(),
        "{} defines no scenario",
        path.display()
    );

    let only = std::env::var("ASTRA_SCENARIO").ok();
    let selected: Vec<&Scenario> = scenarios
        .iter()
        .filter(|s| only.as_deref().is_none_or(|name| s.name == name))
        .collect();
    assert!(
        !selected.is_empty(),
        "ASTRA_SCENARIO={} matches no scenario in {}",
        only.unwrap_or_default(),
        path.display()
    );

    let vmm = ws.vmm();
    let mut failures = Vec::new();
    for scenario in &selected {
        match run_scenario(&ws, &vmm, scenario) {
            Ok(ms) => println!("scenario {} ... ok ({ms:.1} ms)", scenario.name),
            Err(report) => {
                println!("scenario {} ... FAILED", scenario.name);
                failures.push(report);
            }
        }
    }
    println!(
        "scenarios: {} passed, {} failed",
        selected.len() - failures.len(),
        failures.len()
    );
    if !failures.is_empty() {
        panic!(
            "{} of {} scenarios failed:\n\n{}",
            failures.len(),
            selected.len(),
            failures.join("\n\n")
        );
    }
}

/// Runs one scenario: `Ok(elapsed ms)` or a failure report.
fn run_scenario(ws: &Workspace, vmm: &std::path::Path, scenario: &Scenario) -> Result<f64, String> {
    let args = scenario::with_default_timeout(&scenario.args, DEFAULT_GUEST_TIMEOUT_SECS);
    let guest_timeout_secs =
        scenario::guest_timeout_secs(&args).unwrap_or(DEFAULT_GUEST_TIMEOUT_SECS as f64);
    let wall_timeout = Duration::from_secs_f64(guest_timeout_secs.min(3600.0))
        + Duration::from_secs(WALL_MARGIN_SECS);
    let mut full_args = ws.default_vm_args();
    full_args.extend(args);
    let header = format!(
        "=== scenario `{}` (tests/scenarios.txt line {}) ===",
        scenario.name, scenario.line
    );
    let signal = scenario
        .signal
        .as_ref()
        .map(|s| (s.number, Duration::from_secs_f64(s.after_secs)));
    let outcome = try_run_signalled(vmm, &full_args, Input::Null, signal, wall_timeout)
        .map_err(|err| format!("{header}\n{err}"))?;

    let mut problems = Vec::new();
    if outcome.status != scenario.expected_exit {
        problems.push(format!(
            "exit code: expected {}, got {}",
            exit::describe(scenario.expected_exit),
            match outcome.signal {
                Some(sig) => format!("astra-vmm killed by host signal {sig}"),
                None => exit::describe(outcome.status),
            }
        ));
    }
    if let Some(expected) = &scenario.expected_output {
        if !expected.found_in(&outcome.stdout, &outcome.stderr) {
            problems.push(format!(
                "output: `{}` does not appear in {}",
                expected.text,
                expected.searched()
            ));
        }
    }
    if problems.is_empty() {
        Ok(outcome.elapsed.as_secs_f64() * 1e3)
    } else {
        Err(format!(
            "{header}\n{}\n{}",
            problems.join("\n"),
            outcome.report()
        ))
    }
}

//! Kernel isolation on PVM beyond the default configuration (issue 7). By default the PVM
//! host switches between a process's kernel and user-mode page tables itself and user mode
//! maps no kernel page (the `selftest` and `kprobe` scenarios check that on every
//! platform). `astra.pvm_features=0` turns those host features off, so the entry code
//! switches tables and user-mode tables map the entry pages: these tests check that this
//! fallback still works and still exposes nothing writable but the entry trampoline. On a
//! host that is not PVM the parameter is ignored, which the tests check instead.

use std::time::Duration;

use astra_tests::{require_kvm, run_vmm, Outcome, Workspace};

fn run(cmdline: &str, program: &str) -> Outcome {
    let ws = Workspace::locate();
    let args = [
        "--kernel".to_string(),
        ws.kernel().display().to_string(),
        "--rootfs".into(),
        ws.rootfs().display().to_string(),
        "--timeout".into(),
        "60".into(),
        "--cmdline".into(),
        cmdline.into(),
        "--".into(),
        program.into(),
    ];
    run_vmm(&args, Duration::from_secs(90))
}

/// True if the kernel took `astra.pvm_features=0` (PVM), false if it ignored it.
fn on_pvm(outcome: &Outcome) -> bool {
    if outcome
        .stderr
        .contains("astra: PVM features 0x0 asked, 0x0 in force")
    {
        return true;
    }
    assert!(
        outcome
            .stderr
            .contains("astra: astra.pvm_features ignored: not on PVM"),
        "{}",
        outcome.report()
    );
    false
}

#[test]
fn self_tests_pass_with_the_entry_code_switching_tables() {
    require_kvm();
    let outcome = run("astra.test astra.pvm_features=0", "/bin/true");
    on_pvm(&outcome);
    assert_eq!(outcome.status, 0, "{}", outcome.report());
    assert!(
        outcome.stderr.contains("self-tests passed"),
        "{}",
        outcome.report()
    );
}

#[test]
fn without_the_host_features_only_the_trampoline_is_writable() {
    require_kvm();
    let outcome = run("astra.pvm_features=0", "/bin/kprobe");
    if on_pvm(&outcome) {
        // The entry text and data are readable, the trampoline (one page) writable.
        assert_eq!(outcome.status, 2, "{}", outcome.report());
        assert!(
            outcome
                .stdout
                .contains("kprobe: no kernel page but at most the entry trampoline is writable"),
            "{}",
            outcome.report()
        );
    } else {
        assert_eq!(outcome.status, 0, "{}", outcome.report());
    }
}

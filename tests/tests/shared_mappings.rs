//! Shared file mappings lose no frame (issue 9): `/share/sh/shmap-frames.sh --memfree`
//! runs `/bin/shmap` (stores through shared mappings of tmpfs, root, memfd and `/dev/zero`
//! files, fork, truncation to SIGBUS) and `/bin/shmap --fill` (a tmpfs filled through a
//! mapping) six times and checks that MemFree after the last five is what it was after
//! the first. astra only: on Linux the page cache keeps pages, so the same script runs
//! there (as the `shmap-frames-128m` scenario) without the MemFree check.

use std::time::Duration;

use astra_tests::{require_kvm, run_vmm, Workspace};

#[test]
fn shared_mappings_give_every_frame_back() {
    require_kvm();
    let mut args = Workspace::locate().default_vm_args();
    args.extend(
        [
            "--mem",
            "128M",
            "--timeout",
            "60",
            "--",
            "/bin/busybox",
            "sh",
            "/share/sh/shmap-frames.sh",
            "--memfree",
        ]
        .map(String::from),
    );
    let out = run_vmm(&args, Duration::from_secs(90));
    assert_eq!(out.status, 0, "{out:?}");
    assert!(
        out.stdout.contains("shmap-frames: all 16 checks passed"),
        "{out:?}"
    );
}

//! `make install PREFIX=...`: an installed astra-vmm finds its installed kernel without
//! --kernel, and the man page and shell completions are installed beside it.

use std::process::Command;
use std::time::Duration;

use astra_tests::tempdir::TempDir;
use astra_tests::{try_run, Workspace};

#[test]
fn make_install_gives_a_working_astra_vmm_with_its_kernel() {
    let ws = Workspace::locate();
    let prefix = TempDir::new("install");
    let status = Command::new("make")
        .arg("-C")
        .arg(&ws.root)
        .arg("install")
        .arg(format!("PREFIX={}", prefix.path().display()))
        .status()
        .expect("run make install");
    assert!(status.success(), "make install failed");
    for file in [
        "bin/astra-vmm",
        "share/astra/guest.elf",
        "share/man/man1/astra-vmm.1",
        "share/bash-completion/completions/astra-vmm",
        "share/zsh/site-functions/_astra-vmm",
        "share/fish/vendor_completions.d/astra-vmm.fish",
    ] {
        assert!(prefix.path().join(file).is_file(), "{file} not installed");
    }
    let vmm = prefix.path().join("bin/astra-vmm");
    let version = try_run(&vmm, &["--version"], Duration::from_secs(10)).unwrap();
    assert!(
        version
            .stdout
            .contains(&format!("(astra ABI {})", hypercall_abi::ABI_VERSION)),
        "{}",
        version.report()
    );
    // No --kernel, no --rootfs: the installed kernel, a host program over a minimal root.
    let out = try_run(
        &vmm,
        &[
            "--log-level",
            "info",
            "--timeout",
            "20",
            "/bin/busybox",
            "echo",
            "installed",
        ],
        Duration::from_secs(60),
    )
    .unwrap();
    assert_eq!(out.status, 0, "{}", out.report());
    assert_eq!(out.stdout, "installed\n", "{}", out.report());
    let kernel = prefix.path().join("share/astra/guest.elf");
    assert!(
        out.stderr
            .contains(&format!("kernel: {}", kernel.display())),
        "{}",
        out.report()
    );
    let man = std::fs::read_to_string(prefix.path().join("share/man/man1/astra-vmm.1")).unwrap();
    assert!(
        man.contains("strace\\-file") && man.contains("env\\-host"),
        "{man}"
    );
}

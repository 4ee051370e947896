//! The writable root (issue 9): `/` is the TAR image under a tmpfs layer. A program edits,
//! renames and deletes the image's own files and reads them back, and the image file the
//! VMM was given is byte-for-byte what it was; a second boot of the same image sees the
//! original files again (the layer lives in the VM's memory only).

use std::time::Duration;

use astra_tests::{require_kvm, run_vmm, Outcome, Workspace};

const WALL_TIMEOUT: Duration = Duration::from_secs(60);

fn boot(args: &[&str]) -> Outcome {
    require_kvm();
    let mut all = Workspace::locate().default_vm_args();
    all.extend(["--timeout".to_string(), "30".to_string()]);
    all.extend(args.iter().map(|a| a.to_string()));
    run_vmm(&all, WALL_TIMEOUT)
}

#[test]
fn edits_of_the_image_stay_in_the_vm_and_the_tar_is_untouched() {
    let tar = Workspace::locate().rootfs();
    let read = |what| std::fs::read(&tar).unwrap_or_else(|e| panic!("{what}: {e}"));
    let before = read("before");
    let out = boot(&["--", "/bin/fscheck", "overlay"]);
    assert_eq!(out.status, 0, "{}", out.report());
    assert!(
        out.stdout.contains("fscheck overlay: all 5 checks passed"),
        "{}",
        out.report()
    );
    assert!(read("after") == before, "the run changed {}", tar.display());
    // A fresh boot sees the image as it was.
    let out = boot(&[
        "--",
        "/bin/cat",
        "/etc/astra/hello.txt",
        "/etc/astra/dir/a.txt",
    ]);
    assert_eq!(out.status, 0, "{}", out.report());
    assert_eq!(
        out.stdout,
        "Hello from the astra rootfs!\nalpha\n",
        "{}",
        out.report()
    );
}

#[test]
fn a_full_tmpfs_gives_enospc_and_the_kernel_goes_on() {
    // Each run writes until ENOSPC, checks a second file gets it too, removes the file and
    // writes again: the kernel answered every call of it.
    for dir in ["/tmp", "/run", "/"] {
        let out = boot(&["--mem", "64M", "--", "/bin/fscheck", "fill", dir]);
        assert_eq!(out.status, 0, "{dir}: {}", out.report());
        assert!(
            out.stdout
                .contains("No space left on device, and space again after removing the file"),
            "{dir}: {}",
            out.report()
        );
    }
}

#[test]
fn endless_empty_files_meet_a_limit_not_a_kernel_out_of_memory() {
    for dir in ["/tmp", "/"] {
        let out = boot(&["--mem", "32M", "--", "/bin/fscheck", "fill-inodes", dir]);
        assert_eq!(out.status, 0, "{dir}: {}", out.report());
        assert!(
            out.stdout
                .contains("after many files, and files again after removing them"),
            "{dir}: {}",
            out.report()
        );
    }
}

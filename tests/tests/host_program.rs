//! PROG as a host path, and `--rootfs DIR`: astra puts a host executable into the guest at
//! the same absolute path, over a minimal root without `--rootfs` or added to the given
//! one, and packs a host directory as the root. Uses Debian's busybox-static (`make
//! busybox` installs it as /bin/busybox), a static ET_EXEC host program.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use astra_tests::tempdir::TempDir;
use astra_tests::{exit, run_vmm, Outcome, Workspace};

const WALL_TIMEOUT: Duration = Duration::from_secs(60);
const BUSYBOX: &str = "/bin/busybox";

fn args(parts: &[&str]) -> Vec<String> {
    let mut all = vec!["--timeout".to_string(), "20".into()];
    all.extend(parts.iter().map(|p| p.to_string()));
    all
}

/// A copy of busybox at DIR/sub/busybox (its applet name must stay `busybox`).
fn busybox_copy(dir: &TempDir) -> PathBuf {
    let sub = dir.path().join("sub");
    std::fs::create_dir_all(&sub).unwrap();
    let copy = sub.join("busybox");
    std::fs::copy(BUSYBOX, &copy).expect("copy /bin/busybox (make busybox installs it)");
    copy
}

fn expect_ok(out: &Outcome) {
    assert_eq!(out.status, 0, "{}", out.report());
}

#[test]
fn a_host_program_runs_over_a_minimal_root() {
    let out = run_vmm(
        &args(&[
            BUSYBOX,
            "sh",
            "-c",
            "ls /; cat /etc/passwd /etc/hosts; echo written > /tmp/f && cat /tmp/f; ls /proc/self/exe",
        ]),
        WALL_TIMEOUT,
    );
    expect_ok(&out);
    let lines: Vec<&str> = out.stdout.lines().collect();
    for dir in ["bin", "dev", "etc", "proc", "root", "tmp"] {
        assert!(lines.contains(&dir), "no /{dir}\n{}", out.report());
    }
    for needle in ["root:x:0:0:", "127.0.0.1", "written\n"] {
        assert!(
            out.stdout.contains(needle),
            "no `{needle}`\n{}",
            out.report()
        );
    }
}

#[test]
fn a_relative_host_path_goes_to_its_absolute_path() {
    // Not under /tmp: the guest mounts a fresh tmpfs there, over what the image holds.
    let ws = Workspace::locate();
    let dir = TempDir::new_in(&ws.root.join("target"), "hostprog");
    let copy = busybox_copy(&dir);
    let out = Command::new(ws.vmm())
        .args(args(&["./sub/busybox", "sh", "-c", r#"ls -l "$1""#, "sh"]))
        .arg(&copy)
        .current_dir(dir.path())
        .output()
        .expect("run astra-vmm");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains(&copy.display().to_string()), "{stdout}");
}

#[test]
fn a_host_program_is_added_to_a_tar_rootfs_that_lacks_it() {
    let ws = Workspace::locate();
    let dir = TempDir::new("hostprog");
    let copy = busybox_copy(&dir);
    let rootfs = ws.rootfs().display().to_string();
    let copy_arg = copy.display().to_string();
    let out = run_vmm(
        &args(&[
            "--rootfs",
            &rootfs,
            &copy_arg,
            "sh",
            "-c",
            "cat /etc/astra/hello.txt; /bin/hello",
        ]),
        WALL_TIMEOUT,
    );
    expect_ok(&out);
    assert!(
        out.stdout.contains("Hello from the astra rootfs!"),
        "{}",
        out.report()
    );
    assert!(out.stdout.contains("Hello from astra!"), "{}", out.report());
}

#[test]
fn the_rootfs_keeps_its_own_file_at_a_host_programs_path() {
    // The host's /bin/busybox is Debian's; the guest's /bin/hello is astra's own. A file
    // the rootfs has at PROG's path wins: /bin/busybox is in fs.tar too, and the
    // dynamically linked host /bin/sh-like programs never replace a guest's.
    let ws = Workspace::locate();
    let mut all = ws.default_vm_args();
    all.extend(args(&["/bin/true"]));
    let out = run_vmm(&all, WALL_TIMEOUT);
    expect_ok(&out);
}

#[test]
fn a_dynamically_linked_host_program_without_rootfs_is_refused_clearly() {
    let dynamic = ["/bin/ls", "/usr/bin/ls", "/bin/cat"]
        .into_iter()
        .find(|p| Path::new(p).is_file())
        .expect("a host ls or cat");
    let out = run_vmm(&args(&[dynamic]), WALL_TIMEOUT);
    assert_eq!(out.status, exit::USAGE, "{}", out.report());
    assert!(
        out.stderr.contains("dynamically linked"),
        "{}",
        out.report()
    );
    assert!(out.stderr.contains(dynamic), "{}", out.report());
}

#[test]
fn a_rootfs_directory_is_packed_with_its_symlinks_kept() {
    let dir = TempDir::new("rootdir");
    let root = dir.path().join("root");
    for sub in ["bin", "etc/deep"] {
        std::fs::create_dir_all(root.join(sub)).unwrap();
    }
    std::fs::copy(BUSYBOX, root.join("bin/busybox")).unwrap();
    std::fs::write(root.join("etc/deep/greeting"), "hello from a directory\n").unwrap();
    std::os::unix::fs::symlink("/etc/deep/greeting", root.join("link")).unwrap();
    // Points outside the directory on the host: inside the guest it resolves in the guest.
    std::os::unix::fs::symlink("../../../../../../etc/hostname", root.join("escape")).unwrap();
    let root_arg = root.display().to_string();
    let out = run_vmm(
        &args(&[
            "--rootfs",
            &root_arg,
            "--",
            "/bin/busybox",
            "sh",
            "-c",
            "cat /link; ls -l /escape; cat /escape || echo no-escape",
        ]),
        WALL_TIMEOUT,
    );
    expect_ok(&out);
    assert!(
        out.stdout.contains("hello from a directory\n"),
        "{}",
        out.report()
    );
    assert!(
        out.stdout
            .contains("/escape -> ../../../../../../etc/hostname"),
        "{}",
        out.report()
    );
    assert!(out.stdout.contains("no-escape"), "{}", out.report());
}

#[test]
fn a_rootfs_with_a_symlinked_bin_keeps_its_own_programs() {
    // A merged-/usr root (/bin -> usr/bin): the host's /bin/busybox is not added below
    // the symlink; the root's own /usr/bin/busybox runs.
    let dir = TempDir::new("mergedusr");
    let root = dir.path().join("root");
    std::fs::create_dir_all(root.join("usr/bin")).unwrap();
    std::fs::copy(BUSYBOX, root.join("usr/bin/busybox")).unwrap();
    std::os::unix::fs::symlink("usr/bin", root.join("bin")).unwrap();
    let root_arg = root.display().to_string();
    let out = run_vmm(
        &args(&[
            "--rootfs",
            &root_arg,
            BUSYBOX,
            "sh",
            "-c",
            "ls -l / | grep bin",
        ]),
        WALL_TIMEOUT,
    );
    expect_ok(&out);
    assert!(out.stdout.contains("bin -> usr/bin"), "{}", out.report());
}

#[test]
fn a_host_program_under_tmp_comes_through_a_read_only_volume_of_its_directory() {
    // The guest mounts its own tmpfs on /tmp: the program's directory is shared read-only
    // at the same path instead of being put into the root below it.
    let dir = TempDir::new("hostprog-tmp");
    let copy = busybox_copy(&dir);
    let sub = copy.parent().unwrap().display().to_string();
    let copy_arg = copy.display().to_string();
    let script = format!("ls {sub}; echo x > {sub}/new || echo read-only; readlink /proc/self/exe");
    let out = run_vmm(&args(&[&copy_arg, "sh", "-c", &script]), WALL_TIMEOUT);
    expect_ok(&out);
    assert!(out.stdout.starts_with("busybox\n"), "{}", out.report());
    assert!(out.stdout.contains("read-only\n"), "{}", out.report());
    assert!(
        out.stdout.contains(&format!("{copy_arg}\n")),
        "{}",
        out.report()
    );
    assert!(!copy.parent().unwrap().join("new").exists());
}

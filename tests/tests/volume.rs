//! `--volume HOST_DIR:GUEST_DIR[:ro]` (issue 13): a std program reads, writes, creates,
//! renames, removes and lists files in a shared host directory, and the host sees the
//! result; `..` and symlinks pointing out of the directory stay in the guest's namespace;
//! `:ro` gives EROFS; bad flag values are usage errors naming the problem. The same `rw`
//! checks run natively on Linux against a copy of the same directory, the listing compared.
//! A writable `MAP_SHARED` mapping of a volume file is refused (ENODEV: hostfs keeps no
//! pages to write back), a read-only one reads the file.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use astra_tests::tempdir::TempDir;
use astra_tests::{require_kvm, run_vmm, Outcome, Workspace};

const WALL_TIMEOUT: Duration = Duration::from_secs(60);

fn boot(args: &[String]) -> Outcome {
    require_kvm();
    let mut all = Workspace::locate().default_vm_args();
    all.extend(["--timeout".to_string(), "30".to_string()]);
    all.extend(args.iter().cloned());
    run_vmm(&all, WALL_TIMEOUT)
}

fn s(v: &str) -> String {
    v.to_string()
}

/// `outer/secret` beside `outer/vol`, which holds what volcheck expects (its doc).
fn setup(outer: &Path) -> std::path::PathBuf {
    let vol = outer.join("vol");
    for dir in ["vol", "vol/keep", "vol/sub"] {
        std::fs::create_dir(outer.join(dir)).unwrap();
    }
    std::fs::write(outer.join("secret"), "host secret\n").unwrap();
    std::fs::write(vol.join("input.txt"), "from the host\n").unwrap();
    std::fs::write(vol.join("gone.txt"), "remove me\n").unwrap();
    std::fs::write(vol.join("trunc.txt"), "0123456789").unwrap();
    std::fs::write(vol.join("keep/f"), "").unwrap();
    std::os::unix::fs::symlink("../secret", vol.join("up")).unwrap();
    std::os::unix::fs::symlink("/etc", vol.join("abs")).unwrap();
    vol
}

fn listing(stdout: &str) -> Option<&str> {
    stdout.lines().find(|l| l.starts_with("listing: "))
}

fn check_host_side(vol: &Path, who: &str) {
    let read = |name: &str| {
        std::fs::read_to_string(vol.join(name)).unwrap_or_else(|e| panic!("{who}: {name}: {e}"))
    };
    assert_eq!(read("out.txt"), "from the guest\nsecond line\n", "{who}");
    assert_eq!(read("renamed.txt"), "moved\n", "{who}");
    assert_eq!(read("trunc.txt"), "012", "{who}");
    let mode = std::fs::metadata(vol.join("renamed.txt"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "{who}");
    assert_eq!(
        std::fs::read_link(vol.join("link")).unwrap(),
        Path::new("renamed.txt"),
        "{who}"
    );
    for gone in ["gone.txt", "made"] {
        assert!(!vol.join(gone).exists(), "{who}: {gone} is still there");
    }
}

#[test]
fn a_program_reads_writes_and_lists_a_shared_directory() {
    let tmp = TempDir::new("volume-rw");
    let vol = setup(tmp.path());
    let out = boot(&[
        s("--volume"),
        format!("{}:/mnt/vol", vol.display()),
        s("--"),
        s("/bin/volcheck"),
        s("rw"),
        s("/mnt/vol"),
    ]);
    assert_eq!(out.status, 0, "{}", out.report());
    assert!(out.stdout.contains("volcheck rw: ok"), "{}", out.report());
    check_host_side(&vol, "astra");

    // Linux, natively, on a fresh copy: the same checks pass and list the same names.
    let native = TempDir::new("volume-rw-linux");
    let native_vol = setup(native.path());
    let bin = Workspace::locate()
        .find_built("target/std-apps/x86_64-unknown-linux-musl/release/volcheck")
        .unwrap_or_else(|m| panic!("{m}"));
    let linux = Command::new(bin)
        .args(["rw"])
        .arg(&native_vol)
        .output()
        .unwrap();
    let linux_out = String::from_utf8_lossy(&linux.stdout);
    assert!(linux.status.success(), "on Linux: {linux_out}");
    check_host_side(&native_vol, "linux");
    assert_eq!(listing(&out.stdout), listing(&linux_out), "astra vs Linux");
    assert!(listing(&out.stdout).is_some(), "{}", out.report());
}

#[test]
fn dotdot_and_symlinks_cannot_reach_host_files_outside_the_volume() {
    let tmp = TempDir::new("volume-escape");
    let vol = setup(tmp.path());
    let out = boot(&[
        s("--volume"),
        format!("{}:/mnt/vol", vol.display()),
        s("--"),
        s("/bin/volcheck"),
        s("escape"),
        s("/mnt/vol"),
    ]);
    assert_eq!(out.status, 0, "{}", out.report());
    assert!(
        out.stdout.contains("volcheck escape: ok"),
        "{}",
        out.report()
    );
    assert!(!out.stdout.contains("host secret"), "{}", out.report());
    // The guest walking into the host's /etc through `abs` would have found this file.
    let out = boot(&[
        s("--volume"),
        format!("{}:/mnt/vol", vol.display()),
        s("--"),
        s("/bin/cat"),
        s("/mnt/vol/abs/hostname"),
        s("/mnt/vol/up"),
    ]);
    assert_ne!(out.status, 0, "{}", out.report());
    assert_eq!(
        out.stdout,
        "astra\n",
        "the guest's /etc/hostname, then nothing: {}",
        out.report()
    );
}

#[test]
fn read_only_volumes_give_erofs_and_stay_unchanged() {
    let tmp = TempDir::new("volume-ro");
    let vol = setup(tmp.path());
    let out = boot(&[
        s("--volume"),
        format!("{}:/mnt/ro:ro", vol.display()),
        s("--"),
        s("/bin/volcheck"),
        s("ro"),
        s("/mnt/ro"),
    ]);
    assert_eq!(out.status, 0, "{}", out.report());
    assert!(out.stdout.contains("volcheck ro: ok"), "{}", out.report());
    let mut names: Vec<_> = std::fs::read_dir(&vol)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "abs",
            "gone.txt",
            "input.txt",
            "keep",
            "sub",
            "trunc.txt",
            "up"
        ]
    );
}

#[test]
fn several_volumes_mount_at_their_paths() {
    let a = TempDir::new("volume-a");
    let b = TempDir::new("volume-b");
    a.write("one", b"first volume\n");
    b.write("two", b"second volume\n");
    let out = boot(&[
        s("--volume"),
        format!("{}:/data/a", a.path().display()),
        s("--volume"),
        format!("{}:/srv/b:ro", b.path().display()),
        s("--"),
        s("/bin/cat"),
        s("/data/a/one"),
        s("/srv/b/two"),
    ]);
    assert_eq!(out.status, 0, "{}", out.report());
    assert_eq!(
        out.stdout,
        "first volume\nsecond volume\n",
        "{}",
        out.report()
    );
}

#[test]
fn bad_volume_flags_are_usage_errors_that_say_why() {
    let tmp = TempDir::new("volume-flags");
    let missing = tmp.path().join("missing");
    let file = tmp.write("file", b"x");
    let cases = [
        (
            format!("{}:/x", missing.display()),
            format!("'{}'", missing.display()),
            "No such file or directory",
        ),
        (
            format!("{}:/x", file.display()),
            format!("'{}'", file.display()),
            "Not a directory",
        ),
        (
            format!("{}:relative", tmp.path().display()),
            s("GUEST_DIR 'relative' must be an absolute path"),
            "",
        ),
        (
            format!("{}:/", tmp.path().display()),
            s("GUEST_DIR cannot be /"),
            "",
        ),
        (s("nocolon"), s("is not HOST_DIR:GUEST_DIR[:ro]"), ""),
    ];
    for (value, want, also) in cases {
        let out = boot(&[s("--volume"), value.clone(), s("--"), s("/bin/true")]);
        assert_eq!(out.status, 250, "{value}: {}", out.report());
        assert!(
            out.stderr.contains(&want) && out.stderr.contains(also),
            "{value}: {}",
            out.report()
        );
    }
}

#[test]
fn shared_writable_mappings_of_volume_files_reach_the_host_file() {
    let tmp = TempDir::new("volume-shmap");
    let vol = setup(tmp.path());
    let out = boot(&[
        s("--volume"),
        format!("{}:/mnt/vol", vol.display()),
        s("--"),
        s("/bin/shmap"),
        s("--volume-file"),
        s("/mnt/vol/mapped.bin"),
    ]);
    assert_eq!(out.status, 0, "{out:?}");
    assert!(
        out.stdout
            .contains("shmap: volume file: shared writable mapping written back"),
        "{out:?}"
    );
    let mut want = b"ABCD45xy89".to_vec();
    want.resize(4096 + 100, 0);
    want[4096 + 50] = b'Z';
    assert_eq!(std::fs::read(vol.join("mapped.bin")).unwrap(), want);
    // Stores through a mapping the program never unmaps, syncs or closes: its exit
    // writes them back.
    let out = boot(&[
        s("--volume"),
        format!("{}:/mnt/vol", vol.display()),
        s("--"),
        s("/bin/shmap"),
        s("--volume-exit"),
        s("/mnt/vol/exit.bin"),
    ]);
    assert_eq!(out.status, 0, "{out:?}");
    let bytes = std::fs::read(vol.join("exit.bin")).unwrap();
    assert_eq!((bytes.len(), &bytes[..4]), (4096, &b"exit"[..]), "{out:?}");
    // A read-only volume keeps refusing writable shared mappings (nothing may write).
    let out = boot(&[
        s("--volume"),
        format!("{}:/mnt/vol:ro", vol.display()),
        s("--"),
        s("/bin/shmap"),
        s("--volume-file"),
        s("/mnt/vol/ro.bin"),
    ]);
    assert_ne!(out.status, 0, "{out:?}");
    assert!(!vol.join("ro.bin").exists());
}

#[test]
fn a_full_volume_page_cache_gives_sigbus_not_a_kernel_oom() {
    let tmp = TempDir::new("volume-shmap-fill");
    let vol = setup(tmp.path());
    let out = boot(&[
        s("--mem"),
        s("128M"),
        s("--volume"),
        format!("{}:/mnt/vol", vol.display()),
        s("--"),
        s("/bin/shmap"),
        s("--volume-fill"),
        s("/mnt/vol"),
    ]);
    assert_eq!(out.status, 0, "{out:?}");
    assert!(
        out.stdout
            .contains("a full page cache stopped the stores with SIGBUS, then recovered"),
        "{out:?}"
    );
    assert!(!vol.join("shmap-fill.bin").exists());
}

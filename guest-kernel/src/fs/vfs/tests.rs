use super::super::devices::Device;
use super::super::dirent;
use super::super::inode::Inode;
use super::super::stat::S_IFREG;
use super::super::testfs;
use super::super::{procfs, procinfo};
use super::*;
use alloc::vec;

/// A namespace over the sample image.
pub fn sample_ns() -> &'static Namespace {
    let ns = Namespace::new(
        testfs::sample(),
        Limits::for_ram(1 << 20),
        Timestamp::default,
    );
    alloc::boxed::Box::leak(alloc::boxed::Box::new(ns))
}

fn w() -> Walker<'static> {
    Walker::new(sample_ns(), "/bin/sh")
}

fn at(w: &Walker<'_>, p: &str) -> Vnode {
    w.resolve("/", p, false).unwrap()
}

#[test]
fn relative_paths_resolve_against_the_base() {
    let w = w();
    let motd = at(&w, "/etc/motd");
    assert_eq!(w.resolve("/etc", "motd", true), Ok(motd.clone()));
    assert_eq!(w.resolve("/etc/sub", "../motd", true), Ok(motd.clone()));
    assert_eq!(w.resolve("/bin", "/etc/motd", true), Ok(motd.clone()));
    assert_eq!(w.resolve("/", "lnk/motd", true), Ok(motd.clone()));
    assert_eq!(w.resolve("/etc", "link", true), Ok(motd.clone()));
    assert_eq!(w.resolve("/etc", "link", false), Ok(at(&w, "/etc/link")));
    assert_eq!(w.resolve("/etc", ".", true), Ok(at(&w, "/etc")));
    assert_eq!(w.resolve("/", "lnk", false), Ok(at(&w, "/lnk")));
    assert_eq!(w.resolve("/", "lnk/", false), Ok(at(&w, "/etc")));
    assert_eq!(w.resolve("/", "", true), Err(Errno::ENOENT));
    assert_eq!(w.resolve("/etc", "nope", true), Err(Errno::ENOENT));
    assert_eq!(w.resolve("/etc", "motd/.", true), Err(Errno::ENOTDIR));
    assert_eq!(w.resolve("/etc", "motd/", true), Err(Errno::ENOTDIR));
    assert_eq!(w.resolve("/etc", "loop", true), Err(Errno::ELOOP));
    let long = "x".repeat(300);
    assert_eq!(w.resolve("/", &long, true), Err(Errno::ENAMETOOLONG));
    assert_eq!(
        w.resolve("/", &"/a".repeat(2100), true),
        Err(Errno::ENAMETOOLONG)
    );
}

#[test]
fn dev_and_the_tmpfs_are_mounted_over_the_root() {
    let w = w();
    assert_eq!(
        w.resolve("/dev", "../etc/motd", true),
        Ok(at(&w, "/etc/motd"))
    );
    assert_eq!(
        w.resolve("/", "/dev/../dev/../lnk", false),
        Ok(at(&w, "/lnk"))
    );
    assert_eq!(w.resolve("/", "/proc/..", true), Ok(at(&w, "/")));
    assert_eq!(w.resolve("/dev", "..", true), Ok(at(&w, "/")));
    let dev = at(&w, "/dev");
    assert_eq!(w.metadata(&dev).dev, devices::DEVFS_DEV);
    let null = w.resolve("/etc", "../dev/./null", true).unwrap();
    assert_eq!(null.node().unwrap().device(), Some(Device::Null));
    assert_eq!(w.resolve("/", "/dev/sda", true), Err(Errno::ENOENT));
    assert_eq!(w.resolve("/", "/dev/null/", true), Err(Errno::ENOTDIR));
    assert_eq!(w.resolve("/", "/dev/null/x", true), Err(Errno::ENOTDIR));
    let m = w.metadata(&w.resolve("/", "/dev/urandom", true).unwrap());
    assert_eq!((m.rdev, m.mode), ((1, 9), 0o20666));
    assert!(w.is_dir(&dev) && !w.is_dir(&null));
    let tmp = at(&w, "/tmp");
    assert!(w.metadata(&tmp).mount_root);
    assert_eq!(w.metadata(&tmp).mode & 0o7777, 0o1777);
    let f = tmp
        .node()
        .unwrap()
        .create("d", FileType::Dir, 0o700, "")
        .unwrap();
    f.create("f", FileType::Regular, 0o600, "").unwrap();
    assert_eq!(
        w.path_of(&Vnode::Node(f.clone())).as_deref(),
        Some("/tmp/d")
    );
    assert_eq!(f.write_at(0, b"data"), Err(Errno::EISDIR));
    assert_eq!(w.resolve("/tmp/d", "../d/f", true), Ok(at(&w, "/tmp/d/f")));
    assert_eq!(w.path_of(&at(&w, "/run")).as_deref(), Some("/run"));
}

#[test]
fn proc_self_exe_names_the_program() {
    let w = w();
    let app = at(&w, "/bin/app");
    assert_eq!(w.resolve("/", "/proc/self/exe", true), Ok(app));
    let exe = w.resolve("/etc", "../proc/self/exe", false).unwrap();
    // The exec'ed path was /bin/sh, a symlink: Linux shows the file itself.
    assert_eq!(w.read_link(&exe).as_deref(), Ok("/bin/app"));
    let m = w.metadata(&exe);
    assert!(m.is_symlink());
    assert_eq!(m.size, 8);
    assert_eq!(w.resolve("/", "/proc/self/exe/", true), Err(Errno::ENOTDIR));
    // A program that is not in the rootfs still has an absolute name.
    let odd = Walker::new(w.ns, "tmp/../gone");
    let exe = odd.resolve("/", "/proc/self/exe", false).unwrap();
    assert_eq!(odd.read_link(&exe).as_deref(), Ok("/gone"));
    assert_eq!(odd.resolve("/", "/proc/self/exe", true), Err(Errno::ENOENT));
}

#[test]
fn proc_has_a_directory_per_process_and_the_mounts() {
    let w = w();
    let me = procfs::ProcNode::Pid(procinfo::TEST_PID);
    let own = w.resolve("/", "/proc/self", false).unwrap();
    assert_eq!(w.read_link(&own).as_deref(), Ok("1"));
    assert_eq!(w.resolve("/", "/proc/self/", true), Ok(at(&w, "/proc/1")));
    assert_eq!(
        w.path_of(&at(&w, "/proc/1/stat")).as_deref(),
        Some("/proc/1/stat")
    );
    assert_eq!(w.resolve("/", "/proc/1/exe", true), Ok(at(&w, "/bin/app")));
    assert_eq!(w.resolve("/", "/proc/2", true), Err(Errno::ENOENT));
    assert_eq!(w.resolve("/", "/proc/01", true), Err(Errno::ENOENT));
    assert_eq!(w.resolve("/", "/proc/1/nope", true), Err(Errno::ENOENT));
    let mut names = Vec::new();
    w.read_dir_from(&at(&w, "/proc/1"), 0, None, |e| {
        names.push(String::from(e.name));
        true
    })
    .unwrap();
    assert!(names.iter().any(|n| n == "stat") && names.iter().any(|n| n == "fd"));
    assert!(me.metadata().is_dir());
    let mounts = mounts_text(w.ns);
    assert!(mounts.starts_with("overlay / overlay rw"), "{mounts}");
    assert!(mounts.contains("\nproc /proc proc rw,nosuid,nodev,noexec 0 0\n"));
    assert!(mounts.contains("\ntmpfs /tmp tmpfs rw"));
    assert!(mounts.contains("\ndevtmpfs /dev devtmpfs rw,nosuid 0 0\n"));
}

#[test]
fn metadata_and_links() {
    let w = w();
    let m = w.metadata(&at(&w, "/bin/app"));
    assert_eq!(m.mode, S_IFREG | 0o755);
    assert_eq!(
        (m.uid, m.gid, m.size, m.mtime.sec),
        (1000, 100, 8, 1_700_000_000)
    );
    assert!(!m.mount_root);
    let root = w.metadata(&at(&w, "/"));
    assert!(root.is_dir() && root.mount_root && root.ino == 1);
    let l = at(&w, "/etc/link");
    assert!(w.metadata(&l).is_symlink());
    assert_eq!(w.read_link(&l).as_deref(), Ok("motd"));
    assert_eq!(w.read_link(&at(&w, "/etc/motd")), Err(Errno::EINVAL));
}

#[test]
fn canonical_paths() {
    let w = w();
    assert_eq!(w.path_of(&at(&w, "/")).as_deref(), Some("/"));
    assert_eq!(w.path_of(&at(&w, "/etc/sub")).as_deref(), Some("/etc/sub"));
    let via_link = w.resolve("/", "/lnk/sub", true).unwrap();
    assert_eq!(w.path_of(&via_link).as_deref(), Some("/etc/sub"));
    assert_eq!(w.path_of(&at(&w, "/dev")).as_deref(), Some("/dev"));
}

fn listing(w: &Walker<'_>, v: &Vnode, start: u64) -> Vec<(u64, String, u8)> {
    let mut out = vec![];
    w.read_dir_from(v, start, None, |e| {
        out.push((e.index, String::from(e.name), e.dtype));
        true
    })
    .unwrap();
    out
}

#[test]
fn directory_listings() {
    let w = w();
    let names = |v: &Vnode, start| -> Vec<String> {
        listing(&w, v, start).into_iter().map(|e| e.1).collect()
    };
    let root = at(&w, "/");
    assert_eq!(
        names(&root, 0),
        [".", "..", "bin", "data", "dev", "etc", "lnk", "proc", "run", "tmp"]
    );
    assert_eq!(names(&root, 8), ["run", "tmp"]);
    assert!(names(&root, 10).is_empty());
    let etc = listing(&w, &at(&w, "/etc"), 0);
    assert_eq!(etc[2], (2, String::from("link"), dirent::DT_LNK));
    assert_eq!(etc[4], (4, String::from("motd"), dirent::DT_REG));
    assert_eq!(etc[5], (5, String::from("sub"), DT_DIR));
    let dev = names(&at(&w, "/dev"), 0);
    assert_eq!(
        dev,
        [
            ".", "..", "console", "fd", "full", "null", "random", "stderr", "stdin", "stdout",
            "tty", "urandom", "zero"
        ]
    );
    // `..` of a mounted root is the directory above its mount point.
    let dev_dots = listing(&w, &at(&w, "/dev"), 0);
    assert_eq!(dev_dots[1].0, 1);
    assert_eq!(
        w.read_dir_from(&at(&w, "/etc/motd"), 0, None, |_| true),
        Err(Errno::ENOTDIR)
    );
    // Stopping early is honoured.
    let mut n = 0;
    w.read_dir_from(&root, 0, None, |_| {
        n += 1;
        n < 3
    })
    .unwrap();
    assert_eq!(n, 3);
}

#[test]
fn a_listing_resumes_after_the_last_name_when_entries_go() {
    let w = w();
    let tmp = at(&w, "/tmp");
    let t = tmp.node().unwrap();
    for name in ["a", "b", "c", "d"] {
        t.create(name, FileType::Regular, 0o600, "").unwrap();
    }
    let mut seen = vec![];
    w.read_dir_from(&tmp, 0, None, |e| {
        seen.push(String::from(e.name));
        seen.len() < 4
    })
    .unwrap();
    assert_eq!(seen, [".", "..", "a", "b"]);
    t.unlink("a").unwrap();
    t.unlink("b").unwrap();
    let rest: Vec<(u64, String)> = {
        let mut v = vec![];
        w.read_dir_from(&tmp, 4, Some("b"), |e| {
            v.push((e.index, String::from(e.name)));
            true
        })
        .unwrap();
        v
    };
    assert_eq!(rest, [(4, String::from("c")), (5, String::from("d"))]);
}

#[test]
fn the_root_is_writable_and_the_image_is_not_touched() {
    let w = w();
    let motd = at(&w, "/etc/motd");
    let n = motd.node().unwrap();
    let ino = n.ino();
    n.write_at(0, b"HELLO").unwrap();
    let mut buf = [0u8; 16];
    let k = at(&w, "/etc/motd")
        .node()
        .unwrap()
        .read_at(0, &mut buf)
        .unwrap();
    assert_eq!(&buf[..k], b"HELLO motd\n");
    assert_eq!(at(&w, "/etc/motd").node().unwrap().ino(), ino);
    let etc = at(&w, "/etc");
    let listed = etc.node().unwrap().entries().unwrap();
    assert!(listed.iter().any(|e| e.0 == "motd" && e.1 == ino));
    let fs = testfs::sample();
    let motd_id = fs.lookup("/etc/motd", false).unwrap();
    assert_eq!(fs.node(motd_id).data, b"hello motd\n");
}

use super::*;
use std::path::Path;

/// A fresh directory under the system's temp dir, removed on drop.
pub(crate) struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "astra-hostfs-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `outer/secret` beside the shared `outer/vol` (with `vol/a.txt`, `vol/sub/`, and the
/// symlinks `vol/up -> ../secret` and `vol/abs -> /etc`).
fn setup(ro: bool) -> (TempDir, HostFs, u64) {
    let t = TempDir::new("unit");
    let vol = t.0.join("vol");
    std::fs::create_dir(&vol).unwrap();
    std::fs::write(t.0.join("secret"), b"host secret").unwrap();
    std::fs::write(vol.join("a.txt"), b"hello").unwrap();
    std::fs::create_dir(vol.join("sub")).unwrap();
    std::os::unix::fs::symlink("../secret", vol.join("up")).unwrap();
    std::os::unix::fs::symlink("/etc", vol.join("abs")).unwrap();
    let mut fs = HostFs::new(vec![Volume::open(&vol, "/mnt", ro).unwrap()]);
    let (root, attr, read_only, path) = fs.volume(0).unwrap();
    assert_eq!(attr.mode & libc::S_IFMT, libc::S_IFDIR);
    assert_eq!((read_only, path.as_str()), (ro, "/mnt"));
    (t, fs, root)
}

fn vol(t: &TempDir) -> &Path {
    Box::leak(Box::new(t.0.join("vol")))
}

#[test]
fn reads_writes_creates_and_lists() {
    let (t, mut fs, root) = setup(false);
    let (a, attr) = fs.lookup(root, b"a.txt").unwrap();
    fs.link(root, b"hard", a).unwrap();
    assert_eq!(fs.getattr(a).unwrap().nlink, 2);
    fs.unlink(root, b"hard", false).unwrap();
    let (sub, _) = fs.lookup(root, b"sub").unwrap();
    assert_eq!(fs.link(root, b"sub2", sub), Err(libc::EPERM));
    fs.forget(sub).unwrap();
    assert_eq!((attr.size, attr.mode & libc::S_IFMT), (5, libc::S_IFREG));
    assert_eq!(fs.read(a, 1, 100).unwrap(), b"ello");
    assert_eq!(fs.write(a, 5, b" world").unwrap(), 6);
    assert_eq!(
        std::fs::read(vol(&t).join("a.txt")).unwrap(),
        b"hello world"
    );
    fs.truncate(a, 2).unwrap();
    assert_eq!(fs.getattr(a).unwrap().size, 2);
    let (n, _) = fs.create(root, b"new", libc::S_IFREG | 0o640, b"").unwrap();
    fs.write(n, 0, b"x").unwrap();
    assert_eq!(
        fs.create(root, b"new", libc::S_IFREG | 0o640, b""),
        Err(libc::EEXIST)
    );
    let (d, _) = fs.create(root, b"dir", libc::S_IFDIR | 0o755, b"").unwrap();
    // The mode asked for, whatever the VMM's umask.
    let (w, attr) = fs
        .create(root, b"wide", libc::S_IFREG | 0o666, b"")
        .unwrap();
    assert_eq!(attr.mode & 0o7777, 0o666);
    let host = std::fs::metadata(vol(&t).join("wide")).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&host.permissions()) & 0o7777,
        0o666
    );
    fs.forget(w).unwrap();
    fs.unlink(root, b"wide", false).unwrap();
    fs.rename(root, b"new", d, b"moved", 0).unwrap();
    assert_eq!(std::fs::read(vol(&t).join("dir/moved")).unwrap(), b"x");
    let (l, _) = fs
        .create(root, b"ln", libc::S_IFLNK | 0o777, b"dir/moved")
        .unwrap();
    assert_eq!(fs.readlink(l).unwrap(), b"dir/moved");
    assert_eq!(fs.readlink(a), Err(libc::EINVAL));
    assert_eq!(fs.unlink(root, b"dir", true), Err(libc::ENOTEMPTY));
    fs.unlink(d, b"moved", false).unwrap();
    fs.unlink(root, b"dir", true).unwrap();
    let attr = fs
        .setattr(
            a,
            Some(0o600),
            None,
            Some(HostFsTime {
                sec: 1_000_000,
                nsec: 5,
                _pad: 0,
            }),
        )
        .unwrap();
    assert_eq!(
        (attr.mode & 0o7777, attr.mtime.sec, attr.mtime.nsec),
        (0o600, 1_000_000, 5)
    );
    // The listing, in small pieces.
    let mut names = Vec::new();
    let mut at = 0;
    loop {
        let (buf, next, end) = fs.readdir(root, at, 24).unwrap();
        let mut p = 0;
        while p < buf.len() {
            let len = buf[p + 9] as usize;
            names.push(String::from_utf8(buf[p + 10..p + 10 + len].to_vec()).unwrap());
            p += hypercall_abi::hostfs::dirent::record_len(len);
        }
        at = next;
        if end {
            break;
        }
    }
    names.sort();
    assert_eq!(names, ["a.txt", "abs", "ln", "sub", "up"]);
    assert_eq!(fs.readdir(root, 0, 8), Err(libc::EINVAL));
    for h in [a, n, d, l] {
        fs.forget(h).unwrap();
    }
    assert_eq!(fs.handle_count(), 1);
}

#[test]
fn nothing_escapes_the_shared_directory() {
    let (_t, mut fs, root) = setup(false);
    for bad in [&b".."[..], b".", b"", b"sub/../../secret", b"/etc", b"a\0b"] {
        assert_eq!(fs.lookup(root, bad).err(), Some(libc::EINVAL), "{bad:?}");
    }
    assert_eq!(
        fs.lookup(root, &[b'x'; 256]).err(),
        Some(libc::ENAMETOOLONG)
    );
    // Symlinks are handed over as themselves, never followed on the host.
    for link in [&b"up"[..], b"abs"] {
        let (h, attr) = fs.lookup(root, link).unwrap();
        assert_eq!(attr.mode & libc::S_IFMT, libc::S_IFLNK);
        assert_eq!(fs.read(h, 0, 10), Err(libc::EINVAL));
        assert_eq!(fs.write(h, 0, b"x"), Err(libc::EINVAL));
        assert_eq!(
            fs.setattr(h, Some(0o777), None, None).err(),
            Some(libc::EOPNOTSUPP)
        );
        assert_eq!(fs.readdir(h, 0, 100).err(), Some(libc::ENOTDIR));
        assert_eq!(fs.lookup(h, b"passwd").err(), Some(libc::ENOTDIR));
        assert_eq!(fs.link(root, b"hard", h), Err(libc::EOPNOTSUPP));
        assert_eq!(fs.truncate(h, 0), Err(libc::EINVAL));
    }
    assert_eq!(fs.unlink(root, b"../secret", false), Err(libc::EINVAL));
    assert_eq!(
        fs.rename(root, b"a.txt", root, b"../stolen", 0),
        Err(libc::EINVAL)
    );
    assert_eq!(
        fs.create(root, b"..", libc::S_IFDIR | 0o755, b"").err(),
        Some(libc::EINVAL)
    );
}

#[test]
fn bad_handles_and_exhaustion_are_errors() {
    let (_t, mut fs, root) = setup(false);
    for h in [0, 999, u64::MAX] {
        assert_eq!(fs.getattr(h), Err(libc::EBADF));
        assert_eq!(fs.read(h, 0, 1), Err(libc::EBADF));
        assert_eq!(fs.lookup(h, b"a.txt").err(), Some(libc::EBADF));
        assert_eq!(fs.forget(h), Err(libc::EBADF));
        assert_eq!(fs.rename(root, b"a.txt", h, b"b", 0), Err(libc::EBADF));
    }
    assert_eq!(fs.volume(1).err(), Some(libc::ENOENT));
    fs.forget(root).unwrap();
    assert_eq!(fs.getattr(root), Err(libc::EBADF), "forgotten");
    let (root, ..) = fs.volume(0).unwrap();
    let mut held = Vec::new();
    loop {
        match fs.lookup(root, b"a.txt") {
            Ok((h, _)) => held.push(h),
            Err(e) => {
                assert!(e == libc::ENFILE || e == libc::EMFILE, "{e}");
                break;
            }
        }
    }
    assert!(held.len() < MAX_HANDLES);
    for h in held {
        fs.forget(h).unwrap();
    }
    assert!(fs.lookup(root, b"a.txt").is_ok());
}

#[test]
fn read_only_volumes_refuse_every_change() {
    let (t, mut fs, root) = setup(true);
    let (a, _) = fs.lookup(root, b"a.txt").unwrap();
    assert_eq!(fs.read(a, 0, 5).unwrap(), b"hello");
    assert_eq!(fs.write(a, 0, b"x"), Err(libc::EROFS));
    assert_eq!(fs.truncate(a, 0), Err(libc::EROFS));
    assert_eq!(
        fs.create(root, b"n", libc::S_IFREG | 0o644, b"").err(),
        Some(libc::EROFS)
    );
    assert_eq!(fs.unlink(root, b"a.txt", false), Err(libc::EROFS));
    assert_eq!(fs.rename(root, b"a.txt", root, b"b", 0), Err(libc::EROFS));
    assert_eq!(
        fs.setattr(a, Some(0o777), None, None).err(),
        Some(libc::EROFS)
    );
    assert_eq!(fs.link(root, b"l", a), Err(libc::EROFS));
    assert_eq!(std::fs::read(vol(&t).join("a.txt")).unwrap(), b"hello");
}

//! Files and directories: create, read, write, append, seek, truncate, positional I/O,
//! rename, remove, read_dir, metadata, permissions, times, copy, sync, error kinds.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirEntryExt, FileExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::time::{Duration, SystemTime};

use astra_std_apps::checks::{ensure, CheckResult, Checks};

use super::{fails_with, io, Scratch};

/// `EEXIST`, `ENOTDIR`, `EISDIR`, `EINVAL`, `ENOTEMPTY`, `ENOENT`.
const EEXIST: i32 = 17;
const ENOTDIR: i32 = 20;
const EISDIR: i32 = 21;
const EINVAL: i32 = 22;
const ENOTEMPTY: i32 = 39;
const ENOENT: i32 = 2;

pub fn run(checks: &mut Checks<impl Write>, s: &Scratch) {
    checks.run("create_write_read", || create_write_read(s));
    checks.run("append", || append(s));
    checks.run("seek_and_truncate", || seek_and_truncate(s));
    checks.run("positional_io", || positional_io(s));
    checks.run("sparse_and_large", || sparse_and_large(s));
    checks.run("create_new_and_truncate", || create_new_and_truncate(s));
    checks.run("rename", || rename(s));
    checks.run("remove", || remove(s));
    checks.run("read_dir", || read_dir(s));
    checks.run("metadata", || metadata(s));
    checks.run("permissions", || permissions(s));
    checks.run("times", || times(s));
    checks.run("copy", || copy(s));
    checks.run("sync", || sync(s));
    checks.run("error_kinds", || error_kinds(s));
}

fn create_write_read(s: &Scratch) -> CheckResult {
    let p = s.path("hello.txt");
    let mut f = io("create", File::create(&p))?;
    io("write", f.write_all(b"hello, file system\n"))?;
    drop(f);
    let text = io("read", fs::read_to_string(&p))?;
    ensure(text == "hello, file system\n", || {
        format!("read back {text:?}")
    })?;
    io("fs::write", fs::write(&p, b"replaced"))?;
    let bytes = io("fs::read", fs::read(&p))?;
    ensure(bytes == b"replaced", || {
        format!("after fs::write: {bytes:?}")
    })?;
    Ok(String::new())
}

fn append(s: &Scratch) -> CheckResult {
    let p = s.path("log");
    io("write", fs::write(&p, b"one\n"))?;
    let mut f = io("open", OpenOptions::new().append(true).open(&p))?;
    io("seek", f.seek(SeekFrom::Start(0)))?;
    io("append", f.write_all(b"two\n"))?;
    let mut g = io("reopen", OpenOptions::new().append(true).open(&p))?;
    io("append", g.write_all(b"three\n"))?;
    io("append", f.write_all(b"four\n"))?;
    let text = io("read", fs::read_to_string(&p))?;
    ensure(text == "one\ntwo\nthree\nfour\n", || {
        format!("log is {text:?}")
    })?;
    let pos = io("position", f.stream_position())?;
    ensure(pos == text.len() as u64, || {
        format!("position {pos} after appends")
    })?;
    Ok(String::new())
}

fn seek_and_truncate(s: &Scratch) -> CheckResult {
    let p = s.path("seek");
    let mut f = io(
        "open",
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&p),
    )?;
    io("write", f.write_all(b"0123456789"))?;
    io("seek", f.seek(SeekFrom::Start(2)))?;
    io("write", f.write_all(b"ab"))?;
    io("seek", f.seek(SeekFrom::End(-2)))?;
    io("write", f.write_all(b"YZ!"))?;
    let end = io("seek", f.seek(SeekFrom::Current(-1)))?;
    ensure(end == 10, || format!("position {end}, expected 10"))?;
    io("rewind", f.rewind())?;
    let mut text = String::new();
    io("read", f.read_to_string(&mut text))?;
    ensure(text == "01ab4567YZ!", || format!("contents {text:?}"))?;
    io("set_len", f.set_len(4))?;
    io("set_len", f.set_len(6))?;
    let bytes = io("read", fs::read(&p))?;
    ensure(bytes == b"01ab\0\0", || format!("after set_len: {bytes:?}"))?;
    let at = io("seek past the end", f.seek(SeekFrom::Start(100)))?;
    let mut buf = [0u8; 4];
    let n = io("read past the end", f.read(&mut buf))?;
    ensure(at == 100 && n == 0, || format!("read at {at} gave {n}"))?;
    fails_with(
        "seek before the start",
        f.seek(SeekFrom::Current(-1000)),
        EINVAL,
    )
}

fn positional_io(s: &Scratch) -> CheckResult {
    let p = s.path("pio");
    let f = io(
        "open",
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&p),
    )?;
    io("write_at", f.write_all_at(b"world", 6))?;
    io("write_at", f.write_all_at(b"hello", 0))?;
    let mut buf = [0u8; 11];
    io("read_at", f.read_exact_at(&mut buf, 0))?;
    ensure(&buf == b"hello\0world", || format!("contents {buf:?}"))?;
    let mut cur = &f;
    let pos = io("position", cur.stream_position())?;
    ensure(pos == 0, || format!("pwrite moved the offset to {pos}"))?;
    Ok(String::new())
}

fn sparse_and_large(s: &Scratch) -> CheckResult {
    let p = s.path("big");
    let mut f = io("create", File::create(&p))?;
    let chunk: Vec<u8> = (0..1 << 20).map(|i: u32| (i % 251) as u8).collect();
    io("write 1 MiB", f.write_all(&chunk))?;
    io("seek", f.seek(SeekFrom::Start(10 << 20)))?;
    io("write", f.write_all(b"!"))?;
    drop(f);
    let len = io("metadata", fs::metadata(&p))?.len();
    ensure(len == (10 << 20) + 1, || format!("length {len}"))?;
    let bytes = io("read", fs::read(&p))?;
    ensure(bytes[..1 << 20] == chunk[..], || {
        "first MiB differs".to_string()
    })?;
    ensure(
        bytes[1 << 20..10 << 20].iter().all(|&b| b == 0) && bytes[10 << 20] == b'!',
        || "the hole does not read as zeros".to_string(),
    )?;
    Ok(format!("{len} bytes"))
}

fn create_new_and_truncate(s: &Scratch) -> CheckResult {
    let p = s.path("new");
    let mut f = io(
        "create_new",
        OpenOptions::new().write(true).create_new(true).open(&p),
    )?;
    io("write", f.write_all(b"abcdef"))?;
    let again = OpenOptions::new().write(true).create_new(true).open(&p);
    let detail = fails_with("create_new again", again, EEXIST)?;
    io(
        "truncate",
        OpenOptions::new().write(true).truncate(true).open(&p),
    )?;
    let len = io("metadata", fs::metadata(&p))?.len();
    ensure(len == 0, || format!("O_TRUNC left {len} bytes"))?;
    let mode = io(
        "mode",
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o640)
            .open(s.path("mode640")),
    )?
    .metadata()
    .map_err(|e| e.to_string())?
    .permissions()
    .mode();
    ensure(mode == 0o100640, || format!("mode {mode:o} (umask 022)"))?;
    Ok(detail)
}

fn rename(s: &Scratch) -> CheckResult {
    let (a, b) = (s.path("ren-a"), s.path("ren-b"));
    io("write", fs::write(&a, b"A"))?;
    io("write", fs::write(&b, b"B"))?;
    io("rename over a file", fs::rename(&a, &b))?;
    ensure(!a.exists(), || "the old name still exists".to_string())?;
    let text = io("read", fs::read_to_string(&b))?;
    ensure(text == "A", || format!("replaced file holds {text:?}"))?;
    let d = s.path("ren-dir");
    io("mkdir", fs::create_dir_all(d.join("sub")))?;
    io("write", fs::write(d.join("sub/f"), b"deep"))?;
    let moved = s.path("ren-moved");
    io("rename a directory", fs::rename(&d, &moved))?;
    let text = io("read moved", fs::read_to_string(moved.join("sub/f")))?;
    ensure(text == "deep", || format!("moved file holds {text:?}"))?;
    fails_with(
        "rename into itself",
        fs::rename(&moved, moved.join("sub/x")),
        EINVAL,
    )?;
    fails_with(
        "rename a file over a directory",
        fs::rename(&b, &moved),
        EISDIR,
    )?;
    io("mkdir", fs::create_dir(s.path("full")))?;
    io("write", fs::write(s.path("full/x"), b""))?;
    fails_with(
        "rename over a non-empty directory",
        fs::rename(&moved, s.path("full")),
        ENOTEMPTY,
    )?;
    io("rename to itself", fs::rename(&b, &b))?;
    Ok(String::new())
}

fn remove(s: &Scratch) -> CheckResult {
    let d = s.path("tree");
    for i in 0..300 {
        let sub = d.join(format!("d{}", i % 7));
        io("mkdir", fs::create_dir_all(&sub))?;
        io(
            "write",
            fs::write(sub.join(format!("file-{i:03}")), [i as u8; 3]),
        )?;
    }
    fails_with(
        "remove_dir of a full directory",
        fs::remove_dir(&d),
        ENOTEMPTY,
    )?;
    io("remove_file", fs::remove_file(d.join("d0/file-000")))?;
    fails_with(
        "remove_file again",
        fs::remove_file(d.join("d0/file-000")),
        ENOENT,
    )?;
    io("remove_dir_all of 300 files", fs::remove_dir_all(&d))?;
    ensure(!d.exists(), || "the tree is still there".to_string())?;
    Ok(String::new())
}

fn read_dir(s: &Scratch) -> CheckResult {
    let d = s.path("list");
    io("mkdir", fs::create_dir(&d))?;
    io("write", fs::write(d.join("b.txt"), b"b"))?;
    io("write", fs::write(d.join("a.txt"), b"a"))?;
    io("mkdir", fs::create_dir(d.join("sub")))?;
    io(
        "symlink",
        std::os::unix::fs::symlink("a.txt", d.join("c-link")),
    )?;
    let mut seen = Vec::new();
    for entry in io("read_dir", fs::read_dir(&d))? {
        let entry = io("entry", entry)?;
        let kind = io("file_type", entry.file_type())?;
        let ino = io("metadata", entry.metadata())?.ino();
        ensure(!s.inodes_agree() || entry.ino() == ino, || {
            format!(
                "{:?}: d_ino {} but st_ino {ino}",
                entry.file_name(),
                entry.ino()
            )
        })?;
        let k = if kind.is_symlink() {
            "link"
        } else if kind.is_dir() {
            "dir"
        } else {
            "file"
        };
        seen.push(format!("{}:{k}", entry.file_name().to_string_lossy()));
    }
    seen.sort();
    let want = ["a.txt:file", "b.txt:file", "c-link:link", "sub:dir"];
    ensure(seen == want, || format!("entries {seen:?}"))?;
    Ok(seen.join(" "))
}

fn metadata(s: &Scratch) -> CheckResult {
    let p = s.path("meta");
    let before = SystemTime::now() - Duration::from_secs(2);
    io("write", fs::write(&p, b"12345"))?;
    let m = io("metadata", fs::metadata(&p))?;
    ensure(m.is_file() && !m.is_dir() && m.len() == 5, || {
        format!("{m:?}")
    })?;
    let modified = io("modified", m.modified())?;
    ensure(modified >= before, || {
        format!("mtime {modified:?} before {before:?}")
    })?;
    ensure(m.nlink() == 1, || format!("nlink {}", m.nlink()))?;
    let again = io("metadata", fs::metadata(&p))?;
    ensure(again.ino() == m.ino() && again.dev() == m.dev(), || {
        "inode number changed".to_string()
    })?;
    let d = io("metadata", fs::metadata(s.path("")))?;
    ensure(d.is_dir(), || "scratch is not a directory".to_string())?;
    Ok(String::new())
}

fn permissions(s: &Scratch) -> CheckResult {
    let p = s.path("perm");
    io("write", fs::write(&p, b"x"))?;
    io(
        "chmod 600",
        fs::set_permissions(&p, fs::Permissions::from_mode(0o600)),
    )?;
    let mode = io("metadata", fs::metadata(&p))?.permissions().mode();
    ensure(mode & 0o7777 == 0o600, || format!("mode {mode:o}"))?;
    let mut perm = io("metadata", fs::metadata(&p))?.permissions();
    perm.set_readonly(true);
    io("set_readonly", fs::set_permissions(&p, perm))?;
    let ro = io("metadata", fs::metadata(&p))?.permissions();
    ensure(ro.readonly() && ro.mode() & 0o7777 == 0o400, || {
        format!("read-only mode {:o}", ro.mode())
    })?;
    let f = io("open", File::open(&p))?;
    io(
        "fchmod",
        f.set_permissions(fs::Permissions::from_mode(0o755)),
    )?;
    let mode = io("metadata", f.metadata())?.permissions().mode();
    ensure(mode & 0o7777 == 0o755, || {
        format!("mode after fchmod {mode:o}")
    })?;
    Ok(String::new())
}

fn times(s: &Scratch) -> CheckResult {
    let p = s.path("times");
    io("write", fs::write(&p, b"t"))?;
    let when = SystemTime::UNIX_EPOCH + Duration::new(1_600_000_000, 123_456_789);
    let f = io("open", OpenOptions::new().write(true).open(&p))?;
    io("set_modified", f.set_modified(when))?;
    let m = io("metadata", fs::metadata(&p))?;
    let got = io("modified", m.modified())?;
    ensure(got == when, || format!("mtime {got:?}, expected {when:?}"))?;
    let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_500_000_000);
    io(
        "set_times",
        f.set_times(fs::FileTimes::new().set_accessed(at)),
    )?;
    let m = io("metadata", fs::metadata(&p))?;
    let (a, mo) = (io("accessed", m.accessed())?, io("modified", m.modified())?);
    ensure(a == at && mo == when, || {
        format!("atime {a:?} mtime {mo:?}")
    })?;
    Ok(String::new())
}

fn copy(s: &Scratch) -> CheckResult {
    let (src, dst) = (s.path("copy-src"), s.path("copy-dst"));
    let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7) as u8).collect();
    io("write", fs::write(&src, &data))?;
    io(
        "chmod",
        fs::set_permissions(&src, fs::Permissions::from_mode(0o751)),
    )?;
    let n = io("copy", fs::copy(&src, &dst))?;
    ensure(n == data.len() as u64, || format!("copied {n} bytes"))?;
    ensure(io("read", fs::read(&dst))? == data, || {
        "copy differs".to_string()
    })?;
    let mode = io("metadata", fs::metadata(&dst))?.permissions().mode();
    ensure(mode & 0o7777 == 0o751, || format!("copy has mode {mode:o}"))?;
    Ok(format!("{n} bytes"))
}

fn sync(s: &Scratch) -> CheckResult {
    let mut f = io("create", File::create(s.path("sync")))?;
    io("write", f.write_all(b"durable"))?;
    io("sync_all", f.sync_all())?;
    io("sync_data", f.sync_data())?;
    io("flush", f.flush())?;
    let d = io("open dir", File::open(s.path("")))?;
    io("sync a directory", d.sync_all())?;
    Ok(String::new())
}

fn error_kinds(s: &Scratch) -> CheckResult {
    let missing = s.path("missing");
    let e = File::open(&missing).map(|_| ()).unwrap_err();
    ensure(e.kind() == ErrorKind::NotFound, || format!("{e:?}"))?;
    fails_with(
        "create in a missing dir",
        File::create(missing.join("x")),
        ENOENT,
    )?;
    let d = s.path("errs");
    io("mkdir", fs::create_dir(&d))?;
    let e = fs::create_dir(&d).unwrap_err();
    ensure(e.kind() == ErrorKind::AlreadyExists, || format!("{e:?}"))?;
    let f = d.join("file");
    io("write", fs::write(&f, b"x"))?;
    fails_with("read_dir of a file", fs::read_dir(&f), ENOTDIR)?;
    fails_with("create below a file", File::create(f.join("x")), ENOTDIR)?;
    fails_with("remove_dir of a file", fs::remove_dir(&f), ENOTDIR)?;
    fails_with("remove_file of a directory", fs::remove_file(&d), EISDIR)?;
    fails_with(
        "write a directory",
        OpenOptions::new().write(true).open(&d),
        EISDIR,
    )?;
    let mut dir = io("open dir", File::open(&d))?;
    let mut buf = [0u8; 4];
    fails_with("read a directory", dir.read(&mut buf), EISDIR)?;
    let ro = io("open", File::open(&f))?;
    let mut ro2 = &ro;
    let e = ro2.write(b"x").unwrap_err();
    ensure(errno(&e) == 9, || format!("write to a read-only fd: {e:?}"))?;
    fails_with("set_len read-only", ro.set_len(0), EINVAL)?;
    Ok(String::new())
}

use super::errno;

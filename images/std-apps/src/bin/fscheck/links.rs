//! Names: symlinks, hard links, canonicalize, the working directory.

use std::env;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{symlink, MetadataExt};
use std::path::Path;

use astra_std_apps::checks::{ensure, CheckResult, Checks};

use super::{fails_with, io, Scratch};

/// `ELOOP`, `EPERM`, `EEXIST`, `ENOENT`.
const ELOOP: i32 = 40;
const EPERM: i32 = 1;
const EEXIST: i32 = 17;
const ENOENT: i32 = 2;

pub fn run(checks: &mut Checks<impl Write>, s: &Scratch) {
    checks.run("symlinks", || symlinks(s));
    checks.run("hard_links", || hard_links(s));
    checks.run("canonicalize", || canonicalize(s));
    checks.run("set_current_dir", || set_current_dir(s));
}

fn symlinks(s: &Scratch) -> CheckResult {
    let target = s.path("target");
    io("write", fs::write(&target, b"through the link"))?;
    let link = s.path("link");
    io("symlink", symlink("target", &link))?;
    let read = io("read_link", fs::read_link(&link))?;
    ensure(read == Path::new("target"), || {
        format!("read_link {read:?}")
    })?;
    let lm = io("symlink_metadata", fs::symlink_metadata(&link))?;
    ensure(lm.file_type().is_symlink() && lm.len() == 6, || {
        format!("{lm:?}")
    })?;
    let m = io("metadata", fs::metadata(&link))?;
    ensure(m.is_file() && m.len() == 16, || format!("{m:?}"))?;
    let text = io("read through", fs::read_to_string(&link))?;
    ensure(text == "through the link", || format!("{text:?}"))?;
    fails_with("symlink over a name", symlink("x", &link), EEXIST)?;
    let dangling = s.path("dangling");
    io("symlink", symlink("nowhere", &dangling))?;
    fails_with(
        "metadata of a dangling link",
        fs::metadata(&dangling),
        ENOENT,
    )?;
    io(
        "write through a dangling link",
        fs::write(&dangling, b"made"),
    )?;
    let made = io("read", fs::read_to_string(s.path("nowhere")))?;
    ensure(made == "made", || format!("{made:?}"))?;
    let lp = s.path("loop");
    io("symlink", symlink("loop", &lp))?;
    fails_with("open a symlink loop", fs::read(&lp), ELOOP)?;
    let dir_link = s.path("dir-link");
    io("mkdir", fs::create_dir(s.path("real-dir")))?;
    io("symlink", symlink("real-dir", &dir_link))?;
    io("write via a dir link", fs::write(dir_link.join("f"), b"x"))?;
    ensure(s.path("real-dir/f").exists(), || {
        "file not in the real dir".to_string()
    })?;
    io("remove a link", fs::remove_file(&dir_link))?;
    ensure(s.path("real-dir").is_dir(), || {
        "removing the link removed the dir".to_string()
    })?;
    Ok(String::new())
}

fn hard_links(s: &Scratch) -> CheckResult {
    let a = s.path("hl-a");
    let b = s.path("hl-b");
    io("write", fs::write(&a, b"shared"))?;
    io("hard_link", fs::hard_link(&a, &b))?;
    let (ma, mb) = (
        io("metadata", fs::metadata(&a))?,
        io("metadata", fs::metadata(&b))?,
    );
    ensure(ma.ino() == mb.ino() && ma.nlink() == 2, || {
        format!("inodes {} {} nlink {}", ma.ino(), mb.ino(), ma.nlink())
    })?;
    io("write via b", fs::write(&b, b"changed"))?;
    let text = io("read a", fs::read_to_string(&a))?;
    ensure(text == "changed", || format!("a holds {text:?}"))?;
    io("remove a", fs::remove_file(&a))?;
    let m = io("metadata", fs::metadata(&b))?;
    ensure(m.nlink() == 1, || {
        format!("nlink {} after removing a", m.nlink())
    })?;
    fails_with("hard_link over a name", fs::hard_link(&b, &b), EEXIST)?;
    fails_with(
        "hard_link a directory",
        fs::hard_link(s.path(""), s.path("dl")),
        EPERM,
    )?;
    Ok(String::new())
}

fn canonicalize(s: &Scratch) -> CheckResult {
    io("mkdir", fs::create_dir_all(s.path("c/d")))?;
    io("write", fs::write(s.path("c/d/file"), b""))?;
    io("symlink", symlink("c/d", s.path("cd-link")))?;
    let base = io("canonicalize scratch", fs::canonicalize(s.path("")))?;
    let got = io(
        "canonicalize",
        fs::canonicalize(s.path("cd-link/../d/./file")),
    )?;
    let want = base.join("c/d/file");
    ensure(got == want, || format!("{got:?}, expected {want:?}"))?;
    fails_with(
        "canonicalize a missing file",
        fs::canonicalize(s.path("c/none")),
        ENOENT,
    )?;
    Ok(String::new())
}

fn set_current_dir(s: &Scratch) -> CheckResult {
    let before = io("current_dir", env::current_dir())?;
    io("mkdir", fs::create_dir_all(s.path("cwd/inner")))?;
    let real = io("canonicalize", fs::canonicalize(s.path("cwd")))?;
    io("symlink", symlink("cwd", s.path("cwd-link")))?;
    io("set_current_dir", env::set_current_dir(s.path("cwd-link")))?;
    let result = (|| {
        let now = io("current_dir", env::current_dir())?;
        ensure(now == real, || format!("cwd {now:?}, expected {real:?}"))?;
        io("relative write", fs::write("here.txt", b"relative"))?;
        io("relative mkdir", fs::create_dir("inner/deeper"))?;
        io(
            "set_current_dir ..",
            env::set_current_dir("inner/deeper/../.."),
        )?;
        let again = io("current_dir", env::current_dir())?;
        ensure(again == real, || format!("cwd {again:?} after .."))?;
        fails_with(
            "set_current_dir to a file",
            env::set_current_dir("here.txt"),
            20,
        )?;
        Ok(String::new())
    })();
    io("restore cwd", env::set_current_dir(&before))?;
    let text = io("read", fs::read_to_string(real.join("here.txt")))?;
    ensure(text == "relative", || format!("{text:?}"))?;
    result
}

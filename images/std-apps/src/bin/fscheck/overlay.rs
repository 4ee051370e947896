//! The root is the image under a writable layer: edit, rename and delete the image's own
//! files (the fixtures of `images/default.manifest` under `/etc/astra`) and read the result
//! back; and a file system filled up answers ENOSPC.

use std::fs::{self, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::ExitCode;

use astra_std_apps::checks::{ensure, CheckResult, Checks};

use super::{errno, fails_with, io};

/// `ENOSPC`, `ENOMEM`, `ENOTEMPTY`, `ENOENT`.
const ENOSPC: i32 = 28;
const ENOMEM: i32 = 12;
const ENOTEMPTY: i32 = 39;
const ENOENT: i32 = 2;

const HELLO: &str = "/etc/astra/hello.txt";
const LINES: &str = "/etc/astra/lines.txt";
const DIR: &str = "/etc/astra/dir";

pub fn run(checks: &mut Checks<impl Write>) {
    checks.run("overlay_append_to_an_image_file", append);
    checks.run("overlay_replace_an_image_file", replace);
    checks.run("overlay_delete_and_rename_image_files", delete_and_rename);
    checks.run("overlay_remove_and_remake_an_image_dir", remake_dir);
    checks.run("overlay_new_files_in_image_dirs", new_files);
}

fn append() -> CheckResult {
    let ino = io("metadata", fs::metadata(HELLO))?.ino();
    let mut f = io("open", OpenOptions::new().append(true).open(HELLO))?;
    io("append", f.write_all(b"and a line added on top\n"))?;
    drop(f);
    let text = io("read", fs::read_to_string(HELLO))?;
    ensure(
        text == "Hello from the astra rootfs!\nand a line added on top\n",
        || format!("{HELLO} holds {text:?}"),
    )?;
    let after = io("metadata", fs::metadata(HELLO))?.ino();
    ensure(after == ino, || format!("inode {ino} became {after}"))?;
    let via_link = io("read", fs::read_to_string("/etc/astra/hello-link"))?;
    ensure(via_link == text, || {
        "the symlink sees the old file".to_string()
    })?;
    Ok(String::new())
}

fn replace() -> CheckResult {
    io("write", fs::write(LINES, b"just one line\n"))?;
    let text = io("read", fs::read_to_string(LINES))?;
    ensure(text == "just one line\n", || {
        format!("{LINES} holds {text:?}")
    })?;
    let m = io("metadata", fs::metadata(LINES))?;
    ensure(m.len() == 14, || format!("length {}", m.len()))?;
    Ok(String::new())
}

fn names(dir: &str) -> Result<Vec<String>, String> {
    let mut v = Vec::new();
    for e in io("read_dir", fs::read_dir(dir))? {
        v.push(io("entry", e)?.file_name().to_string_lossy().into_owned());
    }
    v.sort();
    Ok(v)
}

fn delete_and_rename() -> CheckResult {
    io("remove_file", fs::remove_file(format!("{DIR}/a.txt")))?;
    fails_with(
        "read a deleted file",
        fs::read(format!("{DIR}/a.txt")),
        ENOENT,
    )?;
    // The symlink to it now dangles.
    fails_with("follow c-link", fs::read(format!("{DIR}/c-link")), ENOENT)?;
    io(
        "rename",
        fs::rename(format!("{DIR}/b.txt"), "/etc/astra/b-moved.txt"),
    )?;
    let text = io("read", fs::read_to_string("/etc/astra/b-moved.txt"))?;
    ensure(text == "bravo bravo\n", || {
        format!("moved file holds {text:?}")
    })?;
    let left = names(DIR)?;
    ensure(left == ["c-link", "sub"], || {
        format!("{DIR} lists {left:?}")
    })?;
    fails_with("remove a full image dir", fs::remove_dir(DIR), ENOTEMPTY)?;
    Ok(left.join(" "))
}

fn remake_dir() -> CheckResult {
    let sub = format!("{DIR}/sub");
    io("remove_dir_all", fs::remove_dir_all(&sub))?;
    ensure(!Path::new(&sub).exists(), || format!("{sub} still exists"))?;
    io("create_dir", fs::create_dir(&sub))?;
    let inside = names(&sub)?;
    ensure(inside.is_empty(), || {
        format!("the new {sub} shows {inside:?}")
    })?;
    io("write", fs::write(format!("{sub}/new.txt"), b"new"))?;
    let inside = names(&sub)?;
    ensure(inside == ["new.txt"], || format!("{sub} lists {inside:?}"))?;
    Ok(String::new())
}

fn new_files() -> CheckResult {
    io("write", fs::write("/bin/fscheck-made", b"#!/bin/sh\n"))?;
    let listed = names("/bin")?;
    ensure(listed.iter().any(|n| n == "fscheck-made"), || {
        "not listed in /bin".to_string()
    })?;
    ensure(listed.iter().any(|n| n == "fscheck"), || {
        "/bin lost its files".to_string()
    })?;
    io("remove", fs::remove_file("/bin/fscheck-made"))?;
    io("mkdir", fs::create_dir_all("/var/lib/fscheck"))?;
    io("write", fs::write("/var/lib/fscheck/state", b"ok"))?;
    let text = io("read", fs::read_to_string("/var/lib/fscheck/state"))?;
    ensure(text == "ok", || format!("{text:?}"))?;
    io("remove_dir_all", fs::remove_dir_all("/var/lib/fscheck"))?;
    Ok(String::new())
}

/// Fills `dir`'s file system with one file (`inodes`: with empty files, until no more can
/// be made): ENOSPC (or ENOMEM for empty files, when kernel memory is what runs out) at
/// some point, and after the file(s) go, the space is back.
pub fn fill(dir: &Path, inodes: bool) -> ExitCode {
    let result = if inodes {
        try_fill_inodes(dir)
    } else {
        try_fill(dir)
    };
    match result {
        Ok(msg) => {
            println!("fill: {msg}");
            ExitCode::SUCCESS
        }
        Err(msg) => {
            println!("fill: FAILED: {msg}");
            ExitCode::FAILURE
        }
    }
}

fn try_fill_inodes(dir: &Path) -> Result<String, String> {
    let base = dir.join("fscheck-inodes");
    io("mkdir", fs::create_dir(&base))?;
    let mut made = 0u64;
    let err = loop {
        match fs::File::create(base.join(made.to_string())) {
            Ok(_) => made += 1,
            Err(e) => break e,
        }
        if made > 10_000_000 {
            return Err("ten million files without an error".to_string());
        }
    };
    ensure(errno(&err) == ENOSPC || errno(&err) == ENOMEM, || {
        format!("after {made} files: {err:?}, expected ENOSPC or ENOMEM")
    })?;
    io("remove_dir_all", fs::remove_dir_all(&base))?;
    io("mkdir after", fs::create_dir(&base))?;
    io("a file after", fs::write(base.join("again"), b"x"))?;
    io("remove_dir_all", fs::remove_dir_all(&base))?;
    Ok(format!(
        "{}: {} after many files, and files again after removing them",
        dir.display(),
        astra_std_apps::error_text(&err)
    ))
}

fn try_fill(dir: &Path) -> Result<String, String> {
    let p = dir.join("fscheck-fill");
    let mut f = io("create", fs::File::create(&p))?;
    let chunk = vec![0x5au8; 1 << 20];
    let mut written = 0u64;
    let err = loop {
        match f.write(&chunk) {
            Ok(0) => return Err("write returned 0".to_string()),
            Ok(n) => written += n as u64,
            Err(e) => break e,
        }
        if written > 64 << 30 {
            return Err("64 GiB written without ENOSPC".to_string());
        }
    };
    ensure(
        errno(&err) == ENOSPC && err.kind() == ErrorKind::StorageFull,
        || format!("after {written} bytes: {err:?}, expected ENOSPC"),
    )?;
    ensure(written >= 1 << 20, || format!("only {written} bytes fit"))?;
    let e2 = fs::write(dir.join("fscheck-more"), &chunk).unwrap_err();
    ensure(errno(&e2) == ENOSPC, || format!("a second file: {e2:?}"))?;
    let _ = fs::remove_file(dir.join("fscheck-more"));
    drop(f);
    io("remove", fs::remove_file(&p))?;
    io("write after remove", fs::write(&p, &chunk))?;
    io("remove", fs::remove_file(&p))?;
    Ok(format!(
        "{}: No space left on device, and space again after removing the file",
        dir.display()
    ))
}

//! `volcheck MODE DIR`: file operations in a `--volume` directory, with the host side set up
//! and checked by tests/tests/volume.rs (which names these files: keep both in step).
//!
//! - `rw DIR`: reads `input.txt` (the host wrote it), writes `out.txt`, appends to it,
//!   makes `made/`, a file in it, renames that to `renamed.txt`, removes `gone.txt` and
//!   `made/`, makes the symlink `link -> renamed.txt`, truncates `trunc.txt` (host: 10
//!   bytes) to 3, sets `renamed.txt`'s mode to 0600, and prints the sorted listing.
//! - `escape DIR`: `DIR/../secret`, `DIR/up/..`-style symlinks (`up -> ../secret`,
//!   `abs -> /etc`) resolve in the guest's namespace, never to host files outside DIR:
//!   the host's secret is never read.
//! - `ro DIR`: reading works, every change gives EROFS.
//! - `scratch DIR`: needs no fixture (the shared scenarios use the host's `/tmp`): makes
//!   its own subdirectory, writes, renames, lists, reads and removes files in it, and
//!   leaves nothing behind.
//! - `ro-probe DIR`: needs no fixture: DIR lists, and creating a file gives EROFS.
//!
//! Prints `volcheck MODE: ok` and exits 0 when every check passed; otherwise prints the
//! failed checks and exits 1.

use std::fs;
use std::io::{ErrorKind, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::ExitCode;

use astra_std_apps::error_text;

type Check = Result<(), String>;

fn ensure(ok: bool, what: impl FnOnce() -> String) -> Check {
    if ok {
        Ok(())
    } else {
        Err(what())
    }
}

fn io<T>(what: &str, r: std::io::Result<T>) -> Result<T, String> {
    r.map_err(|e| format!("{what}: {}", error_text(&e)))
}

fn errno_of<T>(r: std::io::Result<T>) -> Option<i32> {
    r.err().and_then(|e| e.raw_os_error())
}

fn rw(d: &Path) -> Check {
    let input = io("read input.txt", fs::read_to_string(d.join("input.txt")))?;
    ensure(input == "from the host\n", || {
        format!("input.txt: {input:?}")
    })?;
    io(
        "write out.txt",
        fs::write(d.join("out.txt"), "from the guest\n"),
    )?;
    let mut f = io(
        "append",
        fs::OpenOptions::new().append(true).open(d.join("out.txt")),
    )?;
    io("append write", f.write_all(b"second line\n"))?;
    drop(f);
    io("mkdir made", fs::create_dir(d.join("made")))?;
    io("write made/new", fs::write(d.join("made/new"), "moved\n"))?;
    io(
        "rename",
        fs::rename(d.join("made/new"), d.join("renamed.txt")),
    )?;
    ensure(
        errno_of(fs::metadata(d.join("made/new"))) == Some(libc_enoent()),
        || "made/new still there".into(),
    )?;
    io("remove gone.txt", fs::remove_file(d.join("gone.txt")))?;
    io("rmdir made", fs::remove_dir(d.join("made")))?;
    io(
        "symlink",
        std::os::unix::fs::symlink("renamed.txt", d.join("link")),
    )?;
    let via = io("read via link", fs::read_to_string(d.join("link")))?;
    ensure(via == "moved\n", || format!("link reads {via:?}"))?;
    let f = io(
        "open trunc",
        fs::OpenOptions::new().write(true).open(d.join("trunc.txt")),
    )?;
    io("set_len", f.set_len(3))?;
    let meta = io("stat trunc", fs::metadata(d.join("trunc.txt")))?;
    ensure(meta.len() == 3, || format!("trunc.txt size {}", meta.len()))?;
    io(
        "chmod",
        fs::set_permissions(d.join("renamed.txt"), fs::Permissions::from_mode(0o600)),
    )?;
    let mode = io("stat renamed", fs::metadata(d.join("renamed.txt")))?
        .permissions()
        .mode();
    ensure(mode & 0o777 == 0o600, || format!("mode {mode:o}"))?;
    ensure(errno_of(fs::remove_dir(d.join("keep"))) == Some(39), || {
        "rmdir of a non-empty directory is not ENOTEMPTY".into()
    })?;
    let mut names: Vec<String> = io("read_dir", fs::read_dir(d))?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<Result<_, _>>()
        .map_err(|e| format!("read_dir entry: {}", error_text(&e)))?;
    names.sort();
    println!("listing: {}", names.join(" "));
    Ok(())
}

fn libc_enoent() -> i32 {
    2
}

fn escape(d: &Path) -> Check {
    // `..` of the mount root is the guest directory holding the mount point.
    let e = errno_of(fs::read(d.join("../secret")));
    ensure(e == Some(2), || {
        format!("DIR/../secret: {e:?}, expected ENOENT")
    })?;
    // A relative symlink pointing out of the volume resolves in the guest too.
    let e = errno_of(fs::read(d.join("up")));
    ensure(e == Some(2), || {
        format!("up -> ../secret: {e:?}, expected ENOENT")
    })?;
    // An absolute symlink means the guest's /etc: its motd, not the host's files.
    let target = io("readlink abs", fs::read_link(d.join("abs")))?;
    ensure(target == Path::new("/etc"), || format!("abs -> {target:?}"))?;
    let motd = io("abs/motd", fs::read_to_string(d.join("abs/motd")))?;
    ensure(motd.starts_with("Welcome to astra"), || {
        format!("abs/motd: {motd:?}")
    })?;
    let e = errno_of(fs::read(d.join("abs/hostname-only-on-host")));
    ensure(e == Some(2), || format!("abs/...: {e:?}, expected ENOENT"))?;
    // A name with a directory part that climbs is walked by the guest, component-wise.
    let e = errno_of(fs::read(d.join("sub/../../secret")));
    ensure(e == Some(2), || format!("sub/../../secret: {e:?}"))?;
    Ok(())
}

fn ro(d: &Path) -> Check {
    let input = io("read input.txt", fs::read_to_string(d.join("input.txt")))?;
    ensure(input == "from the host\n", || {
        format!("input.txt: {input:?}")
    })?;
    let erofs = |what: &str, e: Option<i32>| {
        ensure(e == Some(30), || format!("{what}: {e:?}, expected EROFS"))
    };
    erofs("create", errno_of(fs::write(d.join("new"), "x")))?;
    erofs(
        "open for writing",
        errno_of(fs::OpenOptions::new().write(true).open(d.join("input.txt"))),
    )?;
    erofs("mkdir", errno_of(fs::create_dir(d.join("dir"))))?;
    erofs("unlink", errno_of(fs::remove_file(d.join("input.txt"))))?;
    erofs(
        "rename",
        errno_of(fs::rename(d.join("input.txt"), d.join("x"))),
    )?;
    erofs(
        "symlink",
        errno_of(std::os::unix::fs::symlink("a", d.join("l"))),
    )?;
    erofs(
        "chmod",
        errno_of(fs::set_permissions(
            d.join("input.txt"),
            fs::Permissions::from_mode(0o600),
        )),
    )?;
    let still = io("read again", fs::read_to_string(d.join("input.txt")))?;
    ensure(still == input, || "input.txt changed".into())?;
    if errno_of(fs::metadata(d.join("new"))).map(|e| e == 2) != Some(true) {
        return Err(format!("{:?}", ErrorKind::AlreadyExists));
    }
    Ok(())
}

fn scratch(d: &Path) -> Check {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|t| t.as_nanos())
        .unwrap_or(0);
    let sub = d.join(format!("volcheck-{}-{nanos}", std::process::id()));
    io("mkdir", fs::create_dir(&sub))?;
    io("write a", fs::write(sub.join("a"), "alpha\n"))?;
    io("write b", fs::write(sub.join("b"), vec![7u8; 200_000]))?;
    io("rename", fs::rename(sub.join("a"), sub.join("c")))?;
    let c = io("read c", fs::read_to_string(sub.join("c")))?;
    ensure(c == "alpha\n", || format!("c: {c:?}"))?;
    let b = io("read b", fs::read(sub.join("b")))?;
    ensure(b.len() == 200_000 && b.iter().all(|&x| x == 7), || {
        format!("b: {} bytes", b.len())
    })?;
    let mut names: Vec<String> = io("read_dir", fs::read_dir(&sub))?
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect();
    names.sort();
    ensure(names == ["b", "c"], || format!("listing {names:?}"))?;
    io("remove b", fs::remove_file(sub.join("b")))?;
    io("remove c", fs::remove_file(sub.join("c")))?;
    io("rmdir", fs::remove_dir(&sub))?;
    let e = errno_of(fs::metadata(&sub));
    ensure(e == Some(2), || format!("after rmdir: {e:?}"))
}

fn ro_probe(d: &Path) -> Check {
    io("read_dir", fs::read_dir(d))?;
    let e = errno_of(fs::write(d.join("volcheck-ro-probe"), "x"));
    ensure(e == Some(30), || format!("create: {e:?}, expected EROFS"))?;
    let e = errno_of(fs::create_dir(d.join("volcheck-ro-probe")));
    ensure(e == Some(30), || format!("mkdir: {e:?}, expected EROFS"))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let [_, mode, dir] = args.as_slice() else {
        eprintln!("usage: volcheck rw|escape|ro|scratch|ro-probe DIR");
        return ExitCode::from(2);
    };
    let d = Path::new(dir);
    let result = match mode.as_str() {
        "rw" => rw(d),
        "escape" => escape(d),
        "ro" => ro(d),
        "scratch" => scratch(d),
        "ro-probe" => ro_probe(d),
        _ => Err(format!("unknown mode {mode}")),
    };
    match result {
        Ok(()) => {
            println!("volcheck {mode}: ok");
            ExitCode::SUCCESS
        }
        Err(e) => {
            println!("volcheck {mode}: FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}

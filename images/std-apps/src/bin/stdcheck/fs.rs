//! `std::fs` and `std::io` over the image's fixtures (`/etc/astra`, see
//! `images/default.manifest`) and the writable root.

use std::fs::{self, File};
use std::io::{BufRead, BufReader, ErrorKind, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::path::Path;

use astra_std_apps::checks::{ensure, CheckResult, Checks};
use astra_std_apps::error_text;

/// A small text file.
const HELLO: &str = "/etc/astra/hello.txt";
/// Its exact contents.
const HELLO_TEXT: &str = "Hello from the astra rootfs!\n";
/// A file of five lines.
const LINES: &str = "/etc/astra/lines.txt";
/// Its exact contents.
const LINES_TEXT: &str = "one\ntwo\nthree\nfour\nfive\n";
/// A symbolic link to `hello.txt`, relative.
const LINK: &str = "/etc/astra/hello-link";
/// A directory with known entries.
const DIR: &str = "/etc/astra/dir";
/// Its entries, sorted, with their kinds.
const DIR_ENTRIES: [(&str, Kind); 4] = [
    ("a.txt", Kind::File),
    ("b.txt", Kind::File),
    ("c-link", Kind::Symlink),
    ("sub", Kind::Dir),
];
/// A path that does not exist.
const MISSING: &str = "/etc/astra/no-such-file";
/// Where the writable-root test creates a file.
const PROBE: &str = "/stdcheck-probe";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    File,
    Dir,
    Symlink,
}

/// Runs the file system checks.
pub fn run(checks: &mut Checks<impl std::io::Write>) {
    checks.run("fs_read", read);
    checks.run("fs_read_to_string", read_to_string);
    checks.run("fs_read_dir", read_dir);
    checks.run("fs_metadata", metadata);
    checks.run("fs_symlink", symlink);
    checks.run("fs_seek", seek);
    checks.run("fs_not_found", not_found);
    checks.run("fs_writable_root", writable_root);
}

fn read() -> CheckResult {
    let bytes = fs::read(HELLO).map_err(|e| format!("read {HELLO}: {e}"))?;
    ensure(bytes == HELLO_TEXT.as_bytes(), || {
        format!(
            "{HELLO} holds {:?}, expected {HELLO_TEXT:?}",
            String::from_utf8_lossy(&bytes)
        )
    })?;
    // A small buffer forces several read(2) calls and a short last one.
    let mut file = File::open(HELLO).map_err(|e| format!("open {HELLO}: {e}"))?;
    let mut pieces = Vec::new();
    let mut buf = [0u8; 5];
    loop {
        match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => pieces.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("read in 5-byte pieces: {e}")),
        }
    }
    ensure(pieces == HELLO_TEXT.as_bytes(), || {
        "reading in 5-byte pieces gave different bytes".into()
    })?;
    Ok(format!("{} bytes", bytes.len()))
}

fn read_to_string() -> CheckResult {
    let text = fs::read_to_string(LINES).map_err(|e| format!("read_to_string {LINES}: {e}"))?;
    ensure(text == LINES_TEXT, || format!("{LINES} holds {text:?}"))?;
    let file = File::open(LINES).map_err(|e| format!("open {LINES}: {e}"))?;
    let lines: Vec<String> = BufReader::new(file)
        .lines()
        .collect::<Result<_, _>>()
        .map_err(|e| format!("BufReader::lines: {e}"))?;
    ensure(lines == ["one", "two", "three", "four", "five"], || {
        format!("BufReader::lines gave {lines:?}")
    })?;
    Ok(format!("{} lines", lines.len()))
}

fn read_dir() -> CheckResult {
    let mut found = Vec::new();
    for entry in fs::read_dir(DIR).map_err(|e| format!("read_dir {DIR}: {e}"))? {
        let entry = entry.map_err(|e| format!("read_dir {DIR} entry: {e}"))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        ensure(entry.path() == Path::new(DIR).join(&name), || {
            format!("entry path {:?} for {name}", entry.path())
        })?;
        let kind = entry
            .file_type()
            .map_err(|e| format!("file_type of {name}: {e}"))?;
        let kind = if kind.is_symlink() {
            Kind::Symlink
        } else if kind.is_dir() {
            Kind::Dir
        } else if kind.is_file() {
            Kind::File
        } else {
            return Err(format!("{name} is of an unexpected type {kind:?}"));
        };
        found.push((name, kind));
    }
    found.sort_by(|a, b| a.0.cmp(&b.0));
    let expected: Vec<(String, Kind)> = DIR_ENTRIES
        .iter()
        .map(|&(name, kind)| (name.to_string(), kind))
        .collect();
    ensure(found == expected, || {
        format!("{DIR} lists {found:?}, expected {expected:?}")
    })?;
    match fs::read_dir(HELLO) {
        Err(e) if e.kind() == ErrorKind::NotADirectory => {}
        Err(e) => return Err(format!("read_dir of a file: expected ENOTDIR, got {e}")),
        Ok(_) => return Err("read_dir of a regular file succeeded".into()),
    }
    let names: Vec<&str> = found.iter().map(|(name, _)| name.as_str()).collect();
    Ok(names.join(" "))
}

fn metadata() -> CheckResult {
    let meta = fs::metadata(HELLO).map_err(|e| format!("metadata {HELLO}: {e}"))?;
    ensure(meta.is_file() && !meta.is_dir(), || {
        "hello.txt is not a plain file".into()
    })?;
    ensure(meta.len() == HELLO_TEXT.len() as u64, || {
        format!("len {} expected {}", meta.len(), HELLO_TEXT.len())
    })?;
    let mode = meta.permissions().mode() & 0o7777;
    ensure(mode == 0o644, || format!("mode {mode:o}, expected 644"))?;
    ensure(!meta.permissions().readonly(), || {
        "0644 reported as readonly".into()
    })?;
    meta.modified().map_err(|e| format!("modified(): {e}"))?;
    // fstat on an open file agrees with stat on the path.
    let file = File::open(HELLO).map_err(|e| format!("open {HELLO}: {e}"))?;
    let fmeta = file
        .metadata()
        .map_err(|e| format!("File::metadata: {e}"))?;
    ensure(fmeta.len() == meta.len() && fmeta.is_file(), || {
        format!("fstat says len {} file {}", fmeta.len(), fmeta.is_file())
    })?;
    let dir = fs::metadata(DIR).map_err(|e| format!("metadata {DIR}: {e}"))?;
    ensure(dir.is_dir() && !dir.is_file(), || {
        format!("{DIR} is not a directory")
    })?;
    ensure(
        Path::new(HELLO).exists() && !Path::new(MISSING).exists(),
        || "Path::exists is wrong".into(),
    )?;
    Ok(format!("len {} mode {mode:o}", meta.len()))
}

fn symlink() -> CheckResult {
    let lmeta = fs::symlink_metadata(LINK).map_err(|e| format!("lstat {LINK}: {e}"))?;
    ensure(lmeta.file_type().is_symlink(), || {
        format!("{LINK} is not a symlink")
    })?;
    let target = fs::read_link(LINK).map_err(|e| format!("read_link {LINK}: {e}"))?;
    ensure(target == Path::new("hello.txt"), || {
        format!("{LINK} -> {target:?}")
    })?;
    let meta = fs::metadata(LINK).map_err(|e| format!("stat {LINK}: {e}"))?;
    ensure(meta.is_file(), || "stat does not follow the link".into())?;
    let text = fs::read_to_string(LINK).map_err(|e| format!("read through {LINK}: {e}"))?;
    ensure(text == HELLO_TEXT, || {
        format!("read through the link: {text:?}")
    })?;
    Ok(format!("-> {}", target.display()))
}

fn seek() -> CheckResult {
    let text = HELLO_TEXT.as_bytes();
    let mut file = File::open(HELLO).map_err(|e| format!("open {HELLO}: {e}"))?;
    let mut read_at = |from: SeekFrom, len: usize| -> Result<(u64, Vec<u8>), String> {
        let pos = file.seek(from).map_err(|e| format!("seek {from:?}: {e}"))?;
        let mut buf = vec![0; len];
        file.read_exact(&mut buf)
            .map_err(|e| format!("read {len} after seek {from:?}: {e}"))?;
        Ok((pos, buf))
    };
    let (pos, word) = read_at(SeekFrom::Start(6), 4)?;
    ensure(pos == 6 && word == text[6..10], || {
        format!("Start(6): {pos} {word:?}")
    })?;
    let (pos, tail) = read_at(SeekFrom::End(-7), 7)?;
    let end = text.len() as u64;
    ensure(pos == end - 7 && tail == text[text.len() - 7..], || {
        format!("End(-7): {pos} {tail:?}")
    })?;
    let (pos, again) = read_at(SeekFrom::Current(-11), 4)?;
    ensure(
        pos == end - 11 && again == text[text.len() - 11..][..4],
        || format!("Current(-11): {pos} {again:?}"),
    )?;
    let mut rest = Vec::new();
    let pos = file
        .stream_position()
        .map_err(|e| format!("stream_position: {e}"))?;
    file.read_to_end(&mut rest)
        .map_err(|e| format!("read_to_end: {e}"))?;
    ensure(rest == text[pos as usize..], || {
        "read_to_end after seeking".into()
    })?;
    // Past the end: reading gives 0 bytes, not an error.
    file.seek(SeekFrom::Start(end + 100))
        .map_err(|e| format!("seek past end: {e}"))?;
    let mut buf = [0u8; 8];
    let n = file
        .read(&mut buf)
        .map_err(|e| format!("read past end: {e}"))?;
    ensure(n == 0, || format!("read past the end gave {n} bytes"))?;
    match file.seek(SeekFrom::Current(-(end as i64) - 1000)) {
        Err(e) if e.kind() == ErrorKind::InvalidInput => {}
        other => {
            return Err(format!(
                "seek before the start: expected EINVAL, got {other:?}"
            ))
        }
    }
    // pread does not move the position.
    let before = file
        .stream_position()
        .map_err(|e| format!("stream_position: {e}"))?;
    let mut word = [0u8; 5];
    file.read_exact_at(&mut word, 0)
        .map_err(|e| format!("read_exact_at: {e}"))?;
    let after = file
        .stream_position()
        .map_err(|e| format!("stream_position: {e}"))?;
    ensure(word == text[..5] && before == after, || {
        format!("pread gave {word:?}, position {before} -> {after}")
    })?;
    Ok(String::new())
}

fn not_found() -> CheckResult {
    match File::open(MISSING) {
        Ok(_) => Err(format!("{MISSING} opened")),
        Err(e) if e.kind() == ErrorKind::NotFound && e.raw_os_error() == Some(2) => {
            Ok(format!("{MISSING}: {}", error_text(&e)))
        }
        Err(e) => Err(format!("{MISSING}: expected ENOENT, got {e:?}")),
    }
}

fn writable_root() -> CheckResult {
    // The root is the image under a writable layer (Linux: an overlay of the image).
    let mut f = File::create(PROBE).map_err(|e| format!("create {PROBE}: {e:?}"))?;
    f.write_all(b"probe\n")
        .map_err(|e| format!("write {PROBE}: {e}"))?;
    drop(f);
    let back = fs::read_to_string(PROBE).map_err(|e| format!("read {PROBE}: {e}"))?;
    fs::remove_file(PROBE).map_err(|e| format!("remove {PROBE}: {e}"))?;
    ensure(back == "probe\n", || format!("{PROBE} read back {back:?}"))?;
    ensure(!Path::new(PROBE).exists(), || {
        format!("{PROBE} still exists")
    })?;
    Ok(format!("{PROBE}: created, read back, removed"))
}

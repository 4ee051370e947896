//! The manifest format: one root filesystem entry per line.
//!
//! Parsing ([`parse`]) is pure; [`build_image`] then resolves file sources on the host and
//! fills an [`Image`]. Every error names the manifest line it comes from.

use std::path::{Path, PathBuf};

use crate::image::{self, Content, Entry, Image, ImageError, Source};

/// The manifest syntax, for `--help` (keep `images/default.manifest`'s header in step).
pub const SYNTAX: &str = r#"MANIFEST SYNTAX
  One entry per line; fields are separated by blanks; blank lines and lines (or line ends)
  starting with '#' are ignored. A field may be double-quoted, with the escapes \n \t \r \0
  \\ \" and \xHH. MODE is octal (0755); the defaults are 0755 for dir, 0644 for file and text.

    dir     PATH [MODE]            a directory
    file    PATH SOURCE [MODE]     a regular file copied from SOURCE on the host
    text    PATH CONTENT [MODE]    a regular file holding CONTENT
    symlink PATH TARGET            a symbolic link to TARGET (stored as written)

  PATH is the absolute path in the image (/bin/hello). A relative SOURCE is looked up in
  the --bin-dir directories first (when given; a name found in more than one of them is an
  error), then relative to the manifest's own directory. Missing parent
  directories are added with mode 0755. Entries are written sorted by path, with mtime 0 and
  uid/gid 0, so the same inputs always give the same archive.

  Example:
    dir     /etc
    file    /bin/hello  hello  0755
    symlink /bin/sh     hello
    text    /etc/motd   "Welcome to astra\n"
"#;

/// What is wrong with one manifest line.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LineError {
    /// The first field is not an entry kind.
    #[error("unknown entry kind '{0}' (expected dir, file, text or symlink)")]
    UnknownKind(String),
    /// The line has too few or too many fields for its kind.
    #[error("'{kind}' takes {expected}, found {found} field(s) after it")]
    FieldCount {
        /// The entry kind.
        kind: &'static str,
        /// The fields it takes.
        expected: &'static str,
        /// How many fields followed the kind.
        found: usize,
    },
    /// A mode field that is not octal or is too large.
    #[error("bad mode '{0}' (expected octal such as 0755)")]
    BadMode(String),
    /// A quoted field without its closing quote.
    #[error("unterminated quoted field")]
    Unterminated,
    /// A backslash escape that is not understood.
    #[error("unknown escape '\\{0}' in a quoted field")]
    BadEscape(String),
    /// Something right after a closing quote.
    #[error("a quoted field must be followed by a blank or the end of the line")]
    AfterQuote,
    /// A path, source or target that is not UTF-8 (only `\x` escapes can make one).
    #[error("'{0}' is not UTF-8")]
    NotUtf8(String),
    /// A relative source that is in neither a bin dir nor the manifest's directory.
    #[error(
        "bin dir: '{name}' not found in {} (nor next to the manifest)",
        quoted(dirs)
    )]
    NotInBinDir {
        /// The source as written.
        name: String,
        /// The bin dirs searched.
        dirs: Vec<PathBuf>,
    },
    /// A relative source found in more than one bin dir.
    #[error(
        "bin dir: '{name}' is in more than one bin dir: {} (a stale build output? remove the \
         one that should not be there)",
        quoted(dirs)
    )]
    AmbiguousSource {
        /// The source as written.
        name: String,
        /// The bin dirs that hold it.
        dirs: Vec<PathBuf>,
    },
    /// A source that does not exist.
    #[error("source '{0}' not found")]
    SourceNotFound(PathBuf),
    /// A source that exists but is not a regular file.
    #[error("source '{0}' is not a regular file")]
    NotAFile(PathBuf),
    /// The entry does not fit in the image.
    #[error(transparent)]
    Image(#[from] ImageError),
}

/// `'a', 'b'`: directories for an error message.
fn quoted(dirs: &[PathBuf]) -> String {
    let quoted: Vec<String> = dirs.iter().map(|d| format!("'{}'", d.display())).collect();
    quoted.join(", ")
}

/// A manifest that cannot be read or has a bad line.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The manifest file cannot be read.
    #[error("cannot read manifest '{path}'")]
    Read {
        /// The manifest.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A line is wrong.
    #[error("{}:{line}", path.display())]
    Line {
        /// The manifest.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        #[source]
        error: LineError,
    },
}

/// What one manifest line asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Spec {
    /// `dir PATH [MODE]`
    Dir {
        /// Permission bits.
        mode: u32,
    },
    /// `file PATH SOURCE [MODE]`
    File {
        /// Where the bytes come from, as written.
        source: String,
        /// Permission bits.
        mode: u32,
    },
    /// `text PATH CONTENT [MODE]`
    Text {
        /// The file's bytes, escapes decoded.
        content: Vec<u8>,
        /// Permission bits.
        mode: u32,
    },
    /// `symlink PATH TARGET`
    Symlink {
        /// The link target, as written.
        target: String,
    },
}

/// One parsed manifest line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    /// 1-based line number.
    pub number: usize,
    /// The path in the image, as written.
    pub path: String,
    /// What to put there.
    pub spec: Spec,
}

/// Splits a line into fields: blanks separate, `#` at the start of a field ends the line,
/// double quotes group and decode escapes.
fn split_fields(line: &str) -> Result<Vec<Vec<u8>>, LineError> {
    let mut fields = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        match chars.peek() {
            None | Some('#') => return Ok(fields),
            Some('"') => {
                chars.next();
                let mut field = Vec::new();
                loop {
                    match chars.next().ok_or(LineError::Unterminated)? {
                        '"' => break,
                        '\\' => field.push(unescape(&mut chars)?),
                        c => field.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
                    }
                }
                if chars.peek().is_some_and(|c| !c.is_whitespace()) {
                    return Err(LineError::AfterQuote);
                }
                fields.push(field);
            }
            Some(_) => {
                let mut field = String::new();
                while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                    field.push(c);
                }
                fields.push(field.into_bytes());
            }
        }
    }
}

/// Decodes the escape after a backslash inside a quoted field.
fn unescape(chars: &mut impl Iterator<Item = char>) -> Result<u8, LineError> {
    let c = chars.next().ok_or(LineError::Unterminated)?;
    Ok(match c {
        'n' => b'\n',
        't' => b'\t',
        'r' => b'\r',
        '0' => 0,
        '\\' => b'\\',
        '"' => b'"',
        'x' => {
            let hex: String = chars.take(2).collect();
            if hex.len() != 2 {
                return Err(LineError::BadEscape(format!("x{hex}")));
            }
            u8::from_str_radix(&hex, 16).map_err(|_| LineError::BadEscape(format!("x{hex}")))?
        }
        other => return Err(LineError::BadEscape(other.to_string())),
    })
}

fn utf8(field: Vec<u8>) -> Result<String, LineError> {
    String::from_utf8(field)
        .map_err(|e| LineError::NotUtf8(String::from_utf8_lossy(e.as_bytes()).into_owned()))
}

fn parse_mode(field: Option<Vec<u8>>, default: u32) -> Result<u32, LineError> {
    let Some(field) = field else {
        return Ok(default);
    };
    let text = String::from_utf8_lossy(&field).into_owned();
    match u32::from_str_radix(&text, 8) {
        Ok(mode) if mode <= 0o7777 && !text.starts_with('+') => Ok(mode),
        _ => Err(LineError::BadMode(text)),
    }
}

/// Parses one line; `Ok(None)` for a blank or comment line.
fn parse_line(text: &str, number: usize) -> Result<Option<Line>, LineError> {
    let fields = split_fields(text)?;
    let mut fields = fields.into_iter();
    let Some(kind) = fields.next() else {
        return Ok(None);
    };
    let rest: Vec<Vec<u8>> = fields.collect();
    let count =
        |kind: &'static str, expected: &'static str, range: std::ops::RangeInclusive<usize>| {
            if range.contains(&rest.len()) {
                Ok(())
            } else {
                Err(LineError::FieldCount {
                    kind,
                    expected,
                    found: rest.len(),
                })
            }
        };
    let kind = String::from_utf8_lossy(&kind).into_owned();
    match kind.as_str() {
        "dir" => count("dir", "PATH [MODE]", 1..=2)?,
        "file" => count("file", "PATH SOURCE [MODE]", 2..=3)?,
        "text" => count("text", "PATH CONTENT [MODE]", 2..=3)?,
        "symlink" => count("symlink", "PATH TARGET", 2..=2)?,
        _ => return Err(LineError::UnknownKind(kind)),
    }
    let mut rest = rest.into_iter();
    let path = utf8(rest.next().unwrap_or_default())?;
    let spec = match kind.as_str() {
        "dir" => Spec::Dir {
            mode: parse_mode(rest.next(), image::DIR_MODE)?,
        },
        "file" => {
            let source = utf8(rest.next().unwrap_or_default())?;
            Spec::File {
                source,
                mode: parse_mode(rest.next(), image::FILE_MODE)?,
            }
        }
        "text" => {
            let content = rest.next().unwrap_or_default();
            Spec::Text {
                content,
                mode: parse_mode(rest.next(), image::FILE_MODE)?,
            }
        }
        _ => Spec::Symlink {
            target: utf8(rest.next().unwrap_or_default())?,
        },
    };
    Ok(Some(Line { number, path, spec }))
}

/// Parses a whole manifest; on error, the 1-based number of the bad line and what is wrong.
pub fn parse(text: &str) -> Result<Vec<Line>, (usize, LineError)> {
    let mut lines = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        if let Some(line) = parse_line(line, number).map_err(|e| (number, e))? {
            lines.push(line);
        }
    }
    Ok(lines)
}

/// Finds a `file` line's source on the host.
fn resolve_source(
    source: &str,
    manifest_dir: &Path,
    bin_dirs: &[PathBuf],
) -> Result<PathBuf, LineError> {
    let as_written = Path::new(source);
    let found = if as_written.is_absolute() {
        as_written.to_path_buf()
    } else {
        let beside_manifest = manifest_dir.join(as_written);
        let hits: Vec<&PathBuf> = bin_dirs
            .iter()
            .filter(|dir| dir.join(as_written).is_file())
            .collect();
        match hits.as_slice() {
            [one] => one.join(as_written),
            [] if !bin_dirs.is_empty() && !beside_manifest.exists() => {
                return Err(LineError::NotInBinDir {
                    name: source.to_owned(),
                    dirs: bin_dirs.to_vec(),
                })
            }
            [] => beside_manifest,
            many => {
                return Err(LineError::AmbiguousSource {
                    name: source.to_owned(),
                    dirs: many.iter().map(|d| d.to_path_buf()).collect(),
                })
            }
        }
    };
    match std::fs::metadata(&found) {
        Ok(meta) if meta.is_file() => Ok(found),
        Ok(_) => Err(LineError::NotAFile(found)),
        Err(_) => Err(LineError::SourceNotFound(found)),
    }
}

/// Turns parsed lines into an image, resolving `file` sources (see [`SYNTAX`]).
pub fn build_image(
    lines: &[Line],
    manifest_dir: &Path,
    bin_dirs: &[PathBuf],
) -> Result<Image, (usize, LineError)> {
    let mut image = Image::new();
    for line in lines {
        let entry = match &line.spec {
            Spec::Dir { mode } => Entry {
                mode: *mode,
                content: Content::Dir,
            },
            Spec::File { source, mode } => {
                let host =
                    resolve_source(source, manifest_dir, bin_dirs).map_err(|e| (line.number, e))?;
                Entry {
                    mode: *mode,
                    content: Content::File(Source::Host(host)),
                }
            }
            Spec::Text { content, mode } => Entry {
                mode: *mode,
                content: Content::File(Source::Bytes(content.clone())),
            },
            Spec::Symlink { target } => Entry {
                mode: image::SYMLINK_MODE,
                content: Content::Symlink(target.clone()),
            },
        };
        image
            .insert(&line.path, entry)
            .map_err(|e| (line.number, e.into()))?;
    }
    // A parent that is not a directory is reported on the line of the entry below it.
    image.add_missing_parents().map_err(|e| {
        let number = match &e {
            ImageError::ParentNotDir { path, .. } => lines
                .iter()
                .find(|l| image::normalize_path(&l.path).as_deref() == Ok(path.as_str()))
                .map_or(0, |l| l.number),
            _ => 0,
        };
        (number, e.into())
    })?;
    Ok(image)
}

/// Reads the manifest at `path` and builds its image.
pub fn load(path: &Path, bin_dirs: &[PathBuf]) -> Result<Image, ManifestError> {
    let text = std::fs::read_to_string(path).map_err(|source| ManifestError::Read {
        path: path.to_owned(),
        source,
    })?;
    let at_line = |(line, error)| ManifestError::Line {
        path: path.to_owned(),
        line,
        error,
    };
    let lines = parse(&text).map_err(at_line)?;
    let manifest_dir = path.parent().unwrap_or(Path::new("."));
    build_image(&lines, manifest_dir, bin_dirs).map_err(at_line)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::TempDir;

    fn one(text: &str) -> Result<Line, LineError> {
        match parse(text) {
            Ok(mut lines) => Ok(lines.remove(0)),
            Err((_, e)) => Err(e),
        }
    }

    #[test]
    fn parses_every_kind_with_default_and_explicit_modes() {
        let text = "\
# a comment
dir /etc
dir /tmp 1777   # trailing comment

file /bin/hello hello 0755
file /etc/x ../x
text /etc/motd \"Welcome to astra\\n\"
text /etc/m \"a \\\"b\\\"\\t\\x41\\0\" 600
symlink /bin/sh hello
";
        let lines = parse(text).unwrap();
        let specs: Vec<(usize, &str, &Spec)> = lines
            .iter()
            .map(|l| (l.number, l.path.as_str(), &l.spec))
            .collect();
        assert_eq!(
            specs,
            [
                (2, "/etc", &Spec::Dir { mode: 0o755 }),
                (3, "/tmp", &Spec::Dir { mode: 0o1777 }),
                (
                    5,
                    "/bin/hello",
                    &Spec::File {
                        source: "hello".into(),
                        mode: 0o755
                    }
                ),
                (
                    6,
                    "/etc/x",
                    &Spec::File {
                        source: "../x".into(),
                        mode: 0o644
                    }
                ),
                (
                    7,
                    "/etc/motd",
                    &Spec::Text {
                        content: b"Welcome to astra\n".to_vec(),
                        mode: 0o644
                    }
                ),
                (
                    8,
                    "/etc/m",
                    &Spec::Text {
                        content: b"a \"b\"\tA\0".to_vec(),
                        mode: 0o600
                    }
                ),
                (
                    9,
                    "/bin/sh",
                    &Spec::Symlink {
                        target: "hello".into()
                    }
                ),
            ]
        );
    }

    #[test]
    fn quoted_paths_may_hold_blanks_and_hashes() {
        let line = one("text \"/etc/a b#c\" \"\"").unwrap();
        assert_eq!(line.path, "/etc/a b#c");
        assert_eq!(
            line.spec,
            Spec::Text {
                content: vec![],
                mode: 0o644
            }
        );
    }

    #[test]
    fn bad_lines_say_what_is_wrong() {
        assert_eq!(
            one("fiel /bin/hello hello"),
            Err(LineError::UnknownKind("fiel".into()))
        );
        assert_eq!(
            one("file /bin/hello"),
            Err(LineError::FieldCount {
                kind: "file",
                expected: "PATH SOURCE [MODE]",
                found: 1
            })
        );
        assert_eq!(
            one("symlink /a b c"),
            Err(LineError::FieldCount {
                kind: "symlink",
                expected: "PATH TARGET",
                found: 3
            })
        );
        assert_eq!(
            one("dir"),
            Err(LineError::FieldCount {
                kind: "dir",
                expected: "PATH [MODE]",
                found: 0
            })
        );
        assert_eq!(one("dir /x 0799"), Err(LineError::BadMode("0799".into())));
        assert_eq!(one("dir /x 17777"), Err(LineError::BadMode("17777".into())));
        assert_eq!(one("dir /x +755"), Err(LineError::BadMode("+755".into())));
        assert_eq!(one("text /x \"abc"), Err(LineError::Unterminated));
        assert_eq!(
            one("text /x \"a\\q\""),
            Err(LineError::BadEscape("q".into()))
        );
        assert_eq!(
            one("text /x \"\\xZZ\""),
            Err(LineError::BadEscape("xZZ".into()))
        );
        assert_eq!(one("text /x \"a\"b"), Err(LineError::AfterQuote));
        assert_eq!(
            one("symlink /x \"\\xff\""),
            Err(LineError::NotUtf8("\u{FFFD}".into()))
        );
    }

    #[test]
    fn errors_carry_the_line_number_and_file() {
        let dir = TempDir::new("manifest-errors");
        let path = dir.path().join("test.manifest");
        std::fs::write(&path, "dir /etc\n\n# c\nfiel /bin/hello hello\n").unwrap();
        let err = load(&path, &[]).unwrap_err();
        let chain = format!("{:#}", anyhow::Error::from(err));
        assert_eq!(
            chain,
            format!(
                "{}:4: unknown entry kind 'fiel' (expected dir, file, text or symlink)",
                path.display()
            )
        );
    }

    #[test]
    fn sources_come_from_the_bin_dirs_then_the_manifest_dir() {
        let dir = TempDir::new("manifest-sources");
        let bins = dir.path().join("bins");
        let more = dir.path().join("more");
        std::fs::create_dir(&bins).unwrap();
        std::fs::create_dir(&more).unwrap();
        std::fs::write(bins.join("hello"), b"bin dir hello").unwrap();
        std::fs::write(more.join("cat"), b"second bin dir cat").unwrap();
        std::fs::write(dir.path().join("hello"), b"manifest dir hello").unwrap();
        std::fs::write(dir.path().join("motd"), b"hi").unwrap();
        let both = [bins.clone(), more.clone()];

        let found = resolve_source("hello", dir.path(), &both).unwrap();
        assert_eq!(found, bins.join("hello"));
        let found = resolve_source("cat", dir.path(), &both).unwrap();
        assert_eq!(found, more.join("cat"));
        let found = resolve_source("hello", dir.path(), &[]).unwrap();
        assert_eq!(found, dir.path().join("hello"));
        let found = resolve_source("motd", dir.path(), &both).unwrap();
        assert_eq!(found, dir.path().join("motd"));

        let missing = resolve_source("nope", dir.path(), &both).unwrap_err();
        assert_eq!(
            missing,
            LineError::NotInBinDir {
                name: "nope".into(),
                dirs: both.to_vec()
            }
        );
        let text = missing.to_string();
        assert!(text.starts_with("bin dir: 'nope' not found in '"), "{text}");
        assert!(text.contains("bins', '"), "{text}");
        assert_eq!(
            resolve_source("nope", dir.path(), &[]),
            Err(LineError::SourceNotFound(dir.path().join("nope")))
        );
        assert_eq!(
            resolve_source("bins", dir.path(), &[]),
            Err(LineError::NotAFile(dir.path().join("bins")))
        );

        // The same name in two bin dirs is refused rather than picked silently.
        std::fs::write(more.join("hello"), b"another hello").unwrap();
        let err = resolve_source("hello", dir.path(), &both).unwrap_err();
        assert_eq!(
            err,
            LineError::AmbiguousSource {
                name: "hello".into(),
                dirs: both.to_vec()
            }
        );
        assert!(err.to_string().contains("more than one bin dir"), "{err}");
        // A directory of that name in a bin dir does not count (cargo's target dirs hold
        // `build/` and `deps/`).
        std::fs::create_dir(bins.join("motd")).unwrap();
        let found = resolve_source("motd", dir.path(), &both).unwrap();
        assert_eq!(found, dir.path().join("motd"));
    }

    #[test]
    fn builds_an_image_and_reports_the_offending_line() {
        let dir = TempDir::new("manifest-build");
        std::fs::write(dir.path().join("hello"), b"\x7fELF").unwrap();
        let lines = parse("file /bin/hello hello 0755\nsymlink /bin/sh hello\n").unwrap();
        let image = build_image(&lines, dir.path(), &[]).unwrap();
        let paths: Vec<&str> = image.iter().map(|(p, _)| p).collect();
        assert_eq!(paths, ["bin", "bin/hello", "bin/sh"]);

        let lines = parse("dir /etc\ntext /etc/motd hi\ndir /etc/\n").unwrap();
        let err = build_image(&lines, dir.path(), &[]).unwrap_err();
        assert_eq!(
            err,
            (3, LineError::Image(ImageError::Duplicate("etc".into())))
        );

        let lines = parse("text /etc hi\ntext /etc/motd hi\n").unwrap();
        let err = build_image(&lines, dir.path(), &[]).unwrap_err();
        assert_eq!(err.0, 2);
        assert!(matches!(
            err.1,
            LineError::Image(ImageError::ParentNotDir { .. })
        ));
    }
}

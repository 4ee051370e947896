//! The in-memory image: every entry of the root filesystem, keyed by its path in the archive.
//!
//! Paths are stored relative (`bin/hello`, no leading `/` or `./`, no trailing `/`) and kept in
//! a `BTreeMap`, so iteration is sorted by path bytes and a directory always comes before
//! what is inside it.

use std::collections::BTreeMap;
use std::path::PathBuf;

/// Default permissions of a directory.
pub const DIR_MODE: u32 = 0o755;
/// Default permissions of a regular file.
pub const FILE_MODE: u32 = 0o644;
/// Permissions of a symbolic link (ignored by everyone, `lrwxrwxrwx` by convention).
pub const SYMLINK_MODE: u32 = 0o777;

/// Errors building an image.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ImageError {
    /// The path is empty or names the root directory, which is implicit.
    #[error("path '{0}' names the root directory, which is implicit")]
    RootPath(String),
    /// The path has a `..` component.
    #[error("path '{0}' contains '..'")]
    ParentComponent(String),
    /// The path has a NUL byte.
    #[error("path '{0}' contains a NUL byte")]
    NulByte(String),
    /// Two entries have the same path.
    #[error("'/{0}' is already in the image")]
    Duplicate(String),
    /// An entry's parent exists but is not a directory.
    #[error("parent '/{parent}' of '/{path}' is not a directory")]
    ParentNotDir {
        /// The entry being added.
        path: String,
        /// Its parent, which is a file or symlink.
        parent: String,
    },
    /// A mode has bits beyond the permission, setuid, setgid and sticky bits.
    #[error("mode {0:o} is out of range (at most 7777)")]
    BadMode(u32),
    /// A symbolic link with an empty target.
    #[error("symlink '/{0}' has an empty target")]
    EmptyLinkTarget(String),
}

/// Where a regular file's bytes come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// A file on the host, read when the archive is written.
    Host(PathBuf),
    /// Bytes given inline.
    Bytes(Vec<u8>),
}

/// What an entry is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Content {
    /// A directory.
    Dir,
    /// A regular file.
    File(Source),
    /// A symbolic link to the given target (stored as is, relative or absolute).
    Symlink(String),
}

/// One entry of the image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Permission bits (`0o7777` at most).
    pub mode: u32,
    /// What the entry is.
    pub content: Content,
}

/// A root filesystem image, sorted by path.
#[derive(Debug, Default)]
pub struct Image {
    entries: BTreeMap<String, Entry>,
}

/// Turns `/bin//./hello` or `bin/hello/` into `bin/hello`; refuses `..`, NUL and the root.
pub fn normalize_path(path: &str) -> Result<String, ImageError> {
    if path.contains('\0') {
        return Err(ImageError::NulByte(path.escape_default().to_string()));
    }
    let mut parts = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err(ImageError::ParentComponent(path.to_owned())),
            part => parts.push(part),
        }
    }
    if parts.is_empty() {
        return Err(ImageError::RootPath(path.to_owned()));
    }
    Ok(parts.join("/"))
}

impl Image {
    /// An empty image.
    pub fn new() -> Image {
        Image::default()
    }

    /// Adds `entry` at `path` (any form [`normalize_path`] accepts).
    pub fn insert(&mut self, path: &str, entry: Entry) -> Result<(), ImageError> {
        let path = normalize_path(path)?;
        if entry.mode > 0o7777 {
            return Err(ImageError::BadMode(entry.mode));
        }
        if matches!(&entry.content, Content::Symlink(target) if target.is_empty()) {
            return Err(ImageError::EmptyLinkTarget(path));
        }
        if self.entries.contains_key(&path) {
            return Err(ImageError::Duplicate(path));
        }
        self.entries.insert(path, entry);
        Ok(())
    }

    /// Whether `path` (normalized as by [`normalize_path`]) has an entry.
    pub fn contains(&self, path: &str) -> bool {
        normalize_path(path).is_ok_and(|p| self.entries.contains_key(&p))
    }

    /// Whether `path` has an entry or one of its ancestors is a symlink (below which
    /// nothing can be added).
    pub fn covers(&self, path: &str) -> bool {
        let Ok(path) = normalize_path(path) else {
            return false;
        };
        let mut prefix = String::new();
        for part in path.split('/') {
            if !prefix.is_empty() {
                prefix.push('/');
            }
            prefix.push_str(part);
            if matches!(
                self.entries.get(&prefix),
                Some(Entry {
                    content: Content::Symlink(_),
                    ..
                })
            ) {
                return true;
            }
        }
        self.entries.contains_key(&path)
    }

    /// Adds a directory entry (mode [`DIR_MODE`]) for every missing ancestor of every entry,
    /// and checks that every existing ancestor is a directory.
    pub fn add_missing_parents(&mut self) -> Result<(), ImageError> {
        let mut missing = Vec::new();
        for path in self.entries.keys() {
            let mut parent = path.as_str();
            while let Some((up, _)) = parent.rsplit_once('/') {
                parent = up;
                match self.entries.get(parent) {
                    Some(Entry {
                        content: Content::Dir,
                        ..
                    }) => {}
                    Some(_) => {
                        return Err(ImageError::ParentNotDir {
                            path: path.clone(),
                            parent: parent.to_owned(),
                        })
                    }
                    None => missing.push(parent.to_owned()),
                }
            }
        }
        for parent in missing {
            self.entries.entry(parent).or_insert(Entry {
                mode: DIR_MODE,
                content: Content::Dir,
            });
        }
        Ok(())
    }

    /// The entries, sorted by path.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Entry)> {
        self.entries
            .iter()
            .map(|(path, entry)| (path.as_str(), entry))
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn covers_entries_and_paths_below_symlinks() {
        let mut image = Image::new();
        let link = Entry {
            mode: SYMLINK_MODE,
            content: Content::Symlink("usr/bin".into()),
        };
        let file = Entry {
            mode: FILE_MODE,
            content: Content::File(Source::Bytes(Vec::new())),
        };
        image.insert("/bin", link).unwrap();
        image.insert("/etc/motd", file).unwrap();
        assert!(image.covers("/bin/sh") && image.covers("/bin"));
        assert!(image.covers("/etc/motd") && !image.covers("/etc/other"));
        assert!(image.contains("etc/motd") && !image.contains("/bin/sh"));
        assert!(!image.covers("/") && !image.covers("/a/../b"));
    }

    fn dir() -> Entry {
        Entry {
            mode: DIR_MODE,
            content: Content::Dir,
        }
    }

    fn text(bytes: &[u8]) -> Entry {
        Entry {
            mode: FILE_MODE,
            content: Content::File(Source::Bytes(bytes.to_vec())),
        }
    }

    #[test]
    fn normalizes_paths() {
        assert_eq!(normalize_path("/bin/hello").unwrap(), "bin/hello");
        assert_eq!(normalize_path("bin//./hello/").unwrap(), "bin/hello");
        assert_eq!(normalize_path("./init").unwrap(), "init");
        assert_eq!(normalize_path("/"), Err(ImageError::RootPath("/".into())));
        assert_eq!(normalize_path(""), Err(ImageError::RootPath("".into())));
        assert_eq!(
            normalize_path("/a/../b"),
            Err(ImageError::ParentComponent("/a/../b".into()))
        );
        assert!(matches!(
            normalize_path("/a\0b"),
            Err(ImageError::NulByte(_))
        ));
    }

    #[test]
    fn sorted_with_parents_first_and_missing_parents_added() {
        let mut image = Image::new();
        image.insert("/usr/share/doc/readme", text(b"hi")).unwrap();
        image.insert("/bin-extra", text(b"")).unwrap();
        image.insert("/bin/hello", text(b"")).unwrap();
        image
            .insert(
                "/bin",
                Entry {
                    mode: 0o700,
                    content: Content::Dir,
                },
            )
            .unwrap();
        image.add_missing_parents().unwrap();
        let paths: Vec<&str> = image.iter().map(|(p, _)| p).collect();
        assert_eq!(
            paths,
            [
                "bin",
                "bin-extra",
                "bin/hello",
                "usr",
                "usr/share",
                "usr/share/doc",
                "usr/share/doc/readme"
            ]
        );
        // An explicit directory keeps its own mode.
        assert_eq!(image.iter().next().unwrap().1.mode, 0o700);
        assert_eq!(image.len(), 7);
    }

    #[test]
    fn refuses_duplicates_bad_modes_and_file_parents() {
        let mut image = Image::new();
        image.insert("/etc", dir()).unwrap();
        assert_eq!(
            image.insert("etc/", dir()),
            Err(ImageError::Duplicate("etc".into()))
        );
        let mut bad = text(b"");
        bad.mode = 0o10000;
        assert_eq!(image.insert("/x", bad), Err(ImageError::BadMode(0o10000)));
        let link = Entry {
            mode: SYMLINK_MODE,
            content: Content::Symlink(String::new()),
        };
        assert_eq!(
            image.insert("/l", link),
            Err(ImageError::EmptyLinkTarget("l".into()))
        );

        image.insert("/etc/motd", text(b"hi")).unwrap();
        image.insert("/etc/motd/oops", text(b"")).unwrap();
        assert_eq!(
            image.add_missing_parents(),
            Err(ImageError::ParentNotDir {
                path: "etc/motd/oops".into(),
                parent: "etc/motd".into()
            })
        );
    }
}

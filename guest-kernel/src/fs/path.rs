//! Path helpers shared by tarfs and the VFS: component iteration, joining a relative path
//! onto a working directory, lexical normalisation, and the Linux length limits
//! (`PATH_MAX` 4096 with the NUL, `NAME_MAX` 255 per component → `ENAMETOOLONG`).
//!
//! Two kinds of "clean" path exist here on purpose:
//! - [`join`] only removes empty and `.` components and keeps `..`, because `a/link/..` must be
//!   resolved through the symlink `link` by the filesystem, not cancelled lexically;
//! - [`normalize`] also cancels `..` lexically (at the root it stays at the root); use it only on
//!   paths that are known to contain no symlinks, e.g. one that was already resolved.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// Longest path accepted, in bytes, including the terminating NUL a C caller would pass
/// (Linux `PATH_MAX`): a path string of 4096 bytes or more is `ENAMETOOLONG`.
pub const PATH_MAX: usize = 4096;

/// Longest single path component, in bytes (Linux `NAME_MAX`).
pub const NAME_MAX: usize = 255;

/// Why a path was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathError {
    /// The path is empty (Linux: `ENOENT`).
    Empty,
    /// The path, or one of its components, is too long (Linux: `ENAMETOOLONG`).
    NameTooLong,
}

impl PathError {
    /// The Linux errno for this error.
    pub fn errno(self) -> i32 {
        match self {
            PathError::Empty => 2,
            PathError::NameTooLong => 36,
        }
    }
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathError::Empty => f.write_str("empty path"),
            PathError::NameTooLong => f.write_str("path or path component too long"),
        }
    }
}

/// One component of a path, as returned by [`components`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Component<'a> {
    /// `..`: the parent directory.
    ParentDir,
    /// A name (never empty, never `.` or `..`, never containing `/`).
    Normal(&'a str),
}

/// Whether `path` starts at the root.
pub fn is_absolute(path: &str) -> bool {
    path.starts_with('/')
}

/// Whether `path` ends with a `/` after a name (`"a/"`, `"a/."` does not count). Linux then
/// requires the final component to be a directory, following a final symlink.
pub fn has_trailing_slash(path: &str) -> bool {
    path.len() > 1 && path.ends_with('/')
}

/// Checks the Linux length limits: the whole string (`PATH_MAX`) and each component
/// (`NAME_MAX`). An empty path is [`PathError::Empty`].
pub fn check(path: &str) -> Result<(), PathError> {
    if path.is_empty() {
        return Err(PathError::Empty);
    }
    if path.len() >= PATH_MAX {
        return Err(PathError::NameTooLong);
    }
    if path.split('/').any(|name| name.len() > NAME_MAX) {
        return Err(PathError::NameTooLong);
    }
    Ok(())
}

/// Iterates over the components of `path`, skipping empty components (repeated or trailing
/// `/`) and `.`; `..` is reported as [`Component::ParentDir`]. Whether the path is absolute
/// must be checked separately with [`is_absolute`].
pub fn components(path: &str) -> impl DoubleEndedIterator<Item = Component<'_>> + Clone {
    path.split('/')
        .filter(|name| !name.is_empty() && *name != ".")
        .map(|name| {
            if name == ".." {
                Component::ParentDir
            } else {
                Component::Normal(name)
            }
        })
}

/// Joins `path` onto the absolute directory `cwd` (an absolute `path` ignores `cwd`) and
/// returns an absolute path without empty or `.` components. `..` components are kept (see the
/// module documentation); a trailing `/` of `path` is kept as it carries meaning.
///
/// Errors: empty `path` → [`PathError::Empty`]; `path` or the result too long →
/// [`PathError::NameTooLong`].
pub fn join(cwd: &str, path: &str) -> Result<String, PathError> {
    check(path)?;
    let mut out = String::new();
    let bases = if is_absolute(path) { "" } else { cwd };
    for c in components(bases).chain(components(path)) {
        out.push('/');
        match c {
            Component::ParentDir => out.push_str(".."),
            Component::Normal(name) => out.push_str(name),
        }
    }
    if out.is_empty() || has_trailing_slash(path) {
        out.push('/');
    }
    check(&out)?;
    Ok(out)
}

/// Lexically normalises `path` (taken relative to `/` if it is not absolute) into an absolute
/// path with no empty, `.` or `..` components and no trailing `/`; `..` at the root stays at the
/// root. Only correct for paths without symlinks (see the module documentation).
pub fn normalize(path: &str) -> Result<String, PathError> {
    check(path)?;
    let mut names: Vec<&str> = Vec::new();
    for c in components(path) {
        match c {
            Component::ParentDir => {
                names.pop();
            }
            Component::Normal(name) => names.push(name),
        }
    }
    let mut out = String::with_capacity(path.len() + 1);
    for name in &names {
        out.push('/');
        out.push_str(name);
    }
    if out.is_empty() {
        out.push('/');
    }
    Ok(out)
}

/// Splits `path` into its parent directory and final name, ignoring trailing `/`:
/// `"/a/b/"` → `("/a", "b")`, `"b"` → `("", "b")`, `"/b"` → `("/", "b")`. Returns `None` when
/// there is no final name (`"/"`, `""`, or a path ending in `.` or `..`), which callers creating
/// or removing entries turn into `EEXIST`/`EBUSY`/`EINVAL` as Linux does.
pub fn split_parent(path: &str) -> Option<(&str, &str)> {
    let trimmed = path.trim_end_matches('/');
    let (parent, name) = match trimmed.rfind('/') {
        Some(i) => (trimmed.get(..i)?, trimmed.get(i + 1..)?),
        None => ("", trimmed),
    };
    if name.is_empty() || name == "." || name == ".." {
        return None;
    }
    let parent = parent.trim_end_matches('/');
    if parent.is_empty() && is_absolute(path) {
        return Some(("/", name));
    }
    Some((parent, name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn components_skip_empty_and_dot() {
        let got: Vec<_> = components("//a/./b//../c/").collect();
        assert_eq!(
            got,
            vec![
                Component::Normal("a"),
                Component::Normal("b"),
                Component::ParentDir,
                Component::Normal("c")
            ]
        );
        assert_eq!(components("/").count(), 0);
        assert_eq!(components("").count(), 0);
        assert_eq!(
            components("...").collect::<Vec<_>>(),
            vec![Component::Normal("...")]
        );
    }

    #[test]
    fn join_relative_and_absolute() {
        assert_eq!(join("/home/u", "x/y").unwrap(), "/home/u/x/y");
        assert_eq!(join("/home/u", "/etc/./passwd").unwrap(), "/etc/passwd");
        assert_eq!(join("/", ".").unwrap(), "/");
        assert_eq!(join("/a", "../b").unwrap(), "/a/../b");
        assert_eq!(join("/a", "b/").unwrap(), "/a/b/");
        assert_eq!(join("/", "/").unwrap(), "/");
        assert_eq!(join("/a", ""), Err(PathError::Empty));
    }

    #[test]
    fn normalize_handles_dotdot_at_root() {
        assert_eq!(normalize("/../../a/..").unwrap(), "/");
        assert_eq!(normalize("/a/b/../c/./d/").unwrap(), "/a/c/d");
        assert_eq!(normalize("a/b").unwrap(), "/a/b");
        assert_eq!(normalize("/..").unwrap(), "/");
        assert_eq!(normalize(""), Err(PathError::Empty));
    }

    #[test]
    fn length_limits() {
        let long = "a".repeat(PATH_MAX);
        assert_eq!(normalize(&long), Err(PathError::NameTooLong));
        let ok_len = alloc::format!("/{}", "b/".repeat(2000));
        assert!(ok_len.len() < PATH_MAX);
        assert!(check(&ok_len).is_ok());
        let name = "n".repeat(NAME_MAX + 1);
        assert_eq!(check(&name), Err(PathError::NameTooLong));
        assert!(check(&"n".repeat(NAME_MAX)).is_ok());
        // The joined result may exceed the limit although each part is fine.
        let half = alloc::format!("/{}", "c/".repeat(1200));
        assert_eq!(join(&half, &half[1..]), Err(PathError::NameTooLong));
        assert_eq!(PathError::NameTooLong.errno(), 36);
        assert_eq!(PathError::Empty.errno(), 2);
    }

    #[test]
    fn split_parent_cases() {
        assert_eq!(split_parent("/a/b/"), Some(("/a", "b")));
        assert_eq!(split_parent("/b"), Some(("/", "b")));
        assert_eq!(split_parent("//b"), Some(("/", "b")));
        assert_eq!(split_parent("b"), Some(("", "b")));
        assert_eq!(split_parent("x//b"), Some(("x", "b")));
        assert_eq!(split_parent("/"), None);
        assert_eq!(split_parent(""), None);
        assert_eq!(split_parent("/a/.."), None);
        assert_eq!(split_parent("/a/."), None);
    }

    #[test]
    fn trailing_slash() {
        assert!(has_trailing_slash("/a/"));
        assert!(!has_trailing_slash("/"));
        assert!(!has_trailing_slash("/a"));
    }
}

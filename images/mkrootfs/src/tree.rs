//! Reading a host directory tree into an [`Image`]: every file, directory and symbolic link
//! under it, with its permission bits (owners and times are not kept).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::image::{Content, Entry, Image, ImageError, Source, SYMLINK_MODE};

/// Errors reading the tree.
#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    /// A file or directory cannot be read.
    #[error("cannot read '{path}'")]
    Read {
        /// What could not be read.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The root is not a directory.
    #[error("'{0}' is not a directory")]
    NotADir(PathBuf),
    /// A name that is not UTF-8.
    #[error("'{0}': file names must be UTF-8")]
    NotUtf8(PathBuf),
    /// A socket, FIFO or device node.
    #[error("'{0}' is not a file, directory or symlink")]
    Unsupported(PathBuf),
    /// The entry does not fit in the image.
    #[error("'{path}'")]
    Image {
        /// The host path.
        path: PathBuf,
        /// Why.
        #[source]
        source: ImageError,
    },
}

fn read_error(path: &Path) -> impl FnOnce(std::io::Error) -> TreeError + '_ {
    move |source| TreeError::Read {
        path: path.to_owned(),
        source,
    }
}

/// Reads everything under `root` (not `root` itself, the image's implicit `/`).
pub fn read_tree(root: &Path) -> Result<Image, TreeError> {
    let meta = fs::metadata(root).map_err(read_error(root))?;
    if !meta.is_dir() {
        return Err(TreeError::NotADir(root.to_owned()));
    }
    let mut image = Image::new();
    add_dir(&mut image, root, "")?;
    Ok(image)
}

fn add_dir(image: &mut Image, dir: &Path, prefix: &str) -> Result<(), TreeError> {
    let mut children = Vec::new();
    for child in fs::read_dir(dir).map_err(read_error(dir))? {
        children.push(child.map_err(read_error(dir))?);
    }
    children.sort_by_key(|c| c.file_name());
    for child in children {
        let host = child.path();
        let name = child
            .file_name()
            .into_string()
            .map_err(|_| TreeError::NotUtf8(host.clone()))?;
        let path = format!("{prefix}/{name}");
        let meta = fs::symlink_metadata(&host).map_err(read_error(&host))?;
        let mode = meta.permissions().mode() & 0o7777;
        let entry = if meta.is_dir() {
            Entry {
                mode,
                content: Content::Dir,
            }
        } else if meta.is_file() {
            Entry {
                mode,
                content: Content::File(Source::Host(host.clone())),
            }
        } else if meta.file_type().is_symlink() {
            let target = fs::read_link(&host).map_err(read_error(&host))?;
            let target = target
                .into_os_string()
                .into_string()
                .map_err(|_| TreeError::NotUtf8(host.clone()))?;
            Entry {
                mode: SYMLINK_MODE,
                content: Content::Symlink(target),
            }
        } else {
            return Err(TreeError::Unsupported(host));
        };
        image
            .insert(&path, entry)
            .map_err(|source| TreeError::Image {
                path: host.clone(),
                source,
            })?;
        if meta.is_dir() {
            add_dir(image, &host, &path)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::TempDir;

    #[test]
    fn reads_files_dirs_and_symlinks_with_modes() {
        let dir = TempDir::new("tree");
        let root = dir.path();
        fs::create_dir_all(root.join("bin")).unwrap();
        fs::create_dir_all(root.join("etc/empty")).unwrap();
        fs::write(root.join("bin/hello"), b"elf").unwrap();
        fs::set_permissions(root.join("bin/hello"), fs::Permissions::from_mode(0o755)).unwrap();
        fs::write(root.join("etc/motd"), b"hi").unwrap();
        fs::set_permissions(root.join("etc/motd"), fs::Permissions::from_mode(0o640)).unwrap();
        fs::set_permissions(root.join("etc/empty"), fs::Permissions::from_mode(0o700)).unwrap();
        std::os::unix::fs::symlink("hello", root.join("bin/sh")).unwrap();

        let image = read_tree(root).unwrap();
        let rows: Vec<(&str, u32, &Content)> =
            image.iter().map(|(p, e)| (p, e.mode, &e.content)).collect();
        assert_eq!(
            rows,
            [
                ("bin", rows[0].1, &Content::Dir),
                (
                    "bin/hello",
                    0o755,
                    &Content::File(Source::Host(root.join("bin/hello")))
                ),
                ("bin/sh", 0o777, &Content::Symlink("hello".into())),
                ("etc", rows[3].1, &Content::Dir),
                ("etc/empty", 0o700, &Content::Dir),
                (
                    "etc/motd",
                    0o640,
                    &Content::File(Source::Host(root.join("etc/motd")))
                ),
            ]
        );
    }

    #[test]
    fn refuses_a_file_as_root() {
        let dir = TempDir::new("tree-file");
        let file = dir.path().join("f");
        fs::write(&file, b"").unwrap();
        assert!(matches!(read_tree(&file), Err(TreeError::NotADir(_))));
        assert!(matches!(
            read_tree(&dir.path().join("nope")),
            Err(TreeError::Read { .. })
        ));
    }
}

//! Where the guest kernel is when `--kernel` is not given.
//!
//! In order: `$ASTRA_KERNEL` (through clap, as `--kernel`'s default), then beside the
//! executable as `make install` puts it (`<bindir>/../share/astra/guest.elf`), then in the
//! executable's own directory, then the kernel of the source tree this VMM was built from
//! (`build/guest.elf`, a path fixed at compile time, for `target/release/astra-vmm`).

use std::path::{Path, PathBuf};

/// The environment variable that names the kernel (the default of `--kernel`).
pub const KERNEL_ENV: &str = "ASTRA_KERNEL";
/// The kernel's file name.
pub const KERNEL_FILE: &str = "guest.elf";
/// Where the kernel is installed, relative to the directory of `astra-vmm`.
pub const INSTALLED_RELATIVE: &str = "../share/astra/guest.elf";
/// The kernel of the source tree this VMM was built from.
pub const BUILD_TREE_KERNEL: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../build/guest.elf");

/// No kernel anywhere it is looked for.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "No guest kernel found: give --kernel PATH or set {KERNEL_ENV} (looked for {})",
    .0.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
)]
pub struct NoKernel(pub Vec<PathBuf>);

/// The places looked at, in order, for an executable at `exe` (None if unknown).
pub fn candidates(exe: Option<&Path>) -> Vec<PathBuf> {
    let mut places = Vec::new();
    if let Some(dir) = exe.and_then(Path::parent) {
        places.push(normalize(&dir.join(INSTALLED_RELATIVE)));
        places.push(dir.join(KERNEL_FILE));
    }
    places.push(normalize(Path::new(BUILD_TREE_KERNEL)));
    places
}

/// The first of [`candidates`] that `exists` says is a file.
pub fn find(exe: Option<&Path>, exists: impl Fn(&Path) -> bool) -> Result<PathBuf, NoKernel> {
    let places = candidates(exe);
    places
        .iter()
        .find(|p| exists(p))
        .cloned()
        .ok_or(NoKernel(places))
}

/// Drops `..` components lexically (the paths are for messages and opening; the
/// executable's directory is already canonical when it comes from `current_exe`).
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            std::path::Component::ParentDir if out.file_name().is_some() => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn installed_then_same_directory_then_build_tree() {
        let places = candidates(Some(Path::new("/opt/astra/bin/astra-vmm")));
        assert_eq!(places[0], Path::new("/opt/astra/share/astra/guest.elf"));
        assert_eq!(places[1], Path::new("/opt/astra/bin/guest.elf"));
        assert!(places[2].ends_with("build/guest.elf"), "{places:?}");
        assert!(!places[2].to_string_lossy().contains(".."), "{places:?}");
        assert_eq!(candidates(None).len(), 1);
    }

    #[test]
    fn the_first_existing_wins_and_the_error_lists_all() {
        let exe = Some(Path::new("/p/bin/astra-vmm"));
        let found = find(exe, |p| p == Path::new("/p/bin/guest.elf"));
        assert_eq!(found, Ok(PathBuf::from("/p/bin/guest.elf")));
        let found = find(exe, |_| true);
        assert_eq!(found, Ok(PathBuf::from("/p/share/astra/guest.elf")));
        let err = find(exe, |_| false).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("--kernel") && text.contains(KERNEL_ENV),
            "{text}"
        );
        assert!(
            text.contains("/p/share/astra/guest.elf, /p/bin/guest.elf, "),
            "{text}"
        );
        assert_eq!(err.0.len(), 3);
    }
}

//! `fscheck`: std file-system conformance on a writable file system. Prints one
//! `PASS name` / `FAIL name: why` line per check and a summary; exits 0 only if every check
//! passed. The same expectations hold on astra and on Linux (the reference tier runs it in
//! a chroot of the image with an overlay root and a tmpfs `/tmp`).
//!
//! - `fscheck [DIR]`: create/read/write/append/seek/truncate/rename/remove/read_dir/
//!   metadata/permissions/symlinks/hard links/canonicalize/set_current_dir/copy/times and
//!   error kinds, in a fresh directory under DIR (default `/tmp`).
//! - `fscheck overlay`: edits, renames and deletes files of the image's root and reads
//!   them back.
//! - `fscheck fill [DIR]`: writes into DIR (default `/tmp`) until the file system is full:
//!   ENOSPC, and the space comes back when the file goes. `fscheck fill-inodes [DIR]`:
//!   creates empty files until that fails (the inode limit or the kernel's memory budget).

mod basic;
mod links;
mod overlay;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use astra_std_apps::checks::Checks;

/// A fresh directory for one run, removed at the end.
pub struct Scratch(PathBuf, bool);

impl Scratch {
    fn new(parent: &Path) -> std::io::Result<Scratch> {
        let dir = parent.join(format!("fscheck.{}", std::process::id()));
        if dir.exists() {
            std::fs::remove_dir_all(&dir)?;
        }
        std::fs::create_dir(&dir)?;
        // Linux's overlayfs (the reference root) reports the upper layer's inode numbers in
        // directory entries but its own in stat unless `xino` is on: compare them only in a
        // tmpfs (anywhere but the root).
        let tmpfs = parent != Path::new("/");
        Ok(Scratch(dir, tmpfs))
    }

    /// Whether `d_ino` and `st_ino` agree here (see `new`).
    pub fn inodes_agree(&self) -> bool {
        self.1
    }

    /// `name` in the scratch directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The errno of an error, for messages and checks.
pub fn errno(e: &std::io::Error) -> i32 {
    e.raw_os_error().unwrap_or(-1)
}

/// Checks that `r` failed with `want` (an errno); returns a short description.
pub fn fails_with<T: std::fmt::Debug>(
    what: &str,
    r: std::io::Result<T>,
    want: i32,
) -> Result<String, String> {
    match r {
        Ok(v) => Err(format!("{what}: succeeded ({v:?}), expected errno {want}")),
        Err(e) if errno(&e) == want => Ok(format!("{what}: {}", astra_std_apps::error_text(&e))),
        Err(e) => Err(format!("{what}: {e:?}, expected errno {want}")),
    }
}

/// Runs `f` and turns an I/O error into a failure message naming `what`.
pub fn io<T>(what: &str, r: std::io::Result<T>) -> Result<T, String> {
    r.map_err(|e| format!("{what}: {e}"))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("overlay") => {
            let mut checks = Checks::stdout("fscheck overlay");
            overlay::run(&mut checks);
            checks.finish()
        }
        Some(mode @ ("fill" | "fill-inodes")) => overlay::fill(
            Path::new(args.get(2).map_or("/tmp", String::as_str)),
            mode == "fill-inodes",
        ),
        dir => {
            let parent = Path::new(dir.unwrap_or("/tmp"));
            let scratch = match Scratch::new(parent) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!(
                        "fscheck: cannot make a directory in {}: {e}",
                        parent.display()
                    );
                    return ExitCode::FAILURE;
                }
            };
            let mut checks = Checks::stdout("fscheck");
            basic::run(&mut checks, &scratch);
            links::run(&mut checks, &scratch);
            checks.finish()
        }
    }
}

//! The root filesystem the guest gets, from `--rootfs` (a TAR file or a host directory) and
//! a host program given as PROG.
//!
//! - A TAR file is mapped as it is ([`RootfsImage::open`]).
//! - A directory is packed into a TAR in memory at start (mkrootfs' `read_tree`: files,
//!   directories and symlinks with their permission bits; symlinks are kept as symlinks,
//!   never followed, so nothing outside the directory gets in).
//! - A host program (PROG naming an executable host file) is put into the guest at the same
//!   absolute path: over a minimal root ([`minimal_root`]) without `--rootfs`; added to a
//!   directory's image; appended to a TAR as one more entry (a later TAR entry adds to the
//!   tree, as tarfs reads it). A rootfs that already has that path keeps its own file.

use std::path::{Component, Path, PathBuf};

use mkrootfs::archive::{write_archive, ArchiveError};
use mkrootfs::image::{Content, Entry, Image, ImageError, Source, DIR_MODE, FILE_MODE};
use mkrootfs::tree::{read_tree, TreeError};

use crate::devices::rootfs::{self, RootfsError, RootfsImage};

/// Errors building the guest's root filesystem.
#[derive(Debug, thiserror::Error)]
pub enum RootfsBuildError {
    /// A TAR file or the packed image is unusable.
    #[error(transparent)]
    Rootfs(#[from] RootfsError),
    /// `--rootfs DIR` cannot be read.
    #[error("Cannot pack the rootfs directory")]
    Tree(#[from] TreeError),
    /// An entry does not fit the image.
    #[error("Cannot build the guest's root")]
    Image(#[from] ImageError),
    /// The TAR cannot be written.
    #[error("Cannot build the guest's root")]
    Archive(#[from] ArchiveError),
    /// The host program cannot be read.
    #[error("Cannot read the program '{0}'")]
    ReadProgram(PathBuf, #[source] std::io::Error),
    /// A dynamically linked host program with no rootfs to provide its libraries.
    #[error(
        "'{path}' is dynamically linked (interpreter {interpreter}), and the minimal root astra builds without --rootfs has no libraries: build it static (e.g. --target x86_64-unknown-linux-musl) or give a --rootfs that holds its interpreter and libraries"
    )]
    Dynamic {
        /// The program.
        path: PathBuf,
        /// Its `PT_INTERP`.
        interpreter: String,
    },
}

/// Where the guest kernel mounts its own file systems over the root (`fs/vfs.rs`): a file
/// the root has below them is hidden in the guest.
pub const GUEST_MOUNTS: [&str; 4] = ["/dev", "/proc", "/tmp", "/run"];

/// A host executable to run in the guest at the same absolute path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostProgram {
    /// Where it is on the host.
    pub host_path: PathBuf,
    /// Where it goes in the guest: the host path made absolute and normalized (no `.`, `..`).
    pub guest_path: String,
}

impl HostProgram {
    /// Whether the program lies below one of [`GUEST_MOUNTS`], where a root entry would be
    /// hidden: it then reaches the guest through a read-only volume of its directory
    /// ([`HostProgram::directory_volume`]) instead of the root.
    pub fn under_guest_mount(&self) -> bool {
        GUEST_MOUNTS.iter().any(|m| {
            self.guest_path
                .strip_prefix(m)
                .is_some_and(|r| r.starts_with('/'))
        })
    }

    /// `(host directory, guest directory)` of the program: for a read-only volume.
    pub fn directory_volume(&self) -> Option<(PathBuf, String)> {
        let host = std::fs::canonicalize(&self.host_path).ok()?;
        let host_dir = host.parent()?.to_owned();
        let guest_dir = Path::new(&self.guest_path).parent()?.to_str()?.to_owned();
        Some((host_dir, guest_dir))
    }

    /// `prog` as a host program if it contains a `/` and names an executable regular file
    /// (symlinks followed); relative paths are taken from `cwd`.
    pub fn detect(prog: &Path, cwd: &Path) -> Option<HostProgram> {
        use std::os::unix::fs::PermissionsExt;
        if !prog.as_os_str().as_encoded_bytes().contains(&b'/') {
            return None;
        }
        let meta = std::fs::metadata(prog).ok()?;
        if !meta.is_file() || meta.permissions().mode() & 0o111 == 0 {
            return None;
        }
        let guest_path = lexical_absolute(prog, cwd)?;
        Some(HostProgram {
            host_path: prog.to_owned(),
            guest_path,
        })
    }
}

/// `path` joined onto `cwd` when relative, with `.` and `..` resolved lexically; `None` if
/// it is not UTF-8 (tarfs names are UTF-8).
fn lexical_absolute(path: &Path, cwd: &Path) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    let full = cwd.join(path);
    for part in full.components() {
        match part {
            Component::Normal(name) => parts.push(name.to_str()?),
            Component::ParentDir => {
                parts.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    Some(format!("/{}", parts.join("/")))
}

/// The root a host program runs over without `--rootfs`: `/tmp` (1777), `/dev`, `/proc`,
/// `/root` and `/etc` with `passwd`, `group`, `hosts`, `hostname` and `nsswitch.conf` (the
/// kernel mounts its devices, procfs and tmpfs instances over those directories).
pub fn minimal_root() -> Result<Image, ImageError> {
    let mut image = Image::new();
    let dir = |mode| Entry {
        mode,
        content: Content::Dir,
    };
    let text = |text: &str| Entry {
        mode: FILE_MODE,
        content: Content::File(Source::Bytes(text.as_bytes().to_vec())),
    };
    image.insert("/tmp", dir(0o1777))?;
    image.insert("/dev", dir(DIR_MODE))?;
    image.insert("/proc", dir(0o555))?;
    image.insert("/root", dir(0o700))?;
    image.insert("/etc", dir(DIR_MODE))?;
    image.insert(
        "/etc/passwd",
        text(
            "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
        ),
    )?;
    image.insert("/etc/group", text("root:x:0:\nnogroup:x:65534:\n"))?;
    image.insert("/etc/hosts", text("127.0.0.1\tlocalhost\n::1\tlocalhost\n"))?;
    image.insert("/etc/hostname", text("astra\n"))?;
    image.insert(
        "/etc/nsswitch.conf",
        text("passwd: files\ngroup: files\nhosts: files\n"),
    )?;
    Ok(image)
}

/// The `PT_INTERP` of the ELF file `bytes`, if it is a 64-bit little-endian ELF with one.
pub fn elf_interpreter(bytes: &[u8]) -> Option<String> {
    const PT_INTERP: u32 = 3;
    if bytes.get(..6)? != b"\x7fELF\x02\x01" {
        return None;
    }
    let u16_at = |at: usize| Some(u16::from_le_bytes(bytes.get(at..at + 2)?.try_into().ok()?));
    let u32_at = |at: usize| Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?));
    let u64_at = |at: usize| Some(u64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?));
    let phoff = usize::try_from(u64_at(0x20)?).ok()?;
    let phentsize = usize::from(u16_at(0x36)?);
    let phnum = usize::from(u16_at(0x38)?);
    (0..phnum).find_map(|i| {
        let ph = phoff.checked_add(i.checked_mul(phentsize)?)?;
        if u32_at(ph)? != PT_INTERP {
            return None;
        }
        let offset = usize::try_from(u64_at(ph + 8)?).ok()?;
        let size = usize::try_from(u64_at(ph + 32)?).ok()?;
        let raw = bytes.get(offset..offset.checked_add(size)?)?;
        let raw = raw.split(|&b| b == 0).next()?;
        Some(String::from_utf8_lossy(raw).into_owned())
    })
}

fn program_entry(program: &HostProgram) -> Entry {
    Entry {
        mode: 0o755,
        content: Content::File(Source::Host(program.host_path.clone())),
    }
}

fn pack(image: &Image) -> Result<Vec<u8>, ArchiveError> {
    write_archive(image, Vec::new())
}

/// Builds the rootfs for `rootfs` (a TAR file or a directory) and `program`; `None` when
/// there is neither.
pub fn build(
    rootfs: Option<&Path>,
    program: Option<&HostProgram>,
) -> Result<Option<RootfsImage>, RootfsBuildError> {
    // A program below the kernel's own mounts comes through a volume, not the root.
    let in_root = program.filter(|p| !p.under_guest_mount());
    match (rootfs, program) {
        (None, None) => Ok(None),
        (None, Some(program)) => {
            let bytes = std::fs::read(&program.host_path)
                .map_err(|e| RootfsBuildError::ReadProgram(program.host_path.clone(), e))?;
            if let Some(interpreter) = elf_interpreter(&bytes) {
                return Err(RootfsBuildError::Dynamic {
                    path: program.host_path.clone(),
                    interpreter,
                });
            }
            let mut image = minimal_root()?;
            if let Some(program) = in_root {
                image.insert(&program.guest_path, program_entry(program))?;
            }
            image.add_missing_parents()?;
            let name = PathBuf::from(format!("(minimal root for {})", program.guest_path));
            Ok(Some(RootfsImage::from_bytes(&name, &pack(&image)?)?))
        }
        (Some(dir), _) if dir.is_dir() => {
            let mut image = read_tree(dir)?;
            if let Some(program) = in_root.filter(|p| !image.covers(&p.guest_path)) {
                image.insert(&program.guest_path, program_entry(program))?;
            }
            image.add_missing_parents()?;
            Ok(Some(RootfsImage::from_bytes(dir, &pack(&image)?)?))
        }
        (Some(file), _) => {
            let Some(program) = in_root else {
                return Ok(Some(RootfsImage::open(file)?));
            };
            let base = RootfsImage::open(file)?;
            let not_tar = |e| RootfsError::NotTar(file.into(), e);
            if rootfs::contains(base.as_bytes(), &program.guest_path).map_err(not_tar)? {
                return Ok(Some(base));
            }
            let end = rootfs::validate(base.as_bytes()).map_err(not_tar)?.end;
            let mut layer = Image::new();
            layer.insert(&program.guest_path, program_entry(program))?;
            let mut bytes = base.as_bytes()[..end].to_vec();
            bytes.extend_from_slice(&pack(&layer)?);
            Ok(Some(RootfsImage::from_bytes(file, &bytes)?))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_become_absolute_and_normal() {
        let cwd = Path::new("/home/u/proj");
        assert_eq!(
            lexical_absolute(Path::new("./target/t"), cwd).unwrap(),
            "/home/u/proj/target/t"
        );
        assert_eq!(
            lexical_absolute(Path::new("../x/./y"), cwd).unwrap(),
            "/home/u/x/y"
        );
        assert_eq!(lexical_absolute(Path::new("/a/../b"), cwd).unwrap(), "/b");
    }

    #[test]
    fn only_executable_files_with_a_slash_are_host_programs() {
        let dir = std::env::temp_dir().join(format!("astra-rootfs-build-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let exe = dir.join("prog");
        std::fs::write(&exe, b"x").unwrap();
        let data = dir.join("data");
        std::fs::write(&data, b"x").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
        let found = HostProgram::detect(&exe, Path::new("/")).unwrap();
        assert_eq!(found.guest_path, exe.to_str().unwrap());
        assert_eq!(HostProgram::detect(&data, Path::new("/")), None);
        assert_eq!(HostProgram::detect(&dir, Path::new("/")), None);
        assert_eq!(HostProgram::detect(Path::new("prog"), &dir), None);
        let relative = HostProgram::detect(Path::new("./prog"), &dir);
        assert!(
            relative.is_none(),
            "relative to the test's own cwd, not `dir`"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn programs_below_the_kernels_mounts_are_told_apart() {
        let program = |guest: &str| HostProgram {
            host_path: PathBuf::from(guest),
            guest_path: guest.into(),
        };
        assert!(program("/tmp/x/prog").under_guest_mount());
        assert!(program("/run/prog").under_guest_mount());
        assert!(!program("/tmpfoo/prog").under_guest_mount());
        assert!(!program("/home/u/prog").under_guest_mount());
    }

    #[test]
    fn interpreter_is_read_from_program_headers() {
        // A minimal ELF64 header plus one PT_INTERP program header.
        let mut elf = vec![0u8; 0x100];
        elf[..6].copy_from_slice(b"\x7fELF\x02\x01");
        elf[0x20..0x28].copy_from_slice(&64u64.to_le_bytes());
        elf[0x36..0x38].copy_from_slice(&56u16.to_le_bytes());
        elf[0x38..0x3a].copy_from_slice(&1u16.to_le_bytes());
        elf[64..68].copy_from_slice(&3u32.to_le_bytes());
        elf[72..80].copy_from_slice(&0xc0u64.to_le_bytes());
        elf[96..104].copy_from_slice(&11u64.to_le_bytes());
        elf[0xc0..0xcb].copy_from_slice(b"/lib/ld.so\0");
        assert_eq!(elf_interpreter(&elf).as_deref(), Some("/lib/ld.so"));
        elf[64..68].copy_from_slice(&1u32.to_le_bytes());
        assert_eq!(elf_interpreter(&elf), None);
        assert_eq!(elf_interpreter(b"#!/bin/sh\n"), None);
        assert_eq!(elf_interpreter(&elf[..0x30]), None);
    }

    #[test]
    fn the_minimal_root_has_the_essentials_and_packs() {
        let image = minimal_root().unwrap();
        for path in [
            "/tmp",
            "/dev",
            "/proc",
            "/etc/passwd",
            "/etc/group",
            "/etc/hosts",
        ] {
            assert!(image.contains(path), "{path}");
        }
        let bytes = pack(&image).unwrap();
        let summary = crate::devices::rootfs::validate(&bytes).unwrap();
        assert_eq!(summary.entries, image.len());
        assert_eq!(rootfs::contains(&bytes, "/etc/passwd"), Ok(true));
        assert!(summary.end < bytes.len() && bytes[summary.end..].iter().all(|&b| b == 0));
    }
}

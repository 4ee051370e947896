//! Filesystems: the [`inode::Inode`] trait, mount table and component-wise path walk
//! ([`inode`]); tarfs (the rootfs TAR, parsed once, [`tar`]) seen as inodes ([`tar_inode`]);
//! [`tmpfs`] (file pages in [`pages`]); the [`overlay`] of a tmpfs over the TAR that is `/`;
//! the device directory ([`devices`]) and `/proc` ([`procfs`], [`procinfo`]); advisory
//! locks ([`lock`]); the namespace
//! built from them ([`vfs`]); open files ([`file`], [`regular`]) and the per-process
//! descriptor table, pipes, the terminal ([`tty`]) and the standard streams that are not
//! terminals ([`host_stream`]), and the inodes of pipes and of those streams
//! ([`stream_node`]).

pub mod devices;
pub mod dirent;
pub mod fd;
pub mod file;
pub mod host_stream;
pub mod hostcache;
pub mod hostfs;
pub mod inode;
pub mod lock;
pub mod open;
pub mod overlay;
pub mod pages;
pub mod path;
pub mod pipe;
pub mod procfd;
pub mod procfs;
pub mod procinfo;
pub mod procsys;
pub mod regular;
pub mod stat;
pub mod stream_node;
pub mod tar;
pub mod tar_inode;
pub mod tmpfs;
pub mod transfer;
pub mod tty;
pub mod vfs;

use tar::TarFs;
use vfs::{Limits, Namespace};

pub use fd::{map_source_for_fd, FdTable};
pub use file::OpenFile;

static ROOT: spin::Once<TarFs> = spin::Once::new();
static NAMESPACE: spin::Once<Namespace> = spin::Once::new();

/// Makes `fs` the root filesystem of every process; returns it. Only the first call
/// mounts; a later one gets the filesystem already mounted.
pub fn mount_root(fs: TarFs) -> &'static TarFs {
    ROOT.call_once(|| fs)
}

/// The root filesystem: the mounted rootfs, or an empty directory when the VM has none.
pub fn root() -> &'static TarFs {
    ROOT.call_once(|| match TarFs::new(&[]) {
        Ok(fs) => fs,
        // An empty archive is a bare root directory; parsing it cannot fail.
        Err(e) => panic!("empty root filesystem: {e}"),
    })
}

/// The current time, for file times.
fn now() -> stat::Timestamp {
    stat::Timestamp::from_ns(crate::time::realtime_ns())
}

/// The namespace every process sees: built over [`root`] on first use, with tmpfs sizes
/// from the machine's memory.
pub fn namespace() -> &'static Namespace {
    NAMESPACE.call_once(|| {
        let ram = crate::mm::frame::FRAMES.lock().total_frames() * crate::mm::PAGE_SIZE;
        let mut ns = Namespace::new(root(), Limits::for_ram(ram), now);
        hostfs::volumes(|path, fs_root| {
            if let Err(e) = ns.mount_path(path, fs_root) {
                crate::kprintln!("astra: cannot mount the volume at {path}: {}", e.message());
            }
        });
        ns
    })
}

static UNNAMED: spin::Once<tmpfs::TmpFs> = spin::Once::new();

/// A new regular file with permissions `mode` on a tmpfs of its own that no directory
/// names (`memfd_create`): it lives while open files hold it.
pub fn unnamed_file(mode: u32) -> Result<inode::InodeRef, crate::errno::Errno> {
    static NEXT: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);
    let fs = UNNAMED.call_once(|| {
        let ram = crate::mm::frame::FRAMES.lock().total_frames() * crate::mm::PAGE_SIZE;
        tmpfs::TmpFs::new(ram / 2, now)
    });
    let root = fs.root();
    let name = alloc::format!(
        "{}",
        NEXT.fetch_add(1, core::sync::atomic::Ordering::Relaxed)
    );
    let node = root.create(&name, inode::FileType::Regular, mode, "")?;
    root.unlink(&name)?;
    Ok(node)
}

/// A small rootfs for host unit tests.
#[cfg(test)]
pub mod testfs {
    use super::tar::TarFs;
    use alloc::boxed::Box;
    use alloc::vec::Vec;

    /// Appends an entry to `b` the way every test archive here does: uid 1000, gid 100,
    /// mtime 1,700,000,000; `link` makes it a (sym)link to that target.
    pub fn append(
        b: &mut tar::Builder<Vec<u8>>,
        path: &str,
        kind: tar::EntryType,
        mode: u32,
        link: Option<&str>,
        data: &[u8],
    ) {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_uid(1000);
        h.set_gid(100);
        h.set_mtime(1_700_000_000);
        h.set_size(data.len() as u64);
        match link {
            Some(link) => b.append_link(&mut h, path, link).unwrap(),
            None => b.append_data(&mut h, path, data).unwrap(),
        }
    }

    /// `/bin/app` (0755) with `/bin/sh -> app`; `/etc/motd` with `link -> motd`,
    /// `loop -> loop` and an empty directory `sub`; `/lnk -> etc`; `/data/big` (10000
    /// bytes, byte i is i % 251).
    pub fn sample() -> &'static TarFs {
        let mut b = tar::Builder::new(Vec::new());
        let mut add = |path: &str, kind, mode, link: Option<&str>, data: &[u8]| {
            append(&mut b, path, kind, mode, link, data)
        };
        use tar::EntryType::{Directory, Regular, Symlink};
        add("bin/", Directory, 0o755, None, b"");
        add("bin/app", Regular, 0o755, None, b"\x7fELF app");
        add("bin/sh", Symlink, 0o777, Some("app"), b"");
        add("etc/", Directory, 0o755, None, b"");
        add("etc/motd", Regular, 0o644, None, b"hello motd\n");
        add("etc/link", Symlink, 0o777, Some("motd"), b"");
        add("etc/loop", Symlink, 0o777, Some("loop"), b"");
        add("etc/sub/", Directory, 0o700, None, b"");
        add("lnk", Symlink, 0o777, Some("etc"), b"");
        let big: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        add("data/big", Regular, 0o600, None, &big);
        let bytes = Box::leak(b.into_inner().unwrap().into_boxed_slice());
        Box::leak(Box::new(TarFs::new(bytes).unwrap()))
    }
}

//! The `/proc/[pid]/fd` and `fdinfo` views of a process's descriptors: which are open,
//! where each leads (the magic link's node and text), and its `fdinfo` text.

use alloc::string::String;
use alloc::vec::Vec;

use super::procinfo::with_leader;

/// The open descriptors of process `pid`, ascending.
pub fn fds(pid: u32) -> Vec<u32> {
    with_leader(pid, |t| t.files.try_lock().map(|f| f.numbers()))
        .flatten()
        .unwrap_or_default()
}

/// Process `pid`'s open file `fd`.
fn open_file(pid: u32, fd: u32) -> Option<alloc::sync::Arc<super::OpenFile>> {
    with_leader(pid, |t| {
        t.files
            .try_lock()
            .and_then(|f| f.get_raw(u64::from(fd)).ok())
    })
    .flatten()
}

/// The permission bits of the `/proc/[pid]/fd/N` link, from the way the file is open, as
/// Linux sets them: `r-x` for reading, `-wx` for writing, `rwx` for both.
pub fn fd_link_mode(pid: u32, fd: u32) -> u32 {
    let Some(file) = open_file(pid, fd) else {
        return 0o700;
    };
    let status = file.status();
    let mut mode = 0;
    if super::open::readable(status) {
        mode |= 0o500;
    }
    if super::open::writable(status) {
        mode |= 0o300;
    }
    mode
}

/// The text of `/proc/[pid]/fdinfo/N` for descriptor `fd` of process `pid`.
pub fn fd_info(pid: u32, fd: u32) -> Option<String> {
    let (file, cloexec) = with_leader(pid, |t| {
        let files = t.files.try_lock()?;
        let file = files.get_raw(u64::from(fd)).ok()?;
        Some((file, files.cloexec(u64::from(fd)).unwrap_or(false)))
    })
    .flatten()?;
    let (mnt_id, ino) = match file.vnode() {
        super::vfs::Vnode::Node(n) => (n.fs_id(), n.ino()),
        super::vfs::Vnode::Pipe(ino) => (u64::from(super::pipe::PIPEFS_DEV.1), ino),
    };
    Some(super::procsys::format_fdinfo(
        file.position(),
        file.status(),
        cloexec,
        mnt_id,
        ino,
    ))
}

/// What descriptor `fd` of process `pid` names, as its `/proc/[pid]/fd/` link shows it.
pub fn fd_target(pid: u32, fd: u32) -> Option<String> {
    let file = open_file(pid, fd)?;
    let walker = super::vfs::Walker::new(super::namespace(), "");
    let vnode = file.vnode();
    let opened_as = || {
        let (start, path) = file.origin()?;
        walker.path_by(start, path, vnode.node()?)
    };
    walker.path_of(&vnode).or_else(opened_as).or_else(|| {
        Some(alloc::format!(
            "anon_inode:[{}]",
            walker.metadata(&vnode).ino
        ))
    })
}

/// The node of process `pid`'s open file `fd`: its own, or for a pipe the pipe's
/// ([`super::stream_node`]).
pub fn fd_node(pid: u32, fd: u32) -> Option<super::inode::InodeRef> {
    let file = open_file(pid, fd)?;
    match file.vnode() {
        super::vfs::Vnode::Node(n) => Some(n),
        super::vfs::Vnode::Pipe(_) => file
            .pipe_end()
            .map(|end| super::stream_node::StreamNode::pipe(end.handle())),
    }
}

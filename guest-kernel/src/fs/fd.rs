//! The per-process file descriptor table: lowest free number first, `FD_CLOEXEC` per
//! descriptor, at most [`NOFILE`] descriptors (Linux's default `RLIMIT_NOFILE`).

use alloc::sync::Arc;
use alloc::vec::Vec;

use hypercall_abi::host_stdio::{self, StreamKind};

use super::file::OpenFile;
use super::host_stream::{self, HostStream};
use super::open;
use crate::errno::Errno;
use crate::mm::source::MapSource;

/// Descriptor numbers are below this (`RLIMIT_NOFILE`, 1024 by default on Linux).
pub const NOFILE: u64 = 1024;

#[derive(Debug, Clone)]
struct Slot {
    file: Arc<OpenFile>,
    cloexec: bool,
}

/// A process's open descriptors.
#[derive(Debug, Default)]
pub struct FdTable {
    slots: Vec<Option<Slot>>,
}

impl FdTable {
    /// An empty table.
    pub fn new() -> Self {
        FdTable::default()
    }

    /// A table with descriptors 0, 1 and 2 open as a process starts, each as the VMM's
    /// own stream is (recorded at boot): see [`FdTable::with_stdio_for`].
    pub fn with_stdio() -> Self {
        FdTable::with_stdio_for(host_stream::host_terminals())
    }

    /// A table with descriptors 0, 1 and 2 open for the VMM's standard streams, given which
    /// are terminals ([`hypercall_abi::host_stdio`] bits): the console as a terminal for
    /// those that are, a plain [`HostStream`] for those that are not, as Linux gives a
    /// program a terminal or the file or pipe its shell redirected.
    pub fn with_stdio_for(terminals: u32) -> Self {
        let mut t = FdTable::new();
        for fd in 0..3u32 {
            let file = match HostStream::for_fd(u64::from(fd)) {
                Some(stream) if !host_stdio::is_terminal(terminals, fd) => {
                    let kind = host_stdio::kind(terminals, fd).unwrap_or(StreamKind::Stream);
                    OpenFile::host_stream(stream, kind)
                }
                _ => OpenFile::console(fd == 2),
            };
            // Cannot fail: the numbers are free and below the limit.
            let _ = t.install(u64::from(fd), file, false);
        }
        t
    }

    fn slot(&self, fd: u64) -> Result<&Slot, Errno> {
        usize::try_from(fd)
            .ok()
            .and_then(|i| self.slots.get(i))
            .and_then(Option::as_ref)
            .ok_or(Errno::EBADF)
    }

    /// A copy of the table (the same open-file descriptions under the same numbers), as
    /// `clone` without `CLONE_FILES` and `fork` make; ENOMEM if it cannot be allocated.
    pub fn try_clone(&self) -> Result<Self, Errno> {
        let mut slots = Vec::new();
        slots
            .try_reserve_exact(self.slots.len())
            .map_err(|_| Errno::ENOMEM)?;
        slots.extend(self.slots.iter().map(|s| {
            s.as_ref().map(|s| Slot {
                file: s.file.clone(),
                cloexec: s.cloexec,
            })
        }));
        Ok(FdTable { slots })
    }

    /// The file behind `fd`, `O_PATH` descriptors included (what `fstat`, `fcntl`, `dup`
    /// and `*at` directory arguments accept); `EBADF` if it is not open.
    pub fn get_raw(&self, fd: u64) -> Result<Arc<OpenFile>, Errno> {
        self.slot(fd).map(|s| Arc::clone(&s.file))
    }

    /// The file behind `fd` for I/O: `EBADF` if it is not open or is an `O_PATH`
    /// descriptor.
    pub fn get(&self, fd: u64) -> Result<Arc<OpenFile>, Errno> {
        let f = self.get_raw(fd)?;
        if f.is_path() {
            return Err(Errno::EBADF);
        }
        Ok(f)
    }

    /// Installs `file` at the lowest free descriptor at or above `min`: `EMFILE` when
    /// none is free, `EINVAL` when `min` is past the limit.
    pub fn insert_from(
        &mut self,
        min: u64,
        file: Arc<OpenFile>,
        cloexec: bool,
    ) -> Result<u64, Errno> {
        if min >= NOFILE {
            return Err(Errno::EINVAL);
        }
        let min = min as usize;
        let free = (min..NOFILE as usize).find(|&i| self.slots.get(i).is_none_or(Option::is_none));
        let fd = free.ok_or(Errno::EMFILE)?;
        if fd >= self.slots.len() {
            crate::mm::kalloc::try_resize(&mut self.slots, fd + 1, None)?;
        }
        self.slots[fd] = Some(Slot { file, cloexec });
        Ok(fd as u64)
    }

    /// `EMFILE` if every descriptor number is in use (checked before an open does any work).
    pub fn check_free(&self) -> Result<(), Errno> {
        if self.count() as u64 >= NOFILE {
            Err(Errno::EMFILE)
        } else {
            Ok(())
        }
    }

    /// Installs `file` at the lowest free descriptor.
    pub fn insert(&mut self, file: Arc<OpenFile>, cloexec: bool) -> Result<u64, Errno> {
        self.insert_from(0, file, cloexec)
    }

    /// Installs `file` at exactly `fd` (`dup2`), returning what was open there: `EBADF`
    /// if `fd` is past the limit.
    pub fn install(
        &mut self,
        fd: u64,
        file: Arc<OpenFile>,
        cloexec: bool,
    ) -> Result<Option<Arc<OpenFile>>, Errno> {
        if fd >= NOFILE {
            return Err(Errno::EBADF);
        }
        let i = fd as usize;
        if i >= self.slots.len() {
            crate::mm::kalloc::try_resize(&mut self.slots, i + 1, None)?;
        }
        let old = self.slots[i].replace(Slot { file, cloexec });
        Ok(old.map(|s| s.file))
    }

    /// Closes `fd`, returning its file.
    pub fn close(&mut self, fd: u64) -> Result<Arc<OpenFile>, Errno> {
        self.slot(fd)?;
        let slot = self.slots[fd as usize].take().ok_or(Errno::EBADF)?;
        while matches!(self.slots.last(), Some(None)) {
            self.slots.pop();
        }
        Ok(slot.file)
    }

    /// Whether `fd` has `FD_CLOEXEC`.
    pub fn cloexec(&self, fd: u64) -> Result<bool, Errno> {
        self.slot(fd).map(|s| s.cloexec)
    }

    /// Sets or clears `FD_CLOEXEC` on `fd`.
    pub fn set_cloexec(&mut self, fd: u64, on: bool) -> Result<(), Errno> {
        self.slot(fd)?;
        if let Some(Some(s)) = self.slots.get_mut(fd as usize) {
            s.cloexec = on;
        }
        Ok(())
    }

    /// Closes every `FD_CLOEXEC` descriptor (at `execve`).
    pub fn close_on_exec(&mut self) {
        for slot in self.slots.iter_mut() {
            if slot.as_ref().is_some_and(|s| s.cloexec) {
                *slot = None;
            }
        }
        while matches!(self.slots.last(), Some(None)) {
            self.slots.pop();
        }
    }

    /// The open descriptors, ascending.
    pub fn numbers(&self) -> Vec<u32> {
        (0..self.slots.len() as u32)
            .filter(|&fd| self.slots[fd as usize].is_some())
            .collect()
    }

    /// Number of open descriptors.
    pub fn count(&self) -> usize {
        self.slots.iter().filter(|s| s.is_some()).count()
    }
}

/// What `mmap(fd)` maps and the file's open flags (access mode and status flags, to check
/// `PROT_WRITE` with `MAP_SHARED` against): `EBADF` if `fd` is not open (or `O_PATH`),
/// `EACCES` if it was not opened for reading, `ENODEV` if the file cannot be mapped.
/// `shared` asks for what a `MAP_SHARED` mapping maps.
pub fn map_source_for_fd(
    files: &FdTable,
    fd: u64,
    shared: bool,
) -> Result<(Arc<dyn MapSource>, u32), Errno> {
    let file = files.get(fd)?;
    if !open::readable(file.status()) {
        return Err(Errno::EACCES);
    }
    let source = if shared {
        file.map_source_shared()
    } else {
        file.map_source()
    }
    .ok_or(Errno::ENODEV)?;
    Ok((source, file.status()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn null() -> Arc<OpenFile> {
        OpenFile::console(false)
    }

    #[test]
    fn lowest_free_descriptor_first() {
        let mut t = FdTable::with_stdio();
        assert_eq!(t.count(), 3);
        assert_eq!(t.insert(null(), false), Ok(3));
        assert_eq!(t.insert(null(), true), Ok(4));
        assert!(t.close(3).is_ok());
        assert_eq!(t.close(3).err(), Some(Errno::EBADF));
        assert_eq!(t.insert(null(), false), Ok(3));
        assert_eq!(t.insert_from(10, null(), false), Ok(10));
        assert_eq!(t.insert(null(), false), Ok(5));
        assert_eq!(t.insert_from(NOFILE, null(), false), Err(Errno::EINVAL));
        assert_eq!(t.get(u64::MAX).err(), Some(Errno::EBADF));
        assert_eq!(t.get(9).err(), Some(Errno::EBADF));
    }

    #[test]
    fn standard_descriptors_are_terminals_only_where_the_host_has_one() {
        use super::super::open::flags::{O_LARGEFILE, O_RDONLY, O_RDWR, O_WRONLY};
        use super::super::vfs::Vnode;
        let t = FdTable::with_stdio_for(host_stdio::ALL);
        for fd in 0..3 {
            let f = t.get(fd).unwrap();
            assert!(f.is_terminal());
            assert_eq!(f.status(), O_RDWR | O_LARGEFILE);
        }
        // `prog < file > out` with the terminal on stderr.
        let t = FdTable::with_stdio_for(host_stdio::STDERR_TERMINAL);
        let terminal = [0, 1, 2].map(|fd| t.get(fd).unwrap().is_terminal());
        assert_eq!(terminal, [false, false, true]);
        let (stdin, stdout) = (t.get(0).unwrap(), t.get(1).unwrap());
        assert_eq!((stdin.status(), stdout.status()), (O_RDONLY, O_WRONLY));
        // Each is a node of its own on the pipe filesystem.
        let (Vnode::Node(a), Vnode::Node(b)) = (stdin.vnode(), stdout.vnode()) else {
            panic!("not stream nodes: {stdin:?} {stdout:?}");
        };
        assert!(crate::fs::stream_node::is_stream(&a) && crate::fs::stream_node::is_stream(&b));
        assert_ne!(a.ino(), b.ino());
        // Everything under a harness: no terminal at all.
        let t = FdTable::with_stdio_for(0);
        assert!((0..3).all(|fd| !t.get(fd).unwrap().is_terminal()));
        assert_eq!(t.count(), 3);
    }

    #[test]
    fn limit_gives_emfile_and_dup2_ebadf() {
        let mut t = FdTable::new();
        let f = null();
        for i in 0..NOFILE {
            assert_eq!(t.insert(Arc::clone(&f), false), Ok(i));
        }
        assert_eq!(t.insert(null(), false), Err(Errno::EMFILE));
        assert_eq!(t.install(NOFILE, null(), false).err(), Some(Errno::EBADF));
        assert!(t.close(500).is_ok());
        assert_eq!(t.insert_from(501, null(), false), Err(Errno::EMFILE));
        assert_eq!(t.insert_from(7, null(), false), Ok(500));
        // Every descriptor shares the one open file.
        assert_eq!(Arc::strong_count(&f), NOFILE as usize);
    }

    #[test]
    fn cloexec_flags_and_exec() {
        let mut t = FdTable::with_stdio();
        let fd = t.insert(null(), true).unwrap();
        assert_eq!(t.cloexec(fd), Ok(true));
        assert_eq!(t.cloexec(1), Ok(false));
        t.set_cloexec(1, true).unwrap();
        assert_eq!(t.set_cloexec(77, true), Err(Errno::EBADF));
        let replaced = t.install(2, t.get(0).unwrap(), false).unwrap();
        assert!(replaced.is_some());
        t.close_on_exec();
        assert_eq!(t.count(), 2);
        assert!(t.get(1).is_err() && t.get(fd).is_err());
        assert!(Arc::ptr_eq(&t.get(0).unwrap(), &t.get(2).unwrap()));
    }
}

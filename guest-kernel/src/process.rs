//! Processes: what the threads of a program share.
//!
//! A [`Process`] owns (or shares, as the `clone` flags say) an address space, a file
//! descriptor table, a file-system context, signal actions and a queue of signals sent to
//! the process as a whole, resource limits and its exit status. Each shared part sits
//! behind an `Arc` and a lock, so that `CLONE_VM`, `CLONE_FILES`, `CLONE_FS` and
//! `CLONE_SIGHAND` decide what a new task shares by cloning the `Arc` or copying the
//! contents. The threads themselves are [`crate::task::Task`]s.

use alloc::string::String;
use alloc::sync::Arc;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use spin::{Mutex, MutexGuard};

use crate::errno::Errno;
use crate::fs::file::OpenFile;
use crate::fs::FdTable;
use crate::mm::paging::AddressSpace;
use crate::mm::user::UserMemory;
use crate::signal::{Pending, SigActions};
use crate::syscall::{Rlimit, Rlimits};

/// An address space: the page tables and the memory areas kept in step with them.
///
/// Shared by the threads of a process (`CLONE_VM`); always locked as a whole.
#[derive(Debug)]
pub struct Mm {
    /// The page tables.
    pub space: AddressSpace,
    /// The memory areas, program break and layout.
    pub mem: UserMemory,
}

impl Mm {
    /// An address space of `space` with the areas `mem` describe.
    pub fn new(space: AddressSpace, mem: UserMemory) -> Self {
        Mm { space, mem }
    }
}

impl Drop for Mm {
    fn drop(&mut self) {
        self.space.free_user_half();
        self.space.free_root();
    }
}

/// A file descriptor table, shared between tasks created with `CLONE_FILES`.
///
/// The single-call methods lock the table for that call only; a caller that needs
/// several steps to be atomic holds [`Files::lock`]. No lock is ever held while an
/// operation on an open file blocks: callers take the file (`Arc<OpenFile>`) out first.
#[derive(Clone, Debug)]
pub struct Files(Arc<Mutex<FdTable>>);

impl Files {
    /// A table of its own.
    pub fn new(table: FdTable) -> Self {
        Files(Arc::new(Mutex::new(table)))
    }

    /// Locks the table.
    pub fn lock(&self) -> MutexGuard<'_, FdTable> {
        self.0.lock()
    }

    /// See [`FdTable::get`].
    pub fn get(&self, fd: u64) -> Result<Arc<OpenFile>, Errno> {
        self.lock().get(fd)
    }

    /// See [`FdTable::get_raw`].
    pub fn get_raw(&self, fd: u64) -> Result<Arc<OpenFile>, Errno> {
        self.lock().get_raw(fd)
    }

    /// See [`FdTable::check_free`].
    pub fn check_free(&self) -> Result<(), Errno> {
        self.lock().check_free()
    }

    /// See [`FdTable::insert`].
    pub fn insert(&self, file: Arc<OpenFile>, cloexec: bool) -> Result<u64, Errno> {
        self.lock().insert(file, cloexec)
    }

    /// See [`FdTable::install`]; the file that was open there is dropped after the lock
    /// is released.
    pub fn install(&self, fd: u64, file: Arc<OpenFile>, cloexec: bool) -> Result<(), Errno> {
        let old = self.lock().install(fd, file, cloexec)?;
        drop(old);
        Ok(())
    }

    /// See [`FdTable::close`].
    pub fn close(&self, fd: u64) -> Result<(), Errno> {
        let old = self.lock().close(fd)?;
        drop(old);
        Ok(())
    }
}

/// The file-system context: working directory (shared with `CLONE_FS`).
#[derive(Debug)]
pub struct FsContext {
    /// An absolute path without symlinks, `.` or `..`.
    cwd: Mutex<String>,
}

impl FsContext {
    /// A context at `/`.
    pub fn new() -> Self {
        FsContext {
            cwd: Mutex::new(String::from("/")),
        }
    }

    /// The working directory.
    pub fn cwd(&self) -> String {
        self.cwd.lock().clone()
    }

    /// Changes the working directory.
    pub fn set_cwd(&self, path: String) {
        *self.cwd.lock() = path;
    }
}

impl Default for FsContext {
    fn default() -> Self {
        Self::new()
    }
}

/// Resource limits of a process (its threads share them).
#[derive(Debug, Default)]
pub struct Limits(Mutex<Rlimits>);

impl Limits {
    /// See [`Rlimits::get`].
    pub fn get(&self, resource: u64) -> Result<Rlimit, Errno> {
        self.0.lock().get(resource)
    }

    /// See [`Rlimits::set`].
    pub fn set(&self, resource: u64, new: Rlimit) -> Result<Rlimit, Errno> {
        self.0.lock().set(resource, new)
    }
}

/// A process: the state its threads share.
pub struct Process {
    /// Process id (the id of its first thread).
    pub pid: u32,
    /// Parent process id (0: started by the kernel, like init).
    pub ppid: u32,
    /// Program path, for reports.
    pub name: String,
    /// The address space.
    pub mm: Arc<Mutex<Mm>>,
    /// Open file descriptors.
    pub files: Files,
    /// Working directory.
    pub fs: Arc<FsContext>,
    /// Signal actions (shared with `CLONE_SIGHAND`).
    pub sighand: Arc<Mutex<SigActions>>,
    /// Signals sent to the process as a whole, for whichever thread takes them.
    pub shared_pending: Mutex<Pending>,
    /// Resource limits.
    pub limits: Limits,
    /// Set when the process has ended: its shell-style status.
    exit_status: Mutex<Option<u8>>,
    /// CPU time of the threads that have ended, in ns.
    dead_cpu_ns: AtomicU64,
    /// Lets the trap floor benchmark skip `ud2` instead of killing the process.
    pub bench_skip_ud2: AtomicBool,
}

static NEXT_ID: AtomicU32 = AtomicU32::new(1);

/// A fresh process or thread id (they share one number space, as on Linux).
pub fn alloc_id() -> u32 {
    NEXT_ID.fetch_add(1, Ordering::Relaxed)
}

impl Process {
    /// A process named `name` with address space `mm`, the standard streams open, every
    /// signal action default and default limits.
    pub fn new(pid: u32, name: &str, mm: Mm) -> Self {
        Process {
            pid,
            ppid: 0,
            name: String::from(name),
            mm: Arc::new(Mutex::new(mm)),
            files: Files::new(FdTable::with_stdio()),
            fs: Arc::new(FsContext::new()),
            sighand: Arc::new(Mutex::new(SigActions::new())),
            shared_pending: Mutex::new(Pending::new()),
            limits: Limits::default(),
            exit_status: Mutex::new(None),
            dead_cpu_ns: AtomicU64::new(0),
            bench_skip_ud2: AtomicBool::new(false),
        }
    }

    /// The shell-style status once the process has ended (128+N if killed by signal N).
    pub fn exit_status(&self) -> Option<u8> {
        *self.exit_status.lock()
    }

    /// Records the process's status (the first one recorded stays).
    pub fn set_exit_status(&self, status: u8) {
        self.exit_status.lock().get_or_insert(status);
    }

    /// Adds the CPU time of a thread that ended.
    pub fn add_dead_cpu_ns(&self, ns: u64) {
        self.dead_cpu_ns.fetch_add(ns, Ordering::Relaxed);
    }

    /// CPU time used by the threads that have ended, in ns.
    pub fn cpu_time_ns(&self) -> u64 {
        self.dead_cpu_ns.load(Ordering::Relaxed)
    }

    /// Whether the trap benchmark may skip `ud2` in this process.
    pub fn bench_skips_ud2(&self) -> bool {
        self.bench_skip_ud2.load(Ordering::Relaxed)
    }
}

//! Tasks and processes.
//!
//! A [`Task`] is a thread: a kernel stack, the saved context and FPU state to resume it,
//! its TLS bases, signal mask, pending signals and alternate stack, and its CPU clock. It
//! belongs to a [`Process`] (a thread group: pid, name, limits, exit status). The parts a
//! task may share with others are each behind an `Arc`, and `clone`'s flags choose which
//! are shared: the address space ([`Mm`], `CLONE_VM`), the fd table (`CLONE_FILES`), the
//! fs context (`CLONE_FS`), the signal actions (`CLONE_SIGHAND`) and the process itself
//! (`CLONE_THREAD`).
//!
//! System-call handlers get the current task through their context; nothing hands out
//! `&'static mut` tasks. [`sched`] owns every live task and switches between them.

mod exit;
pub mod futex;
pub mod kstack;
pub mod process;
pub mod rseq;
pub mod sched;
pub mod wait;

pub use exit::{
    kill_process, kill_process_by_signal, prepare_signal, return_to_user, rseq_fixup,
    signal_other_process, signal_process, stop_process,
};
pub use process::Process;

use alloc::boxed::Box;
use alloc::string::String;
use alloc::sync::Arc;
use core::sync::atomic::{AtomicU32, Ordering};
use spin::Mutex;

use crate::arch::context;
use crate::arch::fpu::FpuState;
use crate::arch::platform;
use crate::arch::trap::{self, TrapFrame};
use crate::errno::Errno;
use crate::fs::FdTable;
use crate::mm::paging::{AddressSpace, MapError};
use crate::mm::user::UserMemory;
use crate::mm::Mm;
use crate::signal::SignalState;
use crate::syscall::{Rlimits, ThreadState};
use kstack::KernelStack;

/// The fs context of a task (`CLONE_FS` shares it).
#[derive(Clone, Debug)]
pub struct FsContext {
    /// Working directory: an absolute path without symlinks, `.` or `..`.
    pub cwd: String,
    /// File-creation mask.
    pub umask: u32,
}

static NEXT_ID: AtomicU32 = AtomicU32::new(1);

/// Where a task is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskState {
    /// Running or on the run queue.
    Runnable,
    /// Waiting for a wake-up (a wait queue, a timer or a signal).
    Blocked,
    /// Exited; its stack is freed once the CPU has left it.
    Dead,
}

/// What a new task is made of (the rest starts empty).
struct Parts {
    tid: u32,
    name: String,
    process: Arc<Process>,
    mm: Arc<Mutex<Mm>>,
    files: Arc<Mutex<FdTable>>,
    fs: Arc<Mutex<FsContext>>,
    signals: SignalState,
    thread: ThreadState,
    kernel_stack: KernelStack,
    fpu: FpuState,
}

/// What [`Task::fork`] makes of the new process.
pub struct ForkSpec<'a> {
    /// Its address space.
    pub mm: Arc<Mutex<Mm>>,
    /// True if `mm` is the parent's (`CLONE_VM`).
    pub share_vm: bool,
    /// Share the fd table (`CLONE_FILES`).
    pub share_files: bool,
    /// Share the fs context (`CLONE_FS`).
    pub share_fs: bool,
    /// Share the signal actions (`CLONE_SIGHAND`).
    pub share_sighand: bool,
    /// Its parent.
    pub ppid: u32,
    /// Signal to the parent at exit.
    pub exit_signal: u8,
    /// Its registers on entry.
    pub frame: &'a TrapFrame,
    /// Its FPU state on entry.
    pub fpu: &'a FpuState,
}

/// A thread.
pub struct Task {
    /// Thread id.
    pub tid: u32,
    /// The program it runs (the path it was started or exec'd with), for reports and
    /// `/proc/self/exe`.
    name: String,
    /// The thread group.
    pub process: Arc<Process>,
    /// The address space.
    pub mm: Arc<Mutex<Mm>>,
    /// Open file descriptors.
    pub files: Arc<Mutex<FdTable>>,
    /// Working directory and umask.
    pub fs: Arc<Mutex<FsContext>>,
    /// Signal actions (shared), mask, pending signals, alternate stack.
    pub signals: SignalState,
    /// Per-thread registrations: FS/GS base, tid address, robust list, rseq.
    pub thread: ThreadState,
    /// Lets the trap floor benchmark skip `ud2` instead of killing the process.
    pub bench_skip_ud2: bool,
    /// The mask a call replaced while it waited (`ppoll`'s `sigmask`): a handler run on
    /// the way out returns to it, and the return to user mode restores it otherwise.
    pub saved_sigmask: Option<crate::signal::SigSet>,
    /// Set by `exit`: the thread ends with this status at its return to user mode.
    pub exit_request: Option<u8>,
    /// The number of a system call a signal interrupted (it returned `ERESTARTSYS`): it
    /// is restarted unless a handler without `SA_RESTART` runs.
    pub restart_syscall: Option<u64>,
    /// Set when the thread left the CPU with an rseq area registered: its critical
    /// section, if it was in one, is aborted on the way back to user mode.
    pub rseq_notify: bool,
    /// A fatal status marked deep in the kernel (out of memory) while this task ran, kept
    /// here if it left the CPU before reaching its boundary (see
    /// [`sched::mark_current_fatal`]).
    fatal: Option<u8>,
    /// CPU time used, in ns (updated when the task leaves the CPU).
    cpu_ns: u64,
    /// Page faults resolved without I/O for this thread (`ru_minflt`).
    pub min_flt: u64,
    kernel_stack: KernelStack,
    saved_rsp: u64,
    fpu: FpuState,
    state: TaskState,
    /// Set by a wake-up caused by a signal or a timer rather than by the awaited event.
    woken_by_timer: bool,
}

// SAFETY: a task is touched only by the CPU it runs on, or by the scheduler with that
// CPU's scheduler lock; its raw stack pointer is owned.
unsafe impl Send for Task {}

/// A new process's address space from its tables and areas, with the user-mode tables
/// this platform needs ([`isolate_kernel`]). On failure the tables are freed.
pub fn new_mm(mut space: AddressSpace, mem: UserMemory) -> Result<Mm, MapError> {
    if platform::needs_kernel_isolation() {
        if let Err(e) = isolate_kernel(&mut space) {
            space.free();
            return Err(e);
        }
    }
    Ok(Mm::new(space, mem))
}

/// Gives a new process's address space the user-mode page tables this platform needs
/// (PVM only): the PML4 pair the host switches between by itself, or, without the host
/// features, user-mode tables that map the entry pages the entry code switches on.
pub fn isolate_kernel(space: &mut AddressSpace) -> Result<(), MapError> {
    if platform::host_switches_tables() {
        space.pair_user_tables()
    } else {
        space.isolate_kernel(&trap::entry_ranges())
    }
}

impl Task {
    /// The first thread of a new process that will start in user mode at `rip` with
    /// stack `rsp` in `space`.
    pub fn new(name: &str, space: AddressSpace, rip: u64, rsp: u64) -> Result<Box<Self>, MapError> {
        Self::new_with_arg(name, space, rip, rsp, 0)
    }

    /// Like [`Task::new`], entering with `rdi` = `arg`.
    pub fn new_with_arg(
        name: &str,
        space: AddressSpace,
        rip: u64,
        rsp: u64,
        arg: u64,
    ) -> Result<Box<Self>, MapError> {
        let mm = new_mm(space, UserMemory::new())?;
        Self::new_with_mm(name, mm, rip, rsp, arg).map_err(|_| MapError::OutOfMemory)
    }

    /// The first thread of a new process (pid = tid, parent 0) in the address space
    /// `mm` (made by [`new_mm`] or [`Mm::fork`]), entering user mode at `rip` with stack
    /// `rsp` and `rdi` = `arg`.
    pub fn new_with_mm(
        name: &str,
        mm: Mm,
        rip: u64,
        rsp: u64,
        arg: u64,
    ) -> Result<Box<Self>, Errno> {
        let mut frame = TrapFrame::new_user(rip, rsp);
        frame.rdi = arg;
        let fpu = FpuState::initial().ok_or(Errno::ENOMEM)?;
        Self::new_process(
            name,
            0,
            mm,
            &frame,
            fpu,
            FdTable::with_stdio(),
            FsContext {
                cwd: String::from("/"),
                umask: 0o022,
            },
        )
    }

    /// A new process (its first thread) with parent `ppid`, address space `mm`, entering
    /// user mode with `frame` and FPU state `fpu`, owning `files` and `fs`.
    pub fn new_process(
        name: &str,
        ppid: u32,
        mm: Mm,
        frame: &TrapFrame,
        fpu: FpuState,
        files: FdTable,
        fs: FsContext,
    ) -> Result<Box<Self>, Errno> {
        let lineage = process::Lineage {
            ppid,
            pgid: 0,
            sid: 0,
            limits: Rlimits::for_machine(sched::max_tasks() as u64),
            exit_signal: 0,
        };
        let kernel_stack = KernelStack::new().map_err(|_| Errno::ENOMEM)?;
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let process = Arc::new(Process::new(id, lineage));
        Ok(Task::assemble(
            Parts {
                tid: id,
                name: String::from(name),
                process,
                mm: Arc::new(Mutex::new(mm)),
                files: Arc::new(Mutex::new(files)),
                fs: Arc::new(Mutex::new(fs)),
                signals: SignalState::new(),
                thread: Default::default(),
                kernel_stack,
                fpu,
            },
            frame,
        ))
    }

    /// A new thread of the same process as `self` (as `clone` with `CLONE_VM |
    /// CLONE_THREAD | CLONE_SIGHAND`): it shares the address space and signal actions, and
    /// the fd table and fs context if `share_files` / `share_fs` (else copies them). It
    /// starts in user mode with `frame`, with the caller's FPU state `fpu`.
    pub fn new_thread(
        &self,
        frame: &TrapFrame,
        fpu: &FpuState,
        share_files: bool,
        share_fs: bool,
    ) -> Result<Box<Self>, Errno> {
        let kernel_stack = KernelStack::new().map_err(|_| Errno::EAGAIN)?;
        let fpu = fpu.try_clone().ok_or(Errno::EAGAIN)?;
        let files = self.files_for(share_files)?;
        let fs = self.fs_for(share_fs);
        self.process.live_threads.fetch_add(1, Ordering::AcqRel);
        Ok(Task::assemble(
            Parts {
                tid: NEXT_ID.fetch_add(1, Ordering::Relaxed),
                name: self.name.clone(),
                process: self.process.clone(),
                mm: self.mm.clone(),
                files,
                fs,
                signals: self.signals.for_new_thread(),
                thread: self.inherited_thread_state(),
                kernel_stack,
                fpu,
            },
            frame,
        ))
    }

    /// A new process forked from `self` (clone without `CLONE_THREAD`): address space
    /// `mm` (a copy, or `self`'s shared for `CLONE_VM`), the fd table and fs context
    /// shared or copied as asked, signal actions copied (shared with `share_sighand`),
    /// the same mask, TLS bases and limits; it enters user mode with `frame` and `fpu`.
    /// Not yet registered or runnable.
    pub fn fork(&self, spec: ForkSpec<'_>) -> Result<Box<Self>, Errno> {
        let kernel_stack = KernelStack::new().map_err(|_| Errno::EAGAIN)?;
        let fpu = spec.fpu.try_clone().ok_or(Errno::ENOMEM)?;
        let files = self.files_for(spec.share_files)?;
        let fs = self.fs_for(spec.share_fs);
        let signals = if spec.share_sighand {
            self.signals.for_new_thread()
        } else {
            self.signals.for_fork(spec.share_vm)
        };
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let lineage = process::Lineage {
            ppid: spec.ppid,
            pgid: self.process.pgid(),
            sid: self.process.sid(),
            limits: *self.process.limits.lock(),
            exit_signal: spec.exit_signal,
        };
        Ok(Task::assemble(
            Parts {
                tid: id,
                name: self.name.clone(),
                process: Arc::new(Process::new(id, lineage)),
                mm: spec.mm,
                files,
                fs,
                signals,
                thread: self.inherited_thread_state(),
                kernel_stack,
                fpu,
            },
            spec.frame,
        ))
    }

    /// A runnable task from its parts, entering user mode with `frame`.
    fn assemble(p: Parts, frame: &TrapFrame) -> Box<Self> {
        let mut task = Box::new(Task {
            tid: p.tid,
            name: p.name,
            process: p.process,
            mm: p.mm,
            files: p.files,
            fs: p.fs,
            signals: p.signals,
            thread: p.thread,
            bench_skip_ud2: false,
            saved_sigmask: None,
            exit_request: None,
            restart_syscall: None,
            rseq_notify: false,
            fatal: None,
            cpu_ns: 0,
            min_flt: 0,
            kernel_stack: p.kernel_stack,
            saved_rsp: 0,
            fpu: p.fpu,
            state: TaskState::Runnable,
            woken_by_timer: false,
        });
        task.prepare_entry(frame);
        task
    }

    /// A new task's registrations: the same TLS bases, nothing else.
    fn inherited_thread_state(&self) -> ThreadState {
        ThreadState {
            fs_base: self.thread.fs_base,
            gs_base: self.thread.gs_base,
            ..Default::default()
        }
    }

    /// The fd table for a new task: this one's (`share`) or a copy.
    fn files_for(&self, share: bool) -> Result<Arc<Mutex<FdTable>>, Errno> {
        Ok(if share {
            self.files.clone()
        } else {
            Arc::new(Mutex::new(self.files.lock().try_clone()?))
        })
    }

    /// The fs context for a new task: this one's (`share`) or a copy.
    fn fs_for(&self, share: bool) -> Arc<Mutex<FsContext>> {
        if share {
            self.fs.clone()
        } else {
            Arc::new(Mutex::new(self.fs.lock().clone()))
        }
    }

    fn prepare_entry(&mut self, frame: &TrapFrame) {
        let top = self.kernel_stack.top();
        // SAFETY: the stack was just allocated for this task and nothing uses it.
        self.saved_rsp = unsafe { context::prepare_user_entry(top, frame) };
    }

    /// The address space, for a task that shares it with nobody and is not running
    /// (kernel self-tests inspect and drive a task's memory this way).
    ///
    /// # Panics
    /// If another task or a [`sched::Finished`] shares the address space.
    pub fn mm_mut(&mut self) -> &mut Mm {
        Arc::get_mut(&mut self.mm)
            .expect("the address space is not shared")
            .get_mut()
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.process.pid
    }

    /// Where the thread is in its life (`/proc/[pid]/stat`).
    pub fn state(&self) -> TaskState {
        self.state
    }

    /// The program's name, for reports.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Renames the task (execve).
    pub fn set_name(&mut self, name: String) {
        self.name = name;
    }

    /// CPU time this thread has used, in ns (including the current slice if it runs).
    pub fn cpu_ns(&self) -> u64 {
        self.cpu_ns + sched::running_ns(self)
    }

    /// This thread's and its process's CPU time.
    pub fn cpu_times(&self) -> crate::time::CpuTimes {
        let thread_ns = self.cpu_ns();
        let others: u64 = sched::threads_of(self.process.pid)
            .into_iter()
            .filter(|&tid| tid != self.tid)
            .filter_map(|tid| sched::with_other_task(tid, |t| t.cpu_ns()))
            .sum();
        crate::time::CpuTimes {
            thread_ns,
            process_ns: thread_ns + others + self.process.dead_cpu_ns(),
        }
    }

    /// The process's status once it has ended.
    pub fn exit_status(&self) -> Option<u8> {
        self.process.exit_status()
    }

    fn kernel_stack_top(&self) -> u64 {
        self.kernel_stack.top()
    }
}

/// Undoes [`Task::new_thread`] for a thread that never ran (its spawn failed).
pub fn abandon_thread(task: Box<Task>) {
    task.process.live_threads.fetch_sub(1, Ordering::AcqRel);
    drop(task);
}

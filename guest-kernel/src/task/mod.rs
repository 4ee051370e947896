//! Tasks: the threads of processes, and the per-CPU state that runs them.
//!
//! A [`Task`] is one thread: its id, its kernel stack (with a guard below it), its saved
//! kernel context, its thread registrations (TLS bases, `clear_child_tid`, robust list,
//! rseq), its signal mask, queue and alternate stack, and its CPU clock. What threads
//! share is its [`Process`]. System-call handlers get both through `syscall::Ctx`; the
//! task running on a CPU is that CPU's [`percpu::PerCpu::current`].

pub mod kstack;
pub mod percpu;

use alloc::string::String;
use alloc::sync::Arc;
use core::cell::UnsafeCell;

use spin::{Mutex, MutexGuard};

use crate::arch::context;
use crate::arch::platform;
use crate::arch::trap::{self, TrapFrame};
use crate::mm::paging::MapError;
use crate::process::{self, Mm, Process};
use crate::signal::{SignalState, ThreadSignals};
use crate::syscall::ThreadState;
use crate::time::CpuClock;
use kstack::KernelStack;

/// One thread.
pub struct Task {
    /// Thread id (the process id for a process's first thread).
    pub tid: u32,
    /// The process it belongs to.
    pub process: Arc<Process>,
    kstack: KernelStack,
    /// The saved kernel stack pointer while the task is not running (see
    /// `arch::context::switch`). Only the CPU that switches to or from the task touches
    /// it, with interrupts disabled.
    saved_rsp: UnsafeCell<u64>,
    /// TLS bases and other per-thread registrations.
    regs: Mutex<ThreadState>,
    /// Mask, thread-directed pending signals, alternate stack.
    signals: Mutex<ThreadSignals>,
    /// CPU-time clock.
    cpu: Mutex<CpuClock>,
    /// Set when the task must end: its status, taken at the trap/syscall boundary.
    exit_mark: Mutex<Option<u8>>,
}

// SAFETY: `saved_rsp` is the only field without its own synchronisation; it is read and
// written only by the CPU switching to or from the task, with interrupts off, while no
// other CPU can run the task (a task is on at most one run queue or CPU at a time).
unsafe impl Sync for Task {}

impl Task {
    /// A task of `process` that will enter user mode at `rip` with stack `rsp` and
    /// `rdi` = `arg`.
    fn new_user(
        tid: u32,
        process: Arc<Process>,
        rip: u64,
        rsp: u64,
        arg: u64,
    ) -> Result<Arc<Task>, MapError> {
        let kstack = KernelStack::new().map_err(|_| MapError::OutOfMemory)?;
        let isolate = platform::needs_kernel_isolation();
        if isolate {
            let [text, data] = trap::entry_ranges();
            process
                .mm
                .lock()
                .space
                .isolate_kernel(&[text, data, kstack.range()])?;
        }
        let mut frame = TrapFrame::new_user(rip, rsp);
        frame.rdi = arg;
        // SAFETY: the stack was just allocated for this task and nothing uses it.
        let saved_rsp = unsafe { context::prepare_user_entry(kstack.top(), &frame, isolate) };
        Ok(Arc::new(Task {
            tid,
            process,
            kstack,
            saved_rsp: UnsafeCell::new(saved_rsp),
            regs: Mutex::new(ThreadState::default()),
            signals: Mutex::new(ThreadSignals::new()),
            cpu: Mutex::new(CpuClock::start()),
            exit_mark: Mutex::new(None),
        }))
    }

    /// The top of the task's kernel stack (where traps from user mode land).
    pub fn kernel_stack_top(&self) -> u64 {
        self.kstack.top()
    }

    /// The task's per-thread registrations.
    pub fn regs(&self) -> MutexGuard<'_, ThreadState> {
        self.regs.lock()
    }

    /// The task's own signal state (mask, queue, alternate stack).
    pub fn thread_signals(&self) -> MutexGuard<'_, ThreadSignals> {
        self.signals.lock()
    }

    /// The task's CPU clock.
    pub fn cpu(&self) -> MutexGuard<'_, CpuClock> {
        self.cpu.lock()
    }

    /// Runs `f` on the signal state this task sees (its process's actions and queue,
    /// its own mask and queue), locked in the one order every path uses: actions, the
    /// process's queue, the thread's state.
    pub fn with_signals<R>(&self, f: impl FnOnce(&mut SignalState<'_>) -> R) -> R {
        let mut actions = self.process.sighand.lock();
        let mut shared = self.process.shared_pending.lock();
        let mut thread = self.signals.lock();
        f(&mut SignalState {
            actions: &mut actions,
            shared: &mut shared,
            thread: &mut thread,
        })
    }

    /// Marks the task to end with `status` once it is back at the trap or system-call
    /// boundary, where no lock is held (the first mark stays). Fatal conditions deep in
    /// the kernel mark the task and return an error up the stack instead of leaving it.
    pub fn mark_exit(&self, status: u8) {
        self.exit_mark.lock().get_or_insert(status);
    }

    /// The status the task was marked to end with, if any.
    pub fn exit_mark(&self) -> Option<u8> {
        *self.exit_mark.lock()
    }

    /// The saved stack pointer's cell.
    fn saved_rsp(&self) -> *mut u64 {
        self.saved_rsp.get()
    }
}

/// Creates a process named `name` with address space `mm` and its first thread, which
/// will enter user mode at `rip` with stack `rsp` and `rdi` = `arg`.
pub fn spawn_process(
    name: &str,
    mm: Mm,
    rip: u64,
    rsp: u64,
    arg: u64,
) -> Result<Arc<Task>, MapError> {
    let pid = process::alloc_id();
    let proc = Arc::new(Process::new(pid, name, mm));
    Task::new_user(pid, proc, rip, rsp, arg)
}

/// Runs `task` until its process exits and gives the process back, dead, for its
/// status and memory.
pub fn run(task: Arc<Task>) -> Arc<Process> {
    let cpu = percpu::this_cpu();
    let proc = Arc::clone(&task.process);
    {
        let mm = proc.mm.lock();
        trap::set_isolation_tables(mm.space.pml4_phys(), mm.space.user_pml4_phys());
        // SAFETY: the process's space was built from the kernel space.
        unsafe { mm.space.activate() };
    }
    task.regs().load_segment_bases();
    trap::set_kernel_stack(task.kernel_stack_top());
    let target = task.saved_rsp();
    cpu.set_current(Some(task));
    // SAFETY: `target` holds a context prepared by prepare_user_entry on the task's own
    // stack, which the per-CPU `current` keeps alive until we are switched back; the
    // main context is saved in the per-CPU slot, which lives forever.
    unsafe { context::switch(&mut *cpu.main_rsp(), *target) };
    // Back from exit_current.
    crate::mm::activate_kernel_space();
    drop(cpu.set_current(None));
    proc
}

/// The task running on this CPU, if any.
pub fn current() -> Option<Arc<Task>> {
    percpu::this_cpu().current()
}

/// The current program's name, for reports.
pub fn current_name() -> String {
    current().map_or_else(|| String::from("kernel"), |t| t.process.name.clone())
}

/// Marks the current task to end with `status` (see [`Task::mark_exit`]).
pub fn mark_current_exit(status: u8) {
    if let Some(task) = current() {
        task.mark_exit(status);
    }
}

/// At the trap/system-call boundary: ends the current task if it was marked to end.
/// Nothing above the caller on the kernel stack may own resources or hold locks.
pub fn exit_if_marked() {
    if let Some(status) = current().and_then(|t| t.exit_mark()) {
        exit_current(status);
    }
}

/// Ends the current process with `status` and returns to the kernel's main context.
///
/// Called only at the trap boundary ([`exit_if_marked`]): whatever the abandoned stack
/// frames own is never dropped.
fn exit_current(status: u8) -> ! {
    let cpu = percpu::this_cpu();
    if let Some(task) = cpu.current() {
        let used = task.cpu().used_ns(crate::time::monotonic_ns());
        task.process.add_dead_cpu_ns(used);
        task.process.set_exit_status(status);
    }
    let mut dummy = 0;
    // SAFETY: the main context was saved by `run`, whose stack (the boot stack) is alive.
    unsafe { context::switch(&mut dummy, *cpu.main_rsp()) };
    unreachable!("a dead task was resumed");
}

//! The scheduler: per-CPU run queue, context switch, blocking, timers, exit.
//!
//! Preemptive round robin. The PIT (1000 Hz) interrupt ends a task's slice once it has run
//! [`SLICE_NS`] of TSC time (the PIT replays missed ticks in bursts, so ticks only prompt
//! the check); the switch happens on the way back to user mode, and at every blocking
//! point. The kernel itself is not preemptible: it runs with interrupts off, so a task in
//! the kernel runs until it blocks or returns.
//!
//! Each CPU has one [`PerCpu`]: the current task, the run queue, the registry of live
//! tasks, the timer list and the context the CPU idles in (the boot stack). With one vCPU
//! there is one; its state is touched only with interrupts off on its own CPU. A second
//! vCPU gets its own (cross-CPU wake-ups then go through a lock on the target's queue).
//!
//! A task that exits is freed by whoever runs next, once the CPU has left its stack.

use alloc::boxed::Box;
use alloc::collections::{BTreeMap, VecDeque};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::cell::UnsafeCell;
use core::ptr::NonNull;
use core::sync::atomic::Ordering;

mod timers;
use timers::expire_timers;
pub use timers::{fire_alarms, set_alarm};

use super::{Process, Task, TaskState};
use crate::arch::{context, cpu, platform, trap};
use crate::mm::Mm;
use crate::time;

/// How long a task runs before another runnable one gets the CPU.
pub const SLICE_NS: u64 = 4_000_000;
/// Most tasks alive at once (Linux's `threads-max` is derived from memory the same way:
/// a task costs its 64 KiB kernel stack and bookkeeping).
pub const MAX_TASKS_CAP: usize = 4096;

struct PerCpu {
    /// Saved stack pointer of the idle context (the kernel's boot stack).
    idle_rsp: u64,
    current: Option<NonNull<Task>>,
    runq: VecDeque<NonNull<Task>>,
    /// Every live task by tid.
    tasks: BTreeMap<u32, NonNull<Task>>,
    /// Exited tasks whose stacks the CPU may still be on.
    dead: Vec<NonNull<Task>>,
    /// Sleepers with a deadline: (deadline ns, tid).
    timers: BTreeMap<(u64, u32), ()>,
    /// Armed `ITIMER_REAL` timers: (deadline ns, pid).
    alarms: BTreeMap<(u64, u32), ()>,
    /// Processes whose real-time timer expired, to be sent SIGALRM at the next safe point.
    fired: Vec<u32>,
    /// When the current task got the CPU (monotonic ns).
    run_start_ns: u64,
    need_resched: bool,
    /// The PML4 in CR3 (0: unknown).
    active_pml4: u64,
    /// Exit status a deep kernel path (out of memory) set for the task running now (or,
    /// outside any task, for the kernel's self-tests): it ends at its next boundary with
    /// no lock held. Moved into the task if it leaves the CPU first.
    pending_fatal: Option<u8>,
}

struct CpuCell(UnsafeCell<PerCpu>);

// SAFETY: one vCPU; its scheduler state is only touched with interrupts off on it.
unsafe impl Sync for CpuCell {}

static CPU0: CpuCell = CpuCell(UnsafeCell::new(PerCpu {
    idle_rsp: 0,
    current: None,
    runq: VecDeque::new(),
    tasks: BTreeMap::new(),
    dead: Vec::new(),
    timers: BTreeMap::new(),
    alarms: BTreeMap::new(),
    fired: Vec::new(),
    run_start_ns: 0,
    need_resched: false,
    active_pml4: 0,
    pending_fatal: None,
}));

/// This CPU's scheduler state.
///
/// Callers must not keep the reference across a context switch or a call that may
/// switch; every function here re-derives it.
fn cpu0() -> &'static mut PerCpu {
    // SAFETY: one vCPU, interrupts off in the kernel; no two of these references are
    // used at the same time (none lives across a switch or across another call here).
    unsafe { &mut *CPU0.0.get() }
}

/// Errors of [`spawn`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpawnError {
    /// The task cap is reached.
    TooMany,
}

/// Most tasks that may be alive at once: the cap, and no more than a sixteenth of RAM
/// in kernel stacks.
pub fn max_tasks() -> usize {
    let frames = crate::mm::frame::FRAMES.lock().total_frames() as usize;
    let by_memory =
        frames * crate::mm::PAGE_SIZE as usize / 16 / super::kstack::STACK_SIZE as usize;
    by_memory.clamp(16, MAX_TASKS_CAP.min(super::kstack::MAX_STACKS as usize))
}

/// Number of live tasks.
pub fn task_count() -> usize {
    cpu0().tasks.len()
}

/// Makes `task` runnable; it starts at the next switch.
pub fn spawn(task: Box<Task>) -> Result<u32, (SpawnError, Box<Task>)> {
    let c = cpu0();
    if c.tasks.len() >= max_tasks() {
        return Err((SpawnError::TooMany, task));
    }
    let tid = task.tid;
    let ptr = NonNull::from(Box::leak(task));
    c.tasks.insert(tid, ptr);
    c.runq.push_back(ptr);
    publish_threads();
    Ok(tid)
}

/// What [`run`] gives back: the process and address space of the task it ran.
pub struct Finished {
    /// Its process id.
    pub pid: u32,
    /// The process (its status says how it ended).
    pub process: Arc<Process>,
    /// Its address space, still intact for inspection.
    pub mm: Arc<spin::Mutex<Mm>>,
}

impl Finished {
    /// How the process ended.
    pub fn exit_status(&self) -> Option<u8> {
        self.process.exit_status()
    }
}

/// Runs `task` (and every task it creates) until no task is left. Called from the
/// kernel's main context, which becomes the idle context meanwhile.
pub fn run(task: Box<Task>) -> Finished {
    let finished = Finished {
        pid: task.process.pid,
        process: task.process.clone(),
        mm: task.mm.clone(),
    };
    let registered = super::process::register(&task.process);
    if registered.is_err() {
        task.process.begin_signal_exit(crate::signal::sig::SIGKILL);
        task.process.live_threads.store(0, Ordering::Release);
        return finished;
    }
    if let Err((_, task)) = spawn(task) {
        // The cap cannot be reached with no task alive; end it as killed.
        super::process::unregister(task.process.pid);
        task.process.begin_signal_exit(crate::signal::sig::SIGKILL);
        task.process.live_threads.store(0, Ordering::Release);
        return finished;
    }
    idle_loop();
    crate::mm::activate_kernel_space();
    cpu0().active_pml4 = 0;
    finished
}

/// The idle context: runs tasks while any is runnable, halts while all are blocked,
/// returns when none is left.
fn idle_loop() {
    loop {
        free_dead();
        crate::drivers::console_in::take_deferred();
        expire_timers();
        fire_alarms(None);
        super::exit::deliver_tty_signals(None);
        let c = cpu0();
        if let Some(next) = c.runq.pop_front() {
            switch_from_idle(next);
            continue;
        }
        if c.tasks.is_empty() {
            return;
        }
        time::note_idle_halt();
        platform::idle();
    }
}

fn free_dead() {
    let dead = core::mem::take(&mut cpu0().dead);
    for ptr in dead {
        // SAFETY: the task is dead, off every queue and registry, and the CPU has left
        // its stack (this runs on another one); it came from Box::leak in `spawn`.
        drop(unsafe { Box::from_raw(ptr.as_ptr()) });
    }
}

/// Loads `task`'s address space, kernel stack, FPU state and segment bases.
fn load(c: &mut PerCpu, task: &mut Task) {
    let (kernel_pml4, user_pml4) = {
        let mm = task.mm.lock();
        (mm.space.pml4_phys(), mm.space.user_pml4_phys())
    };
    trap::set_isolation_tables(kernel_pml4, user_pml4);
    if c.active_pml4 != kernel_pml4 {
        // SAFETY: the task's tables share the kernel half with the kernel's.
        unsafe { cpu::write_cr3(kernel_pml4) };
        c.active_pml4 = kernel_pml4;
    }
    trap::set_kernel_stack(task.kernel_stack_top());
    task.fpu.restore();
    task.thread.load_segment_bases();
    c.run_start_ns = time::monotonic_ns();
}

/// Makes the current task's address space (just replaced by execve) the live one.
pub fn reload_address_space(task: &mut Task) {
    let (kernel_pml4, user_pml4) = {
        let mm = task.mm.lock();
        (mm.space.pml4_phys(), mm.space.user_pml4_phys())
    };
    trap::set_isolation_tables(kernel_pml4, user_pml4);
    // SAFETY: the new tables share the kernel half with the kernel's.
    unsafe { cpu::write_cr3(kernel_pml4) };
    cpu0().active_pml4 = kernel_pml4;
    publish_threads();
}

/// Publishes the live tasks for the debugger (only when one is attached).
fn publish_threads() {
    if !crate::arch::debug::attached() {
        return;
    }
    let c = cpu0();
    // SAFETY: the current task is live.
    let current = c.current.map_or(0, |t| unsafe { t.as_ref() }.tid);
    let frame_size = core::mem::size_of::<trap::TrapFrame>() as u64;
    let threads = c.tasks.values().map(|t| {
        // SAFETY: a live registered task, only read.
        let t = unsafe { t.as_ref() };
        // A task off the CPU keeps its user registers at the top of its kernel stack
        // (where the entry code and `prepare_user_entry` put them).
        let cr3 = t.mm.try_lock().map_or(0, |mm| mm.space.pml4_phys());
        hypercall_abi::DebugThread {
            tid: t.tid,
            pid: t.process.pid,
            frame: t.kernel_stack_top() - frame_size,
            cr3,
            fs_base: t.thread.fs_base,
            gs_base: t.thread.gs_base,
        }
    });
    crate::arch::debug::publish_threads(current, threads);
}

/// Saves what the CPU holds of `task` when it leaves the CPU.
fn unload(c: &mut PerCpu, task: &mut Task) {
    task.fpu.save();
    task.rseq_notify |= task.thread.rseq.is_some();
    let now = time::monotonic_ns();
    task.cpu_ns += now.saturating_sub(c.run_start_ns);
    // FS/GS bases change only through arch_prctl (CR4.FSGSBASE is off), which keeps
    // `task.thread` up to date: nothing to read back.
}

fn switch_from_idle(mut next: NonNull<Task>) {
    let c = cpu0();
    // SAFETY: `next` is a live task from the run queue; nothing else references it now.
    let n = unsafe { next.as_mut() };
    load(c, n);
    c.current = Some(next);
    c.need_resched = false;
    publish_threads();
    let target = n.saved_rsp;
    // SAFETY: `target` was saved by a switch or prepared by prepare_user_entry on the
    // task's own stack, alive while the task is registered.
    unsafe { context::switch(&mut c.idle_rsp, target) };
}

/// Gives the CPU to the next runnable task (or the idle context if none), keeping the
/// current task on the run queue if it is still runnable. Returns when it runs again.
pub fn schedule() {
    let c = cpu0();
    let Some(mut cur) = c.current else {
        return;
    };
    // SAFETY: the current task is live; the reference ends before the switch.
    let cur_ref = unsafe { cur.as_mut() };
    let still_runnable = cur_ref.state == TaskState::Runnable;
    let next = c.runq.pop_front();
    if still_runnable && next.is_none() {
        c.need_resched = false;
        return;
    }
    if still_runnable {
        c.runq.push_back(cur);
    }
    // A fatal mark belongs to the task it was made for, not to whichever runs next.
    if let Some(status) = c.pending_fatal.take() {
        cur_ref.fatal.get_or_insert(status);
    }
    unload(c, cur_ref);
    let save: *mut u64 = &mut cur_ref.saved_rsp;
    let target = match next {
        Some(mut n) => {
            // SAFETY: a live task from the run queue.
            let n = unsafe { n.as_mut() };
            load(c, n);
            c.current = next;
            n.saved_rsp
        }
        None => {
            c.current = None;
            c.idle_rsp
        }
    };
    c.need_resched = false;
    publish_threads();
    // SAFETY: `save` is the current task's slot (alive: a dead task is freed only by
    // whoever runs after it); `target` is a saved context.
    unsafe { context::switch(&mut *save, target) };
    free_dead();
}

/// The current task (for the trap boundary: fault handlers and the system-call
/// dispatcher pass it down; nothing below them looks it up).
pub fn current() -> Option<&'static mut Task> {
    // SAFETY: the current task lives while it runs; the boundary code that calls this
    // holds the only reference.
    cpu0().current.map(|mut t| unsafe { t.as_mut() })
}

/// The current program's name, for reports.
pub fn current_name() -> &'static str {
    current().map(|t| &*t.name).unwrap_or("kernel")
}

/// Time the current slice of `task` has run if it is on the CPU now, else 0.
pub fn running_ns(task: &Task) -> u64 {
    let c = cpu0();
    match c.current {
        Some(t) if core::ptr::eq(t.as_ptr(), task) => {
            time::monotonic_ns().saturating_sub(c.run_start_ns)
        }
        _ => 0,
    }
}

/// Called on each timer interrupt: wakes expired sleepers and ends the current slice
/// when it has run long enough.
pub fn on_tick() {
    crate::drivers::console_in::take_deferred();
    expire_timers();
    let c = cpu0();
    if c.current.is_some()
        && !c.runq.is_empty()
        && time::monotonic_ns().saturating_sub(c.run_start_ns) >= SLICE_NS
    {
        c.need_resched = true;
    }
}

/// True if the current task should give up the CPU at its next boundary.
pub fn need_resched() -> bool {
    cpu0().need_resched
}

/// Makes a blocked task runnable.
fn wake_task(task: &mut Task) {
    if task.state == TaskState::Blocked {
        task.state = TaskState::Runnable;
        cpu0().runq.push_back(NonNull::from(task));
    }
}

/// Wakes the task `tid` if it is blocked; false if there is no such live task.
pub fn wake(tid: u32) -> bool {
    match cpu0().tasks.get(&tid).copied() {
        Some(mut t) => {
            // SAFETY: a live registered task.
            wake_task(unsafe { t.as_mut() });
            true
        }
        None => false,
    }
}

/// Runs `f` on the live task `tid` other than the current one (signals, wake-ups).
pub fn with_other_task<R>(tid: u32, f: impl FnOnce(&mut Task) -> R) -> Option<R> {
    let c = cpu0();
    if c.current.is_some_and(|t| {
        // SAFETY: the current task is live.
        unsafe { t.as_ref() }.tid == tid
    }) {
        return None;
    }
    let mut t = c.tasks.get(&tid).copied()?;
    // SAFETY: a live task that is not the current one: no other reference to it exists
    // while the current task runs this.
    Some(f(unsafe { t.as_mut() }))
}

/// The address space of every live task, each once.
pub fn address_spaces() -> Vec<Arc<spin::Mutex<Mm>>> {
    let mut spaces: Vec<Arc<spin::Mutex<Mm>>> = Vec::new();
    for t in cpu0().tasks.values() {
        // SAFETY: live registered tasks; only their `mm` handle is read.
        let mm = &unsafe { t.as_ref() }.mm;
        if !spaces.iter().any(|s| Arc::ptr_eq(s, mm)) {
            spaces.push(mm.clone());
        }
    }
    spaces
}

/// The tids of the live threads of process `pid`.
pub fn threads_of(pid: u32) -> Vec<u32> {
    cpu0()
        .tasks
        .iter()
        .filter(|(_, t)| {
            // SAFETY: live registered tasks.
            unsafe { t.as_ref() }.process.pid == pid
        })
        .map(|(&tid, _)| tid)
        .collect()
}

/// How a wait ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitResult {
    /// Woken (the awaited event may have happened: check again).
    Woken,
    /// The deadline passed.
    TimedOut,
    /// A signal is deliverable or the process is ending: give up with EINTR.
    Interrupted,
}

/// True if `task` must stop waiting: a signal to deliver, or its process is ending.
pub fn interrupted(task: &Task) -> bool {
    task.signals.has_deliverable()
        || task.process.exiting().is_some()
        || task.exit_request.is_some()
}

/// Blocks the current task until [`wake`] (through a wait queue it put itself on), a
/// signal, or monotonic time `deadline_ns`. Outside a task (kernel self-tests) it halts
/// until the next interrupt instead.
pub fn block(deadline_ns: Option<u64>) -> WaitResult {
    let Some(task) = current() else {
        platform::idle();
        return match deadline_ns {
            Some(d) if time::monotonic_ns() >= d => WaitResult::TimedOut,
            _ => WaitResult::Woken,
        };
    };
    if interrupted(task) {
        return WaitResult::Interrupted;
    }
    if let Some(d) = deadline_ns {
        if time::monotonic_ns() >= d {
            return WaitResult::TimedOut;
        }
        cpu0().timers.insert((d, task.tid), ());
    }
    task.woken_by_timer = false;
    task.state = TaskState::Blocked;
    let tid = task.tid;
    crate::syscall::trace_blocking(tid);
    schedule();
    let task = current().expect("a woken task is current");
    debug_assert_eq!(task.tid, tid);
    if let Some(d) = deadline_ns {
        cpu0().timers.remove(&(d, tid));
    }
    if interrupted(task) {
        WaitResult::Interrupted
    } else if task.woken_by_timer || deadline_ns.is_some_and(|d| time::monotonic_ns() >= d) {
        WaitResult::TimedOut
    } else {
        WaitResult::Woken
    }
}

/// Blocks the current task until something wakes it (a stopped thread: SIGCONT,
/// SIGKILL or any signal sent to it, after which it checks again). Signals do not end
/// this wait by themselves.
pub fn park() {
    let Some(task) = current() else {
        return;
    };
    task.state = TaskState::Blocked;
    crate::syscall::trace_blocking(task.tid);
    schedule();
}

/// Wakes `task` because a signal was sent to it.
pub fn signal_wake(task: &mut Task) {
    wake_task(task);
}

/// Marks the current task to end with `status` at its next boundary (out of memory deep
/// in the kernel: the caller returns an error and unwinds with no lock held).
pub fn mark_current_fatal(status: u8) {
    let c = cpu0();
    if c.pending_fatal.is_none() {
        c.pending_fatal = Some(status);
    }
}

/// True if [`mark_current_fatal`] has marked the current task and it has not left the
/// CPU since (then the mark is in the task: `Task::fatal`).
pub fn take_pending_fatal_peek() -> bool {
    cpu0().pending_fatal.is_some()
}

/// Takes the fatal status set by [`mark_current_fatal`] while the current task (or,
/// outside any task, the kernel's self-tests) ran.
pub fn take_pending_fatal() -> Option<u8> {
    cpu0().pending_fatal.take()
}

/// Tables at `pml4` are being freed: never leave them in CR3.
pub fn tables_freed(pml4: u64) {
    let c = cpu0();
    if pml4 != 0 && (c.active_pml4 == pml4 || c.active_pml4 == 0) {
        crate::mm::activate_kernel_space();
        c.active_pml4 = crate::mm::kernel_space().pml4_phys();
    }
}

/// Ends the current thread with `status` and never returns. Call only at the
/// trap/system-call boundary, with no lock held.
pub fn exit_current(status: u8) -> ! {
    let task = current().expect("exit_current outside a task");
    super::exit::release_thread(task);
    // A thread on its way out that ran out of memory (clearing its `clear_child_tid`, its
    // robust list) only failed that write, as on Linux; nobody else is killed for it.
    cpu0().pending_fatal = None;
    let process = task.process.clone();
    process
        .dead_cpu_ns
        .fetch_add(task.cpu_ns(), Ordering::Relaxed);
    let last = process.live_threads.fetch_sub(1, Ordering::AcqRel) == 1;
    if last {
        process
            .last_status
            .store(status as u32 + 1, Ordering::Release);
        if let Some(parent) = super::process::on_exit(&process) {
            super::exit::notify_parent(&process, &parent);
        }
    }
    drop(process);
    task.state = TaskState::Dead;
    let c = cpu0();
    let tid = task.tid;
    c.tasks.remove(&tid);
    c.timers.retain(|&(_, t), _| t != tid);
    let ptr = NonNull::from(task);
    c.dead.push(ptr);
    schedule();
    unreachable!("a dead task was resumed");
}

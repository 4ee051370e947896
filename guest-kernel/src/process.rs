//! Processes: an address space, a kernel stack and the saved context to resume.
//!
//! For now one process runs at a time: the kernel's main context starts it and regains
//! control when it exits or is killed. The same stack-switch primitive will carry the
//! preemptive scheduler.

use alloc::alloc::{alloc_zeroed, dealloc, Layout};
use alloc::boxed::Box;
use alloc::string::String;
use core::sync::atomic::{AtomicU32, Ordering};

use crate::arch::context;
use crate::arch::platform;
use crate::arch::trap::{self, TrapFrame};
use crate::mm::paging::{AddressSpace, MapError};
use crate::mm::user::UserMemory;

/// Size of each process's kernel stack.
const KERNEL_STACK_SIZE: usize = 64 * 1024;

/// A user process.
pub struct Process {
    /// Process id.
    pub pid: u32,
    /// Program path, for reports.
    pub name: String,
    /// Its address space.
    pub space: AddressSpace,
    /// Its user memory areas, program break and layout (kept in step with `space`).
    pub mem: UserMemory,
    kernel_stack: KernelStack,
    saved_rsp: u64,
    /// Set when the process exits: its shell-style status.
    exit_status: Option<u8>,
    /// Lets the trap floor benchmark skip `ud2` instead of killing the process.
    pub bench_skip_ud2: bool,
    /// Open file descriptors.
    pub files: crate::fs::FdTable,
    /// Working directory: an absolute path without symlinks, `.` or `..`.
    pub cwd: String,
    /// Parent process id (0: started by the kernel, like init).
    pub ppid: u32,
    /// Signal actions, mask, pending signals, alternate stack.
    pub signals: crate::signal::SignalState,
    /// Per-thread registrations: FS/GS base, tid address, robust list, rseq.
    pub thread: crate::syscall::ThreadState,
    /// Resource limits.
    pub limits: crate::syscall::Rlimits,
    /// CPU-time clock.
    pub cpu: crate::time::CpuClock,
}

static NEXT_PID: AtomicU32 = AtomicU32::new(1);

/// A page-aligned kernel stack of its own pages, so that it can be mapped alone into a
/// process's user-mode tables (the CPU pushes trap frames on it before the entry code
/// switches to the kernel tables).
struct KernelStack {
    base: *mut u8,
}

impl KernelStack {
    const LAYOUT: Layout = match Layout::from_size_align(KERNEL_STACK_SIZE, 4096) {
        Ok(l) => l,
        Err(_) => panic!("bad kernel stack layout"),
    };

    fn new() -> Option<Self> {
        // SAFETY: the layout has a non-zero size.
        let base = unsafe { alloc_zeroed(Self::LAYOUT) };
        (!base.is_null()).then_some(KernelStack { base })
    }

    fn range(&self) -> (u64, u64) {
        (
            self.base as u64,
            self.base as u64 + KERNEL_STACK_SIZE as u64,
        )
    }
}

impl Drop for KernelStack {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with the same layout.
        unsafe { dealloc(self.base, Self::LAYOUT) };
    }
}

impl Process {
    /// A process that will start in user mode at `rip` with stack `rsp` in `space`.
    pub fn new(name: &str, space: AddressSpace, rip: u64, rsp: u64) -> Result<Box<Self>, MapError> {
        Self::new_with_arg(name, space, rip, rsp, 0)
    }

    /// Like [`Process::new`], entering with `rdi` = `arg`.
    pub fn new_with_arg(
        name: &str,
        mut space: AddressSpace,
        rip: u64,
        rsp: u64,
        arg: u64,
    ) -> Result<Box<Self>, MapError> {
        let Some(kernel_stack) = KernelStack::new() else {
            space.free_user_half();
            space.free_root();
            return Err(MapError::OutOfMemory);
        };
        let isolate = platform::needs_kernel_isolation();
        if isolate {
            let [text, data] = trap::entry_ranges();
            if let Err(e) = space.isolate_kernel(&[text, data, kernel_stack.range()]) {
                space.free_user_half();
                space.free_root();
                return Err(e);
            }
        }
        let mut proc = Box::new(Process {
            pid: NEXT_PID.fetch_add(1, Ordering::Relaxed),
            name: String::from(name),
            space,
            mem: UserMemory::new(),
            kernel_stack,
            saved_rsp: 0,
            exit_status: None,
            bench_skip_ud2: false,
            files: crate::fs::FdTable::with_stdio(),
            cwd: String::from("/"),
            ppid: 0,
            signals: crate::signal::SignalState::new(),
            thread: Default::default(),
            limits: Default::default(),
            cpu: crate::time::CpuClock::start(),
        });
        let top = proc.kernel_stack_top();
        let mut frame = TrapFrame::new_user(rip, rsp);
        frame.rdi = arg;
        // SAFETY: the stack was just allocated for this process and nothing uses it.
        proc.saved_rsp = unsafe { context::prepare_user_entry(top, &frame, isolate) };
        Ok(proc)
    }

    fn kernel_stack_top(&self) -> u64 {
        self.kernel_stack.range().1
    }
}

struct Scheduler {
    main_rsp: u64,
    current: Option<Box<Process>>,
}

static mut SCHED: Scheduler = Scheduler {
    main_rsp: 0,
    current: None,
};

fn sched() -> &'static mut Scheduler {
    // SAFETY: one CPU, and the scheduler state is only touched with interrupts disabled
    // (from the main context or from trap handlers, which run with interrupts off).
    unsafe {
        let sched = &raw mut SCHED;
        &mut *sched
    }
}

impl Process {
    /// The shell-style status once the process has ended (128+N if killed by signal N).
    pub fn exit_status(&self) -> Option<u8> {
        self.exit_status
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.space.free_user_half();
        self.space.free_root();
    }
}

/// Runs `proc` until it exits and gives it back, dead, for its status and memory.
pub fn run(proc: Box<Process>) -> Box<Process> {
    let s = sched();
    s.current = Some(proc);
    let (target_rsp, top) = {
        let p = s
            .current
            .as_ref()
            .map(|p| (p.saved_rsp, p.kernel_stack_top()));
        p.unwrap_or((0, 0))
    };
    if let Some(p) = s.current.as_ref() {
        trap::set_isolation_tables(p.space.pml4_phys(), p.space.user_pml4_phys());
        // SAFETY: the process's space was built from the kernel space.
        unsafe { p.space.activate() };
        p.thread.load_segment_bases();
    }
    trap::set_kernel_stack(top);
    // SAFETY: target_rsp was prepared by prepare_user_entry on the process's own stack,
    // which `s.current` keeps alive until we are switched back.
    unsafe { context::switch(&mut s.main_rsp, target_rsp) };
    // Back from exit_current.
    crate::mm::activate_kernel_space();
    s.current
        .take()
        .expect("the exiting process is still current")
}

/// The current process, if any.
pub fn current() -> Option<&'static mut Process> {
    sched().current.as_deref_mut()
}

/// The current program's name, for reports.
pub fn current_name() -> &'static str {
    current().map(|p| p.name.as_str()).unwrap_or("kernel")
}

/// Ends the current process with `status` and returns to the kernel's main context.
pub fn exit_current(status: u8) -> ! {
    let s = sched();
    let mut dummy = 0;
    if let Some(p) = s.current.as_mut() {
        p.exit_status = Some(status);
    }
    // SAFETY: main_rsp was saved by `run`, whose stack (the boot stack) is alive.
    unsafe { context::switch(&mut dummy, s.main_rsp) };
    unreachable!("a dead process was resumed");
}

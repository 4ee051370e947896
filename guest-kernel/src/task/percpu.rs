//! Per-CPU state: the task running on the CPU and the context to return to when it
//! ends. One structure per CPU, reached the same way from everywhere ([`this_cpu`]);
//! only its own CPU touches it, with interrupts disabled.

use alloc::sync::Arc;
use core::cell::UnsafeCell;

use super::Task;

/// What one CPU owns.
pub struct PerCpu {
    /// The running task.
    current: UnsafeCell<Option<Arc<Task>>>,
    /// The kernel's main context (the boot stack) while a task runs.
    main_rsp: UnsafeCell<u64>,
}

// SAFETY: each CPU touches only its own PerCpu, with interrupts disabled (the kernel is
// not preemptible), so no two accesses to one PerCpu ever overlap.
unsafe impl Sync for PerCpu {}

static CPU0: PerCpu = PerCpu {
    current: UnsafeCell::new(None),
    main_rsp: UnsafeCell::new(0),
};

/// This CPU's state (there is one CPU).
pub fn this_cpu() -> &'static PerCpu {
    &CPU0
}

impl PerCpu {
    /// The running task.
    pub fn current(&self) -> Option<Arc<Task>> {
        // SAFETY: only this CPU accesses its PerCpu, with interrupts off; the reference
        // does not outlive this call.
        unsafe { (*self.current.get()).clone() }
    }

    /// Replaces the running task, returning the previous one.
    pub fn set_current(&self, task: Option<Arc<Task>>) -> Option<Arc<Task>> {
        // SAFETY: as in `current`.
        unsafe { core::mem::replace(&mut *self.current.get(), task) }
    }

    /// The slot the main context's stack pointer is saved in (used only by context
    /// switches between the main context and a task, on this CPU).
    pub fn main_rsp(&self) -> *mut u64 {
        self.main_rsp.get()
    }
}

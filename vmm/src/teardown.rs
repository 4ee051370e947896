//! Leaving KVM's destruction of a finished VM to a child process.
//!
//! Destroying a VM with an in-kernel irqchip and PIT takes 10-50 ms on the PVM hosts
//! measured here (against ~0.5 ms for a VM without them): KVM unregisters every emulated
//! device and waits for SRCU grace periods. That is longer than booting the guest and
//! running its program, and nothing the user waits for depends on it. So `astra-vmm`
//! reports the guest's status and exits as soon as the guest has ended, and a child
//! process lets the host kernel destroy the VM after: it holds the last references to the
//! VM's file descriptors and closes its copies of stdin/stdout/stderr at once. The child
//! is made with `clone(CLONE_VM)`, so nothing copies the address space, and the parent's
//! exit does not unmap guest memory either (saves ~0.4 ms against `fork`).
//! The host does the same work either way; only the wait moves out of the caller's way.
//!
//! Known consequence, kept on purpose (issue 11, item 15): the child outlives `astra-vmm`
//! by those 10-50 ms and is then re-parented to init or to the nearest child subreaper
//! (`PR_SET_CHILD_SUBREAPER`), which reaps it. A subreaper that only waits for the pids it
//! started itself (some CI harnesses) leaves one zombie per run, as it would for any program
//! that daemonizes. There is no way around it short of waiting: an orphan always goes to
//! the subreaper (a grandchild, `CLONE_PARENT` or a thread would either be re-parented the
//! same way or make the exit wait for KVM, since a process's descriptors are closed before
//! its parent is told it ended). Such a harness must reap adopted children, as the
//! subreaper contract requires (`tini`, `dumb-init`, systemd and Docker's init all do).

use std::io::{self, Write};

/// Ends the process with `code` at once; `vm` (the finished VM's KVM objects, or `None`)
/// is torn down by a detached child. Falls back to tearing it down here if `clone` fails.
pub fn exit_leaving_teardown_to_child<T>(vm: Option<T>, code: u8) -> ! {
    let _ = io::stdout().flush();
    let _ = io::stderr().flush();
    let Some(vm) = vm else {
        // SAFETY: _exit ends the process; buffered output was flushed above.
        unsafe { libc::_exit(i32::from(code)) }
    };
    // SAFETY: the child runs `release_and_exit` on a stack of its own and shares this
    // process's memory (CLONE_VM, so neither side copies or tears down the address space
    // here), calling only close and _exit, which are async-signal-safe.
    let pid = unsafe {
        let stack_top = (&raw mut CHILD_STACK.0).cast::<u8>().add(CHILD_STACK_SIZE);
        libc::clone(
            release_and_exit,
            stack_top.cast(),
            libc::CLONE_VM | libc::SIGCHLD,
            std::ptr::null_mut(),
        )
    };
    if pid == -1 {
        drop(vm);
    } else {
        // The child holds the VM's descriptors (its own copies) and this address space
        // now; exiting here neither waits for KVM nor unmaps guest memory.
        std::mem::forget(vm);
    }
    // SAFETY: _exit ends the process; buffered output was flushed above.
    unsafe { libc::_exit(i32::from(code)) }
}

const CHILD_STACK_SIZE: usize = 16 * 1024;

#[repr(C, align(16))]
struct ChildStack([u8; CHILD_STACK_SIZE]);

/// The stack of the teardown child (only ever used by it, once).
static mut CHILD_STACK: ChildStack = ChildStack([0; CHILD_STACK_SIZE]);

/// The teardown child: gives up the caller's stdio, so pipes see end of file as soon as
/// the parent exits, then exits; the host destroys the VM when its last descriptor closes.
extern "C" fn release_and_exit(_: *mut libc::c_void) -> libc::c_int {
    // SAFETY: plain system calls on descriptors this child owns copies of.
    unsafe {
        libc::close(0);
        libc::close(1);
        libc::close(2);
        libc::_exit(0)
    }
}

//! Leaving KVM's destruction of a finished VM to a child process.
//!
//! Destroying a VM with an in-kernel irqchip and PIT takes 10-50 ms on the PVM hosts
//! measured here (against ~0.5 ms for a VM without them): KVM unregisters every emulated
//! device and waits for SRCU grace periods. That is longer than booting the guest and
//! running its program, and nothing the user waits for depends on it. So `astra-vmm`
//! reports the guest's status and exits as soon as the guest has ended, and a forked
//! child, which holds the last references to the VM's file descriptors and closes its
//! copies of stdin/stdout/stderr at once, lets the host kernel destroy the VM after.
//! The host does the same work either way; only the wait moves out of the caller's way.

use std::io::{self, Write};

/// Ends the process with `code` at once; `vm` (the finished VM's KVM objects, or `None`)
/// is torn down by a detached child. Falls back to tearing it down here if `fork` fails.
pub fn exit_leaving_teardown_to_child<T>(vm: Option<T>, code: u8) -> ! {
    let _ = io::stdout().flush();
    let _ = io::stderr().flush();
    let Some(vm) = vm else {
        // SAFETY: _exit ends the process; buffered output was flushed above.
        unsafe { libc::_exit(i32::from(code)) }
    };
    // SAFETY: fork in a multi-threaded process is sound as long as the child only calls
    // async-signal-safe functions, which close and _exit are.
    match unsafe { libc::fork() } {
        0 => {
            // SAFETY: the child gives up the caller's stdio (so pipes see EOF when the
            // parent exits) and exits; its exit closes the VM's last descriptors.
            unsafe {
                libc::close(0);
                libc::close(1);
                libc::close(2);
                libc::_exit(0)
            }
        }
        -1 => {
            drop(vm);
            // SAFETY: as above.
            unsafe { libc::_exit(i32::from(code)) }
        }
        _ => {
            // The child holds the descriptors now; dropping here would wait for nothing
            // but still unmap guest memory the child no longer needs either.
            std::mem::forget(vm);
            // SAFETY: as above.
            unsafe { libc::_exit(i32::from(code)) }
        }
    }
}

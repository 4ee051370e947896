//! The exit device: how the guest tells the VMM it is done.

use hypercall_abi::{ExitCode, ExitKind};

use crate::arch::{cpu, port};

fn exit(code: ExitCode) -> ! {
    port::outl(hypercall_abi::port::EXIT, code.0);
    // The VMM stops the VM on the write; should it not, stay put.
    loop {
        cpu::cli();
        cpu::hlt();
    }
}

/// Ends the VM with the init program's shell-style status.
pub fn program_exited(status: u8) -> ! {
    exit(ExitCode::new(ExitKind::Program, status))
}

/// Ends the VM reporting that the rootfs could not be mounted (after saying why).
pub fn rootfs_refused() -> ! {
    exit(ExitCode::new(ExitKind::RootfsRefused, 0))
}

/// Ends the VM reporting a kernel panic.
pub fn kernel_panic() -> ! {
    exit(ExitCode::new(ExitKind::KernelPanic, 0))
}

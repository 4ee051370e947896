//! What the kernel does with a trap, whichever platform delivered it.

use crate::arch::platform;
use crate::arch::trap::{TrapFrame, VECTOR_INT80, VECTOR_IRQ_BASE, VECTOR_SYSCALL};
use crate::mm::user::FaultError;
use crate::{process, syscall, time};

const VECTOR_TIMER: u64 = VECTOR_IRQ_BASE;

/// Linux signal numbers used for faults.
pub mod signal {
    /// Trace/breakpoint trap.
    pub const SIGTRAP: u8 = 5;
    /// Illegal instruction.
    pub const SIGILL: u8 = 4;
    /// Bus error.
    pub const SIGBUS: u8 = 7;
    /// Arithmetic exception.
    pub const SIGFPE: u8 = 8;
    /// Segmentation fault.
    pub const SIGSEGV: u8 = 11;
    /// Kill.
    pub const SIGKILL: u8 = 9;
}

/// Names of the CPU exceptions, for reports.
pub fn exception_name(vector: u64) -> &'static str {
    match vector {
        0 => "divide error",
        1 => "debug",
        2 => "NMI",
        3 => "breakpoint",
        4 => "overflow",
        5 => "bound range",
        6 => "invalid opcode",
        7 => "device not available",
        8 => "double fault",
        10 => "invalid TSS",
        11 => "segment not present",
        12 => "stack fault",
        13 => "general protection fault",
        14 => "page fault",
        16 => "x87 floating-point error",
        17 => "alignment check",
        18 => "machine check",
        19 => "SIMD floating-point error",
        _ => "unexpected trap",
    }
}

/// The signal a user-mode CPU exception raises, as Linux maps them.
pub fn signal_for_exception(vector: u64) -> u8 {
    match vector {
        0 | 16 | 19 => signal::SIGFPE,
        1 | 3 => signal::SIGTRAP,
        6 => signal::SIGILL,
        17 => signal::SIGBUS,
        _ => signal::SIGSEGV,
    }
}

/// Entry from the arch trap stubs and the SYSCALL entry.
pub fn handle(frame: &mut TrapFrame) {
    let vector = frame.vector_number();
    let user = frame.from_user();
    match vector {
        VECTOR_SYSCALL | VECTOR_INT80 => syscall::dispatch(frame),
        VECTOR_TIMER => time::tick(),
        v if (VECTOR_IRQ_BASE..VECTOR_IRQ_BASE + 16).contains(&v) => {}
        13 if user && platform::is_int80_gp(frame.error_code) => {
            // PVM reports `int 0x80` as #GP at the instruction: step over its two bytes.
            frame.rip += 2;
            syscall::dispatch(frame);
        }
        14 if user => user_page_fault(frame),
        _ if user => {
            if !(vector == 6 && crate::bench::skip_trap(frame)) {
                user_fault(frame, vector);
            }
        }
        _ => {
            if !(vector == 13
                && platform::recover_probe_fault(&mut frame.rip, &mut frame.rax, &mut frame.rdx))
            {
                kernel_fault(frame);
            }
        }
    }
}

/// A user page fault: demand paging resolves most; the rest are real faults.
fn user_page_fault(frame: &TrapFrame) {
    let addr = platform::fault_address();
    let Some(proc) = process::current() else {
        return user_fault(frame, 14);
    };
    match crate::mm::user::handle_page_fault(proc, addr, frame.error_code) {
        Ok(()) => {}
        Err(FaultError::OutOfMemory) => crate::mm::user::oom_kill(),
        Err(FaultError::Bus) => {
            crate::kprintln!(
                "astra: {} killed by SIGBUS: page fault at {:#x} past the end of the mapped file, rip={:#x}",
                process::current_name(),
                addr,
                frame.rip
            );
            process::exit_current(128 + signal::SIGBUS);
        }
        Err(FaultError::Unmapped | FaultError::Protection) => user_fault(frame, 14),
    }
}

fn user_fault(frame: &TrapFrame, vector: u64) {
    let sig = signal_for_exception(vector);
    let proc_name = process::current_name();
    if vector == 14 {
        let addr = platform::fault_address();
        let access = if frame.error_code & 2 != 0 {
            "write"
        } else {
            "read"
        };
        let why = if frame.error_code & 1 != 0 {
            "protection violation"
        } else {
            "not mapped"
        };
        crate::kprintln!(
            "astra: {} killed by {}: page fault at {:#x} ({}, {}), rip={:#x}",
            proc_name,
            signal_name(sig),
            addr,
            access,
            why,
            frame.rip
        );
    } else {
        crate::kprintln!(
            "astra: {} killed by {}: {} (error {:#x}), rip={:#x}",
            proc_name,
            signal_name(sig),
            exception_name(vector),
            frame.error_code,
            frame.rip
        );
    }
    process::exit_current(128 + sig);
}

/// The short name of a signal.
pub fn signal_name(sig: u8) -> &'static str {
    match sig {
        signal::SIGTRAP => "SIGTRAP",
        signal::SIGILL => "SIGILL",
        signal::SIGBUS => "SIGBUS",
        signal::SIGFPE => "SIGFPE",
        signal::SIGSEGV => "SIGSEGV",
        signal::SIGKILL => "SIGKILL",
        _ => "signal",
    }
}

fn kernel_fault(frame: &TrapFrame) -> ! {
    use crate::drivers::console::write_fmt_emergency as emit;
    let cr2 = if frame.vector_number() == 14 {
        platform::fault_address()
    } else {
        0
    };
    emit(format_args!(
        "astra: KERNEL FAULT: vector {} ({}), error code {:#x}, rip={:#x}, cr2={:#x}\n",
        frame.vector_number(),
        exception_name(frame.vector_number()),
        frame.error_code,
        frame.rip,
        cr2
    ));
    emit(format_args!(
        "  rax={:#018x} rbx={:#018x} rcx={:#018x} rdx={:#018x}\n  rsi={:#018x} rdi={:#018x} rbp={:#018x} rsp={:#018x}\n",
        frame.rax, frame.rbx, frame.rcx, frame.rdx, frame.rsi, frame.rdi, frame.rbp, frame.rsp
    ));
    emit(format_args!(
        "  r8={:#018x} r9={:#018x} r10={:#018x} r11={:#018x}\n  r12={:#018x} r13={:#018x} r14={:#018x} r15={:#018x}\n  cs={:#x} ss={:#x} rflags={:#x}\n",
        frame.r8, frame.r9, frame.r10, frame.r11, frame.r12, frame.r13, frame.r14, frame.r15,
        frame.cs, frame.ss, frame.rflags
    ));
    crate::drivers::exit::kernel_panic();
}

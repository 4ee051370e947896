//! What the kernel does with a trap, whichever platform delivered it.

use crate::arch::platform;
use crate::arch::trap::{TrapFrame, VECTOR_INT80, VECTOR_IRQ_BASE, VECTOR_SYSCALL};
use crate::mm::user::FaultError;
use crate::task::{self, sched};
use crate::{syscall, time};

const VECTOR_TIMER: u64 = VECTOR_IRQ_BASE;
/// IRQ 4, the console: input arrived or ended (see `drivers::console_in`).
const VECTOR_CONSOLE: u64 = VECTOR_IRQ_BASE + 4;

/// Linux signal numbers (kept here for existing users; `crate::signal` owns them).
pub use crate::signal::sig as signal;

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

/// Entry from the arch trap stubs and the SYSCALL entry.
pub fn handle(frame: &mut TrapFrame) {
    let vector = frame.vector_number();
    let user = frame.from_user();
    if (VECTOR_IRQ_BASE..VECTOR_IRQ_BASE + 16).contains(&vector)
        && platform::interrupted_with_irqs_off(frame.rflags)
    {
        // An interrupt delivered while interrupts were off: real hardware never does
        // that, but QEMU's nested SVM (the hardware-KVM test tier) does, in a burst of PIT
        // ticks, right inside the handler of the previous one. Handling it here would
        // re-enter the scheduler mid-update (a corrupted timer tree), so only what is safe
        // anywhere happens now; the rest waits for the next proper tick. User mode runs
        // with interrupts off only for a debugger's single step, which must not wander
        // into the scheduler either.
        if vector == VECTOR_TIMER {
            time::tick();
        } else if vector == VECTOR_CONSOLE {
            crate::drivers::console_in::interrupt_deferred();
        }
        return;
    }
    match vector {
        VECTOR_SYSCALL | VECTOR_INT80 => {
            // The dispatcher returns through the task boundary itself.
            syscall::dispatch(frame);
            crate::arch::debug::after_syscall(frame);
            return;
        }
        VECTOR_TIMER => {
            time::tick();
            sched::on_tick();
        }
        VECTOR_CONSOLE => crate::drivers::console_in::interrupt(),
        v if (VECTOR_IRQ_BASE..VECTOR_IRQ_BASE + 16).contains(&v) => {}
        13 if user && platform::is_int80_gp(frame.error_code) => {
            // PVM reports `int 0x80` as #GP at the instruction: step over its two bytes.
            frame.rip += 2;
            syscall::dispatch(frame);
            crate::arch::debug::after_syscall(frame);
            return;
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
    if user {
        task::return_to_user(frame);
    }
}

/// A user page fault: demand paging resolves most; the rest raise SIGSEGV or SIGBUS.
fn user_page_fault(frame: &mut TrapFrame) {
    use crate::signal::{si_code, FaultOutcome};
    let addr = platform::fault_address();
    let Some(task) = sched::current() else {
        return user_fault(frame, 14);
    };
    let result = crate::mm::user::handle_page_fault(&mut task.mm.lock(), addr, frame.error_code);
    let (sig, code, why) = match result {
        Ok(()) => {
            task.min_flt += 1;
            task.process.count_fault();
            return;
        }
        Err(FaultError::OutOfMemory) => return crate::mm::user::oom_kill(),
        Err(FaultError::Unmapped) => (signal::SIGSEGV, si_code::SEGV_MAPERR, "not mapped"),
        Err(FaultError::Protection) => (
            signal::SIGSEGV,
            si_code::SEGV_ACCERR,
            "protection violation",
        ),
        Err(FaultError::Bus) => (
            signal::SIGBUS,
            si_code::BUS_ADRERR,
            "past the end of the mapped file, or no page for it (file system full)",
        ),
    };
    if let FaultOutcome::Fatal(sig) = crate::signal::deliver_memory_fault(frame, sig, code, addr) {
        report_fatal(frame, 14, addr, sig, why);
    }
}

fn user_fault(frame: &mut TrapFrame, vector: u64) {
    let addr = if vector == 14 {
        platform::fault_address()
    } else {
        0
    };
    // A registered handler runs (on Linux's terms); otherwise the default action kills.
    let sig = match crate::signal::deliver_fault(frame, vector, addr) {
        crate::signal::FaultOutcome::Handled => return,
        crate::signal::FaultOutcome::Fatal(sig) => sig,
    };
    let why = if frame.error_code & 1 != 0 {
        "protection violation"
    } else {
        "not mapped"
    };
    report_fatal(frame, vector, addr, sig, why);
}

/// Reports a fault whose signal kills the process, and ends it with 128 + `sig` (at
/// the boundary the trap returns through).
fn report_fatal(frame: &TrapFrame, vector: u64, addr: u64, sig: u8, why: &str) {
    let proc_name = sched::current_name();
    if vector == 14 {
        let access = if frame.error_code & 2 != 0 {
            "write"
        } else {
            "read"
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
    if let Some(task) = sched::current() {
        task::kill_process_by_signal(&task.process, sig);
    }
}

/// The short name of a signal.
pub fn signal_name(sig: u8) -> &'static str {
    crate::signal::name(sig)
}

/// Reports a fault in the kernel itself and ends the VM as a kernel panic.
pub fn kernel_fault(frame: &TrapFrame) -> ! {
    use crate::drivers::console::write_fmt_emergency as emit;
    // A double fault is most likely a page fault that could not push its frame: CR2
    // still holds the address.
    let cr2 = if matches!(frame.vector_number(), 8 | 14) {
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
    if crate::task::kstack::is_guard_address(cr2)
        || crate::task::kstack::is_guard_address(frame.rsp)
    {
        emit(format_args!(
            "  kernel stack overflow: {:#x} is in a stack's guard pages\n",
            if crate::task::kstack::is_guard_address(cr2) {
                cr2
            } else {
                frame.rsp
            }
        ));
    }
    emit(format_args!(
        "  rax={:#018x} rbx={:#018x} rcx={:#018x} rdx={:#018x}\n  rsi={:#018x} rdi={:#018x} rbp={:#018x} rsp={:#018x}\n",
        frame.rax, frame.rbx, frame.rcx, frame.rdx, frame.rsi, frame.rdi, frame.rbp, frame.rsp
    ));
    emit(format_args!(
        "  r8={:#018x} r9={:#018x} r10={:#018x} r11={:#018x}\n  r12={:#018x} r13={:#018x} r14={:#018x} r15={:#018x}\n  cs={:#x} ss={:#x} rflags={:#x}\n",
        frame.r8, frame.r9, frame.r10, frame.r11, frame.r12, frame.r13, frame.r14, frame.r15,
        frame.cs, frame.ss, frame.rflags
    ));
    emit_stack_scan(frame.rsp);
    crate::drivers::exit::kernel_panic();
}

/// The kernel's code (`[start, end)`, entry text included) and the end of its image.
#[cfg(not(test))]
fn kernel_layout() -> (u64, u64, u64) {
    extern "C" {
        static __kernel_start: u8;
        static __entry_text_end: u8;
        static __kernel_end: u8;
    }
    // SAFETY: linker symbols; only their addresses are taken.
    unsafe {
        (
            &__kernel_start as *const u8 as u64,
            &__entry_text_end as *const u8 as u64,
            &__kernel_end as *const u8 as u64,
        )
    }
}

/// Host unit tests link no kernel image: no code range, so the scan shows nothing.
#[cfg(test)]
fn kernel_layout() -> (u64, u64, u64) {
    (0, 0, 0)
}

/// Prints the words on the faulting stack that point into kernel code: likely return
/// addresses (a scan, like the `?` entries of Linux's oops trace: the kernel has no frame
/// pointers). `addr2line -e build/guest.debug.elf` turns them into functions.
pub fn emit_stack_scan(rsp: u64) {
    use crate::drivers::console::write_fmt_emergency as emit;
    let (text_start, text_end, image_end) = kernel_layout();
    if rsp & 7 != 0 {
        return;
    }
    // A task's stack ends at its slot's top; the boot stack lies in the image's data,
    // mapped on both sides. At most 96 words.
    let limit = match crate::task::kstack::top_of(rsp) {
        Some(top) => top,
        None if (text_start..image_end).contains(&rsp) => image_end,
        None => return,
    };
    emit(format_args!("  stack scan (code addresses from rsp up):"));
    let mut shown = 0;
    let mut at = rsp;
    while at < limit && at - rsp < 96 * 8 && shown < 24 {
        // SAFETY: an aligned read inside the mapped stack pages the fault ran on.
        let word = unsafe { core::ptr::read_volatile(at as *const u64) };
        if (text_start..text_end).contains(&word) {
            emit(format_args!(" {:#x}", word));
            shown += 1;
        }
        at += 8;
    }
    emit(format_args!("\n"));
}

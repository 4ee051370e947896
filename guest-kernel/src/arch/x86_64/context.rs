//! Switching between kernel stacks: the primitive under tasks and the scheduler.

use core::arch::global_asm;

use super::trap::{self, TrapFrame};

global_asm!(
    ".global switch_stack",
    "switch_stack:",
    "push rbp",
    "push rbx",
    "push r12",
    "push r13",
    "push r14",
    "push r15",
    "mov [rdi], rsp",
    "mov rsp, rsi",
    "pop r15",
    "pop r14",
    "pop r13",
    "pop r12",
    "pop rbx",
    "pop rbp",
    "ret",
);

// A task's first run: the switch "returns" here with rsp at its TrapFrame. It goes back
// to user mode the way every trap does, through the kernel's return-to-user boundary
// (pending signals, interrupts a PVM host held back, preemption), then `trap_return`.
global_asm!(
    ".global task_first_entry",
    "task_first_entry:",
    "mov rdi, rsp",
    "call {first_return}",
    "jmp trap_return",
    first_return = sym first_return,
);

/// Runs `f` on the stack whose top is `top`, for good.
///
/// # Safety
/// `top` must be the 16-byte aligned top of a mapped kernel stack nothing else uses.
pub unsafe fn run_on_stack(top: u64, f: extern "C" fn() -> !) -> ! {
    // SAFETY: the caller vouches for the stack; `f` never returns, so nothing of the
    // current stack is used again.
    unsafe {
        core::arch::asm!("mov rsp, {top}", "call {f}", "ud2", top = in(reg) top, f = in(reg) f,
            options(noreturn))
    }
}

extern "C" fn first_return(frame: &mut TrapFrame) {
    crate::task::return_to_user(frame);
}

extern "C" {
    fn switch_stack(save_rsp: *mut u64, load_rsp: u64);
    fn task_first_entry();
}

/// Saves the current kernel context into `save_rsp` and resumes the one at `load_rsp`.
///
/// # Safety
/// `load_rsp` must be a stack saved by this function or prepared by
/// [`prepare_user_entry`], and its stack must stay alive while it runs.
pub unsafe fn switch(save_rsp: &mut u64, load_rsp: u64) {
    // SAFETY: the caller guarantees `load_rsp` is a valid saved context.
    unsafe { switch_stack(save_rsp, load_rsp) };
}

/// Prepares a fresh kernel stack (`stack_top`, 16-byte aligned) so that switching to it
/// enters user mode with `frame` (through the task's first-return path and the
/// trampoline, loading the process's user-mode page tables if it has them). Returns the
/// saved-context value to switch to.
///
/// # Safety
/// `stack_top` must be the top of a writable, otherwise unused kernel stack with room
/// for a frame and the saved registers.
pub unsafe fn prepare_user_entry(stack_top: u64, frame: &TrapFrame) -> u64 {
    let frame_addr = stack_top - core::mem::size_of::<TrapFrame>() as u64;
    // As if the task had entered the kernel from user mode (trap_return goes back to
    // user mode through the trampoline, loading the user-mode tables if any).
    let mut frame = *frame;
    frame.vector |= trap::VECTOR_FROM_USER;
    // SAFETY: the caller guarantees the stack is ours and large enough.
    unsafe {
        core::ptr::write(frame_addr as *mut TrapFrame, frame);
        let ret_addr = frame_addr - 8;
        core::ptr::write(ret_addr as *mut u64, task_first_entry as *const () as u64);
        let regs = ret_addr - 6 * 8;
        core::ptr::write_bytes(regs as *mut u64, 0, 6);
        regs
    }
}

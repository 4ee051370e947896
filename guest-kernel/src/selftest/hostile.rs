//! Self-tests of ring-3 programs doing what hostile or broken programs do (issue 11):
//! a fault with a wild stack pointer must still reach its `SA_ONSTACK` handler.
//!
//! Data layout and conventions as in `sys.rs`.

use alloc::format;
use core::arch::global_asm;

use super::sys::{expect_exit, peek};
use super::{blob, check, run_blob_with, TestResult, BLOB_DATA_VA};

global_asm!(
    ".section .rodata.selftest, \"a\"",
    // ---- A fault with rsp below the 128-byte red zone, handled on the alternate stack.
    ".global sys_blob_low_rsp_altstack",
    ".global sys_blob_low_rsp_altstack_end",
    "sys_blob_low_rsp_altstack:",
    // sigaltstack({0x601000, 0, 0x1000}, NULL)
    "mov qword ptr [0x600100], 0x601000",
    "mov qword ptr [0x600108], 0",
    "mov qword ptr [0x600110], 0x1000",
    "mov edi, 0x600100",
    "xor esi, esi",
    "mov eax, 131",
    "syscall",
    "test rax, rax",
    "jne 81f",
    // rt_sigaction(SIGSEGV, {handler, SA_SIGINFO|SA_ONSTACK|SA_RESTORER, handler, 0})
    "lea rax, [rip + 50f]",
    "mov [0x600200], rax",
    "mov qword ptr [0x600208], 0x0c000004",
    "mov [0x600210], rax",
    "mov qword ptr [0x600218], 0",
    "mov edi, 11",
    "mov esi, 0x600200",
    "xor edx, edx",
    "mov r10d, 8",
    "mov eax, 13",
    "syscall",
    "test rax, rax",
    "jne 82f",
    // A wild stack pointer, then a fault.
    "mov esp, 64",
    "mov eax, 0x10",
    "mov rax, [rax]",
    "ud2",
    // Handler: record where it runs, exit 42.
    "50:",
    "mov [0x600400], rsp",
    "mov edi, 42",
    "jmp 89f",
    "81: mov edi, 1",
    "jmp 89f",
    "82: mov edi, 2",
    "89: mov eax, 231",
    "syscall",
    "sys_blob_low_rsp_altstack_end:",
);

extern "C" {
    static sys_blob_low_rsp_altstack: u8;
    static sys_blob_low_rsp_altstack_end: u8;
}

pub(super) fn ring3_low_rsp_fault_runs_the_onstack_handler() -> TestResult {
    // SAFETY: the labels delimit the blob above.
    let code = blob(unsafe { &sys_blob_low_rsp_altstack }, unsafe {
        &sys_blob_low_rsp_altstack_end
    });
    let proc = run_blob_with(code, false, 0)?;
    expect_exit(
        &proc,
        42,
        "low-rsp fault program (1: sigaltstack, 2: sigaction, 139: the handler did not run)",
    )?;
    let rsp = peek(&proc, BLOB_DATA_VA + 0x400)?;
    check(
        rsp > BLOB_DATA_VA + 0x1000 && rsp <= BLOB_DATA_VA + 0x2000,
        &format!("handler rsp {rsp:#x} is not on the alternate stack"),
    )
}

//! Self-tests of signal delivery: ring-3 programs that take a fault into a handler on
//! an alternate stack and come back through `rt_sigreturn` with every register intact,
//! signal themselves, and die the ways Linux makes them die.
//!
//! Data layout and conventions as in `sys.rs`.

use alloc::format;
use core::arch::global_asm;

use super::sys::{expect_exit, peek};
use super::{blob, check, run_blob_with, TestResult, BLOB_DATA_VA};
use crate::signal::sig;

global_asm!(
    ".section .rodata.selftest, \"a\"",
    // ---- A page fault handled on the alternate stack; sigreturn restores everything.
    ".global sys_blob_altstack",
    ".global sys_blob_altstack_end",
    "sys_blob_altstack:",
    // sigaltstack({0x602000, 0, 0x1000}, NULL): the third data page (a frame with
    // AVX-512 state takes ~3.2 KiB, more than MINSIGSTKSZ, as on Linux).
    "mov qword ptr [0x600100], 0x602000",
    "mov qword ptr [0x600108], 0",
    "mov qword ptr [0x600110], 0x1000",
    "mov edi, 0x600100",
    "xor esi, esi",
    "mov eax, 131",
    "syscall",
    "test rax, rax",
    "jne 81f",
    // rt_sigaction(SIGSEGV, {handler, SA_SIGINFO|SA_ONSTACK|SA_RESTORER, restorer, 0})
    "lea rax, [rip + 50f]",
    "mov [0x600200], rax",
    "mov qword ptr [0x600208], 0x0c000004",
    "lea rax, [rip + 60f]",
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
    // Known values in every register, xmm0 included; then read address 0x10.
    "mov rax, 0x0123456789abcdef",
    "movq xmm0, rax",
    "mov rbx, 0x1111",
    "mov rcx, 0x5555",
    "mov rdx, 0xcccc",
    "mov rsi, 0xaaaa",
    "mov rdi, 0xbbbb",
    "mov rbp, 0x2222",
    "mov r8, 0x8888",
    "mov r9, 0x9999",
    "mov r10, 0x1010",
    "mov r11, 0x6666",
    "mov r12, 0x3333",
    "mov r13, 0x1313",
    "mov r14, 0x1414",
    "mov r15, 0x4444",
    "mov [0x600300], rsp",
    "mov eax, 0x10",
    "mov rax, [rax]",
    // The handler resumes here (it moved rip past the faulting load).
    "40:",
    "cmp rbx, 0x1111",
    "jne 83f",
    "cmp rcx, 0x5555",
    "jne 83f",
    "cmp rdx, 0xcccc",
    "jne 83f",
    "cmp rsi, 0xaaaa",
    "jne 83f",
    "cmp rdi, 0xbbbb",
    "jne 83f",
    "cmp rbp, 0x2222",
    "jne 83f",
    "cmp r8, 0x8888",
    "jne 83f",
    "cmp r9, 0x9999",
    "jne 83f",
    "cmp r10, 0x1010",
    "jne 83f",
    "cmp r11, 0x6666",
    "jne 83f",
    "cmp r12, 0x3333",
    "jne 83f",
    "cmp r13, 0x1313",
    "jne 83f",
    "cmp r14, 0x1414",
    "jne 83f",
    "cmp r15, 0x4444",
    "jne 83f",
    "cmp rax, 0x10",
    "jne 84f",
    "cmp rsp, [0x600300]",
    "jne 84f",
    "movq rax, xmm0",
    "mov rbx, 0x0123456789abcdef",
    "cmp rax, rbx",
    "jne 85f",
    // The mask is back to empty.
    "xor edi, edi",
    "xor esi, esi",
    "mov edx, 0x600500",
    "mov r10d, 8",
    "mov eax, 14",
    "syscall",
    "cmp qword ptr [0x600500], 0",
    "jne 86f",
    "xor edi, edi",
    "jmp 89f",
    // Handler(sig, info, uc): record what it sees, ask the kernel about the stack and
    // mask, clobber registers, resume after the faulting instruction.
    "50:",
    "mov qword ptr [0x600400], 1",
    "mov [0x600408], rdi",
    "mov eax, [rsi]",
    "mov [0x600410], rax",
    "mov eax, [rsi + 8]",
    "mov [0x600418], rax",
    "mov rax, [rsi + 16]",
    "mov [0x600420], rax",
    "mov [0x600428], rsp",
    "mov rax, [rdx + 40 + 15 * 8]",
    "mov [0x600430], rax",
    "mov rax, [rdx + 40 + 11 * 8]",
    "mov [0x600438], rax",
    "mov rax, [rdx + 40 + 20 * 8]",
    "mov [0x600440], rax",
    "mov rax, [rdx + 40 + 23 * 8]",
    "mov [0x600448], rax",
    "mov rbx, rdx",
    "xor edi, edi",
    "mov esi, 0x600480",
    "mov eax, 131",
    "syscall",
    "xor edi, edi",
    "xor esi, esi",
    "mov edx, 0x600490",
    "mov r10d, 8",
    "mov eax, 14",
    "syscall",
    "pxor xmm0, xmm0",
    "mov r12, -1",
    "mov r15, -1",
    "lea rax, [rip + 40b]",
    "mov [rbx + 40 + 16 * 8], rax",
    "ret",
    // The restorer, as libcs write it.
    "60:",
    "mov eax, 15",
    "syscall",
    "ud2",
    "81: mov edi, 1",
    "jmp 89f",
    "82: mov edi, 2",
    "jmp 89f",
    "83: mov edi, 3",
    "jmp 89f",
    "84: mov edi, 4",
    "jmp 89f",
    "85: mov edi, 5",
    "jmp 89f",
    "86: mov edi, 6",
    "89: mov eax, 231",
    "syscall",
    "sys_blob_altstack_end:",
    //
    // ---- kill/tgkill/tkill to self: handler, blocking, pending, errors, SIGABRT.
    ".global sys_blob_kill",
    ".global sys_blob_kill_end",
    "sys_blob_kill:",
    "lea rax, [rip + 50f]",
    "mov [0x600200], rax",
    "mov qword ptr [0x600208], 0x04000000",
    "lea rax, [rip + 60f]",
    "mov [0x600210], rax",
    "mov qword ptr [0x600218], 0",
    "mov edi, 10",
    "mov esi, 0x600200",
    "xor edx, edx",
    "mov r10d, 8",
    "mov eax, 13",
    "syscall",
    "test rax, rax",
    "jne 71f",
    // kill(getpid(), SIGUSR1): the handler runs before kill returns 0.
    "mov eax, 39",
    "syscall",
    "mov edi, eax",
    "mov esi, 10",
    "mov eax, 62",
    "syscall",
    "test rax, rax",
    "jne 72f",
    "cmp qword ptr [0x600400], 1",
    "jne 72f",
    // Block SIGUSR1, tgkill: stays pending; rt_sigpending shows it; unblocking runs it.
    "mov qword ptr [0x600500], 0x200",
    "xor edi, edi",
    "mov esi, 0x600500",
    "xor edx, edx",
    "mov r10d, 8",
    "mov eax, 14",
    "syscall",
    "mov eax, 39",
    "syscall",
    "mov edi, eax",
    "mov esi, eax",
    "mov edx, 10",
    "mov eax, 234",
    "syscall",
    "test rax, rax",
    "jne 73f",
    "cmp qword ptr [0x600400], 1",
    "jne 73f",
    "mov edi, 0x600508",
    "mov esi, 8",
    "mov eax, 127",
    "syscall",
    "cmp qword ptr [0x600508], 0x200",
    "jne 74f",
    "mov edi, 1",
    "mov esi, 0x600500",
    "xor edx, edx",
    "mov r10d, 8",
    "mov eax, 14",
    "syscall",
    "cmp qword ptr [0x600400], 2",
    "jne 75f",
    // Errors: signal 65 (EINVAL), another pid (ESRCH), catching SIGKILL (EINVAL),
    // a wrong sigsetsize (EINVAL).
    "mov eax, 39",
    "syscall",
    "mov edi, eax",
    "mov esi, 65",
    "mov eax, 62",
    "syscall",
    "cmp rax, -22",
    "jne 76f",
    "mov edi, 9999",
    "mov esi, 10",
    "mov eax, 62",
    "syscall",
    "cmp rax, -3",
    "jne 76f",
    "mov edi, 9",
    "mov esi, 0x600200",
    "xor edx, edx",
    "mov r10d, 8",
    "mov eax, 13",
    "syscall",
    "cmp rax, -22",
    "jne 77f",
    "mov edi, 10",
    "mov esi, 0x600200",
    "xor edx, edx",
    "mov r10d, 4",
    "mov eax, 13",
    "syscall",
    "cmp rax, -22",
    "jne 77f",
    // tkill(gettid(), SIGABRT) with the default action: the process ends with 134.
    "mov eax, 186",
    "syscall",
    "mov edi, eax",
    "mov esi, 6",
    "mov eax, 200",
    "syscall",
    "mov edi, 8",
    "jmp 79f",
    "50:",
    "inc qword ptr [0x600400]",
    "ret",
    "60:",
    "mov eax, 15",
    "syscall",
    "ud2",
    "71: mov edi, 1",
    "jmp 79f",
    "72: mov edi, 2",
    "jmp 79f",
    "73: mov edi, 3",
    "jmp 79f",
    "74: mov edi, 4",
    "jmp 79f",
    "75: mov edi, 5",
    "jmp 79f",
    "76: mov edi, 6",
    "jmp 79f",
    "77: mov edi, 7",
    "79: mov eax, 231",
    "syscall",
    "sys_blob_kill_end:",
    //
    // ---- Fatal cases, chosen by rdi: 0 a fault inside the SIGSEGV handler (blocked:
    // fatal); 1 a handler whose stack is unusable; 2 SA_RESETHAND: the first ud2 is
    // handled, the second kills with SIGILL; 3 a handler at a non-canonical address.
    ".global sys_blob_fatal",
    ".global sys_blob_fatal_end",
    "sys_blob_fatal:",
    "mov r12, rdi",
    "lea rax, [rip + 50f]",
    "cmp r12, 3",
    "jne 1f",
    "mov rax, 0x8000000000000000",
    "1: mov [0x600200], rax",
    // SA_SIGINFO | SA_RESTORER, plus SA_RESETHAND for the SIGILL case.
    "mov eax, 0x04000004",
    "cmp r12, 2",
    "jne 1f",
    "mov eax, 0x84000004",
    "1: mov [0x600208], rax",
    "lea rax, [rip + 60f]",
    "mov [0x600210], rax",
    "mov qword ptr [0x600218], 0",
    "mov edi, 11",
    "cmp r12, 2",
    "jne 2f",
    "mov edi, 4",
    "2: mov esi, 0x600200",
    "xor edx, edx",
    "mov r10d, 8",
    "mov eax, 13",
    "syscall",
    "test rax, rax",
    "jne 69f",
    "cmp r12, 1",
    "jne 3f",
    "mov rsp, 0x1000",
    "3: cmp r12, 2",
    "jne 4f",
    "ud2",
    "ud2",
    "4: mov eax, 0x10",
    "mov rax, [rax]",
    "mov edi, 9",
    "jmp 68f",
    // Handler: SIGILL steps over the ud2; SIGSEGV faults again.
    "50:",
    "cmp edi, 4",
    "jne 5f",
    "add qword ptr [rdx + 40 + 16 * 8], 2",
    "ret",
    "5: mov rax, [0x10]",
    "ret",
    "60:",
    "mov eax, 15",
    "syscall",
    "ud2",
    "69: mov edi, 1",
    "68: mov eax, 231",
    "syscall",
    "sys_blob_fatal_end:",
);

extern "C" {
    static sys_blob_altstack: u8;
    static sys_blob_altstack_end: u8;
    static sys_blob_kill: u8;
    static sys_blob_kill_end: u8;
    static sys_blob_fatal: u8;
    static sys_blob_fatal_end: u8;
}

pub(super) fn ring3_fault_handler_on_altstack_and_sigreturn() -> TestResult {
    // SAFETY: as above.
    let code = blob(unsafe { &sys_blob_altstack }, unsafe {
        &sys_blob_altstack_end
    });
    let proc = run_blob_with(code, false, 0)?;
    expect_exit(
        &proc,
        0,
        "fault program (1: sigaltstack, 2: sigaction, 3: registers, 4: rax/rsp, 5: xmm0, 6: mask)",
    )?;
    let d = BLOB_DATA_VA;
    check(peek(&proc, d + 0x400)? == 1, "the handler did not run")?;
    check(peek(&proc, d + 0x408)? == 11, "rdi is not SIGSEGV")?;
    check(peek(&proc, d + 0x410)? == 11, "si_signo is not SIGSEGV")?;
    check(peek(&proc, d + 0x418)? == 1, "si_code is not SEGV_MAPERR")?;
    check(
        peek(&proc, d + 0x420)? == 0x10,
        "si_addr is not the fault address",
    )?;
    let rsp = peek(&proc, d + 0x428)?;
    check(
        rsp > d + 0x2000 && rsp <= d + 0x3000,
        &format!("handler rsp {rsp:#x} is not on the alternate stack"),
    )?;
    check(rsp % 16 == 8, "handler rsp is not aligned as after a call")?;
    check(
        peek(&proc, d + 0x430)? == peek(&proc, d + 0x300)?,
        "uc_mcontext.rsp is not the interrupted rsp",
    )?;
    check(peek(&proc, d + 0x438)? == 0x1111, "uc_mcontext.rbx")?;
    check(
        peek(&proc, d + 0x440)? == 14,
        "uc_mcontext.trapno is not 14",
    )?;
    let fpstate = peek(&proc, d + 0x448)?;
    check(
        fpstate % 64 == 0 && fpstate > rsp && fpstate < d + 0x3000,
        &format!("fpstate pointer {fpstate:#x}"),
    )?;
    check(
        peek(&proc, d + 0x488)? & 0xffff_ffff == 1,
        "sigaltstack does not report SS_ONSTACK in the handler",
    )?;
    check(
        peek(&proc, d + 0x490)? == 1 << (sig::SIGSEGV - 1),
        "SIGSEGV is not blocked in its handler",
    )
}

pub(super) fn ring3_signals_to_self() -> TestResult {
    // SAFETY: as above.
    let code = blob(unsafe { &sys_blob_kill }, unsafe { &sys_blob_kill_end });
    let proc = run_blob_with(code, false, 0)?;
    expect_exit(
        &proc,
        128 + sig::SIGABRT,
        "kill program (1: sigaction, 2: kill, 3: blocked, 4: pending, 5: unblocked, 6/7: errors, 8: survived SIGABRT)",
    )
}

pub(super) fn ring3_fatal_signal_cases() -> TestResult {
    // SAFETY: as above.
    let code = blob(unsafe { &sys_blob_fatal }, unsafe { &sys_blob_fatal_end });
    let cases = [
        (0, 128 + sig::SIGSEGV, "a fault in the SIGSEGV handler"),
        (1, 128 + sig::SIGSEGV, "a handler with no usable stack"),
        (2, 128 + sig::SIGILL, "a second SIGILL after SA_RESETHAND"),
        (
            3,
            128 + sig::SIGSEGV,
            "a handler at a non-canonical address",
        ),
    ];
    for (mode, want, what) in cases {
        let proc = run_blob_with(code, false, mode)?;
        expect_exit(&proc, want, what)?;
    }
    Ok(())
}

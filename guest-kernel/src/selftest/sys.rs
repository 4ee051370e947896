//! Self-tests of TLS bases, signals and clocks: ring-3 programs that set the FS/GS base
//! and read through it, take a fault into a handler on an alternate stack and come back
//! through `rt_sigreturn` with every register intact, signal themselves, and sleep.
//!
//! Blobs use the data pages at `BLOB_DATA_VA` (0x600000, two pages; the stack starts
//! at the top) for their variables; the kernel reads results back from the dead
//! process's memory. Each blob exits 0 or with the number of the check that failed.

use alloc::format;
use alloc::string::String;
use core::arch::global_asm;

use super::{blob, check, run_blob_with, TestResult, BLOB_DATA_VA};
use crate::mm::uaccess;
use crate::process::Process;
use crate::signal::sig;
use crate::time;

global_asm!(
    ".section .rodata.selftest, \"a\"",
    // ---- TLS: arch_prctl(ARCH_SET_FS/GS), fs:[0]/gs:[0], bases survive traps.
    ".global sys_blob_tls",
    ".global sys_blob_tls_end",
    "sys_blob_tls:",
    // A new process starts with FS base 0 (whatever the previous one set).
    "mov edi, 0x1003",
    "mov esi, 0x600028",
    "mov eax, 158",
    "syscall",
    "test rax, rax",
    "jne 91f",
    "cmp qword ptr [0x600028], 0",
    "jne 91f",
    "mov rcx, 0x1122334455667788",
    "mov [0x600000], rcx",
    "mov rcx, 0x99aabbccddeeff00",
    "mov [0x600008], rcx",
    "mov edi, 0x1002",
    "mov esi, 0x600000",
    "mov eax, 158",
    "syscall",
    "test rax, rax",
    "jne 92f",
    "mov edi, 0x1001",
    "mov esi, 0x600008",
    "mov eax, 158",
    "syscall",
    "test rax, rax",
    "jne 92f",
    "mov rcx, 0x1122334455667788",
    "mov rax, qword ptr fs:[0]",
    "cmp rax, rcx",
    "jne 93f",
    "mov rcx, 0x99aabbccddeeff00",
    "mov rax, qword ptr gs:[0]",
    "cmp rax, rcx",
    "jne 94f",
    // Timer interrupts in user mode, then a sleep in the kernel (nanosleep 5 ms).
    "mov ecx, 10000000",
    "2: dec ecx",
    "jnz 2b",
    "mov qword ptr [0x600100], 0",
    "mov qword ptr [0x600108], 5000000",
    "mov edi, 0x600100",
    "xor esi, esi",
    "mov eax, 35",
    "syscall",
    "mov rcx, 0x1122334455667788",
    "mov rax, qword ptr fs:[0]",
    "cmp rax, rcx",
    "jne 95f",
    "mov rcx, 0x99aabbccddeeff00",
    "mov rax, qword ptr gs:[0]",
    "cmp rax, rcx",
    "jne 95f",
    // ARCH_GET_FS / ARCH_GET_GS read the bases back.
    "mov edi, 0x1003",
    "mov esi, 0x600020",
    "mov eax, 158",
    "syscall",
    "cmp qword ptr [0x600020], 0x600000",
    "jne 96f",
    "mov edi, 0x1004",
    "mov esi, 0x600020",
    "mov eax, 158",
    "syscall",
    "cmp qword ptr [0x600020], 0x600008",
    "jne 96f",
    // Unknown code: EINVAL; a kernel address: EPERM, base unchanged.
    "mov edi, 0x1234",
    "xor esi, esi",
    "mov eax, 158",
    "syscall",
    "cmp rax, -22",
    "jne 97f",
    "mov edi, 0x1002",
    "mov rsi, 0xffffffff80000000",
    "mov eax, 158",
    "syscall",
    "cmp rax, -1",
    "jne 97f",
    "mov rcx, 0x1122334455667788",
    "mov rax, qword ptr fs:[0]",
    "cmp rax, rcx",
    "jne 97f",
    "xor edi, edi",
    "jmp 99f",
    "91: mov edi, 1",
    "jmp 99f",
    "92: mov edi, 2",
    "jmp 99f",
    "93: mov edi, 3",
    "jmp 99f",
    "94: mov edi, 4",
    "jmp 99f",
    "95: mov edi, 5",
    "jmp 99f",
    "96: mov edi, 6",
    "jmp 99f",
    "97: mov edi, 7",
    "99: mov eax, 231",
    "syscall",
    "sys_blob_tls_end:",
    //
    // ---- A page fault handled on the alternate stack; sigreturn restores everything.
    ".global sys_blob_altstack",
    ".global sys_blob_altstack_end",
    "sys_blob_altstack:",
    // sigaltstack({0x600800, 0, 0x800}, NULL)
    "mov qword ptr [0x600100], 0x600800",
    "mov qword ptr [0x600108], 0",
    "mov qword ptr [0x600110], 0x800",
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
    //
    // ---- nanosleep 50 ms measured with CLOCK_MONOTONIC; clock and getrandom errors.
    // Exits with the elapsed milliseconds (at most 199), or 200 + the failed check.
    ".global sys_blob_sleep",
    ".global sys_blob_sleep_end",
    "sys_blob_sleep:",
    "mov edi, 1",
    "mov esi, 0x600100",
    "mov eax, 228",
    "syscall",
    "test rax, rax",
    "jne 31f",
    "mov qword ptr [0x600200], 0",
    "mov qword ptr [0x600208], 50000000",
    "mov edi, 0x600200",
    "xor esi, esi",
    "mov eax, 35",
    "syscall",
    "test rax, rax",
    "jne 32f",
    "mov edi, 1",
    "mov esi, 0x600110",
    "mov eax, 228",
    "syscall",
    // Bad requests: tv_nsec = 1e9 (EINVAL), a NULL request (EFAULT), clock 99 (EINVAL).
    "mov qword ptr [0x600208], 1000000000",
    "mov edi, 0x600200",
    "xor esi, esi",
    "mov eax, 35",
    "syscall",
    "cmp rax, -22",
    "jne 33f",
    "xor edi, edi",
    "xor esi, esi",
    "mov eax, 35",
    "syscall",
    "cmp rax, -14",
    "jne 33f",
    "mov edi, 99",
    "mov esi, 0x600300",
    "mov eax, 228",
    "syscall",
    "cmp rax, -22",
    "jne 34f",
    // clock_getres(CLOCK_MONOTONIC_COARSE) = 1 ms.
    "mov edi, 6",
    "mov esi, 0x600300",
    "mov eax, 229",
    "syscall",
    "cmp qword ptr [0x600308], 1000000",
    "jne 34f",
    // getrandom: 64 bytes; GRND_RANDOM|GRND_INSECURE is EINVAL.
    "mov edi, 0x600400",
    "mov esi, 64",
    "xor edx, edx",
    "mov eax, 318",
    "syscall",
    "cmp rax, 64",
    "jne 35f",
    "mov edi, 0x600400",
    "mov esi, 64",
    "mov edx, 6",
    "mov eax, 318",
    "syscall",
    "cmp rax, -22",
    "jne 35f",
    // Elapsed ms = (s1 - s0) * 1000 + (ns1 - ns0) / 1e6.
    "mov r8, [0x600110]",
    "sub r8, [0x600100]",
    "imul r8, r8, 1000",
    "mov rax, [0x600118]",
    "sub rax, [0x600108]",
    "cqo",
    "mov r9, 1000000",
    "idiv r9",
    "add rax, r8",
    "mov edi, 199",
    "cmp rax, 199",
    "cmovbe edi, eax",
    "jmp 39f",
    "31: mov edi, 201",
    "jmp 39f",
    "32: mov edi, 202",
    "jmp 39f",
    "33: mov edi, 203",
    "jmp 39f",
    "34: mov edi, 204",
    "jmp 39f",
    "35: mov edi, 205",
    "39: mov eax, 231",
    "syscall",
    "sys_blob_sleep_end:",
    //
    // ---- Identity, registrations, limits, affinity, sysinfo, time: exits with the
    // number of the failed group or 0.
    ".global sys_blob_info",
    ".global sys_blob_info_end",
    "sys_blob_info:",
    "mov r15d, 1",
    "mov rdi, 0x600000",
    "mov eax, 63",
    "syscall",
    "test rax, rax",
    "jne 2f",
    "cmp dword ptr [0x600000], 0x756e694c",
    "jne 2f",
    "mov r15d, 2",
    "mov eax, 110",
    "syscall",
    "test rax, rax",
    "jne 2f",
    "mov r15d, 2",
    "mov eax, 102",
    "syscall",
    "test rax, rax",
    "jne 2f",
    "mov r15d, 3",
    "mov eax, 39",
    "syscall",
    "mov r14, rax",
    "mov eax, 186",
    "syscall",
    "cmp rax, r14",
    "jne 2f",
    "mov r15d, 3",
    "mov rdi, 0x600300",
    "mov eax, 218",
    "syscall",
    "cmp rax, r14",
    "jne 2f",
    "mov r15d, 4",
    "mov rdi, 0x600340",
    "mov rsi, 24",
    "mov eax, 273",
    "syscall",
    "test rax, rax",
    "jne 2f",
    "mov r15d, 4",
    "mov rdi, 0x600340",
    "mov rsi, 23",
    "mov eax, 273",
    "syscall",
    "cmp rax, -22",
    "jne 2f",
    "mov r15d, 5",
    "mov dword ptr [0x600104], 77",
    "mov rdi, 0x600100",
    "mov rsi, 32",
    "mov rdx, 0",
    "mov r10, 0x53053053",
    "mov eax, 334",
    "syscall",
    "test rax, rax",
    "jne 2f",
    "cmp dword ptr [0x600104], 0",
    "jne 2f",
    "mov r15d, 5",
    "mov rdi, 0x600100",
    "mov rsi, 32",
    "mov rdx, 0",
    "mov r10, 0x53053053",
    "mov eax, 334",
    "syscall",
    "cmp rax, -16",
    "jne 2f",
    "mov r15d, 5",
    "mov rdi, 0x600100",
    "mov rsi, 32",
    "mov rdx, 0",
    "mov r10, 0x12345678",
    "mov eax, 334",
    "syscall",
    "cmp rax, -1",
    "jne 2f",
    "mov r15d, 5",
    "mov rdi, 0x600120",
    "mov rsi, 32",
    "mov rdx, 0",
    "mov r10, 0x53053053",
    "mov eax, 334",
    "syscall",
    "cmp rax, -22",
    "jne 2f",
    "mov r15d, 5",
    "mov rdi, 0x600100",
    "mov rsi, 32",
    "mov rdx, 1",
    "mov r10, 0x53053053",
    "mov eax, 334",
    "syscall",
    "test rax, rax",
    "jne 2f",
    "cmp dword ptr [0x600104], -1",
    "jne 2f",
    "mov r15d, 5",
    "mov rdi, 0x600110",
    "mov rsi, 32",
    "mov rdx, 0",
    "mov r10, 0",
    "mov eax, 334",
    "syscall",
    "cmp rax, -22",
    "jne 2f",
    "mov r15d, 6",
    "mov rdi, 0",
    "mov rsi, 7",
    "mov rdx, 0",
    "mov r10, 0x600200",
    "mov eax, 302",
    "syscall",
    "test rax, rax",
    "jne 2f",
    "cmp qword ptr [0x600200], 1024",
    "jne 2f",
    "mov qword ptr [0x600210], 10",
    "mov qword ptr [0x600218], 1024",
    "mov r15d, 6",
    "mov rdi, 0",
    "mov rsi, 7",
    "mov rdx, 0x600210",
    "mov r10, 0",
    "mov eax, 302",
    "syscall",
    "test rax, rax",
    "jne 2f",
    "mov r15d, 6",
    "mov rdi, 7",
    "mov rsi, 0x600220",
    "mov eax, 97",
    "syscall",
    "test rax, rax",
    "jne 2f",
    "cmp qword ptr [0x600220], 10",
    "jne 2f",
    "mov qword ptr [0x600218], 2048",
    "mov r15d, 6",
    "mov rdi, 7",
    "mov rsi, 0x600210",
    "mov eax, 160",
    "syscall",
    "cmp rax, -1",
    "jne 2f",
    "mov r15d, 6",
    "mov rdi, 9999",
    "mov rsi, 7",
    "mov rdx, 0",
    "mov r10, 0x600200",
    "mov eax, 302",
    "syscall",
    "cmp rax, -3",
    "jne 2f",
    "mov r15d, 6",
    "mov rdi, 16",
    "mov rsi, 0x600220",
    "mov eax, 97",
    "syscall",
    "cmp rax, -22",
    "jne 2f",
    "mov r15d, 7",
    "mov rdi, 0",
    "mov rsi, 128",
    "mov rdx, 0x600400",
    "mov eax, 204",
    "syscall",
    "cmp rax, 8",
    "jne 2f",
    "cmp qword ptr [0x600400], 1",
    "jne 2f",
    "mov r15d, 7",
    "mov rdi, 0",
    "mov rsi, 4",
    "mov rdx, 0x600400",
    "mov eax, 204",
    "syscall",
    "cmp rax, -22",
    "jne 2f",
    "mov r15d, 8",
    "mov rdi, 0x600500",
    "mov eax, 99",
    "syscall",
    "test rax, rax",
    "jne 2f",
    "cmp dword ptr [0x600500 + 104], 1",
    "jne 2f",
    "cmp word ptr [0x600500 + 80], 1",
    "jne 2f",
    "mov r15d, 8",
    "cmp qword ptr [0x600500 + 32], 0",
    "je 2f",
    "mov r15d, 9",
    "mov rdi, 0x600600",
    "mov rsi, 0",
    "mov eax, 96",
    "syscall",
    "test rax, rax",
    "jne 2f",
    "mov r15d, 9",
    "cmp qword ptr [0x600600], 1600000000",
    "jl 2f",
    "mov r15d, 9",
    "mov rdi, 0",
    "mov eax, 201",
    "syscall",
    "cmp rax, 1600000000",
    "jl 2f",
    "xor edi, edi",
    "jmp 3f",
    "2: mov edi, r15d",
    "3: mov eax, 231",
    "syscall",
    "sys_blob_info_end:",
);

extern "C" {
    static sys_blob_tls: u8;
    static sys_blob_tls_end: u8;
    static sys_blob_altstack: u8;
    static sys_blob_altstack_end: u8;
    static sys_blob_kill: u8;
    static sys_blob_kill_end: u8;
    static sys_blob_fatal: u8;
    static sys_blob_fatal_end: u8;
    static sys_blob_sleep: u8;
    static sys_blob_sleep_end: u8;
    static sys_blob_info: u8;
    static sys_blob_info_end: u8;
}

/// Reads a u64 the dead process left in its data page at `va`.
fn peek(proc: &Process, va: u64) -> Result<u64, String> {
    uaccess::read_u64(&proc.space, va).map_err(|e| format!("reading {va:#x}: {e:?}"))
}

fn expect_exit(proc: &Process, want: u8, what: &str) -> TestResult {
    match proc.exit_status() {
        Some(s) if s == want => Ok(()),
        other => Err(format!("{what}: exit status {other:?}, expected {want}")),
    }
}

pub(super) fn ring3_fs_gs_base_via_arch_prctl() -> TestResult {
    // SAFETY: linker-provided labels of the blob above.
    let code = blob(unsafe { &sys_blob_tls }, unsafe { &sys_blob_tls_end });
    // Twice: the second process must start with base 0 although the first set one.
    for round in 0..2 {
        let proc = run_blob_with(code, false, 0)?;
        expect_exit(&proc, 0, &format!("TLS program, run {round} (1: initial base not 0, 2: set, 3: fs:[0], 4: gs:[0], 5: after traps, 6: get, 7: errors)"))?;
    }
    Ok(())
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
        rsp > d + 0x800 && rsp <= d + 0x1000,
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
        fpstate % 64 == 0 && fpstate > rsp && fpstate < d + 0x1000,
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

pub(super) fn ring3_nanosleep_halts_and_clocks() -> TestResult {
    // SAFETY: as above.
    let code = blob(unsafe { &sys_blob_sleep }, unsafe { &sys_blob_sleep_end });
    let halts_before = time::sleep_halts();
    let proc = run_blob_with(code, false, 0)?;
    let halts = time::sleep_halts() - halts_before;
    let status = proc.exit_status().ok_or("no exit status")?;
    check(
        status < 200,
        &format!("check {} failed (1: clock_gettime, 2: nanosleep, 3: bad requests, 4: clocks, 5: getrandom)", status.wrapping_sub(200)),
    )?;
    // Never early; late only by timer-tick delays (generous for emulated platforms).
    check(
        (50..199).contains(&status),
        &format!("a 50 ms nanosleep took {status} ms"),
    )?;
    // At 1000 Hz a 50 ms sleep wakes about 50 times; a spinning sleep never halts, and
    // a sleeper cannot halt more often than the timer ticks.
    check(
        halts >= 1 && halts <= 4 * status as u64 + 20,
        &format!("the sleep halted the CPU {halts} times in {status} ms"),
    )?;
    check(
        proc.cpu.used_ns(time::monotonic_ns()) < 40_000_000,
        "the sleep was counted as CPU time",
    )
}

pub(super) fn clocks_are_consistent() -> TestResult {
    let (m0, r0) = (time::monotonic_ns(), time::realtime_ns());
    let (m1, r1) = (time::monotonic_ns(), time::realtime_ns());
    check(m1 >= m0 && r1 >= r0, "clocks went backwards")?;
    check(
        time::coarse(m1) <= m1 && m1 - time::coarse(m1) < time::TICK_NS,
        "coarse clock",
    )?;
    // The RTC gave a time after 2020 (1.6e9 s).
    check(
        r1 / time::NS_PER_SEC > 1_600_000_000,
        &format!(
            "wall clock says {} s since the epoch",
            r1 / time::NS_PER_SEC
        ),
    )?;
    let mut a = [0u8; 32];
    let mut b = [0u8; 32];
    crate::random::fill(&mut a);
    crate::random::fill(&mut b);
    check(a != b && a != [0; 32], "random bytes repeat")
}

pub(super) fn ring3_process_info_calls() -> TestResult {
    // SAFETY: as above.
    let code = blob(unsafe { &sys_blob_info }, unsafe { &sys_blob_info_end });
    let proc = run_blob_with(code, false, 0)?;
    expect_exit(
        &proc,
        0,
        "info program (1: uname, 2: ppid/uid, 3: tid, 4: robust list, 5: rseq, 6: rlimits, 7: affinity, 8: sysinfo, 9: time)",
    )
}

//! Self-tests of TLS bases, clocks and process information: ring-3 programs that set
//! the FS/GS base and read through it, sleep, and query identity, limits and time
//! (signals are in `signals.rs`).
//!
//! Blobs use the data pages at `BLOB_DATA_VA` (0x600000, two pages; the stack starts
//! at the top) for their variables; the kernel reads results back from the dead
//! process's memory. Each blob exits 0 or with the number of the check that failed.

use alloc::format;
use alloc::string::String;
use core::arch::global_asm;

use super::{blob, check, run_blob_with, TestResult};
use crate::mm::uaccess;
use crate::task::sched;
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
    static sys_blob_sleep: u8;
    static sys_blob_sleep_end: u8;
    static sys_blob_info: u8;
    static sys_blob_info_end: u8;
}

/// Reads a u64 the dead process left in its data page at `va`.
pub(super) fn peek(proc: &sched::Finished, va: u64) -> Result<u64, String> {
    uaccess::read_u64(&proc.mm.lock().space, va).map_err(|e| format!("reading {va:#x}: {e:?}"))
}

pub(super) fn expect_exit(proc: &sched::Finished, want: u8, what: &str) -> TestResult {
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

pub(super) fn ring3_nanosleep_halts_and_clocks() -> TestResult {
    // SAFETY: as above.
    let code = blob(unsafe { &sys_blob_sleep }, unsafe { &sys_blob_sleep_end });
    let halts_before = time::sleep_halts();
    let ticks_before = time::ticks();
    let proc = run_blob_with(code, false, 0)?;
    let halts = time::sleep_halts() - halts_before;
    let ticks = time::ticks() - ticks_before;
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
    // a sleeper cannot halt more often than the timer ticks (counted, not assumed: the
    // QEMU tier's PIT replays missed ticks in bursts, so there may be more than one a ms).
    check(
        halts >= 1 && halts <= ticks + 20,
        &format!("the sleep halted the CPU {halts} times in {status} ms ({ticks} ticks)"),
    )?;
    check(
        proc.process.dead_cpu_ns() < 40_000_000,
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

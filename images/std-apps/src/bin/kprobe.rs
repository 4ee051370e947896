//! Probes kernel address windows from user mode: every page of the kernel image window
//! (the first 16 MiB above -2 GiB, where astra's kernel and its entry pages live) and one
//! address per 64 KiB of astra's direct map (which holds the kernel heap and every kernel
//! stack), reading each and writing back what it read, under a SIGSEGV handler that skips
//! the faulting access. On Linux and on hardware KVM nothing is even readable. On a PVM
//! host, where kernel pages must carry the user bit, the one page that may take a write is
//! the CPU's entry trampoline (it holds only the running thread's own registers in
//! passing); any second writable page is a failure (exit 1).

use std::arch::{asm, global_asm};
use std::process::ExitCode;

/// Where a faulting probe resumes (set before each probe).
static mut RECOVER: u64 = 0;

const SIGSEGV: usize = 11;
const SIGBUS: usize = 7;
const SA_SIGINFO: u64 = 4;
const SA_RESTORER: u64 = 0x0400_0000;
/// Offsets in `ucontext_t` of the saved rax and rip (`uc_mcontext` starts at 40; rax is
/// greg 13 and rip greg 16 in Linux's x86-64 `sigcontext`).
const UC_RAX: usize = 40 + 13 * 8;
const UC_RIP: usize = 40 + 16 * 8;

// The handler returns through rt_sigreturn, as libc's restorer does.
global_asm!(
    ".global kprobe_restorer",
    "kprobe_restorer:",
    "mov eax, 15",
    "syscall",
    "ud2",
);

extern "C" {
    fn kprobe_restorer();
}

/// SIGSEGV/SIGBUS: the probe faulted; resume at its recovery point with rax = 1.
extern "C" fn on_fault(_sig: i32, _info: *mut u8, ucontext: *mut u8) {
    // SAFETY: the kernel passes a valid ucontext; RECOVER was set by the probe that faulted.
    unsafe {
        *(ucontext.add(UC_RAX) as *mut u64) = 1;
        *(ucontext.add(UC_RIP) as *mut u64) = RECOVER;
    }
}

fn install(sig: usize) -> Result<(), String> {
    // struct k_sigaction { handler, flags, restorer, mask }
    let act: [u64; 4] = [
        on_fault as *const () as u64,
        SA_SIGINFO | SA_RESTORER,
        kprobe_restorer as *const () as u64,
        0,
    ];
    let ret: i64;
    // SAFETY: rt_sigaction reads the 32-byte struct above; no old action is asked for.
    unsafe {
        asm!("syscall", inlateout("rax") 13i64 => ret, in("rdi") sig, in("rsi") act.as_ptr(),
             in("rdx") 0usize, in("r10") 8usize, lateout("rcx") _, lateout("r11") _,
             options(nostack));
    }
    if ret < 0 {
        return Err(format!("rt_sigaction({sig}) failed: {ret}"));
    }
    Ok(())
}

/// Reads the byte at `addr`, and if `write` writes it back: true if nothing faulted.
fn probe(addr: u64, write: bool) -> bool {
    let faulted: u64;
    // SAFETY: a load (and a store of the value just loaded, so a page that takes it is
    // unchanged) at an arbitrary address; a fault is caught by on_fault, which resumes at
    // label 2 with rax = 1. No Rust memory is touched.
    unsafe {
        asm!(
            "lea {tmp}, [rip + 2f]",
            "mov [{recover}], {tmp}",
            "xor eax, eax",
            "mov cl, [{addr}]",
            "test {write}, {write}",
            "jz 2f",
            "mov [{addr}], cl",
            "2:",
            tmp = out(reg) _,
            recover = in(reg) &raw mut RECOVER,
            addr = in(reg) addr,
            write = in(reg) u64::from(write),
            out("rax") faulted,
            out("cl") _,
        );
    }
    faulted == 0
}

fn main() -> ExitCode {
    for sig in [SIGSEGV, SIGBUS] {
        if let Err(e) = install(sig) {
            eprintln!("kprobe: {e}");
            return ExitCode::FAILURE;
        }
    }
    // The kernel image window (astra links its kernel at -2 GiB + 2 MiB) and astra's
    // direct map (PML4 slot 472).
    let windows: [(&str, u64, u64, u64); 2] = [
        ("kernel image", 0xffff_ffff_8000_0000, 16 << 20, 4096),
        ("direct map", 0xffff_ec00_0000_0000, 256 << 20, 64 << 10),
    ];
    let (mut probed, mut read_ok, mut write_ok) = (0u64, 0u64, 0u64);
    for (name, base, len, step) in windows {
        let mut at = base;
        while at < base + len {
            probed += 1;
            if probe(at, false) {
                read_ok += 1;
                if probe(at, true) {
                    write_ok += 1;
                    println!("kprobe: WRITABLE: {name} page {at:#x}");
                }
            }
            at += step;
        }
    }
    println!("kprobe: probed {probed} kernel addresses: {read_ok} readable, {write_ok} writable");
    if write_ok <= 1 {
        println!("kprobe: no kernel page but at most the entry trampoline is writable");
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

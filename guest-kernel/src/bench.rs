//! `astra.bench`: system-call round-trip costs measured from ring 3.
//!
//! A user program times batches of `getpid` through `syscall`, through `int 0x80`, and a
//! bare trap floor (`ud2`, which the #UD handler steps over without any dispatch) with
//! `rdtsc`, on whichever platform the kernel booted on. The kernel prints the median
//! cycles per round trip as `bench <name> cycles=<n>`.

use alloc::vec::Vec;
use core::arch::global_asm;

use crate::arch::trap::TrapFrame;
use crate::kprintln;
use crate::mm::{self, PAGE_SIZE};
use crate::selftest::{run_blob, BLOB_DATA_VA};
use crate::task::sched;

const BATCHES: usize = 21;
const ITERATIONS: u64 = 100;

global_asm!(
    ".section .rodata.bench, \"a\"",
    ".global bench_blob", ".global bench_blob_end",
    "bench_blob:",
    "mov r15, {data}",
    "xor r14d, r14d",
    "10:", "mov r13d, {batches}",
    "11:", "rdtsc", "shl rdx, 32", "or rax, rdx", "mov r12, rax", "mov ebx, {iters}",
    "12:", "cmp r14d, 0", "je 13f", "cmp r14d, 1", "je 14f",
    "ud2", "jmp 15f",
    "13:", "mov eax, 39", "syscall", "jmp 15f",
    "14:", "mov eax, 39", "int 0x80",
    "15:", "dec ebx", "jnz 12b",
    "rdtsc", "shl rdx, 32", "or rax, rdx", "sub rax, r12",
    "mov [r15], rax", "add r15, 8",
    "dec r13d", "jnz 11b",
    "inc r14d", "cmp r14d, 3", "jne 10b",
    "xor edi, edi", "mov eax, 231", "syscall",
    "bench_blob_end:",
    data = const BLOB_DATA_VA,
    batches = const BATCHES,
    iters = const ITERATIONS,
);

extern "C" {
    static bench_blob: u8;
    static bench_blob_end: u8;
}

/// #UD hook: in the benchmark process, `ud2` is the bare trap floor; step over it.
pub fn skip_trap(frame: &mut TrapFrame) -> bool {
    match sched::current() {
        Some(p) if p.bench_skip_ud2 => {
            frame.rip += 2;
            true
        }
        _ => false,
    }
}

fn median(mut v: Vec<u64>) -> u64 {
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or(0)
}

/// Runs the benchmark and prints its lines; false if it could not run.
pub fn run() -> bool {
    // SAFETY: linker-provided labels delimiting the blob.
    let (start, end) = unsafe { (&bench_blob as *const u8, &bench_blob_end as *const u8) };
    // SAFETY: as above: one contiguous blob.
    let code = unsafe { core::slice::from_raw_parts(start, end as usize - start as usize) };
    let proc = match run_blob(code, true) {
        Ok(p) => p,
        Err(e) => {
            kprintln!("bench: could not run: {}", e);
            return false;
        }
    };
    if proc.exit_status() != Some(0) {
        kprintln!(
            "bench: the benchmark program failed with status {:?}",
            proc.exit_status()
        );
        return false;
    }
    let mut samples = Vec::new();
    for i in 0..3 * BATCHES as u64 {
        let va = BLOB_DATA_VA + 8 * i;
        let Some((pa, _)) = proc.mm.lock().space.translate(va) else {
            kprintln!("bench: results page missing");
            return false;
        };
        debug_assert!(8 * i < PAGE_SIZE);
        // SAFETY: the process is dead but its pages are still mapped and owned by it.
        samples.push(unsafe { core::ptr::read(mm::phys_to_virt(pa) as *const u64) } / ITERATIONS);
    }
    for (kind, name) in ["syscall_getpid", "int80_getpid", "trap_floor"]
        .iter()
        .enumerate()
    {
        let batch = samples[kind * BATCHES..(kind + 1) * BATCHES].to_vec();
        kprintln!("bench {} cycles={}", name, median(batch));
    }
    true
}

//! Ring-3 programs writing to copy-on-write pages: real write faults from user mode on
//! shared 4 KiB and 2 MiB pages, on every side of a fork, and the cost of a 2 MiB page's
//! copy-on-write copied whole against split.

use alloc::format;
use alloc::string::String;
use core::arch::global_asm;

use super::ring3::{blob, prepare_user, run_prepared};
use super::{check, free_frames, TestResult};
use crate::mm::paging::{flags, HUGE_PAGE_SIZE};
use crate::mm::user::{MapRequest, Placement};
use crate::mm::vma::{Backing, VmaFlags, PROT_READ, PROT_WRITE};
use crate::mm::{Mm, PAGE_SIZE};

/// A 4 KiB page of data (initial word 0x11).
const DATA_VA: u64 = 0x2000_0000;
/// A 2 MiB page of data (initial word 0x33).
const HUGE_VA: u64 = 0x2020_0000;

global_asm!(
    ".section .rodata.selftest_mm, \"a\"",
    // rdi = a value: check the data page's word is 0x11 and the 2 MiB page's 0x33, write
    // rdi into both (the 2 MiB page at +0x5008) and read it back. Exit 0, or 1-3 for
    // the step that went wrong.
    ".global mm_blob_cow",
    ".global mm_blob_cow_end",
    "mm_blob_cow:",
    "mov rbx, 0x20000000",
    "cmp qword ptr [rbx], 0x11",
    "jne 1f",
    "mov [rbx], rdi",
    "cmp [rbx], rdi",
    "jne 2f",
    "mov rcx, 0x20200000",
    "cmp qword ptr [rcx], 0x33",
    "jne 3f",
    "mov [rcx + 0x5008], rdi",
    "cmp [rcx + 0x5008], rdi",
    "jne 2f",
    "xor edi, edi",
    "jmp 9f",
    "1: mov edi, 1",
    "jmp 9f",
    "2: mov edi, 2",
    "jmp 9f",
    "3: mov edi, 3",
    "9: mov eax, 231",
    "syscall",
    "mm_blob_cow_end:",
    // Writes rdi pages (from the first) of the 2 MiB page, one word each: exit 0.
    ".global mm_blob_cow_touch",
    ".global mm_blob_cow_touch_end",
    "mm_blob_cow_touch:",
    "mov rbx, 0x20200000",
    "test rdi, rdi",
    "jz 2f",
    "1: mov [rbx], rdi",
    "add rbx, 4096",
    "dec rdi",
    "jnz 1b",
    "2: xor edi, edi",
    "mov eax, 231",
    "syscall",
    "mm_blob_cow_touch_end:",
);

extern "C" {
    static mm_blob_cow: u8;
    static mm_blob_cow_end: u8;
    static mm_blob_cow_touch: u8;
    static mm_blob_cow_touch_end: u8;
}

fn area(va: u64, len: u64) -> MapRequest {
    MapRequest {
        placement: Placement::Fixed(va),
        len,
        prot: PROT_READ | PROT_WRITE,
        flags: VmaFlags::default(),
        backing: Backing::Anonymous,
    }
}

/// Adds the data page and the 2 MiB page, both written by the kernel.
fn data_areas(mm: &mut Mm) -> Result<u64, String> {
    mm.map(area(DATA_VA, PAGE_SIZE))
        .map_err(|e| format!("{e:?}"))?;
    mm.map(area(HUGE_VA, HUGE_PAGE_SIZE))
        .map_err(|e| format!("{e:?}"))?;
    mm.write(DATA_VA, &0x11u64.to_le_bytes())
        .map_err(|e| format!("{e:?}"))?;
    mm.write(HUGE_VA, &0x33u64.to_le_bytes())
        .map_err(|e| format!("{e:?}"))?;
    let huge = mm
        .translate(HUGE_VA)
        .is_some_and(|(_, f)| f & flags::HUGE != 0);
    check(huge, "the 2 MiB area has no 2 MiB page")?;
    Ok(0)
}

fn word(mm: &Mm, va: u64) -> Option<u64> {
    let mut b = [0u8; 8];
    mm.read(va, &mut b).ok()?;
    Some(u64::from_le_bytes(b))
}

/// Runs the program in `mm` writing `value`; checks it ended well and left `value`.
fn run_writer(mm: Mm, value: u64, who: &str) -> TestResult {
    let proc = run_prepared(mm, value)?;
    check(
        proc.exit_status() == Some(0),
        &format!("{who}: exit status {:?}", proc.exit_status()),
    )?;
    for va in [DATA_VA, HUGE_VA + 0x5008] {
        let got = word(&proc.mm.lock(), va);
        check(
            got == Some(value),
            &format!("{who}: {got:x?} at {va:#x}, expected {value:#x}"),
        )?;
    }
    Ok(())
}

pub(super) fn writes_on_every_side() -> TestResult {
    let before = free_frames();
    {
        // SAFETY: the labels delimit the blob in .rodata.
        let code = blob(unsafe { &mm_blob_cow }, unsafe { &mm_blob_cow_end });
        let (mut template, _) = prepare_user(code, data_areas)?;
        let a = template.fork().map_err(|e| format!("fork: {e:?}"))?;
        let b = template.fork().map_err(|e| format!("fork: {e:?}"))?;
        // `a` copies (two others share), `b` copies (the template shares), the template
        // is left sole owner: its writes copy nothing.
        run_writer(a, 0x22, "first child")?;
        run_writer(b, 0x44, "second child")?;
        check(
            word(&template, DATA_VA) == Some(0x11) && word(&template, HUGE_VA + 0x5008) == Some(0),
            "the children's writes reached the parent",
        )?;
        let frame = template.translate(DATA_VA).map(|t| t.0);
        let block = template.translate(HUGE_VA).map(|t| t.0);
        let proc = run_prepared(template, 0x66)?;
        check(proc.exit_status() == Some(0), "parent failed")?;
        check(
            proc.mm.lock().translate(DATA_VA).map(|t| t.0) == frame
                && proc.mm.lock().translate(HUGE_VA).map(|t| t.0) == block,
            "the sole owner's pages were copied",
        )?;
    }
    let after = free_frames();
    check(
        after == before,
        &format!("{} frames lost", before as i64 - after as i64),
    )
}

/// Time to run a child that writes `pages` pages of a shared 2 MiB page, whole copy or
/// split, in microseconds.
fn timed_touch(split: bool, pages: u64) -> Result<u64, String> {
    // The fastest of three runs: this host's timing is noisy.
    let mut best = u64::MAX;
    for _ in 0..3 {
        best = best.min(timed_touch_once(split, pages)?);
    }
    Ok(best)
}

fn timed_touch_once(split: bool, pages: u64) -> Result<u64, String> {
    // SAFETY: the labels delimit the blob in .rodata.
    let code = blob(unsafe { &mm_blob_cow_touch }, unsafe {
        &mm_blob_cow_touch_end
    });
    let (mut parent, _) = prepare_user(code, data_areas)?;
    let mut child = parent.fork().map_err(|e| format!("fork: {e:?}"))?;
    child.mem.split_huge_cow = split;
    let started = crate::time::monotonic_ns();
    let proc = run_prepared(child, pages)?;
    let us = (crate::time::monotonic_ns() - started) / 1000;
    check(proc.exit_status() == Some(0), "toucher failed")?;
    let huge = proc
        .mm
        .lock()
        .translate(HUGE_VA)
        .is_some_and(|(_, f)| f & flags::HUGE != 0);
    check(huge != split, "wrong copy-on-write policy")?;
    Ok(us)
}

pub(super) fn huge_copy_against_split() -> TestResult {
    // A run with no write at all is the floor (process start-up and exit).
    let floor = timed_touch(false, 0).unwrap_or(0);
    let mut line = format!("astra: mm: copy-on-write of a 2 MiB page (run floor {floor} us):");
    for pages in [1, 16, 512] {
        let whole = timed_touch(false, pages)?;
        let split = timed_touch(true, pages)?;
        line += &format!(" {pages} pages written: whole {whole} us, split {split} us;");
    }
    crate::kprintln!("{line}");
    Ok(())
}

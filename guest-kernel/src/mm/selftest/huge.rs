//! Self-tests of 2 MiB pages in private anonymous memory: the fault that maps one, every
//! 4 KiB operation on part of one (munmap, mprotect, MADV_DONTNEED, mremap), teardown,
//! and the fall-back to 4 KiB pages when no aligned block is free.

use alloc::format;
use alloc::vec::Vec;

use super::{call, check, free_frames, mmap, read_u64, scratch_process, write_u64, TestResult};
use super::{ANON, P, RW};
use crate::errno::Errno;
use crate::mm::frame::{self, BLOCK_FRAMES};
use crate::mm::paging::{flags, HUGE_PAGE_SIZE};
use crate::mm::vma::{Access, PROT_NONE, PROT_READ};
use crate::syscall::mem as sys;
use crate::syscall::mremap::mremap;
use crate::task::Task;

const HUGE: u64 = HUGE_PAGE_SIZE;
const PAGES: u64 = HUGE / P;

/// The frame and flags `va` maps to; an error if nothing.
fn mapping(p: &Task, va: u64) -> Result<(u64, u64), alloc::string::String> {
    p.mm.lock()
        .space
        .translate(va)
        .ok_or_else(|| format!("{va:#x} is not mapped"))
}

fn is_huge(p: &Task, va: u64) -> bool {
    p.mm.lock()
        .space
        .translate(va)
        .is_some_and(|(_, f)| f & flags::HUGE != 0)
}

/// Maps `len` bytes of fresh anonymous memory (2 MiB aligned, as large ones are) and
/// faults its first 2 MiB in with one write; returns the address and that page's block.
fn huge_area(p: &mut Task, len: u64) -> Result<(u64, u64), alloc::string::String> {
    let base = mmap(p, 0, len, RW, ANON).map_err(|e| format!("mmap: {e:?}"))?;
    check(
        base % HUGE == 0,
        &format!("{len:#x} bytes mapped at {base:#x}"),
    )?;
    p.mm_mut()
        .fault(base + 5 * P + 8, Access::Write)
        .map_err(|e| format!("fault: {e:?}"))?;
    let (pa, _) = mapping(p, base)?;
    check(is_huge(p, base), "first touch did not map a 2 MiB page")?;
    Ok((base, pa))
}

/// Writes `tag + i` into the first word of each 4 KiB page `i` of `[va, va + len)`.
fn fill(p: &mut Task, va: u64, len: u64, tag: u64) -> TestResult {
    for i in 0..len / P {
        write_u64(p, va + i * P, tag + i).map_err(|e| format!("write: {e:?}"))?;
    }
    Ok(())
}

/// The pages of `[va, va + len)` whose first word is not `tag + i`.
fn wrong_pages(p: &Task, va: u64, len: u64, tag: u64) -> Vec<u64> {
    (0..len / P)
        .filter(|&i| read_u64(p, va + i * P) != Ok(tag + i))
        .collect()
}

/// The next aligned block the allocator hands out (given back at once).
fn next_block() -> Option<u64> {
    let mut frames = frame::FRAMES.lock();
    let block = frames.alloc_block()?;
    frames.free_block(block);
    Some(block)
}

pub(super) fn fault_maps_2mib() -> TestResult {
    let mut p = scratch_process()?;
    let p = &mut *p;
    let len = 8 << 20;
    let before = free_frames();
    let (base, pa) = huge_area(p, len)?;
    let used = before - free_frames();
    check(
        (BLOCK_FRAMES..=BLOCK_FRAMES + 3).contains(&used),
        &format!("{used} frames for one 2 MiB page"),
    )?;
    check(pa % HUGE == 0, &format!("block at {pa:#x} not aligned"))?;
    let (_, f) = mapping(p, base)?;
    check(
        f & (flags::USER | flags::WRITABLE | flags::PRESENT)
            == flags::USER | flags::WRITABLE | flags::PRESENT
            && f & flags::NO_EXECUTE != 0,
        &format!("flags {f:#x}"),
    )?;
    // Every 4 KiB page of it translates into the block, and reads zero but the one
    // written; no further fault or frame is needed.
    let before = free_frames();
    for i in [0, 1, 5, 100, PAGES - 1] {
        check(
            mapping(p, base + i * P + 16)?.0 == pa + i * P + 16,
            &format!("page {i} outside the block"),
        )?;
    }
    check(read_u64(p, base + 7 * P) == Ok(0), "fresh memory not zero")?;
    write_u64(p, base + HUGE - 8, 99).map_err(|e| format!("{e:?}"))?;
    check(read_u64(p, base + HUGE - 8) == Ok(99), "read back")?;
    check(free_frames() == before, "a write inside took frames")?;
    // The next 2 MiB is a page of its own; the last one of the area too.
    write_u64(p, base + len - 8, 1).map_err(|e| format!("{e:?}"))?;
    check(is_huge(p, base + len - P), "last 2 MiB of the area")?;
    check(!is_huge(p, base + HUGE), "untouched 2 MiB got mapped")?;
    Ok(())
}

pub(super) fn munmap_splits() -> TestResult {
    let mut p = scratch_process()?;
    let p = &mut *p;
    let (base, pa) = huge_area(p, 4 << 20)?;
    fill(p, base, HUGE, 1000)?;
    let before = free_frames();
    let hole = base + 100 * P;
    call(p, sys::munmap, [hole, P, 0, 0, 0, 0]).map_err(|e| format!("munmap: {e:?}"))?;
    // One frame back, one taken for the page table of the pieces.
    check(free_frames() == before, "frames after munmap of one page")?;
    check(
        frame::FRAMES.lock().alloc() == Some(pa + 100 * P),
        "the freed frame is not the unmapped page's",
    )?;
    frame::free(pa + 100 * P);
    check(!is_huge(p, base), "still a 2 MiB page")?;
    check(read_u64(p, hole) == Err(Errno::EFAULT), "hole readable")?;
    for i in [0, 99, 101, PAGES - 1] {
        check(
            mapping(p, base + i * P)?.0 == pa + i * P,
            &format!("page {i} moved"),
        )?;
    }
    let wrong = wrong_pages(p, base, HUGE, 1000);
    check(wrong == [100], &format!("pages with wrong data: {wrong:?}"))?;
    // The rest goes too: all 512 frames are free again, a whole block once more.
    call(p, sys::munmap, [base, HUGE, 0, 0, 0, 0]).map_err(|e| format!("munmap: {e:?}"))?;
    check(
        free_frames() == before + BLOCK_FRAMES - 1,
        &format!("{} frames back", free_frames() - before),
    )?;
    check(next_block() == Some(pa), "the block was not rebuilt")?;
    // A whole 2 MiB page unmapped goes back as a block, without a page table.
    write_u64(p, base + HUGE, 5).map_err(|e| format!("{e:?}"))?;
    let (pa2, _) = mapping(p, base + HUGE)?;
    check(is_huge(p, base + HUGE), "second 2 MiB")?;
    let before = free_frames();
    call(p, sys::munmap, [base + HUGE, HUGE, 0, 0, 0, 0]).map_err(|e| format!("{e:?}"))?;
    check(
        free_frames() == before + BLOCK_FRAMES,
        "whole page not freed",
    )?;
    check(next_block() == Some(pa2), "freed block not reusable")?;
    Ok(())
}

pub(super) fn mprotect_part() -> TestResult {
    let mut p = scratch_process()?;
    let p = &mut *p;
    let (a, _) = huge_area(p, 4 << 20)?;
    let b = a + HUGE;
    fill(p, a, 2 * HUGE, 7)?;
    let (pb, _) = mapping(p, b)?;
    check(is_huge(p, b), "second 2 MiB page")?;
    let mprotect = |p: &mut Task, va: u64, len: u64, prot: u32| {
        call(p, sys::mprotect, [va, len, u64::from(prot), 0, 0, 0])
            .map(|_| ())
            .map_err(|e| format!("mprotect: {e:?}"))
    };
    // A whole page: it stays one.
    mprotect(p, a, HUGE, PROT_READ)?;
    let (_, f) = mapping(p, a)?;
    check(
        f & flags::HUGE != 0 && f & flags::WRITABLE == 0,
        &format!("read-only 2 MiB page: flags {f:#x}"),
    )?;
    check(
        p.mm_mut().fault(a, Access::Write) == Err(super::FaultError::Protection),
        "write to a read-only 2 MiB page",
    )?;
    // Part of one: split, only that part changes.
    mprotect(p, b + 10 * P, 2 * P, PROT_READ)?;
    check(!is_huge(p, b), "not split")?;
    let writable = |p: &Task, i: u64| {
        p.mm.lock()
            .space
            .translate(b + i * P)
            .is_some_and(|(_, f)| f & flags::WRITABLE != 0)
    };
    check(
        writable(p, 9) && !writable(p, 10) && !writable(p, 11) && writable(p, 12),
        "protection of the pieces",
    )?;
    check(
        p.mm_mut().fault(b + 10 * P, Access::Write) == Err(super::FaultError::Protection),
        "write to the read-only piece",
    )?;
    check(mapping(p, b + 11 * P)?.0 == pb + 11 * P, "piece moved")?;
    // PROT_NONE parks every page of a whole one (none present), keeping the data.
    mprotect(p, a, HUGE, PROT_NONE)?;
    check(
        p.mm.lock().space.translate(a + 300 * P).is_none(),
        "parked page present",
    )?;
    check(read_u64(p, a) == Err(Errno::EFAULT), "PROT_NONE readable")?;
    mprotect(p, a, HUGE, PROT_READ)?;
    let wrong = wrong_pages(p, a, 2 * HUGE, 7);
    check(wrong.is_empty(), &format!("data lost on pages {wrong:?}"))
}

pub(super) fn dontneed_part() -> TestResult {
    let mut p = scratch_process()?;
    let p = &mut *p;
    let (base, pa) = huge_area(p, 4 << 20)?;
    fill(p, base, HUGE, 50)?;
    let before = free_frames();
    check(
        call(p, sys::madvise, [base + 20 * P, 3 * P, 4, 0, 0, 0]) == Ok(0),
        "MADV_DONTNEED",
    )?;
    // Three frames back, one taken for the page table.
    check(
        free_frames() == before + 2,
        "frames after DONTNEED of 3 pages",
    )?;
    for i in 20..23 {
        check(
            read_u64(p, base + i * P) == Ok(0),
            &format!("page {i} not zero"),
        )?;
    }
    let wrong = wrong_pages(p, base, HUGE, 50);
    check(wrong == [20, 21, 22], &format!("pages changed: {wrong:?}"))?;
    check(mapping(p, base + 23 * P)?.0 == pa + 23 * P, "page moved")?;
    // The whole of the next 2 MiB page: freed as a block, refaults as a fresh one.
    write_u64(p, base + HUGE + 8, 3).map_err(|e| format!("{e:?}"))?;
    let before = free_frames();
    check(
        call(p, sys::madvise, [base + HUGE, HUGE, 4, 0, 0, 0]) == Ok(0),
        "MADV_DONTNEED whole",
    )?;
    check(free_frames() == before + BLOCK_FRAMES, "block not freed")?;
    check(
        read_u64(p, base + HUGE + 8) == Ok(0),
        "not zero after DONTNEED",
    )?;
    write_u64(p, base + HUGE + 8, 4).map_err(|e| format!("{e:?}"))?;
    check(is_huge(p, base + HUGE), "no 2 MiB page on the refault")
}

pub(super) fn mremap_huge() -> TestResult {
    let mut p = scratch_process()?;
    let p = &mut *p;
    let len = 4 << 20;
    let (a, pa0) = huge_area(p, len)?;
    write_u64(p, a + HUGE, 1).map_err(|e| format!("{e:?}"))?;
    let (pa1, _) = mapping(p, a + HUGE)?;
    fill(p, a, len, 300)?;
    // Something right after it: growth must move.
    mmap(p, a + len, P, RW, ANON | super::map::FIXED).map_err(|e| format!("{e:?}"))?;
    let r = |p: &mut Task, a: [u64; 5]| call(p, mremap, [a[0], a[1], a[2], a[3], a[4], 0]);
    let before = free_frames();
    let b = r(p, [a, len, 2 * len, 1, 0]).map_err(|e| format!("grow: {e:?}"))?;
    check(b % HUGE == 0, &format!("moved to {b:#x}"))?;
    check(
        is_huge(p, b) && is_huge(p, b + HUGE),
        "2 MiB pages not kept on an aligned move",
    )?;
    check(
        mapping(p, b)?.0 == pa0 && mapping(p, b + HUGE)?.0 == pa1,
        "frames copied, not moved",
    )?;
    check(before - free_frames() <= 3, "a move took frames")?;
    check(
        read_u64(p, a) == Err(Errno::EFAULT),
        "old range still mapped",
    )?;
    let wrong = wrong_pages(p, b, len, 300);
    check(wrong.is_empty(), &format!("wrong after move: {wrong:?}"))?;
    // Moved to an address 4 KiB past a 2 MiB boundary: the same frames as 4 KiB pages.
    let free = mmap(p, 0, 3 * len, RW, ANON).map_err(|e| format!("{e:?}"))?;
    call(p, sys::munmap, [free, 3 * len, 0, 0, 0, 0]).map_err(|e| format!("{e:?}"))?;
    let c = free + HUGE + P;
    check(
        r(p, [b, len, len, 3, c]) == Ok(c),
        "MREMAP_FIXED to an unaligned place",
    )?;
    check(!is_huge(p, c), "a 2 MiB page at an unaligned address")?;
    check(
        mapping(p, c + 7 * P)?.0 == pa0 + 7 * P && mapping(p, c + HUGE + 9 * P)?.0 == pa1 + 9 * P,
        "frames not carried over",
    )?;
    let wrong = wrong_pages(p, c, len, 300);
    check(wrong.is_empty(), &format!("wrong after move: {wrong:?}"))?;
    // Unmapping the 1024 single pages gives both blocks back whole.
    let before = free_frames();
    call(p, sys::munmap, [c, len, 0, 0, 0, 0]).map_err(|e| format!("{e:?}"))?;
    check(
        free_frames() == before + 2 * BLOCK_FRAMES,
        &format!("{} frames back", free_frames() - before),
    )?;
    let block = next_block();
    check(
        block == Some(pa0) || block == Some(pa1),
        "blocks not rebuilt from single pages",
    )?;
    // One page out of the middle of a 2 MiB page: the rest stays where it was.
    let (e, pe) = huge_area(p, 4 << 20)?;
    fill(p, e, HUGE, 800)?;
    let dest = mmap(p, 0, P, RW, ANON).map_err(|e| format!("{e:?}"))?;
    let moved = r(p, [e + 5 * P, P, P, 3, dest]).map_err(|e| format!("move one page: {e:?}"))?;
    check(mapping(p, moved)?.0 == pe + 5 * P, "moved page's frame")?;
    check(read_u64(p, moved) == Ok(805), "moved page's data")?;
    check(
        read_u64(p, e + 5 * P) == Err(Errno::EFAULT),
        "hole not left",
    )?;
    let wrong = wrong_pages(p, e, HUGE, 800);
    check(wrong == [5], &format!("pages changed: {wrong:?}"))
}

pub(super) fn teardown_frees_all() -> TestResult {
    let before = free_frames();
    let mut blocks = Vec::new();
    {
        let mut p = scratch_process()?;
        let p = &mut *p;
        let len = 16 << 20;
        let (base, _) = huge_area(p, len)?;
        for i in 0..len / HUGE {
            write_u64(p, base + i * HUGE, i).map_err(|e| format!("{e:?}"))?;
        }
        check(
            (0..len / HUGE).all(|i| is_huge(p, base + i * HUGE)),
            "not all 2 MiB pages",
        )?;
        for i in 0..len / HUGE {
            blocks.push(mapping(p, base + i * HUGE)?.0);
        }
        // Leave some split, some moved, some parked.
        call(p, sys::munmap, [base + 3 * P, P, 0, 0, 0, 0]).map_err(|e| format!("{e:?}"))?;
        call(p, sys::mprotect, [base + HUGE, 5 * P, 0, 0, 0, 0]).map_err(|e| format!("{e:?}"))?;
        call(p, sys::mprotect, [base + 2 * HUGE, HUGE, 0, 0, 0, 0])
            .map_err(|e| format!("{e:?}"))?;
        call(
            p,
            mremap,
            [base + 3 * HUGE, HUGE, HUGE, 3, base + len + P, 0],
        )
        .map_err(|e| format!("{e:?}"))?;
        check(free_frames() < before - 7 * BLOCK_FRAMES, "pages missing")?;
    }
    let after = free_frames();
    check(
        after == before,
        &format!(
            "{} frames lost, {} gained",
            before.saturating_sub(after),
            after.saturating_sub(before)
        ),
    )?;
    // And every block the process had is a free block again, even those split.
    let mut frames = frame::FRAMES.lock();
    let free: Vec<u64> = core::iter::from_fn(|| frames.alloc_block()).collect();
    for &b in &free {
        frames.free_block(b);
    }
    drop(frames);
    let missing: Vec<&u64> = blocks.iter().filter(|b| !free.contains(b)).collect();
    check(
        missing.is_empty(),
        &format!("blocks not free after teardown: {missing:x?}"),
    )
}

/// With memory plentiful but no aligned 2 MiB block free (each one keeps a frame in use),
/// a fault maps 4 KiB pages, as before.
pub(super) fn fallback_without_block() -> TestResult {
    let mut held = Vec::new();
    {
        let mut frames = frame::FRAMES.lock();
        while let Some(block) = frames.alloc_block() {
            held.push(block);
        }
        for &block in &held {
            for i in 1..BLOCK_FRAMES {
                frames.free(block + i * P);
            }
        }
    }
    let result = (|| {
        check(held.len() > 8, &format!("only {} blocks", held.len()))?;
        check(next_block().is_none(), "a block is still free")?;
        let mut p = scratch_process()?;
        let p = &mut *p;
        let base = mmap(p, 0, 8 << 20, RW, ANON).map_err(|e| format!("mmap: {e:?}"))?;
        let before = free_frames();
        write_u64(p, base + HUGE + 8, 1).map_err(|e| format!("write: {e:?}"))?;
        let used = before - free_frames();
        check(
            mapping(p, base + HUGE)?.1 & flags::HUGE == 0,
            "2 MiB page without a block",
        )?;
        check(used <= 16 + 4, &format!("{used} frames for a 4 KiB fault"))?;
        check(read_u64(p, base + HUGE + 8) == Ok(1), "read back")
    })();
    {
        let mut frames = frame::FRAMES.lock();
        for &block in &held {
            frames.free(block);
        }
    }
    result?;
    check(next_block().is_some(), "blocks not rebuilt")
}

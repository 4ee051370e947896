//! Self-tests of copy-on-write fork ([`crate::mm::Mm::fork`]): private pages are shared
//! read-only and copied on the first write, `MAP_SHARED` anonymous memory stays shared,
//! 2 MiB pages are copied whole or split, a failed fork leaves nothing behind, and no
//! frame is lost once both sides are gone.

use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use super::{call, check, free_frames, mmap, no_huge_pages, read_u64, scratch_process};
use super::{write_u64, TestResult, ANON, P, RW};
use crate::errno::Errno;
use crate::mm::frame::{self, BLOCK_FRAMES};
use crate::mm::paging::{flags, HUGE_PAGE_SIZE};
use crate::mm::refcount;
use crate::mm::vma::{Access, PROT_NONE, PROT_READ};
use crate::syscall::mem::{self as sys, map};
use crate::task::Task;

const HUGE: u64 = HUGE_PAGE_SIZE;

/// A never-run process over a fork of `parent`'s address space.
fn fork(parent: &mut Task) -> Result<Box<Task>, String> {
    let mm = parent
        .mm
        .lock()
        .fork()
        .map_err(|e| format!("fork: {e:?}"))?;
    Task::new_with_mm("mmchild", mm, 0, 0, 0).map_err(|e| format!("{e:?}"))
}

fn frame_of(p: &Task, va: u64) -> Result<u64, String> {
    p.mm.lock()
        .translate(va)
        .map(|(pa, _)| pa & !(P - 1))
        .ok_or_else(|| format!("{va:#x} is not mapped"))
}

fn writable(p: &Task, va: u64) -> bool {
    p.mm.lock()
        .translate(va)
        .is_some_and(|(_, f)| f & flags::WRITABLE != 0)
}

fn is_huge(p: &Task, va: u64) -> bool {
    p.mm.lock()
        .translate(va)
        .is_some_and(|(_, f)| f & flags::HUGE != 0)
}

fn put(p: &mut Task, va: u64, value: u64) -> TestResult {
    write_u64(p, va, value).map_err(|e| format!("write {va:#x}: {e:?}"))
}

fn expect_word(p: &Task, va: u64, want: u64, who: &str) -> TestResult {
    match read_u64(p, va) {
        Ok(v) if v == want => Ok(()),
        other => Err(format!(
            "{who} reads {other:x?} at {va:#x}, expected {want:#x}"
        )),
    }
}

fn mprotect(p: &mut Task, va: u64, len: u64, prot: u32) -> TestResult {
    call(p, sys::mprotect, [va, len, u64::from(prot), 0, 0, 0])
        .map(|_| ())
        .map_err(|e| format!("mprotect: {e:?}"))
}

/// Frames free now compared with `before`: an error naming the difference.
fn no_frame_lost(before: u64) -> TestResult {
    let after = free_frames();
    check(
        after == before,
        &format!("{} frames lost", before as i64 - after as i64),
    )
}

pub(super) fn private_pages() -> TestResult {
    let before = free_frames();
    {
        let mut p = scratch_process()?;
        let len = 16 * P;
        let base = mmap(&mut p, 0, len, RW, ANON).map_err(|e| format!("mmap: {e:?}"))?;
        no_huge_pages(&mut p, base, len)?;
        for i in 0..16 {
            put(&mut p, base + i * P, 100 + i)?;
        }
        // The last page is PROT_NONE: parked, its data kept.
        mprotect(&mut p, base + 15 * P, P, PROT_NONE)?;
        let mut c = fork(&mut p)?;
        let shared = frame_of(&p, base)?;
        check(frame_of(&c, base)? == shared, "the child has its own frame")?;
        check(
            !writable(&p, base) && !writable(&c, base),
            "a shared private page is writable",
        )?;
        check(refcount::extra_owners(shared) == 1, "not two owners")?;

        // The child writes: it gets a copy; the parent keeps its data and becomes the
        // frame's only owner, so its own write needs no copy.
        put(&mut c, base, 200)?;
        expect_word(&c, base, 200, "child")?;
        expect_word(&p, base, 100, "parent")?;
        check(
            frame_of(&c, base)? != shared,
            "the child wrote the shared frame",
        )?;
        check(
            refcount::extra_owners(shared) == 0,
            "the copy kept a reference",
        )?;
        put(&mut p, base, 300)?;
        check(
            frame_of(&p, base)? == shared,
            "a sole owner's page was copied",
        )?;
        expect_word(&c, base, 200, "child")?;

        // The parent writes a page the child still shares: the parent copies.
        put(&mut p, base + P, 301)?;
        expect_word(&c, base + P, 101, "child")?;

        // A read fault on a present shared page (what looks like a stale entry) and an
        // mprotect back to read-write leave it read-only; only a write copies it.
        let page = base + 2 * P;
        c.mm.lock()
            .fault(page, Access::Read)
            .map_err(|e| format!("read fault: {e:?}"))?;
        check(
            !writable(&c, page),
            "a read fault made a shared frame writable",
        )?;
        mprotect(&mut c, page, P, PROT_READ)?;
        mprotect(&mut c, page, P, (RW) as u32)?;
        check(!writable(&c, page), "mprotect made a shared frame writable")?;
        check(frame_of(&c, page)? == frame_of(&p, page)?, "copied early")?;
        put(&mut c, page, 202)?;
        expect_word(&p, page, 102, "parent")?;

        // A parked page: shared too; made accessible, it stays read-only until written.
        let parked = base + 15 * P;
        mprotect(&mut c, parked, P, RW as u32)?;
        expect_word(&c, parked, 115, "child")?;
        check(
            !writable(&c, parked),
            "an unparked shared frame is writable",
        )?;
        put(&mut c, parked, 215)?;
        mprotect(&mut p, parked, P, PROT_READ)?;
        expect_word(&p, parked, 115, "parent")?;

        // Untouched pages of both still read as before.
        for i in 3..15 {
            expect_word(&p, base + i * P, 100 + i, "parent")?;
            expect_word(&c, base + i * P, 100 + i, "child")?;
        }
        // The parent goes first: the child's pages stay intact.
        drop(p);
        for i in 3..15 {
            expect_word(&c, base + i * P, 100 + i, "orphaned child")?;
        }
    }
    no_frame_lost(before)
}

pub(super) fn shared_anonymous() -> TestResult {
    let before = free_frames();
    {
        let mut p = scratch_process()?;
        let shared_flags = map::SHARED | map::ANONYMOUS;
        let s = mmap(&mut p, 0, 4 * P, RW, shared_flags).map_err(|e| format!("mmap: {e:?}"))?;
        let private = mmap(&mut p, 0, P, RW, ANON).map_err(|e| format!("mmap: {e:?}"))?;
        put(&mut p, s, 1)?;
        put(&mut p, private, 1)?;
        let mut c = fork(&mut p)?;
        check(
            writable(&p, s) && writable(&c, s),
            "shared memory lost write access",
        )?;
        put(&mut c, s, 2)?;
        put(&mut c, private, 2)?;
        expect_word(&p, s, 2, "parent (shared)")?;
        expect_word(&p, private, 1, "parent (private)")?;
        // A page first touched after the fork, by either side, is shared too.
        put(&mut c, s + P, 3)?;
        expect_word(&p, s + P, 3, "parent")?;
        put(&mut p, s + 2 * P, 4)?;
        expect_word(&c, s + 2 * P, 4, "child")?;
        // MADV_DONTNEED keeps shared data; MADV_REMOVE drops it for everyone, whether
        // they still map the page (the child) or not (the grandchild forked below).
        call(&mut c, sys::madvise, [s, P, 4, 0, 0, 0]).map_err(|e| format!("{e:?}"))?;
        expect_word(&c, s, 2, "child after MADV_DONTNEED")?;
        call(&mut p, sys::madvise, [s, P, 9, 0, 0, 0]).map_err(|e| format!("{e:?}"))?;
        expect_word(&c, s, 0, "child after MADV_REMOVE")?;
        expect_word(&p, s, 0, "parent after MADV_REMOVE")?;
        put(&mut c, s, 8)?;
        expect_word(&p, s, 8, "parent after the child's write")?;
        expect_word(&p, s + P, 3, "parent")?;
        // mprotect read-only then read-write: still the one shared frame.
        mprotect(&mut c, s + P, P, PROT_READ)?;
        mprotect(&mut c, s + P, P, RW as u32)?;
        put(&mut c, s + P, 5)?;
        expect_word(&p, s + P, 5, "parent")?;
        // A fork of the fork shares it as well.
        let mut g = fork(&mut c)?;
        put(&mut g, s + 3 * P, 6)?;
        expect_word(&p, s + 3 * P, 6, "grandparent")?;
        drop(c);
        expect_word(&p, s + 3 * P, 6, "grandparent after the child went")?;
        drop(p);
        expect_word(&g, s + P, 5, "grandchild alone")?;
    }
    no_frame_lost(before)
}

/// A 2 MiB page filled with `tag + i` in page `i`, in `p`; its address.
fn huge_page(p: &mut Task, tag: u64) -> Result<u64, String> {
    let base = mmap(p, 0, HUGE, RW, ANON).map_err(|e| format!("mmap: {e:?}"))?;
    check(base % HUGE == 0, "not 2 MiB aligned")?;
    for i in 0..HUGE / P {
        put(p, base + i * P, tag + i)?;
    }
    check(is_huge(p, base), "not a 2 MiB page")?;
    Ok(base)
}

fn huge_cow(split: bool) -> TestResult {
    let before = free_frames();
    {
        let mut p = scratch_process()?;
        let base = huge_page(&mut p, 1000)?;
        let block = frame_of(&p, base)?;
        let mut c = fork(&mut p)?;
        c.mm.lock().mem.split_huge_cow = split;
        check(
            is_huge(&c, base) && !writable(&c, base),
            "child's 2 MiB page",
        )?;
        check(!writable(&p, base), "parent's 2 MiB page still writable")?;
        let started = crate::time::monotonic_ns();
        put(&mut c, base + 5 * P + 8, 7)?;
        let fault_ns = crate::time::monotonic_ns() - started;
        if split {
            check(!is_huge(&c, base), "not split")?;
            check(
                frame_of(&c, base + 5 * P)? != block + 5 * P,
                "page 5 not copied",
            )?;
            check(
                frame_of(&c, base + 6 * P)? == block + 6 * P,
                "page 6 copied though not written",
            )?;
            check(!writable(&c, base + 6 * P), "unwritten piece writable")?;
        } else {
            check(is_huge(&c, base), "not copied whole")?;
            check(
                frame_of(&c, base)? != block,
                "the child wrote the shared block",
            )?;
            check(writable(&c, base), "the copy is read-only")?;
        }
        for i in 0..HUGE / P {
            expect_word(&c, base + i * P, 1000 + i, "child")?;
            expect_word(&p, base + i * P, 1000 + i, "parent")?;
        }
        expect_word(&c, base + 5 * P + 8, 7, "child")?;
        expect_word(&p, base + 5 * P + 8, 0, "parent")?;
        // The parent writes: after a whole copy it is the block's only owner (no copy);
        // after a split the child still shares 511 frames, so the parent copies too.
        put(&mut p, base + 9 * P, 9)?;
        check(is_huge(&p, base), "the parent's page was split")?;
        check(
            (frame_of(&p, base)? == block) != split,
            "the parent copied (or not) wrongly",
        )?;
        expect_word(&c, base + 9 * P, 1009, "child")?;
        crate::kprintln!(
            "astra: mm: first write to a shared 2 MiB page ({}): {} us",
            if split { "split" } else { "copied whole" },
            fault_ns / 1000
        );
    }
    no_frame_lost(before)
}

pub(super) fn huge_copied_whole() -> TestResult {
    huge_cow(false)
}

pub(super) fn huge_split() -> TestResult {
    huge_cow(true)
}

/// Takes frames until only `keep` are free; returns them.
fn exhaust(keep: u64) -> Vec<u64> {
    let mut taken = Vec::new();
    while free_frames() > keep {
        if free_frames() >= keep + BLOCK_FRAMES {
            if let Some(block) = frame::FRAMES.lock().alloc_block() {
                taken.push(block | 1);
                continue;
            }
        }
        match frame::FRAMES.lock().alloc() {
            Some(pa) => taken.push(pa),
            None => break,
        }
    }
    taken
}

fn give_back(taken: Vec<u64>) {
    for pa in taken {
        if pa & 1 != 0 {
            frame::free_block(pa & !1);
        } else {
            frame::free(pa);
        }
    }
}

pub(super) fn failed_fork_leaks_nothing() -> TestResult {
    let before = free_frames();
    {
        let mut p = scratch_process()?;
        // Pages far apart, so that a fork needs page tables at every level.
        let mut pages = Vec::new();
        for i in 0..4u64 {
            let va = 0x1000_0000 + i * (1 << 30) + i * HUGE;
            let at = call(
                &mut p,
                sys::mmap,
                [va, 4 * P, RW, ANON | map::FIXED, u64::MAX, 0],
            )
            .map_err(|e| format!("mmap: {e:?}"))?;
            no_huge_pages(&mut p, at, 4 * P)?;
            put(&mut p, at, i)?;
            pages.push(at);
        }
        let with_parent = free_frames();
        for keep in [0, 1, 2, 3, 5, 8] {
            let taken = exhaust(keep);
            let result = p.mm.lock().fork();
            let failed = result.is_err();
            let err = result.as_ref().err().copied();
            drop(result);
            give_back(taken);
            check(failed, &format!("fork with {keep} free frames succeeded"))?;
            check(err == Some(Errno::ENOMEM), &format!("fork: {err:?}"))?;
            check(
                free_frames() == with_parent,
                &format!(
                    "failed fork with {keep} free frames lost {} frames",
                    with_parent as i64 - free_frames() as i64
                ),
            )?;
        }
        // The parent is intact and gets write access back on its next write.
        for (i, &va) in pages.iter().enumerate() {
            expect_word(&p, va, i as u64, "parent")?;
            put(&mut p, va, 10 + i as u64)?;
            check(writable(&p, va), "write access not restored")?;
        }
        let c = fork(&mut p)?;
        expect_word(&c, pages[3], 13, "child")?;
    }
    no_frame_lost(before)
}

pub(super) fn teardown_frees_everything() -> TestResult {
    // Every kind of page at once, forked twice, dropped in every order.
    for order in 0..3 {
        let before = free_frames();
        {
            let mut p = scratch_process()?;
            let base = huge_page(&mut p, 0)?;
            let small = mmap(&mut p, 0, 8 * P, RW, ANON).map_err(|e| format!("{e:?}"))?;
            no_huge_pages(&mut p, small, 8 * P)?;
            for i in 0..8 {
                put(&mut p, small + i * P, i)?;
            }
            mprotect(&mut p, small + 7 * P, P, PROT_NONE)?;
            let s = mmap(&mut p, 0, 2 * P, RW, map::SHARED | map::ANONYMOUS)
                .map_err(|e| format!("{e:?}"))?;
            put(&mut p, s, 1)?;
            let mut a = fork(&mut p)?;
            let mut b = fork(&mut a)?;
            put(&mut a, small, 5)?;
            put(&mut b, base + 3 * P, 5)?;
            put(&mut b, s + P, 5)?;
            check(
                refcount::extra_owners(frame_of(&p, small + P)?) == 2,
                "three owners expected",
            )?;
            let free_with_all = free_frames();
            check(free_with_all + BLOCK_FRAMES < before, "nothing allocated")?;
            match order {
                0 => drop((p, a, b)),
                1 => drop((b, a, p)),
                _ => drop((a, p, b)),
            }
        }
        no_frame_lost(before).map_err(|e| format!("drop order {order}: {e}"))?;
    }
    Ok(())
}

pub(super) fn fork_cost() -> TestResult {
    let before = free_frames();
    {
        let mut p = scratch_process()?;
        // 64 MiB in 2 MiB pages and 4 MiB in 4 KiB pages, all touched.
        let big = mmap(&mut p, 0, 64 << 20, RW, ANON).map_err(|e| format!("{e:?}"))?;
        p.mm_mut()
            .populate(big, big + (64 << 20), Access::Write)
            .map_err(|e| format!("populate: {e:?}"))?;
        let small = mmap(&mut p, 0, 4 << 20, RW, ANON).map_err(|e| format!("{e:?}"))?;
        no_huge_pages(&mut p, small, 4 << 20)?;
        p.mm_mut()
            .populate(small, small + (4 << 20), Access::Write)
            .map_err(|e| format!("populate: {e:?}"))?;
        let started = crate::time::monotonic_ns();
        let c = fork(&mut p)?;
        let fork_us = (crate::time::monotonic_ns() - started) / 1000;
        let started = crate::time::monotonic_ns();
        drop(c);
        let drop_us = (crate::time::monotonic_ns() - started) / 1000;
        crate::kprintln!(
            "astra: mm: fork of 64 MiB in 2 MiB pages + 4 MiB in 4 KiB pages: {fork_us} us, \
             dropping the copy: {drop_us} us"
        );
        // The copy gone, the parent owns every frame alone again.
        check(
            refcount::extra_owners(frame_of(&p, small)?) == 0,
            "a reference outlived the copy",
        )?;
    }
    no_frame_lost(before)
}

//! In-kernel self-tests of user memory (`astra.test`): demand paging, the memory system
//! calls through their real handlers, file mappings over tarfs, and ring-3 programs that
//! fault, grow their stack, probe it like musl, and run out of memory ([`ring3`]).

mod cow;
mod cow_ring3;
mod huge;
mod huge_model;
mod ring3;

use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

use super::paging::AddressSpace;
use super::source::StaticSource;
use super::user::FaultError;
use super::vma::{Access, PROT_EXEC, PROT_NONE, PROT_READ, PROT_WRITE};
use super::{frame, kernel_space, PAGE_SIZE};
use crate::arch::trap::TrapFrame;
use crate::fs::tar::TarFs;
use crate::syscall::mem::{self as sys, map, MappableFile};
use crate::syscall::{mremap::mremap, Ctx, Errno};
use crate::task::Task;

pub(super) type TestResult = Result<(), String>;
/// A named self-test.
type Test<'a> = (&'static str, Box<dyn Fn() -> TestResult + 'a>);

const P: u64 = PAGE_SIZE;
const RW: u64 = (PROT_READ | PROT_WRITE) as u64;
const ANON: u64 = map::PRIVATE | map::ANONYMOUS;

pub(super) fn check(cond: bool, what: &str) -> TestResult {
    if cond {
        Ok(())
    } else {
        Err(String::from(what))
    }
}

pub(super) fn free_frames() -> u64 {
    // A forked task's kernel stack stays mapped in the stacks' cache once it has gone.
    crate::task::kstack::drain_cache();
    frame::FRAMES.lock().free_frames()
}

/// The user-memory self-tests, by name.
pub fn tests<'a>(rootfs: Option<&'a TarFs>) -> Vec<Test<'a>> {
    alloc::vec![
        (
            "mm_demand_paging_costs_only_touched_pages",
            Box::new(demand_paging) as Box<dyn Fn() -> TestResult>
        ),
        ("mm_fault_checks_protection", Box::new(fault_protection)),
        (
            "mm_sequential_faults_widen_the_window",
            Box::new(sequential_faults)
        ),
        ("mm_mmap_munmap_mprotect_syscalls", Box::new(mmap_syscalls)),
        ("mm_mremap_moves_pages", Box::new(mremap_moves)),
        ("mm_madvise_dontneed_zeroes", Box::new(madvise_dontneed)),
        (
            "mm_file_mapping_from_tarfs",
            Box::new(move || file_mapping(rootfs))
        ),
        ("mm_ring3_anonymous_mmap", Box::new(ring3::anonymous)),
        ("mm_ring3_mprotect_read_only", Box::new(ring3::mprotect)),
        ("mm_ring3_stack_grows_to_its_limit", Box::new(ring3::stack)),
        ("mm_ring3_musl_stack_probe", Box::new(ring3::probe)),
        ("mm_ring3_brk", Box::new(ring3::brk)),
        ("mm_ring3_prot_none_faults", Box::new(ring3::prot_none)),
        (
            "mm_ring3_sigbus_past_eof",
            Box::new(move || ring3::sigbus(rootfs))
        ),
        (
            "mm_ring3_out_of_memory_kills_only_the_process",
            Box::new(ring3::oom)
        ),
        (
            "mm_huge_fault_maps_a_2mib_page",
            Box::new(huge::fault_maps_2mib)
        ),
        (
            "mm_huge_munmap_of_a_piece_splits",
            Box::new(huge::munmap_splits)
        ),
        ("mm_huge_mprotect_of_part", Box::new(huge::mprotect_part)),
        (
            "mm_huge_madvise_dontneed_of_part",
            Box::new(huge::dontneed_part)
        ),
        (
            "mm_huge_mremap_keeps_or_splits",
            Box::new(huge::mremap_huge)
        ),
        (
            "mm_huge_teardown_frees_every_frame",
            Box::new(huge::teardown_frees_all)
        ),
        (
            "mm_huge_fallback_without_a_free_block",
            Box::new(huge::fallback_without_block)
        ),
        ("mm_huge_ring3_touches_8mib", Box::new(ring3::touch_8mib)),
        (
            "mm_huge_random_operations_match_a_model",
            Box::new(huge_model::random_ops_match_the_model)
        ),
        ("mm_cow_fork_private_pages", Box::new(cow::private_pages)),
        (
            "mm_cow_shared_anonymous_memory",
            Box::new(cow::shared_anonymous)
        ),
        ("mm_cow_huge_copied_whole", Box::new(cow::huge_copied_whole)),
        ("mm_cow_huge_split", Box::new(cow::huge_split)),
        (
            "mm_cow_failed_fork_leaks_nothing",
            Box::new(cow::failed_fork_leaks_nothing)
        ),
        (
            "mm_cow_teardown_frees_every_frame",
            Box::new(cow::teardown_frees_everything)
        ),
        ("mm_cow_fork_cost", Box::new(cow::fork_cost)),
        (
            "mm_cow_ring3_writes_on_every_side",
            Box::new(cow_ring3::writes_on_every_side)
        ),
        (
            "mm_cow_ring3_huge_copy_against_split",
            Box::new(cow_ring3::huge_copy_against_split)
        ),
    ]
}

/// A process that is never run, to call handlers on.
fn scratch_process() -> Result<Box<Task>, String> {
    let space = AddressSpace::new_user(kernel_space()).map_err(|e| format!("{e:?}"))?;
    Task::new("mmtest", space, 0, 0).map_err(|e| format!("{e:?}"))
}

fn call(
    proc: &mut Task,
    f: fn(&mut Ctx<'_>, [u64; 6]) -> crate::syscall::SysResult,
    a: [u64; 6],
) -> Result<u64, Errno> {
    let mut frame = TrapFrame::default();
    f(
        &mut Ctx {
            task: proc,
            frame: &mut frame,
        },
        a,
    )
}

fn mmap(proc: &mut Task, addr: u64, len: u64, prot: u64, flags: u64) -> Result<u64, Errno> {
    call(proc, sys::mmap, [addr, len, prot, flags, u64::MAX, 0])
}

fn read_u64(proc: &Task, va: u64) -> Result<u64, Errno> {
    let mut b = [0u8; 8];
    proc.mm.lock().read(va, &mut b)?;
    Ok(u64::from_le_bytes(b))
}

fn write_u64(proc: &mut Task, va: u64, v: u64) -> Result<(), FaultError> {
    proc.mm_mut().write(va, &v.to_le_bytes())
}

/// MADV_NOHUGEPAGE on `[base, base + len)`: 4 KiB pages only, for the tests of demand
/// paging and fault-around (2 MiB pages have tests of their own, in `huge`).
fn no_huge_pages(proc: &mut Task, base: u64, len: u64) -> TestResult {
    call(proc, sys::madvise, [base, len, 15, 0, 0, 0])
        .map(|_| ())
        .map_err(|e| format!("madvise(MADV_NOHUGEPAGE): {e:?}"))
}

fn demand_paging() -> TestResult {
    let mut p = scratch_process()?;
    let before = free_frames();
    let len = 1u64 << 30;
    let base =
        mmap(&mut p, 0, len, RW, ANON | map::NORESERVE).map_err(|e| format!("mmap: {e:?}"))?;
    no_huge_pages(&mut p, base, len)?;
    check(free_frames() == before, "a 1 GiB reservation took frames")?;
    check(
        p.mm_mut().space.translate(base).is_none(),
        "page present before any touch",
    )?;
    // Untouched memory reads as zeros and stays untouched.
    check(
        read_u64(&p, base + len / 2) == Ok(0),
        "fresh memory reads 0",
    )?;
    check(
        free_frames() == before,
        "a read of fresh memory took frames",
    )?;
    for off in [0, len / 2, len - 8] {
        write_u64(&mut p, base + off, off + 1).map_err(|e| format!("write: {e:?}"))?;
    }
    for off in [0, len / 2, len - 8] {
        check(read_u64(&p, base + off) == Ok(off + 1), "read back")?;
    }
    // Three fault-around windows of 16 pages, plus page tables.
    let used = before - free_frames();
    check(
        (3..=3 * 16 + 12).contains(&used),
        &format!("{used} frames for 3 touched pages"),
    )?;
    call(&mut p, sys::munmap, [base, len, 0, 0, 0, 0]).map_err(|e| format!("munmap: {e:?}"))?;
    let used = before - free_frames();
    check(
        used <= 12,
        &format!("{used} frames still used after munmap"),
    )?;
    check(
        read_u64(&p, base) == Err(Errno::EFAULT),
        "unmapped memory readable",
    )
}

/// Filling fresh memory in order takes a handful of faults (the window doubles up to
/// 2 MiB); a fault elsewhere maps only a small window again.
fn sequential_faults() -> TestResult {
    let mut p = scratch_process()?;
    let len = 8u64 << 20;
    let base = mmap(&mut p, 0, len, RW, ANON).map_err(|e| format!("mmap: {e:?}"))?;
    no_huge_pages(&mut p, base, len)?;
    let mut faults = 0;
    for page in (base..base + len).step_by(PAGE_SIZE as usize) {
        if p.mm_mut().space.translate(page).is_none() {
            faults += 1;
            p.mm_mut()
                .fault(page, Access::Write)
                .map_err(|e| format!("fault: {e:?}"))?;
        }
    }
    check(
        (2..=16).contains(&faults),
        &format!("{faults} faults to fill 8 MiB in order"),
    )?;
    let far = mmap(&mut p, 0, len, RW, ANON).map_err(|e| format!("mmap: {e:?}"))?;
    no_huge_pages(&mut p, far, len)?;
    let before = free_frames();
    p.mm_mut()
        .fault(far + len / 2, Access::Write)
        .map_err(|e| format!("fault: {e:?}"))?;
    let used = before - free_frames();
    check(
        used <= 16 + 4,
        &format!("{used} frames for one fault away from the last window"),
    )
}

fn fault_protection() -> TestResult {
    let mut p = scratch_process()?;
    let proc = &mut *p;
    let base = mmap(proc, 0, 4 * P, RW, ANON).map_err(|e| format!("{e:?}"))?;
    let m = proc.mm_mut();
    let (mem, space) = (&mut m.mem, &mut m.space);
    check(mem.fault(space, base, Access::Write).is_ok(), "write to RW")?;
    check(
        mem.fault(space, base, Access::Exec) == Err(FaultError::Protection),
        "exec of non-X",
    )?;
    mem.protect(space, base + P, base + 2 * P, PROT_READ, false)
        .map_err(|e| format!("{e:?}"))?;
    check(
        mem.fault(space, base + P, Access::Read).is_ok(),
        "read of R",
    )?;
    check(
        mem.fault(space, base + P, Access::Write) == Err(FaultError::Protection),
        "write of R",
    )?;
    mem.protect(space, base + 2 * P, base + 3 * P, PROT_NONE, false)
        .map_err(|e| format!("{e:?}"))?;
    check(
        mem.fault(space, base + 2 * P, Access::Read) == Err(FaultError::Protection),
        "read of NONE",
    )?;
    let mut b = [0u8; 8];
    check(
        mem.read(space, base + 2 * P, &mut b) == Err(Errno::EFAULT),
        "kernel read of NONE",
    )?;
    // A page made PROT_NONE after it was touched keeps its data for later.
    write_u64(proc, base + 3 * P, 42).map_err(|e| format!("{e:?}"))?;
    let m = proc.mm_mut();
    let (mem, space) = (&mut m.mem, &mut m.space);
    mem.protect(space, base + 3 * P, base + 4 * P, PROT_NONE, false)
        .map_err(|e| format!("{e:?}"))?;
    check(
        mem.read(space, base + 3 * P, &mut b) == Err(Errno::EFAULT),
        "read of touched NONE",
    )?;
    mem.protect(
        space,
        base + 3 * P,
        base + 4 * P,
        PROT_READ | PROT_EXEC,
        false,
    )
    .map_err(|e| format!("{e:?}"))?;
    check(
        read_u64(proc, base + 3 * P) == Ok(42),
        "data survives PROT_NONE",
    )?;
    let m = proc.mm_mut();
    let (mem, space) = (&mut m.mem, &mut m.space);
    check(
        mem.fault(space, base + 3 * P, Access::Exec).is_ok(),
        "exec of RX",
    )?;
    check(
        mem.fault(space, base + 4 * P, Access::Read) == Err(FaultError::Unmapped),
        "unmapped",
    )?;
    check(
        mem.fault(space, 0xffff_8000_0000_0000, Access::Read) == Err(FaultError::Unmapped),
        "kernel half",
    )?;
    check(mem.vmas().len() == 4, "areas split by protection")
}

fn mmap_syscalls() -> TestResult {
    let mut p = scratch_process()?;
    let p = &mut *p;
    let e = |r: Result<u64, Errno>| r.err();
    // Argument checks.
    check(
        e(mmap(p, 0, 0, RW, ANON)) == Some(Errno::EINVAL),
        "zero length",
    )?;
    check(
        e(mmap(p, 0, u64::MAX - 100, RW, ANON)) == Some(Errno::ENOMEM),
        "length overflows",
    )?;
    check(
        e(mmap(p, 0, P, RW, map::ANONYMOUS)) == Some(Errno::EINVAL),
        "no map type",
    )?;
    check(
        e(mmap(p, 0x10_0001, P, RW, ANON | map::FIXED)) == Some(Errno::EINVAL),
        "unaligned fixed",
    )?;
    check(
        e(mmap(p, 0x1000, P, RW, ANON | map::FIXED)) == Some(Errno::EPERM),
        "below mmap_min_addr",
    )?;
    check(
        e(call(p, sys::mmap, [0, P, RW, map::PRIVATE, 3, 0])) == Some(Errno::EBADF),
        "no such fd",
    )?;
    check(
        e(call(p, sys::mmap, [0, P, RW, ANON, u64::MAX, 1])) == Some(Errno::EINVAL),
        "unaligned offset",
    )?;
    // Top-down placement, a hint honoured, fixed replacement and no-replace.
    let a = mmap(p, 0, 2 * P, RW, ANON).map_err(|e| format!("{e:?}"))?;
    let b = mmap(p, 0, P, RW, ANON).map_err(|e| format!("{e:?}"))?;
    check(b < a, "second mapping lies below the first")?;
    let hint = 0x1234_5000;
    check(mmap(p, hint, P, RW, ANON) == Ok(hint), "free hint used")?;
    check(
        mmap(p, a, P, RW, ANON | map::FIXED_NOREPLACE) == Err(Errno::EEXIST),
        "noreplace",
    )?;
    write_u64(p, a, 7).map_err(|e| format!("{e:?}"))?;
    check(
        mmap(p, a, P, RW, ANON | map::FIXED) == Ok(a),
        "fixed replaces",
    )?;
    check(read_u64(p, a) == Ok(0), "replaced page is fresh")?;
    // munmap checks and a hole.
    check(
        e(call(p, sys::munmap, [a + 1, P, 0, 0, 0, 0])) == Some(Errno::EINVAL),
        "unaligned munmap",
    )?;
    check(
        e(call(p, sys::munmap, [a, 0, 0, 0, 0, 0])) == Some(Errno::EINVAL),
        "empty munmap",
    )?;
    check(
        call(p, sys::munmap, [a + P, P, 0, 0, 0, 0]) == Ok(0),
        "munmap part",
    )?;
    check(
        call(p, sys::munmap, [a + P, P, 0, 0, 0, 0]) == Ok(0),
        "munmap a hole",
    )?;
    // mprotect over a hole fails; a zero length is fine; unknown bits are refused.
    check(
        call(p, sys::mprotect, [a, 2 * P, 1, 0, 0, 0]) == Err(Errno::ENOMEM),
        "mprotect hole",
    )?;
    check(
        call(p, sys::mprotect, [a, 0, 1, 0, 0, 0]) == Ok(0),
        "mprotect nothing",
    )?;
    check(
        call(p, sys::mprotect, [a, P, 0x40, 0, 0, 0]) == Err(Errno::EINVAL),
        "bad prot",
    )?;
    check(
        call(p, sys::mprotect, [a, P, 1 | 0x0100_0000, 0, 0, 0]) == Err(Errno::EINVAL),
        "GROWSDOWN on a heap",
    )?;
    check(
        call(p, sys::mprotect, [a, P, 1, 0, 0, 0]) == Ok(0),
        "mprotect",
    )?;
    check(
        p.mm_mut().mem.vmas().find(a).map(|v| v.prot) == Some(PROT_READ),
        "protection recorded",
    )?;
    // madvise and msync checks.
    check(
        call(p, sys::madvise, [a, P, 999, 0, 0, 0]) == Err(Errno::EINVAL),
        "unknown advice",
    )?;
    check(
        call(p, sys::madvise, [a, P, 14, 0, 0, 0]) == Ok(0),
        "harmless advice",
    )?;
    check(
        call(p, sys::madvise, [a, 3 * P, 0, 0, 0, 0]) == Err(Errno::ENOMEM),
        "advice over a hole",
    )?;
    check(call(p, sys::msync, [a, P, 6, 0, 0, 0]) == Ok(0), "msync")?;
    check(
        call(p, sys::msync, [a, P, 5, 0, 0, 0]) == Err(Errno::EINVAL),
        "msync async+sync",
    )?;
    // MAP_POPULATE faults in up front.
    let c = mmap(p, 0, 4 * P, RW, ANON | map::POPULATE).map_err(|e| format!("{e:?}"))?;
    check(
        (0..4).all(|i| p.mm_mut().space.translate(c + i * P).is_some()),
        "populated",
    )?;
    // mincore reports exactly those.
    let vec = mmap(p, 0, P, RW, ANON).map_err(|e| format!("{e:?}"))?;
    let d = mmap(p, 0, 64 * P, RW, ANON).map_err(|e| format!("{e:?}"))?;
    write_u64(p, d + 40 * P, 1).map_err(|e| format!("{e:?}"))?;
    call(p, sys::mincore, [d, 64 * P, vec, 0, 0, 0]).map_err(|e| format!("mincore: {e:?}"))?;
    let mut bits = [0u8; 64];
    p.mm_mut()
        .read(vec, &mut bits)
        .map_err(|e| format!("{e:?}"))?;
    // The fault-around window: 16 pages aligned to 64 KiB, inside the area.
    let window = (d + 40 * P) & !(16 * P - 1);
    let resident = |i: u64| (window..window + 16 * P).contains(&(d + i * P));
    check(
        (0..64).all(|i| bits[i as usize] == u8::from(resident(i))),
        "mincore bits",
    )?;
    // The program break.
    p.mm_mut().mem.init_brk(0x5000_0000);
    check(call(p, sys::brk, [0; 6]) == Ok(0x5000_0000), "brk(0)")?;
    check(
        call(p, sys::brk, [0x5000_0000 + 10_000, 0, 0, 0, 0, 0]) == Ok(0x5000_0000 + 10_000),
        "brk grows",
    )?;
    check(
        call(p, sys::brk, [0x4000_0000, 0, 0, 0, 0, 0]) == Ok(0x5000_0000 + 10_000),
        "brk below start",
    )?;
    write_u64(p, 0x5000_0000 + 9_000, 1).map_err(|e| format!("{e:?}"))?;
    check(
        mmap(p, 0x5000_4000, P, RW, ANON | map::FIXED) == Ok(0x5000_4000),
        "a mapping above the break",
    )?;
    check(
        call(p, sys::brk, [0x5000_5000, 0, 0, 0, 0, 0]) == Ok(0x5000_0000 + 10_000),
        "brk into a mapping",
    )?;
    Ok(())
}

fn mremap_moves() -> TestResult {
    let mut p = scratch_process()?;
    let p = &mut *p;
    let a = mmap(p, 0, 4 * P, RW, ANON).map_err(|e| format!("{e:?}"))?;
    for i in 0..4 {
        write_u64(p, a + i * P, 100 + i).map_err(|e| format!("{e:?}"))?;
    }
    let frame0 = p.mm_mut().space.translate(a).map(|t| t.0);
    // Block growth in place.
    mmap(p, a + 4 * P, P, RW, ANON | map::FIXED).map_err(|e| format!("{e:?}"))?;
    let r = |p: &mut Task, a: [u64; 5]| call(p, mremap, [a[0], a[1], a[2], a[3], a[4], 0]);
    check(
        r(p, [a, 4 * P, 8 * P, 0, 0]) == Err(Errno::ENOMEM),
        "no room, no MAYMOVE",
    )?;
    check(
        r(p, [a + P, P, 2 * P, 0, 0]) == Err(Errno::ENOMEM),
        "inside an area: musl's probe answer",
    )?;
    check(
        r(p, [a + 8 * P, P, 2 * P, 0, 0]) == Err(Errno::EFAULT),
        "nothing there",
    )?;
    check(
        r(p, [a, 8 * P, 9 * P, 1, 0]) == Err(Errno::EFAULT),
        "across areas",
    )?;
    check(
        r(p, [a, 0, P, 1, 0]) == Err(Errno::EINVAL),
        "old_len 0 of a private mapping",
    )?;
    let b = r(p, [a, 4 * P, 8 * P, 1, 0]).map_err(|e| format!("maymove: {e:?}"))?;
    check(b != a, "moved")?;
    check(
        p.mm_mut().space.translate(b).map(|t| t.0) == frame0,
        "frames carried over, not copied",
    )?;
    for i in 0..4 {
        check(read_u64(p, b + i * P) == Ok(100 + i), "contents moved")?;
    }
    check(read_u64(p, b + 6 * P) == Ok(0), "grown part is fresh")?;
    check(read_u64(p, a) == Err(Errno::EFAULT), "old range unmapped")?;
    // Shrink in place, then grow in place into the freed room.
    check(r(p, [b, 8 * P, 2 * P, 0, 0]) == Ok(b), "shrink")?;
    check(
        read_u64(p, b + 2 * P) == Err(Errno::EFAULT),
        "shrunk tail unmapped",
    )?;
    check(r(p, [b, 2 * P, 3 * P, 0, 0]) == Ok(b), "grow in place")?;
    check(read_u64(p, b + 2 * P) == Ok(0), "regrown page is fresh")?;
    // MREMAP_FIXED onto an existing mapping replaces it; overlapping ranges are refused.
    let c = mmap(p, 0, P, RW, ANON).map_err(|e| format!("{e:?}"))?;
    check(
        r(p, [b, 3 * P, 3 * P, 3, b + P]) == Err(Errno::EINVAL),
        "overlap",
    )?;
    check(r(p, [b, P, P, 3, c]) == Ok(c), "fixed")?;
    check(read_u64(p, c) == Ok(100), "fixed move keeps data")?;
    // DONTUNMAP leaves the old range mapped and fresh.
    let d = r(p, [b + P, P, P, 5, 0]).map_err(|e| format!("dontunmap: {e:?}"))?;
    check(read_u64(p, d) == Ok(101), "dontunmap moves data")?;
    check(read_u64(p, b + P) == Ok(0), "dontunmap leaves a fresh page")?;
    check(
        r(p, [b + P, P, 2 * P, 5, 0]) == Err(Errno::EINVAL),
        "dontunmap resizing",
    )?;
    Ok(())
}

fn madvise_dontneed() -> TestResult {
    let mut p = scratch_process()?;
    let p = &mut *p;
    let a = mmap(p, 0, 4 * P, RW, ANON).map_err(|e| format!("{e:?}"))?;
    let s = mmap(p, 0, P, RW, map::SHARED | map::ANONYMOUS).map_err(|e| format!("{e:?}"))?;
    write_u64(p, a + P, 5).map_err(|e| format!("{e:?}"))?;
    write_u64(p, s, 6).map_err(|e| format!("{e:?}"))?;
    let before = free_frames();
    check(
        call(p, sys::madvise, [a, 4 * P, 4, 0, 0, 0]) == Ok(0),
        "DONTNEED",
    )?;
    check(free_frames() > before, "frames released")?;
    check(read_u64(p, a + P) == Ok(0), "private page zeroed")?;
    check(
        call(p, sys::madvise, [s, P, 4, 0, 0, 0]) == Ok(0),
        "DONTNEED shared",
    )?;
    check(read_u64(p, s) == Ok(6), "shared memory keeps its data")?;
    check(
        call(p, sys::madvise, [s, P, 8, 0, 0, 0]) == Err(Errno::EINVAL),
        "FREE on shared",
    )?;
    check(
        call(p, sys::madvise, [a, P, 9, 0, 0, 0]) == Err(Errno::EINVAL),
        "REMOVE on private",
    )?;
    check(
        call(p, sys::madvise, [s, P, 9, 0, 0, 0]) == Ok(0),
        "REMOVE on shared",
    )?;
    check(read_u64(p, s) == Ok(0), "REMOVE punched the page")?;
    check(
        call(p, sys::madvise, [a, P, 23, 0, 0, 0]) == Ok(0),
        "POPULATE_WRITE",
    )?;
    check(p.mm_mut().space.translate(a).is_some(), "populated")?;
    Ok(())
}

pub(super) fn tar_file(rootfs: Option<&TarFs>, path: &str) -> Result<&'static [u8], String> {
    let fs = rootfs.ok_or("no rootfs was given (--rootfs)")?;
    let id = fs
        .lookup(path, true)
        .map_err(|e| format!("{path}: {e:?}"))?;
    Ok(fs.node(id).data)
}

fn file_map(
    p: &mut Task,
    data: &'static [u8],
    len: u64,
    prot: u64,
    flags: u64,
    off: u64,
) -> Result<u64, Errno> {
    let file = MappableFile {
        source: Arc::new(StaticSource::new(data)),
        readable: true,
        writable: false,
    };
    let mut frame = TrapFrame::default();
    sys::mmap_with(
        &mut Ctx {
            task: p,
            frame: &mut frame,
        },
        0,
        len,
        prot,
        flags,
        off,
        Some(file),
    )
}

fn file_mapping(rootfs: Option<&TarFs>) -> TestResult {
    let data = tar_file(rootfs, "/bin/hello")?;
    let size = data.len() as u64;
    let mut p = scratch_process()?;
    let p = &mut *p;
    let pages = size.div_ceil(P);
    let a = file_map(p, data, (pages + 2) * P, PROT_READ as u64, map::PRIVATE, 0)
        .map_err(|e| format!("{e:?}"))?;
    let mut got = alloc::vec![0u8; size as usize];
    p.mm_mut()
        .read(a, &mut got)
        .map_err(|e| format!("read: {e:?}"))?;
    check(got == data, "mapped bytes differ from the file")?;
    // Fault in through a real fault: same bytes, from the frame this time.
    let m = p.mm_mut();
    let (mem, space) = (&mut m.mem, &mut m.space);
    mem.fault(space, a + P, Access::Read)
        .map_err(|e| format!("{e:?}"))?;
    p.mm_mut().read(a, &mut got).map_err(|e| format!("{e:?}"))?;
    check(got == data, "faulted-in bytes differ from the file")?;
    // The tail of the last page is zero; whole pages past the end are SIGBUS / EFAULT.
    let mut tail = alloc::vec![0xffu8; (pages * P - size) as usize];
    p.mm_mut()
        .read(a + size, &mut tail)
        .map_err(|e| format!("{e:?}"))?;
    check(
        tail.iter().all(|&b| b == 0),
        "past EOF in the last page is zero",
    )?;
    let beyond = a + pages * P;
    let m = p.mm_mut();
    let (mem, space) = (&mut m.mem, &mut m.space);
    check(
        mem.fault(space, beyond, Access::Read) == Err(FaultError::Bus),
        "SIGBUS past EOF",
    )?;
    check(read_u64(p, beyond) == Err(Errno::EFAULT), "EFAULT past EOF")?;
    // An offset maps from there; private pages may be written without touching the file.
    let b = file_map(p, data, P, (PROT_READ | PROT_WRITE) as u64, map::PRIVATE, P)
        .map_err(|e| format!("{e:?}"))?;
    check(
        read_u64(p, b)
            == Ok(u64::from_le_bytes(
                data[4096..4104].try_into().unwrap_or_default(),
            )),
        "offset",
    )?;
    write_u64(p, b, 0x1234).map_err(|e| format!("{e:?}"))?;
    check(read_u64(p, b) == Ok(0x1234), "private write")?;
    check(
        data[4096..4104] != 0x1234u64.to_le_bytes(),
        "the file changed",
    )?;
    // DONTNEED on a private file page brings the file's bytes back.
    call(p, sys::madvise, [b, P, 4, 0, 0, 0]).map_err(|e| format!("{e:?}"))?;
    check(
        read_u64(p, b)
            == Ok(u64::from_le_bytes(
                data[4096..4104].try_into().unwrap_or_default(),
            )),
        "refault from file",
    )?;
    // Shared: read-only is fine, writable is refused (file open read-only), and stays so.
    check(
        file_map(p, data, P, RW, map::SHARED, 0) == Err(Errno::EACCES),
        "shared writable",
    )?;
    let c = file_map(p, data, P, PROT_READ as u64, map::SHARED, 0).map_err(|e| format!("{e:?}"))?;
    check(
        call(p, sys::mprotect, [c, P, RW, 0, 0, 0]) == Err(Errno::EACCES),
        "shared mprotect W",
    )?;
    check(
        file_map(p, data, P, RW, map::SHARED_VALIDATE | 0x80_0000, 0) == Err(Errno::EOPNOTSUPP),
        "validate",
    )?;
    check(
        file_map(p, data, P, RW, map::PRIVATE | map::GROWSDOWN, 0) == Err(Errno::EINVAL),
        "growsdown file",
    )?;
    Ok(())
}

//! In-kernel self-tests (`astra.test` on the kernel command line).
//!
//! Each test prints `test NAME ... ok` or `test NAME ... FAILED: why`; the VM exits 0
//! only when all pass. They cover what host unit tests cannot: the real allocator and
//! page tables, timer interrupts, and ring-3 round trips through each system-call entry
//! on whichever platform the kernel booted on.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::arch::global_asm;

use crate::arch::{cpu, platform};
use crate::mm::paging::{flags, AddressSpace};
use crate::mm::{self, frame, uaccess, PAGE_SIZE};
use crate::task::{sched, Task};
use crate::{kprintln, time};

mod fs;
mod fs_write;
mod hostile;
mod pipe;
mod signals;
mod sys;

type TestResult = Result<(), String>;

fn check(cond: bool, what: &str) -> TestResult {
    if cond {
        Ok(())
    } else {
        Err(String::from(what))
    }
}

/// Runs every self-test; true when all passed.
pub fn run_all(rootfs: Option<&crate::fs::tar::TarFs>) -> bool {
    let tests: &[(&str, &dyn Fn() -> TestResult)] = &[
        ("heap_alloc_and_free", &heap_alloc_and_free),
        ("frame_alloc_and_reuse", &frame_alloc_and_reuse),
        ("paging_map_translate_unmap", &paging_map_translate_unmap),
        (
            "uaccess_rejects_kernel_and_unmapped",
            &uaccess_rejects_kernel_and_unmapped,
        ),
        ("timer_ticks_advance", &timer_ticks_advance),
        (
            "kernel_stacks_have_guard_pages",
            &crate::task::kstack::selftest,
        ),
        ("ring3_syscall_entry", &ring3_syscall_entry),
        ("ring3_int80_entry", &ring3_int80_entry),
        (
            "ring3_bad_pointer_gets_efault",
            &ring3_bad_pointer_gets_efault,
        ),
        (
            "ring3_fault_kills_only_the_process",
            &ring3_fault_kills_only_the_process,
        ),
        (
            "ring3_cannot_read_kernel_memory",
            &ring3_cannot_read_kernel_memory,
        ),
        (
            "ring3_cannot_write_kernel_pages",
            &ring3_cannot_write_kernel_pages,
        ),
        ("rootfs_lookup", &|| rootfs_lookup(rootfs)),
        ("fs_open_read_close", &|| fs::open_read_close(rootfs)),
        ("fs_large_read", &|| fs::large_read(rootfs)),
        ("fs_stat_family", &|| fs::stat_family(rootfs)),
        ("fs_open_errors", &|| fs::open_errors(rootfs)),
        ("fs_getdents", &|| fs::getdents(rootfs)),
        ("fs_cwd_and_links", &|| fs::cwd_and_links(rootfs)),
        ("fs_descriptors", &|| fs::descriptors(rootfs)),
        ("fs_devices_and_poll", &|| fs::devices_and_poll(rootfs)),
        ("fs_ring3_open_read", &|| fs::ring3_open_read(rootfs)),
        ("fs_write_files", &|| fs_write::files(rootfs)),
        ("fs_write_names", &|| fs_write::names(rootfs)),
        ("fs_write_attributes", &|| fs_write::attributes(rootfs)),
        ("fs_pipe_round_trip", &pipe::pipe_round_trip),
        ("fs_host_stdio_streams", &pipe::host_stdio_streams),
        (
            "fs_pipe_oom_in_copy_releases_the_pipe",
            &pipe::pipe_oom_in_copy_releases_the_pipe,
        ),
        (
            "ring3_fs_gs_base_via_arch_prctl",
            &sys::ring3_fs_gs_base_via_arch_prctl,
        ),
        (
            "ring3_fault_handler_on_altstack_and_sigreturn",
            &signals::ring3_fault_handler_on_altstack_and_sigreturn,
        ),
        ("ring3_signals_to_self", &signals::ring3_signals_to_self),
        (
            "ring3_low_rsp_fault_runs_the_onstack_handler",
            &hostile::ring3_low_rsp_fault_runs_the_onstack_handler,
        ),
        (
            "ring3_fatal_signal_cases",
            &signals::ring3_fatal_signal_cases,
        ),
        (
            "ring3_nanosleep_halts_and_clocks",
            &sys::ring3_nanosleep_halts_and_clocks,
        ),
        ("clocks_are_consistent", &sys::clocks_are_consistent),
        ("ring3_process_info_calls", &sys::ring3_process_info_calls),
    ];
    let mm_tests = crate::mm::selftest::tests(rootfs);
    let tests: Vec<(&str, &dyn Fn() -> TestResult)> = tests
        .iter()
        .copied()
        .chain(mm_tests.iter().map(|(name, test)| (*name, &**test)))
        .collect();
    kprintln!(
        "astra: running {} self-tests on {:?}",
        tests.len(),
        platform::current()
    );
    let mut failed = 0;
    for (name, test) in &tests {
        match test() {
            Ok(()) => kprintln!("test {} ... ok", name),
            Err(why) => {
                failed += 1;
                kprintln!("test {} ... FAILED: {}", name, why);
            }
        }
    }
    if failed == 0 {
        kprintln!("astra: all {} self-tests passed", tests.len());
    } else {
        kprintln!("astra: {} of {} self-tests FAILED", failed, tests.len());
    }
    failed == 0
}

fn heap_alloc_and_free() -> TestResult {
    let (used_before, _) = mm::heap::usage();
    {
        let v: Vec<u64> = (0..100_000).collect();
        check(v.iter().sum::<u64>() == 4_999_950_000, "vector contents")?;
        let mut map = BTreeMap::new();
        for i in 0..1000 {
            map.insert(i, format!("value {i}"));
        }
        check(
            map.get(&999).map(String::as_str) == Some("value 999"),
            "map contents",
        )?;
        let big = alloc::vec![0xa5u8; 4 << 20];
        check(big.iter().all(|&b| b == 0xa5), "4 MiB block contents")?;
        let boxed = Box::new([7u8; 4096]);
        check(boxed[4095] == 7, "boxed page")?;
    }
    let (used_after, _) = mm::heap::usage();
    check(
        used_after <= used_before,
        "memory was not returned to the heap",
    )
}

fn frame_alloc_and_reuse() -> TestResult {
    let a = frame::alloc_zeroed().ok_or("out of frames")?;
    let b = frame::alloc_zeroed().ok_or("out of frames")?;
    check(
        a != b && a % PAGE_SIZE == 0 && b % PAGE_SIZE == 0,
        "distinct aligned frames",
    )?;
    // SAFETY: `a` is ours and mapped through the direct map.
    let zero = unsafe {
        core::slice::from_raw_parts(mm::phys_to_virt(a) as *const u8, PAGE_SIZE as usize)
    };
    check(zero.iter().all(|&x| x == 0), "frame is zeroed")?;
    frame::free(b);
    let c = frame::alloc_zeroed().ok_or("out of frames")?;
    check(c == b, "a freed frame is reused first")?;
    frame::free(a);
    frame::free(c);
    Ok(())
}

fn paging_map_translate_unmap() -> TestResult {
    let mut space = AddressSpace::new_user(mm::kernel_space()).map_err(|e| format!("{e:?}"))?;
    let va = 0x1234_5000;
    let pa = frame::alloc_zeroed().ok_or("out of frames")?;
    let f = flags::USER | flags::WRITABLE | flags::NO_EXECUTE;
    space.map(va, pa, f).map_err(|e| format!("{e:?}"))?;
    check(
        space.translate(va + 0x10).map(|t| t.0) == Some(pa + 0x10),
        "translate",
    )?;
    check(space.map(va, pa, f).is_err(), "double map refused")?;
    check(
        uaccess::copy_to_user(&space, va + 4090, b"0123456789").is_err(),
        "write into the unmapped next page refused",
    )?;
    check(
        uaccess::copy_to_user(&space, va + 8, b"astra").is_ok(),
        "copy to user",
    )?;
    let mut back = [0u8; 5];
    uaccess::copy_from_user(&space, va + 8, &mut back).map_err(|e| format!("{e:?}"))?;
    check(&back == b"astra", "round trip through user memory")?;
    check(space.unmap(va) == Some(pa), "unmap returns the frame")?;
    check(
        space.translate(va).is_none(),
        "unmapped page does not translate",
    )?;
    frame::free(pa);
    space.free_user_half();
    space.free_root();
    Ok(())
}

fn uaccess_rejects_kernel_and_unmapped() -> TestResult {
    let mut space = AddressSpace::new_user(mm::kernel_space()).map_err(|e| format!("{e:?}"))?;
    let mut buf = [0u8; 8];
    let kernel_va = &buf as *const _ as u64;
    check(
        uaccess::copy_from_user(&space, kernel_va, &mut buf).is_err(),
        "kernel address refused",
    )?;
    check(
        uaccess::copy_from_user(&space, 0x1000, &mut buf).is_err(),
        "unmapped address refused",
    )?;
    check(
        uaccess::copy_from_user(&space, u64::MAX - 3, &mut buf).is_err(),
        "wrapping range refused",
    )?;
    let pa = frame::alloc_zeroed().ok_or("out of frames")?;
    space
        .map(0x2000, pa, flags::USER | flags::NO_EXECUTE)
        .map_err(|e| format!("{e:?}"))?;
    check(
        uaccess::copy_to_user(&space, 0x2000, &buf).is_err(),
        "read-only page refused for writes",
    )?;
    check(
        uaccess::copy_from_user(&space, 0x2ffc, &mut buf).is_err(),
        "range running off the page refused",
    )?;
    space.free_user_half();
    space.free_root();
    Ok(())
}

fn timer_ticks_advance() -> TestResult {
    // Ticks must keep coming while the CPU idles: 20 within 2 s (TSC-bounded, so a dead
    // timer fails instead of hanging).
    let start_ticks = time::ticks();
    let start_tsc = cpu::rdtsc();
    let limit_cycles = time::tsc_khz().unwrap_or(3_000_000) * 2000;
    while time::ticks() < start_ticks + 20 {
        if cpu::rdtsc().wrapping_sub(start_tsc) > limit_cycles {
            return Err(format!("only {} ticks in 2 s", time::ticks() - start_ticks));
        }
        platform::idle();
    }
    if time::tsc_khz().is_none() {
        return Ok(());
    }
    // And never faster than 1000 Hz. KVM's PIT replays ticks the kernel missed with
    // interrupts off, in bursts, so only the total is meaningful: it can catch up with
    // the periods elapsed since boot but not overtake them.
    let ticks = time::ticks();
    let elapsed_ms = time::monotonic_ns() / 1_000_000;
    check(
        ticks <= elapsed_ms + 2,
        &format!("{ticks} ticks in the {elapsed_ms} ms since boot"),
    )
}

// User-mode test programs, copied to a user page and run in ring 3. Position
// independent; each ends with exit_group(status).
global_asm!(
    ".section .rodata.selftest, \"a\"",
    // getpid through SYSCALL, checking callee-saved registers survive: exit(pid) or 250.
    ".global selftest_blob_syscall",
    ".global selftest_blob_syscall_end",
    "selftest_blob_syscall:",
    "mov rbx, 0x1111",
    "mov rbp, 0x2222",
    "mov r12, 0x3333",
    "mov r15, 0x4444",
    "mov eax, 39",
    "syscall",
    "cmp rbx, 0x1111",
    "jne 1f",
    "cmp rbp, 0x2222",
    "jne 1f",
    "cmp r12, 0x3333",
    "jne 1f",
    "cmp r15, 0x4444",
    "jne 1f",
    "mov edi, eax",
    "mov eax, 231",
    "syscall",
    "1: mov edi, 250",
    "mov eax, 231",
    "syscall",
    "selftest_blob_syscall_end:",
    // getpid through int 0x80: exit(pid) or 250, likewise.
    ".global selftest_blob_int80",
    ".global selftest_blob_int80_end",
    "selftest_blob_int80:",
    "mov rbx, 0x1111",
    "mov rcx, 0x5555",
    "mov r11, 0x6666",
    "mov r15, 0x4444",
    "mov eax, 39",
    "int 0x80",
    "cmp rbx, 0x1111",
    "jne 1f",
    "cmp rcx, 0x5555",
    "jne 1f",
    "cmp r11, 0x6666",
    "jne 1f",
    "cmp r15, 0x4444",
    "jne 1f",
    "mov edi, eax",
    "mov eax, 231",
    "int 0x80",
    "1: mov edi, 250",
    "mov eax, 231",
    "int 0x80",
    "selftest_blob_int80_end:",
    // write(1, <kernel address>, 8): exit with the low byte of the result.
    ".global selftest_blob_efault",
    ".global selftest_blob_efault_end",
    "selftest_blob_efault:",
    "mov edi, 1",
    "mov rsi, 0xffffffff80200000",
    "mov edx, 8",
    "mov eax, 1",
    "syscall",
    "mov edi, eax",
    "and edi, 0xff",
    "mov eax, 231",
    "syscall",
    "selftest_blob_efault_end:",
    // A store to address 0.
    ".global selftest_blob_segv",
    ".global selftest_blob_segv_end",
    "selftest_blob_segv:",
    "xor eax, eax",
    "mov qword ptr [rax], 1",
    "mov edi, 0",
    "mov eax, 231",
    "syscall",
    "selftest_blob_segv_end:",
    // Loads from the kernel image and from the direct map: both must fault.
    ".global selftest_blob_kread",
    ".global selftest_blob_kread_end",
    "selftest_blob_kread:",
    "mov rax, [rdi]",
    "mov edi, 0",
    "mov eax, 231",
    "syscall",
    "selftest_blob_kread_end:",
    // Reads the byte at rdi and writes it back: exits 0 only if both are allowed.
    ".global selftest_blob_kwrite",
    ".global selftest_blob_kwrite_end",
    "selftest_blob_kwrite:",
    "mov al, [rdi]",
    "mov [rdi], al",
    "mov edi, 0",
    "mov eax, 231",
    "syscall",
    "selftest_blob_kwrite_end:",
);

extern "C" {
    static selftest_blob_syscall: u8;
    static selftest_blob_syscall_end: u8;
    static selftest_blob_int80: u8;
    static selftest_blob_int80_end: u8;
    static selftest_blob_efault: u8;
    static selftest_blob_efault_end: u8;
    static selftest_blob_segv: u8;
    static selftest_blob_segv_end: u8;
    static selftest_blob_kread: u8;
    static selftest_blob_kread_end: u8;
    static selftest_blob_kwrite: u8;
    static selftest_blob_kwrite_end: u8;
}

fn blob(start: &'static u8, end: &'static u8) -> &'static [u8] {
    let (s, e) = (start as *const u8, end as *const u8);
    // SAFETY: both labels delimit one contiguous blob in .rodata.
    unsafe { core::slice::from_raw_parts(s, e as usize - s as usize) }
}

/// Where user blobs run.
pub const BLOB_CODE_VA: u64 = 0x40_0000;
/// Their stack (one page) and, for the benchmark, the results page.
pub const BLOB_DATA_VA: u64 = 0x60_0000;

/// Runs `code` in ring 3 and returns the dead process (status, memory still mapped).
pub fn run_blob(code: &[u8], bench_skip_ud2: bool) -> Result<sched::Finished, String> {
    run_blob_with(code, bench_skip_ud2, 0)
}

/// Like [`run_blob`], with `rdi` preset to `arg`.
fn run_blob_with(code: &[u8], bench_skip_ud2: bool, arg: u64) -> Result<sched::Finished, String> {
    let mut space = AddressSpace::new_user(mm::kernel_space()).map_err(|e| format!("{e:?}"))?;
    let code_pa = frame::alloc_zeroed().ok_or("out of frames")?;
    space
        .map(BLOB_CODE_VA, code_pa, flags::USER)
        .map_err(|e| format!("{e:?}"))?;
    // SAFETY: the frame is ours; the blob is smaller than a page.
    unsafe {
        core::ptr::copy_nonoverlapping(
            code.as_ptr(),
            mm::phys_to_virt(code_pa) as *mut u8,
            code.len().min(4096),
        )
    };
    // Two pages of data and stack (the stack starts at the top of the second), and a
    // third above the stack for the signal tests' alternate stack.
    for i in 0..3 {
        let pa = frame::alloc_zeroed().ok_or("out of frames")?;
        space
            .map(
                BLOB_DATA_VA + i * PAGE_SIZE,
                pa,
                flags::USER | flags::WRITABLE | flags::NO_EXECUTE,
            )
            .map_err(|e| format!("{e:?}"))?;
    }
    let mut proc = Task::new_with_arg(
        "selftest",
        space,
        BLOB_CODE_VA,
        BLOB_DATA_VA + 2 * PAGE_SIZE,
        arg,
    )
    .map_err(|e| format!("{e:?}"))?;
    proc.bench_skip_ud2 = bench_skip_ud2;
    Ok(sched::run(proc))
}

fn expect_status(code: &[u8], want: impl Fn(u32) -> u8, what: &str) -> TestResult {
    let proc = run_blob(code, false)?;
    let want = want(proc.pid);
    match proc.exit_status() {
        Some(s) if s == want => Ok(()),
        other => Err(format!("{what}: exit status {other:?}, expected {want}")),
    }
}

fn ring3_syscall_entry() -> TestResult {
    // SAFETY: linker-provided labels of the blobs above.
    let code = blob(unsafe { &selftest_blob_syscall }, unsafe {
        &selftest_blob_syscall_end
    });
    expect_status(code, |pid| pid as u8, "syscall getpid")
}

fn ring3_int80_entry() -> TestResult {
    // SAFETY: as above.
    let code = blob(unsafe { &selftest_blob_int80 }, unsafe {
        &selftest_blob_int80_end
    });
    expect_status(code, |pid| pid as u8, "int 0x80 getpid")
}

fn ring3_bad_pointer_gets_efault() -> TestResult {
    // SAFETY: as above.
    let code = blob(unsafe { &selftest_blob_efault }, unsafe {
        &selftest_blob_efault_end
    });
    expect_status(code, |_| (-14i32) as u8, "write from a kernel address")
}

fn ring3_fault_kills_only_the_process() -> TestResult {
    // SAFETY: as above.
    let code = blob(unsafe { &selftest_blob_segv }, unsafe {
        &selftest_blob_segv_end
    });
    expect_status(code, |_| 128 + crate::trap::signal::SIGSEGV, "null store")
}

fn ring3_cannot_read_kernel_memory() -> TestResult {
    // SAFETY: as above.
    let code = blob(unsafe { &selftest_blob_kread }, unsafe {
        &selftest_blob_kread_end
    });
    let targets = [
        ("kernel image", &raw const selftest_blob_kread as u64),
        (
            "direct map",
            mm::phys_to_virt(hypercall_abi::layout::KERNEL_PHYS_BASE),
        ),
    ];
    for (what, va) in targets {
        let proc = run_blob_with(code, false, va)?;
        if proc.exit_status() != Some(128 + crate::trap::signal::SIGSEGV) {
            return Err(format!(
                "ring 3 read the {what} at {va:#x} (status {:?})",
                proc.exit_status()
            ));
        }
    }
    Ok(())
}

/// Every kernel page a trap needs (the entry text, data and trampoline), read and written
/// from ring 3, plus a kernel heap page (where kernel stacks live) and the direct map.
/// None is reachable on hardware KVM (kernel pages are supervisor-only) nor on a PVM host
/// that switches page tables itself (user-mode tables map no kernel page). Where the
/// entry code switches them (a PVM host without those features), user-mode tables map
/// the entry pages: the text and data may be readable but never writable, the trampoline
/// is the one writable page and holds only the running thread's own registers.
fn ring3_cannot_write_kernel_pages() -> TestResult {
    // SAFETY: linker-provided labels of the blobs above.
    let (read, write) = unsafe {
        (
            blob(&selftest_blob_kread, &selftest_blob_kread_end),
            blob(&selftest_blob_kwrite, &selftest_blob_kwrite_end),
        )
    };
    let mapped = platform::needs_kernel_isolation() && !platform::host_switches_tables();
    let entry_ranges = crate::arch::trap::entry_ranges();
    let heap_probe = alloc::boxed::Box::new([0u8; 64]);
    let mut pages = alloc::vec::Vec::new();
    for r in entry_ranges {
        let mut va = r.start & !0xfff;
        while va < r.end {
            // (page, readable, writable) as the design allows them from ring 3.
            pages.push((va, mapped, mapped && r.writable));
            va += 0x1000;
        }
    }
    // Whatever else a program's user-mode tables map of the kernel: nothing may be there.
    let mut space = AddressSpace::new_user(mm::kernel_space()).map_err(|e| format!("{e:?}"))?;
    let isolated = if platform::needs_kernel_isolation() {
        crate::task::isolate_kernel(&mut space).map_err(|e| format!("{e:?}"))
    } else {
        Ok(())
    };
    let mut user_mode_pages = alloc::vec::Vec::new();
    space.for_each_user_mode_kernel_page(|va| user_mode_pages.push(va));
    space.free_root();
    isolated?;
    for &va in &user_mode_pages {
        let in_entry = entry_ranges
            .iter()
            .any(|r| va >= r.start & !0xfff && va < r.end);
        check(
            mapped && in_entry,
            &format!("user-mode tables map kernel page {va:#x}"),
        )?;
    }
    pages.push((heap_probe.as_ptr() as u64, false, false));
    pages.push((
        mm::phys_to_virt(hypercall_abi::layout::KERNEL_PHYS_BASE),
        false,
        false,
    ));
    check(
        pages.len() >= 5,
        &format!("only {} pages to probe", pages.len()),
    )?;
    let segv = Some(128 + crate::trap::signal::SIGSEGV);
    let (mut readable_seen, mut writable_seen) = (0, 0);
    for &(va, may_read, may_write) in &pages {
        for (code, allowed, what) in [(read, may_read, "read"), (write, may_write, "write")] {
            let status = run_blob_with(code, false, va)?.exit_status();
            match status {
                Some(0) if allowed => {
                    if what == "read" {
                        readable_seen += 1;
                    } else {
                        writable_seen += 1;
                    }
                }
                s if s == segv => {}
                _ => {
                    let why = format!("status {status:?} (allowed: {allowed})");
                    return Err(format!("ring 3 {what} of kernel page {va:#x}: {why}"));
                }
            }
        }
    }
    kprintln!(
        "  user-mode tables map {} kernel pages; {} probed from ring 3: {readable_seen} readable, {writable_seen} writable",
        user_mode_pages.len(),
        pages.len()
    );
    if mapped {
        check(writable_seen <= 1, "more than the trampoline is writable")
    } else {
        check(
            readable_seen + writable_seen == 0,
            "a kernel page is reachable from ring 3",
        )
    }
}

fn rootfs_lookup(rootfs: Option<&crate::fs::tar::TarFs>) -> TestResult {
    let fs = rootfs.ok_or("no rootfs was given (--rootfs)")?;
    fs.lookup("/bin/hello", true)
        .map_err(|e| format!("/bin/hello: {e:?}"))?;
    check(
        fs.lookup("/no/such/file", true).is_err(),
        "missing file found",
    )
}

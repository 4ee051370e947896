//! Ring-3 programs for the memory self-tests: each runs with a code area and a 64-page
//! grows-down stack, makes real faults and system calls, and is judged by how it ends.

use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use core::arch::global_asm;

use super::{check, free_frames, tar_file, TestResult};
use crate::fs::tar::TarFs;
use crate::mm::paging::AddressSpace;
use crate::mm::source::StaticSource;
use crate::mm::user::{MapRequest, Placement, UserMemory};
use crate::mm::vma::{Backing, VmaFlags, PROT_EXEC, PROT_NONE, PROT_READ, PROT_WRITE};
use crate::mm::Mm;
use crate::mm::{kernel_space, PAGE_SIZE};
use crate::task::{sched, Task};

const P: u64 = PAGE_SIZE;

// Ring-3 programs. Position independent; each ends with exit_group(status).
global_asm!(
    ".section .rodata.selftest_mm, \"a\"",
    // mmap 1 GiB (NORESERVE), touch 3 pages, check a fresh page reads 0, munmap, touch
    // again: SIGSEGV expected; exit 1-4 names the step that went wrong.
    ".global mm_blob_anon",
    ".global mm_blob_anon_end",
    "mm_blob_anon:",
    "xor edi, edi",
    "mov esi, 0x40000000",
    "mov edx, 3",
    "mov r10d, 0x4022",
    "mov r8, -1",
    "xor r9d, r9d",
    "mov eax, 9",
    "syscall",
    "cmp rax, -4096",
    "ja 1f",
    "mov rbx, rax",
    "mov qword ptr [rbx], 0x11",
    "mov rcx, 0x20000000",
    "mov qword ptr [rbx + rcx], 0x22",
    "mov rcx, 0x3ffffff8",
    "mov qword ptr [rbx + rcx], 0x33",
    "mov rcx, 0x10000000",
    "mov rax, [rbx + rcx]",
    "test rax, rax",
    "jnz 2f",
    "mov rax, [rbx]",
    "cmp rax, 0x11",
    "jne 2f",
    "mov rcx, 0x3ffffff8",
    "mov rax, [rbx + rcx]",
    "cmp rax, 0x33",
    "jne 2f",
    "mov rdi, rbx",
    "mov esi, 0x40000000",
    "mov eax, 11",
    "syscall",
    "test rax, rax",
    "jnz 3f",
    "mov qword ptr [rbx], 1",
    "mov edi, 4",
    "jmp 9f",
    "1: mov edi, 1",
    "jmp 9f",
    "2: mov edi, 2",
    "jmp 9f",
    "3: mov edi, 3",
    "9: mov eax, 231",
    "syscall",
    "mm_blob_anon_end:",
    // mmap 2 pages, make the second read-only, read it, write the first, write the
    // second: SIGSEGV expected.
    ".global mm_blob_mprotect",
    ".global mm_blob_mprotect_end",
    "mm_blob_mprotect:",
    "xor edi, edi",
    "mov esi, 8192",
    "mov edx, 3",
    "mov r10d, 0x22",
    "mov r8, -1",
    "xor r9d, r9d",
    "mov eax, 9",
    "syscall",
    "cmp rax, -4096",
    "ja 1f",
    "mov rbx, rax",
    "mov qword ptr [rbx + 4096], 7",
    "lea rdi, [rbx + 4096]",
    "mov esi, 4096",
    "mov edx, 1",
    "mov eax, 10",
    "syscall",
    "test rax, rax",
    "jnz 3f",
    "mov rax, [rbx + 4096]",
    "cmp rax, 7",
    "jne 2f",
    "mov qword ptr [rbx], 8",
    "mov qword ptr [rbx + 4096], 9",
    "mov edi, 4",
    "jmp 9f",
    "1: mov edi, 1",
    "jmp 9f",
    "2: mov edi, 2",
    "jmp 9f",
    "3: mov edi, 3",
    "9: mov eax, 231",
    "syscall",
    "mm_blob_mprotect_end:",
    // Push the stack down by rdi bytes, a page at a time, touching each: exit 0.
    ".global mm_blob_stack",
    ".global mm_blob_stack_end",
    "mm_blob_stack:",
    "1: sub rsp, 4096",
    "mov qword ptr [rsp], 1",
    "sub rdi, 4096",
    "ja 1b",
    "xor edi, edi",
    "mov eax, 231",
    "syscall",
    "mm_blob_stack_end:",
    // musl's pthread_getattr_np for the main thread, from p = rdi: exit with the stack
    // size in pages once mremap says EFAULT; 255 for another errno, 254 for no end.
    ".global mm_blob_probe",
    ".global mm_blob_probe_end",
    "mm_blob_probe:",
    "mov r12, rdi",
    "mov r13, 4096",
    "1: mov rdi, r12",
    "sub rdi, r13",
    "sub rdi, 4096",
    "mov esi, 4096",
    "mov edx, 8192",
    "xor r10d, r10d",
    "mov eax, 25",
    "syscall",
    "cmp rax, -12",
    "jne 2f",
    "add r13, 4096",
    "cmp r13, 0x1000000",
    "jb 1b",
    "mov edi, 254",
    "jmp 9f",
    "2: cmp rax, -14",
    "jne 3f",
    "mov rdi, r13",
    "shr rdi, 12",
    "jmp 9f",
    "3: mov edi, 255",
    "9: mov eax, 231",
    "syscall",
    "mm_blob_probe_end:",
    // brk: grow by 100000, touch both ends, shrink back, touch again: SIGSEGV expected.
    ".global mm_blob_brk",
    ".global mm_blob_brk_end",
    "mm_blob_brk:",
    "xor edi, edi",
    "mov eax, 12",
    "syscall",
    "mov rbx, rax",
    "lea rdi, [rbx + 100000]",
    "mov eax, 12",
    "syscall",
    "lea rcx, [rbx + 100000]",
    "cmp rax, rcx",
    "jne 1f",
    "mov byte ptr [rbx], 1",
    "mov byte ptr [rbx + 99999], 2",
    "mov rdi, rbx",
    "mov eax, 12",
    "syscall",
    "cmp rax, rbx",
    "jne 3f",
    "mov byte ptr [rbx + 99999], 3",
    "mov edi, 4",
    "jmp 9f",
    "1: mov edi, 1",
    "jmp 9f",
    "3: mov edi, 3",
    "9: mov eax, 231",
    "syscall",
    "mm_blob_brk_end:",
    // A load from rdi: exit 0.
    ".global mm_blob_load",
    ".global mm_blob_load_end",
    "mm_blob_load:",
    "mov rax, [rdi]",
    "xor edi, edi",
    "mov eax, 231",
    "syscall",
    "mm_blob_load_end:",
    // mmap 64 GiB and touch it all: the process runs out of memory first.
    ".global mm_blob_oom",
    ".global mm_blob_oom_end",
    "mm_blob_oom:",
    "xor edi, edi",
    "mov rsi, 0x1000000000",
    "mov edx, 3",
    "mov r10d, 0x4022",
    "mov r8, -1",
    "xor r9d, r9d",
    "mov eax, 9",
    "syscall",
    "cmp rax, -4096",
    "ja 1f",
    "mov rcx, 0x1000000000",
    "2: mov byte ptr [rax], 1",
    "add rax, 4096",
    "sub rcx, 4096",
    "ja 2b",
    "mov edi, 2",
    "jmp 9f",
    "1: mov edi, 1",
    "9: mov eax, 231",
    "syscall",
    "mm_blob_oom_end:",
    // mmap 8 MiB, write each page's offset into it, read all back: exit 0; 1 if mmap
    // failed, 2 if a page reads back wrong. Leaves the memory mapped.
    ".global mm_blob_touch8",
    ".global mm_blob_touch8_end",
    "mm_blob_touch8:",
    "xor edi, edi",
    "mov esi, 0x800000",
    "mov edx, 3",
    "mov r10d, 0x22",
    "mov r8, -1",
    "xor r9d, r9d",
    "mov eax, 9",
    "syscall",
    "cmp rax, -4096",
    "ja 1f",
    "mov rbx, rax",
    "xor ecx, ecx",
    "3: mov qword ptr [rbx + rcx], rcx",
    "add rcx, 4096",
    "cmp rcx, 0x800000",
    "jb 3b",
    "xor ecx, ecx",
    "4: cmp qword ptr [rbx + rcx], rcx",
    "jne 2f",
    "add rcx, 4096",
    "cmp rcx, 0x800000",
    "jb 4b",
    "xor edi, edi",
    "jmp 9f",
    "1: mov edi, 1",
    "jmp 9f",
    "2: mov edi, 2",
    "9: mov eax, 231",
    "syscall",
    "mm_blob_touch8_end:",
);

extern "C" {
    static mm_blob_anon: u8;
    static mm_blob_anon_end: u8;
    static mm_blob_mprotect: u8;
    static mm_blob_mprotect_end: u8;
    static mm_blob_stack: u8;
    static mm_blob_stack_end: u8;
    static mm_blob_probe: u8;
    static mm_blob_probe_end: u8;
    static mm_blob_brk: u8;
    static mm_blob_brk_end: u8;
    static mm_blob_load: u8;
    static mm_blob_load_end: u8;
    static mm_blob_oom: u8;
    static mm_blob_oom_end: u8;
    static mm_blob_touch8: u8;
    static mm_blob_touch8_end: u8;
}

pub(super) fn blob(start: *const u8, end: *const u8) -> &'static [u8] {
    // SAFETY: both labels delimit one contiguous blob in .rodata.
    unsafe { core::slice::from_raw_parts(start, end as usize - start as usize) }
}

const CODE_VA: u64 = 0x40_0000;
const STACK_TOP: u64 = 0x7fff_0000_0000;
const STACK_PAGES: u64 = 64;

/// Runs `code` in ring 3 with a code area, a 64-page grows-down stack below
/// [`STACK_TOP`], and whatever `setup` adds (it returns `rdi`); returns the dead process.
fn run_user(
    code: &[u8],
    setup: impl FnOnce(&mut AddressSpace, &mut UserMemory) -> Result<u64, String>,
) -> Result<sched::Finished, String> {
    let (mm, arg) = prepare_user(code, |mm| setup(&mut mm.space, &mut mm.mem))?;
    run_prepared(mm, arg)
}

/// Runs a program that [`prepare_user`] set up in `mm` (or in the address space it was
/// forked from) with `rdi` = `arg`; returns the dead process.
pub(super) fn run_prepared(mm: Mm, arg: u64) -> Result<sched::Finished, String> {
    let proc =
        Task::new_with_mm("mmtest", mm, CODE_VA, STACK_TOP, arg).map_err(|e| format!("{e:?}"))?;
    Ok(sched::run(proc))
}

/// An address space holding `code` in a code area, a 64-page grows-down stack below
/// [`STACK_TOP`], and whatever `setup` adds; with the `rdi` that `setup` returns.
pub(super) fn prepare_user(
    code: &[u8],
    setup: impl FnOnce(&mut Mm) -> Result<u64, String>,
) -> Result<(Mm, u64), String> {
    let space = AddressSpace::new_user(kernel_space()).map_err(|e| format!("{e:?}"))?;
    let mut mm = crate::task::new_mm(space, UserMemory::new()).map_err(|e| format!("{e:?}"))?;
    let arg = (|| {
        let Mm { space, mem } = &mut mm;
        let area = |placement, len, prot, growsdown| MapRequest {
            placement,
            len,
            prot,
            flags: VmaFlags {
                growsdown,
                ..VmaFlags::default()
            },
            backing: Backing::Anonymous,
        };
        mem.map(
            space,
            area(Placement::Fixed(CODE_VA), P, PROT_READ | PROT_EXEC, false),
        )
        .map_err(|e| format!("{e:?}"))?;
        mem.write_as_kernel(space, CODE_VA, code)
            .map_err(|e| format!("{e:?}"))?;
        let stack = Placement::Fixed(STACK_TOP - STACK_PAGES * P);
        mem.map(
            space,
            area(stack, STACK_PAGES * P, PROT_READ | PROT_WRITE, true),
        )
        .map_err(|e| format!("{e:?}"))?;
        setup(&mut mm)
    })()?;
    Ok((mm, arg))
}

fn expect(code: &[u8], arg: u64, want: u8, what: &str) -> TestResult {
    let proc = run_user(code, |_, _| Ok(arg))?;
    match proc.exit_status() {
        Some(s) if s == want => Ok(()),
        other => Err(format!("{what}: exit status {other:?}, expected {want}")),
    }
}

const SEGV: u8 = 128 + crate::trap::signal::SIGSEGV;

pub(super) fn anonymous() -> TestResult {
    // SAFETY: linker-provided labels of the blobs above (likewise below).
    let code = blob(unsafe { &mm_blob_anon }, unsafe { &mm_blob_anon_end });
    expect(code, 0, SEGV, "1 GiB mmap, touch, munmap, touch")
}

pub(super) fn mprotect() -> TestResult {
    // SAFETY: as above.
    let code = blob(unsafe { &mm_blob_mprotect }, unsafe {
        &mm_blob_mprotect_end
    });
    expect(code, 0, SEGV, "write to a page made read-only")
}

pub(super) fn stack() -> TestResult {
    // SAFETY: as above.
    let code = blob(unsafe { &mm_blob_stack }, unsafe { &mm_blob_stack_end });
    expect(code, 1 << 20, 0, "1 MiB of stack")?;
    expect(code, 8 << 20, 0, "8 MiB of stack")?;
    expect(code, (8 << 20) + P, SEGV, "past the 8 MiB stack limit")
}

pub(super) fn probe() -> TestResult {
    // SAFETY: as above.
    let code = blob(unsafe { &mm_blob_probe }, unsafe { &mm_blob_probe_end });
    // From the top, the probe finds the whole stack area.
    expect(
        code,
        STACK_TOP,
        STACK_PAGES as u8,
        "probe from the stack top",
    )?;
    expect(
        code,
        STACK_TOP - 10 * P,
        (STACK_PAGES - 10) as u8,
        "probe from inside",
    )
}

pub(super) fn brk() -> TestResult {
    // SAFETY: as above.
    let code = blob(unsafe { &mm_blob_brk }, unsafe { &mm_blob_brk_end });
    let proc = run_user(code, |_, mem| {
        mem.init_brk(0x1000_0000);
        Ok(0)
    })?;
    check(
        proc.exit_status() == Some(SEGV),
        &format!("brk: status {:?}", proc.exit_status()),
    )
}

pub(super) fn prot_none() -> TestResult {
    // SAFETY: as above.
    let code = blob(unsafe { &mm_blob_load }, unsafe { &mm_blob_load_end });
    let run = |prot: u32| {
        run_user(code, |space, mem| {
            let req = MapRequest {
                placement: Placement::Fixed(0x2000_0000),
                len: P,
                prot: PROT_READ | PROT_WRITE,
                flags: VmaFlags::default(),
                backing: Backing::Anonymous,
            };
            mem.map(space, req).map_err(|e| format!("{e:?}"))?;
            // Touched first, so the page is present when it becomes inaccessible.
            mem.write(space, 0x2000_0000, &[1])
                .map_err(|e| format!("{e:?}"))?;
            mem.protect(space, 0x2000_0000, 0x2000_0000 + P, PROT_NONE, false)
                .map_err(|e| format!("{e:?}"))?;
            mem.protect(space, 0x2000_0000, 0x2000_0000 + P, prot, false)
                .map_err(|e| format!("{e:?}"))?;
            Ok(0x2000_0000)
        })
    };
    let none = run(PROT_NONE)?;
    check(
        none.exit_status() == Some(SEGV),
        &format!("PROT_NONE load: status {:?}", none.exit_status()),
    )?;
    let back = run(PROT_READ)?;
    check(
        back.exit_status() == Some(0),
        &format!("PROT_READ again: status {:?}", back.exit_status()),
    )
}

pub(super) fn sigbus(rootfs: Option<&TarFs>) -> TestResult {
    let data = tar_file(rootfs, "/etc/motd")?;
    // SAFETY: as above.
    let code = blob(unsafe { &mm_blob_load }, unsafe { &mm_blob_load_end });
    let run = |page: u64| {
        run_user(code, |space, mem| {
            let req = MapRequest {
                placement: Placement::Fixed(0x2000_0000),
                len: 2 * P,
                prot: PROT_READ,
                flags: VmaFlags::default(),
                backing: Backing::File {
                    source: Arc::new(StaticSource::new(data)),
                    offset: 0,
                },
            };
            mem.map(space, req).map_err(|e| format!("{e:?}"))?;
            Ok(0x2000_0000 + page * P + 8)
        })
    };
    let inside = run(0)?;
    check(inside.exit_status() == Some(0), "load from the file page")?;
    let past = run(1)?;
    let want = 128 + crate::trap::signal::SIGBUS;
    check(
        past.exit_status() == Some(want),
        &format!("past EOF: status {:?}", past.exit_status()),
    )
}

pub(super) fn oom() -> TestResult {
    // SAFETY: as above.
    let code = blob(unsafe { &mm_blob_oom }, unsafe { &mm_blob_oom_end });
    let before = free_frames();
    let proc = run_user(code, |_, _| Ok(0))?;
    let status = proc.exit_status();
    drop(proc);
    check(
        status == Some(128 + crate::trap::signal::SIGKILL),
        &format!("status {status:?}, expected 137"),
    )?;
    let after = free_frames();
    check(
        after + 16 >= before,
        &format!("{} frames lost", before.saturating_sub(after)),
    )
}

pub(super) fn touch_8mib() -> TestResult {
    // SAFETY: as above.
    let code = blob(unsafe { &mm_blob_touch8 }, unsafe { &mm_blob_touch8_end });
    let before = free_frames();
    let proc = run_user(code, |_, _| Ok(0))?;
    check(
        proc.exit_status() == Some(0),
        &format!("status {:?}", proc.exit_status()),
    )?;
    // The program's 8 MiB area is four 2 MiB pages.
    let area = proc
        .mm
        .lock()
        .mem
        .vmas()
        .iter()
        .find(|v| v.len() == 8 << 20)
        .map(|v| v.start)
        .ok_or("no 8 MiB area")?;
    let huge = (0..4).all(|i| {
        proc.mm
            .lock()
            .space
            .translate(area + (i << 21))
            .is_some_and(|(_, f)| f & crate::mm::paging::flags::HUGE != 0)
    });
    check(huge, &format!("8 MiB at {area:#x} not in 2 MiB pages"))?;
    drop(proc);
    let after = free_frames();
    check(
        after == before,
        &format!("{} frames lost", before.saturating_sub(after)),
    )
}

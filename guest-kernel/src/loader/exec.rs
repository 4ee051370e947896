//! Loading a program into a fresh address space: ELF segments, the user stack and the
//! Linux start-up block (argc, argv, envp, auxv).

use alloc::vec::Vec;

use super::elf::{ElfError, ElfImage};
use super::stack::{self, StackError};
use crate::mm::paging::{flags, AddressSpace, MapError};
use crate::mm::{self, frame, page_align_down, page_align_up, uaccess, PAGE_SIZE};

/// Top of the user stack (exclusive).
pub const USER_STACK_TOP: u64 = 0x7fff_ffff_f000;
/// Stack pages mapped up front. The page below them stays unmapped as a guard.
pub const USER_STACK_SIZE: u64 = 256 * 1024;
/// Where ET_DYN (static-pie) programs are placed.
pub const DYN_BASE: u64 = 0x5555_5555_0000;
/// Limit on argv + envp strings and pointers, like Linux's default (stack limit / 4).
pub const ARG_MAX: usize = 128 * 1024;

/// Why a program could not be loaded.
#[derive(Debug)]
pub enum ExecError {
    /// Not a loadable ELF executable.
    Elf(ElfError),
    /// Out of memory.
    NoMemory,
    /// Arguments and environment do not fit.
    Stack(StackError),
    /// Segments that cannot be mapped as described.
    BadLayout,
}

impl core::fmt::Display for ExecError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ExecError::Elf(e) => write!(f, "{e}"),
            ExecError::NoMemory => f.write_str("out of memory"),
            ExecError::Stack(e) => write!(f, "arguments: {e}"),
            ExecError::BadLayout => f.write_str("segments cannot be mapped as described"),
        }
    }
}

impl ExecError {
    /// The errno execve would return.
    #[allow(dead_code)] // execve arrives with processes (issue 3+); main reports the text.
    pub fn errno(&self) -> i32 {
        match self {
            ExecError::Elf(_) | ExecError::BadLayout => 8, // ENOEXEC
            ExecError::NoMemory => 12,
            ExecError::Stack(e) => e.errno(),
        }
    }
}

impl From<MapError> for ExecError {
    fn from(e: MapError) -> Self {
        match e {
            MapError::OutOfMemory => ExecError::NoMemory,
            MapError::AlreadyMapped => ExecError::BadLayout,
        }
    }
}

impl From<StackError> for ExecError {
    fn from(e: StackError) -> Self {
        ExecError::Stack(e)
    }
}

/// A loaded program, ready to enter.
pub struct Loaded {
    /// Its address space.
    pub space: AddressSpace,
    /// Entry point.
    pub entry: u64,
    /// Initial stack pointer (pointing at argc).
    pub rsp: u64,
}

fn page_flags(writable: bool, executable: bool) -> u64 {
    let mut f = flags::USER;
    if writable {
        f |= flags::WRITABLE;
    }
    if !executable {
        f |= flags::NO_EXECUTE;
    }
    f
}

/// Loads ELF `image` with `argv` and `envp` into a new address space.
pub fn load(
    image: &[u8],
    argv: &[&[u8]],
    envp: &[&[u8]],
    execfn: &[u8],
) -> Result<Loaded, ExecError> {
    let elf = ElfImage::parse(image).map_err(ExecError::Elf)?;
    let bias = if elf.is_dyn {
        DYN_BASE.next_multiple_of(elf.max_align().max(PAGE_SIZE))
    } else {
        0
    };
    let mut space = AddressSpace::new_user(mm::kernel_space())?;
    match load_into(&mut space, &elf, image, bias, argv, envp, execfn) {
        Ok((entry, rsp)) => Ok(Loaded { space, entry, rsp }),
        Err(e) => {
            space.free_user_half();
            space.free_root();
            Err(e)
        }
    }
}

fn load_into(
    space: &mut AddressSpace,
    elf: &ElfImage,
    image: &[u8],
    bias: u64,
    argv: &[&[u8]],
    envp: &[&[u8]],
    execfn: &[u8],
) -> Result<(u64, u64), ExecError> {
    for seg in &elf.segments {
        let start = page_align_down(bias + seg.vaddr);
        let end = page_align_up(bias + seg.vaddr + seg.memsz);
        let seg_flags = page_flags(seg.flags.writable(), seg.flags.executable());
        let mut page = start;
        while page < end {
            let pa = match space.translate(page) {
                // A page shared with the previous segment (its tail is our head).
                Some((pa, _)) => pa,
                None => {
                    let pa = frame::alloc_zeroed().ok_or(ExecError::NoMemory)?;
                    space.map(page, pa, seg_flags)?;
                    pa
                }
            };
            // Copy the part of the file image that falls in this page.
            let file_start = bias + seg.vaddr;
            let file_end = file_start + seg.filesz;
            let lo = page.max(file_start);
            let hi = (page + PAGE_SIZE).min(file_end);
            if lo < hi {
                let src_off = (seg.offset + (lo - file_start)) as usize;
                let len = (hi - lo) as usize;
                let src = image
                    .get(src_off..src_off + len)
                    .ok_or(ExecError::BadLayout)?;
                // SAFETY: `pa` is a frame of this new space, seen through the direct map;
                // lo..hi lies inside that page.
                unsafe {
                    core::ptr::copy_nonoverlapping(
                        src.as_ptr(),
                        (mm::phys_to_virt(pa) + (lo - page)) as *mut u8,
                        len,
                    )
                };
            }
            page += PAGE_SIZE;
        }
    }
    // Widen permissions of pages two segments share (e.g. RX text tail + RW data head).
    // Pages were mapped with the first segment's flags; a later writable segment needs W.
    for seg in &elf.segments {
        if !seg.flags.writable() {
            continue;
        }
        let start = page_align_down(bias + seg.vaddr);
        let end = page_align_up(bias + seg.vaddr + seg.memsz);
        let mut page = start;
        while page < end {
            if let Some((pa, f)) = space.translate(page) {
                if f & flags::WRITABLE == 0 {
                    space.unmap(page);
                    space.map(page, pa, page_flags(true, f & flags::NO_EXECUTE == 0))?;
                }
            }
            page += PAGE_SIZE;
        }
    }

    // PT_GNU_STACK decides whether the stack is executable, as on Linux.
    let stack_flags = page_flags(true, elf.executable_stack());
    let mut stack_page = USER_STACK_TOP - USER_STACK_SIZE;
    while stack_page < USER_STACK_TOP {
        let pa = frame::alloc_zeroed().ok_or(ExecError::NoMemory)?;
        space.map(stack_page, pa, stack_flags)?;
        stack_page += PAGE_SIZE;
    }

    let phdr = match elf.phdr_vaddr {
        Some(va) => bias + va,
        None => 0,
    };
    let entry = bias + elf.entry;
    let auxv: Vec<(u64, u64)> = alloc::vec![
        (stack::AT_PHDR, phdr),
        (stack::AT_PHENT, elf.phentsize as u64),
        (stack::AT_PHNUM, elf.phnum as u64),
        (stack::AT_PAGESZ, PAGE_SIZE),
        (stack::AT_BASE, 0),
        (stack::AT_FLAGS, 0),
        (stack::AT_ENTRY, entry),
        (stack::AT_UID, 0),
        (stack::AT_EUID, 0),
        (stack::AT_GID, 0),
        (stack::AT_EGID, 0),
        (stack::AT_SECURE, 0),
        (stack::AT_CLKTCK, 100),
        (stack::AT_HWCAP, crate::arch::cpu::cpuid(1, 0)[3] as u64),
        // No HWCAP2 features (e.g. FSGSBASE) are enabled for user mode.
        (stack::AT_HWCAP2, 0),
    ];
    let random = crate::random::bytes16();
    let initial = stack::build_initial_stack(
        USER_STACK_TOP,
        argv,
        envp,
        &auxv,
        &random,
        execfn,
        stack::PLATFORM_X86_64,
        ARG_MAX,
    )?;
    uaccess::copy_to_user(space, initial.rsp, &initial.bytes)
        .map_err(|_| ExecError::Stack(StackError::TooBig))?;
    Ok((entry, initial.rsp))
}

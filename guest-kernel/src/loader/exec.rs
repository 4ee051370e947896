//! Loading a program into a fresh address space: ELF segments, the user stack and the
//! Linux start-up block (argc, argv, envp, auxv).

//!
//! Nothing is copied up front but the few pages that must be assembled (where `.bss`
//! starts inside a file page): segments become areas that map the file and fault in on
//! first touch, `.bss` is zero-fill, and the stack is a grows-down area whose pages
//! appear as it is used.

use alloc::sync::Arc;

use super::elf::{self, ElfError, ElfImage};
use super::image::{self, Piece};
use super::stack::{self, StackError};
use crate::mm::paging::{AddressSpace, MapError};
use crate::mm::source::MapSource;
use crate::mm::user::{self, MapRequest, Placement, UserMemory, MMAP_RANDOM_SPAN, STACK_RLIMIT};
use crate::mm::vma::{Backing, VmaFlags, PROT_EXEC, PROT_READ, PROT_WRITE};
use crate::mm::{self, page_align_up, PAGE_SIZE};

/// Limit on argv + envp strings and pointers: a quarter of the stack limit, as Linux.
pub const ARG_MAX: usize = (STACK_RLIMIT / 4) as usize;
/// Stack reserved beyond the start-up block at exec (Linux's `stack_expand`); the stack
/// grows down past it on demand, up to [`STACK_RLIMIT`].
const INITIAL_STACK_EXTRA: u64 = 128 * 1024;
/// Span of the random offset of the program break (Linux: 32 MiB).
const BRK_RANDOM_SPAN: u64 = 32 << 20;

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
    /// The file could not be read.
    Io,
    /// A segment would be mapped below [`user::MMAP_MIN_ADDR`], where Linux refuses
    /// mappings (`vm.mmap_min_addr`), so that a null pointer never reaches program memory.
    BelowMinAddr(u64),
}

impl core::fmt::Display for ExecError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ExecError::Elf(e) => write!(f, "{e}"),
            ExecError::NoMemory => f.write_str("out of memory"),
            ExecError::Stack(e) => write!(f, "arguments: {e}"),
            ExecError::BadLayout => f.write_str("segments cannot be mapped as described"),
            ExecError::Io => f.write_str("cannot read the file"),
            ExecError::BelowMinAddr(addr) => write!(
                f,
                "a segment would be mapped at {addr:#x}, below the lowest address programs may \
                 use ({:#x}, Linux's vm.mmap_min_addr)",
                user::MMAP_MIN_ADDR
            ),
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
            ExecError::Io => 5, // EIO
            // Linux's elf_map gets EPERM from the mmap_min_addr check (and, past the point
            // of no return, kills the process with SIGSEGV).
            ExecError::BelowMinAddr(_) => 1,
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
    /// Its areas, program break and layout, matching `space`.
    pub mem: UserMemory,
    /// Entry point.
    pub entry: u64,
    /// Initial stack pointer (pointing at argc).
    pub rsp: u64,
    /// Load bias (0 for ET_EXEC).
    pub bias: u64,
    /// Page-aligned addresses the ELF image occupies.
    pub image: core::ops::Range<u64>,
}

fn read_exact(file: &dyn MapSource, offset: u64, buf: &mut [u8]) -> Result<(), ExecError> {
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(offset + done as u64, &mut buf[done..]) {
            Ok(0) => return Err(ExecError::Io),
            Ok(n) => done += n,
            Err(_) => return Err(ExecError::Io),
        }
    }
    Ok(())
}

/// Loads the ELF executable `file` with `argv` and `envp` into a new address space.
pub fn load(
    file: Arc<dyn MapSource>,
    argv: &[&[u8]],
    envp: &[&[u8]],
    execfn: &[u8],
) -> Result<Loaded, ExecError> {
    let file_len = file.size();
    let mut ehdr = [0u8; 64];
    let ehdr_len = file_len.min(64) as usize;
    read_exact(&*file, 0, &mut ehdr[..ehdr_len])?;
    if ehdr.get(..4) != Some(b"\x7fELF".as_slice()) {
        return Err(ExecError::Elf(ElfError::NotElf));
    }
    let head_len = elf::head_len(&ehdr, file_len);
    let mut head = alloc::vec![0u8; usize::try_from(head_len).map_err(|_| ExecError::NoMemory)?];
    read_exact(&*file, 0, &mut head)?;
    let elf = ElfImage::parse_head(&head, file_len).map_err(ExecError::Elf)?;
    let (mut mem, stack_top) = UserMemory::new_randomized();
    let bias = if elf.is_dyn {
        // Below the mmap area, which searches down from its base.
        // Not under a debugger, as gdb turns address randomization off for Linux programs:
        // the program's symbols then load at the same base every run.
        let random = if crate::arch::debug::attached() {
            0
        } else {
            user::random_pages(MMAP_RANDOM_SPAN)
        };
        image::dyn_bias(&elf, random, mem.mmap_base()).ok_or(ExecError::BadLayout)?
    } else {
        0
    };
    let lowest = image::lowest_address(&elf, bias);
    if lowest < user::MMAP_MIN_ADDR {
        return Err(ExecError::BelowMinAddr(lowest));
    }
    let mut space = AddressSpace::new_user(mm::kernel_space())?;
    let result = (|| {
        let phdr = map_image(&mut space, &mut mem, &elf, &file, &head, bias)?;
        let start = page_align_up(image::image_end(&elf, bias));
        mem.init_brk(start + user::random_pages(BRK_RANDOM_SPAN));
        let hwcap = u64::from(crate::arch::cpu::hwcap());
        let fpstate = crate::signal::frame::fpstate_size(crate::arch::fpu::state_size() as u64);
        let min_sigstack = crate::signal::frame::min_frame_stack(fpstate);
        let auxv = image::auxv(&elf, bias, phdr, hwcap, min_sigstack);
        let rsp = build_stack(
            &mut space, &mut mem, &elf, stack_top, argv, envp, execfn, &auxv,
        )?;
        Ok(rsp)
    })();
    match result {
        Ok(rsp) => Ok(Loaded {
            space,
            mem,
            entry: bias + elf.entry,
            rsp,
            bias,
            image: bias + elf.load_bias_range().0..image::image_end(&elf, bias),
        }),
        Err(e) => {
            space.free_user_half();
            space.free_root();
            Err(e)
        }
    }
}

fn map_errno(e: crate::errno::Errno) -> ExecError {
    if e == crate::errno::Errno::ENOMEM {
        ExecError::NoMemory
    } else {
        ExecError::BadLayout
    }
}

fn fault_error(e: user::FaultError) -> ExecError {
    match e {
        user::FaultError::OutOfMemory => ExecError::NoMemory,
        _ => ExecError::BadLayout,
    }
}

/// Maps the segments; returns where the program headers are mapped (`AT_PHDR`).
fn map_image(
    space: &mut AddressSpace,
    mem: &mut UserMemory,
    elf: &ElfImage,
    file: &Arc<dyn MapSource>,
    head: &[u8],
    bias: u64,
) -> Result<u64, ExecError> {
    let fixed = |start: u64, end: u64, prot: u32, backing: Backing| MapRequest {
        placement: Placement::Fixed(start),
        len: end - start,
        prot,
        flags: VmaFlags::default(),
        backing,
    };
    for piece in image::plan(&elf.segments, bias) {
        match piece {
            Piece::File {
                start,
                end,
                offset,
                prot,
            } => {
                let backing = Backing::File {
                    source: file.clone(),
                    offset,
                };
                mem.map(space, fixed(start, end, prot, backing))
                    .map_err(map_errno)?;
            }
            Piece::Zero { start, end, prot } => {
                mem.map(space, fixed(start, end, prot, Backing::Anonymous))
                    .map_err(map_errno)?;
            }
            Piece::Copied { page, prot, parts } => {
                mem.map(
                    space,
                    fixed(page, page + PAGE_SIZE, prot, Backing::Anonymous),
                )
                .map_err(map_errno)?;
                let mut bytes = alloc::vec![0u8; PAGE_SIZE as usize];
                for (va, offset, len) in parts {
                    let at = (va - page) as usize;
                    read_exact(&**file, offset, &mut bytes[at..at + len as usize])?;
                }
                mem.write_as_kernel(space, page, &bytes)
                    .map_err(fault_error)?;
            }
        }
    }
    if let Some(va) = elf.phdr_vaddr {
        return Ok(bias + va);
    }
    // No segment maps the program headers: give the program a copy (musl finds PT_TLS
    // through AT_PHDR).
    let table_len = u64::from(elf.phnum) * u64::from(elf.phentsize);
    let table = usize::try_from(elf.phoff)
        .ok()
        .and_then(|at| head.get(at..at + table_len as usize))
        .ok_or(ExecError::BadLayout)?;
    let req = MapRequest {
        placement: Placement::Hint(0),
        len: page_align_up(table_len.max(1)),
        prot: PROT_READ,
        flags: VmaFlags::default(),
        backing: Backing::Anonymous,
    };
    let at = mem.map(space, req).map_err(map_errno)?;
    mem.write_as_kernel(space, at, table).map_err(fault_error)?;
    Ok(at)
}

/// Builds the start-up block at the top of a fresh grows-down stack; returns `rsp`.
#[allow(clippy::too_many_arguments)] // the parts of the block, each its own kind
fn build_stack(
    space: &mut AddressSpace,
    mem: &mut UserMemory,
    elf: &ElfImage,
    stack_top: u64,
    argv: &[&[u8]],
    envp: &[&[u8]],
    execfn: &[u8],
    auxv: &[(u64, u64)],
) -> Result<u64, ExecError> {
    let random = crate::random::bytes16();
    let initial = stack::build_initial_stack(
        stack_top,
        argv,
        envp,
        auxv,
        &random,
        execfn,
        stack::PLATFORM_X86_64,
        ARG_MAX,
    )?;
    // PT_GNU_STACK decides whether the stack is executable, as on Linux.
    let mut prot = PROT_READ | PROT_WRITE;
    if elf.executable_stack() {
        prot |= PROT_EXEC;
    }
    let size = (page_align_up(initial.bytes.len() as u64) + INITIAL_STACK_EXTRA).min(STACK_RLIMIT);
    let req = MapRequest {
        placement: Placement::FixedNoReplace(stack_top - size),
        len: size,
        prot,
        flags: VmaFlags {
            growsdown: true,
            ..VmaFlags::default()
        },
        backing: Backing::Anonymous,
    };
    mem.map(space, req).map_err(map_errno)?;
    mem.write(space, initial.rsp, &initial.bytes)
        .map_err(fault_error)?;
    Ok(initial.rsp)
}

//! Memory system calls: brk, mmap, munmap, mprotect, mremap, madvise, msync, mincore.
//!
//! Arguments are checked as Linux x86-64 checks them, in the same order where the errno
//! depends on it (the pure `decode_*` functions, unit-tested on the host); the areas and
//! pages themselves are [`crate::mm::user::UserMemory`]'s business.

use alloc::sync::Arc;
use alloc::vec::Vec;

use super::{Ctx, Errno, SysResult};
use crate::mm::shared::SharedMemory;
use crate::mm::source::MapSource;
use crate::mm::user::{MapRequest, Placement, MMAP_MIN_ADDR, TASK_SIZE};
use crate::mm::vma::{Access, Backing, VmaFlags, PROT_EXEC, PROT_READ, PROT_WRITE};
use crate::mm::PAGE_SIZE;

/// `mmap` flags (Linux x86-64 values).
pub mod map {
    /// Share changes.
    pub const SHARED: u64 = 0x01;
    /// Changes are private.
    pub const PRIVATE: u64 = 0x02;
    /// Shared, and fail on unknown flags.
    pub const SHARED_VALIDATE: u64 = 0x03;
    /// Mask of the mapping type.
    pub const TYPE: u64 = 0x0f;
    /// Exactly at `addr`, replacing mappings.
    pub const FIXED: u64 = 0x10;
    /// Not backed by a file.
    pub const ANONYMOUS: u64 = 0x20;
    /// In the first 2 GiB.
    pub const BIT32: u64 = 0x40;
    /// Above 4 GiB (x86 shadow stacks).
    pub const ABOVE4G: u64 = 0x80;
    /// A stack that grows down.
    pub const GROWSDOWN: u64 = 0x0100;
    /// Ignored.
    pub const DENYWRITE: u64 = 0x0800;
    /// Ignored.
    pub const EXECUTABLE: u64 = 0x1000;
    /// Lock the pages in memory.
    pub const LOCKED: u64 = 0x2000;
    /// Do not reserve swap.
    pub const NORESERVE: u64 = 0x4000;
    /// Fault the pages in now.
    pub const POPULATE: u64 = 0x8000;
    /// With POPULATE: do not.
    pub const NONBLOCK: u64 = 0x1_0000;
    /// A thread stack (a hint).
    pub const STACK: u64 = 0x2_0000;
    /// Huge pages.
    pub const HUGETLB: u64 = 0x4_0000;
    /// Exactly at `addr`, failing if anything is mapped there.
    pub const FIXED_NOREPLACE: u64 = 0x10_0000;
    /// Do not clear anonymous pages (ignored).
    pub const UNINITIALIZED: u64 = 0x400_0000;
    /// Flags every kernel accepts with `MAP_SHARED_VALIDATE` (Linux `LEGACY_MAP_MASK`).
    pub const LEGACY_MASK: u64 = SHARED
        | PRIVATE
        | FIXED
        | ANONYMOUS
        | DENYWRITE
        | EXECUTABLE
        | UNINITIALIZED
        | GROWSDOWN
        | LOCKED
        | NORESERVE
        | POPULATE
        | NONBLOCK
        | STACK
        | HUGETLB
        | BIT32
        | ABOVE4G
        | (21 << 26)
        | (30 << 26);
}

/// `mprotect`: apply down to the start of a grows-down area.
const PROT_GROWSDOWN: u64 = 0x0100_0000;
/// `mprotect`: apply up to the end of a grows-up area (none on x86).
const PROT_GROWSUP: u64 = 0x0200_0000;
/// `PROT_SEM`: accepted and meaningless on x86.
const PROT_SEM: u64 = 0x8;

/// `msync` flags.
const MS_ASYNC: u64 = 1;
const MS_INVALIDATE: u64 = 2;
const MS_SYNC: u64 = 4;

/// Largest file offset + length a mapping may reach (Linux `MAX_LFS_FILESIZE`).
const MAX_FILE_END: u64 = i64::MAX as u64;

fn page_aligned(v: u64) -> bool {
    v.is_multiple_of(PAGE_SIZE)
}

/// Rounds up to a page; `None` when that overflows.
fn page_up(v: u64) -> Option<u64> {
    v.checked_add(PAGE_SIZE - 1).map(|v| v & !(PAGE_SIZE - 1))
}

/// An open file as mmap needs it.
pub struct MappableFile {
    /// Its bytes.
    pub source: Arc<dyn MapSource>,
    /// Opened for reading.
    pub readable: bool,
    /// Opened for writing.
    pub writable: bool,
}

/// The open file `fd` as mmap needs it (the VFS's lookup: EBADF, EACCES, ENODEV).
fn mappable_file(ctx: &Ctx<'_>, fd: u64, shared: bool) -> Result<MappableFile, Errno> {
    let (source, status) = crate::fs::map_source_for_fd(&ctx.task.files.lock(), fd, shared)?;
    Ok(MappableFile {
        source,
        readable: true,
        writable: crate::fs::open::writable(status),
    })
}

/// Checked `mmap` arguments.
#[derive(Clone, Debug, PartialEq, Eq)]
struct MmapArgs {
    placement: Placement,
    len: u64,
    prot: u32,
    flags: VmaFlags,
    populate: bool,
}

/// Checks `mmap` arguments as Linux's `do_mmap` does; `file` is `(readable, writable,
/// shares_pages)` of the open file (the last: a shared mapping maps the file's own pages,
/// see [`MapSource::shares_pages`]), `None` for an anonymous mapping. `off` is already page
/// aligned.
fn decode_mmap(
    addr: u64,
    len: u64,
    prot: u64,
    flags: u64,
    off: u64,
    file: Option<(bool, bool, bool)>,
) -> Result<MmapArgs, Errno> {
    if flags & map::HUGETLB != 0 {
        // astra has no huge-page pool: like Linux with none reserved (or a non-hugetlbfs
        // file).
        return Err(if file.is_some() {
            Errno::EINVAL
        } else {
            Errno::ENOMEM
        });
    }
    if len == 0 {
        return Err(Errno::EINVAL);
    }
    let len = page_up(len).ok_or(Errno::ENOMEM)?;
    let placement = if flags & (map::FIXED | map::FIXED_NOREPLACE) != 0 {
        if !page_aligned(addr) {
            return Err(Errno::EINVAL);
        }
        if len > TASK_SIZE || addr > TASK_SIZE - len {
            return Err(Errno::ENOMEM);
        }
        if addr < MMAP_MIN_ADDR {
            return Err(Errno::EPERM);
        }
        if flags & map::FIXED_NOREPLACE != 0 {
            Placement::FixedNoReplace(addr)
        } else {
            Placement::Fixed(addr)
        }
    } else if flags & map::BIT32 != 0 {
        Placement::Low2G
    } else {
        Placement::Hint(addr)
    };
    let mut vflags = VmaFlags {
        shared: false,
        growsdown: flags & map::GROWSDOWN != 0,
        noreserve: flags & map::NORESERVE != 0,
        no_huge_pages: false,
    };
    let map_type = flags & map::TYPE;
    match file {
        None => match map_type {
            map::SHARED if vflags.growsdown => return Err(Errno::EINVAL),
            map::SHARED => vflags.shared = true,
            map::PRIVATE => {}
            _ => return Err(Errno::EINVAL),
        },
        Some((readable, writable, shares_pages)) => {
            if off.checked_add(len).is_none_or(|end| end > MAX_FILE_END) {
                return Err(Errno::EOVERFLOW);
            }
            match map_type {
                map::SHARED | map::SHARED_VALIDATE => {
                    if map_type == map::SHARED_VALIDATE && flags & !map::LEGACY_MASK != 0 {
                        return Err(Errno::EOPNOTSUPP);
                    }
                    if prot & PROT_WRITE as u64 != 0 {
                        // Writes through a shared mapping must reach the file: refused for a
                        // file not open for writing (as Linux), and for a file whose file
                        // system keeps no pages a mapping can share (hostfs: nothing would
                        // write the pages back to the host file).
                        if !writable {
                            return Err(Errno::EACCES);
                        }
                        if !shares_pages {
                            return Err(Errno::ENODEV);
                        }
                    }
                    // Without shared pages it is never written, so it behaves like a
                    // private mapping; mprotect checks PROT_WRITE against the file.
                    vflags.shared = true;
                }
                map::PRIVATE => {}
                _ => return Err(Errno::EINVAL),
            }
            if !readable {
                return Err(Errno::EACCES);
            }
            if vflags.growsdown {
                return Err(Errno::EINVAL);
            }
        }
    }
    let populate =
        flags & map::LOCKED != 0 || flags & (map::POPULATE | map::NONBLOCK) == map::POPULATE;
    Ok(MmapArgs {
        placement,
        len,
        prot: (prot & u64::from(PROT_READ | PROT_WRITE | PROT_EXEC)) as u32,
        flags: vflags,
        populate,
    })
}

/// mmap(addr, length, prot, flags, fd, offset)
pub fn mmap(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    let [addr, len, prot, flags, fd, off] = a;
    if !page_aligned(off) {
        return Err(Errno::EINVAL);
    }
    let file = if flags & map::ANONYMOUS == 0 {
        let shared = matches!(flags & map::TYPE, map::SHARED | map::SHARED_VALIDATE);
        Some(mappable_file(ctx, fd, shared)?)
    } else {
        None
    };
    mmap_with(ctx, addr, len, prot, flags, off, file)
}

/// mmap once the file (if any) is known; the self-tests map tarfs files through it.
pub fn mmap_with(
    ctx: &mut Ctx<'_>,
    addr: u64,
    len: u64,
    prot: u64,
    flags: u64,
    off: u64,
    file: Option<MappableFile>,
) -> SysResult {
    let mode = file
        .as_ref()
        .map(|f| (f.readable, f.writable, f.source.shares_pages()));
    let args = decode_mmap(addr, len, prot, flags, off, mode)?;
    let backing = match file {
        // MAP_SHARED of /dev/zero: shared anonymous memory of its own.
        Some(f) if args.flags.shared && f.source.anonymous_shared() => Backing::Shared {
            object: Arc::new(SharedMemory::new()),
            offset: 0,
        },
        Some(f) => Backing::File {
            source: f.source,
            offset: off,
        },
        // Shared anonymous memory: an object of its own, which fork shares.
        None if args.flags.shared => Backing::Shared {
            object: Arc::new(SharedMemory::new()),
            offset: 0,
        },
        None => Backing::Anonymous,
    };
    let req = MapRequest {
        placement: args.placement,
        len: args.len,
        prot: args.prot,
        flags: args.flags,
        backing,
    };
    let mut mm = ctx.task.mm.lock();
    let proc = &mut *mm;
    let start = proc.mem.map(&mut proc.space, req)?;
    if args.populate {
        // As on Linux, a mapping that cannot be populated still succeeds; what is
        // missing faults in later.
        let access = if args.prot & PROT_WRITE != 0 {
            Access::Write
        } else {
            Access::Read
        };
        let _ = proc
            .mem
            .populate(&mut proc.space, start, start + args.len, access);
    }
    Ok(start)
}

/// munmap(addr, length)
pub fn munmap(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    let (start, end) = decode_munmap(a[0], a[1])?;
    let mut mm = ctx.task.mm.lock();
    let proc = &mut *mm;
    proc.mem.unmap(&mut proc.space, start, end)?;
    Ok(0)
}

fn decode_munmap(start: u64, len: u64) -> Result<(u64, u64), Errno> {
    if !page_aligned(start) || start > TASK_SIZE || len > TASK_SIZE - start || len == 0 {
        return Err(Errno::EINVAL);
    }
    let end = page_up(start + len).ok_or(Errno::EINVAL)?;
    Ok((start, end))
}

/// Checked `mprotect` arguments: `None` for a zero length (nothing to do).
fn decode_mprotect(
    start: u64,
    len: u64,
    prot: u64,
) -> Result<Option<(u64, u64, u32, bool)>, Errno> {
    let grows = prot & (PROT_GROWSDOWN | PROT_GROWSUP);
    let prot = prot & !(PROT_GROWSDOWN | PROT_GROWSUP);
    if grows == PROT_GROWSDOWN | PROT_GROWSUP || !page_aligned(start) {
        return Err(Errno::EINVAL);
    }
    if len == 0 {
        return Ok(None);
    }
    let end = page_up(len)
        .and_then(|len| start.checked_add(len))
        .filter(|&end| end > start)
        .ok_or(Errno::ENOMEM)?;
    if prot & !(u64::from(PROT_READ | PROT_WRITE | PROT_EXEC) | PROT_SEM) != 0 {
        return Err(Errno::EINVAL);
    }
    if grows == PROT_GROWSUP {
        // No area grows up on x86-64.
        return Err(Errno::EINVAL);
    }
    let prot = (prot & u64::from(PROT_READ | PROT_WRITE | PROT_EXEC)) as u32;
    Ok(Some((start, end, prot, grows == PROT_GROWSDOWN)))
}

/// mprotect(addr, length, prot)
pub fn mprotect(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    let Some((start, end, prot, growsdown)) = decode_mprotect(a[0], a[1], a[2])? else {
        return Ok(0);
    };
    let mut mm = ctx.task.mm.lock();
    let proc = &mut *mm;
    proc.mem
        .protect(&mut proc.space, start, end, prot, growsdown)?;
    Ok(0)
}

/// brk(addr): the new break, or the old one if it cannot move (never an error).
pub fn brk(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    let mut mm = ctx.task.mm.lock();
    let proc = &mut *mm;
    Ok(proc.mem.set_brk(&mut proc.space, a[0]))
}

/// The valid `madvise` advice values and what astra does with them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Advice {
    /// A hint astra has no use for (access pattern, huge pages, KSM, core dumps, fork).
    Hint,
    /// Only valid on private anonymous memory; otherwise a hint.
    PrivateAnonHint,
    /// MADV_DONTNEED(_LOCKED): drop the pages; private ones refault fresh.
    DontNeed,
    /// MADV_FREE: private anonymous pages may be dropped.
    Free,
    /// MADV_REMOVE: punch a hole in shared memory.
    Remove,
    /// MADV_POPULATE_READ / _WRITE.
    Populate(Access),
    /// MADV_HUGEPAGE (false) / MADV_NOHUGEPAGE (true): whether 2 MiB pages are refused.
    NoHugePages(bool),
}

fn decode_advice(advice: u64) -> Result<Advice, Errno> {
    Ok(match advice {
        // NORMAL, RANDOM, SEQUENTIAL, WILLNEED
        0..=3 => Advice::Hint,
        4 | 24 => Advice::DontNeed,
        8 => Advice::Free,
        9 => Advice::Remove,
        14 => Advice::NoHugePages(false),
        15 => Advice::NoHugePages(true),
        // DONTFORK, DOFORK, MERGEABLE, UNMERGEABLE, DONTDUMP, DODUMP, COLD, PAGEOUT,
        // COLLAPSE
        10..=13 | 16 | 17 | 20 | 21 | 25 => Advice::Hint,
        // WIPEONFORK, KEEPONFORK
        18 | 19 => Advice::PrivateAnonHint,
        22 => Advice::Populate(Access::Read),
        23 => Advice::Populate(Access::Write),
        // HWPOISON and SOFT_OFFLINE need memory-failure support, absent as on a kernel
        // built without it; everything else is unknown.
        _ => return Err(Errno::EINVAL),
    })
}

/// Checked `madvise` range: `None` for an empty one.
fn decode_madvise_range(start: u64, len: u64) -> Result<Option<(u64, u64)>, Errno> {
    if !page_aligned(start) {
        return Err(Errno::EINVAL);
    }
    let Some(len_up) = page_up(len) else {
        return Err(Errno::EINVAL);
    };
    let end = start.checked_add(len_up).ok_or(Errno::EINVAL)?;
    Ok((end > start).then_some((start, end)))
}

/// madvise(addr, length, advice)
pub fn madvise(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    let advice = decode_advice(a[2])?;
    let Some((start, end)) = decode_madvise_range(a[0], a[1])? else {
        return Ok(0);
    };
    let mut mm = ctx.task.mm.lock();
    let proc = &mut *mm;
    // Check every area first, so that a refused advice changes nothing.
    for v in proc.mem.vmas().overlapping(start, end) {
        let private_anon = v.backing.is_anonymous() && !v.flags.shared;
        match advice {
            Advice::Free | Advice::PrivateAnonHint if !private_anon => return Err(Errno::EINVAL),
            // As Linux's madvise_remove: private anonymous memory has no file (EINVAL);
            // a private file mapping, or a shared one of a file not open for writing,
            // may not write the file (EACCES).
            Advice::Remove if !v.flags.shared && v.backing.is_anonymous() => {
                return Err(Errno::EINVAL)
            }
            Advice::Remove if !v.flags.shared => return Err(Errno::EACCES),
            Advice::Remove if matches!(&v.backing, Backing::File { source, .. } if !source.writable()) => {
                return Err(Errno::EACCES)
            }
            Advice::Populate(access) if !v.allows(access) => return Err(Errno::EINVAL),
            _ => {}
        }
    }
    if let Advice::NoHugePages(no_huge) = advice {
        proc.mem.set_no_huge_pages(start, end, no_huge)?;
    }
    // Area by area (by address: the areas themselves do not change). Shared anonymous
    // memory keeps its data under DONTNEED (another mapping of it would still see it) and
    // loses it under REMOVE; so does a shared file mapping (the file gets a hole, once
    // the address space is unlocked: the file unmaps its freed pages everywhere).
    let mut file_holes: Vec<(Arc<dyn MapSource>, u64, u64)> = Vec::new();
    let mut at = start;
    while let Some(v) = proc
        .mem
        .vmas()
        .next_at_or_after(at)
        .filter(|v| at < end && v.start < end)
    {
        let (s, e, shared) = (v.start.max(start), v.end.min(end), v.flags.shared);
        let file = match &v.backing {
            Backing::File { source, offset } => Some((source.clone(), offset + (s - v.start))),
            _ => None,
        };
        at = e;
        match advice {
            Advice::DontNeed | Advice::Free if !shared => {
                proc.mem.discard(&mut proc.space, s, e)?
            }
            Advice::Remove => {
                if let Some((source, offset)) = file {
                    file_holes.try_reserve(1).map_err(|_| Errno::ENOMEM)?;
                    file_holes.push((source, offset, e - s));
                }
                proc.mem.punch_hole(&mut proc.space, s, e)?
            }
            Advice::Populate(access) => match proc.mem.populate(&mut proc.space, s, e, access) {
                Ok(()) => {}
                Err(crate::mm::user::FaultError::OutOfMemory) => return Err(Errno::ENOMEM),
                Err(_) => return Err(Errno::EFAULT),
            },
            _ => {}
        }
    }
    let covered = proc.mem.vmas().is_covered(start, end);
    drop(mm);
    for (source, offset, len) in file_holes {
        source.punch_hole(offset, len)?;
    }
    // Like Linux: the mapped parts got the advice, a hole makes it ENOMEM.
    if !covered {
        return Err(Errno::ENOMEM);
    }
    Ok(0)
}

/// msync(addr, length, flags): checks its arguments and the range; shared mappings of
/// host-volume files write their page cache back to the host file (tmpfs, the root's
/// layer and memfd files live in memory: nothing to write).
pub fn msync(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    let (start, len, flags) = (a[0], a[1], a[2]);
    if flags & !(MS_ASYNC | MS_INVALIDATE | MS_SYNC) != 0
        || !page_aligned(start)
        || flags & (MS_ASYNC | MS_SYNC) == MS_ASYNC | MS_SYNC
    {
        return Err(Errno::EINVAL);
    }
    let end = page_up(len)
        .and_then(|len| start.checked_add(len))
        .ok_or(Errno::ENOMEM)?;
    if end == start {
        return Ok(0);
    }
    let mut sources: Vec<Arc<dyn MapSource>> = Vec::new();
    {
        let mm = ctx.task.mm.lock();
        if !mm.mem.vmas().is_covered(start, end) {
            return Err(Errno::ENOMEM);
        }
        for v in mm.mem.vmas().overlapping(start, end) {
            if let (true, Backing::File { source, .. }) = (v.flags.shared, &v.backing) {
                if !sources.iter().any(|s| Arc::ptr_eq(s, source)) {
                    sources.try_reserve(1).map_err(|_| Errno::ENOMEM)?;
                    sources.push(source.clone());
                }
            }
        }
    }
    // Host-volume files write their cached pages back (MS_ASYNC too: at once).
    for source in sources {
        source.sync()?;
    }
    Ok(0)
}

/// mincore(addr, length, vec): one byte per page, 1 if it is in memory.
pub fn mincore(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    let (start, len, vec) = (a[0], a[1], a[2]);
    if !page_aligned(start) {
        return Err(Errno::EINVAL);
    }
    let end = start
        .checked_add(len)
        .filter(|&end| end <= TASK_SIZE)
        .ok_or(Errno::ENOMEM)?;
    let pages = len.div_ceil(PAGE_SIZE);
    if vec.checked_add(pages).is_none_or(|e| e > TASK_SIZE) {
        return Err(Errno::EFAULT);
    }
    let end = page_up(end).ok_or(Errno::ENOMEM)?;
    if !ctx.task.mm.lock().mem.vmas().is_covered(start, end) {
        return Err(Errno::ENOMEM);
    }
    // A page at a time of the vector, so a huge range needs no huge buffer.
    const CHUNK: u64 = 4096;
    let mut at = start;
    while at < end {
        let chunk_end = end.min(at + CHUNK * PAGE_SIZE);
        let mut bits = alloc::vec![0u8; ((chunk_end - at) / PAGE_SIZE) as usize];
        ctx.task
            .mm
            .lock()
            .space
            .for_each_mapped(at, chunk_end, |va, _, _| {
                if let Some(b) = bits.get_mut(((va - at) / PAGE_SIZE) as usize) {
                    *b = 1;
                }
            });
        ctx.write_user(vec + (at - start) / PAGE_SIZE, &bits)?;
        at = chunk_end;
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: u64 = PAGE_SIZE;
    const RW: u64 = (PROT_READ | PROT_WRITE) as u64;
    const ANON: u64 = map::PRIVATE | map::ANONYMOUS;
    const RO_FILE: Option<(bool, bool, bool)> = Some((true, false, true));

    fn anon(addr: u64, len: u64, flags: u64) -> Result<MmapArgs, Errno> {
        decode_mmap(addr, len, RW, flags, 0, None)
    }

    #[test]
    fn mmap_lengths() {
        assert_eq!(anon(0, 0, ANON), Err(Errno::EINVAL));
        assert_eq!(anon(0, u64::MAX, ANON), Err(Errno::ENOMEM));
        assert_eq!(anon(0, 1, ANON).map(|a| a.len), Ok(P));
        assert_eq!(anon(0, P + 1, ANON).map(|a| a.len), Ok(2 * P));
        assert_eq!(
            decode_mmap(0, P, 1, map::PRIVATE, u64::MAX & !(P - 1), RO_FILE),
            Err(Errno::EOVERFLOW)
        );
    }

    #[test]
    fn mmap_placement() {
        let fixed = ANON | map::FIXED;
        assert_eq!(
            anon(0x10_0000, P, fixed).map(|a| a.placement),
            Ok(Placement::Fixed(0x10_0000))
        );
        assert_eq!(anon(0x10_0001, P, fixed), Err(Errno::EINVAL));
        assert_eq!(anon(0x1000, P, fixed), Err(Errno::EPERM));
        assert_eq!(anon(TASK_SIZE - P, 2 * P, fixed), Err(Errno::ENOMEM));
        assert_eq!(
            anon(TASK_SIZE - P, P, fixed).map(|a| a.placement),
            Ok(Placement::Fixed(TASK_SIZE - P))
        );
        // NOREPLACE wins over FIXED; alignment is checked for it too.
        let noreplace = ANON | map::FIXED | map::FIXED_NOREPLACE;
        assert_eq!(
            anon(0x10_0000, P, noreplace).map(|a| a.placement),
            Ok(Placement::FixedNoReplace(0x10_0000))
        );
        assert_eq!(
            anon(0x10_0001, P, ANON | map::FIXED_NOREPLACE),
            Err(Errno::EINVAL)
        );
        // A hint is only a hint (even unaligned or low); MAP_32BIT ignores it.
        assert_eq!(
            anon(0x1001, P, ANON).map(|a| a.placement),
            Ok(Placement::Hint(0x1001))
        );
        assert_eq!(
            anon(0x1000, P, ANON | map::BIT32).map(|a| a.placement),
            Ok(Placement::Low2G)
        );
    }

    #[test]
    fn mmap_types_and_flags() {
        assert_eq!(anon(0, P, map::ANONYMOUS), Err(Errno::EINVAL));
        assert_eq!(
            anon(0, P, map::SHARED_VALIDATE | map::ANONYMOUS),
            Err(Errno::EINVAL)
        );
        assert_eq!(anon(0, P, 0x0f | map::ANONYMOUS), Err(Errno::EINVAL));
        let shared = anon(0, P, map::SHARED | map::ANONYMOUS).unwrap();
        assert!(shared.flags.shared);
        assert_eq!(
            anon(0, P, map::SHARED | map::ANONYMOUS | map::GROWSDOWN),
            Err(Errno::EINVAL)
        );
        let stack = anon(0, P, ANON | map::GROWSDOWN | map::STACK | map::NORESERVE).unwrap();
        assert!(stack.flags.growsdown && stack.flags.noreserve && !stack.flags.shared);
        assert_eq!(anon(0, P, ANON | map::HUGETLB), Err(Errno::ENOMEM));
        // Unknown bits are ignored outside MAP_SHARED_VALIDATE, as on Linux.
        assert!(anon(0, P, ANON | 0x80_0000).is_ok());
        // PROT bits beyond RWX are dropped.
        assert_eq!(
            decode_mmap(0, P, 0xff, ANON, 0, None).map(|a| a.prot),
            Ok(7)
        );
        // Populate: POPULATE without NONBLOCK, or LOCKED.
        assert!(anon(0, P, ANON | map::POPULATE).unwrap().populate);
        assert!(
            !anon(0, P, ANON | map::POPULATE | map::NONBLOCK)
                .unwrap()
                .populate
        );
        assert!(anon(0, P, ANON | map::LOCKED).unwrap().populate);
        assert!(!anon(0, P, ANON).unwrap().populate);
    }

    #[test]
    fn mmap_files() {
        let ro = |prot, flags| decode_mmap(0, P, prot, flags, 0, RO_FILE);
        assert!(
            ro(RW, map::PRIVATE).is_ok(),
            "private copies may be written"
        );
        assert_eq!(ro(RW, map::SHARED), Err(Errno::EACCES));
        assert!(ro(1, map::SHARED).unwrap().flags.shared);
        assert_eq!(
            ro(1, map::SHARED_VALIDATE | 0x80_0000),
            Err(Errno::EOPNOTSUPP)
        );
        let noreplace = map::SHARED_VALIDATE | map::FIXED_NOREPLACE;
        assert_eq!(
            decode_mmap(0x10_0000, P, 1, noreplace, 0, RO_FILE),
            Err(Errno::EOPNOTSUPP),
            "not a legacy flag"
        );
        assert!(ro(1, map::SHARED_VALIDATE | map::POPULATE).is_ok());
        assert_eq!(ro(1, map::PRIVATE | map::GROWSDOWN), Err(Errno::EINVAL));
        assert_eq!(ro(1, map::PRIVATE | map::HUGETLB), Err(Errno::EINVAL));
        assert_eq!(ro(1, 0x0f), Err(Errno::EINVAL));
        let write_only = Some((false, true, true));
        assert_eq!(
            decode_mmap(0, P, 1, map::PRIVATE, 0, write_only),
            Err(Errno::EACCES)
        );
        let rw_file = Some((true, true, true));
        assert!(
            decode_mmap(0, P, RW, map::SHARED, 0, rw_file)
                .unwrap()
                .flags
                .shared
        );
        // A file whose pages cannot be shared (hostfs): read-only shared mappings only.
        let no_pages = Some((true, true, false));
        assert_eq!(
            decode_mmap(0, P, RW, map::SHARED, 0, no_pages),
            Err(Errno::ENODEV)
        );
        assert!(decode_mmap(0, P, 1, map::SHARED, 0, no_pages).is_ok());
        assert_eq!(
            decode_mmap(0, P, RW, map::SHARED, 0, Some((true, false, false))),
            Err(Errno::EACCES)
        );
    }

    #[test]
    fn munmap_arguments() {
        assert_eq!(decode_munmap(P, P), Ok((P, 2 * P)));
        assert_eq!(decode_munmap(P, 1), Ok((P, 2 * P)));
        assert_eq!(decode_munmap(P + 1, P), Err(Errno::EINVAL));
        assert_eq!(decode_munmap(P, 0), Err(Errno::EINVAL));
        assert_eq!(decode_munmap(TASK_SIZE + P, P), Err(Errno::EINVAL));
        assert_eq!(decode_munmap(TASK_SIZE - P, 2 * P), Err(Errno::EINVAL));
        assert_eq!(decode_munmap(0, u64::MAX), Err(Errno::EINVAL));
    }

    #[test]
    fn mprotect_arguments() {
        assert_eq!(
            decode_mprotect(P, P, 1),
            Ok(Some((P, 2 * P, PROT_READ, false)))
        );
        assert_eq!(decode_mprotect(P, 0, 1), Ok(None));
        assert_eq!(
            decode_mprotect(P + 1, 0, 1),
            Err(Errno::EINVAL),
            "alignment first"
        );
        assert_eq!(decode_mprotect(P, u64::MAX - P, 1), Err(Errno::ENOMEM));
        assert_eq!(decode_mprotect(P, P, 0x10), Err(Errno::EINVAL));
        assert_eq!(
            decode_mprotect(P, P, 1 | PROT_SEM).map(|r| r.map(|r| r.2)),
            Ok(Some(PROT_READ))
        );
        assert_eq!(
            decode_mprotect(P, P, PROT_GROWSDOWN | PROT_GROWSUP),
            Err(Errno::EINVAL)
        );
        assert_eq!(decode_mprotect(P, P, 1 | PROT_GROWSUP), Err(Errno::EINVAL));
        assert_eq!(
            decode_mprotect(P, P, 3 | PROT_GROWSDOWN),
            Ok(Some((P, 2 * P, 3, true)))
        );
    }

    #[test]
    fn madvise_arguments() {
        assert_eq!(decode_advice(4), Ok(Advice::DontNeed));
        assert_eq!(decode_advice(8), Ok(Advice::Free));
        assert_eq!(decode_advice(23), Ok(Advice::Populate(Access::Write)));
        assert_eq!(decode_advice(14), Ok(Advice::NoHugePages(false)));
        assert_eq!(decode_advice(15), Ok(Advice::NoHugePages(true)));
        for harmless in [0, 1, 2, 3, 10, 11, 12, 13, 16, 17, 20, 21, 25] {
            assert_eq!(decode_advice(harmless), Ok(Advice::Hint), "{harmless}");
        }
        for unknown in [5, 6, 7, 26, 99, 100, 101, u64::MAX] {
            assert_eq!(decode_advice(unknown), Err(Errno::EINVAL), "{unknown}");
        }
        assert_eq!(decode_madvise_range(P, P), Ok(Some((P, 2 * P))));
        assert_eq!(decode_madvise_range(P, 0), Ok(None));
        assert_eq!(decode_madvise_range(P + 1, P), Err(Errno::EINVAL));
        assert_eq!(decode_madvise_range(P, u64::MAX), Err(Errno::EINVAL));
        assert_eq!(
            decode_madvise_range(u64::MAX & !(P - 1), P),
            Err(Errno::EINVAL)
        );
    }
}

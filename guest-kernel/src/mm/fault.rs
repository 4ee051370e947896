//! Demand paging: a page gets its frame on first touch (zeroed, or filled from the file it
//! maps), stacks grow down on faults below them, and the kernel's copies to and from user
//! memory go through the same areas so that a pointer into memory the program has not
//! touched yet works like on Linux.

use super::paging::{flags, AddressSpace, Leaf, MapError, HUGE_PAGE_SIZE, USER_END};
use super::shared::SharedMemory;
use super::source::MapSource;
use super::user::{huge_pages_allowed, pte_flags, UserMemory};
use super::user::{STACK_GUARD_GAP, STACK_RLIMIT, TASK_SIZE};
use super::vma::{Access, Backing, Vma, PROT_NONE};
use super::Mm;
use super::{cow, frame, page_align_down, phys_to_virt, refcount, PAGE_SIZE};
use crate::errno::Errno;

/// The window a write fault on a page this space owns alone makes writable (its
/// neighbours it also owns alone): 64 KiB.
const REUSE_AROUND: u64 = 16 * PAGE_SIZE;

/// Pages filled around a faulting page (aligned window, inside its area): every fault is a
/// trap to the host on PVM, so touching memory in order costs one fault per 64 KiB.
const FAULT_AROUND_PAGES: u64 = 16;
/// The largest window for sequential access (2 MiB). A fault at the very end of the last
/// window doubles it, like file readahead: on PVM each user fault also costs two CR3
/// switches and a CR2 read that the host emulates, so a program filling fresh memory in
/// order pays for ~16 faults per 64 MiB instead of ~1,000, while random access keeps
/// the small window.
const FAULT_AROUND_MAX_PAGES: u64 = 512;
/// 2 MiB pages are used only while more than this share of all memory stays free
/// afterwards (1/4): a program that touches one byte every few MiB of a reservation
/// larger than RAM gets 2 MiB pages until memory runs low, then 4 KiB ones, instead of
/// being killed for memory it never used.
const HUGE_RESERVE_DIVISOR: u64 = 4;

/// Page-fault error-code bits (Intel SDM vol. 3, 4.7).
const PF_WRITE: u64 = 1 << 1;
const PF_RESERVED: u64 = 1 << 3;
const PF_INSTRUCTION: u64 = 1 << 4;
const PF_PROTECTION_KEY: u64 = 1 << 5;

/// Why a fault could not be resolved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultError {
    /// No area there (SIGSEGV with `SEGV_MAPERR`).
    Unmapped,
    /// The access breaks the area's protection (SIGSEGV with `SEGV_ACCERR`).
    Protection,
    /// A file page wholly past the end of the file, the file could not be read, or its
    /// file system has no page left for a shared mapping (SIGBUS).
    Bus,
    /// No frame left (the program is killed, as by Linux's OOM killer).
    OutOfMemory,
}

/// Resolves a page fault the CPU took in the current process at `addr` (which dropped its
/// cached translation of `addr`: see `cow::break_cow`); `Err` means the access is a real
/// fault and the process gets the signal the error names.
pub fn handle_page_fault(mm: &mut Mm, addr: u64, error_code: u64) -> Result<(), FaultError> {
    if error_code & (PF_RESERVED | PF_PROTECTION_KEY) != 0 {
        return Err(FaultError::Protection);
    }
    let access = if error_code & PF_INSTRUCTION != 0 {
        Access::Exec
    } else if error_code & PF_WRITE != 0 {
        Access::Write
    } else {
        Access::Read
    };
    let Mm { space, mem } = mm;
    mem.fault_checked(space, addr, Some(access), true)
}

/// Reports that the current process runs out of memory and marks it to be killed with
/// status 137 (SIGKILL, as Linux's OOM killer) at its next trap or system-call boundary;
/// the caller fails and unwinds. The kernel carries on.
pub fn oom_kill() {
    let (free, total) = {
        let frames = frame::FRAMES.lock();
        (frames.free_frames(), frames.total_frames())
    };
    crate::kprintln!(
        "astra: {} killed by SIGKILL: out of memory ({} of {} KiB free)",
        crate::task::sched::current_name(),
        free * PAGE_SIZE / 1024,
        total * PAGE_SIZE / 1024
    );
    crate::task::sched::mark_current_fatal(128 + crate::trap::signal::SIGKILL);
}

/// Reads the bytes of a file area at `offset` into `buf`, zero past the end of the file.
fn read_file(vma: &Vma, offset: u64, buf: &mut [u8]) -> Result<(), FaultError> {
    let Backing::File { source, .. } = &vma.backing else {
        buf.fill(0);
        return Ok(());
    };
    let mut done = 0;
    while done < buf.len() {
        let at = offset.checked_add(done as u64).ok_or(FaultError::Bus)?;
        match source.read_at(at, &mut buf[done..]) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(_) => return Err(FaultError::Bus),
        }
    }
    buf[done..].fill(0);
    Ok(())
}

/// The file of a `MAP_SHARED` area that maps the file's own pages.
fn shared_file(vma: &Vma) -> Option<&dyn MapSource> {
    match &vma.backing {
        Backing::File { source, .. } if vma.flags.shared && source.shares_pages() => {
            Some(&**source)
        }
        _ => None,
    }
}

/// Maps the pages of `[start, end)` but `page` that the shared file area's file has
/// already and that nothing maps yet.
fn map_existing_around(
    space: &mut AddressSpace,
    vma: &Vma,
    source: &dyn MapSource,
    page: u64,
    start: u64,
    end: u64,
) {
    let mut at = start;
    while at < end {
        let free = at != page && space.translate(at).is_none();
        if let Some(pa) = vma
            .file_offset(at)
            .filter(|_| free)
            .and_then(|off| source.existing_frame(off / PAGE_SIZE))
        {
            if map_owned_frame(space, vma, at, pa).is_err() {
                break;
            }
        }
        at += PAGE_SIZE;
    }
}

/// True if `page` of a file area lies wholly past the end of its file.
fn past_eof(vma: &Vma, page: u64) -> bool {
    match (&vma.backing, vma.file_offset(page)) {
        (Backing::File { source, .. }, Some(offset)) => offset >= source.size(),
        (Backing::File { .. }, None) => true,
        (Backing::Anonymous | Backing::Shared { .. }, _) => false,
    }
}

/// Maps `page` of a shared anonymous area to its object's frame.
fn map_shared_page(
    space: &mut AddressSpace,
    vma: &Vma,
    object: &SharedMemory,
    offset: u64,
    page: u64,
) -> Result<(), FaultError> {
    let index = (offset + (page - vma.start)) / PAGE_SIZE;
    let pa = object
        .map_page(index)
        .map_err(|_| FaultError::OutOfMemory)?;
    map_owned_frame(space, vma, page, pa)
}

/// Maps `page` of a shared area to frame `pa`, which carries one more owner for the entry
/// (given back if the entry does not take it).
fn map_owned_frame(
    space: &mut AddressSpace,
    vma: &Vma,
    page: u64,
    pa: u64,
) -> Result<(), FaultError> {
    let result = match space.map(page, pa, pte_flags(vma.prot)) {
        Ok(()) => return Ok(()),
        // A parked frame (the same one) is there already: use it, with the right flags.
        Err(MapError::AlreadyMapped) => space
            .protect_range(page, page + PAGE_SIZE, pte_flags(vma.prot), false)
            .map_err(|_| FaultError::OutOfMemory),
        Err(MapError::OutOfMemory) => Err(FaultError::OutOfMemory),
    };
    // The entry did not take the reference.
    refcount::release(pa);
    result
}

/// Gives `page` of `vma` a frame with its first contents.
fn map_new_page(space: &mut AddressSpace, vma: &Vma, page: u64) -> Result<(), FaultError> {
    if let Backing::Shared { object, offset } = &vma.backing {
        return map_shared_page(space, vma, object, *offset, page);
    }
    if past_eof(vma, page) {
        return Err(FaultError::Bus);
    }
    if let Some(source) = shared_file(vma) {
        // The file's own page: stores are the file's, its writes show here.
        let index = vma.file_offset(page).ok_or(FaultError::Bus)? / PAGE_SIZE;
        let pa = source.shared_frame(index).map_err(|e| match e {
            Errno::ENOMEM => FaultError::OutOfMemory,
            // A full tmpfs, or the file shrank meanwhile: SIGBUS, as Linux's shmem.
            _ => FaultError::Bus,
        })?;
        return map_owned_frame(space, vma, page, pa);
    }
    let pa = frame::FRAMES
        .lock()
        .alloc()
        .ok_or(FaultError::OutOfMemory)?;
    // SAFETY: the frame was just allocated for us and is direct-mapped.
    let bytes =
        unsafe { core::slice::from_raw_parts_mut(phys_to_virt(pa) as *mut u8, PAGE_SIZE as usize) };
    let offset = vma.file_offset(page).unwrap_or(0);
    let filled = read_file(vma, offset, bytes).and_then(|()| {
        match space.map(page, pa, pte_flags(vma.prot)) {
            Ok(()) => Ok(true),
            // A parked frame is there already (a stale entry): use it, with the right flags.
            Err(MapError::AlreadyMapped) => space
                .protect_range(page, page + PAGE_SIZE, pte_flags(vma.prot), true)
                .map(|()| false)
                .map_err(|_| FaultError::OutOfMemory),
            Err(MapError::OutOfMemory) => Err(FaultError::OutOfMemory),
        }
    });
    if filled != Ok(true) {
        frame::free(pa);
    }
    filled.map(|_| ())
}

/// True if a 2 MiB page may be spent now: enough memory stays free afterwards.
pub(super) fn huge_page_affordable(free_frames: u64, total_frames: u64) -> bool {
    free_frames >= total_frames / HUGE_RESERVE_DIVISOR + frame::BLOCK_FRAMES
}

/// Maps the whole 2 MiB region around `page` with one zeroed 2 MiB page if `vma` may
/// have one there: the region lies inside the area, nothing in it is mapped yet, memory
/// is plentiful and an aligned block is free. False (nothing changed) otherwise.
fn map_huge_page(space: &mut AddressSpace, vma: &Vma, page: u64) -> bool {
    let base = page & !(HUGE_PAGE_SIZE - 1);
    let inside = base >= vma.start
        && base
            .checked_add(HUGE_PAGE_SIZE)
            .is_some_and(|e| e <= vma.end);
    if !inside || !huge_pages_allowed(vma) || !space.huge_slot_free(base) {
        return false;
    }
    let affordable = {
        let frames = frame::FRAMES.lock();
        huge_page_affordable(frames.free_frames(), frames.total_frames())
    };
    if !affordable {
        return false;
    }
    let Some(block) = frame::alloc_block_zeroed() else {
        return false;
    };
    if space.map_huge(base, block, pte_flags(vma.prot)).is_err() {
        frame::free_block(block);
        return false;
    }
    true
}

fn in_user_range(va: u64, len: usize) -> bool {
    va.checked_add(len as u64)
        .is_some_and(|end| end <= USER_END)
}

impl UserMemory {
    /// The start of the grows-down area `addr` lies below, if that area may grow down to
    /// `addr`'s page: at most [`STACK_RLIMIT`] in all, and [`STACK_GUARD_GAP`] above the
    /// next accessible area.
    fn growable_stack(&self, addr: u64) -> Option<u64> {
        let page = page_align_down(addr);
        let above = self.vmas.next_at_or_after(addr)?;
        if !above.flags.growsdown || above.start <= addr || above.end - page > STACK_RLIMIT {
            return None;
        }
        if let Some(prev) = self.vmas.prev_before(page) {
            let guarded = prev.prot != PROT_NONE && !prev.flags.growsdown;
            if guarded && prev.end.saturating_add(STACK_GUARD_GAP) > page {
                return None;
            }
        }
        Some(above.start)
    }

    /// Resolves a fault at `addr` for `access`: grows a stack, fills a missing page (and
    /// its neighbours in the fault-around window), or repairs a stale page-table entry.
    pub fn fault(
        &mut self,
        space: &mut AddressSpace,
        addr: u64,
        access: Access,
    ) -> Result<(), FaultError> {
        self.fault_checked(space, addr, Some(access), false)
    }

    /// [`Self::fault`]; with `access` `None` the protection is not checked (the kernel
    /// writing a program's initial image). `cpu_faulted`: the CPU took a page fault at
    /// `addr` for this (not the kernel resolving one ahead of an access).
    fn fault_checked(
        &mut self,
        space: &mut AddressSpace,
        addr: u64,
        access: Option<Access>,
        cpu_faulted: bool,
    ) -> Result<(), FaultError> {
        if addr >= TASK_SIZE {
            return Err(FaultError::Unmapped);
        }
        let page = page_align_down(addr);
        if self.vmas.find(addr).is_none() {
            let old_start = self.growable_stack(addr).ok_or(FaultError::Unmapped)?;
            if !self.vmas.extend_down(old_start, page) {
                return Err(FaultError::Unmapped);
            }
        }
        let vma = self.vmas.find(addr).ok_or(FaultError::Unmapped)?;
        if access.is_some_and(|a| !vma.allows(a)) {
            return Err(FaultError::Protection);
        }
        let want = pte_flags(vma.prot);
        let private = !vma.flags.shared;
        if let Some((pa, have)) = space.translate(page) {
            let (leaf, frame) = if have & flags::HUGE != 0 {
                (Leaf::Huge, pa & !(HUGE_PAGE_SIZE - 1))
            } else {
                (Leaf::Small, pa & !(PAGE_SIZE - 1))
            };
            // A write to a private page whose frame another owner shares: copy on write
            // (the kernel's own write keeps the page's protection).
            let writing = access.is_none_or(|a| a == Access::Write);
            if writing && private && leaf.shared(frame) {
                self.spurious = (0, 0);
                let after = match access {
                    Some(_) => want,
                    None => have & (flags::USER | flags::WRITABLE | flags::NO_EXECUTE),
                };
                return cow::break_cow(space, page, after, self.split_huge_cow, cpu_faulted);
            }
            // A shared frame of a private area stays read-only until written.
            let want = if private && leaf.shared(frame) {
                want & !flags::WRITABLE
            } else {
                want
            };
            // Present already: the access is allowed, so the entry is stale. A 2 MiB page
            // is repaired whole when the area covers it (one protection), else split.
            // A write to a private page this space alone owns again (its fork's child
            // exited or wrote its own copy) makes its neighbours in the same area writable
            // too, those this space alone owns (`protect_range` keeps shared ones
            // read-only): after a fork, every page a parent touches would otherwise fault
            // once more, each a trap to the host on PVM.
            let (start, end) = if have & flags::HUGE != 0
                && vma.start <= page & !(HUGE_PAGE_SIZE - 1)
                && (page & !(HUGE_PAGE_SIZE - 1)) + HUGE_PAGE_SIZE <= vma.end
            {
                let base = page & !(HUGE_PAGE_SIZE - 1);
                (base, base + HUGE_PAGE_SIZE)
            } else if writing && private && have & flags::HUGE == 0 {
                let base = page & !(REUSE_AROUND - 1);
                (base.max(vma.start), (base + REUSE_AROUND).min(vma.end))
            } else {
                (page, page + PAGE_SIZE)
            };
            let have = have & (flags::USER | flags::WRITABLE | flags::NO_EXECUTE);
            if have != want {
                space
                    .protect_range(start, end, want, private)
                    .map_err(|_| FaultError::OutOfMemory)?;
                self.spurious = (0, 0);
                return Ok(());
            }
            // Nothing to repair: retry a few times after a flush (a host's stale shadow
            // entry), then give up rather than loop forever on the same access.
            if self.spurious.0 == page && self.spurious.1 >= 3 {
                return Err(FaultError::Protection);
            }
            let count = if self.spurious.0 == page {
                self.spurious.1 + 1
            } else {
                1
            };
            self.spurious = (page, count);
            crate::arch::cpu::invlpg(page);
            return Ok(());
        }
        self.spurious = (0, 0);
        if map_huge_page(space, vma, page) {
            let end = (page & !(HUGE_PAGE_SIZE - 1)) + HUGE_PAGE_SIZE;
            self.fault_window = (end, FAULT_AROUND_MAX_PAGES);
            return Ok(());
        }
        map_new_page(space, vma, page)?;
        // Fill the rest of the window while frames last; only `page` was required.
        let (start, end) = if page == self.fault_window.0 {
            let pages = (self.fault_window.1 * 2).min(FAULT_AROUND_MAX_PAGES);
            (page, page.saturating_add(pages * PAGE_SIZE).min(vma.end))
        } else {
            let window = FAULT_AROUND_PAGES * PAGE_SIZE;
            (
                (page & !(window - 1)).max(vma.start),
                ((page & !(window - 1)) + window).min(vma.end),
            )
        };
        self.fault_window = (end, (end - start) / PAGE_SIZE);
        if let Some(source) = shared_file(vma) {
            // Only the pages the file has: a hole gets a page when it is touched.
            map_existing_around(space, vma, source, page, start, end);
            return Ok(());
        }
        let mut at = start;
        while at < end {
            if at != page && space.translate(at).is_none() && map_new_page(space, vma, at).is_err()
            {
                break;
            }
            at += PAGE_SIZE;
        }
        Ok(())
    }

    /// Faults in every page of `[start, end)` for `access` (MAP_POPULATE, MADV_POPULATE_*).
    pub fn populate(
        &mut self,
        space: &mut AddressSpace,
        start: u64,
        end: u64,
        access: Access,
    ) -> Result<(), FaultError> {
        let mut page = page_align_down(start);
        while page < end {
            let ready = space.translate(page).is_some_and(|(_, f)| {
                f & flags::USER != 0 && (access != Access::Write || f & flags::WRITABLE != 0)
            });
            if !ready {
                self.fault(space, page, access)?;
            }
            page += PAGE_SIZE;
        }
        Ok(())
    }

    /// Copies user memory at `va` into `buf` as a read by the program would see it,
    /// without faulting anything in: untouched anonymous memory reads as zeros, an
    /// untouched file page as the file's bytes. EFAULT where the program would fault.
    pub fn read(&self, space: &AddressSpace, va: u64, buf: &mut [u8]) -> Result<(), Errno> {
        if !in_user_range(va, buf.len()) {
            return Err(Errno::EFAULT);
        }
        let mut done = 0usize;
        while done < buf.len() {
            let cur = va + done as u64;
            let chunk = ((PAGE_SIZE - cur % PAGE_SIZE) as usize).min(buf.len() - done);
            let dst = &mut buf[done..done + chunk];
            match space.translate(cur) {
                Some((pa, f)) if f & flags::USER != 0 => {
                    // SAFETY: `pa..pa + chunk` lies in one mapped user frame, seen through
                    // the direct map; `dst` is ours.
                    let src = unsafe {
                        core::slice::from_raw_parts(phys_to_virt(pa) as *const u8, chunk)
                    };
                    dst.copy_from_slice(src);
                }
                _ => match self.vmas.find(cur) {
                    Some(vma) if vma.allows(Access::Read) => {
                        if past_eof(vma, page_align_down(cur)) {
                            return Err(Errno::EFAULT);
                        }
                        if let Backing::Shared { object, offset } = &vma.backing {
                            object.read(offset + (cur - vma.start), dst);
                        } else {
                            let offset = vma.file_offset(cur).unwrap_or(0);
                            read_file(vma, offset, dst).map_err(|_| Errno::EFAULT)?;
                        }
                    }
                    Some(_) => return Err(Errno::EFAULT),
                    // Below a stack that would grow there: fresh zero pages.
                    None if self.growable_stack(cur).is_some() => dst.fill(0),
                    None => return Err(Errno::EFAULT),
                },
            }
            done += chunk;
        }
        Ok(())
    }

    /// Copies `data` to user memory at `va` as a write by the program would, faulting
    /// pages in (and growing a stack) as needed.
    pub fn write(
        &mut self,
        space: &mut AddressSpace,
        va: u64,
        data: &[u8],
    ) -> Result<(), FaultError> {
        self.write_checked(space, va, data, true)
    }

    /// Like [`Self::write`] but ignoring write protection: the kernel writing a program's
    /// initial image (its stack, the zeroed tail of a segment), as Linux's exec does.
    pub fn write_as_kernel(
        &mut self,
        space: &mut AddressSpace,
        va: u64,
        data: &[u8],
    ) -> Result<(), FaultError> {
        self.write_checked(space, va, data, false)
    }

    /// True if the kernel must copy the present page at `va` (frame `pa`, entry flags
    /// `page_flags`) before writing it past its protection: a read-only page of a private
    /// area (or of none) whose frame another owner shares.
    fn copy_before_write(&self, va: u64, pa: u64, page_flags: u64) -> bool {
        let leaf = if page_flags & flags::HUGE != 0 {
            Leaf::Huge
        } else {
            Leaf::Small
        };
        let frame = pa & !(leaf.size() - 1);
        page_flags & flags::WRITABLE == 0
            && self.vmas.find(va).is_none_or(|v| !v.flags.shared)
            && leaf.shared(frame)
    }

    fn write_checked(
        &mut self,
        space: &mut AddressSpace,
        va: u64,
        data: &[u8],
        check: bool,
    ) -> Result<(), FaultError> {
        if !in_user_range(va, data.len()) {
            return Err(FaultError::Unmapped);
        }
        let need = if check {
            flags::USER | flags::WRITABLE
        } else {
            flags::PRESENT
        };
        let mut done = 0usize;
        while done < data.len() {
            let cur = va + done as u64;
            let chunk = ((PAGE_SIZE - cur % PAGE_SIZE) as usize).min(data.len() - done);
            let fault = match space.translate(cur) {
                None => true,
                Some((pa, f)) => f & need != need || (!check && self.copy_before_write(cur, pa, f)),
            };
            if fault {
                self.fault_checked(space, cur, check.then_some(Access::Write), false)?;
            }
            let (pa, _) = space.translate(cur).ok_or(FaultError::Unmapped)?;
            // SAFETY: `pa..pa + chunk` lies in one mapped user frame, seen through the
            // direct map.
            unsafe {
                core::ptr::copy_nonoverlapping(
                    data[done..].as_ptr(),
                    phys_to_virt(pa) as *mut u8,
                    chunk,
                )
            };
            done += chunk;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_pages_stop_while_a_quarter_of_memory_is_still_free() {
        let total = 32 * 1024; // 128 MiB
        assert!(huge_page_affordable(total, total));
        assert!(huge_page_affordable(total / 4 + 512, total));
        assert!(!huge_page_affordable(total / 4 + 511, total));
        assert!(!huge_page_affordable(100, total));
        // A 1 GiB reservation touched every 16 MiB in a 128 MiB guest: 2 MiB pages for
        // the first touches only, then 4 KiB windows; it never runs out.
        let mut free = total - 2048;
        let mut huge = 0;
        for _ in 0..64 {
            if huge_page_affordable(free, total) {
                free -= 512;
                huge += 1;
            } else {
                free -= 16;
            }
        }
        assert!(
            huge > 10 && free > total / 5,
            "{huge} huge pages, {free} frames left"
        );
    }
}

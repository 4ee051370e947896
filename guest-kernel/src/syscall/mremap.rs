//! mremap: growing, shrinking and moving mappings, as Linux's `mm/mremap.c` does.
//!
//! musl's `realloc` of large blocks moves them with `MREMAP_MAYMOVE`, and musl's
//! `pthread_getattr_np` finds the main thread's stack by probing
//! `mremap(p, PAGE, 2 * PAGE, 0)` downwards while it fails with ENOMEM (a page inside an
//! area that cannot grow in place) until EFAULT (no area there): so the errno of each
//! case matters, not only success.

use super::{Ctx, Errno, SysResult};
use crate::mm::user::{UserMemory, TASK_SIZE};
use crate::mm::PAGE_SIZE;

const MREMAP_MAYMOVE: u64 = 1;
const MREMAP_FIXED: u64 = 2;
const MREMAP_DONTUNMAP: u64 = 4;

/// Checked `mremap` arguments (lengths page aligned).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Remap {
    addr: u64,
    old_len: u64,
    new_len: u64,
    new_addr: u64,
    may_move: bool,
    fixed: bool,
    dont_unmap: bool,
}

/// Linux's PAGE_ALIGN, which wraps to 0 on overflow.
fn page_align_wrapping(v: u64) -> u64 {
    v.wrapping_add(PAGE_SIZE - 1) & !(PAGE_SIZE - 1)
}

/// The checks of the `mremap` entry point that need no area.
fn decode(
    addr: u64,
    old_len: u64,
    new_len: u64,
    flags: u64,
    new_addr: u64,
) -> Result<Remap, Errno> {
    if flags & !(MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP) != 0 {
        return Err(Errno::EINVAL);
    }
    let may_move = flags & MREMAP_MAYMOVE != 0;
    let fixed = flags & MREMAP_FIXED != 0;
    let dont_unmap = flags & MREMAP_DONTUNMAP != 0;
    if fixed && !may_move {
        return Err(Errno::EINVAL);
    }
    // DONTUNMAP always moves and never resizes.
    if dont_unmap && (!may_move || old_len != new_len) {
        return Err(Errno::EINVAL);
    }
    if !addr.is_multiple_of(PAGE_SIZE) {
        return Err(Errno::EINVAL);
    }
    let old_len = page_align_wrapping(old_len);
    let new_len = page_align_wrapping(new_len);
    if new_len == 0 {
        return Err(Errno::EINVAL);
    }
    Ok(Remap {
        addr,
        old_len,
        new_len,
        new_addr,
        may_move,
        fixed,
        dont_unmap,
    })
}

/// The checks of a move to a given place (`mremap_to`).
fn check_target(r: &Remap) -> Result<(), Errno> {
    if !r.new_addr.is_multiple_of(PAGE_SIZE)
        || r.new_len > TASK_SIZE
        || r.new_addr > TASK_SIZE - r.new_len
    {
        return Err(Errno::EINVAL);
    }
    // The old and new ranges must not overlap.
    let old_end = r.addr.saturating_add(r.old_len);
    if old_end > r.new_addr && r.new_addr + r.new_len > r.addr {
        return Err(Errno::EINVAL);
    }
    Ok(())
}

/// Linux's `vma_to_resize`: `[addr, addr + old_len)` must lie in one area.
fn check_resize(mem: &UserMemory, addr: u64, old_len: u64, new_len: u64) -> Result<(), Errno> {
    let vma = mem.vmas().find(addr).ok_or(Errno::EFAULT)?;
    if old_len == 0 {
        // Linux duplicates a shared mapping given old_len 0 and refuses a private one;
        // astra cannot share pages between two mappings yet, so it refuses both.
        return Err(Errno::EINVAL);
    }
    if old_len > vma.end - addr {
        return Err(Errno::EFAULT);
    }
    if new_len != old_len {
        let offset_overflows = vma
            .file_offset(addr)
            .is_some_and(|off| off.checked_add(new_len).is_none());
        if offset_overflows {
            return Err(Errno::EINVAL);
        }
    }
    Ok(())
}

/// mremap(old_address, old_size, new_size, flags, new_address)
pub fn mremap(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    let r = decode(a[0], a[1], a[2], a[3], a[4])?;
    let mut mm = ctx.task.mm.lock();
    let proc = &mut *mm;
    let (mem, space) = (&mut proc.mem, &mut proc.space);
    if mem.vmas().find(r.addr).is_none() {
        return Err(Errno::EFAULT);
    }
    if r.fixed || r.dont_unmap {
        check_target(&r)?;
        if r.fixed {
            mem.unmap(space, r.new_addr, r.new_addr + r.new_len)?;
        }
        let mut old_len = r.old_len;
        if old_len > r.new_len {
            mem.unmap(space, r.addr + r.new_len, r.addr + old_len)?;
            old_len = r.new_len;
        }
        check_resize(mem, r.addr, old_len, r.new_len)?;
        let dest = if r.fixed {
            r.new_addr
        } else {
            mem.find_free_for_move(r.new_len, r.new_addr, r.addr)?
        };
        mem.move_range(space, r.addr, old_len, dest, r.new_len, r.dont_unmap)?;
        return Ok(dest);
    }
    // Shrinking always works in place: it unmaps the tail.
    if r.old_len >= r.new_len {
        if r.old_len > r.new_len {
            mem.unmap(space, r.addr + r.new_len, r.addr + r.old_len)?;
        }
        return Ok(r.addr);
    }
    check_resize(mem, r.addr, r.old_len, r.new_len)?;
    let area_end = mem.vmas().find(r.addr).map_or(0, |v| v.end);
    if r.addr + r.old_len == area_end && mem.grow_in_place(area_end, r.new_len - r.old_len) {
        return Ok(r.addr);
    }
    if !r.may_move {
        return Err(Errno::ENOMEM);
    }
    let dest = mem.find_free_for_move(r.new_len, 0, r.addr)?;
    mem.move_range(space, r.addr, r.old_len, dest, r.new_len, false)?;
    Ok(dest)
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: u64 = PAGE_SIZE;

    #[test]
    fn flag_combinations() {
        assert_eq!(decode(P, P, 2 * P, 8, 0), Err(Errno::EINVAL));
        assert_eq!(decode(P, P, 2 * P, MREMAP_FIXED, 0), Err(Errno::EINVAL));
        assert_eq!(decode(P, P, 2 * P, MREMAP_DONTUNMAP, 0), Err(Errno::EINVAL));
        let both = MREMAP_DONTUNMAP | MREMAP_MAYMOVE;
        assert_eq!(decode(P, P, 2 * P, both, 0), Err(Errno::EINVAL), "resizes");
        assert!(decode(P, P, P, both, 0).is_ok());
        // Compared before rounding, as Linux does.
        assert_eq!(decode(P, P, P - 1, both, 0), Err(Errno::EINVAL));
        let r = decode(P, P, 3 * P, MREMAP_MAYMOVE | MREMAP_FIXED, 9 * P).unwrap();
        assert!(r.may_move && r.fixed && !r.dont_unmap);
    }

    #[test]
    fn lengths_and_alignment() {
        assert_eq!(decode(P + 1, P, P, 0, 0), Err(Errno::EINVAL));
        assert_eq!(decode(P, P, 0, 0, 0), Err(Errno::EINVAL));
        assert_eq!(
            decode(P, P, u64::MAX, 0, 0),
            Err(Errno::EINVAL),
            "wraps to 0"
        );
        let r = decode(P, 1, P + 1, 0, 0).unwrap();
        assert_eq!((r.old_len, r.new_len), (P, 2 * P));
        // old_len 0 is let through here (the area decides).
        assert_eq!(decode(P, 0, P, 0, 0).map(|r| r.old_len), Ok(0));
        // The musl stack probe's arguments are valid.
        assert!(decode(0x7fff_0000_0000, P, 2 * P, 0, 0).is_ok());
    }

    #[test]
    fn move_targets() {
        let r = |addr, old_len, new_addr, new_len| Remap {
            addr,
            old_len,
            new_len,
            new_addr,
            may_move: true,
            fixed: true,
            dont_unmap: false,
        };
        assert!(check_target(&r(10 * P, 2 * P, 20 * P, 4 * P)).is_ok());
        assert!(
            check_target(&r(10 * P, 2 * P, 6 * P, 4 * P)).is_ok(),
            "ends at addr"
        );
        assert_eq!(
            check_target(&r(10 * P, 2 * P, 7 * P, 4 * P)),
            Err(Errno::EINVAL)
        );
        assert_eq!(
            check_target(&r(10 * P, 2 * P, 11 * P, P)),
            Err(Errno::EINVAL)
        );
        assert_eq!(
            check_target(&r(10 * P, 2 * P, 20 * P + 1, P)),
            Err(Errno::EINVAL)
        );
        assert_eq!(
            check_target(&r(10 * P, P, TASK_SIZE, P)),
            Err(Errno::EINVAL)
        );
        assert!(check_target(&r(10 * P, P, TASK_SIZE - P, P)).is_ok());
        assert_eq!(
            check_target(&r(10 * P, P, 0, TASK_SIZE + P)),
            Err(Errno::EINVAL)
        );
    }
}

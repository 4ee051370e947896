//! Checked access to user memory.
//!
//! Every pointer a process hands the kernel goes through here. [`read_user`] and
//! [`write_user`] see memory as the program does: a pointer into an area it has not
//! touched yet works (a write faults the page in, a read sees zeros or the file's bytes),
//! while an unmapped, `PROT_NONE` or kernel address gives EFAULT. The `space`-only
//! functions accept only pages already mapped with the user bit (and writable, for
//! writes): they serve pages the kernel mapped itself and read-only peeks such as
//! `--strace`. Data moves through the kernel's direct map, so a hostile pointer can never
//! make the kernel touch its own memory or fault.

use alloc::vec::Vec;

use super::paging::{flags, AddressSpace, USER_END};
use super::user::{oom_kill, FaultError};
use super::Mm;
use super::{phys_to_virt, PAGE_SIZE};
use crate::errno::Errno;

/// Copies `buf.len()` bytes from the user memory of `mm` at `va`, as a read by the
/// program would see them; nothing is faulted in.
pub fn read_user(mm: &Mm, va: u64, buf: &mut [u8]) -> Result<(), Errno> {
    mm.mem.read(&mm.space, va, buf)
}

/// Copies `data` to the user memory of `mm` at `va` as a write by the program would,
/// faulting pages in. Running out of memory on the way marks the current task to be
/// killed (status 137, as by Linux's OOM killer) at its next boundary and fails with
/// ENOMEM, so the caller unwinds with no lock held.
pub fn write_user(mm: &mut Mm, va: u64, data: &[u8]) -> Result<(), Errno> {
    let Mm { space, mem } = mm;
    match mem.write(space, va, data) {
        Ok(()) => Ok(()),
        Err(FaultError::OutOfMemory) => {
            oom_kill();
            Err(Errno::ENOMEM)
        }
        Err(FaultError::Unmapped | FaultError::Protection | FaultError::Bus) => Err(Errno::EFAULT),
    }
}

fn check_range(va: u64, len: usize) -> Result<(), Errno> {
    let end = va.checked_add(len as u64).ok_or(Errno::EFAULT)?;
    if end > USER_END {
        return Err(Errno::EFAULT);
    }
    Ok(())
}

/// Calls `f(kernel_va, chunk_len)` for each page-sized piece of `[va, va + len)`.
fn for_each_chunk(
    space: &AddressSpace,
    va: u64,
    len: usize,
    need: u64,
    mut f: impl FnMut(u64, usize, usize),
) -> Result<(), Errno> {
    check_range(va, len)?;
    let mut done = 0usize;
    while done < len {
        let cur = va + done as u64;
        let in_page = (PAGE_SIZE - (cur % PAGE_SIZE)) as usize;
        let chunk = in_page.min(len - done);
        let (pa, page_flags) = space.translate(cur).ok_or(Errno::EFAULT)?;
        if page_flags & need != need {
            return Err(Errno::EFAULT);
        }
        f(phys_to_virt(pa), done, chunk);
        done += chunk;
    }
    Ok(())
}

/// Copies `buf.len()` bytes from user address `va`.
pub fn copy_from_user(space: &AddressSpace, va: u64, buf: &mut [u8]) -> Result<(), Errno> {
    let len = buf.len();
    for_each_chunk(
        space,
        va,
        len,
        flags::PRESENT | flags::USER,
        |kva, off, n| {
            // SAFETY: kva..kva+n is mapped user memory seen through the direct map, and
            // off..off+n is within buf.
            unsafe {
                core::ptr::copy_nonoverlapping(kva as *const u8, buf[off..off + n].as_mut_ptr(), n)
            };
        },
    )
}

/// Copies `data` to user address `va` (pages must be user-writable).
pub fn copy_to_user(space: &AddressSpace, va: u64, data: &[u8]) -> Result<(), Errno> {
    for_each_chunk(
        space,
        va,
        data.len(),
        flags::PRESENT | flags::USER | flags::WRITABLE,
        |kva, off, n| {
            // SAFETY: as in copy_from_user, in the other direction.
            unsafe {
                core::ptr::copy_nonoverlapping(data[off..off + n].as_ptr(), kva as *mut u8, n)
            };
        },
    )
}

/// Reads `len` bytes from user memory into a new vector.
pub fn read_vec(space: &AddressSpace, va: u64, len: usize) -> Result<Vec<u8>, Errno> {
    let mut buf = alloc::vec![0u8; len];
    copy_from_user(space, va, &mut buf)?;
    Ok(buf)
}

/// Reads a plain value (a `u64`, an iovec...) from user memory.
pub fn read_u64(space: &AddressSpace, va: u64) -> Result<u64, Errno> {
    let mut bytes = [0u8; 8];
    copy_from_user(space, va, &mut bytes)?;
    Ok(u64::from_le_bytes(bytes))
}

/// Plain data that may be copied to and from user memory byte for byte.
///
/// # Safety
/// The type must be `#[repr(C)]` (or a primitive), contain no padding that leaks kernel
/// data when written out, and accept every bit pattern when read in.
pub unsafe trait Pod: Copy {}

// SAFETY: primitives accept every bit pattern and have no padding.
unsafe impl Pod for u8 {}
// SAFETY: as above.
unsafe impl Pod for u16 {}
// SAFETY: as above.
unsafe impl Pod for u32 {}
// SAFETY: as above.
unsafe impl Pod for u64 {}
// SAFETY: as above.
unsafe impl Pod for i32 {}
// SAFETY: as above.
unsafe impl Pod for i64 {}
// SAFETY: arrays of Pod are Pod.
unsafe impl<T: Pod, const N: usize> Pod for [T; N] {}

/// Builds a `T` from bytes that `read` fills.
pub fn read_obj_with<T: Pod>(
    read: impl FnOnce(&mut [u8]) -> Result<(), Errno>,
) -> Result<T, Errno> {
    let mut value = core::mem::MaybeUninit::<T>::zeroed();
    // SAFETY: the slice covers exactly the value's bytes, which we own and which were
    // zero-initialised.
    let bytes = unsafe {
        core::slice::from_raw_parts_mut(value.as_mut_ptr() as *mut u8, core::mem::size_of::<T>())
    };
    read(bytes)?;
    // SAFETY: every byte is initialised and `T: Pod` accepts every bit pattern.
    Ok(unsafe { value.assume_init() })
}

/// The bytes of a plain-data value.
pub fn obj_bytes<T: Pod>(value: &T) -> &[u8] {
    // SAFETY: `T: Pod` has no padding, so all its bytes are initialised; the slice
    // borrows `value`.
    unsafe {
        core::slice::from_raw_parts(value as *const T as *const u8, core::mem::size_of::<T>())
    }
}

/// Reads a `T` from user address `va`.
pub fn read_obj<T: Pod>(space: &AddressSpace, va: u64) -> Result<T, Errno> {
    read_obj_with(|bytes| copy_from_user(space, va, bytes))
}

/// Writes `value` to user address `va`.
pub fn write_obj<T: Pod>(space: &AddressSpace, va: u64, value: &T) -> Result<(), Errno> {
    copy_to_user(space, va, obj_bytes(value))
}

/// Reads a NUL-terminated string of at most `max` bytes (the NUL excluded).
pub fn read_cstr(space: &AddressSpace, va: u64, max: usize) -> Result<Vec<u8>, Errno> {
    read_cstr_with(|at, chunk| copy_from_user(space, at, chunk), va, max)
}

/// Reads a NUL-terminated string of at most `max` bytes (the NUL excluded) a page at a
/// time through `read(address, chunk)`: ENAMETOOLONG if no NUL comes within `max + 1`.
pub fn read_cstr_with(
    mut read: impl FnMut(u64, &mut [u8]) -> Result<(), Errno>,
    va: u64,
    max: usize,
) -> Result<Vec<u8>, Errno> {
    let mut out = Vec::new();
    let mut cur = va;
    loop {
        let in_page = (PAGE_SIZE - (cur % PAGE_SIZE)) as usize;
        let mut chunk = alloc::vec![0u8; in_page.min(max + 1 - out.len())];
        read(cur, &mut chunk)?;
        if let Some(nul) = chunk.iter().position(|&b| b == 0) {
            out.extend_from_slice(&chunk[..nul]);
            return Ok(out);
        }
        out.extend_from_slice(&chunk);
        if out.len() > max {
            return Err(Errno::ENAMETOOLONG);
        }
        cur += chunk.len() as u64;
    }
}

//! execve's arguments: copying `argv` and `envp` out of the caller's memory within Linux's
//! limits (`fs/exec.c`: `count`, `bprm_stack_limits`, `copy_strings`).
//!
//! - each string, with its NUL, is at most [`MAX_ARG_STRLEN`] (128 KiB): E2BIG past it;
//! - strings and pointers together get a quarter of the stack limit, capped at 6 MiB
//!   (three quarters of the default 8 MiB) and never under [`ARG_MAX`] (32 pages); the
//!   pointers are counted first (`(max(argc, 1) + envc) * 8` bytes), then the file name
//!   and every string as it is copied: E2BIG when they outgrow it;
//! - a NULL `argv` or `envp` is an empty list; an unreadable pointer or string is EFAULT.
//!
//! Memory is read through a closure (`read(address, buffer)`, all of it or an error), so
//! the host tests drive it with a plain byte map. Nothing here allocates more than the
//! limit allows, and every allocation is fallible (ENOMEM).

use alloc::vec::Vec;

use crate::syscall::Errno;

pub use super::stack::MAX_ARG_STRLEN;
/// Most strings in one list (Linux `MAX_ARG_STRINGS`).
pub const MAX_ARG_STRINGS: usize = 0x7fff_ffff;
/// The least room strings get, whatever the stack limit (Linux `ARG_MAX`: 32 pages).
pub const ARG_MAX: usize = 32 * 4096;
/// The default stack limit (Linux `_STK_LIM`); strings get at most 3/4 of it.
const STK_LIM: u64 = 8 << 20;
const PAGE: u64 = 4096;

/// The arguments of an exec, copied into the kernel.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExecArgs {
    /// `argv` strings, without their NULs.
    pub argv: Vec<Vec<u8>>,
    /// `envp` strings, without their NULs.
    pub envp: Vec<Vec<u8>>,
    /// Bytes still free for strings under the limit (what a `#!` line may add).
    pub room: usize,
}

/// The bytes that strings and pointers together may take under stack limit
/// `stack_rlimit`: a quarter of it, at most 3/4 of `_STK_LIM`, at least [`ARG_MAX`].
fn arg_limit(stack_rlimit: u64) -> u64 {
    (STK_LIM / 4 * 3).min(stack_rlimit / 4).max(ARG_MAX as u64)
}

/// The bytes that the strings of `argc` arguments and `envc` environment entries may take
/// under stack limit `stack_rlimit` once their pointers are counted; E2BIG if the
/// pointers alone do not fit (Linux `bprm_stack_limits`).
pub fn string_room(stack_rlimit: u64, argc: usize, envc: usize) -> Result<usize, Errno> {
    let limit = arg_limit(stack_rlimit);
    let pointers = argc
        .max(1)
        .checked_add(envc)
        .and_then(|n| n.checked_mul(8))
        .ok_or(Errno::E2BIG)? as u64;
    if limit <= pointers {
        return Err(Errno::E2BIG);
    }
    usize::try_from(limit - pointers).map_err(|_| Errno::E2BIG)
}

/// Reads the NULL-terminated pointer array at `list` (NULL: empty): EFAULT if it cannot
/// be read, E2BIG past `max` entries (Linux's `count` reads on to [`MAX_ARG_STRINGS`]
/// and fails later, in `bprm_stack_limits`; stopping where the pointers alone could not
/// fit gives the same E2BIG without reading or storing a huge array).
fn read_pointers(
    read: &mut impl FnMut(u64, &mut [u8]) -> Result<(), Errno>,
    list: u64,
    max: usize,
) -> Result<Vec<u64>, Errno> {
    let mut out = Vec::new();
    if list == 0 {
        return Ok(out);
    }
    loop {
        let at = (out.len() as u64)
            .checked_mul(8)
            .and_then(|off| list.checked_add(off))
            .ok_or(Errno::EFAULT)?;
        let mut word = [0u8; 8];
        read(at, &mut word)?;
        let ptr = u64::from_le_bytes(word);
        if ptr == 0 {
            return Ok(out);
        }
        if out.len() >= max.min(MAX_ARG_STRINGS) {
            return Err(Errno::E2BIG);
        }
        out.try_reserve(1).map_err(|_| Errno::ENOMEM)?;
        out.push(ptr);
    }
}

/// Reads the string at `va` a page at a time: its bytes without the NUL. E2BIG if no NUL
/// comes within [`MAX_ARG_STRLEN`] bytes or the string outgrows `room` (which it takes
/// from), EFAULT if it runs into memory that cannot be read before either.
fn read_string(
    read: &mut impl FnMut(u64, &mut [u8]) -> Result<(), Errno>,
    va: u64,
    room: &mut usize,
) -> Result<Vec<u8>, Errno> {
    let mut out: Vec<u8> = Vec::new();
    let mut at = va;
    loop {
        let in_page = (PAGE - at % PAGE) as usize;
        // Like Linux's strnlen_user: never past MAX_ARG_STRLEN bytes.
        let want = in_page.min(MAX_ARG_STRLEN - out.len());
        let mut chunk = [0u8; PAGE as usize];
        let chunk = &mut chunk[..want];
        read(at, chunk)?;
        let nul = chunk.iter().position(|&b| b == 0);
        let take = nul.unwrap_or(chunk.len());
        out.try_reserve(take).map_err(|_| Errno::ENOMEM)?;
        out.extend_from_slice(&chunk[..take]);
        if nul.is_some() {
            // With its NUL, as Linux counts it; at most MAX_ARG_STRLEN by the reads.
            let len = out.len() + 1;
            if len > *room {
                return Err(Errno::E2BIG);
            }
            *room -= len;
            return Ok(out);
        }
        if out.len() >= MAX_ARG_STRLEN {
            return Err(Errno::E2BIG);
        }
        at = at.checked_add(chunk.len() as u64).ok_or(Errno::EFAULT)?;
    }
}

/// Copies execve's `argv` and `envp` (user addresses of NULL-terminated pointer arrays)
/// for a program file named by `filename_len` bytes, under stack limit `stack_rlimit`.
/// Errors as Linux: EFAULT for a bad pointer, E2BIG past the limits, ENOMEM if the kernel
/// runs out of memory on the way.
pub fn copy_args(
    mut read: impl FnMut(u64, &mut [u8]) -> Result<(), Errno>,
    argv: u64,
    envp: u64,
    filename_len: usize,
    stack_rlimit: u64,
) -> Result<ExecArgs, Errno> {
    // No more pointers than could fit in the limit on their own.
    let most = usize::try_from(arg_limit(stack_rlimit) / 8).unwrap_or(usize::MAX);
    let argv_ptrs = read_pointers(&mut read, argv, most)?;
    let envp_ptrs = read_pointers(&mut read, envp, most)?;
    let mut room = string_room(stack_rlimit, argv_ptrs.len(), envp_ptrs.len())?;
    // The file name is copied first (it ends up as AT_EXECFN), then envp, then argv.
    let name_len = filename_len.checked_add(1).ok_or(Errno::E2BIG)?;
    if name_len > MAX_ARG_STRLEN || name_len > room {
        return Err(Errno::E2BIG);
    }
    room -= name_len;
    let mut strings = |ptrs: &[u64], room: &mut usize| -> Result<Vec<Vec<u8>>, Errno> {
        let mut out = Vec::new();
        out.try_reserve_exact(ptrs.len())
            .map_err(|_| Errno::ENOMEM)?;
        for &ptr in ptrs {
            out.push(read_string(&mut read, ptr, room)?);
        }
        Ok(out)
    };
    let envp = strings(&envp_ptrs, &mut room)?;
    let argv = strings(&argv_ptrs, &mut room)?;
    Ok(ExecArgs { argv, envp, room })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// User memory for the tests: readable pages and their bytes.
    #[derive(Default)]
    struct Memory {
        pages: BTreeMap<u64, Vec<u8>>,
    }

    impl Memory {
        fn write(&mut self, va: u64, bytes: &[u8]) {
            for (i, &b) in bytes.iter().enumerate() {
                let at = va + i as u64;
                self.pages
                    .entry(at / PAGE)
                    .or_insert_with(|| vec![0; PAGE as usize])[(at % PAGE) as usize] = b;
            }
        }

        fn map(&mut self, va: u64, len: u64) {
            for page in va / PAGE..(va + len).div_ceil(PAGE) {
                self.pages
                    .entry(page)
                    .or_insert_with(|| vec![0; PAGE as usize]);
            }
        }

        fn read(&self, va: u64, buf: &mut [u8]) -> Result<(), Errno> {
            for (i, b) in buf.iter_mut().enumerate() {
                let at = va.checked_add(i as u64).ok_or(Errno::EFAULT)?;
                let page = self.pages.get(&(at / PAGE)).ok_or(Errno::EFAULT)?;
                *b = page[(at % PAGE) as usize];
            }
            Ok(())
        }

        /// Puts `strings` at `strings_at` and a NULL-terminated array of pointers to
        /// them at `list_at`.
        fn list(&mut self, list_at: u64, strings_at: u64, strings: &[&[u8]]) {
            let mut at = strings_at;
            for (i, s) in strings.iter().enumerate() {
                self.write(list_at + 8 * i as u64, &at.to_le_bytes());
                self.write(at, s);
                self.write(at + s.len() as u64, &[0]);
                at += s.len() as u64 + 1;
            }
            self.write(list_at + 8 * strings.len() as u64, &0u64.to_le_bytes());
        }
    }

    const RLIMIT: u64 = 8 << 20;

    fn copy(mem: &Memory, argv: u64, envp: u64) -> Result<ExecArgs, Errno> {
        copy_args(|va, buf| mem.read(va, buf), argv, envp, 9, RLIMIT)
    }

    #[test]
    fn copies_both_lists() {
        let mut mem = Memory::default();
        mem.list(0x1000, 0x2000, &[b"/bin/sh", b"-c", b"", b"echo hi"]);
        mem.list(0x3000, 0x4ff8, &[b"PATH=/bin", b"HOME=/"]);
        let args = copy(&mem, 0x1000, 0x3000).unwrap();
        assert_eq!(args.argv, [&b"/bin/sh"[..], b"-c", b"", b"echo hi"]);
        assert_eq!(args.envp, [&b"PATH=/bin"[..], b"HOME=/"]);
        // 2 MiB of room, less 6 pointers, the file name and the strings with NULs.
        let used = 6 * 8 + 10 + (8 + 3 + 1 + 8) + (10 + 7);
        assert_eq!(args.room, (2 << 20) - used);
    }

    #[test]
    fn null_lists_are_empty() {
        let mem = Memory::default();
        let args = copy(&mem, 0, 0).unwrap();
        assert!(args.argv.is_empty() && args.envp.is_empty());
        // An empty argv still reserves one pointer (Linux adds an empty argv[0]).
        assert_eq!(args.room, (2 << 20) - 8 - 10);
    }

    #[test]
    fn bad_pointers_are_efault() {
        let mut mem = Memory::default();
        assert_eq!(copy(&mem, 0x1000, 0), Err(Errno::EFAULT), "unmapped array");
        // An array running off its page into nothing.
        mem.write(0x1ff8, &0x5000u64.to_le_bytes());
        mem.write(0x5000, b"a\0");
        assert_eq!(copy(&mem, 0x1ff8, 0), Err(Errno::EFAULT));
        // A string pointer into nothing, in envp.
        mem.list(0x3000, 0x3100, &[b"ok"]);
        mem.write(0x3008, &0x9000u64.to_le_bytes());
        mem.write(0x3010, &0u64.to_le_bytes());
        assert_eq!(copy(&mem, 0, 0x3000), Err(Errno::EFAULT));
        // A string running off the end of readable memory without a NUL.
        mem.list(0x6000, 0x7ffd, &[]);
        mem.write(0x6000, &0x7ffdu64.to_le_bytes());
        mem.write(0x6008, &0u64.to_le_bytes());
        mem.write(0x7ffd, b"abc");
        assert_eq!(copy(&mem, 0x6000, 0), Err(Errno::EFAULT));
        // A wrapping array address.
        assert_eq!(copy(&mem, u64::MAX - 3, 0), Err(Errno::EFAULT));
    }

    #[test]
    fn a_string_of_128_kib_is_too_long_one_byte_less_fits() {
        let mut mem = Memory::default();
        let fits = vec![b'x'; MAX_ARG_STRLEN - 1];
        mem.list(0x1000, 0x10_0000, &[&fits]);
        let args = copy(&mem, 0x1000, 0).unwrap();
        assert_eq!(args.argv[0].len(), MAX_ARG_STRLEN - 1);
        let long = vec![b'y'; MAX_ARG_STRLEN];
        mem.list(0x2000, 0x20_0000, &[&long]);
        assert_eq!(copy(&mem, 0x2000, 0), Err(Errno::E2BIG));
        // Unterminated and far longer, in readable memory: E2BIG, read no further.
        mem.map(0x40_0000, 1 << 20);
        mem.write(0x40_0000, &vec![b'z'; 1 << 20]);
        mem.list(0x3000, 0x3100, &[]);
        mem.write(0x3000, &0x40_0000u64.to_le_bytes());
        mem.write(0x3008, &0u64.to_le_bytes());
        assert_eq!(copy(&mem, 0, 0x3000), Err(Errno::E2BIG));
    }

    #[test]
    fn total_is_a_quarter_of_the_stack_limit() {
        // Sixteen strings of 128 KiB - 1 (2 MiB with NULs) cannot fit with pointers and
        // a file name in 2 MiB; fifteen can.
        let s = vec![b'a'; MAX_ARG_STRLEN - 1];
        let strings: Vec<&[u8]> = (0..16).map(|_| s.as_slice()).collect();
        let mut mem = Memory::default();
        mem.list(0x1000, 0x100_0000, &strings);
        assert_eq!(copy(&mem, 0x1000, 0), Err(Errno::E2BIG));
        let mut mem = Memory::default();
        mem.list(0x1000, 0x100_0000, &strings[..15]);
        let args = copy(&mem, 0x1000, 0).unwrap();
        assert_eq!(args.argv.len(), 15);
        // With a 64 MiB stack limit the cap is 6 MiB: 16 fit.
        let mut mem = Memory::default();
        mem.list(0x1000, 0x100_0000, &strings);
        let big = copy_args(|va, buf| mem.read(va, buf), 0x1000, 0, 9, 64 << 20).unwrap();
        assert_eq!(big.argv.len(), 16);
    }

    #[test]
    fn room_follows_linux() {
        let quarter = 2 << 20;
        assert_eq!(string_room(8 << 20, 1, 0), Ok(quarter - 8));
        assert_eq!(
            string_room(8 << 20, 0, 0),
            Ok(quarter - 8),
            "argc 0 counts as 1"
        );
        assert_eq!(string_room(8 << 20, 3, 2), Ok(quarter - 40));
        // Capped at 3/4 of 8 MiB; never below 32 pages.
        assert_eq!(string_room(u64::MAX, 1, 0), Ok((6 << 20) - 8));
        assert_eq!(string_room(64 * 1024, 1, 0), Ok(ARG_MAX - 8));
        assert_eq!(string_room(0, 1, 0), Ok(ARG_MAX - 8));
        // Pointers alone too many.
        assert_eq!(string_room(8 << 20, quarter / 8, 0), Err(Errno::E2BIG));
        assert_eq!(string_room(8 << 20, usize::MAX, 1), Err(Errno::E2BIG));
    }

    #[test]
    fn too_many_pointers_are_e2big() {
        // 300,000 pointers to one byte strings: E2BIG from the pointers alone (2.4 MB).
        let mut mem = Memory::default();
        mem.write(0x9000, b"\0");
        let n = 300_000u64;
        let bytes: Vec<u8> = (0..n).flat_map(|_| 0x9000u64.to_le_bytes()).collect();
        mem.write(0x10_0000, &bytes);
        mem.write(0x10_0000 + 8 * n, &0u64.to_le_bytes());
        assert_eq!(copy(&mem, 0x10_0000, 0), Err(Errno::E2BIG));
        assert_eq!(copy(&mem, 0, 0x10_0000), Err(Errno::E2BIG));
    }

    #[test]
    fn long_file_name_is_e2big() {
        let mem = Memory::default();
        let r = copy_args(|va, buf| mem.read(va, buf), 0, 0, MAX_ARG_STRLEN, RLIMIT);
        assert_eq!(r, Err(Errno::E2BIG));
        let r = copy_args(
            |va, buf| mem.read(va, buf),
            0,
            0,
            MAX_ARG_STRLEN - 1,
            RLIMIT,
        );
        assert!(r.is_ok());
    }
}

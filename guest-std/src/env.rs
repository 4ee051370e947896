//! The process's arguments, environment variables and auxiliary vector, read from the
//! start-up stack that [`rt`](crate::rt) recorded.
//!
//! Strings are handed out as `&'static [u8]` without their NUL: the kernel does not promise
//! UTF-8 (use `core::str::from_utf8` where text is wanted).

use core::ffi::CStr;

use crate::rt::{self, StartupInfo};

/// Auxiliary vector entry types (`AT_*` from Linux's `include/uapi/linux/auxvec.h`).
pub mod aux {
    /// End of the vector.
    pub const AT_NULL: usize = 0;
    /// Address of the program headers.
    pub const AT_PHDR: usize = 3;
    /// Size of one program header entry.
    pub const AT_PHENT: usize = 4;
    /// Number of program headers.
    pub const AT_PHNUM: usize = 5;
    /// System page size.
    pub const AT_PAGESZ: usize = 6;
    /// Base address of the interpreter (0 for static programs).
    pub const AT_BASE: usize = 7;
    /// The program's entry point.
    pub const AT_ENTRY: usize = 9;
    /// Address of 16 random bytes.
    pub const AT_RANDOM: usize = 25;
    /// Address of the program's file name.
    pub const AT_EXECFN: usize = 31;
}

/// The bytes of the NUL-terminated string at `ptr`, without the NUL.
///
/// # Safety
/// `ptr` must point at a NUL-terminated string that stays valid and unchanged forever.
unsafe fn c_bytes(ptr: *const u8) -> &'static [u8] {
    // SAFETY: guaranteed by the caller.
    unsafe { CStr::from_ptr(ptr.cast()) }.to_bytes()
}

/// Iterator over the program's arguments, `argv[0]` first.
#[derive(Clone, Debug)]
pub struct Args {
    argv: *const *const u8,
    front: usize,
    back: usize,
}

impl Args {
    /// The arguments described by `info`.
    ///
    /// # Safety
    /// `info.argv` must hold `info.argc` pointers to NUL-terminated strings that stay valid
    /// and unchanged for the rest of the process (or `info.argc` must be 0).
    pub unsafe fn from_startup(info: &StartupInfo) -> Args {
        Args {
            argv: info.argv,
            front: 0,
            back: info.argc,
        }
    }
}

impl Iterator for Args {
    type Item = &'static [u8];

    fn next(&mut self) -> Option<&'static [u8]> {
        if self.front == self.back {
            return None;
        }
        // SAFETY: `front < back <= argc`, so the slot is inside argv and holds a string
        // pointer that stays valid for the process (the `from_startup` contract).
        let arg = unsafe { c_bytes(self.argv.add(self.front).read()) };
        self.front += 1;
        Some(arg)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let len = self.back - self.front;
        (len, Some(len))
    }
}

impl DoubleEndedIterator for Args {
    fn next_back(&mut self) -> Option<&'static [u8]> {
        if self.front == self.back {
            return None;
        }
        self.back -= 1;
        // SAFETY: as in `next`: `front <= back < argc`.
        Some(unsafe { c_bytes(self.argv.add(self.back).read()) })
    }
}

impl ExactSizeIterator for Args {}

/// The program's arguments (empty before the runtime started, e.g. in host tests).
pub fn args() -> Args {
    // SAFETY: `rt::init` recorded a start-up stack that lives for the whole process, or
    // nothing at all, in which case argc is 0 and argv is never read.
    unsafe { Args::from_startup(&rt::startup_info()) }
}

/// Iterator over the environment, one `KEY=VALUE` string at a time.
#[derive(Clone, Debug)]
pub struct Vars {
    next: *const *const u8,
}

impl Vars {
    /// The environment described by `info`.
    ///
    /// # Safety
    /// `info.envp` must be null or hold pointers to NUL-terminated strings ending with a
    /// NULL pointer, all valid and unchanged for the rest of the process.
    pub unsafe fn from_startup(info: &StartupInfo) -> Vars {
        Vars { next: info.envp }
    }
}

impl Iterator for Vars {
    type Item = &'static [u8];

    fn next(&mut self) -> Option<&'static [u8]> {
        if self.next.is_null() {
            return None;
        }
        // SAFETY: `next` is inside envp, at or before its NULL (the `from_startup` contract).
        let ptr = unsafe { self.next.read() };
        if ptr.is_null() {
            self.next = core::ptr::null();
            return None;
        }
        // SAFETY: as above; stepping past a non-NULL entry stays inside envp.
        self.next = unsafe { self.next.add(1) };
        // SAFETY: a non-NULL envp entry is a string valid for the process.
        Some(unsafe { c_bytes(ptr) })
    }
}

/// The environment as `KEY=VALUE` strings.
pub fn vars() -> Vars {
    // SAFETY: `rt::init` recorded a start-up stack that lives for the whole process, or
    // nothing, in which case envp is null and the iterator is empty.
    unsafe { Vars::from_startup(&rt::startup_info()) }
}

/// The value of the environment variable `key`, if set.
pub fn var(key: &[u8]) -> Option<&'static [u8]> {
    find_var(vars(), key)
}

fn find_var(mut vars: impl Iterator<Item = &'static [u8]>, key: &[u8]) -> Option<&'static [u8]> {
    vars.find_map(|entry| entry.strip_prefix(key)?.strip_prefix(b"="))
}

/// The value of auxiliary vector entry `key` (an [`aux`] constant), if present.
pub fn auxv(key: usize) -> Option<usize> {
    // SAFETY: `rt::init` recorded an auxiliary vector ending with AT_NULL, or null.
    unsafe { find_aux(rt::startup_info().auxv, key) }
}

/// Looks `key` up in the auxiliary vector at `auxv`.
///
/// # Safety
/// `auxv` must be null or point at `(type, value)` pairs ending with `AT_NULL`.
unsafe fn find_aux(mut auxv: *const usize, key: usize) -> Option<usize> {
    if auxv.is_null() || key == aux::AT_NULL {
        return None;
    }
    loop {
        // SAFETY: we stop at AT_NULL, so every pair read is inside the vector.
        let (kind, value) = unsafe { (auxv.read(), auxv.add(1).read()) };
        if kind == aux::AT_NULL {
            return None;
        }
        if kind == key {
            return Some(value);
        }
        // SAFETY: the pair just read was not the terminator, so another follows.
        auxv = unsafe { auxv.add(2) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rt::tests::FakeStack;

    fn stack() -> FakeStack {
        FakeStack::new(
            &["/bin/hello", "one", "", "three"],
            &["HOME=/", "PATH=/bin", "EMPTY="],
            &[(aux::AT_PAGESZ, 4096), (aux::AT_ENTRY, 0x40_1000)],
        )
    }

    #[test]
    fn args_in_order_and_reversed() {
        let info = stack().info();
        // SAFETY: the fake stack is leaked, so it lives for the whole test.
        let args = unsafe { Args::from_startup(&info) };
        assert_eq!(args.len(), 4);
        let forward: Vec<&[u8]> = args.clone().collect();
        assert_eq!(forward, [&b"/bin/hello"[..], b"one", b"", b"three"]);
        let backward: Vec<&[u8]> = args.rev().collect();
        assert_eq!(backward, [&b"three"[..], b"", b"one", b"/bin/hello"]);
    }

    #[test]
    fn args_from_both_ends_meet() {
        let info = stack().info();
        // SAFETY: as above.
        let mut args = unsafe { Args::from_startup(&info) };
        assert_eq!(args.next(), Some(&b"/bin/hello"[..]));
        assert_eq!(args.next_back(), Some(&b"three"[..]));
        assert_eq!(args.len(), 2);
        assert_eq!(args.next(), Some(&b"one"[..]));
        assert_eq!(args.next_back(), Some(&b""[..]));
        assert_eq!(args.next(), None);
        assert_eq!(args.next_back(), None);
    }

    #[test]
    fn vars_and_lookup() {
        let info = stack().info();
        // SAFETY: as above.
        let vars = unsafe { Vars::from_startup(&info) };
        let all: Vec<&[u8]> = vars.clone().collect();
        assert_eq!(all, [&b"HOME=/"[..], b"PATH=/bin", b"EMPTY="]);
        assert_eq!(find_var(vars.clone(), b"PATH"), Some(&b"/bin"[..]));
        assert_eq!(find_var(vars.clone(), b"EMPTY"), Some(&b""[..]));
        assert_eq!(find_var(vars.clone(), b"PAT"), None);
        assert_eq!(find_var(vars, b"NOPE"), None);
    }

    #[test]
    fn auxv_lookup() {
        let info = stack().info();
        // SAFETY: the fake stack ends its auxiliary vector with AT_NULL.
        unsafe {
            assert_eq!(find_aux(info.auxv, aux::AT_PAGESZ), Some(4096));
            assert_eq!(find_aux(info.auxv, aux::AT_ENTRY), Some(0x40_1000));
            assert_eq!(find_aux(info.auxv, aux::AT_RANDOM), None);
            assert_eq!(find_aux(info.auxv, aux::AT_NULL), None);
            assert_eq!(find_aux(core::ptr::null(), aux::AT_PAGESZ), None);
        }
    }

    #[test]
    fn empty_before_the_runtime_starts() {
        assert_eq!(args().len(), 0);
        assert_eq!(vars().count(), 0);
        assert_eq!(auxv(aux::AT_PAGESZ), None);
    }
}

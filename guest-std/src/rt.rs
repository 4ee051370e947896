//! Process start-up: the `_start` entry point ([`entry!`](crate::entry)) and the walk over the
//! Linux start-up stack the kernel builds.
//!
//! At `_start`, `rsp` points at:
//!
//! ```text
//! argc | argv[0] .. argv[argc-1] | NULL | envp[0] .. | NULL | (type, value) auxv pairs .. | AT_NULL
//! ```
//!
//! The strings those pointers reach live above it and stay put for the life of the process,
//! which is why [`env`](crate::env) hands them out as `&'static [u8]`.

use core::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

use crate::env::Args;

/// Where the pieces of the start-up stack are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StartupInfo {
    /// Number of arguments.
    pub argc: usize,
    /// `argc` pointers to NUL-terminated strings, then NULL.
    pub argv: *const *const u8,
    /// Pointers to NUL-terminated `KEY=VALUE` strings, ending with NULL.
    pub envp: *const *const u8,
    /// `(type, value)` pairs, ending with `AT_NULL`.
    pub auxv: *const usize,
}

impl StartupInfo {
    /// Walks the start-up stack at `sp` (the `rsp` the kernel entered `_start` with).
    ///
    /// # Safety
    /// `sp` must point at a well-formed Linux start-up stack: `argc`, `argc` argv pointers and
    /// a NULL, environment pointers ending with NULL, then the auxiliary vector.
    pub unsafe fn from_stack(sp: *const usize) -> StartupInfo {
        // SAFETY: the caller guarantees the layout: argc at `sp`, then argc + 1 argv slots,
        // then the environment pointers up to and including their NULL.
        unsafe {
            let argc = sp.read();
            let argv = sp.add(1).cast::<*const u8>();
            let envp = argv.add(argc + 1);
            let mut end = envp;
            while !end.read().is_null() {
                end = end.add(1);
            }
            StartupInfo {
                argc,
                argv,
                envp,
                auxv: end.add(1).cast::<usize>(),
            }
        }
    }
}

static ARGC: AtomicUsize = AtomicUsize::new(0);
static ARGV: AtomicPtr<*const u8> = AtomicPtr::new(core::ptr::null_mut());
static ENVP: AtomicPtr<*const u8> = AtomicPtr::new(core::ptr::null_mut());
static AUXV: AtomicPtr<usize> = AtomicPtr::new(core::ptr::null_mut());

/// Records where the process's arguments, environment and auxiliary vector are, for
/// [`env::args`](crate::env::args) and friends.
///
/// # Safety
/// The pointers must describe a start-up stack as [`StartupInfo::from_stack`] requires, and
/// that memory must stay valid and unchanged for the rest of the process.
pub unsafe fn init(info: StartupInfo) {
    ARGC.store(info.argc, Ordering::Relaxed);
    ARGV.store(info.argv.cast_mut(), Ordering::Relaxed);
    ENVP.store(info.envp.cast_mut(), Ordering::Relaxed);
    AUXV.store(info.auxv.cast_mut(), Ordering::Relaxed);
}

/// What [`init`] recorded; all null (and `argc` 0) before it ran.
pub fn startup_info() -> StartupInfo {
    StartupInfo {
        argc: ARGC.load(Ordering::Relaxed),
        argv: ARGV.load(Ordering::Relaxed),
        envp: ENVP.load(Ordering::Relaxed),
        auxv: AUXV.load(Ordering::Relaxed),
    }
}

/// The Rust half of `_start`: records the start-up stack, runs `main` and exits the process
/// with its return value.
///
/// # Safety
/// `sp` must be the stack pointer the kernel entered `_start` with, and this must be the only
/// call, made before anything else in the process.
#[doc(hidden)]
pub unsafe fn start(sp: *const usize, main: fn(Args) -> i32) -> ! {
    // SAFETY: the caller passes the kernel's start-up stack, which is never popped (this
    // function does not return), so it stays valid for the whole process.
    unsafe { init(StartupInfo::from_stack(sp)) };
    let status = main(crate::env::args());
    crate::process::exit(status)
}

/// Defines the program's `_start` entry point, which calls `$main` with the arguments and
/// exits the process (`exit_group`) with the `i32` it returns.
///
/// `$main` has the type `fn(guest_std::env::Args) -> i32`. Use it once, in a
/// `#![no_std] #![no_main]` binary.
#[macro_export]
macro_rules! entry {
    ($main:path) => {
        /// Process entry point: the kernel jumps here with `rsp` at `argc`.
        #[doc(hidden)]
        #[unsafe(naked)]
        #[unsafe(no_mangle)]
        pub extern "C" fn _start() -> ! {
            // rbp = 0 ends frame-pointer walks here; the stack is 16-byte aligned before the
            // call, as the System V ABI wants; `ud2` traps if the Rust side ever returns.
            ::core::arch::naked_asm!(
                "xor ebp, ebp",
                "mov rdi, rsp",
                "and rsp, -16",
                "call {start}",
                "ud2",
                start = sym __guest_std_start,
            )
        }

        #[doc(hidden)]
        extern "C" fn __guest_std_start(sp: *const usize) -> ! {
            let main: fn($crate::env::Args) -> i32 = $main;
            // SAFETY: only `_start` calls this, with the stack pointer the kernel entered it
            // with, as the first thing the process does.
            unsafe { $crate::rt::start(sp, main) }
        }
    };
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A start-up stack built in memory as the kernel would, leaked so its strings are
    /// `'static` like the real ones.
    pub(crate) struct FakeStack {
        pub(crate) words: &'static [usize],
    }

    impl FakeStack {
        pub(crate) fn new(args: &[&str], env: &[&str], auxv: &[(usize, usize)]) -> FakeStack {
            fn cstr(s: &str) -> usize {
                let mut bytes = s.as_bytes().to_vec();
                bytes.push(0);
                Box::leak(bytes.into_boxed_slice()).as_ptr() as usize
            }
            let mut words = vec![args.len()];
            words.extend(args.iter().map(|a| cstr(a)));
            words.push(0);
            words.extend(env.iter().map(|e| cstr(e)));
            words.push(0);
            for &(key, value) in auxv {
                words.extend([key, value]);
            }
            words.extend([0, 0]);
            FakeStack {
                words: Box::leak(words.into_boxed_slice()),
            }
        }

        pub(crate) fn info(&self) -> StartupInfo {
            // SAFETY: `new` laid the words out as a start-up stack.
            unsafe { StartupInfo::from_stack(self.words.as_ptr()) }
        }
    }

    #[test]
    fn walks_argv_envp_auxv() {
        let stack = FakeStack::new(&["/bin/hello", "a"], &["HOME=/", "TERM=dumb"], &[(6, 4096)]);
        let info = stack.info();
        let base = stack.words.as_ptr();
        assert_eq!(info.argc, 2);
        // SAFETY: offsets within the fake stack.
        unsafe {
            assert_eq!(info.argv, base.add(1).cast());
            assert_eq!(info.envp, base.add(4).cast());
            assert_eq!(info.auxv, base.add(7));
        }
    }

    #[test]
    fn walks_empty_argv_and_envp() {
        let stack = FakeStack::new(&[], &[], &[]);
        let info = stack.info();
        let base = stack.words.as_ptr();
        assert_eq!(info.argc, 0);
        // SAFETY: offsets within the fake stack.
        unsafe {
            assert_eq!(info.envp, base.add(2).cast());
            assert_eq!(info.auxv, base.add(3));
        }
    }
}

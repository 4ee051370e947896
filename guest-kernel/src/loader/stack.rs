//! The Linux/System V x86-64 initial process stack: argc, argv, envp and the auxiliary vector
//! that `_start` of a static musl or glibc program expects at `rsp`.
//!
//! [`build_initial_stack`] is pure: it returns the bytes to copy so that they end at the stack
//! top, and the initial `rsp`. From `rsp` upwards:
//!
//! ```text
//! rsp -> argc
//!        argv[0..argc], NULL
//!        envp[0..envc], NULL
//!        auxv pairs: AT_RANDOM, AT_EXECFN, AT_PLATFORM, the caller's pairs, AT_NULL
//!        padding (so that rsp is 16-byte aligned)
//!        16 random bytes             <- AT_RANDOM
//!        platform string, NUL        <- AT_PLATFORM
//!        argv strings, envp strings  <- argv[i], envp[i]
//!        execfn string, NUL          <- AT_EXECFN
//!        8 zero bytes                (end marker, as Linux leaves)
//! stack_top
//! ```

use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

/// End of the auxiliary vector.
pub const AT_NULL: u64 = 0;
/// Address of the program headers.
pub const AT_PHDR: u64 = 3;
/// Size of one program header.
pub const AT_PHENT: u64 = 4;
/// Number of program headers.
pub const AT_PHNUM: u64 = 5;
/// Page size.
pub const AT_PAGESZ: u64 = 6;
/// Base address of the interpreter (0 for static programs).
pub const AT_BASE: u64 = 7;
/// Flags (0).
pub const AT_FLAGS: u64 = 8;
/// Program entry point.
pub const AT_ENTRY: u64 = 9;
/// Real user id.
pub const AT_UID: u64 = 11;
/// Effective user id.
pub const AT_EUID: u64 = 12;
/// Real group id.
pub const AT_GID: u64 = 13;
/// Effective group id.
pub const AT_EGID: u64 = 14;
/// Address of the platform string.
pub const AT_PLATFORM: u64 = 15;
/// CPU feature bits (CPUID 1 EDX).
pub const AT_HWCAP: u64 = 16;
/// Clock ticks per second for `times`.
pub const AT_CLKTCK: u64 = 17;
/// Secure mode (setuid) flag.
pub const AT_SECURE: u64 = 23;
/// Address of 16 random bytes.
pub const AT_RANDOM: u64 = 25;
/// More CPU feature bits.
pub const AT_HWCAP2: u64 = 26;
/// Address of the executed file name.
pub const AT_EXECFN: u64 = 31;
/// Address of the vDSO ELF header.
#[allow(dead_code)] // no vDSO yet
pub const AT_SYSINFO_EHDR: u64 = 33;
/// Minimal signal stack size (what a signal frame with this CPU's FPU state needs).
pub const AT_MINSIGSTKSZ: u64 = 51;

/// Longest single argument or environment string, with its NUL (Linux `MAX_ARG_STRLEN`).
pub const MAX_ARG_STRLEN: usize = 32 * 4096;

/// Platform string Linux reports on x86-64.
pub const PLATFORM_X86_64: &[u8] = b"x86_64";

const WORD: u64 = 8;

/// Why the stack could not be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StackError {
    /// Arguments and environment exceed the limit (`E2BIG`).
    TooBig,
    /// A string contains a NUL byte (`EINVAL`).
    NulInString,
    /// The caller passed an auxv key the builder fills in itself, or `AT_NULL` (`EINVAL`).
    ReservedAuxEntry(u64),
    /// The image does not fit below `stack_top` (`EFAULT`).
    BadStackTop,
}

impl StackError {
    /// The Linux errno for this error.
    pub fn errno(self) -> i32 {
        match self {
            StackError::TooBig => 7,
            StackError::NulInString | StackError::ReservedAuxEntry(_) => 22,
            StackError::BadStackTop => 14,
        }
    }
}

impl fmt::Display for StackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StackError::TooBig => f.write_str("argument list too long"),
            StackError::NulInString => f.write_str("argument or environment string contains NUL"),
            StackError::ReservedAuxEntry(key) => {
                write!(f, "auxv entry {key} is reserved to the stack builder")
            }
            StackError::BadStackTop => {
                f.write_str("initial stack does not fit below the stack top")
            }
        }
    }
}

/// The initial stack image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitialStack {
    /// Bytes to copy to `[rsp, rsp + bytes.len())`, which ends at the stack top.
    pub bytes: Vec<u8>,
    /// Initial `rsp`: 16-byte aligned, pointing at argc.
    pub rsp: u64,
    /// Address of `argv[0]`'s pointer (`rsp + 8`).
    pub argv_addr: u64,
    /// Address of `envp[0]`'s pointer.
    pub envp_addr: u64,
    /// Address of the first auxv pair.
    pub auxv_addr: u64,
}

/// Writes into the image, which covers `[base, base + bytes.len())`.
struct Image {
    base: u64,
    bytes: Vec<u8>,
}

impl Image {
    fn put(&mut self, addr: u64, src: &[u8]) {
        // Addresses are computed inside the image; a miss would be a bug here, and writing
        // nothing then is safer than a panic.
        let at = addr
            .checked_sub(self.base)
            .and_then(|o| usize::try_from(o).ok());
        let dst = at.and_then(|at| self.bytes.get_mut(at..at.checked_add(src.len())?));
        if let Some(dst) = dst {
            dst.copy_from_slice(src);
        }
    }

    fn put_word(&mut self, addr: u64, value: u64) {
        self.put(addr, &value.to_le_bytes());
    }
}

/// Lays out the initial stack so that it ends at `stack_top`.
///
/// `max_bytes` limits argv and envp strings (with NULs) plus the execfn string plus their
/// pointers, as Linux limits them to a quarter of the stack rlimit; over it, or with a single
/// string longer than [`MAX_ARG_STRLEN`], the result is [`StackError::TooBig`]. `auxv` must not
/// contain `AT_NULL`, `AT_RANDOM`, `AT_EXECFN` or `AT_PLATFORM`: the builder writes those.
#[allow(clippy::too_many_arguments)] // one argument per part of the layout, all of one kind
pub fn build_initial_stack(
    stack_top: u64,
    argv: &[&[u8]],
    envp: &[&[u8]],
    auxv: &[(u64, u64)],
    random16: &[u8; 16],
    execfn: &[u8],
    platform: &[u8],
    max_bytes: usize,
) -> Result<InitialStack, StackError> {
    if let Some(&(key, _)) = auxv
        .iter()
        .find(|(key, _)| matches!(*key, AT_NULL | AT_RANDOM | AT_EXECFN | AT_PLATFORM))
    {
        return Err(StackError::ReservedAuxEntry(key));
    }
    let strings = || argv.iter().chain(envp).chain([&execfn]);
    let mut limited = 0usize;
    for s in strings().chain([&platform]) {
        if s.contains(&0) {
            return Err(StackError::NulInString);
        }
        if s.len() >= MAX_ARG_STRLEN {
            return Err(StackError::TooBig);
        }
    }
    for s in strings() {
        limited = limited.checked_add(s.len() + 1).ok_or(StackError::TooBig)?;
    }
    let pointers = (argv.len() + 1)
        .checked_add(envp.len() + 1)
        .ok_or(StackError::TooBig)?;
    let limited = pointers
        .checked_mul(WORD as usize)
        .and_then(|p| p.checked_add(limited))
        .ok_or(StackError::TooBig)?;
    if limited > max_bytes {
        return Err(StackError::TooBig);
    }

    // Addresses, from the top down. Every length here is bounded by `max_bytes` or by the
    // platform string, so only the subtraction from `stack_top` can fail.
    let below = |addr: u64, len: usize| -> Result<u64, StackError> {
        addr.checked_sub(len as u64).ok_or(StackError::BadStackTop)
    };
    let execfn_addr = below(stack_top, WORD as usize + execfn.len() + 1)?;
    let arg_strings: usize = argv.iter().chain(envp).map(|s| s.len() + 1).sum();
    let strings_addr = below(execfn_addr, arg_strings)?;
    let platform_addr = below(strings_addr, platform.len() + 1)?;
    let random_addr = below(platform_addr, random16.len())?;
    let aux_pairs = 3 + auxv.len() + 1;
    let table_len = aux_pairs
        .checked_mul(2)
        .and_then(|aux_words| aux_words.checked_add(1 + pointers))
        .and_then(|words| words.checked_mul(WORD as usize))
        .ok_or(StackError::TooBig)?;
    let table_addr = below(random_addr, table_len)?;
    let rsp = table_addr & !15;
    let len = usize::try_from(stack_top - rsp).map_err(|_| StackError::BadStackTop)?;

    let mut img = Image {
        base: rsp,
        bytes: vec![0u8; len],
    };
    let mut string_ptrs: Vec<u64> = Vec::with_capacity(argv.len() + envp.len());
    let mut at = strings_addr;
    for s in argv.iter().chain(envp) {
        img.put(at, s);
        string_ptrs.push(at);
        at += s.len() as u64 + 1;
    }
    img.put(execfn_addr, execfn);
    img.put(platform_addr, platform);
    img.put(random_addr, random16);

    let mut slot = rsp;
    let mut push = |img: &mut Image, value: u64| {
        img.put_word(slot, value);
        slot += WORD;
    };
    push(&mut img, argv.len() as u64);
    let argv_addr = rsp + WORD;
    let (argv_ptrs, envp_ptrs) = string_ptrs.split_at(argv.len());
    for &p in argv_ptrs {
        push(&mut img, p);
    }
    push(&mut img, 0);
    let envp_addr = argv_addr + (argv.len() as u64 + 1) * WORD;
    for &p in envp_ptrs {
        push(&mut img, p);
    }
    push(&mut img, 0);
    let auxv_addr = envp_addr + (envp.len() as u64 + 1) * WORD;
    let builder_aux = [
        (AT_RANDOM, random_addr),
        (AT_EXECFN, execfn_addr),
        (AT_PLATFORM, platform_addr),
    ];
    for &(key, value) in builder_aux.iter().chain(auxv).chain(&[(AT_NULL, 0)]) {
        push(&mut img, key);
        push(&mut img, value);
    }
    Ok(InitialStack {
        bytes: img.bytes,
        rsp,
        argv_addr,
        envp_addr,
        auxv_addr,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::String;

    const TOP: u64 = 0x7fff_ffff_f000;
    const RANDOM: [u8; 16] = *b"0123456789abcdef";
    const LIMIT: usize = 128 * 1024;

    /// Reads the image as a program's `_start` would.
    struct View<'a>(&'a InitialStack);

    impl View<'_> {
        fn word(&self, addr: u64) -> u64 {
            let at = (addr - self.0.rsp) as usize;
            u64::from_le_bytes(self.0.bytes[at..at + 8].try_into().unwrap())
        }
        fn cstr(&self, addr: u64) -> String {
            let at = (addr - self.0.rsp) as usize;
            let len = self.0.bytes[at..].iter().position(|&b| b == 0).unwrap();
            String::from_utf8(self.0.bytes[at..at + len].to_vec()).unwrap()
        }
        /// (argv, envp, auxv) decoded from rsp.
        fn decode(&self) -> (Vec<String>, Vec<String>, Vec<(u64, u64)>) {
            let rsp = self.0.rsp;
            let argc = self.word(rsp);
            let mut p = rsp + 8;
            let argv: Vec<String> = (0..argc).map(|i| self.cstr(self.word(p + i * 8))).collect();
            p += argc * 8;
            assert_eq!(self.word(p), 0, "argv NULL");
            p += 8;
            let mut envp = Vec::new();
            while self.word(p) != 0 {
                envp.push(self.cstr(self.word(p)));
                p += 8;
            }
            p += 8;
            let mut auxv = Vec::new();
            loop {
                let (k, v) = (self.word(p), self.word(p + 8));
                auxv.push((k, v));
                p += 16;
                if k == AT_NULL {
                    break;
                }
            }
            (argv, envp, auxv)
        }
    }

    fn build(
        argv: &[&[u8]],
        envp: &[&[u8]],
        auxv: &[(u64, u64)],
    ) -> Result<InitialStack, StackError> {
        build_initial_stack(
            TOP,
            argv,
            envp,
            auxv,
            &RANDOM,
            b"/bin/app",
            PLATFORM_X86_64,
            LIMIT,
        )
    }

    #[test]
    fn layout_round_trips() {
        let auxv = [
            (AT_PAGESZ, 4096),
            (AT_PHDR, 0x400040),
            (AT_PHNUM, 9),
            (AT_ENTRY, 0x401000),
        ];
        let st = build(
            &[b"/bin/app", b"-v", b""],
            &[b"HOME=/", b"TERM=dumb"],
            &auxv,
        )
        .unwrap();
        assert_eq!(st.rsp % 16, 0);
        assert_eq!(st.rsp + st.bytes.len() as u64, TOP);
        let v = View(&st);
        let (argv, envp, aux) = v.decode();
        assert_eq!(argv, ["/bin/app", "-v", ""]);
        assert_eq!(envp, ["HOME=/", "TERM=dumb"]);
        assert_eq!(st.argv_addr, st.rsp + 8);
        assert_eq!(st.envp_addr, st.rsp + 8 + 4 * 8);
        assert_eq!(st.auxv_addr, st.envp_addr + 3 * 8);
        assert_eq!(v.word(st.auxv_addr), AT_RANDOM);
        let get = |key| {
            aux.iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| *v)
                .unwrap()
        };
        let random = get(AT_RANDOM);
        let at = (random - st.rsp) as usize;
        assert_eq!(&st.bytes[at..at + 16], &RANDOM);
        assert_eq!(v.cstr(get(AT_EXECFN)), "/bin/app");
        assert_eq!(v.cstr(get(AT_PLATFORM)), "x86_64");
        for (k, val) in auxv {
            assert_eq!(get(k), val);
        }
        assert_eq!(aux.len(), 3 + 4 + 1);
        assert_eq!(aux.last(), Some(&(AT_NULL, 0)));
        // Strings lie above the table, the end marker at the very top is zero.
        assert!(random > st.auxv_addr + aux.len() as u64 * 16 - 1);
        assert_eq!(v.word(TOP - 8), 0);
    }

    #[test]
    fn alignment_for_every_shape() {
        for argc in 0..4usize {
            for envc in 0..3usize {
                for extra in 0..3usize {
                    let strs: Vec<Vec<u8>> = (0..argc + envc)
                        .map(|i| vec![b'a'; i * 3 + extra])
                        .collect();
                    let refs: Vec<&[u8]> = strs.iter().map(|s| s.as_slice()).collect();
                    let aux: Vec<(u64, u64)> = (0..extra as u64).map(|i| (AT_UID, i)).collect();
                    for top in [TOP, TOP - 8, TOP - 3] {
                        let st = build_initial_stack(
                            top,
                            &refs[..argc],
                            &refs[argc..],
                            &aux,
                            &RANDOM,
                            b"x",
                            b"x86_64",
                            LIMIT,
                        )
                        .unwrap();
                        assert_eq!(st.rsp % 16, 0);
                        assert_eq!(st.rsp + st.bytes.len() as u64, top);
                        let (argv, envp, _) = View(&st).decode();
                        assert_eq!(argv.len(), argc);
                        assert_eq!(envp.len(), envc);
                    }
                }
            }
        }
    }

    #[test]
    fn e2big_limit() {
        // Exactly at the limit is allowed: strings + NULs + execfn + pointers.
        let execfn_cost = b"/bin/app".len() + 1;
        // argv[0], argv's NULL, envp's NULL.
        let pointer_cost = 3 * 8;
        let arg = vec![b'x'; LIMIT - execfn_cost - pointer_cost - 1];
        assert!(build(&[&arg], &[], &[]).is_ok());
        let arg = vec![b'x'; LIMIT - execfn_cost - pointer_cost];
        assert_eq!(build(&[&arg], &[], &[]), Err(StackError::TooBig));
        // Many small strings hit it through their pointers too.
        let many: Vec<&[u8]> = vec![b"" as &[u8]; LIMIT / 8];
        assert_eq!(build(&many, &[], &[]), Err(StackError::TooBig));
        // One string longer than MAX_ARG_STRLEN, even with a large limit.
        let huge = vec![b'y'; MAX_ARG_STRLEN];
        let r = build_initial_stack(TOP, &[&huge], &[], &[], &RANDOM, b"a", b"x86_64", 1 << 30);
        assert_eq!(r, Err(StackError::TooBig));
        assert_eq!(StackError::TooBig.errno(), 7);
    }

    #[test]
    fn rejections() {
        assert_eq!(build(&[b"a\0b"], &[], &[]), Err(StackError::NulInString));
        assert_eq!(build(&[], &[b"X=\0"], &[]), Err(StackError::NulInString));
        let r = build_initial_stack(TOP, &[], &[], &[], &RANDOM, b"a\0", b"x86_64", LIMIT);
        assert_eq!(r, Err(StackError::NulInString));
        assert_eq!(
            build(&[], &[], &[(AT_RANDOM, 1)]),
            Err(StackError::ReservedAuxEntry(AT_RANDOM))
        );
        assert_eq!(
            build(&[], &[], &[(AT_NULL, 0)]),
            Err(StackError::ReservedAuxEntry(AT_NULL))
        );
        let r = build_initial_stack(64, &[b"arg"], &[], &[], &RANDOM, b"a", b"x86_64", LIMIT);
        assert_eq!(r, Err(StackError::BadStackTop));
        assert_eq!(StackError::NulInString.errno(), 22);
    }
}

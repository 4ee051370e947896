//! The kernel command line the VMM passes at boot.
//!
//! Parameters are separated by whitespace; a value may be quoted to contain spaces, either
//! `key="a b"` or `"key=a b"` (quotes are stripped as Linux's `next_arg` does). Known:
//!
//! - `init=PATH`: the first program to run;
//! - `loglevel=N`: console verbosity, 0..=255;
//! - `astra.test`, `astra.strace`, `astra.stats`, `astra.bench`, `astra.panic`,
//!   `astra.kstack_overflow`, `astra.gdb` (set by `astra-vmm --gdb`): flags, true
//!   when bare or `=1`/`y`/`yes`/`on`/`true`, false with `=0`/`n`/`no`/`off`/`false`;
//! - `astra.pvm_features=N` (decimal or `0x` hex): the PVM opt-in feature bits to ask
//!   for instead of the default (see `platform::pvm_feature`; a probing aid, ignored on
//!   hardware KVM);
//! - `--`: everything after it is passed to init as arguments.
//!
//! Anything else is kept in [`Cmdline::unknown`] and known parameters with a bad value in
//! [`Cmdline::invalid`], so boot can warn about them instead of failing.

use alloc::vec::Vec;

/// Splits a boot-protocol string block (NUL-terminated strings back to back, as the VMM
/// writes init's argv and environment) into its strings, keeping empty ones. A last
/// string without its NUL is kept too.
pub fn split_block(block: &[u8]) -> Vec<&[u8]> {
    if block.is_empty() {
        return Vec::new();
    }
    let body = block.strip_suffix(&[0]).unwrap_or(block);
    body.split(|&b| b == 0).collect()
}

/// The parsed command line; strings borrow from the input.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cmdline<'a> {
    /// `init=PATH`: path of the first program, if given.
    pub init: Option<&'a str>,
    /// `loglevel=N`, if given.
    pub loglevel: Option<u8>,
    /// `astra.test`: the boot is a test run.
    pub test: bool,
    /// `astra.strace`: log every syscall (on the kernel's diagnostic stream).
    pub strace: bool,
    /// `astra.stats`: count syscalls and print a `strace -c` table when the program ends.
    pub stats: bool,
    /// `astra.panic`: panic right after boot, to exercise the crash path (like Linux's
    /// sysrq-c).
    pub panic: bool,
    /// `astra.kstack_overflow`: overflow a task's kernel stack right after boot, to show
    /// that its guard pages stop it (the crash report names the overflow).
    pub kstack_overflow: bool,
    /// `astra.bench`: the boot is a benchmark run.
    pub bench: bool,
    /// `astra.pvm_features=N`: PVM opt-in feature bits to ask for (probing aid).
    pub pvm_features: Option<u64>,
    /// `astra.gdb`: a debugger is attached to the VMM (the cooperative debug path).
    pub gdb: bool,
    /// Words after `--`, for init's argv.
    pub init_args: Vec<&'a str>,
    unknown: Vec<&'a str>,
    invalid: Vec<&'a str>,
}

impl<'a> Cmdline<'a> {
    /// Parses `line`; never fails (bad parameters end up in [`Cmdline::unknown`] or
    /// [`Cmdline::invalid`]). A later occurrence of a parameter overrides an earlier one.
    pub fn parse(line: &'a str) -> Cmdline<'a> {
        let mut c = Cmdline::default();
        let mut rest = line;
        while let Some((param, value, raw, tail)) = next_arg(rest) {
            rest = tail;
            if param == "--" && value.is_none() {
                let mut tail = rest;
                while let Some((_, _, raw, t)) = next_arg(tail) {
                    c.init_args.push(unquote(raw).unwrap_or(raw));
                    tail = t;
                }
                break;
            }
            let ok = match param {
                "init" => value
                    .filter(|v| !v.is_empty())
                    .map(|v| c.init = Some(v))
                    .is_some(),
                "loglevel" => value
                    .and_then(|v| v.parse().ok())
                    .map(|n| c.loglevel = Some(n))
                    .is_some(),
                "astra.test" => set_flag(&mut c.test, value),
                "astra.strace" => set_flag(&mut c.strace, value),
                "astra.stats" => set_flag(&mut c.stats, value),
                "astra.panic" => set_flag(&mut c.panic, value),
                "astra.kstack_overflow" => set_flag(&mut c.kstack_overflow, value),
                "astra.gdb" => set_flag(&mut c.gdb, value),
                "astra.bench" => set_flag(&mut c.bench, value),
                "astra.pvm_features" => value
                    .and_then(parse_number)
                    .map(|n| c.pvm_features = Some(n))
                    .is_some(),
                _ => {
                    c.unknown.push(raw);
                    continue;
                }
            };
            if !ok {
                c.invalid.push(raw);
            }
        }
        c
    }

    /// Parameters the kernel does not know, as written (for a boot warning).
    pub fn unknown(&self) -> &[&'a str] {
        &self.unknown
    }

    /// Known parameters whose value could not be used, as written (for a boot warning).
    pub fn invalid(&self) -> &[&'a str] {
        &self.invalid
    }
}

/// Sets `flag` from a boolean value; `None` (a bare flag) means true. Returns false for a value
/// that is not a boolean.
/// A decimal or `0x` hexadecimal number.
fn parse_number(s: &str) -> Option<u64> {
    match s.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
}

fn set_flag(flag: &mut bool, value: Option<&str>) -> bool {
    let parsed = match value {
        None => Some(true),
        Some("1" | "y" | "Y" | "yes" | "on" | "true") => Some(true),
        Some("0" | "n" | "N" | "no" | "off" | "false") => Some(false),
        Some(_) => None,
    };
    parsed.map(|v| *flag = v).is_some()
}

/// The inside of a fully quoted `s`, if it is one.
fn unquote(s: &str) -> Option<&str> {
    s.strip_prefix('"')?.strip_suffix('"')
}

/// Splits the next parameter off `s`: (name, value, the raw word, the rest). Whitespace inside
/// double quotes does not end a word; an unterminated quote runs to the end of the line.
fn next_arg(s: &str) -> Option<(&str, Option<&str>, &str, &str)> {
    let s = s.trim_start();
    if s.is_empty() {
        return None;
    }
    let mut in_quote = false;
    let mut end = s.len();
    for (i, ch) in s.char_indices() {
        if ch == '"' {
            in_quote = !in_quote;
        } else if ch.is_whitespace() && !in_quote {
            end = i;
            break;
        }
    }
    let (raw, rest) = s.split_at(end);
    // `"key=value"`: the quotes surround the whole word.
    let word = match raw.strip_prefix('"') {
        Some(inner) => inner.strip_suffix('"').unwrap_or(inner),
        None => raw,
    };
    let (name, value) = match word.split_once('=') {
        Some((name, value)) => {
            // `key="value"`: the quotes surround the value.
            let value = match value.strip_prefix('"') {
                Some(inner) => inner.strip_suffix('"').unwrap_or(inner),
                None => value,
            };
            (name, Some(value))
        }
        None => (word, None),
    };
    Some((name, value, raw, rest))
}

#[cfg(test)]
mod tests {
    #[test]
    fn blocks_split_keeping_empty_strings() {
        let none: Vec<&[u8]> = Vec::new();
        assert_eq!(split_block(b""), none);
        assert_eq!(split_block(b"\0"), [b"".as_slice()]);
        assert_eq!(
            split_block(b"/bin/echo\0\0a b\0\0"),
            [b"/bin/echo".as_slice(), b"", b"a b", b""]
        );
        assert_eq!(split_block(b"A=1\0B"), [b"A=1".as_slice(), b"B"]);
    }

    use super::*;

    #[test]
    fn pvm_features_take_decimal_or_hex() {
        assert_eq!(
            Cmdline::parse("astra.pvm_features=0x27").pvm_features,
            Some(0x27)
        );
        assert_eq!(Cmdline::parse("astra.pvm_features=7").pvm_features, Some(7));
        let bad = Cmdline::parse("astra.pvm_features=x astra.pvm_features");
        assert_eq!(bad.pvm_features, None);
        assert_eq!(bad.invalid().len(), 2);
    }

    #[test]
    fn typical_line() {
        let c = Cmdline::parse("console=ttyS0 init=/bin/init loglevel=7 astra.test astra.strace=0");
        assert_eq!(c.init, Some("/bin/init"));
        assert_eq!(c.loglevel, Some(7));
        assert!(c.test && !c.strace && !c.bench);
        assert_eq!(c.unknown(), ["console=ttyS0"]);
        assert!(c.invalid().is_empty());
        assert!(c.init_args.is_empty());
    }

    #[test]
    fn empty_and_blank() {
        assert_eq!(Cmdline::parse(""), Cmdline::default());
        assert_eq!(Cmdline::parse(" \t\n "), Cmdline::default());
    }

    #[test]
    fn quoted_values() {
        let c = Cmdline::parse(r#"init="/bin/my app" "foo=a b" astra.bench="yes""#);
        assert_eq!(c.init, Some("/bin/my app"));
        assert!(c.bench);
        assert_eq!(c.unknown(), [r#""foo=a b""#]);
        // An unterminated quote runs to the end without panicking.
        let c = Cmdline::parse(r#"init="/x y astra.test"#);
        assert_eq!(c.init, Some("/x y astra.test"));
        assert!(!c.test);
    }

    #[test]
    fn invalid_values() {
        let c = Cmdline::parse("loglevel=high loglevel=300 init= init astra.test=maybe");
        assert_eq!(c.loglevel, None);
        assert_eq!(c.init, None);
        assert!(!c.test);
        assert_eq!(
            c.invalid(),
            [
                "loglevel=high",
                "loglevel=300",
                "init=",
                "init",
                "astra.test=maybe"
            ]
        );
    }

    #[test]
    fn gdb_flag() {
        assert!(Cmdline::parse(hypercall_abi::debug::CMDLINE_PARAM).gdb);
        assert!(!Cmdline::parse("astra.gdb=0").gdb);
        assert!(!Cmdline::parse("").gdb);
    }

    #[test]
    fn stats_and_panic_flags() {
        let c = Cmdline::parse("astra.stats astra.panic=no");
        assert!(c.stats && !c.panic && !c.strace);
        let c = Cmdline::parse("astra.stats=off astra.panic");
        assert!(!c.stats && c.panic && !c.kstack_overflow);
        assert!(Cmdline::parse("astra.kstack_overflow").kstack_overflow);
        assert!(c.unknown().is_empty() && c.invalid().is_empty());
    }

    #[test]
    fn later_overrides_earlier() {
        let c =
            Cmdline::parse("init=/a astra.strace init=/b astra.strace=off loglevel=1 loglevel=4");
        assert_eq!(c.init, Some("/b"));
        assert!(!c.strace);
        assert_eq!(c.loglevel, Some(4));
    }

    #[test]
    fn init_args_after_double_dash() {
        let c = Cmdline::parse(r#"astra.test -- /bin/app --flag "two words" k=v astra.bench"#);
        assert!(c.test && !c.bench);
        assert_eq!(
            c.init_args,
            ["/bin/app", "--flag", "two words", "k=v", "astra.bench"]
        );
        let c = Cmdline::parse("--=x");
        assert_eq!(c.unknown(), ["--=x"]);
    }

    #[test]
    fn unicode_and_odd_input_never_panics() {
        for line in [
            "\"",
            "\"\"",
            "=",
            "==",
            "a=\"",
            "é=ü \u{a0}x",
            "\"=\"",
            "-- \"",
            "x\u{2003}y",
        ] {
            let _ = Cmdline::parse(line);
        }
        let c = Cmdline::parse("x\u{2003}y");
        assert_eq!(c.unknown(), ["x", "y"]);
    }
}

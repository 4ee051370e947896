//! `#!` scripts as Linux's `binfmt_script` reads them: the interpreter path and at most
//! one optional argument (the rest of the line, inner blanks included) from the first
//! [`BINPRM_BUF_SIZE`] bytes of the file, and the argument list the interpreter gets.
//!
//! ENOEXEC when the file does not start with `#!`, when the line holds only blanks, and
//! when no newline comes within the buffer and the interpreter path may be cut off (no
//! blank or NUL after it). An argument cut off by the buffer's end is kept as it is; the
//! interpreter can read the line itself. Interpreters may be scripts themselves, down to
//! [`MAX_INTERPRETER_DEPTH`] levels (then ELOOP, as Linux).

use alloc::vec::Vec;

use super::args::{ExecArgs, MAX_ARG_STRLEN};
use crate::syscall::Errno;

/// Bytes of a file that exec looks at (Linux `BINPRM_BUF_SIZE`).
pub const BINPRM_BUF_SIZE: usize = 256;
/// Nested interpreters followed before ELOOP (Linux `BINPRM_MAX_RECURSION`).
pub const MAX_INTERPRETER_DEPTH: usize = 4;

/// A parsed `#!` line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shebang<'a> {
    /// The interpreter's path.
    pub interpreter: &'a [u8],
    /// The optional argument.
    pub arg: Option<&'a [u8]>,
}

fn blank(c: u8) -> bool {
    c == b' ' || c == b'\t'
}

/// Parses the start of a file: `head` is its first bytes (at most [`BINPRM_BUF_SIZE`]
/// are looked at; fewer when the file is shorter).
pub fn parse(head: &[u8]) -> Result<Shebang<'_>, Errno> {
    let buf = &head[..head.len().min(BINPRM_BUF_SIZE)];
    if buf.len() < 2 || &buf[..2] != b"#!" {
        return Err(Errno::ENOEXEC);
    }
    // Linux's buffer is zero-padded to its full size: a short file ends in NULs.
    let at = |i: usize| buf.get(i).copied().unwrap_or(0);
    let last = BINPRM_BUF_SIZE - 1;
    // The line ends at a newline; a NUL before it hides it (strnchr stops at a NUL).
    let newline = (0..BINPRM_BUF_SIZE)
        .take_while(|&i| at(i) != 0)
        .find(|&i| at(i) == b'\n');
    let mut end = match newline {
        Some(i) => i,
        None => {
            let first = (2..=last).find(|&i| !blank(at(i))).ok_or(Errno::ENOEXEC)?;
            // No blank or NUL after the path: it may be cut off.
            if !(first..=last).any(|i| blank(at(i)) || at(i) == 0) {
                return Err(Errno::ENOEXEC);
            }
            last
        }
    };
    while end > 2 && blank(at(end - 1)) {
        end -= 1;
    }
    let name = (2..=end)
        .find(|&i| !blank(at(i)))
        .filter(|&i| i != end)
        .ok_or(Errno::ENOEXEC)?;
    // The path ends at the first blank or NUL (or the line's end); an argument follows
    // a blank, from the next non-blank to the line's end.
    let sep = (name..=end).find(|&i| blank(at(i)) || at(i) == 0);
    let arg = sep
        .filter(|&s| at(s) != 0)
        .and_then(|s| (s..=end).find(|&i| !blank(at(i))));
    let name_end = sep.map_or(end, |s| s.min(end));
    let c_string = |from: usize, to: usize| {
        let to = (from..to).find(|&i| at(i) == 0).unwrap_or(to);
        &buf[from.min(buf.len())..to.min(buf.len())]
    };
    Ok(Shebang {
        interpreter: c_string(name, name_end),
        arg: arg.map(|a| c_string(a, end)),
    })
}

/// Turns the arguments of an exec of `script` (its path as given to execve) into the
/// interpreter's: its path, the `#!` argument if any, the script's path, then the
/// script's own arguments but the first. The strings come out of the room the limits
/// left (the dropped `argv[0]` gives its bytes back): E2BIG if they do not fit or one is
/// longer than `MAX_ARG_STRLEN`, as Linux's `copy_string_kernel`.
pub fn rewrite_args(
    args: &mut ExecArgs,
    shebang: &Shebang<'_>,
    script: &[u8],
) -> Result<(), Errno> {
    let mut room = args.room + args.argv.first().map_or(0, |a| a.len() + 1);
    for s in [Some(shebang.interpreter), shebang.arg, Some(script)]
        .into_iter()
        .flatten()
    {
        let len = s.len() + 1;
        if len > MAX_ARG_STRLEN || len > room {
            return Err(Errno::E2BIG);
        }
        room -= len;
    }
    args.argv = interpreter_argv(shebang, script, &args.argv)?;
    args.room = room;
    Ok(())
}

/// The argument list an interpreter runs with: its path, the `#!` argument if any, the
/// script's path (as given to execve), then the script's own arguments but the first.
pub fn interpreter_argv(
    shebang: &Shebang<'_>,
    script: &[u8],
    argv: &[Vec<u8>],
) -> Result<Vec<Vec<u8>>, Errno> {
    let mut out = Vec::new();
    out.try_reserve(argv.len() + 2).map_err(|_| Errno::ENOMEM)?;
    let copy = |s: &[u8]| -> Result<Vec<u8>, Errno> {
        let mut v = Vec::new();
        v.try_reserve_exact(s.len()).map_err(|_| Errno::ENOMEM)?;
        v.extend_from_slice(s);
        Ok(v)
    };
    out.push(copy(shebang.interpreter)?);
    if let Some(arg) = shebang.arg {
        out.push(copy(arg)?);
    }
    out.push(copy(script)?);
    for a in argv.iter().skip(1) {
        out.push(copy(a)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(head: &[u8]) -> (Vec<u8>, Option<Vec<u8>>) {
        let s = parse(head).unwrap_or_else(|e| panic!("{head:?}: {e:?}"));
        (s.interpreter.to_vec(), s.arg.map(<[u8]>::to_vec))
    }

    fn name(s: &str) -> Vec<u8> {
        s.as_bytes().to_vec()
    }

    #[test]
    fn interpreter_and_one_argument() {
        assert_eq!(ok(b"#!/bin/sh\necho hi\n"), (name("/bin/sh"), None));
        assert_eq!(ok(b"#!/bin/sh -e\n"), (name("/bin/sh"), Some(name("-e"))));
        assert_eq!(
            ok(b"#! /bin/sh\n"),
            (name("/bin/sh"), None),
            "blank after #!"
        );
        assert_eq!(
            ok(b"#!\t/usr/bin/env  python3 -u \t\n"),
            (name("/usr/bin/env"), Some(name("python3 -u"))),
            "one argument, inner blanks kept, trailing dropped"
        );
        assert_eq!(
            ok(b"#!/bin/sh   \n"),
            (name("/bin/sh"), None),
            "trailing blanks"
        );
        assert_eq!(
            ok(b"#!/bin/sh\r\n"),
            (name("/bin/sh\r"), None),
            "CR is part of the name, as on Linux"
        );
        // No newline in a short file: the NUL padding ends the path.
        assert_eq!(ok(b"#!/bin/true"), (name("/bin/true"), None));
        assert_eq!(ok(b"#!/bin/awk -f"), (name("/bin/awk"), Some(name("-f"))));
        // A NUL ends the path or the argument.
        assert_eq!(ok(b"#!/bin/sh\0 -x\n"), (name("/bin/sh"), None));
        assert_eq!(
            ok(b"#!/bin/sh -x\0y\n"),
            (name("/bin/sh"), Some(name("-x")))
        );
    }

    #[test]
    fn enoexec_cases() {
        assert_eq!(parse(b""), Err(Errno::ENOEXEC));
        assert_eq!(parse(b"#"), Err(Errno::ENOEXEC));
        assert_eq!(parse(b"\x7fELF"), Err(Errno::ENOEXEC));
        assert_eq!(parse(b"# !/bin/sh\n"), Err(Errno::ENOEXEC));
        assert_eq!(parse(b"#!\n"), Err(Errno::ENOEXEC), "no interpreter");
        assert_eq!(
            parse(b"#!   \t \n/bin/sh\n"),
            Err(Errno::ENOEXEC),
            "blank line"
        );
        // Only "#!" and the NUL padding: Linux finds an empty interpreter name (and then
        // fails to open it, ENOENT), not ENOEXEC.
        assert_eq!(ok(b"#!"), (name(""), None));
        let blanks = [b' '; BINPRM_BUF_SIZE];
        let mut all_blank = b"#!".to_vec();
        all_blank.extend_from_slice(&blanks);
        assert_eq!(
            parse(&all_blank),
            Err(Errno::ENOEXEC),
            "the whole buffer blank"
        );
    }

    #[test]
    fn the_256_byte_limit() {
        // A path filling the buffer without a newline may be cut off: ENOEXEC.
        let mut long = b"#!/".to_vec();
        long.extend(std::iter::repeat_n(b'a', 300));
        long.push(b'\n');
        assert_eq!(parse(&long), Err(Errno::ENOEXEC));
        // A path of 253 bytes followed by the newline at byte 255 fits.
        let mut fits = b"#!/".to_vec();
        fits.extend(std::iter::repeat_n(b'b', 252));
        fits.push(b'\n');
        assert_eq!(fits.len(), BINPRM_BUF_SIZE);
        assert_eq!(ok(&fits).0.len(), 253);
        // One more byte and the newline is out of reach, and the path has no end.
        let mut over = b"#!/".to_vec();
        over.extend(std::iter::repeat_n(b'b', 253));
        over.push(b'\n');
        assert_eq!(parse(&over), Err(Errno::ENOEXEC));
        // A blank after the path inside the buffer: the argument is cut at the buffer's
        // end (the last byte is dropped, as Linux overwrites it with the NUL).
        let mut cut = b"#!/bin/sh ".to_vec();
        cut.extend(std::iter::repeat_n(b'x', 300));
        let (interp, arg) = ok(&cut);
        assert_eq!(interp, name("/bin/sh"));
        assert_eq!(arg.map(|a| a.len()), Some(BINPRM_BUF_SIZE - 1 - 10));
    }

    #[test]
    fn argv_for_the_interpreter() {
        let s = parse(b"#!/bin/sh -e\n").unwrap();
        let argv = vec![name("./run.sh"), name("a"), name("b")];
        assert_eq!(
            interpreter_argv(&s, b"/work/run.sh", &argv).unwrap(),
            [
                name("/bin/sh"),
                name("-e"),
                name("/work/run.sh"),
                name("a"),
                name("b")
            ]
        );
        let s = parse(b"#!/bin/cat\n").unwrap();
        assert_eq!(
            interpreter_argv(&s, b"f", &[]).unwrap(),
            [name("/bin/cat"), name("f")],
            "argc 0: nothing to drop"
        );
    }

    #[test]
    fn rewritten_args_come_out_of_the_room() {
        let s = parse(
            b"#!/bin/sh -e
",
        )
        .unwrap();
        let mut args = ExecArgs {
            argv: vec![name("run"), name("x")],
            envp: vec![name("A=1")],
            room: 100,
        };
        rewrite_args(&mut args, &s, b"./run").unwrap();
        assert_eq!(
            args.argv,
            [name("/bin/sh"), name("-e"), name("./run"), name("x")]
        );
        // "run" gave back 4 bytes; "/bin/sh", "-e", "./run" took 8 + 3 + 6.
        assert_eq!(args.room, 100 + 4 - 17);
        assert_eq!(args.envp, [name("A=1")]);
        let mut tight = ExecArgs {
            argv: vec![name("run")],
            envp: vec![],
            room: 12,
        };
        assert_eq!(rewrite_args(&mut tight, &s, b"./run"), Err(Errno::E2BIG));
        assert_eq!(tight.argv, [name("run")], "unchanged on error");
        tight.room = 13;
        assert!(rewrite_args(&mut tight, &s, b"./run").is_ok());
        assert_eq!(tight.room, 0);
        // A script path longer than MAX_ARG_STRLEN cannot be passed on.
        let mut roomy = ExecArgs {
            room: 1 << 30,
            ..ExecArgs::default()
        };
        let long = vec![b'p'; MAX_ARG_STRLEN];
        assert_eq!(rewrite_args(&mut roomy, &s, &long), Err(Errno::E2BIG));
    }
}

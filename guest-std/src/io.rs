//! Standard input, output and error; the [`Read`] and [`Write`] traits; the buffered
//! formatting behind `print!` and friends.
//!
//! Each `print!`/`println!` call formats into a stack buffer and hands it to the kernel in as
//! few `write(2)` calls as possible (one, for lines shorter than [`BUF_LEN`]), so lines from
//! different streams or processes do not interleave mid-line.

use alloc::vec::Vec;
use core::fmt;

use crate::errno::Errno;
use crate::syscall::{self, fd};

/// A source of bytes, like `std::io::Read` (errors are [`Errno`]s).
pub trait Read {
    /// Reads up to `buf.len()` bytes into `buf`; `Ok(0)` means the end (or an empty `buf`).
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Errno>;

    /// Fills all of `buf`, retrying short reads and `EINTR`. Ending early is `EIO`.
    fn read_exact(&mut self, mut buf: &mut [u8]) -> Result<(), Errno> {
        while !buf.is_empty() {
            match self.read(buf) {
                Ok(0) => return Err(Errno::EIO),
                Ok(n) => {
                    let n = n.min(buf.len());
                    buf = &mut core::mem::take(&mut buf)[n..];
                }
                Err(Errno::EINTR) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Appends everything up to the end to `out`; returns how many bytes were appended.
    /// Memory that cannot be had is `ENOMEM`, not an abort.
    ///
    /// Spare capacity is used first (so a `Vec` reserved to the file's size is filled
    /// without reallocating), each byte is zeroed once, and a full `Vec` is only grown when
    /// a small probe read shows there is more to come.
    fn read_to_end(&mut self, out: &mut Vec<u8>) -> Result<usize, Errno> {
        /// Bytes added per growth once the reserved capacity is used up.
        const STEP: usize = 16 * 1024;
        let start = out.len();
        let mut filled = start;
        let result = loop {
            if filled == out.len() {
                if out.len() == out.capacity() {
                    let mut probe = [0u8; 32];
                    match self.read(&mut probe) {
                        Ok(0) => break Ok(()),
                        Ok(n) => {
                            out.truncate(filled);
                            if out.try_reserve(STEP).is_err() {
                                break Err(Errno::ENOMEM);
                            }
                            out.extend_from_slice(&probe[..n.min(probe.len())]);
                            filled = out.len();
                        }
                        Err(Errno::EINTR) => continue,
                        Err(e) => break Err(e),
                    }
                }
                // Make the spare capacity readable into, zeroing it this once.
                out.resize(out.capacity(), 0);
                continue;
            }
            match self.read(&mut out[filled..]) {
                Ok(0) => break Ok(()),
                Ok(n) => filled += n.min(out.len() - filled),
                Err(Errno::EINTR) => {}
                Err(e) => break Err(e),
            }
        };
        out.truncate(filled);
        result.map(|()| filled - start)
    }
}

/// A sink of bytes, like `std::io::Write` (errors are [`Errno`]s).
pub trait Write {
    /// Writes some of `buf`; returns how many bytes were taken.
    fn write(&mut self, buf: &[u8]) -> Result<usize, Errno>;

    /// Pushes out anything buffered (nothing, unless the writer buffers).
    fn flush(&mut self) -> Result<(), Errno> {
        Ok(())
    }

    /// Writes all of `buf`, retrying short writes and `EINTR` (see [`write_all_with`]).
    fn write_all(&mut self, buf: &[u8]) -> Result<(), Errno> {
        write_all_with(|chunk| self.write(chunk), buf)
    }

    /// Writes formatted text, as `write!(w, ...)` calls it; the first write error is returned.
    fn write_fmt(&mut self, args: fmt::Arguments<'_>) -> Result<(), Errno> {
        format_into(|bytes| self.write_all(bytes), args, false)
    }
}

impl Read for &[u8] {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Errno> {
        let n = buf.len().min(self.len());
        buf[..n].copy_from_slice(&self[..n]);
        *self = &self[n..];
        Ok(n)
    }
}

impl Write for Vec<u8> {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Errno> {
        self.try_reserve(buf.len()).map_err(|_| Errno::ENOMEM)?;
        self.extend_from_slice(buf);
        Ok(buf.len())
    }
}

impl<R: Read + ?Sized> Read for &mut R {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Errno> {
        (**self).read(buf)
    }
}

impl<W: Write + ?Sized> Write for &mut W {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Errno> {
        (**self).write(buf)
    }

    fn flush(&mut self) -> Result<(), Errno> {
        (**self).flush()
    }
}

/// Size of the stack buffer one `print!` call formats into.
pub const BUF_LEN: usize = 512;

/// Writes all of `buf` through `write`, retrying short writes and `EINTR`.
///
/// A write that makes no progress fails with `EIO` instead of looping forever.
pub fn write_all_with(
    mut write: impl FnMut(&[u8]) -> Result<usize, Errno>,
    mut buf: &[u8],
) -> Result<(), Errno> {
    while !buf.is_empty() {
        match write(buf) {
            Ok(0) => return Err(Errno::EIO),
            Ok(n) => buf = &buf[n.min(buf.len())..],
            Err(Errno::EINTR) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Writes all of `buf` to file descriptor `fd`.
pub fn write_all(fd: i32, buf: &[u8]) -> Result<(), Errno> {
    write_all_with(|chunk| syscall::write(fd, chunk), buf)
}

/// Handle to the process's standard input (fd 0), unbuffered.
#[derive(Clone, Copy, Debug, Default)]
pub struct Stdin;

/// Handle to the process's standard output (fd 1), unbuffered.
#[derive(Clone, Copy, Debug, Default)]
pub struct Stdout;

/// Handle to the process's standard error (fd 2), unbuffered.
#[derive(Clone, Copy, Debug, Default)]
pub struct Stderr;

/// Standard input.
pub fn stdin() -> Stdin {
    Stdin
}

/// Standard output.
pub fn stdout() -> Stdout {
    Stdout
}

/// Standard error.
pub fn stderr() -> Stderr {
    Stderr
}

impl Read for Stdin {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Errno> {
        syscall::read(fd::STDIN, buf)
    }
}

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Errno> {
        syscall::write(fd::STDOUT, buf)
    }
}

impl Write for Stderr {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Errno> {
        syscall::write(fd::STDERR, buf)
    }
}

/// A `fmt::Write` that collects output in a [`BUF_LEN`]-byte buffer and passes it to `sink`
/// whenever it fills up and on [`flush`](Buffered::flush). Remembers the first sink error.
pub struct Buffered<F: FnMut(&[u8]) -> Result<(), Errno>> {
    buf: [u8; BUF_LEN],
    len: usize,
    sink: F,
    error: Option<Errno>,
}

impl<F: FnMut(&[u8]) -> Result<(), Errno>> Buffered<F> {
    /// An empty buffer in front of `sink`.
    pub fn new(sink: F) -> Self {
        Buffered {
            buf: [0; BUF_LEN],
            len: 0,
            sink,
            error: None,
        }
    }

    /// Appends `bytes`, passing full buffers on to the sink.
    pub fn push(&mut self, mut bytes: &[u8]) -> Result<(), Errno> {
        while !bytes.is_empty() {
            if self.len == BUF_LEN {
                self.flush()?;
            }
            let take = bytes.len().min(BUF_LEN - self.len);
            self.buf[self.len..self.len + take].copy_from_slice(&bytes[..take]);
            self.len += take;
            bytes = &bytes[take..];
        }
        Ok(())
    }

    /// Passes whatever is buffered to the sink; returns the first error seen so far.
    pub fn flush(&mut self) -> Result<(), Errno> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let len = core::mem::take(&mut self.len);
        if len > 0 {
            if let Err(e) = (self.sink)(&self.buf[..len]) {
                self.error = Some(e);
                return Err(e);
            }
        }
        Ok(())
    }
}

impl<F: FnMut(&[u8]) -> Result<(), Errno>> fmt::Write for Buffered<F> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.push(s.as_bytes()).map_err(|_| fmt::Error)
    }
}

/// Formats `args` (and a newline if `newline`) and writes the result to `fd` in as few
/// writes as possible.
pub fn write_fmt_to(fd: i32, args: fmt::Arguments<'_>, newline: bool) -> Result<(), Errno> {
    format_into(|bytes| write_all(fd, bytes), args, newline)
}

fn format_into(
    sink: impl FnMut(&[u8]) -> Result<(), Errno>,
    args: fmt::Arguments<'_>,
    newline: bool,
) -> Result<(), Errno> {
    let mut out = Buffered::new(sink);
    // A formatting error is either the sink's (kept in `out.error`, reported by `flush`) or
    // a `Display` impl's; std panics for the latter, so do we.
    if fmt::Write::write_fmt(&mut out, args).is_err() {
        out.flush()?;
        panic!("a formatting trait implementation returned an error");
    }
    if newline {
        out.push(b"\n")?;
    }
    out.flush()
}

#[doc(hidden)]
pub fn _print(args: fmt::Arguments<'_>, newline: bool) {
    if let Err(e) = write_fmt_to(fd::STDOUT, args, newline) {
        panic!("failed printing to stdout: {e}");
    }
}

#[doc(hidden)]
pub fn _eprint(args: fmt::Arguments<'_>, newline: bool) {
    if let Err(e) = write_fmt_to(fd::STDERR, args, newline) {
        panic!("failed printing to stderr: {e}");
    }
}

/// Displays a byte string as text: valid UTF-8 as is, each invalid sequence as U+FFFD.
#[derive(Clone, Copy)]
pub struct Bytes<'a>(pub &'a [u8]);

impl fmt::Display for Bytes<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for chunk in self.0.utf8_chunks() {
            f.write_str(chunk.valid())?;
            if !chunk.invalid().is_empty() {
                f.write_str("\u{FFFD}")?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Bytes<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{}\"", self.0.escape_ascii())
    }
}

/// Prints to standard output, like `std::print!`. Panics if the write fails.
#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => {
        $crate::io::_print(::core::format_args!($($arg)*), false)
    };
}

/// Prints a line to standard output, like `std::println!`. Panics if the write fails.
#[macro_export]
macro_rules! println {
    () => {
        $crate::io::_print(::core::format_args!(""), true)
    };
    ($($arg:tt)*) => {
        $crate::io::_print(::core::format_args!($($arg)*), true)
    };
}

/// Prints to standard error, like `std::eprint!`. Panics if the write fails.
#[macro_export]
macro_rules! eprint {
    ($($arg:tt)*) => {
        $crate::io::_eprint(::core::format_args!($($arg)*), false)
    };
}

/// Prints a line to standard error, like `std::eprintln!`. Panics if the write fails.
#[macro_export]
macro_rules! eprintln {
    () => {
        $crate::io::_eprint(::core::format_args!(""), true)
    };
    ($($arg:tt)*) => {
        $crate::io::_eprint(::core::format_args!($($arg)*), true)
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_all_retries_short_writes_and_eintr() {
        let mut calls = Vec::new();
        let mut script = vec![Ok(2), Err(Errno::EINTR), Ok(3), Ok(10)].into_iter();
        let result = write_all_with(
            |chunk| {
                calls.push(chunk.to_vec());
                script.next().unwrap()
            },
            b"hello world",
        );
        assert_eq!(result, Ok(()));
        assert_eq!(
            calls,
            [&b"hello world"[..], b"llo world", b"llo world", b" world"]
        );
    }

    #[test]
    fn write_all_fails_on_error_and_on_no_progress() {
        assert_eq!(
            write_all_with(|_| Err(Errno::EBADF), b"x"),
            Err(Errno::EBADF)
        );
        assert_eq!(write_all_with(|_| Ok(0), b"x"), Err(Errno::EIO));
        assert_eq!(
            write_all_with(|_| panic!("no write for nothing"), b""),
            Ok(())
        );
    }

    #[test]
    fn one_write_per_short_line() {
        let mut writes: Vec<Vec<u8>> = Vec::new();
        let name = "astra";
        let result = format_into(
            |bytes| {
                writes.push(bytes.to_vec());
                Ok(())
            },
            format_args!("Hello from {name}{}", '!'),
            true,
        );
        assert_eq!(result, Ok(()));
        assert_eq!(writes, [b"Hello from astra!\n".to_vec()]);
    }

    #[test]
    fn long_output_is_split_at_the_buffer_size() {
        let mut writes: Vec<Vec<u8>> = Vec::new();
        let long = "x".repeat(BUF_LEN + 10);
        let result = format_into(
            |bytes| {
                writes.push(bytes.to_vec());
                Ok(())
            },
            format_args!("{long}"),
            true,
        );
        assert_eq!(result, Ok(()));
        assert_eq!(writes.len(), 2);
        assert_eq!(writes[0].len(), BUF_LEN);
        assert_eq!(writes.concat(), format!("{long}\n").into_bytes());
    }

    #[test]
    fn sink_error_is_reported() {
        let result = format_into(|_| Err(Errno::EPIPE), format_args!("x"), false);
        assert_eq!(result, Err(Errno::EPIPE));
        let long = "y".repeat(BUF_LEN * 2);
        let result = format_into(|_| Err(Errno::EBADF), format_args!("{long}"), false);
        assert_eq!(result, Err(Errno::EBADF));
    }

    /// A reader that hands out its data in small pieces with an `EINTR` between them.
    struct Trickle<'a> {
        data: &'a [u8],
        interrupt: bool,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> Result<usize, Errno> {
            self.interrupt = !self.interrupt;
            if self.interrupt {
                return Err(Errno::EINTR);
            }
            let n = buf.len().min(self.data.len()).min(7);
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    #[test]
    fn read_exact_and_read_to_end() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 253) as u8).collect();
        let mut reader = Trickle {
            data: &data,
            interrupt: false,
        };
        let mut head = [0u8; 10];
        reader.read_exact(&mut head).unwrap();
        assert_eq!(head, data[..10]);
        let mut rest = b"prefix".to_vec();
        assert_eq!(reader.read_to_end(&mut rest), Ok(data.len() - 10));
        assert_eq!(&rest[..6], b"prefix");
        assert_eq!(rest[6..], data[10..]);
        let mut short: &[u8] = b"abc";
        let mut four = [0u8; 4];
        assert_eq!(short.read_exact(&mut four), Err(Errno::EIO));
    }

    #[test]
    fn read_to_end_fills_reserved_capacity_without_growing() {
        let data = vec![7u8; 50_000];
        let mut out = Vec::with_capacity(data.len());
        let before = out.as_ptr();
        assert_eq!((&data[..]).read_to_end(&mut out), Ok(data.len()));
        assert_eq!(out, data);
        assert_eq!(out.as_ptr(), before, "the reserved buffer was reallocated");
        // Empty input, empty output.
        let mut none = Vec::new();
        assert_eq!((&[][..]).read_to_end(&mut none), Ok(0));
        assert!(none.is_empty());
    }

    #[test]
    fn read_to_end_reports_errors_and_keeps_what_came() {
        struct Failing(bool);
        impl Read for Failing {
            fn read(&mut self, buf: &mut [u8]) -> Result<usize, Errno> {
                if std::mem::replace(&mut self.0, true) {
                    Err(Errno::EISDIR)
                } else {
                    buf[..2].copy_from_slice(b"ok");
                    Ok(2)
                }
            }
        }
        let mut out = Vec::new();
        assert_eq!(Failing(false).read_to_end(&mut out), Err(Errno::EISDIR));
        assert_eq!(out, b"ok");
    }

    #[test]
    fn write_trait_formats_and_writes_all() {
        let mut out: Vec<u8> = Vec::new();
        write!(out, "{} + {} = {}", 1, 2, 1 + 2).unwrap();
        out.write_all(b"!").unwrap();
        assert_eq!(out, b"1 + 2 = 3!");
        let by_ref = &mut out;
        by_ref.write_all(b"?").unwrap();
        assert_eq!(out.last(), Some(&b'?'));
    }

    #[test]
    fn bytes_display_is_lossy_utf8() {
        assert_eq!(Bytes(b"plain").to_string(), "plain");
        assert_eq!(Bytes("h\u{e9}".as_bytes()).to_string(), "h\u{e9}");
        assert_eq!(Bytes(b"a\xffb").to_string(), "a\u{FFFD}b");
        assert_eq!(format!("{:?}", Bytes(b"a\n\xff")), "\"a\\n\\xff\"");
    }
}

//! The console as a terminal: reading standard input from the VMM's console-input device
//! (blocking by halting the CPU until the console interrupt or the timer), writing to the
//! program's output streams, and the terminal state `ioctl` reports (termios, window size).
//!
//! The host terminal does the line editing and echo (the VMM leaves it in cooked mode), so
//! termios is kept for programs to read back; what it changes here is how `read` waits:
//! with `ICANON` a read ends after a newline, without it `VMIN`/`VTIME` 0 reads never wait.
//!
//! Input arrives a bounce buffer at a time (one VM exit for up to 64 KiB) and is copied from
//! there straight into the reader's buffer (`drivers::console_in`). When the VMM's own
//! streams are not terminals, programs read and write them through [`super::host_stream`],
//! which uses the input and output here without the terminal behaviour ([`read_stream`]).

use spin::Mutex;

use super::file::ReadSink;
use crate::drivers::console_in;
use crate::errno::Errno;
use crate::mm::uaccess::Pod;
use crate::task::sched::WaitResult;
use crate::task::wait::IO;

/// The terminal's foreground process group (0: not set yet, which reads as the session
/// leader's group).
static FOREGROUND: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(0);

/// The foreground process group set by `TIOCSPGRP` (0: none set).
pub fn foreground_pgrp() -> u32 {
    FOREGROUND.load(core::sync::atomic::Ordering::Relaxed)
}

/// `TIOCSPGRP` (checked by the caller).
pub fn set_foreground_pgrp(pgrp: u32) {
    FOREGROUND.store(pgrp, core::sync::atomic::Ordering::Relaxed);
}

/// `ioctl` requests on terminals.
pub mod req {
    /// Get termios.
    pub const TCGETS: u32 = 0x5401;
    /// Set termios now.
    pub const TCSETS: u32 = 0x5402;
    /// Set termios after output drains.
    pub const TCSETSW: u32 = 0x5403;
    /// Set termios after output drains, discarding input.
    pub const TCSETSF: u32 = 0x5404;
    /// Wait for output to drain (`tcdrain`), or send a break.
    pub const TCSBRK: u32 = 0x5409;
    /// Flush queued input and/or output (`tcflush`).
    pub const TCFLSH: u32 = 0x540b;
    /// Get the foreground process group.
    pub const TIOCGPGRP: u32 = 0x540f;
    /// Set the foreground process group.
    pub const TIOCSPGRP: u32 = 0x5410;
    /// Get the window size.
    pub const TIOCGWINSZ: u32 = 0x5413;
    /// Set the window size.
    pub const TIOCSWINSZ: u32 = 0x5414;
    /// Get the session id.
    pub const TIOCGSID: u32 = 0x5429;
}

/// `c_lflag`: canonical (line) input.
pub const ICANON: u32 = 0o2;
/// Index of `VTIME` in `c_cc`.
const VTIME: usize = 5;
/// Index of `VMIN` in `c_cc`.
const VMIN: usize = 6;

/// The kernel's `struct termios` (what `TCGETS` copies), 36 bytes.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Termios {
    /// Input modes.
    pub c_iflag: u32,
    /// Output modes.
    pub c_oflag: u32,
    /// Control modes.
    pub c_cflag: u32,
    /// Local modes.
    pub c_lflag: u32,
    /// Line discipline.
    pub c_line: u8,
    /// Control characters.
    pub c_cc: [u8; 19],
}

const _: () = assert!(core::mem::size_of::<Termios>() == 36);

// SAFETY: repr(C), byte-sized tail after four u32s: no padding, any bit pattern valid.
unsafe impl Pod for Termios {}

/// Linux's `tty_std_termios`: `ICRNL|IXON`, `OPOST|ONLCR`, `B38400|CS8|CREAD|HUPCL`,
/// `ISIG|ICANON|ECHO|ECHOE|ECHOK|ECHOCTL|ECHOKE|IEXTEN`, and the usual control characters
/// (^C ^\ DEL ^U ^D, VMIN 1, ^Q ^S ^Z ^R ^O ^W ^V).
pub const DEFAULT_TERMIOS: Termios = Termios {
    c_iflag: 0o2400,
    c_oflag: 0o5,
    c_cflag: 0o277,
    c_lflag: 0o105073,
    c_line: 0,
    c_cc: [
        3, 0o34, 0o177, 0o25, 4, 0, 1, 0, 0o21, 0o23, 0o32, 0, 0o22, 0o17, 0o27, 0o26, 0, 0, 0,
    ],
};

/// `struct winsize`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Winsize {
    /// Rows.
    pub ws_row: u16,
    /// Columns.
    pub ws_col: u16,
    /// Width in pixels (unused).
    pub ws_xpixel: u16,
    /// Height in pixels (unused).
    pub ws_ypixel: u16,
}

// SAFETY: repr(C), four u16s.
unsafe impl Pod for Winsize {}

/// The console's size until a program sets another: the classic 80x24.
pub const DEFAULT_WINSIZE: Winsize = Winsize {
    ws_row: 24,
    ws_col: 80,
    ws_xpixel: 0,
    ws_ypixel: 0,
};

struct TtyState {
    termios: Termios,
    winsize: Winsize,
}

static STATE: Mutex<TtyState> = Mutex::new(TtyState {
    termios: DEFAULT_TERMIOS,
    winsize: DEFAULT_WINSIZE,
});

/// The console's termios.
pub fn termios() -> Termios {
    STATE.lock().termios
}

/// Replaces the console's termios.
pub fn set_termios(t: Termios) {
    STATE.lock().termios = t;
}

/// The console's window size.
pub fn winsize() -> Winsize {
    STATE.lock().winsize
}

/// Replaces the console's window size.
pub fn set_winsize(w: Winsize) {
    STATE.lock().winsize = w;
}

/// Bytes of input that a read would return now (`FIONREAD`).
pub fn input_available() -> usize {
    let mut input = console_in::lock();
    input.refill();
    input.queue().available()
}

/// Discards input received and not yet read (`TCFLSH`, `TCSETSF`).
pub fn flush_input() {
    console_in::lock().discard();
}

/// (input waiting, input ended) for `poll`. Input that failed counts as waiting: a read
/// reports the error at once.
pub fn input_state() -> (bool, bool) {
    let mut input = console_in::lock();
    input.refill();
    let q = input.queue();
    (!q.is_empty() || q.failed(), q.ended())
}

/// How long a read may wait, from termios.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wait {
    /// Until input arrives.
    Forever,
    /// Not at all.
    Never,
    /// At most this many nanoseconds.
    Nanos(u64),
}

fn read_wait(t: &Termios) -> Wait {
    if t.c_lflag & ICANON != 0 || t.c_cc[VMIN] > 0 {
        Wait::Forever
    } else if t.c_cc[VTIME] == 0 {
        Wait::Never
    } else {
        Wait::Nanos(u64::from(t.c_cc[VTIME]) * 100_000_000)
    }
}

/// Reads standard input: waits (halting the CPU) until input arrives or ends (then returns
/// 0), unless `nonblock` (`EAGAIN`) or termios says not to wait. A canonical read ends after
/// a newline; otherwise it takes what is buffered, in the kernel and in the VMM, up to the
/// size of the read.
pub fn read(out: &mut dyn ReadSink, nonblock: bool) -> Result<usize, Errno> {
    let t = termios();
    read_input(out, nonblock, t.c_lflag & ICANON != 0, read_wait(&t))
}

/// Reads the console input as a plain stream, whatever termios says: what is buffered, in
/// the kernel and in the VMM, up to the size of the read; waits (halting the CPU) while
/// there is nothing until input arrives or ends (then returns 0), unless `nonblock`
/// (`EAGAIN`).
pub fn read_stream(out: &mut dyn ReadSink, nonblock: bool) -> Result<usize, Errno> {
    read_input(out, nonblock, false, Wait::Forever)
}

fn read_input(
    out: &mut dyn ReadSink,
    nonblock: bool,
    canonical: bool,
    wait: Wait,
) -> Result<usize, Errno> {
    if out.remaining() == 0 {
        return Ok(0);
    }
    let start_ns = crate::time::monotonic_ns();
    loop {
        {
            let mut input = console_in::lock();
            input.refill();
            if !input.queue().is_empty() {
                return deliver(&mut input, out, canonical);
            }
            if input.queue().failed() {
                return Err(Errno::EIO);
            }
            if input.queue().ended() {
                return Ok(0);
            }
        }
        if nonblock {
            return Err(Errno::EAGAIN);
        }
        match wait {
            Wait::Never => return Ok(0),
            Wait::Nanos(limit) if crate::time::monotonic_ns() - start_ns >= limit => return Ok(0),
            _ => {}
        }
        // The console interrupt (input arrived or ended) wakes the I/O queue; a periodic
        // look (every 10 ms) covers an interrupt that found nobody waiting yet.
        let recheck = crate::time::monotonic_ns() + 10_000_000;
        let deadline = match wait {
            Wait::Nanos(limit) => recheck.min(start_ns + limit),
            _ => recheck,
        };
        if IO.wait(Some(deadline)) == WaitResult::Interrupted {
            return Err(Errno::ERESTARTSYS);
        }
    }
}

/// Copies queued input into `out` until it is full, a canonical line is complete, the
/// destination faults or the VMM has nothing more buffered (one VM exit per bounce buffer).
fn deliver(
    input: &mut console_in::Input,
    out: &mut dyn ReadSink,
    canonical: bool,
) -> Result<usize, Errno> {
    let mut done = 0;
    loop {
        let (n, line_done) = input
            .queue()
            .take(out.remaining(), canonical, |bytes| out.put(bytes));
        done += n;
        let finished = line_done || out.faulted() || out.remaining() == 0;
        if finished || !input.queue().is_empty() || !input.queue().host_has_more() {
            break;
        }
        input.refill();
        if input.queue().is_empty() {
            break;
        }
    }
    if done == 0 && out.faulted() {
        Err(Errno::EFAULT)
    } else {
        Ok(done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_termios_is_linux_std() {
        let t = DEFAULT_TERMIOS;
        assert_eq!(t.c_iflag, 0x500); // ICRNL | IXON
        assert_eq!(t.c_oflag, 0x5); // OPOST | ONLCR
        assert_eq!(t.c_cflag, 0xbf); // B38400 | CS8 | CREAD | HUPCL
        assert_eq!(t.c_lflag, 0x8a3b);
        assert_eq!(t.c_cc[VMIN], 1);
        assert_eq!(t.c_cc[4], 4); // VEOF = ^D
    }

    #[test]
    fn wait_policy_follows_termios() {
        let mut t = DEFAULT_TERMIOS;
        assert_eq!(read_wait(&t), Wait::Forever);
        t.c_lflag &= !ICANON;
        assert_eq!(read_wait(&t), Wait::Forever);
        t.c_cc[VMIN] = 0;
        assert_eq!(read_wait(&t), Wait::Never);
        t.c_cc[VTIME] = 3;
        assert_eq!(read_wait(&t), Wait::Nanos(300_000_000));
    }
}

//! The console as a terminal: reading standard input from the UART (blocking by halting the
//! CPU between polls), writing to the program's output streams, and the terminal state
//! `ioctl` reports (termios, window size).
//!
//! The host terminal does the line editing and echo (the VMM leaves it in cooked mode), so
//! termios is kept for programs to read back; what it changes here is how `read` waits:
//! with `ICANON` a read ends after a newline, without it `VMIN`/`VTIME` 0 reads never wait.

use alloc::collections::VecDeque;

use spin::Mutex;

use super::file::ReadSink;
use crate::arch::platform;
use crate::drivers::console;
use crate::mm::uaccess::Pod;
use crate::syscall::Errno;

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

/// Writes program output: to the standard-error stream if `stderr`.
pub fn write(bytes: &[u8], stderr: bool) {
    if stderr {
        console::write_err_bytes(bytes);
    } else {
        console::write_bytes(bytes);
    }
}

/// Input received from the UART and not yet read, at most [`INPUT_MAX`] bytes (the UART
/// holds back the rest, and the VMM waits for room).
static INPUT: Mutex<VecDeque<u8>> = Mutex::new(VecDeque::new());
/// Capacity of the input queue (Linux's tty buffer is 4 KiB too).
const INPUT_MAX: usize = 4096;

/// Moves bytes waiting in the UART into the input queue; returns the queue's length.
fn drain_uart(q: &mut VecDeque<u8>) -> usize {
    let mut buf = [0u8; 64];
    while q.len() < INPUT_MAX {
        let room = (INPUT_MAX - q.len()).min(buf.len());
        let n = console::read_input(&mut buf[..room], false);
        if n == 0 {
            break;
        }
        q.extend(&buf[..n]);
    }
    q.len()
}

/// Bytes of input that a read would return now (`FIONREAD`).
pub fn input_available() -> usize {
    drain_uart(&mut INPUT.lock())
}

/// Discards input received and not yet read (`TCFLSH`, `TCSETSF`).
pub fn flush_input() {
    let mut q = INPUT.lock();
    drain_uart(&mut q);
    q.clear();
}

/// (input waiting, input ended) for `poll`.
pub fn input_state() -> (bool, bool) {
    if input_available() > 0 {
        (true, false)
    } else {
        (false, console::input_ended())
    }
}

/// Takes up to `max` queued bytes into `buf`, through the first newline if `line`.
fn take_input(q: &mut VecDeque<u8>, buf: &mut [u8], line: bool) -> usize {
    let mut n = 0;
    while n < buf.len() {
        let Some(b) = q.pop_front() else {
            break;
        };
        buf[n] = b;
        n += 1;
        if line && b == b'\n' {
            break;
        }
    }
    n
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

/// Reads standard input: waits (halting the CPU) until a byte arrives or input ends (then
/// returns 0), unless `nonblock` (`EAGAIN`) or termios says not to wait.
pub fn read(out: &mut dyn ReadSink, nonblock: bool) -> Result<usize, Errno> {
    let want = out.remaining();
    if want == 0 {
        return Ok(0);
    }
    let t = termios();
    let canonical = t.c_lflag & ICANON != 0;
    let wait = read_wait(&t);
    let start_ns = crate::time::monotonic_ns();
    let mut buf = [0u8; 256];
    loop {
        let n = {
            let mut q = INPUT.lock();
            drain_uart(&mut q);
            take_input(&mut q, &mut buf[..want.min(256)], canonical)
        };
        if n > 0 {
            let put = out.put(&buf[..n]);
            if put < n {
                // The buffer faulted: what was not delivered stays unread.
                let mut q = INPUT.lock();
                for &b in buf[put..n].iter().rev() {
                    q.push_front(b);
                }
            }
            return if put == 0 && out.faulted() {
                Err(Errno::EFAULT)
            } else {
                Ok(put)
            };
        }
        if console::input_ended() {
            return Ok(0);
        }
        if nonblock {
            return Err(Errno::EAGAIN);
        }
        match wait {
            Wait::Never => return Ok(0),
            Wait::Nanos(limit) if crate::time::monotonic_ns() - start_ns >= limit => return Ok(0),
            _ => {}
        }
        // The timer wakes the CPU every millisecond to poll again.
        platform::idle();
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
    fn canonical_reads_stop_after_a_newline() {
        let mut q: VecDeque<u8> = b"ab\ncd".iter().copied().collect();
        let mut buf = [0u8; 10];
        assert_eq!(take_input(&mut q, &mut buf, true), 3);
        assert_eq!(&buf[..3], b"ab\n");
        assert_eq!(take_input(&mut q, &mut buf[..1], true), 1);
        assert_eq!(take_input(&mut q, &mut buf, false), 1);
        assert_eq!(take_input(&mut q, &mut buf, false), 0);
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

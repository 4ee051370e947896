//! A program's standard streams when the VMM's own are not terminals.
//!
//! `astra-vmm ... < file > out` gives the VMM a file or a pipe, not a terminal, and the
//! program must see what it would on Linux: a plain stream on fd 0, 1 or 2, not the console
//! as a terminal. The VMM says which of its streams are terminals at boot, and which are
//! other character devices ([`hypercall_abi::BootInfo::host_stdio`], kept here by
//! [`set_host_terminals`]); [`super::FdTable::with_stdio`] decides from that which kind each
//! descriptor gets.
//!
//! A host stream moves bytes through the same console devices as the terminal, with none of
//! its behaviour: a read returns whatever input is buffered, up to its size (no line
//! discipline, no termios), waiting (halting) only while there is none and input has not
//! ended; terminal `ioctl`s give `ENOTTY`; `fstat` shows a character device where the VMM
//! has one (`< /dev/null`, what a test harness gives) and a FIFO otherwise (a pipe, a socket
//! or a file: the guest reads it as a stream either way), so programs that read a piped
//! stdin and leave a device alone (ripgrep) decide as on the host; `poll` answers as for a
//! pipe: the input side is readable with data and hung up at the end, the output sides
//! always writable.

use core::sync::atomic::{AtomicU32, Ordering};

use hypercall_abi::host_stdio;

use super::file::{poll_events::*, ReadSink};
use super::open::flags::{O_RDONLY, O_WRONLY};
use super::tty;
use crate::errno::Errno;

/// [`host_stdio`] bits from the boot info. Until the kernel reads them, every stream is
/// taken for a terminal.
static HOST_TERMINALS: AtomicU32 = AtomicU32::new(host_stdio::ALL);

/// Records which of the VMM's standard streams are terminals ([`host_stdio`] bits).
pub fn set_host_terminals(flags: u32) {
    HOST_TERMINALS.store(flags & host_stdio::ALL, Ordering::Relaxed);
}

/// The [`host_stdio`] bits recorded at boot.
pub fn host_terminals() -> u32 {
    HOST_TERMINALS.load(Ordering::Relaxed)
}

/// One of the VMM's standard streams, as a plain stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostStream {
    /// The VMM's stdin, through the console-input device; read only.
    Stdin,
    /// The VMM's stdout, through the console-output device; write only.
    Stdout,
    /// The VMM's stderr, through the console-output device; write only.
    Stderr,
}

impl HostStream {
    /// The stream of standard descriptor `fd` (0, 1 or 2).
    pub fn for_fd(fd: u64) -> Option<HostStream> {
        match fd {
            0 => Some(HostStream::Stdin),
            1 => Some(HostStream::Stdout),
            2 => Some(HostStream::Stderr),
            _ => None,
        }
    }

    /// Its descriptor number in the VMM.
    pub fn fd(self) -> u32 {
        match self {
            HostStream::Stdin => 0,
            HostStream::Stdout => 1,
            HostStream::Stderr => 2,
        }
    }

    /// Its name, as `/proc/[pid]/fd` shows the link (`host:[stdin]`).
    pub fn name(self) -> &'static str {
        match self {
            HostStream::Stdin => "stdin",
            HostStream::Stdout => "stdout",
            HostStream::Stderr => "stderr",
        }
    }

    /// The access mode of its descriptor, as a shell's `<` and `>` open them.
    pub fn access_mode(self) -> u32 {
        match self {
            HostStream::Stdin => O_RDONLY,
            HostStream::Stdout | HostStream::Stderr => O_WRONLY,
        }
    }

    /// Reads what the VMM's stdin has buffered, up to the size of `out`; waits (halting)
    /// while there is nothing and input has not ended (`EAGAIN` instead if `nonblock`); 0 at
    /// the end. `EBADF` on an output stream (its access mode already refuses reads).
    pub fn read(self, out: &mut dyn ReadSink, nonblock: bool) -> Result<usize, Errno> {
        match self {
            HostStream::Stdin => tty::read_stream(out, nonblock),
            HostStream::Stdout | HostStream::Stderr => Err(Errno::EBADF),
        }
    }

    /// For an output stream, whether it is standard error; `None` for standard input.
    pub fn output_is_stderr(self) -> Option<bool> {
        match self {
            HostStream::Stdin => None,
            HostStream::Stdout => Some(false),
            HostStream::Stderr => Some(true),
        }
    }

    /// Bytes a read would get now (`FIONREAD`): buffered input, 0 for an output stream.
    pub fn readable_bytes(self) -> u64 {
        match self {
            HostStream::Stdin => tty::input_available() as u64,
            HostStream::Stdout | HostStream::Stderr => 0,
        }
    }

    /// Ready `poll` events, as a pipe's: see [`poll_events`].
    pub fn poll(self) -> u16 {
        match self {
            HostStream::Stdin => {
                let (waiting, ended) = tty::input_state();
                input_events(waiting, ended)
            }
            HostStream::Stdout | HostStream::Stderr => POLLOUT | POLLWRNORM,
        }
    }
}

/// The `poll` events of the input stream, as of a pipe's read end: readable while input is
/// waiting, hung up once it has ended (a read then returns 0 at once).
fn input_events(waiting: bool, ended: bool) -> u16 {
    let mut ev = 0;
    if waiting {
        ev |= POLLIN | POLLRDNORM;
    }
    if ended {
        ev |= POLLHUP;
    }
    ev
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_descriptors_map_to_streams_with_a_shells_access_modes() {
        let streams = [0, 1, 2, 3].map(HostStream::for_fd);
        assert_eq!(
            streams,
            [
                Some(HostStream::Stdin),
                Some(HostStream::Stdout),
                Some(HostStream::Stderr),
                None
            ]
        );
        assert_eq!(HostStream::Stdin.access_mode(), O_RDONLY);
        assert_eq!(HostStream::Stderr.access_mode(), O_WRONLY);
        assert_eq!(HostStream::Stdout.readable_bytes(), 0);
    }

    #[test]
    fn output_streams_are_writable_and_refuse_reads() {
        let mut sink = super::super::file::VecSink::new(10);
        assert_eq!(HostStream::Stdout.read(&mut sink, true), Err(Errno::EBADF));
        assert_eq!(HostStream::Stderr.poll(), POLLOUT | POLLWRNORM);
    }

    #[test]
    fn as_open_files_they_are_unseekable_one_way_fifos() {
        use super::super::file::{whence::SEEK_CUR, OpenFile, SliceSource, VecSink};
        use super::super::{stat::S_IFIFO, vfs::tests::sample_ns, vfs::Walker};
        use hypercall_abi::host_stdio::StreamKind;
        let input = OpenFile::host_stream(HostStream::Stdin, StreamKind::Stream);
        let output = OpenFile::host_stream(HostStream::Stdout, StreamKind::Stream);
        assert!(!input.is_terminal() && !output.is_terminal() && !input.is_path());
        assert_eq!(input.seek(0, SEEK_CUR), Err(Errno::ESPIPE));
        assert_eq!(input.pread(0, &mut VecSink::new(4)), Err(Errno::ESPIPE));
        assert_eq!(output.read(&mut VecSink::new(4)), Err(Errno::EBADF));
        let mut src = SliceSource(b"never written");
        assert_eq!(input.write(&mut src), Err(Errno::EBADF));
        assert_eq!(output.pwrite(0, &mut src), Err(Errno::ESPIPE));
        assert_eq!(output.readable_bytes(), Some(0));
        assert_eq!(output.poll(), POLLOUT | POLLWRNORM);
        assert!(input.map_source().is_none());
        let w = Walker::new(sample_ns(), "/bin/app");
        assert_eq!(w.metadata(&input.vnode()).file_type(), S_IFIFO);
    }

    #[test]
    fn input_polls_like_a_pipes_read_end() {
        assert_eq!(input_events(false, false), 0);
        assert_eq!(input_events(true, false), POLLIN | POLLRDNORM);
        assert_eq!(input_events(false, true), POLLHUP);
    }
}

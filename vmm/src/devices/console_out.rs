//! Batched console output: the guest writes the 32-bit GPA of a [`ConsoleWrite`] to
//! [`port::CONSOLE_OUT`] and the VMM writes up to [`CONSOLE_WRITE_MAX`] bytes of guest
//! memory to its own stdout or stderr, in one VM exit instead of one per byte.
//!
//! The guest is hostile: the request block and the data are read only through vm-memory's
//! checked accessors, the length is bounded before anything is allocated, and a malformed
//! request gets [`status::INVALID`] written back (where the status field itself lies in RAM)
//! and writes nothing. Each request is flushed before the guest resumes, so both streams are
//! complete whenever the VMM exits, whatever ends the VM. A failed host write is reported
//! back ([`status::IO_ERROR`] and the host's errno in `error`), so the kernel can fail the
//! program's `write` with `EPIPE` (and `SIGPIPE`), `ENOSPC` or `EIO` as Linux would.
//!
//! [`port::CONSOLE_OUT`]: hypercall_abi::port::CONSOLE_OUT

use std::io::{self, Write};
use std::mem::{offset_of, size_of};

use hypercall_abi::{status, stream, ConsoleWrite, CONSOLE_WRITE_MAX};
use vm_memory::{Bytes, GuestAddress, GuestMemoryBackend, GuestMemoryMmap};

use super::{IoAction, PortIo, RequestBlock};

/// Why a request was refused (reported in the VMM's debug log).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConsoleOutError {
    /// The request block is misaligned or not entirely in guest RAM.
    #[error("Request block at {0:#x} is misaligned or outside guest RAM")]
    BadRequest(u64),
    /// The stream is neither stdout nor stderr.
    #[error("Unknown output stream {0}")]
    BadStream(u32),
    /// The length exceeds [`CONSOLE_WRITE_MAX`].
    #[error("Length {0} exceeds the maximum of {CONSOLE_WRITE_MAX}")]
    TooLong(u32),
    /// The data is not entirely in guest RAM.
    #[error("Data at {gpa:#x}+{len} is outside guest RAM")]
    BadData {
        /// Start of the data.
        gpa: u64,
        /// Its length.
        len: u32,
    },
    /// The host stream could not be written; the errno goes back to the guest.
    #[error("Cannot write to the VMM's {0}: errno {1}")]
    Write(&'static str, u32),
}

/// The console output device.
pub struct ConsoleOut {
    mem: GuestMemoryMmap,
    stdout: Box<dyn Write + Send>,
    stderr: Box<dyn Write + Send>,
    /// Where [`stream::TRACE`] goes; stderr when `None`.
    trace: Option<Box<dyn Write + Send>>,
    /// Where [`stream::STATS`] goes; stderr when `None`.
    stats: Option<Box<dyn Write + Send>>,
}

impl ConsoleOut {
    /// A device reading guest memory `mem` and writing to `stdout` and `stderr`.
    pub fn new(
        mem: GuestMemoryMmap,
        stdout: Box<dyn Write + Send>,
        stderr: Box<dyn Write + Send>,
    ) -> Self {
        ConsoleOut {
            mem,
            stdout,
            stderr,
            trace: None,
            stats: None,
        }
    }

    /// Sends the stats stream ([`stream::STATS`], the kernel's `--stats` table) to `stats`
    /// instead of stderr.
    pub fn with_stats(mut self, stats: Box<dyn Write + Send>) -> Self {
        self.stats = Some(stats);
        self
    }

    /// Sends the trace stream ([`stream::TRACE`], `--strace` lines) to `trace` instead of
    /// stderr.
    pub fn with_trace(mut self, trace: Box<dyn Write + Send>) -> Self {
        self.trace = Some(trace);
        self
    }

    /// A device writing to the VMM's own stdout and stderr.
    pub fn stdio(mem: GuestMemoryMmap) -> Self {
        Self::new(mem, Box::new(io::stdout()), Box::new(io::stderr()))
    }

    /// Serves the request at `gpa` and writes its status back; returns the status, or
    /// `None` if not even the status field lies in guest RAM (the request is dropped).
    pub fn handle(&mut self, gpa: u64) -> Option<u32> {
        let result = self.serve(gpa);
        let (code, error) = match &result {
            Ok(()) => (status::OK, 0),
            Err(ConsoleOutError::Write(_, errno)) => (status::IO_ERROR, *errno),
            Err(_) => (status::INVALID, 0),
        };
        if let Err(e) = &result {
            log::debug!("console-out: request at {gpa:#x}: {e}");
        }
        let status_gpa = gpa.checked_add(offset_of!(ConsoleWrite, status) as u64)?;
        self.mem.write_obj(code, GuestAddress(status_gpa)).ok()?;
        if code == status::IO_ERROR {
            // The status was written, so the block is aligned and `error` (the next field)
            // lies in RAM too unless RAM ends in between: then the guest reads its own 0.
            let error_gpa = gpa + offset_of!(ConsoleWrite, error) as u64;
            let _ = self.mem.write_obj(error, GuestAddress(error_gpa));
        }
        Some(code)
    }

    fn serve(&mut self, gpa: u64) -> Result<(), ConsoleOutError> {
        let req = self.read_request(gpa)?;
        let (sink, name): (&mut dyn Write, _) = match req.stream {
            stream::STDOUT => (&mut *self.stdout, "stdout"),
            stream::STDERR => (&mut *self.stderr, "stderr"),
            stream::TRACE => match &mut self.trace {
                Some(trace) => (&mut **trace, "trace file"),
                None => (&mut *self.stderr, "stderr"),
            },
            stream::STATS => match &mut self.stats {
                Some(stats) => (&mut **stats, "stats"),
                None => (&mut *self.stderr, "stderr"),
            },
            other => return Err(ConsoleOutError::BadStream(other)),
        };
        if req.len > CONSOLE_WRITE_MAX {
            return Err(ConsoleOutError::TooLong(req.len));
        }
        let bad_data = ConsoleOutError::BadData {
            gpa: req.data_gpa.0,
            len: req.len,
        };
        let start = GuestAddress(req.data_gpa.0);
        // `len` <= CONSOLE_WRITE_MAX, so the allocation is bounded whatever the guest says.
        let len = req.len as usize;
        if req.data_gpa.0.checked_add(len as u64).is_none() || !self.mem.check_range(start, len) {
            return Err(bad_data);
        }
        let mut data = vec![0u8; len];
        self.mem
            .read_slice(&mut data, start)
            .map_err(|_| bad_data)?;
        write_all_waiting(sink, &data)
            .and_then(|()| sink.flush())
            .map_err(|e| ConsoleOutError::Write(name, host_errno(&e)))
    }

    fn read_request(&self, gpa: u64) -> Result<ConsoleWrite, ConsoleOutError> {
        let block = RequestBlock::<{ size_of::<ConsoleWrite>() }>::read(&self.mem, gpa)
            .ok_or(ConsoleOutError::BadRequest(gpa))?;
        Ok(ConsoleWrite {
            data_gpa: hypercall_abi::GuestPhysAddr(
                block.u64_at(offset_of!(ConsoleWrite, data_gpa)),
            ),
            len: block.u32_at(offset_of!(ConsoleWrite, len)),
            stream: block.u32_at(offset_of!(ConsoleWrite, stream)),
            status: block.u32_at(offset_of!(ConsoleWrite, status)),
            error: block.u32_at(offset_of!(ConsoleWrite, error)),
        })
    }
}

/// The Linux errno of a failed host write (`EIO` if it has none, e.g. a short write).
fn host_errno(e: &io::Error) -> u32 {
    e.raw_os_error()
        .and_then(|n| u32::try_from(n).ok())
        .unwrap_or(libc::EIO as u32)
}

/// `write_all` that waits out `EAGAIN`: the VMM's stdout may be a non-blocking descriptor
/// shared with its parent, but the program's descriptor is blocking, so a full pipe must
/// make it wait, not fail.
fn write_all_waiting(sink: &mut dyn Write, mut data: &[u8]) -> io::Result<()> {
    while !data.is_empty() {
        match sink.write(data) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => data = &data[n..],
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

impl PortIo for ConsoleOut {
    fn read(&mut self, _offset: u16, data: &mut [u8]) {
        data.fill(0xff);
    }

    fn write(&mut self, _offset: u16, data: &[u8]) -> IoAction {
        let gpa = match super::doorbell_gpa("console output", data) {
            Ok(gpa) => gpa,
            Err(stop) => return stop,
        };
        if self.handle(gpa).is_none() {
            crate::guest_warn!("console-out: request at {gpa:#x} is outside guest RAM, dropped");
        }
        IoAction::Continue
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::test_util::SharedBuf;
    use crate::exit_code::Outcome;

    const RAM: usize = 0x10000;

    /// A writer whose output fails with an errno.
    struct Failing(i32);

    impl Write for Failing {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::Error::from_raw_os_error(self.0))
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn device() -> (ConsoleOut, SharedBuf, SharedBuf) {
        let mem = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), RAM)]).unwrap();
        let (out, err) = (SharedBuf::default(), SharedBuf::default());
        let dev = ConsoleOut::new(mem, Box::new(out.clone()), Box::new(err.clone()));
        (dev, out, err)
    }

    /// Writes a request block at `gpa` (status PENDING).
    fn put_request(dev: &ConsoleOut, gpa: u64, data_gpa: u64, len: u32, stream: u32) {
        let mem = &dev.mem;
        mem.write_obj(data_gpa, GuestAddress(gpa)).unwrap();
        mem.write_obj(len, GuestAddress(gpa + 8)).unwrap();
        mem.write_obj(stream, GuestAddress(gpa + 12)).unwrap();
        mem.write_obj(status::PENDING, GuestAddress(gpa + 16))
            .unwrap();
    }

    fn status_at(dev: &ConsoleOut, gpa: u64) -> u32 {
        dev.mem.read_obj(GuestAddress(gpa + 16)).unwrap()
    }

    #[test]
    fn writes_to_the_requested_stream_in_order() {
        let (mut dev, out, err) = device();
        dev.mem
            .write_slice(b"hello\nworld\n", GuestAddress(0x2003))
            .unwrap();
        put_request(&dev, 0x1000, 0x2003, 6, stream::STDOUT);
        assert_eq!(dev.write(0, &0x1000u32.to_le_bytes()), IoAction::Continue);
        assert_eq!(status_at(&dev, 0x1000), status::OK);
        put_request(&dev, 0x1000, 0x2009, 6, stream::STDERR);
        assert_eq!(dev.handle(0x1000), Some(status::OK));
        put_request(&dev, 0x1000, 0x2003, 5, stream::STDOUT);
        assert_eq!(dev.handle(0x1000), Some(status::OK));
        assert_eq!(out.take(), b"hello\nhello");
        assert_eq!(err.take(), b"world\n");
        // An empty write is valid and writes nothing.
        put_request(&dev, 0x1000, 0, 0, stream::STDERR);
        assert_eq!(dev.handle(0x1000), Some(status::OK));
        assert!(err.take().is_empty());
    }

    #[test]
    fn the_trace_stream_goes_to_stderr_or_to_its_own_sink() {
        let (mut dev, out, err) = device();
        dev.mem
            .write_slice(b"trace\n", GuestAddress(0x2000))
            .unwrap();
        put_request(&dev, 0x1000, 0x2000, 6, stream::TRACE);
        assert_eq!(dev.handle(0x1000), Some(status::OK));
        assert_eq!(err.take(), b"trace\n");
        let trace = SharedBuf::default();
        let mut dev = dev.with_trace(Box::new(trace.clone()));
        put_request(&dev, 0x1000, 0x2000, 6, stream::TRACE);
        assert_eq!(dev.handle(0x1000), Some(status::OK));
        put_request(&dev, 0x1000, 0x2000, 6, stream::STDERR);
        assert_eq!(dev.handle(0x1000), Some(status::OK));
        assert_eq!(trace.take(), b"trace\n");
        assert_eq!(err.take(), b"trace\n");
        assert!(out.take().is_empty());
        put_request(&dev, 0x1000, 0x2000, 6, stream::STATS);
        assert_eq!(dev.handle(0x1000), Some(status::OK));
        assert_eq!(err.take(), b"trace\n");
        let stats = SharedBuf::default();
        let mut dev = dev.with_stats(Box::new(stats.clone()));
        put_request(&dev, 0x1000, 0x2000, 6, stream::STATS);
        assert_eq!(dev.handle(0x1000), Some(status::OK));
        assert_eq!(stats.take(), b"trace\n");
        put_request(&dev, 0x1000, 0x2000, 6, 5);
        assert_eq!(dev.handle(0x1000), Some(status::INVALID));
    }

    #[test]
    fn data_may_end_exactly_at_the_end_of_ram() {
        let (mut dev, out, _) = device();
        dev.mem
            .write_slice(b"end", GuestAddress(RAM as u64 - 3))
            .unwrap();
        put_request(&dev, 0x1000, RAM as u64 - 3, 3, stream::STDOUT);
        assert_eq!(dev.handle(0x1000), Some(status::OK));
        assert_eq!(out.take(), b"end");
        let max = vec![b'x'; CONSOLE_WRITE_MAX as usize];
        dev.mem.write_slice(&max, GuestAddress(0)).unwrap();
        put_request(&dev, 0xff00, 0, CONSOLE_WRITE_MAX - 0x200, stream::STDOUT);
        assert_eq!(dev.handle(0xff00), Some(status::OK));
        assert_eq!(out.take().len(), CONSOLE_WRITE_MAX as usize - 0x200);
    }

    #[test]
    fn wrong_streams_are_invalid() {
        let (mut dev, out, err) = device();
        for stream in [0, 5, u32::MAX] {
            put_request(&dev, 0x1000, 0x2000, 4, stream);
            assert_eq!(dev.handle(0x1000), Some(status::INVALID), "stream {stream}");
        }
        assert!(out.take().is_empty() && err.take().is_empty());
    }

    #[test]
    fn huge_lengths_and_bad_data_addresses_are_invalid() {
        let (mut dev, out, err) = device();
        let cases = [
            (0x2000, CONSOLE_WRITE_MAX + 1),
            (0x2000, u32::MAX),
            (RAM as u64 - 3, 4),
            (RAM as u64, 1),
            (0xffff_ffff_ffff_fff0, 0x20),
            (u64::MAX, 1),
            (0x1_0000_0000, 16),
        ];
        for (data_gpa, len) in cases {
            put_request(&dev, 0x1000, data_gpa, len, stream::STDOUT);
            assert_eq!(
                dev.handle(0x1000),
                Some(status::INVALID),
                "data {data_gpa:#x}+{len}"
            );
        }
        assert!(out.take().is_empty() && err.take().is_empty());
    }

    #[test]
    fn bad_request_addresses_are_invalid_or_dropped() {
        let (mut dev, out, _) = device();
        // Misaligned: refused, but the status still fits.
        assert_eq!(dev.handle(0x1004), Some(status::INVALID));
        // Misaligned and running off the end of RAM, but the status still fits.
        assert_eq!(dev.handle(RAM as u64 - 21), Some(status::INVALID));
        // A whole block of zeros: stream 0 is not a stream.
        assert_eq!(dev.handle(RAM as u64 - 24), Some(status::INVALID));
        // Nothing fits.
        assert_eq!(dev.handle(RAM as u64 - 8), None);
        assert_eq!(dev.handle(0xffff_fff8), None);
        assert_eq!(dev.handle(u64::MAX - 7), None);
        assert_eq!(
            dev.write(0, &0xffff_fff8u32.to_le_bytes()),
            IoAction::Continue
        );
        assert!(out.take().is_empty());
    }

    #[test]
    fn host_write_errors_go_back_to_the_guest_with_their_errno() {
        for errno in [libc::EPIPE, libc::ENOSPC, libc::EIO] {
            let mem = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), RAM)]).unwrap();
            let mut dev = ConsoleOut::new(
                mem,
                Box::new(Failing(errno)),
                Box::new(SharedBuf::default()),
            );
            put_request(&dev, 0x1000, 0x2000, 4, stream::STDOUT);
            assert_eq!(dev.handle(0x1000), Some(status::IO_ERROR));
            assert_eq!(status_at(&dev, 0x1000), status::IO_ERROR);
            let error: u32 = dev.mem.read_obj(GuestAddress(0x1014)).unwrap();
            assert_eq!(error, errno as u32);
            // A later good request on the other stream clears nothing it should not.
            put_request(&dev, 0x1000, 0x2000, 4, stream::STDERR);
            assert_eq!(dev.handle(0x1000), Some(status::OK));
        }
    }

    #[test]
    fn a_would_block_stream_is_waited_for() {
        struct Busy(u32, SharedBuf);
        impl Write for Busy {
            fn write(&mut self, data: &[u8]) -> io::Result<usize> {
                if self.0 > 0 {
                    self.0 -= 1;
                    return Err(io::ErrorKind::WouldBlock.into());
                }
                self.1.write(&data[..1])
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let mem = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), RAM)]).unwrap();
        let out = SharedBuf::default();
        let mut dev = ConsoleOut::new(
            mem,
            Box::new(Busy(3, out.clone())),
            Box::new(SharedBuf::default()),
        );
        dev.mem.write_slice(b"abcd", GuestAddress(0x2000)).unwrap();
        put_request(&dev, 0x1000, 0x2000, 4, stream::STDOUT);
        assert_eq!(dev.handle(0x1000), Some(status::OK));
        assert_eq!(out.take(), b"abcd");
    }

    #[test]
    fn wrong_width_is_a_guest_crash_and_reads_see_ones() {
        let (mut dev, _, _) = device();
        assert!(matches!(
            dev.write(0, &[0, 0x10]),
            IoAction::Stop(Outcome::GuestCrash { .. })
        ));
        let mut data = [0; 4];
        dev.read(0, &mut data);
        assert_eq!(data, [0xff; 4]);
    }
}

//! The connection to gdb: a TCP or unix-socket stream whose incoming bytes a reader
//! thread forwards to the vCPU thread, so that a Ctrl-C (0x03) that arrives while the guest
//! runs can interrupt it (the reader sets a flag and kicks the vCPU out of `KVM_RUN`).

use std::io::{self, BufWriter, Read, Write};
use std::net::TcpListener;
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver};
use std::sync::Arc;
use std::thread;

use super::GdbError;
use crate::vstate::vcpu_handle::VcpuHandle;

/// The interrupt byte gdb sends for Ctrl-C.
const CTRL_C: u8 = 0x03;

/// Where `--gdb` listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GdbAddress {
    /// `HOST:PORT` (TCP).
    Tcp(String),
    /// A path (unix socket): anything containing a `/`. If it names an existing
    /// character device (a serial port), gdb is spoken over that device instead.
    Unix(PathBuf),
}

impl GdbAddress {
    /// `ADDR` as given to `--gdb`: a path when it contains `/`, else `HOST:PORT` (or just
    /// `:PORT`, meaning 127.0.0.1).
    pub fn parse(text: &str) -> Result<GdbAddress, String> {
        if text.contains('/') {
            return Ok(GdbAddress::Unix(PathBuf::from(text)));
        }
        let (host, port) = text
            .rsplit_once(':')
            .ok_or_else(|| format!("'{text}' is neither HOST:PORT nor a socket path"))?;
        port.parse::<u16>()
            .map_err(|_| format!("bad port in '{text}'"))?;
        let host = if host.is_empty() { "127.0.0.1" } else { host };
        Ok(GdbAddress::Tcp(format!("{host}:{port}")))
    }
}

impl std::fmt::Display for GdbAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GdbAddress::Tcp(a) => f.write_str(a),
            GdbAddress::Unix(p) => write!(f, "{}", p.display()),
        }
    }
}

/// What the reader thread forwards.
pub enum Incoming {
    /// A byte from gdb.
    Byte(u8),
    /// gdb closed the connection (or reading failed).
    Closed,
}

/// The connection's write side (reads come from the reader thread).
pub struct GdbConnection {
    writer: Box<dyn Write + Send>,
}

/// An accepted gdb connection.
pub struct GdbLink {
    /// Where gdbstub writes.
    pub conn: GdbConnection,
    /// Bytes from gdb.
    pub incoming: Receiver<Incoming>,
    /// The vCPU the reader pauses on Ctrl-C.
    pub vcpu: Arc<VcpuHandle>,
}

/// Listens on `addr`, tells the user, and waits for gdb to connect.
pub fn accept(addr: &GdbAddress) -> Result<GdbLink, GdbError> {
    let (reader, writer): (Box<dyn Read + Send>, Box<dyn Write + Send>) = match addr {
        GdbAddress::Tcp(a) => {
            let listener = TcpListener::bind(a).map_err(|e| GdbError::Listen(addr.clone(), e))?;
            eprintln!("astra-vmm: waiting for gdb on {a} (target remote {a})");
            let (stream, _) = listener
                .accept()
                .map_err(|e| GdbError::Listen(addr.clone(), e))?;
            let _ = stream.set_nodelay(true);
            let reader = stream
                .try_clone()
                .map_err(|e| GdbError::Listen(addr.clone(), e))?;
            (Box::new(reader), Box::new(BufWriter::new(stream)))
        }
        GdbAddress::Unix(p) if is_char_device(p) => {
            let port = open_serial(p).map_err(|e| GdbError::Listen(addr.clone(), e))?;
            eprintln!(
                "astra-vmm: waiting for gdb on {} (serial line)",
                p.display()
            );
            let reader = port
                .try_clone()
                .map_err(|e| GdbError::Listen(addr.clone(), e))?;
            (Box::new(reader), Box::new(BufWriter::new(port)))
        }
        GdbAddress::Unix(p) => {
            let _ = std::fs::remove_file(p);
            let listener = UnixListener::bind(p).map_err(|e| GdbError::Listen(addr.clone(), e))?;
            eprintln!(
                "astra-vmm: waiting for gdb on {} (target remote {})",
                p.display(),
                p.display()
            );
            let accepted = listener.accept();
            let _ = std::fs::remove_file(p);
            let (stream, _) = accepted.map_err(|e| GdbError::Listen(addr.clone(), e))?;
            let reader = stream
                .try_clone()
                .map_err(|e| GdbError::Listen(addr.clone(), e))?;
            (Box::new(reader), Box::new(BufWriter::new(stream)))
        }
    };
    let vcpu = Arc::new(VcpuHandle::default());
    let (tx, rx) = mpsc::channel();
    let reader_vcpu = Arc::clone(&vcpu);
    thread::Builder::new()
        .name("gdb-reader".into())
        .spawn(move || read_loop(reader, tx, &reader_vcpu))
        .map_err(GdbError::Thread)?;
    Ok(GdbLink {
        conn: GdbConnection { writer },
        incoming: rx,
        vcpu,
    })
}

fn is_char_device(path: &std::path::Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    std::fs::metadata(path).is_ok_and(|m| m.file_type().is_char_device())
}

/// Opens a serial line for gdb's packets: raw (no echo, no line editing, 8-bit clean).
fn open_serial(path: &std::path::Path) -> io::Result<std::fs::File> {
    use std::os::fd::AsRawFd;
    let port = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)?;
    let fd = port.as_raw_fd();
    // SAFETY: termios is plain data; tcgetattr fills it for a valid fd or fails.
    let mut tio: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: `fd` is open for the life of `port`; `tio` is a valid termios.
    if unsafe { libc::tcgetattr(fd, &mut tio) } == 0 {
        // SAFETY: `tio` came from tcgetattr; cfmakeraw only edits its flags.
        unsafe { libc::cfmakeraw(&mut tio) };
        // SAFETY: as above; a valid termios for this fd.
        if unsafe { libc::tcsetattr(fd, libc::TCSANOW, &tio) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(port)
}

fn read_loop(mut reader: Box<dyn Read + Send>, tx: mpsc::Sender<Incoming>, vcpu: &VcpuHandle) {
    let mut buf = [0u8; 4096];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) | Err(_) => {
                let _ = tx.send(Incoming::Closed);
                return;
            }
            Ok(n) => n,
        };
        for &byte in &buf[..n] {
            if tx.send(Incoming::Byte(byte)).is_err() {
                return;
            }
            if byte == CTRL_C && vcpu.is_running() {
                vcpu.request_pause();
            }
        }
    }
}

impl gdbstub::conn::Connection for GdbConnection {
    type Error = io::Error;

    fn write(&mut self, byte: u8) -> Result<(), io::Error> {
        self.writer.write_all(&[byte])
    }

    fn write_all(&mut self, buf: &[u8]) -> Result<(), io::Error> {
        self.writer.write_all(buf)
    }

    fn flush(&mut self) -> Result<(), io::Error> {
        self.writer.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert_eq!(
            GdbAddress::parse("127.0.0.1:1234"),
            Ok(GdbAddress::Tcp("127.0.0.1:1234".into()))
        );
        assert_eq!(
            GdbAddress::parse(":1234"),
            Ok(GdbAddress::Tcp("127.0.0.1:1234".into()))
        );
        assert_eq!(
            GdbAddress::parse("/tmp/g.sock"),
            Ok(GdbAddress::Unix("/tmp/g.sock".into()))
        );
        assert!(GdbAddress::parse("1234").is_err());
        assert!(GdbAddress::parse("host:99999").is_err());
    }
}

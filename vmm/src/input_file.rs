//! Opening the files the user names (kernel, rootfs) without trusting what they are.
//!
//! A plain `open` of a FIFO with no writer blocks forever (before `--timeout` is even
//! armed), and a character device such as `/dev/zero` reports a length of 0 and then reads
//! without end. So the file is opened with `O_NONBLOCK` (which makes opening a FIFO return
//! at once and has no effect on regular files), checked with `fstat` to be a regular file,
//! and only then read, never beyond a bound.

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Why an input file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum InputFileError {
    /// It cannot be opened or examined.
    #[error(transparent)]
    Io(#[from] io::Error),
    /// It is a directory, FIFO, socket or device.
    #[error("not a regular file (it is a {0})")]
    NotRegular(&'static str),
    /// It is larger than the caller accepts.
    #[error("{len} bytes, more than the {max} accepted")]
    TooLarge {
        /// Its length.
        len: u64,
        /// The limit.
        max: u64,
    },
}

/// What kind of file `file_type` is, in words.
fn kind(file_type: std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if file_type.is_dir() {
        "directory"
    } else if file_type.is_fifo() {
        "FIFO"
    } else if file_type.is_socket() {
        "socket"
    } else if file_type.is_char_device() {
        "character device"
    } else if file_type.is_block_device() {
        "block device"
    } else {
        "special file"
    }
}

/// Opens `path` read-only without blocking, and returns it with its length if it is a
/// regular file.
pub fn open_regular(path: &Path) -> Result<(File, u64), InputFileError> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(InputFileError::NotRegular(kind(meta.file_type())));
    }
    Ok((file, meta.len()))
}

/// Reads all of the regular file `path`, refusing one longer than `max` bytes, even if it
/// grows while being read.
pub fn read_regular(path: &Path, max: u64) -> Result<Vec<u8>, InputFileError> {
    let (file, len) = open_regular(path)?;
    if len > max {
        return Err(InputFileError::TooLarge { len, max });
    }
    let mut bytes = Vec::with_capacity(len as usize);
    file.take(max.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(InputFileError::TooLarge {
            len: bytes.len() as u64,
            max,
        });
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn devices_and_fifos_are_refused_at_once() {
        assert!(matches!(
            read_regular(Path::new("/dev/zero"), 1 << 20),
            Err(InputFileError::NotRegular("character device"))
        ));
        assert!(matches!(
            open_regular(Path::new("/")),
            Err(InputFileError::NotRegular("directory"))
        ));
        let dir = std::env::temp_dir().join(format!("astra-input-file-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let fifo = dir.join("fifo");
        let c_path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: mkfifo with a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
        let start = Instant::now();
        let err = open_regular(&fifo).unwrap_err();
        assert!(start.elapsed() < Duration::from_secs(5));
        assert_eq!(err.to_string(), "not a regular file (it is a FIFO)");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn reads_are_bounded() {
        let dir = std::env::temp_dir().join(format!("astra-input-read-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("f");
        std::fs::write(&file, [7u8; 100]).unwrap();
        assert_eq!(read_regular(&file, 100).unwrap(), [7u8; 100]);
        assert!(matches!(
            read_regular(&file, 99),
            Err(InputFileError::TooLarge { len: 100, max: 99 })
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

//! Listing directories: `getdents64(2)` records, parsed, and the [`ReadDir`] iterator.

use alloc::vec;
use alloc::vec::Vec;

use super::{File, FileType};
use crate::errno::Errno;
use crate::syscall;

/// Bytes of directory records asked for per `getdents64` call.
const BUF_LEN: usize = 4096;
/// Size of a record's fixed part: `d_ino` (8), `d_off` (8), `d_reclen` (2), `d_type` (1).
const HEADER_LEN: usize = 19;

/// One record of a `getdents64` buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RawDirent<'a> {
    /// Inode number.
    pub ino: u64,
    /// The `d_type` byte (`DT_*`).
    pub d_type: u8,
    /// The name, without its NUL.
    pub name: &'a [u8],
}

/// Splits the first record off `buf`: the record and the rest, `None` at the end, or
/// `EIO` for a record that does not fit its buffer or has no NUL-terminated name.
pub fn next_dirent(buf: &[u8]) -> Option<Result<(RawDirent<'_>, &[u8]), Errno>> {
    if buf.is_empty() {
        return None;
    }
    if buf.len() < HEADER_LEN {
        return Some(Err(Errno::EIO));
    }
    let reclen = usize::from(u16::from_le_bytes([buf[16], buf[17]]));
    if reclen <= HEADER_LEN || reclen > buf.len() {
        return Some(Err(Errno::EIO));
    }
    let name_field = &buf[HEADER_LEN..reclen];
    let Some(name_len) = name_field.iter().position(|&b| b == 0) else {
        return Some(Err(Errno::EIO));
    };
    let mut ino = [0u8; 8];
    ino.copy_from_slice(&buf[..8]);
    let record = RawDirent {
        ino: u64::from_le_bytes(ino),
        d_type: buf[18],
        name: &name_field[..name_len],
    };
    Some(Ok((record, &buf[reclen..])))
}

/// An entry of a directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirEntry {
    name: Vec<u8>,
    ino: u64,
    file_type: Option<FileType>,
}

impl DirEntry {
    /// The entry's name (not UTF-8 by any promise).
    pub fn file_name(&self) -> &[u8] {
        &self.name
    }

    /// Inode number.
    pub fn ino(&self) -> u64 {
        self.ino
    }

    /// The entry's type as the directory records it; `None` if it does not say (then ask
    /// [`symlink_metadata`](super::symlink_metadata)).
    pub fn file_type(&self) -> Option<FileType> {
        self.file_type
    }
}

/// Iterator over a directory's entries, without `.` and `..`, in the kernel's order.
pub struct ReadDir {
    dir: File,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    failed: bool,
}

impl ReadDir {
    pub(super) fn new(dir: File) -> ReadDir {
        ReadDir {
            dir,
            buf: vec![0; BUF_LEN],
            start: 0,
            end: 0,
            failed: false,
        }
    }
}

impl Iterator for ReadDir {
    type Item = Result<DirEntry, Errno>;

    fn next(&mut self) -> Option<Result<DirEntry, Errno>> {
        loop {
            if self.failed {
                return None;
            }
            if self.start == self.end {
                match syscall::getdents64(self.dir.as_raw_fd(), &mut self.buf) {
                    Ok(0) => return None,
                    Ok(n) => {
                        self.start = 0;
                        self.end = n.min(self.buf.len());
                    }
                    Err(Errno::EINTR) => continue,
                    Err(e) => {
                        self.failed = true;
                        return Some(Err(e));
                    }
                }
            }
            let rest = &self.buf[self.start..self.end];
            match next_dirent(rest)? {
                Ok((record, after)) => {
                    self.start = self.end - after.len();
                    if record.name == b"." || record.name == b".." {
                        continue;
                    }
                    return Some(Ok(DirEntry {
                        name: record.name.to_vec(),
                        ino: record.ino,
                        file_type: FileType::from_dirent_type(record.d_type),
                    }));
                }
                Err(e) => {
                    self.failed = true;
                    return Some(Err(e));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `getdents64` record as the kernel lays it out, padded to 8 bytes.
    fn record(ino: u64, d_type: u8, name: &[u8]) -> Vec<u8> {
        let reclen = (HEADER_LEN + name.len() + 1).next_multiple_of(8);
        let mut r = Vec::new();
        r.extend_from_slice(&ino.to_le_bytes());
        r.extend_from_slice(&0i64.to_le_bytes());
        r.extend_from_slice(&(reclen as u16).to_le_bytes());
        r.push(d_type);
        r.extend_from_slice(name);
        r.resize(reclen, 0);
        r
    }

    #[test]
    fn parses_a_buffer_of_records() {
        let mut buf = record(1, 4, b".");
        buf.extend(record(2, 8, b"hello.txt"));
        buf.extend(record(3, 10, b"a-much-longer-name-for-a-link"));
        let mut rest = &buf[..];
        let mut seen = Vec::new();
        while let Some(item) = next_dirent(rest) {
            let (d, after) = item.unwrap();
            seen.push((d.ino, d.d_type, d.name.to_vec()));
            rest = after;
        }
        assert_eq!(
            seen,
            [
                (1, 4, b".".to_vec()),
                (2, 8, b"hello.txt".to_vec()),
                (3, 10, b"a-much-longer-name-for-a-link".to_vec())
            ]
        );
    }

    #[test]
    fn malformed_records_are_eio() {
        let good = record(1, 8, b"x");
        assert_eq!(next_dirent(&good[..10]), Some(Err(Errno::EIO)));
        let mut zero_len = good.clone();
        zero_len[16] = 0;
        zero_len[17] = 0;
        assert_eq!(next_dirent(&zero_len), Some(Err(Errno::EIO)));
        let mut too_long = good.clone();
        too_long[16] = 200;
        assert_eq!(next_dirent(&too_long), Some(Err(Errno::EIO)));
        let mut no_nul = good.clone();
        for b in &mut no_nul[HEADER_LEN..] {
            *b = b'a';
        }
        assert_eq!(next_dirent(&no_nul), Some(Err(Errno::EIO)));
        assert_eq!(next_dirent(&[]), None);
    }
}

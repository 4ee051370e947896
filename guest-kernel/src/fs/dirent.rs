//! `getdents64` records: `struct linux_dirent64 { u64 d_ino; i64 d_off; u16 d_reclen;
//! u8 d_type; char d_name[]; }`, NUL-terminated names, each record padded to 8 bytes.

use alloc::vec::Vec;

/// Unknown type.
pub const DT_UNKNOWN: u8 = 0;
/// Character device.
pub const DT_CHR: u8 = 2;
/// Directory.
pub const DT_DIR: u8 = 4;
/// Regular file.
pub const DT_REG: u8 = 8;
/// Symbolic link.
pub const DT_LNK: u8 = 10;

/// Offset of `d_name` in a record.
const NAME_OFFSET: usize = 19;

/// The `d_type` for a `st_mode`.
pub fn dtype_of_mode(mode: u32) -> u8 {
    ((mode & super::stat::S_IFMT) >> 12) as u8
}

/// Length of the record for a name of `name_len` bytes.
pub fn record_len(name_len: usize) -> usize {
    (NAME_OFFSET + name_len + 1).next_multiple_of(8)
}

/// Fills a `getdents64` buffer of a fixed capacity.
pub struct DirentWriter {
    buf: Vec<u8>,
    capacity: usize,
}

impl DirentWriter {
    /// A writer that will produce at most `capacity` bytes.
    pub fn new(capacity: usize) -> Self {
        DirentWriter {
            buf: Vec::new(),
            capacity,
        }
    }

    /// Appends a record; false (and nothing written) if it does not fit.
    /// `next_off` is the directory position just after this entry (`d_off`).
    pub fn push(&mut self, ino: u64, next_off: u64, dtype: u8, name: &str) -> bool {
        let len = record_len(name.len());
        if self.buf.len() + len > self.capacity {
            return false;
        }
        let start = self.buf.len();
        self.buf.extend_from_slice(&ino.to_le_bytes());
        self.buf.extend_from_slice(&next_off.to_le_bytes());
        self.buf.extend_from_slice(&(len as u16).to_le_bytes());
        self.buf.push(dtype);
        self.buf.extend_from_slice(name.as_bytes());
        self.buf.resize(start + len, 0);
        true
    }

    /// Whether nothing has been written.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The records written.
    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_aligned_and_terminated() {
        assert_eq!(record_len(1), 24);
        assert_eq!(record_len(4), 24);
        assert_eq!(record_len(5), 32);
        assert_eq!(record_len(255), 280);
        let mut w = DirentWriter::new(100);
        assert!(w.push(7, 1, DT_DIR, "."));
        assert!(w.push(12, 2, DT_REG, "hello"));
        let b = w.into_bytes();
        assert_eq!(b.len(), 24 + 32);
        assert_eq!(u64::from_le_bytes(b[0..8].try_into().unwrap()), 7);
        assert_eq!(u64::from_le_bytes(b[8..16].try_into().unwrap()), 1);
        assert_eq!(u16::from_le_bytes([b[16], b[17]]), 24);
        assert_eq!(b[18], DT_DIR);
        assert_eq!(&b[19..21], b".\0");
        let r = &b[24..];
        assert_eq!(u64::from_le_bytes(r[0..8].try_into().unwrap()), 12);
        assert_eq!(u64::from_le_bytes(r[8..16].try_into().unwrap()), 2);
        assert_eq!(u16::from_le_bytes([r[16], r[17]]), 32);
        assert_eq!(r[18], DT_REG);
        assert_eq!(&r[19..25], b"hello\0");
        assert!(r[25..].iter().all(|&x| x == 0));
    }

    #[test]
    fn full_buffer_refuses_records() {
        let mut w = DirentWriter::new(30);
        assert!(w.is_empty());
        assert!(w.push(1, 1, DT_DIR, "."));
        assert!(!w.push(1, 2, DT_DIR, ".."));
        assert_eq!(w.into_bytes().len(), 24);
        let mut tiny = DirentWriter::new(23);
        assert!(!tiny.push(1, 1, DT_DIR, "."));
        assert!(tiny.is_empty());
    }

    #[test]
    fn dtype_from_mode() {
        use super::super::stat::{S_IFCHR, S_IFDIR, S_IFLNK, S_IFREG};
        assert_eq!(dtype_of_mode(S_IFREG | 0o644), DT_REG);
        assert_eq!(dtype_of_mode(S_IFDIR | 0o755), DT_DIR);
        assert_eq!(dtype_of_mode(S_IFLNK | 0o777), DT_LNK);
        assert_eq!(dtype_of_mode(S_IFCHR | 0o666), DT_CHR);
        assert_eq!(dtype_of_mode(0), DT_UNKNOWN);
    }
}

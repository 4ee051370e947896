//! What `stat(2)` says about a file: Linux x86-64's `struct stat`, decoded.

use crate::syscall::STAT_LEN;

/// The kind of a file (the `S_IFMT` bits of its mode, or a directory entry's `d_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FileType {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link.
    Symlink,
    /// A character device.
    CharDevice,
    /// A block device.
    BlockDevice,
    /// A FIFO (named pipe).
    Fifo,
    /// A socket.
    Socket,
}

/// `S_IFMT`: the file-type bits of a mode.
const S_IFMT: u32 = 0o170_000;

impl FileType {
    /// The type encoded in `mode`'s `S_IFMT` bits, if it is a known one.
    pub fn from_mode(mode: u32) -> Option<FileType> {
        Some(match mode & S_IFMT {
            0o100_000 => FileType::File,
            0o040_000 => FileType::Dir,
            0o120_000 => FileType::Symlink,
            0o020_000 => FileType::CharDevice,
            0o060_000 => FileType::BlockDevice,
            0o010_000 => FileType::Fifo,
            0o140_000 => FileType::Socket,
            _ => return None,
        })
    }

    /// The type a directory entry's `d_type` names; `None` for `DT_UNKNOWN` (ask `stat`).
    pub fn from_dirent_type(d_type: u8) -> Option<FileType> {
        Some(match d_type {
            8 => FileType::File,
            4 => FileType::Dir,
            10 => FileType::Symlink,
            2 => FileType::CharDevice,
            6 => FileType::BlockDevice,
            1 => FileType::Fifo,
            12 => FileType::Socket,
            _ => return None,
        })
    }

    /// One letter, as `ls -l` shows it: `-`, `d`, `l`, `c`, `b`, `p`, `s`.
    pub fn letter(self) -> char {
        match self {
            FileType::File => '-',
            FileType::Dir => 'd',
            FileType::Symlink => 'l',
            FileType::CharDevice => 'c',
            FileType::BlockDevice => 'b',
            FileType::Fifo => 'p',
            FileType::Socket => 's',
        }
    }
}

/// A file's metadata.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Metadata {
    /// Device holding the file.
    pub dev: u64,
    /// Inode number.
    pub ino: u64,
    /// Number of hard links.
    pub nlink: u64,
    /// Type and permission bits.
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Size in bytes.
    pub size: u64,
    /// 512-byte blocks allocated.
    pub blocks: u64,
    /// Last modification, seconds since the epoch.
    pub mtime_secs: i64,
    /// Nanoseconds part of the last modification time.
    pub mtime_nanos: i64,
}

fn u64_at(raw: &[u8; STAT_LEN], offset: usize) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&raw[offset..offset + 8]);
    u64::from_le_bytes(word)
}

fn u32_at(raw: &[u8; STAT_LEN], offset: usize) -> u32 {
    let mut word = [0u8; 4];
    word.copy_from_slice(&raw[offset..offset + 4]);
    u32::from_le_bytes(word)
}

impl Metadata {
    /// Decodes the `struct stat` the kernel wrote (x86-64 layout).
    pub fn from_stat(raw: &[u8; STAT_LEN]) -> Metadata {
        Metadata {
            dev: u64_at(raw, 0),
            ino: u64_at(raw, 8),
            nlink: u64_at(raw, 16),
            mode: u32_at(raw, 24),
            uid: u32_at(raw, 28),
            gid: u32_at(raw, 32),
            size: u64_at(raw, 48),
            blocks: u64_at(raw, 64),
            mtime_secs: u64_at(raw, 88) as i64,
            mtime_nanos: u64_at(raw, 96) as i64,
        }
    }

    /// The file's type, if the mode names a known one.
    pub fn file_type(&self) -> Option<FileType> {
        FileType::from_mode(self.mode)
    }

    /// A regular file?
    pub fn is_file(&self) -> bool {
        self.file_type() == Some(FileType::File)
    }

    /// A directory?
    pub fn is_dir(&self) -> bool {
        self.file_type() == Some(FileType::Dir)
    }

    /// A symbolic link (only `symlink_metadata` can say so)?
    pub fn is_symlink(&self) -> bool {
        self.file_type() == Some(FileType::Symlink)
    }

    /// Size in bytes.
    pub fn len(&self) -> u64 {
        self.size
    }

    /// Zero bytes long?
    pub fn is_empty(&self) -> bool {
        self.size == 0
    }

    /// The permission bits (`0o7777` at most).
    pub fn permissions(&self) -> u32 {
        self.mode & 0o7777
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_the_x86_64_layout() {
        let mut raw = [0u8; STAT_LEN];
        let mut put =
            |offset: usize, bytes: &[u8]| raw[offset..][..bytes.len()].copy_from_slice(bytes);
        put(0, &7u64.to_le_bytes());
        put(8, &1234u64.to_le_bytes());
        put(16, &2u64.to_le_bytes());
        put(24, &0o100_644u32.to_le_bytes());
        put(28, &1000u32.to_le_bytes());
        put(32, &100u32.to_le_bytes());
        put(48, &29u64.to_le_bytes());
        put(64, &8u64.to_le_bytes());
        put(88, &1_700_000_000u64.to_le_bytes());
        put(96, &5u64.to_le_bytes());
        let meta = Metadata::from_stat(&raw);
        assert_eq!(
            meta,
            Metadata {
                dev: 7,
                ino: 1234,
                nlink: 2,
                mode: 0o100_644,
                uid: 1000,
                gid: 100,
                size: 29,
                blocks: 8,
                mtime_secs: 1_700_000_000,
                mtime_nanos: 5,
            }
        );
        assert!(meta.is_file() && !meta.is_dir() && !meta.is_symlink());
        assert_eq!(meta.permissions(), 0o644);
        assert_eq!(meta.len(), 29);
    }

    #[test]
    fn file_types_from_mode_and_dirent() {
        assert_eq!(FileType::from_mode(0o040_755), Some(FileType::Dir));
        assert_eq!(FileType::from_mode(0o120_777), Some(FileType::Symlink));
        assert_eq!(FileType::from_mode(0o020_620), Some(FileType::CharDevice));
        assert_eq!(FileType::from_mode(0o644), None);
        assert_eq!(FileType::from_dirent_type(4), Some(FileType::Dir));
        assert_eq!(FileType::from_dirent_type(8), Some(FileType::File));
        assert_eq!(FileType::from_dirent_type(10), Some(FileType::Symlink));
        assert_eq!(FileType::from_dirent_type(0), None);
        assert_eq!(FileType::Dir.letter(), 'd');
    }
}

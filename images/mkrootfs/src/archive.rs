//! Writing an [`Image`] as a TAR: GNU headers (long names and link targets through the GNU
//! `././@LongLink` extension), entries in path order, mtime 0, uid/gid 0, owner `root`, so
//! the same image always gives the same bytes.

use std::io::{self, Write};
use std::path::PathBuf;

use tar::{Builder, EntryType, Header};

use crate::image::{Content, Image, Source};

/// Errors writing the archive.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// A file's host source cannot be read.
    #[error("cannot read '{path}' for '/{entry}'")]
    ReadSource {
        /// The host file.
        path: PathBuf,
        /// The image path it was meant for.
        entry: String,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The archive cannot be written.
    #[error("cannot write the archive entry '/{entry}'")]
    Write {
        /// The entry being written.
        entry: String,
        /// Why.
        #[source]
        source: io::Error,
    },
}

fn header(entry_type: EntryType, mode: u32, size: u64) -> Header {
    let mut header = Header::new_gnu();
    header.set_entry_type(entry_type);
    header.set_mode(mode);
    header.set_size(size);
    header.set_mtime(0);
    header.set_uid(0);
    header.set_gid(0);
    // "root" always fits the 32-byte fields.
    let _ = header.set_username("root");
    let _ = header.set_groupname("root");
    header
}

/// Writes `image` as a complete TAR (with its two zero end blocks) to `out`, and returns it.
pub fn write_archive<W: Write>(image: &Image, out: W) -> Result<W, ArchiveError> {
    let mut builder = Builder::new(out);
    for (path, entry) in image.iter() {
        let write_error = |source| ArchiveError::Write {
            entry: path.to_owned(),
            source,
        };
        match &entry.content {
            Content::Dir => {
                let mut h = header(EntryType::Directory, entry.mode, 0);
                builder
                    .append_data(&mut h, path, io::empty())
                    .map_err(write_error)?;
            }
            Content::File(source) => {
                let bytes = match source {
                    Source::Bytes(bytes) => bytes.clone(),
                    Source::Host(host) => {
                        std::fs::read(host).map_err(|source| ArchiveError::ReadSource {
                            path: host.clone(),
                            entry: path.to_owned(),
                            source,
                        })?
                    }
                };
                let mut h = header(EntryType::Regular, entry.mode, bytes.len() as u64);
                builder
                    .append_data(&mut h, path, bytes.as_slice())
                    .map_err(write_error)?;
            }
            Content::Symlink(target) => {
                let mut h = header(EntryType::Symlink, entry.mode, 0);
                builder
                    .append_link(&mut h, path, target)
                    .map_err(write_error)?;
            }
        }
    }
    builder.into_inner().map_err(|source| ArchiveError::Write {
        entry: "(end of archive)".into(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;
    use crate::image::{Entry, DIR_MODE, SYMLINK_MODE};
    use crate::testutil::TempDir;

    const LONG_DIR: &str = "/usr/share/a-directory-name-long-enough-that-the-whole-path";
    const LONG_FILE: &str = "goes-well-past-the-hundred-bytes-of-a-tar-name-field.txt";

    fn sample(host_file: PathBuf) -> Image {
        let mut image = Image::new();
        let mut add = |path: &str, mode, content| {
            image.insert(path, Entry { mode, content }).unwrap();
        };
        add("/bin/hello", 0o755, Content::File(Source::Host(host_file)));
        add("/bin/sh", SYMLINK_MODE, Content::Symlink("hello".into()));
        add("/etc", DIR_MODE, Content::Dir);
        add("/tmp", 0o1777, Content::Dir);
        add(
            "/etc/motd",
            0o644,
            Content::File(Source::Bytes(b"Welcome to astra\n".to_vec())),
        );
        add(
            &format!("{LONG_DIR}/{LONG_FILE}"),
            0o600,
            Content::File(Source::Bytes(b"long".to_vec())),
        );
        let long_target = format!("{LONG_DIR}/{LONG_FILE}");
        add("/long-link", SYMLINK_MODE, Content::Symlink(long_target));
        image.add_missing_parents().unwrap();
        image
    }

    /// (path, type, mode, link target, data) of every entry, as `tar::Archive` reads them.
    type Row = (String, EntryType, u32, Option<String>, Vec<u8>);

    fn read_back(bytes: &[u8]) -> Vec<Row> {
        let mut archive = tar::Archive::new(bytes);
        let mut rows = Vec::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let header = entry.header();
            assert_eq!(header.mtime().unwrap(), 0);
            assert_eq!(header.uid().unwrap(), 0);
            assert_eq!(header.gid().unwrap(), 0);
            assert_eq!(header.username().unwrap(), Some("root"));
            let path = entry.path().unwrap().to_str().unwrap().to_owned();
            let kind = header.entry_type();
            let mode = header.mode().unwrap();
            let link = entry
                .link_name()
                .unwrap()
                .map(|l| l.to_str().unwrap().to_owned());
            let mut data = Vec::new();
            entry.read_to_end(&mut data).unwrap();
            rows.push((path, kind, mode, link, data));
        }
        rows
    }

    #[test]
    fn round_trip_through_tar_archive() {
        let dir = TempDir::new("archive-round-trip");
        let host = dir.path().join("hello");
        std::fs::write(&host, b"\x7fELF binary").unwrap();
        let bytes = write_archive(&sample(host), Vec::new()).unwrap();
        let rows = read_back(&bytes);

        let long_path = format!("{}/{LONG_FILE}", &LONG_DIR[1..]);
        assert!(long_path.len() > 100);
        let row = |path: &str, kind, mode, link: Option<&str>, data: &[u8]| -> Row {
            (
                path.to_owned(),
                kind,
                mode,
                link.map(str::to_owned),
                data.to_vec(),
            )
        };
        let expected = vec![
            row("bin", EntryType::Directory, 0o755, None, b""),
            row(
                "bin/hello",
                EntryType::Regular,
                0o755,
                None,
                b"\x7fELF binary",
            ),
            row("bin/sh", EntryType::Symlink, 0o777, Some("hello"), b""),
            row("etc", EntryType::Directory, 0o755, None, b""),
            row(
                "etc/motd",
                EntryType::Regular,
                0o644,
                None,
                b"Welcome to astra\n",
            ),
            row(
                "long-link",
                EntryType::Symlink,
                0o777,
                Some(&format!("/{long_path}")),
                b"",
            ),
            row("tmp", EntryType::Directory, 0o1777, None, b""),
            row("usr", EntryType::Directory, 0o755, None, b""),
            row("usr/share", EntryType::Directory, 0o755, None, b""),
            row(&LONG_DIR[1..], EntryType::Directory, 0o755, None, b""),
            row(&long_path, EntryType::Regular, 0o600, None, b"long"),
        ];
        assert_eq!(rows, expected);
        // Whole 512-byte blocks, ending with the two zero blocks.
        assert_eq!(bytes.len() % 512, 0);
        assert!(bytes[bytes.len() - 1024..].iter().all(|&b| b == 0));
    }

    #[test]
    fn same_image_same_bytes() {
        let dir = TempDir::new("archive-deterministic");
        let host = dir.path().join("hello");
        std::fs::write(&host, b"x").unwrap();
        let first = write_archive(&sample(host.clone()), Vec::new()).unwrap();
        // A different host mtime must not show.
        std::fs::write(&host, b"x").unwrap();
        let second = write_archive(&sample(host), Vec::new()).unwrap();
        assert_eq!(first, second);
    }

    #[test]
    fn missing_host_source_names_the_file_and_the_entry() {
        let dir = TempDir::new("archive-missing");
        let host = dir.path().join("gone");
        let mut image = Image::new();
        image
            .insert(
                "/bin/gone",
                Entry {
                    mode: 0o755,
                    content: Content::File(Source::Host(host)),
                },
            )
            .unwrap();
        let err = write_archive(&image, Vec::new()).unwrap_err();
        assert!(err.to_string().starts_with("cannot read '"), "{err}");
        assert!(err.to_string().ends_with("gone' for '/bin/gone'"), "{err}");
    }
}

//! Whole-archive validation of the rootfs TAR before the guest sees it.
//!
//! The guest kernel's tarfs (`guest-kernel/src/fs/tar.rs`) refuses a malformed archive at
//! boot, but by then the only thing it can do is run without a root filesystem, which looks
//! like a missing program. So the VMM applies the same rules first, over the whole archive,
//! and refuses a bad one with exit code 250 and the reason. The rules mirror tarfs exactly
//! (anything tarfs accepts must pass here): header checksums (unsigned or signed sums), octal
//! and GNU base-256 numbers, sizes that fit the file, GNU `L`/`K` long names, pax `x` records,
//! UTF-8 names without `..` and with components of at most 255 bytes, symlinks with a target,
//! hard links to an earlier non-directory, and no entry below a non-directory.
//!
//! Only headers and extension bodies are read: file data is never touched, so validating a
//! large image costs a page per entry, not its size.

use std::collections::HashMap;

/// Size of a TAR block and header.
const BLOCK: usize = 512;
/// Longest path component (Linux `NAME_MAX`), as tarfs enforces it.
const NAME_MAX: usize = 255;

/// Why an archive is not valid. Every variant names the byte offset of the header at fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TarError {
    /// Shorter than one header.
    #[error("shorter than one 512-byte header")]
    Short,
    /// The first header has no `ustar` magic.
    #[error("the first header has no ustar magic")]
    NoMagic,
    /// A header checksum does not match.
    #[error("bad header checksum at offset {0}")]
    BadChecksum(usize),
    /// The archive ends inside a header or an entry's data.
    #[error("archive truncated in the entry at offset {0}")]
    Truncated(usize),
    /// A numeric field is not valid octal or base-256, or is out of range.
    #[error("bad {field} field in the header at offset {offset}")]
    BadNumber {
        /// Offset of the header.
        offset: usize,
        /// Name of the field.
        field: &'static str,
    },
    /// A name or link target is not UTF-8, contains `..`, is too long, or is empty where it
    /// may not be.
    #[error("bad name in the header at offset {0}")]
    BadName(usize),
    /// A pax extended header is malformed.
    #[error("malformed pax extended header at offset {0}")]
    BadPax(usize),
    /// An entry lies below something that is not a directory, or replaces the root with a
    /// non-directory.
    #[error("entry at offset {0} lies below something that is not a directory")]
    NotADirectory(usize),
    /// A hard link names no earlier entry, or names a directory.
    #[error("hard link at offset {0} has no valid target")]
    BadHardLink(usize),
}

/// What a valid archive holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Summary {
    /// Files, directories, symlinks and hard links (extension headers not counted).
    pub entries: usize,
    /// Offset of the end-of-archive blocks (or of the end of the data without them):
    /// where more entries can be appended.
    pub end: usize,
}

/// Extension headers' overrides for the next entry.
#[derive(Default)]
struct Pending<'a> {
    path: Option<&'a [u8]>,
    link: Option<&'a [u8]>,
    size: Option<u64>,
    uid: Option<u64>,
    gid: Option<u64>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    File,
    Dir,
    Symlink,
}

/// The tree as tarfs would build it, kinds only.
struct Tree<'a> {
    kinds: Vec<Kind>,
    children: Vec<HashMap<&'a str, usize>>,
}

const ROOT: usize = 0;

/// Validates the whole archive `data` as tarfs would mount it.
pub fn validate(data: &[u8]) -> Result<Summary, TarError> {
    walk(data).map(|(_, summary)| summary)
}

/// Whether the valid archive `data` may have something at the absolute or relative
/// `path`: an entry there, or a symlink on the way (`/bin -> usr/bin`: where it leads is
/// the guest's business, and nothing can be added below it).
pub fn contains(data: &[u8], path: &str) -> Result<bool, TarError> {
    let (tree, _) = walk(data)?;
    let mut node = ROOT;
    for name in path.split('/').filter(|n| !n.is_empty() && *n != ".") {
        match tree.children[node].get(name) {
            Some(&child) if tree.kinds[child] == Kind::Symlink => return Ok(true),
            Some(&child) => node = child,
            None => return Ok(false),
        }
    }
    Ok(node != ROOT)
}

fn walk(data: &[u8]) -> Result<(Tree<'_>, Summary), TarError> {
    let first = data.get(..BLOCK).ok_or(TarError::Short)?;
    if first.iter().any(|&b| b != 0) && &first[257..262] != b"ustar" {
        return Err(TarError::NoMagic);
    }
    let mut tree = Tree {
        kinds: vec![Kind::Dir],
        children: vec![HashMap::new()],
    };
    let mut entries = 0;
    let mut pending = Pending::default();
    let mut offset = 0usize;
    while offset < data.len() {
        let rest = &data[offset..];
        if rest.iter().take(BLOCK).all(|&b| b == 0) {
            break;
        }
        let header = rest.get(..BLOCK).ok_or(TarError::Truncated(offset))?;
        verify_checksum(header, offset)?;
        let typeflag = header[156];
        let header_size = parse_number(&header[124..136], offset, "size")?;
        let is_extension = matches!(typeflag, b'L' | b'K' | b'x' | b'g');
        let size = match pending.size {
            Some(pax_size) if !is_extension => pax_size,
            _ => header_size,
        };
        let truncated = TarError::Truncated(offset);
        let size = usize::try_from(size).map_err(|_| truncated)?;
        let data_end = (offset + BLOCK)
            .checked_add(size)
            .filter(|&end| end <= data.len())
            .ok_or(truncated)?;
        let body = &data[offset + BLOCK..data_end];
        match typeflag {
            b'L' => pending.path = Some(until_nul(body)),
            b'K' => pending.link = Some(until_nul(body)),
            b'x' => parse_pax(body, offset, &mut pending)?,
            b'g' => {}
            _ => {
                let taken = std::mem::take(&mut pending);
                if tree.add_entry(header, taken, typeflag, offset)? {
                    entries += 1;
                }
            }
        }
        match data_end.checked_add(BLOCK - 1) {
            Some(n) => offset = n / BLOCK * BLOCK,
            None => break,
        }
    }
    let end = offset.min(data.len());
    Ok((tree, Summary { entries, end }))
}

impl<'a> Tree<'a> {
    /// Checks one entry and adds it; `false` for entry types tarfs skips.
    fn add_entry(
        &mut self,
        header: &'a [u8],
        p: Pending<'a>,
        typeflag: u8,
        offset: usize,
    ) -> Result<bool, TarError> {
        let kind = match typeflag {
            b'0' | 0 | b'7' | b'1' => Kind::File,
            b'5' => Kind::Dir,
            b'2' => Kind::Symlink,
            _ => return Ok(false),
        };
        parse_number(&header[100..108], offset, "mode")?;
        let id = |pax: Option<u64>, range: std::ops::Range<usize>, field| {
            let v = match pax {
                Some(v) => v,
                None => parse_number(&header[range], offset, field)?,
            };
            u32::try_from(v).map_err(|_| TarError::BadNumber { offset, field })
        };
        id(p.uid, 108..116, "uid")?;
        id(p.gid, 116..124, "gid")?;
        parse_signed(&header[136..148], offset, "mtime")?;
        let link = p.link.unwrap_or_else(|| until_nul(&header[157..257]));
        let link = std::str::from_utf8(link).map_err(|_| TarError::BadName(offset))?;
        let ustar = &header[257..263] == b"ustar\0";
        let prefix: &[u8] = match p.path {
            None if ustar => until_nul(&header[345..500]),
            _ => &[],
        };
        let name = p.path.unwrap_or_else(|| until_nul(&header[..100]));
        let mut names = Vec::new();
        for part in [prefix, name] {
            let part = std::str::from_utf8(part).map_err(|_| TarError::BadName(offset))?;
            for c in components(part) {
                match c {
                    Some(n) if n.len() <= NAME_MAX => names.push(n),
                    _ => return Err(TarError::BadName(offset)),
                }
            }
        }
        self.insert(&names, kind, typeflag == b'1', link, offset)?;
        Ok(true)
    }

    fn insert(
        &mut self,
        names: &[&'a str],
        kind: Kind,
        hard_link: bool,
        link: &'a str,
        offset: usize,
    ) -> Result<(), TarError> {
        let Some((&last, dirs)) = names.split_last() else {
            return if kind == Kind::Dir {
                Ok(())
            } else {
                Err(TarError::NotADirectory(offset))
            };
        };
        let mut dir = ROOT;
        for &name in dirs {
            dir = match self.children[dir].get(name) {
                Some(&child) if self.kinds[child] == Kind::Dir => child,
                Some(_) => return Err(TarError::NotADirectory(offset)),
                None => self.new_child(dir, name, Kind::Dir),
            };
        }
        let existing = self.children[dir].get(last).copied();
        if hard_link {
            let target = self
                .hard_link_target(link)
                .ok_or(TarError::BadHardLink(offset))?;
            self.children[dir].insert(last, target);
            return Ok(());
        }
        if kind == Kind::Dir && existing.is_some_and(|id| self.kinds[id] == Kind::Dir) {
            return Ok(());
        }
        if kind == Kind::Symlink && link.is_empty() {
            return Err(TarError::BadName(offset));
        }
        self.new_child(dir, last, kind);
        Ok(())
    }

    /// Adds (or replaces) `name` in `dir` with a new node of `kind`.
    fn new_child(&mut self, dir: usize, name: &'a str, kind: Kind) -> usize {
        self.kinds.push(kind);
        self.children.push(HashMap::new());
        let id = self.kinds.len() - 1;
        self.children[dir].insert(name, id);
        id
    }

    /// A hard link names an earlier non-directory by its path, without following symlinks.
    fn hard_link_target(&self, link: &str) -> Option<usize> {
        let mut cur = ROOT;
        for c in components(link) {
            if self.kinds[cur] != Kind::Dir {
                return None;
            }
            cur = *self.children[cur].get(c?)?;
        }
        (self.kinds[cur] != Kind::Dir).then_some(cur)
    }
}

/// The components of `path` as tarfs sees them: empty ones and `.` skipped, `..` as `None`.
fn components(path: &str) -> impl Iterator<Item = Option<&str>> {
    path.split('/')
        .filter(|name| !name.is_empty() && *name != ".")
        .map(|name| (name != "..").then_some(name))
}

fn until_nul(bytes: &[u8]) -> &[u8] {
    bytes.split(|&b| b == 0).next().unwrap_or(bytes)
}

/// The byte sum with the checksum field read as spaces, unsigned (POSIX) or signed.
fn verify_checksum(header: &[u8], offset: usize) -> Result<(), TarError> {
    let stored = parse_number(&header[148..156], offset, "checksum")
        .map_err(|_| TarError::BadChecksum(offset))?;
    let (mut unsigned, mut signed) = (0u64, 0i64);
    for (i, &b) in header.iter().enumerate() {
        let b = if (148..156).contains(&i) { b' ' } else { b };
        unsigned += u64::from(b);
        signed += i64::from(b as i8);
    }
    if stored == unsigned || i64::try_from(stored).is_ok_and(|s| s == signed) {
        Ok(())
    } else {
        Err(TarError::BadChecksum(offset))
    }
}

/// An unsigned numeric field: octal or GNU base-256 (negative values are an error).
fn parse_number(bytes: &[u8], offset: usize, field: &'static str) -> Result<u64, TarError> {
    let v = parse_signed(bytes, offset, field)?;
    u64::try_from(v).map_err(|_| TarError::BadNumber { offset, field })
}

/// A numeric field that may be negative (base-256 with its sign bit set).
fn parse_signed(bytes: &[u8], offset: usize, field: &'static str) -> Result<i64, TarError> {
    let bad = TarError::BadNumber { offset, field };
    match bytes.first() {
        Some(&first) if first & 0x80 != 0 => {
            let negative = first & 0x40 != 0;
            let mut v: i64 = if negative { -1 } else { 0 };
            let first = if negative { first } else { first & 0x7f };
            for (i, &b) in bytes.iter().enumerate() {
                let b = if i == 0 { first } else { b };
                if (v >> 55) != (v >> 63) {
                    return Err(bad);
                }
                v = (v << 8) | i64::from(b);
            }
            Ok(v)
        }
        _ => {
            let mut v: i64 = 0;
            let mut digits = bytes.iter().skip_while(|&&b| b == b' ').peekable();
            while let Some(&b) = digits.next_if(|b| (b'0'..=b'7').contains(b)) {
                v = v
                    .checked_mul(8)
                    .and_then(|v| v.checked_add(i64::from(b - b'0')))
                    .ok_or(bad)?;
            }
            if digits.all(|&b| b == b' ' || b == 0) {
                Ok(v)
            } else {
                Err(bad)
            }
        }
    }
}

/// pax records `"<len> <key>=<value>\n"`.
fn parse_pax<'a>(
    mut body: &'a [u8],
    offset: usize,
    pending: &mut Pending<'a>,
) -> Result<(), TarError> {
    let bad = TarError::BadPax(offset);
    while !body.is_empty() && body.iter().any(|&b| b != 0) {
        let space = body.iter().position(|&b| b == b' ').ok_or(bad)?;
        let len: usize = std::str::from_utf8(&body[..space])
            .map_err(|_| bad)?
            .parse()
            .map_err(|_| bad)?;
        if len <= space + 1 || len > body.len() {
            return Err(bad);
        }
        let record = body[space + 1..len].strip_suffix(b"\n").ok_or(bad)?;
        let eq = record.iter().position(|&b| b == b'=').ok_or(bad)?;
        let (key, value) = (&record[..eq], &record[eq + 1..]);
        let decimal = |v: &[u8]| -> Result<u64, TarError> {
            std::str::from_utf8(v)
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or(bad)
        };
        match key {
            b"path" => pending.path = Some(value),
            b"linkpath" => pending.link = Some(value),
            b"size" => pending.size = Some(decimal(value)?),
            b"uid" => pending.uid = Some(decimal(value)?),
            b"gid" => pending.gid = Some(decimal(value)?),
            b"mtime" => {
                let s = std::str::from_utf8(value).map_err(|_| bad)?;
                let whole = s.split('.').next().unwrap_or("");
                if !(whole.is_empty() || whole == "-") {
                    whole.parse::<i64>().map_err(|_| bad)?;
                }
            }
            _ => {}
        }
        body = &body[len..];
    }
    Ok(())
}

/// Builders of small archives for tests (here and in other modules).
#[cfg(test)]
pub(crate) mod test_tar {
    use super::BLOCK;

    /// Recomputes the checksum of a header.
    pub fn seal(h: &mut [u8]) {
        h[148..156].fill(b' ');
        let sum: u32 = h[..BLOCK].iter().map(|&b| u32::from(b)).sum();
        h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    }

    /// A ustar header for `name` of `typeflag` with `size` bytes (octal), `link` as target.
    pub fn header(name: &[u8], typeflag: u8, size: u64, link: &[u8]) -> Vec<u8> {
        let mut h = vec![0u8; BLOCK];
        h[..name.len()].copy_from_slice(name);
        h[100..108].copy_from_slice(b"0000644\0");
        h[108..116].copy_from_slice(b"0000000\0");
        h[116..124].copy_from_slice(b"0000000\0");
        h[124..136].copy_from_slice(format!("{size:011o}\0").as_bytes());
        h[136..148].copy_from_slice(b"00000001750\0");
        h[156] = typeflag;
        h[157..157 + link.len()].copy_from_slice(link);
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        seal(&mut h);
        h
    }

    /// An entry: header and data padded to a block.
    pub fn entry(name: &[u8], typeflag: u8, data: &[u8], link: &[u8]) -> Vec<u8> {
        let mut out = header(name, typeflag, data.len() as u64, link);
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(BLOCK) * BLOCK, 0);
        out
    }

    /// The end-of-archive marker.
    pub fn end() -> Vec<u8> {
        vec![0u8; 2 * BLOCK]
    }
}

#[cfg(test)]
mod tests {
    use super::test_tar::*;
    use super::*;

    fn archive(entries: &[Vec<u8>]) -> Vec<u8> {
        let mut out: Vec<u8> = entries.concat();
        out.extend(end());
        out
    }

    fn good() -> Vec<Vec<u8>> {
        vec![
            entry(b"bin/", b'5', b"", b""),
            entry(b"bin/hello", b'0', b"hi\n", b""),
            entry(b"bin/sh", b'2', b"", b"hello"),
            entry(b"bin/again", b'1', b"", b"bin/hello"),
        ]
    }

    #[test]
    fn a_well_formed_archive_passes() {
        let good_archive = archive(&good());
        let summary = validate(&good_archive).unwrap();
        assert_eq!(summary.entries, 4);
        assert_eq!(summary.end, good().iter().map(Vec::len).sum::<usize>());
        assert_eq!(validate(&end()), Ok(Summary { entries: 0, end: 0 }));
        assert_eq!(contains(&good_archive, "/bin"), Ok(true));
        assert_eq!(contains(&good_archive, "bin/hello"), Ok(true));
        assert_eq!(contains(&good_archive, "/bin/nope"), Ok(false));
        assert_eq!(contains(&good_archive, "/"), Ok(false));
        let mut linked = good();
        linked.push(entry(b"sbin", b'2', b"", b"bin"));
        let linked = archive(&linked);
        assert_eq!(contains(&linked, "/sbin/anything"), Ok(true));
        // A later directory entry over an implied one, and a file replacing a file.
        let mut more = good();
        more.push(entry(b"usr/lib/x", b'0', b"", b""));
        more.push(entry(b"usr/lib", b'5', b"", b""));
        more.push(entry(b"bin/hello", b'0', b"again", b""));
        assert!(validate(&archive(&more)).is_ok());
    }

    #[test]
    fn corruption_past_the_first_header_is_found() {
        let mut bad_sum = good();
        bad_sum[2][0] ^= 1;
        assert_eq!(
            validate(&archive(&bad_sum)),
            Err(TarError::BadChecksum(1536))
        );

        let whole = archive(&good());
        assert_eq!(
            validate(&whole[..1536 + 100]),
            Err(TarError::Truncated(1536))
        );
        let mut short_data = good();
        short_data[1] = header(b"bin/hello", b'0', 1 << 32, b"");
        assert_eq!(
            validate(&archive(&short_data)),
            Err(TarError::Truncated(512))
        );

        let mut dotdot = good();
        dotdot.push(entry(b"../escape", b'0', b"", b""));
        assert_eq!(validate(&archive(&dotdot)), Err(TarError::BadName(2560)));

        let mut not_utf8 = good();
        not_utf8.push(entry(b"bin/\xff\xfe", b'0', b"", b""));
        assert_eq!(validate(&archive(&not_utf8)), Err(TarError::BadName(2560)));

        let mut base256 = good();
        let mut h = header(b"big", b'0', 0, b"");
        h[124] = 0xff; // negative base-256 size
        seal(&mut h);
        base256.push(h);
        assert!(matches!(
            validate(&archive(&base256)),
            Err(TarError::BadNumber { field: "size", .. })
        ));
    }

    #[test]
    fn bad_pax_links_and_conflicts_are_found() {
        let mut pax = good();
        pax.push(entry(b"pax", b'x', b"99 path=x\n", b""));
        pax.push(entry(b"x", b'0', b"", b""));
        assert_eq!(validate(&archive(&pax)), Err(TarError::BadPax(2560)));

        let mut dangling = good();
        dangling.push(entry(b"l", b'1', b"", b"no/such"));
        assert_eq!(
            validate(&archive(&dangling)),
            Err(TarError::BadHardLink(2560))
        );
        let mut to_dir = good();
        to_dir.push(entry(b"l", b'1', b"", b"bin"));
        assert_eq!(
            validate(&archive(&to_dir)),
            Err(TarError::BadHardLink(2560))
        );

        let mut below_file = good();
        below_file.push(entry(b"bin/hello/x", b'0', b"", b""));
        assert_eq!(
            validate(&archive(&below_file)),
            Err(TarError::NotADirectory(2560))
        );
        let mut root_file = good();
        root_file.push(entry(b"./", b'0', b"", b""));
        assert_eq!(
            validate(&archive(&root_file)),
            Err(TarError::NotADirectory(2560))
        );

        let mut empty_link = good();
        empty_link.push(entry(b"s", b'2', b"", b""));
        assert_eq!(
            validate(&archive(&empty_link)),
            Err(TarError::BadName(2560))
        );
    }

    #[test]
    fn a_file_replacing_a_directory_drops_what_was_below() {
        let mut replaced = good();
        replaced.push(entry(b"bin", b'0', b"", b""));
        replaced.push(entry(b"bin/hello2", b'0', b"", b""));
        assert_eq!(
            validate(&archive(&replaced)),
            Err(TarError::NotADirectory(3072))
        );
    }

    #[test]
    fn first_header_must_be_ustar() {
        assert_eq!(validate(&[0; 100]), Err(TarError::Short));
        assert_eq!(validate(&[b'x'; 512]), Err(TarError::NoMagic));
    }
}

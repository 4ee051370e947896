//! TAR header decoding for tarfs: checksums, octal and GNU base-256 numbers, and pax
//! extended header records. Every function takes untrusted bytes and fails with a
//! [`TarError`] naming the header's offset rather than panicking.

use super::TarError;

/// Size of a TAR block and header.
pub(super) const BLOCK: usize = 512;

/// Long name, long link name and pax overrides that apply to the next real entry.
#[derive(Default)]
pub(super) struct Pending {
    /// Path from a GNU `L` header or a pax `path` record.
    pub(super) path: Option<&'static [u8]>,
    /// Link target from a GNU `K` header or a pax `linkpath` record.
    pub(super) link: Option<&'static [u8]>,
    /// pax `size`: overrides the header's size field.
    pub(super) size: Option<u64>,
    /// pax `uid`.
    pub(super) uid: Option<u64>,
    /// pax `gid`.
    pub(super) gid: Option<u64>,
    /// pax `mtime`, whole seconds.
    pub(super) mtime: Option<i64>,
}

/// `len` bytes of the header at `start`; the header is always a full block.
pub(super) fn field(header: &'static [u8], start: usize, len: usize) -> &'static [u8] {
    header.get(start..start + len).unwrap_or(&[])
}

/// The bytes before the first NUL.
pub(super) fn until_nul(bytes: &'static [u8]) -> &'static [u8] {
    match bytes.iter().position(|&b| b == 0) {
        Some(end) => &bytes[..end],
        None => bytes,
    }
}

/// Checks the header checksum: the byte sum with the checksum field read as spaces, unsigned
/// (POSIX) or, as some old tars wrote it, signed.
pub(super) fn verify_checksum(header: &'static [u8], offset: usize) -> Result<(), TarError> {
    let stored = parse_number(field(header, 148, 8), offset, "checksum")
        .map_err(|_| TarError::BadChecksum { offset })?;
    let (mut unsigned, mut signed) = (0u64, 0i64);
    for (i, &b) in header.iter().enumerate() {
        let b = if (148..156).contains(&i) { b' ' } else { b };
        unsigned += u64::from(b);
        signed += i64::from(b as i8);
    }
    if stored == unsigned || i64::try_from(stored).is_ok_and(|s| s == signed) {
        Ok(())
    } else {
        Err(TarError::BadChecksum { offset })
    }
}

/// Parses an unsigned numeric field: octal (leading spaces, terminated by space or NUL) or
/// GNU base-256 (first byte 0x80; negative values are an error).
pub(super) fn parse_number(
    bytes: &[u8],
    offset: usize,
    name: &'static str,
) -> Result<u64, TarError> {
    let v = parse_signed(bytes, offset, name)?;
    u64::try_from(v).map_err(|_| TarError::BadNumber {
        offset,
        field: name,
    })
}

/// Parses a numeric field that may be negative (GNU base-256 with first byte 0xff).
pub(super) fn parse_signed(
    bytes: &[u8],
    offset: usize,
    name: &'static str,
) -> Result<i64, TarError> {
    let bad = TarError::BadNumber {
        offset,
        field: name,
    };
    match bytes.first() {
        Some(&first) if first & 0x80 != 0 => {
            // Base-256, two's complement; the first byte carries the 0x80 marker bit.
            let negative = first & 0x40 != 0;
            let mut v: i64 = if negative { -1 } else { 0 };
            let first = if negative { first } else { first & 0x7f };
            for (i, &b) in bytes.iter().enumerate() {
                let b = if i == 0 { first } else { b };
                // Shifting out a byte that differs from the sign would lose information.
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

/// Parses pax records `"<len> <key>=<value>\n"` into `pending`.
pub(super) fn parse_pax(
    mut body: &'static [u8],
    offset: usize,
    pending: &mut Pending,
) -> Result<(), TarError> {
    let bad = TarError::BadPax { offset };
    // Trailing NULs are padding some writers leave.
    while !body.is_empty() && body.iter().any(|&b| b != 0) {
        let space = body.iter().position(|&b| b == b' ').ok_or(bad)?;
        let len_str = core::str::from_utf8(&body[..space]).map_err(|_| bad)?;
        let len: usize = len_str.parse().map_err(|_| bad)?;
        if len <= space + 1 || len > body.len() {
            return Err(bad);
        }
        let record = &body[space + 1..len];
        let record = record.strip_suffix(b"\n").ok_or(bad)?;
        let eq = record.iter().position(|&b| b == b'=').ok_or(bad)?;
        let (key, value) = (&record[..eq], &record[eq + 1..]);
        let decimal = |v: &[u8]| -> Result<u64, TarError> {
            core::str::from_utf8(v)
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
                // Seconds with an optional fraction, possibly negative.
                let s = core::str::from_utf8(value).map_err(|_| bad)?;
                let whole = s.split('.').next().unwrap_or("");
                let whole = if whole.is_empty() || whole == "-" {
                    "0"
                } else {
                    whole
                };
                pending.mtime = Some(whole.parse().map_err(|_| bad)?);
            }
            _ => {}
        }
        body = &body[len..];
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn num(bytes: &[u8]) -> Result<i64, TarError> {
        parse_signed(bytes, 0, "t")
    }

    #[test]
    fn octal_fields() {
        assert_eq!(num(b"  17 \0"), Ok(0o17));
        assert_eq!(num(b"777777777777"), Ok(0o777777777777));
        assert_eq!(num(b"\0\0\0\0"), Ok(0));
        assert_eq!(num(b""), Ok(0));
        assert!(num(b"12x\0").is_err());
        assert!(num(b"1 2\0").is_err());
        assert!(num(b"8\0").is_err());
        assert!(num(b"7777777777777777777777\0").is_err());
    }

    #[test]
    fn base256_fields() {
        let max = [0x80, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
        assert_eq!(num(&max), Ok(i64::MAX));
        assert_eq!(num(&[0xff, 0x80, 0, 0, 0, 0, 0, 0, 0]), Ok(i64::MIN));
        assert_eq!(num(&[0xff; 12]), Ok(-1));
        assert_eq!(num(&[0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 1]), Ok(513));
        assert!(num(&[0x80, 0x80, 0, 0, 0, 0, 0, 0, 0]).is_err());
        assert!(num(&[0xff, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]).is_err());
        let negative = parse_number(&[0xff; 12], 7, "size");
        assert_eq!(
            negative,
            Err(TarError::BadNumber {
                offset: 7,
                field: "size"
            })
        );
    }

    fn leak(s: &str) -> &'static [u8] {
        alloc::boxed::Box::leak(alloc::vec::Vec::from(s.as_bytes()).into_boxed_slice())
    }

    #[test]
    fn pax_records() {
        let mut p = Pending::default();
        let body = leak("12 path=a/b\n11 size=42\n15 mtime=-12.5\n8 uid=7\n");
        parse_pax(body, 0, &mut p).unwrap();
        assert_eq!(p.path, Some(b"a/b".as_slice()));
        assert_eq!((p.size, p.mtime, p.uid), (Some(42), Some(-12), Some(7)));
        // A record whose length runs past the data, or that lacks its newline or '='.
        for bad in [
            "99 path=x\n",
            "9 path=x\0",
            "7 abcd\n",
            "2 \n",
            "-1 x=y\n",
            "1 x",
        ] {
            let mut p = Pending::default();
            let got = parse_pax(leak(bad), 5, &mut p);
            assert_eq!(got, Err(TarError::BadPax { offset: 5 }), "{bad:?}");
        }
        // NUL padding after the last record is accepted.
        parse_pax(leak("11 path=xy\n\0\0\0"), 0, &mut Pending::default()).unwrap();
    }
}

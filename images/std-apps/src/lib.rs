//! Helpers shared by the std programs of the astra images (`src/bin/`).
//!
//! The programs themselves are ordinary Linux programs: they use `std` and nothing else, so
//! they run unchanged on the host and on astra. The few things `std` does not offer (the
//! kernel's `uname`, a monotonic clock reading since boot, raw system calls with bad
//! pointers) go through the small [`sys`] module. Everything else here is pure and
//! covered by `cargo test`.

pub mod checks;
pub mod sys;

use std::io;

/// FNV-1a, 64-bit: a checksum cheap enough not to hide the cost of the read it follows.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    bytes.iter().fold(OFFSET_BASIS, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(PRIME)
    })
}

/// An I/O error as coreutils prints it: `No such file or directory`, without std's
/// ` (os error 2)` suffix.
pub fn error_text(err: &io::Error) -> String {
    let text = err.to_string();
    match (err.raw_os_error(), text.rfind(" (os error ")) {
        (Some(_), Some(at)) if text.ends_with(')') => text[..at].to_string(),
        _ => text,
    }
}

/// Parses a byte count with an optional binary suffix: `4096`, `64K`, `64M`, `1G`.
pub fn parse_size(text: &str) -> Option<u64> {
    let (digits, shift) = match text.as_bytes().last()? {
        b'K' | b'k' => (&text[..text.len() - 1], 10),
        b'M' | b'm' => (&text[..text.len() - 1], 20),
        b'G' | b'g' => (&text[..text.len() - 1], 30),
        _ => (text, 0),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse::<u64>().ok()?.checked_mul(1u64 << shift)
}

/// The deterministic pseudo-random bytes of the benchmark's data file (xorshift64*), so
/// every build makes the same file without committing it.
#[derive(Clone, Debug)]
pub struct DataPattern {
    state: u64,
}

impl DataPattern {
    /// The generator for `seed` (a zero seed is replaced, xorshift would stay at zero).
    pub fn new(seed: u64) -> DataPattern {
        DataPattern {
            state: if seed == 0 {
                0x9e37_79b9_7f4a_7c15
            } else {
                seed
            },
        }
    }

    /// Fills `buf` with the next bytes of the stream.
    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let word = self.next_word().to_le_bytes();
            chunk.copy_from_slice(&word[..chunk.len()]);
        }
    }

    fn next_word(&mut self) -> u64 {
        let mut x = self.state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.state = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a64_known_values() {
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn error_text_drops_the_os_error_suffix() {
        let err = io::Error::from_raw_os_error(2);
        assert_eq!(error_text(&err), "No such file or directory");
        let err = io::Error::from_raw_os_error(30);
        assert_eq!(error_text(&err), "Read-only file system");
        let custom = io::Error::other("something (os error 5)");
        assert_eq!(error_text(&custom), "something (os error 5)");
    }

    #[test]
    fn sizes_parse_with_suffixes() {
        assert_eq!(parse_size("4096"), Some(4096));
        assert_eq!(parse_size("64K"), Some(64 << 10));
        assert_eq!(parse_size("64M"), Some(64 << 20));
        assert_eq!(parse_size("1g"), Some(1 << 30));
        assert_eq!(parse_size(""), None);
        assert_eq!(parse_size("M"), None);
        assert_eq!(parse_size("-1"), None);
        assert_eq!(parse_size("1.5M"), None);
        assert_eq!(parse_size("99999999999999999999G"), None);
    }

    #[test]
    fn data_pattern_is_deterministic_and_not_trivial() {
        let mut a = vec![0u8; 1000];
        let mut b = vec![0u8; 1000];
        DataPattern::new(7).fill(&mut a);
        DataPattern::new(7).fill(&mut b);
        assert_eq!(a, b);
        // Filling in pieces of any size gives the same stream as long as they are whole words.
        let mut pieces = vec![0u8; 1000];
        let mut gen = DataPattern::new(7);
        let (head, tail) = pieces.split_at_mut(512);
        gen.fill(head);
        gen.fill(tail);
        assert_eq!(a, pieces);
        let mut c = vec![0u8; 1000];
        DataPattern::new(8).fill(&mut c);
        assert_ne!(a, c);
        let distinct = a.iter().collect::<std::collections::BTreeSet<_>>().len();
        assert!(distinct > 200, "{distinct} distinct byte values");
        let mut zero_seed = vec![0u8; 64];
        DataPattern::new(0).fill(&mut zero_seed);
        assert!(zero_seed.iter().any(|&b| b != 0));
    }
}

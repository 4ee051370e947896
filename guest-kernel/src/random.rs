//! Kernel randomness: a ChaCha20 generator with fast key erasure.
//!
//! The key is seeded on first use from RDSEED and RDRAND when CPUID reports them and
//! TSC jitter, absorbed through the ChaCha20 block function. Each request
//! draws blocks under the current key and then replaces the key with fresh output
//! (Bernstein's "fast key erasure"), so a later compromise of the state does not reveal
//! earlier output. `getrandom` and `AT_RANDOM` come from here; the entropy device can
//! feed [`add_entropy`] when it arrives.

use spin::Mutex;

use crate::arch::cpu;

/// "expand 32-byte k".
const SIGMA: [u32; 4] = [0x6170_7865, 0x3320_646e, 0x7962_2d32, 0x6b20_6574];
/// Output drawn under one key before it is replaced.
const CHUNK: usize = 64 * 1024;

fn quarter_round(s: &mut [u32; 16], a: usize, b: usize, c: usize, d: usize) {
    s[a] = s[a].wrapping_add(s[b]);
    s[d] = (s[d] ^ s[a]).rotate_left(16);
    s[c] = s[c].wrapping_add(s[d]);
    s[b] = (s[b] ^ s[c]).rotate_left(12);
    s[a] = s[a].wrapping_add(s[b]);
    s[d] = (s[d] ^ s[a]).rotate_left(8);
    s[c] = s[c].wrapping_add(s[d]);
    s[b] = (s[b] ^ s[c]).rotate_left(7);
}

/// The ChaCha20 block function (RFC 8439, section 2.3): 32-bit block counter, 96-bit
/// nonce.
pub fn chacha20_block(key: &[u32; 8], counter: u32, nonce: &[u32; 3]) -> [u32; 16] {
    let mut init = [0u32; 16];
    init[..4].copy_from_slice(&SIGMA);
    init[4..12].copy_from_slice(key);
    init[12] = counter;
    init[13..].copy_from_slice(nonce);
    let mut s = init;
    for _ in 0..10 {
        quarter_round(&mut s, 0, 4, 8, 12);
        quarter_round(&mut s, 1, 5, 9, 13);
        quarter_round(&mut s, 2, 6, 10, 14);
        quarter_round(&mut s, 3, 7, 11, 15);
        quarter_round(&mut s, 0, 5, 10, 15);
        quarter_round(&mut s, 1, 6, 11, 12);
        quarter_round(&mut s, 2, 7, 8, 13);
        quarter_round(&mut s, 3, 4, 9, 14);
    }
    for (word, start) in s.iter_mut().zip(init) {
        *word = word.wrapping_add(start);
    }
    s
}

/// A ChaCha20 generator with fast key erasure.
pub struct Generator {
    key: [u32; 8],
    /// Changes with every absorbed sample, so equal keys never repeat a stream.
    nonce: [u32; 3],
}

impl Generator {
    /// A generator keyed with `seed` (which must be secret and unpredictable).
    pub fn new(seed: [u32; 8]) -> Self {
        Generator {
            key: seed,
            nonce: [0; 3],
        }
    }

    /// Mixes 64 bits of (possibly weak) entropy into the key.
    pub fn absorb(&mut self, sample: u64) {
        self.key[0] ^= sample as u32;
        self.key[1] ^= (sample >> 32) as u32;
        self.nonce[2] = self.nonce[2].wrapping_add(1);
        let block = chacha20_block(&self.key, 0, &self.nonce);
        self.key.copy_from_slice(&block[..8]);
    }

    /// Fills `out` with output, replacing the key after every [`CHUNK`] bytes.
    pub fn fill(&mut self, out: &mut [u8]) {
        for chunk in out.chunks_mut(CHUNK) {
            // Block 0 becomes the next key; blocks 1.. are output.
            let next = chacha20_block(&self.key, 0, &self.nonce);
            for (i, piece) in chunk.chunks_mut(64).enumerate() {
                let block = chacha20_block(&self.key, i as u32 + 1, &self.nonce);
                let mut bytes = [0u8; 64];
                for (dst, word) in bytes.chunks_exact_mut(4).zip(block) {
                    dst.copy_from_slice(&word.to_le_bytes());
                }
                piece.copy_from_slice(&bytes[..piece.len()]);
            }
            self.key.copy_from_slice(&next[..8]);
        }
    }
}

static GENERATOR: Mutex<Option<Generator>> = Mutex::new(None);

/// Entropy available at boot, absorbed into a fresh generator.
fn seeded() -> Generator {
    let mut generator = Generator::new([0x5eed_0000; 8]);
    let features = cpu::rng_features();
    for _ in 0..4 {
        if let Some(v) = cpu::rdseed(features) {
            generator.absorb(v);
        }
        if let Some(v) = cpu::rdrand(features) {
            generator.absorb(v);
        }
    }
    // Timing jitter: the TSC around memory traffic, interrupts and VM exits. Weak on
    // its own in a VM; the hardware sources above carry the weight where they exist.
    let mut scratch = [0u64; 64];
    for round in 0..64u64 {
        let before = cpu::rdtsc();
        for (i, slot) in scratch.iter_mut().enumerate() {
            // SAFETY: a volatile write to our own stack array keeps the loop real.
            unsafe { core::ptr::write_volatile(slot, before ^ i as u64 ^ round) };
        }
        generator.absorb(cpu::rdtsc().wrapping_sub(before) ^ before.rotate_left(29));
    }
    generator
}

fn with_generator<R>(f: impl FnOnce(&mut Generator) -> R) -> R {
    let mut guard = GENERATOR.lock();
    let generator = guard.get_or_insert_with(seeded);
    f(generator)
}

/// Fills `out` with cryptographically strong random bytes.
pub fn fill(out: &mut [u8]) {
    with_generator(|g| g.fill(out));
}

/// Mixes extra entropy (e.g. from an entropy device) into the generator.
#[allow(dead_code)]
pub fn add_entropy(bytes: &[u8]) {
    with_generator(|g| {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            g.absorb(u64::from_le_bytes(word));
        }
    });
}

/// A random 64-bit value.
#[allow(dead_code)]
pub fn next_u64() -> u64 {
    let mut bytes = [0u8; 8];
    fill(&mut bytes);
    u64::from_le_bytes(bytes)
}

/// Sixteen random bytes.
pub fn bytes16() -> [u8; 16] {
    let mut out = [0u8; 16];
    fill(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chacha20_matches_rfc8439_test_vector() {
        // RFC 8439 2.3.2: key 00..1f, nonce 00:00:00:09:00:00:00:4a:00:00:00:00, count 1.
        let mut key = [0u32; 8];
        for (i, word) in key.iter_mut().enumerate() {
            let b = (i * 4) as u8;
            *word = u32::from_le_bytes([b, b + 1, b + 2, b + 3]);
        }
        let nonce = [0x0900_0000, 0x4a00_0000, 0];
        let block = chacha20_block(&key, 1, &nonce);
        let mut bytes = alloc::vec::Vec::new();
        for w in block {
            bytes.extend_from_slice(&w.to_le_bytes());
        }
        let want: [u8; 16] = [
            0x10, 0xf1, 0xe7, 0xe4, 0xd1, 0x3b, 0x59, 0x15, 0x50, 0x0f, 0xdd, 0x1f, 0xa3, 0x20,
            0x71, 0xc4,
        ];
        assert_eq!(&bytes[..16], &want);
        assert_eq!(&bytes[60..], &[0xa2, 0x50, 0x3c, 0x4e]);
    }

    #[test]
    fn generator_erases_its_key_and_never_repeats() {
        let mut g = Generator::new([1; 8]);
        let key_before = g.key;
        let mut a = [0u8; 100];
        g.fill(&mut a);
        assert_ne!(g.key, key_before, "key replaced after a request");
        let mut b = [0u8; 100];
        g.fill(&mut b);
        assert_ne!(a, b);
        // Same seed, same stream; a different seed, a different one.
        let mut c = [0u8; 100];
        Generator::new([1; 8]).fill(&mut c);
        assert_eq!(a, c);
        let mut d = [0u8; 100];
        Generator::new([2; 8]).fill(&mut d);
        assert_ne!(a, d);
    }

    #[test]
    fn generator_output_looks_uniform() {
        let mut g = Generator::new([7; 8]);
        let mut buf = alloc::vec![0u8; 200_000];
        g.fill(&mut buf);
        let ones: u64 = buf.iter().map(|b| b.count_ones() as u64).sum();
        let bits = buf.len() as u64 * 8;
        // Within ~6 standard deviations of half.
        let dev = (ones as i64 - (bits / 2) as i64).unsigned_abs();
        assert!(dev < 3000, "{ones} ones of {bits}");
        let mut counts = [0u32; 256];
        for &b in &buf {
            counts[b as usize] += 1;
        }
        assert!(counts.iter().all(|&c| (600..1000).contains(&c)));
    }

    #[test]
    fn absorbing_changes_the_stream() {
        let mut a = Generator::new([3; 8]);
        let mut b = Generator::new([3; 8]);
        b.absorb(1);
        let (mut x, mut y) = ([0u8; 32], [0u8; 32]);
        a.fill(&mut x);
        b.fill(&mut y);
        assert_ne!(x, y);
    }
}

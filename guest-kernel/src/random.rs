//! Kernel randomness until the entropy device arrives: TSC jitter through a mixer.
//! Good enough for AT_RANDOM's stack-protector seed in a test VM; not cryptographic.

use core::sync::atomic::{AtomicU64, Ordering};

use crate::arch::cpu;

static STATE: AtomicU64 = AtomicU64::new(0x853c_49e6_748f_ea9b);

fn splitmix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A pseudo-random 64-bit value.
pub fn next_u64() -> u64 {
    let s = STATE.fetch_add(0x9e37_79b9_7f4a_7c15 ^ cpu::rdtsc(), Ordering::Relaxed);
    splitmix(s ^ cpu::rdtsc().rotate_left(17))
}

/// Sixteen pseudo-random bytes.
pub fn bytes16() -> [u8; 16] {
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&next_u64().to_le_bytes());
    out[8..].copy_from_slice(&next_u64().to_le_bytes());
    out
}

//! Time: PIT ticks for scheduling, the TSC for nanosecond clocks.

use core::sync::atomic::{AtomicU64, Ordering};

use crate::arch::cpu;

/// Timer interrupt frequency.
pub const TICK_HZ: u32 = 1000;

static TICKS: AtomicU64 = AtomicU64::new(0);
static TSC_KHZ: AtomicU64 = AtomicU64::new(0);
static BOOT_TSC: AtomicU64 = AtomicU64::new(0);
static LAST_TICK_TSC: AtomicU64 = AtomicU64::new(0);

/// Records the TSC frequency the VMM measured (0 if unknown).
pub fn init(tsc_khz: u64) {
    BOOT_TSC.store(cpu::rdtsc(), Ordering::Relaxed);
    TSC_KHZ.store(tsc_khz, Ordering::Relaxed);
}

/// Called on every timer interrupt.
///
/// KVM's PIT replays ticks the guest missed while interrupts were off, back to back; a
/// tick less than half a period after the previous one is such a replay and is dropped
/// (QEMU's "discard" lost-tick policy, done in the guest).
pub fn tick() {
    if let Some(khz) = tsc_khz() {
        let now = cpu::rdtsc();
        let half_period = khz * 1000 / TICK_HZ as u64 / 2;
        if now.wrapping_sub(LAST_TICK_TSC.load(Ordering::Relaxed)) < half_period {
            return;
        }
        LAST_TICK_TSC.store(now, Ordering::Relaxed);
    }
    TICKS.fetch_add(1, Ordering::Relaxed);
}

/// Timer interrupts since boot.
pub fn ticks() -> u64 {
    TICKS.load(Ordering::Relaxed)
}

/// TSC frequency in kHz, if known.
pub fn tsc_khz() -> Option<u64> {
    match TSC_KHZ.load(Ordering::Relaxed) {
        0 => None,
        khz => Some(khz),
    }
}

/// Nanoseconds since boot: from the TSC when its frequency is known, else from ticks.
pub fn monotonic_ns() -> u64 {
    match tsc_khz() {
        Some(khz) => {
            let cycles = cpu::rdtsc().wrapping_sub(BOOT_TSC.load(Ordering::Relaxed));
            (cycles as u128 * 1_000_000 / khz as u128) as u64
        }
        None => ticks() * (1_000_000_000 / TICK_HZ as u64),
    }
}

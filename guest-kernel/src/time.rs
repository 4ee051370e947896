//! Time: PIT ticks for scheduling, the TSC for nanosecond clocks.

use core::sync::atomic::{AtomicU64, Ordering};

use crate::arch::cpu;

/// Timer interrupt frequency.
pub const TICK_HZ: u32 = 1000;

static TICKS: AtomicU64 = AtomicU64::new(0);
static TSC_KHZ: AtomicU64 = AtomicU64::new(0);
static BOOT_TSC: AtomicU64 = AtomicU64::new(0);

/// Records the TSC frequency the VMM measured (0 if unknown).
pub fn init(tsc_khz: u64) {
    BOOT_TSC.store(cpu::rdtsc(), Ordering::Relaxed);
    TSC_KHZ.store(tsc_khz, Ordering::Relaxed);
}

/// Called on every timer interrupt.
///
/// KVM's PIT replays the ticks the guest could not take while interrupts were off, so
/// over time the count matches elapsed periods, but replays can arrive in bursts. Clocks
/// therefore come from the TSC; ticks only pace the scheduler and wake the idle loop.
pub fn tick() {
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

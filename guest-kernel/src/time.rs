//! Time: PIT ticks for scheduling, the TSC for nanosecond clocks, the RTC for wall time.
//!
//! * Monotonic time is TSC cycles since boot scaled by the frequency the VMM measured
//!   (ticks of the 1000 Hz PIT when it is unknown).
//! * Wall time (`CLOCK_REALTIME`) is the host's clock read once at boot through the RTC
//!   device plus monotonic time since then; astra never steps it.
//! * Coarse clocks are the fine ones truncated to the tick (1 ms), so they never run
//!   ahead of them.
//! * CPU-time clocks count the time a thread held the CPU (the scheduler adds up each
//!   slice); a process's is the sum over its threads.
//!
//! The clock-id decoding and `timespec` arithmetic are pure and host-tested.

use core::sync::atomic::{AtomicU64, Ordering};

use crate::arch::cpu;
use crate::mm::uaccess::Pod;

/// Timer interrupt frequency.
pub const TICK_HZ: u32 = 1000;
/// Nanoseconds per second.
pub const NS_PER_SEC: u64 = 1_000_000_000;
/// Nanoseconds per timer tick.
pub const TICK_NS: u64 = NS_PER_SEC / TICK_HZ as u64;

static TICKS: AtomicU64 = AtomicU64::new(0);
static TSC_KHZ: AtomicU64 = AtomicU64::new(0);
static BOOT_TSC: AtomicU64 = AtomicU64::new(0);
/// Unix time in ns at monotonic time 0; [`WALL_UNKNOWN`] until the RTC is first read.
static WALL_AT_BOOT_NS: AtomicU64 = AtomicU64::new(WALL_UNKNOWN);
const WALL_UNKNOWN: u64 = u64::MAX;
/// How many times a sleeper halted the CPU (self-tests check that sleeping halts).
static SLEEP_HALTS: AtomicU64 = AtomicU64::new(0);

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
        None => ticks() * TICK_NS,
    }
}

/// Nanoseconds since the Unix epoch.
pub fn realtime_ns() -> u64 {
    wall_at_boot_ns().saturating_add(monotonic_ns())
}

/// Unix time in ns at monotonic time 0 (to turn wall-clock deadlines into monotonic
/// ones). The RTC device is asked on first use (a VM exit), not at boot; if it does not
/// answer, the epoch.
pub fn wall_at_boot_ns() -> u64 {
    match WALL_AT_BOOT_NS.load(Ordering::Relaxed) {
        WALL_UNKNOWN => {
            let wall = crate::drivers::rtc::unix_time_ns()
                .map_or(0, |ns| ns.saturating_sub(monotonic_ns()));
            WALL_AT_BOOT_NS.store(wall, Ordering::Relaxed);
            wall
        }
        wall => wall,
    }
}

/// Resolution of the fine clocks in ns: 1 with a TSC of known frequency, else a tick.
pub fn fine_resolution_ns() -> u64 {
    if tsc_khz().is_some() {
        1
    } else {
        TICK_NS
    }
}

/// Counts a halt of the idle CPU (self-tests check that sleeping halts rather than
/// spins).
pub fn note_idle_halt() {
    SLEEP_HALTS.fetch_add(1, Ordering::Relaxed);
}

/// How many times the idle CPU halted since boot.
pub fn sleep_halts() -> u64 {
    SLEEP_HALTS.load(Ordering::Relaxed)
}

/// CPU time used by a thread and by its whole process, in ns.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuTimes {
    /// The calling thread's.
    pub thread_ns: u64,
    /// Its process's (every thread, live and exited).
    pub process_ns: u64,
}

/// Linux `struct timespec` (64-bit).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Timespec {
    /// Seconds.
    pub sec: i64,
    /// Nanoseconds, 0..1e9 when valid.
    pub nsec: i64,
}

// SAFETY: two i64 fields, no padding, every bit pattern is a value (validity is checked
// separately).
unsafe impl Pod for Timespec {}

impl Timespec {
    /// The timespec of `ns` nanoseconds.
    pub fn from_ns(ns: u64) -> Self {
        Timespec {
            sec: (ns / NS_PER_SEC) as i64,
            nsec: (ns % NS_PER_SEC) as i64,
        }
    }

    /// True for a non-negative time with nanoseconds below one second (Linux's
    /// `timespec64_valid`).
    pub fn is_valid(&self) -> bool {
        self.sec >= 0 && (0..NS_PER_SEC as i64).contains(&self.nsec)
    }

    /// Nanoseconds, saturating at `u64::MAX` (an effectively infinite time); `None` if
    /// invalid.
    pub fn to_ns(&self) -> Option<u64> {
        if !self.is_valid() {
            return None;
        }
        Some(
            (self.sec as u64)
                .saturating_mul(NS_PER_SEC)
                .saturating_add(self.nsec as u64),
        )
    }
}

/// Linux `struct timeval`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Timeval {
    /// Seconds.
    pub sec: i64,
    /// Microseconds.
    pub usec: i64,
}

// SAFETY: two i64 fields, no padding.
unsafe impl Pod for Timeval {}

impl Timeval {
    /// The timeval of `ns` nanoseconds (truncated to microseconds).
    pub fn from_ns(ns: u64) -> Self {
        Timeval {
            sec: (ns / NS_PER_SEC) as i64,
            usec: ((ns % NS_PER_SEC) / 1000) as i64,
        }
    }
}

/// A clock a process names by `clockid_t`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Clock {
    /// Wall time (`CLOCK_REALTIME`, also `_ALARM` and `CLOCK_TAI`, whose offset is 0).
    Realtime,
    /// `CLOCK_REALTIME_COARSE`.
    RealtimeCoarse,
    /// Time since boot (`CLOCK_MONOTONIC`, `_RAW`, `CLOCK_BOOTTIME`, `_ALARM`: astra
    /// neither slews nor suspends, so they are one clock).
    Monotonic,
    /// `CLOCK_MONOTONIC_COARSE`.
    MonotonicCoarse,
    /// CPU time of the process (`CLOCK_PROCESS_CPUTIME_ID` or a process CPU clock id
    /// for pid 0 or the caller's pid).
    ProcessCpu,
    /// CPU time of the thread (`CLOCK_THREAD_CPUTIME_ID` or a thread CPU clock id).
    ThreadCpu,
}

/// Linux clock ids.
pub mod clock_id {
    /// `CLOCK_REALTIME`.
    pub const REALTIME: i32 = 0;
    /// `CLOCK_MONOTONIC`.
    pub const MONOTONIC: i32 = 1;
    /// `CLOCK_PROCESS_CPUTIME_ID`.
    pub const PROCESS_CPUTIME_ID: i32 = 2;
    /// `CLOCK_THREAD_CPUTIME_ID`.
    pub const THREAD_CPUTIME_ID: i32 = 3;
    /// `CLOCK_MONOTONIC_RAW`.
    pub const MONOTONIC_RAW: i32 = 4;
    /// `CLOCK_REALTIME_COARSE`.
    pub const REALTIME_COARSE: i32 = 5;
    /// `CLOCK_MONOTONIC_COARSE`.
    pub const MONOTONIC_COARSE: i32 = 6;
    /// `CLOCK_BOOTTIME`.
    pub const BOOTTIME: i32 = 7;
    /// `CLOCK_REALTIME_ALARM`.
    pub const REALTIME_ALARM: i32 = 8;
    /// `CLOCK_BOOTTIME_ALARM`.
    pub const BOOTTIME_ALARM: i32 = 9;
    /// `CLOCK_TAI`.
    pub const TAI: i32 = 11;
}

impl Clock {
    /// Decodes a clock id for a process with id `self_pid` (which is also its only
    /// thread's id); `None` (EINVAL) for unknown ids and for CPU clocks of other
    /// processes.
    ///
    /// Negative ids are Linux's dynamic CPU clocks: `(~pid << 3) | thread << 2 | which`
    /// with `which` 0 (PROF), 1 (VIRT) or 2 (SCHED); `which` 3 is invalid and the low
    /// bits 0b111 mean a clock file descriptor, which astra does not have.
    pub fn from_id(id: i32, self_pid: u32) -> Option<Clock> {
        use clock_id::*;
        if id < 0 {
            let which = id & 3;
            if which == 3 {
                return None;
            }
            let pid = !(id >> 3);
            if pid != 0 && pid as u32 != self_pid {
                return None;
            }
            return Some(if id & 4 != 0 {
                Clock::ThreadCpu
            } else {
                Clock::ProcessCpu
            });
        }
        Some(match id {
            REALTIME | REALTIME_ALARM | TAI => Clock::Realtime,
            REALTIME_COARSE => Clock::RealtimeCoarse,
            MONOTONIC | MONOTONIC_RAW | BOOTTIME | BOOTTIME_ALARM => Clock::Monotonic,
            MONOTONIC_COARSE => Clock::MonotonicCoarse,
            PROCESS_CPUTIME_ID => Clock::ProcessCpu,
            THREAD_CPUTIME_ID => Clock::ThreadCpu,
            _ => return None,
        })
    }

    /// The clock's resolution, given the resolution of the fine clocks.
    pub fn resolution_ns(self, fine_ns: u64) -> u64 {
        match self {
            Clock::RealtimeCoarse | Clock::MonotonicCoarse => TICK_NS,
            _ => fine_ns,
        }
    }

    /// True for the CPU-time clocks.
    pub fn is_cpu_time(self) -> bool {
        matches!(self, Clock::ProcessCpu | Clock::ThreadCpu)
    }
}

/// False for the clock ids Linux has no sleep for: `CLOCK_MONOTONIC_RAW` and the coarse
/// clocks.
pub fn can_sleep_on(id: i32) -> bool {
    !matches!(
        id,
        clock_id::MONOTONIC_RAW | clock_id::REALTIME_COARSE | clock_id::MONOTONIC_COARSE
    )
}

/// Truncates a time to the tick, as the coarse clocks report it.
pub fn coarse(ns: u64) -> u64 {
    ns - ns % TICK_NS
}

/// Reads `clock` for a thread whose CPU times are `cpu`.
pub fn read_clock(clock: Clock, cpu: CpuTimes) -> u64 {
    match clock {
        Clock::Realtime => realtime_ns(),
        Clock::RealtimeCoarse => coarse(realtime_ns()),
        Clock::Monotonic => monotonic_ns(),
        Clock::MonotonicCoarse => coarse(monotonic_ns()),
        Clock::ProcessCpu => cpu.process_ns,
        Clock::ThreadCpu => cpu.thread_ns,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timespec_validation_matches_linux() {
        assert!(Timespec { sec: 0, nsec: 0 }.is_valid());
        assert!(Timespec {
            sec: 5,
            nsec: 999_999_999
        }
        .is_valid());
        assert!(!Timespec {
            sec: 0,
            nsec: 1_000_000_000
        }
        .is_valid());
        assert!(!Timespec { sec: -1, nsec: 0 }.is_valid());
        assert!(!Timespec { sec: 0, nsec: -1 }.is_valid());
        assert_eq!(Timespec { sec: 0, nsec: -1 }.to_ns(), None);
    }

    #[test]
    fn timespec_conversions() {
        let t = Timespec::from_ns(3_000_000_007);
        assert_eq!(t, Timespec { sec: 3, nsec: 7 });
        assert_eq!(t.to_ns(), Some(3_000_000_007));
        assert_eq!(
            Timespec {
                sec: i64::MAX,
                nsec: 0
            }
            .to_ns(),
            Some(u64::MAX)
        );
        assert_eq!(
            Timeval::from_ns(1_500_002_999),
            Timeval {
                sec: 1,
                usec: 500_002
            }
        );
        assert_eq!(coarse(12_345_678), 12_000_000);
    }

    #[test]
    fn clock_ids_decode_like_linux() {
        use clock_id::*;
        assert_eq!(Clock::from_id(REALTIME, 1), Some(Clock::Realtime));
        assert_eq!(Clock::from_id(TAI, 1), Some(Clock::Realtime));
        assert_eq!(Clock::from_id(BOOTTIME, 1), Some(Clock::Monotonic));
        assert_eq!(Clock::from_id(MONOTONIC_RAW, 1), Some(Clock::Monotonic));
        assert_eq!(
            Clock::from_id(MONOTONIC_COARSE, 1),
            Some(Clock::MonotonicCoarse)
        );
        assert_eq!(Clock::from_id(10, 1), None);
        assert_eq!(Clock::from_id(12, 1), None);
        // clock_getcpuclockid(pid): (~pid << 3) | 2; pthread_getcpuclockid: | 4 | 2.
        let process_clock = |pid: i32| (!pid << 3) | 2;
        assert_eq!(Clock::from_id(process_clock(7), 7), Some(Clock::ProcessCpu));
        assert_eq!(Clock::from_id(process_clock(0), 7), Some(Clock::ProcessCpu));
        assert_eq!(Clock::from_id(process_clock(8), 7), None);
        assert_eq!(Clock::from_id((!7 << 3) | 4 | 2, 7), Some(Clock::ThreadCpu));
        assert_eq!(Clock::from_id((!7 << 3) | 3, 7), None);
        assert_eq!(Clock::from_id(-1, 7), None, "clock fd ids are invalid");
    }

    #[test]
    fn raw_and_coarse_clocks_cannot_be_slept_on() {
        use clock_id::*;
        assert!(can_sleep_on(REALTIME) && can_sleep_on(MONOTONIC) && can_sleep_on(BOOTTIME));
        assert!(!can_sleep_on(MONOTONIC_RAW));
        assert!(!can_sleep_on(MONOTONIC_COARSE) && !can_sleep_on(REALTIME_COARSE));
    }

    #[test]
    fn resolutions() {
        assert_eq!(Clock::Monotonic.resolution_ns(1), 1);
        assert_eq!(Clock::MonotonicCoarse.resolution_ns(1), 1_000_000);
        assert_eq!(Clock::Realtime.resolution_ns(TICK_NS), TICK_NS);
    }

    #[test]
    fn cpu_clocks_read_the_thread_or_the_process_time() {
        let cpu = CpuTimes {
            thread_ns: 70,
            process_ns: 250,
        };
        assert_eq!(read_clock(Clock::ThreadCpu, cpu), 70);
        assert_eq!(read_clock(Clock::ProcessCpu, cpu), 250);
    }
}

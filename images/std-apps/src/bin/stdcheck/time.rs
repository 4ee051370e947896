//! `std::time`: the monotonic clock, the wall clock and sleeping.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use astra_std_apps::checks::{ensure, CheckResult, Checks};

/// 2020-01-01T00:00:00Z: a wall clock before this is not set.
const YEAR_2020: u64 = 1_577_836_800;
/// 2100-01-01T00:00:00Z: a wall clock after this is broken.
const YEAR_2100: u64 = 4_102_444_800;
/// Successive clock readings checked for going backwards.
const READINGS: u32 = 1000;
/// How long the sleep check sleeps.
const SLEEP: Duration = Duration::from_millis(10);

/// Runs the clock checks.
pub fn run(checks: &mut Checks<impl std::io::Write>) {
    checks.run("time_instant_monotonic", instant);
    checks.run("time_system_after_2020", system);
    checks.run("time_sleep_10ms", sleep);
}

fn instant() -> CheckResult {
    let start = Instant::now();
    let mut last = start;
    for i in 0..READINGS {
        let now = Instant::now();
        ensure(now >= last, || format!("reading {i} went backwards"))?;
        last = now;
    }
    // Some work between two readings must show as elapsed time.
    let mut acc = 0u64;
    while start.elapsed() == Duration::ZERO {
        acc = std::hint::black_box(acc.wrapping_add(1));
        ensure(acc < 1 << 32, || "the clock never advances".into())?;
    }
    Ok(format!(
        "{READINGS} readings in {:?}",
        last.duration_since(start)
    ))
}

fn system() -> CheckResult {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|e| format!("the wall clock is before 1970: {e}"))?;
    ensure((YEAR_2020..YEAR_2100).contains(&now.as_secs()), || {
        format!(
            "{} s since the epoch is not between 2020 and 2100",
            now.as_secs()
        )
    })?;
    Ok(format!("{} s since the epoch", now.as_secs()))
}

fn sleep() -> CheckResult {
    let start = Instant::now();
    std::thread::sleep(SLEEP);
    let slept = start.elapsed();
    ensure(slept >= SLEEP, || {
        format!("sleep({SLEEP:?}) returned after {slept:?}")
    })?;
    Ok(format!("slept {:.2} ms", slept.as_secs_f64() * 1e3))
}

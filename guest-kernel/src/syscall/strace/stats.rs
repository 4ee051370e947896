//! `--stats`, kernel side: calls, errors and time per system call number, printed like
//! `strace -c` when the program ends.
//!
//! Counting is a few relaxed atomic adds per call and only happens when `astra.stats` is on;
//! the table is formatted with integer arithmetic (no floating point in the kernel).

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;
use core::sync::atomic::{AtomicU64, Ordering};

/// Numbers below this get a counter each; anything else is counted as one "other" row.
pub const COUNTED: usize = 512;

/// Laid out as [`hypercall_abi::StatsCounter`]: the VMM reads these when a run ends
/// without the program ending ([`publish`]).
#[repr(C)]
struct Counter {
    calls: AtomicU64,
    errors: AtomicU64,
    time_ns: AtomicU64,
}

const _: () = assert!(core::mem::size_of::<Counter>() as u64 == hypercall_abi::STATS_COUNTER_SIZE);

/// Capacity of the published names block.
const NAMES_CAPACITY: usize = 16 << 10;

/// The counters' names for the VMM, NUL-terminated in slot order (filled once).
static NAMES: spin::Mutex<[u8; NAMES_CAPACITY]> = spin::Mutex::new([0; NAMES_CAPACITY]);

/// Where the VMM finds the counters and their names: `(counters address, count, names
/// address, names length)`, kernel virtual addresses. `name(nr)` names numbers below
/// [`COUNTED`]; the last slot is every other number.
pub fn publish(name: impl Fn(u64) -> String) -> (u64, u32, u64, u64) {
    let mut names = NAMES.lock();
    let mut len = 0;
    for nr in 0..=COUNTED {
        let text = if nr < COUNTED {
            name(nr as u64)
        } else {
            String::from("(numbers >= 512)")
        };
        let end = len + text.len() + 1;
        if end > NAMES_CAPACITY {
            break;
        }
        names[len..end - 1].copy_from_slice(text.as_bytes());
        names[end - 1] = 0;
        len = end;
    }
    (
        COUNTERS.as_ptr() as u64,
        COUNTERS.len() as u32,
        names.as_ptr() as u64,
        len as u64,
    )
}

impl Counter {
    const fn new() -> Self {
        Counter {
            calls: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            time_ns: AtomicU64::new(0),
        }
    }
}

/// One slot per counted number, plus the last one for every other number.
static COUNTERS: [Counter; COUNTED + 1] = [const { Counter::new() }; COUNTED + 1];

/// Records one call of `nr` that took `time_ns` and failed if `failed`.
pub fn record(nr: u64, failed: bool, time_ns: u64) {
    let slot = &COUNTERS[(nr as usize).min(COUNTED)];
    slot.calls.fetch_add(1, Ordering::Relaxed);
    if failed {
        slot.errors.fetch_add(1, Ordering::Relaxed);
    }
    slot.time_ns.fetch_add(time_ns, Ordering::Relaxed);
}

/// One line of the table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    /// System call name.
    pub name: String,
    /// Number of calls.
    pub calls: u64,
    /// How many failed.
    pub errors: u64,
    /// Time in the handler, nanoseconds.
    pub time_ns: u64,
}

/// The recorded counts, one row per number called; `name(nr)` names numbers below
/// [`COUNTED`], the rest share one row.
pub fn rows(name: impl Fn(u64) -> String) -> Vec<Row> {
    let mut rows = Vec::new();
    for (nr, c) in COUNTERS.iter().enumerate() {
        let calls = c.calls.load(Ordering::Relaxed);
        if calls == 0 {
            continue;
        }
        rows.push(Row {
            name: if nr < COUNTED {
                name(nr as u64)
            } else {
                String::from("(numbers >= 512)")
            },
            calls,
            errors: c.errors.load(Ordering::Relaxed),
            time_ns: c.time_ns.load(Ordering::Relaxed),
        });
    }
    rows
}

const HEADER: &str = "% time     seconds  usecs/call     calls    errors syscall\n";
const RULE: &str = "------ ----------- ----------- --------- --------- ----------------\n";

/// Appends one table line: `%6.2f %11.6f %11lu %9u %9.u %s` in strace's terms.
fn line(out: &mut String, row: &Row, total_ns: u64) {
    let hundredths = (row.time_ns as u128 * 10_000)
        .checked_div(total_ns as u128)
        .unwrap_or(0);
    let mut percent = String::new();
    let _ = write!(percent, "{}.{:02}", hundredths / 100, hundredths % 100);
    let mut seconds = String::new();
    let _ = write!(
        seconds,
        "{}.{:06}",
        row.time_ns / 1_000_000_000,
        row.time_ns / 1000 % 1_000_000
    );
    let usecs_per_call = (row.time_ns / 1000).checked_div(row.calls).unwrap_or(0);
    let _ = write!(
        out,
        "{percent:>6} {seconds:>11} {usecs_per_call:>11} {:>9} ",
        row.calls
    );
    if row.errors == 0 {
        out.push_str("         ");
    } else {
        let _ = write!(out, "{:>9}", row.errors);
    }
    let _ = writeln!(out, " {}", row.name);
}

/// The `strace -c` table: rows by time spent, then by calls, then by name; a total line.
pub fn render(mut rows: Vec<Row>) -> String {
    rows.sort_by(|a, b| {
        b.time_ns
            .cmp(&a.time_ns)
            .then(b.calls.cmp(&a.calls))
            .then(a.name.cmp(&b.name))
    });
    let total = Row {
        name: String::from("total"),
        calls: rows.iter().map(|r| r.calls).sum(),
        errors: rows.iter().map(|r| r.errors).sum(),
        time_ns: rows.iter().map(|r| r.time_ns).sum(),
    };
    let mut out = String::from(HEADER);
    out.push_str(RULE);
    for row in &rows {
        line(&mut out, row, total.time_ns);
    }
    out.push_str(RULE);
    line(&mut out, &total, total.time_ns);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, calls: u64, errors: u64, time_ns: u64) -> Row {
        Row {
            name: name.into(),
            calls,
            errors,
            time_ns,
        }
    }

    #[test]
    fn renders_like_strace_c() {
        let table = render(alloc::vec![
            row("getpid", 3, 0, 3_000),
            row("write", 2, 0, 40_000),
            row("syscall_0x1b6", 1, 1, 7_000),
        ]);
        let expected = "\
% time     seconds  usecs/call     calls    errors syscall
------ ----------- ----------- --------- --------- ----------------
 80.00    0.000040          20         2           write
 14.00    0.000007           7         1         1 syscall_0x1b6
  6.00    0.000003           1         3           getpid
------ ----------- ----------- --------- --------- ----------------
100.00    0.000050           8         6         1 total
";
        assert_eq!(table, expected);
    }

    #[test]
    fn zero_time_and_long_runs_do_not_divide_by_zero() {
        let table = render(alloc::vec![row("exit_group", 1, 0, 0)]);
        assert!(table.contains("  0.00    0.000000           0         1           exit_group"));
        let table = render(alloc::vec![row("read", 1, 0, 12_345_678_901)]);
        assert!(table.contains("100.00   12.345678    12345678         1           read"));
        let table = render(Vec::new());
        assert!(table.ends_with("  0.00    0.000000           0         0           total\n"));
    }

    #[test]
    fn counters_record_calls_errors_and_time() {
        // Numbers far from anything else a host test records.
        record(500, false, 10);
        record(500, true, 20);
        record(1 << 40, true, 5);
        let rows = rows(|nr| alloc::format!("nr{nr}"));
        let r500 = rows.iter().find(|r| r.name == "nr500").unwrap();
        assert_eq!((r500.calls, r500.errors, r500.time_ns), (2, 1, 30));
        let other = rows
            .iter()
            .find(|r| r.name.starts_with("(numbers"))
            .unwrap();
        assert_eq!((other.calls, other.errors), (1, 1));
    }
}

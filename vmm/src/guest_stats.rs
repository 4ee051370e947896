//! The kernel's `--stats` system-call counters, read from guest memory when a run ends
//! without the program ending (`--timeout`, SIGINT, SIGTERM), when the kernel never got to
//! print its table.
//!
//! The kernel publishes where they are in the `stats_*` fields of the [`BootInfo`] at boot.
//! Everything read is the guest's: counts and lengths are bounded
//! ([`STATS_COUNTERS_MAX`], [`STATS_NAMES_MAX`]) and read through vm-memory's checked
//! accessors, so a lying guest gets a wrong table, never a VMM failure.

use std::fmt::Write;

use hypercall_abi::{BootInfo, STATS_COUNTERS_MAX, STATS_COUNTER_SIZE, STATS_NAMES_MAX};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

/// One counted system call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    /// Its name.
    pub name: String,
    /// Calls made.
    pub calls: u64,
    /// Calls that failed.
    pub errors: u64,
    /// Nanoseconds spent in it.
    pub time_ns: u64,
}

/// The counters `info` points at, rows with calls only; `None` when the kernel published
/// none or they are not in guest memory.
pub fn read(mem: &GuestMemoryMmap, info: &BootInfo) -> Option<Vec<Row>> {
    if info.stats_count == 0 || info.stats_count > STATS_COUNTERS_MAX {
        return None;
    }
    let len = u64::from(info.stats_count) * STATS_COUNTER_SIZE;
    let mut counters = vec![0u8; len as usize];
    mem.read_slice(&mut counters, GuestAddress(info.stats_counters_gpa.0))
        .ok()?;
    let names_len = info.stats_names_len.min(STATS_NAMES_MAX) as usize;
    let mut names = vec![0u8; names_len];
    mem.read_slice(&mut names, GuestAddress(info.stats_names_gpa.0))
        .ok()?;
    Some(rows(&counters, &names))
}

/// Rows from raw counters (24-byte little-endian triples) and NUL-separated names.
pub fn rows(counters: &[u8], names: &[u8]) -> Vec<Row> {
    let names: Vec<String> = names
        .split(|&b| b == 0)
        .map(|n| String::from_utf8_lossy(n).into_owned())
        .collect();
    counters
        .chunks_exact(STATS_COUNTER_SIZE as usize)
        .enumerate()
        .filter_map(|(slot, c)| {
            let word =
                |i: usize| u64::from_le_bytes(c[i * 8..i * 8 + 8].try_into().unwrap_or([0; 8]));
            let calls = word(0);
            (calls > 0).then(|| Row {
                name: names
                    .get(slot)
                    .filter(|n| !n.is_empty())
                    .cloned()
                    .unwrap_or_else(|| format!("syscall_{slot:#x}")),
                calls,
                errors: word(1),
                time_ns: word(2),
            })
        })
        .collect()
}

/// The `strace -c` table the kernel prints, for these rows.
pub fn render(mut rows: Vec<Row>) -> String {
    rows.sort_by(|a, b| {
        b.time_ns
            .cmp(&a.time_ns)
            .then(b.calls.cmp(&a.calls))
            .then(a.name.cmp(&b.name))
    });
    let total = Row {
        name: "total".into(),
        calls: rows.iter().map(|r| r.calls).fold(0, u64::saturating_add),
        errors: rows.iter().map(|r| r.errors).fold(0, u64::saturating_add),
        time_ns: rows.iter().map(|r| r.time_ns).fold(0, u64::saturating_add),
    };
    const RULE: &str = "------ ----------- ----------- --------- --------- ----------------\n";
    let mut out = String::from("% time     seconds  usecs/call     calls    errors syscall\n");
    out.push_str(RULE);
    for row in &rows {
        line(&mut out, row, total.time_ns);
    }
    out.push_str(RULE);
    line(&mut out, &total, total.time_ns);
    out
}

fn line(out: &mut String, row: &Row, total_ns: u64) {
    let hundredths = (u128::from(row.time_ns) * 10_000)
        .checked_div(u128::from(total_ns))
        .unwrap_or(0);
    let percent = format!("{}.{:02}", hundredths / 100, hundredths % 100);
    let seconds = format!(
        "{}.{:06}",
        row.time_ns / 1_000_000_000,
        row.time_ns / 1000 % 1_000_000
    );
    let per_call = (row.time_ns / 1000).checked_div(row.calls).unwrap_or(0);
    let _ = write!(
        out,
        "{percent:>6} {seconds:>11} {per_call:>11} {:>9} ",
        row.calls
    );
    if row.errors == 0 {
        out.push_str("         ");
    } else {
        let _ = write!(out, "{:>9}", row.errors);
    }
    let _ = writeln!(out, " {}", row.name);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counter(calls: u64, errors: u64, time_ns: u64) -> Vec<u8> {
        [calls, errors, time_ns]
            .iter()
            .flat_map(|w| w.to_le_bytes())
            .collect()
    }

    #[test]
    fn renders_like_the_kernel() {
        let counters = [
            counter(0, 0, 0),
            counter(2, 0, 40_000),
            counter(3, 0, 3_000),
            counter(1, 1, 7_000),
        ]
        .concat();
        let table = render(rows(&counters, b"read\0write\0getpid\0\0"));
        let expected = "\
% time     seconds  usecs/call     calls    errors syscall
------ ----------- ----------- --------- --------- ----------------
 80.00    0.000040          20         2           write
 14.00    0.000007           7         1         1 syscall_0x3
  6.00    0.000003           1         3           getpid
------ ----------- ----------- --------- --------- ----------------
100.00    0.000050           8         6         1 total
";
        assert_eq!(table, expected);
    }

    #[test]
    fn a_lying_guest_gets_nothing_or_a_wrong_table() {
        let mem = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 1 << 20)]).unwrap();
        let mut info = BootInfo {
            stats_count: STATS_COUNTERS_MAX + 1,
            ..Default::default()
        };
        assert_eq!(read(&mem, &info), None);
        info.stats_count = 4;
        info.stats_counters_gpa = hypercall_abi::GuestPhysAddr(u64::MAX - 8);
        assert_eq!(read(&mem, &info), None);
        info.stats_counters_gpa = hypercall_abi::GuestPhysAddr(0x1000);
        info.stats_names_gpa = hypercall_abi::GuestPhysAddr(2 << 20);
        info.stats_names_len = 10;
        assert_eq!(read(&mem, &info), None);
        info.stats_names_len = u64::MAX;
        info.stats_names_gpa = hypercall_abi::GuestPhysAddr(0x2000);
        mem.write_slice(&counter(5, 0, 10), GuestAddress(0x1000))
            .unwrap();
        let rows = read(&mem, &info).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!((rows[0].calls, rows[0].name.as_str()), (5, "syscall_0x0"));
    }
}

//! Statistics and formatting for the benchmark runner (`astra-bench`), kept here so plain
//! `cargo test` covers them.

use std::collections::BTreeMap;
use std::time::Duration;

/// The `p`-th percentile (0..=100) of `samples`, interpolating linearly between the closest
/// ranks (numpy's default); `None` for no samples.
pub fn percentile(samples: &[f64], p: f64) -> Option<f64> {
    if samples.is_empty() || !(0.0..=100.0).contains(&p) {
        return None;
    }
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = p / 100.0 * (sorted.len() - 1) as f64;
    let low = rank.floor() as usize;
    let high = rank.ceil() as usize;
    Some(sorted[low] + (sorted[high] - sorted[low]) * (rank - low as f64))
}

/// The median of `samples`.
pub fn median(samples: &[f64]) -> Option<f64> {
    percentile(samples, 50.0)
}

/// Median and spread of a set of measurements.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Summary {
    /// Number of samples.
    pub count: usize,
    /// 10th percentile.
    pub p10: f64,
    /// Median.
    pub median: f64,
    /// 90th percentile.
    pub p90: f64,
}

impl Summary {
    /// Summarizes `samples`; `None` for no samples.
    pub fn of(samples: &[f64]) -> Option<Self> {
        Some(Summary {
            count: samples.len(),
            p10: percentile(samples, 10.0)?,
            median: median(samples)?,
            p90: percentile(samples, 90.0)?,
        })
    }

    /// Summarizes durations in milliseconds.
    pub fn of_durations_ms(samples: &[Duration]) -> Option<Self> {
        let ms: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1e3).collect();
        Self::of(&ms)
    }
}

/// `value / baseline`, or `None` if the baseline is not positive.
pub fn ratio(value: f64, baseline: f64) -> Option<f64> {
    (baseline > 0.0 && value.is_finite()).then(|| value / baseline)
}

/// A ratio checked against an upper bound, as a table cell: `1.12x (target <= 1.30x: met)`.
pub fn ratio_verdict(ratio: Option<f64>, target: f64) -> String {
    match ratio {
        Some(r) if r <= target => format!("{r:.2}x (target <= {target:.2}x: met)"),
        Some(r) => format!("{r:.2}x (target <= {target:.2}x: MISSED)"),
        None => format!("n/a (target <= {target:.2}x)"),
    }
}

/// The `bench <name> cycles=<n>` lines of a console log, by name. Anything before `bench`
/// on the line (a log prefix) is ignored; a later line with the same name wins.
pub fn parse_bench_lines(console: &str) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for line in console.lines() {
        let mut words = line.split_whitespace().skip_while(|w| *w != "bench");
        if words.next().is_none() {
            continue;
        }
        let Some(name) = words.next() else { continue };
        let valid_name = name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        let cycles = words.find_map(|w| w.strip_prefix("cycles=")?.parse::<u64>().ok());
        if let (true, Some(cycles)) = (valid_name, cycles) {
            out.insert(name.to_string(), cycles);
        }
    }
    out
}

/// A plain-text table with left-aligned columns.
#[derive(Clone, Debug, Default)]
pub struct Table {
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with the given header row.
    pub fn new<S: AsRef<str>>(header: &[S]) -> Self {
        let mut table = Table::default();
        table.row(header);
        table
    }

    /// Appends a row.
    pub fn row<S: AsRef<str>>(&mut self, cells: &[S]) {
        self.rows
            .push(cells.iter().map(|c| c.as_ref().to_string()).collect());
    }

    /// The table, a rule under the header, two spaces between columns.
    pub fn render(&self) -> String {
        let columns = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let widths: Vec<usize> = (0..columns)
            .map(|c| {
                self.rows
                    .iter()
                    .filter_map(|r| r.get(c))
                    .map(|cell| cell.chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut out = String::new();
        for (index, row) in self.rows.iter().enumerate() {
            let mut line = String::new();
            for (c, cell) in row.iter().enumerate() {
                if c > 0 {
                    line.push_str("  ");
                }
                line.push_str(&format!("{cell:<width$}", width = widths[c]));
            }
            out.push_str(line.trim_end());
            out.push('\n');
            if index == 0 {
                let total = widths.iter().sum::<usize>() + 2 * columns.saturating_sub(1);
                out.push_str(&"-".repeat(total));
                out.push('\n');
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_interpolate_between_ranks() {
        let samples = [5.0, 1.0, 4.0, 2.0, 3.0];
        assert_eq!(median(&samples), Some(3.0));
        assert_eq!(percentile(&samples, 0.0), Some(1.0));
        assert_eq!(percentile(&samples, 100.0), Some(5.0));
        assert_eq!(percentile(&samples, 10.0), Some(1.4));
        assert_eq!(median(&[1.0, 2.0, 3.0, 10.0]), Some(2.5));
        assert_eq!(median(&[7.0]), Some(7.0));
        assert_eq!(median(&[]), None);
        assert_eq!(percentile(&samples, 101.0), None);
    }

    #[test]
    fn summary_of_durations_is_in_milliseconds() {
        let samples: Vec<Duration> = (1..=11).map(Duration::from_millis).collect();
        let s = Summary::of_durations_ms(&samples).unwrap();
        assert_eq!(s.count, 11);
        assert!((s.median - 6.0).abs() < 1e-9);
        assert!((s.p10 - 2.0).abs() < 1e-9);
        assert!((s.p90 - 10.0).abs() < 1e-9);
        assert_eq!(Summary::of(&[]), None);
    }

    #[test]
    fn ratios_and_verdicts() {
        assert_eq!(ratio(12.0, 10.0), Some(1.2));
        assert_eq!(ratio(1.0, 0.0), None);
        assert_eq!(
            ratio_verdict(Some(1.12), 1.3),
            "1.12x (target <= 1.30x: met)"
        );
        assert_eq!(
            ratio_verdict(Some(1.5), 1.2),
            "1.50x (target <= 1.20x: MISSED)"
        );
        assert_eq!(ratio_verdict(None, 1.2), "n/a (target <= 1.20x)");
    }

    #[test]
    fn bench_lines_are_parsed_by_name() {
        let console = "\
astra kernel booting
bench syscall_getpid cycles=77000
[    0.010] bench int80_getpid cycles=86000 runs=1000
bench trap_floor cycles=70000
bench broken cycles=abc
bench
benchmarks are fun cycles=5
bench bad-name cycles=1
bench trap_floor cycles=71000
";
        let lines = parse_bench_lines(console);
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert_eq!(lines["syscall_getpid"], 77000);
        assert_eq!(lines["int80_getpid"], 86000);
        assert_eq!(lines["trap_floor"], 71000);
        assert!(parse_bench_lines("").is_empty());
    }

    #[test]
    fn tables_align_columns() {
        let mut table = Table::new(&["what", "median"]);
        table.row(&["boot", "12.5 ms"]);
        table.row(&["a longer name", "1 ms"]);
        assert_eq!(
            table.render(),
            "what           median\n\
             ----------------------\n\
             boot           12.5 ms\n\
             a longer name  1 ms\n"
        );
    }
}

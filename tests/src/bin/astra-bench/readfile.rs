//! The file-read benchmark: `readfile /data/64m.bin` (`std::fs::read`, then an FNV-1a
//! checksum) in astra from `build/bench.tar`, beside the host running the same `readfile`
//! binary on the same bytes, both extracted from that TAR, interleaved in the same run.
//!
//! Two views: the read as the program itself times it (`read_ns=`, the `std::fs::read`
//! call alone), and the whole run (VM boot + read + exit for astra, process start + read +
//! exit on the host). Both runs must report the same size and checksum.

use std::path::Path;

use astra_tests::linux::extract;
use astra_tests::stats::{ratio, Summary, Table};
use astra_tests::tempdir::TempDir;
use astra_tests::{shell_command, Workspace};

use super::{Cmd, BOOT_WALL_TIMEOUT, WARMUP_RUNS};

/// The benchmark image.
const BENCH_TAR: &str = "build/bench.tar";
/// The data file inside it.
const DATA_PATH: &str = "/data/64m.bin";
/// Its size.
const DATA_BYTES: u64 = 64 << 20;

/// What `readfile` prints: `readfile: PATH bytes=N fnv1a64=HEX read_ns=N`.
#[derive(Clone, Debug, PartialEq, Eq)]
struct ReadReport {
    bytes: u64,
    checksum: String,
    read_ns: u64,
}

/// The report line of `readfile`'s stdout, if there is a well-formed one.
fn parse_report(stdout: &str) -> Option<ReadReport> {
    let line = stdout.lines().find(|l| l.starts_with("readfile: "))?;
    let field = |key: &str| {
        line.split_whitespace()
            .find_map(|word| word.strip_prefix(key)?.strip_prefix('='))
    };
    Some(ReadReport {
        bytes: field("bytes")?.parse().ok()?,
        checksum: field("fnv1a64")
            .filter(|h| h.len() == 16 && h.chars().all(|c| c.is_ascii_hexdigit()))?
            .to_string(),
        read_ns: field("read_ns")?.parse().ok()?,
    })
}

/// One side's samples: in-program read times and whole-run times, in milliseconds.
#[derive(Default)]
struct Samples {
    read_ms: Vec<f64>,
    wall_ms: Vec<f64>,
    failure: Option<String>,
}

impl Samples {
    /// Runs `cmd` once; keeps the times if `keep`; checks the report against `reference`
    /// (the first one seen, by either side).
    fn take(&mut self, cmd: &Cmd, keep: bool, reference: &mut Option<ReadReport>) {
        if self.failure.is_some() {
            return;
        }
        let result = cmd.run(BOOT_WALL_TIMEOUT).and_then(|outcome| {
            let report = parse_report(&outcome.stdout).ok_or_else(|| {
                format!(
                    "`{}` printed no `readfile: ... bytes= fnv1a64= read_ns=` line\n{}",
                    cmd.shown,
                    outcome.report()
                )
            })?;
            if report.bytes != DATA_BYTES {
                return Err(format!(
                    "`{}` read {} bytes, expected {DATA_BYTES}",
                    cmd.shown, report.bytes
                ));
            }
            let expected = reference.get_or_insert_with(|| report.clone());
            if report.checksum != expected.checksum {
                return Err(format!(
                    "`{}` read different bytes: fnv1a64 {} where the other run saw {}",
                    cmd.shown, report.checksum, expected.checksum
                ));
            }
            Ok((report, outcome.elapsed))
        });
        match result {
            Ok((report, elapsed)) if keep => {
                self.read_ms.push(report.read_ns as f64 / 1e6);
                self.wall_ms.push(elapsed.as_secs_f64() * 1e3);
            }
            Ok(_) => {}
            Err(err) => self.failure = Some(err),
        }
    }
}

/// Runs the benchmark and prints its table; `Err` if a side could not be measured.
pub fn bench(ws: &Workspace, runs: usize) -> Result<(), String> {
    println!(
        "== file read: readfile {DATA_PATH} (std::fs::read, {} MiB), {runs} interleaved runs \
         each ==",
        DATA_BYTES >> 20
    );
    let not_measured = |message: String| {
        println!("not measured: {message}");
        "file read was not measured (see above)".to_string()
    };
    let guest = Cmd::new(
        ws,
        &format!("{}/astra-vmm", Workspace::bin_dir()),
        &[
            "--kernel",
            "build/guest.elf",
            "--rootfs",
            BENCH_TAR,
            "--",
            "/bin/readfile",
            DATA_PATH,
        ],
    )
    .map_err(|m| not_measured(format!("{m} (`make bench-image` builds {BENCH_TAR})")))?;
    let tar = ws.find_built(BENCH_TAR).map_err(not_measured)?;
    let extracted = TempDir::new("bench-readfile");
    extract(&tar, extracted.path()).map_err(not_measured)?;
    let host = host_cmd(extracted.path())?;
    println!(
        "reproduce: cd {} && {} ; tar -xf {BENCH_TAR} -C DIR && DIR/bin/readfile DIR{DATA_PATH}",
        ws.root.display(),
        guest.shown
    );

    let mut reference = None;
    let (mut host_samples, mut guest_samples) = (Samples::default(), Samples::default());
    for index in 0..WARMUP_RUNS + runs {
        let keep = index >= WARMUP_RUNS;
        host_samples.take(&host, keep, &mut reference);
        guest_samples.take(&guest, keep, &mut reference);
    }

    let mut table = Table::new(&["measurement", "runs", "p10 ms", "median ms", "p90 ms"]);
    let mut row = |label: &str, samples: &[f64], failed: bool| -> Option<f64> {
        match Summary::of(samples).filter(|_| !failed) {
            Some(s) => {
                table.row(&[
                    label.to_string(),
                    s.count.to_string(),
                    format!("{:.2}", s.p10),
                    format!("{:.2}", s.median),
                    format!("{:.2}", s.p90),
                ]);
                Some(s.median)
            }
            None => {
                table.row(&[label, "FAILED", "-", "-", "-"]);
                None
            }
        }
    };
    let (host_failed, guest_failed) = (
        host_samples.failure.is_some(),
        guest_samples.failure.is_some(),
    );
    let host_read = row(
        "host: std::fs::read in readfile",
        &host_samples.read_ms,
        host_failed,
    );
    let guest_read = row(
        "astra: std::fs::read in readfile",
        &guest_samples.read_ms,
        guest_failed,
    );
    let host_wall = row(
        "host: readfile process, start to exit",
        &host_samples.wall_ms,
        host_failed,
    );
    let guest_wall = row(
        "astra: astra-vmm, boot to exit",
        &guest_samples.wall_ms,
        guest_failed,
    );
    print!("{}", table.render());
    let mib = (DATA_BYTES >> 20) as f64;
    for (label, median) in [("host", host_read), ("astra", guest_read)] {
        if let Some(ms) = median.filter(|&ms| ms > 0.0) {
            println!("{label} read throughput: {:.0} MiB/s", mib / (ms / 1e3));
        }
    }
    let show = |r: Option<f64>| r.map_or("n/a".to_string(), |r| format!("{r:.2}x"));
    println!(
        "astra / host (medians): read {}, whole run {}",
        show(guest_read.zip(host_read).and_then(|(g, h)| ratio(g, h))),
        show(guest_wall.zip(host_wall).and_then(|(g, h)| ratio(g, h)))
    );
    if let Some(r) = &reference {
        println!("both read {} bytes, fnv1a64 {}", r.bytes, r.checksum);
    }
    let errors: Vec<String> = [host_samples.failure, guest_samples.failure]
        .into_iter()
        .flatten()
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        println!(
            "FAILED: {} side(s) could not be measured (details on stderr)",
            errors.len()
        );
        Err(errors.join("\n\n"))
    }
}

/// The host side: the extracted `readfile` on the extracted data file.
fn host_cmd(dir: &Path) -> Result<Cmd, String> {
    let program = dir.join("bin/readfile");
    let data = dir.join(DATA_PATH.trim_start_matches('/'));
    for needed in [&program, &data] {
        if !needed.is_file() {
            return Err(format!("{} is not in {BENCH_TAR}", needed.display()));
        }
    }
    let args = vec![data.display().to_string()];
    Ok(Cmd {
        shown: shell_command(&program, &args),
        program,
        args,
        expect_stdout: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_parse() {
        let out = "noise\nreadfile: /data/64m.bin bytes=67108864 fnv1a64=0123456789abcdef \
                   read_ns=12345678\n";
        assert_eq!(
            parse_report(out),
            Some(ReadReport {
                bytes: 67_108_864,
                checksum: "0123456789abcdef".into(),
                read_ns: 12_345_678,
            })
        );
        assert_eq!(
            parse_report("readfile: x bytes=1 fnv1a64=12 read_ns=1"),
            None
        );
        assert_eq!(parse_report("readfile: x bytes=1 read_ns=1"), None);
        assert_eq!(
            parse_report("bytes=1 fnv1a64=0123456789abcdef read_ns=1"),
            None
        );
        assert_eq!(
            parse_report("readfile: x bytes=-1 fnv1a64=0123456789abcdef read_ns=1"),
            None
        );
    }
}

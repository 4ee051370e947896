//! A std program run in astra beside the same binary on the host, interleaved: each run
//! prints `<prefix> <name> ns=<n>` lines (the median per operation of several rounds
//! inside the run); the table gives the median of those over the runs, and astra's ratio
//! to the host (lower is better). The thread and process benchmarks are made this way.

use std::collections::BTreeMap;

use astra_tests::stats::{ratio, Summary, Table};
use astra_tests::Workspace;

use super::{Cmd, SYSCALL_WALL_TIMEOUT};

/// What to run and what it measures.
pub struct Spec {
    /// The section's title.
    pub title: &'static str,
    /// The program's path in the image (`/bin/threadbench`).
    pub guest: &'static str,
    /// The same binary on the host, relative to the workspace.
    pub host: &'static str,
    /// The prefix of its measurement lines.
    pub prefix: &'static str,
    /// `astra-vmm` options before the program (more memory).
    pub options: &'static [&'static str],
    /// The measurements, in the order they are printed: (name, label).
    pub names: &'static [(&'static str, &'static str)],
    /// Targets in ns, shown beside the figures.
    pub targets: &'static [(&'static str, u64)],
}

fn parse(prefix: &str, stdout: &str) -> BTreeMap<String, u64> {
    stdout
        .lines()
        .filter_map(|l| {
            let rest = l.strip_prefix(prefix)?.strip_prefix(' ')?;
            let (name, ns) = rest.split_once(" ns=")?;
            Some((name.to_string(), ns.trim().parse().ok()?))
        })
        .collect()
}

/// Runs `spec`'s program `runs` times (at most 5) in each place and prints the table.
pub fn bench(ws: &Workspace, runs: usize, spec: &Spec) -> Result<(), String> {
    let runs = runs.clamp(1, 5);
    println!(
        "== {}: {}, astra vs the host, {runs} interleaved runs each ==",
        spec.title, spec.guest
    );
    let guest = super::astra_boot_with(ws, spec.options, spec.guest)?;
    let host = Cmd::new(ws, spec.host, &[])?;
    println!("reproduce: {} ; {}", guest.shown, host.shown);
    let mut samples: BTreeMap<(&str, bool), Vec<f64>> = BTreeMap::new();
    for _ in 0..runs {
        for (cmd, in_astra) in [(&host, false), (&guest, true)] {
            let outcome = cmd.run(SYSCALL_WALL_TIMEOUT)?;
            let got = parse(spec.prefix, &outcome.stdout);
            for (name, _) in spec.names {
                let ns = got.get(*name).ok_or_else(|| {
                    format!("`{}` printed no `{} {name}` line", cmd.shown, spec.prefix)
                })?;
                samples
                    .entry((name, in_astra))
                    .or_default()
                    .push(*ns as f64);
            }
        }
    }
    let mut table = Table::new(&["measurement", "host ns", "astra ns", "astra/host", "target"]);
    for (name, label) in spec.names {
        let median = |astra| {
            Summary::of(&samples[&(*name, astra)])
                .map(|s| s.median)
                .unwrap_or(f64::NAN)
        };
        let (h, a) = (median(false), median(true));
        let target = spec
            .targets
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, ns)| format!("< {} us", ns / 1000))
            .unwrap_or_else(|| "-".into());
        table.row(&[
            label.to_string(),
            format!("{h:.0}"),
            format!("{a:.0}"),
            ratio(a, h).map_or("-".into(), |r| format!("{r:.1}x")),
            target,
        ]);
    }
    print!("{}", table.render());
    Ok(())
}

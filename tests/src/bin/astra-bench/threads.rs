//! Thread costs: `/bin/threadbench` (an unmodified std program) in astra beside the same
//! binary on the host, interleaved. Each run prints `threadbench <name> ns=<n>` lines (the
//! median per operation of several rounds inside the run); the table gives the median of
//! those over the runs, and astra's ratio to the host (lower is better).

use std::collections::BTreeMap;

use astra_tests::stats::{ratio, Summary, Table};
use astra_tests::Workspace;

use super::{Cmd, SYSCALL_WALL_TIMEOUT};

/// The measurements, in the order they are printed.
const NAMES: [(&str, &str); 4] = [
    ("spawn_join", "thread spawn + join"),
    (
        "futex_ping_pong",
        "futex ping-pong round trip (Mutex + Condvar)",
    ),
    ("mutex_4_threads", "Mutex lock+unlock, 4 threads contending"),
    (
        "yield_switch",
        "context switch (two threads yielding in turn)",
    ),
];
/// The seeds' targets, in ns, shown beside the figures.
const TARGETS: [(&str, u64); 2] = [("spawn_join", 100_000), ("yield_switch", 5_000)];
const THREADBENCH: &str = "target/std-apps/x86_64-unknown-linux-musl/release/threadbench";

fn parse(stdout: &str) -> BTreeMap<String, u64> {
    stdout
        .lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("threadbench ")?;
            let (name, ns) = rest.split_once(" ns=")?;
            Some((name.to_string(), ns.trim().parse().ok()?))
        })
        .collect()
}

/// Runs the thread benchmark `runs` times in each place and prints the table.
pub fn bench(ws: &Workspace, runs: usize) -> Result<(), String> {
    let runs = runs.clamp(1, 5);
    println!("== threads: /bin/threadbench, astra vs the host, {runs} interleaved runs each ==");
    let guest = super::astra_boot(ws, "/bin/threadbench")?;
    let host = Cmd::new(ws, THREADBENCH, &[])?;
    println!("reproduce: {} ; {}", guest.shown, host.shown);
    let mut samples: BTreeMap<(&str, bool), Vec<f64>> = BTreeMap::new();
    for _ in 0..runs {
        for (cmd, in_astra) in [(&host, false), (&guest, true)] {
            let outcome = cmd.run(SYSCALL_WALL_TIMEOUT)?;
            let got = parse(&outcome.stdout);
            for (name, _) in NAMES {
                let ns = got.get(name).ok_or_else(|| {
                    format!("`{}` printed no `threadbench {name}` line", cmd.shown)
                })?;
                samples
                    .entry((name, in_astra))
                    .or_default()
                    .push(*ns as f64);
            }
        }
    }
    let mut table = Table::new(&["measurement", "host ns", "astra ns", "astra/host", "target"]);
    for (name, label) in NAMES {
        let median = |astra| {
            Summary::of(&samples[&(name, astra)])
                .map(|s| s.median)
                .unwrap_or(f64::NAN)
        };
        let (h, a) = (median(false), median(true));
        let target = TARGETS
            .iter()
            .find(|(n, _)| *n == name)
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

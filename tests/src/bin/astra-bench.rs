//! `make bench`: astra's headline costs against their floors on this machine's KVM.
//!
//! 1. Boot to exit: whole-process wall time of `astra-vmm ... -- /bin/true` (guest-std) and
//!    `-- /bin/hello-std` (an unmodified Rust std program) beside the bare-KVM floor
//!    `kvm-floor --mem 256M` (a minimal VMM that creates a VM with the same memory and exits
//!    through a port), interleaved so machine noise hits all alike.
//! 2. System-call round trip: the medians the guest kernel measures under
//!    `--cmdline astra.bench` (`bench <name> cycles=<n>` lines), against its trap floor;
//!    on PVM also beside `astra.pvm_features=0` (the entry code switching page tables
//!    instead of the host), interleaved.
//! 4. Threads (after the file read): spawn+join, futex ping-pong, Mutex contention and
//!    context switches of `/bin/threadbench` in astra beside the host (`astra-bench/threads.rs`).
//! 5. Processes: fork+exit+wait, fork+exec+wait, posix_spawn, pipe ping-pong between two
//!    processes and a 4-stage busybox pipeline over 16 MiB, `/bin/procbench` in astra beside
//!    the host (`astra-bench/procs.rs`).
//! 6. Files: 10,000 create+write+unlink, 256 MiB written and read, 10,000 stats and a
//!    20,000-entry walk, `/bin/fsbench` in astra's `/tmp` beside the host's `/dev/shm`
//!    (`astra-bench/files.rs`).
//! 3. File read: `readfile` (`std::fs::read` of a 64 MiB file) in astra, from
//!    `build/bench.tar`, beside the host running the same binary on the same bytes
//!    extracted from that TAR (see `astra-bench/readfile.rs`).
//!
//! Prints tables on stdout and writes no files. Exits non-zero if something could not be
//! measured (a run failed, a `bench` line is missing); missing a target is reported, not
//! an error.

#[path = "astra-bench/files.rs"]
mod files;
#[path = "astra-bench/procs.rs"]
mod procs;
#[path = "astra-bench/readfile.rs"]
mod readfile;
#[path = "astra-bench/threads.rs"]
mod threads;
#[path = "astra-bench/versus.rs"]
mod versus;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use astra_tests::stats::{parse_bench_lines, ratio, ratio_verdict, Summary, Table};
use astra_tests::{check_kvm_at, shell_command, try_run, Workspace};

/// Timed boot pairs; the brief asks for at least 20.
const DEFAULT_RUNS: usize = 20;
/// Untimed pairs first, so page cache and KVM module state are warm for both.
const WARMUP_RUNS: usize = 2;
/// Target: astra boot-to-exit at most this multiple of the bare-KVM floor.
const BOOT_TARGET: f64 = 1.3;
/// Target: a system call at most this multiple of the kernel's trap floor.
const SYSCALL_TARGET: f64 = 1.2;
/// Wall timeout of one boot (they take tens of milliseconds).
const BOOT_WALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Wall timeout of the in-guest benchmark run.
const SYSCALL_WALL_TIMEOUT: Duration = Duration::from_secs(120);
/// The floor's memory size: astra-vmm's default `--mem`.
const FLOOR_MEM: &str = "256M";
/// In-guest benchmark boots per configuration (interleaved).
const SYSCALL_RUNS: usize = 3;
/// The kernel's benchmark lines: the floor, and the two entries measured against it.
const TRAP_FLOOR: &str = "trap_floor";
const SYSCALL_LINES: [&str; 2] = ["syscall_getpid", "int80_getpid"];

fn main() -> ExitCode {
    let runs = match parse_runs(std::env::args().skip(1)) {
        Ok(runs) => runs,
        Err(message) => {
            eprintln!("astra-bench: {message}\nusage: astra-bench [--runs N]  (N >= 1, default {DEFAULT_RUNS})");
            return ExitCode::from(2);
        }
    };
    if let Err(message) = check_kvm_at(Path::new("/dev/kvm")) {
        eprintln!("astra-bench: {message}");
        return ExitCode::FAILURE;
    }
    let ws = Workspace::locate();
    let mut problems = Vec::new();
    if let Err(problem) = boot_bench(&ws, runs) {
        problems.push(problem);
    }
    println!();
    if let Err(problem) = syscall_bench(&ws) {
        problems.push(problem);
    }
    println!();
    if let Err(problem) = readfile::bench(&ws, runs) {
        problems.push(problem);
    }
    for spec in [&threads::SPEC, &procs::SPEC, &files::SPEC] {
        println!();
        if let Err(problem) = versus::bench(&ws, runs, spec) {
            problems.push(problem);
        }
    }
    if problems.is_empty() {
        return ExitCode::SUCCESS;
    }
    println!();
    for problem in &problems {
        eprintln!("astra-bench: error: {problem}");
    }
    ExitCode::FAILURE
}

fn parse_runs(mut args: impl Iterator<Item = String>) -> Result<usize, String> {
    let mut runs = DEFAULT_RUNS;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--runs" => {
                runs = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .filter(|&n| n >= 1)
                    .ok_or("--runs needs a positive number")?;
            }
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    Ok(runs)
}

/// A command as run (absolute paths) and as shown (relative to the workspace root).
struct Cmd {
    program: std::path::PathBuf,
    args: Vec<String>,
    shown: String,
    /// Text a successful run must print on stdout (so a run that "succeeds" without doing
    /// its work is not timed as if it had).
    expect_stdout: Option<&'static str>,
}

impl Cmd {
    fn new(ws: &Workspace, program_rel: &str, args_rel: &[&str]) -> Result<Self, String> {
        let program = ws.find_built(program_rel)?;
        let mut args = Vec::new();
        for arg in args_rel {
            // Workspace-relative file arguments become absolute so the cwd does not matter.
            if arg.starts_with("build/") {
                args.push(ws.find_built(arg)?.display().to_string());
            } else {
                args.push(arg.to_string());
            }
        }
        let shown_args: Vec<String> = args_rel.iter().map(|a| a.to_string()).collect();
        let shown = shell_command(Path::new(program_rel), &shown_args);
        Ok(Cmd {
            program,
            args,
            shown,
            expect_stdout: None,
        })
    }

    /// The same command, required to print `text` on stdout.
    fn expecting(self, text: &'static str) -> Self {
        Cmd {
            expect_stdout: Some(text),
            ..self
        }
    }

    /// Runs it once; the wall time of a successful run, or why it failed.
    fn run(&self, timeout: Duration) -> Result<astra_tests::Outcome, String> {
        let outcome = try_run(&self.program, &self.args, timeout).map_err(|e| e.to_string())?;
        if outcome.status != 0 {
            return Err(format!(
                "`{}` failed (expected exit 0)\n{}",
                self.shown,
                outcome.report()
            ));
        }
        if let Some(text) = self.expect_stdout {
            if !outcome.stdout.contains(text) {
                return Err(format!(
                    "`{}` exited 0 without printing `{text}` on stdout\n{}",
                    self.shown,
                    outcome.report()
                ));
            }
        }
        Ok(outcome)
    }
}

/// `astra-vmm --kernel build/guest.elf --rootfs build/fs.tar -- PROGRAM`.
fn astra_boot(ws: &Workspace, program: &str) -> Result<Cmd, String> {
    astra_boot_with(ws, &[], program)
}

/// Like [`astra_boot`], with more VMM `options` before the program.
fn astra_boot_with(ws: &Workspace, options: &[&str], program: &str) -> Result<Cmd, String> {
    let mut args = vec!["--kernel", "build/guest.elf", "--rootfs", "build/fs.tar"];
    args.extend_from_slice(options);
    args.extend_from_slice(&["--", program]);
    Cmd::new(ws, &format!("{}/astra-vmm", Workspace::bin_dir()), &args)
}

fn boot_bench(ws: &Workspace, runs: usize) -> Result<(), String> {
    println!("== boot to exit: whole-process wall time, {runs} interleaved runs each ==");
    let commands = [
        Cmd::new(
            ws,
            &format!("{}/kvm-floor", Workspace::bin_dir()),
            &["--mem", FLOOR_MEM],
        ),
        astra_boot(ws, "/bin/true"),
        astra_boot(ws, "/bin/hello-std").map(|c| c.expecting("Hello from Rust std!")),
    ];
    let missing: Vec<String> = commands
        .iter()
        .filter_map(|c| c.as_ref().err().cloned())
        .collect();
    if !missing.is_empty() {
        println!("not measured: {}", missing.join("; "));
        return Err("boot to exit was not measured (see above)".into());
    }
    let commands: Vec<Cmd> = commands.into_iter().flatten().collect();
    let shown: Vec<&str> = commands.iter().map(|c| c.shown.as_str()).collect();
    println!(
        "reproduce: cd {} && {}",
        ws.root.display(),
        shown.join(" ; ")
    );

    // A command that fails once is not run again, and is reported as failed, but the others
    // are still measured.
    let mut times = vec![Vec::with_capacity(runs); commands.len()];
    let mut failed: Vec<Option<String>> = vec![None; commands.len()];
    for index in 0..WARMUP_RUNS + runs {
        for (i, cmd) in commands.iter().enumerate() {
            if failed[i].is_some() {
                continue;
            }
            match cmd.run(BOOT_WALL_TIMEOUT) {
                Ok(outcome) if index >= WARMUP_RUNS => times[i].push(outcome.elapsed),
                Ok(_) => {}
                Err(err) => failed[i] = Some(err),
            }
        }
    }

    let mut table = Table::new(&["command", "runs", "p10 ms", "median ms", "p90 ms"]);
    let mut medians = Vec::new();
    for (i, cmd) in commands.iter().enumerate() {
        match (&failed[i], Summary::of_durations_ms(&times[i])) {
            (None, Some(s)) => {
                table.row(&[
                    cmd.shown.clone(),
                    s.count.to_string(),
                    format!("{:.2}", s.p10),
                    format!("{:.2}", s.median),
                    format!("{:.2}", s.p90),
                ]);
                medians.push(Some(s.median));
            }
            _ => {
                table.row(&[cmd.shown.as_str(), "FAILED", "-", "-", "-"]);
                medians.push(None);
            }
        }
    }
    print!("{}", table.render());
    for (label, median) in [("/bin/true", medians[1]), ("/bin/hello-std", medians[2])] {
        let versus = medians[0].zip(median).and_then(|(f, m)| ratio(m, f));
        println!(
            "astra {label} / floor (medians): {}",
            ratio_verdict(versus, BOOT_TARGET)
        );
    }
    let errors: Vec<String> = failed.into_iter().flatten().collect();
    if errors.is_empty() {
        Ok(())
    } else {
        println!(
            "FAILED: {} command(s) did not run (details on stderr)",
            errors.len()
        );
        Err(errors.join("\n\n"))
    }
}

fn syscall_bench(ws: &Workspace) -> Result<(), String> {
    println!("== system-call round trip: in-guest medians (cycles) ==");
    // The default configuration, and on PVM the entry code switching page tables itself
    // (what the kernel did before it used the host's table switching: issue 7).
    let configs = ["astra.bench", "astra.bench astra.pvm_features=0"];
    let mut cmds = Vec::new();
    for cmdline in configs {
        let cmd = astra_boot_with(ws, &["--cmdline", cmdline], "/bin/true").map_err(|message| {
            println!("not measured: {message}");
            "system-call round trip was not measured (see above)".to_string()
        })?;
        cmds.push(cmd);
    }
    println!(
        "reproduce: cd {} && {}  ({SYSCALL_RUNS} runs, medians of the kernel's medians)",
        ws.root.display(),
        cmds[0].shown
    );
    let mut samples: Vec<BTreeMap<String, Vec<u64>>> = vec![BTreeMap::new(); cmds.len()];
    let mut on_pvm = false;
    let mut problems = Vec::new();
    for _ in 0..SYSCALL_RUNS {
        for (i, cmd) in cmds.iter().enumerate() {
            let outcome = try_run(&cmd.program, &cmd.args, SYSCALL_WALL_TIMEOUT)
                .map_err(|e| e.to_string())?;
            if outcome.status != 0 {
                problems.push(format!(
                    "`{}` exited with {} (expected 0)\n{}",
                    cmd.shown,
                    astra_tests::exit::describe(outcome.status),
                    outcome.report()
                ));
                continue;
            }
            on_pvm |= outcome.stderr.contains("PVM features 0x0 asked");
            // The kernel prints its `bench` lines as diagnostics: on stderr.
            for (name, cycles) in parse_bench_lines(&outcome.stderr) {
                samples[i].entry(name).or_default().push(cycles);
            }
        }
    }
    let medians: Vec<BTreeMap<String, u64>> = samples
        .into_iter()
        .map(|lines| {
            lines
                .into_iter()
                .map(|(name, mut v)| {
                    v.sort_unstable();
                    (name, v[v.len() / 2])
                })
                .collect()
        })
        .collect();
    let (table, missing) = syscall_table(&medians[0]);
    print!("{}", table.render());
    if on_pvm {
        println!();
        println!("PVM: page tables switched by the host (default) and by the entry code (`--cmdline \"astra.bench astra.pvm_features=0\"`), interleaved:");
        let mut compare = Table::new(&[
            "measurement",
            "host switches",
            "entry code switches",
            "ratio",
        ]);
        for name in [SYSCALL_LINES[0], SYSCALL_LINES[1], TRAP_FLOOR] {
            let (a, b) = (medians[0].get(name), medians[1].get(name));
            let cell = |v: Option<&u64>| v.map_or("MISSING".to_string(), u64::to_string);
            let r = match (a, b) {
                (Some(&a), Some(&b)) => {
                    ratio(a as f64, b as f64).map_or("-".to_string(), |r| format!("{r:.2}x"))
                }
                _ => "-".to_string(),
            };
            compare.row(&[name.to_string(), cell(a), cell(b), r]);
        }
        print!("{}", compare.render());
    }
    if !missing.is_empty() {
        let list = missing.join(", ");
        println!("MISSING: the kernel printed no `bench <name> cycles=<n>` line for: {list}");
        problems.push(format!("missing bench lines: {list}"));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}

/// The syscall table, and the names of the required lines that are missing.
fn syscall_table(lines: &BTreeMap<String, u64>) -> (Table, Vec<String>) {
    let mut table = Table::new(&["measurement", "median cycles", "vs trap_floor"]);
    let floor = lines.get(TRAP_FLOOR).copied();
    let mut missing = Vec::new();
    match floor {
        Some(cycles) => table.row(&[
            TRAP_FLOOR.to_string(),
            cycles.to_string(),
            "1.00x (floor)".into(),
        ]),
        None => {
            table.row(&[TRAP_FLOOR, "MISSING", "-"]);
            missing.push(TRAP_FLOOR.to_string());
        }
    }
    for name in SYSCALL_LINES {
        match lines.get(name) {
            Some(&cycles) => {
                let versus = floor.and_then(|f| ratio(cycles as f64, f as f64));
                table.row(&[
                    name.to_string(),
                    cycles.to_string(),
                    ratio_verdict(versus, SYSCALL_TARGET),
                ]);
            }
            None => {
                table.row(&[name, "MISSING", "-"]);
                missing.push(name.to_string());
            }
        }
    }
    (table, missing)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> impl Iterator<Item = String> {
        list.iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
            .into_iter()
    }

    #[test]
    fn runs_default_and_are_validated() {
        assert_eq!(parse_runs(args(&[])), Ok(DEFAULT_RUNS));
        assert_eq!(parse_runs(args(&["--runs", "50"])), Ok(50));
        assert!(parse_runs(args(&["--runs", "0"])).is_err());
        assert!(parse_runs(args(&["--runs"])).is_err());
        assert!(parse_runs(args(&["--fast"])).is_err());
    }

    #[test]
    fn syscall_table_reports_ratios_and_missing_lines() {
        let lines =
            parse_bench_lines("bench trap_floor cycles=1000\nbench syscall_getpid cycles=1100\n");
        let (table, missing) = syscall_table(&lines);
        assert_eq!(missing, ["int80_getpid"]);
        let text = table.render();
        assert!(text.contains("1.10x (target <= 1.20x: met)"), "{text}");
        assert!(text.contains("int80_getpid    MISSING"), "{text}");

        let (_, missing) = syscall_table(&BTreeMap::new());
        assert_eq!(missing, ["trap_floor", "syscall_getpid", "int80_getpid"]);
    }
}

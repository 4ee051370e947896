//! `--stats-json PATH`: the run's statistics for machines.
//!
//! One JSON object: how the run ended, the exit code, the wall time, the VM-exit counts
//! (the VMM's `--stats` table) and the guest's system-call counts (the kernel's `strace
//! -c` table, which it sends on [`hypercall_abi::stream::STATS`] when the program ends, or
//! which the VMM reads from the stopped guest after a timeout or a signal; `null` when
//! there is none, e.g. after a crash).

use std::fmt::Write;
use std::time::Duration;

use crate::exit_code::Outcome;
use crate::vstate::exit_stats::ExitStats;

/// One row of the kernel's system-call table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyscallRow {
    /// The call's name (`total` for the total line).
    pub name: String,
    /// Calls made.
    pub calls: u64,
    /// Calls that failed.
    pub errors: u64,
    /// Time spent in it, in seconds, as the table prints it (e.g. `0.000040`).
    pub seconds: String,
}

/// Parses the kernel's `strace -c` table; lines that are not rows (headings, rules) are
/// skipped, and so is anything malformed (the guest wrote it).
pub fn parse_syscall_table(text: &str) -> Vec<SyscallRow> {
    text.lines()
        .filter_map(|line| {
            // "% time  seconds  usecs/call  calls  [errors]  name"
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (numbers, name) = match fields.len() {
                5 => (&fields[..4], fields[4]),
                6 => (&fields[..5], fields[5]),
                _ => return None,
            };
            numbers[0].parse::<f64>().ok()?;
            let seconds = numbers[1];
            seconds.parse::<f64>().ok()?;
            let calls = numbers[3].parse().ok()?;
            let errors = match numbers.get(4) {
                Some(e) => e.parse().ok()?,
                None => 0,
            };
            Some(SyscallRow {
                name: name.to_owned(),
                calls,
                errors,
                seconds: seconds.to_owned(),
            })
        })
        .collect()
}

/// A JSON string literal.
fn string(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn seconds(d: Duration) -> String {
    format!("{:.6}", d.as_secs_f64())
}

/// How a run ended, in one word.
pub fn outcome_name(outcome: Option<&Outcome>) -> &'static str {
    match outcome {
        None => "error",
        Some(Outcome::Program(_)) => "program",
        Some(Outcome::KernelPanic) => "kernel-panic",
        Some(Outcome::GuestCrash { .. }) => "guest-crash",
        Some(Outcome::Timeout(_)) => "timeout",
        Some(Outcome::RootfsRefused) => "rootfs-refused",
        Some(Outcome::Interrupted(_)) => "interrupted",
    }
}

/// The JSON document (one line, then a newline).
pub fn render(
    outcome: Option<&Outcome>,
    exit_code: u8,
    wall: Duration,
    exits: &ExitStats,
    syscalls: &[SyscallRow],
) -> String {
    let kinds: Vec<String> = exits
        .rows()
        .into_iter()
        .map(|(kind, count, handling)| {
            format!(
                "{{\"kind\":{},\"exits\":{count},\"handling_us\":{}}}",
                string(&kind),
                handling.as_micros()
            )
        })
        .collect();
    let handling: Duration = exits.rows().iter().map(|r| r.2).sum();
    let syscalls = if syscalls.is_empty() {
        "null".to_owned()
    } else {
        let rows: Vec<String> = syscalls
            .iter()
            .map(|r| {
                format!(
                    "{{\"name\":{},\"calls\":{},\"errors\":{},\"seconds\":{}}}",
                    string(&r.name),
                    r.calls,
                    r.errors,
                    r.seconds
                )
            })
            .collect();
        format!("[{}]", rows.join(","))
    };
    format!(
        "{{\"outcome\":{},\"exit_code\":{exit_code},\"wall_seconds\":{},\"vm_exits\":{{\"total\":{},\"in_kvm_run_seconds\":{},\"handling_seconds\":{},\"by_kind\":[{}]}},\"syscalls\":{syscalls}}}\n",
        string(outcome_name(outcome)),
        seconds(wall),
        exits.total(),
        seconds(exits.in_guest()),
        seconds(handling),
        kinds.join(",")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vstate::exit_stats::ExitKind;

    const TABLE: &str = "\
% time     seconds  usecs/call     calls    errors syscall
------ ----------- ----------- --------- --------- ----------------
 80.00    0.000040          20         2           write
 14.00    0.000007           7         1         1 syscall_0x1b6
------ ----------- ----------- --------- --------- ----------------
100.00    0.000047          15         3         1 total
";

    #[test]
    fn the_kernels_table_parses() {
        let rows = parse_syscall_table(TABLE);
        assert_eq!(rows.len(), 3);
        assert_eq!(
            rows[0],
            SyscallRow {
                name: "write".into(),
                calls: 2,
                errors: 0,
                seconds: "0.000040".into()
            }
        );
        assert_eq!((rows[1].calls, rows[1].errors), (1, 1));
        assert_eq!(rows[2].name, "total");
        assert!(parse_syscall_table("garbage x y z w\n\u{0}").is_empty());
    }

    #[test]
    fn renders_one_json_object() {
        let mut exits = ExitStats::new();
        exits.record(
            ExitKind::IoOut(hypercall_abi::port::EXIT),
            Duration::from_millis(2),
            Duration::from_micros(5),
        );
        let json = render(
            Some(&Outcome::Program(3)),
            3,
            Duration::from_millis(1500),
            &exits,
            &parse_syscall_table(TABLE),
        );
        assert!(
            json.starts_with("{\"outcome\":\"program\",\"exit_code\":3,\"wall_seconds\":1.500000,"),
            "{json}"
        );
        assert!(
            json.contains("\"vm_exits\":{\"total\":1,\"in_kvm_run_seconds\":0.002000"),
            "{json}"
        );
        assert!(json.contains("\"handling_us\":5}"), "{json}");
        assert!(
            json.contains("{\"name\":\"write\",\"calls\":2,\"errors\":0,\"seconds\":0.000040}"),
            "{json}"
        );
        assert!(json.ends_with("}\n"));
        let none = render(
            Some(&Outcome::Timeout(Duration::from_secs(1))),
            253,
            Duration::ZERO,
            &ExitStats::new(),
            &[],
        );
        assert!(
            none.contains("\"outcome\":\"timeout\"") && none.contains("\"syscalls\":null"),
            "{none}"
        );
        assert_eq!(string("a\"b\\\n"), "\"a\\\"b\\\\\\u000a\"");
    }
}

//! Reading what `astra-vmm` prints on stderr with `--stats` and `--strace`, for the tests.

/// The count of the `--stats` VM-exit row ending in `kind` (e.g. `io-out 0x504 (console
/// input)`), 0 if there is none.
pub fn exit_count(stderr: &str, kind: &str) -> u64 {
    stderr
        .lines()
        .find(|l| l.ends_with(&format!("  {kind}")))
        .and_then(|l| l.split_whitespace().next())
        .map_or(0, |n| n.parse().expect("a count"))
}

/// The number of calls in the `--stats` syscall table's row for `name` (`% time, seconds,
/// usecs/call, calls, [errors,] syscall`), 0 if there is none.
pub fn syscall_count(stderr: &str, name: &str) -> u64 {
    stderr
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|f| f.len() >= 5 && f.last() == Some(&name))
        .find_map(|f| f[3].parse().ok())
        .unwrap_or(0)
}

/// The `--strace` lines of the program's reads of its standard input (`read(0, ...)`), a read
/// shown as `<unfinished ...>` when it started to wait put back together with its end.
pub fn stdin_reads(stderr: &str) -> Vec<String> {
    const UNFINISHED: &str = " <unfinished ...>";
    const RESUMED: &str = "<... read resumed>";
    let mut reads = Vec::new();
    // Reads shown when they started to wait: `[pid 1] read(0, ` by thread prefix.
    let mut waiting: Vec<String> = Vec::new();
    for line in stderr.lines() {
        if let Some(head) = line.strip_suffix(UNFINISHED) {
            if head.contains("read(0,") {
                waiting.push(head.to_string());
            }
        } else if let Some(at) = line.find(RESUMED) {
            let thread = &line[..at];
            if let Some(i) = waiting.iter().position(|h| h.starts_with(thread)) {
                let head = waiting.remove(i);
                reads.push(format!("{head}{}", &line[at + RESUMED.len()..]));
            }
        } else if line.contains("read(0,") {
            reads.push(line.to_string());
        }
    }
    reads
}

#[cfg(test)]
mod tests {
    use super::*;

    const STDERR: &str = "\
[pid 1] read(0,  <unfinished ...>
[pid 2] write(1, \"x\", 1) = 1
[pid 1] <... read resumed>\"hi\\n\", 131072) = 3
[pid 1] write(1, \"hi\\n\", 3) = 3
[pid 1] read(0, \"\", 131072) = 0
% time     seconds  usecs/call     calls    errors syscall
------ ----------- ----------- --------- --------- ----------------
 60.00    0.000030          15         2           read
 40.00    0.000020          20         1         1 write
astra-vmm: VM exits: 5 (in KVM_RUN 1.000 ms, handling exits 0.010 ms)
     exits       %   handling us  kind
         3   60.00             9  io-out 0x504 (console input)
         2   40.00             1  io-out 0x503 (console output)
";

    #[test]
    fn reads_the_stats_tables_and_strace_lines() {
        assert_eq!(exit_count(STDERR, "io-out 0x504 (console input)"), 3);
        assert_eq!(exit_count(STDERR, "io-out 0x503 (console output)"), 2);
        assert_eq!(exit_count(STDERR, "io-in 0x3fd (16550 console)"), 0);
        assert_eq!(syscall_count(STDERR, "read"), 2);
        assert_eq!(syscall_count(STDERR, "write"), 1);
        assert_eq!(syscall_count(STDERR, "open"), 0);
        assert_eq!(
            stdin_reads(STDERR),
            [
                "[pid 1] read(0, \"hi\\n\", 131072) = 3",
                "[pid 1] read(0, \"\", 131072) = 0"
            ]
        );
    }
}

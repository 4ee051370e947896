//! `--stats`, VMM side: how many VM exits of each kind the vCPU took and how long the VMM
//! spent handling them, printed on stderr when the VM ends.
//!
//! Pure bookkeeping: the vCPU loop classifies each exit into an [`ExitKind`] and records it;
//! nothing here knows KVM, so it is tested on its own.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::Duration;

use hypercall_abi::port;

use crate::arch::x86_64::layout::{CONSOLE_PORT_COUNT, POST_PORT, SYSTEM_CONTROL_PORT_B};

/// What made `KVM_RUN` return.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ExitKind {
    /// `out` to a port.
    IoOut(u16),
    /// `in` from a port.
    IoIn(u16),
    /// A read of unbacked guest-physical memory.
    MmioRead,
    /// A write to unbacked or read-only guest-physical memory.
    MmioWrite,
    /// `hlt` handled in user space.
    Hlt,
    /// KVM_EXIT_INTR: a signal arrived while in the guest.
    Intr,
    /// `KVM_RUN` failed with EINTR or EAGAIN before entering the guest.
    Interrupted,
    /// The guest can take an interrupt (only when requested).
    IrqWindowOpen,
    /// Triple fault.
    Shutdown,
    /// KVM could not handle something (e.g. instruction emulation).
    InternalError,
    /// The hardware refused to enter the guest.
    FailEntry,
    /// Reset or power-off request.
    SystemEvent,
    /// A debug exit.
    Debug,
    /// Anything else, by KVM's name.
    Other(&'static str),
}

/// A readable name of the device at `port`, for the table.
pub fn port_name(port: u16) -> Option<&'static str> {
    let uart = port::CONSOLE..port::CONSOLE + CONSOLE_PORT_COUNT;
    match port {
        p if uart.contains(&p) => Some("16550 console"),
        port::CONSOLE_OUT => Some("console output"),
        port::CONSOLE_IN => Some("console input"),
        port::EXIT => Some("exit"),
        port::RTC => Some("rtc"),
        POST_PORT => Some("post"),
        SYSTEM_CONTROL_PORT_B => Some("port b"),
        _ => None,
    }
}

impl ExitKind {
    /// The label of the kind in the table: `io-out 0x3f8 (16550 console)`.
    pub fn label(&self) -> String {
        let io = |dir: &str, p: u16| match port_name(p) {
            Some(name) => format!("{dir} {p:#x} ({name})"),
            None => format!("{dir} {p:#x}"),
        };
        match *self {
            ExitKind::IoOut(p) => io("io-out", p),
            ExitKind::IoIn(p) => io("io-in", p),
            ExitKind::MmioRead => "mmio-read".into(),
            ExitKind::MmioWrite => "mmio-write".into(),
            ExitKind::Hlt => "hlt".into(),
            ExitKind::Intr => "intr (signal)".into(),
            ExitKind::Interrupted => "KVM_RUN interrupted (EINTR/EAGAIN)".into(),
            ExitKind::IrqWindowOpen => "irq-window".into(),
            ExitKind::Shutdown => "shutdown".into(),
            ExitKind::InternalError => "internal-error".into(),
            ExitKind::FailEntry => "fail-entry".into(),
            ExitKind::SystemEvent => "system-event".into(),
            ExitKind::Debug => "debug".into(),
            ExitKind::Other(name) => name.to_lowercase(),
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Count {
    exits: u64,
    handling: Duration,
}

/// Exit counts of one vCPU run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExitStats {
    counts: BTreeMap<ExitKind, Count>,
    in_guest: Duration,
}

impl ExitStats {
    /// Empty statistics.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records one return from `KVM_RUN` after `in_guest` in it, handled in `handling`.
    pub fn record(&mut self, kind: ExitKind, in_guest: Duration, handling: Duration) {
        let count = self.counts.entry(kind).or_default();
        count.exits += 1;
        count.handling += handling;
        self.in_guest += in_guest;
    }

    /// How many exits of `kind` were recorded.
    pub fn count(&self, kind: ExitKind) -> u64 {
        self.counts.get(&kind).map_or(0, |c| c.exits)
    }

    /// `(kind label, exits, time handling them)` per kind, most frequent first.
    pub fn rows(&self) -> Vec<(String, u64, Duration)> {
        let mut rows: Vec<(&ExitKind, &Count)> = self.counts.iter().collect();
        rows.sort_by(|a, b| b.1.exits.cmp(&a.1.exits).then(a.0.cmp(b.0)));
        rows.into_iter()
            .map(|(kind, count)| (kind.label(), count.exits, count.handling))
            .collect()
    }

    /// Time spent in `KVM_RUN`.
    pub fn in_guest(&self) -> Duration {
        self.in_guest
    }

    /// Total exits recorded.
    pub fn total(&self) -> u64 {
        self.counts.values().map(|c| c.exits).sum()
    }

    /// The table printed at exit, most frequent first:
    ///
    /// ```text
    /// astra-vmm: VM exits: 3 (in KVM_RUN 1.204 ms, handling exits 0.051 ms)
    ///      exits       %   handling us  kind
    ///          2   66.67            40  io-out 0x503 (console output)
    /// ```
    pub fn render(&self) -> String {
        let total = self.total();
        let handling: Duration = self.counts.values().map(|c| c.handling).sum();
        let mut out = format!(
            "astra-vmm: VM exits: {total} (in KVM_RUN {:.3} ms, handling exits {:.3} ms)\n",
            self.in_guest.as_secs_f64() * 1e3,
            handling.as_secs_f64() * 1e3
        );
        out.push_str("     exits       %   handling us  kind\n");
        let mut rows: Vec<(&ExitKind, &Count)> = self.counts.iter().collect();
        rows.sort_by(|a, b| b.1.exits.cmp(&a.1.exits).then(a.0.cmp(b.0)));
        for (kind, count) in rows {
            let percent = if total == 0 {
                0.0
            } else {
                count.exits as f64 * 100.0 / total as f64
            };
            let _ = writeln!(
                out,
                "{:>10} {:>7.2} {:>13}  {}",
                count.exits,
                percent,
                count.handling.as_micros(),
                kind.label()
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_sorts_by_frequency() {
        let mut stats = ExitStats::new();
        let us = Duration::from_micros;
        stats.record(ExitKind::IoOut(port::EXIT), us(100), us(5));
        for _ in 0..3 {
            stats.record(ExitKind::IoOut(port::CONSOLE_OUT), us(10), us(20));
        }
        stats.record(ExitKind::IoIn(0x3fd), us(1), us(1));
        stats.record(ExitKind::Other("Unknown"), us(1), us(1));
        assert_eq!(stats.total(), 6);
        assert_eq!(stats.count(ExitKind::IoOut(port::CONSOLE_OUT)), 3);
        assert_eq!(stats.count(ExitKind::Hlt), 0);
        let table = stats.render();
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(
            lines[0],
            "astra-vmm: VM exits: 6 (in KVM_RUN 0.132 ms, handling exits 0.067 ms)"
        );
        assert_eq!(lines[1], "     exits       %   handling us  kind");
        assert_eq!(
            lines[2],
            "         3   50.00            60  io-out 0x503 (console output)"
        );
        assert!(lines[3].ends_with("io-out 0x501 (exit)"), "{table}");
        assert!(lines[4].ends_with("io-in 0x3fd (16550 console)"), "{table}");
        assert!(lines[5].ends_with("  unknown"), "{table}");
        assert_eq!(lines.len(), 6);
    }

    #[test]
    fn labels_name_ports_and_kinds() {
        assert_eq!(ExitKind::IoOut(0x1234).label(), "io-out 0x1234");
        assert_eq!(
            ExitKind::IoOut(0x3f8).label(),
            "io-out 0x3f8 (16550 console)"
        );
        assert_eq!(ExitKind::IoIn(0x80).label(), "io-in 0x80 (post)");
        assert_eq!(
            ExitKind::IoOut(0x504).label(),
            "io-out 0x504 (console input)"
        );
        assert_eq!(ExitKind::Hlt.label(), "hlt");
        assert_eq!(ExitKind::IrqWindowOpen.label(), "irq-window");
        assert_eq!(ExitKind::MmioWrite.label(), "mmio-write");
        assert_eq!(port_name(0x400), None);
    }

    #[test]
    fn an_empty_run_renders_a_header_only() {
        let table = ExitStats::new().render();
        assert!(table.starts_with("astra-vmm: VM exits: 0 "));
        assert_eq!(table.lines().count(), 2);
    }
}

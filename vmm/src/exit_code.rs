//! The process exit codes of `astra-vmm`, and how a VM's end maps onto them.
//!
//! 0-255 is the guest program's own status (shell style, 128+N for signal N) as written
//! through the exit device. The codes 250-254 are reserved for endings that are not the
//! program's: they collide with program statuses 250-254, which is the usual trade-off of
//! wrapper tools (compare `timeout(1)`'s 124-127).

use std::time::Duration;

/// Usage or configuration error: bad flag, missing/unreadable/malformed kernel or rootfs.
pub const USAGE: u8 = 250;
/// The guest kernel panicked (it wrote `ExitKind::KernelPanic` to the exit device).
pub const KERNEL_PANIC: u8 = 251;
/// The guest crashed: triple fault, emulation failure, failed entry, access to an unknown
/// port or unbacked memory, or a malformed exit value.
pub const GUEST_CRASH: u8 = 252;
/// `--timeout` expired.
pub const TIMEOUT: u8 = 253;
/// The VMM failed: no usable `/dev/kvm`, a KVM ioctl failed, out of host memory.
pub const INTERNAL: u8 = 254;

/// The exit code table, as shown by `--help`.
pub const TABLE: &str = "\
Exit codes:
  0-255  the guest program's exit status (128+N if signal N killed it)
  250    usage or configuration error (bad flag, unreadable or malformed kernel or rootfs,
         a rootfs with more entries than the guest kernel's heap holds)
  251    the guest kernel panicked
  252    the guest crashed (triple fault, emulation failure, unknown port or MMIO access,
         malformed exit value)
  253    --timeout expired
  130, 131, 143  astra-vmm got SIGTERM, or a SIGINT/SIGQUIT the guest did not take (a
         second one before it took the first), and stopped the guest (128 + the signal)
  254    astra-vmm or host failure (no usable /dev/kvm, KVM ioctl failure)";

/// How a VM run ended, when it ended at all (VMM failures are errors instead).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The init program ended with this shell-style status.
    Program(u8),
    /// The guest kernel reported a panic.
    KernelPanic,
    /// The guest did something that ends the VM.
    GuestCrash {
        /// What happened, in one line.
        reason: String,
        /// The vCPU's registers at the time, if they could be read.
        registers: Option<String>,
    },
    /// `--timeout` expired before the guest ended.
    Timeout(Duration),
    /// The guest kernel could not mount the rootfs (it printed why): a configuration error.
    RootfsRefused,
    /// astra-vmm got this signal (SIGTERM, or SIGINT/SIGQUIT the guest did not take) and
    /// stopped the guest.
    Interrupted(u8),
}

impl Outcome {
    /// A guest crash without a register dump.
    pub fn crash(reason: impl Into<String>) -> Self {
        Outcome::GuestCrash {
            reason: reason.into(),
            registers: None,
        }
    }

    /// The process exit code for this outcome.
    pub fn exit_code(&self) -> u8 {
        match self {
            Outcome::Program(status) => *status,
            Outcome::KernelPanic => KERNEL_PANIC,
            Outcome::GuestCrash { .. } => GUEST_CRASH,
            Outcome::Timeout(_) => TIMEOUT,
            Outcome::RootfsRefused => USAGE,
            Outcome::Interrupted(signal) => 128u8.saturating_add(*signal),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_map_to_the_documented_codes() {
        assert_eq!(Outcome::Program(0).exit_code(), 0);
        assert_eq!(Outcome::Program(139).exit_code(), 139);
        assert_eq!(Outcome::KernelPanic.exit_code(), 251);
        assert_eq!(Outcome::crash("triple fault").exit_code(), 252);
        assert_eq!(Outcome::Timeout(Duration::from_secs(1)).exit_code(), 253);
        assert_eq!(Outcome::RootfsRefused.exit_code(), 250);
        assert_eq!(Outcome::Interrupted(2).exit_code(), 130);
        assert_eq!(Outcome::Interrupted(15).exit_code(), 143);
    }

    #[test]
    fn reserved_codes_are_distinct_and_in_the_table() {
        let codes = [USAGE, KERNEL_PANIC, GUEST_CRASH, TIMEOUT, INTERNAL];
        for (i, code) in codes.iter().enumerate() {
            assert!(!codes[..i].contains(code));
            assert!(TABLE.contains(&format!("  {code}  ")));
        }
    }
}

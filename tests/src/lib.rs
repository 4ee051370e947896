//! Harness for astra's host-side integration tests and benchmark runner.
//!
//! The tests in `tests/tests/` boot real VMs: they run the built `astra-vmm` on this machine's
//! `/dev/kvm` with the built kernel and root filesystem, and assert on its exit code and
//! console output. This crate owns what they share:
//!
//! - [`Workspace`]: where the built artifacts are (`make` builds them);
//! - [`require_kvm`]: KVM is required; without it the tests fail loudly, they never skip;
//! - [`run`]: spawning `astra-vmm` with a host-side wall timeout, so a hung VMM fails the test
//!   instead of hanging CI;
//! - [`scenario`]: the parser of `tests/scenarios.txt`, the scenario list both test tiers run;
//! - [`elf`]: finding the kernel's ABI note, for the tests that corrupt it;
//! - [`linux`]: running the image's std programs on the host's Linux, the reference;
//! - [`stats`]: medians, percentiles and the `bench ...` lines of the benchmark runner.

pub mod elf;
pub mod linux;
pub mod report;
pub mod run;
pub mod scenario;
pub mod stats;
pub mod tempdir;

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};

pub use run::{
    run_vmm, run_vmm_with_input, try_run, try_run_signalled, try_run_with_input, Input, Outcome,
    RunError,
};

/// Exit codes of `astra-vmm` that are not a guest program's status.
pub mod exit {
    /// Usage or configuration error: bad flag, missing or malformed kernel or rootfs, bad size.
    pub const USAGE: i32 = 250;
    /// The guest kernel panicked.
    pub const KERNEL_PANIC: i32 = 251;
    /// The guest crashed (an exit the VMM cannot attribute to the program).
    pub const GUEST_CRASH: i32 = 252;
    /// The guest did not finish within `--timeout`.
    pub const TIMEOUT: i32 = 253;
    /// The VMM itself failed.
    pub const VMM_INTERNAL: i32 = 254;

    /// A readable name for an `astra-vmm` exit code, for failure reports.
    pub fn describe(code: i32) -> String {
        match code {
            USAGE => "250 (usage/configuration error)".into(),
            KERNEL_PANIC => "251 (guest kernel panic)".into(),
            GUEST_CRASH => "252 (guest crash)".into(),
            TIMEOUT => "253 (timeout)".into(),
            VMM_INTERNAL => "254 (VMM internal error)".into(),
            129..=192 => format!("{code} (guest program killed by signal {})", code - 128),
            _ => code.to_string(),
        }
    }
}

/// Prefix of every error `astra-vmm` prints on stderr.
pub const VMM_ERROR_PREFIX: &str = "astra-vmm: error: ";

/// Paths of the workspace and of the artifacts `make` builds.
#[derive(Clone, Debug)]
pub struct Workspace {
    /// The workspace root (the folder holding the top-level `Cargo.toml`).
    pub root: PathBuf,
}

impl Workspace {
    /// The workspace this crate belongs to.
    pub fn locate() -> Self {
        let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
        let root = manifest_dir
            .parent()
            .expect("tests/ has a parent folder")
            .to_path_buf();
        Workspace { root }
    }

    /// Where the host binaries are (relative to the root, or absolute): `target/release`, or the
    /// `ASTRA_BIN_DIR` environment variable (to test another build of the VMM).
    pub fn bin_dir() -> String {
        std::env::var("ASTRA_BIN_DIR").unwrap_or_else(|_| "target/release".into())
    }

    /// `target/release/astra-vmm`; panics with a hint to run `make` if it is missing.
    pub fn vmm(&self) -> PathBuf {
        self.built(&format!("{}/astra-vmm", Self::bin_dir()))
    }

    /// `target/release/kvm-floor`, the minimal VMM the boot benchmark compares against.
    pub fn kvm_floor(&self) -> PathBuf {
        self.built(&format!("{}/kvm-floor", Self::bin_dir()))
    }

    /// `build/guest.elf`, the guest kernel.
    pub fn kernel(&self) -> PathBuf {
        self.built("build/guest.elf")
    }

    /// `build/fs.tar`, the default root filesystem.
    pub fn rootfs(&self) -> PathBuf {
        self.built("build/fs.tar")
    }

    /// `tests/scenarios.txt`, the scenario list shared with the hardware-KVM tier.
    pub fn scenarios_file(&self) -> PathBuf {
        self.root.join("tests/scenarios.txt")
    }

    fn built(&self, relative: &str) -> PathBuf {
        self.find_built(relative)
            .unwrap_or_else(|message| panic!("{message}"))
    }

    /// `relative` under the workspace root if it is a file, or an error telling to run `make`.
    pub fn find_built(&self, relative: &str) -> Result<PathBuf, String> {
        let path = self.root.join(relative);
        if path.is_file() {
            Ok(path)
        } else {
            Err(format!(
                "{} is missing: build it first with `make` (in {}), or run `make \
                 integration-test`",
                path.display(),
                self.root.display()
            ))
        }
    }

    /// The arguments that select the default kernel and rootfs, to put before a scenario's.
    pub fn default_vm_args(&self) -> Vec<String> {
        vec![
            "--kernel".into(),
            self.kernel().display().to_string(),
            "--rootfs".into(),
            self.rootfs().display().to_string(),
        ]
    }
}

/// Why KVM cannot be used, or `Ok` if `path` opens read-write.
pub fn check_kvm_at(path: &Path) -> Result<(), String> {
    match OpenOptions::new().read(true).write(true).open(path) {
        Ok(_) => Ok(()),
        Err(err) => Err(format!(
            "KVM is required: {} cannot be opened read-write ({err}). These tests boot real \
             VMs; run them on a host with KVM and access to {} (e.g. as root or in the `kvm` \
             group). They fail rather than skip so that a missing KVM never looks like a pass.",
            path.display(),
            path.display()
        )),
    }
}

/// Fails the calling test, loudly, if `/dev/kvm` is missing or not usable.
pub fn require_kvm() {
    if let Err(message) = check_kvm_at(Path::new("/dev/kvm")) {
        panic!("\n\n*** {message} ***\n");
    }
}

/// The last `max_lines` lines of `text`, for failure reports.
pub fn tail(text: &str, max_lines: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(max_lines);
    let mut out = String::new();
    if start > 0 {
        out.push_str(&format!("[... {start} earlier lines]\n"));
    }
    for line in &lines[start..] {
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// A shell-pastable rendering of a command line, for "reproduce with" hints.
pub fn shell_command(program: &Path, args: &[String]) -> String {
    let mut out = shell_quote(&program.display().to_string());
    for arg in args {
        out.push(' ');
        out.push_str(&shell_quote(arg));
    }
    out
}

fn shell_quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_kvm_device_is_a_loud_error() {
        let err = check_kvm_at(Path::new("/nonexistent/kvm")).unwrap_err();
        assert!(
            err.starts_with("KVM is required: /nonexistent/kvm"),
            "{err}"
        );
    }

    #[test]
    fn tail_keeps_last_lines_and_counts_the_rest() {
        assert_eq!(tail("a\nb\nc\n", 2), "[... 1 earlier lines]\nb\nc\n");
        assert_eq!(tail("a\nb", 5), "a\nb\n");
        assert_eq!(tail("", 5), "");
    }

    #[test]
    fn shell_command_quotes_only_what_needs_it() {
        let cmd = shell_command(
            Path::new("/x/astra-vmm"),
            &["--cmdline".into(), "a b".into(), "it's".into(), "".into()],
        );
        assert_eq!(cmd, r"/x/astra-vmm --cmdline 'a b' 'it'\''s' ''");
    }

    #[test]
    fn exit_codes_are_described() {
        assert_eq!(
            exit::describe(139),
            "139 (guest program killed by signal 11)"
        );
        assert_eq!(exit::describe(253), "253 (timeout)");
        assert_eq!(exit::describe(1), "1");
    }

    #[test]
    fn workspace_root_holds_the_workspace_manifest() {
        let ws = Workspace::locate();
        assert!(ws.root.join("Cargo.toml").is_file());
        assert!(ws.root.join("hypercall-abi").is_dir());
        let err = ws.find_built("target/no-such-artifact").unwrap_err();
        assert!(err.contains("no-such-artifact is missing: build it first with `make`"));
    }
}

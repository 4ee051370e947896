//! The command line: flags, their validation, and the [`VmConfig`] they produce.
//!
//! Everything here is pure so it can be tested without KVM: sizes, the kernel command line
//! and the init argv block are composed and bounds-checked before any VM exists.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Parser, ValueEnum};
use hypercall_abi::layout::{CMDLINE_MAX, MEM_MAX, MEM_MIN};

use crate::exit_code;
use crate::gdb::GdbAddress;
use crate::init_args::{self, InitArgs, InitArgsError};
use crate::kernel_path::{self, NoKernel, KERNEL_ENV};
use crate::rootfs_build::HostProgram;
use crate::volume::VolumeSpec;

/// Page size the guest RAM size must be a multiple of.
const PAGE_SIZE: u64 = 4096;
/// The program the kernel runs when none follows `--`.
pub const DEFAULT_INIT: &str = "/init";
/// Kernel parameter that turns on the guest's syscall tracing.
pub const STRACE_PARAM: &str = "astra.strace";
/// Kernel parameter that turns on the guest's per-syscall counts.
pub const STATS_PARAM: &str = "astra.stats";

/// Errors turning valid-looking flags into a VM configuration.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CliError {
    /// The kernel command line does not fit its page.
    #[error("Kernel command line is {len} bytes, at most {max} fit: shorten --cmdline")]
    CmdlineTooLong {
        /// Length without the NUL.
        len: usize,
        /// Largest length accepted.
        max: u64,
    },
    /// `--kernel` not given and no kernel found.
    #[error(transparent)]
    NoKernel(#[from] NoKernel),
    /// The program's argv, environment or working directory is unusable.
    #[error(transparent)]
    InitArgs(#[from] InitArgsError),
    /// The program path cannot be written as `init=PROG`.
    #[error("Program path '{0}' must be non-empty and contain no whitespace (it goes on the kernel command line as init=)")]
    BadProgramPath(String),
    /// The program was given twice.
    #[error("The program is given both as init= in --cmdline and after --: use one")]
    InitGivenTwice,
}

/// Log verbosity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogLevel {
    /// Only errors.
    Error,
    /// Errors and warnings.
    Warn,
    /// Plus one line per boot stage.
    Info,
    /// Plus device traffic.
    Debug,
    /// Everything.
    Trace,
}

impl From<LogLevel> for log::LevelFilter {
    fn from(level: LogLevel) -> Self {
        match level {
            LogLevel::Error => log::LevelFilter::Error,
            LogLevel::Warn => log::LevelFilter::Warn,
            LogLevel::Info => log::LevelFilter::Info,
            LogLevel::Debug => log::LevelFilter::Debug,
            LogLevel::Trace => log::LevelFilter::Trace,
        }
    }
}

fn help_footer() -> String {
    format!(
        "Examples:
  astra-vmm ./target/x86_64-unknown-linux-musl/release/myapp --its-flag
  astra-vmm --rootfs build/fs.tar -e RUST_LOG=debug --cwd /tmp /bin/busybox sh -c 'echo $RUST_LOG'
  astra-vmm --kernel build/guest.elf --rootfs build/fs.tar
  astra-vmm --kernel build/guest.elf --rootfs build/fs.tar -- /bin/hello world
  astra-vmm --kernel build/guest.elf --rootfs build/fs.tar --mem 1G --timeout 2.5 --strace -- /bin/app
  astra-vmm --kernel build/guest.elf --rootfs build/fs.tar --stats -- /bin/hello 2>stats.txt

Output: the program's standard output goes to stdout; its standard error, kernel messages,
--strace and --stats output go to stderr.

{}",
        exit_code::TABLE
    )
}

/// What `--version` prints: the VMM's version and the guest ABI it speaks (a unit test keeps
/// the number equal to [`hypercall_abi::ABI_VERSION`]).
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (astra ABI 12)");

/// `astra-vmm`: boots an astra guest kernel on KVM and exits with its program's status.
#[derive(Debug, Parser)]
#[command(name = "astra-vmm", version = VERSION, about, after_help = help_footer(), args_override_self = true)]
pub struct Cli {
    /// Guest kernel ELF image (must carry the astra ABI note). Default: the kernel
    /// installed beside astra-vmm (../share/astra/guest.elf or the same directory), else
    /// the build tree's build/guest.elf.
    #[arg(long, value_name = "PATH", env = KERNEL_ENV)]
    pub kernel: Option<PathBuf>,
    /// Root filesystem: a TAR file, mapped read-only into the guest, or a host directory,
    /// packed into a TAR in memory at start (symlinks kept as links).
    #[arg(long, value_name = "PATH", env = "ASTRA_ROOTFS")]
    pub rootfs: Option<PathBuf>,
    /// Guest RAM: bytes, or with a K, M or G suffix; a multiple of 4 KiB from 16M to 3G.
    #[arg(long, value_name = "SIZE", default_value = "256M", value_parser = parse_mem, env = "ASTRA_MEM")]
    pub mem: u64,
    /// Number of vCPUs (only 1 is supported yet).
    #[arg(long, value_name = "N", default_value = "1", value_parser = parse_cpus)]
    pub cpus: u8,
    /// Set an environment variable of the program (repeatable). `-e KEY` copies KEY from
    /// the host's environment. Without --env-host, these come on top of the default
    /// environment PATH=/bin HOME=/ TERM=dumb.
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE", action = clap::ArgAction::Append)]
    pub env: Vec<OsString>,
    /// Start the program with the host's whole environment (as qemu-user does) instead of
    /// the default one; -e still applies on top.
    #[arg(long)]
    pub env_host: bool,
    /// The program's working directory in the guest (absolute). Default: the directory
    /// astra-vmm runs in, if a --volume shares it, else /. If it does not exist there, the
    /// program does not start (exit status 127) and the kernel says why.
    #[arg(long, value_name = "DIR")]
    pub cwd: Option<OsString>,
    /// Extra kernel command-line parameters.
    #[arg(long, value_name = "STR", default_value = "")]
    pub cmdline: String,
    /// Kill the guest after SECS seconds (fractions allowed) and exit with 253.
    #[arg(long, value_name = "SECS", value_parser = parse_timeout, env = "ASTRA_TIMEOUT")]
    pub timeout: Option<Duration>,
    /// Log verbosity of astra-vmm itself (on stderr).
    #[arg(long, value_name = "LEVEL", value_enum, default_value_t = LogLevel::Warn)]
    pub log_level: LogLevel,
    /// Trace system calls: the kernel prints one strace-style line per call on stderr
    /// (adds astra.strace to its command line).
    #[arg(long)]
    pub strace: bool,
    /// Trace system calls into FILE instead of stderr (implies --strace; like strace -o).
    #[arg(short = 'o', long, value_name = "FILE")]
    pub strace_file: Option<PathBuf>,
    /// At exit, print on stderr a per-syscall count table like `strace -c` (kernel side,
    /// adds astra.stats to its command line) and a VM-exit count table (VMM side).
    #[arg(long)]
    pub stats: bool,
    /// Write the run's statistics as JSON to FILE: how it ended, the VM-exit counts and
    /// the program's system-call counts (like --stats, without the tables on stderr).
    #[arg(long, value_name = "FILE")]
    pub stats_json: Option<PathBuf>,
    /// Serve gdb's remote protocol on ADDR (HOST:PORT, :PORT, or a unix-socket path): the
    /// guest stops before its first instruction until gdb attaches (target remote ADDR).
    #[arg(long, value_name = "ADDR", value_parser = GdbAddress::parse)]
    pub gdb: Option<GdbAddress>,
    /// Share the host directory HOST_DIR with the guest at GUEST_DIR (read-write, or
    /// read-only with :ro); repeatable. The guest cannot reach anything outside HOST_DIR.
    #[arg(long, value_name = "HOST_DIR:GUEST_DIR[:ro]", value_parser = VolumeSpec::parse)]
    pub volume: Vec<VolumeSpec>,
    /// The program the kernel runs, and its arguments (default /init). A PROG with a `/`
    /// naming an executable host file runs that file, at the same absolute path in the
    /// guest (over a minimal root without --rootfs; added to the rootfs unless it has that
    /// path). Everything from the first argument that is not an astra-vmm option on
    /// belongs to the program, as with `env` or `qemu-x86_64`; `--` before it also works.
    #[arg(trailing_var_arg = true, value_name = "PROG ARGS")]
    pub program: Vec<OsString>,
}

/// Everything needed to run one VM, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VmConfig {
    /// Kernel ELF path.
    pub kernel: PathBuf,
    /// Rootfs TAR path.
    pub rootfs: Option<PathBuf>,
    /// Guest RAM in bytes.
    pub mem_size: u64,
    /// The full kernel command line, without the NUL.
    pub cmdline: String,
    /// The program's argv, environment and working directory, encoded.
    pub init: InitArgs,
    /// PROG as a host executable to put into the guest at the same absolute path.
    pub host_program: Option<HostProgram>,
    /// When to give up on the guest.
    pub timeout: Option<Duration>,
    /// Count VM exits and print them at the end (`--stats`).
    pub stats: bool,
    /// Where to write the statistics as JSON (`--stats-json`).
    pub stats_json: Option<PathBuf>,
    /// Where `--strace` lines go instead of stderr (`--strace-file`).
    pub strace_file: Option<PathBuf>,
    /// Where to wait for gdb (`--gdb`).
    pub gdb: Option<GdbAddress>,
    /// Host directories shared with the guest (`--volume`).
    pub volumes: Vec<VolumeSpec>,
}

impl Cli {
    /// Validates the parts clap could not and composes the guest's command line, argv and
    /// environment (`--env-host` takes this process's environment).
    pub fn into_config(self) -> Result<VmConfig, CliError> {
        self.into_config_with(std::env::vars_os())
    }

    /// [`Cli::into_config`] with `host_env` as the host's environment.
    pub fn into_config_with(
        self,
        host_env: impl IntoIterator<Item = (OsString, OsString)>,
    ) -> Result<VmConfig, CliError> {
        let flags = [
            (self.strace || self.strace_file.is_some(), STRACE_PARAM),
            (self.stats || self.stats_json.is_some(), STATS_PARAM),
            (self.gdb.is_some(), hypercall_abi::debug::CMDLINE_PARAM),
        ];
        let params: Vec<&str> = flags
            .iter()
            .filter(|(on, _)| *on)
            .map(|(_, param)| *param)
            .collect();
        // PROG naming a host executable runs at its absolute path in the guest (argv[0]
        // stays as given).
        let host_program = self.program.first().and_then(|prog| {
            let cwd = std::env::current_dir().ok()?;
            HostProgram::detect(Path::new(prog), &cwd)
        });
        let mut program = self.program.clone();
        let (cmdline, argv) = match &host_program {
            Some(host) => {
                program[0] = host.guest_path.clone().into();
                let (cmdline, _) = compose_boot_args(&self.cmdline, &params, &program)?;
                (cmdline, self.program.clone())
            }
            None => compose_boot_args(&self.cmdline, &params, &program)?,
        };
        // A host program below the kernel's own mounts (/tmp...) would be hidden there in
        // the root: its directory is shared read-only at the same path instead.
        let mut volumes = self.volume;
        if let Some((host, guest)) = host_program
            .as_ref()
            .filter(|p| p.under_guest_mount())
            .and_then(HostProgram::directory_volume)
        {
            volumes.push(VolumeSpec {
                host,
                guest,
                read_only: true,
            });
        }
        let env = init_args::compose_env(self.env_host, host_env, &self.env)?;
        // Like qemu-user, the program starts where astra-vmm was started, when a volume
        // shares that directory with the guest (a cargo runner: the package directory);
        // else in /.
        let cwd = self.cwd.unwrap_or_else(|| {
            std::env::current_dir()
                .ok()
                .and_then(|dir| crate::volume::guest_path_of(&volumes, &dir))
                .map_or_else(|| init_args::DEFAULT_CWD.into(), OsString::from)
        });
        let init = InitArgs::new(&argv, &env, &cwd)?;
        let kernel = match self.kernel {
            Some(kernel) => kernel,
            None => {
                let exe = std::env::current_exe().ok();
                kernel_path::find(exe.as_deref(), Path::is_file)?
            }
        };
        Ok(VmConfig {
            kernel,
            rootfs: self.rootfs,
            mem_size: self.mem,
            cmdline,
            init,
            host_program,
            timeout: self.timeout,
            stats: self.stats,
            strace_file: self.strace_file,
            stats_json: self.stats_json,
            gdb: self.gdb,
            volumes,
        })
    }
}

/// A note for the user when program arguments given without `--` are also astra-vmm
/// long options (`astra-vmm /bin/app --strace` passes `--strace` to the program): `raw`
/// is astra-vmm's own arguments, `program` what clap took as the program. None when a
/// `--` came right before the program.
pub fn ambiguity_hint(raw: &[OsString], program: &[OsString]) -> Option<String> {
    use clap::CommandFactory;
    let start = raw.len().checked_sub(program.len())?;
    if program.is_empty() || (start > 0 && raw[start - 1] == "--") {
        return None;
    }
    let command = Cli::command();
    let flags: Vec<String> = program[1..]
        .iter()
        .filter_map(|arg| {
            let arg = arg.to_str()?;
            let name = arg.strip_prefix("--")?.split('=').next()?;
            command
                .get_arguments()
                .any(|a| a.get_long() == Some(name))
                .then(|| arg.to_owned())
        })
        .collect();
    if flags.is_empty() {
        return None;
    }
    Some(format!(
        "astra-vmm: note: {} after the program {} passed to the program, not to astra-vmm \
         (put astra-vmm options before the program; a -- before the program silences this note)",
        flags.join(" "),
        if flags.len() == 1 { "is" } else { "are" }
    ))
}

/// Parses a size: a number of bytes with an optional K, M or G (binary) suffix.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let (digits, shift) = match text.char_indices().last() {
        Some((i, 'k' | 'K')) => (&text[..i], 10),
        Some((i, 'm' | 'M')) => (&text[..i], 20),
        Some((i, 'g' | 'G')) => (&text[..i], 30),
        _ => (text, 0),
    };
    let value: u64 = digits
        .parse()
        .map_err(|_| format!("'{text}' is not a size (use e.g. 256M, 1G or 65536)"))?;
    value
        .checked_mul(1 << shift)
        .ok_or_else(|| format!("'{text}' is too large"))
}

/// Formats a byte count with the largest binary suffix that divides it.
pub fn format_size(bytes: u64) -> String {
    match bytes {
        0 => "0".into(),
        b if b % (1 << 30) == 0 => format!("{}G", b >> 30),
        b if b % (1 << 20) == 0 => format!("{}M", b >> 20),
        b if b % (1 << 10) == 0 => format!("{}K", b >> 10),
        b => b.to_string(),
    }
}

/// Parses and checks `--mem`.
pub fn parse_mem(text: &str) -> Result<u64, String> {
    let size = parse_size(text)?;
    let range = format!(
        "a multiple of 4K from {} to {}",
        format_size(MEM_MIN),
        format_size(MEM_MAX)
    );
    if !(MEM_MIN..=MEM_MAX).contains(&size) {
        return Err(format!("guest RAM must be {range}"));
    }
    if size % PAGE_SIZE != 0 {
        return Err(format!("guest RAM must be {range}"));
    }
    Ok(size)
}

fn parse_cpus(text: &str) -> Result<u8, String> {
    match text.trim().parse::<u64>() {
        Ok(1) => Ok(1),
        Ok(_) => Err("only 1 vCPU is supported yet".into()),
        Err(_) => Err(format!("'{text}' is not a number")),
    }
}

/// Shortest `--timeout` accepted: the timer works in milliseconds, and a shorter value
/// would silently become 0 or 1 ms.
pub const TIMEOUT_MIN: Duration = Duration::from_millis(1);
/// Longest `--timeout` accepted (about 31.7 years): far beyond any run, and far below the
/// ~2^63 ns at which adding it to the clock would overflow.
pub const TIMEOUT_MAX: Duration = Duration::from_secs(1_000_000_000);

/// Parses `--timeout`: seconds, fractions allowed, from [`TIMEOUT_MIN`] to [`TIMEOUT_MAX`].
pub fn parse_timeout(text: &str) -> Result<Duration, String> {
    let secs: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("'{text}' is not a number of seconds"))?;
    if !secs.is_finite() || secs <= 0.0 {
        return Err("the timeout must be a positive number of seconds".into());
    }
    let range = format!(
        "the timeout must be from {} to {} seconds",
        TIMEOUT_MIN.as_secs_f64(),
        TIMEOUT_MAX.as_secs()
    );
    match Duration::try_from_secs_f64(secs) {
        Ok(t) if (TIMEOUT_MIN..=TIMEOUT_MAX).contains(&t) => Ok(t),
        _ => Err(range),
    }
}

/// Composes the kernel command line and the init argv.
///
/// The command line is the user's `--cmdline`, then `flag_params` (`astra.strace`...),
/// then `init=PROG`. A program given as `init=` in `--cmdline` (and not after `--`) is used
/// as is.
pub fn compose_boot_args(
    user_cmdline: &str,
    flag_params: &[&str],
    program: &[OsString],
) -> Result<(String, Vec<OsString>), CliError> {
    let user_init = user_cmdline
        .split_whitespace()
        .rev()
        .find_map(|param| param.strip_prefix("init="));
    let mut params: Vec<String> = user_cmdline.split_whitespace().map(str::to_owned).collect();
    params.extend(flag_params.iter().map(|p| (*p).to_owned()));
    let argv: Vec<OsString> = match (user_init, program.is_empty()) {
        (Some(_), false) => return Err(CliError::InitGivenTwice),
        (Some(init), true) => vec![init.into()],
        (None, true) => vec![DEFAULT_INIT.into()],
        (None, false) => program.to_vec(),
    };
    if user_init.is_none() {
        let prog = argv[0].to_string_lossy();
        if prog.is_empty() || prog.contains(char::is_whitespace) {
            return Err(CliError::BadProgramPath(prog.into_owned()));
        }
        params.push(format!("init={prog}"));
    }
    let cmdline = params.join(" ");
    // The NUL terminator must fit too.
    if cmdline.len() as u64 >= CMDLINE_MAX {
        return Err(CliError::CmdlineTooLong {
            len: cmdline.len(),
            max: CMDLINE_MAX - 1,
        });
    }
    Ok((cmdline, argv))
}

/// The environment variables that give options their defaults.
pub const ENV_DEFAULTS: [&str; 4] = [KERNEL_ENV, "ASTRA_ROOTFS", "ASTRA_MEM", "ASTRA_TIMEOUT"];

/// Removes the [`ENV_DEFAULTS`] variables that are set but empty from this process's
/// environment, so that they count as unset (`ASTRA_KERNEL= astra-vmm ...` means "no
/// default", as in a shell) rather than as an empty, invalid value. Call before parsing,
/// while the process has one thread.
pub fn drop_empty_env_defaults() {
    for name in ENV_DEFAULTS {
        if std::env::var_os(name).is_some_and(|v| v.is_empty()) {
            std::env::remove_var(name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::ffi::OsStringExt;

    #[test]
    fn version_names_the_abi_this_vmm_speaks() {
        let abi = format!("(astra ABI {})", hypercall_abi::ABI_VERSION);
        assert!(VERSION.ends_with(&abi), "{VERSION} vs {abi}");
        let err = parse(&["--version"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::DisplayVersion);
        assert!(err.to_string().contains(&abi), "{err}");
    }

    #[test]
    fn the_program_may_follow_the_options_without_a_double_dash() {
        let cli = parse(&["--kernel", "k", "/bin/prog", "-x", "--strace", ""]).unwrap();
        assert_eq!(cli.program, os(&["/bin/prog", "-x", "--strace", ""]));
        assert!(!cli.strace, "--strace after the program is the program's");
        let cli = parse(&["--kernel", "k", "--strace", "--", "/bin/prog", "--stats"]).unwrap();
        assert_eq!(cli.program, os(&["/bin/prog", "--stats"]));
        assert!(cli.strace && !cli.stats);
        // A flag-looking first word is still astra-vmm's: unknown ones are errors.
        assert!(parse(&["--kernel", "k", "--no-such-flag", "/bin/prog"]).is_err());
    }

    #[test]
    fn flag_looking_program_arguments_get_a_note_unless_after_double_dash() {
        let hint = |args: &[&str]| {
            let cli = parse(args).unwrap();
            ambiguity_hint(&os(args), &cli.program)
        };
        let note = hint(&[
            "--kernel",
            "k",
            "/bin/app",
            "--strace",
            "-x",
            "--stats=1",
            "--no",
        ])
        .unwrap();
        assert!(
            note.contains("--strace --stats=1 after the program are passed"),
            "{note}"
        );
        assert_eq!(hint(&["--kernel", "k", "--", "/bin/app", "--strace"]), None);
        assert_eq!(hint(&["--kernel", "k", "/bin/app", "-x", "--color"]), None);
        assert_eq!(hint(&["--kernel", "k"]), None);
    }

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("astra-vmm").chain(args.iter().copied()))
    }

    fn os(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    #[test]
    fn sizes_parse_with_suffixes() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("64K"), Ok(64 << 10));
        assert_eq!(parse_size("256M"), Ok(256 << 20));
        assert_eq!(parse_size("2g"), Ok(2 << 30));
        assert!(parse_size("").is_err());
        assert!(parse_size("M").is_err());
        assert!(parse_size("-1M").is_err());
        assert!(parse_size("1.5G").is_err());
        assert!(parse_size("99999999999999999999G").is_err());
        assert!(parse_size("17179869184G").is_err());
    }

    #[test]
    fn mem_must_be_in_range_and_page_aligned() {
        assert_eq!(parse_mem("16M"), Ok(16 << 20));
        assert_eq!(parse_mem("3G"), Ok(3 << 30));
        assert!(parse_mem("8M").unwrap_err().contains("from 16M to 3G"));
        assert!(parse_mem("4G").is_err());
        assert!(parse_mem("16777217").is_err());
        assert!(parse_mem("20000K").is_ok());
    }

    #[test]
    fn sizes_format_with_the_largest_suffix() {
        assert_eq!(format_size(3 << 30), "3G");
        assert_eq!(format_size(16 << 20), "16M");
        assert_eq!(format_size(12 << 10), "12K");
        assert_eq!(format_size(1000), "1000");
    }

    #[test]
    fn defaults() {
        let cli = parse(&["--kernel", "k.elf"]).unwrap();
        assert_eq!(cli.mem, 256 << 20);
        assert_eq!(cli.cpus, 1);
        assert_eq!(cli.log_level, LogLevel::Warn);
        let config = cli.into_config().unwrap();
        assert_eq!(config.cmdline, "init=/init");
        assert_eq!(config.init.argv, b"/init\0");
        assert_eq!(config.init.cwd, b"/");
        assert_eq!(config.init.envp, b"PATH=/bin\0HOME=/\0TERM=dumb\0");
        assert_eq!(config.timeout, None);
        assert_eq!(config.rootfs, None);
    }

    #[test]
    fn kernel_defaults_to_one_found_beside_the_vmm() {
        // The test binary lives in target/*/deps: the build tree's kernel, if built, is
        // the one found; the flag wins over it.
        let cli = parse(&[]).unwrap();
        assert_eq!(cli.kernel, std::env::var_os(KERNEL_ENV).map(PathBuf::from));
        let config = parse(&["--kernel", "k.elf"])
            .unwrap()
            .into_config()
            .unwrap();
        assert_eq!(config.kernel, Path::new("k.elf"));
    }

    #[test]
    fn bad_flags_name_the_flag() {
        let err = parse(&["--kernel", "k", "--mem", "1M"]).unwrap_err();
        assert!(err.to_string().contains("--mem"), "{err}");
        let err = parse(&["--kernel", "k", "--cpus", "2"]).unwrap_err();
        assert!(
            err.to_string().contains("only 1 vCPU is supported yet"),
            "{err}"
        );
        let err = parse(&["--kernel", "k", "--timeout", "0"]).unwrap_err();
        assert!(err.to_string().contains("--timeout"), "{err}");
        assert!(parse(&["--kernel", "k", "--log-level", "loud"]).is_err());
    }

    #[test]
    fn a_repeated_flag_overrides_the_earlier_one() {
        let cli = parse(&["--kernel", "k", "--timeout", "20", "--timeout", "0.5"]).unwrap();
        assert_eq!(cli.timeout, Some(Duration::from_millis(500)));
    }

    #[test]
    fn gdb_flag_tells_the_kernel() {
        let config = parse(&["--kernel", "k", "--gdb", ":1234"])
            .unwrap()
            .into_config()
            .unwrap();
        assert_eq!(config.gdb, Some(GdbAddress::Tcp("127.0.0.1:1234".into())));
        assert!(config.cmdline.split(' ').any(|p| p == "astra.gdb"));
        let plain = parse(&["--kernel", "k"]).unwrap().into_config().unwrap();
        assert_eq!(plain.gdb, None);
        assert!(!plain.cmdline.contains("astra.gdb"));
        assert!(parse(&["--kernel", "k", "--gdb", "1234"]).is_err());
    }

    #[test]
    fn timeouts_accept_fractions() {
        assert_eq!(parse_timeout("2.5"), Ok(Duration::from_millis(2500)));
        assert_eq!(parse_timeout("3"), Ok(Duration::from_secs(3)));
        assert!(parse_timeout("-1").is_err());
        assert!(parse_timeout("nan").is_err());
        assert!(parse_timeout("inf").is_err());
        assert!(parse_timeout("1e300").is_err());
    }

    #[test]
    fn timeouts_outside_a_millisecond_to_a_billion_seconds_are_refused() {
        assert_eq!(parse_timeout("0.001"), Ok(TIMEOUT_MIN));
        assert_eq!(parse_timeout("1e9"), Ok(TIMEOUT_MAX));
        for bad in [
            "1e19",
            "9.3e18",
            "1e10",
            "1.0000001e9",
            "1e-300",
            "0.0009",
            "5e-324",
        ] {
            let err = parse_timeout(bad).unwrap_err();
            assert!(
                err.contains("from 0.001 to 1000000000 seconds"),
                "{bad}: {err}"
            );
        }
        let err = parse(&["--kernel", "k", "--timeout", "1e19"]).unwrap_err();
        assert!(err.to_string().contains("--timeout"), "{err}");
    }

    #[test]
    fn program_after_double_dash_becomes_init_and_argv() {
        let cli = parse(&[
            "--kernel",
            "k",
            "--cmdline",
            "quiet  loglevel=3",
            "--strace",
            "--stats",
            "--",
            "/bin/echo",
            "hello",
            "",
            "--world",
        ])
        .unwrap();
        let config = cli.into_config().unwrap();
        assert_eq!(
            config.cmdline,
            "quiet loglevel=3 astra.strace astra.stats init=/bin/echo"
        );
        assert!(config.stats);
        assert_eq!(config.init.argv, b"/bin/echo\0hello\0\0--world\0");
    }

    #[test]
    fn init_in_cmdline_is_used_unless_also_given_after_double_dash() {
        let (cmdline, argv) = compose_boot_args("init=/bin/sh", &[], &[]).unwrap();
        assert_eq!(cmdline, "init=/bin/sh");
        assert_eq!(argv, os(&["/bin/sh"]));
        assert_eq!(
            compose_boot_args("init=/bin/sh", &[], &os(&["/bin/x"])),
            Err(CliError::InitGivenTwice)
        );
    }

    #[test]
    fn program_paths_must_fit_on_the_cmdline() {
        assert!(matches!(
            compose_boot_args("", &[], &os(&["/bin/my app"])),
            Err(CliError::BadProgramPath(_))
        ));
        assert!(matches!(
            compose_boot_args("", &[], &os(&[""])),
            Err(CliError::BadProgramPath(_))
        ));
    }

    #[test]
    fn cmdline_must_fit_with_its_nul() {
        let fits = "x".repeat(CMDLINE_MAX as usize - 1 - " init=/init".len());
        assert!(compose_boot_args(&fits, &[], &[]).is_ok());
        let too_long = format!("{fits}y");
        assert!(matches!(
            compose_boot_args(&too_long, &[], &[]),
            Err(CliError::CmdlineTooLong { .. })
        ));
    }

    #[test]
    fn argv_must_have_no_nul() {
        let mut cli = parse(&["--kernel", "k", "/x"]).unwrap();
        cli.program.push(OsString::from_vec(b"a\0b".to_vec()));
        assert_eq!(
            cli.into_config().unwrap_err(),
            CliError::InitArgs(InitArgsError::ArgvNul { index: 1 })
        );
    }

    #[test]
    fn env_and_cwd_flags() {
        let host = || vec![(OsString::from("USER"), OsString::from("me"))];
        let cli = parse(&[
            "--kernel", "k", "-e", "A=1", "--env", "B=x y", "-e", "USER", "--cwd", "/tmp", "/x",
        ])
        .unwrap();
        let config = cli.into_config_with(host()).unwrap();
        assert_eq!(
            config.init.envp,
            b"PATH=/bin\0HOME=/\0TERM=dumb\0A=1\0B=x y\0USER=me\0"
        );
        assert_eq!(config.init.cwd, b"/tmp");
        let cli = parse(&["--kernel", "k", "--env-host", "-e", "A=1", "/x"]).unwrap();
        let config = cli.into_config_with(host()).unwrap();
        assert_eq!(config.init.envp, b"USER=me\0A=1\0");
        let err = parse(&["--kernel", "k", "--cwd", "tmp"])
            .unwrap()
            .into_config()
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("--cwd 'tmp' must be an absolute path"),
            "{err}"
        );
        // -e after the program belongs to the program.
        let cli = parse(&["--kernel", "k", "/x", "-e", "A=1"]).unwrap();
        assert!(cli.env.is_empty());
    }

    #[test]
    fn help_documents_exit_codes_and_examples() {
        use clap::CommandFactory;
        let help = Cli::command().render_long_help().to_string();
        assert!(help.contains("Exit codes:"));
        assert!(help.contains("253"));
        assert!(help.contains("Examples:"));
        assert!(help.contains("--strace"));
        assert!(help.contains("--stats"));
        assert!(help.contains("strace -c"));
        assert!(help.contains("VM-exit"));
    }
}

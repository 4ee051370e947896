//! `astra-vmm`: parses the command line, runs the VM, and turns how it ended into the exit
//! code (see `astra_vmm::exit_code`).

use std::process::ExitCode;

use astra_vmm::cli::Cli;
use astra_vmm::exit_code::{self, Outcome};
use astra_vmm::report;
use clap::error::ErrorKind;
use clap::Parser;

fn main() -> ExitCode {
    astra_vmm::cli::drop_empty_env_defaults();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
            // A help text nobody can read (stdout closed) is not an error either.
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            // clap's message starts with "error: "; keep the usual prefix in front of it.
            report::write_stderr(format!("astra-vmm: {}", e.render()).as_bytes());
            return ExitCode::from(exit_code::USAGE);
        }
    };
    let raw: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    if let Some(note) = astra_vmm::cli::ambiguity_hint(&raw, &cli.program) {
        report!("{note}");
    }
    env_logger::Builder::new()
        .filter_level(cli.log_level.into())
        .format_timestamp_micros()
        .init();
    let config = match cli.into_config() {
        Ok(config) => config,
        Err(e) => {
            report!("astra-vmm: error: {e}");
            return ExitCode::from(exit_code::USAGE);
        }
    };
    astra_vmm::run_and_exit(&config, |result| match result {
        Ok(outcome) => {
            report_outcome(&outcome);
            outcome.exit_code()
        }
        Err(e) => {
            let code = e.exit_code();
            report!("astra-vmm: error: {:#}", anyhow::Error::new(e));
            code
        }
    })
}

/// Tells the user about endings that are not the program's own.
fn report_outcome(outcome: &Outcome) {
    match outcome {
        Outcome::Program(status) => log::info!("guest program exited with status {status}"),
        Outcome::KernelPanic => report!("astra-vmm: guest kernel panicked"),
        Outcome::RootfsRefused => report!(
            "astra-vmm: error: the guest kernel could not mount the rootfs (its message is above)"
        ),
        Outcome::GuestCrash { reason, registers } => {
            report!("astra-vmm: guest crashed: {reason}");
            if let Some(registers) = registers {
                report!("{registers}");
            }
        }
        Outcome::Interrupted(signal) => {
            report!("astra-vmm: stopped the guest on signal {signal}")
        }
        Outcome::Timeout(after) => {
            report!("astra-vmm: guest timed out after {} s", after.as_secs_f64())
        }
    }
}

//! `astra-vmm`: parses the command line, runs the VM, and turns how it ended into the exit
//! code (see `astra_vmm::exit_code`).

use std::process::ExitCode;

use astra_vmm::cli::Cli;
use astra_vmm::exit_code::{self, Outcome};
use clap::error::ErrorKind;
use clap::Parser;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            // clap's message starts with "error: "; keep the usual prefix in front of it.
            eprint!("astra-vmm: {}", e.render());
            return ExitCode::from(exit_code::USAGE);
        }
    };
    env_logger::Builder::new()
        .filter_level(cli.log_level.into())
        .format_timestamp_micros()
        .init();
    let config = match cli.into_config() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("astra-vmm: error: {e}");
            return ExitCode::from(exit_code::USAGE);
        }
    };
    astra_vmm::run_and_exit(&config, |result| match result {
        Ok(outcome) => {
            report(&outcome);
            outcome.exit_code()
        }
        Err(e) => {
            let code = e.exit_code();
            eprintln!("astra-vmm: error: {:#}", anyhow::Error::new(e));
            code
        }
    })
}

/// Tells the user about endings that are not the program's own.
fn report(outcome: &Outcome) {
    match outcome {
        Outcome::Program(status) => log::info!("guest program exited with status {status}"),
        Outcome::KernelPanic => eprintln!("astra-vmm: guest kernel panicked"),
        Outcome::GuestCrash { reason, registers } => {
            eprintln!("astra-vmm: guest crashed: {reason}");
            if let Some(registers) = registers {
                eprintln!("{registers}");
            }
        }
        Outcome::Timeout(after) => {
            eprintln!("astra-vmm: guest timed out after {} s", after.as_secs_f64())
        }
    }
}

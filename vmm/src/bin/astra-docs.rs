//! `astra-docs`: writes astra-vmm's shell completions and man page, generated from its clap
//! definition (`make completions`, `make man`).
//!
//! Usage: `astra-docs completions DIR` (bash, zsh, fish and elvish scripts) or
//! `astra-docs man DIR` (`astra-vmm.1`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use astra_vmm::cli::Cli;
use clap::CommandFactory;
use clap_complete::Shell;

fn completions(dir: &Path) -> anyhow::Result<()> {
    let mut command = Cli::command();
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish, Shell::Elvish] {
        let path = clap_complete::generate_to(shell, &mut command, "astra-vmm", dir).with_context(
            || format!("cannot write the {shell} completions in {}", dir.display()),
        )?;
        println!("{}", path.display());
    }
    Ok(())
}

fn man(dir: &Path) -> anyhow::Result<()> {
    let path = dir.join("astra-vmm.1");
    let mut page = Vec::new();
    clap_mangen::Man::new(Cli::command())
        .render(&mut page)
        .context("cannot render the man page")?;
    std::fs::write(&path, page).with_context(|| format!("cannot write {}", path.display()))?;
    println!("{}", path.display());
    Ok(())
}

fn run(args: &[String]) -> anyhow::Result<()> {
    let (what, dir) = match args {
        [what, dir] => (what.as_str(), PathBuf::from(dir)),
        _ => bail!("usage: astra-docs completions|man DIR"),
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    match what {
        "completions" => completions(&dir),
        "man" => man(&dir),
        other => bail!("unknown output '{other}': use completions or man"),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("astra-docs: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

//! `mkrootfs`: builds an astra root filesystem TAR, deterministically, from a host directory
//! or from a manifest (see `mkrootfs --help` and `images/default.manifest`).

use mkrootfs::{archive, manifest, tree};
#[cfg(test)]
#[path = "testutil.rs"]
mod testutil;

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{ArgGroup, Parser};

/// Build an astra root filesystem TAR (GNU format, sorted entries, mtime 0, uid/gid 0).
#[derive(Debug, Parser)]
#[command(name = "mkrootfs", version, after_long_help = manifest::SYNTAX)]
#[command(group(ArgGroup::new("input").required(true).args(["dir", "manifest"])))]
struct Cli {
    /// Where to write the TAR (replaced atomically).
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// Put every file, directory and symlink under DIR into the image.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// Build the image a manifest describes (syntax in --help).
    #[arg(long, value_name = "FILE")]
    manifest: Option<PathBuf>,
    /// Where a manifest's relative `file` sources are looked up first; may be repeated (a
    /// name found in more than one is an error).
    #[arg(long, value_name = "DIR", conflicts_with = "dir")]
    bin_dir: Vec<PathBuf>,
}

fn main() {
    if let Err(err) = run(Cli::parse()) {
        eprintln!("mkrootfs: {err:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let image = match (&cli.dir, &cli.manifest) {
        (Some(dir), _) => tree::read_tree(dir)?,
        (None, Some(manifest)) => manifest::load(manifest, &cli.bin_dir)?,
        (None, None) => unreachable!("clap requires --dir or --manifest"),
    };
    let size_bytes = write_atomically(&cli.out, |out| {
        archive::write_archive(&image, BufWriter::new(out))?
            .into_inner()
            .map_err(|e| e.into_error())
            .context("flushing")?;
        Ok(())
    })?;
    eprintln!(
        "mkrootfs: wrote {} ({} entries, {} KiB)",
        cli.out.display(),
        image.len(),
        size_bytes.div_ceil(1024)
    );
    Ok(())
}

/// Writes `path` through a temporary file beside it, renamed into place only on success, so
/// an interrupted build never leaves a truncated archive behind. Returns the size written.
fn write_atomically(
    path: &Path,
    write: impl FnOnce(&mut File) -> anyhow::Result<()>,
) -> anyhow::Result<u64> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create '{}'", parent.display()))?;
    }
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(".tmp");
    let tmp = PathBuf::from(tmp_name);
    let result = (|| {
        let mut file =
            File::create(&tmp).with_context(|| format!("cannot create '{}'", tmp.display()))?;
        write(&mut file)?;
        file.flush()?;
        file.sync_all()
            .with_context(|| format!("cannot write '{}'", tmp.display()))?;
        let size = file.metadata()?.len();
        std::fs::rename(&tmp, path).with_context(|| {
            format!("cannot rename '{}' to '{}'", tmp.display(), path.display())
        })?;
        Ok(size)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::TempDir;

    #[test]
    fn cli_needs_exactly_one_input() {
        assert!(Cli::try_parse_from(["mkrootfs", "--out", "x.tar"]).is_err());
        assert!(
            Cli::try_parse_from(["mkrootfs", "--out", "x", "--dir", "d", "--manifest", "m"])
                .is_err()
        );
        assert!(
            Cli::try_parse_from(["mkrootfs", "--out", "x", "--dir", "d", "--bin-dir", "b"])
                .is_err()
        );
        let cli = Cli::try_parse_from([
            "mkrootfs",
            "--out",
            "x",
            "--manifest",
            "m",
            "--bin-dir",
            "b",
        ])
        .unwrap();
        assert_eq!(cli.bin_dir, [PathBuf::from("b")]);
        let cli = Cli::try_parse_from([
            "mkrootfs",
            "--out",
            "x",
            "--manifest",
            "m",
            "--bin-dir",
            "b",
            "--bin-dir",
            "c",
        ])
        .unwrap();
        assert_eq!(cli.bin_dir, [PathBuf::from("b"), PathBuf::from("c")]);
    }

    #[test]
    fn the_default_manifest_parses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../default.manifest");
        let text = std::fs::read_to_string(path).unwrap();
        let lines = manifest::parse(&text).unwrap();
        let paths: Vec<&str> = lines.iter().map(|l| l.path.as_str()).collect();
        for wanted in [
            "/init",
            "/bin/hello",
            "/bin/true",
            "/bin/false",
            "/bin/fault",
            "/bin/spin",
            "/etc/motd",
            "/bin/sh",
            "/tmp",
            "/bin/ls",
            "/bin/wc",
            "/bin/stdcheck",
            "/bin/cat",
            "/bin/badptr",
            "/bin/hello-std",
            "/etc/astra/hello.txt",
            "/etc/astra/dir/sub",
        ] {
            assert!(
                paths.contains(&wanted),
                "{wanted} missing from the default manifest"
            );
        }
    }

    #[test]
    fn the_bench_manifest_parses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench.manifest");
        let text = std::fs::read_to_string(path).unwrap();
        let lines = manifest::parse(&text).unwrap();
        let paths: Vec<&str> = lines.iter().map(|l| l.path.as_str()).collect();
        assert_eq!(paths, ["/bin/readfile", "/bin/hello-std", "/data/64m.bin"]);
    }

    #[test]
    fn writes_from_a_directory_end_to_end() {
        let dir = TempDir::new("main-dir");
        std::fs::create_dir(dir.path().join("root")).unwrap();
        std::fs::write(dir.path().join("root/init"), b"elf").unwrap();
        let out = dir.path().join("out/fs.tar");
        let cli = Cli::try_parse_from([
            "mkrootfs".as_ref(),
            "--out".as_ref(),
            out.as_os_str(),
            "--dir".as_ref(),
            dir.path().join("root").as_os_str(),
        ])
        .unwrap();
        run(cli).unwrap();
        let mut archive = tar::Archive::new(File::open(&out).unwrap());
        let names: Vec<String> = archive
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert_eq!(names, ["init"]);
        assert!(!dir.path().join("out/fs.tar.tmp").exists());
    }
}

//! `gendata --size SIZE --seed N --out FILE`: a host tool of the build (not an image
//! program): writes SIZE deterministic pseudo-random bytes, so the benchmark's data file is
//! made at build time, identical every time, and never committed.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use astra_std_apps::{error_text, parse_size, DataPattern};

const USAGE: &str = "usage: gendata --size SIZE[K|M|G] --seed N --out FILE";

fn parse(mut args: impl Iterator<Item = String>) -> Result<(u64, u64, PathBuf), String> {
    let (mut size, mut seed, mut out) = (None, None, None);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--size" => size = Some(parse_size(&value).ok_or(format!("bad size {value}"))?),
            "--seed" => seed = Some(value.parse().map_err(|_| format!("bad seed {value}"))?),
            "--out" => out = Some(PathBuf::from(value)),
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    match (size, seed, out) {
        (Some(size), Some(seed), Some(out)) => Ok((size, seed, out)),
        _ => Err("--size, --seed and --out are required".into()),
    }
}

fn main() -> ExitCode {
    let (size, seed, out) = match parse(std::env::args().skip(1)) {
        Ok(parsed) => parsed,
        Err(message) => {
            eprintln!("gendata: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let tmp = out.with_extension("tmp");
    let result = (|| -> std::io::Result<()> {
        let mut writer = BufWriter::new(File::create(&tmp)?);
        let mut pattern = DataPattern::new(seed);
        let mut chunk = vec![0u8; 1 << 20];
        let mut left = size;
        while left > 0 {
            let n = left.min(chunk.len() as u64) as usize;
            pattern.fill(&mut chunk[..n]);
            writer.write_all(&chunk[..n])?;
            left -= n as u64;
        }
        writer
            .into_inner()
            .map_err(|e| e.into_error())?
            .sync_all()?;
        std::fs::rename(&tmp, &out)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        eprintln!("gendata: {}: {}", out.display(), error_text(&e));
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

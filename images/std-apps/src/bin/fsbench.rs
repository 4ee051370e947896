//! File-system costs, for `make bench` (run in astra and on the host, the same binary, in
//! a tmpfs: `/dev/shm` where there is one, else `/tmp`): prints `fsbench <name> ns=<n>`
//! lines, each the median over three rounds.
//!
//! - `create_write_unlink`: create, write 4 KiB, close and unlink one of 10,000 files (per file);
//! - `write_256m` / `read_256m`: a 256 MiB file written then read in 1 MiB steps (whole);
//! - `stat`: `metadata` of one of 10,000 existing paths (per call);
//! - `walk_20k`: a recursive `read_dir` walk of a 20,000-entry tree (whole).

use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

const ROUNDS: usize = 3;
const MIB: usize = 1 << 20;

fn median(mut v: Vec<u64>) -> u64 {
    v.sort_unstable();
    v[v.len() / 2]
}

/// Runs `f` (returning its own timed ns) `ROUNDS` times; the median.
fn rounds(mut f: impl FnMut() -> std::io::Result<u64>) -> std::io::Result<u64> {
    let mut v = Vec::new();
    for _ in 0..ROUNDS {
        v.push(f()?);
    }
    Ok(median(v))
}

fn create_write_unlink(dir: &Path) -> std::io::Result<u64> {
    let data = [7u8; 4096];
    let start = Instant::now();
    for i in 0..10_000 {
        let p = dir.join(format!("f{i}"));
        File::create(&p)?.write_all(&data)?;
        fs::remove_file(&p)?;
    }
    Ok(start.elapsed().as_nanos() as u64 / 10_000)
}

fn write_read(dir: &Path) -> std::io::Result<(u64, u64)> {
    let p = dir.join("big");
    let chunk = vec![0x5au8; MIB];
    let start = Instant::now();
    let mut f = File::create(&p)?;
    for _ in 0..256 {
        f.write_all(&chunk)?;
    }
    drop(f);
    let write = start.elapsed().as_nanos() as u64;
    let mut buf = vec![0u8; MIB];
    let start = Instant::now();
    let mut f = File::open(&p)?;
    let mut total = 0;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        total += n;
    }
    let read = start.elapsed().as_nanos() as u64;
    fs::remove_file(&p)?;
    if total != 256 * MIB {
        return Err(std::io::Error::other(format!("read {total} bytes")));
    }
    Ok((write, read))
}

fn stat_paths(dir: &Path) -> std::io::Result<u64> {
    let d = dir.join("stat");
    fs::create_dir(&d)?;
    let paths: Vec<PathBuf> = (0..10_000).map(|i| d.join(format!("s{i}"))).collect();
    for p in &paths {
        File::create(p)?;
    }
    let ns = rounds(|| {
        let start = Instant::now();
        for p in &paths {
            fs::metadata(p)?;
        }
        Ok(start.elapsed().as_nanos() as u64 / paths.len() as u64)
    })?;
    fs::remove_dir_all(&d)?;
    Ok(ns)
}

fn walk(dir: &Path, count: &mut usize) -> std::io::Result<()> {
    for e in fs::read_dir(dir)? {
        let e = e?;
        *count += 1;
        if e.file_type()?.is_dir() {
            walk(&e.path(), count)?;
        }
    }
    Ok(())
}

fn walk_tree(dir: &Path) -> std::io::Result<u64> {
    let d = dir.join("tree");
    // 100 directories of 199 files: 20,000 entries.
    for i in 0..100 {
        let sub = d.join(format!("d{i}"));
        fs::create_dir_all(&sub)?;
        for j in 0..199 {
            File::create(sub.join(format!("f{j}")))?;
        }
    }
    let ns = rounds(|| {
        let mut count = 0;
        let start = Instant::now();
        walk(&d, &mut count)?;
        let ns = start.elapsed().as_nanos() as u64;
        if count != 20_000 {
            return Err(std::io::Error::other(format!("walked {count} entries")));
        }
        Ok(ns)
    })?;
    fs::remove_dir_all(&d)?;
    Ok(ns)
}

fn run(dir: &Path) -> std::io::Result<()> {
    let report = |name: &str, ns: u64| println!("fsbench {name} ns={ns}");
    report("create_write_unlink", rounds(|| create_write_unlink(dir))?);
    let mut writes = Vec::new();
    let mut reads = Vec::new();
    for _ in 0..ROUNDS {
        let (w, r) = write_read(dir)?;
        writes.push(w);
        reads.push(r);
    }
    report("write_256m", median(writes));
    report("read_256m", median(reads));
    report("stat", stat_paths(dir)?);
    report("walk_20k", walk_tree(dir)?);
    Ok(())
}

fn main() -> ExitCode {
    let base = ["/dev/shm", "/tmp"]
        .into_iter()
        .map(Path::new)
        .find(|p| p.is_dir())
        .unwrap_or(Path::new("/tmp"));
    let dir = base.join(format!("fsbench-{}", std::process::id()));
    let result = fs::create_dir(&dir).and_then(|()| run(&dir));
    let _ = fs::remove_dir_all(&dir);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fsbench: {e}");
            ExitCode::FAILURE
        }
    }
}

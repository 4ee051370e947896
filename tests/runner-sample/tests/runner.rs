//! What users' tests typically do, run through astra: fixtures found through
//! CARGO_MANIFEST_DIR, variables cargo sets, temporary files, threads, child processes.

use std::io::{Read, Write};
use std::path::Path;

#[test]
fn reads_a_fixture_relative_to_the_manifest_dir() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/words.txt");
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(runner_sample::word_count(&text), 4);
}

#[test]
fn runs_in_the_package_directory_as_cargo_starts_it() {
    // Cargo runs a test binary (through its runner) in the package's directory, so
    // relative paths name the package's files.
    let cwd = std::env::current_dir().unwrap();
    assert_eq!(cwd, Path::new(env!("CARGO_MANIFEST_DIR")));
    let text = std::fs::read_to_string("tests/fixtures/words.txt").unwrap();
    assert_eq!(runner_sample::word_count(&text), 4);
}

#[test]
fn sees_the_variables_cargo_sets_at_build_time() {
    assert_eq!(env!("CARGO_PKG_NAME"), "runner-sample");
    assert_eq!(env!("CARGO_CRATE_NAME"), "runner");
}

#[test]
fn sees_the_variables_cargo_sets_at_run_time() {
    // Cargo sets these in the environment of the test binary (the runner's, here).
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR at run time");
    assert_eq!(dir, env!("CARGO_MANIFEST_DIR"));
    assert_eq!(
        std::env::var("CARGO_PKG_NAME").as_deref(),
        Ok("runner-sample")
    );
}

#[test]
fn writes_and_reads_back_a_temporary_file() {
    let path = std::env::temp_dir().join(format!("runner-sample-{}", std::process::id()));
    let mut f = std::fs::File::create(&path).unwrap();
    f.write_all(b"temporary\n").unwrap();
    drop(f);
    let mut back = String::new();
    std::fs::File::open(&path)
        .unwrap()
        .read_to_string(&mut back)
        .unwrap();
    assert_eq!(back, "temporary\n");
    std::fs::remove_file(&path).unwrap();
    assert!(!path.exists());
}

#[test]
fn spawns_threads() {
    let (tx, rx) = std::sync::mpsc::channel();
    let handles: Vec<_> = (0..8u64)
        .map(|i| {
            let tx = tx.clone();
            std::thread::spawn(move || tx.send(i * i).unwrap())
        })
        .collect();
    drop(tx);
    for h in handles {
        h.join().unwrap();
    }
    let mut got: Vec<u64> = rx.iter().collect();
    got.sort();
    assert_eq!(got, [0, 1, 4, 9, 16, 25, 36, 49]);
    assert_eq!(runner_sample::parallel_sum(1000, 3), 500_500);
}

#[test]
fn spawns_a_process() {
    // The test binary itself, asked for its test list: a child process with arguments,
    // its output captured through a pipe and its exit status waited for.
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new(exe)
        .args(["--list", "--format", "terse"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let list = String::from_utf8(out.stdout).unwrap();
    assert!(
        list.lines().any(|l| l == "spawns_a_process: test"),
        "{list}"
    );
}

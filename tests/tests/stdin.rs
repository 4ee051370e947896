//! Standard input: the VMM's stdin reaches the guest program through the console-input
//! device byte for byte, in large pieces (a few VM exits per 64 KiB, none through the
//! UART), ends with end of file, and reaches a waiting reader as it arrives without the
//! guest polling. A stdin that is a file or a pipe is one in the guest too: reads return
//! what is there, not a line at a time (`terminal.rs` covers a terminal stdin).

use std::io::Write;
use std::process::ChildStdin;
use std::thread;
use std::time::Duration;

use astra_tests::report::{exit_count, stdin_reads, syscall_count};
use astra_tests::tempdir::TempDir;
use astra_tests::{require_kvm, run_vmm_with_input, Input, Outcome, Workspace};

/// Generous: 4 MiB through `cat` takes about a second here.
const WALL_TIMEOUT: Duration = Duration::from_secs(120);

/// Boots the default kernel and rootfs with `args`, `input` as stdin.
fn boot(args: &[&str], input: Input) -> Outcome {
    require_kvm();
    let mut all = Workspace::locate().default_vm_args();
    all.extend(["--timeout".to_string(), "60".to_string()]);
    all.extend(args.iter().map(|a| a.to_string()));
    run_vmm_with_input(&all, input, WALL_TIMEOUT)
}

/// `len` bytes of deterministic noise (xorshift64): every byte value, newlines included.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Checks that `out` is `cat` having copied `data` exactly, with few console-input exits
/// and no UART input at all.
fn expect_copied(out: &Outcome, data: &[u8]) {
    assert_eq!(out.status, 0, "{}", out.report());
    if out.stdout_bytes != data {
        let first_difference = out
            .stdout_bytes
            .iter()
            .zip(data)
            .position(|(a, b)| a != b)
            .unwrap_or(out.stdout_bytes.len().min(data.len()));
        panic!(
            "stdout differs from stdin: {} bytes out of {}, first difference at {first_difference}\n{}",
            out.stdout_bytes.len(),
            data.len(),
            out.report()
        );
    }
    let input_exits = exit_count(&out.stderr, "io-out 0x504 (console input)");
    // One exit per 64 KiB bounce buffer, plus the odd empty answer while the VMM's stdin
    // thread is behind; the UART would take two per byte.
    let most = 8 + 4 * (data.len() as u64 >> 16);
    assert!(
        (1..=most).contains(&input_exits),
        "{input_exits} console-input exits for {} bytes (at most {most} expected)\n{}",
        data.len(),
        out.report()
    );
    assert!(
        !out.stderr.contains("io-in 0x3f"),
        "input went through the UART\n{}",
        out.report()
    );
    // Output goes out as it comes in: cat's writes are copied straight into the 64 KiB
    // console-output buffer, one exit per write of up to 64 KiB (4 KiB chunks took 16x).
    let output_exits = exit_count(&out.stderr, "io-out 0x503 (console output)");
    let most = 8 + 4 * (data.len() as u64 >> 16);
    assert!(
        output_exits <= most,
        "{output_exits} console-output exits for {} bytes (at most {most} expected)\n{}",
        data.len(),
        out.report()
    );
}

#[test]
fn four_mib_of_binary_from_a_file_pass_through_cat_byte_for_byte() {
    let data = noise(4 << 20, 0x5eed_1234);
    let dir = TempDir::new("stdin-file");
    let path = dir.write("input.bin", &data);
    let out = boot(&["--stats", "--", "/bin/cat"], Input::File(path));
    expect_copied(&out, &data);
}

#[test]
fn binary_from_a_pipe_in_odd_pieces_passes_through_cat_byte_for_byte() {
    let data = noise(1 << 20, 0xfeed_beef);
    let feed = data.clone();
    let writer = move |mut pipe: ChildStdin| {
        // Odd sizes, some larger than the VMM's buffer, so its stdin thread both waits
        // for room and finds partial chunks.
        let sizes = [1, 4095, 70_000, 3, 131_072, 65_536, 17];
        let mut rest = &feed[..];
        for size in sizes.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let n = (*size).min(rest.len());
            if pipe.write_all(&rest[..n]).is_err() {
                return;
            }
            rest = &rest[n..];
        }
    };
    let out = boot(
        &["--stats", "--", "/bin/cat"],
        Input::Pipe(Box::new(writer)),
    );
    expect_copied(&out, &data);
}

#[test]
fn empty_stdin_is_end_of_file_at_once() {
    let out = boot(&["--", "/bin/cat"], Input::Null);
    assert_eq!(out.status, 0, "{}", out.report());
    assert!(out.stdout_bytes.is_empty(), "{}", out.report());
    // A pipe closed without a byte is the same.
    let out = boot(&["--strace", "--", "/bin/cat"], Input::Pipe(Box::new(drop)));
    assert_eq!(out.status, 0, "{}", out.report());
    assert!(out.stdout_bytes.is_empty(), "{}", out.report());
    let reads = stdin_reads(&out.stderr);
    assert_eq!(
        reads,
        [r#"[pid 1] read(0, "", 131072) = 0"#],
        "{}",
        out.report()
    );
}

#[test]
fn a_mebibyte_of_text_lines_from_a_pipe_takes_a_handful_of_reads() {
    // 60-byte lines: a terminal in canonical mode would return each in a read of its own.
    let line = b"abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVW\n";
    let data: Vec<u8> = line.iter().copied().cycle().take(1 << 20).collect();
    let feed = data.clone();
    let out = boot(
        &["--stats", "--", "/bin/cat"],
        Input::Pipe(Box::new(move |mut pipe: ChildStdin| {
            let _ = pipe.write_all(&feed);
        })),
    );
    expect_copied(&out, &data);
    let reads = syscall_count(&out.stderr, "read");
    // cat reads 128 KiB at a time and the VMM buffers 64 KiB: 16 full reads, plus a few
    // short ones while the VMM's stdin thread is behind; line by line it was 17 477.
    assert!(
        (16..=200).contains(&reads),
        "{reads} reads for 1 MiB of text\n{}",
        out.report()
    );
}

#[test]
fn lines_typed_one_by_one_reach_a_waiting_reader_one_read_each() {
    let lines = ["first line\n", "second\n", "the end\n"];
    let writer = move |mut pipe: ChildStdin| {
        for line in lines {
            // The reader has long been waiting when each line arrives.
            thread::sleep(Duration::from_millis(150));
            if pipe.write_all(line.as_bytes()).is_err() {
                return;
            }
        }
    };
    let out = boot(
        &["--strace", "--stats", "--", "/bin/cat"],
        Input::Pipe(Box::new(writer)),
    );
    assert_eq!(out.status, 0, "{}", out.report());
    assert_eq!(out.stdout, lines.concat(), "{}", out.report());
    // Each read returns what has arrived, which is one line here, then end of file.
    let reads = stdin_reads(&out.stderr);
    assert_eq!(
        reads,
        [
            r#"[pid 1] read(0, "first line\n", 131072) = 11"#,
            r#"[pid 1] read(0, "second\n", 131072) = 7"#,
            r#"[pid 1] read(0, "the end\n", 131072) = 8"#,
            r#"[pid 1] read(0, "", 131072) = 0"#,
        ],
        "{}",
        out.report()
    );
    // The guest halts between lines and asks again when the console interrupt says input
    // came: a handful of exits in ~450 ms, where polling at every 1 ms tick takes hundreds.
    let input_exits = exit_count(&out.stderr, "io-out 0x504 (console input)");
    assert!(
        (4..=40).contains(&input_exits),
        "{input_exits} console-input exits\n{}",
        out.report()
    );
    assert!(
        out.elapsed >= Duration::from_millis(450),
        "{}",
        out.report()
    );
}

#[test]
fn lines_that_arrive_together_from_a_pipe_are_read_together() {
    let out = boot(
        &["--strace", "--", "/bin/cat"],
        Input::Pipe(Box::new(|mut pipe: ChildStdin| {
            let _ = pipe.write_all(b"a\nbc\n\nno newline at the end");
        })),
    );
    assert_eq!(out.status, 0, "{}", out.report());
    assert_eq!(
        out.stdout,
        "a\nbc\n\nno newline at the end",
        "{}",
        out.report()
    );
    let reads = stdin_reads(&out.stderr);
    assert_eq!(
        reads,
        [
            r#"[pid 1] read(0, "a\nbc\n\nno newline at the end", 131072) = 27"#,
            r#"[pid 1] read(0, "", 131072) = 0"#,
        ],
        "{}",
        out.report()
    );
}

/// What `busybox stat -L -c %F /dev/stdin` prints on the host with `input` as its stdin.
fn host_stdin_type(input: Input) -> String {
    use std::process::{Command, Stdio};
    let mut cmd = Command::new("/bin/busybox");
    cmd.args(["stat", "-L", "-c", "%F", "/dev/stdin"])
        .stdout(Stdio::piped());
    let feeder = match input {
        Input::Null => {
            cmd.stdin(Stdio::null());
            None
        }
        Input::File(path) => {
            cmd.stdin(std::fs::File::open(&path).unwrap());
            None
        }
        Input::Pipe(feed) => {
            cmd.stdin(Stdio::piped());
            Some(feed)
        }
    };
    let mut child = cmd.spawn().expect("run /bin/busybox on the host");
    if let (Some(feed), Some(pipe)) = (feeder, child.stdin.take()) {
        feed(pipe);
    }
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A harness's `/dev/null` stdin is a character device in the guest too, and a pipe is a
/// FIFO, as on the host: programs that search a piped stdin and leave a device alone
/// (ripgrep, `grep -r` without paths) decide the same way in astra.
#[test]
fn stdin_is_a_character_device_or_a_fifo_as_on_the_host() {
    let args = ["--", "/bin/busybox", "stat", "-L", "-c", "%F", "/dev/stdin"];
    // `stat` never reads its stdin and may be gone before the byte is written: a broken
    // pipe is expected then (on the host and in astra-vmm alike).
    let feed = || {
        Input::Pipe(Box::new(|mut pipe: ChildStdin| {
            let _ = pipe.write_all(b"x");
        }))
    };
    for (name, input, host_input) in [("null", Input::Null, Input::Null), ("pipe", feed(), feed())]
    {
        let expected = host_stdin_type(host_input);
        assert!(
            !expected.is_empty(),
            "{name}: busybox stat printed nothing on the host"
        );
        let out = boot(&args, input);
        assert_eq!(out.status, 0, "{name}: {}", out.report());
        assert_eq!(out.stdout.trim(), expected, "{name}: {}", out.report());
    }
}

//! Running `astra-vmm` (or any host program) with a host-side wall timeout.
//!
//! The guest's own `--timeout` is the VMM's business and is tested as such; the wall timeout
//! here catches the VMM itself hanging. It is enforced without polling: a helper thread waits
//! for the child with `waitid(WNOWAIT)`, which does not reap it, so the child's pid stays ours
//! until we reap it and a kill on timeout can never hit a recycled pid. The exit time it
//! reports is also the precise end of the run, which the boot benchmark relies on.

use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::{exit, shell_command, tail, Workspace};

/// Wall timeout for one `astra-vmm` run when a test has no better number.
pub const DEFAULT_WALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Lines of stdout and stderr shown in failure reports.
pub const REPORT_TAIL_LINES: usize = 25;

/// How a run ended.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// Exit code, or 128+N if the process was killed by signal N (shell convention).
    pub status: i32,
    /// The signal that killed the process itself (not a guest program), if any.
    pub signal: Option<i32>,
    /// Everything the process wrote on stdout (for `astra-vmm`: the guest program's
    /// standard output), as text (invalid UTF-8 replaced).
    pub stdout: String,
    /// The same, byte for byte.
    pub stdout_bytes: Vec<u8>,
    /// Everything the process wrote on stderr (for `astra-vmm`: the program's standard
    /// error, kernel messages, `--strace`/`--stats` output and the VMM's own reports).
    pub stderr: String,
    /// From just before spawning to the moment the process exited.
    pub elapsed: Duration,
    /// The command line, ready to paste into a shell.
    pub command: String,
}

impl Outcome {
    /// A multi-line account of the run: command, status, time, output tails.
    pub fn report(&self) -> String {
        let status = match self.signal {
            Some(sig) => format!("the process was killed by host signal {sig}"),
            None => exit::describe(self.status),
        };
        format!(
            "command: {}\nexit status: {status}\nelapsed: {:.1} ms\n{}",
            self.command,
            self.elapsed.as_secs_f64() * 1e3,
            output_tails(&self.stdout, &self.stderr)
        )
    }
}

/// Why a run produced no [`Outcome`].
#[derive(Debug)]
pub enum RunError {
    /// The program could not be started.
    Spawn {
        /// The command line.
        command: String,
        /// The OS error.
        source: io::Error,
    },
    /// Waiting for the program failed.
    Wait {
        /// The command line.
        command: String,
        /// The OS error.
        source: io::Error,
    },
    /// The program did not exit within the wall timeout and was killed.
    HostTimeout {
        /// The command line.
        command: String,
        /// The timeout that expired.
        wall_timeout: Duration,
        /// Output up to the kill.
        stdout: String,
        /// Error output up to the kill.
        stderr: String,
    },
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunError::Spawn { command, source } => {
                write!(f, "cannot start `{command}`: {source}")
            }
            RunError::Wait { command, source } => {
                write!(f, "cannot wait for `{command}`: {source}")
            }
            RunError::HostTimeout {
                command,
                wall_timeout,
                stdout,
                stderr,
            } => write!(
                f,
                "the process itself hung: no exit within the host wall timeout of {} s, killed \
                 (the guest's --timeout should have ended it first)\ncommand: {command}\n{}",
                wall_timeout.as_secs_f64(),
                output_tails(stdout, stderr)
            ),
        }
    }
}

impl std::error::Error for RunError {}

fn output_tails(stdout: &str, stderr: &str) -> String {
    format!(
        "--- stdout (tail) ---\n{}--- stderr (tail) ---\n{}---",
        tail(stdout, REPORT_TAIL_LINES),
        tail(stderr, REPORT_TAIL_LINES)
    )
}

/// What a run gets as its standard input.
pub enum Input {
    /// Nothing: reads see end of file at once (`/dev/null`).
    Null,
    /// A file, as with `< path`.
    File(PathBuf),
    /// A pipe that a thread of the caller's fills (the pipe closes when it returns).
    Pipe(Box<dyn FnOnce(ChildStdin) + Send>),
}

/// Runs `program args...` with stdin closed, capturing its output, killing it after
/// `wall_timeout`.
pub fn try_run<S: AsRef<str>>(
    program: &Path,
    args: &[S],
    wall_timeout: Duration,
) -> Result<Outcome, RunError> {
    try_run_with_input(program, args, Input::Null, wall_timeout)
}

/// Like [`try_run`], with `input` as the program's standard input.
pub fn try_run_with_input<S: AsRef<str>>(
    program: &Path,
    args: &[S],
    input: Input,
    wall_timeout: Duration,
) -> Result<Outcome, RunError> {
    try_run_signalled(program, args, input, None, wall_timeout)
}

/// Like [`try_run_with_input`], sending the program signal `signal.0` after `signal.1`
/// (as a terminal's Ctrl-C would; a SIGTSTP is followed by SIGCONT a second later).
pub fn try_run_signalled<S: AsRef<str>>(
    program: &Path,
    args: &[S],
    input: Input,
    signal: Option<(i32, Duration)>,
    wall_timeout: Duration,
) -> Result<Outcome, RunError> {
    let args: Vec<String> = args.iter().map(|a| a.as_ref().to_string()).collect();
    let command = shell_command(program, &args);
    let spawn_error = |source| RunError::Spawn {
        command: command.clone(),
        source,
    };
    let (stdin, feeder) = match input {
        Input::Null => (Stdio::null(), None),
        Input::File(path) => (Stdio::from(File::open(path).map_err(spawn_error)?), None),
        Input::Pipe(feeder) => (Stdio::piped(), Some(feeder)),
    };
    let started = Instant::now();
    let mut child = Command::new(program)
        .args(&args)
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(spawn_error)?;
    if let (Some(feeder), Some(pipe)) = (feeder, child.stdin.take()) {
        thread::spawn(move || feeder(pipe));
    }
    let stdout_reader = spawn_reader(child.stdout.take());
    let stderr_reader = spawn_reader(child.stderr.take());

    let pid = child.id();
    // Set (under its lock) before the child is reaped: the signal is never sent to a pid
    // that may have been reused.
    let reaped = std::sync::Arc::new(std::sync::Mutex::new(false));
    if let Some((number, after)) = signal {
        let reaped = std::sync::Arc::clone(&reaped);
        let reaped_for_cont = std::sync::Arc::clone(&reaped);
        thread::spawn(move || {
            thread::sleep(after);
            let reaped = reaped.lock().unwrap_or_else(|e| e.into_inner());
            if !*reaped {
                // SAFETY: kill(2) with a plain pid and signal number; the child is not
                // reaped yet (checked under the lock), so the pid is still its own.
                unsafe { libc::kill(pid as libc::pid_t, number) };
            }
            drop(reaped);
            if number == libc::SIGTSTP {
                // A Ctrl-Z is followed by the shell's `fg` a second later.
                thread::sleep(Duration::from_secs(1));
                let reaped = reaped_for_cont.lock().unwrap_or_else(|e| e.into_inner());
                if !*reaped {
                    // SAFETY: as above.
                    unsafe { libc::kill(pid as libc::pid_t, libc::SIGCONT) };
                }
            }
        });
    }
    let mark_reaped = || *reaped.lock().unwrap_or_else(|e| e.into_inner()) = true;
    let (exit_tx, exit_rx) = mpsc::channel();
    thread::spawn(move || {
        let result = wait_until_exited(pid).map(|()| Instant::now());
        // The receiver is gone if the run already timed out; nothing left to tell.
        let _ = exit_tx.send(result);
    });

    let exited_at = match exit_rx.recv_timeout(wall_timeout) {
        Ok(Ok(at)) => Some(at),
        Ok(Err(source)) => {
            mark_reaped();
            kill_and_reap(&mut child);
            return Err(RunError::Wait { command, source });
        }
        Err(_) => None,
    };
    mark_reaped();
    let Some(exited_at) = exited_at else {
        kill_and_reap(&mut child);
        return Err(RunError::HostTimeout {
            command,
            wall_timeout,
            stdout: lossy(join_reader(stdout_reader)),
            stderr: lossy(join_reader(stderr_reader)),
        });
    };
    let status = child.wait().map_err(|source| RunError::Wait {
        command: command.clone(),
        source,
    })?;
    let (status, signal) = match (status.code(), status.signal()) {
        (Some(code), _) => (code, None),
        (None, Some(sig)) => (128 + sig, Some(sig)),
        (None, None) => (-1, None),
    };
    let stdout_bytes = join_reader(stdout_reader);
    Ok(Outcome {
        status,
        signal,
        stdout: String::from_utf8_lossy(&stdout_bytes).into_owned(),
        stdout_bytes,
        stderr: lossy(join_reader(stderr_reader)),
        elapsed: exited_at - started,
        command,
    })
}

/// Runs the built `astra-vmm` with `args`; panics (failing the test) if it cannot be started
/// or hangs past `wall_timeout`.
pub fn run_vmm<S: AsRef<str>>(args: &[S], wall_timeout: Duration) -> Outcome {
    run_vmm_with_input(args, Input::Null, wall_timeout)
}

/// Like [`run_vmm`], with `input` as the VMM's standard input.
pub fn run_vmm_with_input<S: AsRef<str>>(
    args: &[S],
    input: Input,
    wall_timeout: Duration,
) -> Outcome {
    let vmm = Workspace::locate().vmm();
    match try_run_with_input(&vmm, args, input, wall_timeout) {
        Ok(outcome) => outcome,
        Err(err) => panic!("{err}"),
    }
}

fn kill_and_reap(child: &mut Child) {
    // Errors mean it is already gone, which is what we want.
    let _ = child.kill();
    let _ = child.wait();
}

fn spawn_reader<R: Read + Send + 'static>(pipe: Option<R>) -> Option<JoinHandle<Vec<u8>>> {
    let mut pipe = pipe?;
    Some(thread::spawn(move || {
        let mut bytes = Vec::new();
        // A read error ends the capture; what arrived so far is still worth reporting.
        let _ = pipe.read_to_end(&mut bytes);
        bytes
    }))
}

fn join_reader(reader: Option<JoinHandle<Vec<u8>>>) -> Vec<u8> {
    reader
        .and_then(|handle| handle.join().ok())
        .unwrap_or_default()
}

fn lossy(bytes: Vec<u8>) -> String {
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Blocks until child `pid` has exited, leaving it unreaped.
fn wait_until_exited(pid: u32) -> io::Result<()> {
    // SAFETY: siginfo_t is plain old data for which all-zero bytes are a valid value.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: `info` is a valid, writable siginfo_t that outlives the call; WNOWAIT
        // leaves the child to be reaped by its `Child` owner.
        let rc = unsafe {
            libc::waitid(
                libc::P_PID,
                pid as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOWAIT,
            )
        };
        if rc == 0 {
            return Ok(());
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captures_status_and_output() {
        let out = try_run(
            Path::new("/bin/sh"),
            &["-c", "echo out; echo err >&2; exit 7"],
            Duration::from_secs(10),
        )
        .unwrap();
        assert_eq!(out.status, 7);
        assert_eq!(out.signal, None);
        assert_eq!(out.stdout, "out\n");
        assert_eq!(out.stderr, "err\n");
        assert!(out.command.starts_with("/bin/sh -c 'echo out;"));
        assert!(out.report().contains("exit status: 7"));
    }

    #[test]
    fn input_comes_from_a_file_or_a_pipe_and_output_is_kept_byte_for_byte() {
        let bytes: Vec<u8> = (0..=255u8).rev().collect();
        let path = std::env::temp_dir().join(format!("astra-run-input-{}", std::process::id()));
        std::fs::write(&path, &bytes).unwrap();
        let cat = Path::new("/bin/cat");
        let out = try_run_with_input(
            cat,
            &[] as &[&str],
            Input::File(path.clone()),
            Duration::from_secs(10),
        )
        .unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(out.stdout_bytes, bytes);
        let piped = bytes.clone();
        let out = try_run_with_input(
            cat,
            &[] as &[&str],
            Input::Pipe(Box::new(move |mut pipe| {
                use std::io::Write;
                pipe.write_all(&piped).unwrap();
            })),
            Duration::from_secs(10),
        )
        .unwrap();
        assert_eq!(out.stdout_bytes, bytes);
        let out = try_run(cat, &[] as &[&str], Duration::from_secs(10)).unwrap();
        assert!(out.stdout_bytes.is_empty());
    }

    #[test]
    fn a_signal_death_maps_to_128_plus_n() {
        let out = try_run(
            Path::new("/bin/sh"),
            &["-c", "kill -9 $$"],
            Duration::from_secs(10),
        )
        .unwrap();
        assert_eq!(out.status, 137);
        assert_eq!(out.signal, Some(9));
    }

    #[test]
    fn a_hung_process_is_killed_at_the_wall_timeout() {
        let started = Instant::now();
        let err = try_run(
            Path::new("/bin/sh"),
            &["-c", "echo started; exec sleep 30"],
            Duration::from_millis(300),
        )
        .unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(10));
        let text = err.to_string();
        assert!(text.contains("hung"), "{text}");
        assert!(text.contains("started"), "{text}");
    }

    #[test]
    fn a_missing_program_is_a_spawn_error() {
        let err = try_run(
            Path::new("/nonexistent/astra-vmm"),
            &[] as &[&str],
            DEFAULT_WALL_TIMEOUT,
        )
        .unwrap_err();
        assert!(matches!(err, RunError::Spawn { .. }), "{err}");
    }
}

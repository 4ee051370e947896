//! Standard streams that are terminals on the host are terminals in the guest: with a
//! pseudo-terminal on the VMM's stdin (and stdout), the program's fds are the console
//! terminal, with its canonical line discipline; the streams that are pipes stay plain.
//! (`stdin.rs` and the scenarios cover the other case: files and pipes are not terminals.)

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use astra_tests::report::stdin_reads;
use astra_tests::{require_kvm, Workspace};

/// Wall limit of one run; the guest's own `--timeout` is shorter.
const WALL_TIMEOUT: Duration = Duration::from_secs(60);

/// A pseudo-terminal: the master (the test's side) and the slave (the VMM's terminal).
struct Pty {
    master: File,
    slave: File,
}

impl Pty {
    /// A new pseudo-terminal in the default (cooked) mode.
    fn open() -> Pty {
        let (mut master, mut slave) = (-1, -1);
        // SAFETY: valid out-pointers; null name, termios and window size are allowed.
        let rc = unsafe {
            libc::openpty(
                &mut master,
                &mut slave,
                std::ptr::null_mut(),
                std::ptr::null(),
                std::ptr::null(),
            )
        };
        assert_eq!(rc, 0, "openpty: {}", io::Error::last_os_error());
        // SAFETY: openpty just opened both descriptors, and nothing else owns them.
        let (master, slave) =
            unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
        Pty {
            master: File::from(master),
            slave: File::from(slave),
        }
    }

    /// Another handle on the slave, for one of the child's standard streams.
    fn slave_stdio(&self) -> Stdio {
        Stdio::from(self.slave.try_clone().expect("dup the pty slave"))
    }
}

/// What a run left.
struct Run {
    status: i32,
    stdout: String,
    stderr: String,
    /// What the program wrote to the terminal (read from the master).
    terminal: String,
}

/// Boots the default kernel and rootfs with `args`, with the VMM's stdin and, if
/// `stdout_on_terminal`, its stdout on `pty`; stdout otherwise and stderr are pipes.
fn boot(pty: Pty, stdout_on_terminal: bool, args: &[&str]) -> Run {
    boot_signalled(pty, stdout_on_terminal, args, None)
}

/// Like [`boot`], sending astra-vmm `signal.1` after `signal.0` (a terminal's Ctrl-Z).
fn boot_signalled(
    pty: Pty,
    stdout_on_terminal: bool,
    args: &[&str],
    signal: Option<(Duration, i32)>,
) -> Run {
    require_kvm();
    let ws = Workspace::locate();
    let mut command = Command::new(ws.vmm());
    command
        .args(ws.default_vm_args())
        .args(["--timeout", "30"])
        .args(args)
        .stdin(pty.slave_stdio())
        .stderr(Stdio::piped());
    if stdout_on_terminal {
        command.stdout(pty.slave_stdio());
    } else {
        command.stdout(Stdio::piped());
    }
    let mut child = command.spawn().expect("start astra-vmm");
    // The command holds its copies of the slave until it is dropped.
    drop(command);
    if let Some((after, number)) = signal {
        let pid = child.id() as libc::pid_t;
        thread::spawn(move || {
            thread::sleep(after);
            // SAFETY: kill(2) on the child, which is not reaped before `wait` below sees
            // it exit (and the run lasts well past `after`).
            unsafe { libc::kill(pid, number) };
        });
    }
    // Only the child holds the slave now: the master reads end (EIO) when it exits. The
    // master stays open until then, so that the VMM's terminal is never hung up.
    let Pty { master, slave } = pty;
    drop(slave);
    let terminal_reader = {
        let mut master = master.try_clone().expect("dup the pty master");
        thread::spawn(move || {
            let mut bytes = Vec::new();
            let mut buf = [0u8; 4096];
            // Ends with EIO once no slave is open.
            while let Ok(n @ 1..) = master.read(&mut buf) {
                bytes.extend_from_slice(&buf[..n]);
            }
            bytes
        })
    };
    let stdout_reader = reader(child.stdout.take());
    let stderr_reader = reader(child.stderr.take());
    let status = wait(&mut child);
    let stdout = stdout_reader.join().unwrap_or_default();
    let stderr = stderr_reader.join().unwrap_or_default();
    let terminal = terminal_reader.join().unwrap_or_default();
    drop(master);
    Run {
        status,
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
        terminal: String::from_utf8_lossy(&terminal).into_owned(),
    }
}

fn reader(pipe: Option<impl Read + Send + 'static>) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(mut pipe) = pipe {
            // A read error ends the capture; what arrived so far is still worth reporting.
            let _ = pipe.read_to_end(&mut bytes);
        }
        bytes
    })
}

/// Waits for `child` at most [`WALL_TIMEOUT`], killing it past that (failing the test).
fn wait(child: &mut Child) -> i32 {
    let deadline = Instant::now() + WALL_TIMEOUT;
    loop {
        match child.try_wait().expect("wait for astra-vmm") {
            Some(status) => return status.code().unwrap_or(-1),
            None if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("astra-vmm did not exit within {WALL_TIMEOUT:?}");
            }
            None => thread::sleep(Duration::from_millis(10)),
        }
    }
}

impl Run {
    fn report(&self) -> String {
        format!(
            "exit status {}\n--- stdout ---\n{}--- stderr ---\n{}--- terminal ---\n{:?}",
            self.status, self.stdout, self.stderr, self.terminal
        )
    }
}

#[test]
fn terminals_on_the_host_are_terminals_in_the_guest_and_pipes_are_not() {
    let run = boot(Pty::open(), true, &["--", "/bin/isatty"]);
    assert_eq!(run.status, 0, "{}", run.report());
    // The host terminal turns the newline into CR LF on its way to the master.
    assert_eq!(
        run.terminal,
        "isatty: stdin=yes stdout=yes stderr=no\r\n",
        "{}",
        run.report()
    );
    let run = boot(Pty::open(), false, &["--", "/bin/isatty"]);
    assert_eq!(run.status, 0, "{}", run.report());
    assert_eq!(
        run.stdout,
        "isatty: stdin=yes stdout=no stderr=no\n",
        "{}",
        run.report()
    );
}

#[test]
fn a_terminal_stdin_is_read_a_line_at_a_time() {
    // Typed before the VMM starts: the host terminal hands the VMM one line per read and
    // then end of file (^D at the start of a line), and it all waits in the VMM's buffer
    // when the guest's cat first reads. Through a pipe, that would be one read; the
    // guest's terminal is canonical, so it is one read per line.
    let mut pty = Pty::open();
    pty.master
        .write_all(b"a\nbc\n\nlast\n\x04")
        .expect("type into the terminal");
    let run = boot(pty, false, &["--strace", "--", "/bin/cat"]);
    assert_eq!(run.status, 0, "{}", run.report());
    assert_eq!(run.stdout, "a\nbc\n\nlast\n", "{}", run.report());
    let reads = stdin_reads(&run.stderr);
    assert_eq!(
        reads,
        [
            r#"[pid 1] read(0, "a\n", 131072) = 2"#,
            r#"[pid 1] read(0, "bc\n", 131072) = 3"#,
            r#"[pid 1] read(0, "\n", 131072) = 1"#,
            r#"[pid 1] read(0, "last\n", 131072) = 5"#,
            r#"[pid 1] read(0, "", 131072) = 0"#,
        ],
        "{}",
        run.report()
    );
}

#[test]
fn ctrl_z_stops_the_foreground_job_of_a_job_control_shell() {
    // The host's Ctrl-Z (SIGTSTP to astra-vmm) reaches the guest's foreground process
    // group, the job busybox sh -m gave the terminal: it stops (status 148, as on Linux),
    // and the shell goes on.
    let bb = "/bin/busybox";
    let script = format!("{bb} sleep 5; echo status=$?");
    let run = boot_signalled(
        Pty::open(),
        true,
        &["--", bb, "sh", "-m", "-c", &script],
        Some((Duration::from_millis(1500), libc::SIGTSTP)),
    );
    assert_eq!(run.status, 0, "{}", run.report());
    assert!(run.terminal.ends_with("status=148\r\n"), "{}", run.report());
}

#[test]
fn a_job_control_shell_moves_the_terminal_between_process_groups() {
    // busybox sh -m puts each job in a process group of its own and hands it the
    // terminal (setpgid + TIOCSPGRP), then takes the terminal back, as on Linux.
    let script = "/bin/busybox sh -c 'exit 3'; echo status=$?; \
                  /bin/busybox true | /bin/busybox cat; echo pipeline=$?";
    let run = boot(
        Pty::open(),
        true,
        &["--strace", "--", "/bin/busybox", "sh", "-m", "-c", script],
    );
    assert_eq!(run.status, 0, "{}", run.report());
    assert_eq!(
        run.terminal,
        "status=3\r\npipeline=0\r\n",
        "{}",
        run.report()
    );
    let handed: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.contains("TIOCSPGRP"))
        .collect();
    assert!(
        handed.len() >= 4 && handed.iter().all(|l| l.ends_with(") = 0")),
        "every TIOCSPGRP succeeds: {handed:?}\n{}",
        run.report()
    );
    assert!(
        run.stderr.contains("setpgid(0, 2) = 0"),
        "the first job leads its own group\n{}",
        run.report()
    );
}

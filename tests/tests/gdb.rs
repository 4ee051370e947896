//! `astra-vmm --gdb`: stock gdb (batch mode) against real runs, kernel and user programs.
//!
//! Each test starts `astra-vmm --gdb SOCKET` (a unix socket in a temporary folder) with the
//! gdb image (`make gdb-image`: build/gdb.tar with a std and a static C program built with
//! debug information), runs `gdb -batch -ex ...` against it, and checks gdb's output and the
//! VMM's exit code, which stays the program's. Every process has a wall timeout.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use astra_tests::tempdir::TempDir;
use astra_tests::{require_kvm, tail, Workspace};

/// Limit for one gdb session (stepping to a watchpoint is slow on the PVM host).
const WALL_TIMEOUT: Duration = Duration::from_secs(90);
/// Where static-pie programs load under a debugger (as Linux without randomization).
const PIE_BASE: &str = "0x555555554000";
/// The std program, with debug information.
const STD_PROGRAM: &str = "target/gdb-apps/x86_64-unknown-linux-musl/release/gdbtarget";
/// The static C program, with debug information.
const C_PROGRAM: &str = "target/gdb-apps/c/gdbtarget-c";

struct Finished {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Finished {
    fn report(&self, what: &str) -> String {
        format!(
            "{what}: exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.code,
            tail(&self.stdout, 60),
            tail(&self.stderr, 30)
        )
    }
}

/// Waits for `child` up to `limit`, killing it (by pid) past that.
fn finish(mut child: Child, limit: Duration) -> Finished {
    let give_up = Instant::now() + limit;
    let code = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status.code(),
            Ok(None) if Instant::now() < give_up => thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    let mut stdout = String::new();
    let mut stderr = String::new();
    if let Some(mut s) = child.stdout.take() {
        let _ = s.read_to_string(&mut stdout);
    }
    if let Some(mut s) = child.stderr.take() {
        let _ = s.read_to_string(&mut stderr);
    }
    Finished {
        code,
        stdout,
        stderr,
    }
}

fn built(ws: &Workspace, relative: &str) -> PathBuf {
    ws.find_built(relative)
        .unwrap_or_else(|e| panic!("{e} (the gdb tests need `make gdb-image`)"))
}

/// A VM waiting for gdb on a unix socket, and gdb's session against it.
struct Session {
    vmm: Finished,
    gdb: Finished,
}

/// Boots `program` under `--gdb` and runs gdb with `symbols` (or none) and `commands`.
/// `interrupt_after`: send SIGINT to gdb that long after it started.
fn debug(
    program: &[&str],
    vmm_extra: &[&str],
    symbols: Option<&Path>,
    commands: &[String],
    interrupt_after: Option<Duration>,
) -> Session {
    require_kvm();
    let ws = Workspace::locate();
    if Command::new("gdb").arg("--version").output().is_err() {
        panic!("gdb is not installed: run `make gdb-tools`");
    }
    let dir = TempDir::new("gdb");
    let socket = dir.path().join("gdb.sock");
    let mut vmm_args: Vec<String> = vec![
        "--kernel".into(),
        ws.kernel().display().to_string(),
        "--rootfs".into(),
        built(&ws, "build/gdb.tar").display().to_string(),
        "--gdb".into(),
        socket.display().to_string(),
    ];
    vmm_args.extend(vmm_extra.iter().map(|s| s.to_string()));
    vmm_args.push("--".into());
    vmm_args.extend(program.iter().map(|s| s.to_string()));
    let vmm = Command::new(ws.vmm())
        .args(&vmm_args)
        .current_dir(&ws.root)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("astra-vmm starts");
    let waited = Instant::now();
    while !socket.exists() && waited.elapsed() < Duration::from_secs(10) {
        thread::sleep(Duration::from_millis(10));
    }
    let mut gdb_args: Vec<String> = vec!["-batch".into(), "-nx".into()];
    if let Some(symbols) = symbols {
        gdb_args.push(symbols.display().to_string());
    }
    gdb_args.extend(["-ex".into(), format!("target remote {}", socket.display())]);
    for c in commands {
        gdb_args.extend(["-ex".into(), c.clone()]);
    }
    let gdb = Command::new("gdb")
        .args(&gdb_args)
        .current_dir(&ws.root)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("gdb starts");
    if let Some(after) = interrupt_after {
        thread::sleep(after);
        // SAFETY: kill(2) on the pid of our own child, which has not been reaped yet.
        unsafe { libc::kill(gdb.id() as libc::pid_t, libc::SIGINT) };
    }
    let gdb = finish(gdb, WALL_TIMEOUT);
    let vmm = finish(vmm, WALL_TIMEOUT);
    Session { vmm, gdb }
}

fn cmds(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn assert_has(session: &Session, needles: &[&str]) {
    let all = format!("{}{}", session.gdb.stdout, session.gdb.stderr);
    for needle in needles {
        assert!(
            all.contains(needle),
            "gdb output lacks {needle:?}\n{}\n{}",
            session.gdb.report("gdb"),
            session.vmm.report("astra-vmm")
        );
    }
}

/// The address of the kernel function `name`, from its symbol table (gdb's own
/// prologue analysis of the optimized kernel can pick a line inlined elsewhere).
fn kernel_symbol(symbols: &Path, name: &str) -> String {
    let out = Command::new("nm")
        .arg("-C")
        .arg(symbols)
        .output()
        .expect("nm (binutils) runs");
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.ends_with(&format!(" {name}")))
        .unwrap_or_else(|| panic!("{name} is not in {}", symbols.display()));
    format!("0x{}", &line[..16])
}

#[test]
fn kernel_breakpoint_backtrace_and_steps() {
    let ws = Workspace::locate();
    let symbols = built(&ws, "build/guest.debug.elf");
    let dispatch = kernel_symbol(&symbols, "astra_kernel::syscall::dispatch");
    let s = debug(
        &["/bin/gdbtarget"],
        &[],
        Some(&symbols),
        &[format!("break *{dispatch}"), "continue".into()]
            .into_iter()
            .chain(cmds(&[
                "bt",
                "stepi",
                "stepi",
                "stepi",
                "info registers rip",
                "delete",
                "continue",
            ]))
            .collect::<Vec<_>>(),
        None,
    );
    assert_has(
        &s,
        &[
            "Breakpoint 1, astra_kernel::syscall::dispatch",
            "in astra_kernel::trap::handle",
            "<astra_kernel::syscall::dispatch+",
            "exited with code 03",
        ],
    );
    assert_eq!(s.vmm.code, Some(3), "{}", s.vmm.report("astra-vmm"));
}

#[test]
fn std_program_breakpoints_watchpoint_registers_and_finish() {
    let ws = Workspace::locate();
    let program = built(&ws, STD_PROGRAM);
    let s = debug(
        &["/bin/gdbtarget"],
        &[],
        None,
        &[
            format!("add-symbol-file {} -o {PIE_BASE}", program.display()),
            "break gdbtarget::main".into(),
            "continue".into(),
            "print gdbtarget::COUNTER.v.value".into(),
            // musl's thread pointer: inside the program's image.
            "info registers fs_base".into(),
            "watch -l gdbtarget::COUNTER.v.value".into(),
            "break gdbtarget::bump".into(),
            "continue".into(),
            "print n".into(),
            "set $rdi = 100".into(),
            "continue".into(),
            "delete".into(),
            "finish".into(),
            "continue".into(),
        ],
        None,
    );
    assert_has(
        &s,
        &[
            "Breakpoint 1, ",
            "$1 = 0",
            "fs_base        0x5555",
            "Breakpoint 3, gdbtarget::bump (n=41)",
            "$2 = 41",
            "Old value = 0",
            "New value = 100",
            "Value returned is $3 = 100",
            "exited with code 03",
        ],
    );
    assert_eq!(s.vmm.code, Some(3), "{}", s.vmm.report("astra-vmm"));
    assert_eq!(s.vmm.stdout, "counter 100\n");
}

#[test]
fn guest_threads_are_gdb_threads() {
    let ws = Workspace::locate();
    let program = built(&ws, STD_PROGRAM);
    let s = debug(
        &["/bin/gdbtarget", "threads"],
        &[],
        None,
        &[
            format!("add-symbol-file {} -o {PIE_BASE}", program.display()),
            "break gdbtarget::bump".into(),
            "continue".into(),
            "info threads".into(),
            // The waiters are in the kernel, in a futex wait called from the barrier.
            "thread apply all bt 30".into(),
            // gdb numbers threads itself: the CPU's pseudo-thread at the first stop was 1,
            // the program's threads 1.1, 1.2 and 1.3 are 2, 3 and 4.
            "thread 3".into(),
            "bt 3".into(),
            "info registers fs_base".into(),
            "print/x $pc".into(),
            "delete".into(),
            "continue".into(),
        ],
        None,
    );
    assert_has(
        &s,
        &[
            "Breakpoint 1, gdbtarget::bump (n=41)",
            "Thread 1.1 (pid 1, on the CPU)",
            "Thread 1.2 (pid 1)",
            "Thread 1.3 (pid 1)",
            "std::sync::barrier::Barrier::wait",
            "[Switching to thread 3 (Thread 1.2)]",
            "in std::sys::pal::unix::futex::futex_wait",
            "fs_base        0x",
            "$1 = 0x5555",
            "exited with code 03",
        ],
    );
    assert_eq!(s.vmm.code, Some(3), "{}", s.vmm.report("astra-vmm"));
    assert_eq!(s.vmm.stdout, "counter 41\n");
}

#[test]
fn static_c_program_locals_globals_watchpoint_and_detach() {
    let ws = Workspace::locate();
    let program = built(&ws, C_PROGRAM);
    let s = debug(
        &["/bin/gdbtarget-c"],
        &[],
        Some(&program),
        &cmds(&[
            "print counter",
            "break main",
            "continue",
            "info locals",
            "print counter",
            "break bump",
            "continue",
            "watch counter",
            "continue",
            "delete",
            "finish",
            "set $rax = 77",
            "detach",
        ]),
        None,
    );
    assert_has(
        &s,
        &[
            // Before the program is loaded its memory is not there (an error, not junk).
            "Cannot access memory at address",
            "Breakpoint 1, main ()",
            "start = 41",
            "$1 = 0",
            "Breakpoint 2, bump (n=n@entry=41)",
            "Old value = 0",
            "New value = 41",
            "Value returned is $2 = 41",
            "detached",
        ],
    );
    // The modified return value is what the program printed; its status is its own.
    assert_eq!(s.vmm.code, Some(5), "{}", s.vmm.report("astra-vmm"));
    assert_eq!(s.vmm.stdout, "counter 77\n");
}

#[test]
fn sigint_to_gdb_stops_a_spinning_program() {
    let ws = Workspace::locate();
    let program = built(&ws, STD_PROGRAM);
    let s = debug(
        &["/bin/gdbtarget", "spin"],
        &[],
        None,
        &[
            format!("add-symbol-file {} -o {PIE_BASE}", program.display()),
            "continue".into(),
            "bt 1".into(),
            "set var gdbtarget::STOP = 1".into(),
            "continue".into(),
        ],
        Some(Duration::from_secs(3)),
    );
    // The stop lands wherever the vCPU is: mostly in the program's loop, sometimes in the
    // kernel on its way back to it (on PVM the kick out of KVM_RUN takes effect at a trap,
    // and the return to user mode writes CR3 and runs iretq, both traps). Either way the
    // write of STOP must end the loop: exit code 3 proves the program was stopped, then
    // resumed with gdb's change.
    assert_has(&s, &["received signal SIGINT", "exited with code 03"]);
    assert_eq!(s.vmm.code, Some(3), "{}", s.vmm.report("astra-vmm"));
}

#[test]
fn sigint_stops_a_halted_guest_in_the_kernel() {
    let ws = Workspace::locate();
    let symbols = built(&ws, "build/guest.debug.elf");
    let s = debug(
        &["/bin/gdbtarget", "sleep"],
        &[],
        Some(&symbols),
        &cmds(&["continue", "bt 3", "continue"]),
        Some(Duration::from_millis(1500)),
    );
    // Stopped inside the kernel (the program sleeps, the CPU halts), then runs on.
    assert_has(
        &s,
        &[
            "received signal SIGINT",
            "astra_kernel::",
            "exited with code 03",
        ],
    );
    assert_eq!(s.vmm.code, Some(3), "{}", s.vmm.report("astra-vmm"));
}

#[test]
fn kill_and_timeout_while_stopped_end_the_vm_cleanly() {
    let ws = Workspace::locate();
    let program = built(&ws, C_PROGRAM);
    let killed = debug(
        &["/bin/gdbtarget-c"],
        &[],
        Some(&program),
        &cmds(&["break bump", "continue", "kill"]),
        None,
    );
    assert_has(&killed, &["Breakpoint 1, bump"]);
    assert_eq!(
        killed.vmm.code,
        Some(137),
        "{}",
        killed.vmm.report("astra-vmm")
    );
    let timed_out = debug(
        &["/bin/gdbtarget-c"],
        &["--timeout", "2"],
        Some(&program),
        &cmds(&["break bump", "continue", "shell sleep 4"]),
        None,
    );
    assert_has(&timed_out, &["Breakpoint 1, bump"]);
    assert_eq!(
        timed_out.vmm.code,
        Some(253),
        "{}",
        timed_out.vmm.report("astra-vmm")
    );
}

//! std processes conformance: `std::process::Command` (posix_spawn or fork + execve
//! underneath), captured output, exit codes and signals, stdin and stdout piped, the
//! environment and working directory of a child, a missing program, many children.
//! One `PASS`/`FAIL` line per check.
//!
//! Child roles (`procs ROLE ...`), used by the checks: `exit N`, `env NAME`, `pwd`,
//! `echo-stdin`, `args ...`, `wait-stdin`; `procs bomb` spawns children until refused.

use std::io::{ErrorKind, Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, ExitCode, Stdio};

use std::sync::atomic::{AtomicUsize, Ordering};

use astra_std_apps::checks::{ensure, CheckResult, Checks};
use astra_std_apps::sys::{set_signal_action, syscall3, syscall4};

/// This program's own path, to run it as a child.
fn me() -> String {
    std::env::args()
        .next()
        .unwrap_or_else(|| "/bin/procs".into())
}

fn output_captured() -> CheckResult {
    let out = Command::new(me())
        .args(["args", "a b", "", "c"])
        .output()
        .map_err(|e| format!("spawn: {e}"))?;
    ensure(out.status.success(), || format!("status {:?}", out.status))?;
    let text = String::from_utf8_lossy(&out.stdout);
    ensure(text == "[a b][][c]\n", || format!("stdout {text:?}"))?;
    let err = String::from_utf8_lossy(&out.stderr);
    ensure(err == "to stderr\n", || format!("stderr {err:?}"))?;
    Ok(String::new())
}

fn exit_codes() -> CheckResult {
    for code in [0, 1, 7, 255] {
        let status = Command::new(me())
            .args(["exit", &code.to_string()])
            .status()
            .map_err(|e| format!("spawn: {e}"))?;
        ensure(status.code() == Some(code), || {
            format!("exit {code}: {status:?}")
        })?;
    }
    Ok("0 1 7 255".into())
}

fn killed_by_signal() -> CheckResult {
    let status = Command::new("/bin/segv")
        .stderr(Stdio::null())
        .status()
        .map_err(|e| format!("spawn: {e}"))?;
    ensure(status.signal() == Some(11), || format!("status {status:?}"))?;
    ensure(status.code().is_none(), || {
        format!("code {:?}", status.code())
    })?;
    Ok(String::new())
}

fn stdin_piped_both_ways() -> CheckResult {
    let mut child = Command::new(me())
        .arg("echo-stdin")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("spawn: {e}"))?;
    let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let mut stdin = child.stdin.take().ok_or("no stdin")?;
    let writer = {
        let data = data.clone();
        std::thread::spawn(move || stdin.write_all(&data))
    };
    let mut back = Vec::new();
    child
        .stdout
        .take()
        .ok_or("no stdout")?
        .read_to_end(&mut back)
        .map_err(|e| format!("read: {e}"))?;
    writer
        .join()
        .map_err(|_| "writer panicked".to_string())?
        .map_err(|e| format!("write: {e}"))?;
    let status = child.wait().map_err(|e| format!("wait: {e}"))?;
    ensure(status.success(), || format!("status {status:?}"))?;
    ensure(back == data, || {
        format!("{} bytes back of {}", back.len(), data.len())
    })?;
    Ok("100000 bytes".into())
}

fn environment() -> CheckResult {
    let out = Command::new(me())
        .args(["env", "ASTRA_PROCS"])
        .env("ASTRA_PROCS", "value 1")
        .output()
        .map_err(|e| format!("spawn: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    ensure(text == "ASTRA_PROCS=value 1\n", || {
        format!("with env: {text:?}")
    })?;
    let out = Command::new(me())
        .args(["env", "PATH"])
        .env_clear()
        .output()
        .map_err(|e| format!("spawn: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    ensure(text == "PATH unset\n", || format!("env_clear: {text:?}"))?;
    Ok(String::new())
}

fn working_directory() -> CheckResult {
    let out = Command::new(me())
        .arg("pwd")
        .current_dir("/tmp")
        .output()
        .map_err(|e| format!("spawn: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    ensure(text == "/tmp\n", || format!("pwd {text:?}"))?;
    Ok(String::new())
}

fn missing_program() -> CheckResult {
    match Command::new("/bin/no-such-program").status() {
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(String::new()),
        other => Err(format!("{other:?}")),
    }
}

fn not_executable() -> CheckResult {
    // A directory cannot be run: EACCES.
    match Command::new("/tmp").status() {
        Err(e) if e.kind() == ErrorKind::PermissionDenied => Ok(String::new()),
        other => Err(format!("{other:?}")),
    }
}

fn hundred_sequential() -> CheckResult {
    for i in 0..100 {
        let status = Command::new(me())
            .args(["exit", "3"])
            .status()
            .map_err(|e| format!("child {i}: {e}"))?;
        ensure(status.code() == Some(3), || {
            format!("child {i}: {status:?}")
        })?;
    }
    Ok("100 children".into())
}

fn wait_in_any_order() -> CheckResult {
    let mut children = Vec::new();
    for code in 10..20 {
        let child = Command::new(me())
            .args(["exit", &code.to_string()])
            .spawn()
            .map_err(|e| format!("spawn: {e}"))?;
        children.push((code, child));
    }
    // Reap in reverse order of creation.
    while let Some((code, mut child)) = children.pop() {
        let status = child.wait().map_err(|e| format!("wait: {e}"))?;
        ensure(status.code() == Some(code), || {
            format!("child {code}: {status:?}")
        })?;
    }
    Ok("10 children".into())
}

fn try_wait_then_wait() -> CheckResult {
    let mut child = Command::new(me())
        .args(["exit", "4"])
        .spawn()
        .map_err(|e| format!("spawn: {e}"))?;
    let status = loop {
        if let Some(status) = child.try_wait().map_err(|e| format!("try_wait: {e}"))? {
            break status;
        }
        std::thread::yield_now();
    };
    ensure(status.code() == Some(4), || format!("{status:?}"))?;
    Ok(String::new())
}

/// Spawns children that wait on their standard input until the system refuses one (or
/// 1000 run), then lets them all end and reaps them: a process bomb meets errors, and
/// everything survives.
fn bomb() -> ExitCode {
    let mut children = Vec::new();
    let mut refused = None;
    while children.len() < 1000 {
        match Command::new(me())
            .arg("wait-stdin")
            .stdin(Stdio::piped())
            .spawn()
        {
            Ok(child) => children.push(child),
            Err(e) => {
                refused = Some(e);
                break;
            }
        }
    }
    let spawned = children.len();
    for child in &mut children {
        drop(child.stdin.take());
    }
    let mut failed = 0;
    for mut child in children {
        match child.wait() {
            Ok(status) if status.success() => {}
            _ => failed += 1,
        }
    }
    match refused {
        Some(e) => eprintln!("bomb: {spawned} children, then: {e}"),
        None => eprintln!("bomb: {spawned} children"),
    }
    if failed > 0 || spawned == 0 {
        println!("bomb: {failed} of {spawned} children failed");
        return ExitCode::FAILURE;
    }
    println!("bomb: survived, every child reaped");
    ExitCode::SUCCESS
}

static HANDLED: AtomicUsize = AtomicUsize::new(0);

extern "C" fn count_signal(_: i32) {
    HANDLED.fetch_add(1, Ordering::SeqCst);
}

const SIGUSR1: usize = 10;
const SA_RESTART: u64 = 0x1000_0000;
const EINTR: isize = 4;

/// A blocking pipe read interrupted by a handled signal: restarted with `SA_RESTART`
/// (the read then returns the byte written later), `EINTR` without.
fn read_interrupted(restart: bool) -> Result<isize, String> {
    let flags = if restart { SA_RESTART } else { 0 };
    let r = set_signal_action(SIGUSR1, count_signal as *const () as usize, flags);
    ensure(r == 0, || format!("rt_sigaction: {r}"))?;
    let mut fds = [0i32; 2];
    // SAFETY: room for two descriptors.
    let r = unsafe { syscall3(22, fds.as_mut_ptr() as usize, 0, 0) };
    ensure(r == 0, || format!("pipe: {r}"))?;
    // SAFETY: gettid takes nothing.
    let tid = unsafe { syscall3(186, 0, 0, 0) } as usize;
    // SAFETY: as above.
    let pid = unsafe { syscall3(39, 0, 0, 0) } as usize;
    let writer = fds[1];
    let helper = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(100));
        // SAFETY: tgkill of this process's main thread.
        unsafe { syscall3(234, pid, tid, SIGUSR1) };
        std::thread::sleep(std::time::Duration::from_millis(100));
        // SAFETY: a one-byte buffer.
        unsafe { syscall3(1, writer as usize, b"z".as_ptr() as usize, 1) };
    });
    let mut byte = [0u8; 1];
    // SAFETY: a one-byte buffer.
    let got = unsafe { syscall3(0, fds[0] as usize, byte.as_mut_ptr() as usize, 1) };
    helper.join().map_err(|_| "helper panicked".to_string())?;
    for fd in fds {
        // SAFETY: closing our own descriptors.
        unsafe { syscall3(3, fd as usize, 0, 0) };
    }
    Ok(got)
}

fn sa_restart() -> CheckResult {
    let before = HANDLED.load(Ordering::SeqCst);
    let got = read_interrupted(true)?;
    ensure(got == 1, || format!("with SA_RESTART: read gave {got}"))?;
    let got = read_interrupted(false)?;
    ensure(got == -EINTR, || {
        format!("without SA_RESTART: read gave {got}")
    })?;
    let handled = HANDLED.load(Ordering::SeqCst) - before;
    ensure(handled == 2, || format!("{handled} handler runs"))?;
    Ok("restarted, then EINTR".into())
}

/// SIGSTOP stops a child blocked in a read, its parent sees it with `WUNTRACED`;
/// SIGCONT continues it (`WCONTINUED`), and the read goes on to end normally.
fn stop_and_continue() -> CheckResult {
    const SIGCONT: usize = 18;
    const SIGSTOP: usize = 19;
    const WUNTRACED: usize = 2;
    const WCONTINUED: usize = 8;
    let mut child = Command::new(me())
        .arg("wait-stdin")
        .stdin(Stdio::piped())
        .spawn()
        .map_err(|e| format!("spawn: {e}"))?;
    let pid = child.id() as usize;
    let wait = |options: usize| -> (isize, i32) {
        let mut status = 0i32;
        // SAFETY: `status` is a valid i32 for the kernel to fill.
        let r = unsafe { syscall4(61, pid, &mut status as *mut i32 as usize, options, 0) };
        (r, status)
    };
    // SAFETY: kill of our own child.
    unsafe { syscall3(62, pid, SIGSTOP, 0) };
    let (r, status) = wait(WUNTRACED);
    ensure(
        r == pid as isize && status & 0xff == 0x7f && (status >> 8) & 0xff == 19,
        || format!("after SIGSTOP: wait4 {r}, status {status:#x}"),
    )?;
    // SAFETY: as above.
    unsafe { syscall3(62, pid, SIGCONT, 0) };
    let (r, status) = wait(WCONTINUED);
    ensure(r == pid as isize && status == 0xffff, || {
        format!("after SIGCONT: wait4 {r}, status {status:#x}")
    })?;
    drop(child.stdin.take());
    let status = child.wait().map_err(|e| format!("wait: {e}"))?;
    ensure(status.success(), || format!("at the end: {status:?}"))?;
    Ok("stopped, continued, ended".into())
}

fn child_role(role: &str, rest: &[String]) -> ExitCode {
    match role {
        "bomb" => bomb(),
        "wait-stdin" => {
            let mut buf = Vec::new();
            match std::io::stdin().read_to_end(&mut buf) {
                Ok(_) => ExitCode::SUCCESS,
                Err(_) => ExitCode::FAILURE,
            }
        }
        "exit" => ExitCode::from(rest.first().and_then(|c| c.parse().ok()).unwrap_or(99)),
        "env" => {
            let name = rest.first().map(String::as_str).unwrap_or("");
            match std::env::var(name) {
                Ok(v) => println!("{name}={v}"),
                Err(_) => println!("{name} unset"),
            }
            ExitCode::SUCCESS
        }
        "pwd" => {
            match std::env::current_dir() {
                Ok(d) => println!("{}", d.display()),
                Err(e) => println!("error {e}"),
            }
            ExitCode::SUCCESS
        }
        "echo-stdin" => {
            let mut buf = Vec::new();
            let ok = std::io::stdin().read_to_end(&mut buf).is_ok()
                && std::io::stdout().write_all(&buf).is_ok();
            if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        "args" => {
            let line: String = rest.iter().map(|a| format!("[{a}]")).collect();
            println!("{line}");
            eprintln!("to stderr");
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("procs: unknown role {role}");
            ExitCode::from(2)
        }
    }
}

/// `fcntl(fd, cmd, arg)` as a raw call: the result, or `-errno`.
fn fcntl(fd: i32, cmd: usize, arg: usize) -> isize {
    // SAFETY: fcntl with integer arguments only.
    unsafe { syscall3(72, fd as usize, cmd, arg) }
}

fn pipe_sizes() -> CheckResult {
    const F_SETPIPE_SZ: usize = 1031;
    const F_GETPIPE_SZ: usize = 1032;
    const O_NONBLOCK: usize = 0o4000;
    const EBADF: isize = 9;
    const EAGAIN: isize = 11;
    const EBUSY: isize = 16;
    let mut fds = [0i32; 2];
    // SAFETY: pipe2 fills the two ints.
    let r = unsafe { syscall3(293, fds.as_mut_ptr() as usize, O_NONBLOCK, 0) };
    ensure(r == 0, || format!("pipe2: {r}"))?;
    let (read_end, write_end) = (fds[0], fds[1]);
    let default = fcntl(write_end, F_GETPIPE_SZ, 0);
    ensure(default == 65536, || format!("default size {default}"))?;
    // Rounded up to a power-of-two number of pages, seen from both ends.
    let set = fcntl(write_end, F_SETPIPE_SZ, 5000);
    let seen = fcntl(read_end, F_GETPIPE_SZ, 0);
    ensure(set == 8192 && seen == 8192, || {
        format!("set 5000: {set}, read end {seen}")
    })?;
    // The capacity holds: a non-blocking writer fills 8 KiB, then EAGAIN.
    let chunk = [7u8; 4096];
    let mut written = 0;
    loop {
        // SAFETY: writing from a live buffer.
        let n = unsafe { syscall3(1, write_end as usize, chunk.as_ptr() as usize, chunk.len()) };
        if n < 0 {
            ensure(n == -EAGAIN, || format!("full pipe write: {n}"))?;
            break;
        }
        written += n;
        ensure(written <= 8192, || {
            format!("{written} bytes in an 8 KiB pipe")
        })?;
    }
    ensure(written == 8192, || format!("filled with {written} bytes"))?;
    let shrink = fcntl(write_end, F_SETPIPE_SZ, 4096);
    ensure(shrink == -EBUSY, || {
        format!("shrinking below the queued bytes: {shrink}")
    })?;
    let file = std::fs::File::open("/proc/self/exe").map_err(|e| e.to_string())?;
    let not_pipe = fcntl(std::os::fd::AsRawFd::as_raw_fd(&file), F_GETPIPE_SZ, 0);
    ensure(not_pipe == -EBADF, || {
        format!("F_GETPIPE_SZ on a file: {not_pipe}")
    })?;
    for fd in fds {
        // SAFETY: closing our own descriptors.
        unsafe { syscall3(3, fd as usize, 0, 0) };
    }
    Ok("64 KiB by default, 5000 -> 8192, full at 8192, EBUSY, EBADF".into())
}

/// Pages the `wait4_rusage` child writes (copies on write after fork: page faults).
static mut TOUCHED: [u8; 16 * 4096] = [1; 16 * 4096];

fn wait4_rusage() -> CheckResult {
    // SAFETY: fork takes no arguments; the child only writes memory and exits.
    let pid = unsafe { syscall3(57, 0, 0, 0) };
    if pid == 0 {
        for page in 0..16 {
            // SAFETY: the child's own copy of the static; nothing else runs in it.
            unsafe { core::ptr::write_volatile(&raw mut TOUCHED[page * 4096], 2) };
        }
        // SAFETY: exit_group does not return.
        unsafe { syscall3(231, 0, 0, 0) };
    }
    ensure(pid > 0, || format!("fork: {pid}"))?;
    let mut status = 0i32;
    let mut usage = [0i64; 18];
    // SAFETY: wait4 fills the status int and the 144-byte struct rusage.
    let r = unsafe {
        syscall4(
            61,
            pid as usize,
            &mut status as *mut i32 as usize,
            0,
            usage.as_mut_ptr() as usize,
        )
    };
    ensure(r == pid && status == 0, || {
        format!("wait4: {r}, status {status:#x}")
    })?;
    // ru_minflt follows the two timevals and four longs.
    let faults = usage[8];
    ensure(faults > 0, || format!("the child's ru_minflt is {faults}"))?;
    Ok(format!("the child's rusage counts {faults} page faults"))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if let Some(role) = args.get(1) {
        return child_role(role, &args[2..]);
    }
    let mut checks = Checks::stdout("procs");
    checks.run("output_captured", output_captured);
    checks.run("exit_codes", exit_codes);
    checks.run("killed_by_signal", killed_by_signal);
    checks.run("stdin_piped_both_ways", stdin_piped_both_ways);
    checks.run("environment", environment);
    checks.run("working_directory", working_directory);
    checks.run("missing_program", missing_program);
    checks.run("not_executable", not_executable);
    checks.run("hundred_sequential", hundred_sequential);
    checks.run("wait_in_any_order", wait_in_any_order);
    checks.run("try_wait_then_wait", try_wait_then_wait);
    checks.run("sa_restart", sa_restart);
    checks.run("stop_and_continue", stop_and_continue);
    checks.run("pipe_sizes", pipe_sizes);
    checks.run("wait4_rusage", wait4_rusage);
    checks.finish()
}

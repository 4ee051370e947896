//! Advisory locks and FIFOs between processes: `flock`, `fcntl` record locks (POSIX and
//! OFD) with their conflicts, waits, release on close and on exit, `EINTR` and `EDEADLK`;
//! a FIFO made with `mknod` joining two processes. The second process is this program run
//! again by `std::process::Command` in a child role. One `PASS`/`FAIL` line per check.
//!
//! Child roles (`locks ROLE PATH ...`): `flock-nb OP`, `flock-wait`, `getlk START LEN`,
//! `setlk START LEN`, `hold START LEN` (until stdin closes), `deadlock`, `fifo-write`.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use astra_std_apps::checks::{ensure, CheckResult, Checks};
use astra_std_apps::sys::{set_signal_action, syscall3, syscall4};

const LOCK_SH: usize = 1;
const LOCK_EX: usize = 2;
const LOCK_NB: usize = 4;
const LOCK_UN: usize = 8;
const F_GETLK: usize = 5;
const F_SETLK: usize = 6;
const F_SETLKW: usize = 7;
const F_OFD_GETLK: usize = 36;
const F_OFD_SETLK: usize = 37;
const F_RDLCK: i16 = 0;
const F_WRLCK: i16 = 1;
const F_UNLCK: i16 = 2;
const EINTR: isize = -4;
const EAGAIN: isize = -11;
const EDEADLK: isize = -35;
const ENXIO: i32 = 6;

fn me() -> String {
    std::env::args()
        .next()
        .unwrap_or_else(|| "/bin/locks".into())
}

fn flock(f: &File, op: usize) -> isize {
    // SAFETY: flock takes a descriptor and a number.
    unsafe { syscall3(73, f.as_raw_fd() as usize, op, 0) }
}

/// `struct flock`: type, whence (SEEK_SET), start, len, pid.
fn flock_struct(kind: i16, start: i64, len: i64) -> [u8; 32] {
    let mut b = [0u8; 32];
    b[0..2].copy_from_slice(&kind.to_ne_bytes());
    b[8..16].copy_from_slice(&start.to_ne_bytes());
    b[16..24].copy_from_slice(&len.to_ne_bytes());
    b
}

fn lk(f: &File, cmd: usize, kind: i16, start: i64, len: i64) -> (isize, [u8; 32]) {
    let mut b = flock_struct(kind, start, len);
    // SAFETY: a 32-byte struct flock the call may fill.
    let r = unsafe { syscall3(72, f.as_raw_fd() as usize, cmd, b.as_mut_ptr() as usize) };
    (r, b)
}

/// (type, start, len, pid) of a `struct flock`.
fn parse(b: &[u8; 32]) -> (i16, i64, i64, i32) {
    (
        i16::from_ne_bytes([b[0], b[1]]),
        i64::from_ne_bytes(b[8..16].try_into().unwrap()),
        i64::from_ne_bytes(b[16..24].try_into().unwrap()),
        i32::from_ne_bytes(b[24..28].try_into().unwrap()),
    )
}

fn rw(path: &str) -> Result<File, String> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| format!("open {path}: {e}"))
}

/// Runs this program as `role` and returns its stdout, trimmed.
fn child(args: &[&str]) -> Result<String, String> {
    let out = Command::new(me())
        .args(args)
        .output()
        .map_err(|e| format!("spawn: {e}"))?;
    ensure(out.status.success(), || {
        format!("{args:?}: {:?}", out.status)
    })?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn spawn(args: &[&str]) -> Result<Child, String> {
    Command::new(me())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("spawn: {e}"))
}

/// Reads one line of a child's stdout.
fn line_of(c: &mut Child) -> Result<String, String> {
    let out = c.stdout.as_mut().ok_or("no stdout")?;
    let mut line = String::new();
    BufReader::new(out)
        .read_line(&mut line)
        .map_err(|e| e.to_string())?;
    Ok(line.trim().to_string())
}

fn flock_excludes_other_processes() -> CheckResult {
    let path = "/tmp/locks-flock";
    let f = rw(path)?;
    ensure(flock(&f, LOCK_EX) == 0, || "LOCK_EX".into())?;
    let ex = child(&["flock-nb", path, "ex"])?;
    let sh = child(&["flock-nb", path, "sh"])?;
    ensure(ex == "-11" && sh == "-11", || {
        format!("held: ex {ex}, sh {sh}")
    })?;
    ensure(flock(&f, LOCK_SH) == 0, || "convert to LOCK_SH".into())?;
    let sh = child(&["flock-nb", path, "sh"])?;
    ensure(sh == "0", || format!("shared with a shared lock: {sh}"))?;
    ensure(flock(&f, LOCK_UN) == 0, || "LOCK_UN".into())?;
    let ex = child(&["flock-nb", path, "ex"])?;
    ensure(ex == "0", || format!("after unlock: {ex}"))?;
    ensure(flock(&f, 0) == -22, || "op 0 is EINVAL".into())?;
    Ok("EWOULDBLOCK, then granted".into())
}

fn flock_wait_ends_when_the_holder_closes() -> CheckResult {
    let path = "/tmp/locks-flock-wait";
    let f = rw(path)?;
    ensure(flock(&f, LOCK_EX) == 0, || "LOCK_EX".into())?;
    let mut c = spawn(&["flock-wait", path])?;
    ensure(line_of(&mut c)? == "waiting", || {
        "child did not start".into()
    })?;
    std::thread::sleep(Duration::from_millis(200));
    let early = c.try_wait().map_err(|e| e.to_string())?;
    ensure(early.is_none(), || {
        format!("child got the lock early: {early:?}")
    })?;
    drop(f);
    let got = line_of(&mut c)?;
    let status = c.wait().map_err(|e| e.to_string())?;
    ensure(got == "got" && status.success(), || {
        format!("{got} {status:?}")
    })?;
    Ok(String::new())
}

fn record_locks_conflict_by_range() -> CheckResult {
    let path = "/tmp/locks-record";
    let f = rw(path)?;
    ensure(lk(&f, F_SETLK, F_WRLCK, 0, 10).0 == 0, || "F_SETLK".into())?;
    let got = child(&["getlk", path, "5", "1"])?;
    let want = format!("1 0 10 {}", std::process::id());
    ensure(got == want, || format!("F_GETLK: {got}, expected {want}"))?;
    let free = child(&["setlk", path, "20", "10"])?;
    let busy = child(&["setlk", path, "5", "1"])?;
    ensure(free == "0" && busy == "-11", || {
        format!("free {free}, busy {busy}")
    })?;
    // Our own lock never conflicts with us.
    let (r, b) = lk(&f, F_GETLK, F_WRLCK, 0, 10);
    ensure(r == 0 && parse(&b).0 == F_UNLCK, || {
        format!("own F_GETLK {r} {:?}", parse(&b))
    })?;
    // Closing any descriptor of the file drops the process's locks (POSIX).
    drop(rw(path)?);
    let after = child(&["setlk", path, "5", "1"])?;
    ensure(after == "0", || format!("after close: {after}"))?;
    let ro = File::open(path).map_err(|e| e.to_string())?;
    ensure(lk(&ro, F_SETLK, F_WRLCK, 0, 1).0 == -9, || {
        "write lock on O_RDONLY".into()
    })?;
    ensure(lk(&f, F_SETLK, F_WRLCK, -5, 1).0 == -22, || {
        "negative start".into()
    })?;
    Ok(String::new())
}

fn locks_of_an_ended_process_go() -> CheckResult {
    let path = "/tmp/locks-exit";
    let f = rw(path)?;
    let mut c = spawn(&["hold", path, "0", "100"])?;
    ensure(line_of(&mut c)? == "0", || "child lock".into())?;
    ensure(lk(&f, F_SETLK, F_RDLCK, 50, 1).0 == EAGAIN, || {
        "held by child".into()
    })?;
    drop(c.stdin.take());
    let r = lk(&f, F_SETLKW, F_WRLCK, 0, 100).0;
    c.wait().map_err(|e| e.to_string())?;
    ensure(r == 0, || format!("F_SETLKW after the holder ended: {r}"))?;
    Ok(String::new())
}

fn ofd_locks_belong_to_the_open_file() -> CheckResult {
    let path = "/tmp/locks-ofd";
    let a = rw(path)?;
    let b = rw(path)?;
    ensure(lk(&a, F_OFD_SETLK, F_WRLCK, 0, 10).0 == 0, || {
        "OFD lock".into()
    })?;
    let r = lk(&b, F_OFD_SETLK, F_WRLCK, 5, 1).0;
    ensure(r == EAGAIN, || format!("second open file: {r}"))?;
    let r = lk(&b, F_SETLK, F_WRLCK, 5, 1).0;
    ensure(r == EAGAIN, || format!("POSIX lock against it: {r}"))?;
    let (r, got) = lk(&b, F_OFD_GETLK, F_RDLCK, 0, 0);
    ensure(r == 0 && parse(&got) == (F_WRLCK, 0, 10, -1), || {
        format!("{r} {:?}", parse(&got))
    })?;
    drop(a);
    ensure(lk(&b, F_OFD_SETLK, F_WRLCK, 5, 1).0 == 0, || {
        "after close".into()
    })?;
    let mut bad = flock_struct(F_WRLCK, 0, 1);
    bad[24] = 1;
    // SAFETY: a struct flock with l_pid set, which OFD commands refuse.
    let r = unsafe {
        syscall3(
            72,
            b.as_raw_fd() as usize,
            F_OFD_SETLK,
            bad.as_mut_ptr() as usize,
        )
    };
    ensure(r == -22, || format!("l_pid != 0: {r}"))?;
    Ok(String::new())
}

static HANDLED: AtomicUsize = AtomicUsize::new(0);

extern "C" fn count_signal(_: i32) {
    HANDLED.fetch_add(1, Ordering::SeqCst);
}

fn waits_are_interruptible() -> CheckResult {
    let path = "/tmp/locks-eintr";
    let f = rw(path)?;
    let mut c = spawn(&["hold", path, "0", "1"])?;
    ensure(line_of(&mut c)? == "0", || "child lock".into())?;
    let r = set_signal_action(10, count_signal as *const () as usize, 0);
    ensure(r == 0, || format!("rt_sigaction: {r}"))?;
    // SAFETY: gettid and getpid take nothing.
    let (tid, pid) = unsafe { (syscall3(186, 0, 0, 0), syscall3(39, 0, 0, 0)) };
    let kicker = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(150));
        // SAFETY: tgkill of this process's main thread.
        unsafe { syscall3(234, pid as usize, tid as usize, 10) };
    });
    let r = lk(&f, F_SETLKW, F_WRLCK, 0, 1).0;
    kicker.join().map_err(|_| "kicker panicked")?;
    drop(c.stdin.take());
    c.wait().map_err(|e| e.to_string())?;
    ensure(r == EINTR, || format!("F_SETLKW interrupted: {r}"))?;
    ensure(HANDLED.load(Ordering::SeqCst) == 1, || {
        "handler did not run".into()
    })?;
    Ok("EINTR".into())
}

fn a_cycle_of_waits_is_edeadlk() -> CheckResult {
    let path = "/tmp/locks-deadlock";
    let f = rw(path)?;
    ensure(lk(&f, F_SETLK, F_WRLCK, 0, 1).0 == 0, || "byte 0".into())?;
    let mut c = spawn(&["deadlock", path])?;
    ensure(line_of(&mut c)? == "ready", || "child lock".into())?;
    std::thread::sleep(Duration::from_millis(200));
    // The child holds byte 1 and waits for byte 0: waiting for byte 1 would never end.
    let r = lk(&f, F_SETLKW, F_WRLCK, 1, 1).0;
    ensure(lk(&f, F_SETLK, F_UNLCK, 0, 1).0 == 0, || "unlock".into())?;
    let got = line_of(&mut c)?;
    let status = c.wait().map_err(|e| e.to_string())?;
    ensure(r == EDEADLK, || format!("F_SETLKW: {r}"))?;
    ensure(got == "0" && status.success(), || {
        format!("child: {got} {status:?}")
    })?;
    Ok("EDEADLK".into())
}

fn fifo_between_processes() -> CheckResult {
    let path = "/tmp/locks-fifo";
    let _ = std::fs::remove_file(path);
    let cpath = format!("{path}\0");
    // SAFETY: mknodat(AT_FDCWD, a NUL-terminated path, S_IFIFO | 0600, 0).
    let r = unsafe {
        syscall4(
            259,
            -100isize as usize,
            cpath.as_ptr() as usize,
            0o010600,
            0,
        )
    };
    ensure(r == 0, || format!("mknodat: {r}"))?;
    let nb = OpenOptions::new()
        .write(true)
        .custom_flags(0o4000)
        .open(path);
    ensure(
        nb.as_ref().err().and_then(|e| e.raw_os_error()) == Some(ENXIO),
        || format!("O_NONBLOCK writer with no reader: {nb:?}"),
    )?;
    let mut c = spawn(&["fifo-write", path])?;
    let mut text = String::new();
    File::open(path)
        .and_then(|mut f| f.read_to_string(&mut text))
        .map_err(|e| format!("read: {e}"))?;
    c.wait().map_err(|e| e.to_string())?;
    ensure(text == "through the fifo\n", || format!("read {text:?}"))?;
    let meta = std::fs::metadata(path).map_err(|e| e.to_string())?;
    use std::os::unix::fs::FileTypeExt;
    ensure(meta.file_type().is_fifo(), || "not a FIFO".into())?;
    std::fs::remove_file(path).map_err(|e| e.to_string())?;
    Ok(String::new())
}

fn child_role(role: &str, rest: &[String]) -> ExitCode {
    let path = rest.first().map(String::as_str).unwrap_or("");
    let num = |i: usize| rest.get(i).and_then(|s| s.parse::<i64>().ok()).unwrap_or(0);
    if role == "fifo-write" {
        let r = OpenOptions::new().write(true).open(path);
        return match r.and_then(|mut w| w.write_all(b"through the fifo\n")) {
            Ok(()) => ExitCode::SUCCESS,
            Err(_) => ExitCode::FAILURE,
        };
    }
    let Ok(f) = rw(path) else {
        return ExitCode::FAILURE;
    };
    match role {
        "flock-nb" => {
            let op = if rest.get(1).map(String::as_str) == Some("sh") {
                LOCK_SH
            } else {
                LOCK_EX
            };
            println!("{}", flock(&f, op | LOCK_NB));
        }
        "flock-wait" => {
            println!("waiting");
            let r = flock(&f, LOCK_EX);
            println!("{}", if r == 0 { "got" } else { "failed" });
        }
        "getlk" => {
            let (r, b) = lk(&f, F_GETLK, F_WRLCK, num(1), num(2));
            let (t, s, l, p) = parse(&b);
            if r != 0 {
                println!("{r}");
            } else {
                println!("{t} {s} {l} {p}");
            }
        }
        "setlk" => println!("{}", lk(&f, F_SETLK, F_WRLCK, num(1), num(2)).0),
        "hold" => {
            println!("{}", lk(&f, F_SETLK, F_WRLCK, num(1), num(2)).0);
            let _ = std::io::stdout().flush();
            let _ = std::io::stdin().read_to_end(&mut Vec::new());
        }
        "deadlock" => {
            if lk(&f, F_SETLK, F_WRLCK, 1, 1).0 != 0 {
                return ExitCode::FAILURE;
            }
            println!("ready");
            let _ = std::io::stdout().flush();
            println!("{}", lk(&f, F_SETLKW, F_WRLCK, 0, 1).0);
        }
        _ => return ExitCode::FAILURE,
    }
    ExitCode::SUCCESS
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if let Some(role) = args.get(1) {
        return child_role(role, &args[2..]);
    }
    let mut checks = Checks::stdout("locks");
    checks.run(
        "flock_excludes_other_processes",
        flock_excludes_other_processes,
    );
    checks.run(
        "flock_wait_ends_when_the_holder_closes",
        flock_wait_ends_when_the_holder_closes,
    );
    checks.run(
        "record_locks_conflict_by_range",
        record_locks_conflict_by_range,
    );
    checks.run("locks_of_an_ended_process_go", locks_of_an_ended_process_go);
    checks.run(
        "ofd_locks_belong_to_the_open_file",
        ofd_locks_belong_to_the_open_file,
    );
    checks.run("waits_are_interruptible", waits_are_interruptible);
    checks.run("a_cycle_of_waits_is_edeadlk", a_cycle_of_waits_is_edeadlk);
    checks.run("fifo_between_processes", fifo_between_processes);
    checks.finish()
}

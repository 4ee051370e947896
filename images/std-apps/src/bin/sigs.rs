//! Process-directed signals among threads (Linux's shared pending set): a signal sent to
//! the process (`kill`) goes to a thread that does not block it, waits while every thread
//! blocks it until one unblocks it, shows in `sigpending` from every thread, and
//! `sigwaitinfo` in any thread takes it; SIGCHLD's siginfo for an exited, a stopped and a
//! killed child. One `PASS`/`FAIL` line per check.
//!
//! Child role: `sigs child-exit N` exits with N, `sigs child-sleep` sleeps 10 s.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use astra_std_apps::checks::{ensure, CheckResult, Checks};
use astra_std_apps::sys::{set_signal_action, syscall3, syscall4};

/// The thread id that ran the handler last (0: none yet).
static HANDLER_TID: AtomicUsize = AtomicUsize::new(0);

extern "C" fn record_tid(_: i32) {
    // SAFETY: gettid touches no memory.
    let tid = unsafe { syscall3(186, 0, 0, 0) } as usize;
    HANDLER_TID.store(tid, Ordering::SeqCst);
}

const SIGUSR1: usize = 10;
const SIGUSR2: usize = 12;
const SIG_BLOCK: usize = 0;
const SIG_UNBLOCK: usize = 1;

fn bit(sig: usize) -> u64 {
    1 << (sig - 1)
}

fn gettid() -> usize {
    // SAFETY: gettid touches no memory.
    unsafe { syscall3(186, 0, 0, 0) as usize }
}

fn getpid() -> usize {
    // SAFETY: getpid touches no memory.
    unsafe { syscall3(39, 0, 0, 0) as usize }
}

/// rt_sigprocmask(how, {sig}) for the calling thread.
fn mask(how: usize, sig: usize) {
    let set = bit(sig);
    // SAFETY: the set is a live u64; no old set is asked for.
    unsafe { syscall4(14, how, &set as *const u64 as usize, 0, 8) };
}

/// The calling thread's rt_sigpending set.
fn pending() -> u64 {
    let mut set = 0u64;
    // SAFETY: the kernel writes 8 bytes into a live u64.
    unsafe { syscall3(127, &mut set as *mut u64 as usize, 8, 0) };
    set
}

fn kill_self(sig: usize) {
    // SAFETY: kill touches no memory.
    unsafe { syscall3(62, getpid(), sig, 0) };
}

/// rt_sigtimedwait for `sig` up to `secs`: the signal number (or -errno) and the
/// siginfo's si_code and si_pid.
fn sigwait(sig: usize, secs: i64) -> (isize, i32, i32) {
    let set = bit(sig);
    let mut info = [0i32; 32];
    let ts = [secs, 0i64];
    // SAFETY: live set, siginfo buffer (128 bytes) and timespec.
    let r = unsafe {
        syscall4(
            128,
            &set as *const u64 as usize,
            info.as_mut_ptr() as usize,
            ts.as_ptr() as usize,
            8,
        )
    };
    (r, info[2], info[4])
}

fn install() -> Result<(), String> {
    for sig in [SIGUSR1, SIGUSR2] {
        let r = set_signal_action(sig, record_tid as extern "C" fn(i32) as usize, 0);
        ensure(r == 0, || format!("rt_sigaction: {r}"))?;
    }
    Ok(())
}

fn wait_until(deadline: Duration, f: impl Fn() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    f()
}

/// The main thread blocks SIGUSR1, a second thread does not: kill(getpid()) from the
/// main thread runs the handler in the second thread.
fn unblocked_thread_takes_it() -> CheckResult {
    install()?;
    HANDLER_TID.store(0, Ordering::SeqCst);
    mask(SIG_BLOCK, SIGUSR1);
    let ready = Arc::new(AtomicUsize::new(0));
    let r2 = ready.clone();
    let t = std::thread::spawn(move || {
        mask(SIG_UNBLOCK, SIGUSR1);
        r2.store(gettid(), Ordering::SeqCst);
        wait_until(Duration::from_secs(5), || {
            HANDLER_TID.load(Ordering::SeqCst) != 0
        });
    });
    ensure(
        wait_until(Duration::from_secs(5), || ready.load(Ordering::SeqCst) != 0),
        || "thread not ready".into(),
    )?;
    kill_self(SIGUSR1);
    t.join().map_err(|_| "thread panicked".to_string())?;
    let (got, want) = (
        HANDLER_TID.load(Ordering::SeqCst),
        ready.load(Ordering::SeqCst),
    );
    mask(SIG_UNBLOCK, SIGUSR1);
    ensure(got == want, || format!("handled by tid {got}, want {want}"))?;
    Ok(String::new())
}

/// Both threads block SIGUSR1; after kill it is pending for both (sigpending in each);
/// the second thread unblocks it and its handler runs there.
fn unblock_later() -> CheckResult {
    HANDLER_TID.store(0, Ordering::SeqCst);
    mask(SIG_BLOCK, SIGUSR1);
    let go = Arc::new(AtomicBool::new(false));
    let tid = Arc::new(AtomicUsize::new(0));
    let seen = Arc::new(AtomicUsize::new(0));
    let (g2, t2, s2) = (go.clone(), tid.clone(), seen.clone());
    let t = std::thread::spawn(move || {
        t2.store(gettid(), Ordering::SeqCst);
        wait_until(Duration::from_secs(5), || g2.load(Ordering::SeqCst));
        s2.store(
            (pending() & bit(SIGUSR1) != 0) as usize + 1,
            Ordering::SeqCst,
        );
        mask(SIG_UNBLOCK, SIGUSR1);
    });
    wait_until(Duration::from_secs(5), || tid.load(Ordering::SeqCst) != 0);
    kill_self(SIGUSR1);
    std::thread::sleep(Duration::from_millis(50));
    let early = HANDLER_TID.load(Ordering::SeqCst);
    let main_sees = pending() & bit(SIGUSR1) != 0;
    go.store(true, Ordering::SeqCst);
    t.join().map_err(|_| "thread panicked".to_string())?;
    let got = HANDLER_TID.load(Ordering::SeqCst);
    let after = pending() & bit(SIGUSR1) != 0;
    mask(SIG_UNBLOCK, SIGUSR1);
    ensure(early == 0, || format!("handled while blocked by {early}"))?;
    ensure(main_sees, || "main thread's sigpending lacks it".into())?;
    ensure(seen.load(Ordering::SeqCst) == 2, || {
        "second thread's sigpending lacks it".into()
    })?;
    ensure(got == tid.load(Ordering::SeqCst), || {
        format!("handled by {got}")
    })?;
    ensure(!after, || "still pending after delivery".into())?;
    Ok(String::new())
}

/// Every thread blocks SIGUSR2; sigwaitinfo in the second thread takes the signal sent
/// to the process (si_code SI_USER, si_pid the sender), and it is pending no more.
fn sigwaitinfo_in_thread() -> CheckResult {
    HANDLER_TID.store(0, Ordering::SeqCst);
    mask(SIG_BLOCK, SIGUSR2);
    let t = std::thread::spawn(move || sigwait(SIGUSR2, 5));
    std::thread::sleep(Duration::from_millis(50));
    kill_self(SIGUSR2);
    let (r, code, pid) = t.join().map_err(|_| "thread panicked".to_string())?;
    let left = pending() & bit(SIGUSR2) != 0;
    mask(SIG_UNBLOCK, SIGUSR2);
    ensure(r == SIGUSR2 as isize, || format!("rt_sigtimedwait: {r}"))?;
    ensure(code == 0 && pid as usize == getpid(), || {
        format!("si_code {code} si_pid {pid}")
    })?;
    ensure(!left && HANDLER_TID.load(Ordering::SeqCst) == 0, || {
        "taken twice".into()
    })?;
    Ok(String::new())
}

/// A signal sent to the process while every thread blocks it is taken by sigwaitinfo
/// in the main thread; a second kill before that coalesces (one instance).
fn coalesce_and_take_in_main() -> CheckResult {
    mask(SIG_BLOCK, SIGUSR2);
    kill_self(SIGUSR2);
    kill_self(SIGUSR2);
    let from_thread = std::thread::spawn(|| pending() & bit(SIGUSR2) != 0)
        .join()
        .map_err(|_| "thread panicked".to_string())?;
    let first = sigwait(SIGUSR2, 0).0;
    let second = sigwait(SIGUSR2, 0).0;
    mask(SIG_UNBLOCK, SIGUSR2);
    ensure(from_thread, || "a new thread's sigpending lacks it".into())?;
    ensure(first == SIGUSR2 as isize && second == -11, || {
        format!("sigwait: {first} then {second}")
    })?;
    Ok(String::new())
}

/// What the SIGCHLD handler saw, one event at a time: (si_code, si_status, si_pid,
/// si_utime), and how many events came.
static CHLD: [AtomicUsize; 4] = [const { AtomicUsize::new(0) }; 4];
static CHLD_COUNT: AtomicUsize = AtomicUsize::new(0);

extern "C" fn record_child(_: i32, info: *const i32, _: *const u8) {
    // SAFETY: the kernel passes a 128-byte siginfo: si_code at 8, si_pid at 16,
    // si_status at 24, si_utime (a long) at 32.
    let (code, pid, status, utime) = unsafe {
        (
            *info.add(2),
            *info.add(4),
            *info.add(6),
            *(info.add(8) as *const i64),
        )
    };
    for (slot, v) in CHLD
        .iter()
        .zip([code as usize, status as usize, pid as usize, utime as usize])
    {
        slot.store(v, Ordering::SeqCst);
    }
    CHLD_COUNT.fetch_add(1, Ordering::SeqCst);
}

/// Waits for SIGCHLD event number `n` and returns (si_code, si_status, si_pid, si_utime).
fn child_event(n: usize) -> Result<[usize; 4], String> {
    ensure(
        wait_until(Duration::from_secs(5), || {
            CHLD_COUNT.load(Ordering::SeqCst) >= n
        }),
        || format!("SIGCHLD #{n} never came"),
    )?;
    Ok(CHLD.each_ref().map(|a| a.load(Ordering::SeqCst)))
}

/// SIGCHLD with SA_SIGINFO: CLD_EXITED with the exit code, CLD_STOPPED with SIGSTOP,
/// CLD_KILLED with SIGKILL, each with the child's pid and a small si_utime.
fn sigchld_info() -> CheckResult {
    const SA_SIGINFO: u64 = 4;
    let handler = record_child as extern "C" fn(i32, *const i32, *const u8) as usize;
    let r = set_signal_action(17, handler, SA_SIGINFO);
    ensure(r == 0, || format!("rt_sigaction: {r}"))?;
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut child = std::process::Command::new(&me)
        .args(["child-exit", "3"])
        .spawn()
        .map_err(|e| e.to_string())?;
    let pid = child.id() as usize;
    child.wait().map_err(|e| e.to_string())?;
    let [code, status, spid, utime] = child_event(1)?;
    ensure(
        code == 1 && status == 3 && spid == pid && utime < 100,
        || format!("exit: code {code} status {status} pid {spid} (want {pid}) utime {utime}"),
    )?;
    let mut child = std::process::Command::new(&me)
        .arg("child-sleep")
        .spawn()
        .map_err(|e| e.to_string())?;
    let pid = child.id() as usize;
    // SAFETY: kill touches no memory.
    unsafe { syscall3(62, pid, 19, 0) };
    let [code, status, spid, _] = child_event(2)?;
    ensure(code == 5 && status == 19 && spid == pid, || {
        format!("stop: code {code} status {status} pid {spid} (want {pid})")
    })?;
    // SAFETY: kill touches no memory.
    unsafe { syscall3(62, pid, 9, 0) };
    child.wait().map_err(|e| e.to_string())?;
    let [code, status, spid, _] = child_event(3)?;
    ensure(code == 2 && status == 9 && spid == pid, || {
        format!("kill: code {code} status {status} pid {spid} (want {pid})")
    })?;
    std::thread::sleep(Duration::from_millis(50));
    let n = CHLD_COUNT.load(Ordering::SeqCst);
    ensure(n == 3, || format!("{n} SIGCHLDs"))?;
    Ok(String::new())
}

/// A pending (blocked) SIGTSTP is discarded by SIGCONT, and a pending SIGCONT by a stop
/// signal, as Linux's prepare_signal does.
fn stop_and_continue_discard_each_other() -> CheckResult {
    const SIGCONT: usize = 18;
    const SIGTSTP: usize = 20;
    let both = bit(SIGCONT) | bit(SIGTSTP);
    // SAFETY: the set is a live u64; no old set is asked for.
    unsafe { syscall4(14, SIG_BLOCK, &both as *const u64 as usize, 0, 8) };
    kill_self(SIGTSTP);
    let tstp_pending = pending() & both;
    kill_self(SIGCONT);
    let after_cont = pending() & both;
    kill_self(SIGTSTP);
    let after_tstp = pending() & both;
    let _ = sigwait(SIGTSTP, 0);
    let _ = sigwait(SIGCONT, 0);
    // SAFETY: as above.
    unsafe { syscall4(14, SIG_UNBLOCK, &both as *const u64 as usize, 0, 8) };
    let got = [tstp_pending, after_cont, after_tstp];
    let want = [bit(SIGTSTP), bit(SIGCONT), bit(SIGTSTP)];
    ensure(got == want, || {
        format!("pending sets {got:x?}, want {want:x?}")
    })?;
    Ok(String::new())
}

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("child-exit") => {
            let code = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(1);
            std::process::exit(code);
        }
        Some("child-sleep") => {
            std::thread::sleep(Duration::from_secs(10));
            return std::process::ExitCode::SUCCESS;
        }
        _ => {}
    }
    let mut checks = Checks::stdout("sigs");
    checks.run("unblocked_thread_takes_it", unblocked_thread_takes_it);
    checks.run("unblock_later", unblock_later);
    checks.run("sigwaitinfo_in_thread", sigwaitinfo_in_thread);
    checks.run("coalesce_and_take_in_main", coalesce_and_take_in_main);
    checks.run("sigchld_info", sigchld_info);
    checks.run(
        "stop_and_continue_discard_each_other",
        stop_and_continue_discard_each_other,
    );
    checks.finish()
}

//! Real-time signals queue, standard ones coalesce, and the user's `RLIMIT_SIGPENDING`
//! bounds the queue, as on Linux: `rt_sigqueueinfo` instances arrive in order with their
//! values, lowest signal first; `rt_sigtimedwait` returns the value; past the limit
//! `rt_sigqueueinfo` gives EAGAIN while `kill` does not; `/proc/self/status` shows `SigQ`,
//! `SigPnd` (the thread's) and `ShdPnd` (the process's); `tgkill` with SIGCONT continues
//! a stopped child. Raw system calls and kernel signal numbers (40-42: clear of the
//! real-time signals musl keeps for itself). One `PASS`/`FAIL` line per check.
//!
//! Child role: `rtsigs child-stop` stops itself, then exits 7 once continued.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use astra_std_apps::checks::{ensure, CheckResult, Checks};
use astra_std_apps::sys::{set_signal_action, syscall3, syscall4};

const SIGUSR1: usize = 10;
const SIGUSR2: usize = 12;
const SIGCONT: usize = 18;
const SIGSTOP: usize = 19;
const RT_A: usize = 40;
const RT_B: usize = 41;
const RT_C: usize = 42;
const SA_SIGINFO: u64 = 4;
const SI_QUEUE: i32 = -1;
const EAGAIN: isize = -11;
const RLIMIT_SIGPENDING: usize = 11;
const SIG_BLOCK: usize = 0;
const SIG_UNBLOCK: usize = 1;

/// (signal, si_code, si_value) of each handler run, in order.
static SEEN: Mutex<Vec<(i32, i32, u64)>> = Mutex::new(Vec::new());
static RUNS: AtomicUsize = AtomicUsize::new(0);

extern "C" fn record(sig: i32, info: *const u8, _: *const u8) {
    // SAFETY: the kernel passes a valid siginfo_t: si_code at offset 8, si_value at 24.
    let (code, value) = unsafe {
        (
            (info.add(8) as *const i32).read_unaligned(),
            (info.add(24) as *const u64).read_unaligned(),
        )
    };
    RUNS.fetch_add(1, Ordering::SeqCst);
    // The handler only runs while the main thread is in a system call of its own (the
    // signals are unblocked by rt_sigprocmask), never while it holds the lock.
    if let Ok(mut seen) = SEEN.try_lock() {
        seen.push((sig, code, value));
    }
}

fn getpid() -> usize {
    // SAFETY: getpid touches no memory.
    unsafe { syscall3(39, 0, 0, 0) as usize }
}

fn set_mask(how: usize, set: u64) {
    // SAFETY: the set is a live u64; no old set is asked for.
    unsafe { syscall4(14, how, &set as *const u64 as usize, 0, 8) };
}

fn bits(sigs: &[usize]) -> u64 {
    sigs.iter().fold(0, |m, s| m | 1 << (s - 1))
}

/// rt_sigqueueinfo(getpid(), sig) with si_code SI_QUEUE and `value`: 0 or -errno.
fn queue(sig: usize, value: u64) -> isize {
    let mut info = [0u8; 128];
    info[0..4].copy_from_slice(&(sig as i32).to_ne_bytes());
    info[8..12].copy_from_slice(&SI_QUEUE.to_ne_bytes());
    info[16..20].copy_from_slice(&(getpid() as i32).to_ne_bytes());
    info[24..32].copy_from_slice(&value.to_ne_bytes());
    // SAFETY: a live 128-byte siginfo.
    unsafe { syscall3(129, getpid(), sig, info.as_ptr() as usize) }
}

fn kill_self(sig: usize) -> isize {
    // SAFETY: kill touches no memory.
    unsafe { syscall3(62, getpid(), sig, 0) }
}

/// What the handler saw since the last call; room is kept so the handler never
/// allocates.
fn take_seen() -> Vec<(i32, i32, u64)> {
    let mut seen = SEEN.lock().unwrap();
    let taken = std::mem::take(&mut *seen);
    seen.reserve(64);
    taken
}

fn install(sigs: &[usize]) -> Result<(), String> {
    for &sig in sigs {
        let handler = record as extern "C" fn(i32, *const u8, *const u8) as usize;
        let r = set_signal_action(sig, handler, SA_SIGINFO);
        ensure(r == 0, || format!("rt_sigaction({sig}): {r}"))?;
    }
    Ok(())
}

/// Three sigqueue()s of one real-time signal while it is blocked: three handler runs,
/// values in order. Two SIGUSR1s while blocked: one run.
fn queue_in_order_and_coalesce() -> CheckResult {
    install(&[RT_A, SIGUSR1])?;
    take_seen();
    set_mask(SIG_BLOCK, bits(&[RT_A]));
    for v in 1..=3 {
        let r = queue(RT_A, v);
        ensure(r == 0, || format!("rt_sigqueueinfo: {r}"))?;
    }
    set_mask(SIG_UNBLOCK, bits(&[RT_A]));
    let seen = take_seen();
    let want: Vec<(i32, i32, u64)> = (1..=3).map(|v| (RT_A as i32, SI_QUEUE, v)).collect();
    ensure(seen == want, || {
        format!("handler saw {seen:?}, want {want:?}")
    })?;
    set_mask(SIG_BLOCK, bits(&[SIGUSR1]));
    kill_self(SIGUSR1);
    kill_self(SIGUSR1);
    set_mask(SIG_UNBLOCK, bits(&[SIGUSR1]));
    let seen = take_seen();
    ensure(seen == [(SIGUSR1 as i32, 0, 0)], || {
        format!("SIGUSR1 twice gave {seen:?}")
    })?;
    Ok(String::new())
}

/// rt_sigtimedwait(set, &info) with `sig` blocked: the signal number (or -errno) and the
/// siginfo's si_code, si_pid and si_value.
fn sigwait(set: u64) -> (isize, i32, i32, u64) {
    let mut info = [0u8; 128];
    let ts = [1i64, 0];
    // SAFETY: live set, siginfo buffer and timespec.
    let r = unsafe {
        syscall4(
            128,
            &set as *const u64 as usize,
            info.as_mut_ptr() as usize,
            ts.as_ptr() as usize,
            8,
        )
    };
    let int = |at: usize| i32::from_ne_bytes(info[at..at + 4].try_into().unwrap());
    let value = u64::from_ne_bytes(info[24..32].try_into().unwrap());
    (r, int(8), int(16), value)
}

/// Pending RT_B, RT_A (sent in that order) and SIGUSR2: taken lowest first, SIGUSR2,
/// RT_A, RT_B, each with its own value and the sender's pid.
fn lowest_first_with_values() -> CheckResult {
    let set = bits(&[RT_A, RT_B, SIGUSR2]);
    set_mask(SIG_BLOCK, set);
    queue(RT_B, 10);
    queue(RT_A, 20);
    kill_self(SIGUSR2);
    let got: Vec<(isize, i32, i32, u64)> = (0..3).map(|_| sigwait(set)).collect();
    set_mask(SIG_UNBLOCK, set);
    let me = getpid() as i32;
    let want = vec![
        (SIGUSR2 as isize, 0, me, 0),
        (RT_A as isize, SI_QUEUE, me, 20),
        (RT_B as isize, SI_QUEUE, me, 10),
    ];
    ensure(got == want, || format!("took {got:?}, want {want:?}"))?;
    Ok(String::new())
}

/// With RLIMIT_SIGPENDING lowered to 4 above what the user has queued already (the
/// count is the user's, all processes together: `SigQ` in /proc/self/status), queueing a
/// blocked real-time signal stops at EAGAIN; kill() of it still works; every queued
/// instance is delivered once unblocked.
fn limit_gives_eagain() -> CheckResult {
    install(&[RT_C])?;
    let mut old = [0u64; 2];
    // SAFETY: prlimit64(0, RLIMIT_SIGPENDING, NULL, &old).
    unsafe { syscall4(302, 0, RLIMIT_SIGPENDING, 0, old.as_mut_ptr() as usize) };
    let sigq = status_line("SigQ:");
    let already: u64 = sigq
        .split('/')
        .next()
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| format!("SigQ: {sigq:?}"))?;
    let low = [already + 4, old[1]];
    // SAFETY: as above, setting a lower soft limit.
    let r = unsafe { syscall4(302, 0, RLIMIT_SIGPENDING, low.as_ptr() as usize, 0) };
    ensure(r == 0, || format!("prlimit64: {r}"))?;
    set_mask(SIG_BLOCK, bits(&[RT_C]));
    take_seen();
    let mut queued = 0;
    let mut last = 0;
    for v in 0..16 {
        last = queue(RT_C, v);
        if last != 0 {
            break;
        }
        queued += 1;
    }
    let by_kill = kill_self(RT_C);
    set_mask(SIG_UNBLOCK, bits(&[RT_C]));
    // SAFETY: restores the old limit.
    unsafe { syscall4(302, 0, RLIMIT_SIGPENDING, old.as_ptr() as usize, 0) };
    let seen = take_seen();
    let values: Vec<u64> = seen.iter().map(|s| s.2).collect();
    // Other processes of the user may queue or take signals meanwhile: a little slack.
    ensure(last == EAGAIN && (1..=8).contains(&queued), || {
        format!(
            "queued {queued} before {last} with {already} already queued (want EAGAIN after 1-8)"
        )
    })?;
    ensure(by_kill == 0, || format!("kill past the limit: {by_kill}"))?;
    let want: Vec<u64> = (0..queued).collect();
    ensure(values == want, || {
        format!("delivered values {values:?}, want {want:?}")
    })?;
    Ok(format!("{queued} queued"))
}

/// The status lines of /proc/self/status starting with `key`.
fn status_line(key: &str) -> String {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(key))
        .map(|l| l[key.len()..].trim().to_string())
        .unwrap_or_default()
}

/// SigQ reads "queued/limit"; a tgkill'ed blocked SIGUSR1 shows in SigPnd (the
/// thread's), a kill'ed blocked SIGUSR2 in ShdPnd (the process's).
fn proc_status_lines() -> CheckResult {
    let sigq = status_line("SigQ:");
    let parts: Vec<&str> = sigq.split('/').collect();
    ensure(
        parts.len() == 2 && parts.iter().all(|p| p.parse::<u64>().is_ok()),
        || format!("SigQ: {sigq:?}"),
    )?;
    set_mask(SIG_BLOCK, bits(&[SIGUSR1, SIGUSR2]));
    // SAFETY: tgkill touches no memory.
    unsafe { syscall3(234, getpid(), getpid(), SIGUSR1) };
    kill_self(SIGUSR2);
    let own = u64::from_str_radix(&status_line("SigPnd:"), 16).unwrap_or(0);
    let shared = u64::from_str_radix(&status_line("ShdPnd:"), 16).unwrap_or(0);
    // Taken before they are unblocked (their default action would end the program).
    sigwait(bits(&[SIGUSR1]));
    sigwait(bits(&[SIGUSR2]));
    set_mask(SIG_UNBLOCK, bits(&[SIGUSR1, SIGUSR2]));
    ensure(
        own == bits(&[SIGUSR1]) && shared == bits(&[SIGUSR2]),
        || format!("SigPnd {own:x}, ShdPnd {shared:x}"),
    )?;
    Ok(String::new())
}

/// A child stops itself; tgkill(child, child, SIGCONT) continues it, as kill would.
fn tgkill_continues_a_stopped_child() -> CheckResult {
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut child = std::process::Command::new(me)
        .arg("child-stop")
        .spawn()
        .map_err(|e| e.to_string())?;
    let pid = child.id() as usize;
    let mut status = 0i32;
    // SAFETY: wait4(pid, &status, WUNTRACED, NULL).
    let r = unsafe { syscall4(61, pid, &mut status as *mut i32 as usize, 2, 0) };
    ensure(r == pid as isize && status & 0xff == 0x7f, || {
        format!("wait4 WUNTRACED: {r}, status {status:#x}")
    })?;
    // SAFETY: tgkill touches no memory.
    let r = unsafe { syscall3(234, pid, pid, SIGCONT) };
    ensure(r == 0, || format!("tgkill: {r}"))?;
    let exit = child.wait().map_err(|e| e.to_string())?;
    ensure(exit.code() == Some(7), || {
        format!("child ended with {exit}")
    })?;
    Ok(String::new())
}

fn main() -> std::process::ExitCode {
    if std::env::args().nth(1).as_deref() == Some("child-stop") {
        // SAFETY: kill touches no memory.
        unsafe { syscall3(62, getpid(), SIGSTOP, 0) };
        std::process::exit(7);
    }
    let mut checks = Checks::stdout("rtsigs");
    checks.run("queue_in_order_and_coalesce", queue_in_order_and_coalesce);
    checks.run("lowest_first_with_values", lowest_first_with_values);
    checks.run("limit_gives_eagain", limit_gives_eagain);
    checks.run("proc_status_lines", proc_status_lines);
    checks.run(
        "tgkill_continues_a_stopped_child",
        tgkill_continues_a_stopped_child,
    );
    checks.finish()
}

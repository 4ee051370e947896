//! Restartable sequences as Linux runs them: a thread that registered a `struct rseq` and
//! is interrupted inside a critical section (by a signal, or by preemption when another
//! thread wants its CPU) resumes at the section's abort handler, and the kernel clears
//! `rseq_cs`. One `PASS`/`FAIL` line per check.
//!
//! `rseq badsig`: a signal inside a section whose abort handler lacks the registered
//! signature: the kernel kills the program with SIGSEGV.

use std::arch::{asm, global_asm};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use astra_std_apps::checks::{CheckResult, Checks};

/// x86's `RSEQ_SIG`: the word before every abort handler.
const RSEQ_SIG: u32 = 0x5305_3053;
const SYS_RSEQ: u64 = 334;
const SYS_RT_SIGACTION: u64 = 13;
const SYS_TGKILL: u64 = 234;
const SYS_GETPID: u64 = 39;
const SYS_GETTID: u64 = 186;
const SYS_SCHED_SETAFFINITY: u64 = 203;
const SIGUSR1: u64 = 10;
const SA_SIGINFO: u64 = 4;
const SA_RESTORER: u64 = 0x0400_0000;

/// `struct rseq` (the original 32 bytes).
#[repr(C, align(32))]
struct RseqArea {
    cpu_id_start: u32,
    cpu_id: u32,
    rseq_cs: u64,
    flags: u32,
    node_id: u32,
    mm_cid: u32,
    pad: u32,
}

/// `struct rseq_cs`.
#[repr(C, align(32))]
struct RseqCs {
    version: u32,
    flags: u32,
    start_ip: u64,
    post_commit_offset: u64,
    abort_ip: u64,
}

thread_local! {
    static AREA: std::cell::UnsafeCell<RseqArea> = const {
        std::cell::UnsafeCell::new(RseqArea {
            cpu_id_start: 0,
            cpu_id: u32::MAX,
            rseq_cs: 0,
            flags: 0,
            node_id: 0,
            mm_cid: 0,
            pad: 0,
        })
    };
}

// Critical sections. Each returns 1 if it ran to its commit point, 2 if it was aborted.
global_asm!(
    // The signal section: tgkill(rdi, rsi, rdx) from inside it; the signal is delivered
    // on the way back, with rip on the `nop` (before the commit point).
    ".globl rseq_sig_start, rseq_sig_post, rseq_sig_abort, rseq_sig_enter",
    "rseq_sig_enter:",
    "mov eax, 234",
    "rseq_sig_start:",
    "syscall",
    "nop",
    "rseq_sig_post:",
    "mov eax, 1",
    "ret",
    ".long 0x53053053",
    "rseq_sig_abort:",
    "mov eax, 2",
    "ret",
    // The spinning section: counts rdi down to zero.
    ".globl rseq_spin_start, rseq_spin_post, rseq_spin_abort",
    "rseq_spin_start:",
    "dec rdi",
    "jnz rseq_spin_start",
    "rseq_spin_post:",
    "mov eax, 1",
    "ret",
    ".long 0x53053053",
    "rseq_spin_abort:",
    "mov eax, 2",
    "ret",
    // Like the signal section, but its abort handler carries the wrong signature.
    ".globl rseq_bad_start, rseq_bad_post, rseq_bad_abort, rseq_bad_enter",
    "rseq_bad_enter:",
    "mov eax, 234",
    "rseq_bad_start:",
    "syscall",
    "nop",
    "rseq_bad_post:",
    "mov eax, 1",
    "ret",
    ".long 0x12345678",
    "rseq_bad_abort:",
    "mov eax, 2",
    "ret",
    ".globl rseq_sig_restorer",
    "rseq_sig_restorer:",
    "mov eax, 15",
    "syscall",
    "ud2",
);

extern "C" {
    static rseq_sig_start: u8;
    static rseq_sig_post: u8;
    static rseq_sig_abort: u8;
    static rseq_spin_start: u8;
    static rseq_spin_post: u8;
    static rseq_spin_abort: u8;
    static rseq_bad_start: u8;
    static rseq_bad_post: u8;
    static rseq_bad_abort: u8;
    fn rseq_sig_restorer();
}

fn addr(label: &u8) -> u64 {
    label as *const u8 as u64
}

/// The descriptor of the section `[start, post)` with abort handler `abort`.
fn descriptor(start: &u8, post: &u8, abort: &u8) -> Box<RseqCs> {
    Box::new(RseqCs {
        version: 0,
        flags: 0,
        start_ip: addr(start),
        post_commit_offset: addr(post) - addr(start),
        abort_ip: addr(abort),
    })
}

fn syscall4(nr: u64, a: u64, b: u64, c: u64, d: u64) -> i64 {
    let ret: i64;
    // SAFETY: only called with system calls whose pointer arguments point at live
    // memory of the right size (or are 0).
    unsafe {
        asm!("syscall", inlateout("rax") nr as i64 => ret, in("rdi") a, in("rsi") b,
            in("rdx") c, in("r10") d, out("rcx") _, out("r11") _, options(nostack));
    }
    ret
}

/// Registers this thread's `struct rseq`.
fn register() -> Result<(), String> {
    let area = AREA.with(|a| a.get() as u64);
    let r = syscall4(SYS_RSEQ, area, 32, 0, u64::from(RSEQ_SIG));
    if r != 0 {
        return Err(format!("rseq registration: {r}"));
    }
    Ok(())
}

fn rseq_cs_field() -> *mut u64 {
    // SAFETY: a field of this thread's registered area; the kernel writes it only while
    // the thread is stopped in the kernel.
    AREA.with(|a| unsafe { &raw mut (*a.get()).rseq_cs })
}

/// Arms `cs` as the thread's critical section.
fn arm(cs: &RseqCs) {
    // SAFETY: see `rseq_cs_field`.
    unsafe { rseq_cs_field().write_volatile(cs as *const RseqCs as u64) };
}

fn armed() -> u64 {
    // SAFETY: see `rseq_cs_field`.
    unsafe { rseq_cs_field().read_volatile() }
}

static HANDLER_RIP: AtomicU64 = AtomicU64::new(0);

extern "C" fn on_usr1(_sig: i32, _info: *const u8, uc: *const u8) {
    // SAFETY: the kernel passed a ucontext; uc_mcontext.rip is at 40 + 16 * 8.
    let rip = unsafe { (uc.add(40 + 16 * 8) as *const u64).read_unaligned() };
    HANDLER_RIP.store(rip, Ordering::SeqCst);
}

fn install_handler() -> Result<(), String> {
    let act: [u64; 4] = [
        on_usr1 as *const () as u64,
        SA_SIGINFO | SA_RESTORER,
        rseq_sig_restorer as *const () as u64,
        0,
    ];
    let r = syscall4(SYS_RT_SIGACTION, SIGUSR1, act.as_ptr() as u64, 0, 8);
    if r != 0 {
        return Err(format!("rt_sigaction: {r}"));
    }
    Ok(())
}

/// Runs the section at `enter` (tgkill to this thread from inside it).
fn run_signalled(enter: unsafe extern "C" fn()) -> u64 {
    let (pid, tid) = (
        syscall4(SYS_GETPID, 0, 0, 0, 0),
        syscall4(SYS_GETTID, 0, 0, 0, 0),
    );
    let ret: u64;
    // SAFETY: the section makes tgkill(pid, tid, SIGUSR1) and returns 1 or 2 in eax; it
    // clobbers rcx and r11 (syscall).
    unsafe {
        asm!("call {f}", f = in(reg) enter, in("rdi") pid, in("rsi") tid, in("rdx") SIGUSR1,
            lateout("rax") ret, out("rcx") _, out("r11") _);
    }
    ret
}

extern "C" {
    fn rseq_sig_enter();
    fn rseq_bad_enter();
}

/// A signal delivered inside the section: the handler sees the abort handler as the
/// interrupted rip, the section resumes there, and `rseq_cs` is cleared.
fn signal_aborts() -> CheckResult {
    install_handler()?;
    // SAFETY: labels of the section above; only their addresses are taken.
    let cs = unsafe { descriptor(&rseq_sig_start, &rseq_sig_post, &rseq_sig_abort) };
    arm(&cs);
    let outcome = run_signalled(rseq_sig_enter);
    if outcome != 2 {
        return Err(format!("the section was not aborted (returned {outcome})"));
    }
    let rip = HANDLER_RIP.load(Ordering::SeqCst);
    if rip != cs.abort_ip {
        return Err(format!(
            "the handler saw rip {rip:#x}, abort handler {:#x}",
            cs.abort_ip
        ));
    }
    if armed() != 0 {
        return Err("rseq_cs was not cleared".into());
    }
    // Outside any section a signal changes nothing.
    HANDLER_RIP.store(0, Ordering::SeqCst);
    let (pid, tid) = (
        syscall4(SYS_GETPID, 0, 0, 0, 0),
        syscall4(SYS_GETTID, 0, 0, 0, 0),
    );
    syscall4(SYS_TGKILL, pid as u64, tid as u64, SIGUSR1, 0);
    if HANDLER_RIP.load(Ordering::SeqCst) == 0 {
        return Err("the second signal was not handled".into());
    }
    Ok(String::new())
}

/// A thread spinning inside the section while another thread wants the same CPU is
/// preempted there, and resumes at the abort handler.
fn preemption_aborts() -> CheckResult {
    // One CPU for both threads (astra has one; on Linux this makes them compete).
    let mask: u64 = 1;
    let r = syscall4(SYS_SCHED_SETAFFINITY, 0, 8, &mask as *const u64 as u64, 0);
    if r != 0 {
        return Err(format!("sched_setaffinity: {r}"));
    }
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let rival = {
        let stop = stop.clone();
        thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::hint::spin_loop();
            }
        })
    };
    // SAFETY: labels of the section above.
    let cs = unsafe { descriptor(&rseq_spin_start, &rseq_spin_post, &rseq_spin_abort) };
    let start = Instant::now();
    let (mut completed, mut aborted) = (0u64, 0u64);
    while aborted == 0 && start.elapsed() < Duration::from_secs(5) {
        arm(&cs);
        let ret: u64;
        // SAFETY: the section counts rdi down and returns 1 or 2 in eax.
        unsafe {
            asm!("call {f}", f = in(reg) addr(&rseq_spin_start), inout("rdi") 20_000_000u64 => _,
                lateout("rax") ret);
        }
        match ret {
            1 => completed += 1,
            2 => aborted += 1,
            other => return Err(format!("the section returned {other}")),
        }
    }
    stop.store(true, Ordering::Relaxed);
    rival.join().map_err(|_| "the rival thread panicked")?;
    if aborted == 0 {
        return Err(format!(
            "{completed} sections completed, none was aborted in 5 s"
        ));
    }
    Ok(format!("{completed} completed before the first abort"))
}

/// A signal inside a section whose abort handler lacks the signature: SIGSEGV.
fn bad_signature() -> ExitCode {
    if let Err(e) = register().and_then(|()| install_handler()) {
        println!("rseq: {e}");
        return ExitCode::from(1);
    }
    // SAFETY: labels of the section above.
    let cs = unsafe { descriptor(&rseq_bad_start, &rseq_bad_post, &rseq_bad_abort) };
    arm(&cs);
    let outcome = run_signalled(rseq_bad_enter);
    println!("rseq: not killed (section returned {outcome})");
    ExitCode::from(1)
}

fn main() -> ExitCode {
    if std::env::args().nth(1).as_deref() == Some("badsig") {
        return bad_signature();
    }
    let mut checks = Checks::stdout("rseq");
    checks.run("register", || register().map(|()| String::new()));
    checks.run("signal_aborts", signal_aborts);
    checks.run("preemption_aborts", preemption_aborts);
    checks.finish()
}

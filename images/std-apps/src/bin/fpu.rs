//! FPU, SSE, AVX and AVX-512 state as Linux keeps it: per thread across preemption, and
//! across a signal handler, whose frame holds the interrupted state (XSAVE format with
//! Linux's magic words when the CPU has XSAVE) and may change it for `rt_sigreturn`.
//! One `PASS`/`FAIL` line per check; the vector widths tested are those the CPU (and the
//! kernel, through `OSXSAVE`) offers, printed first.

use std::arch::{asm, global_asm};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use astra_std_apps::checks::{CheckResult, Checks};

/// The widest vector state this CPU and kernel let a program use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Width {
    /// 16 XMM registers (SSE).
    Xmm,
    /// 16 YMM registers (AVX).
    Ymm,
    /// 32 ZMM registers and the opmask registers (AVX-512F and BW).
    Zmm,
}

fn width() -> Width {
    if is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512bw") {
        Width::Zmm
    } else if is_x86_feature_detected!("avx") {
        Width::Ymm
    } else {
        Width::Xmm
    }
}

/// Bytes of register state: 32 vector registers of 64 bytes, then (ZMM) k1-k7.
const STATE_BYTES: usize = 32 * 64 + 7 * 8;

/// A register image: 64-byte aligned for the vector moves.
#[repr(C, align(64))]
#[derive(Clone, PartialEq, Eq)]
struct Regs([u8; STATE_BYTES]);

impl Regs {
    /// A pattern no other thread or round uses: (tag, byte index) mixed.
    fn pattern(tag: u64) -> Self {
        let mut r = Regs([0; STATE_BYTES]);
        for (i, chunk) in r.0.chunks_exact_mut(8).enumerate() {
            let v = tag.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (i as u64) << 8 ^ 0xa5;
            chunk.copy_from_slice(&v.to_le_bytes());
        }
        r
    }

    /// The bytes `w` covers.
    fn live(&self, w: Width) -> &[u8] {
        match w {
            Width::Xmm => &self.0[..16 * 16],
            Width::Ymm => &self.0[..16 * 32],
            Width::Zmm => &self.0[..],
        }
    }
}

/// Loads `input` into the vector registers of width `w` (and MXCSR), spins `spins`
/// iterations (a preemption point for the scheduler), and stores them into `output`.
/// With `syscall = Some(..)` it makes that system call instead of spinning (a signal is
/// delivered on its way back).
fn hold(
    w: Width,
    input: &Regs,
    output: &mut Regs,
    mxcsr: u32,
    spins: u64,
    call: Option<[u64; 4]>,
) -> u32 {
    // SAFETY: the functions below only move registers to and from the two images, spin
    // and make the given system call; each is called only when `width` found its
    // instructions usable.
    unsafe {
        match w {
            Width::Xmm => hold_xmm(
                input,
                output,
                mxcsr,
                spins,
                call.unwrap_or_default(),
                call.is_some(),
            ),
            Width::Ymm => hold_ymm(
                input,
                output,
                mxcsr,
                spins,
                call.unwrap_or_default(),
                call.is_some(),
            ),
            Width::Zmm => hold_zmm(
                input,
                output,
                mxcsr,
                spins,
                call.unwrap_or_default(),
                call.is_some(),
            ),
        }
    }
}

/// The middle of every `hold_*`: spin `{n}` times, or make the system call in
/// rax/rdi/rsi/rdx when `{call}` is non-zero.
macro_rules! middle {
    () => {
        concat!(
            "ldmxcsr [{m}]\n",
            "test {call}, {call}\n",
            "jnz 3f\n",
            "2:\n",
            "dec {n}\n",
            "jnz 2b\n",
            "jmp 4f\n",
            "3:\n",
            "syscall\n",
            "4:\n",
            "stmxcsr [{m}]\n",
        )
    };
}

/// # Safety
/// SSE2 is part of x86-64; see [`hold`].
unsafe fn hold_xmm(
    input: &Regs,
    output: &mut Regs,
    mxcsr: u32,
    spins: u64,
    a: [u64; 4],
    call: bool,
) -> u32 {
    let mut m = mxcsr;
    // SAFETY: see `hold`.
    unsafe {
        asm!(
            "movdqu xmm0, [{p} + 0]",
            "movdqu xmm1, [{p} + 16]",
            "movdqu xmm2, [{p} + 32]",
            "movdqu xmm3, [{p} + 48]",
            "movdqu xmm4, [{p} + 64]",
            "movdqu xmm5, [{p} + 80]",
            "movdqu xmm6, [{p} + 96]",
            "movdqu xmm7, [{p} + 112]",
            "movdqu xmm8, [{p} + 128]",
            "movdqu xmm9, [{p} + 144]",
            "movdqu xmm10, [{p} + 160]",
            "movdqu xmm11, [{p} + 176]",
            "movdqu xmm12, [{p} + 192]",
            "movdqu xmm13, [{p} + 208]",
            "movdqu xmm14, [{p} + 224]",
            "movdqu xmm15, [{p} + 240]",
            middle!(),
            "movdqu [{q} + 0], xmm0",
            "movdqu [{q} + 16], xmm1",
            "movdqu [{q} + 32], xmm2",
            "movdqu [{q} + 48], xmm3",
            "movdqu [{q} + 64], xmm4",
            "movdqu [{q} + 80], xmm5",
            "movdqu [{q} + 96], xmm6",
            "movdqu [{q} + 112], xmm7",
            "movdqu [{q} + 128], xmm8",
            "movdqu [{q} + 144], xmm9",
            "movdqu [{q} + 160], xmm10",
            "movdqu [{q} + 176], xmm11",
            "movdqu [{q} + 192], xmm12",
            "movdqu [{q} + 208], xmm13",
            "movdqu [{q} + 224], xmm14",
            "movdqu [{q} + 240], xmm15",
            p = in(reg) input.0.as_ptr(),
            q = in(reg) output.0.as_mut_ptr(),
            m = in(reg) &mut m,
            n = inout(reg) spins.max(1) => _,
            call = in(reg) u64::from(call),
            inout("rax") a[0] => _, in("rdi") a[1], in("rsi") a[2], in("rdx") a[3],
            out("rcx") _, out("r11") _,
            out("xmm0") _, out("xmm1") _, out("xmm2") _, out("xmm3") _, out("xmm4") _, out("xmm5") _, out("xmm6") _, out("xmm7") _, out("xmm8") _, out("xmm9") _, out("xmm10") _, out("xmm11") _, out("xmm12") _, out("xmm13") _, out("xmm14") _, out("xmm15") _,
            options(nostack),
        );
    }
    m
}

/// # Safety
/// The CPU must have AVX and the kernel must have enabled it (`OSXSAVE`); see [`hold`].
#[target_feature(enable = "avx")]
unsafe fn hold_ymm(
    input: &Regs,
    output: &mut Regs,
    mxcsr: u32,
    spins: u64,
    a: [u64; 4],
    call: bool,
) -> u32 {
    let mut m = mxcsr;
    // SAFETY: see `hold`.
    unsafe {
        asm!(
            "vmovdqu ymm0, [{p} + 0]",
            "vmovdqu ymm1, [{p} + 32]",
            "vmovdqu ymm2, [{p} + 64]",
            "vmovdqu ymm3, [{p} + 96]",
            "vmovdqu ymm4, [{p} + 128]",
            "vmovdqu ymm5, [{p} + 160]",
            "vmovdqu ymm6, [{p} + 192]",
            "vmovdqu ymm7, [{p} + 224]",
            "vmovdqu ymm8, [{p} + 256]",
            "vmovdqu ymm9, [{p} + 288]",
            "vmovdqu ymm10, [{p} + 320]",
            "vmovdqu ymm11, [{p} + 352]",
            "vmovdqu ymm12, [{p} + 384]",
            "vmovdqu ymm13, [{p} + 416]",
            "vmovdqu ymm14, [{p} + 448]",
            "vmovdqu ymm15, [{p} + 480]",
            middle!(),
            "vmovdqu [{q} + 0], ymm0",
            "vmovdqu [{q} + 32], ymm1",
            "vmovdqu [{q} + 64], ymm2",
            "vmovdqu [{q} + 96], ymm3",
            "vmovdqu [{q} + 128], ymm4",
            "vmovdqu [{q} + 160], ymm5",
            "vmovdqu [{q} + 192], ymm6",
            "vmovdqu [{q} + 224], ymm7",
            "vmovdqu [{q} + 256], ymm8",
            "vmovdqu [{q} + 288], ymm9",
            "vmovdqu [{q} + 320], ymm10",
            "vmovdqu [{q} + 352], ymm11",
            "vmovdqu [{q} + 384], ymm12",
            "vmovdqu [{q} + 416], ymm13",
            "vmovdqu [{q} + 448], ymm14",
            "vmovdqu [{q} + 480], ymm15",
            p = in(reg) input.0.as_ptr(),
            q = in(reg) output.0.as_mut_ptr(),
            m = in(reg) &mut m,
            n = inout(reg) spins.max(1) => _,
            call = in(reg) u64::from(call),
            inout("rax") a[0] => _, in("rdi") a[1], in("rsi") a[2], in("rdx") a[3],
            out("rcx") _, out("r11") _,
            out("ymm0") _, out("ymm1") _, out("ymm2") _, out("ymm3") _, out("ymm4") _, out("ymm5") _, out("ymm6") _, out("ymm7") _, out("ymm8") _, out("ymm9") _, out("ymm10") _, out("ymm11") _, out("ymm12") _, out("ymm13") _, out("ymm14") _, out("ymm15") _,
            options(nostack),
        );
    }
    m
}

/// # Safety
/// The CPU must have AVX-512F and BW (`kmovq`) and the kernel must have enabled them;
/// see [`hold`].
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn hold_zmm(
    input: &Regs,
    output: &mut Regs,
    mxcsr: u32,
    spins: u64,
    a: [u64; 4],
    call: bool,
) -> u32 {
    let mut m = mxcsr;
    // SAFETY: see `hold`.
    unsafe {
        asm!(
            "vmovdqu64 zmm0, [{p} + 0]",
            "vmovdqu64 zmm1, [{p} + 64]",
            "vmovdqu64 zmm2, [{p} + 128]",
            "vmovdqu64 zmm3, [{p} + 192]",
            "vmovdqu64 zmm4, [{p} + 256]",
            "vmovdqu64 zmm5, [{p} + 320]",
            "vmovdqu64 zmm6, [{p} + 384]",
            "vmovdqu64 zmm7, [{p} + 448]",
            "vmovdqu64 zmm8, [{p} + 512]",
            "vmovdqu64 zmm9, [{p} + 576]",
            "vmovdqu64 zmm10, [{p} + 640]",
            "vmovdqu64 zmm11, [{p} + 704]",
            "vmovdqu64 zmm12, [{p} + 768]",
            "vmovdqu64 zmm13, [{p} + 832]",
            "vmovdqu64 zmm14, [{p} + 896]",
            "vmovdqu64 zmm15, [{p} + 960]",
            "vmovdqu64 zmm16, [{p} + 1024]",
            "vmovdqu64 zmm17, [{p} + 1088]",
            "vmovdqu64 zmm18, [{p} + 1152]",
            "vmovdqu64 zmm19, [{p} + 1216]",
            "vmovdqu64 zmm20, [{p} + 1280]",
            "vmovdqu64 zmm21, [{p} + 1344]",
            "vmovdqu64 zmm22, [{p} + 1408]",
            "vmovdqu64 zmm23, [{p} + 1472]",
            "vmovdqu64 zmm24, [{p} + 1536]",
            "vmovdqu64 zmm25, [{p} + 1600]",
            "vmovdqu64 zmm26, [{p} + 1664]",
            "vmovdqu64 zmm27, [{p} + 1728]",
            "vmovdqu64 zmm28, [{p} + 1792]",
            "vmovdqu64 zmm29, [{p} + 1856]",
            "vmovdqu64 zmm30, [{p} + 1920]",
            "vmovdqu64 zmm31, [{p} + 1984]",
            "add {p}, 2048",
            "kmovq k1, [{p} + 0]",
            "kmovq k2, [{p} + 8]",
            "kmovq k3, [{p} + 16]",
            "kmovq k4, [{p} + 24]",
            "kmovq k5, [{p} + 32]",
            "kmovq k6, [{p} + 40]",
            "kmovq k7, [{p} + 48]",
            "sub {p}, 2048",
            middle!(),
            "vmovdqu64 [{q} + 0], zmm0",
            "vmovdqu64 [{q} + 64], zmm1",
            "vmovdqu64 [{q} + 128], zmm2",
            "vmovdqu64 [{q} + 192], zmm3",
            "vmovdqu64 [{q} + 256], zmm4",
            "vmovdqu64 [{q} + 320], zmm5",
            "vmovdqu64 [{q} + 384], zmm6",
            "vmovdqu64 [{q} + 448], zmm7",
            "vmovdqu64 [{q} + 512], zmm8",
            "vmovdqu64 [{q} + 576], zmm9",
            "vmovdqu64 [{q} + 640], zmm10",
            "vmovdqu64 [{q} + 704], zmm11",
            "vmovdqu64 [{q} + 768], zmm12",
            "vmovdqu64 [{q} + 832], zmm13",
            "vmovdqu64 [{q} + 896], zmm14",
            "vmovdqu64 [{q} + 960], zmm15",
            "vmovdqu64 [{q} + 1024], zmm16",
            "vmovdqu64 [{q} + 1088], zmm17",
            "vmovdqu64 [{q} + 1152], zmm18",
            "vmovdqu64 [{q} + 1216], zmm19",
            "vmovdqu64 [{q} + 1280], zmm20",
            "vmovdqu64 [{q} + 1344], zmm21",
            "vmovdqu64 [{q} + 1408], zmm22",
            "vmovdqu64 [{q} + 1472], zmm23",
            "vmovdqu64 [{q} + 1536], zmm24",
            "vmovdqu64 [{q} + 1600], zmm25",
            "vmovdqu64 [{q} + 1664], zmm26",
            "vmovdqu64 [{q} + 1728], zmm27",
            "vmovdqu64 [{q} + 1792], zmm28",
            "vmovdqu64 [{q} + 1856], zmm29",
            "vmovdqu64 [{q} + 1920], zmm30",
            "vmovdqu64 [{q} + 1984], zmm31",
            "add {q}, 2048",
            "kmovq [{q} + 0], k1",
            "kmovq [{q} + 8], k2",
            "kmovq [{q} + 16], k3",
            "kmovq [{q} + 24], k4",
            "kmovq [{q} + 32], k5",
            "kmovq [{q} + 40], k6",
            "kmovq [{q} + 48], k7",
            "sub {q}, 2048",
            p = inout(reg) input.0.as_ptr() => _,
            q = inout(reg) output.0.as_mut_ptr() => _,
            m = in(reg) &mut m,
            n = inout(reg) spins.max(1) => _,
            call = in(reg) u64::from(call),
            inout("rax") a[0] => _, in("rdi") a[1], in("rsi") a[2], in("rdx") a[3],
            out("rcx") _, out("r11") _,
            out("zmm0") _, out("zmm1") _, out("zmm2") _, out("zmm3") _, out("zmm4") _, out("zmm5") _, out("zmm6") _, out("zmm7") _, out("zmm8") _, out("zmm9") _, out("zmm10") _, out("zmm11") _, out("zmm12") _, out("zmm13") _, out("zmm14") _, out("zmm15") _, out("zmm16") _, out("zmm17") _, out("zmm18") _, out("zmm19") _, out("zmm20") _, out("zmm21") _, out("zmm22") _, out("zmm23") _, out("zmm24") _, out("zmm25") _, out("zmm26") _, out("zmm27") _, out("zmm28") _, out("zmm29") _, out("zmm30") _, out("zmm31") _,
            out("k1") _, out("k2") _, out("k3") _, out("k4") _, out("k5") _, out("k6") _, out("k7") _,
            options(nostack),
        );
    }
    m
}

/// MXCSR values the threads use: each its own rounding mode and flush-to-zero setting.
fn mxcsr_for(t: u64) -> u32 {
    0x1f80 | ((t as u32 & 3) << 13) | if t & 4 != 0 { 1 << 15 } else { 0 }
}

/// Threads that each hold their own register pattern while spinning, so that the
/// scheduler preempts them in the middle: every pattern must come back intact.
fn preempted_threads_keep_their_state(w: Width) -> CheckResult {
    let spins_per_round = 2_000_000;
    let run_for = Duration::from_millis(400);
    let handles: Vec<_> = (1..=3u64)
        .map(|t| {
            thread::spawn(move || -> Result<u64, String> {
                let start = Instant::now();
                let mut rounds = 0u64;
                while start.elapsed() < run_for {
                    let input = Regs::pattern(t * 1_000_000 + rounds);
                    let mut output = Regs([0; STATE_BYTES]);
                    let m = hold(w, &input, &mut output, mxcsr_for(t), spins_per_round, None);
                    if output.live(w) != input.live(w) {
                        let at = input
                            .live(w)
                            .iter()
                            .zip(output.live(w))
                            .position(|(a, b)| a != b);
                        return Err(format!(
                            "thread {t} round {rounds}: registers changed at byte {at:?}"
                        ));
                    }
                    if m & !0x3f != mxcsr_for(t) {
                        return Err(format!("thread {t}: MXCSR {m:#x}, set {:#x}", mxcsr_for(t)));
                    }
                    rounds += 1;
                }
                Ok(rounds)
            })
        })
        .collect();
    let mut total = 0;
    for h in handles {
        total += h.join().map_err(|_| "a thread panicked")??;
    }
    Ok(format!("{total} rounds in 3 threads, {w:?}"))
}

// ---- Signals, through raw system calls (std has no API for handlers).

const SIGUSR1: u64 = 10;
const SA_SIGINFO: u64 = 4;
const SA_RESTORER: u64 = 0x0400_0000;
const FP_XSTATE_MAGIC1: u32 = 0x4650_5853;
const FP_XSTATE_MAGIC2: u32 = 0x4650_5845;
/// What the handler found in its frame and wrote back.
static SEEN_MAGIC1: AtomicU64 = AtomicU64::new(0);
static SEEN_MAGIC2: AtomicU64 = AtomicU64::new(0);
static SEEN_XFEATURES: AtomicU64 = AtomicU64::new(0);
static SEEN_XMM1: AtomicU64 = AtomicU64::new(0);
static HANDLER_RUNS: AtomicU64 = AtomicU64::new(0);
/// Where AVX's upper halves (component 2) sit in a standard-format XSAVE image.
static YMM_HI_OFFSET: AtomicU64 = AtomicU64::new(0);
/// The value the handler writes into the frame's xmm0 (and ymm0's upper half).
const PLANTED: u64 = 0x5eed_5eed_5eed_5eed;

global_asm!(
    ".globl fpu_sig_restorer",
    "fpu_sig_restorer:",
    "mov eax, 15",
    "syscall",
    "ud2",
);

extern "C" {
    fn fpu_sig_restorer();
}

/// The SIGUSR1 handler: reads the frame's FPU state, plants a value in the saved xmm0
/// (and ymm0's upper half), and clobbers every vector register it can.
extern "C" fn on_usr1(_sig: i32, _info: *const u8, uc: *mut u8) {
    HANDLER_RUNS.fetch_add(1, Ordering::SeqCst);
    // SAFETY: the kernel passed a ucontext; uc_mcontext.fpstate is at 40 + 23 * 8 and
    // points at the FPU state in the frame, which the handler may read and change.
    unsafe {
        let fp = *(uc.add(40 + 23 * 8) as *const *mut u8);
        if fp.is_null() {
            return;
        }
        let read32 = |at: usize| (fp.add(at) as *const u32).read_unaligned();
        SEEN_XMM1.store(
            (fp.add(160 + 16) as *const u64).read_unaligned(),
            Ordering::SeqCst,
        );
        let magic1 = read32(464);
        SEEN_MAGIC1.store(u64::from(magic1), Ordering::SeqCst);
        if magic1 == FP_XSTATE_MAGIC1 {
            SEEN_XFEATURES.store(
                (fp.add(472) as *const u64).read_unaligned(),
                Ordering::SeqCst,
            );
            let xstate_size = read32(480) as usize;
            SEEN_MAGIC2.store(u64::from(read32(xstate_size)), Ordering::SeqCst);
            let hi = YMM_HI_OFFSET.load(Ordering::SeqCst) as usize;
            if hi != 0 {
                (fp.add(hi) as *mut u64).write_unaligned(PLANTED);
            }
        }
        (fp.add(160) as *mut u64).write_unaligned(PLANTED);
        let garbage = Regs::pattern(0xdead);
        let mut sink = Regs([0; STATE_BYTES]);
        hold(width(), &garbage, &mut sink, 0x1f80, 1, None);
    }
}

fn rt_sigaction(sig: u64, handler: u64) -> i64 {
    let act: [u64; 4] = [
        handler,
        SA_SIGINFO | SA_RESTORER,
        fpu_sig_restorer as *const () as u64,
        0,
    ];
    let ret: i64;
    // SAFETY: rt_sigaction reads the 32-byte action; no old action is asked for.
    unsafe {
        asm!("syscall", inlateout("rax") 13i64 => ret, in("rdi") sig, in("rsi") act.as_ptr(),
            in("rdx") 0u64, in("r10") 8u64, out("rcx") _, out("r11") _, options(nostack));
    }
    ret
}

fn raw0(nr: u64) -> u64 {
    let ret: u64;
    // SAFETY: getpid and gettid take no arguments and touch no memory.
    unsafe {
        asm!("syscall", inlateout("rax") nr => ret, out("rcx") _, out("r11") _, options(nostack, nomem))
    };
    ret
}

/// A handler that clobbers the vector registers leaves the interrupted ones intact
/// (`rt_sigreturn` restores them from the frame), and what it changes in the frame is
/// what the interrupted code gets back.
fn signal_handler_state(w: Width) -> CheckResult {
    if w >= Width::Ymm {
        // CPUID.(0xd, 2).EBX: offset of the YMM_Hi128 component in the standard format.
        // Leaf 0xd exists on CPUs with XSAVE (AVX needs it).
        let leaf = std::arch::x86_64::__cpuid_count(0xd, 2);
        YMM_HI_OFFSET.store(u64::from(leaf.ebx), Ordering::SeqCst);
    }
    let ret = rt_sigaction(SIGUSR1, on_usr1 as *const () as u64);
    if ret != 0 {
        return Err(format!("rt_sigaction: {ret}"));
    }
    let (pid, tid) = (raw0(39), raw0(186));
    let input = Regs::pattern(42);
    let mut output = Regs([0; STATE_BYTES]);
    // tgkill(pid, tid, SIGUSR1) from inside `hold`: the handler runs on the way back.
    let m = hold(
        w,
        &input,
        &mut output,
        0x3f80,
        0,
        Some([234, pid, tid, SIGUSR1]),
    );
    if HANDLER_RUNS.load(Ordering::SeqCst) != 1 {
        return Err("the handler did not run".into());
    }
    let mut want = input.clone();
    want.0[..8].copy_from_slice(&PLANTED.to_le_bytes());
    if w >= Width::Ymm {
        want.0[16..24].copy_from_slice(&PLANTED.to_le_bytes());
    }
    // ymm0's upper half sits at bytes 16..32 of the register in the image.
    let live = |r: &Regs| -> Vec<u8> { r.live(w).to_vec() };
    if live(&output) != live(&want) {
        let at = live(&want)
            .iter()
            .zip(live(&output))
            .position(|(a, b)| *a != b);
        return Err(format!(
            "registers after the handler differ at byte {at:?} ({w:?})"
        ));
    }
    if m != 0x3f80 {
        return Err(format!("MXCSR {m:#x} after the handler, was 0x3f80"));
    }
    let xmm1 = SEEN_XMM1.load(Ordering::SeqCst);
    let at = width_stride(w);
    let want_xmm1 = u64::from_le_bytes(input.0[at..at + 8].try_into().unwrap_or_default());
    if xmm1 != want_xmm1 {
        return Err(format!(
            "the frame's xmm1 is {xmm1:#x}, the register held {want_xmm1:#x}"
        ));
    }
    let magic1 = SEEN_MAGIC1.load(Ordering::SeqCst) as u32;
    if w >= Width::Ymm {
        if magic1 != FP_XSTATE_MAGIC1
            || SEEN_MAGIC2.load(Ordering::SeqCst) as u32 != FP_XSTATE_MAGIC2
        {
            return Err(format!("no XSAVE magic in the frame (magic1 {magic1:#x})"));
        }
        let xf = SEEN_XFEATURES.load(Ordering::SeqCst);
        if xf & 0b111 != 0b111 {
            return Err(format!("the frame's xfeatures {xf:#x} lack x87/SSE/AVX"));
        }
        return Ok(format!("{w:?}, xfeatures {xf:#x}"));
    }
    Ok(format!("{w:?}, magic1 {magic1:#x}"))
}

/// Where register 1 starts in an image of width `w`.
fn width_stride(w: Width) -> usize {
    match w {
        Width::Xmm => 16,
        Width::Ymm => 32,
        Width::Zmm => 64,
    }
}

fn main() -> ExitCode {
    let w = width();
    println!("fpu: widest state {w:?}");
    let mut checks = Checks::stdout("fpu");
    checks.run("preempted_threads_keep_their_state", || {
        preempted_threads_keep_their_state(w)
    });
    checks.run("signal_handler_state", || signal_handler_state(w));
    checks.finish()
}

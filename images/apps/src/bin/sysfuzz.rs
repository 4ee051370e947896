//! `sysfuzz`: calls every Linux x86-64 system call number (0-511) with hostile arguments,
//! to show that no program can crash the kernel: each number is tried with every argument
//! set to each of a few bad values (null, small, all-ones, kernel half, non-canonical, the
//! top of user space). Prints `sysfuzz: survived N calls` and exits 0.
//!
//! `sysfuzz random SEED COUNT` makes COUNT calls instead, each to a random number with six
//! arguments drawn independently (hostile constants, small integers, descriptors, flags,
//! sizes, random words, and pointers into a 64 KiB scratch area the kernel may scribble
//! on), from a splitmix64 stream seeded with SEED, so a failure replays exactly. It prints
//! the seed first, then `sysfuzz: survived COUNT random calls (seed SEED)`. On top of the
//! calls left out above, it leaves out those that create processes, threads or pipes (a
//! write to a full pipe would block for good), arm timers or signals, or may wait without
//! bound (futex, rt_sigtimedwait, epoll and friends), limit or confine what the final
//! report needs (setrlimit, prlimit64, chroot, unshare, setns), or write into this program
//! through another door (process_vm_writev, ptrace, rseq); and memory calls (mmap,
//! munmap, mremap, mprotect, madvise...) whose range would cover this program's code and
//! data or its stack are drawn again, since unmapping itself is not a kernel bug. Its own
//! standard streams are closed once the seed is printed, so the calls that write from the
//! scratch area do not flood the output.
//!
//! `sysfuzz threads SEED COUNT` does the same from four threads at once (three made with a
//! raw `clone`, each on a stack of its own, seeds SEED+1..SEED+3), so the calls race each
//! other under preemption; it also leaves out `set_tid_address` and `set_robust_list`
//! (which would make the kernel write at a random address of this program when a thread
//! exits). It prints `sysfuzz: survived 4 x COUNT random calls from threads (seed SEED)`.
//!
//! Left out are the calls that would end or stop this program by design rather than by a
//! kernel bug: exit and exit_group, rt_sigreturn (a garbage frame kills the caller), the
//! signal senders (kill, tkill, tgkill), and calls that may block for as long as the
//! argument says (pause, nanosleep, clock_nanosleep, poll, ppoll, select, pselect6,
//! rt_sigsuspend, rt_sigtimedwait, and reads of the console, which is the test's stdin),
//! the calls that make processes (clone, clone3, fork, vfork: the copy would fuzz on) or
//! replace this program (execve, execveat), and the timers whose SIGALRM would end it
//! (alarm, setitimer).
#![no_std]
#![no_main]

use core::fmt::Write;

use guest_std::entry;
use guest_std::syscall::{syscall3, syscall6};

entry!(main);

/// Numbers not called (see the module docs).
const SKIPPED: &[usize] = &[
    0,   // read (fd 0 is the console)
    7,   // poll
    15,  // rt_sigreturn
    17,  // pread64
    19,  // readv
    23,  // select
    34,  // pause
    35,  // nanosleep
    37,  // alarm
    38,  // setitimer
    56,  // clone
    57,  // fork
    58,  // vfork
    59,  // execve
    60,  // exit
    62,  // kill
    128, // rt_sigtimedwait
    130, // rt_sigsuspend
    200, // tkill
    230, // clock_nanosleep
    231, // exit_group
    234, // tgkill
    270, // pselect6
    271, // ppoll
    295, // preadv
    322, // execveat
    327, // preadv2
    435, // clone3
];

/// Also not called in the random mode (see the module docs).
const SKIPPED_RANDOM: &[usize] = &[
    22,  // pipe
    37,  // alarm
    38,  // setitimer
    56,  // clone
    57,  // fork
    58,  // vfork
    59,  // execve
    61,  // wait4
    65,  // semop
    70,  // msgrcv
    128, // rt_sigtimedwait
    129, // rt_sigqueueinfo
    202, // futex
    208, // io_getevents
    220, // semtimedop
    222, // timer_create
    223, // timer_settime
    232, // epoll_wait
    247, // waitid
    281, // epoll_pwait
    293, // pipe2
    297, // rt_tgsigqueueinfo
    30,  // shmat
    101, // ptrace
    160, // setrlimit
    161, // chroot
    272, // unshare
    302, // prlimit64
    308, // setns
    310, // process_vm_readv
    311, // process_vm_writev
    317, // seccomp
    334, // rseq
    424, // pidfd_send_signal
    322, // execveat
    435, // clone3
    441, // epoll_pwait2
];

/// Argument values no valid call would pass (all six arguments get the same one).
const HOSTILE: [usize; 6] = [
    0,
    1,
    usize::MAX,
    0xffff_8000_0000_0000,
    0x0000_8000_0000_0000,
    0x0000_7fff_ffff_f000,
];

fn main(args: guest_std::env::Args) -> i32 {
    let mut args = args.skip(1);
    match args.next() {
        None => fixed(),
        Some(mode @ (b"random" | b"threads")) => {
            let seed = args.next().and_then(parse_decimal);
            let count = args.next().and_then(parse_decimal);
            match (seed, count) {
                (Some(seed), Some(count)) if mode == b"random" => random(seed, count),
                (Some(seed), Some(count)) => threads(seed, count),
                _ => usage(),
            }
        }
        Some(_) => usage(),
    }
}

fn usage() -> i32 {
    let mut out = guest_std::io::stderr();
    let _ =
        guest_std::io::Write::write_all(&mut out, b"usage: sysfuzz [random|threads SEED COUNT]\n");
    2
}

fn parse_decimal(text: &[u8]) -> Option<u64> {
    if text.is_empty() {
        return None;
    }
    text.iter().try_fold(0u64, |n, &c| {
        let digit = c.checked_sub(b'0').filter(|d| *d < 10)?;
        n.checked_mul(10)?.checked_add(u64::from(digit))
    })
}

/// Scratch memory the random calls may point the kernel at (it may write there, unmap or
/// protect it: nothing else in this program uses it).
#[repr(C, align(4096))]
struct Scratch([u8; 64 << 10]);

static mut SCRATCH: Scratch = Scratch([0; 64 << 10]);

/// splitmix64.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// One argument, drawn independently of the others.
    fn arg(&mut self) -> usize {
        let scratch = (&raw const SCRATCH) as usize;
        match self.below(10) {
            0 => HOSTILE[self.below(HOSTILE.len() as u64) as usize],
            1 => self.below(65) as usize, // small numbers, descriptors
            2 => (self.below(64) as usize).wrapping_neg(), // -1 .. -64
            3 => self.next() as usize,
            4 => self.next() as u32 as usize,
            5 => 1usize << self.below(40),                // sizes
            6 => (self.next() & 0xff_ffff) as usize,      // flag words
            _ => scratch + self.below(64 << 10) as usize, // pointers the kernel can use
        }
    }
}

/// Memory calls and the (start, length) argument pairs whose range they change.
const MEMORY_CALLS: &[(usize, &[(usize, usize)])] = &[
    (9, &[(0, 1)]),          // mmap
    (10, &[(0, 1)]),         // mprotect
    (11, &[(0, 1)]),         // munmap
    (25, &[(0, 1), (4, 2)]), // mremap (old range, new address and size)
    (26, &[(0, 1)]),         // msync
    (28, &[(0, 1)]),         // madvise
    (149, &[(0, 1)]),        // mlock
    (216, &[(0, 1)]),        // remap_file_pages
    (329, &[(0, 1)]),        // pkey_mprotect
];

/// Whether call `nr` with arguments `a` would change memory in one of the `keep` ranges.
fn hits(nr: usize, a: &[usize; 6], keep: &[(usize, usize)]) -> bool {
    let Some((_, pairs)) = MEMORY_CALLS.iter().find(|(n, _)| *n == nr) else {
        return false;
    };
    pairs.iter().any(|&(start, len)| {
        // Page-rounded as the kernel does, and with room for rounding up the length.
        let lo = a[start] & !0xfff;
        let hi = a[start].saturating_add(a[len]).saturating_add(0xfff);
        keep.iter().any(|&(k_lo, k_hi)| lo < k_hi && k_lo < hi)
    })
}

fn random(seed: u64, count: u64) -> i32 {
    let mut line = Line::default();
    let _ = writeln!(line, "sysfuzz: seed {seed}, {count} random calls");
    // SAFETY: a buffer that outlives the call.
    unsafe { syscall3(SYS_WRITE, 1, line.buf.as_ptr() as usize, line.len) };
    for fd in 0..3 {
        // SAFETY: closing descriptors only.
        unsafe { syscall3(SYS_CLOSE, fd, 0, 0) };
    }
    // What must stay mapped: the image below the scratch area (code, constants, data),
    // and the stack around this frame.
    let scratch = (&raw const SCRATCH) as usize;
    let here = (&raw const line) as usize;
    let keep = [
        (IMAGE_BASE, scratch),
        (here.saturating_sub(16 << 20), here.saturating_add(1 << 20)),
    ];
    fuzz(seed, count, &keep, false);
    report(format_args!(
        "sysfuzz: survived {count} random calls (seed {seed})"
    ))
}

/// Makes `count` random calls seeded with `seed`, never changing memory in `keep`; with
/// `threaded`, also never the calls that arm a write at thread exit.
fn fuzz(seed: u64, count: u64, keep: &[(usize, usize)], threaded: bool) {
    let mut rng = Rng(seed);
    let mut done = 0u64;
    while done < count {
        let nr = rng.below(520) as usize;
        if SKIPPED.contains(&nr) || SKIPPED_RANDOM.contains(&nr) {
            continue;
        }
        if threaded && SKIPPED_THREADED.contains(&nr) {
            continue;
        }
        let a = [
            rng.arg(),
            rng.arg(),
            rng.arg(),
            rng.arg(),
            rng.arg(),
            rng.arg(),
        ];
        if hits(nr, &a, keep) {
            continue;
        }
        // SAFETY: pointers are invalid, or into SCRATCH, which nothing else uses; the
        // calls that could stop or block this program are left out (see the module docs).
        let _ = unsafe { syscall6(nr, a[0], a[1], a[2], a[3], a[4], a[5]) };
        done += 1;
    }
}

/// Also not called from threads (see the module docs).
const SKIPPED_THREADED: &[usize] = &[
    218, // set_tid_address
    273, // set_robust_list
];

/// Worker threads of `sysfuzz threads`.
const WORKERS: usize = 3;
const WORKER_STACK: usize = 64 << 10;

#[repr(C, align(4096))]
struct Stacks([[u8; WORKER_STACK]; WORKERS]);

/// The workers' stacks (never handed to the kernel by a random call: see `keep`).
static mut STACKS: Stacks = Stacks([[0; WORKER_STACK]; WORKERS]);

/// What a worker needs: its seed, count and the ranges to keep; set before it starts.
static mut PLAN: (u64, u64, [(usize, usize); 3]) = (0, 0, [(0, 0); 3]);
/// Workers finished.
static DONE: core::sync::atomic::AtomicUsize = core::sync::atomic::AtomicUsize::new(0);

extern "C" fn worker(index: usize) -> ! {
    // SAFETY: PLAN was written before any worker started and is only read afterwards.
    let (seed, count, keep) = unsafe { PLAN };
    fuzz(seed.wrapping_add(index as u64 + 1), count, &keep, true);
    DONE.fetch_add(1, core::sync::atomic::Ordering::SeqCst);
    loop {
        // SAFETY: exit(0) ends this thread only.
        unsafe { syscall3(SYS_EXIT, 0, 0, 0) };
    }
}

/// Starts a thread of this process running `worker(index)` on the stack ending at `top`.
///
/// # Safety
/// `top` must be the 16-byte aligned end of a stack nothing else uses.
unsafe fn spawn(index: usize, top: usize) -> isize {
    const FLAGS: usize = 0x100 | 0x200 | 0x400 | 0x800 | 0x1_0000; // VM FS FILES SIGHAND THREAD
    let ret: isize;
    // SAFETY: clone with a fresh stack; the child (rax = 0) calls `worker`, which never
    // returns, with the index from r12; the parent continues with the tid.
    unsafe {
        core::arch::asm!(
            "syscall",
            "test rax, rax",
            "jnz 2f",
            "mov rdi, r12",
            "call r13",
            "ud2",
            "2:",
            inlateout("rax") 56isize => ret,
            in("rdi") FLAGS,
            in("rsi") top,
            in("rdx") 0usize,
            in("r10") 0usize,
            in("r8") 0usize,
            in("r12") index,
            in("r13") worker as extern "C" fn(usize) -> ! as usize,
            lateout("rcx") _,
            lateout("r11") _,
        );
    }
    ret
}

fn threads(seed: u64, count: u64) -> i32 {
    let mut line = Line::default();
    let _ = writeln!(
        line,
        "sysfuzz: seed {seed}, 4 threads x {count} random calls"
    );
    // SAFETY: a buffer that outlives the call.
    unsafe { syscall3(SYS_WRITE, 1, line.buf.as_ptr() as usize, line.len) };
    for fd in 0..3 {
        // SAFETY: closing descriptors only.
        unsafe { syscall3(SYS_CLOSE, fd, 0, 0) };
    }
    let scratch = (&raw const SCRATCH) as usize;
    let stacks = (&raw const STACKS) as usize;
    let here = (&raw const line) as usize;
    let keep = [
        (IMAGE_BASE, scratch),
        (stacks, stacks + WORKERS * WORKER_STACK),
        (here.saturating_sub(16 << 20), here.saturating_add(1 << 20)),
    ];
    // SAFETY: no worker runs yet.
    unsafe { PLAN = (seed, count, keep) };
    for i in 0..WORKERS {
        let top = stacks + (i + 1) * WORKER_STACK;
        // SAFETY: each worker gets its own stack, of which `top` is the aligned end.
        if unsafe { spawn(i, top) } < 0 {
            return report(format_args!("sysfuzz: could not start a thread"));
        }
    }
    fuzz(seed, count, &keep, true);
    while DONE.load(core::sync::atomic::Ordering::SeqCst) < WORKERS {
        // SAFETY: sched_yield has no arguments.
        unsafe { syscall3(SYS_SCHED_YIELD, 0, 0, 0) };
    }
    report(format_args!(
        "sysfuzz: survived 4 x {count} random calls from threads (seed {seed})"
    ))
}

fn fixed() -> i32 {
    let mut calls = 0u32;
    for nr in 0..512 {
        if SKIPPED.contains(&nr) {
            continue;
        }
        for value in HOSTILE {
            // SAFETY: every argument is invalid or points nowhere this program uses; the
            // calls that could change this program's own memory get addresses it does
            // not occupy (it is linked at 0x400000), so only the kernel is exercised.
            let _ = unsafe { syscall6(nr, value, value, value, value, value, value) };
            calls += 1;
        }
    }
    report(format_args!("sysfuzz: survived {calls} calls"))
}

/// Prints `text` on the console. The fuzzing may have closed fds 0 and 1, or filled the
/// table: report through a fresh descriptor of the console, after closing the rest.
fn report(text: core::fmt::Arguments) -> i32 {
    let mut line = Line::default();
    let _ = writeln!(line, "{text}");
    for fd in 3..1024 {
        // SAFETY: closing descriptors only.
        unsafe { syscall3(SYS_CLOSE, fd, 0, 0) };
    }
    // SAFETY: a NUL-terminated path and a buffer that outlive the calls.
    let fd = unsafe { syscall3(SYS_OPEN, CONSOLE.as_ptr() as usize, O_WRONLY, 0) };
    if fd < 0 {
        return 2;
    }
    // SAFETY: as above.
    let n = unsafe { syscall3(SYS_WRITE, fd as usize, line.buf.as_ptr() as usize, line.len) };
    if n == line.len as isize {
        0
    } else {
        3
    }
}

const SYS_WRITE: usize = 1;
const SYS_OPEN: usize = 2;
const SYS_CLOSE: usize = 3;
const SYS_SCHED_YIELD: usize = 24;
const SYS_EXIT: usize = 60;
/// Where the guest-std programs are linked.
const IMAGE_BASE: usize = 0x40_0000;
const O_WRONLY: usize = 1;
const CONSOLE: &[u8] = b"/dev/console\0";

/// A line formatted without allocating (the fuzzing may have moved the heap's break).
struct Line {
    buf: [u8; 96],
    len: usize,
}

impl Default for Line {
    fn default() -> Self {
        Line {
            buf: [0; 96],
            len: 0,
        }
    }
}

impl Write for Line {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let end = self.len + s.len();
        let dst = self.buf.get_mut(self.len..end).ok_or(core::fmt::Error)?;
        dst.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

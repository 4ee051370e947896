//! Process costs, for `make bench` (run in astra and on the host, the same binary): prints
//! `procbench <name> ns=<n>` lines, each the median per operation over several rounds.
//!
//! - `fork_exit_wait`: fork, the child exits at once, the parent waits for it;
//! - `fork_exec_wait`: fork, the child execs this (static) program as `procbench true`,
//!   which exits from `main`; the parent waits;
//! - `spawn_status`: `Command::new(this program).arg("true").status()` (posix_spawn);
//! - `pipe_ping_pong`: one byte back and forth between two processes over two pipes;
//! - `pipeline_16m`: `busybox sh -c "head -c 16M /dev/zero | cat | tr ... | wc -c"`, a
//!   4-stage pipeline moving 16 MiB, whole.
//!
//! fork, execve and wait4 are raw system calls (std does not expose fork); the forked child
//! makes raw calls only, so no lock of the parent's is needed in it.

use std::ffi::CString;
use std::process::{Command, ExitCode};
use std::time::Instant;

use astra_std_apps::sys::{syscall3, syscall4};

const SYS_READ: usize = 0;
const SYS_WRITE: usize = 1;
const SYS_PIPE: usize = 22;
const SYS_FORK: usize = 57;
const SYS_EXECVE: usize = 59;
const SYS_EXIT_GROUP: usize = 231;
const SYS_WAIT4: usize = 61;

fn fork() -> isize {
    // SAFETY: fork takes no arguments; the child only makes raw system calls.
    unsafe { syscall3(SYS_FORK, 0, 0, 0) }
}

fn exit_now(code: usize) -> ! {
    // SAFETY: exit_group does not return.
    unsafe { syscall3(SYS_EXIT_GROUP, code, 0, 0) };
    unreachable!("exit_group returned")
}

fn wait(pid: isize) -> i32 {
    let mut status = 0i32;
    // SAFETY: `status` is a valid i32 for the kernel to fill.
    let r = unsafe {
        syscall4(
            SYS_WAIT4,
            pid as usize,
            &mut status as *mut i32 as usize,
            0,
            0,
        )
    };
    assert_eq!(r, pid, "wait4");
    status
}

fn median_ns(rounds: usize, per_round: usize, mut op: impl FnMut()) -> u64 {
    let mut samples: Vec<u64> = (0..rounds)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..per_round {
                op();
            }
            (start.elapsed().as_nanos() / per_round as u128) as u64
        })
        .collect();
    samples.sort_unstable();
    samples[samples.len() / 2]
}

fn fork_exit_wait() {
    let pid = fork();
    if pid == 0 {
        exit_now(0);
    }
    assert!(pid > 0, "fork: {pid}");
    assert_eq!(wait(pid), 0);
}

fn fork_exec_wait(path: &CString, argv: &[*const i8; 3], envp: &[*const i8; 1]) {
    let pid = fork();
    if pid == 0 {
        // SAFETY: NUL-terminated strings and NULL-terminated arrays that outlive the call.
        unsafe {
            syscall3(
                SYS_EXECVE,
                path.as_ptr() as usize,
                argv.as_ptr() as usize,
                envp.as_ptr() as usize,
            )
        };
        exit_now(127);
    }
    assert!(pid > 0, "fork: {pid}");
    assert_eq!(wait(pid), 0, "the exec'd child failed");
}

fn pipe() -> [i32; 2] {
    let mut fds = [0i32; 2];
    // SAFETY: room for the two descriptors.
    let r = unsafe { syscall3(SYS_PIPE, fds.as_mut_ptr() as usize, 0, 0) };
    assert_eq!(r, 0, "pipe");
    fds
}

fn byte_io(nr: usize, fd: i32) {
    let mut b = [0u8; 1];
    // SAFETY: a one-byte buffer.
    let r = unsafe { syscall3(nr, fd as usize, b.as_mut_ptr() as usize, 1) };
    if r != 1 {
        exit_now(3);
    }
}

fn pipe_ping_pong(rounds: usize, per_round: usize) -> u64 {
    let (to_child, to_parent) = (pipe(), pipe());
    let total = rounds * per_round;
    let pid = fork();
    if pid == 0 {
        for _ in 0..total {
            byte_io(SYS_READ, to_child[0]);
            byte_io(SYS_WRITE, to_parent[1]);
        }
        exit_now(0);
    }
    let ns = median_ns(rounds, per_round, || {
        byte_io(SYS_WRITE, to_child[1]);
        byte_io(SYS_READ, to_parent[0]);
    });
    assert_eq!(wait(pid), 0);
    ns
}

fn main() -> ExitCode {
    let me = std::env::args().next().unwrap_or_default();
    if std::env::args().nth(1).as_deref() == Some("true") {
        return ExitCode::SUCCESS;
    }
    let path = CString::new(me.clone()).expect("no NUL in argv[0]");
    let arg = CString::new("true").expect("literal");
    let argv = [path.as_ptr(), arg.as_ptr(), std::ptr::null()];
    let envp = [std::ptr::null()];
    let report = |name: &str, ns: u64| println!("procbench {name} ns={ns}");
    report("fork_exit_wait", median_ns(5, 40, fork_exit_wait));
    report(
        "fork_exec_wait",
        median_ns(5, 10, || fork_exec_wait(&path, &argv, &envp)),
    );
    report(
        "spawn_status",
        median_ns(5, 10, || {
            let status = Command::new(&me).arg("true").status().expect("spawn");
            assert!(status.success());
        }),
    );
    report("pipe_ping_pong", pipe_ping_pong(5, 200));
    report(
        "pipeline_16m",
        median_ns(3, 1, || {
            let out = Command::new("/bin/busybox")
                .args([
                    "sh",
                    "-c",
                    "busybox head -c 16777216 /dev/zero | busybox cat | busybox tr '\\0' x | busybox wc -c",
                ])
                .output()
                .expect("busybox");
            assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "16777216");
        }),
    );
    ExitCode::SUCCESS
}

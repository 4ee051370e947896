//! Process costs: `/bin/procbench` (an unmodified std program) in astra beside the same
//! binary on the host (see [`super::versus`]).

use super::versus::Spec;

/// fork+exit+wait, fork+exec+wait, posix_spawn, pipe ping-pong, a 4-stage pipeline.
pub const SPEC: Spec = Spec {
    title: "processes",
    guest: "/bin/procbench",
    host: "target/std-apps/x86_64-unknown-linux-musl/release/procbench",
    options: &[],
    prefix: "procbench",
    names: &[
        ("fork_exit_wait", "fork + exit + wait4"),
        ("fork_exec_wait", "fork + execve (static) + exit + wait4"),
        ("spawn_status", "Command::status (posix_spawn + wait4)"),
        ("pipe_ping_pong", "pipe ping-pong round trip, two processes"),
        (
            "pipeline_16m",
            "busybox sh: head -c 16M | cat | tr | wc -c, whole",
        ),
    ],
    targets: &[],
};

//! Thread costs: `/bin/threadbench` (an unmodified std program) in astra beside the same
//! binary on the host (see [`super::versus`]).

use super::versus::Spec;

/// Spawn+join, futex ping-pong, Mutex contention and context switches.
pub const SPEC: Spec = Spec {
    title: "threads",
    guest: "/bin/threadbench",
    host: "target/std-apps/x86_64-unknown-linux-musl/release/threadbench",
    options: &[],
    prefix: "threadbench",
    names: &[
        ("spawn_join", "thread spawn + join"),
        (
            "futex_ping_pong",
            "futex ping-pong round trip (Mutex + Condvar)",
        ),
        ("mutex_4_threads", "Mutex lock+unlock, 4 threads contending"),
        (
            "yield_switch",
            "context switch (two threads yielding in turn)",
        ),
    ],
    // The seeds' targets.
    targets: &[("spawn_join", 100_000), ("yield_switch", 5_000)],
};

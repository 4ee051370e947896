//! File-system costs: `/bin/fsbench` (an unmodified std program) in astra's `/tmp` (tmpfs)
//! beside the same binary in the host's `/dev/shm` (tmpfs), see [`super::versus`].

use super::versus::Spec;

/// 10,000 small files, 256 MiB sequential, 10,000 stats, a 20,000-entry walk.
pub const SPEC: Spec = Spec {
    title: "files",
    guest: "/bin/fsbench",
    host: "target/std-apps/x86_64-unknown-linux-musl/release/fsbench",
    prefix: "fsbench",
    // The 256 MiB file must fit in /tmp (half of RAM).
    options: &["--mem", "1G"],
    names: &[
        (
            "create_write_unlink",
            "create + write 4 KiB + close + unlink (per file)",
        ),
        ("write_256m", "sequential write of 256 MiB, whole"),
        ("read_256m", "sequential read of 256 MiB, whole"),
        ("stat", "stat of one of 10,000 paths"),
        ("walk_20k", "read_dir walk of a 20,000-entry tree, whole"),
    ],
    targets: &[],
};

//! What an image can make the kernel allocate is bounded by its heap budget: a rootfs with
//! more entries than the kernel heap holds is refused with a clear message and exit 250,
//! never a kernel panic (issue 11, item 2). The per-process resources (pipes, descriptors,
//! memory areas) are the `exhaust-*` scenarios of tests/scenarios.txt.

use std::time::Duration;

use astra_tests::tempdir::TempDir;
use astra_tests::{exit, require_kvm, run_vmm, Workspace};

/// A ustar header for an empty regular file `name`.
fn header(name: &[u8]) -> [u8; 512] {
    let mut h = [0u8; 512];
    h[..name.len()].copy_from_slice(name);
    h[100..108].copy_from_slice(b"0000644\0");
    h[108..116].copy_from_slice(b"0000000\0");
    h[116..124].copy_from_slice(b"0000000\0");
    h[124..136].copy_from_slice(b"00000000000\0");
    h[136..148].copy_from_slice(b"00000000000\0");
    h[156] = b'0';
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].fill(b' ');
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    h
}

/// build/fs.tar followed by `extra` empty files under /many.
fn image_with_entries(extra: usize) -> Vec<u8> {
    let base = std::fs::read(Workspace::locate().rootfs()).expect("read build/fs.tar");
    let mut end = base.len();
    while end >= 512 && base[end - 512..end].iter().all(|&b| b == 0) {
        end -= 512;
    }
    let mut out = Vec::with_capacity(end + (extra + 2) * 512);
    out.extend_from_slice(&base[..end]);
    for i in 0..extra {
        out.extend_from_slice(&header(format!("many/f{i:06}").as_bytes()));
    }
    out.resize(out.len() + 1024, 0);
    out
}

#[test]
fn a_rootfs_with_more_entries_than_the_kernel_heap_holds_is_refused() {
    require_kvm();
    let dir = TempDir::new("many-entries");
    let tar = dir.write("many.tar", &image_with_entries(150_000));
    let ws = Workspace::locate();
    let args = [
        "--kernel".to_string(),
        ws.kernel().display().to_string(),
        "--rootfs".into(),
        tar.display().to_string(),
        "--timeout".into(),
        "30".into(),
        "--".into(),
        "/bin/true".into(),
    ];
    let outcome = run_vmm(&args, Duration::from_secs(60));
    assert_eq!(outcome.status, exit::USAGE, "{}", outcome.report());
    assert!(
        outcome
            .stderr
            .contains("astra: cannot mount the rootfs: out of kernel memory")
            && outcome.stderr.contains("give the VM more --mem"),
        "{}",
        outcome.report()
    );
    assert!(
        outcome
            .stderr
            .contains("astra-vmm: error: the guest kernel could not mount the rootfs"),
        "{}",
        outcome.report()
    );
    assert!(
        !outcome.stderr.contains("kernel panic"),
        "{}",
        outcome.report()
    );
}

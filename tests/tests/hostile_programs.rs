//! Programs the kernel must refuse as Linux does (issue 11, item 13): an ELF whose
//! `PT_LOAD` lies below `vm.mmap_min_addr` (64 KiB) is not mapped there.

use std::time::Duration;

use astra_tests::tempdir::TempDir;
use astra_tests::{require_kvm, run_vmm, Workspace};

/// A ustar header for a regular file `name` of `size` bytes, mode 0755.
fn header(name: &str, size: usize) -> [u8; 512] {
    let mut h = [0u8; 512];
    h[..name.len()].copy_from_slice(name.as_bytes());
    h[100..108].copy_from_slice(b"0000755\0");
    h[108..116].copy_from_slice(b"0000000\0");
    h[116..124].copy_from_slice(b"0000000\0");
    h[124..136].copy_from_slice(format!("{size:011o}\0").as_bytes());
    h[136..148].copy_from_slice(b"00000000000\0");
    h[156] = b'0';
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].fill(b' ');
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    h
}

/// The data of regular file `name` in the TAR `tar`.
fn member<'a>(tar: &'a [u8], name: &str) -> &'a [u8] {
    let mut at = 0;
    while at + 512 <= tar.len() {
        let h = &tar[at..at + 512];
        let field = std::str::from_utf8(&h[124..135]).unwrap();
        let size =
            usize::from_str_radix(field.trim_matches(|c| c == '\0' || c == ' '), 8).unwrap_or(0);
        let entry = h[..100].split(|&b| b == 0).next().unwrap();
        if entry == name.as_bytes() {
            return &tar[at + 512..at + 512 + size];
        }
        at += 512 + size.div_ceil(512) * 512;
    }
    panic!("{name} is not in build/fs.tar");
}

/// build/fs.tar with `data` added as `name`.
fn image_with(name: &str, data: &[u8]) -> Vec<u8> {
    let base = std::fs::read(Workspace::locate().rootfs()).expect("read build/fs.tar");
    let mut end = base.len();
    while end >= 512 && base[end - 512..end].iter().all(|&b| b == 0) {
        end -= 512;
    }
    let mut out = base[..end].to_vec();
    out.extend_from_slice(&header(name, data.len()));
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512 + 1024, 0);
    out
}

#[test]
fn a_program_loaded_below_mmap_min_addr_is_refused() {
    require_kvm();
    let tar = std::fs::read(Workspace::locate().rootfs()).expect("read build/fs.tar");
    // guest-std's `true`: ET_EXEC, its first PT_LOAD (headers) at 0x400000, code above.
    let mut elf = member(&tar, "bin/true").to_vec();
    assert_eq!(u16::from_le_bytes([elf[16], elf[17]]), 2, "ET_EXEC");
    let phoff = u64::from_le_bytes(elf[32..40].try_into().unwrap()) as usize;
    let phnum = u16::from_le_bytes([elf[56], elf[57]]) as usize;
    let phoff = (0..phnum)
        .map(|i| phoff + i * 56)
        .find(|&at| u32::from_le_bytes(elf[at..at + 4].try_into().unwrap()) == 1)
        .expect("a PT_LOAD");
    // Its first PT_LOAD moves to address 0; the entry point stays in the next one, so
    // only the address check can stop it.
    elf[phoff + 16..phoff + 24].copy_from_slice(&0u64.to_le_bytes());
    elf[phoff + 24..phoff + 32].copy_from_slice(&0u64.to_le_bytes());
    let dir = TempDir::new("low-elf");
    let rootfs = dir.write("fs.tar", &image_with("bin/low", &elf));
    let ws = Workspace::locate();
    let args = [
        "--kernel".to_string(),
        ws.kernel().display().to_string(),
        "--rootfs".into(),
        rootfs.display().to_string(),
        "--timeout".into(),
        "20".into(),
        "--".into(),
        "/bin/low".into(),
    ];
    let outcome = run_vmm(&args, Duration::from_secs(40));
    // As a shell reports a program the kernel would not execute.
    assert_eq!(outcome.status, 126, "{}", outcome.report());
    assert!(
        outcome
            .stderr
            .contains("astra: cannot run /bin/low: a segment would be mapped at 0x0, below"),
        "{}",
        outcome.report()
    );
}

//! Boots hand-assembled kernels (a few dozen bytes of 64-bit code each) in the built
//! `astra-vmm` on the host's `/dev/kvm`, checking exit codes, console and device behaviour
//! without depending on the real guest kernel. Without a usable `/dev/kvm` these tests fail
//! loudly: they never pass silently.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use hypercall_abi::ABI_VERSION;

const VMM: &str = env!("CARGO_BIN_EXE_astra-vmm");
const KERNEL_PADDR: u64 = 0x20_0000;
const KERNEL_VIRT_BASE: u64 = 0xffff_ffff_8000_0000;

/// `mov dx, port`
fn dx(port: u16) -> Vec<u8> {
    let mut code = vec![0x66, 0xba];
    code.extend_from_slice(&port.to_le_bytes());
    code
}

/// Writes `text` to the console.
fn print(text: &[u8]) -> Vec<u8> {
    let mut code = dx(0x3f8);
    for &byte in text {
        code.extend_from_slice(&[0xb0, byte, 0xee]);
    }
    code
}

/// Writes `value` to the exit device, then halts.
fn exit(value: u32) -> Vec<u8> {
    let mut code = vec![0xb8];
    code.extend_from_slice(&value.to_le_bytes());
    code.extend(dx(0x501));
    code.extend_from_slice(&[0xef, 0xf4]);
    code
}

/// `mov rax, imm64; mov [disp32], rax`
fn store_u64(gpa: u32, value: u64) -> Vec<u8> {
    let mut code = vec![0x48, 0xb8];
    code.extend_from_slice(&value.to_le_bytes());
    code.extend_from_slice(&[0x48, 0x89, 0x04, 0x25]);
    code.extend_from_slice(&gpa.to_le_bytes());
    code
}

/// Maps the 2 MiB at guest-physical 4 GiB (the rootfs) at virtual 4 GiB, using a spare
/// low page as its page directory, then reloads CR3.
fn map_rootfs() -> Vec<u8> {
    let mut code = store_u64(0xc000 + 4 * 8, 0xf003);
    code.extend(store_u64(0xf000, (1 << 32) | 0x83));
    code.extend_from_slice(&[0x0f, 0x20, 0xd8, 0x0f, 0x22, 0xd8]);
    code
}

/// `mov rax, imm64`
fn rax(value: u64) -> Vec<u8> {
    let mut code = vec![0x48, 0xb8];
    code.extend_from_slice(&value.to_le_bytes());
    code
}

fn cat(parts: &[Vec<u8>]) -> Vec<u8> {
    parts.concat()
}

/// An ELF64 kernel: `code` loaded at 2 MiB (8 KiB of memory), entry at its start in the
/// higher half, and the astra ABI note for `abi`.
fn kernel_elf(code: &[u8], abi: u32) -> Vec<u8> {
    let mut note = Vec::new();
    for v in [6u32, 4, 0x4153_0001] {
        note.extend_from_slice(&v.to_le_bytes());
    }
    note.extend_from_slice(b"astra\0\0\0");
    note.extend_from_slice(&abi.to_le_bytes());
    let vaddr = KERNEL_VIRT_BASE + KERNEL_PADDR;
    let (phoff, note_off, code_off) = (64u64, 64 + 2 * 56, 0x1000u64);
    let mut elf = b"\x7fELF\x02\x01\x01".to_vec();
    elf.resize(16, 0);
    for (v, size) in [
        (2u64, 2),
        (62, 2),
        (1, 4),
        (vaddr, 8),
        (phoff, 8),
        (0, 8),
        (0, 4),
        (64, 2),
        (56, 2),
        (2, 2),
        (64, 2),
        (0, 2),
        (0, 2),
    ] {
        elf.extend_from_slice(&v.to_le_bytes()[..size]);
    }
    let mut phdr = |p_type: u32, flags: u32, fields: [u64; 6]| {
        elf.extend_from_slice(&p_type.to_le_bytes());
        elf.extend_from_slice(&flags.to_le_bytes());
        for v in fields {
            elf.extend_from_slice(&v.to_le_bytes());
        }
    };
    let len = code.len() as u64;
    phdr(1, 5, [code_off, vaddr, KERNEL_PADDR, len, 0x2000, 0x1000]);
    phdr(
        4,
        4,
        [note_off, 0, 0, note.len() as u64, note.len() as u64, 4],
    );
    elf.extend_from_slice(&note);
    elf.resize(code_off as usize, 0);
    elf.extend_from_slice(code);
    elf
}

struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("astra-vmm-boot-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    /// A one-file ustar archive.
    fn rootfs(&self) -> PathBuf {
        let mut header = vec![0u8; 512];
        header[..5].copy_from_slice(b"hello");
        header[100..108].copy_from_slice(b"0000644\0");
        header[124..136].copy_from_slice(b"00000000003\0");
        header[156] = b'0';
        header[257..263].copy_from_slice(b"ustar\0");
        header[263..265].copy_from_slice(b"00");
        header[148..156].fill(b' ');
        let sum: u32 = header.iter().map(|&b| u32::from(b)).sum();
        header[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        header.extend_from_slice(b"hi\n");
        header.resize(2048, 0);
        self.write("fs.tar", &header)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn require_kvm() {
    assert!(
        Path::new("/dev/kvm").exists(),
        "these tests boot VMs and need /dev/kvm, which this host does not have"
    );
}

fn boot(kernel: &Path, args: &[&str], stdin: &[u8]) -> Output {
    require_kvm();
    let mut child = Command::new(VMM)
        .arg("--kernel")
        .arg(kernel)
        .args(["--timeout", "20"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start astra-vmm");
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin).unwrap();
    drop(input);
    child.wait_with_output().unwrap()
}

fn describe(out: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn boot_code(name: &str, code: &[u8], args: &[&str]) -> Output {
    let dir = Scratch::new(name);
    let kernel = dir.write("k.elf", &kernel_elf(code, ABI_VERSION));
    let rootfs = dir.rootfs();
    let mut all = vec!["--rootfs", rootfs.to_str().unwrap()];
    all.extend_from_slice(args);
    boot(&kernel, &all, b"")
}

#[test]
fn uart_output_goes_to_stderr_with_the_exit_status() {
    // The UART is the kernel's emergency path: diagnostics, never program output.
    let out = boot_code("hello", &cat(&[print(b"hi\n"), exit(42)]), &[]);
    assert_eq!(out.status.code(), Some(42), "{}", describe(&out));
    assert_eq!(out.stderr, b"hi\n");
    assert_eq!(out.stdout, b"");
}

#[test]
fn cmdline_and_argv_reach_the_guest() {
    // Prints the NUL-terminated command line at 0x8000, then the init-arguments area at
    // 0x10000 (argv, environment, cwd back to back) with NULs as '|'.
    let print_at = |gpa: u32, count: u8| {
        let mut code = dx(0x3f8);
        code.push(0xbe);
        code.extend_from_slice(&gpa.to_le_bytes());
        code.extend_from_slice(&[0xb9, count, 0, 0, 0]);
        code.extend_from_slice(&[
            0x8a, 0x06, 0x84, 0xc0, 0x75, 0x02, 0xb0, b'|', 0xee, 0xff, 0xc6, 0xff, 0xc9, 0x75,
            0xf1,
        ]);
        code
    };
    let code = cat(&[print_at(0x8000, 40), print_at(0x1_0000, 48), exit(0)]);
    let out = boot_code(
        "cmdline",
        &code,
        &[
            "--cmdline",
            "x=1",
            "--strace",
            "-e",
            "A=1",
            "--cwd",
            "/t",
            "--",
            "/bin/p",
            "a b",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("x=1 astra.strace init=/bin/p|"),
        "{stderr}"
    );
    assert!(
        stderr.ends_with("/bin/p|a b|PATH=/bin|HOME=/|TERM=dumb|A=1|/t||||"),
        "{stderr}"
    );
}

#[test]
fn kernel_panic_exits_251() {
    let out = boot_code("panic", &exit(0x100), &[]);
    assert_eq!(out.status.code(), Some(251), "{}", describe(&out));
}

#[test]
fn malformed_exit_value_is_a_crash() {
    let out = boot_code("badexit", &exit(0x0300), &[]);
    assert_eq!(out.status.code(), Some(252), "{}", describe(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("malformed exit value"));
}

#[test]
fn unknown_port_is_a_crash_with_registers() {
    let code = cat(&[dx(0x2f8), vec![0xee], exit(0)]);
    let out = boot_code("badport", &code, &[]);
    assert_eq!(out.status.code(), Some(252), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("unknown I/O port 0x2f8"), "{stderr}");
    assert!(stderr.contains("rip=0xffffffff80200005"), "{stderr}");
}

#[test]
fn triple_fault_is_a_crash() {
    let out = boot_code("ud2", &[0x0f, 0x0b], &[]);
    assert_eq!(out.status.code(), Some(252), "{}", describe(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("triple fault"));
}

#[test]
fn rootfs_is_mapped_read_only() {
    // movzx eax, byte [rax]: the 'u' of the ustar magic.
    let read = cat(&[
        map_rootfs(),
        rax((1 << 32) + 257),
        vec![0x0f, 0xb6, 0x00],
        dx(0x501),
        vec![0xef, 0xf4],
    ]);
    let out = boot_code("rootfs-read", &read, &[]);
    assert_eq!(
        out.status.code(),
        Some(i32::from(b'u')),
        "{}",
        describe(&out)
    );
    // mov byte [rax], 1
    let write = cat(&[map_rootfs(), rax(1 << 32), vec![0xc6, 0x00, 0x01], exit(0)]);
    let out = boot_code("rootfs-write", &write, &[]);
    assert_eq!(out.status.code(), Some(252), "{}", describe(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("read-only rootfs at 0x100000000"));
}

#[test]
fn rtc_fills_in_the_request() {
    // Request block at 0x201000 (in the kernel's bss): ring, then exit with its status.
    let code = cat(&[
        vec![0xb8, 0x00, 0x10, 0x20, 0x00],
        dx(0x502),
        vec![0xef, 0x8b, 0x04, 0x25, 0x08, 0x10, 0x20, 0x00],
        dx(0x501),
        vec![0xef, 0xf4],
    ]);
    let out = boot_code("rtc", &code, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
}

/// Fills the `ConsoleWrite` at `req` (`data`, `len`, `stream`, status 0) and rings port 0x503.
fn console_write(req: u32, data: u32, len: u32, stream: u32) -> Vec<u8> {
    let mut code = cat(&[
        store_u64(req, u64::from(data)),
        store_u64(req + 8, u64::from(len) | u64::from(stream) << 32),
        store_u64(req + 16, 0),
        vec![0xb8],
    ]);
    code.extend_from_slice(&req.to_le_bytes());
    code.extend(dx(0x503));
    code.push(0xef);
    code
}

#[test]
fn console_output_device_writes_stdout_and_stderr_and_refuses_bad_requests() {
    // Request block at 0x201000, data at 0x201100 (the kernel's bss).
    let code = cat(&[
        store_u64(0x201100, u64::from_le_bytes(*b"out\nerr\n")),
        console_write(0x201000, 0x201100, 4, 1),
        console_write(0x201000, 0x201104, 4, 2),
        console_write(0x201000, 0x201100, 4, 1),
        // A huge length: refused with status INVALID (2), which becomes the exit status.
        console_write(0x201000, 0x201100, u32::MAX, 1),
        vec![0x8b, 0x04, 0x25, 0x10, 0x10, 0x20, 0x00],
        dx(0x501),
        vec![0xef, 0xf4],
    ]);
    let out = boot_code("console-out", &code, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert_eq!(out.stdout, b"out\nout\n", "{}", describe(&out));
    assert_eq!(out.stderr, b"err\n", "{}", describe(&out));
}

#[test]
fn stats_count_vm_exits_by_kind() {
    let code = cat(&[print(b"ab"), exit(0)]);
    let out = boot_code("stats", &code, &["--stats"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("astra-vmm: VM exits: 3 "), "{stderr}");
    assert!(
        stderr.contains("  io-out 0x3f8 (16550 console)"),
        "{stderr}"
    );
    assert!(stderr.contains("  io-out 0x501 (exit)"), "{stderr}");
    let uart_row = stderr
        .lines()
        .find(|l| l.ends_with("io-out 0x3f8 (16550 console)"))
        .unwrap();
    assert_eq!(uart_row.split_whitespace().next(), Some("2"), "{stderr}");
}

#[test]
fn timeout_stops_a_spinning_guest() {
    for (name, code) in [
        ("spin", vec![0xeb, 0xfe]),
        ("cli-hlt", vec![0xfa, 0xf4, 0xeb, 0xfc]),
    ] {
        let start = Instant::now();
        let out = boot_code(name, &code, &["--timeout", "0.3"]);
        assert_eq!(out.status.code(), Some(253), "{}", describe(&out));
        assert!(String::from_utf8_lossy(&out.stderr).contains("guest timed out after 0.3 s"));
        assert!(start.elapsed() < Duration::from_secs(5));
    }
}

#[test]
fn stdin_reaches_the_guest() {
    // Poll LSR, echo each byte until '\n', then exit 7.
    let code = cat(&[
        dx(0x3f8),
        vec![
            0xb2, 0xfd, 0xec, 0xa8, 0x01, 0x74, 0xfb, 0xb2, 0xf8, 0xec, 0x3c, 0x0a, 0x74, 0x03,
            0xee, 0xeb, 0xef,
        ],
        exit(7),
    ]);
    let dir = Scratch::new("stdin");
    let kernel = dir.write("k.elf", &kernel_elf(&code, ABI_VERSION));
    let out = boot(&kernel, &[], b"echo me\n");
    assert_eq!(out.status.code(), Some(7), "{}", describe(&out));
    assert_eq!(out.stderr, b"echo me");
}

#[test]
fn console_input_device_delivers_stdin_then_its_end() {
    // A `ConsoleRead` at 0x201000 for 64 bytes at 0x201100. Ring port 0x504 until the
    // INPUT_ENDED flag shows, moving `data_gpa` on by each request's `count`; then write
    // the total count (data_gpa - 0x201100) bytes from 0x201100 to stdout with the
    // `ConsoleWrite` at 0x201040 and exit with the count as the status.
    let code = cat(&[
        store_u64(0x201000, 0x201100),
        store_u64(0x201008, 64),
        store_u64(0x201010, 0),
        store_u64(0x201018, 0),
        store_u64(0x201040, 0x201100),
        store_u64(0x201048, 1 << 32),
        store_u64(0x201050, 0),
        // loop: mov eax, 0x201000; mov dx, 0x504; out dx, eax
        vec![0xb8, 0x00, 0x10, 0x20, 0x00],
        dx(0x504),
        vec![0xef],
        // mov eax, [count]; add [data_gpa], eax; mov eax, [flags]; test al, 1; jz loop
        vec![0x8b, 0x04, 0x25, 0x0c, 0x10, 0x20, 0x00],
        vec![0x01, 0x04, 0x25, 0x00, 0x10, 0x20, 0x00],
        vec![0x8b, 0x04, 0x25, 0x18, 0x10, 0x20, 0x00],
        vec![0xa8, 0x01, 0x74, 0xdd],
        // mov eax, [data_gpa]; sub eax, 0x201100; mov [len], eax; mov ebx, eax
        vec![0x8b, 0x04, 0x25, 0x00, 0x10, 0x20, 0x00],
        vec![0x2d, 0x00, 0x11, 0x20, 0x00],
        vec![0x89, 0x04, 0x25, 0x48, 0x10, 0x20, 0x00, 0x89, 0xc3],
        // mov eax, 0x201040; mov dx, 0x503; out dx, eax; mov eax, ebx; exit
        vec![0xb8, 0x40, 0x10, 0x20, 0x00],
        dx(0x503),
        vec![0xef, 0x89, 0xd8],
        dx(0x501),
        vec![0xef, 0xf4],
    ]);
    let dir = Scratch::new("console-in");
    let kernel = dir.write("k.elf", &kernel_elf(&code, ABI_VERSION));
    let out = boot(&kernel, &["--stats"], b"hello, input");
    assert_eq!(out.status.code(), Some(12), "{}", describe(&out));
    assert_eq!(out.stdout, b"hello, input", "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("  io-out 0x504 (console input)"),
        "{stderr}"
    );
    // Nothing went through the UART.
    assert!(!stderr.contains("(16550 console)"), "{stderr}");
}

#[test]
fn bad_kernels_are_usage_errors() {
    require_kvm();
    let dir = Scratch::new("bad");
    let cases = [
        (
            kernel_elf(&exit(0), ABI_VERSION + 1),
            &format!("speaks astra ABI version {}", ABI_VERSION + 1),
        ),
        (b"not an elf".repeat(10), &"Not an ELF file".to_string()),
    ];
    for (image, needle) in cases {
        let kernel = dir.write("k.elf", &image);
        let out = boot(&kernel, &[], b"");
        assert_eq!(out.status.code(), Some(250), "{}", describe(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.starts_with("astra-vmm: error: Kernel image"),
            "{stderr}"
        );
        assert!(stderr.contains(needle), "{stderr}");
    }
}

/// A loop of `count` doorbell writes to `port`, each of a pseudo-random address that
/// `or_mask`/`and_mask` steer: `mov ecx, count; mov dx, port; L: mov eax, ecx;
/// imul eax, eax, 0x9e3779b1; and eax, and_mask; or eax, or_mask; out dx, eax; loop L`.
fn doorbell_storm(port: u16, count: u32, and_mask: u32, or_mask: u32) -> Vec<u8> {
    let mut code = vec![0xb9];
    code.extend_from_slice(&count.to_le_bytes());
    code.extend(dx(port));
    let body = cat(&[
        vec![0x89, 0xc8],
        vec![0x69, 0xc0, 0xb1, 0x79, 0x37, 0x9e],
        [vec![0x25], and_mask.to_le_bytes().to_vec()].concat(),
        [vec![0x0d], or_mask.to_le_bytes().to_vec()].concat(),
        vec![0xef],
    ]);
    let back = -(body.len() as i8 + 2);
    code.extend(body);
    code.extend_from_slice(&[0xe2, back as u8]);
    code
}

/// `cld; mov rsi, src; mov ecx, count; mov dx, port; rep outs{b,d}`.
fn port_string(port: u16, src: u64, count: u32, dwords: bool) -> Vec<u8> {
    let mut code = vec![0xfc, 0x48, 0xbe];
    code.extend_from_slice(&src.to_le_bytes());
    code.push(0xb9);
    code.extend_from_slice(&count.to_le_bytes());
    code.extend(dx(port));
    code.extend_from_slice(&[0xf3, if dwords { 0x6f } else { 0x6e }]);
    code
}

#[test]
fn a_hostile_guest_kernel_is_survived_reported_and_rate_limited() {
    // Thousands of doorbells on every request device with addresses outside RAM and
    // misaligned ones inside it (in the unused 1-1.5 MiB), a 64 KiB port string to the
    // UART, a doorbell written as a 256 KiB port string, then an exit written with 16
    // bits: the VMM must take it all, keep its warnings to a few lines, and end with 252
    // naming the bad access.
    const STORM: u32 = 6000;
    let mut code = Vec::new();
    for port in [0x503, 0x504, 0x502] {
        code.extend(doorbell_storm(port, STORM, 0xffff_ffff, 0xf000_0000));
        code.extend(doorbell_storm(port, STORM, 0x0007_fff1, 0x0010_0001));
    }
    code.extend(port_string(0x3f8, KERNEL_VIRT_BASE, 64 << 10, false));
    code.extend(print(b"\nsurvived\n"));
    // KVM may hand a string over in one exit (a malformed doorbell: the end) or one
    // element per exit (64K more doorbells); either way the VM goes on or ends cleanly.
    code.extend(port_string(0x503, KERNEL_VIRT_BASE, 64 << 10, true));
    // The final malformed request: a 16-bit write to the exit device.
    code.extend(cat(&[
        dx(0x501),
        vec![0x66, 0xb8, 0, 0, 0x66, 0xef],
        exit(0),
    ]));
    let start = Instant::now();
    let out = boot_code("hostile", &code, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let tail: String = stderr.lines().rev().take(5).collect::<Vec<_>>().join("\n");
    assert_eq!(out.status.code(), Some(252), "{tail}");
    assert!(stderr.contains("\nsurvived\n"), "{tail}");
    assert!(stderr.contains(" device written with "), "{tail}");
    let warnings = stderr.lines().filter(|l| l.contains("WARN ")).count();
    assert!(
        (3..=6 * 25).contains(&warnings),
        "{warnings} warning lines for {} bad requests",
        6 * STORM
    );
    assert!(
        stderr.contains("times so far)"),
        "rate-limited warnings carry their count"
    );
    assert!(start.elapsed() < Duration::from_secs(15));
}

//! Device fuzzing without KVM: every device model behind the port bus, as `lib.rs` wires
//! them, fed hundreds of thousands of random accesses (ports, widths, `rep` lengths,
//! doorbell addresses, request blocks with random fields, random input and failing host
//! streams), while guest RAM is watched: after each access, every byte outside the fields
//! the device may write (a request's status/result fields, console input's destination)
//! must still hold its canary value. Any panic fails the test too. The host file-system
//! device serves a scratch directory (one read-write and one read-only volume of it).
//!
//! The seed is printed; `ASTRA_FUZZ_SEED=N` replays a run, `ASTRA_FUZZ_OPS=N` changes its
//! length (default [`DEFAULT_OPS`]).

use std::io::{self, Write};
use std::mem::offset_of;
use std::ops::Range;
use std::sync::Arc;

use astra_vmm::arch::x86_64::layout::{CONSOLE_PORT_COUNT, POST_PORT, SYSTEM_CONTROL_PORT_B};
use astra_vmm::devices::console_in::ConsoleIn;
use astra_vmm::devices::console_out::ConsoleOut;
use astra_vmm::devices::exit::ExitDevice;
use astra_vmm::devices::hostfs::host::{HostFs, Volume};
use astra_vmm::devices::hostfs::HostFsDevice;
use astra_vmm::devices::rtc::{system_clock, RtcDevice};
use astra_vmm::devices::serial::Console;
use astra_vmm::devices::stdin::StdinBuffer;
use astra_vmm::devices::{PortBus, Sink};
use hypercall_abi::{port, ConsoleRead, ConsoleWrite, HostFsRequest};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

/// Accesses per run.
const DEFAULT_OPS: u64 = 300_000;
/// Guest RAM: small, so that random addresses often land in it.
const RAM: u64 = 16 << 10;

/// splitmix64: small, fast, and every seed is a fine one.
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

    fn chance(&mut self, one_in: u64) -> bool {
        self.below(one_in) == 0
    }

    /// An address: mostly in or near RAM, sometimes aligned, sometimes wild.
    fn gpa(&mut self) -> u64 {
        match self.below(8) {
            0 => self.next() & 0xffff_ffff,
            1 => RAM - self.below(64),
            2..=4 => self.below(RAM) & !7,
            _ => self.below(RAM + 256),
        }
    }

    /// A length: mostly small, sometimes at the limits.
    fn len(&mut self) -> u32 {
        match self.below(8) {
            0 => self.next() as u32,
            1 => hypercall_abi::CONSOLE_WRITE_MAX + self.below(2) as u32,
            _ => self.below(RAM + 64) as u32,
        }
    }
}

/// A host stream that fails now and then, as a closed pipe or a full disk would.
struct Flaky(u64);

impl Write for Flaky {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1);
        match self.0 >> 60 {
            0 => Err(io::Error::from_raw_os_error(libc::EPIPE)),
            1 => Err(io::Error::from_raw_os_error(libc::ENOSPC)),
            2 => Ok(data.len().min(3)),
            _ => Ok(data.len()),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn irq() -> EventFd {
    EventFd::new(EFD_NONBLOCK).expect("eventfd")
}

/// The bus of `lib.rs`, over `mem`.
fn bus(mem: &GuestMemoryMmap, input: &Arc<StdinBuffer>, shared: &std::path::Path) -> PortBus {
    let console = Console::new(irq(), io::sink(), Arc::clone(input));
    let uart = console.handle();
    let console_in = ConsoleIn::new(
        mem.clone(),
        Arc::clone(input),
        Some(Box::new(move || uart.hand_over_input())),
    );
    let mut bus = PortBus::new();
    bus.insert(port::CONSOLE, CONSOLE_PORT_COUNT, Box::new(console))
        .unwrap();
    bus.insert(port::CONSOLE_IN, 1, Box::new(console_in))
        .unwrap();
    bus.insert(port::EXIT, 1, Box::new(ExitDevice)).unwrap();
    bus.insert(
        port::RTC,
        1,
        Box::new(RtcDevice::new(mem.clone(), system_clock)),
    )
    .unwrap();
    let out = ConsoleOut::new(mem.clone(), Box::new(Flaky(1)), Box::new(Flaky(2)));
    bus.insert(port::CONSOLE_OUT, 1, Box::new(out)).unwrap();
    let volumes = vec![
        Volume::open(shared, "/a", false).unwrap(),
        Volume::open(shared, "/b", true).unwrap(),
    ];
    let hostfs = HostFsDevice::new(mem.clone(), HostFs::new(volumes));
    bus.insert(port::HOSTFS, 1, Box::new(hostfs)).unwrap();
    bus.insert(POST_PORT, 1, Box::new(Sink)).unwrap();
    bus.insert(SYSTEM_CONTROL_PORT_B, 1, Box::new(Sink))
        .unwrap();
    bus
}

fn u32_at(shadow: &[u8], at: u64) -> Option<u32> {
    let at = usize::try_from(at).ok()?;
    Some(u32::from_le_bytes(shadow.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(shadow: &[u8], at: u64) -> Option<u64> {
    let at = usize::try_from(at).ok()?;
    Some(u64::from_le_bytes(shadow.get(at..at + 8)?.try_into().ok()?))
}

/// `start..start + len` (saturating), as a range.
fn span(start: u64, len: u64) -> Range<u64> {
    start..start.saturating_add(len)
}

/// The bytes a doorbell with request address `gpa` on `port` may change, given RAM as it
/// was before (`shadow`).
fn writable(port: u16, gpa: u64, shadow: &[u8]) -> Vec<Range<u64>> {
    match port {
        p if p == port::CONSOLE_OUT => {
            vec![span(gpa + offset_of!(ConsoleWrite, status) as u64, 8)]
        }
        p if p == port::RTC => vec![span(gpa, 12)],
        p if p == port::CONSOLE_IN => {
            let mut out = vec![span(gpa + offset_of!(ConsoleRead, count) as u64, 16)];
            let data = u64_at(shadow, gpa + offset_of!(ConsoleRead, data_gpa) as u64);
            let cap = u32_at(shadow, gpa + offset_of!(ConsoleRead, capacity) as u64);
            if let (Some(data), Some(cap)) = (data, cap) {
                out.push(span(data, u64::from(cap)));
            }
            out
        }
        p if p == port::HOSTFS => {
            let size = std::mem::size_of::<HostFsRequest>() as u64;
            let mut out = vec![span(gpa, size)];
            let buf = u64_at(shadow, gpa + offset_of!(HostFsRequest, buf_gpa) as u64);
            let len = u32_at(shadow, gpa + offset_of!(HostFsRequest, buf_len) as u64);
            if let (Some(buf), Some(len)) = (buf, len) {
                out.push(span(buf, u64::from(len)));
            }
            out
        }
        _ => Vec::new(),
    }
}

/// A host file-system request with a random operation among the real ones (and some
/// that are not), small handles (mostly ones the device may have given), names of a few
/// random bytes or of the shared directory's files, random offsets and buffers.
fn plant_hostfs(rng: &mut Rng, mem: &GuestMemoryMmap, gpa: u64) {
    let size = std::mem::size_of::<HostFsRequest>();
    let mut block = vec![0u8; size];
    for b in block.iter_mut() {
        *b = rng.next() as u8;
    }
    let mut put = |off: usize, bytes: &[u8]| block[off..off + bytes.len()].copy_from_slice(bytes);
    put(0, &(rng.below(17) as u32).to_le_bytes());
    put(4, &(rng.below(4) as u32).to_le_bytes());
    put(8, &(rng.below(12)).to_le_bytes());
    put(16, &(rng.below(12)).to_le_bytes());
    put(24, &(rng.below(1 << 20)).to_le_bytes());
    for (gpa_at, len_at) in [(32, 56), (40, 60), (48, 64)] {
        put(gpa_at, &rng.gpa().to_le_bytes());
        put(
            len_at,
            &rng.len()
                .min(if len_at == 64 { u32::MAX } else { 300 })
                .to_le_bytes(),
        );
    }
    put(
        68,
        &(0o100_644u32 + (rng.below(4) as u32) * 0o020_000).to_le_bytes(),
    );
    // Half the time, the name is one the shared directory has (`f` or `d`), in RAM.
    let name = [b"f", b"d"][rng.below(2) as usize];
    let name_gpa = rng.below(RAM - 1);
    let real_name = rng.chance(2);
    if real_name {
        block[32..40].copy_from_slice(&name_gpa.to_le_bytes());
        block[56..60].copy_from_slice(&1u32.to_le_bytes());
    }
    let fits = (RAM - gpa).min(size as u64) as usize;
    mem.write_slice(&block[..fits], GuestAddress(gpa)).unwrap();
    if real_name {
        mem.write_slice(name, GuestAddress(name_gpa)).unwrap();
    }
}

/// Writes a plausible request block for `port` at `gpa` (in RAM), with random fields.
fn plant_request(rng: &mut Rng, mem: &GuestMemoryMmap, port: u16, gpa: u64) {
    let mut block = [0u8; 32];
    for b in block.iter_mut() {
        *b = rng.next() as u8;
    }
    let data = rng.gpa();
    let len = rng.len();
    block[..8].copy_from_slice(&data.to_le_bytes());
    block[8..12].copy_from_slice(&len.to_le_bytes());
    if port == port::CONSOLE_OUT {
        let stream = [0u32, 1, 2, 3, rng.next() as u32][rng.below(5) as usize];
        block[12..16].copy_from_slice(&stream.to_le_bytes());
    }
    let fits = (RAM - gpa).min(32) as usize;
    mem.write_slice(&block[..fits], GuestAddress(gpa)).unwrap();
}

#[test]
fn every_device_survives_random_requests_without_touching_other_memory() {
    let seed = std::env::var("ASTRA_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
        });
    let ops: u64 = std::env::var("ASTRA_FUZZ_OPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_OPS);
    println!("device fuzz: seed {seed} ({ops} accesses; replay with ASTRA_FUZZ_SEED={seed})");
    let mut rng = Rng(seed);
    let mem = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), RAM as usize)]).unwrap();
    let mut shadow = vec![0u8; RAM as usize];
    for b in shadow.iter_mut() {
        *b = rng.next() as u8;
    }
    mem.write_slice(&shadow, GuestAddress(0)).unwrap();
    let input = Arc::new(StdinBuffer::new(4096, irq()));
    let shared = std::env::temp_dir().join(format!("astra-fuzz-hostfs-{}", std::process::id()));
    std::fs::create_dir_all(shared.join("d")).unwrap();
    std::fs::write(shared.join("f"), b"fuzz").unwrap();
    let mut bus = bus(&mem, &input, &shared);
    let ports = [
        port::CONSOLE_OUT,
        port::CONSOLE_IN,
        port::RTC,
        port::HOSTFS,
        port::EXIT,
        POST_PORT,
        SYSTEM_CONTROL_PORT_B,
    ];
    let mut ram = vec![0u8; RAM as usize];
    let mut stops = 0u64;
    for op in 0..ops {
        if rng.chance(50) {
            // Never more than fits: a full buffer makes the pushing thread wait.
            let n = (rng.below(300) as usize).min(4096 - input.len());
            let bytes: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
            input.push(&bytes, &mut || {});
        }
        let port = match rng.below(10) {
            0..=5 => ports[rng.below(ports.len() as u64) as usize],
            6..=7 => port::CONSOLE + rng.below(u64::from(CONSOLE_PORT_COUNT)) as u16,
            _ => rng.next() as u16,
        };
        let width = match rng.below(8) {
            0 => 1,
            1 => 2,
            2 => 8,
            3 => rng.below(512) as usize, // rep ins/outs
            _ => 4,
        };
        let mut allowed = Vec::new();
        if rng.chance(3) {
            let mut data = vec![0u8; width];
            bus.read(port, &mut data);
        } else {
            let gpa = rng.gpa() & 0xffff_ffff;
            if gpa < RAM && rng.below(4) != 0 {
                if port == port::HOSTFS {
                    plant_hostfs(&mut rng, &mem, gpa);
                } else {
                    plant_request(&mut rng, &mem, port, gpa);
                }
                mem.read_slice(&mut shadow, GuestAddress(0)).unwrap();
            }
            let mut data: Vec<u8> = (0..width).map(|_| rng.next() as u8).collect();
            if width == 4 {
                data.copy_from_slice(&(gpa as u32).to_le_bytes());
                allowed = writable(port, gpa, &shadow);
            }
            if let Some(astra_vmm::devices::IoAction::Stop(_)) = bus.write(port, &data) {
                stops += 1;
            }
        }
        mem.read_slice(&mut ram, GuestAddress(0)).unwrap();
        for range in &allowed {
            let (start, end) = (range.start.min(RAM) as usize, range.end.min(RAM) as usize);
            shadow[start..end].copy_from_slice(&ram[start..end]);
        }
        if ram != shadow {
            let at = ram.iter().zip(&shadow).position(|(a, b)| a != b).unwrap();
            panic!(
                "seed {seed}, access {op}: port {port:#x} width {width} changed guest RAM at \
                 {at:#x} outside the fields it may write ({allowed:x?})"
            );
        }
    }
    drop(bus);
    let _ = std::fs::remove_dir_all(&shared);
    println!("device fuzz: {ops} accesses, {stops} of them stopped the VM, RAM intact");
}

//! The contract between `astra-vmm` (host) and the astra guest kernel.
//!
//! Everything both sides must agree on lives here and nowhere else: the guest-physical
//! memory layout at boot, the [`BootInfo`] block, device port numbers, request layouts and
//! the exit protocol. The crate is `no_std` with no dependencies so that the host VMM and
//! the `x86_64-unknown-none` kernel compile the very same definitions.
//!
//! # Boot protocol
//! 1. The VMM loads the kernel ELF at its physical addresses (`p_paddr`) and refuses it
//!    unless its `.note.astra` note carries [`ABI_VERSION`] (see [`note`]).
//! 2. It writes a [`BootInfo`] at [`layout::BOOT_INFO_GPA`], the kernel command line at
//!    [`layout::CMDLINE_GPA`] and, in the init-arguments area at [`layout::INIT_ARGS_GPA`]
//!    (at most [`layout::INIT_ARGS_MAX`] bytes in all), the init program's argv and
//!    environment (each NUL-terminated strings back to back) and its working directory
//!    (one string, no NUL); their addresses and lengths are in the [`BootInfo`]. Empty
//!    strings are kept: `""` is an argument like any other.
//! 3. It builds boot page tables ([`layout::BOOT_PML4_GPA`]) that map guest-physical
//!    `0..1 GiB` twice: identity, and at [`layout::KERNEL_VIRT_BASE`], every entry with
//!    the user/supervisor bit set (a PVM host can only run the kernel natively on such
//!    pages; see the kernel's `arch::platform`).
//! 4. The vCPU starts in 64-bit long mode at the ELF entry (a higher-half virtual address)
//!    with `rdi` = the guest-physical address of the [`BootInfo`] and interrupts disabled.
//!    The kernel sets up its own stack, GDT, IDT and page tables.
//!
//! # Devices
//! Devices are reached by port I/O. The exit device takes a 32-bit [`ExitCode`] written to
//! [`port::EXIT`]. Devices that take a request (RTC, console output and input) take a 32-bit
//! guest-physical address of a request block written to their port; the VMM checks the
//! whole block lies in guest RAM, serves it and sets its status. Request blocks must
//! therefore live below 4 GiB (the kernel keeps them in its image).
//!
//! # Console
//! Output has two paths:
//! - [`port::CONSOLE_OUT`] takes a [`ConsoleWrite`]: up to [`CONSOLE_WRITE_MAX`] bytes,
//!   contiguous in guest-physical memory, for one of the VMM's own output streams
//!   ([`stream::STDOUT`] or [`stream::STDERR`]), in one VM exit. Programs' standard output
//!   and error go there, and so do the kernel's diagnostics (on the VMM's stderr). Each
//!   stream is written in request order and flushed before the port write completes.
//! - The 16550 UART at [`port::CONSOLE`] is the emergency output path (panics, fatal
//!   traps), one exit per byte; its output goes to the VMM's stderr.
//!
//! Input (the VMM's stdin) also has two paths, fed from one buffer in the VMM:
//! - [`port::CONSOLE_IN`] takes a [`ConsoleRead`]: the VMM copies up to
//!   [`ConsoleRead::capacity`] buffered bytes into guest memory in one VM exit, never
//!   waiting for more, and says how many bytes it still holds and whether its stdin has
//!   ended ([`read_flags::INPUT_ENDED`]). When a request finds nothing buffered and input
//!   has not ended, the VMM raises the console interrupt (IRQ 4) once, as soon as input
//!   arrives or ends, so the guest can halt until then.
//! - The UART's receive buffer, for guests that poll a plain 16550, with the end of input
//!   marked in its scratch register ([`console`]). The VMM feeds the UART only until the
//!   guest first uses [`port::CONSOLE_IN`]; from then on all input goes through the
//!   device (bytes the UART held and the guest had not read come first).
//!
//! Whether each of the VMM's stdin, stdout and stderr is a terminal, or another character
//! device (`/dev/null`), is in [`BootInfo::host_stdio`], so that a program sees a terminal
//! on its fd 0, 1 or 2 only when it would on the host, and a character device where the
//! host has one (programs such as ripgrep read a FIFO or file stdin, never a device).
//!
//! # Host directories
//! With `--volume`, the device table has a [`DeviceKind::HostFs`] entry: file operations
//! on host directories through [`port::HOSTFS`] (see [`hostfs`]).
//!
//! # Rootfs
//! The rootfs TAR file is mapped read-only into guest-physical memory at
//! [`BootInfo::rootfs_gpa`] ([`layout::ROOTFS_GPA`], above 4 GiB); writes to it exit to the VMM and are
//! refused.
#![no_std]
#![deny(missing_docs)]

use core::mem::{offset_of, size_of};

pub mod hostfs;
pub use hostfs::{HostFsAttr, HostFsRequest, HostFsTime, HOSTFS_IO_MAX};

/// Version of this contract. Bump on any change to a layout or port below.
pub const ABI_VERSION: u32 = 12;

/// `BootInfo::magic`: "ASTRABOO" little-endian.
pub const BOOT_MAGIC: u64 = u64::from_le_bytes(*b"ASTRABOO");

/// A guest-physical address.
#[repr(transparent)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GuestPhysAddr(pub u64);

/// The fixed guest-physical layout at boot, and the kernel's virtual layout.
pub mod layout {
    /// Boot GDT written by the VMM (null, 64-bit code 0x08, data 0x10).
    pub const BOOT_GDT_GPA: u64 = 0x500;
    /// The [`super::BootInfo`] block (one page).
    pub const BOOT_INFO_GPA: u64 = 0x7000;
    /// Kernel command line, NUL-terminated, at most [`CMDLINE_MAX`] bytes with the NUL.
    pub const CMDLINE_GPA: u64 = 0x8000;
    /// Capacity of the command-line page.
    pub const CMDLINE_MAX: u64 = 0x1000;
    /// Boot PML4; the next three pages hold the low PDPT, the high PDPT and one PD.
    pub const BOOT_PML4_GPA: u64 = 0xb000;
    /// Low PDPT of the boot page tables (identity map).
    pub const BOOT_PDPT_LOW_GPA: u64 = 0xc000;
    /// High PDPT of the boot page tables (kernel map).
    pub const BOOT_PDPT_HIGH_GPA: u64 = 0xd000;
    /// The PD mapping guest-physical 0..1 GiB with 2 MiB pages, shared by both maps.
    pub const BOOT_PD_GPA: u64 = 0xe000;
    /// Size of the region the boot page tables map.
    pub const BOOT_MAPPED_SIZE: u64 = 1 << 30;
    /// The init-arguments area: the init program's argv block, then its environment
    /// block, then its working directory (see [`super::BootInfo::init_argv_gpa`],
    /// [`super::BootInfo::init_envp_gpa`], [`super::BootInfo::init_cwd_gpa`]).
    pub const INIT_ARGS_GPA: u64 = 0x1_0000;
    /// Capacity of the init-arguments area (960 KiB: room for Linux-sized argument lists;
    /// the kernel's own limit is `ARG_MAX`, a quarter of the 8 MiB stack limit).
    pub const INIT_ARGS_MAX: u64 = LOW_RESERVED_END - INIT_ARGS_GPA;
    /// Everything below this is reserved for the VMM's boot structures.
    pub const LOW_RESERVED_END: u64 = 0x10_0000;
    /// Where the kernel image is loaded (physical).
    pub const KERNEL_PHYS_BASE: u64 = 0x20_0000;
    /// Virtual address of guest-physical 0 in the kernel's image mapping (-2 GiB).
    pub const KERNEL_VIRT_BASE: u64 = 0xffff_ffff_8000_0000;
    /// Virtual address of guest-physical 0 in the kernel's direct map of all memory.
    /// PML4 slot 472, inside the range PVM hosts leave to guests (the x86 KASAN shadow
    /// hole); the usual slot 256 is the host's own on PVM.
    pub const PHYS_MAP_BASE: u64 = 0xffff_ec00_0000_0000;
    /// Where the rootfs TAR is mapped: above the 4 GiB boundary, clear of RAM and of the
    /// LAPIC/IOAPIC window just below 4 GiB.
    pub const ROOTFS_GPA: u64 = 1 << 32;
    /// Smallest guest RAM the VMM accepts.
    pub const MEM_MIN: u64 = 16 << 20;
    /// Largest guest RAM the VMM accepts: RAM is one slot below the MMIO window at 3 GiB.
    pub const MEM_MAX: u64 = 3 << 30;
    /// Largest rootfs the VMM maps.
    pub const ROOTFS_MAX: u64 = 64 << 30;
}

/// I/O port numbers.
pub mod port {
    /// 16550 UART (COM1), 8 registers.
    pub const CONSOLE: u16 = 0x3f8;
    /// Exit device: a 32-bit write of an [`super::ExitCode`] ends the VM.
    pub const EXIT: u16 = 0x501;
    /// RTC device: a 32-bit write of the GPA of an [`super::RtcRequest`].
    pub const RTC: u16 = 0x502;
    /// Console output: a 32-bit write of the GPA of a [`super::ConsoleWrite`].
    pub const CONSOLE_OUT: u16 = 0x503;
    /// Console input: a 32-bit write of the GPA of a [`super::ConsoleRead`].
    pub const CONSOLE_IN: u16 = 0x504;
    /// Debug device (only under `astra-vmm --gdb`): a 32-bit write of the GPA of a
    /// [`super::DebugRequest`]; the write returns when the debugger resumes the guest.
    pub const DEBUG: u16 = 0x505;
    /// Host file-system device: a 32-bit write of the GPA of a
    /// [`super::HostFsRequest`] (see [`super::hostfs`]).
    pub const HOSTFS: u16 = 0x506;
    /// Terminal signals: a 32-bit read returns, and clears, the signals the host asked
    /// the guest's terminal to raise since the last read (bit `n - 1` for signal `n`; see
    /// [`super::tty_signal`]). The VMM raises the console interrupt (IRQ 4) when it adds
    /// one. A 32-bit write of a signal number hands that signal back: the host takes it
    /// itself (a Ctrl-Z the guest has no job control for suspends astra-vmm).
    pub const TTY_SIGNAL: u16 = 0x507;
}

/// Terminal signals from the host ([`port::TTY_SIGNAL`]).
///
/// The host's terminal stays in cooked mode, so its Ctrl-C, Ctrl-\ and Ctrl-Z reach the
/// VMM as SIGINT, SIGQUIT and SIGTSTP, not as bytes. The VMM hands them to the guest, whose kernel sends
/// them to its terminal's foreground process group, as a tty's line discipline does.
pub mod tty_signal {
    /// SIGINT (Ctrl-C).
    pub const SIGINT: u32 = 2;
    /// SIGQUIT (Ctrl-\).
    pub const SIGQUIT: u32 = 3;
    /// SIGTSTP (Ctrl-Z): the guest's job control stops its foreground job; without job
    /// control in the guest (the foreground group is init's) the kernel hands it back and
    /// astra-vmm suspends itself, as the host's shell expects of a program it runs.
    pub const SIGTSTP: u32 = 20;

    /// The bit for `signal` in a [`super::port::TTY_SIGNAL`] read (`None` outside 1..=32).
    pub const fn bit(signal: u32) -> Option<u32> {
        if signal >= 1 && signal <= 32 {
            Some(1 << (signal - 1))
        } else {
            None
        }
    }

    /// The signals in `mask`, lowest first.
    pub fn signals(mask: u32) -> impl Iterator<Item = u32> {
        (1..=32).filter(move |&s| mask & (1 << (s - 1)) != 0)
    }
}

/// The console UART's one convention beyond a plain 16550: end of input.
///
/// A 16550 has no way to say "no more input". Once the host's input (the VMM's stdin) has
/// ended and all of it was queued in the UART (never, once the guest uses
/// [`port::CONSOLE_IN`]), the VMM sets the UART's scratch register to
/// [`console::SCR_INPUT_ENDED`]; a guest that finds the receive buffer empty and this value
/// there sees end of file. The guest never writes the scratch register.
pub mod console {
    /// Offset of the scratch register (SCR) from [`super::port::CONSOLE`].
    pub const SCR_OFFSET: u16 = 7;
    /// Scratch-register value meaning "input has ended".
    pub const SCR_INPUT_ENDED: u8 = 0xe0;
}

/// Kinds of entries in [`BootInfo::mem_regions`].
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemKind {
    /// RAM the kernel may use (minus its own image).
    Usable = 1,
    /// RAM holding boot structures, not to be allocated.
    Reserved = 2,
}

/// One range of guest-physical memory.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemRegion {
    /// Start of the range.
    pub base: GuestPhysAddr,
    /// Length in bytes.
    pub size: u64,
    /// A [`MemKind`] value.
    pub kind: u32,
    /// Explicit padding, zero.
    pub _pad: u32,
}

/// Kinds of entries in [`BootInfo::devices`].
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceKind {
    /// 16550 UART at `port`.
    Console = 1,
    /// Exit device at `port`.
    Exit = 2,
    /// RTC at `port`.
    Rtc = 3,
    /// Read-only rootfs TAR mapped at `gpa`, `size` bytes.
    Rootfs = 4,
    /// Batched console output at `port` ([`ConsoleWrite`] requests).
    ConsoleOut = 5,
    /// Batched console input at `port` ([`ConsoleRead`] requests).
    ConsoleIn = 6,
    /// Host file-system device at `port` ([`HostFsRequest`]s); `size` is the number of
    /// volumes.
    HostFs = 7,
}

/// One device the VMM provides.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeviceEntry {
    /// Guest-physical address of the device's memory, or 0.
    pub gpa: GuestPhysAddr,
    /// Size of that memory in bytes, or 0.
    pub size: u64,
    /// A [`DeviceKind`] value.
    pub kind: u32,
    /// I/O port of the device, or 0.
    pub port: u16,
    /// Explicit padding, zero.
    pub _pad: u16,
}

/// Capacity of [`BootInfo::mem_regions`].
pub const MAX_MEM_REGIONS: usize = 8;
/// Capacity of [`BootInfo::devices`].
pub const MAX_DEVICES: usize = 8;

/// What the VMM tells the kernel at boot; at [`layout::BOOT_INFO_GPA`], address in `rdi`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BootInfo {
    /// [`BOOT_MAGIC`].
    pub magic: u64,
    /// GPA of the NUL-terminated kernel command line.
    pub cmdline_gpa: GuestPhysAddr,
    /// Length of the command line without the NUL.
    pub cmdline_len: u64,
    /// GPA of the init argv block (NUL-terminated strings back to back).
    pub init_argv_gpa: GuestPhysAddr,
    /// Length of the argv block in bytes, including every NUL.
    pub init_argv_len: u64,
    /// GPA of the mapped rootfs TAR, or 0 if there is none.
    pub rootfs_gpa: GuestPhysAddr,
    /// Size of the rootfs TAR in bytes (the mapping is rounded up to a page).
    pub rootfs_size: u64,
    /// TSC frequency in kHz from `KVM_GET_TSC_KHZ`, 0 if unknown.
    pub tsc_khz: u64,
    /// Total guest RAM in bytes.
    pub mem_size: u64,
    /// Used entries of `mem_regions`.
    pub mem_region_count: u32,
    /// Used entries of `devices`.
    pub device_count: u32,
    /// [`ABI_VERSION`] of the VMM that wrote this.
    pub abi_version: u32,
    /// [`host_stdio`] bits: which of the VMM's standard streams are terminals, and which are
    /// other character devices.
    pub host_stdio: u32,
    /// The guest-physical memory map.
    pub mem_regions: [MemRegion; MAX_MEM_REGIONS],
    /// The device table.
    pub devices: [DeviceEntry; MAX_DEVICES],
    /// GPA of the init environment block (`KEY=VALUE` strings, each NUL-terminated, back
    /// to back), in the init-arguments area; what the VMM writes is the whole
    /// environment (an empty block is an empty environment).
    pub init_envp_gpa: GuestPhysAddr,
    /// Length of the environment block in bytes, including every NUL.
    pub init_envp_len: u64,
    /// GPA of the init program's working directory (an absolute path, no NUL), in the
    /// init-arguments area; length 0 means `/`.
    pub init_cwd_gpa: GuestPhysAddr,
    /// Length of the working directory in bytes.
    pub init_cwd_len: u64,
    /// Written by the kernel (under `astra.stats`), read by the VMM when a run ends
    /// without the program ending (timeout, signal): GPA of the kernel's system-call
    /// counters, [`STATS_COUNTER_SIZE`]-byte [`StatsCounter`]s, slot `n` for call `n`.
    pub stats_counters_gpa: GuestPhysAddr,
    /// Written by the kernel: GPA of the counters' names, NUL-terminated, slot order.
    pub stats_names_gpa: GuestPhysAddr,
    /// Written by the kernel: length of the names in bytes.
    pub stats_names_len: u64,
    /// Written by the kernel: number of counters (at most [`STATS_COUNTERS_MAX`]); 0 when
    /// the kernel does not count.
    pub stats_count: u32,
    /// Explicit padding, zero.
    pub _pad_stats: u32,
}

/// One system-call counter of the kernel (see [`BootInfo::stats_counters_gpa`]).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StatsCounter {
    /// Calls made.
    pub calls: u64,
    /// Calls that failed.
    pub errors: u64,
    /// Nanoseconds spent in the handler.
    pub time_ns: u64,
}

/// Size of a [`StatsCounter`].
pub const STATS_COUNTER_SIZE: u64 = 24;
/// Most counters the VMM reads.
pub const STATS_COUNTERS_MAX: u32 = 1024;
/// Longest names block the VMM reads.
pub const STATS_NAMES_MAX: u64 = 32 << 10;

impl BootInfo {
    /// The device of `kind`, if the VMM provides one.
    pub fn device(&self, kind: DeviceKind) -> Option<&DeviceEntry> {
        let count = (self.device_count as usize).min(MAX_DEVICES);
        self.devices[..count].iter().find(|d| d.kind == kind as u32)
    }

    /// The used memory regions.
    pub fn regions(&self) -> &[MemRegion] {
        let count = (self.mem_region_count as usize).min(MAX_MEM_REGIONS);
        &self.mem_regions[..count]
    }

    /// Whether the VMM's standard stream `fd` (0, 1 or 2) is a terminal; false for any
    /// other number.
    pub const fn host_stream_is_terminal(&self, fd: u32) -> bool {
        host_stdio::is_terminal(self.host_stdio, fd)
    }
}

/// Bits of [`BootInfo::host_stdio`]: bit `fd` is set when the VMM's file descriptor `fd`
/// (0, 1 or 2) is a terminal; bit `3 + fd` when it is a character device that is not a
/// terminal (`/dev/null`). A stream with neither bit is a pipe, socket or file.
pub mod host_stdio {
    /// The VMM's stdin is a terminal.
    pub const STDIN_TERMINAL: u32 = 1 << 0;
    /// The VMM's stdout is a terminal.
    pub const STDOUT_TERMINAL: u32 = 1 << 1;
    /// The VMM's stderr is a terminal.
    pub const STDERR_TERMINAL: u32 = 1 << 2;
    /// The terminal bits.
    pub const TERMINALS: u32 = STDIN_TERMINAL | STDOUT_TERMINAL | STDERR_TERMINAL;
    /// The VMM's stdin is a character device, not a terminal.
    pub const STDIN_CHAR_DEVICE: u32 = 1 << 3;
    /// The VMM's stdout is a character device, not a terminal.
    pub const STDOUT_CHAR_DEVICE: u32 = 1 << 4;
    /// The VMM's stderr is a character device, not a terminal.
    pub const STDERR_CHAR_DEVICE: u32 = 1 << 5;
    /// The character-device bits.
    pub const CHAR_DEVICES: u32 = STDIN_CHAR_DEVICE | STDOUT_CHAR_DEVICE | STDERR_CHAR_DEVICE;
    /// Every defined bit.
    pub const ALL: u32 = TERMINALS | CHAR_DEVICES;

    /// What one of the VMM's standard streams is.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum StreamKind {
        /// A terminal.
        Terminal,
        /// A character device that is not a terminal (`/dev/null`).
        CharDevice,
        /// Anything else: a pipe, a socket or a regular file.
        Stream,
    }

    /// The bits for three streams, stdin first.
    pub const fn encode(kinds: [StreamKind; 3]) -> u32 {
        let mut bits = 0;
        let mut fd = 0;
        while fd < 3 {
            bits |= match kinds[fd] {
                StreamKind::Terminal => 1 << fd,
                StreamKind::CharDevice => 1 << (3 + fd),
                StreamKind::Stream => 0,
            };
            fd += 1;
        }
        bits
    }

    /// What `flags` says stream `fd` is; `None` for `fd` > 2. A terminal bit wins over a
    /// character-device bit.
    pub const fn kind(flags: u32, fd: u32) -> Option<StreamKind> {
        if fd >= 3 {
            None
        } else if flags & (1 << fd) != 0 {
            Some(StreamKind::Terminal)
        } else if flags & (1 << (3 + fd)) != 0 {
            Some(StreamKind::CharDevice)
        } else {
            Some(StreamKind::Stream)
        }
    }

    /// Whether `flags` says stream `fd` is a terminal (false for `fd` > 2).
    pub const fn is_terminal(flags: u32, fd: u32) -> bool {
        fd < 3 && flags & TERMINALS & (1 << fd) != 0
    }
}

/// How the guest ended, as written to [`port::EXIT`].
///
/// Bits 0-7: the status; bits 8-15: an [`ExitKind`]. Everything else is zero.
#[repr(transparent)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExitCode(pub u32);

/// The reason part of an [`ExitCode`].
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitKind {
    /// The init program ended; the status is its shell-style status (128+N for signal N).
    Program = 0,
    /// The kernel panicked or took an unrecoverable exception; the status is unused.
    KernelPanic = 1,
    /// The kernel could not mount the rootfs the VMM gave it (it printed why, e.g. not
    /// enough kernel memory for its entries); the status is unused. The VMM reports a
    /// configuration error.
    RootfsRefused = 2,
}

impl ExitCode {
    /// Encodes a kind and status.
    pub const fn new(kind: ExitKind, status: u8) -> Self {
        ExitCode(((kind as u32) << 8) | status as u32)
    }

    /// The kind, or `None` for an unknown value (a hostile or broken guest).
    pub const fn kind(self) -> Option<ExitKind> {
        if self.0 >> 16 != 0 {
            return None;
        }
        match (self.0 >> 8) & 0xff {
            0 => Some(ExitKind::Program),
            1 => Some(ExitKind::KernelPanic),
            2 => Some(ExitKind::RootfsRefused),
            _ => None,
        }
    }

    /// The status byte.
    pub const fn status(self) -> u8 {
        (self.0 & 0xff) as u8
    }
}

/// Request status values written by the VMM.
pub mod status {
    /// Not yet handled (the guest sets this before ringing).
    pub const PENDING: u32 = 0;
    /// Done.
    pub const OK: u32 = 1;
    /// The request was malformed.
    pub const INVALID: u32 = 2;
    /// The request was valid but the host could not carry it out (e.g. its output is
    /// closed or full). For a [`super::ConsoleWrite`], its `error` field says why.
    pub const IO_ERROR: u32 = 3;
}

/// RTC request block: the VMM fills in the host's wall-clock time.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RtcRequest {
    /// Nanoseconds since the Unix epoch (UTC), written by the VMM.
    pub unix_time_ns: u64,
    /// A [`status`] value, written by the VMM.
    pub status: u32,
    /// Explicit padding, zero.
    pub _pad: u32,
}

/// Output streams of a [`ConsoleWrite`]: the VMM's own file descriptors.
pub mod stream {
    /// The VMM's standard output: programs' standard output.
    pub const STDOUT: u32 = 1;
    /// The VMM's standard error: programs' standard error and kernel diagnostics.
    pub const STDERR: u32 = 2;
    /// The kernel's `--strace` lines: the VMM writes them to `--strace-file`, or to its
    /// standard error without one.
    pub const TRACE: u32 = 3;
    /// The kernel's `--stats` system-call table (text, `strace -c`'s format), sent when
    /// the program ends: the VMM prints it on its standard error under `--stats` and
    /// reads it for `--stats-json`.
    pub const STATS: u32 = 4;
}

/// Largest [`ConsoleWrite::len`] the VMM accepts; longer requests are [`status::INVALID`].
pub const CONSOLE_WRITE_MAX: u32 = 64 << 10;

/// Console output request: the VMM writes `len` bytes at `data_gpa` to `stream`.
///
/// The block must be 8-byte aligned and lie in guest RAM, the data must lie in guest RAM
/// (any alignment), `stream` must be a [`stream`] value and `len` at most
/// [`CONSOLE_WRITE_MAX`]; otherwise nothing is written and the status is
/// [`status::INVALID`]. The guest sets `status` to [`status::PENDING`] and `error` to 0
/// before ringing. When the host's write fails, the status is [`status::IO_ERROR`] and
/// `error` the host's Linux errno (`EPIPE` when the reader of the VMM's stdout is gone,
/// `ENOSPC`, `EIO`...), so the kernel can fail the program's `write` as Linux would; some of
/// the bytes may have been written.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConsoleWrite {
    /// Guest-physical address of the bytes.
    pub data_gpa: GuestPhysAddr,
    /// Number of bytes.
    pub len: u32,
    /// A [`stream`] value.
    pub stream: u32,
    /// A [`status`] value, written by the VMM.
    pub status: u32,
    /// With [`status::IO_ERROR`], the errno of the host's failed write (written by the
    /// VMM); 0 otherwise.
    pub error: u32,
}

/// Flags of [`ConsoleRead::flags`].
pub mod read_flags {
    /// The VMM's stdin has ended and every byte of it was delivered: this request and all
    /// later ones read nothing (end of file).
    pub const INPUT_ENDED: u32 = 1 << 0;
}

/// Console input request: the VMM moves up to `capacity` bytes of its buffered stdin to
/// guest memory at `data_gpa` and fills in the output fields. It never waits for input:
/// `count` is 0 when nothing is buffered.
///
/// The block must be 8-byte aligned and lie in guest RAM, and the whole of
/// `data_gpa..data_gpa + capacity` must lie in guest RAM (any alignment, any capacity;
/// 0 asks for the counts without moving anything); otherwise nothing is taken and only
/// `status` is written, [`status::INVALID`] (if it lies in RAM). The guest sets `status` to
/// [`status::PENDING`] before ringing [`port::CONSOLE_IN`].
///
/// When a valid request finds nothing buffered and input has not ended, the VMM raises the
/// console interrupt (IRQ 4) once, when input next arrives or ends.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConsoleRead {
    /// Guest-physical address of the destination.
    pub data_gpa: GuestPhysAddr,
    /// Size of the destination in bytes.
    pub capacity: u32,
    /// Bytes written at `data_gpa`, by the VMM (at most `capacity`).
    pub count: u32,
    /// Bytes still buffered in the VMM after this request, by the VMM.
    pub pending: u32,
    /// A [`status`] value, written by the VMM.
    pub status: u32,
    /// [`read_flags`] bits, written by the VMM.
    pub flags: u32,
    /// Explicit padding, zero.
    pub _pad: u32,
}

/// The ELF note through which the kernel states the ABI it speaks.
///
/// Section `.note.astra`, note name `"astra\0"` (namesz 6, padded to 8), type
/// [`note::TYPE_ABI_VERSION`], descriptor a little-endian `u32` [`ABI_VERSION`].
pub mod note {
    /// Section name.
    pub const SECTION: &str = ".note.astra";
    /// Note owner name, NUL included.
    pub const NAME: &[u8; 6] = b"astra\0";
    /// Note type of the ABI version note.
    pub const TYPE_ABI_VERSION: u32 = 0x4153_0001;
}

const _: () = {
    assert!(size_of::<GuestPhysAddr>() == 8);
    assert!(size_of::<MemRegion>() == 24);
    assert!(offset_of!(MemRegion, size) == 8);
    assert!(offset_of!(MemRegion, kind) == 16);
    assert!(size_of::<DeviceEntry>() == 24);
    assert!(offset_of!(DeviceEntry, size) == 8);
    assert!(offset_of!(DeviceEntry, kind) == 16);
    assert!(offset_of!(DeviceEntry, port) == 20);
    assert!(offset_of!(BootInfo, cmdline_gpa) == 8);
    assert!(offset_of!(BootInfo, rootfs_gpa) == 40);
    assert!(offset_of!(BootInfo, tsc_khz) == 56);
    assert!(offset_of!(BootInfo, mem_region_count) == 72);
    assert!(offset_of!(BootInfo, abi_version) == 80);
    assert!(offset_of!(BootInfo, host_stdio) == 84);
    assert!(offset_of!(BootInfo, mem_regions) == 88);
    assert!(offset_of!(BootInfo, devices) == 88 + 24 * MAX_MEM_REGIONS);
    assert!(offset_of!(BootInfo, init_envp_gpa) == 88 + 24 * (MAX_MEM_REGIONS + MAX_DEVICES));
    assert!(offset_of!(BootInfo, init_envp_len) == offset_of!(BootInfo, init_envp_gpa) + 8);
    assert!(offset_of!(BootInfo, init_cwd_gpa) == offset_of!(BootInfo, init_envp_gpa) + 16);
    assert!(offset_of!(BootInfo, init_cwd_len) == offset_of!(BootInfo, init_envp_gpa) + 24);
    assert!(offset_of!(BootInfo, stats_counters_gpa) == offset_of!(BootInfo, init_envp_gpa) + 32);
    assert!(offset_of!(BootInfo, stats_names_gpa) == offset_of!(BootInfo, init_envp_gpa) + 40);
    assert!(offset_of!(BootInfo, stats_names_len) == offset_of!(BootInfo, init_envp_gpa) + 48);
    assert!(offset_of!(BootInfo, stats_count) == offset_of!(BootInfo, init_envp_gpa) + 56);
    assert!(size_of::<BootInfo>() == 88 + 24 * (MAX_MEM_REGIONS + MAX_DEVICES) + 64);
    assert!(size_of::<StatsCounter>() as u64 == STATS_COUNTER_SIZE);
    assert!(offset_of!(StatsCounter, errors) == 8);
    assert!(offset_of!(StatsCounter, time_ns) == 16);
    assert!(layout::INIT_ARGS_GPA >= layout::BOOT_PD_GPA + 0x1000);
    assert!(layout::INIT_ARGS_GPA + layout::INIT_ARGS_MAX <= layout::LOW_RESERVED_END);
    assert!(layout::INIT_ARGS_MAX >= 128 * 1024);
    assert!((size_of::<BootInfo>() as u64) <= layout::CMDLINE_GPA - layout::BOOT_INFO_GPA);
    assert!(size_of::<RtcRequest>() == 16);
    assert!(size_of::<ConsoleWrite>() == 24);
    assert!(offset_of!(ConsoleWrite, data_gpa) == 0);
    assert!(offset_of!(ConsoleWrite, len) == 8);
    assert!(offset_of!(ConsoleWrite, stream) == 12);
    assert!(offset_of!(ConsoleWrite, status) == 16);
    assert!(offset_of!(ConsoleWrite, error) == 20);
    assert!(CONSOLE_WRITE_MAX >= 4096);
    assert!(size_of::<ConsoleRead>() == 32);
    assert!(offset_of!(ConsoleRead, data_gpa) == 0);
    assert!(offset_of!(ConsoleRead, capacity) == 8);
    assert!(offset_of!(ConsoleRead, count) == 12);
    assert!(offset_of!(ConsoleRead, pending) == 16);
    assert!(offset_of!(ConsoleRead, status) == 20);
    assert!(offset_of!(ConsoleRead, flags) == 24);
    assert!(layout::MEM_MAX < layout::ROOTFS_GPA);
    assert!(size_of::<ExitCode>() == 4);
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_code_round_trips() {
        let code = ExitCode::new(ExitKind::Program, 139);
        assert_eq!(code.kind(), Some(ExitKind::Program));
        assert_eq!(code.status(), 139);
        assert_eq!(
            ExitCode::new(ExitKind::KernelPanic, 0).kind(),
            Some(ExitKind::KernelPanic)
        );
        assert_eq!(
            ExitCode::new(ExitKind::RootfsRefused, 0).kind(),
            Some(ExitKind::RootfsRefused)
        );
        assert_eq!(ExitCode(0x0300).kind(), None);
        assert_eq!(ExitCode(0x1_0000).kind(), None);
    }

    #[test]
    fn console_write_layout_is_the_documented_one() {
        let req = ConsoleWrite {
            data_gpa: GuestPhysAddr(0x1122_3344_5566_7788),
            len: 0x99aa_bbcc,
            stream: stream::STDERR,
            status: status::IO_ERROR,
            error: 32,
        };
        // SAFETY: ConsoleWrite is repr(C) plain integers without padding bytes (the size
        // assertion above), so all 24 bytes are initialised.
        let bytes: [u8; 24] = unsafe { core::mem::transmute(req) };
        assert_eq!(&bytes[..8], &0x1122_3344_5566_7788u64.to_le_bytes());
        assert_eq!(&bytes[8..12], &0x99aa_bbccu32.to_le_bytes());
        assert_eq!(&bytes[12..16], &2u32.to_le_bytes());
        assert_eq!(&bytes[16..20], &3u32.to_le_bytes());
        assert_eq!(&bytes[20..], &32u32.to_le_bytes());
    }

    #[test]
    fn console_read_layout_is_the_documented_one() {
        let req = ConsoleRead {
            data_gpa: GuestPhysAddr(0x0102_0304_0506_0708),
            capacity: 0x1000,
            count: 0x20,
            pending: 0x30,
            status: status::OK,
            flags: read_flags::INPUT_ENDED,
            _pad: 0,
        };
        // SAFETY: ConsoleRead is repr(C) plain integers without padding bytes (the size
        // assertion above), so all 32 bytes are initialised.
        let bytes: [u8; 32] = unsafe { core::mem::transmute(req) };
        assert_eq!(&bytes[..8], &0x0102_0304_0506_0708u64.to_le_bytes());
        assert_eq!(&bytes[8..12], &0x1000u32.to_le_bytes());
        assert_eq!(&bytes[12..16], &0x20u32.to_le_bytes());
        assert_eq!(&bytes[16..20], &0x30u32.to_le_bytes());
        assert_eq!(&bytes[20..24], &1u32.to_le_bytes());
        assert_eq!(&bytes[24..28], &1u32.to_le_bytes());
        assert_eq!(&bytes[28..], &[0; 4]);
        // The ports stay distinct.
        let ports = [
            port::EXIT,
            port::RTC,
            port::CONSOLE_OUT,
            port::CONSOLE_IN,
            port::DEBUG,
            port::HOSTFS,
        ];
        for (i, a) in ports.iter().enumerate() {
            assert!(ports[i + 1..].iter().all(|b| a != b));
            assert!(!(port::CONSOLE..port::CONSOLE + 8).contains(a));
        }
    }

    #[test]
    fn host_stdio_bits_are_one_per_stream() {
        use host_stdio::StreamKind::{CharDevice, Stream, Terminal};
        use host_stdio::*;
        assert_eq!(encode([Stream; 3]), 0);
        assert_eq!(encode([Terminal, Stream, Stream]), STDIN_TERMINAL);
        assert_eq!(encode([Stream, Terminal, Stream]), STDOUT_TERMINAL);
        assert_eq!(encode([Stream, Stream, Terminal]), STDERR_TERMINAL);
        assert_eq!(encode([Terminal; 3]), TERMINALS);
        assert_eq!(encode([CharDevice; 3]), CHAR_DEVICES);
        assert_eq!(
            encode([CharDevice, Stream, Terminal]),
            STDIN_CHAR_DEVICE | STDERR_TERMINAL
        );
        assert_eq!((TERMINALS, ALL), (0b111, 0b111_111));
        let all = [Terminal, CharDevice, Stream];
        for a in all {
            for b in all {
                for c in all {
                    let bits = encode([a, b, c]);
                    assert_eq!([0, 1, 2].map(|fd| kind(bits, fd).unwrap()), [a, b, c]);
                    assert_eq!(
                        [0, 1, 2].map(|fd| is_terminal(bits, fd)),
                        [a, b, c].map(|k| k == Terminal)
                    );
                }
            }
        }
        // A terminal bit wins; undefined bits and numbers mean nothing.
        assert_eq!(kind(STDIN_TERMINAL | STDIN_CHAR_DEVICE, 0), Some(Terminal));
        assert_eq!(kind(u32::MAX, 3), None);
        assert!(!is_terminal(u32::MAX, 3) && !is_terminal(u32::MAX, u32::MAX));
        assert!(!is_terminal(!TERMINALS, 0));
        let info = BootInfo {
            host_stdio: STDOUT_TERMINAL,
            ..Default::default()
        };
        assert!(!info.host_stream_is_terminal(0) && info.host_stream_is_terminal(1));
        // The field sits where the padding after `abi_version` was.
        // SAFETY: BootInfo is repr(C) plain integers without padding bytes (the size
        // assertions above), so every byte is initialised.
        let bytes: [u8; size_of::<BootInfo>()] = unsafe { core::mem::transmute(info) };
        assert_eq!(&bytes[84..88], &2u32.to_le_bytes());
    }

    #[test]
    fn device_lookup_ignores_unused_slots() {
        let mut info = BootInfo::default();
        info.devices[1] = DeviceEntry {
            kind: DeviceKind::Rtc as u32,
            port: port::RTC,
            ..Default::default()
        };
        info.device_count = 1;
        assert!(info.device(DeviceKind::Rtc).is_none());
        info.device_count = 2;
        assert_eq!(
            info.device(DeviceKind::Rtc).map(|d| d.port),
            Some(port::RTC)
        );
    }
}

/// The cooperative debug path (`astra-vmm --gdb`): the kernel reports debug events through
/// [`port::DEBUG`] and waits there until the debugger resumes it.
pub mod debug {
    /// Kernel parameter the VMM adds under `--gdb`: a debugger is attached.
    pub const CMDLINE_PARAM: &str = "astra.gdb";
    /// The kernel's trap entry works: breakpoints in the kernel may be planted from now
    /// on. `args`: the kernel's own page-table root, then the start and end of the code
    /// that must not be broken into (the trap entry and the debug path). `dr6` is 1 if a
    /// write watchpoint the kernel set on itself fired (the debug registers work here).
    pub const EVENT_READY: u32 = 1;
    /// A breakpoint trap (#BP); `regs.rip` is after the `int3`.
    pub const EVENT_BREAKPOINT: u32 = 2;
    /// A debug trap (#DB): single step or a debug register; `dr6` says which.
    pub const EVENT_DEBUG: u32 = 3;
    /// A program was loaded and is about to start: its code pages are present. `args`:
    /// the load bias (0 for ET_EXEC), the entry point.
    pub const EVENT_PROGRAM_LOADED: u32 = 4;
    /// The kernel's thread table is at guest-physical `args[0]`: a [`super::DebugThreads`]
    /// header followed by `args[1]` [`super::DebugThread`] slots. The kernel keeps it up to
    /// date while a debugger is attached (at every task switch, spawn, exit and exec), so
    /// the debugger reads it at any stop.
    pub const EVENT_THREADS: u32 = 5;
    /// Most slots of the thread table; threads past it are not listed.
    pub const THREADS_MAX: u32 = 256;
    /// [`super::DebugRequest::resume`]: execute one instruction, then report
    /// [`EVENT_DEBUG`] (the trap flag; interrupts stay masked meanwhile).
    pub const RESUME_STEP: u32 = 1 << 0;
    /// [`super::DebugRequest::resume`]: load `dr[0..4]` and `dr7` into the debug
    /// registers.
    pub const RESUME_SET_DEBUG_REGS: u32 = 1 << 1;
}

/// The register state a debug event reports and the debugger may change.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct DebugRegs {
    pub rax: u64,
    pub rbx: u64,
    pub rcx: u64,
    pub rdx: u64,
    pub rsi: u64,
    pub rdi: u64,
    pub rbp: u64,
    pub rsp: u64,
    pub r8: u64,
    pub r9: u64,
    pub r10: u64,
    pub r11: u64,
    pub r12: u64,
    pub r13: u64,
    pub r14: u64,
    pub r15: u64,
    pub rip: u64,
    pub rflags: u64,
    pub cs: u64,
    pub ss: u64,
    pub fs_base: u64,
    pub gs_base: u64,
    /// The page-table root the interrupted code ran on (read-only for the debugger).
    pub cr3: u64,
}

/// The thread table's header (see [`debug::EVENT_THREADS`]).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DebugThreads {
    /// The thread on the CPU (0: none, the kernel idles or boots).
    pub current: u32,
    /// Slots in use, from the first.
    pub count: u32,
}

/// A thread in the table: where its user-mode registers are while it is off the CPU.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DebugThread {
    /// Thread id.
    pub tid: u32,
    /// Process id.
    pub pid: u32,
    /// Kernel virtual address of its saved user-mode registers, a [`DebugUserFrame`] (0:
    /// none).
    pub frame: u64,
    /// Its page-table root (both halves), for its memory.
    pub cr3: u64,
    /// FS base.
    pub fs_base: u64,
    /// GS base.
    pub gs_base: u64,
}

/// The user-mode registers the kernel saves for a thread off the CPU, in this order.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct DebugUserFrame {
    pub rax: u64,
    pub rbx: u64,
    pub rcx: u64,
    pub rdx: u64,
    pub rsi: u64,
    pub rdi: u64,
    pub rbp: u64,
    pub r8: u64,
    pub r9: u64,
    pub r10: u64,
    pub r11: u64,
    pub r12: u64,
    pub r13: u64,
    pub r14: u64,
    pub r15: u64,
    /// The kernel's own trap bookkeeping.
    pub vector: u64,
    pub error_code: u64,
    pub rip: u64,
    pub cs: u64,
    pub rflags: u64,
    pub rsp: u64,
    pub ss: u64,
}

const _: () = {
    assert!(size_of::<DebugThreads>() == 8);
    assert!(size_of::<DebugThread>() == 40);
    assert!(offset_of!(DebugThread, frame) == 8);
    assert!(offset_of!(DebugThread, gs_base) == 32);
    assert!(size_of::<DebugUserFrame>() == 22 * 8);
    assert!(offset_of!(DebugUserFrame, rip) == 17 * 8);
};

/// Debug request block: the kernel fills in an event and the registers, rings
/// [`port::DEBUG`], and when the write returns applies `regs` (changed by the debugger),
/// `resume` and, if asked, the debug registers. The VMM ignores malformed blocks.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DebugRequest {
    /// Registers of the interrupted code, in and out.
    pub regs: DebugRegs,
    /// Event arguments (see the [`debug`] events).
    pub args: [u64; 3],
    /// DR0-DR3, written by the VMM.
    pub dr: [u64; 4],
    /// DR6 at the event (written by the kernel).
    pub dr6: u64,
    /// DR7, written by the VMM.
    pub dr7: u64,
    /// A [`debug`] event, written by the kernel.
    pub event: u32,
    /// [`debug`] `RESUME_*` flags, written by the VMM.
    pub resume: u32,
}

const _: () = {
    assert!(size_of::<DebugRegs>() == 23 * 8);
    assert!(size_of::<DebugRequest>() == 23 * 8 + 3 * 8 + 4 * 8 + 16 + 8);
    assert!(offset_of!(DebugRequest, args) == 23 * 8);
    assert!(offset_of!(DebugRequest, dr) == 26 * 8);
    assert!(offset_of!(DebugRequest, dr6) == 30 * 8);
    assert!(offset_of!(DebugRequest, event) == 32 * 8);
    assert!(offset_of!(DebugRequest, resume) == 32 * 8 + 4);
};

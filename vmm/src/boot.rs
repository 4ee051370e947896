//! The boot protocol's data in guest memory: the [`BootInfo`] block, the command line, the
//! init argv, the boot GDT and the boot page tables (see [`hypercall_abi`]'s crate docs).

use hypercall_abi::host_stdio::StreamKind;
use hypercall_abi::layout::{
    BOOT_GDT_GPA, BOOT_INFO_GPA, CMDLINE_GPA, INIT_ARGS_GPA, LOW_RESERVED_END,
};
use hypercall_abi::{
    host_stdio, port, BootInfo, DeviceEntry, DeviceKind, GuestPhysAddr, MemKind, MemRegion,
    ABI_VERSION, BOOT_MAGIC,
};
use vm_memory::{ByteValued, Bytes, GuestAddress, GuestMemoryMmap};

use crate::arch::x86_64::gdt::BOOT_GDT;
use crate::arch::x86_64::paging::{BootPageTables, PagingError};
use crate::init_args::InitArgs;

/// Errors writing the boot data.
#[derive(Debug, thiserror::Error)]
pub enum BootError {
    /// A structure does not fit guest RAM.
    #[error("Cannot write the {0} to guest memory")]
    Write(&'static str, #[source] vm_memory::GuestMemoryError),
    /// The page tables do not fit guest RAM.
    #[error(transparent)]
    Paging(#[from] PagingError),
}

/// [`BootInfo`] as vm-memory sees it.
#[derive(Clone, Copy, Debug, Default)]
#[repr(transparent)]
struct BootInfoBytes(BootInfo);

// SAFETY: `BootInfo` is `repr(C)`, made only of integers (and arrays of `repr(C)` integer
// structs) with explicit padding fields, as the ABI crate's size/offset asserts check; so
// every bit pattern is valid and it has no implicit padding.
unsafe impl ByteValued for BootInfoBytes {}

/// What the boot info describes besides the constants.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BootParams {
    /// Guest RAM in bytes.
    pub mem_size: u64,
    /// Command-line length without the NUL.
    pub cmdline_len: u64,
    /// `(gpa, length)` of init's argv block, environment block and working directory
    /// ([`InitArgs::placement`]).
    pub init: [(u64, u64); 3],
    /// `(gpa, file size)` of the rootfs.
    pub rootfs: Option<(u64, u64)>,
    /// TSC frequency, 0 if unknown.
    pub tsc_khz: u64,
    /// What the VMM's stdin, stdout and stderr are: terminals, other character devices or
    /// streams ([`host_stdio`] bits).
    pub host_stdio: u32,
    /// Number of `--volume` directories (a host file-system device when non-zero).
    pub volumes: u32,
}

/// The [`host_stdio`] bits for this process's standard streams, asking `kind_of` about
/// descriptors 0, 1 and 2.
pub fn host_stdio_flags(mut kind_of: impl FnMut(i32) -> StreamKind) -> u32 {
    host_stdio::encode([kind_of(0), kind_of(1), kind_of(2)])
}

/// What the VMM's own descriptor `fd` is: a terminal, another character device (the
/// `/dev/null` a harness or `< /dev/null` gives), or a stream (a pipe, a socket, a file; a
/// closed descriptor counts as one too: the guest's reads see its end at once).
pub fn fd_kind(fd: i32) -> StreamKind {
    // SAFETY: isatty only inspects the descriptor number; a closed one gives 0 (EBADF).
    if unsafe { libc::isatty(fd) } == 1 {
        return StreamKind::Terminal;
    }
    // SAFETY: fstat writes a `stat` into the zeroed buffer it is given, or fails.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `st` is a valid, writable `stat`.
    if unsafe { libc::fstat(fd, &mut st) } == 0 && st.st_mode & libc::S_IFMT == libc::S_IFCHR {
        StreamKind::CharDevice
    } else {
        StreamKind::Stream
    }
}

/// Builds the boot info block.
pub fn boot_info(params: &BootParams) -> BootInfo {
    let mut info = BootInfo {
        magic: BOOT_MAGIC,
        abi_version: ABI_VERSION,
        cmdline_gpa: GuestPhysAddr(CMDLINE_GPA),
        cmdline_len: params.cmdline_len,
        init_argv_gpa: GuestPhysAddr(params.init[0].0),
        init_argv_len: params.init[0].1,
        init_envp_gpa: GuestPhysAddr(params.init[1].0),
        init_envp_len: params.init[1].1,
        init_cwd_gpa: GuestPhysAddr(params.init[2].0),
        init_cwd_len: params.init[2].1,
        mem_size: params.mem_size,
        tsc_khz: params.tsc_khz,
        host_stdio: params.host_stdio & host_stdio::ALL,
        ..Default::default()
    };
    let regions = [
        (0, LOW_RESERVED_END, MemKind::Reserved),
        (
            LOW_RESERVED_END,
            params.mem_size.saturating_sub(LOW_RESERVED_END),
            MemKind::Usable,
        ),
    ];
    for (slot, (base, size, kind)) in info.mem_regions.iter_mut().zip(regions) {
        *slot = MemRegion {
            base: GuestPhysAddr(base),
            size,
            kind: kind as u32,
            _pad: 0,
        };
    }
    info.mem_region_count = regions.len() as u32;
    let port_device = |kind: DeviceKind, port: u16| DeviceEntry {
        kind: kind as u32,
        port,
        ..Default::default()
    };
    let mut devices = vec![
        port_device(DeviceKind::Console, port::CONSOLE),
        port_device(DeviceKind::Exit, port::EXIT),
        port_device(DeviceKind::Rtc, port::RTC),
        port_device(DeviceKind::ConsoleOut, port::CONSOLE_OUT),
        port_device(DeviceKind::ConsoleIn, port::CONSOLE_IN),
    ];
    if let Some((gpa, size)) = params.rootfs {
        info.rootfs_gpa = GuestPhysAddr(gpa);
        info.rootfs_size = size;
        devices.push(DeviceEntry {
            gpa: GuestPhysAddr(gpa),
            size,
            kind: DeviceKind::Rootfs as u32,
            ..Default::default()
        });
    }
    if params.volumes > 0 {
        devices.push(DeviceEntry {
            size: u64::from(params.volumes),
            ..port_device(DeviceKind::HostFs, port::HOSTFS)
        });
    }
    for (slot, device) in info.devices.iter_mut().zip(&devices) {
        *slot = *device;
    }
    info.device_count = devices.len() as u32;
    info
}

/// The boot info block as it is now in guest memory (the kernel writes its `stats_*`
/// fields; the rest is what the VMM wrote, or whatever the guest overwrote it with).
pub fn read_boot_info(mem: &GuestMemoryMmap) -> Option<BootInfo> {
    mem.read_obj::<BootInfoBytes>(GuestAddress(BOOT_INFO_GPA))
        .ok()
        .map(|b| b.0)
}

/// Writes everything the kernel expects to find in low memory at boot.
pub fn write_boot_data(
    mem: &GuestMemoryMmap,
    params: &BootParams,
    cmdline: &str,
    init: &InitArgs,
) -> Result<(), BootError> {
    let gdt: Vec<u8> = BOOT_GDT.iter().flat_map(|e| e.to_le_bytes()).collect();
    mem.write_slice(&gdt, GuestAddress(BOOT_GDT_GPA))
        .map_err(|e| BootError::Write("boot GDT", e))?;
    BootPageTables::new().write(mem)?;
    let mut cmdline_bytes = cmdline.as_bytes().to_vec();
    cmdline_bytes.push(0);
    mem.write_slice(&cmdline_bytes, GuestAddress(CMDLINE_GPA))
        .map_err(|e| BootError::Write("kernel command line", e))?;
    mem.write_slice(&init.area_bytes(), GuestAddress(INIT_ARGS_GPA))
        .map_err(|e| BootError::Write("init arguments", e))?;
    mem.write_obj(
        BootInfoBytes(boot_info(params)),
        GuestAddress(BOOT_INFO_GPA),
    )
    .map_err(|e| BootError::Write("boot info", e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use hypercall_abi::layout::ROOTFS_GPA;
    use std::os::fd::AsRawFd;

    fn init() -> InitArgs {
        InitArgs::new(&["/init".into()], &["A=b".into()], "/tmp".as_ref()).unwrap()
    }

    fn params() -> BootParams {
        BootParams {
            mem_size: 64 << 20,
            cmdline_len: 10,
            init: init().placement(),
            rootfs: Some((ROOTFS_GPA, 10240)),
            tsc_khz: 2_300_000,
            host_stdio: host_stdio::STDERR_TERMINAL,
            volumes: 2,
        }
    }

    #[test]
    fn boot_info_describes_memory_and_devices() {
        let info = boot_info(&params());
        assert_eq!(info.magic, BOOT_MAGIC);
        assert_eq!(info.abi_version, ABI_VERSION);
        assert_eq!(info.regions().len(), 2);
        assert_eq!(info.regions()[0].kind, MemKind::Reserved as u32);
        assert_eq!(info.regions()[0].size, LOW_RESERVED_END);
        assert_eq!(info.regions()[1].base.0, LOW_RESERVED_END);
        assert_eq!(info.regions()[1].size, (64 << 20) - LOW_RESERVED_END);
        assert_eq!(
            info.device(DeviceKind::Console).map(|d| d.port),
            Some(0x3f8)
        );
        assert_eq!(
            info.device(DeviceKind::Exit).map(|d| d.port),
            Some(port::EXIT)
        );
        assert_eq!(
            info.device(DeviceKind::Rtc).map(|d| d.port),
            Some(port::RTC)
        );
        assert_eq!(
            info.device(DeviceKind::ConsoleOut).map(|d| d.port),
            Some(port::CONSOLE_OUT)
        );
        assert_eq!(
            info.device(DeviceKind::ConsoleIn).map(|d| d.port),
            Some(port::CONSOLE_IN)
        );
        let rootfs = info.device(DeviceKind::Rootfs).unwrap();
        assert_eq!((rootfs.gpa.0, rootfs.size), (ROOTFS_GPA, 10240));
        let hostfs = info.device(DeviceKind::HostFs).unwrap();
        assert_eq!((hostfs.port, hostfs.size), (port::HOSTFS, 2));
        assert_eq!((info.rootfs_gpa.0, info.rootfs_size), (ROOTFS_GPA, 10240));
        assert_eq!(info.tsc_khz, 2_300_000);
        assert_eq!(info.host_stdio, host_stdio::STDERR_TERMINAL);
        assert!(!info.host_stream_is_terminal(0) && info.host_stream_is_terminal(2));
    }

    #[test]
    fn host_stdio_asks_about_each_standard_stream() {
        let mut asked = Vec::new();
        let flags = host_stdio_flags(|fd| {
            asked.push(fd);
            [
                StreamKind::Terminal,
                StreamKind::CharDevice,
                StreamKind::Terminal,
            ][fd as usize]
        });
        assert_eq!(asked, [0, 1, 2]);
        assert_eq!(
            flags,
            host_stdio::STDIN_TERMINAL
                | host_stdio::STDOUT_CHAR_DEVICE
                | host_stdio::STDERR_TERMINAL
        );
        assert_eq!(host_stdio_flags(|_| StreamKind::Stream), 0);
        assert_eq!(
            host_stdio_flags(|_| StreamKind::Terminal),
            host_stdio::TERMINALS
        );
        // Bits the ABI does not define never reach the guest.
        let info = boot_info(&BootParams {
            host_stdio: u32::MAX,
            ..params()
        });
        assert_eq!(info.host_stdio, host_stdio::ALL);
    }

    #[test]
    fn fd_kind_tells_terminals_devices_pipes_files_and_closed_descriptors() {
        let mut fds = [0; 2];
        // SAFETY: `fds` is a valid array of two descriptors for pipe to fill.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        assert_eq!(fd_kind(fds[0]), StreamKind::Stream);
        assert_eq!(fd_kind(fds[1]), StreamKind::Stream);
        for fd in fds {
            // SAFETY: both descriptors were just opened here and are not used again.
            unsafe { libc::close(fd) };
        }
        assert_eq!(fd_kind(fds[0]), StreamKind::Stream);
        assert_eq!(fd_kind(-1), StreamKind::Stream);
        let null = std::fs::File::open("/dev/null").unwrap();
        assert_eq!(fd_kind(null.as_raw_fd()), StreamKind::CharDevice);
        let file = std::fs::File::open("/proc/self/exe").unwrap();
        assert_eq!(fd_kind(file.as_raw_fd()), StreamKind::Stream);
        let (mut master, mut slave) = (-1, -1);
        // SAFETY: valid out-pointers; null name, termios and window size are allowed.
        let rc = unsafe {
            libc::openpty(
                &mut master,
                &mut slave,
                std::ptr::null_mut(),
                std::ptr::null(),
                std::ptr::null(),
            )
        };
        assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
        assert_eq!(fd_kind(slave), StreamKind::Terminal);
        assert_eq!(fd_kind(master), StreamKind::Terminal);
        for fd in [master, slave] {
            // SAFETY: both descriptors were just opened here and are not used again.
            unsafe { libc::close(fd) };
        }
    }

    #[test]
    fn no_rootfs_means_zeroes() {
        let info = boot_info(&BootParams {
            rootfs: None,
            volumes: 0,
            ..params()
        });
        assert_eq!((info.rootfs_gpa.0, info.rootfs_size), (0, 0));
        assert!(info.device(DeviceKind::Rootfs).is_none());
        assert!(info.device(DeviceKind::HostFs).is_none());
        assert_eq!(info.device_count, 5);
    }

    #[test]
    fn writes_everything_where_the_abi_says() {
        let mem = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 16 << 20)]).unwrap();
        write_boot_data(&mem, &params(), "init=/init", &init()).unwrap();
        let info: BootInfoBytes = mem.read_obj(GuestAddress(BOOT_INFO_GPA)).unwrap();
        assert_eq!(info.0, boot_info(&params()));
        let mut cmdline = [0u8; 11];
        mem.read_slice(&mut cmdline, GuestAddress(CMDLINE_GPA))
            .unwrap();
        assert_eq!(&cmdline, b"init=/init\0");
        let read = |gpa: GuestPhysAddr, len: u64| {
            let mut buf = vec![0u8; len as usize];
            mem.read_slice(&mut buf, GuestAddress(gpa.0)).unwrap();
            buf
        };
        let info = info.0;
        assert_eq!(info.init_argv_gpa.0, INIT_ARGS_GPA);
        assert_eq!(read(info.init_argv_gpa, info.init_argv_len), b"/init\0");
        assert_eq!(read(info.init_envp_gpa, info.init_envp_len), b"A=b\0");
        assert_eq!(read(info.init_cwd_gpa, info.init_cwd_len), b"/tmp");
        let code: u64 = mem.read_obj(GuestAddress(BOOT_GDT_GPA + 8)).unwrap();
        assert_eq!(code, BOOT_GDT[1]);
    }
}

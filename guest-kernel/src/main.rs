//! The astra guest kernel.
//!
//! Boot: `arch::boot` sets a stack and calls [`kernel_entry`] with the guest-physical
//! address of the VMM's `BootInfo`. The kernel loads its GDT and IDT, detects the
//! platform (hardware KVM or PVM, opting in to native execution on PVM), builds its own
//! page tables and heap, starts the timer, mounts the rootfs TAR and runs the init
//! program; its exit status becomes the VMM's exit code.
#![cfg_attr(not(test), no_std)]
#![cfg_attr(not(test), no_main)]
// Host unit tests compile the kernel's modules without running its boot path.
#![cfg_attr(test, allow(dead_code, unused_imports))]

extern crate alloc;

pub mod arch;
mod bench;
mod cmdline;
pub mod drivers;
pub mod errno;
pub mod fs;
mod loader;
pub mod mm;
mod random;
mod selftest;
pub mod signal;
pub mod syscall;
pub mod task;
pub mod time;
mod trap;

use alloc::string::String;
use alloc::vec::Vec;

use hypercall_abi::{layout, BootInfo, DeviceKind, MemKind, BOOT_MAGIC};

use crate::arch::{gdt, pic, platform, trap as arch_trap};
use crate::mm::paging::{flags, AddressSpace};

/// Page-fault error code of a user-mode read of a page not present.
const PF_USER_READ: u64 = 1 << 2;

/// Largest kernel heap.
const HEAP_MAX: u64 = 64 << 20;

extern "C" {
    static __kernel_start: u8;
    static __kernel_end: u8;
}

/// Rust entry point, called by `arch::boot` on the boot stack.
#[no_mangle]
pub extern "C" fn kernel_entry(boot_info_pa: u64) -> ! {
    // SAFETY: first thing on the only CPU, interrupts off.
    unsafe {
        gdt::init();
        arch_trap::init_probe_idt();
    }
    let platform = platform::detect();
    platform::enable_native(mm::kernel_virt_to_phys);
    // SAFETY: after gdt::init and the probe, still on the only CPU with interrupts off.
    unsafe { arch_trap::init_idt() };
    arch::enable_sse();

    // SAFETY: the VMM wrote a BootInfo here; boot tables map it at -2 GiB.
    let info: BootInfo =
        unsafe { core::ptr::read(mm::phys_to_virt(boot_info_pa) as *const BootInfo) };
    if info.magic != BOOT_MAGIC || info.abi_version != hypercall_abi::ABI_VERSION {
        kprintln!(
            "astra: bad boot info (magic {:#x}, ABI {}; this kernel speaks ABI {})",
            info.magic,
            info.abi_version,
            hypercall_abi::ABI_VERSION
        );
        drivers::exit::kernel_panic();
    }

    fs::host_stream::set_host_terminals(info.host_stdio);
    init_memory(&info);
    arch::fpu::init();
    task::kstack::init();
    time::init(info.tsc_khz);
    pic::init(arch_trap::VECTOR_IRQ_BASE as u8);
    pic::init_pit(time::TICK_HZ);

    let cmdline_text = read_boot_string(info.cmdline_gpa.0, info.cmdline_len, layout::CMDLINE_MAX);
    let cmdline = cmdline::Cmdline::parse(&cmdline_text);
    for param in cmdline.unknown() {
        kprintln!("astra: ignoring unknown kernel parameter '{}'", param);
    }
    for param in cmdline.invalid() {
        kprintln!(
            "astra: ignoring kernel parameter with a bad value '{}'",
            param
        );
    }
    if cmdline.gdb {
        arch::debug::init(arch::cpu::read_cr3());
    }
    if let Some(bits) = cmdline.pvm_features {
        if platform == platform::Platform::Pvm {
            let in_force = platform::set_pvm_features(mm::kernel_virt_to_phys, bits);
            kprintln!("astra: PVM features {bits:#x} asked, {in_force:#x} in force");
        } else {
            kprintln!("astra: astra.pvm_features ignored: not on PVM");
        }
    }
    syscall::set_strace(cmdline.strace);
    syscall::set_stats(cmdline.stats);
    if cmdline.stats {
        // SAFETY: the VMM wrote a BootInfo at boot_info_pa (read above), in low memory the
        // direct map covers writable; only this CPU runs and nothing else refers to it.
        unsafe { syscall::publish_stats(mm::phys_to_virt(boot_info_pa) as *mut BootInfo) };
    }
    if cmdline.panic {
        panic!("panic requested on the kernel command line (astra.panic)");
    }
    if cmdline.kstack_overflow {
        task::kstack::overflow_one();
    }
    if cmdline.loglevel.unwrap_or(4) >= 6 {
        kprintln!(
            "astra: kernel on {:?}, cmdline '{}'",
            platform,
            cmdline_text
        );
    }

    let rootfs = mount_rootfs(&info);
    drivers::hostfs::init(&info);

    if cmdline.test {
        let passed = selftest::run_all(rootfs);
        drivers::exit::program_exited(if passed { 0 } else { 1 });
    }
    if cmdline.bench {
        let ok = bench::run();
        drivers::exit::program_exited(if ok { 0 } else { 1 });
    }

    let argv_block = read_boot_bytes(
        info.init_argv_gpa.0,
        info.init_argv_len,
        layout::INIT_ARGS_MAX,
    );
    let mut argv = cmdline::split_block(&argv_block);
    let init_path = String::from(cmdline.init.unwrap_or("/init"));
    if argv.is_empty() {
        argv.push(init_path.as_bytes());
    }
    let envp_block = read_boot_bytes(
        info.init_envp_gpa.0,
        info.init_envp_len,
        layout::INIT_ARGS_MAX,
    );
    let envp = cmdline::split_block(&envp_block);
    let cwd = read_boot_string(
        info.init_cwd_gpa.0,
        info.init_cwd_len,
        layout::INIT_ARGS_MAX,
    );
    let start = InitStart {
        path: &init_path,
        argv: &argv,
        envp: &envp,
        cwd: if cwd.is_empty() { "/" } else { &cwd },
    };
    let status = run_init(rootfs, &start);
    syscall::print_stats();
    drivers::exit::program_exited(status);
}

/// How the VMM asked init to start.
struct InitStart<'a> {
    path: &'a str,
    argv: &'a [&'a [u8]],
    envp: &'a [&'a [u8]],
    cwd: &'a str,
}

/// Resolves init's working directory as `chdir` would: the absolute path it becomes.
fn init_cwd(cwd: &str, exe: &str) -> Result<String, errno::Errno> {
    let w = fs::vfs::Walker::new(fs::namespace(), exe);
    let node = w.lookup(w.root(), cwd, fs::vfs::follow(true))?;
    let v = fs::vfs::Vnode::Node(node);
    if !w.is_dir(&v) {
        return Err(errno::Errno::ENOTDIR);
    }
    w.path_of(&v).ok_or(errno::Errno::ENOENT)
}

/// The init program's file at `path` in the namespace (final symlinks followed), or the
/// shell status and error: 127 if there is none, 126 if it is not an executable file.
fn init_file(
    path: &str,
) -> Result<alloc::sync::Arc<dyn mm::source::MapSource>, (u8, errno::Errno)> {
    let ns = fs::namespace();
    let walker = fs::vfs::Walker::new(ns, path);
    let node = walker
        .lookup(&ns.root, path, fs::vfs::follow(true))
        .map_err(|e| (127, e))?;
    if node.file_type() != fs::inode::FileType::Regular || node.metadata().mode & 0o111 == 0 {
        return Err((126, errno::Errno::EACCES));
    }
    Ok(fs::regular::map_source(&node))
}

/// Runs the init program; returns its status (127 if it cannot be started, like a shell).
fn run_init(rootfs: Option<&fs::tar::TarFs>, start: &InitStart<'_>) -> u8 {
    let (path, argv, envp) = (start.path, start.argv, start.envp);
    if rootfs.is_none() {
        kprintln!(
            "astra: cannot run {}: no rootfs (give astra-vmm --rootfs)",
            path
        );
        return 127;
    }
    // Through the namespace, so a program on a --volume directory runs too.
    let file = match init_file(path) {
        Ok(file) => file,
        Err((status, e)) => {
            kprintln!("astra: cannot run {}: {}", path, e.message());
            return status;
        }
    };
    let cwd = match init_cwd(start.cwd, path) {
        Ok(cwd) => cwd,
        Err(e) => {
            kprintln!(
                "astra: cannot run {}: cannot change directory to '{}': {} ({})",
                path,
                start.cwd,
                e.message(),
                e.name()
            );
            return 127;
        }
    };
    let loaded = match loader::exec::load(file, argv, envp, path.as_bytes()) {
        Ok(l) => l,
        Err(e) => {
            kprintln!("astra: cannot run {}: {}", path, e);
            return 126;
        }
    };
    let mut task = match task::Task::new(path, loaded.space, loaded.entry, loaded.rsp) {
        Ok(p) => p,
        Err(e) => {
            kprintln!("astra: cannot run {}: {:?}", path, e);
            return 126;
        }
    };
    task.mm_mut().mem = loaded.mem;
    task.fs.lock().cwd = cwd;
    fs::procinfo::record_exec(task.pid(), path.as_bytes(), argv, envp);
    if arch::debug::attached() {
        // The debugger plants breakpoints in the program's code: fault it all in first.
        let m = task.mm_mut();
        let mut page = loaded.image.start;
        while page < loaded.image.end {
            // A page that cannot be faulted in (out of memory) just takes no breakpoint.
            let _ = mm::fault::handle_page_fault(m, page, PF_USER_READ);
            page += mm::PAGE_SIZE;
        }
        arch::debug::program_loaded(loaded.bias, loaded.entry, m.space.pml4_phys());
    }
    let finished = task::sched::run(task);
    finished
        .exit_status()
        .unwrap_or(128 + trap::signal::SIGKILL)
}

fn read_boot_bytes(gpa: u64, len: u64, max: u64) -> Vec<u8> {
    let len = len.min(max);
    if gpa == 0 || len == 0 {
        return Vec::new();
    }
    // SAFETY: the VMM wrote `len` bytes there (clamped to the area's size), in low memory
    // covered by the direct map.
    unsafe { core::slice::from_raw_parts(mm::phys_to_virt(gpa) as *const u8, len as usize) }
        .to_vec()
}

fn read_boot_string(gpa: u64, len: u64, max: u64) -> String {
    String::from_utf8_lossy(&read_boot_bytes(gpa, len, max)).into_owned()
}

/// Frames from the memory map, the kernel's own page tables, then the heap.
fn init_memory(info: &BootInfo) {
    // SAFETY: linker symbols; only their addresses are used.
    let (kstart, kend) = unsafe {
        (
            &__kernel_start as *const u8 as u64,
            &__kernel_end as *const u8 as u64,
        )
    };
    let (kstart_pa, kend_pa) = (
        mm::kernel_virt_to_phys(kstart),
        mm::kernel_virt_to_phys(kend),
    );
    {
        let mut frames = mm::frame::FRAMES.lock();
        for r in info
            .regions()
            .iter()
            .filter(|r| r.kind == MemKind::Usable as u32)
        {
            let (start, end) = (r.base.0.max(layout::LOW_RESERVED_END), r.base.0 + r.size);
            // Early on only the first GiB is reachable (boot tables); later all of it.
            let end = end.min(layout::BOOT_MAPPED_SIZE);
            if start < kstart_pa {
                frames.add_range(start, end.min(kstart_pa));
            }
            frames.add_range(start.max(kend_pa), end);
        }
    }

    let mut space = AddressSpace::new_empty().unwrap_or_else(|_| oom("kernel page tables"));
    let huge = 2u64 << 20;
    let ram_end = (info.mem_size + huge - 1) & !(huge - 1);
    let kernel = platform::kernel_pte_flags() | flags::GLOBAL;
    let rw = flags::WRITABLE | flags::NO_EXECUTE | kernel;
    space
        .map_huge_range(layout::PHYS_MAP_BASE, 0, ram_end, rw)
        .unwrap_or_else(|_| oom("direct map"));
    if let Some(rootfs) = info.device(DeviceKind::Rootfs) {
        let size = (rootfs.size + huge - 1) & !(huge - 1);
        space
            .map_huge_range(
                layout::PHYS_MAP_BASE + rootfs.gpa.0,
                rootfs.gpa.0,
                size,
                flags::NO_EXECUTE | kernel,
            )
            .unwrap_or_else(|_| oom("rootfs map"));
    }
    let mut va = kstart & !0xfff;
    while va < kend {
        space
            .map(va, mm::kernel_virt_to_phys(va), flags::WRITABLE | kernel)
            .unwrap_or_else(|_| oom("kernel image map"));
        va += mm::PAGE_SIZE;
    }
    // SAFETY: the new tables map the kernel image at the same addresses and all RAM.
    unsafe { space.activate() };
    mm::use_direct_map();
    mm::set_kernel_space(space);

    // RAM beyond the first GiB becomes usable now that the direct map covers it.
    if info.mem_size > layout::BOOT_MAPPED_SIZE {
        mm::frame::FRAMES
            .lock()
            .add_range(layout::BOOT_MAPPED_SIZE, info.mem_size);
    }

    let heap_size = (info.mem_size / 8).min(HEAP_MAX) & !(mm::PAGE_SIZE - 1);
    let heap_pa = mm::frame::FRAMES
        .lock()
        .alloc_contiguous(heap_size / mm::PAGE_SIZE)
        .unwrap_or_else(|| oom("heap"));
    // SAFETY: the frames were just taken for the heap alone and are direct-mapped.
    unsafe { mm::heap::init(mm::phys_to_virt(heap_pa), heap_size) };
    if !mm::refcount::init(info.mem_size) {
        kprintln!("astra: no memory for frame reference counts: fork and shared memory fail");
    }
}

fn mount_rootfs(info: &BootInfo) -> Option<&'static fs::tar::TarFs> {
    let dev = info.device(DeviceKind::Rootfs)?;
    // SAFETY: the VMM mapped `size` bytes of the TAR read-only at `gpa`; the direct map
    // covers them and they never change.
    let data: &'static [u8] = unsafe {
        core::slice::from_raw_parts(mm::phys_to_virt(dev.gpa.0) as *const u8, dev.size as usize)
    };
    match fs::tar::TarFs::new(data) {
        Ok(fs) => Some(fs::mount_root(fs)),
        Err(e) => {
            // The VMM validated the archive, so this is the kernel's own limit (memory):
            // refuse the image instead of running without a root filesystem.
            kprintln!("astra: cannot mount the rootfs: {e}");
            drivers::exit::rootfs_refused();
        }
    }
}

fn oom(what: &str) -> ! {
    panic!("out of memory while setting up the {what}");
}

#[cfg(not(test))]
#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    drivers::console::write_fmt_emergency(format_args!("astra: kernel panic: {}\n", info));
    let rsp: u64;
    // SAFETY: reads the stack pointer only.
    unsafe { core::arch::asm!("mov {}, rsp", out(reg) rsp, options(nomem, nostack)) };
    trap::emit_stack_scan(rsp & !7);
    drivers::exit::kernel_panic();
}

//! `astra-vmm`: boots an astra guest kernel in a KVM virtual machine and returns how it
//! ended.
//!
//! [`run`] is the whole life of a VM: guest RAM, the kernel and rootfs (validated before
//! KVM is touched, so a bad file is a usage error even on a host without KVM), the VM and
//! its devices, the boot data, then the vCPU on its own thread while this thread enforces
//! the timeout.
//!
//! Output: programs' standard output goes to the VMM's stdout; their standard error, the
//! kernel's diagnostics (`--strace`, `--stats`, fault reports) and its emergency output
//! (16550 UART: panics) go to the VMM's stderr, as do the VMM's own messages. Input: a
//! thread reads the VMM's stdin into one buffer that the console-input device (and, for
//! guests that poll a 16550, the UART) drains.

pub mod arch;
pub mod boot;
pub mod cli;
pub mod devices;
pub mod exit_code;
pub mod gdb;
pub mod input_file;
pub mod loader;
pub mod report;
pub mod teardown;
pub mod volume;
pub mod vstate;

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use hypercall_abi::layout::BOOT_INFO_GPA;
use hypercall_abi::port;
use vmm_sys_util::signal::Killable;

use crate::arch::x86_64::layout::{
    CONSOLE_IRQ, CONSOLE_PORT_COUNT, POST_PORT, SYSTEM_CONTROL_PORT_B,
};
use crate::boot::{BootError, BootParams};
use crate::cli::VmConfig;
use crate::devices::console_in::ConsoleIn;
use crate::devices::console_out::ConsoleOut;
use crate::devices::exit::ExitDevice;
use crate::devices::hostfs::HostFsDevice;
use crate::devices::rootfs::{RootfsError, RootfsImage};
use crate::devices::rtc::{system_clock, RtcDevice};
use crate::devices::serial::Console;
use crate::devices::stdin::{self, StdinBuffer, STDIN_BUFFER_CAPACITY};
use crate::devices::{BusError, PortBus, Sink};
use crate::exit_code::Outcome;
use crate::loader::LoaderError;
use crate::vstate::exit_stats::ExitStats;
use crate::vstate::memory::{create_guest_memory, MemoryError};
use crate::vstate::vcpu::{kick_signal, register_kick_handler, ExitContext, VcpuError};
use crate::vstate::vm::{Vm, VmError};

/// How long a kicked vCPU thread gets to leave `KVM_RUN` before the VMM gives up on it.
const KICK_GRACE: Duration = Duration::from_secs(1);
/// Interval between kicks (a kick can land just before the thread enters `KVM_RUN`).
const KICK_INTERVAL: Duration = Duration::from_millis(5);

/// Errors that end `astra-vmm` before the guest does.
#[derive(Debug, thiserror::Error)]
pub enum VmmError {
    /// The kernel image is unusable.
    #[error(transparent)]
    Loader(#[from] LoaderError),
    /// The rootfs is unusable.
    #[error(transparent)]
    Rootfs(#[from] RootfsError),
    /// Guest RAM could not be allocated.
    #[error(transparent)]
    Memory(#[from] MemoryError),
    /// KVM VM setup failed.
    #[error(transparent)]
    Vm(#[from] VmError),
    /// The vCPU failed.
    #[error(transparent)]
    Vcpu(#[from] VcpuError),
    /// The boot data could not be written.
    #[error(transparent)]
    Boot(#[from] BootError),
    /// The device bus could not be built.
    #[error(transparent)]
    Bus(#[from] BusError),
    /// A thread could not be started.
    #[error("Cannot start the {0} thread")]
    Thread(&'static str, #[source] io::Error),
    /// The gdb session could not start.
    #[error(transparent)]
    Gdb(#[from] gdb::GdbError),
    /// A `--volume` host directory is unusable.
    #[error(transparent)]
    Volume(#[from] volume::VolumeError),
    /// The vCPU thread ended without reporting.
    #[error("The vCPU thread died")]
    VcpuThreadDied,
}

impl VmmError {
    /// The process exit code for this error: 250 for what the user can fix in the
    /// invocation or its files, 254 for the rest.
    pub fn exit_code(&self) -> u8 {
        match self {
            VmmError::Loader(LoaderError::Load(..)) => exit_code::INTERNAL,
            VmmError::Loader(_) => exit_code::USAGE,
            VmmError::Rootfs(RootfsError::Map(..)) => exit_code::INTERNAL,
            VmmError::Rootfs(_) => exit_code::USAGE,
            VmmError::Volume(_) => exit_code::USAGE,
            _ => exit_code::INTERNAL,
        }
    }
}

/// Boots the VM described by `config` and runs it until the guest ends it, it crashes or
/// the timeout expires. With `config.stats`, prints the VM-exit table on stderr at the end,
/// however the VM ended.
pub fn run(config: &VmConfig) -> Result<Outcome, VmmError> {
    run_keeping_vm(config).map(|(outcome, _vm)| outcome)
}

/// Like [`run`], then ends the process with the exit code `decide` gives for the result,
/// without waiting for KVM to destroy the VM (see [`teardown`]).
pub fn run_and_exit(config: &VmConfig, decide: impl FnOnce(Result<Outcome, VmmError>) -> u8) -> ! {
    match run_keeping_vm(config) {
        Ok((outcome, vm)) => {
            let code = decide(Ok(outcome));
            teardown::exit_leaving_teardown_to_child(vm, code)
        }
        Err(e) => {
            let code = decide(Err(e));
            teardown::exit_leaving_teardown_to_child(None::<Vm>, code)
        }
    }
}

/// Runs the VM and hands back the still-open VM with the outcome (`None` if it must
/// never be torn down because a vCPU may still be running in it). With `config.stats`,
/// prints the VM-exit table on stderr at the end, however the VM ended.
fn run_keeping_vm(config: &VmConfig) -> Result<(Outcome, Option<Vm>), VmmError> {
    let stats = config.stats.then(|| Arc::new(Mutex::new(ExitStats::new())));
    let result = run_vm(config, stats.clone());
    if let Some(stats) = stats {
        let stats = stats.lock().unwrap_or_else(PoisonError::into_inner);
        // A VM that never ran (bad kernel, no KVM) has nothing to report.
        if result.is_ok() || stats.total() > 0 {
            report::write_stderr(stats.render().as_bytes());
        }
    }
    result
}

fn run_vm(
    config: &VmConfig,
    stats: Option<Arc<Mutex<ExitStats>>>,
) -> Result<(Outcome, Option<Vm>), VmmError> {
    let start = Instant::now();
    let memory = create_guest_memory(config.mem_size)?;
    let kernel = loader::load_kernel(&config.kernel, &memory, config.mem_size)?;
    let rootfs = config
        .rootfs
        .as_deref()
        .map(RootfsImage::open)
        .transpose()?;
    let hostfs = volume::open_all(&config.volumes)?;
    log::info!("kernel and rootfs loaded after {:?}", start.elapsed());

    let mut vm = Vm::new(memory)?;
    if let Some(rootfs) = rootfs {
        vm.map_rootfs(rootfs)?;
    }
    vm.create_interrupt_controllers()?;
    let mut vcpu = vm.create_vcpu(0, kernel.entry, BOOT_INFO_GPA)?;
    if let Some(stats) = stats {
        vcpu.record_stats(stats);
    }
    let params = BootParams {
        mem_size: config.mem_size,
        cmdline_len: config.cmdline.len() as u64,
        init_argv_len: config.init_argv.len() as u64,
        rootfs: vm.rootfs_window().map(|(gpa, _, size)| (gpa, size)),
        tsc_khz: u64::from(vcpu.tsc_khz()),
        host_stdio: boot::host_stdio_flags(boot::fd_is_terminal),
        volumes: hostfs.volume_count() as u32,
    };
    boot::write_boot_data(vm.memory(), &params, &config.cmdline, &config.init_argv)?;

    // One input buffer for both consumers, one irqfd for both raisers of IRQ 4.
    let console_irq = vm.irqfd(CONSOLE_IRQ)?;
    let input_irq = console_irq.try_clone().map_err(VmError::EventFd)?;
    let input = Arc::new(StdinBuffer::new(STDIN_BUFFER_CAPACITY, input_irq));
    // The UART is the kernel's emergency output (panics): diagnostics, so stderr.
    let console = Console::new(console_irq, io::stderr(), Arc::clone(&input));
    let feeder = console.handle();
    stdin::spawn_reader(Arc::clone(&input), io::stdin(), move || {
        feeder.feed_from_buffer()
    })
    .map_err(|e| VmmError::Thread("stdin", e))?;
    let uart = console.handle();
    let console_in = ConsoleIn::new(
        vm.memory().clone(),
        input,
        Some(Box::new(move || uart.hand_over_input())),
    );
    let mut bus = PortBus::new();
    bus.insert(port::CONSOLE, CONSOLE_PORT_COUNT, Box::new(console))?;
    bus.insert(port::CONSOLE_IN, 1, Box::new(console_in))?;
    bus.insert(port::EXIT, 1, Box::new(ExitDevice))?;
    bus.insert(
        port::RTC,
        1,
        Box::new(RtcDevice::new(vm.memory().clone(), system_clock)),
    )?;
    bus.insert(
        port::CONSOLE_OUT,
        1,
        Box::new(ConsoleOut::stdio(vm.memory().clone())),
    )?;
    if hostfs.volume_count() > 0 {
        let dev = HostFsDevice::new(vm.memory().clone(), hostfs);
        bus.insert(port::HOSTFS, 1, Box::new(dev))?;
    }
    bus.insert(POST_PORT, 1, Box::new(Sink))?;
    bus.insert(SYSTEM_CONTROL_PORT_B, 1, Box::new(Sink))?;
    let ctx = ExitContext {
        rootfs: vm
            .rootfs_window()
            .map(|(gpa, map_len, _)| gpa..gpa + map_len),
    };

    register_kick_handler()?;
    let stop = Arc::new(AtomicBool::new(false));
    if let Some(addr) = &config.gdb {
        let link = gdb::accept(addr)?;
        vcpu.attach_debugger(gdb::Debugger::new(
            link,
            vm.memory().clone(),
            Arc::clone(&stop),
        )?);
    }
    // Under --gdb the timeout counts from gdb's connection.
    // Counted from here (after a debugger attached); `None` if the clock cannot represent
    // the deadline: then it never comes.
    let deadline = config.timeout.and_then(|t| Instant::now().checked_add(t));
    let (done_tx, done_rx) = mpsc::channel();
    let vcpu_stop = Arc::clone(&stop);
    let vcpu_thread = thread::Builder::new()
        .name("vcpu0".into())
        .spawn(move || {
            let result = vcpu.run(&mut bus, &ctx, &vcpu_stop);
            // The receiver only goes away once the VMM has given up on this thread.
            let _ = done_tx.send(result);
        })
        .map_err(|e| VmmError::Thread("vCPU", e))?;
    log::info!("guest started after {:?}", start.elapsed());

    let received = match deadline {
        None => done_rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
        Some(deadline) => done_rx.recv_timeout(deadline.saturating_duration_since(Instant::now())),
    };
    match received {
        Ok(result) => {
            let _ = vcpu_thread.join();
            log::info!("guest ended after {:?}", start.elapsed());
            let result = match result {
                // A rootfs truncated under the guest makes KVM_RUN fail with EFAULT when the
                // guest touches the lost pages: say that, not just "Bad address".
                Err(e) => Err(match vm.rootfs().map(RootfsImage::check_not_truncated) {
                    Some(Err(truncated)) => VmmError::Rootfs(truncated),
                    _ => VmmError::Vcpu(e),
                }),
                Ok(outcome) => Ok(outcome),
            };
            let outcome = result?.unwrap_or_else(|| Outcome::crash("vCPU stopped unexpectedly"));
            Ok((outcome, Some(vm)))
        }
        Err(RecvTimeoutError::Disconnected) => Err(VmmError::VcpuThreadDied),
        Err(RecvTimeoutError::Timeout) => {
            stop.store(true, Ordering::Release);
            let stopped = kick_until_stopped(&vcpu_thread, &done_rx);
            let vm = if stopped {
                let _ = vcpu_thread.join();
                Some(vm)
            } else {
                log::warn!("the vCPU did not stop within {KICK_GRACE:?} of the timeout");
                // It may still be in KVM_RUN on this VM's memory: never unmap it.
                std::mem::forget(vm);
                None
            };
            Ok((Outcome::Timeout(config.timeout.unwrap_or_default()), vm))
        }
    }
}

/// Signals the vCPU thread until it reports back or [`KICK_GRACE`] passes.
fn kick_until_stopped<T, R>(thread: &thread::JoinHandle<T>, done: &mpsc::Receiver<R>) -> bool {
    let give_up = Instant::now() + KICK_GRACE;
    while Instant::now() < give_up {
        if let Err(e) = thread.kill(kick_signal()) {
            log::warn!("cannot signal the vCPU thread: {e}");
        }
        match done.recv_timeout(KICK_INTERVAL) {
            Ok(_) | Err(RecvTimeoutError::Disconnected) => return true,
            Err(RecvTimeoutError::Timeout) => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn config(kernel: PathBuf, rootfs: Option<PathBuf>) -> VmConfig {
        VmConfig {
            kernel,
            rootfs,
            mem_size: 16 << 20,
            cmdline: "init=/init".into(),
            init_argv: b"/init\0".to_vec(),
            timeout: None,
            stats: false,
            gdb: None,
            volumes: Vec::new(),
        }
    }

    #[test]
    fn file_errors_are_usage_errors_before_kvm_is_touched() {
        let err = run(&config("/nonexistent/kernel.elf".into(), None)).unwrap_err();
        assert_eq!(err.exit_code(), exit_code::USAGE);
        assert!(err.to_string().contains("/nonexistent/kernel.elf"));

        let dir = std::env::temp_dir().join(format!("astra-vmm-lib-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let kernel = dir.join("k.elf");
        let image = loader::test_elf::kernel(
            &[0xf4],
            0x20_0000,
            &loader::test_elf::abi_note(hypercall_abi::ABI_VERSION),
        );
        std::fs::write(&kernel, image).unwrap();
        let err = run(&config(kernel, Some(dir.join("missing.tar")))).unwrap_err();
        assert!(matches!(err, VmmError::Rootfs(RootfsError::Read(..))));
        assert_eq!(err.exit_code(), exit_code::USAGE);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn vm_errors_are_internal() {
        assert_eq!(
            VmmError::Vm(VmError::KvmMissing).exit_code(),
            exit_code::INTERNAL
        );
        assert_eq!(VmmError::VcpuThreadDied.exit_code(), exit_code::INTERNAL);
    }
}

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
pub mod guest_stats;
pub mod init_args;
pub mod input_file;
pub mod kernel_path;
pub mod loader;
pub mod report;
pub mod rootfs_build;
pub mod stats_json;
pub mod stop_signal;
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
use crate::devices::tty_signal::{TtySignalPort, TtySignals};
use crate::devices::{BusError, PortBus, Sink};
use crate::exit_code::Outcome;
use crate::loader::LoaderError;
use crate::vstate::exit_stats::ExitStats;
use crate::vstate::memory::{create_guest_memory, MemoryError};
use crate::vstate::vcpu::{kick_signal, register_kick_handler, ExitContext, VcpuError};
use crate::vstate::vm::{Vm, VmError};

/// How long a kicked vCPU thread gets to leave `KVM_RUN` before the VMM gives up on it.
const KICK_GRACE: Duration = Duration::from_secs(1);
/// How long the guest may leave a SIGINT/SIGQUIT for its terminal untaken before the VMM
/// stops it instead (its kernel takes one at its next interrupt, normally at once).
const TTY_SIGNAL_GRACE: Duration = Duration::from_secs(3);
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
    /// The rootfs could not be built (`--rootfs DIR`, a host program).
    #[error(transparent)]
    RootfsBuild(#[from] rootfs_build::RootfsBuildError),
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
    /// `--strace-file` cannot be created.
    #[error("Cannot create the trace file '{0}'")]
    TraceFile(std::path::PathBuf, #[source] io::Error),
    /// The SIGINT/SIGTERM handlers could not be installed.
    #[error("Cannot install the SIGINT/SIGTERM handlers")]
    Signals(#[source] io::Error),
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
            VmmError::RootfsBuild(rootfs_build::RootfsBuildError::Rootfs(RootfsError::Map(..))) => {
                exit_code::INTERNAL
            }
            VmmError::RootfsBuild(_) => exit_code::USAGE,
            VmmError::TraceFile(..) => exit_code::USAGE,
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
    let counting = config.stats || config.stats_json.is_some();
    let stats = counting.then(|| Arc::new(Mutex::new(ExitStats::new())));
    let syscall_table = SharedText::default();
    let started = Instant::now();
    let result = run_vm(config, stats.clone(), &syscall_table);
    if let Some(stats) = stats {
        let stats = stats.lock().unwrap_or_else(PoisonError::into_inner);
        // A VM that never ran (bad kernel, no KVM) has nothing to report.
        let ran = result.is_ok() || stats.total() > 0;
        // The program did not end, so the kernel did not print its table: read its
        // counters from the stopped guest.
        if let Ok((Outcome::Timeout(_) | Outcome::Interrupted(_), Some(vm))) = &result {
            let rows = boot::read_boot_info(vm.memory())
                .and_then(|info| guest_stats::read(vm.memory(), &info));
            if let Some(rows) = rows {
                let table = guest_stats::render(rows);
                if config.stats {
                    report::write_stderr(table.as_bytes());
                }
                let mut sink = syscall_table.clone();
                let _ = io::Write::write_all(&mut sink, table.as_bytes());
            }
        }
        if config.stats && ran {
            report::write_stderr(stats.render().as_bytes());
        }
        if let (Some(path), true) = (&config.stats_json, ran) {
            let outcome = result.as_ref().ok().map(|(o, _)| o);
            let code = match &result {
                Ok((o, _)) => o.exit_code(),
                Err(e) => e.exit_code(),
            };
            let table = syscall_table.text();
            let json = stats_json::render(
                outcome,
                code,
                started.elapsed(),
                &stats,
                &stats_json::parse_syscall_table(&table),
            );
            if let Err(e) = std::fs::write(path, json) {
                report!(
                    "astra-vmm: error: cannot write --stats-json '{}': {e}",
                    path.display()
                );
            }
        }
    }
    result
}

/// The kernel's `--stats` table as it arrives (and, under `--stats`, on stderr too).
#[derive(Clone, Default)]
struct SharedText {
    buf: Arc<Mutex<Vec<u8>>>,
    echo: bool,
}

impl SharedText {
    fn text(&self) -> String {
        let buf = self.buf.lock().unwrap_or_else(PoisonError::into_inner);
        String::from_utf8_lossy(&buf).into_owned()
    }
}

impl io::Write for SharedText {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        const MAX: usize = 1 << 20;
        let mut buf = self.buf.lock().unwrap_or_else(PoisonError::into_inner);
        // The guest decides the size: keep at most MAX bytes.
        let room = MAX.saturating_sub(buf.len());
        buf.extend_from_slice(&data[..data.len().min(room)]);
        if self.echo {
            io::stderr().write_all(data)?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        io::stderr().flush()
    }
}

fn run_vm(
    config: &VmConfig,
    stats: Option<Arc<Mutex<ExitStats>>>,
    syscall_table: &SharedText,
) -> Result<(Outcome, Option<Vm>), VmmError> {
    let start = Instant::now();
    let memory = create_guest_memory(config.mem_size)?;
    log::info!("kernel: {}", config.kernel.display());
    let kernel = loader::load_kernel(&config.kernel, &memory, config.mem_size)?;
    let trace = config
        .strace_file
        .as_deref()
        .map(|path| {
            std::fs::File::create(path).map_err(|e| VmmError::TraceFile(path.to_owned(), e))
        })
        .transpose()?;
    let rootfs = rootfs_build::build(config.rootfs.as_deref(), config.host_program.as_ref())?;
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
        init: config.init.placement(),
        rootfs: vm.rootfs_window().map(|(gpa, _, size)| (gpa, size)),
        tsc_khz: u64::from(vcpu.tsc_khz()),
        host_stdio: boot::host_stdio_flags(boot::fd_kind),
        volumes: hostfs.volume_count() as u32,
    };
    boot::write_boot_data(vm.memory(), &params, &config.cmdline, &config.init)?;

    // One input buffer for both consumers, one irqfd for both raisers of IRQ 4.
    let console_irq = vm.irqfd(CONSOLE_IRQ)?;
    let input_irq = console_irq.try_clone().map_err(VmError::EventFd)?;
    let tty_signals = Arc::new(TtySignals::new(
        console_irq.try_clone().map_err(VmError::EventFd)?,
    ));
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
        port::TTY_SIGNAL,
        1,
        Box::new(TtySignalPort(Arc::clone(&tty_signals))),
    )?;
    bus.insert(
        port::RTC,
        1,
        Box::new(RtcDevice::new(vm.memory().clone(), system_clock)),
    )?;
    let mut console_out = ConsoleOut::stdio(vm.memory().clone());
    if let Some(trace) = trace {
        console_out = console_out.with_trace(Box::new(trace));
    }
    if config.stats_json.is_some() {
        let mut table = syscall_table.clone();
        table.echo = config.stats;
        console_out = console_out.with_stats(Box::new(table));
    }
    bus.insert(port::CONSOLE_OUT, 1, Box::new(console_out))?;
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
    let mut signals = stop_signal::Receiver::new();
    stop_signal::install().map_err(VmmError::Signals)?;
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
    let mut deadline = config.timeout.and_then(|t| Instant::now().checked_add(t));
    let (done_tx, done_rx) = mpsc::channel();
    let vcpu_stop = Arc::clone(&stop);
    let vcpu_thread = thread::Builder::new()
        .name("vcpu0".into())
        .spawn(move || {
            stop_signal::block_in_thread();
            let result = vcpu.run(&mut bus, &ctx, &vcpu_stop);
            // The receiver only goes away once the VMM has given up on this thread.
            let _ = done_tx.send(result);
        })
        .map_err(|e| VmmError::Thread("vCPU", e))?;
    log::info!("guest started after {:?}", start.elapsed());

    // Wait for the guest, the deadline or a signal that stops it, whichever comes first.
    // SIGINT and SIGQUIT go to the guest's terminal; SIGTERM stops the guest, and so does
    // a terminal signal the guest does not take (a second one while the first is still
    // queued, or one left for TTY_SIGNAL_GRACE).
    let mut forwarded = None;
    let (received, stopped_by) = loop {
        let now = Instant::now();
        let slice = now + stop_signal::POLL_INTERVAL;
        let until = deadline.map_or(slice, |d| d.min(slice));
        match done_rx.recv_timeout(until.saturating_duration_since(now)) {
            Err(RecvTimeoutError::Timeout) => {
                if tty_signals.take_handed_back() & (1 << (libc::SIGTSTP - 1)) != 0 {
                    // The guest has no job control for Ctrl-Z: astra-vmm stops as a
                    // program the host shell runs does; time stopped does not count
                    // against --timeout.
                    let stopped = stop_signal::suspend_self();
                    deadline = deadline.and_then(|d| d.checked_add(stopped));
                    continue;
                }
                let untaken = tty_signals.untaken_since();
                let stop_on = match signals.take() {
                    Some(signal)
                        if stop_signal::is_terminal_signal(signal) && untaken.is_none() =>
                    {
                        tty_signals.queue(signal as u32);
                        forwarded = Some(signal);
                        None
                    }
                    Some(signal) => Some(signal),
                    None => untaken
                        .filter(|at| at.elapsed() >= TTY_SIGNAL_GRACE)
                        .and(forwarded),
                };
                if let Some(signal) = stop_on {
                    break (
                        Err(RecvTimeoutError::Timeout),
                        Some(Outcome::Interrupted(signal as u8)),
                    );
                }
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    let timeout = Outcome::Timeout(config.timeout.unwrap_or_default());
                    break (Err(RecvTimeoutError::Timeout), Some(timeout));
                }
            }
            other => break (other, None),
        }
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
                log::warn!("the vCPU did not stop within {KICK_GRACE:?} of being told to");
                // It may still be in KVM_RUN on this VM's memory: never unmap it.
                std::mem::forget(vm);
                None
            };
            let outcome =
                stopped_by.unwrap_or(Outcome::Timeout(config.timeout.unwrap_or_default()));
            Ok((outcome, vm))
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
            init: init_args::InitArgs::new(&["/init".into()], &[], "/".as_ref()).unwrap(),
            host_program: None,
            timeout: None,
            stats: false,
            strace_file: None,
            stats_json: None,
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
        assert!(matches!(
            err,
            VmmError::RootfsBuild(rootfs_build::RootfsBuildError::Rootfs(RootfsError::Read(
                ..
            )))
        ));
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

//! The bare-KVM floor for benchmarks: the least a VMM must do to run a guest and exit.
//!
//! Opens `/dev/kvm`, creates a VM with one RAM slot of `--mem` bytes (same parsing and
//! default as `astra-vmm`), runs a vCPU in real mode through
//! `mov al, 0; mov dx, 0x501; out dx, al; hlt` and exits 0 when the port write arrives.
//! `make bench` compares `astra-vmm`'s boot-to-exit time against this.

use anyhow::{bail, Context, Result};
use astra_vmm::cli::parse_mem;
use clap::Parser;
use kvm_bindings::kvm_userspace_memory_region;
use kvm_ioctls::{Kvm, VcpuExit};
use vm_memory::{Bytes, GuestAddress, GuestMemoryBackend, GuestMemoryMmap, GuestMemoryRegion};

/// Where the real-mode code is loaded and started.
const CODE_GPA: u64 = 0x1000;
/// `mov al, 0; mov dx, 0x501; out dx, al; hlt`
const CODE: [u8; 7] = [0xb0, 0x00, 0xba, 0x01, 0x05, 0xee, 0xf4];
/// The port the code writes to (astra's exit port).
const EXIT_PORT: u16 = hypercall_abi::port::EXIT;

/// Boots a 7-byte real-mode guest that exits through a port: the floor of any KVM VMM.
#[derive(Parser)]
#[command(name = "kvm-floor", version)]
struct Args {
    /// Guest RAM (same syntax and default as astra-vmm).
    #[arg(long, value_name = "SIZE", default_value = "256M", value_parser = parse_mem)]
    mem: u64,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let kvm = Kvm::new().context("Cannot open /dev/kvm")?;
    let vm = kvm.create_vm().context("KVM_CREATE_VM")?;
    let mem = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), args.mem as usize)])
        .context("Cannot allocate guest RAM")?;
    for region in mem.iter() {
        let slot = kvm_userspace_memory_region {
            slot: 0,
            flags: 0,
            guest_phys_addr: region.start_addr().0,
            memory_size: region.len(),
            userspace_addr: region.as_ptr() as u64,
        };
        // SAFETY: the region is a live mapping owned by `mem`, which outlives `vm`... and
        // the process ends right after the run.
        unsafe { vm.set_user_memory_region(slot) }.context("KVM_SET_USER_MEMORY_REGION")?;
    }
    mem.write_slice(&CODE, GuestAddress(CODE_GPA))
        .context("Cannot write the guest code")?;

    let mut vcpu = vm.create_vcpu(0).context("KVM_CREATE_VCPU")?;
    let mut sregs = vcpu.get_sregs().context("KVM_GET_SREGS")?;
    sregs.cs.base = 0;
    sregs.cs.selector = 0;
    vcpu.set_sregs(&sregs).context("KVM_SET_SREGS")?;
    let regs = kvm_bindings::kvm_regs {
        rip: CODE_GPA,
        rflags: 0x2,
        ..Default::default()
    };
    vcpu.set_regs(&regs).context("KVM_SET_REGS")?;

    loop {
        match vcpu.run() {
            Ok(VcpuExit::IoOut(EXIT_PORT, _)) => return Ok(()),
            Ok(VcpuExit::Hlt) => bail!("guest halted without writing port {EXIT_PORT:#x}"),
            Ok(exit) => bail!("unexpected KVM exit {exit:?}"),
            Err(e) if e.errno() == libc::EINTR => {}
            Err(e) => return Err(e).context("KVM_RUN"),
        }
    }
}

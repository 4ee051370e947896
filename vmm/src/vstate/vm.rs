//! The KVM VM: `/dev/kvm`, the VM file descriptor, the in-kernel irqchip and PIT, and the
//! memory slots for guest RAM and the read-only rootfs.

use std::io;

use kvm_bindings::{
    kvm_pit_config, kvm_userspace_memory_region, KVM_MEM_READONLY, KVM_PIT_SPEAKER_DUMMY,
};
use kvm_ioctls::{Cap, Kvm, VmFd};
use vm_memory::{GuestMemoryBackend, GuestMemoryMmap, GuestMemoryRegion};
use vmm_sys_util::eventfd::EventFd;

use super::vcpu::{Vcpu, VcpuError};
use crate::arch::x86_64::layout::{KVM_TSS_ADDRESS, RAM_SLOT, ROOTFS_GPA, ROOTFS_SLOT};
use crate::devices::rootfs::RootfsImage;

/// The only KVM API version there is.
const KVM_API_VERSION: i32 = 12;

/// Errors creating and setting up the VM.
#[derive(Debug, thiserror::Error)]
pub enum VmError {
    /// No `/dev/kvm`.
    #[error("astra-vmm needs KVM: /dev/kvm does not exist (load kvm_intel/kvm_amd or kvm_pvm)")]
    KvmMissing,
    /// `/dev/kvm` is there but not ours to open.
    #[error("astra-vmm needs KVM: no permission to open /dev/kvm (add your user to the kvm group: sudo usermod -aG kvm $USER, then log in again)")]
    KvmPermission,
    /// Opening `/dev/kvm` failed otherwise.
    #[error("Cannot open /dev/kvm")]
    KvmOpen(#[source] kvm_ioctls::Error),
    /// An unexpected `KVM_GET_API_VERSION`.
    #[error("/dev/kvm reports API version {0}, astra-vmm needs {KVM_API_VERSION}")]
    ApiVersion(i32),
    /// A required capability is missing.
    #[error("KVM on this host lacks {0}, which astra-vmm needs")]
    MissingCap(&'static str),
    /// An ioctl on the VM failed.
    #[error("KVM {0} failed")]
    Ioctl(&'static str, #[source] kvm_ioctls::Error),
    /// An eventfd could not be created.
    #[error("Cannot create an eventfd")]
    EventFd(#[source] io::Error),
    /// The vCPU could not be created.
    #[error(transparent)]
    Vcpu(#[from] VcpuError),
}

/// The VM and everything it references. Field order is drop order: the VM file descriptor
/// goes before the memory its slots point at.
pub struct Vm {
    fd: VmFd,
    rootfs: Option<RootfsImage>,
    memory: GuestMemoryMmap,
    kvm: Kvm,
}

/// Opens `/dev/kvm`, with the error messages a user can act on.
pub fn open_kvm() -> Result<Kvm, VmError> {
    let kvm = Kvm::new().map_err(|e| match e.errno() {
        libc::ENOENT | libc::ENODEV | libc::ENXIO => VmError::KvmMissing,
        libc::EACCES | libc::EPERM => VmError::KvmPermission,
        _ => VmError::KvmOpen(e),
    })?;
    let version = kvm.get_api_version();
    if version != KVM_API_VERSION {
        return Err(VmError::ApiVersion(version));
    }
    Ok(kvm)
}

impl Vm {
    /// Creates a VM with the in-kernel irqchip and PIT, and `memory` as its RAM.
    pub fn new(memory: GuestMemoryMmap) -> Result<Self, VmError> {
        let kvm = open_kvm()?;
        let fd = kvm
            .create_vm()
            .map_err(|e| VmError::Ioctl("KVM_CREATE_VM", e))?;
        let vm = Vm {
            fd,
            rootfs: None,
            memory,
            kvm,
        };
        // RAM goes in before the irqchip exists: measured on the PVM host, the same
        // KVM_SET_USER_MEMORY_REGION takes ~0.2 ms before KVM_CREATE_IRQCHIP and 4-9 ms after.
        for region in vm.memory.iter() {
            let slot = kvm_userspace_memory_region {
                slot: RAM_SLOT,
                flags: 0,
                guest_phys_addr: region.start_addr().0,
                memory_size: region.len(),
                userspace_addr: region.as_ptr() as u64,
            };
            // SAFETY: the region is a live mapping of `memory_size` bytes owned by
            // `vm.memory`, which outlives the VM file descriptor (field order above).
            unsafe { vm.fd.set_user_memory_region(slot) }
                .map_err(|e| VmError::Ioctl("KVM_SET_USER_MEMORY_REGION (RAM)", e))?;
        }
        Ok(vm)
    }

    /// Creates the in-kernel irqchip and PIT.
    ///
    /// Call after every memory slot is registered: on the PVM hosts measured here a
    /// `KVM_SET_USER_MEMORY_REGION` costs ~0.2 ms before the irqchip exists and 4-9 ms
    /// after. The PIT keeps KVM's default of replaying missed ticks: turning that off
    /// (`KVM_REINJECT_CONTROL`) waits for an SRCU grace period, ~13 ms of boot time
    /// here, so the guest discards replayed ticks itself.
    pub fn create_interrupt_controllers(&mut self) -> Result<(), VmError> {
        self.fd
            .set_tss_address(KVM_TSS_ADDRESS)
            .map_err(|e| VmError::Ioctl("KVM_SET_TSS_ADDR", e))?;
        self.fd
            .create_irq_chip()
            .map_err(|e| VmError::Ioctl("KVM_CREATE_IRQCHIP", e))?;
        let pit = kvm_pit_config {
            flags: KVM_PIT_SPEAKER_DUMMY,
            ..Default::default()
        };
        self.fd
            .create_pit2(pit)
            .map_err(|e| VmError::Ioctl("KVM_CREATE_PIT2", e))?;
        Ok(())
    }

    /// Maps `rootfs` read-only at `ROOTFS_GPA`.
    pub fn map_rootfs(&mut self, rootfs: RootfsImage) -> Result<(), VmError> {
        if !self.kvm.check_extension(Cap::ReadonlyMem) {
            return Err(VmError::MissingCap("KVM_CAP_READONLY_MEM"));
        }
        let slot = kvm_userspace_memory_region {
            slot: ROOTFS_SLOT,
            flags: KVM_MEM_READONLY,
            guest_phys_addr: ROOTFS_GPA,
            memory_size: rootfs.map_len(),
            userspace_addr: rootfs.host_addr(),
        };
        // SAFETY: the mapping of `map_len` bytes is owned by the `RootfsImage` stored in
        // `self`, which outlives the VM file descriptor (field order above).
        unsafe { self.fd.set_user_memory_region(slot) }
            .map_err(|e| VmError::Ioctl("KVM_SET_USER_MEMORY_REGION (rootfs)", e))?;
        self.rootfs = Some(rootfs);
        Ok(())
    }

    /// The mapped rootfs, if any.
    pub fn rootfs(&self) -> Option<&RootfsImage> {
        self.rootfs.as_ref()
    }

    /// The guest-physical window of the rootfs: `(gpa, mapped length, file size)`.
    pub fn rootfs_window(&self) -> Option<(u64, u64, u64)> {
        self.rootfs
            .as_ref()
            .map(|r| (ROOTFS_GPA, r.map_len(), r.size()))
    }

    /// Guest RAM.
    pub fn memory(&self) -> &GuestMemoryMmap {
        &self.memory
    }

    /// An eventfd that raises `gsi` when signalled.
    pub fn irqfd(&self, gsi: u32) -> Result<EventFd, VmError> {
        let evt = EventFd::new(libc::EFD_NONBLOCK).map_err(VmError::EventFd)?;
        self.fd
            .register_irqfd(&evt, gsi)
            .map_err(|e| VmError::Ioctl("KVM_IRQFD", e))?;
        Ok(evt)
    }

    /// Creates vCPU `id`, configured to start at `entry` with `rdi` = `boot_info_gpa`.
    pub fn create_vcpu(&self, id: u8, entry: u64, boot_info_gpa: u64) -> Result<Vcpu, VmError> {
        let fd = self
            .fd
            .create_vcpu(u64::from(id))
            .map_err(|e| VmError::Ioctl("KVM_CREATE_VCPU", e))?;
        let vcpu = Vcpu::new(fd);
        vcpu.configure(&self.kvm, entry, boot_info_gpa)?;
        Ok(vcpu)
    }
}

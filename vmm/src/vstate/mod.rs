//! KVM state: the VM, its memory and its vCPU.

pub mod exit_stats;
pub mod memory;
pub mod vcpu;
pub mod vcpu_handle;
pub mod vm;

//! Memory: physical frames, the kernel heap, and address spaces.

pub mod fault;
pub mod frame;
pub mod heap;
pub mod kalloc;
pub mod paging;
pub mod selftest;
pub mod source;
pub mod uaccess;
pub mod user;
pub mod vma;

use core::sync::atomic::{AtomicU64, Ordering};

/// Size of a page.
pub const PAGE_SIZE: u64 = 4096;

/// Where guest-physical memory is visible: at -2 GiB during early boot (boot tables map
/// the first GiB there), then in the direct map once the kernel's own tables are live.
static PHYS_OFFSET: AtomicU64 = AtomicU64::new(hypercall_abi::layout::KERNEL_VIRT_BASE);

/// The kernel virtual address of a guest-physical address.
pub fn phys_to_virt(pa: u64) -> u64 {
    PHYS_OFFSET.load(Ordering::Relaxed) + pa
}

/// Switches [`phys_to_virt`] to the direct map.
pub fn use_direct_map() {
    PHYS_OFFSET.store(hypercall_abi::layout::PHYS_MAP_BASE, Ordering::Relaxed);
}

/// The guest-physical address of a kernel-image virtual address.
pub fn kernel_virt_to_phys(va: u64) -> u64 {
    va - hypercall_abi::layout::KERNEL_VIRT_BASE
}

/// Rounds up to a page boundary.
pub const fn page_align_up(value: u64) -> u64 {
    (value + PAGE_SIZE - 1) & !(PAGE_SIZE - 1)
}

/// Rounds down to a page boundary.
pub const fn page_align_down(value: u64) -> u64 {
    value & !(PAGE_SIZE - 1)
}

static KERNEL_SPACE: spin::Once<paging::AddressSpace> = spin::Once::new();

/// Records the kernel's address space (once, at boot).
pub fn set_kernel_space(space: paging::AddressSpace) {
    KERNEL_SPACE.call_once(|| space);
}

/// The kernel's address space; every user space shares its upper half.
pub fn kernel_space() -> &'static paging::AddressSpace {
    KERNEL_SPACE
        .get()
        .expect("kernel address space is set up at boot")
}

/// Switches back to the kernel's own tables.
pub fn activate_kernel_space() {
    // SAFETY: the kernel space maps the kernel.
    unsafe { kernel_space().activate() };
}

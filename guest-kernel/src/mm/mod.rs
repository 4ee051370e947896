//! Memory: physical frames, the kernel heap, and address spaces.

mod cow;
pub mod fault;
pub mod filemap;
pub mod frame;
pub mod heap;
pub mod kalloc;
pub mod paging;
pub mod refcount;
pub mod selftest;
pub mod shared;
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

/// A user address space: its page tables and the memory areas that describe them.
///
/// Threads of a process share one (`Arc<Mutex<Mm>>`, as `CLONE_VM` says); everything that
/// touches user memory works on an `Mm`, never on a task or process.
pub struct Mm {
    /// The page tables.
    pub space: paging::AddressSpace,
    /// The memory areas, program break and layout (kept in step with `space`).
    pub mem: user::UserMemory,
}

impl Mm {
    /// An address space from its tables and areas.
    pub fn new(space: paging::AddressSpace, mem: user::UserMemory) -> Self {
        Mm { space, mem }
    }

    /// Resolves a fault at `addr` for `access` (demand paging).
    pub fn fault(&mut self, addr: u64, access: vma::Access) -> Result<(), user::FaultError> {
        self.mem.fault(&mut self.space, addr, access)
    }

    /// The physical address and entry flags `va` maps to, if any.
    pub fn translate(&self, va: u64) -> Option<(u64, u64)> {
        self.space.translate(va)
    }

    /// Maps an area (see [`user::UserMemory::map`]).
    pub fn map(&mut self, req: user::MapRequest) -> Result<u64, crate::errno::Errno> {
        self.mem.map(&mut self.space, req)
    }

    /// Faults in `[start, end)` for `access` (MAP_POPULATE, MADV_WILLNEED).
    pub fn populate(
        &mut self,
        start: u64,
        end: u64,
        access: vma::Access,
    ) -> Result<(), user::FaultError> {
        self.mem.populate(&mut self.space, start, end, access)
    }

    /// Reads user memory as the program would see it.
    pub fn read(&self, va: u64, buf: &mut [u8]) -> Result<(), crate::errno::Errno> {
        self.mem.read(&self.space, va, buf)
    }

    /// Writes user memory as the program would, faulting pages in.
    pub fn write(&mut self, va: u64, data: &[u8]) -> Result<(), user::FaultError> {
        self.mem.write(&mut self.space, va, data)
    }
}

impl Drop for Mm {
    fn drop(&mut self) {
        // Never free the tables the CPU is using.
        if arch_cr3_is(self.space.pml4_phys()) || arch_cr3_is(self.space.user_pml4_phys()) {
            activate_kernel_space();
        }
        self.space.free();
    }
}

fn arch_cr3_is(pml4: u64) -> bool {
    pml4 != 0 && crate::arch::cpu::loaded_cr3() & !0xfff == pml4
}

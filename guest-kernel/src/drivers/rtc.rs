//! The RTC device: the host's wall-clock time.

use hypercall_abi::{status, RtcRequest};
use spin::Mutex;

use crate::arch::port;
use crate::mm::kernel_virt_to_phys;

static REQUEST: Mutex<RtcRequest> = Mutex::new(RtcRequest {
    unix_time_ns: 0,
    status: 0,
    _pad: 0,
});

/// Nanoseconds since the Unix epoch, or `None` if the device refused the request.
pub fn unix_time_ns() -> Option<u64> {
    let mut req = REQUEST.lock();
    req.status = status::PENDING;
    let gpa = kernel_virt_to_phys(&*req as *const RtcRequest as u64);
    port::outl(hypercall_abi::port::RTC, gpa as u32);
    // SAFETY: the VMM wrote the block during the port write; read it back volatile so the
    // compiler does not reuse the values stored before the exit.
    let done = unsafe { core::ptr::read_volatile(&*req) };
    (done.status == status::OK).then_some(done.unix_time_ns)
}

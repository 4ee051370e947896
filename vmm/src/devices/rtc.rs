//! The RTC device: the guest writes the 32-bit GPA of an [`RtcRequest`] to [`port::RTC`];
//! the VMM fills in the host's wall-clock time and the status.
//!
//! The request lives in guest memory, so every access goes through vm-memory's checked
//! `write_obj`: a GPA outside RAM, misaligned or straddling the end of RAM gets
//! [`status::INVALID`] where that can still be written, and is otherwise dropped.
//!
//! [`port::RTC`]: hypercall_abi::port::RTC

use std::mem::{offset_of, size_of};
use std::time::{SystemTime, UNIX_EPOCH};

use hypercall_abi::{status, RtcRequest};
use vm_memory::{Bytes, GuestAddress, GuestMemoryBackend, GuestMemoryMmap};

use super::{IoAction, PortIo};

/// A source of nanoseconds since the Unix epoch.
pub type Clock = fn() -> u64;

/// The host's wall clock; 0 if it is before 1970.
pub fn system_clock() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// The RTC device.
pub struct RtcDevice {
    mem: GuestMemoryMmap,
    clock: Clock,
}

impl RtcDevice {
    /// An RTC over guest memory `mem` reading time from `clock`.
    pub fn new(mem: GuestMemoryMmap, clock: Clock) -> Self {
        RtcDevice { mem, clock }
    }

    /// Serves the request at `gpa`; returns the status written, or `None` if not even the
    /// status field could be written.
    pub fn handle(&self, gpa: u64) -> Option<u32> {
        let base = GuestAddress(gpa);
        let status_gpa = GuestAddress(gpa.checked_add(offset_of!(RtcRequest, status) as u64)?);
        let whole = gpa.is_multiple_of(8) && self.mem.check_range(base, size_of::<RtcRequest>());
        let status = if whole {
            let time_gpa = base.0 + offset_of!(RtcRequest, unix_time_ns) as u64;
            match self.mem.write_obj((self.clock)(), GuestAddress(time_gpa)) {
                Ok(()) => status::OK,
                Err(_) => status::INVALID,
            }
        } else {
            status::INVALID
        };
        match self.mem.write_obj(status, status_gpa) {
            Ok(()) => Some(status),
            Err(_) => None,
        }
    }
}

impl PortIo for RtcDevice {
    fn read(&mut self, _offset: u16, data: &mut [u8]) {
        data.fill(0xff);
    }

    fn write(&mut self, _offset: u16, data: &[u8]) -> IoAction {
        let gpa = match super::doorbell_gpa("RTC", data) {
            Ok(gpa) => gpa,
            Err(stop) => return stop,
        };
        match self.handle(gpa) {
            Some(status::OK) => log::trace!("rtc: request at {gpa:#x} served"),
            Some(_) => crate::guest_warn!("rtc: invalid request at {gpa:#x}"),
            None => crate::guest_warn!("rtc: request at {gpa:#x} is outside guest RAM, dropped"),
        }
        IoAction::Continue
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exit_code::Outcome;

    const NOW: u64 = 1_700_000_000_123_456_789;

    fn device() -> RtcDevice {
        let mem = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 0x10000)]).unwrap();
        RtcDevice::new(mem, || NOW)
    }

    fn read(dev: &RtcDevice, gpa: u64) -> (u64, u32) {
        let time = dev.mem.read_obj(GuestAddress(gpa)).unwrap();
        let status = dev.mem.read_obj(GuestAddress(gpa + 8)).unwrap();
        (time, status)
    }

    #[test]
    fn fills_in_a_valid_request() {
        let mut dev = device();
        let gpa = 0x1000u32;
        assert_eq!(dev.write(0, &gpa.to_le_bytes()), IoAction::Continue);
        assert_eq!(read(&dev, 0x1000), (NOW, status::OK));
        assert_eq!(dev.handle(0x10000 - 16), Some(status::OK));
    }

    #[test]
    fn bad_requests_get_invalid_or_are_dropped() {
        let dev = device();
        assert_eq!(dev.handle(0x1004), Some(status::INVALID));
        assert_eq!(read(&dev, 0x1004).1, status::INVALID);
        assert_eq!(read(&dev, 0x1000).0, 0, "time must not be written");
        // The status fits but the whole block does not.
        assert_eq!(dev.handle(0x10000 - 12), Some(status::INVALID));
        assert_eq!(dev.handle(0x10000 - 8), None);
        assert_eq!(dev.handle(0xffff_fff8), None);
        assert_eq!(dev.handle(u64::MAX - 4), None);
    }

    #[test]
    fn wrong_width_is_a_guest_crash() {
        let mut dev = device();
        assert!(matches!(
            dev.write(0, &[0, 0x10]),
            IoAction::Stop(Outcome::GuestCrash { .. })
        ));
    }

    #[test]
    fn system_clock_is_after_2020() {
        assert!(system_clock() > 1_577_836_800_000_000_000);
    }
}

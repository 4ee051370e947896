//! Device models and the port-I/O bus that routes the guest's `in`/`out` to them.
//!
//! Devices are plain state machines behind the [`PortIo`] trait: they never see KVM, so
//! each is tested on its own, and the bus is tested with fakes.

pub mod console_in;
pub mod console_out;
pub mod exit;
pub mod hostfs;
pub mod rootfs;
pub mod rtc;
pub mod serial;
pub mod stdin;
pub mod tty_signal;

/// Test doubles shared by the device tests.
#[cfg(test)]
pub(crate) mod test_util {
    use std::io::{self, Write};
    use std::sync::{Arc, Mutex};

    /// A writer that keeps what it is given, readable through a clone.
    #[derive(Clone, Default)]
    pub struct SharedBuf(pub Arc<Mutex<Vec<u8>>>);

    impl Write for SharedBuf {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl SharedBuf {
        /// Everything written so far, leaving the buffer empty.
        pub fn take(&self) -> Vec<u8> {
            std::mem::take(&mut *self.0.lock().unwrap())
        }
    }
}

use crate::exit_code::Outcome;

/// What the vCPU loop does after a port access.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IoAction {
    /// Resume the guest.
    Continue,
    /// End the VM.
    Stop(Outcome),
}

/// A device reached by port I/O. `offset` is relative to the device's first port; `data` is
/// the access (1, 2 or 4 bytes; more for `rep ins`/`rep outs`).
pub trait PortIo: Send {
    /// The guest reads from the device.
    fn read(&mut self, offset: u16, data: &mut [u8]);
    /// The guest writes to the device.
    fn write(&mut self, offset: u16, data: &[u8]) -> IoAction;
}

/// Decodes a doorbell write: the 32-bit guest-physical address of a request block
/// (console input and output, RTC). Any other width breaks the protocol and stops the VM.
pub fn doorbell_gpa(device: &str, data: &[u8]) -> Result<u64, IoAction> {
    let raw = <[u8; 4]>::try_from(data).map_err(|_| {
        IoAction::Stop(Outcome::crash(format!(
            "{device} device written with {} bytes, expected the 4-byte GPA of a request",
            data.len()
        )))
    })?;
    Ok(u64::from(u32::from_le_bytes(raw)))
}

/// The raw bytes of a guest's request block (`N` = the size of its `hypercall_abi`
/// struct), copied out of guest memory: the host never holds references into guest RAM.
pub struct RequestBlock<const N: usize>([u8; N]);

impl<const N: usize> RequestBlock<N> {
    /// The block at `gpa`, if `gpa` is 8-byte aligned and all of it lies in guest RAM.
    pub fn read(mem: &vm_memory::GuestMemoryMmap, gpa: u64) -> Option<Self> {
        use vm_memory::Bytes;
        let mut raw = [0u8; N];
        if !gpa.is_multiple_of(8) {
            return None;
        }
        mem.read_slice(&mut raw, vm_memory::GuestAddress(gpa))
            .ok()?;
        Some(RequestBlock(raw))
    }

    /// The little-endian `u32` field at `offset` (an `offset_of!` of the struct).
    pub fn u32_at(&self, offset: usize) -> u32 {
        let mut bytes = [0u8; 4];
        bytes.copy_from_slice(&self.0[offset..offset + 4]);
        u32::from_le_bytes(bytes)
    }

    /// The little-endian `u64` field at `offset`.
    pub fn u64_at(&self, offset: usize) -> u64 {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(&self.0[offset..offset + 8]);
        u64::from_le_bytes(bytes)
    }
}

/// Errors building the bus.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BusError {
    /// Two devices claim a port.
    #[error("Port range {base:#x}+{len} overlaps another device")]
    Overlap {
        /// First port.
        base: u16,
        /// Number of ports.
        len: u16,
    },
}

struct PortRange {
    base: u16,
    len: u16,
    device: Box<dyn PortIo>,
}

impl PortRange {
    fn end(&self) -> u32 {
        u32::from(self.base) + u32::from(self.len)
    }
}

/// Routes port accesses to the device that owns the port.
#[derive(Default)]
pub struct PortBus {
    ranges: Vec<PortRange>,
}

impl PortBus {
    /// An empty bus.
    pub fn new() -> Self {
        Self::default()
    }

    /// Gives `len` ports from `base` to `device`.
    pub fn insert(&mut self, base: u16, len: u16, device: Box<dyn PortIo>) -> Result<(), BusError> {
        let end = u32::from(base) + u32::from(len);
        let overlaps = self
            .ranges
            .iter()
            .any(|r| u32::from(base) < r.end() && u32::from(r.base) < end);
        if len == 0 || overlaps {
            return Err(BusError::Overlap { base, len });
        }
        self.ranges.push(PortRange { base, len, device });
        Ok(())
    }

    fn find(&mut self, port: u16) -> Option<(&mut (dyn PortIo + 'static), u16)> {
        self.ranges
            .iter_mut()
            .find(|r| (u32::from(r.base)..r.end()).contains(&u32::from(port)))
            .map(|r| (r.device.as_mut(), port - r.base))
    }

    /// Dispatches an `in`; `None` if no device owns the port.
    pub fn read(&mut self, port: u16, data: &mut [u8]) -> Option<()> {
        let (device, offset) = self.find(port)?;
        device.read(offset, data);
        Some(())
    }

    /// Dispatches an `out`; `None` if no device owns the port.
    pub fn write(&mut self, port: u16, data: &[u8]) -> Option<IoAction> {
        let (device, offset) = self.find(port)?;
        Some(device.write(offset, data))
    }
}

/// Ports that legacy code pokes for delays or the speaker: writes are dropped, reads see 0.
pub struct Sink;

impl PortIo for Sink {
    fn read(&mut self, _offset: u16, data: &mut [u8]) {
        data.fill(0);
    }

    fn write(&mut self, _offset: u16, _data: &[u8]) -> IoAction {
        IoAction::Continue
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    type Log = Arc<Mutex<Vec<(u16, Vec<u8>)>>>;

    #[test]
    fn request_blocks_are_aligned_whole_and_little_endian() {
        use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};
        let mem = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 0x1000)]).unwrap();
        mem.write_slice(
            &[1, 0, 0, 0, 0, 0, 0, 0x80, 7, 0, 0, 0],
            GuestAddress(0x100),
        )
        .unwrap();
        let block = RequestBlock::<16>::read(&mem, 0x100).unwrap();
        assert_eq!(block.u64_at(0), 0x8000_0000_0000_0001);
        assert_eq!(block.u32_at(8), 7);
        assert!(
            RequestBlock::<16>::read(&mem, 0x104).is_none(),
            "misaligned"
        );
        assert!(
            RequestBlock::<16>::read(&mem, 0xff8).is_none(),
            "runs past RAM"
        );
        assert!(RequestBlock::<16>::read(&mem, u64::MAX - 7).is_none());
    }

    #[test]
    fn doorbells_take_exactly_a_32_bit_address() {
        assert_eq!(
            doorbell_gpa("x", &0x1234_5678u32.to_le_bytes()),
            Ok(0x1234_5678)
        );
        for bad in [&[1u8][..], &[1, 2], &[1, 2, 3, 4, 5, 6, 7, 8]] {
            match doorbell_gpa("console input", bad) {
                Err(IoAction::Stop(Outcome::GuestCrash { reason, .. })) => {
                    assert!(
                        reason.starts_with("console input device written with"),
                        "{reason}"
                    );
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[derive(Default)]
    struct Recorder(Log);

    impl PortIo for Recorder {
        fn read(&mut self, offset: u16, data: &mut [u8]) {
            data.fill(offset as u8);
        }

        fn write(&mut self, offset: u16, data: &[u8]) -> IoAction {
            self.0.lock().unwrap().push((offset, data.to_vec()));
            IoAction::Continue
        }
    }

    #[test]
    fn dispatches_by_port_with_relative_offsets() {
        let log = Log::default();
        let mut bus = PortBus::new();
        bus.insert(0x3f8, 8, Box::new(Recorder(log.clone())))
            .unwrap();
        bus.insert(0x80, 1, Box::new(Sink)).unwrap();
        assert_eq!(bus.write(0x3f8, b"h"), Some(IoAction::Continue));
        assert_eq!(bus.write(0x3ff, &[1, 2]), Some(IoAction::Continue));
        assert_eq!(bus.write(0x80, &[0]), Some(IoAction::Continue));
        assert_eq!(
            *log.lock().unwrap(),
            vec![(0, b"h".to_vec()), (7, vec![1, 2])]
        );
        let mut data = [0xaa; 2];
        assert_eq!(bus.read(0x3fd, &mut data), Some(()));
        assert_eq!(data, [5, 5]);
        assert_eq!(bus.read(0x80, &mut data), Some(()));
        assert_eq!(data, [0, 0]);
    }

    #[test]
    fn unknown_ports_are_reported() {
        let mut bus = PortBus::new();
        bus.insert(0x3f8, 8, Box::new(Sink)).unwrap();
        assert_eq!(bus.write(0x3f7, &[0]), None);
        assert_eq!(bus.write(0x400, &[0]), None);
        assert_eq!(bus.read(0xffff, &mut [0]), None);
    }

    #[test]
    fn overlapping_ranges_are_refused() {
        let mut bus = PortBus::new();
        bus.insert(0xfff8, 8, Box::new(Sink)).unwrap();
        assert!(bus.insert(0xfffc, 1, Box::new(Sink)).is_err());
        assert!(bus.insert(0xfff0, 9, Box::new(Sink)).is_err());
        assert!(bus.insert(0x10, 0, Box::new(Sink)).is_err());
        assert!(bus.insert(0xfff0, 8, Box::new(Sink)).is_ok());
        assert!(bus.write(0xffff, &[0]).is_some());
    }
}

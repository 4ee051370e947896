//! Batched console input: the guest writes the 32-bit GPA of a [`ConsoleRead`] to
//! [`port::CONSOLE_IN`] and the VMM copies up to `capacity` bytes of its buffered stdin
//! ([`StdinBuffer`]) into guest memory, in one VM exit instead of two per byte through the
//! UART. It never waits: an empty buffer reads 0 bytes and arms the console interrupt
//! (see the `stdin` module).
//!
//! The guest is hostile: the request block is read and written only through vm-memory's
//! checked accessors, the whole destination range is checked against guest RAM before a
//! byte is taken from the buffer (so a bad request loses no input), and a malformed
//! request gets [`status::INVALID`] written back where the status field itself lies in
//! RAM.
//!
//! [`port::CONSOLE_IN`]: hypercall_abi::port::CONSOLE_IN

use std::mem::{offset_of, size_of};
use std::sync::Arc;

use hypercall_abi::{read_flags, status, ConsoleRead};
use vm_memory::{Bytes, GuestAddress, GuestMemoryBackend, GuestMemoryMmap};

use super::stdin::StdinBuffer;
use super::{IoAction, PortIo, RequestBlock};

/// Why a request was refused (reported in the VMM's debug log).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConsoleInError {
    /// The request block is misaligned or not entirely in guest RAM.
    #[error("Request block at {0:#x} is misaligned or outside guest RAM")]
    BadRequest(u64),
    /// The destination is not entirely in guest RAM.
    #[error("Destination {gpa:#x}+{capacity} is outside guest RAM")]
    BadData {
        /// Start of the destination.
        gpa: u64,
        /// Its size.
        capacity: u32,
    },
}

/// The console input device.
pub struct ConsoleIn {
    mem: GuestMemoryMmap,
    input: Arc<StdinBuffer>,
    /// Run before the first valid request: takes the input away from the UART.
    hand_over: Option<Box<dyn FnOnce() + Send>>,
}

impl ConsoleIn {
    /// A device moving input from `input` into guest memory `mem`; `hand_over` runs once,
    /// before the first request is served (the UART gives back its unread bytes there).
    pub fn new(
        mem: GuestMemoryMmap,
        input: Arc<StdinBuffer>,
        hand_over: Option<Box<dyn FnOnce() + Send>>,
    ) -> Self {
        ConsoleIn {
            mem,
            input,
            hand_over,
        }
    }

    /// Serves the request at `gpa` and writes its results back; returns the status, or
    /// `None` if not even the status field lies in guest RAM (the request is dropped).
    pub fn handle(&mut self, gpa: u64) -> Option<u32> {
        match self.serve(gpa) {
            Ok(code) => Some(code),
            Err(e) => {
                log::debug!("console-in: request at {gpa:#x}: {e}");
                let status_gpa = gpa.checked_add(offset_of!(ConsoleRead, status) as u64)?;
                self.mem
                    .write_obj(status::INVALID, GuestAddress(status_gpa))
                    .ok()?;
                Some(status::INVALID)
            }
        }
    }

    fn serve(&mut self, gpa: u64) -> Result<u32, ConsoleInError> {
        let (data_gpa, capacity) = self.read_request(gpa)?;
        let bad_data = ConsoleInError::BadData {
            gpa: data_gpa,
            capacity,
        };
        let len = capacity as usize;
        if data_gpa.checked_add(u64::from(capacity)).is_none()
            || !self.mem.check_range(GuestAddress(data_gpa), len)
        {
            return Err(bad_data);
        }
        if let Some(hand_over) = self.hand_over.take() {
            hand_over();
        }
        let mem = &self.mem;
        let taken = self
            .input
            .take(len, |first, second| {
                mem.write_slice(first, GuestAddress(data_gpa))?;
                // In range: first.len() + second.len() <= capacity, checked above.
                mem.write_slice(second, GuestAddress(data_gpa + first.len() as u64))
            })
            .map_err(|_| bad_data)?;
        let mut out = [0u8; 16];
        let fields = [
            taken.count as u32,
            taken.pending as u32,
            status::OK,
            if taken.ended {
                read_flags::INPUT_ENDED
            } else {
                0
            },
        ];
        for (chunk, value) in out.chunks_exact_mut(4).zip(fields) {
            chunk.copy_from_slice(&value.to_le_bytes());
        }
        // count, pending, status and flags are contiguous; the block was checked whole.
        let out_gpa = gpa + offset_of!(ConsoleRead, count) as u64;
        self.mem
            .write_slice(&out, GuestAddress(out_gpa))
            .map_err(|_| ConsoleInError::BadRequest(gpa))?;
        Ok(status::OK)
    }

    /// `(data_gpa, capacity)` of the request at `gpa`, if the block is aligned and in RAM.
    fn read_request(&self, gpa: u64) -> Result<(u64, u32), ConsoleInError> {
        let block = RequestBlock::<{ size_of::<ConsoleRead>() }>::read(&self.mem, gpa)
            .ok_or(ConsoleInError::BadRequest(gpa))?;
        Ok((
            block.u64_at(offset_of!(ConsoleRead, data_gpa)),
            block.u32_at(offset_of!(ConsoleRead, capacity)),
        ))
    }
}

impl PortIo for ConsoleIn {
    fn read(&mut self, _offset: u16, data: &mut [u8]) {
        data.fill(0xff);
    }

    fn write(&mut self, _offset: u16, data: &[u8]) -> IoAction {
        let gpa = match super::doorbell_gpa("console input", data) {
            Ok(gpa) => gpa,
            Err(stop) => return stop,
        };
        if self.handle(gpa).is_none() {
            crate::guest_warn!("console-in: request at {gpa:#x} is outside guest RAM, dropped");
        }
        IoAction::Continue
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::stdin::Consumer;
    use crate::exit_code::Outcome;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use vmm_sys_util::eventfd::EventFd;

    const RAM: usize = 0x20000;

    fn device() -> (ConsoleIn, Arc<StdinBuffer>) {
        let mem = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), RAM)]).unwrap();
        let irq = EventFd::new(libc::EFD_NONBLOCK).unwrap();
        let input = Arc::new(StdinBuffer::new(0x8000, irq));
        (ConsoleIn::new(mem, Arc::clone(&input), None), input)
    }

    /// Writes a request block at `gpa` (outputs set to a recognisable junk value).
    fn put_request(dev: &ConsoleIn, gpa: u64, data_gpa: u64, capacity: u32) {
        let mem = &dev.mem;
        mem.write_obj(data_gpa, GuestAddress(gpa)).unwrap();
        mem.write_obj(capacity, GuestAddress(gpa + 8)).unwrap();
        for off in [12, 16, 24] {
            mem.write_obj(0xdead_beefu32, GuestAddress(gpa + off))
                .unwrap();
        }
        mem.write_obj(status::PENDING, GuestAddress(gpa + 20))
            .unwrap();
    }

    /// (count, pending, status, flags) of the block at `gpa`.
    fn results(dev: &ConsoleIn, gpa: u64) -> (u32, u32, u32, u32) {
        let at = |off| dev.mem.read_obj::<u32>(GuestAddress(gpa + off)).unwrap();
        (at(12), at(16), at(20), at(24))
    }

    fn guest_bytes(dev: &ConsoleIn, gpa: u64, len: usize) -> Vec<u8> {
        let mut buf = vec![0; len];
        dev.mem.read_slice(&mut buf, GuestAddress(gpa)).unwrap();
        buf
    }

    #[test]
    fn copies_buffered_input_and_reports_what_is_left() {
        let (mut dev, input) = device();
        input.push(b"hello, world", &mut || ());
        put_request(&dev, 0x1000, 0x2003, 5);
        assert_eq!(dev.write(0, &0x1000u32.to_le_bytes()), IoAction::Continue);
        assert_eq!(results(&dev, 0x1000), (5, 7, status::OK, 0));
        assert_eq!(guest_bytes(&dev, 0x2003, 5), b"hello");
        put_request(&dev, 0x1000, 0x3000, 4096);
        assert_eq!(dev.handle(0x1000), Some(status::OK));
        assert_eq!(results(&dev, 0x1000), (7, 0, status::OK, 0));
        assert_eq!(guest_bytes(&dev, 0x3000, 7), b", world");
        // Nothing buffered: 0 bytes, no waiting.
        assert_eq!(dev.handle(0x1000), Some(status::OK));
        assert_eq!(results(&dev, 0x1000), (0, 0, status::OK, 0));
    }

    #[test]
    fn the_end_of_input_is_flagged_once_drained() {
        let (mut dev, input) = device();
        input.push(b"ab", &mut || ());
        input.end();
        put_request(&dev, 0x1000, 0x2000, 1);
        assert_eq!(dev.handle(0x1000), Some(status::OK));
        assert_eq!(results(&dev, 0x1000), (1, 1, status::OK, 0));
        assert_eq!(dev.handle(0x1000), Some(status::OK));
        assert_eq!(
            results(&dev, 0x1000),
            (1, 0, status::OK, read_flags::INPUT_ENDED)
        );
        assert_eq!(dev.handle(0x1000), Some(status::OK));
        assert_eq!(
            results(&dev, 0x1000),
            (0, 0, status::OK, read_flags::INPUT_ENDED)
        );
    }

    #[test]
    fn a_zero_capacity_request_only_reports() {
        let (mut dev, input) = device();
        input.push(b"abc", &mut || ());
        put_request(&dev, 0x1000, 0, 0);
        assert_eq!(dev.handle(0x1000), Some(status::OK));
        assert_eq!(results(&dev, 0x1000), (0, 3, status::OK, 0));
        assert_eq!(input.len(), 3);
    }

    #[test]
    fn data_may_end_exactly_at_the_end_of_ram() {
        let (mut dev, input) = device();
        input.push(b"end", &mut || ());
        put_request(&dev, 0x1000, RAM as u64 - 3, 3);
        assert_eq!(dev.handle(0x1000), Some(status::OK));
        assert_eq!(guest_bytes(&dev, RAM as u64 - 3, 3), b"end");
    }

    #[test]
    fn bad_destinations_and_huge_capacities_are_invalid_and_take_nothing() {
        let (mut dev, input) = device();
        input.push(b"precious", &mut || ());
        let cases = [
            (RAM as u64 - 3, 4),
            (RAM as u64, 1),
            (0x2000, u32::MAX),
            (0x2000, RAM as u32),
            (0xffff_ffff_ffff_fff0, 0x20),
            (u64::MAX, 1),
            (0x1_0000_0000, 16),
        ];
        for (data_gpa, capacity) in cases {
            put_request(&dev, 0x1000, data_gpa, capacity);
            assert_eq!(
                dev.handle(0x1000),
                Some(status::INVALID),
                "data {data_gpa:#x}+{capacity}"
            );
            // Only the status is written.
            assert_eq!(
                results(&dev, 0x1000),
                (0xdead_beef, 0xdead_beef, status::INVALID, 0xdead_beef)
            );
        }
        assert_eq!(input.len(), 8);
    }

    #[test]
    fn bad_request_addresses_are_invalid_or_dropped() {
        let (mut dev, input) = device();
        input.push(b"precious", &mut || ());
        // Misaligned: refused, but the status still fits.
        assert_eq!(dev.handle(0x1004), Some(status::INVALID));
        let status: u32 = dev.mem.read_obj(GuestAddress(0x1004 + 20)).unwrap();
        assert_eq!(status, status::INVALID);
        // Running off the end of RAM, but the status still fits.
        assert_eq!(dev.handle(RAM as u64 - 24), Some(status::INVALID));
        // Nothing fits.
        assert_eq!(dev.handle(RAM as u64 - 16), None);
        assert_eq!(dev.handle(0xffff_fff8), None);
        assert_eq!(dev.handle(u64::MAX - 7), None);
        assert_eq!(
            dev.write(0, &0xffff_fff8u32.to_le_bytes()),
            IoAction::Continue
        );
        assert_eq!(input.len(), 8);
        // Bad requests do not take the input from the UART either.
        assert_eq!(input.consumer(), Consumer::Uart);
    }

    #[test]
    fn the_hand_over_runs_once_before_the_first_valid_request() {
        let mem = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), RAM)]).unwrap();
        let input = Arc::new(StdinBuffer::new(
            64,
            EventFd::new(libc::EFD_NONBLOCK).unwrap(),
        ));
        let calls = Arc::new(AtomicUsize::new(0));
        let hand_over = {
            let (calls, input) = (Arc::clone(&calls), Arc::clone(&input));
            Box::new(move || {
                calls.fetch_add(1, Ordering::SeqCst);
                input.switch_to_device(b"first ");
            })
        };
        input.push(b"second", &mut || ());
        let mut dev = ConsoleIn::new(mem, Arc::clone(&input), Some(hand_over));
        assert_eq!(dev.handle(0x1004), Some(status::INVALID));
        assert_eq!(calls.load(Ordering::SeqCst), 0);
        put_request(&dev, 0x1000, 0x2000, 64);
        assert_eq!(dev.handle(0x1000), Some(status::OK));
        assert_eq!(results(&dev, 0x1000).0, 12);
        assert_eq!(guest_bytes(&dev, 0x2000, 12), b"first second");
        assert_eq!(dev.handle(0x1000), Some(status::OK));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        put_request(&dev, 0x1000, 0x2000, 64);
        input.push(b"!", &mut || ());
        assert_eq!(dev.handle(0x1000), Some(status::OK));
        assert_eq!(results(&dev, 0x1000).0, 1);
        assert_eq!(guest_bytes(&dev, 0x2000, 1), b"!");
    }

    #[test]
    fn wrong_width_is_a_guest_crash_and_reads_see_ones() {
        let (mut dev, _) = device();
        assert!(matches!(
            dev.write(0, &[0, 0x10]),
            IoAction::Stop(Outcome::GuestCrash { .. })
        ));
        let mut data = [0; 4];
        dev.read(0, &mut data);
        assert_eq!(data, [0xff; 4]);
    }
}

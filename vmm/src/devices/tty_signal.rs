//! Terminal signals: the host's Ctrl-C (SIGINT) and Ctrl-\ (SIGQUIT) handed to the guest.
//!
//! The host terminal stays in cooked mode (its line editing and echo serve the guest), so
//! its interrupt keys reach the VMM as signals, not as bytes. Like `qemu-x86_64`, which
//! passes such a signal on to the emulated program, the VMM queues it here and raises the
//! console interrupt; the guest kernel reads [`port::TTY_SIGNAL`] and sends the signal to
//! its terminal's foreground process group, as a tty's line discipline does for `^C`.
//!
//! If the guest does not take a signal (its kernel is stuck), or a second one comes while
//! the first is still queued, the VMM stops the guest instead ([`TtySignals::untaken_since`]
//! tells it).
//!
//! [`port::TTY_SIGNAL`]: hypercall_abi::port::TTY_SIGNAL

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use hypercall_abi::tty_signal;
use vmm_sys_util::eventfd::EventFd;

use super::{IoAction, PortIo};
use crate::exit_code::Outcome;

/// Signals queued for the guest, shared by the thread that receives host signals and the
/// port the guest reads.
pub struct TtySignals {
    pending: AtomicU32,
    /// Signals the guest handed back for the host to take (bit `n - 1`).
    handed_back: AtomicU32,
    /// When the oldest signal still pending was queued.
    queued_at: Mutex<Option<Instant>>,
    irq: EventFd,
}

impl TtySignals {
    /// No signal queued; `irq` raises the console interrupt.
    pub fn new(irq: EventFd) -> Self {
        TtySignals {
            pending: AtomicU32::new(0),
            handed_back: AtomicU32::new(0),
            queued_at: Mutex::new(None),
            irq,
        }
    }

    /// Queues `signal` for the guest and raises the console interrupt. False for a
    /// signal number outside 1..=32.
    pub fn queue(&self, signal: u32) -> bool {
        let Some(bit) = tty_signal::bit(signal) else {
            return false;
        };
        {
            let mut at = self
                .queued_at
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            at.get_or_insert_with(Instant::now);
            self.pending.fetch_or(bit, Ordering::AcqRel);
        }
        if let Err(e) = self.irq.write(1) {
            log::debug!("tty signals: cannot raise the console interrupt: {e}");
        }
        true
    }

    /// Takes every queued signal (what the guest's read returns).
    pub fn take(&self) -> u32 {
        let mut at = self
            .queued_at
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *at = None;
        self.pending.swap(0, Ordering::AcqRel)
    }

    /// Takes the signals the guest handed back for the host to take itself.
    pub fn take_handed_back(&self) -> u32 {
        self.handed_back.swap(0, Ordering::AcqRel)
    }

    /// When the oldest signal the guest has not taken yet was queued (`None`: all taken).
    pub fn untaken_since(&self) -> Option<Instant> {
        *self
            .queued_at
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// The port device over shared [`TtySignals`].
pub struct TtySignalPort(pub Arc<TtySignals>);

impl PortIo for TtySignalPort {
    fn read(&mut self, _offset: u16, data: &mut [u8]) {
        match <&mut [u8; 4]>::try_from(&mut *data) {
            Ok(word) => *word = self.0.take().to_le_bytes(),
            // Only 32-bit reads are defined; other widths take nothing.
            Err(_) => data.fill(0xff),
        }
    }

    fn write(&mut self, _offset: u16, data: &[u8]) -> IoAction {
        let signal = <[u8; 4]>::try_from(data).map(u32::from_le_bytes);
        match signal.ok().and_then(tty_signal::bit) {
            Some(bit) => {
                self.0.handed_back.fetch_or(bit, Ordering::AcqRel);
                IoAction::Continue
            }
            None => IoAction::Stop(Outcome::crash(format!(
                "terminal-signal device written with {data:02x?}; expected a 4-byte signal number 1-32"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signals() -> (Arc<TtySignals>, EventFd) {
        let irq = EventFd::new(libc::EFD_NONBLOCK).unwrap();
        let raised = irq.try_clone().unwrap();
        (Arc::new(TtySignals::new(irq)), raised)
    }

    fn read(port: &mut TtySignalPort) -> u32 {
        let mut word = [0u8; 4];
        port.read(0, &mut word);
        u32::from_le_bytes(word)
    }

    #[test]
    fn queued_signals_raise_the_interrupt_and_are_read_once() {
        let (sig, raised) = signals();
        let mut port = TtySignalPort(Arc::clone(&sig));
        assert_eq!(read(&mut port), 0);
        assert!(sig.untaken_since().is_none());
        assert!(sig.queue(2));
        assert!(sig.queue(3));
        assert!(sig.queue(2));
        assert_eq!(raised.read().unwrap(), 3);
        assert!(sig.untaken_since().is_some());
        assert_eq!(read(&mut port), 0b110);
        assert_eq!(read(&mut port), 0);
        assert!(sig.untaken_since().is_none());
    }

    #[test]
    fn bad_signal_numbers_widths_and_writes_are_refused() {
        let (sig, _raised) = signals();
        assert!(!sig.queue(0));
        assert!(!sig.queue(33));
        assert!(sig.queue(32));
        let mut port = TtySignalPort(Arc::clone(&sig));
        let mut byte = [0u8; 1];
        port.read(0, &mut byte);
        assert_eq!(byte, [0xff]);
        // The narrow read took nothing.
        assert_eq!(read(&mut port), 1 << 31);
        for bad in [&[20u8][..], &[0, 0, 0, 0], &[33, 0, 0, 0]] {
            assert!(matches!(
                port.write(0, bad),
                IoAction::Stop(Outcome::GuestCrash { .. })
            ));
        }
        assert_eq!(sig.take_handed_back(), 0);
    }

    #[test]
    fn the_guest_hands_signals_back_for_the_host() {
        let (sig, _raised) = signals();
        let mut port = TtySignalPort(Arc::clone(&sig));
        assert!(matches!(
            port.write(0, &20u32.to_le_bytes()),
            IoAction::Continue
        ));
        assert_eq!(sig.take_handed_back(), 1 << 19);
        assert_eq!(sig.take_handed_back(), 0);
    }

    #[test]
    fn the_mask_decodes_to_signal_numbers() {
        let mask = tty_signal::bit(2).unwrap() | tty_signal::bit(3).unwrap();
        assert_eq!(tty_signal::signals(mask).collect::<Vec<_>>(), [2, 3]);
    }
}

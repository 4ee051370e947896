//! The exit device: the guest writes a 32-bit [`ExitCode`] to [`port::EXIT`] to end the VM.
//!
//! [`port::EXIT`]: hypercall_abi::port::EXIT

use hypercall_abi::{ExitCode, ExitKind};

use super::{IoAction, PortIo};
use crate::exit_code::Outcome;

/// The exit device.
pub struct ExitDevice;

/// What an exit-device write means.
pub fn decode_exit(data: &[u8]) -> Outcome {
    let Ok(raw) = <[u8; 4]>::try_from(data) else {
        return Outcome::crash(format!(
            "exit device written with {} bytes, expected a 4-byte ExitCode",
            data.len()
        ));
    };
    let code = ExitCode(u32::from_le_bytes(raw));
    match code.kind() {
        Some(ExitKind::Program) => Outcome::Program(code.status()),
        Some(ExitKind::KernelPanic) => Outcome::KernelPanic,
        Some(ExitKind::RootfsRefused) => Outcome::RootfsRefused,
        None => Outcome::crash(format!("malformed exit value {:#010x}", code.0)),
    }
}

impl PortIo for ExitDevice {
    fn read(&mut self, _offset: u16, data: &mut [u8]) {
        data.fill(0xff);
    }

    fn write(&mut self, _offset: u16, data: &[u8]) -> IoAction {
        IoAction::Stop(decode_exit(data))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn le(code: ExitCode) -> [u8; 4] {
        code.0.to_le_bytes()
    }

    #[test]
    fn program_status_and_panic() {
        assert_eq!(
            decode_exit(&le(ExitCode::new(ExitKind::Program, 0))),
            Outcome::Program(0)
        );
        assert_eq!(
            decode_exit(&le(ExitCode::new(ExitKind::Program, 137))),
            Outcome::Program(137)
        );
        assert_eq!(
            decode_exit(&le(ExitCode::new(ExitKind::KernelPanic, 3))),
            Outcome::KernelPanic
        );
        assert_eq!(
            decode_exit(&le(ExitCode::new(ExitKind::RootfsRefused, 0))).exit_code(),
            250
        );
    }

    #[test]
    fn malformed_values_are_crashes() {
        for bad in [ExitCode(0x0300), ExitCode(0xffff_ffff), ExitCode(0x1_0000)] {
            assert_eq!(decode_exit(&le(bad)).exit_code(), 252);
        }
        assert_eq!(decode_exit(&[0]).exit_code(), 252);
        assert_eq!(decode_exit(&[0; 8]).exit_code(), 252);
        let mut dev = ExitDevice;
        assert_eq!(
            dev.write(0, &[7, 0, 0, 0]),
            IoAction::Stop(Outcome::Program(7))
        );
    }
}

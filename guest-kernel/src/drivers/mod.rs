//! Drivers for the VMM's hypercall devices.

pub mod console;
pub mod console_in;
pub mod exit;
pub mod hostfs;
pub mod rtc;

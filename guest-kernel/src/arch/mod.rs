//! The CPU architecture layer. Only x86-64 exists; everything outside `arch` uses these
//! re-exports and never names the CPU itself.

mod x86_64;

pub use self::x86_64::*;

//! Everything that names the CPU architecture.

pub mod x86_64;

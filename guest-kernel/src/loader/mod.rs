//! Program loading: parsing static ELF executables and laying out the initial process stack.

pub mod elf;
pub mod exec;
pub mod image;
pub mod stack;

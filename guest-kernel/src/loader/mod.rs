//! Program loading: parsing static ELF executables, laying out the initial process stack,
//! copying execve's arguments within Linux's limits and reading `#!` lines.

// execve calls these once the task model it needs lands (issue 10); host tests cover them.
#[allow(dead_code)]
pub mod args;
pub mod elf;
pub mod exec;
pub mod image;
#[allow(dead_code)] // as `args`
pub mod script;
pub mod stack;

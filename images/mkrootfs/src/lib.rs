//! `mkrootfs` as a library: the in-memory [`image::Image`] of a root filesystem, built
//! from a manifest ([`manifest`]) or a host directory ([`tree`]), and written as a
//! deterministic TAR ([`archive`]). `astra-vmm` uses it to pack `--rootfs DIR` and the
//! minimal root around a host program.

pub mod archive;
pub mod image;
pub mod manifest;
#[cfg(test)]
mod testutil;
pub mod tree;

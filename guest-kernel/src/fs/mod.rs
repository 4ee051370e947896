//! Filesystems: path helpers and tarfs, the read-only root filesystem over the rootfs TAR.

pub mod path;
pub mod tar;

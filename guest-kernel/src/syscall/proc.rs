//! Process identity and exit.

use super::{Ctx, SysResult};
use crate::process;

/// getpid()
pub fn getpid(ctx: &mut Ctx<'_>, _: [u64; 6]) -> SysResult {
    Ok(ctx.proc.pid as u64)
}

/// exit(status): one thread; with a single thread per process it ends the process.
pub fn exit(_: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    process::exit_current(a[0] as u8)
}

/// exit_group(status)
pub fn exit_group(_: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    process::exit_current(a[0] as u8)
}

//! Reading and writing file descriptors.

use super::{Ctx, Errno, SysResult};
use crate::drivers::console;
use crate::mm::uaccess;

/// Largest single write accepted at once (larger writes are short, as Linux allows).
const MAX_WRITE: usize = 1 << 20;

fn write_fd(ctx: &mut Ctx<'_>, fd: u64, buf: u64, len: usize) -> SysResult {
    match fd {
        1 | 2 => {
            let len = len.min(MAX_WRITE);
            let data = uaccess::read_vec(&ctx.proc.space, buf, len)?;
            if fd == 1 {
                console::write_bytes(&data);
            } else {
                console::write_err_bytes(&data);
            }
            Ok(len as u64)
        }
        _ => Err(Errno::EBADF),
    }
}

/// write(fd, buf, count)
pub fn write(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    write_fd(ctx, a[0], a[1], a[2] as usize)
}

/// writev(fd, iov, iovcnt)
pub fn writev(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    const IOV_MAX: u64 = 1024;
    let (fd, iov, count) = (a[0], a[1], a[2]);
    if count > IOV_MAX {
        return Err(Errno::EINVAL);
    }
    let mut total = 0u64;
    for i in 0..count {
        let base = uaccess::read_u64(&ctx.proc.space, iov + 16 * i)?;
        let len = uaccess::read_u64(&ctx.proc.space, iov + 16 * i + 8)?;
        if len == 0 {
            continue;
        }
        total += write_fd(ctx, fd, base, len as usize)?;
    }
    Ok(total)
}

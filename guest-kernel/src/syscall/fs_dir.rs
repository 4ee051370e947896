//! Directories: `getdents64`, `getcwd`, `chdir`, `fchdir`.

use alloc::string::String;

use super::fs::{start_for, walker, AT_FDCWD};
use super::io::fd_arg;
use super::{Ctx, Errno, SysResult};
use crate::fs::vfs::{self, Vnode};
use crate::mm::paging::USER_END;

/// Most bytes of directory records produced by one `getdents64` (a bigger buffer just
/// gets a short answer, as the kernel may give).
const GETDENTS_MAX: usize = 64 * 1024;

/// getdents64(fd, dirp, count)
pub fn getdents64(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    let file = ctx.task.files.lock().get(fd_arg(a[0]))?;
    let (buf, count) = (a[1], a[2] as u32 as usize);
    if buf
        .checked_add(count as u64)
        .is_none_or(|end| end > USER_END)
    {
        return Err(Errno::EFAULT);
    }
    let exe = alloc::string::String::from(ctx.task.name());
    let w = vfs::Walker::new(crate::fs::namespace(), &exe);
    let n = file.getdents(&w, count.min(GETDENTS_MAX), &mut |bytes| {
        ctx.write_user(buf, bytes)
    })?;
    Ok(n as u64)
}

/// getcwd(buf, size): the length written, with its NUL.
pub fn getcwd(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    let mut cwd = ctx.task.fs.lock().cwd.clone().into_bytes();
    cwd.push(0);
    if (a[1] as usize) < cwd.len() {
        return Err(Errno::ERANGE);
    }
    ctx.write_user(a[0], &cwd)?;
    Ok(cwd.len() as u64)
}

/// Makes directory `v` the working directory.
fn set_cwd(ctx: &mut Ctx<'_>, v: Vnode) -> SysResult {
    let path: String = {
        let w = walker(ctx.task);
        if !w.is_dir(&v) {
            return Err(Errno::ENOTDIR);
        }
        w.path_of(&v).ok_or(Errno::ENOENT)?
    };
    ctx.task.fs.lock().cwd = path;
    Ok(0)
}

/// chdir(path)
pub fn chdir(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    let path = ctx.read_path(a[0])?;
    let start = start_for(ctx, AT_FDCWD as u64, &path)?;
    let v = walker(ctx.task).lookup(&start, &path, vfs::follow(true))?;
    set_cwd(ctx, Vnode::Node(v))
}

/// fchdir(fd)
pub fn fchdir(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    let v = ctx.task.files.lock().get_raw(fd_arg(a[0]))?.vnode();
    set_cwd(ctx, v)
}

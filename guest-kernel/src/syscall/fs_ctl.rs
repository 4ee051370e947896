//! Descriptor control: `fcntl`, `ioctl`, `dup`, `dup2`, `dup3`; and `pipe`, `pipe2`.

use super::io::fd_arg;
use super::{Ctx, Errno, SysResult};
use crate::fs::open::flags::{O_CLOEXEC, O_NONBLOCK};
use crate::fs::tty::{self, req::*, Termios, Winsize};
use crate::fs::{pipe, OpenFile};

/// `fcntl` commands.
mod cmd {
    pub const F_DUPFD: u32 = 0;
    pub const F_GETFD: u32 = 1;
    pub const F_SETFD: u32 = 2;
    pub const F_GETFL: u32 = 3;
    pub const F_SETFL: u32 = 4;
    pub const F_DUPFD_CLOEXEC: u32 = 1030;
    pub const F_SETPIPE_SZ: u32 = 1031;
    pub const F_GETPIPE_SZ: u32 = 1032;
}
use cmd::*;

/// `FD_CLOEXEC`.
const FD_CLOEXEC: u64 = 1;

/// fcntl(fd, cmd, arg)
///
/// Descriptor duplication and flags, record locks, pipe sizes (`F_GETPIPE_SZ`,
/// `F_SETPIPE_SZ`: `EBADF` on a file that is not a pipe or FIFO, as Linux). Owners,
/// leases, notifications and seals are not supported on astra's files and give
/// `EINVAL`, as Linux does for a command a file does not support.
pub fn fcntl(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    let fd = fd_arg(a[0]);
    let (cmd, arg) = (a[1] as u32, a[2]);
    let file = ctx.task.files.lock().get_raw(fd)?;
    let allowed_on_path = matches!(cmd, F_DUPFD | F_DUPFD_CLOEXEC | F_GETFD | F_SETFD | F_GETFL);
    if file.is_path() && !allowed_on_path {
        return Err(Errno::EBADF);
    }
    {
        use super::fs_lock::*;
        if matches!(
            cmd,
            F_GETLK | F_SETLK | F_SETLKW | F_OFD_GETLK | F_OFD_SETLK | F_OFD_SETLKW
        ) {
            return fcntl_lock(ctx, &file, cmd, arg);
        }
    }
    let mut files = ctx.task.files.lock();
    match cmd {
        F_DUPFD => files.insert_from(arg, file, false),
        F_DUPFD_CLOEXEC => files.insert_from(arg, file, true),
        F_GETFD => Ok(if files.cloexec(fd)? { FD_CLOEXEC } else { 0 }),
        F_SETFD => files.set_cloexec(fd, arg & FD_CLOEXEC != 0).map(|()| 0),
        F_GETFL => Ok(u64::from(file.status())),
        F_SETFL => file.set_status_flags(arg as u32).map(|()| 0),
        F_GETPIPE_SZ => Ok(file.pipe_end().ok_or(Errno::EBADF)?.capacity() as u64),
        F_SETPIPE_SZ => {
            let end = file.pipe_end().ok_or(Errno::EBADF)?;
            // Linux takes the argument as an unsigned int.
            end.set_capacity(u64::from(arg as u32)).map(|n| n as u64)
        }
        _ => Err(Errno::EINVAL),
    }
}

/// Requests every descriptor understands.
mod generic {
    pub const FIONREAD: u32 = 0x541b;
    pub const FIONBIO: u32 = 0x5421;
    pub const FIONCLEX: u32 = 0x5450;
    pub const FIOCLEX: u32 = 0x5451;
}
use generic::*;

/// ioctl(fd, request, arg)
///
/// Every descriptor: `FIOCLEX`, `FIONCLEX`, `FIONBIO`, `FIONREAD`. The console (a
/// terminal): termios (`TCGETS`, `TCSETS*`), window size, process group and session (the
/// process is its own), `TCSBRK` (output is synchronous, so already drained) and `TCFLSH`.
/// Anything else is `ENOTTY`.
pub fn ioctl(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    let fd = fd_arg(a[0]);
    let (request, arg) = (a[1] as u32, a[2]);
    let file = ctx.task.files.lock().get(fd)?;
    match request {
        FIOCLEX | FIONCLEX => {
            return ctx
                .task
                .files
                .lock()
                .set_cloexec(fd, request == FIOCLEX)
                .map(|()| 0)
        }
        FIONBIO => {
            let on: i32 = ctx.read_obj(arg)?;
            file.set_nonblocking(on != 0);
            return Ok(0);
        }
        FIONREAD => {
            let n = if file.is_terminal() {
                tty::input_available() as u64
            } else {
                file.readable_bytes().ok_or(Errno::ENOTTY)?
            };
            ctx.write_obj(arg, &(n.min(i32::MAX as u64) as i32))?;
            return Ok(0);
        }
        _ => {}
    }
    if !file.is_terminal() {
        return Err(Errno::ENOTTY);
    }
    match request {
        TCGETS => ctx.write_obj(arg, &tty::termios()),
        TCSETS | TCSETSW | TCSETSF => {
            let t: Termios = ctx.read_obj(arg)?;
            if request == TCSETSF {
                tty::flush_input();
            }
            tty::set_termios(t);
            Ok(())
        }
        TIOCGWINSZ => ctx.write_obj(arg, &tty::winsize()),
        TIOCSWINSZ => {
            let w: Winsize = ctx.read_obj(arg)?;
            tty::set_winsize(w);
            Ok(())
        }
        TIOCGPGRP => {
            let fg = match tty::foreground_pgrp() {
                0 => ctx.task.process.sid(),
                g => g,
            };
            ctx.write_obj(arg, &(fg as i32))
        }
        TIOCGSID => ctx.write_obj(arg, &(ctx.task.process.sid() as i32)),
        TIOCSPGRP => {
            let pgrp: i32 = ctx.read_obj(arg)?;
            if pgrp < 0 {
                return Err(Errno::EINVAL);
            }
            let group: alloc::vec::Vec<_> = crate::task::process::all()
                .into_iter()
                .filter(|p| p.pgid() == pgrp as u32 && !p.is_zombie())
                .collect();
            if group.is_empty() {
                Err(Errno::ESRCH)
            } else if group.iter().any(|p| p.sid() != ctx.task.process.sid()) {
                Err(Errno::EPERM)
            } else {
                tty::set_foreground_pgrp(pgrp as u32);
                Ok(())
            }
        }
        TCSBRK => Ok(()),
        TCFLSH => match arg {
            0 | 2 => {
                tty::flush_input();
                Ok(())
            }
            1 => Ok(()),
            _ => Err(Errno::EINVAL),
        },
        _ => Err(Errno::ENOTTY),
    }
    .map(|()| 0)
}

/// dup(oldfd)
pub fn dup(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    let file = ctx.task.files.lock().get_raw(fd_arg(a[0]))?;
    ctx.task.files.lock().insert(file, false)
}

fn do_dup3(ctx: &mut Ctx<'_>, old: u64, new: u64, cloexec: bool) -> SysResult {
    if new >= crate::fs::fd::NOFILE {
        return Err(Errno::EBADF);
    }
    let file = ctx.task.files.lock().get_raw(old)?;
    // Closing what was at `new` cannot fail on astra's files.
    ctx.task.files.lock().install(new, file, cloexec)?;
    Ok(new)
}

/// dup2(oldfd, newfd)
pub fn dup2(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    let (old, new) = (fd_arg(a[0]), fd_arg(a[1]));
    if old == new {
        ctx.task.files.lock().get_raw(old)?;
        return Ok(new);
    }
    do_dup3(ctx, old, new, false)
}

/// dup3(oldfd, newfd, flags)
pub fn dup3(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    let (old, new, flags) = (fd_arg(a[0]), fd_arg(a[1]), a[2] as u32);
    if flags & !O_CLOEXEC != 0 || old == new {
        return Err(Errno::EINVAL);
    }
    do_dup3(ctx, old, new, flags & O_CLOEXEC != 0)
}

/// pipe2(pipefd, flags): `O_CLOEXEC` and `O_NONBLOCK`; packet mode (`O_DIRECT`) is not
/// supported and gives `EINVAL`.
pub fn pipe2(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    let flags = a[1] as u32;
    if flags & !(O_CLOEXEC | O_NONBLOCK) != 0 {
        return Err(Errno::EINVAL);
    }
    let cloexec = flags & O_CLOEXEC != 0;
    let (read_end, write_end) = pipe::pipe();
    let (rfd, wfd) = {
        let mut files = ctx.task.files.lock();
        let rfd = files.insert(OpenFile::pipe(read_end, flags), cloexec)?;
        match files.insert(OpenFile::pipe(write_end, flags), cloexec) {
            Ok(wfd) => (rfd, wfd),
            Err(e) => {
                let _ = files.close(rfd);
                return Err(e);
            }
        }
    };
    if let Err(e) = ctx.write_obj(a[0], &[rfd as i32, wfd as i32]) {
        let _ = ctx.task.files.lock().close(rfd);
        let _ = ctx.task.files.lock().close(wfd);
        return Err(e);
    }
    Ok(0)
}

/// pipe(pipefd)
pub fn pipe(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    pipe2(ctx, [a[0], 0, 0, 0, 0, 0])
}

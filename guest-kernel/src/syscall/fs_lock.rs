//! Advisory locks: `flock` and the `fcntl` record-lock commands (`F_GETLK F_SETLK
//! F_SETLKW` owned by the process, `F_OFD_GETLK F_OFD_SETLK F_OFD_SETLKW` owned by the
//! open file description); the lock table is [`crate::fs::lock`].

use alloc::sync::Arc;

use super::fs::walker;
use super::io::fd_arg;
use super::{Ctx, Errno, SysResult};
use crate::fs::lock::{self, Family, Lock, Owner};
use crate::fs::open;
use crate::fs::vfs::Vnode;
use crate::fs::OpenFile;

const LOCK_SH: u32 = 1;
const LOCK_EX: u32 = 2;
const LOCK_NB: u32 = 4;
const LOCK_UN: u32 = 8;

pub const F_GETLK: u32 = 5;
pub const F_SETLK: u32 = 6;
pub const F_SETLKW: u32 = 7;
pub const F_OFD_GETLK: u32 = 36;
pub const F_OFD_SETLK: u32 = 37;
pub const F_OFD_SETLKW: u32 = 38;

const F_RDLCK: i16 = 0;
const F_WRLCK: i16 = 1;
const F_UNLCK: i16 = 2;

/// The lock-table key of an open file: its node, or its pipe.
pub fn key_of(file: &OpenFile) -> (u64, u64) {
    match file.vnode() {
        Vnode::Node(n) => (n.fs_id(), n.ino()),
        Vnode::Pipe(ino) => (u64::MAX, ino),
    }
}

fn file_owner(file: &Arc<OpenFile>) -> Owner {
    Owner::File(Arc::as_ptr(file) as usize)
}

/// flock(fd, operation)
pub fn flock(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    let file = ctx.task.files.lock().get(fd_arg(a[0]))?;
    let op = a[1] as u32;
    let wait = op & LOCK_NB == 0;
    let mut want = Lock {
        owner: file_owner(&file),
        family: Family::Flock,
        write: false,
        start: 0,
        end: u64::MAX,
    };
    let key = key_of(&file);
    match op & !LOCK_NB {
        LOCK_UN => lock::acquire(key, want, true, false)?,
        kind @ (LOCK_SH | LOCK_EX) => {
            want.write = kind == LOCK_EX;
            // A conversion drops the lock held first, as Linux does (not atomic).
            lock::acquire(key, want, true, false)?;
            lock::acquire(key, want, false, wait)?;
        }
        _ => return Err(Errno::EINVAL),
    }
    Ok(0)
}

/// Linux `struct flock` (x86-64): type, whence, start, len, pid.
struct Flock {
    kind: i16,
    whence: i16,
    start: i64,
    len: i64,
    pid: i32,
}

impl Flock {
    fn read(ctx: &Ctx<'_>, va: u64) -> Result<Flock, Errno> {
        let mut b = [0u8; 32];
        ctx.read_user(va, &mut b)?;
        let i16_at = |o: usize| i16::from_ne_bytes([b[o], b[o + 1]]);
        let i64_at = |o: usize| i64::from_ne_bytes(b[o..o + 8].try_into().unwrap_or([0; 8]));
        Ok(Flock {
            kind: i16_at(0),
            whence: i16_at(2),
            start: i64_at(8),
            len: i64_at(16),
            pid: i32::from_ne_bytes([b[24], b[25], b[26], b[27]]),
        })
    }

    fn write(&self, ctx: &mut Ctx<'_>, va: u64) -> Result<(), Errno> {
        let mut b = [0u8; 32];
        b[0..2].copy_from_slice(&self.kind.to_ne_bytes());
        b[2..4].copy_from_slice(&self.whence.to_ne_bytes());
        b[8..16].copy_from_slice(&self.start.to_ne_bytes());
        b[16..24].copy_from_slice(&self.len.to_ne_bytes());
        b[24..28].copy_from_slice(&self.pid.to_ne_bytes());
        ctx.write_user(va, &b)
    }
}

/// The byte range `[start, end)` a `struct flock` names from `base` (the whence point).
pub fn range(base: i64, start: i64, len: i64) -> Result<(u64, u64), Errno> {
    let from = base.checked_add(start).ok_or(Errno::EOVERFLOW)?;
    let (from, to) = if len > 0 {
        (from, Some(from.checked_add(len).ok_or(Errno::EOVERFLOW)?))
    } else if len < 0 {
        (from.checked_add(len).ok_or(Errno::EINVAL)?, Some(from))
    } else {
        (from, None)
    };
    if from < 0 {
        return Err(Errno::EINVAL);
    }
    Ok((from as u64, to.map_or(u64::MAX, |t| t as u64)))
}

/// fcntl(fd, F_*LK*, struct flock *)
pub fn fcntl_lock(ctx: &mut Ctx<'_>, file: &Arc<OpenFile>, cmd: u32, va: u64) -> SysResult {
    let mut fl = Flock::read(ctx, va)?;
    let ofd = matches!(cmd, F_OFD_GETLK | F_OFD_SETLK | F_OFD_SETLKW);
    if ofd && fl.pid != 0 {
        return Err(Errno::EINVAL);
    }
    let base = match fl.whence {
        0 => 0,
        1 => file.position() as i64,
        2 => walker(ctx.task).metadata(&file.vnode()).size as i64,
        _ => return Err(Errno::EINVAL),
    };
    let (start, end) = range(base, fl.start, fl.len)?;
    let owner = if ofd {
        file_owner(file)
    } else {
        Owner::Process(ctx.task.pid())
    };
    let mut want = Lock {
        owner,
        family: Family::Record,
        write: fl.kind == F_WRLCK,
        start,
        end,
    };
    let key = key_of(file);
    if matches!(cmd, F_GETLK | F_OFD_GETLK) {
        if fl.kind != F_RDLCK && fl.kind != F_WRLCK {
            return Err(Errno::EINVAL);
        }
        match lock::test(key, &want) {
            None => fl.kind = F_UNLCK,
            Some(held) => {
                fl.kind = if held.write { F_WRLCK } else { F_RDLCK };
                fl.whence = 0;
                fl.start = held.start as i64;
                fl.len = if held.end == u64::MAX {
                    0
                } else {
                    (held.end - held.start) as i64
                };
                fl.pid = match held.owner {
                    Owner::Process(pid) => pid as i32,
                    Owner::File(_) => -1,
                };
            }
        }
        fl.write(ctx, va)?;
        return Ok(0);
    }
    let wait = matches!(cmd, F_SETLKW | F_OFD_SETLKW);
    let status = file.status();
    match fl.kind {
        F_UNLCK => lock::acquire(key, want, true, false)?,
        F_RDLCK | F_WRLCK => {
            let allowed = if fl.kind == F_RDLCK {
                open::readable(status)
            } else {
                open::writable(status)
            };
            if !allowed {
                return Err(Errno::EBADF);
            }
            want.write = fl.kind == F_WRLCK;
            lock::acquire(key, want, false, wait)?;
        }
        _ => return Err(Errno::EINVAL),
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_as_linux_reads_struct_flock() {
        assert_eq!(range(0, 10, 5), Ok((10, 15)));
        assert_eq!(range(0, 10, 0), Ok((10, u64::MAX)));
        assert_eq!(range(100, 0, -10), Ok((90, 100)));
        assert_eq!(range(0, 5, -10), Err(Errno::EINVAL));
        assert_eq!(range(0, -1, 1), Err(Errno::EINVAL));
        assert_eq!(range(0, i64::MAX, 1), Err(Errno::EOVERFLOW));
    }
}

//! `futex(2)`: WAIT, WAKE, their BITSET forms, REQUEUE, CMP_REQUEUE and WAKE_OP, with
//! `FUTEX_PRIVATE_FLAG` and `FUTEX_CLOCK_REALTIME`. The PI operations and `FUTEX_FD` are
//! `ENOSYS`. The wait queues are in `crate::task::futex`.

use alloc::sync::Arc;

use super::{Ctx, Errno, SysResult};
use crate::task::futex::{self, FutexKey, FutexWait};
use crate::time::{self, Timespec};

/// Operations and flags (`<linux/futex.h>`).
#[allow(missing_docs)]
pub mod op {
    pub const WAIT: u32 = 0;
    pub const WAKE: u32 = 1;
    pub const FD: u32 = 2;
    pub const REQUEUE: u32 = 3;
    pub const CMP_REQUEUE: u32 = 4;
    pub const WAKE_OP: u32 = 5;
    pub const LOCK_PI: u32 = 6;
    pub const UNLOCK_PI: u32 = 7;
    pub const TRYLOCK_PI: u32 = 8;
    pub const WAIT_BITSET: u32 = 9;
    pub const WAKE_BITSET: u32 = 10;
    pub const WAIT_REQUEUE_PI: u32 = 11;
    pub const CMP_REQUEUE_PI: u32 = 12;
    pub const LOCK_PI2: u32 = 13;
    pub const PRIVATE_FLAG: u32 = 128;
    pub const CLOCK_REALTIME: u32 = 256;
    pub const CMD_MASK: u32 = !(PRIVATE_FLAG | CLOCK_REALTIME);
    /// The names `--strace` shows.
    pub const NAMES: [&str; 14] = [
        "FUTEX_WAIT",
        "FUTEX_WAKE",
        "FUTEX_FD",
        "FUTEX_REQUEUE",
        "FUTEX_CMP_REQUEUE",
        "FUTEX_WAKE_OP",
        "FUTEX_LOCK_PI",
        "FUTEX_UNLOCK_PI",
        "FUTEX_TRYLOCK_PI",
        "FUTEX_WAIT_BITSET",
        "FUTEX_WAKE_BITSET",
        "FUTEX_WAIT_REQUEUE_PI",
        "FUTEX_CMP_REQUEUE_PI",
        "FUTEX_LOCK_PI2",
    ];
}

/// `FUTEX_BITSET_MATCH_ANY`.
const MATCH_ANY: u32 = u32::MAX;

/// Applies a `FUTEX_WAKE_OP` encoded operation to the old value of the second futex:
/// returns (new value, whether the comparison holds), or EINVAL/ENOSYS for unknown codes.
pub fn wake_op(encoded: u32, old: u32) -> Result<(u32, bool), Errno> {
    let op = (encoded >> 28) & 0x7;
    let shift = (encoded >> 28) & 0x8 != 0;
    let cmp = (encoded >> 24) & 0xf;
    // 12-bit fields, sign-extended as Linux does.
    let mut oparg = (((encoded >> 12) & 0xfff) as i32) << 20 >> 20;
    let cmparg = ((encoded & 0xfff) as i32) << 20 >> 20;
    if shift {
        if !(0..32).contains(&oparg) {
            // Linux warns and masks; astra follows the mask.
            oparg &= 31;
        }
        oparg = 1 << oparg;
    }
    let oparg = oparg as u32;
    let new = match op {
        0 => oparg,
        1 => old.wrapping_add(oparg),
        2 => old | oparg,
        3 => old & !oparg,
        4 => old ^ oparg,
        _ => return Err(Errno::ENOSYS),
    };
    let o = old as i32;
    let holds = match cmp {
        0 => o == cmparg,
        1 => o != cmparg,
        2 => o < cmparg,
        3 => o <= cmparg,
        4 => o > cmparg,
        5 => o >= cmparg,
        _ => return Err(Errno::ENOSYS),
    };
    Ok((new, holds))
}

fn key(ctx: &Ctx<'_>, addr: u64) -> Result<FutexKey, Errno> {
    if !addr.is_multiple_of(4) {
        return Err(Errno::EINVAL);
    }
    Ok(FutexKey {
        mm: Arc::as_ptr(&ctx.task.mm) as usize,
        addr,
    })
}

/// The wait's deadline in monotonic ns: `FUTEX_WAIT` takes a relative timeout,
/// `FUTEX_WAIT_BITSET` an absolute one on CLOCK_MONOTONIC or (with the flag)
/// CLOCK_REALTIME.
fn deadline(
    ctx: &Ctx<'_>,
    timeout: u64,
    absolute: bool,
    realtime: bool,
) -> Result<Option<u64>, Errno> {
    if timeout == 0 {
        return Ok(None);
    }
    let ts: Timespec = ctx.read_obj(timeout)?;
    let ns = ts.to_ns().ok_or(Errno::EINVAL)?;
    let now = time::monotonic_ns();
    Ok(Some(if !absolute {
        now.saturating_add(ns)
    } else if realtime {
        ns.saturating_sub(time::wall_at_boot_ns())
    } else {
        ns
    }))
}

/// futex(uaddr, op, val, timeout or val2, uaddr2, val3)
pub fn futex(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    let (uaddr, opword, val) = (a[0], a[1] as u32, a[2] as u32);
    let (timeout, uaddr2, val3) = (a[3], a[4], a[5] as u32);
    let cmd = opword & op::CMD_MASK;
    let realtime = opword & op::CLOCK_REALTIME != 0;
    if realtime
        && !matches!(
            cmd,
            op::WAIT | op::WAIT_BITSET | op::WAIT_REQUEUE_PI | op::LOCK_PI2
        )
    {
        return Err(Errno::ENOSYS);
    }
    // Counts are ints; a negative one means "all" in practice (Linux treats it as huge).
    let count = |v: u32| {
        if (v as i32) < 0 {
            usize::MAX
        } else {
            v as usize
        }
    };
    match cmd {
        op::WAIT | op::WAIT_BITSET => {
            let bitset = if cmd == op::WAIT { MATCH_ANY } else { val3 };
            if bitset == 0 {
                return Err(Errno::EINVAL);
            }
            let k = key(ctx, uaddr)?;
            let deadline = deadline(ctx, timeout, cmd == op::WAIT_BITSET, realtime)?;
            let current: u32 = ctx.read_obj(uaddr)?;
            if current != val {
                return Err(Errno::EAGAIN);
            }
            match futex::wait(k, bitset, deadline) {
                FutexWait::Woken => Ok(0),
                FutexWait::TimedOut => Err(Errno::ETIMEDOUT),
                // Without a timeout the wait restarts under SA_RESTART, as Linux's does.
                FutexWait::Interrupted if deadline.is_none() => Err(Errno::ERESTARTSYS),
                FutexWait::Interrupted => Err(Errno::EINTR),
                FutexWait::NoMemory => Err(Errno::ENOMEM),
            }
        }
        op::WAKE | op::WAKE_BITSET => {
            let bitset = if cmd == op::WAKE { MATCH_ANY } else { val3 };
            if bitset == 0 {
                return Err(Errno::EINVAL);
            }
            let k = key(ctx, uaddr)?;
            Ok(futex::wake(k, count(val), bitset) as u64)
        }
        op::REQUEUE | op::CMP_REQUEUE => {
            let (from, to) = (key(ctx, uaddr)?, key(ctx, uaddr2)?);
            let (n_wake, n_requeue) = (val as i32, timeout as u32 as i32);
            if n_wake < 0 || n_requeue < 0 {
                return Err(Errno::EINVAL);
            }
            if cmd == op::CMP_REQUEUE {
                let current: u32 = ctx.read_obj(uaddr)?;
                if current != val3 {
                    return Err(Errno::EAGAIN);
                }
            }
            Ok(futex::requeue(from, to, n_wake as usize, n_requeue as usize) as u64)
        }
        op::WAKE_OP => {
            let (k1, k2) = (key(ctx, uaddr)?, key(ctx, uaddr2)?);
            let old: u32 = ctx.read_obj(uaddr2)?;
            let (new, holds) = wake_op(val3, old)?;
            ctx.write_obj(uaddr2, &new)?;
            let mut woken = futex::wake(k1, count(val), MATCH_ANY);
            if holds {
                woken += futex::wake(k2, count(timeout as u32), MATCH_ANY);
            }
            Ok(woken as u64)
        }
        op::FD
        | op::LOCK_PI
        | op::UNLOCK_PI
        | op::TRYLOCK_PI
        | op::WAIT_REQUEUE_PI
        | op::CMP_REQUEUE_PI
        | op::LOCK_PI2 => Err(Errno::ENOSYS),
        _ => Err(Errno::ENOSYS),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(op: u32, shift: bool, cmp: u32, oparg: u32, cmparg: u32) -> u32 {
        ((op | if shift { 8 } else { 0 }) << 28)
            | (cmp << 24)
            | ((oparg & 0xfff) << 12)
            | (cmparg & 0xfff)
    }

    #[test]
    fn wake_op_arithmetic_and_comparisons_match_linux() {
        // glibc's pthread_cond_signal-era encoding: SET 0, compare old > 1.
        assert_eq!(wake_op(encode(0, false, 4, 0, 1), 2), Ok((0, true)));
        assert_eq!(wake_op(encode(0, false, 4, 0, 1), 1), Ok((0, false)));
        assert_eq!(wake_op(encode(1, false, 0, 5, 3), 3), Ok((8, true)));
        assert_eq!(wake_op(encode(2, true, 1, 4, 0), 1), Ok((17, true)));
        assert_eq!(wake_op(encode(3, false, 2, 1, 0), 3), Ok((2, false)));
        assert_eq!(
            wake_op(encode(4, false, 5, 0xff, 0), 0xf0),
            Ok((0x0f, true))
        );
        // cmparg is signed: -1 < 0.
        assert_eq!(wake_op(encode(0, false, 2, 0, 0), u32::MAX), Ok((0, true)));
        assert_eq!(wake_op(encode(7, false, 0, 0, 0), 0), Err(Errno::ENOSYS));
        assert_eq!(wake_op(encode(0, false, 9, 0, 0), 0), Err(Errno::ENOSYS));
    }
}

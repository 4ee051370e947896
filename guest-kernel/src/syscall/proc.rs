//! Process identity, per-thread registrations (TLS base, `set_tid_address`, robust
//! futex list, rseq) and exit.
//!
//! Every process runs as root: uid, gid and their effective and saved values are 0, as
//! the loader's auxv (`AT_UID`...) says, so files in the rootfs are accessible whatever
//! their owner. A process's first thread has the process id as its thread id; a process
//! started by the kernel has parent 0, as init has on Linux.

use super::{Ctx, Errno, SysResult};
use crate::arch::cpu::{self, SegmentBase};
use crate::mm::paging::USER_END;

/// The ids every process has (root).
const ROOT: u64 = 0;

/// Per-thread state set through system calls.
#[derive(Clone, Copy, Debug, Default)]
pub struct ThreadState {
    /// FS base (`arch_prctl(ARCH_SET_FS)`): the TLS pointer of x86-64 Linux.
    pub fs_base: u64,
    /// GS base (`arch_prctl(ARCH_SET_GS)`).
    pub gs_base: u64,
    /// `set_tid_address`: where the thread id is cleared (and a futex woken) when the
    /// thread exits; only threads will need it.
    pub clear_child_tid: u64,
    /// `set_robust_list` head.
    pub robust_list: u64,
    /// Registered rseq area.
    pub rseq: Option<Rseq>,
}

impl ThreadState {
    /// Loads the thread's segment bases into the CPU (when it is about to run).
    pub fn load_segment_bases(&self) {
        // The values were checked when they were set.
        cpu::load_segment_base(SegmentBase::Fs, self.fs_base);
        cpu::load_segment_base(SegmentBase::Gs, self.gs_base);
    }
}

/// A registered `struct rseq`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rseq {
    /// User address.
    pub addr: u64,
    /// Length the thread registered.
    pub len: u32,
    /// Signature abort handlers must carry.
    pub sig: u32,
}

/// getpid()
pub fn getpid(ctx: &mut Ctx<'_>, _: [u64; 6]) -> SysResult {
    Ok(ctx.task.pid() as u64)
}

/// gettid(): the calling thread's id (the process id for the first thread).
pub fn gettid(ctx: &mut Ctx<'_>, _: [u64; 6]) -> SysResult {
    Ok(ctx.task.tid as u64)
}

/// getppid()
pub fn getppid(ctx: &mut Ctx<'_>, _: [u64; 6]) -> SysResult {
    Ok(u64::from(ctx.task.process.ppid()))
}

/// getuid(), geteuid(), getgid(), getegid(): root.
pub fn get_root_id(_: &mut Ctx<'_>, _: [u64; 6]) -> SysResult {
    Ok(ROOT)
}

/// getresuid(ruid, euid, suid) and getresgid(rgid, egid, sgid): root.
pub fn getres_ids(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    for va in &a[..3] {
        ctx.write_obj(*va, &(ROOT as u32))?;
    }
    Ok(0)
}

/// set_tid_address(tidptr): recorded; returns the caller's thread id.
pub fn set_tid_address(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    ctx.task.thread.clear_child_tid = a[0];
    Ok(ctx.task.tid as u64)
}

/// Size of `struct robust_list_head`.
const ROBUST_LIST_HEAD_SIZE: u64 = 24;

/// set_robust_list(head, len)
pub fn set_robust_list(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    if a[1] != ROBUST_LIST_HEAD_SIZE {
        return Err(Errno::EINVAL);
    }
    ctx.task.thread.robust_list = a[0];
    Ok(0)
}

/// get_robust_list(pid, head_ptr, len_ptr)
pub fn get_robust_list(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    let pid = a[0] as i32;
    if pid != 0 && pid as u32 != ctx.task.tid {
        // Another thread's list: Linux allows it for the same user; astra keeps each
        // thread's head with the thread.
        let head = crate::task::sched::with_other_task(pid as u32, |t| t.thread.robust_list)
            .ok_or(Errno::ESRCH)?;
        ctx.write_obj(a[2], &ROBUST_LIST_HEAD_SIZE)?;
        ctx.write_obj(a[1], &head)?;
        return Ok(0);
    }
    ctx.write_obj(a[2], &ROBUST_LIST_HEAD_SIZE)?;
    let head = ctx.task.thread.robust_list;
    ctx.write_obj(a[1], &head)?;
    Ok(0)
}

/// `rseq` flag: unregister.
const RSEQ_FLAG_UNREGISTER: u64 = 1;
/// Size and alignment of the original `struct rseq`.
const RSEQ_ORIG_SIZE: u64 = 32;
/// `cpu_id` of an unregistered area.
const RSEQ_CPU_ID_UNINITIALIZED: u32 = u32::MAX;

/// Writes the CPU fields of a `struct rseq` (cpu_id_start, cpu_id; node_id, mm_cid).
fn write_rseq_cpu(ctx: &mut Ctx<'_>, addr: u64, cpu_id: u32) -> Result<(), Errno> {
    ctx.write_obj(addr, &[0u32, cpu_id])?;
    ctx.write_obj(addr + 20, &[0u32, 0u32])
}

/// rseq(rseq, rseq_len, flags, sig): registers the area and fills in CPU 0, the only
/// one. Registering again: EBUSY for the same area and signature, EPERM for another
/// signature, EINVAL for another area. Unregistering needs the same area, length and
/// signature.
///
/// A critical section the thread is in when it is preempted or gets a signal is aborted
/// on the way back to user mode (`task::rseq`); there is one CPU, so `cpu_id` stays 0.
pub fn rseq(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    let (addr, len, flags, sig) = (a[0], a[1] as u32, a[2], a[3] as u32);
    let current = ctx.task.thread.rseq;
    if flags & RSEQ_FLAG_UNREGISTER != 0 {
        if flags & !RSEQ_FLAG_UNREGISTER != 0 {
            return Err(Errno::EINVAL);
        }
        let Some(reg) = current.filter(|r| r.addr == addr) else {
            return Err(Errno::EINVAL);
        };
        if reg.len != len {
            return Err(Errno::EINVAL);
        }
        if reg.sig != sig {
            return Err(Errno::EPERM);
        }
        write_rseq_cpu(ctx, addr, RSEQ_CPU_ID_UNINITIALIZED)?;
        ctx.task.thread.rseq = None;
        return Ok(0);
    }
    if flags != 0 {
        return Err(Errno::EINVAL);
    }
    if let Some(reg) = current {
        if reg.addr != addr || reg.len != len {
            return Err(Errno::EINVAL);
        }
        if reg.sig != sig {
            return Err(Errno::EPERM);
        }
        return Err(Errno::EBUSY);
    }
    if (len as u64) < RSEQ_ORIG_SIZE || addr % RSEQ_ORIG_SIZE != 0 {
        return Err(Errno::EINVAL);
    }
    // The area must lie in user space (Linux's access_ok); the CPU fields must be
    // writable (Linux fills them in on the way back to user mode, and a fault there
    // is a SIGSEGV; astra reports EFAULT at once).
    if addr
        .checked_add(len as u64)
        .is_none_or(|end| end > USER_END)
    {
        return Err(Errno::EFAULT);
    }
    write_rseq_cpu(ctx, addr, 0)?;
    ctx.task.thread.rseq = Some(Rseq { addr, len, sig });
    Ok(0)
}

/// `arch_prctl` codes.
mod arch {
    pub const SET_GS: u64 = 0x1001;
    pub const SET_FS: u64 = 0x1002;
    pub const GET_FS: u64 = 0x1003;
    pub const GET_GS: u64 = 0x1004;
}

/// Highest base a thread may set, exclusive (Linux's `TASK_SIZE_MAX`: the user half
/// minus its last page).
const TASK_SIZE_MAX: u64 = (1 << 47) - 4096;

/// arch_prctl(code, addr): set or get the FS/GS base. EPERM for a base outside user
/// space, EINVAL for other codes.
pub fn arch_prctl(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    let (code, addr) = (a[0], a[1]);
    let which = match code {
        arch::SET_FS | arch::GET_FS => SegmentBase::Fs,
        arch::SET_GS | arch::GET_GS => SegmentBase::Gs,
        _ => return Err(Errno::EINVAL),
    };
    match code {
        arch::SET_FS | arch::SET_GS => {
            if addr >= TASK_SIZE_MAX {
                return Err(Errno::EPERM);
            }
            let slot = match which {
                SegmentBase::Fs => &mut ctx.task.thread.fs_base,
                SegmentBase::Gs => &mut ctx.task.thread.gs_base,
            };
            *slot = addr;
            cpu::write_segment_base(which, addr);
        }
        _ => {
            // The CPU holds the truth (a user segment load may have changed it).
            let base = cpu::read_segment_base(which);
            ctx.write_obj(addr, &base)?;
        }
    }
    Ok(0)
}

/// exit(status): ends the calling thread; the process ends with its last thread.
pub fn exit(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    ctx.task.exit_request = Some(a[0] as u8);
    Ok(0)
}

/// exit_group(status): ends every thread of the process.
pub fn exit_group(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    crate::task::kill_process(&ctx.task.process, a[0] as u8);
    Ok(0)
}

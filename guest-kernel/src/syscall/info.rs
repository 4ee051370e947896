//! System information and resources: `uname`, `sysinfo`, `getrandom`, resource limits,
//! CPU affinity, `sched_yield`, `getcpu`.
//!
//! `uname` says "Linux": astra implements the Linux ABI, and programs (static glibc's
//! start-up among them) parse the release to decide which system calls they may use, so
//! it reports a plausible Linux release and names astra in `version`.

use super::{Ctx, Errno, SysResult};
use crate::mm::uaccess::Pod;
use crate::mm::{frame, PAGE_SIZE};
use crate::time;

/// `uname` fields, as `utsname` holds them (65 bytes each, NUL-padded).
pub mod uts {
    /// Kernel name.
    pub const SYSNAME: &str = "Linux";
    /// Host name.
    pub const NODENAME: &str = "astra";
    /// Release: a Linux version whose features astra's system calls follow.
    pub const RELEASE: &str = "6.1.0-astra";
    /// Version string.
    pub const VERSION: &str = "#1 SMP astra";
    /// Hardware.
    pub const MACHINE: &str = "x86_64";
    /// NIS domain name (Linux's default).
    pub const DOMAINNAME: &str = "(none)";
}

/// `struct utsname`.
type Utsname = [[u8; 65]; 6];

fn utsname() -> Utsname {
    let mut u = [[0u8; 65]; 6];
    let fields = [
        uts::SYSNAME,
        uts::NODENAME,
        uts::RELEASE,
        uts::VERSION,
        uts::MACHINE,
        uts::DOMAINNAME,
    ];
    for (dst, src) in u.iter_mut().zip(fields) {
        dst[..src.len()].copy_from_slice(src.as_bytes());
    }
    u
}

/// uname(buf)
pub fn uname(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    ctx.write_obj(a[0], &utsname())?;
    Ok(0)
}

/// Linux `struct sysinfo` (64-bit).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
struct Sysinfo {
    uptime: i64,
    loads: [u64; 3],
    totalram: u64,
    freeram: u64,
    sharedram: u64,
    bufferram: u64,
    totalswap: u64,
    freeswap: u64,
    procs: u16,
    pad: [u16; 3],
    totalhigh: u64,
    freehigh: u64,
    mem_unit: u32,
    pad2: u32,
}

// SAFETY: #[repr(C)], padding spelled out as fields, every bit pattern valid.
unsafe impl Pod for Sysinfo {}

const _: () = assert!(core::mem::size_of::<Sysinfo>() == 112);
const _: () = assert!(core::mem::offset_of!(Sysinfo, procs) == 80);
const _: () = assert!(core::mem::offset_of!(Sysinfo, mem_unit) == 104);

/// sysinfo(info): uptime, RAM from the frame allocator, the process count. Load averages are
/// not tracked (0); there is no swap, shared or buffer memory.
pub fn sysinfo(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    let up_ns = time::monotonic_ns();
    let (total, free) = {
        let frames = frame::FRAMES.lock();
        (frames.total_frames(), frames.free_frames())
    };
    let info = Sysinfo {
        // Linux rounds a partial second up.
        uptime: up_ns.div_ceil(time::NS_PER_SEC) as i64,
        totalram: total * PAGE_SIZE,
        freeram: free * PAGE_SIZE,
        procs: crate::task::process::count().min(u16::MAX as usize) as u16,
        mem_unit: 1,
        ..Default::default()
    };
    ctx.write_obj(a[0], &info)?;
    Ok(0)
}

/// `prctl` options astra knows.
const PR_SET_NAME: u64 = 15;
const PR_GET_NAME: u64 = 16;

/// prctl(option, arg2, ...): `PR_SET_NAME` and `PR_GET_NAME` (the process's `comm`, 15
/// bytes and a NUL; astra keeps one per process, not per thread); other options EINVAL,
/// as Linux gives for the ones it does not know.
pub fn prctl(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    use crate::fs::procinfo;
    match a[0] {
        PR_SET_NAME => {
            let mut name = alloc::vec::Vec::new();
            for i in 0..procinfo::COMM_MAX as u64 {
                let mut b = [0u8; 1];
                ctx.read_user(a[1].wrapping_add(i), &mut b)?;
                if b[0] == 0 {
                    break;
                }
                name.push(b[0]);
            }
            procinfo::set_comm(ctx.task.pid(), &name);
            Ok(0)
        }
        PR_GET_NAME => {
            let mut out = [0u8; procinfo::COMM_MAX + 1];
            let comm = procinfo::comm(ctx.task.pid(), ctx.task.name());
            let n = comm.len().min(procinfo::COMM_MAX);
            out[..n].copy_from_slice(&comm.as_bytes()[..n]);
            ctx.write_user(a[1], &out)?;
            Ok(0)
        }
        _ => Err(Errno::EINVAL),
    }
}

/// `getrandom` flags.
mod grnd {
    pub const NONBLOCK: u64 = 1;
    pub const RANDOM: u64 = 2;
    pub const INSECURE: u64 = 4;
}

/// getrandom(buf, count, flags): the generator is seeded at boot and never blocks, so
/// every flag combination Linux accepts behaves the same.
pub fn getrandom(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    let flags = a[2];
    if flags & !(grnd::NONBLOCK | grnd::RANDOM | grnd::INSECURE) != 0
        || flags & (grnd::RANDOM | grnd::INSECURE) == grnd::RANDOM | grnd::INSECURE
    {
        return Err(Errno::EINVAL);
    }
    let count = a[1].min(i32::MAX as u64);
    let mut chunk = [0u8; 4096];
    let mut done = 0u64;
    while done < count {
        let n = (count - done).min(chunk.len() as u64) as usize;
        crate::random::fill(&mut chunk[..n]);
        if let Err(e) = ctx.write_user(a[0].wrapping_add(done), &chunk[..n]) {
            return if done > 0 { Ok(done) } else { Err(e) };
        }
        done += n as u64;
    }
    chunk.fill(0);
    Ok(done)
}

pub use limits::{Rlimit, Rlimits, RLIMIT_NOFILE, RLIMIT_NPROC, RLIMIT_STACK, RLIM_INFINITY};

/// Resource limits: values and the rules for changing them (pure, host-tested).
pub mod limits {
    use super::{Errno, Pod};

    /// No limit.
    pub const RLIM_INFINITY: u64 = u64::MAX;
    /// Largest stack.
    pub const RLIMIT_STACK: usize = 3;
    /// Core file size.
    const RLIMIT_CORE: usize = 4;
    /// Processes (threads, on Linux) of the user.
    pub const RLIMIT_NPROC: usize = 6;
    /// Open file descriptors (one more than the highest).
    pub const RLIMIT_NOFILE: usize = 7;
    const RLIMIT_MEMLOCK: usize = 8;
    /// Signals queued for the user's processes.
    pub const RLIMIT_SIGPENDING: usize = 11;
    const RLIMIT_MSGQUEUE: usize = 12;
    const RLIMIT_NICE: usize = 13;
    const RLIMIT_RTPRIO: usize = 14;
    /// Number of resources.
    pub const RLIM_NLIMITS: usize = 16;

    /// `struct rlimit`.
    #[repr(C)]
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Rlimit {
        /// Soft limit.
        pub cur: u64,
        /// Hard limit (ceiling for the soft one).
        pub max: u64,
    }

    // SAFETY: two u64 fields, no padding.
    unsafe impl Pod for Rlimit {}

    /// A process's limits.
    ///
    /// Defaults are Linux's boot values: stack 8 MiB soft, no core files, 1024 open
    /// files, 8 MiB locked memory, 800 KiB of message queues, no nice/real-time
    /// priority raise; everything else unlimited. Linux derives the pending-signal limit
    /// from RAM: [`Rlimits::for_machine`] does too. (The process limit astra enforces,
    /// its task cap, stays outside `RLIMIT_NPROC`.) The open-file hard limit is 1024, not
    /// Linux's 4096: it is the size astra's descriptor table honours.
    ///
    /// Processes run as root but without `CAP_SYS_RESOURCE` (as in a default container):
    /// limits can be lowered, and a soft limit raised up to the hard one, but a hard
    /// limit cannot be raised (EPERM).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Rlimits([Rlimit; RLIM_NLIMITS]);

    impl Default for Rlimits {
        fn default() -> Self {
            let unlimited = Rlimit {
                cur: RLIM_INFINITY,
                max: RLIM_INFINITY,
            };
            let mut l = [unlimited; RLIM_NLIMITS];
            l[RLIMIT_STACK].cur = 8 << 20;
            l[RLIMIT_CORE].cur = 0;
            l[RLIMIT_NOFILE] = Rlimit {
                cur: 1024,
                max: 1024,
            };
            l[RLIMIT_MEMLOCK] = Rlimit {
                cur: 8 << 20,
                max: 8 << 20,
            };
            l[RLIMIT_MSGQUEUE] = Rlimit {
                cur: 819_200,
                max: 819_200,
            };
            l[RLIMIT_NICE] = Rlimit { cur: 0, max: 0 };
            l[RLIMIT_RTPRIO] = Rlimit { cur: 0, max: 0 };
            Rlimits(l)
        }
    }

    impl Rlimits {
        /// The first process's limits on a machine that can run `threads_max` tasks:
        /// the defaults, and `RLIMIT_SIGPENDING` half of `threads_max`, soft and hard, as
        /// Linux's `fork_init` sets it from `max_threads`.
        pub fn for_machine(threads_max: u64) -> Self {
            let mut l = Rlimits::default();
            let pending = (threads_max / 2).max(1);
            l.0[RLIMIT_SIGPENDING] = Rlimit {
                cur: pending,
                max: pending,
            };
            l
        }

        /// The limit of `resource`; EINVAL for an unknown one.
        pub fn get(&self, resource: u64) -> Result<Rlimit, Errno> {
            self.0.get(resource as usize).copied().ok_or(Errno::EINVAL)
        }

        /// Sets a limit and returns the old one: EINVAL for an unknown resource or a
        /// soft limit above the hard one, EPERM for raising the hard limit.
        pub fn set(&mut self, resource: u64, new: Rlimit) -> Result<Rlimit, Errno> {
            let old = self.get(resource)?;
            if new.cur > new.max {
                return Err(Errno::EINVAL);
            }
            if new.max > old.max {
                return Err(Errno::EPERM);
            }
            self.0[resource as usize] = new;
            Ok(old)
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn defaults() {
            let l = Rlimits::default();
            assert_eq!(l.get(RLIMIT_STACK as u64).unwrap().cur, 8 << 20);
            assert_eq!(l.get(RLIMIT_STACK as u64).unwrap().max, RLIM_INFINITY);
            assert_eq!(
                l.get(RLIMIT_NOFILE as u64),
                Ok(Rlimit {
                    cur: 1024,
                    max: 1024
                })
            );
            assert_eq!(l.get(0).unwrap().cur, RLIM_INFINITY);
            assert_eq!(l.get(16), Err(Errno::EINVAL));
            let m = Rlimits::for_machine(4096);
            let sigpending = RLIMIT_SIGPENDING as u64;
            assert_eq!(
                m.get(sigpending),
                Ok(Rlimit {
                    cur: 2048,
                    max: 2048
                })
            );
            assert_eq!(m.get(RLIMIT_NOFILE as u64), l.get(RLIMIT_NOFILE as u64));
        }

        #[test]
        fn lowering_is_allowed_raising_the_hard_limit_is_not() {
            let mut l = Rlimits::default();
            let nofile = RLIMIT_NOFILE as u64;
            assert_eq!(
                l.set(nofile, Rlimit { cur: 10, max: 1024 }).map(|o| o.cur),
                Ok(1024)
            );
            assert_eq!(
                l.set(
                    nofile,
                    Rlimit {
                        cur: 1024,
                        max: 1024
                    }
                ),
                Ok(Rlimit { cur: 10, max: 1024 }),
                "soft back up to hard"
            );
            assert_eq!(
                l.set(nofile, Rlimit { cur: 100, max: 100 }).map(|_| ()),
                Ok(())
            );
            assert_eq!(
                l.set(nofile, Rlimit { cur: 100, max: 101 }),
                Err(Errno::EPERM)
            );
            assert_eq!(
                l.set(nofile, Rlimit { cur: 50, max: 40 }),
                Err(Errno::EINVAL)
            );
            assert_eq!(l.set(99, Rlimit { cur: 0, max: 0 }), Err(Errno::EINVAL));
            let stack = RLIMIT_STACK as u64;
            assert!(l
                .set(
                    stack,
                    Rlimit {
                        cur: RLIM_INFINITY,
                        max: RLIM_INFINITY
                    }
                )
                .is_ok());
        }
    }
}

/// Resolves a pid argument naming the caller (0 or its own pid); ESRCH otherwise.
fn check_self(ctx: &Ctx<'_>, pid: u64) -> Result<(), Errno> {
    let pid = pid as i32;
    let own_thread = || {
        crate::task::sched::with_other_task(pid as u32, |t| t.pid() == ctx.task.pid())
            .unwrap_or(false)
    };
    if pid == 0 || pid as u32 == ctx.task.pid() || pid as u32 == ctx.task.tid || own_thread() {
        Ok(())
    } else {
        Err(Errno::ESRCH)
    }
}

/// prlimit64(pid, resource, new, old)
pub fn prlimit64(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    let new = match a[2] {
        0 => None,
        va => Some(ctx.read_obj::<Rlimit>(va)?),
    };
    check_self(ctx, a[0])?;
    let old = match new {
        Some(new) => ctx.task.process.limits.lock().set(a[1], new)?,
        None => ctx.task.process.limits.lock().get(a[1])?,
    };
    if a[3] != 0 {
        ctx.write_obj(a[3], &old)?;
    }
    Ok(0)
}

/// getrlimit(resource, rlim)
pub fn getrlimit(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    let limit = ctx.task.process.limits.lock().get(a[0])?;
    ctx.write_obj(a[1], &limit)?;
    Ok(0)
}

/// setrlimit(resource, rlim)
pub fn setrlimit(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    let new = ctx.read_obj::<Rlimit>(a[1])?;
    ctx.task.process.limits.lock().set(a[0], new)?;
    Ok(0)
}

/// CPUs the kernel could have, in bytes of mask (Linux's `cpumask_size()`): 64.
const CPUMASK_SIZE: u64 = 8;

/// sched_getaffinity(pid, len, mask): one CPU. Returns the bytes written, like the raw
/// Linux call (not glibc's 0).
pub fn sched_getaffinity(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    let len = a[1];
    // Fewer bits than CPUs, or not a whole number of longs.
    if len == 0 || !len.is_multiple_of(8) {
        return Err(Errno::EINVAL);
    }
    check_self(ctx, a[0])?;
    let n = len.min(CPUMASK_SIZE);
    let mask = 1u64.to_le_bytes();
    ctx.write_user(a[2], &mask[..n as usize])?;
    Ok(n)
}

/// sched_setaffinity(pid, len, mask): accepted if the mask includes CPU 0, the only one.
pub fn sched_setaffinity(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    let n = a[1].min(CPUMASK_SIZE) as usize;
    let mut mask = [0u8; CPUMASK_SIZE as usize];
    ctx.read_user(a[2], &mut mask[..n])?;
    check_self(ctx, a[0])?;
    if mask[0] & 1 == 0 {
        return Err(Errno::EINVAL);
    }
    Ok(0)
}

/// getcpu(cpu, node, tcache): CPU 0, node 0.
pub fn getcpu(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    for va in [a[0], a[1]] {
        if va != 0 {
            ctx.write_obj(va, &0u32)?;
        }
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utsname_fields_are_nul_terminated() {
        let u = utsname();
        assert_eq!(&u[0][..6], b"Linux\0");
        assert_eq!(&u[4][..7], b"x86_64\0");
        assert!(u.iter().all(|f| f[64] == 0));
        assert_eq!(core::mem::size_of::<Utsname>(), 390);
    }
}

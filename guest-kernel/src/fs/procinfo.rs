//! What `/proc` shows of processes and of the machine: facts gathered from the process
//! table, the scheduler's tasks and their address spaces ([`view`], [`maps`]), and the
//! text of each `/proc` file in Linux's formats (the pure `format_*` functions).
//!
//! What a task does not keep itself is recorded here: the `comm` name, argument and
//! environment strings of the last `execve` (what `cmdline`, `environ` and `ps` read),
//! and when the process started.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;
use spin::Mutex;

pub use super::procfd::{fd_info, fd_link_mode, fd_node, fd_target, fds};

use crate::mm::vma::{PROT_EXEC, PROT_READ, PROT_WRITE};
use crate::mm::PAGE_SIZE;
use crate::task::{process, sched, Task, TaskState};

/// Linux's `USER_HZ`: the unit of times in `/proc/[pid]/stat`.
const USER_HZ: u64 = 100;
const NS_PER_TICK: u64 = 1_000_000_000 / USER_HZ;
/// Linux's `TASK_COMM_LEN` less the NUL.
pub const COMM_MAX: usize = 15;

/// What `execve` and `fork` record for a process.
#[derive(Clone, Default)]
struct Recorded {
    start_ns: u64,
    comm: String,
    cmdline: Vec<u8>,
    environ: Vec<u8>,
}

static RECORDED: Mutex<BTreeMap<u32, Recorded>> = Mutex::new(BTreeMap::new());

/// The `comm` Linux gives a program exec'ed as `path`: its last component, 15 bytes at most.
pub fn comm_of(path: &[u8]) -> String {
    let base = path.rsplit(|&b| b == b'/').next().unwrap_or(path);
    let base = &base[..base.len().min(COMM_MAX)];
    String::from_utf8_lossy(base).into_owned()
}

/// NUL-terminated strings one after the other, as Linux lays out `argv` and `envp`.
fn joined(strings: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for s in strings {
        out.extend_from_slice(s);
        out.push(0);
    }
    out
}

/// Forgets processes that have left the table.
fn prune(table: &mut BTreeMap<u32, Recorded>) {
    table.retain(|&pid, _| process::get(pid).is_some());
}

/// Records that process `pid` exec'ed `path` with `argv` and `envp` (its start time stays).
pub fn record_exec(pid: u32, path: &[u8], argv: &[&[u8]], envp: &[&[u8]]) {
    let mut table = RECORDED.lock();
    prune(&mut table);
    let start_ns = table
        .get(&pid)
        .map_or_else(crate::time::monotonic_ns, |r| r.start_ns);
    let rec = Recorded {
        start_ns,
        comm: comm_of(path),
        cmdline: joined(argv),
        environ: joined(envp),
    };
    table.insert(pid, rec);
}

/// Records that `child` was forked from `parent` now (it runs the same program).
pub fn record_fork(parent: u32, child: u32) {
    let mut table = RECORDED.lock();
    prune(&mut table);
    let mut rec = table.get(&parent).cloned().unwrap_or_default();
    rec.start_ns = crate::time::monotonic_ns();
    table.insert(child, rec);
}

/// Renames process `pid` (`prctl(PR_SET_NAME)`; `name` is at most 15 bytes).
pub fn set_comm(pid: u32, name: &[u8]) {
    let mut table = RECORDED.lock();
    let rec = table.entry(pid).or_default();
    rec.comm = String::from_utf8_lossy(name).into_owned();
}

/// The `comm` of process `pid`, whose program is `exe` if none was recorded.
pub fn comm(pid: u32, exe: &str) -> String {
    match RECORDED.lock().get(&pid) {
        Some(r) if !r.comm.is_empty() => r.comm.clone(),
        _ => comm_of(exe.as_bytes()),
    }
}

/// The process the caller belongs to (`/proc/self`); the test process in host tests, and
/// pid 0 for calls made outside any task (kernel self-tests: only its `exe` link, which
/// the walk answers, means anything there).
pub fn self_pid() -> Option<u32> {
    if cfg!(test) {
        return Some(TEST_PID);
    }
    Some(sched::current().map_or(0, |t| t.pid()))
}

/// The pid host unit tests run as.
pub const TEST_PID: u32 = 1;

/// Whether process `pid` exists (zombies included; the caller always does, also a
/// kernel self-test's task that is in no process table).
pub fn exists(pid: u32) -> bool {
    process::get(pid).is_some() || self_pid() == Some(pid)
}

/// Every process id, ascending.
pub fn pids() -> Vec<u32> {
    let mut pids: Vec<u32> = process::all().iter().map(|p| p.pid).collect();
    if let Some(me) = self_pid().filter(|me| !pids.contains(me)) {
        pids.push(me);
    }
    pids.sort_unstable();
    pids
}

/// Runs `f` on the first live thread of process `pid`.
pub(super) fn with_leader<R>(pid: u32, f: impl FnOnce(&Task) -> R) -> Option<R> {
    let tid = *sched::threads_of(pid).first()?;
    if let Some(me) = sched::current() {
        if me.tid == tid {
            return Some(f(me));
        }
    }
    sched::with_other_task(tid, |t| f(t))
}

/// Memory figures of an address space.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemStats {
    /// Bytes of every area.
    pub vsize: u64,
    /// Pages with a frame.
    pub rss_pages: u64,
    /// Bytes of executable areas.
    pub text: u64,
    /// Bytes of writable private areas (data, heap, stacks).
    pub data: u64,
    /// Bytes of growing-down (stack) areas.
    pub stack: u64,
}

/// What `stat`, `status` and `statm` show of a process.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct View {
    pub pid: u32,
    pub ppid: u32,
    pub pgid: u32,
    pub sid: u32,
    /// Linux's state letter (R, S, Z).
    pub state: char,
    pub threads: u32,
    /// CPU time of every thread, live and exited.
    pub cpu_ns: u64,
    /// CPU time of the reaped children.
    pub children_cpu_ns: u64,
    /// Page faults, and those of the reaped children.
    pub min_flt: u64,
    pub children_min_flt: u64,
    /// Monotonic time the process started.
    pub start_ns: u64,
    pub comm: String,
    pub exit_signal: u8,
    pub umask: u32,
    pub fds: u32,
    pub sig_blocked: u64,
    pub sig_pending: u64,
    /// The leader's own pending signals (`SigPnd`) and the process's (`ShdPnd`).
    pub sig_own: u64,
    pub sig_shared: u64,
    /// Signals ignored (`SigIgn`) and caught by a handler (`SigCgt`).
    pub sig_ignored: u64,
    pub sig_caught: u64,
    /// Queued signal instances of the user and the process's limit (`SigQ`).
    pub sig_queued: usize,
    pub sig_limit: u64,
    /// None for a zombie (no address space left).
    pub mem: Option<MemStats>,
}

/// The memory figures of `mm`.
fn mem_stats(mm: &crate::mm::Mm) -> MemStats {
    let mut m = MemStats::default();
    for vma in mm.mem.vmas().iter() {
        m.vsize += vma.len();
        if vma.prot & PROT_EXEC != 0 {
            m.text += vma.len();
        } else if vma.prot & PROT_WRITE != 0 && !vma.flags.shared {
            m.data += vma.len();
        }
        if vma.flags.growsdown {
            m.stack += vma.len();
        }
        mm.space
            .for_each_mapped(vma.start, vma.end, |_, _, _| m.rss_pages += 1);
    }
    m
}

/// A view of process `pid`, if it exists.
pub fn view(pid: u32) -> Option<View> {
    let proc = process::get(pid)?;
    let rec = RECORDED.lock().get(&pid).cloned().unwrap_or_default();
    let mut v = View {
        pid,
        ppid: proc.ppid(),
        pgid: proc.pgid(),
        sid: proc.sid(),
        state: 'Z',
        cpu_ns: proc.dead_cpu_ns(),
        children_cpu_ns: proc.children_cpu_ns(),
        min_flt: proc.min_flt(),
        children_min_flt: proc.children_min_flt(),
        start_ns: rec.start_ns,
        comm: rec.comm,
        exit_signal: proc.exit_signal,
        ..View::default()
    };
    let tids = sched::threads_of(pid);
    let me = sched::current().map(|t| t.tid);
    v.threads = tids.len() as u32;
    let mut running = false;
    for &tid in &tids {
        let (ns, state) = if Some(tid) == me {
            (
                sched::current().map_or(0, |t| t.cpu_ns()),
                TaskState::Runnable,
            )
        } else {
            sched::with_other_task(tid, |t| (t.cpu_ns(), t.state())).unwrap_or((0, TaskState::Dead))
        };
        v.cpu_ns += ns;
        running |= state == TaskState::Runnable;
    }
    if tids.is_empty() {
        return Some(v);
    }
    v.state = if running { 'R' } else { 'S' };
    with_leader(pid, |t| {
        if v.comm.is_empty() {
            v.comm = comm_of(t.name().as_bytes());
        }
        v.umask = t.fs.try_lock().map_or(0o022, |fs| fs.umask);
        v.fds = t.files.try_lock().map_or(0, |f| f.count() as u32);
        v.sig_blocked = t.signals.blocked().0;
        v.sig_pending = t.signals.pending().0;
        v.sig_own = t.signals.thread_pending().0;
        v.sig_shared = t.signals.shared_pending().0;
        (v.sig_ignored, v.sig_caught) = t.signals.ignored_and_caught();
        v.sig_queued = t.signals.queued_total();
        v.sig_limit = t.process.sigpending_limit();
        v.mem = t.mm.try_lock().map(|mm| mem_stats(&mm));
    });
    Some(v)
}

/// `cmdline` (`true`) or `environ` of process `pid`.
pub fn strings(pid: u32, cmdline: bool) -> Option<Vec<u8>> {
    if !exists(pid) {
        return None;
    }
    let table = RECORDED.lock();
    let rec = table.get(&pid);
    Some(rec.map_or_else(Vec::new, |r| {
        if cmdline {
            r.cmdline.clone()
        } else {
            r.environ.clone()
        }
    }))
}

/// The program process `pid` runs (the path it was exec'ed from, symlinks resolved).
pub fn exe(pid: u32) -> Option<String> {
    with_leader(pid, |t| super::procfs::exe_abs(t.name()))
}

/// The working directory of process `pid`.
pub fn cwd(pid: u32) -> Option<String> {
    with_leader(pid, |t| t.fs.try_lock().map(|fs| fs.cwd.clone())).flatten()
}

/// One line of `/proc/[pid]/maps`.
pub fn format_map(
    start: u64,
    end: u64,
    prot: u32,
    shared: bool,
    offset: u64,
    name: &str,
) -> String {
    let bit = |on: bool, c: char| if on { c } else { '-' };
    let mut s = alloc::format!(
        "{start:08x}-{end:08x} {}{}{}{} {offset:08x} 00:00 0",
        bit(prot & PROT_READ != 0, 'r'),
        bit(prot & PROT_WRITE != 0, 'w'),
        bit(prot & PROT_EXEC != 0, 'x'),
        if shared { 's' } else { 'p' },
    );
    if !name.is_empty() {
        // Linux pads the name to column 73.
        while s.len() < 73 {
            s.push(' ');
        }
        s.push_str(name);
    }
    s.push('\n');
    s
}

/// `/proc/[pid]/maps`: the areas of the address space (file areas are not named: the
/// kernel keeps no path for them).
pub fn maps(pid: u32) -> Option<String> {
    with_leader(pid, |t| {
        let mm = t.mm.try_lock()?;
        let brk = mm.mem.brk_value();
        let mut out = String::new();
        for vma in mm.mem.vmas().iter() {
            let (offset, name) = match &vma.backing {
                crate::mm::vma::Backing::File { offset, .. } => (*offset, ""),
                _ if vma.flags.growsdown => (0, "[stack]"),
                b if b.is_anonymous() && brk > vma.start && brk <= vma.end => (0, "[heap]"),
                _ => (0, ""),
            };
            out.push_str(&format_map(
                vma.start,
                vma.end,
                vma.prot,
                vma.flags.shared,
                offset,
                name,
            ));
        }
        Some(out)
    })
    .flatten()
}

fn ticks(ns: u64) -> u64 {
    ns / NS_PER_TICK
}

/// `/proc/[pid]/stat`: Linux's 52 fields (times in USER_HZ ticks; all CPU time counts as
/// user time; no controlling terminal is tracked: tty 0, tpgid -1).
pub fn format_stat(v: &View) -> String {
    let m = v.mem.unwrap_or_default();
    let mut s = String::new();
    let _ = write!(
        s,
        "{} ({}) {} {} {} {} 0 -1 4194304 {} {} 0 0 {} 0 {} 0 20 0 {} 0 {} {} {} {}",
        v.pid,
        v.comm,
        v.state,
        v.ppid,
        v.pgid,
        v.sid,
        v.min_flt,
        v.children_min_flt,
        ticks(v.cpu_ns),
        ticks(v.children_cpu_ns),
        v.threads.max(1),
        ticks(v.start_ns),
        m.vsize,
        m.rss_pages,
        u64::MAX,
    );
    // startcode endcode startstack kstkesp kstkeip signal blocked sigignore sigcatch
    // wchan nswap cnswap exit_signal processor rt_priority policy blkio guest cguest
    // start_data end_data start_brk arg_start arg_end env_start env_end exit_code
    let _ = writeln!(
        s,
        " 0 0 0 0 0 {} {} 0 0 0 0 0 {} 0 0 0 0 0 0 0 0 0 0 0 0 0 0",
        v.sig_pending & 0x7fff_ffff,
        v.sig_blocked & 0x7fff_ffff,
        v.exit_signal,
    );
    s
}

/// `/proc/[pid]/status`.
pub fn format_status(v: &View) -> String {
    let state = match v.state {
        'R' => "R (running)",
        'S' => "S (sleeping)",
        _ => "Z (zombie)",
    };
    let mut s = String::new();
    let _ = write!(
        s,
        "Name:\t{}\nUmask:\t{:04o}\nState:\t{}\nTgid:\t{}\nNgid:\t0\nPid:\t{}\nPPid:\t{}\n\
         TracerPid:\t0\nUid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\nFDSize:\t{}\nGroups:\t\n",
        v.comm,
        v.umask,
        state,
        v.pid,
        v.pid,
        v.ppid,
        v.fds.next_power_of_two().max(64),
    );
    if let Some(m) = v.mem {
        let kb = |b: u64| b / 1024;
        let _ = write!(
            s,
            "VmSize:\t{:8} kB\nVmRSS:\t{:8} kB\nVmData:\t{:8} kB\nVmStk:\t{:8} kB\nVmExe:\t{:8} kB\n",
            kb(m.vsize),
            m.rss_pages * PAGE_SIZE / 1024,
            kb(m.data),
            kb(m.stack),
            kb(m.text),
        );
    }
    let _ = write!(
        s,
        "Threads:\t{}\nSigQ:\t{}/{}\nSigPnd:\t{:016x}\nShdPnd:\t{:016x}\nSigBlk:\t{:016x}\n\
         SigIgn:\t{:016x}\nSigCgt:\t{:016x}\n",
        v.threads,
        v.sig_queued,
        v.sig_limit,
        v.sig_own,
        v.sig_shared,
        v.sig_blocked,
        v.sig_ignored,
        v.sig_caught,
    );
    s
}

/// `/proc/[pid]/statm`: size resident shared text lib data dt, in pages.
pub fn format_statm(v: &View) -> String {
    let m = v.mem.unwrap_or_default();
    let p = |b: u64| b / PAGE_SIZE;
    alloc::format!(
        "{} {} 0 {} 0 {} 0\n",
        p(m.vsize),
        m.rss_pages,
        p(m.text),
        p(m.data + m.stack)
    )
}

/// `/proc/meminfo` for `total` and `free` bytes of RAM.
pub fn format_meminfo(total: u64, free: u64) -> String {
    let kb = |b: u64| b / 1024;
    alloc::format!(
        "MemTotal:       {:8} kB\nMemFree:        {:8} kB\nMemAvailable:   {:8} kB\n\
         Buffers:        {:8} kB\nCached:         {:8} kB\nSwapCached:     {:8} kB\n\
         SwapTotal:      {:8} kB\nSwapFree:       {:8} kB\nShmem:          {:8} kB\n",
        kb(total),
        kb(free),
        kb(free),
        0,
        0,
        0,
        0,
        0,
        0,
    )
}

/// `/proc/uptime`: seconds up and seconds idle, to the hundredth.
pub fn format_uptime(up_ns: u64, idle_ns: u64) -> String {
    let cs = |ns: u64| ns / 10_000_000;
    alloc::format!(
        "{}.{:02} {}.{:02}\n",
        cs(up_ns) / 100,
        cs(up_ns) % 100,
        cs(idle_ns) / 100,
        cs(idle_ns) % 100
    )
}

/// `/proc/loadavg`: load averages are not tracked (0.00, as `sysinfo` says); then running
/// and total threads, and the newest pid.
pub fn format_loadavg(running: usize, total: usize, last_pid: u32) -> String {
    alloc::format!("0.00 0.00 0.00 {running}/{total} {last_pid}\n")
}

/// `/proc/stat` for one CPU: `busy_ns` of task time (all counted as user time) out of
/// `up_ns`, the rest idle; boot time in seconds since the epoch; processes forked since
/// boot (the newest pid); running and blocked processes now.
pub fn format_stat_file(
    up_ns: u64,
    busy_ns: u64,
    btime: u64,
    forks: u32,
    running: usize,
    blocked: usize,
) -> String {
    let user = ticks(busy_ns);
    let idle = ticks(up_ns.saturating_sub(busy_ns));
    let cpu = alloc::format!("{user} 0 0 {idle} 0 0 0 0 0 0");
    alloc::format!(
        "cpu  {cpu}\ncpu0 {cpu}\nintr 0\nctxt 0\nbtime {btime}\nprocesses {forks}\n\
         procs_running {running}\nprocs_blocked {blocked}\n"
    )
}

/// The live file systems' names by `statfs` magic, for `/proc/mounts`.
pub fn fs_type(magic: u64) -> &'static str {
    match magic {
        0x0102_1994 => "tmpfs",
        0x9fa0 => "proc",
        0x794c_7630 => "overlay",
        0x0074_6172 => "tarfs",
        super::hostfs::HOSTFS_MAGIC => "hostfs",
        _ => "unknown",
    }
}

/// The text of a machine-wide `/proc` file.
pub fn global(name: &str) -> Option<String> {
    Some(match name {
        "meminfo" => {
            let (total, free) = {
                let frames = crate::mm::frame::FRAMES.lock();
                (frames.total_frames(), frames.free_frames())
            };
            format_meminfo(total * PAGE_SIZE, free * PAGE_SIZE)
        }
        "uptime" => {
            let up = crate::time::monotonic_ns();
            // Time spent running no task is not measured apart: report none idle.
            format_uptime(up, 0)
        }
        "stat" => {
            let views: Vec<View> = process::all().iter().filter_map(|p| view(p.pid)).collect();
            let busy: u64 = views.iter().map(|v| v.cpu_ns + v.children_cpu_ns).sum();
            let running = views.iter().filter(|v| v.state == 'R').count();
            let blocked = views.iter().filter(|v| v.state == 'S').count();
            let last = views.iter().map(|v| v.pid).max().unwrap_or(0);
            let btime = crate::time::wall_at_boot_ns() / 1_000_000_000;
            let up = crate::time::monotonic_ns();
            format_stat_file(up, busy.min(up), btime, last, running, blocked)
        }
        "loadavg" => {
            let procs = process::all();
            let last = procs.iter().map(|p| p.pid).max().unwrap_or(0);
            let threads = sched::task_count();
            let running = procs
                .iter()
                .filter_map(|p| view(p.pid))
                .filter(|v| v.state == 'R')
                .count();
            format_loadavg(running, threads, last)
        }
        "mounts" => super::vfs::mounts_text(super::namespace()),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> View {
        View {
            pid: 7,
            ppid: 1,
            pgid: 7,
            sid: 1,
            state: 'S',
            threads: 1,
            cpu_ns: 2_500_000_000,
            start_ns: 1_000_000_000,
            comm: String::from("sleep"),
            exit_signal: 17,
            mem: Some(MemStats {
                vsize: 8192,
                rss_pages: 1,
                text: 4096,
                data: 4096,
                stack: 0,
            }),
            ..View::default()
        }
    }

    #[test]
    fn stat_has_linuxs_52_fields() {
        let s = format_stat(&sample());
        assert!(s.starts_with("7 (sleep) S 1 7 1 0 -1 "));
        let after = &s[s.rfind(')').unwrap() + 2..];
        let fields: Vec<&str> = after.split_whitespace().collect();
        assert_eq!(fields.len() + 2, 52);
        // utime (field 14) and starttime (22), vsize (23), rss (24), exit_signal (38).
        assert_eq!(fields[14 - 3], "250");
        assert_eq!(fields[22 - 3], "100");
        assert_eq!(fields[23 - 3], "8192");
        assert_eq!(fields[24 - 3], "1");
        assert_eq!(fields[38 - 3], "17");
    }

    #[test]
    fn status_statm_and_machine_files() {
        let st = format_status(&sample());
        assert!(st.starts_with("Name:\tsleep\nUmask:\t0000\nState:\tS (sleeping)\n"));
        assert!(st.contains("\nPPid:\t1\n"));
        assert!(st.contains("VmRSS:\t       4 kB\n"));
        assert_eq!(format_statm(&sample()), "2 1 0 1 0 1 0\n");
        let zombie = View {
            state: 'Z',
            mem: None,
            ..sample()
        };
        assert!(!format_status(&zombie).contains("VmSize"));
        assert!(format_meminfo(2 << 20, 1 << 20).starts_with("MemTotal:           2048 kB\n"));
        assert_eq!(format_uptime(12_345_678_901, 0), "12.34 0.00\n");
        assert_eq!(format_loadavg(1, 3, 9), "0.00 0.00 0.00 1/3 9\n");
        let st = format_stat_file(3_000_000_000, 1_000_000_000, 1_700_000_000, 9, 1, 2);
        assert!(
            st.starts_with("cpu  100 0 0 200 0 0 0 0 0 0\ncpu0 100 "),
            "{st}"
        );
        assert!(st.contains("\nbtime 1700000000\nprocesses 9\nprocs_running 1\n"));
    }

    #[test]
    fn maps_lines_and_names() {
        assert_eq!(
            format_map(0x1000, 0x3000, PROT_READ | PROT_EXEC, false, 0x2000, ""),
            "00001000-00003000 r-xp 00002000 00:00 0\n"
        );
        let heap = format_map(0x1000, 0x2000, PROT_READ | PROT_WRITE, true, 0, "[heap]");
        assert_eq!(heap.len(), 73 + 7);
        assert!(heap.starts_with("00001000-00002000 rw-s "));
        assert_eq!(comm_of(b"/opt/busybox/bin/sleep"), "sleep");
        assert_eq!(comm_of(b"a-very-long-program-name"), "a-very-long-pro");
        assert_eq!(joined(&[b"ls", b"-l"]), b"ls\0-l\0");
    }
}

//! What gdb sees of a stopped guest: its registers (a snapshot the vCPU loop takes at the
//! stop and writes back at the resume), its memory by virtual address, software
//! breakpoints planted as `int3` bytes, and the debug registers for hardware breakpoints
//! and watchpoints.
//!
//! Threads: every guest thread is a gdb thread with its guest tid as its id, listed from
//! the kernel's thread table (`debug::EVENT_THREADS`). The thread on the CPU has the
//! registers of the stop; the others have the user-mode registers the kernel saved for
//! them (general-purpose, rip, rflags, segments, FS/GS base; their SSE state stays in
//! the kernel and reads as zero) and their own address space. Before the kernel has a
//! task, or while it idles, the CPU is the pseudo-thread [`KERNEL_TID`].

use std::collections::BTreeMap;
use std::num::NonZeroUsize;
use std::ops::Range;

use super::arch::{AstraRegs, AstraX86_64};
use gdbstub::common::{Signal, Tid};
use gdbstub::target::ext::base::multithread::{
    MultiThreadBase, MultiThreadResume, MultiThreadResumeOps, MultiThreadSchedulerLocking,
    MultiThreadSchedulerLockingOps, MultiThreadSingleStep, MultiThreadSingleStepOps,
};
use gdbstub::target::ext::base::BaseOps;
use gdbstub::target::ext::breakpoints::{
    Breakpoints, BreakpointsOps, HwBreakpoint, HwBreakpointOps, HwWatchpoint, HwWatchpointOps,
    SwBreakpoint, SwBreakpointOps, WatchKind,
};
use gdbstub::target::{Target, TargetError, TargetResult};
use hypercall_abi::{DebugRegs, DebugThread, DebugThreads, DebugUserFrame};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use super::walk;

/// The opcode of `int3`.
const INT3: u8 = 0xcc;
/// The gdb thread id of the CPU when no guest thread is on it (boot, idle).
pub const KERNEL_TID: usize = 0x7fff_ffff;
/// Lowest address of the kernel half.
const KERNEL_HALF: u64 = 0xffff_8000_0000_0000;
use hypercall_abi::layout::BOOT_PML4_GPA;

/// The gdb thread id of guest thread `tid` (0: none, the kernel's pseudo-thread).
pub fn gdb_tid(tid: u32) -> Tid {
    NonZeroUsize::new(tid as usize).unwrap_or(NonZeroUsize::MIN.saturating_add(KERNEL_TID - 1))
}

fn le_u32(b: &[u8]) -> u32 {
    let mut w = [0u8; 4];
    w.copy_from_slice(&b[..4]);
    u32::from_le_bytes(w)
}

fn le_u64(b: &[u8]) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[..8]);
    u64::from_le_bytes(w)
}

/// A software breakpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct SwBreak {
    /// Where it is planted and the byte it replaced; `None` while its page is not there.
    planted: Option<(u64, u8)>,
}

/// A debug-register slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HwSlot {
    /// The watched or breakpoint address.
    pub addr: u64,
    /// Bytes (1, 2, 4 or 8; 1 for a breakpoint).
    pub len: u64,
    /// `None` for an execution breakpoint.
    pub watch: Option<WatchKind>,
}

/// What gdb asked for when it resumed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResumeAction {
    /// Run.
    Continue,
    /// Execute one instruction.
    Step,
}

/// The stopped guest as gdb sees it.
pub struct GuestTarget {
    mem: GuestMemoryMmap,
    /// The registers at the stop (written back at the resume).
    pub regs: AstraRegs,
    /// gdb changed `regs`.
    pub regs_dirty: bool,
    /// The page-table root the stopped code runs on.
    pub cr3: u64,
    /// The kernel's own tables (from its ready event).
    pub kernel_cr3: u64,
    /// The current program's tables (from its load event).
    pub user_cr3: u64,
    /// The kernel's debug entry works: kernel breakpoints may be planted.
    pub kernel_ready: bool,
    /// The kernel's debug registers fire (its probe at boot). Where they do not, write
    /// watchpoints are emulated by stepping and comparing, and the other kinds are refused.
    pub dr_works: bool,
    /// Code that must not be broken into (the kernel's trap entry and debug path).
    pub no_break: Range<u64>,
    sw: BTreeMap<u64, SwBreak>,
    /// DR0-DR3.
    pub hw: [Option<HwSlot>; 4],
    /// Set by gdb's resume.
    pub resume: Option<ResumeAction>,
    /// The kernel's thread table: guest-physical address and slots.
    pub thread_table: Option<(u64, u32)>,
    /// The table as read at the stop.
    threads: Vec<DebugThread>,
    /// The guest thread on the CPU at the stop (0: none).
    current: u32,
}

impl GuestTarget {
    /// A target over guest RAM `mem`, stopped with nothing known yet.
    pub fn new(mem: GuestMemoryMmap) -> GuestTarget {
        GuestTarget {
            mem,
            regs: AstraRegs::default(),
            regs_dirty: false,
            cr3: 0,
            kernel_cr3: 0,
            user_cr3: 0,
            kernel_ready: false,
            dr_works: true,
            no_break: 0..0,
            sw: BTreeMap::new(),
            hw: [None; 4],
            resume: None,
            thread_table: None,
            threads: Vec::new(),
            current: 0,
        }
    }

    /// Reads the kernel's thread table (at a stop). A table that does not fit guest RAM
    /// or its slots is ignored: the CPU is then the only thread.
    pub fn refresh_threads(&mut self) {
        self.threads.clear();
        self.current = 0;
        let Some((gpa, slots)) = self.thread_table else {
            return;
        };
        let mut raw = [0u8; std::mem::size_of::<DebugThreads>()];
        if self.mem.read_slice(&mut raw, GuestAddress(gpa)).is_err() {
            return;
        }
        let header = DebugThreads {
            current: le_u32(&raw[0..4]),
            count: le_u32(&raw[4..8]),
        };
        if header.count > slots.min(hypercall_abi::debug::THREADS_MAX) {
            log::warn!("gdb: ignoring a thread table of {} threads", header.count);
            return;
        }
        let size = std::mem::size_of::<DebugThread>() as u64;
        let base = gpa + std::mem::size_of::<DebugThreads>() as u64;
        for i in 0..u64::from(header.count) {
            let mut raw = [0u8; std::mem::size_of::<DebugThread>()];
            let Some(at) = (i * size).checked_add(base) else {
                break;
            };
            if self.mem.read_slice(&mut raw, GuestAddress(at)).is_err() {
                break;
            }
            let t = DebugThread {
                tid: le_u32(&raw[0..4]),
                pid: le_u32(&raw[4..8]),
                frame: le_u64(&raw[8..16]),
                cr3: le_u64(&raw[16..24]),
                fs_base: le_u64(&raw[24..32]),
                gs_base: le_u64(&raw[32..40]),
            };
            if t.tid != 0 {
                self.threads.push(t);
            }
        }
        if self.threads.iter().any(|t| t.tid == header.current) {
            self.current = header.current;
        }
    }

    /// The gdb thread on the CPU.
    pub fn current_tid(&self) -> Tid {
        gdb_tid(self.current)
    }

    /// The listed guest thread `tid` if it is not the one on the CPU.
    fn other_thread(&self, tid: Tid) -> Option<&DebugThread> {
        let tid = u32::try_from(tid.get()).ok()?;
        if tid == self.current {
            return None;
        }
        self.threads.iter().find(|t| t.tid == tid)
    }

    /// The saved user-mode registers of `thread` (off the CPU).
    fn saved_frame(&self, thread: &DebugThread) -> Option<DebugUserFrame> {
        let mut raw = [0u8; std::mem::size_of::<DebugUserFrame>()];
        let roots = [self.kernel_cr3, 0, 0];
        if thread.frame == 0 || self.read_with(&roots, thread.frame, &mut raw) != raw.len() {
            return None;
        }
        let mut words = [0u64; 22];
        for (w, chunk) in words.iter_mut().zip(raw.chunks_exact(8)) {
            let mut b = [0u8; 8];
            b.copy_from_slice(chunk);
            *w = u64::from_le_bytes(b);
        }
        let [rax, rbx, rcx, rdx, rsi, rdi, rbp, r8, r9, r10, r11, r12, r13, r14, r15, vector, error_code, rip, cs, rflags, rsp, ss] =
            words;
        Some(DebugUserFrame {
            rax,
            rbx,
            rcx,
            rdx,
            rsi,
            rdi,
            rbp,
            r8,
            r9,
            r10,
            r11,
            r12,
            r13,
            r14,
            r15,
            vector,
            error_code,
            rip,
            cs,
            rflags,
            rsp,
            ss,
        })
    }

    /// The kernel's saved registers of `thread` in the debug request's form.
    fn saved_regs(&self, thread: &DebugThread) -> Option<DebugRegs> {
        let f = self.saved_frame(thread)?;
        Some(DebugRegs {
            rax: f.rax,
            rbx: f.rbx,
            rcx: f.rcx,
            rdx: f.rdx,
            rsi: f.rsi,
            rdi: f.rdi,
            rbp: f.rbp,
            rsp: f.rsp,
            r8: f.r8,
            r9: f.r9,
            r10: f.r10,
            r11: f.r11,
            r12: f.r12,
            r13: f.r13,
            r14: f.r14,
            r15: f.r15,
            rip: f.rip,
            rflags: f.rflags,
            cs: f.cs,
            ss: f.ss,
            fs_base: thread.fs_base,
            gs_base: thread.gs_base,
            cr3: thread.cr3,
        })
    }

    /// Page-table roots for `gva` in `thread`'s address space.
    fn thread_roots(&self, thread: &DebugThread, gva: u64) -> [u64; 3] {
        if gva >= KERNEL_HALF {
            [self.kernel_cr3, thread.cr3, 0]
        } else {
            [thread.cr3, 0, 0]
        }
    }

    /// Guest RAM.
    pub fn mem(&self) -> &GuestMemoryMmap {
        &self.mem
    }

    /// Page-table roots to try for `gva`, best first (0: none). The user half exists
    /// only in a program's tables: the boot tables' identity map and the kernel's own
    /// tables say nothing about it.
    fn roots(&self, gva: u64) -> [u64; 3] {
        if gva >= KERNEL_HALF {
            [self.cr3, self.kernel_cr3, self.user_cr3]
        } else if self.user_cr3 == 0 {
            [0; 3]
        } else {
            let current = self.cr3 & !0xfff;
            let kernel_tables = current == BOOT_PML4_GPA || current == self.kernel_cr3 & !0xfff;
            [if kernel_tables { 0 } else { self.cr3 }, self.user_cr3, 0]
        }
    }

    fn translate(&self, gva: u64) -> Option<u64> {
        walk::translate_any(&self.mem, &self.roots(gva), gva)
    }

    /// Reads guest-virtual memory; the number of bytes read before an unmapped page.
    pub fn read_virt(&self, gva: u64, data: &mut [u8]) -> usize {
        let roots = self.roots(gva);
        self.read_with(&roots, gva, data)
    }

    /// Reads guest-virtual memory through the first of `roots` that maps each page.
    fn read_with(&self, roots: &[u64; 3], gva: u64, data: &mut [u8]) -> usize {
        let mut done = 0;
        while done < data.len() {
            let va = gva.wrapping_add(done as u64);
            let Some(gpa) = walk::translate_any(&self.mem, roots, va) else {
                break;
            };
            let in_page = (0x1000 - (va & 0xfff)) as usize;
            let n = in_page.min(data.len() - done);
            if self
                .mem
                .read_slice(&mut data[done..done + n], GuestAddress(gpa))
                .is_err()
            {
                break;
            }
            done += n;
        }
        // gdb reads memory with its breakpoints removed, but planted pending ones are
        // the stub's own business: show the original bytes.
        for (&addr, bp) in self.sw.range(gva..gva.saturating_add(done as u64)) {
            if let Some((_, orig)) = bp.planted {
                data[(addr - gva) as usize] = orig;
            }
        }
        done
    }

    /// Writes guest-virtual memory; false if a page is not mapped.
    pub fn write_virt(&self, gva: u64, data: &[u8]) -> bool {
        let mut done = 0;
        while done < data.len() {
            let va = gva.wrapping_add(done as u64);
            let Some(gpa) = self.translate(va) else {
                return false;
            };
            let in_page = (0x1000 - (va & 0xfff)) as usize;
            let n = in_page.min(data.len() - done);
            if self
                .mem
                .write_slice(&data[done..done + n], GuestAddress(gpa))
                .is_err()
            {
                return false;
            }
            done += n;
        }
        true
    }

    fn may_plant(&self, addr: u64) -> bool {
        addr < KERNEL_HALF || self.kernel_ready
    }

    /// Plants every breakpoint whose page is there now.
    pub fn plant_pending(&mut self) {
        let pending: Vec<u64> = self
            .sw
            .iter()
            .filter(|(_, bp)| bp.planted.is_none())
            .map(|(&a, _)| a)
            .collect();
        for addr in pending {
            if !self.may_plant(addr) {
                continue;
            }
            let Some(gpa) = self.translate(addr) else {
                continue;
            };
            let Ok(orig) = self.mem.read_obj::<u8>(GuestAddress(gpa)) else {
                continue;
            };
            if self.mem.write_obj(INT3, GuestAddress(gpa)).is_ok() {
                log::debug!("gdb: breakpoint planted at {addr:#x} (gpa {gpa:#x})");
                self.sw.insert(
                    addr,
                    SwBreak {
                        planted: Some((gpa, orig)),
                    },
                );
            }
        }
    }

    /// True if a planted software breakpoint sits at `addr`.
    pub fn is_sw_breakpoint(&self, addr: u64) -> bool {
        self.sw.get(&addr).is_some_and(|bp| bp.planted.is_some())
    }

    /// Removes every breakpoint and watchpoint (detach).
    pub fn clear_all(&mut self) {
        let addrs: Vec<u64> = self.sw.keys().copied().collect();
        for addr in addrs {
            self.remove_sw(addr);
        }
        self.hw = [None; 4];
    }

    fn remove_sw(&mut self, addr: u64) -> bool {
        match self.sw.remove(&addr) {
            Some(SwBreak {
                planted: Some((gpa, orig)),
            }) => {
                let _ = self.mem.write_obj(orig, GuestAddress(gpa));
                true
            }
            Some(_) => true,
            None => false,
        }
    }

    /// The write watchpoints, when they must be emulated: (address, current bytes).
    pub fn emulated_watches(&self) -> Vec<(u64, Vec<u8>)> {
        if self.dr_works {
            return Vec::new();
        }
        self.hw
            .iter()
            .flatten()
            .filter(|s| s.watch == Some(WatchKind::Write))
            .map(|s| {
                let mut now = vec![0u8; s.len as usize];
                let n = self.read_virt(s.addr, &mut now);
                now.truncate(n);
                (s.addr, now)
            })
            .collect()
    }

    /// DR0-DR3 and DR7 for the slots in use.
    pub fn debug_registers(&self) -> ([u64; 4], u64) {
        let mut dr = [0u64; 4];
        let mut dr7 = 0u64;
        for (i, slot) in self.hw.iter().enumerate() {
            let Some(slot) = slot else { continue };
            dr[i] = slot.addr;
            let rw = match slot.watch {
                None => 0b00,
                Some(WatchKind::Write) => 0b01,
                Some(WatchKind::Read | WatchKind::ReadWrite) => 0b11,
            };
            let len = match slot.len {
                2 => 0b01,
                8 => 0b10,
                4 => 0b11,
                _ => 0b00,
            };
            // Global enable (G0..G3): kept across the kernel's task switches.
            dr7 |= 1 << (2 * i + 1);
            dr7 |= (rw | (len << 2)) << (16 + 4 * i);
        }
        (dr, dr7)
    }

    fn add_hw(&mut self, slot: HwSlot) -> bool {
        match self.hw.iter_mut().find(|s| s.is_none()) {
            Some(free) => {
                *free = Some(slot);
                true
            }
            None => false,
        }
    }

    fn remove_hw(&mut self, slot: HwSlot) -> bool {
        match self.hw.iter_mut().find(|s| **s == Some(slot)) {
            Some(s) => {
                *s = None;
                true
            }
            None => false,
        }
    }
}

impl Target for GuestTarget {
    type Arch = AstraX86_64;
    type Error = ();

    fn base_ops(&mut self) -> BaseOps<'_, Self::Arch, Self::Error> {
        BaseOps::MultiThread(self)
    }

    fn support_breakpoints(&mut self) -> Option<BreakpointsOps<'_, Self>> {
        Some(self)
    }
}

impl MultiThreadBase for GuestTarget {
    fn read_registers(&mut self, regs: &mut AstraRegs, tid: Tid) -> TargetResult<(), Self> {
        match self.other_thread(tid).copied() {
            None => *regs = self.regs.clone(),
            Some(thread) => {
                let saved = self.saved_regs(&thread).ok_or(TargetError::Errno(14))?;
                *regs = super::regs::from_request(&saved, &Default::default());
            }
        }
        Ok(())
    }

    fn write_registers(&mut self, regs: &AstraRegs, tid: Tid) -> TargetResult<(), Self> {
        let Some(thread) = self.other_thread(tid).copied() else {
            self.regs = regs.clone();
            self.regs_dirty = true;
            return Ok(());
        };
        // A thread off the CPU: its saved general-purpose registers, rip and flags (the
        // kernel keeps its own bookkeeping, selectors and FS/GS base).
        let mut saved = self.saved_regs(&thread).ok_or(TargetError::Errno(14))?;
        super::regs::store_request(regs, &mut saved);
        let mut frame = self.saved_frame(&thread).ok_or(TargetError::Errno(14))?;
        frame.rax = saved.rax;
        frame.rbx = saved.rbx;
        frame.rcx = saved.rcx;
        frame.rdx = saved.rdx;
        frame.rsi = saved.rsi;
        frame.rdi = saved.rdi;
        frame.rbp = saved.rbp;
        frame.rsp = saved.rsp;
        frame.r8 = saved.r8;
        frame.r9 = saved.r9;
        frame.r10 = saved.r10;
        frame.r11 = saved.r11;
        frame.r12 = saved.r12;
        frame.r13 = saved.r13;
        frame.r14 = saved.r14;
        frame.r15 = saved.r15;
        frame.rip = saved.rip;
        // Only the status flags, as for the thread on the CPU.
        frame.rflags = (frame.rflags & !0xcd5) | (saved.rflags & 0xcd5);
        let words = [
            frame.rax,
            frame.rbx,
            frame.rcx,
            frame.rdx,
            frame.rsi,
            frame.rdi,
            frame.rbp,
            frame.r8,
            frame.r9,
            frame.r10,
            frame.r11,
            frame.r12,
            frame.r13,
            frame.r14,
            frame.r15,
            frame.vector,
            frame.error_code,
            frame.rip,
            frame.cs,
            frame.rflags,
            frame.rsp,
            frame.ss,
        ];
        let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
        let roots = [self.kernel_cr3, 0, 0];
        let mut done = 0;
        while done < bytes.len() {
            let va = thread.frame + done as u64;
            let gpa = walk::translate_any(&self.mem, &roots, va).ok_or(TargetError::Errno(14))?;
            let n = ((0x1000 - (va & 0xfff)) as usize).min(bytes.len() - done);
            self.mem
                .write_slice(&bytes[done..done + n], GuestAddress(gpa))
                .map_err(|_| TargetError::Errno(14))?;
            done += n;
        }
        Ok(())
    }

    fn read_addrs(&mut self, start: u64, data: &mut [u8], tid: Tid) -> TargetResult<usize, Self> {
        let n = match self.other_thread(tid).copied() {
            Some(thread) => {
                let roots = self.thread_roots(&thread, start);
                self.read_with(&roots, start, data)
            }
            None => self.read_virt(start, data),
        };
        match n {
            0 if !data.is_empty() => Err(TargetError::Errno(14)),
            n => Ok(n),
        }
    }

    fn write_addrs(&mut self, start: u64, data: &[u8], _tid: Tid) -> TargetResult<(), Self> {
        if self.write_virt(start, data) {
            Ok(())
        } else {
            Err(TargetError::Errno(14))
        }
    }

    fn list_active_threads(&mut self, active: &mut dyn FnMut(Tid)) -> Result<(), Self::Error> {
        if self.current == 0 {
            active(self.current_tid());
        }
        for t in &self.threads {
            active(gdb_tid(t.tid));
        }
        Ok(())
    }

    fn support_thread_extra_info(
        &mut self,
    ) -> Option<gdbstub::target::ext::thread_extra_info::ThreadExtraInfoOps<'_, Self>> {
        Some(self)
    }

    fn support_resume(&mut self) -> Option<MultiThreadResumeOps<'_, Self>> {
        Some(self)
    }
}

impl gdbstub::target::ext::thread_extra_info::ThreadExtraInfo for GuestTarget {
    fn thread_extra_info(&self, tid: Tid, buf: &mut [u8]) -> Result<usize, Self::Error> {
        let info = match self.threads.iter().find(|t| t.tid as usize == tid.get()) {
            Some(t) if t.tid == self.current => format!("pid {}, on the CPU", t.pid),
            Some(t) => format!("pid {}", t.pid),
            None => "kernel, no task".to_string(),
        };
        let n = info.len().min(buf.len());
        buf[..n].copy_from_slice(&info.as_bytes()[..n]);
        Ok(n)
    }
}

impl MultiThreadResume for GuestTarget {
    fn resume(&mut self) -> Result<(), Self::Error> {
        if self.resume.is_none() {
            self.resume = Some(ResumeAction::Continue);
        }
        Ok(())
    }

    fn clear_resume_actions(&mut self) -> Result<(), Self::Error> {
        self.resume = None;
        Ok(())
    }

    fn set_resume_action_continue(
        &mut self,
        _tid: Tid,
        _signal: Option<Signal>,
    ) -> Result<(), Self::Error> {
        // Signals cannot be injected into the guest: continuing ignores them.
        self.resume.get_or_insert(ResumeAction::Continue);
        Ok(())
    }

    fn support_single_step(&mut self) -> Option<MultiThreadSingleStepOps<'_, Self>> {
        Some(self)
    }

    fn support_scheduler_locking(&mut self) -> Option<MultiThreadSchedulerLockingOps<'_, Self>> {
        Some(self)
    }
}

impl MultiThreadSchedulerLocking for GuestTarget {
    fn set_resume_action_scheduler_lock(&mut self) -> Result<(), Self::Error> {
        // One guest thread: the others gdb wants held do not exist yet.
        Ok(())
    }
}

impl MultiThreadSingleStep for GuestTarget {
    fn set_resume_action_step(
        &mut self,
        _tid: Tid,
        _signal: Option<Signal>,
    ) -> Result<(), Self::Error> {
        self.resume = Some(ResumeAction::Step);
        Ok(())
    }
}

impl Breakpoints for GuestTarget {
    fn support_sw_breakpoint(&mut self) -> Option<SwBreakpointOps<'_, Self>> {
        Some(self)
    }

    fn support_hw_breakpoint(&mut self) -> Option<HwBreakpointOps<'_, Self>> {
        Some(self)
    }

    fn support_hw_watchpoint(&mut self) -> Option<HwWatchpointOps<'_, Self>> {
        Some(self)
    }
}

impl SwBreakpoint for GuestTarget {
    fn add_sw_breakpoint(&mut self, addr: u64, _kind: usize) -> TargetResult<bool, Self> {
        if self.no_break.contains(&addr) || !walk::is_canonical(addr) {
            return Ok(false);
        }
        // Accepted even where nothing is mapped yet: planted once the page is there.
        self.sw.entry(addr).or_insert(SwBreak { planted: None });
        self.plant_pending();
        Ok(true)
    }

    fn remove_sw_breakpoint(&mut self, addr: u64, _kind: usize) -> TargetResult<bool, Self> {
        Ok(self.remove_sw(addr))
    }
}

impl HwBreakpoint for GuestTarget {
    fn add_hw_breakpoint(&mut self, addr: u64, _kind: usize) -> TargetResult<bool, Self> {
        if self.no_break.contains(&addr) || !self.dr_works {
            return Ok(false);
        }
        Ok(self.add_hw(HwSlot {
            addr,
            len: 1,
            watch: None,
        }))
    }

    fn remove_hw_breakpoint(&mut self, addr: u64, _kind: usize) -> TargetResult<bool, Self> {
        Ok(self.remove_hw(HwSlot {
            addr,
            len: 1,
            watch: None,
        }))
    }
}

impl HwWatchpoint for GuestTarget {
    fn add_hw_watchpoint(
        &mut self,
        addr: u64,
        len: u64,
        kind: WatchKind,
    ) -> TargetResult<bool, Self> {
        // A debug register watches 1, 2, 4 or 8 naturally aligned bytes.
        if !matches!(len, 1 | 2 | 4 | 8)
            || !addr.is_multiple_of(len)
            || (!self.dr_works && kind != WatchKind::Write)
        {
            return Ok(false);
        }
        Ok(self.add_hw(HwSlot {
            addr,
            len,
            watch: Some(kind),
        }))
    }

    fn remove_hw_watchpoint(
        &mut self,
        addr: u64,
        len: u64,
        kind: WatchKind,
    ) -> TargetResult<bool, Self> {
        Ok(self.remove_hw(HwSlot {
            addr,
            len,
            watch: Some(kind),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_register_encoding() {
        let mut t = GuestTarget::new(GuestMemoryMmap::default());
        assert!(t.add_hw(HwSlot {
            addr: 0x1000,
            len: 1,
            watch: None
        }));
        assert!(t.add_hw(HwSlot {
            addr: 0x2008,
            len: 8,
            watch: Some(WatchKind::Write)
        }));
        let (dr, dr7) = t.debug_registers();
        assert_eq!(dr, [0x1000, 0x2008, 0, 0]);
        // G0, G1; slot 1: RW=01 LEN=10.
        assert_eq!(dr7, 0b1010 | (0b1001 << 20));
        assert!(t.remove_hw(HwSlot {
            addr: 0x1000,
            len: 1,
            watch: None
        }));
        assert_eq!(t.debug_registers().1, 0b1000 | (0b1001 << 20));
        for _ in 0..3 {
            t.add_hw(HwSlot {
                addr: 0,
                len: 1,
                watch: None,
            });
        }
        assert!(!t.add_hw(HwSlot {
            addr: 0,
            len: 1,
            watch: None
        }));
    }

    #[test]
    fn breakpoints_on_unmapped_addresses_wait() {
        let mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 0x10_0000)]).unwrap();
        let mut t = GuestTarget::new(mem);
        assert!(matches!(t.add_sw_breakpoint(0x40_1000, 1), Ok(true)));
        assert!(!t.is_sw_breakpoint(0x40_1000));
        let mut buf = [0u8; 4];
        assert_eq!(t.read_virt(0x40_1000, &mut buf), 0);
        assert!(!t.write_virt(0x40_1000, &buf));
        t.no_break = 0x1000..0x2000;
        assert!(matches!(t.add_sw_breakpoint(0x1800, 1), Ok(false)));
        assert!(matches!(t.remove_sw_breakpoint(0x40_1000, 1), Ok(true)));
        assert!(matches!(t.remove_sw_breakpoint(0x40_1000, 1), Ok(false)));
    }
}

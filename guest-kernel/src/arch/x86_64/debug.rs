//! The cooperative debug path (`astra-vmm --gdb`): #BP and #DB, when a debugger is
//! attached, are reported to the VMM through the debug device with the interrupted
//! registers, and the kernel waits in that port write until the debugger resumes it,
//! then applies what it changed: registers, single-step, the debug registers.
//!
//! This is how breakpoints, single-step and watchpoints work where KVM's own guest
//! debugging does not (PVM injects 0xCC as #BP; hardware breakpoints set through KVM
//! never fire; see PLATFORM.md). Everything on the way from the trap to the port write
//! lives in `.entry.text`, which the VMM refuses to plant breakpoints in: the debug path
//! cannot be broken into.

use core::arch::asm;
use core::sync::atomic::{AtomicBool, Ordering};

use hypercall_abi::{debug, DebugRegs, DebugRequest, DebugThread, DebugThreads, DebugUserFrame};

use super::cpu::{self, SegmentBase};
use super::trap::TrapFrame;

/// RFLAGS.TF: trap after the next instruction.
const RFLAGS_TF: u64 = 1 << 8;
/// RFLAGS.IF.
const RFLAGS_IF: u64 = 1 << 9;
/// RFLAGS bits a debugger may change: CF PF AF ZF SF DF OF.
const RFLAGS_DEBUGGER: u64 = 0xcd5;
/// DR6.BS: the trap was a single step.
const DR6_BS: u64 = 1 << 14;
/// DR6's value with no condition recorded.
const DR6_CLEAR: u64 = 0xffff_0ff0;

static ATTACHED: AtomicBool = AtomicBool::new(false);

/// The debug path's state; one CPU, touched only with interrupts off.
struct State {
    request: DebugRequest,
    /// A step was asked for with interrupts on; they were masked for it.
    step_masked_if: bool,
    /// A step was asked for on a `syscall` instruction: report once it returns.
    step_over_syscall: bool,
    /// Inside a report: a nested #BP/#DB is a kernel fault, not a recursion.
    reporting: bool,
    /// Probing whether the debug registers fire: a #DB now is the probe's.
    probing: bool,
    /// The probe's watchpoint fired.
    probe_hit: bool,
}

/// What the debug-register probe writes to.
static PROBE: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

static mut STATE: State = State {
    request: DebugRequest {
        regs: DebugRegs {
            rax: 0,
            rbx: 0,
            rcx: 0,
            rdx: 0,
            rsi: 0,
            rdi: 0,
            rbp: 0,
            rsp: 0,
            r8: 0,
            r9: 0,
            r10: 0,
            r11: 0,
            r12: 0,
            r13: 0,
            r14: 0,
            r15: 0,
            rip: 0,
            rflags: 0,
            cs: 0,
            ss: 0,
            fs_base: 0,
            gs_base: 0,
            cr3: 0,
        },
        args: [0; 3],
        dr: [0; 4],
        dr6: 0,
        dr7: 0,
        event: 0,
        resume: 0,
    },
    step_masked_if: false,
    step_over_syscall: false,
    reporting: false,
    probing: false,
    probe_hit: false,
};

/// The debug path's state.
#[inline(always)]
fn state() -> &'static mut State {
    let ptr = &raw mut STATE;
    // SAFETY: one CPU; the state is used only from #BP/#DB (interrupts off), at boot and at
    // exec (interrupts off on the kernel's own path), never concurrently, and no caller
    // holds the reference across another's use.
    unsafe { &mut *ptr }
}

/// True when `astra-vmm --gdb` runs this kernel.
#[inline(always)]
pub fn attached() -> bool {
    ATTACHED.load(Ordering::Relaxed)
}

/// Turns the debug path on (kernel parameter `astra.gdb`) and tells the debugger the trap
/// entry works from now on, with the kernel's page tables and the range it must not
/// plant breakpoints in.
pub fn init(kernel_cr3: u64) {
    ATTACHED.store(true, Ordering::Relaxed);
    // Does a watchpoint fire here? (Not on the PVM host, where the host does not load
    // the guest's debug registers; the debugger then emulates watchpoints by stepping.)
    let state = state();
    state.probing = true;
    // DR0 = PROBE, G0, write, 8 bytes.
    let probe = [PROBE.as_ptr() as u64, 0, 0, 0, (1 << 1) | (0b1001 << 16)];
    load_debug_registers(&probe);
    PROBE.store(1, Ordering::SeqCst);
    load_debug_registers(&[0; 5]);
    state.probing = false;
    state.request.dr6 = u64::from(state.probe_hit);
    let text = super::trap::entry_ranges()[0];
    let (start, end) = (text.start, text.end);
    report_event(debug::EVENT_READY, [kernel_cr3, start, end]);
    let table = &raw const THREAD_TABLE;
    report_event(
        debug::EVENT_THREADS,
        [
            crate::mm::kernel_virt_to_phys(table as u64),
            u64::from(debug::THREADS_MAX),
            0,
        ],
    );
}

/// The thread table the debugger reads at its stops (see `debug::EVENT_THREADS`).
#[repr(C)]
struct ThreadTable {
    header: DebugThreads,
    threads: [DebugThread; debug::THREADS_MAX as usize],
}

static mut THREAD_TABLE: ThreadTable = ThreadTable {
    header: DebugThreads {
        current: 0,
        count: 0,
    },
    threads: [DebugThread {
        tid: 0,
        pid: 0,
        frame: 0,
        cr3: 0,
        fs_base: 0,
        gs_base: 0,
    }; debug::THREADS_MAX as usize],
};

// The debugger reads a thread's registers as a DebugUserFrame: the layouts must agree.
const _: () = {
    use core::mem::{offset_of, size_of};
    assert!(size_of::<TrapFrame>() == size_of::<DebugUserFrame>());
    assert!(offset_of!(TrapFrame, rax) == offset_of!(DebugUserFrame, rax));
    assert!(offset_of!(TrapFrame, r15) == offset_of!(DebugUserFrame, r15));
    assert!(offset_of!(TrapFrame, rip) == offset_of!(DebugUserFrame, rip));
    assert!(offset_of!(TrapFrame, rflags) == offset_of!(DebugUserFrame, rflags));
    assert!(offset_of!(TrapFrame, rsp) == offset_of!(DebugUserFrame, rsp));
    assert!(offset_of!(TrapFrame, ss) == offset_of!(DebugUserFrame, ss));
};

/// Rewrites the thread table (only with a debugger attached): `current` is the thread on
/// the CPU (0: none), `threads` every live one (the first [`debug::THREADS_MAX`]).
pub fn publish_threads(current: u32, threads: impl Iterator<Item = DebugThread>) {
    if !attached() {
        return;
    }
    let table = &raw mut THREAD_TABLE;
    // SAFETY: one CPU, interrupts off; only this function writes the table, and the
    // debugger reads it only while the vCPU is stopped.
    let table = unsafe { &mut *table };
    let mut count = 0;
    for (slot, t) in table.threads.iter_mut().zip(threads) {
        *slot = t;
        count += 1;
    }
    table.header = DebugThreads {
        current,
        count: count as u32,
    };
}

/// Tells the debugger a program was loaded (its code pages present) and is about to
/// start at `entry`, with load bias `bias`, running on page tables `cr3`.
pub fn program_loaded(bias: u64, entry: u64, cr3: u64) {
    if attached() {
        let mut frame = TrapFrame::new_user(entry, 0);
        report(
            &mut frame,
            debug::EVENT_PROGRAM_LOADED,
            [bias, entry, 0],
            Some(cr3),
        );
    }
}

/// A system call returned: if it was being single-stepped, the step is over.
pub fn after_syscall(frame: &mut TrapFrame) {
    let state = state();
    if attached() && state.step_over_syscall {
        state.step_over_syscall = false;
        trap_event(frame, debug::EVENT_DEBUG, DR6_CLEAR | DR6_BS);
    }
}

fn report_event(event: u32, args: [u64; 3]) {
    let mut frame = TrapFrame::default();
    report(&mut frame, event, args, None);
}

/// #BP (vector 3) or #DB (vector 1) with a debugger attached. Called straight from the
/// trap stubs, before anything that could hold a breakpoint.
#[link_section = ".entry.text"]
pub fn trap(frame: &mut TrapFrame, vector: u64) {
    if vector == 3 {
        trap_event(frame, debug::EVENT_BREAKPOINT, 0);
    } else {
        let dr6 = read_dr6();
        write_dr6(DR6_CLEAR);
        let state = state();
        if state.probing {
            state.probe_hit = true;
            return;
        }
        if frame.rip >= super::trap::entry_ranges()[0].start
            && frame.rip < super::trap::entry_ranges()[0].end
            && !frame.from_user()
        {
            // A step of `syscall` traps at the entry point: finish the system call
            // first (its return clears TF) and report after it.
            state.step_over_syscall = true;
            frame.rflags &= !RFLAGS_TF;
            return;
        }
        trap_event(frame, debug::EVENT_DEBUG, dr6);
    }
}

#[link_section = ".entry.text"]
fn trap_event(frame: &mut TrapFrame, event: u32, dr6: u64) {
    let state = state();
    state.request.dr6 = dr6;
    report(frame, event, [0; 3], None);
}

/// Fills the request from `frame`, rings the debug device, and applies the answer.
#[link_section = ".entry.text"]
fn report(frame: &mut TrapFrame, event: u32, args: [u64; 3], cr3: Option<u64>) {
    let state = state();
    if state.reporting {
        // A breakpoint or watchpoint inside the debug path itself.
        crate::trap::kernel_fault(frame);
    }
    state.reporting = true;
    if state.step_masked_if {
        state.step_masked_if = false;
        frame.rflags |= RFLAGS_IF;
    }
    frame.rflags &= !RFLAGS_TF;
    let r = &mut state.request;
    r.regs = DebugRegs {
        rax: frame.rax,
        rbx: frame.rbx,
        rcx: frame.rcx,
        rdx: frame.rdx,
        rsi: frame.rsi,
        rdi: frame.rdi,
        rbp: frame.rbp,
        rsp: frame.rsp,
        r8: frame.r8,
        r9: frame.r9,
        r10: frame.r10,
        r11: frame.r11,
        r12: frame.r12,
        r13: frame.r13,
        r14: frame.r14,
        r15: frame.r15,
        rip: frame.rip,
        rflags: frame.rflags,
        cs: frame.cs,
        ss: frame.ss,
        fs_base: cpu::read_segment_base(SegmentBase::Fs),
        gs_base: cpu::read_segment_base(SegmentBase::Gs),
        cr3: cr3.unwrap_or_else(cpu::read_cr3),
    };
    r.args = args;
    r.event = event;
    r.resume = 0;
    if event == debug::EVENT_PROGRAM_LOADED {
        r.dr6 = 0;
    }
    let gpa = crate::mm::kernel_virt_to_phys(r as *const DebugRequest as u64);
    super::port::outl(hypercall_abi::port::DEBUG, gpa as u32);
    // SAFETY: the VMM wrote the block during the port write; read it back volatile.
    let done = unsafe { core::ptr::read_volatile(r as *const DebugRequest) };
    apply(frame, &done, state);
    state.reporting = false;
}

#[link_section = ".entry.text"]
fn apply(frame: &mut TrapFrame, done: &DebugRequest, state: &mut State) {
    let g = &done.regs;
    frame.rax = g.rax;
    frame.rbx = g.rbx;
    frame.rcx = g.rcx;
    frame.rdx = g.rdx;
    frame.rsi = g.rsi;
    frame.rdi = g.rdi;
    frame.rbp = g.rbp;
    frame.rsp = g.rsp;
    frame.r8 = g.r8;
    frame.r9 = g.r9;
    frame.r10 = g.r10;
    frame.r11 = g.r11;
    frame.r12 = g.r12;
    frame.r13 = g.r13;
    frame.r14 = g.r14;
    frame.r15 = g.r15;
    if cpu::is_canonical(g.rip) {
        frame.rip = g.rip;
    }
    frame.rflags = (frame.rflags & !RFLAGS_DEBUGGER) | (g.rflags & RFLAGS_DEBUGGER);
    if frame.from_user() {
        if g.fs_base != state.request.regs.fs_base {
            cpu::write_segment_base(SegmentBase::Fs, g.fs_base);
        }
        if g.gs_base != state.request.regs.gs_base {
            cpu::write_segment_base(SegmentBase::Gs, g.gs_base);
        }
    }
    if done.resume & debug::RESUME_SET_DEBUG_REGS != 0 {
        // Loaded on every resume, changed or not: QEMU's nested SVM (the hardware-KVM
        // test tier) sometimes loses DR7 across the VM exit of the debug stop, and a
        // watchpoint set two stops earlier then never fires. Only a debugged guest pays.
        let want = [done.dr[0], done.dr[1], done.dr[2], done.dr[3], done.dr7];
        load_debug_registers(&want);
    }
    if done.resume & debug::RESUME_STEP != 0 {
        if is_syscall_insn(frame) {
            state.step_over_syscall = true;
            return;
        }
        frame.rflags |= RFLAGS_TF;
        // Mask interrupts for the step so it does not wander into the timer handler;
        // the next report gives them back.
        if frame.rflags & RFLAGS_IF != 0 {
            frame.rflags &= !RFLAGS_IF;
            state.step_masked_if = true;
        }
    }
}

/// True if the user instruction at the frame's rip is `syscall` (0f 05).
#[link_section = ".entry.text"]
fn is_syscall_insn(frame: &TrapFrame) -> bool {
    if !frame.from_user() {
        return false;
    }
    let mut bytes = [0u8; 2];
    let Some(task) = crate::task::sched::current() else {
        return false;
    };
    // A user-mode trap interrupts no kernel code, so the lock is free; never wait on it.
    let Some(mm) = task.mm.try_lock() else {
        return false;
    };
    crate::mm::uaccess::copy_from_user(&mm.space, frame.rip, &mut bytes).is_ok()
        && bytes == [0x0f, 0x05]
}

#[inline(always)]
fn read_dr6() -> u64 {
    let value: u64;
    // SAFETY: reading DR6 has no side effects.
    unsafe { asm!("mov {}, dr6", out(reg) value, options(nomem, nostack)) };
    value
}

#[inline(always)]
fn write_dr6(value: u64) {
    // SAFETY: DR6 only records debug conditions; clearing it is what handlers do.
    unsafe { asm!("mov dr6, {}", in(reg) value, options(nomem, nostack)) };
}

/// Loads DR0-DR3 and DR7 (`regs[4]`); DR7 is loaded last so no breakpoint is armed with
/// a stale address, and with its reserved and general-detect bits cleared.
fn load_debug_registers(regs: &[u64; 5]) {
    let dr7 = (regs[4] & 0xffff_03ff) | (1 << 10);
    // SAFETY: debug registers only make the CPU raise #DB, which this module handles;
    // DR0-3 take any address, DR7 is sanitized above.
    unsafe {
        asm!("mov dr7, {}", in(reg) 0x400u64, options(nomem, nostack));
        asm!("mov dr0, {}", in(reg) regs[0], options(nomem, nostack));
        asm!("mov dr1, {}", in(reg) regs[1], options(nomem, nostack));
        asm!("mov dr2, {}", in(reg) regs[2], options(nomem, nostack));
        asm!("mov dr3, {}", in(reg) regs[3], options(nomem, nostack));
        asm!("mov dr7, {}", in(reg) dr7, options(nomem, nostack));
    }
}

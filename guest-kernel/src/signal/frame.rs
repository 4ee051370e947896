//! The Linux x86-64 signal frame (`struct rt_sigframe`) and its pure logic: where it
//! goes on the user stack, what it holds, and how `rt_sigreturn` takes a context back
//! from what user mode left in it.
//!
//! Frame, from the handler's stack pointer up:
//!
//! ```text
//! rsp ->  pretcode        return address = sa_restorer (which calls rt_sigreturn)
//!         ucontext        uc_flags, uc_link, uc_stack, uc_mcontext (sigcontext),
//!                         uc_sigmask (8 bytes: the kernel's sigset)
//!         siginfo         128 bytes
//!         (padding)
//! fpstate (64-aligned)    the FPU state, pointed to by uc_mcontext.fpstate: an XSAVE
//!                         image (standard format) followed by FP_XSTATE_MAGIC2, with
//!                         Linux's `_fpx_sw_bytes` in the legacy region's reserved tail;
//!                         or a 512-byte FXSAVE image on CPUs without XSAVE
//! ```
//!
//! rdi = signal, rsi = &siginfo, rdx = &ucontext; `(rsp + 8) % 16 == 0` as after a call.

use core::mem::{offset_of, size_of};

use super::state::AltStack;
use super::{SigInfo, StackT};
use crate::arch::gdt::UserSelectors;
use crate::arch::trap::TrapFrame;
use crate::mm::paging::USER_END;
use crate::mm::uaccess::Pod;

/// Linux `struct sigcontext` (64-bit): glibc's `gregs` order.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct SigContext {
    pub r8: u64,
    pub r9: u64,
    pub r10: u64,
    pub r11: u64,
    pub r12: u64,
    pub r13: u64,
    pub r14: u64,
    pub r15: u64,
    pub rdi: u64,
    pub rsi: u64,
    pub rbp: u64,
    pub rbx: u64,
    pub rdx: u64,
    pub rax: u64,
    pub rcx: u64,
    pub rsp: u64,
    pub rip: u64,
    pub eflags: u64,
    pub cs: u16,
    pub gs: u16,
    pub fs: u16,
    pub ss: u16,
    /// Error code of the fault.
    pub err: u64,
    /// Vector of the fault.
    pub trapno: u64,
    /// The first word of the blocked mask.
    pub oldmask: u64,
    /// The page-fault address.
    pub cr2: u64,
    /// User address of the FXSAVE image, or 0.
    pub fpstate: u64,
    pub reserved: [u64; 8],
}

/// Linux `struct ucontext` as the kernel writes it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UContext {
    /// `UC_*` flags.
    pub flags: u64,
    /// Unused (0).
    pub link: u64,
    /// The alternate stack at delivery.
    pub stack: StackT,
    /// The interrupted registers.
    pub mcontext: SigContext,
    /// The blocked mask to restore.
    pub sigmask: u64,
}

/// Linux `siginfo_t` (128 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RawSigInfo {
    /// Signal number.
    pub signo: i32,
    /// errno value (always 0 here).
    pub errno: i32,
    /// `si_code`.
    pub code: i32,
    /// Padding before the union.
    pub pad: i32,
    /// The union: `si_addr` for faults, `si_pid`/`si_uid` for kill.
    pub fields: [u64; 14],
}

/// Linux `struct rt_sigframe` (64-bit).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RtSigFrame {
    /// Return address of the handler: `sa_restorer`.
    pub pretcode: u64,
    /// The saved context.
    pub uc: UContext,
    /// Why the signal came.
    pub info: RawSigInfo,
}

// SAFETY: #[repr(C)] structs of u64/u32/i32/u16 fields laid out without implicit
// padding (checked below); every bit pattern is a value.
unsafe impl Pod for SigContext {}
// SAFETY: as above.
unsafe impl Pod for UContext {}
// SAFETY: as above.
unsafe impl Pod for RawSigInfo {}
// SAFETY: as above.
unsafe impl Pod for RtSigFrame {}

// The layout Linux programs and libcs rely on (arch/x86/include/uapi/asm/sigcontext.h,
// ucontext.h; glibc's REG_* indices).
const _: () = {
    assert!(size_of::<SigContext>() == 256);
    assert!(offset_of!(SigContext, rdi) == 8 * 8);
    assert!(offset_of!(SigContext, rsp) == 15 * 8);
    assert!(offset_of!(SigContext, rip) == 16 * 8);
    assert!(offset_of!(SigContext, eflags) == 17 * 8);
    assert!(offset_of!(SigContext, cs) == 18 * 8);
    assert!(offset_of!(SigContext, err) == 19 * 8);
    assert!(offset_of!(SigContext, trapno) == 20 * 8);
    assert!(offset_of!(SigContext, oldmask) == 21 * 8);
    assert!(offset_of!(SigContext, cr2) == 22 * 8);
    assert!(offset_of!(SigContext, fpstate) == 23 * 8);
    assert!(size_of::<UContext>() == 304);
    assert!(offset_of!(UContext, stack) == 16);
    assert!(offset_of!(UContext, mcontext) == 40);
    assert!(offset_of!(UContext, sigmask) == 296);
    assert!(size_of::<RawSigInfo>() == 128);
    assert!(offset_of!(RawSigInfo, fields) == 16);
    assert!(size_of::<RtSigFrame>() == 440);
    assert!(offset_of!(RtSigFrame, uc) == 8);
    assert!(offset_of!(RtSigFrame, info) == 312);
};

/// Size of an FXSAVE image (the frame's FPU state without XSAVE).
pub const FXSAVE_SIZE: u64 = 512;
/// `_fpx_sw_bytes.magic1`: an XSAVE image follows the legacy region.
pub const FP_XSTATE_MAGIC1: u32 = 0x4650_5853;
/// The word after the XSAVE image.
pub const FP_XSTATE_MAGIC2: u32 = 0x4650_5845;
/// Size of the trailing magic word.
pub const FP_XSTATE_MAGIC2_SIZE: u64 = 4;

/// Bytes the FPU state takes in a frame: the image of `image_size` bytes, plus the
/// trailing magic word when it is an XSAVE image (larger than FXSAVE's).
pub const fn fpstate_size(image_size: u64) -> u64 {
    if image_size > FXSAVE_SIZE {
        image_size + FP_XSTATE_MAGIC2_SIZE
    } else {
        image_size
    }
}

/// Linux's `struct _fpx_sw_bytes`, in the last 48 bytes of the legacy region of the
/// frame's FPU state: says an XSAVE image follows, how large, and which components.
pub fn sw_bytes(image_size: u64, xfeatures: u64) -> [u8; 48] {
    let mut b = [0u8; 48];
    b[0..4].copy_from_slice(&FP_XSTATE_MAGIC1.to_le_bytes());
    let extended = (image_size + FP_XSTATE_MAGIC2_SIZE) as u32;
    b[4..8].copy_from_slice(&extended.to_le_bytes());
    b[8..16].copy_from_slice(&xfeatures.to_le_bytes());
    b[16..20].copy_from_slice(&(image_size as u32).to_le_bytes());
    b
}

/// What a frame's `_fpx_sw_bytes` claim, checked as Linux's `check_xstate_in_sigframe`
/// does against the image size the kernel uses: the components of an XSAVE image that
/// follows, or `None` for a legacy (FXSAVE-only) state.
pub fn parse_sw_bytes(b: &[u8; 48], image_size: u64) -> Option<u64> {
    let word = |at: usize| u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
    let xfeatures = u64::from_le_bytes(b[8..16].try_into().unwrap_or_default());
    let extended = u64::from(word(4));
    let size = u64::from(word(16));
    (word(0) == FP_XSTATE_MAGIC1
        && size == image_size
        && extended == image_size + FP_XSTATE_MAGIC2_SIZE)
        .then_some(xfeatures)
}
/// Bytes below the interrupted stack pointer the frame must not touch (the ABI's red
/// zone).
const RED_ZONE: u64 = 128;
/// `uc_flags`: the sigcontext's `ss` is valid and is restored strictly.
pub const UC_SIGCONTEXT_SS: u64 = 0x2;
/// See [`UC_SIGCONTEXT_SS`].
pub const UC_STRICT_RESTORE_SS: u64 = 0x4;

/// The smallest alternate stack a handler frame with `fpstate_size` bytes of FPU state
/// fits on (for `AT_MINSIGSTKSZ`).
pub const fn min_frame_stack(fpstate_size: u64) -> u64 {
    fpstate_size + 64 + size_of::<RtSigFrame>() as u64 + 32
}

/// RFLAGS bits user mode may restore (Linux's `FIX_EFLAGS`): AC, OF, DF, TF, SF, ZF,
/// AF, PF, CF, RF.
pub const USER_FLAGS: u64 = (1 << 18)
    | (1 << 11)
    | (1 << 10)
    | (1 << 8)
    | (1 << 7)
    | (1 << 6)
    | (1 << 4)
    | (1 << 2)
    | 1
    | (1 << 16);
/// RFLAGS bits cleared for the handler: DF, RF, TF.
const HANDLER_CLEARS: u64 = (1 << 10) | (1 << 16) | (1 << 8);
/// RFLAGS of user mode apart from [`USER_FLAGS`]: IF and the reserved bit 1.
const USER_FLAGS_BASE: u64 = 0x202;

/// Where a frame goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Placement {
    /// The handler's stack pointer; the frame starts here.
    pub frame: u64,
    /// The FPU state.
    pub fpstate: u64,
}

impl Placement {
    /// Address of the ucontext.
    pub fn ucontext(&self) -> u64 {
        self.frame + offset_of!(RtSigFrame, uc) as u64
    }

    /// Address of the siginfo.
    pub fn siginfo(&self) -> u64 {
        self.frame + offset_of!(RtSigFrame, info) as u64
    }
}

/// Places a frame with `fpstate_size` bytes of FPU state for a thread interrupted at
/// stack pointer `sp` (Linux's `get_sigframe`): below the red zone, or at the top of the alternate stack when the
/// action asks for it (`on_altstack`) and the thread is not already on it. `None` when
/// it would not fit: off the alternate stack, or below address 0.
///
/// The red zone is subtracted with wraparound, as Linux's unsigned arithmetic does, and
/// the alternate stack chosen before anything can fail: a thread whose `rsp` is below 128
/// (a wild stack pointer, the usual reason to want an alternate stack) still gets its
/// `SA_ONSTACK` handler.
pub fn place(
    sp: u64,
    altstack: &AltStack,
    on_altstack: bool,
    fpstate_size: u64,
) -> Option<Placement> {
    let nested = altstack.on_stack(sp);
    let below_red_zone = sp.wrapping_sub(RED_ZONE);
    let entering = on_altstack && altstack.state_at(below_red_zone) == 0;
    let top = if entering {
        altstack.top()
    } else {
        sp.checked_sub(RED_ZONE)?
    };
    let fpstate = top.checked_sub(fpstate_size)? & !63;
    let frame = (fpstate.checked_sub(size_of::<RtSigFrame>() as u64)? & !15).checked_sub(8)?;
    if (nested || entering) && !altstack.contains(frame) {
        return None;
    }
    Some(Placement { frame, fpstate })
}

impl RawSigInfo {
    /// The `siginfo_t` of `info`.
    pub fn from_info(info: &SigInfo) -> Self {
        let mut fields = [0u64; 14];
        fields[0] = if info.fault.is_some() {
            info.addr
        } else {
            info.pid as u64 | ((info.uid as u64) << 32)
        };
        if info.signo == super::sig::SIGCHLD && info.code > 0 && info.fault.is_none() {
            // `_sigchld`: si_pid, si_uid, si_status, si_utime, si_stime.
            fields[1] = u64::from(info.status as u32);
            fields[2] = info.times.0;
            fields[3] = info.times.1;
        } else if info.fault.is_none() {
            // `_rt`: si_pid, si_uid, si_value.
            fields[1] = info.value;
        }
        RawSigInfo {
            signo: info.signo as i32,
            errno: 0,
            code: info.code,
            pad: 0,
            fields,
        }
    }
}

/// Builds the frame for signal `info` interrupting `regs`, with the blocked mask
/// `old_mask` to restore, the alternate stack as it was (`stack`), the handler's
/// `restorer` and the FXSAVE image at `fpstate`.
pub fn build(
    regs: &TrapFrame,
    info: &SigInfo,
    old_mask: u64,
    stack: StackT,
    restorer: u64,
    fpstate: u64,
) -> RtSigFrame {
    let (trapno, err) = info.fault.unwrap_or((0, 0));
    let cr2 = if trapno == 14 { info.addr } else { 0 };
    let mcontext = SigContext {
        r8: regs.r8,
        r9: regs.r9,
        r10: regs.r10,
        r11: regs.r11,
        r12: regs.r12,
        r13: regs.r13,
        r14: regs.r14,
        r15: regs.r15,
        rdi: regs.rdi,
        rsi: regs.rsi,
        rbp: regs.rbp,
        rbx: regs.rbx,
        rdx: regs.rdx,
        rax: regs.rax,
        rcx: regs.rcx,
        rsp: regs.rsp,
        rip: regs.rip,
        eflags: regs.rflags,
        cs: regs.cs as u16,
        gs: 0,
        fs: 0,
        ss: regs.ss as u16,
        err,
        trapno,
        oldmask: old_mask,
        cr2,
        fpstate,
        reserved: [0; 8],
    };
    RtSigFrame {
        pretcode: restorer,
        uc: UContext {
            flags: UC_SIGCONTEXT_SS | UC_STRICT_RESTORE_SS,
            link: 0,
            stack,
            mcontext,
            sigmask: old_mask,
        },
        info: RawSigInfo::from_info(info),
    }
}

/// Points `regs` at the handler: it starts at `handler` on the frame with
/// rdi = signal, rsi = &siginfo, rdx = &ucontext, rax = 0, and DF, RF, TF clear.
pub fn enter_handler(
    regs: &mut TrapFrame,
    place: &Placement,
    signo: u8,
    handler: u64,
    user: UserSelectors,
) {
    regs.rip = handler;
    regs.rsp = place.frame;
    regs.rdi = signo as u64;
    regs.rsi = place.siginfo();
    regs.rdx = place.ucontext();
    regs.rax = 0;
    regs.rflags &= !HANDLER_CLEARS;
    regs.cs = user.cs as u64;
    regs.ss = user.ss as u64;
}

/// Why `rt_sigreturn` refused a context.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BadContext {
    /// rip outside the user half: could only fault or enter kernel addresses.
    Rip(u64),
    /// A non-canonical stack pointer, which `iretq` may refuse.
    Rsp(u64),
}

/// Restores user registers from `sc` into `regs` (Linux's `restore_sigcontext`), never
/// trusting it: only the RFLAGS bits user mode may set ([`USER_FLAGS`]), the user code
/// and stack selectors whatever the context says (so it cannot select a kernel or
/// 32-bit segment), rip in the user half and a canonical rsp.
pub fn restore(
    sc: &SigContext,
    regs: &mut TrapFrame,
    user: UserSelectors,
) -> Result<(), BadContext> {
    if sc.rip >= USER_END {
        return Err(BadContext::Rip(sc.rip));
    }
    if !crate::arch::cpu::is_canonical(sc.rsp) {
        return Err(BadContext::Rsp(sc.rsp));
    }
    regs.r8 = sc.r8;
    regs.r9 = sc.r9;
    regs.r10 = sc.r10;
    regs.r11 = sc.r11;
    regs.r12 = sc.r12;
    regs.r13 = sc.r13;
    regs.r14 = sc.r14;
    regs.r15 = sc.r15;
    regs.rdi = sc.rdi;
    regs.rsi = sc.rsi;
    regs.rbp = sc.rbp;
    regs.rbx = sc.rbx;
    regs.rdx = sc.rdx;
    regs.rax = sc.rax;
    regs.rcx = sc.rcx;
    regs.rsp = sc.rsp;
    regs.rip = sc.rip;
    regs.rflags = USER_FLAGS_BASE | (sc.eflags & USER_FLAGS);
    regs.cs = user.cs as u64;
    regs.ss = user.ss as u64;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::state::ss;
    use super::super::{si_code, sig};
    use super::*;
    use crate::arch::gdt::{USER_PVM, USER_STANDARD};

    fn altstack(sp: u64, size: u64) -> AltStack {
        let mut a = AltStack::default();
        a.set(
            &StackT {
                sp,
                flags: 0,
                pad: 0,
                size,
            },
            0,
        )
        .unwrap();
        a
    }

    #[test]
    fn frames_sit_below_the_red_zone_aligned_like_a_call() {
        let p = place(0x7fff_0000, &AltStack::default(), true, FXSAVE_SIZE).unwrap();
        assert_eq!(p.fpstate % 64, 0);
        assert!(p.fpstate + FXSAVE_SIZE <= 0x7fff_0000 - 128);
        assert_eq!((p.frame + 8) % 16, 0);
        assert!(p.frame + size_of::<RtSigFrame>() as u64 <= p.fpstate);
        assert_eq!(p.ucontext(), p.frame + 8);
        assert_eq!(p.siginfo(), p.frame + 312);
        assert_eq!(place(100, &AltStack::default(), false, FXSAVE_SIZE), None);
        // With an alternate stack and SA_ONSTACK, a stack pointer below the red zone
        // still gets the handler, on the alternate stack (Linux's get_sigframe).
        let alt = altstack(0x10_0000, 0x2000);
        for low in [0, 8, 64, 127] {
            let p = place(low, &alt, true, FXSAVE_SIZE).unwrap();
            assert!(alt.contains(p.frame), "rsp {low}: frame {:#x}", p.frame);
        }
        assert_eq!(place(64, &alt, false, FXSAVE_SIZE), None);
    }

    #[test]
    fn frames_go_on_the_alternate_stack_when_asked() {
        let alt = altstack(0x10_0000, 0x2000);
        let p = place(0x7fff_0000, &alt, true, FXSAVE_SIZE).unwrap();
        assert!(p.frame > 0x10_0000 && p.fpstate + FXSAVE_SIZE <= 0x10_2000);
        // Without SA_ONSTACK the thread's own stack is used.
        let q = place(0x7fff_0000, &alt, false, FXSAVE_SIZE).unwrap();
        assert!(q.frame > 0x7ffe_0000);
        // Nested: already on the alternate stack, continue below the current sp.
        let r = place(0x10_1800, &alt, true, FXSAVE_SIZE).unwrap();
        assert!(r.frame < 0x10_1800 - 128 && r.frame > 0x10_0000);
        // Nested but out of room: refused rather than running off the stack.
        assert_eq!(place(0x10_0300, &alt, true, FXSAVE_SIZE), None);
    }

    #[test]
    fn xsave_state_in_frames_is_described_as_linux_does() {
        assert_eq!(fpstate_size(512), 512);
        assert_eq!(fpstate_size(2696), 2700);
        let b = sw_bytes(2696, 0xe7);
        assert_eq!(parse_sw_bytes(&b, 2696), Some(0xe7));
        // Another size, or no magic: a legacy frame.
        assert_eq!(parse_sw_bytes(&b, 832), None);
        assert_eq!(parse_sw_bytes(&[0; 48], 2696), None);
        let mut bad = b;
        bad[4] ^= 1;
        assert_eq!(parse_sw_bytes(&bad, 2696), None);
        // A big frame still fits below the red zone, 64-aligned.
        let p = place(0x7fff_0000, &AltStack::default(), false, 2700).unwrap();
        assert!(p.fpstate % 64 == 0 && p.fpstate + 2700 <= 0x7fff_0000 - 128);
        assert!(p.frame + size_of::<RtSigFrame>() as u64 <= p.fpstate);
    }

    #[test]
    fn an_alternate_stack_too_small_for_the_frame_is_refused() {
        let mut alt = AltStack::default();
        alt.set(
            &StackT {
                sp: 0x10_0000,
                flags: 0,
                pad: 0,
                size: ss::MINSIGSTKSZ,
            },
            0,
        )
        .unwrap();
        // 2048 bytes hold a frame with FXSAVE state (not one with AVX-512's: Linux gives
        // such programs AT_MINSIGSTKSZ).
        assert!(min_frame_stack(FXSAVE_SIZE) <= ss::MINSIGSTKSZ);
        assert!(place(0x7fff_0000, &alt, true, FXSAVE_SIZE).is_some());
    }

    fn regs() -> TrapFrame {
        TrapFrame {
            rax: 1,
            rbx: 2,
            rcx: 3,
            rdx: 4,
            rsi: 5,
            rdi: 6,
            rbp: 7,
            r8: 8,
            r9: 9,
            r10: 10,
            r11: 11,
            r12: 12,
            r13: 13,
            r14: 14,
            r15: 15,
            rip: 0x40_1234,
            rsp: 0x7fff_f000,
            rflags: 0x246,
            cs: USER_PVM.cs as u64,
            ss: USER_PVM.ss as u64,
            ..Default::default()
        }
    }

    #[test]
    fn build_then_restore_round_trips_the_registers() {
        let before = regs();
        let info = super::super::fault_info(14, 6, 0x1000, before.rip, Default::default());
        let f = build(
            &before,
            &info,
            0x400,
            AltStack::default().saved(),
            0x40_9000,
            0x7ffe_0000,
        );
        assert_eq!(f.pretcode, 0x40_9000);
        assert_eq!(f.uc.mcontext.trapno, 14);
        assert_eq!(f.uc.mcontext.err, 6);
        assert_eq!(f.uc.mcontext.cr2, 0x1000);
        assert_eq!(f.uc.mcontext.oldmask, 0x400);
        assert_eq!(f.uc.sigmask, 0x400);
        assert_eq!(f.uc.stack.flags, ss::SS_DISABLE);
        assert_eq!(f.info.signo, 11);
        assert_eq!(f.info.code, si_code::SEGV_MAPERR);
        assert_eq!(f.info.fields[0], 0x1000);

        let mut regs_now = before;
        let p = Placement {
            frame: 0x7ffd_0008,
            fpstate: 0x7ffe_0000,
        };
        enter_handler(&mut regs_now, &p, sig::SIGSEGV, 0x40_5000, USER_PVM);
        assert_eq!(
            (regs_now.rip, regs_now.rsp, regs_now.rdi),
            (0x40_5000, 0x7ffd_0008, 11)
        );
        assert_eq!(
            (regs_now.rsi, regs_now.rdx, regs_now.rax),
            (0x7ffd_0008 + 312, 0x7ffd_0010, 0)
        );

        restore(&f.uc.mcontext, &mut regs_now, USER_PVM).unwrap();
        assert_eq!(format!("{regs_now:?}"), format!("{before:?}"));
    }

    #[test]
    fn kill_info_carries_the_sender() {
        let info = SigInfo::from_process(sig::SIGABRT, si_code::SI_TKILL, 7, 0);
        let raw = RawSigInfo::from_info(&info);
        assert_eq!((raw.signo, raw.code, raw.fields[0]), (6, -6, 7));
    }

    #[test]
    fn restore_refuses_what_user_mode_must_not_get() {
        let mut sc = build(&regs(), &SigInfo::kernel(11), 0, StackT::default(), 0, 0)
            .uc
            .mcontext;
        let mut r = regs();
        // Kernel and 32-bit selectors, IOPL 3, IF off, NT, VM: all ignored.
        sc.cs = 0x08;
        sc.ss = 0x10;
        sc.eflags = (3 << 12) | (1 << 14) | (1 << 17) | 0xcd5;
        restore(&sc, &mut r, USER_STANDARD).unwrap();
        assert_eq!((r.cs, r.ss), (0x33, 0x2b));
        assert_eq!(r.rflags, 0x202 | 0xcd5);
        sc.rip = 0xffff_8000_0000_0000;
        assert_eq!(
            restore(&sc, &mut r, USER_STANDARD),
            Err(BadContext::Rip(sc.rip))
        );
        sc.rip = USER_END;
        assert!(restore(&sc, &mut r, USER_STANDARD).is_err());
        sc.rip = 0x1000;
        sc.rsp = 0x8000_0000_0000_0000;
        assert_eq!(
            restore(&sc, &mut r, USER_STANDARD),
            Err(BadContext::Rsp(sc.rsp))
        );
    }
}

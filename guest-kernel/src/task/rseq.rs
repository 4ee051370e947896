//! Restartable sequences: a thread that registered a `struct rseq` and is preempted, or
//! gets a signal, inside the critical section its `rseq_cs` describes resumes at the
//! section's abort handler instead of in the middle of it (Linux's `rseq_ip_fixup`).
//!
//! The check runs on the way back to user mode after the thread was switched out, and
//! before a signal frame is built (so the handler's `uc_mcontext.rip` is the abort
//! handler, as on Linux). With one CPU there is no migration; `cpu_id` stays 0. A
//! malformed descriptor or a wrong signature at the abort handler is a SIGSEGV, as on
//! Linux. The decision is pure and host-tested.

use crate::arch::trap::TrapFrame;
use crate::mm::user::TASK_SIZE;
use crate::mm::{uaccess, Mm};
use crate::syscall::Rseq;

/// Offset of `rseq_cs` (a pointer) in `struct rseq`.
const RSEQ_CS_OFFSET: u64 = 8;
/// Offset of `flags` in `struct rseq`.
const RSEQ_FLAGS_OFFSET: u64 = 16;
/// The deprecated `RSEQ_CS_FLAG_NO_RESTART_ON_{PREEMPT,SIGNAL,MIGRATE}` flags, which
/// Linux refuses (`rseq_warn_flags`) in both `struct rseq` and `struct rseq_cs`.
const NO_RESTART_FLAGS: u32 = 0b111;

/// `struct rseq_cs`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RseqCs {
    /// Must be 0.
    pub version: u32,
    /// `RSEQ_CS_FLAG_*`.
    pub flags: u32,
    /// First instruction of the section.
    pub start_ip: u64,
    /// Length of the section up to and excluding its commit point.
    pub post_commit_offset: u64,
    /// Where an interrupted section resumes.
    pub abort_ip: u64,
}

impl RseqCs {
    fn from_bytes(b: &[u8; 32]) -> Self {
        let u32_at = |at: usize| u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
        let u64_at = |at: usize| u64::from_le_bytes(b[at..at + 8].try_into().unwrap_or_default());
        RseqCs {
            version: u32_at(0),
            flags: u32_at(4),
            start_ip: u64_at(8),
            post_commit_offset: u64_at(16),
            abort_ip: u64_at(24),
        }
    }

    /// True if `ip` lies in the section (before its commit point).
    fn contains(&self, ip: u64) -> bool {
        ip.wrapping_sub(self.start_ip) < self.post_commit_offset
    }
}

/// What to do with an interrupted thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fixup {
    /// Not in a section: clear `rseq_cs` and carry on.
    Outside,
    /// In the section: clear `rseq_cs` and resume at the abort handler.
    Abort(u64),
    /// A malformed descriptor or signature: SIGSEGV.
    Bad,
}

/// Linux's `rseq_get_rseq_cs` checks and `rseq_ip_fixup` decision for a thread at `ip`
/// with descriptor `cs`, `flags` from its `struct rseq`, and the word before the abort
/// handler (`None` if unreadable) against the registered signature `sig`.
pub fn decide(
    cs: &RseqCs,
    rseq_flags: u32,
    ip: u64,
    word_before_abort: Option<u32>,
    sig: u32,
) -> Fixup {
    let end = cs.start_ip.checked_add(cs.post_commit_offset);
    let valid = cs.version == 0
        && cs.start_ip < TASK_SIZE
        && end.is_some_and(|e| e < TASK_SIZE)
        && cs.abort_ip < TASK_SIZE
        && !cs.contains(cs.abort_ip);
    if !valid || word_before_abort != Some(sig) {
        return Fixup::Bad;
    }
    if !cs.contains(ip) {
        return Fixup::Outside;
    }
    if (cs.flags | rseq_flags) & NO_RESTART_FLAGS != 0 {
        return Fixup::Bad;
    }
    Fixup::Abort(cs.abort_ip)
}

/// The thread's rseq area or critical section is unreadable or malformed: SIGSEGV.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BadRseq;

/// Applies the fixup for a thread registered at `reg` whose user registers are `frame`.
pub fn fixup(mm: &mut Mm, reg: &Rseq, frame: &mut TrapFrame) -> Result<(), BadRseq> {
    let read =
        |mm: &Mm, va: u64, buf: &mut [u8]| uaccess::read_user(mm, va, buf).map_err(|_| BadRseq);
    let mut ptr = [0u8; 8];
    read(mm, reg.addr + RSEQ_CS_OFFSET, &mut ptr)?;
    let cs_addr = u64::from_le_bytes(ptr);
    if cs_addr == 0 {
        return Ok(());
    }
    let mut raw = [0u8; 32];
    read(mm, cs_addr, &mut raw)?;
    let cs = RseqCs::from_bytes(&raw);
    let mut flags = [0u8; 4];
    read(mm, reg.addr + RSEQ_FLAGS_OFFSET, &mut flags)?;
    let mut word = [0u8; 4];
    let before_abort = cs
        .abort_ip
        .checked_sub(4)
        .and_then(|at| read(mm, at, &mut word).ok())
        .map(|()| u32::from_le_bytes(word));
    let action = decide(
        &cs,
        u32::from_le_bytes(flags),
        frame.rip,
        before_abort,
        reg.sig,
    );
    if action == Fixup::Bad {
        return Err(BadRseq);
    }
    uaccess::write_user(mm, reg.addr + RSEQ_CS_OFFSET, &0u64.to_le_bytes()).map_err(|_| BadRseq)?;
    if let Fixup::Abort(ip) = action {
        frame.rip = ip;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIG: u32 = 0x5305_3053;

    fn cs() -> RseqCs {
        RseqCs {
            version: 0,
            flags: 0,
            start_ip: 0x40_1000,
            post_commit_offset: 0x20,
            abort_ip: 0x40_1100,
        }
    }

    #[test]
    fn inside_aborts_outside_does_not() {
        let c = cs();
        assert_eq!(
            decide(&c, 0, 0x40_1000, Some(SIG), SIG),
            Fixup::Abort(0x40_1100)
        );
        assert_eq!(
            decide(&c, 0, 0x40_101f, Some(SIG), SIG),
            Fixup::Abort(0x40_1100)
        );
        // The commit point itself and anything before the start are outside.
        assert_eq!(decide(&c, 0, 0x40_1020, Some(SIG), SIG), Fixup::Outside);
        assert_eq!(decide(&c, 0, 0x40_0fff, Some(SIG), SIG), Fixup::Outside);
    }

    #[test]
    fn malformed_descriptors_are_refused_like_linux() {
        let ok = cs();
        assert_eq!(
            decide(&RseqCs { version: 1, ..ok }, 0, 0, Some(SIG), SIG),
            Fixup::Bad
        );
        assert_eq!(decide(&ok, 0, 0x40_1000, Some(SIG ^ 1), SIG), Fixup::Bad);
        assert_eq!(decide(&ok, 0, 0x40_1000, None, SIG), Fixup::Bad);
        let abort_inside = RseqCs {
            abort_ip: 0x40_1010,
            ..ok
        };
        assert_eq!(decide(&abort_inside, 0, 0, Some(SIG), SIG), Fixup::Bad);
        let wraps = RseqCs {
            post_commit_offset: u64::MAX,
            ..ok
        };
        assert_eq!(decide(&wraps, 0, 0, Some(SIG), SIG), Fixup::Bad);
        let kernel = RseqCs {
            abort_ip: TASK_SIZE,
            ..ok
        };
        assert_eq!(decide(&kernel, 0, 0, Some(SIG), SIG), Fixup::Bad);
        // The deprecated no-restart flags make an abort an error.
        let no_restart = RseqCs { flags: 1, ..ok };
        assert_eq!(
            decide(&no_restart, 0, 0x40_1000, Some(SIG), SIG),
            Fixup::Bad
        );
        assert_eq!(decide(&ok, 2, 0x40_1000, Some(SIG), SIG), Fixup::Bad);
    }

    #[test]
    fn descriptor_layout() {
        let mut b = [0u8; 32];
        b[8..16].copy_from_slice(&0x40_1000u64.to_le_bytes());
        b[16..24].copy_from_slice(&0x20u64.to_le_bytes());
        b[24..32].copy_from_slice(&0x40_1100u64.to_le_bytes());
        assert_eq!(RseqCs::from_bytes(&b), cs());
    }
}

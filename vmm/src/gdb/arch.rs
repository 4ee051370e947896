//! The register set gdb gets: the x86-64 core and SSE registers of `gdbstub_arch`, then
//! `orig_rax`, `fs_base` and `gs_base`, the layout of gdb's own x86-64 GNU/Linux description
//! (which the target description names, so gdb shows and sets the segment bases).

use gdbstub::arch::{Arch, Registers};
use gdbstub_arch::x86::reg::id::X86_64CoreRegId;
use gdbstub_arch::x86::reg::X86_64CoreRegs;

/// Bytes of the core and SSE registers in the `g` packet.
const CORE_BYTES: usize = 0x218;

/// x86-64 with SSE and the segment bases.
pub enum AstraX86_64 {}

impl Arch for AstraX86_64 {
    type Usize = u64;
    type Registers = AstraRegs;
    type RegId = X86_64CoreRegId;
    type BreakpointKind = usize;

    fn target_description_xml() -> Option<&'static str> {
        Some(
            r#"<target version="1.0"><architecture>i386:x86-64</architecture><osabi>GNU/Linux</osabi><feature name="org.gnu.gdb.i386.sse"></feature></target>"#,
        )
    }
}

/// The registers of a stopped guest thread.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct AstraRegs {
    /// General-purpose, rip, eflags, selectors, x87, SSE.
    pub core: X86_64CoreRegs,
    /// Linux's `orig_rax` (gdb's Linux layout has it; always -1 here).
    pub orig_rax: u64,
    /// The FS base.
    pub fs_base: u64,
    /// The GS base.
    pub gs_base: u64,
}

impl Registers for AstraRegs {
    type ProgramCounter = u64;

    fn pc(&self) -> u64 {
        self.core.rip
    }

    fn gdb_serialize(&self, mut write_byte: impl FnMut(Option<u8>)) {
        self.core.gdb_serialize(&mut write_byte);
        for value in [self.orig_rax, self.fs_base, self.gs_base] {
            value
                .to_le_bytes()
                .iter()
                .for_each(|b| write_byte(Some(*b)));
        }
    }

    fn gdb_deserialize(&mut self, bytes: &[u8]) -> Result<(), ()> {
        self.core.gdb_deserialize(bytes)?;
        let word = |i: usize| -> Option<u64> {
            let at = CORE_BYTES + 8 * i;
            Some(u64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
        };
        if let (Some(orig), Some(fs), Some(gs)) = (word(0), word(1), word(2)) {
            (self.orig_rax, self.fs_base, self.gs_base) = (orig, fs, gs);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_bases_follow_the_core_registers() {
        let regs = AstraRegs {
            orig_rax: u64::MAX,
            fs_base: 0x1234_5678,
            gs_base: 0x9abc,
            ..Default::default()
        };
        let mut bytes = Vec::new();
        regs.gdb_serialize(|b| bytes.push(b.unwrap_or(0)));
        assert_eq!(bytes.len(), CORE_BYTES + 24);
        assert_eq!(
            &bytes[CORE_BYTES + 8..CORE_BYTES + 16],
            &0x1234_5678u64.to_le_bytes()
        );
        let mut back = AstraRegs::default();
        back.gdb_deserialize(&bytes).unwrap();
        assert_eq!(back, regs);
    }
}

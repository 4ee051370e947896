//! Loading the guest kernel: ELF validation, the `.note.astra` ABI check, and copying the
//! `PT_LOAD` segments into guest RAM at their physical addresses.
//!
//! The file is hostile input: it must be a regular file of bounded size (see
//! [`crate::input_file`]), every note must be well formed, every `PT_LOAD` must lie in
//! usable guest RAM (above the reserved low area) without overlapping another, and only then
//! are the segments copied, from the bytes that were checked, by this module itself (so no
//! other parser with other rules reads the file). Every way a file can be wrong gets its own
//! message and exit code 250.

use std::path::{Path, PathBuf};

use hypercall_abi::{note, ABI_VERSION};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use crate::input_file::{self, InputFileError};

use crate::arch::x86_64::layout::{LOW_RESERVED_END, MEM_MAX};
use crate::arch::x86_64::paging::BootPageTables;

const ELF_MAGIC: &[u8; 4] = b"\x7fELF";
const ELFCLASS64: u8 = 2;
const ELFDATA2LSB: u8 = 1;
const ET_EXEC: u16 = 2;
const EM_X86_64: u16 = 62;
const PT_LOAD: u32 = 1;
const PT_NOTE: u32 = 4;
const EHDR_SIZE: usize = 64;
const PHDR_SIZE: usize = 56;

/// Errors loading the kernel.
#[derive(Debug, thiserror::Error)]
pub enum LoaderError {
    /// The file cannot be opened or read, is not a regular file, or is larger than any
    /// guest RAM.
    #[error("Kernel image '{0}'")]
    Read(PathBuf, #[source] InputFileError),
    /// The file is not valid for one of the reasons in [`ElfError`].
    #[error("Kernel image '{0}'")]
    Elf(PathBuf, #[source] ElfError),
    /// No ABI note.
    #[error("Kernel image '{0}' has no .note.astra ABI note: is it an astra kernel? (link it with the note in a PT_NOTE segment)")]
    NoAbiNote(PathBuf),
    /// ABI mismatch.
    #[error("Kernel image '{path}' speaks astra ABI version {kernel}, this astra-vmm speaks version {vmm}: rebuild the kernel and astra-vmm from the same tree")]
    AbiMismatch {
        /// Kernel path.
        path: PathBuf,
        /// The kernel's version.
        kernel: u32,
        /// Ours.
        vmm: u32,
    },
    /// A segment does not fit guest RAM.
    #[error("Kernel image '{path}' has a segment at {start:#x}..{end:#x}, outside usable guest RAM {LOW_RESERVED_END:#x}..{mem_size:#x}: give more --mem or relink the kernel")]
    SegmentOutsideRam {
        /// Kernel path.
        path: PathBuf,
        /// First byte.
        start: u64,
        /// End (exclusive).
        end: u64,
        /// Guest RAM size.
        mem_size: u64,
    },
    /// Two segments overlap in guest-physical memory.
    #[error("Kernel image '{path}' has overlapping segments at {first:#x} and {second:#x}")]
    OverlappingSegments {
        /// Kernel path.
        path: PathBuf,
        /// Start of the lower segment.
        first: u64,
        /// Start of the segment that overlaps it.
        second: u64,
    },
    /// The entry point is not in a loaded segment.
    #[error("Kernel image '{0}' has its entry point {1:#x} outside its loaded segments (as mapped by the boot page tables)")]
    EntryOutsideImage(PathBuf, u64),
    /// A checked segment could not be copied into guest memory (a VMM bug or host failure).
    #[error("Cannot load kernel image '{0}' into guest memory at {1:#x}")]
    Load(PathBuf, u64, #[source] vm_memory::GuestMemoryError),
}

/// Why a file is not a loadable kernel ELF.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum ElfError {
    /// No ELF magic.
    #[error("Not an ELF file")]
    NotElf,
    /// Wrong class, byte order or machine.
    #[error(
        "Not an ELF64 little-endian x86-64 file (class {class}, data {data}, machine {machine})"
    )]
    WrongArch {
        /// `EI_CLASS`.
        class: u8,
        /// `EI_DATA`.
        data: u8,
        /// `e_machine`.
        machine: u16,
    },
    /// Not `ET_EXEC`.
    #[error("Not a static executable (e_type {0}, expected ET_EXEC)")]
    NotExecutable(u16),
    /// Header fields point outside the file.
    #[error("Truncated or corrupt ELF: {0}")]
    Corrupt(&'static str),
}

/// One `PT_LOAD` segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    /// Offset of its bytes in the file.
    pub offset: u64,
    /// Physical load address.
    pub paddr: u64,
    /// Bytes in memory.
    pub memsz: u64,
    /// Bytes in the file.
    pub filesz: u64,
}

/// What the kernel's headers say.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KernelElf {
    /// `e_type`: the kernel must be `ET_EXEC` (checked after the ABI note, whose absence
    /// says more about a foreign file).
    pub e_type: u16,
    /// `e_entry`, a virtual address.
    pub entry: u64,
    /// The `PT_LOAD` segments with a non-zero memory size, by ascending address.
    pub segments: Vec<Segment>,
    /// The version in the astra ABI note, if there is one.
    pub abi_version: Option<u32>,
}

/// A kernel in guest memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoadedKernel {
    /// The entry point, a virtual address for RIP.
    pub entry: u64,
    /// End of the highest segment (guest-physical).
    pub end: u64,
}

fn u16_at(bytes: &[u8], offset: usize) -> Option<u16> {
    let raw = bytes.get(offset..offset.checked_add(2)?)?;
    Some(u16::from_le_bytes(raw.try_into().ok()?))
}

fn u32_at(bytes: &[u8], offset: usize) -> Option<u32> {
    let raw = bytes.get(offset..offset.checked_add(4)?)?;
    Some(u32::from_le_bytes(raw.try_into().ok()?))
}

fn u64_at(bytes: &[u8], offset: usize) -> Option<u64> {
    let raw = bytes.get(offset..offset.checked_add(8)?)?;
    Some(u64::from_le_bytes(raw.try_into().ok()?))
}

/// Rounds up to the 4-byte alignment of note fields.
fn note_align(len: usize) -> Option<usize> {
    len.checked_add(3).map(|l| l & !3)
}

/// Finds the astra ABI version in a run of ELF notes; `None` if there is none or the run
/// is malformed (see [`parse_notes`]).
pub fn find_abi_note(notes: &[u8]) -> Option<u32> {
    parse_notes(notes).ok().flatten()
}

/// Walks a run of ELF notes and returns the astra ABI version if one of them carries it.
/// Every note must lie entirely within the run (its name and descriptor sizes included);
/// only zero padding shorter than a note header may follow the last one.
pub fn parse_notes(mut notes: &[u8]) -> Result<Option<u32>, ElfError> {
    let bad = ElfError::Corrupt("malformed note (a name or descriptor size runs past its segment)");
    let mut found = None;
    while !notes.is_empty() {
        if notes.len() < 12 {
            if notes.iter().all(|&b| b == 0) {
                break;
            }
            return Err(bad);
        }
        let namesz = u32_at(notes, 0).ok_or(bad.clone())? as usize;
        let descsz = u32_at(notes, 4).ok_or(bad.clone())? as usize;
        let kind = u32_at(notes, 8).ok_or(bad.clone())?;
        let name_end = 12usize.checked_add(namesz).ok_or(bad.clone())?;
        let desc_start = note_align(namesz)
            .and_then(|n| n.checked_add(12))
            .ok_or(bad.clone())?;
        let desc_end = desc_start.checked_add(descsz).ok_or(bad.clone())?;
        let name = notes.get(12..name_end).ok_or(bad.clone())?;
        let desc = notes.get(desc_start..desc_end).ok_or(bad.clone())?;
        if found.is_none() && name == note::NAME && kind == note::TYPE_ABI_VERSION {
            found = u32_at(desc, 0);
        }
        // The last note's descriptor padding may be cut by the end of the segment.
        let next = note_align(desc_end).ok_or(bad.clone())?.min(notes.len());
        notes = &notes[next..];
    }
    Ok(found)
}

/// Parses and validates the ELF headers of a kernel image.
pub fn parse_kernel_elf(image: &[u8]) -> Result<KernelElf, ElfError> {
    if image.len() < EHDR_SIZE || &image[..4] != ELF_MAGIC {
        return Err(ElfError::NotElf);
    }
    let (class, data) = (image[4], image[5]);
    let machine = u16_at(image, 18).ok_or(ElfError::NotElf)?;
    if class != ELFCLASS64 || data != ELFDATA2LSB || machine != EM_X86_64 {
        return Err(ElfError::WrongArch {
            class,
            data,
            machine,
        });
    }
    let e_type = u16_at(image, 16).ok_or(ElfError::NotElf)?;
    let corrupt = ElfError::Corrupt;
    let entry = u64_at(image, 24).ok_or(corrupt("header"))?;
    let phoff = u64_at(image, 32).ok_or(corrupt("header"))?;
    let phentsize = u16_at(image, 54).ok_or(corrupt("header"))? as usize;
    let phnum = u16_at(image, 56).ok_or(corrupt("header"))? as usize;
    if phnum > 0 && phentsize != PHDR_SIZE {
        return Err(corrupt("program header size is not 56"));
    }
    let phoff = usize::try_from(phoff).map_err(|_| corrupt("program header offset"))?;
    let mut segments = Vec::new();
    let mut abi_version = None;
    for i in 0..phnum {
        let at = i
            .checked_mul(PHDR_SIZE)
            .and_then(|o| o.checked_add(phoff))
            .ok_or(corrupt("program header offset"))?;
        let phdr = image
            .get(at..at.saturating_add(PHDR_SIZE))
            .ok_or(corrupt("program headers past the end of the file"))?;
        let field = |offset| u64_at(phdr, offset).unwrap_or_default();
        let p_type = u32_at(phdr, 0).unwrap_or_default();
        let (offset, paddr, filesz, memsz) = (field(8), field(24), field(32), field(40));
        let file_range = usize::try_from(offset)
            .ok()
            .zip(usize::try_from(filesz).ok())
            .and_then(|(start, len)| Some(start..start.checked_add(len)?))
            .filter(|range| range.end <= image.len())
            .ok_or(corrupt("segment past the end of the file"))?;
        match p_type {
            PT_LOAD => {
                // Checked even for an empty segment: its file bytes would still be copied.
                if filesz > memsz {
                    return Err(corrupt("segment file size exceeds its memory size"));
                }
                if memsz > 0 {
                    segments.push(Segment {
                        offset,
                        paddr,
                        memsz,
                        filesz,
                    });
                }
            }
            PT_NOTE => {
                let version = parse_notes(&image[file_range])?;
                abi_version = abi_version.or(version);
            }
            _ => {}
        }
    }
    segments.sort_by_key(|s| s.paddr);
    Ok(KernelElf {
        e_type,
        entry,
        segments,
        abi_version,
    })
}

/// Validates a parsed kernel against the ABI and guest RAM of `mem_size` bytes.
pub fn check_kernel(path: &Path, elf: &KernelElf, mem_size: u64) -> Result<(), LoaderError> {
    match elf.abi_version {
        None => return Err(LoaderError::NoAbiNote(path.into())),
        Some(version) if version != ABI_VERSION => {
            return Err(LoaderError::AbiMismatch {
                path: path.into(),
                kernel: version,
                vmm: ABI_VERSION,
            })
        }
        Some(_) => {}
    }
    if elf.e_type != ET_EXEC {
        return Err(LoaderError::Elf(
            path.into(),
            ElfError::NotExecutable(elf.e_type),
        ));
    }
    for pair in elf.segments.windows(2) {
        let (low, high) = (pair[0], pair[1]);
        if low.paddr.saturating_add(low.memsz) > high.paddr {
            return Err(LoaderError::OverlappingSegments {
                path: path.into(),
                first: low.paddr,
                second: high.paddr,
            });
        }
    }
    for seg in &elf.segments {
        let end = seg.paddr.checked_add(seg.memsz);
        if seg.paddr < LOW_RESERVED_END || end.is_none_or(|end| end > mem_size) {
            return Err(LoaderError::SegmentOutsideRam {
                path: path.into(),
                start: seg.paddr,
                end: end.unwrap_or(u64::MAX),
                mem_size,
            });
        }
    }
    let entry_paddr = BootPageTables::new().translate(elf.entry);
    let in_image = entry_paddr.is_some_and(|pa| {
        elf.segments
            .iter()
            .any(|s| (s.paddr..s.paddr + s.memsz).contains(&pa))
    });
    if !in_image {
        return Err(LoaderError::EntryOutsideImage(path.into(), elf.entry));
    }
    Ok(())
}

/// Reads, validates and loads the kernel at `path` into `mem` (of `mem_size` bytes).
pub fn load_kernel(
    path: &Path,
    mem: &GuestMemoryMmap,
    mem_size: u64,
) -> Result<LoadedKernel, LoaderError> {
    // No kernel is larger than the largest guest RAM.
    let image =
        input_file::read_regular(path, MEM_MAX).map_err(|e| LoaderError::Read(path.into(), e))?;
    let elf = parse_kernel_elf(&image).map_err(|e| LoaderError::Elf(path.into(), e))?;
    check_kernel(path, &elf, mem_size)?;
    // Copy from the bytes already checked, not the file, which may change meanwhile.
    let mut end = 0;
    for seg in &elf.segments {
        let load_err = |e| LoaderError::Load(path.into(), seg.paddr, e);
        // parse_kernel_elf checked that offset..offset+filesz lies in the image.
        let start = seg.offset as usize;
        let bytes = &image[start..start + seg.filesz as usize];
        mem.write_slice(bytes, GuestAddress(seg.paddr))
            .map_err(load_err)?;
        // Guest RAM starts zeroed, but say so rather than rely on it.
        let zeros = [0u8; 4096];
        let mut at = seg.paddr + seg.filesz;
        while at < seg.paddr + seg.memsz {
            let n = (seg.paddr + seg.memsz - at).min(zeros.len() as u64);
            mem.write_slice(&zeros[..n as usize], GuestAddress(at))
                .map_err(load_err)?;
            at += n;
        }
        end = end.max(seg.paddr + seg.memsz);
    }
    log::debug!(
        "kernel: entry {:#x}, {} segments, end {end:#x}",
        elf.entry,
        elf.segments.len(),
    );
    Ok(LoadedKernel {
        entry: elf.entry,
        end,
    })
}

/// Builds minimal ELF images for tests (here and in other modules).
#[cfg(test)]
pub(crate) mod test_elf {
    use super::*;

    /// An ELF note.
    pub fn note(name: &[u8], kind: u32, desc: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&(name.len() as u32).to_le_bytes());
        out.extend_from_slice(&(desc.len() as u32).to_le_bytes());
        out.extend_from_slice(&kind.to_le_bytes());
        out.extend_from_slice(name);
        out.resize(note_align(out.len()).unwrap(), 0);
        out.extend_from_slice(desc);
        out.resize(note_align(out.len()).unwrap(), 0);
        out
    }

    /// A kernel ELF with one PT_LOAD of `code` at physical `paddr` (virtual at the kernel
    /// base), entry at its start, and a PT_NOTE holding `notes`.
    pub fn kernel(code: &[u8], paddr: u64, notes: &[u8]) -> Vec<u8> {
        let vaddr = crate::arch::x86_64::layout::KERNEL_VIRT_BASE + paddr;
        let phoff = EHDR_SIZE as u64;
        let data_off = phoff + 2 * PHDR_SIZE as u64;
        let mut out = vec![0u8; EHDR_SIZE];
        out[..4].copy_from_slice(ELF_MAGIC);
        out[4] = ELFCLASS64;
        out[5] = ELFDATA2LSB;
        out[6] = 1;
        out[16..18].copy_from_slice(&ET_EXEC.to_le_bytes());
        out[18..20].copy_from_slice(&EM_X86_64.to_le_bytes());
        out[20..24].copy_from_slice(&1u32.to_le_bytes());
        out[24..32].copy_from_slice(&vaddr.to_le_bytes());
        out[32..40].copy_from_slice(&phoff.to_le_bytes());
        out[52..54].copy_from_slice(&(EHDR_SIZE as u16).to_le_bytes());
        out[54..56].copy_from_slice(&(PHDR_SIZE as u16).to_le_bytes());
        out[56..58].copy_from_slice(&2u16.to_le_bytes());
        let phdr = |p_type: u32, offset: u64, vaddr: u64, paddr: u64, size: u64| {
            let mut ph = Vec::new();
            ph.extend_from_slice(&p_type.to_le_bytes());
            ph.extend_from_slice(&5u32.to_le_bytes());
            for v in [offset, vaddr, paddr, size, size, 8] {
                ph.extend_from_slice(&v.to_le_bytes());
            }
            ph
        };
        let code_off = data_off + notes.len() as u64;
        out.extend(phdr(PT_LOAD, code_off, vaddr, paddr, code.len() as u64));
        out.extend(phdr(PT_NOTE, data_off, 0, 0, notes.len() as u64));
        out.extend_from_slice(notes);
        out.extend_from_slice(code);
        out
    }

    /// The astra ABI note for `version`.
    pub fn abi_note(version: u32) -> Vec<u8> {
        note(note::NAME, note::TYPE_ABI_VERSION, &version.to_le_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::test_elf::*;
    use super::*;
    use vm_memory::{Bytes, GuestAddress};

    const HLT: &[u8] = &[0xf4];

    #[test]
    fn finds_the_abi_note_among_others() {
        let mut notes = note(b"GNU\0", 3, &[1, 2, 3, 4, 5, 6, 7, 8, 9]);
        notes.extend(note(b"astra\0", 7, &[9, 9, 9, 9]));
        notes.extend(abi_note(1));
        assert_eq!(find_abi_note(&notes), Some(1));
        assert_eq!(find_abi_note(&notes[..notes.len() - 1]), None);
        assert_eq!(
            find_abi_note(&note(b"astra", note::TYPE_ABI_VERSION, &[1, 0, 0, 0])),
            None
        );
        assert_eq!(find_abi_note(&[]), None);
    }

    #[test]
    fn hostile_note_sizes_do_not_panic() {
        let mut bad = Vec::new();
        bad.extend_from_slice(&u32::MAX.to_le_bytes());
        bad.extend_from_slice(&u32::MAX.to_le_bytes());
        bad.extend_from_slice(&0u32.to_le_bytes());
        assert_eq!(find_abi_note(&bad), None);
        bad[0..4].copy_from_slice(&0u32.to_le_bytes());
        assert_eq!(find_abi_note(&bad), None);
    }

    #[test]
    fn parses_a_minimal_kernel() {
        let image = kernel(HLT, 0x20_0000, &abi_note(ABI_VERSION));
        let elf = parse_kernel_elf(&image).unwrap();
        assert_eq!(elf.entry, 0xffff_ffff_8020_0000);
        assert_eq!(elf.abi_version, Some(ABI_VERSION));
        assert_eq!(
            elf.segments,
            [Segment {
                offset: 200,
                paddr: 0x20_0000,
                memsz: 1,
                filesz: 1
            }]
        );
        check_kernel(Path::new("k"), &elf, 16 << 20).unwrap();
    }

    #[test]
    fn rejects_what_is_not_an_x86_64_executable() {
        assert_eq!(parse_kernel_elf(b"#!/bin/sh\n"), Err(ElfError::NotElf));
        assert_eq!(parse_kernel_elf(&[0; 100]), Err(ElfError::NotElf));
        let good = kernel(HLT, 0x20_0000, &abi_note(hypercall_abi::ABI_VERSION));
        let mut elf32 = good.clone();
        elf32[4] = 1;
        assert!(matches!(
            parse_kernel_elf(&elf32),
            Err(ElfError::WrongArch { class: 1, .. })
        ));
        let mut arm = good.clone();
        arm[18] = 183;
        assert!(matches!(
            parse_kernel_elf(&arm),
            Err(ElfError::WrongArch { machine: 183, .. })
        ));
        let mut dyn_ = good.clone();
        dyn_[16] = 3;
        let dyn_ = parse_kernel_elf(&dyn_).unwrap();
        assert!(matches!(
            check_kernel(Path::new("k"), &dyn_, 16 << 20),
            Err(LoaderError::Elf(_, ElfError::NotExecutable(3)))
        ));
        let truncated = &good[..good.len() - 2];
        assert!(matches!(
            parse_kernel_elf(truncated),
            Err(ElfError::Corrupt(_))
        ));
        let mut far_phdrs = good;
        far_phdrs[32..40].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(matches!(
            parse_kernel_elf(&far_phdrs),
            Err(ElfError::Corrupt(_))
        ));
    }

    #[test]
    fn abi_note_must_be_present_and_match() {
        let path = Path::new("k");
        let no_note = parse_kernel_elf(&kernel(HLT, 0x20_0000, &[])).unwrap();
        assert!(matches!(
            check_kernel(path, &no_note, 16 << 20),
            Err(LoaderError::NoAbiNote(_))
        ));
        let future = parse_kernel_elf(&kernel(HLT, 0x20_0000, &abi_note(ABI_VERSION + 1))).unwrap();
        let err = check_kernel(path, &future, 16 << 20).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "Kernel image 'k' speaks astra ABI version {}, this astra-vmm speaks version {}: rebuild the kernel and astra-vmm from the same tree",
                ABI_VERSION + 1,
                ABI_VERSION
            )
        );
    }

    #[test]
    fn segments_must_lie_in_usable_ram() {
        let path = Path::new("k");
        let low = parse_kernel_elf(&kernel(HLT, 0x1000, &abi_note(ABI_VERSION))).unwrap();
        assert!(matches!(
            check_kernel(path, &low, 16 << 20),
            Err(LoaderError::SegmentOutsideRam { .. })
        ));
        let high = parse_kernel_elf(&kernel(HLT, 16 << 20, &abi_note(ABI_VERSION))).unwrap();
        assert!(matches!(
            check_kernel(path, &high, 16 << 20),
            Err(LoaderError::SegmentOutsideRam { .. })
        ));
        assert!(check_kernel(path, &high, 32 << 20).is_ok());
    }

    /// Sets field `offset` (8 bytes) of program header `index` of a `kernel()` image.
    fn set_phdr_field(image: &mut [u8], index: usize, offset: usize, value: u64) {
        let at = EHDR_SIZE + index * PHDR_SIZE + offset;
        image[at..at + 8].copy_from_slice(&value.to_le_bytes());
    }

    #[test]
    fn a_load_segment_with_file_bytes_but_no_memory_is_refused() {
        let mut image = kernel(HLT, 0, &abi_note(ABI_VERSION));
        set_phdr_field(&mut image, 0, 40, 0); // p_memsz = 0, p_filesz = 1
        assert_eq!(
            parse_kernel_elf(&image),
            Err(ElfError::Corrupt(
                "segment file size exceeds its memory size"
            ))
        );
    }

    #[test]
    fn malformed_notes_are_refused_wherever_they_are() {
        let mut notes = abi_note(ABI_VERSION);
        let mut hostile = note(b"X\0", 1, &[]);
        hostile[0..4].copy_from_slice(&u32::MAX.to_le_bytes());
        notes.extend(&hostile);
        let image = kernel(HLT, 0x20_0000, &notes);
        assert!(matches!(
            parse_kernel_elf(&image),
            Err(ElfError::Corrupt(reason)) if reason.contains("note")
        ));
        assert_eq!(parse_notes(&abi_note(ABI_VERSION)), Ok(Some(ABI_VERSION)));
        let mut padded = abi_note(ABI_VERSION);
        padded.extend([0; 4]);
        assert_eq!(parse_notes(&padded), Ok(Some(ABI_VERSION)));
    }

    #[test]
    fn overlapping_segments_are_refused() {
        let elf = KernelElf {
            e_type: ET_EXEC,
            entry: 0xffff_ffff_8020_0000,
            segments: vec![
                Segment {
                    offset: 0,
                    paddr: 0x20_0000,
                    memsz: 0x2000,
                    filesz: 0,
                },
                Segment {
                    offset: 0,
                    paddr: 0x20_1000,
                    memsz: 0x1000,
                    filesz: 0,
                },
            ],
            abi_version: Some(ABI_VERSION),
        };
        let err = check_kernel(Path::new("k"), &elf, 16 << 20).unwrap_err();
        assert!(matches!(
            err,
            LoaderError::OverlappingSegments {
                first: 0x20_0000,
                second: 0x20_1000,
                ..
            }
        ));
        assert!(err.to_string().contains("overlapping"));
    }

    #[test]
    fn entry_must_be_in_the_image() {
        let mut elf = parse_kernel_elf(&kernel(HLT, 0x20_0000, &abi_note(ABI_VERSION))).unwrap();
        elf.entry = 0x20_0000;
        assert!(check_kernel(Path::new("k"), &elf, 16 << 20).is_ok());
        elf.entry = 0x40_0000;
        assert!(matches!(
            check_kernel(Path::new("k"), &elf, 16 << 20),
            Err(LoaderError::EntryOutsideImage(..))
        ));
    }

    #[test]
    fn loads_segments_at_their_physical_address() {
        let dir = std::env::temp_dir().join(format!("astra-vmm-loader-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("kernel.elf");
        std::fs::write(
            &path,
            kernel(&[0x90, 0xf4], 0x20_0000, &abi_note(ABI_VERSION)),
        )
        .unwrap();
        let mem = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 16 << 20)]).unwrap();
        let loaded = load_kernel(&path, &mem, 16 << 20).unwrap();
        assert_eq!(loaded.entry, 0xffff_ffff_8020_0000);
        assert_eq!(loaded.end, 0x20_0002);
        let code: [u8; 2] = mem.read_obj(GuestAddress(0x20_0000)).unwrap();
        assert_eq!(code, [0x90, 0xf4]);
        let missing = load_kernel(&dir.join("missing"), &mem, 16 << 20).unwrap_err();
        assert!(matches!(missing, LoaderError::Read(..)));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

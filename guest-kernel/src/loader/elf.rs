//! ELF64 parser for the static x86-64 executables astra runs: ET_EXEC and static-pie ET_DYN.
//!
//! [`ElfImage::parse`] validates everything the loader relies on (headers, program header
//! table, every `PT_LOAD` segment) and rejects dynamically linked programs (`PT_INTERP`). The
//! file is untrusted: every malformed input is an [`ElfError`] with a clear reason, never a
//! panic. Nothing is mapped here; the loader maps the returned [`LoadSegment`]s.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// Page size the segments are checked against.
pub const PAGE_SIZE: u64 = 4096;

/// First address of the upper (kernel) half; user segments must end at or below it.
pub const USER_ADDR_LIMIT: u64 = 0x0000_8000_0000_0000;

/// `e_type`: executable at fixed addresses.
pub const ET_EXEC: u16 = 2;
/// `e_type`: position-independent (static-pie when there is no `PT_INTERP`).
pub const ET_DYN: u16 = 3;
/// `e_machine`: AMD x86-64.
pub const EM_X86_64: u16 = 62;

/// `p_type`: loadable segment.
pub const PT_LOAD: u32 = 1;
/// `p_type`: path of the dynamic linker.
pub const PT_INTERP: u32 = 3;
/// `p_type`: the program header table itself.
pub const PT_PHDR: u32 = 6;
/// `p_type`: thread-local storage template.
pub const PT_TLS: u32 = 7;
/// `p_type`: stack permissions.
pub const PT_GNU_STACK: u32 = 0x6474_e551;

const EHDR_SIZE: usize = 64;
const PHDR_SIZE: u16 = 56;
/// `e_phnum` value meaning "the real count is elsewhere"; not supported.
const PN_XNUM: u16 = 0xffff;
/// Longest interpreter path quoted in [`ElfError::Interpreter`].
const INTERP_QUOTE_MAX: usize = 256;

/// Why a file cannot be run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ElfError {
    /// No ELF magic.
    NotElf,
    /// Shorter than the ELF header.
    TruncatedHeader,
    /// `EI_CLASS` is not ELFCLASS64.
    BadClass(u8),
    /// `EI_DATA` is not little-endian.
    BadEndianness(u8),
    /// `EI_VERSION` or `e_version` is not EV_CURRENT (1).
    BadVersion(u32),
    /// `e_machine` is not x86-64.
    BadMachine(u16),
    /// `e_type` is neither ET_EXEC nor ET_DYN.
    BadType(u16),
    /// `e_phentsize` is not 56.
    BadPhentsize(u16),
    /// The program header table lies (partly) outside the file, or `e_phnum` is PN_XNUM.
    ProgramHeadersOutOfFile,
    /// There is no non-empty `PT_LOAD` segment.
    NoLoadSegments,
    /// Dynamically linked: the program needs this interpreter (lossy UTF-8, possibly cut).
    Interpreter(String),
    /// Segment `index`: `p_filesz` > `p_memsz`.
    FileSizeExceedsMemSize {
        /// Index of the program header.
        index: usize,
    },
    /// Segment `index`: `p_offset + p_filesz` lies past the end of the file.
    SegmentOutOfFile {
        /// Index of the program header.
        index: usize,
    },
    /// Segment `index`: `p_vaddr + p_memsz` overflows.
    AddressOverflow {
        /// Index of the program header.
        index: usize,
    },
    /// Segment `index`: `p_vaddr` and `p_offset` differ modulo the page size.
    Misaligned {
        /// Index of the program header.
        index: usize,
    },
    /// Segment `index`: `p_align` is not 0 or a power of two.
    BadAlignment {
        /// Index of the program header.
        index: usize,
    },
    /// Segment `index` overlaps an earlier one.
    Overlap {
        /// Index of the program header.
        index: usize,
    },
    /// Segment `index` of an ET_EXEC reaches the upper half of the address space.
    UpperHalf {
        /// Index of the program header.
        index: usize,
    },
    /// The ET_DYN image spans more than the user half of the address space.
    ImageTooLarge,
    /// The entry point lies in no `PT_LOAD` segment.
    EntryOutsideSegments(u64),
    /// The `PT_TLS` template is inconsistent (sizes, alignment, bounds).
    BadTls,
}

impl fmt::Display for ElfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ElfError::NotElf => f.write_str("not an ELF file"),
            ElfError::TruncatedHeader => f.write_str("ELF header truncated"),
            ElfError::BadClass(c) => write!(f, "ELF class {c}, expected 64-bit (2)"),
            ElfError::BadEndianness(d) => {
                write!(f, "ELF data encoding {d}, expected little-endian (1)")
            }
            ElfError::BadVersion(v) => write!(f, "ELF version {v}, expected 1"),
            ElfError::BadMachine(m) => write!(f, "ELF for machine {m}, expected x86-64 (62)"),
            ElfError::BadType(t) => {
                write!(f, "ELF type {t}, expected an executable (2) or position-independent executable (3)")
            }
            ElfError::BadPhentsize(s) => write!(f, "program header size {s}, expected 56"),
            ElfError::ProgramHeadersOutOfFile => {
                f.write_str("program headers lie outside the file")
            }
            ElfError::NoLoadSegments => f.write_str("no loadable segment"),
            ElfError::Interpreter(path) => write!(
                f,
                "dynamically linked (interpreter {path}): astra runs static executables only"
            ),
            ElfError::FileSizeExceedsMemSize { index } => {
                write!(f, "segment {index}: file size exceeds memory size")
            }
            ElfError::SegmentOutOfFile { index } => {
                write!(f, "segment {index}: file data lie past the end of the file")
            }
            ElfError::AddressOverflow { index } => {
                write!(f, "segment {index}: address range overflows")
            }
            ElfError::Misaligned { index } => {
                write!(
                    f,
                    "segment {index}: address and file offset differ modulo the page size"
                )
            }
            ElfError::BadAlignment { index } => {
                write!(f, "segment {index}: alignment is not a power of two")
            }
            ElfError::Overlap { index } => write!(f, "segment {index}: overlaps another segment"),
            ElfError::UpperHalf { index } => {
                write!(
                    f,
                    "segment {index}: reaches the kernel half of the address space"
                )
            }
            ElfError::ImageTooLarge => f.write_str("image larger than the user address space"),
            ElfError::EntryOutsideSegments(entry) => {
                write!(
                    f,
                    "entry point {entry:#x} lies outside every loadable segment"
                )
            }
            ElfError::BadTls => f.write_str("malformed TLS segment"),
        }
    }
}

/// Segment permission flags (`p_flags`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SegmentFlags(pub u32);

impl SegmentFlags {
    /// `PF_X`.
    pub const EXECUTE: u32 = 1;
    /// `PF_W`.
    pub const WRITE: u32 = 2;
    /// `PF_R`.
    #[allow(dead_code)] // every loaded segment is mapped readable (x86 has no exec-only)
    pub const READ: u32 = 4;

    /// Readable.
    #[allow(dead_code)] // see READ
    pub fn readable(self) -> bool {
        self.0 & Self::READ != 0
    }
    /// Writable.
    pub fn writable(self) -> bool {
        self.0 & Self::WRITE != 0
    }
    /// Executable.
    pub fn executable(self) -> bool {
        self.0 & Self::EXECUTE != 0
    }
}

/// One `PT_LOAD` segment: map `filesz` bytes from `offset` at `vaddr` (plus the load bias for
/// ET_DYN) and zero the rest up to `memsz`. Segments may share a page at their edges (the
/// loader must then combine their permissions) but never overlap byte-wise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadSegment {
    /// Virtual address of the first byte (before the load bias).
    pub vaddr: u64,
    /// Bytes in memory (>= `filesz`, > 0).
    pub memsz: u64,
    /// Bytes taken from the file.
    pub filesz: u64,
    /// File offset of the first byte.
    pub offset: u64,
    /// Permissions.
    pub flags: SegmentFlags,
    /// Requested alignment (`p_align`; 0 or a power of two).
    pub align: u64,
}

impl LoadSegment {
    /// First byte past the segment in memory (checked not to overflow at parse time).
    pub fn end(&self) -> u64 {
        self.vaddr.saturating_add(self.memsz)
    }
}

/// The `PT_TLS` template: `filesz` initialised bytes at `vaddr`, zero-extended to `memsz`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TlsTemplate {
    /// Virtual address of the initialisation image (before the load bias).
    pub vaddr: u64,
    /// File offset of the initialisation image.
    pub offset: u64,
    /// Initialised bytes.
    pub filesz: u64,
    /// Total TLS block size.
    pub memsz: u64,
    /// Required alignment (0 or a power of two).
    pub align: u64,
}

/// A validated static executable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElfImage {
    /// Entry point (before the load bias).
    pub entry: u64,
    /// ET_DYN: the image must be placed at a load bias chosen by the loader.
    pub is_dyn: bool,
    /// `PT_LOAD` segments with `memsz > 0`, sorted by `vaddr`.
    pub segments: Vec<LoadSegment>,
    /// Virtual address of the program header table once loaded (for `AT_PHDR`, before the load
    /// bias): from `PT_PHDR`, or from the segment whose file data cover `e_phoff`. `None` if no
    /// segment maps it (the loader must then copy the table itself).
    pub phdr_vaddr: Option<u64>,
    /// File offset of the program header table.
    pub phoff: u64,
    /// Number of program headers (`AT_PHNUM`).
    pub phnum: u16,
    /// Size of one program header (`AT_PHENT`), always 56.
    pub phentsize: u16,
    /// `PT_GNU_STACK` flags, if present (no `PF_X` means a non-executable stack).
    pub stack_flags: Option<SegmentFlags>,
    /// The `PT_TLS` template, if any.
    pub tls: Option<TlsTemplate>,
}

/// How many bytes from the start of a file of `file_len` bytes [`ElfImage::parse_head`]
/// needs, judging by its first 64 (the ELF header): at least the header and the program
/// header table, and the first page, where a PT_INTERP path usually lies; at most the file.
pub fn head_len(header: &[u8], file_len: u64) -> u64 {
    let r = Reader(header);
    let table_end = r
        .u64(32)
        .saturating_add(u64::from(r.u16(56)) * u64::from(PHDR_SIZE));
    table_end.max(PAGE_SIZE).min(file_len)
}

/// Reads little-endian integers at offsets already checked against `data`.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn bytes<const N: usize>(&self, at: usize) -> [u8; N] {
        let mut out = [0u8; N];
        if let Some(src) = at.checked_add(N).and_then(|end| self.0.get(at..end)) {
            out.copy_from_slice(src);
        }
        out
    }
    fn u16(&self, at: usize) -> u16 {
        u16::from_le_bytes(self.bytes(at))
    }
    fn u32(&self, at: usize) -> u32 {
        u32::from_le_bytes(self.bytes(at))
    }
    fn u64(&self, at: usize) -> u64 {
        u64::from_le_bytes(self.bytes(at))
    }
}

/// One raw program header.
struct Phdr {
    p_type: u32,
    flags: u32,
    offset: u64,
    vaddr: u64,
    filesz: u64,
    memsz: u64,
    align: u64,
}

fn page_down(addr: u64) -> u64 {
    addr & !(PAGE_SIZE - 1)
}

fn page_up(addr: u64) -> Option<u64> {
    addr.checked_add(PAGE_SIZE - 1).map(page_down)
}

fn valid_align(align: u64) -> bool {
    align == 0 || align.is_power_of_two()
}

impl ElfImage {
    /// Validates `data` as a static x86-64 executable and describes how to load it.
    #[cfg(test)] // the loader reads only the head of a file: `parse_head`
    pub fn parse(data: &[u8]) -> Result<ElfImage, ElfError> {
        Self::parse_head(data, data.len() as u64)
    }

    /// Like [`Self::parse`] from the first bytes of a file of `file_len` bytes: `head`
    /// must hold the ELF header and the program header table (see [`head_len`]); segments
    /// are checked against `file_len`.
    pub fn parse_head(data: &[u8], file_len: u64) -> Result<ElfImage, ElfError> {
        if data.get(..4) != Some(b"\x7fELF".as_slice()) {
            return Err(ElfError::NotElf);
        }
        if data.len() < EHDR_SIZE {
            return Err(ElfError::TruncatedHeader);
        }
        let r = Reader(data);
        let ident = r.bytes::<16>(0);
        if ident[4] != 2 {
            return Err(ElfError::BadClass(ident[4]));
        }
        if ident[5] != 1 {
            return Err(ElfError::BadEndianness(ident[5]));
        }
        if ident[6] != 1 {
            return Err(ElfError::BadVersion(u32::from(ident[6])));
        }
        let e_type = r.u16(16);
        let machine = r.u16(18);
        let version = r.u32(20);
        if machine != EM_X86_64 {
            return Err(ElfError::BadMachine(machine));
        }
        if version != 1 {
            return Err(ElfError::BadVersion(version));
        }
        if e_type != ET_EXEC && e_type != ET_DYN {
            return Err(ElfError::BadType(e_type));
        }
        let is_dyn = e_type == ET_DYN;
        let entry = r.u64(24);
        let phoff = r.u64(32);
        let phentsize = r.u16(54);
        let phnum = r.u16(56);
        if phentsize != PHDR_SIZE {
            return Err(ElfError::BadPhentsize(phentsize));
        }
        if phnum == PN_XNUM {
            return Err(ElfError::ProgramHeadersOutOfFile);
        }
        let table_len = u64::from(phnum) * u64::from(PHDR_SIZE);
        let table_end = phoff
            .checked_add(table_len)
            .ok_or(ElfError::ProgramHeadersOutOfFile)?;
        if table_end > data.len() as u64 {
            return Err(ElfError::ProgramHeadersOutOfFile);
        }
        // In bounds: phoff + phnum * 56 <= data.len() was checked above.
        let table_start = usize::try_from(phoff).map_err(|_| ElfError::ProgramHeadersOutOfFile)?;
        let phdrs = (0..usize::from(phnum)).map(|i| {
            let at = table_start + i * usize::from(PHDR_SIZE);
            Phdr {
                p_type: r.u32(at),
                flags: r.u32(at + 4),
                offset: r.u64(at + 8),
                vaddr: r.u64(at + 16),
                filesz: r.u64(at + 32),
                memsz: r.u64(at + 40),
                align: r.u64(at + 48),
            }
        });

        let mut segments: Vec<(usize, LoadSegment)> = Vec::new();
        let mut phdr_vaddr = None;
        let mut stack_flags = None;
        let mut tls = None;
        for (index, ph) in phdrs.enumerate() {
            match ph.p_type {
                PT_LOAD => {
                    if ph.filesz > ph.memsz {
                        return Err(ElfError::FileSizeExceedsMemSize { index });
                    }
                    if ph
                        .offset
                        .checked_add(ph.filesz)
                        .is_none_or(|end| end > file_len)
                    {
                        return Err(ElfError::SegmentOutOfFile { index });
                    }
                    let end = ph.vaddr.checked_add(ph.memsz).and_then(page_up);
                    let end = end.ok_or(ElfError::AddressOverflow { index })?;
                    if !valid_align(ph.align) {
                        return Err(ElfError::BadAlignment { index });
                    }
                    if ph.vaddr % PAGE_SIZE != ph.offset % PAGE_SIZE {
                        return Err(ElfError::Misaligned { index });
                    }
                    if !is_dyn && end > USER_ADDR_LIMIT {
                        return Err(ElfError::UpperHalf { index });
                    }
                    if ph.memsz > 0 {
                        let seg = LoadSegment {
                            vaddr: ph.vaddr,
                            memsz: ph.memsz,
                            filesz: ph.filesz,
                            offset: ph.offset,
                            flags: SegmentFlags(ph.flags),
                            align: ph.align,
                        };
                        segments.push((index, seg));
                    }
                }
                PT_INTERP => {
                    let path = usize::try_from(ph.offset)
                        .ok()
                        .and_then(|start| data.get(start..))
                        .map(|rest| {
                            let len = usize::try_from(ph.filesz).unwrap_or(usize::MAX);
                            let rest = rest.get(..len).unwrap_or(rest);
                            let rest = rest.split(|&b| b == 0).next().unwrap_or(&[]);
                            let rest = rest.get(..INTERP_QUOTE_MAX).unwrap_or(rest);
                            String::from_utf8_lossy(rest).into_owned()
                        })
                        .unwrap_or_default();
                    return Err(ElfError::Interpreter(path));
                }
                PT_PHDR => phdr_vaddr = Some(ph.vaddr),
                PT_GNU_STACK => stack_flags = Some(SegmentFlags(ph.flags)),
                PT_TLS => {
                    let fits = ph.filesz <= ph.memsz
                        && valid_align(ph.align)
                        && ph
                            .offset
                            .checked_add(ph.filesz)
                            .is_some_and(|end| end <= file_len)
                        && ph.vaddr.checked_add(ph.memsz).is_some();
                    if !fits {
                        return Err(ElfError::BadTls);
                    }
                    tls = Some(TlsTemplate {
                        vaddr: ph.vaddr,
                        offset: ph.offset,
                        filesz: ph.filesz,
                        memsz: ph.memsz,
                        align: ph.align,
                    });
                }
                _ => {}
            }
        }
        if segments.is_empty() {
            return Err(ElfError::NoLoadSegments);
        }
        segments.sort_by_key(|(_, seg)| seg.vaddr);
        for pair in segments.windows(2) {
            if let [(_, prev), (index, seg)] = pair {
                if seg.vaddr < prev.end() {
                    return Err(ElfError::Overlap { index: *index });
                }
            }
        }
        let segments: Vec<LoadSegment> = segments.into_iter().map(|(_, seg)| seg).collect();
        if !segments.iter().any(|s| (s.vaddr..s.end()).contains(&entry)) {
            return Err(ElfError::EntryOutsideSegments(entry));
        }
        if let Some(t) = tls {
            let covered = segments
                .iter()
                .any(|s| s.vaddr <= t.vaddr && t.vaddr.saturating_add(t.filesz) <= s.end());
            if !covered {
                return Err(ElfError::BadTls);
            }
        }
        if phdr_vaddr.is_none() {
            phdr_vaddr = segments.iter().find_map(|s| {
                let file_end = s.offset.checked_add(s.filesz)?;
                (s.offset <= phoff && table_end <= file_end).then(|| s.vaddr + (phoff - s.offset))
            });
        }
        let image = ElfImage {
            entry,
            is_dyn,
            segments,
            phdr_vaddr,
            phoff,
            phnum,
            phentsize,
            stack_flags,
            tls,
        };
        let (low, high) = image.load_bias_range();
        if high - low > USER_ADDR_LIMIT {
            return Err(ElfError::ImageTooLarge);
        }
        Ok(image)
    }

    /// The page-aligned span the image occupies before the load bias: (lowest segment address
    /// rounded down to a page, highest segment end rounded up to a page). An ET_DYN image needs
    /// `high - low` bytes of address space and is placed by choosing
    /// `bias = base - low` for a page-aligned `base`.
    pub fn load_bias_range(&self) -> (u64, u64) {
        let low = self.segments.first().map_or(0, |s| page_down(s.vaddr));
        // Every segment end was checked to round up without overflow at parse time.
        let high = self
            .segments
            .iter()
            .map(|s| page_up(s.end()).unwrap_or(u64::MAX))
            .max();
        (low, high.unwrap_or(low))
    }

    /// The largest `p_align` of the loadable segments, at least [`PAGE_SIZE`]: an ET_DYN image
    /// must be placed at a base aligned to it.
    pub fn max_align(&self) -> u64 {
        self.segments
            .iter()
            .map(|s| s.align)
            .fold(PAGE_SIZE, u64::max)
    }

    /// Whether the stack must be executable (`PT_GNU_STACK` with `PF_X`; a missing
    /// `PT_GNU_STACK` means executable on Linux x86-64).
    pub fn executable_stack(&self) -> bool {
        self.stack_flags.is_none_or(|f| f.executable())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    /// Builds ELF files: a 64-byte header, the program header table at 64, zero padding.
    struct Builder {
        e_type: u16,
        machine: u16,
        entry: u64,
        phoff: u64,
        phentsize: u16,
        phdrs: Vec<[u64; 7]>, // type, flags, offset, vaddr, filesz, memsz, align
        file_len: usize,
    }

    const RX: u64 = 5;
    const RW: u64 = 6;

    impl Builder {
        /// A typical static ET_EXEC: headers + text in one RX segment at 0x400000, data RW.
        fn exec() -> Builder {
            Builder {
                e_type: ET_EXEC,
                machine: EM_X86_64,
                entry: 0x401000,
                phoff: 64,
                phentsize: 56,
                phdrs: vec![
                    [u64::from(PT_LOAD), 4, 0, 0x400000, 0x1000, 0x1000, 0x1000],
                    [
                        u64::from(PT_LOAD),
                        RX,
                        0x1000,
                        0x401000,
                        0x800,
                        0x800,
                        0x1000,
                    ],
                    [
                        u64::from(PT_LOAD),
                        RW,
                        0x1800,
                        0x402800,
                        0x100,
                        0x2000,
                        0x1000,
                    ],
                    [u64::from(PT_GNU_STACK), RW, 0, 0, 0, 0, 16],
                ],
                file_len: 0x2000,
            }
        }

        /// A static-pie ET_DYN linked at 0, with PT_PHDR and PT_TLS.
        fn dyn_pie() -> Builder {
            Builder {
                e_type: ET_DYN,
                machine: EM_X86_64,
                entry: 0x1100,
                phoff: 64,
                phentsize: 56,
                phdrs: vec![
                    [u64::from(PT_PHDR), 4, 64, 64, 4 * 56, 4 * 56, 8],
                    [u64::from(PT_LOAD), 4, 0, 0, 0x1000, 0x1000, 0x1000],
                    [u64::from(PT_LOAD), RX, 0x1000, 0x1000, 0x200, 0x200, 0x1000],
                    [u64::from(PT_TLS), 4, 0x1f00, 0x2f00, 0x10, 0x40, 64],
                    [
                        u64::from(PT_LOAD),
                        RW,
                        0x1e00,
                        0x2e00,
                        0x200,
                        0x300,
                        0x200000,
                    ],
                ],
                file_len: 0x2000,
            }
        }

        fn build(&self) -> Vec<u8> {
            let mut f = vec![0u8; self.file_len.max(64)];
            f[..4].copy_from_slice(b"\x7fELF");
            f[4] = 2;
            f[5] = 1;
            f[6] = 1;
            f[16..18].copy_from_slice(&self.e_type.to_le_bytes());
            f[18..20].copy_from_slice(&self.machine.to_le_bytes());
            f[20..24].copy_from_slice(&1u32.to_le_bytes());
            f[24..32].copy_from_slice(&self.entry.to_le_bytes());
            f[32..40].copy_from_slice(&self.phoff.to_le_bytes());
            f[52..54].copy_from_slice(&64u16.to_le_bytes());
            f[54..56].copy_from_slice(&self.phentsize.to_le_bytes());
            f[56..58].copy_from_slice(&(self.phdrs.len() as u16).to_le_bytes());
            for (i, ph) in self.phdrs.iter().enumerate() {
                let at = self.phoff as usize + i * 56;
                if f.len() < at + 56 {
                    f.resize(at + 56, 0);
                }
                f[at..at + 4].copy_from_slice(&(ph[0] as u32).to_le_bytes());
                f[at + 4..at + 8].copy_from_slice(&(ph[1] as u32).to_le_bytes());
                // offset, vaddr, paddr (= vaddr), filesz, memsz, align
                let fields = [ph[2], ph[3], ph[3], ph[4], ph[5], ph[6]];
                for (j, v) in fields.iter().enumerate() {
                    let o = at + 8 + j * 8;
                    f[o..o + 8].copy_from_slice(&v.to_le_bytes());
                }
            }
            f
        }

        fn parse(&self) -> Result<ElfImage, ElfError> {
            ElfImage::parse(&self.build())
        }
    }

    fn load(i: usize) -> impl Fn(&mut Builder) -> &mut [u64; 7] {
        move |b: &mut Builder| &mut b.phdrs[i]
    }

    #[test]
    fn good_exec() {
        let img = Builder::exec().parse().unwrap();
        assert!(!img.is_dyn);
        assert_eq!(img.entry, 0x401000);
        assert_eq!(img.segments.len(), 3);
        let data = img.segments[2];
        assert_eq!(
            (data.vaddr, data.memsz, data.filesz, data.offset),
            (0x402800, 0x2000, 0x100, 0x1800)
        );
        assert!(data.flags.readable() && data.flags.writable() && !data.flags.executable());
        assert!(img.segments[1].flags.executable());
        assert_eq!(img.phdr_vaddr, Some(0x400040));
        assert_eq!((img.phnum, img.phentsize, img.phoff), (4, 56, 64));
        assert_eq!(img.load_bias_range(), (0x400000, 0x405000));
        assert!(!img.executable_stack());
        assert_eq!(img.tls, None);
    }

    #[test]
    fn good_dyn() {
        let img = Builder::dyn_pie().parse().unwrap();
        assert!(img.is_dyn);
        assert_eq!(img.phdr_vaddr, Some(64));
        assert_eq!(img.load_bias_range(), (0, 0x4000));
        assert_eq!(img.max_align(), 0x200000);
        assert_eq!(
            img.tls,
            Some(TlsTemplate {
                vaddr: 0x2f00,
                offset: 0x1f00,
                filesz: 0x10,
                memsz: 0x40,
                align: 64
            })
        );
        assert!(
            img.executable_stack(),
            "no PT_GNU_STACK means an executable stack"
        );
    }

    #[test]
    fn segments_sorted_and_empty_ones_dropped() {
        let mut b = Builder::exec();
        b.phdrs.swap(0, 2);
        b.phdrs
            .push([u64::from(PT_LOAD), RW, 0, 0x10000000, 0, 0, 0x1000]);
        let img = b.parse().unwrap();
        let addrs: Vec<u64> = img.segments.iter().map(|s| s.vaddr).collect();
        assert_eq!(addrs, [0x400000, 0x401000, 0x402800]);
    }

    #[test]
    fn header_rejections() {
        assert_eq!(ElfImage::parse(b""), Err(ElfError::NotElf));
        assert_eq!(ElfImage::parse(b"#!/bin/sh\n"), Err(ElfError::NotElf));
        assert_eq!(
            ElfImage::parse(b"\x7fELF\x02\x01"),
            Err(ElfError::TruncatedHeader)
        );
        let good = Builder::exec().build();
        let mut f = good.clone();
        f[4] = 1;
        assert_eq!(ElfImage::parse(&f), Err(ElfError::BadClass(1)));
        let mut f = good.clone();
        f[5] = 2;
        assert_eq!(ElfImage::parse(&f), Err(ElfError::BadEndianness(2)));
        let mut f = good.clone();
        f[6] = 0;
        assert_eq!(ElfImage::parse(&f), Err(ElfError::BadVersion(0)));
        let mut f = good.clone();
        f[20] = 2;
        assert_eq!(ElfImage::parse(&f), Err(ElfError::BadVersion(2)));
        let mut b = Builder::exec();
        b.machine = 3;
        let e = b.parse().unwrap_err();
        assert_eq!(e, ElfError::BadMachine(3));
        assert_eq!(
            alloc::format!("{e}"),
            "ELF for machine 3, expected x86-64 (62)"
        );
        let mut b = Builder::exec();
        b.e_type = 1;
        assert_eq!(b.parse(), Err(ElfError::BadType(1)));
        b.e_type = 4;
        assert_eq!(b.parse(), Err(ElfError::BadType(4)));
        let mut b = Builder::exec();
        b.phentsize = 64;
        assert_eq!(b.parse(), Err(ElfError::BadPhentsize(64)));
        let mut f = good.clone();
        f[32..40].copy_from_slice(&(good.len() as u64 - 100).to_le_bytes());
        assert_eq!(ElfImage::parse(&f), Err(ElfError::ProgramHeadersOutOfFile));
        let mut f = good.clone();
        f[32..40].copy_from_slice(&u64::MAX.to_le_bytes());
        assert_eq!(ElfImage::parse(&f), Err(ElfError::ProgramHeadersOutOfFile));
        let mut f = good.clone();
        f[56..58].copy_from_slice(&0xffffu16.to_le_bytes());
        assert_eq!(ElfImage::parse(&f), Err(ElfError::ProgramHeadersOutOfFile));
        let mut b = Builder::exec();
        b.phdrs.retain(|p| p[0] != u64::from(PT_LOAD));
        assert_eq!(b.parse(), Err(ElfError::NoLoadSegments));
    }

    #[test]
    fn segment_rejections() {
        type Mutation = fn(&mut [u64; 7]);
        let cases: Vec<(Mutation, ElfError)> = vec![
            (
                |p| p[4] = p[5] + 1,
                ElfError::FileSizeExceedsMemSize { index: 2 },
            ),
            (|p| p[4] = 0x1000, ElfError::SegmentOutOfFile { index: 2 }),
            (|p| p[2] = u64::MAX, ElfError::SegmentOutOfFile { index: 2 }),
            (
                |p| p[3] = u64::MAX - 0x800,
                ElfError::AddressOverflow { index: 2 },
            ),
            (
                |p| p[3] = u64::MAX - 0x1800,
                ElfError::AddressOverflow { index: 2 },
            ),
            (|p| p[3] = 0x402900, ElfError::Misaligned { index: 2 }),
            (|p| p[6] = 3, ElfError::BadAlignment { index: 2 }),
            (|p| p[3] = 0x400800, ElfError::Overlap { index: 2 }),
            (
                |p| p[3] = 0x7fff_ffff_f800,
                ElfError::UpperHalf { index: 2 },
            ),
            (
                |p| p[3] = 0xffff_ffff_8000_0800,
                ElfError::UpperHalf { index: 2 },
            ),
        ];
        for (mutate, want) in cases {
            let mut b = Builder::exec();
            mutate(load(2)(&mut b));
            assert_eq!(b.parse(), Err(want.clone()), "{want}");
        }
        let e = ElfError::FileSizeExceedsMemSize { index: 2 };
        assert_eq!(
            alloc::format!("{e}"),
            "segment 2: file size exceeds memory size"
        );
        // Ending exactly at the limit is fine.
        let mut b = Builder::exec();
        b.phdrs[2][3] = USER_ADDR_LIMIT - 0x2000 + 0x800;
        b.phdrs[2][5] = 0x1800;
        assert!(b.parse().is_ok());
    }

    #[test]
    fn dyn_images_may_live_anywhere_but_must_fit() {
        let mut b = Builder::dyn_pie();
        for (i, base) in [
            (1, 0xffff_ffff_0000_0000u64),
            (2, 0xffff_ffff_0000_1000),
            (4, 0xffff_ffff_0000_2e00),
        ] {
            b.phdrs[i][3] = base;
        }
        b.phdrs[3][3] = 0xffff_ffff_0000_2f00;
        b.phdrs[0][3] = 0xffff_ffff_0000_0040;
        b.entry = 0xffff_ffff_0000_1100;
        assert!(b.parse().is_ok());
        let mut b = Builder::dyn_pie();
        b.phdrs[4][3] = USER_ADDR_LIMIT + 0x2e00;
        b.phdrs[3][3] = USER_ADDR_LIMIT + 0x2f00;
        assert_eq!(b.parse(), Err(ElfError::ImageTooLarge));
    }

    #[test]
    fn interpreter_rejected_with_its_path() {
        let mut b = Builder::exec();
        let path = b"/lib/ld-musl-x86_64.so.1\0";
        b.phdrs.insert(
            0,
            [
                u64::from(PT_INTERP),
                4,
                0x300,
                0x400300,
                path.len() as u64,
                path.len() as u64,
                1,
            ],
        );
        let mut f = b.build();
        f[0x300..0x300 + path.len()].copy_from_slice(path);
        let e = ElfImage::parse(&f).unwrap_err();
        assert_eq!(e, ElfError::Interpreter("/lib/ld-musl-x86_64.so.1".into()));
        assert!(alloc::format!("{e}").contains("static executables only"));
        // A PT_INTERP pointing nowhere is still reported, without a path.
        b.phdrs[0][2] = u64::MAX;
        assert_eq!(b.parse(), Err(ElfError::Interpreter(String::new())));
    }

    #[test]
    fn entry_and_tls_checks() {
        let mut b = Builder::exec();
        b.entry = 0x900000;
        assert_eq!(b.parse(), Err(ElfError::EntryOutsideSegments(0x900000)));
        let mut b = Builder::dyn_pie();
        b.phdrs[3][4] = 0x80; // filesz > memsz
        assert_eq!(b.parse(), Err(ElfError::BadTls));
        let mut b = Builder::dyn_pie();
        b.phdrs[3][6] = 48;
        assert_eq!(b.parse(), Err(ElfError::BadTls));
        let mut b = Builder::dyn_pie();
        b.phdrs[3][3] = 0x9000;
        assert_eq!(b.parse(), Err(ElfError::BadTls));
    }

    #[test]
    fn phdr_not_covered_by_a_segment() {
        let mut b = Builder::exec();
        b.phdrs[0] = [
            u64::from(PT_LOAD),
            4,
            0x1000 - 0x100,
            0x400f00,
            0x100,
            0x100,
            0x1000,
        ];
        let img = b.parse().unwrap();
        assert_eq!(img.phdr_vaddr, None);
    }

    #[test]
    fn real_static_binary_if_available() {
        // Optional: a real static binary of the host, when there is one; skipped otherwise.
        // glibc's ldconfig is a static-pie on Debian and Ubuntu.
        let Ok(bytes) = std::fs::read("/sbin/ldconfig") else {
            return;
        };
        match ElfImage::parse(&bytes) {
            Ok(img) => {
                assert!(img.segments.len() >= 2);
                assert!(img.phdr_vaddr.is_some());
                let (low, high) = img.load_bias_range();
                assert!(low < high && img.entry >= low && img.entry < high);
            }
            // Some distributions link it dynamically.
            Err(ElfError::Interpreter(_)) => {}
            Err(e) => panic!("/sbin/ldconfig: {e}"),
        }
    }

    #[test]
    fn hostile_mutations_never_panic() {
        let bases = [Builder::exec().build(), Builder::dyn_pie().build()];
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for round in 0..20000 {
            let mut f = bases[round % 2].clone();
            // Mutate the headers mostly, where the parser looks.
            for _ in 0..1 + next() % 6 {
                let i = (next() % 400) as usize;
                f[i] = next() as u8;
            }
            let cut = (next() % (f.len() as u64 + 1)) as usize;
            if let Ok(img) = ElfImage::parse(&f[..cut]) {
                let (low, high) = img.load_bias_range();
                assert!(low <= high);
                for s in &img.segments {
                    assert!(s.filesz <= s.memsz && s.offset + s.filesz <= cut as u64);
                }
            }
        }
    }

    #[test]
    fn parse_from_the_head_of_a_file() {
        let file = Builder::exec().build();
        let len = file.len() as u64;
        let head = head_len(&file[..64], len);
        assert_eq!(
            head, 0x1000,
            "the first page covers the header and the table"
        );
        let from_head = ElfImage::parse_head(&file[..head as usize], len).unwrap();
        assert_eq!(from_head, ElfImage::parse(&file).unwrap());
        // Segments are still checked against the whole file's length.
        assert_eq!(
            ElfImage::parse_head(&file[..head as usize], 0x1800),
            Err(ElfError::SegmentOutOfFile { index: 2 })
        );
        // A table beyond the first page makes the head longer, never past the file.
        let mut far = Builder::exec();
        far.phoff = 0x1800;
        far.file_len = 0x3000;
        let file = far.build();
        assert_eq!(head_len(&file[..64], file.len() as u64), 0x1800 + 4 * 56);
        assert_eq!(head_len(&file[..64], 0x1000), 0x1000);
        // Garbage sizes do not overflow.
        let mut junk = [0u8; 64];
        junk[32..40].copy_from_slice(&u64::MAX.to_le_bytes());
        junk[56..58].copy_from_slice(&u16::MAX.to_le_bytes());
        assert_eq!(head_len(&junk, 100), 100);
    }
}

//! How a program's memory image is laid out, as pure decisions the loader then carries
//! out: which ranges map the file, which are zero-fill (`.bss`), which pages must be
//! assembled at load time, where a static-pie goes, and the auxiliary vector.

use alloc::vec::Vec;

use super::elf::{ElfImage, LoadSegment};
use super::stack;
use crate::mm::vma::{PROT_EXEC, PROT_READ, PROT_WRITE};
use crate::mm::PAGE_SIZE;

/// Where Linux x86-64 puts a position-independent executable before randomisation
/// (`ELF_ET_DYN_BASE`: two thirds of the 47-bit address space, page aligned).
pub const ELF_ET_DYN_BASE: u64 = 0x5555_5555_4000;

/// Clock ticks per second reported in `AT_CLKTCK` (Linux `USER_HZ`).
pub const USER_HZ: u64 = 100;

/// One part of the memory image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Piece {
    /// `[start, end)` maps the file from `offset`, paged in on demand.
    File {
        /// First address.
        start: u64,
        /// End address (exclusive).
        end: u64,
        /// File offset of `start`.
        offset: u64,
        /// `PROT_*` bits.
        prot: u32,
    },
    /// `[start, end)` is zero-filled memory, paged in on demand.
    Zero {
        /// First address.
        start: u64,
        /// End address (exclusive).
        end: u64,
        /// `PROT_*` bits.
        prot: u32,
    },
    /// A page assembled at load time: zeros plus the file bytes `(address, file offset,
    /// length)` of each segment in it. Used where a segment's file data end inside a page
    /// that must otherwise read as zeros (the start of `.bss`), and for a page two
    /// segments share (it gets both segments' permissions).
    Copied {
        /// The page.
        page: u64,
        /// `PROT_*` bits.
        prot: u32,
        /// File bytes to place.
        parts: Vec<(u64, u64, u64)>,
    },
}

fn page_down(v: u64) -> u64 {
    v & !(PAGE_SIZE - 1)
}

fn page_up(v: u64) -> u64 {
    page_down(v + PAGE_SIZE - 1)
}

/// The `PROT_*` bits of a segment.
pub fn segment_prot(seg: &LoadSegment) -> u32 {
    let mut prot = 0;
    if seg.flags.readable() {
        prot |= PROT_READ;
    }
    if seg.flags.writable() {
        prot |= PROT_WRITE;
    }
    if seg.flags.executable() {
        prot |= PROT_EXEC;
    }
    prot
}

/// Splits the segments of a parsed image (sorted, non-overlapping, checked not to
/// overflow) placed at `bias` into pieces, in address order.
pub fn plan(segments: &[LoadSegment], bias: u64) -> Vec<Piece> {
    struct Seg {
        start: u64,
        file_end: u64,
        mem_end: u64,
        offset: u64,
        prot: u32,
    }
    let segs: Vec<Seg> = segments
        .iter()
        .map(|s| Seg {
            start: bias + s.vaddr,
            file_end: bias + s.vaddr + s.filesz,
            mem_end: bias + s.vaddr + s.memsz,
            offset: s.offset,
            prot: segment_prot(s),
        })
        .collect();
    // Pages assembled at load time.
    let mut copied: Vec<u64> = Vec::new();
    for (i, s) in segs.iter().enumerate() {
        if s.file_end < s.mem_end && s.file_end % PAGE_SIZE != 0 && s.file_end > s.start {
            copied.push(page_down(s.file_end));
        }
        if let Some(next) = segs.get(i + 1) {
            if page_up(s.mem_end) > page_down(next.start) {
                copied.push(page_down(next.start));
            }
        }
    }
    copied.sort_unstable();
    copied.dedup();

    let mut pieces = Vec::new();
    for s in &segs {
        let first = page_down(s.start);
        let file_pages_end = if s.file_end > s.start {
            page_up(s.file_end)
        } else {
            first
        };
        let mut page = first;
        while page < page_up(s.mem_end) {
            if copied.contains(&page) {
                page += PAGE_SIZE;
                continue;
            }
            // A run of pages of one kind, up to the next copied page or change of kind.
            let is_file = page < file_pages_end;
            let kind_end = if is_file {
                file_pages_end
            } else {
                page_up(s.mem_end)
            };
            let run_end = copied
                .iter()
                .copied()
                .find(|&c| c > page && c < kind_end)
                .unwrap_or(kind_end);
            pieces.push(if is_file {
                Piece::File {
                    start: page,
                    end: run_end,
                    offset: page_down(s.offset) + (page - first),
                    prot: s.prot,
                }
            } else {
                Piece::Zero {
                    start: page,
                    end: run_end,
                    prot: s.prot,
                }
            });
            page = run_end;
        }
    }
    for &page in &copied {
        let mut prot = 0;
        let mut parts = Vec::new();
        for s in &segs {
            if page_down(s.start) <= page && page < page_up(s.mem_end) {
                prot |= s.prot;
                let lo = page.max(s.start);
                let hi = (page + PAGE_SIZE).min(s.file_end);
                if lo < hi {
                    parts.push((lo, s.offset + (lo - s.start), hi - lo));
                }
            }
        }
        pieces.push(Piece::Copied { page, prot, parts });
    }
    pieces.sort_by_key(|p| match p {
        Piece::File { start, .. } | Piece::Zero { start, .. } => *start,
        Piece::Copied { page, .. } => *page,
    });
    pieces
}

/// The load bias of a static-pie: its lowest page goes to `ELF_ET_DYN_BASE` plus
/// `random` (page aligned), rounded up to the image's largest segment alignment. `None`
/// if that does not fit below `limit`.
pub fn dyn_bias(elf: &ElfImage, random: u64, limit: u64) -> Option<u64> {
    let (low, high) = elf.load_bias_range();
    let base = ELF_ET_DYN_BASE
        .checked_add(random)?
        .checked_next_multiple_of(elf.max_align())?;
    let end = base.checked_add(high - low)?;
    (end <= limit).then(|| base - low)
}

/// The start of the page holding the lowest segment, once loaded at `bias`.
pub fn lowest_address(elf: &ElfImage, bias: u64) -> u64 {
    bias.wrapping_add(elf.load_bias_range().0)
}

/// The end of the highest segment, where the program break starts (before its random
/// offset).
pub fn image_end(elf: &ElfImage, bias: u64) -> u64 {
    bias + elf.load_bias_range().1
}

/// The auxiliary vector a static program gets (the stack builder adds `AT_RANDOM`,
/// `AT_EXECFN` and `AT_PLATFORM`). `phdr` is where the program headers are mapped;
/// `min_sigstack` the smallest stack a signal frame fits on.
pub fn auxv(
    elf: &ElfImage,
    bias: u64,
    phdr: u64,
    hwcap: u64,
    min_sigstack: u64,
) -> Vec<(u64, u64)> {
    alloc::vec![
        (stack::AT_PHDR, phdr),
        (stack::AT_PHENT, u64::from(elf.phentsize)),
        (stack::AT_PHNUM, u64::from(elf.phnum)),
        (stack::AT_PAGESZ, PAGE_SIZE),
        // No interpreter: a static program (static-pie included) relocates itself.
        (stack::AT_BASE, 0),
        (stack::AT_FLAGS, 0),
        (stack::AT_ENTRY, bias + elf.entry),
        (stack::AT_UID, 0),
        (stack::AT_EUID, 0),
        (stack::AT_GID, 0),
        (stack::AT_EGID, 0),
        (stack::AT_SECURE, 0),
        (stack::AT_CLKTCK, USER_HZ),
        (stack::AT_HWCAP, hwcap),
        // No HWCAP2 features (e.g. FSGSBASE) are enabled for user mode.
        (stack::AT_HWCAP2, 0),
        (stack::AT_MINSIGSTKSZ, min_sigstack),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loader::elf::SegmentFlags;

    const R: u32 = 4;
    const W: u32 = 2;
    const X: u32 = 1;
    const P: u64 = PAGE_SIZE;

    fn seg(vaddr: u64, offset: u64, filesz: u64, memsz: u64, flags: u32) -> LoadSegment {
        LoadSegment {
            vaddr,
            memsz,
            filesz,
            offset,
            flags: SegmentFlags(flags),
            align: P,
        }
    }

    #[test]
    fn typical_static_binary() {
        // The layout of astra's /bin/hello: R, RX, RW with a partial file page, RW bss.
        let segs = [
            seg(0x400000, 0, 0xd5c, 0xd5c, R),
            seg(0x401000, 0x1000, 0x258a, 0x258a, R | X),
            seg(0x404000, 0x4000, 0x40, 0x1000, R | W),
            seg(0x405040, 0x4040, 0, 0x20, R | W),
        ];
        let pieces = plan(&segs, 0);
        let rw = PROT_READ | PROT_WRITE;
        assert_eq!(
            pieces,
            [
                Piece::File {
                    start: 0x400000,
                    end: 0x401000,
                    offset: 0,
                    prot: PROT_READ
                },
                Piece::File {
                    start: 0x401000,
                    end: 0x404000,
                    offset: 0x1000,
                    prot: PROT_READ | PROT_EXEC
                },
                Piece::Copied {
                    page: 0x404000,
                    prot: rw,
                    parts: alloc::vec![(0x404000, 0x4000, 0x40)]
                },
                Piece::Zero {
                    start: 0x405000,
                    end: 0x406000,
                    prot: rw
                },
            ]
        );
    }

    #[test]
    fn shared_page_gets_both_segments() {
        // Text ends mid-page and data starts in the same page, from another file page.
        let segs = [
            seg(0x1000, 0x1000, 0x1800, 0x1800, R | X),
            seg(0x2800, 0x5800, 0x100, 0x3000, R | W),
        ];
        let pieces = plan(&segs, 0x10_0000);
        let b = 0x10_0000;
        assert_eq!(
            pieces,
            [
                Piece::File {
                    start: b + 0x1000,
                    end: b + 0x2000,
                    offset: 0x1000,
                    prot: PROT_READ | PROT_EXEC
                },
                Piece::Copied {
                    page: b + 0x2000,
                    prot: PROT_READ | PROT_WRITE | PROT_EXEC,
                    parts: alloc::vec![(b + 0x2000, 0x2000, 0x800), (b + 0x2800, 0x5800, 0x100)]
                },
                Piece::Zero {
                    start: b + 0x3000,
                    end: b + 0x6000,
                    prot: PROT_READ | PROT_WRITE
                },
            ]
        );
    }

    #[test]
    fn page_aligned_bss_needs_no_copy() {
        let segs = [seg(0x1000, 0x1000, 0x2000, 0x5000, R | W)];
        assert_eq!(
            plan(&segs, 0),
            [
                Piece::File {
                    start: 0x1000,
                    end: 0x3000,
                    offset: 0x1000,
                    prot: PROT_READ | PROT_WRITE
                },
                Piece::Zero {
                    start: 0x3000,
                    end: 0x6000,
                    prot: PROT_READ | PROT_WRITE
                },
            ]
        );
        // A file part ending mid-page with nothing after it maps the whole page.
        let segs = [seg(0x1000, 0x1000, 0x10, 0x10, R)];
        assert_eq!(
            plan(&segs, 0),
            [Piece::File {
                start: 0x1000,
                end: 0x2000,
                offset: 0x1000,
                prot: PROT_READ
            }]
        );
    }

    #[test]
    fn unaligned_segment_start_keeps_file_offsets() {
        // vaddr and offset agree modulo the page size but not with the page start.
        let segs = [seg(0x2040, 0x3040, 0x2000, 0x2000, R)];
        assert_eq!(
            plan(&segs, 0),
            [Piece::File {
                start: 0x2000,
                end: 0x5000,
                offset: 0x3000,
                prot: PROT_READ
            }]
        );
    }

    fn image(is_dyn: bool, segs: &[LoadSegment]) -> ElfImage {
        ElfImage {
            entry: segs[0].vaddr + 0x10,
            is_dyn,
            segments: segs.to_vec(),
            phdr_vaddr: Some(segs[0].vaddr + 64),
            phoff: 64,
            phnum: 9,
            phentsize: 56,
            stack_flags: None,
            tls: None,
        }
    }

    #[test]
    fn static_pie_placement() {
        let mut segs = [
            seg(0, 0, 0x1000, 0x1000, R),
            seg(0x1000, 0x1000, 0x10, 0x10, R | X),
        ];
        segs[1].align = 0x20_0000;
        let elf = image(true, &segs);
        let bias = dyn_bias(&elf, 0x5000, 1 << 47).unwrap();
        assert_eq!(bias % 0x20_0000, 0);
        assert!(bias >= ELF_ET_DYN_BASE + 0x5000);
        assert!(bias < ELF_ET_DYN_BASE + 0x5000 + 0x20_0000);
        assert_eq!(dyn_bias(&elf, 0, ELF_ET_DYN_BASE), None, "does not fit");
        assert_eq!(image_end(&elf, bias), bias + 0x2000);
    }

    #[test]
    fn the_lowest_address_is_the_first_segment_page_after_the_bias() {
        let at_zero = image(false, &[seg(0x10, 0, 0x100, 0x100, R | X)]);
        assert_eq!(lowest_address(&at_zero, 0), 0);
        let usual = image(false, &[seg(0x40_0120, 0x120, 0x100, 0x100, R | X)]);
        assert_eq!(lowest_address(&usual, 0), 0x40_0000);
        let pie = image(true, &[seg(0, 0, 0x100, 0x100, R | X)]);
        assert_eq!(lowest_address(&pie, 0x5555_0000_0000), 0x5555_0000_0000);
    }

    #[test]
    fn auxiliary_vector() {
        let elf = image(true, &[seg(0, 0, 0x1000, 0x1000, R)]);
        let bias = 0x5555_5555_0000;
        let aux = auxv(&elf, bias, bias + 64, 0x178b_fbff, 3400);
        let get = |key| aux.iter().find(|(k, _)| *k == key).map(|(_, v)| *v);
        assert_eq!(get(stack::AT_PHDR), Some(bias + 64));
        assert_eq!(get(stack::AT_PHENT), Some(56));
        assert_eq!(get(stack::AT_PHNUM), Some(9));
        assert_eq!(get(stack::AT_PAGESZ), Some(4096));
        assert_eq!(get(stack::AT_BASE), Some(0));
        assert_eq!(get(stack::AT_ENTRY), Some(bias + 0x10));
        assert_eq!(get(stack::AT_CLKTCK), Some(100));
        assert_eq!(get(stack::AT_HWCAP), Some(0x178b_fbff));
        assert_eq!(get(stack::AT_MINSIGSTKSZ), Some(3400));
        assert_eq!(get(stack::AT_SECURE), Some(0));
        for id in [stack::AT_UID, stack::AT_EUID, stack::AT_GID, stack::AT_EGID] {
            assert_eq!(get(id), Some(0));
        }
        // Keys the stack builder owns are not here (it would refuse them).
        for key in [
            stack::AT_RANDOM,
            stack::AT_EXECFN,
            stack::AT_PLATFORM,
            stack::AT_NULL,
        ] {
            assert_eq!(get(key), None);
        }
        let mut keys: Vec<u64> = aux.iter().map(|(k, _)| *k).collect();
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), aux.len(), "no key twice");
    }
}

//! The boot GDT: null, a 64-bit code segment at selector 0x08 and a data segment at 0x10.

use kvm_bindings::kvm_segment;

/// Selector of the boot code segment.
pub const CODE_SELECTOR: u16 = 0x08;
/// Selector of the boot data segment.
pub const DATA_SELECTOR: u16 = 0x10;

/// Builds a GDT descriptor from its flags (bits 52-55 and 40-47 as one 12-bit value:
/// `G D/B L AVL` then `P DPL S Type`), base and limit.
pub const fn gdt_entry(flags: u16, base: u32, limit: u32) -> u64 {
    ((base as u64 & 0xff00_0000) << (56 - 24))
        | ((flags as u64 & 0x0000_f0ff) << 40)
        | ((limit as u64 & 0x000f_0000) << (48 - 16))
        | ((base as u64 & 0x00ff_ffff) << 16)
        | (limit as u64 & 0x0000_ffff)
}

/// The boot GDT as written to guest memory.
pub const BOOT_GDT: [u64; 3] = [
    0,
    // Present, DPL 0, code, execute/read, accessed; G, L (64-bit).
    gdt_entry(0xa09b, 0, 0xfffff),
    // Present, DPL 0, data, read/write, accessed; G, D/B.
    gdt_entry(0xc093, 0, 0xfffff),
];

fn base(entry: u64) -> u64 {
    ((entry & 0xff00_0000_0000_0000) >> 32)
        | ((entry & 0x0000_00ff_0000_0000) >> 16)
        | ((entry & 0x0000_0000_ffff_0000) >> 16)
}

fn limit(entry: u64) -> u32 {
    let raw = (((entry & 0x000f_0000_0000_0000) >> 32) | (entry & 0x0000_0000_0000_ffff)) as u32;
    // With the granularity bit the limit counts 4 KiB pages.
    if (entry >> 55) & 1 == 1 {
        (raw << 12) | 0xfff
    } else {
        raw
    }
}

/// The KVM segment register state for `entry` loaded with `selector`.
pub fn kvm_segment_from_gdt(entry: u64, selector: u16) -> kvm_segment {
    let bit = |n: u32| ((entry >> n) & 1) as u8;
    kvm_segment {
        base: base(entry),
        limit: limit(entry),
        selector,
        type_: ((entry >> 40) & 0xf) as u8,
        present: bit(47),
        dpl: ((entry >> 45) & 0x3) as u8,
        db: bit(54),
        s: bit(44),
        l: bit(53),
        g: bit(55),
        avl: bit(52),
        padding: 0,
        unusable: u8::from(bit(47) == 0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boot_gdt_encodes_the_usual_descriptors() {
        assert_eq!(BOOT_GDT[0], 0);
        assert_eq!(BOOT_GDT[1], 0x00af_9b00_0000_ffff);
        assert_eq!(BOOT_GDT[2], 0x00cf_9300_0000_ffff);
    }

    #[test]
    fn code_segment_decodes_as_64_bit() {
        let cs = kvm_segment_from_gdt(BOOT_GDT[1], CODE_SELECTOR);
        assert_eq!(cs.selector, 0x08);
        assert_eq!((cs.base, cs.limit), (0, 0xffff_ffff));
        assert_eq!((cs.type_, cs.present, cs.dpl, cs.s), (0xb, 1, 0, 1));
        assert_eq!((cs.l, cs.db, cs.g, cs.unusable), (1, 0, 1, 0));
    }

    #[test]
    fn data_segment_decodes_as_flat_read_write() {
        let ds = kvm_segment_from_gdt(BOOT_GDT[2], DATA_SELECTOR);
        assert_eq!((ds.base, ds.limit), (0, 0xffff_ffff));
        assert_eq!((ds.type_, ds.present, ds.s), (0x3, 1, 1));
        assert_eq!((ds.l, ds.db, ds.g), (0, 1, 1));
    }

    #[test]
    fn base_and_limit_round_trip() {
        let entry = gdt_entry(0x4093, 0x1234_5678, 0xabcde);
        let seg = kvm_segment_from_gdt(entry, 0x18);
        assert_eq!(seg.base, 0x1234_5678);
        assert_eq!(seg.limit, 0xabcde);
        assert_eq!(seg.g, 0);
        assert_eq!(kvm_segment_from_gdt(0, 0).unusable, 1);
    }
}

//! Just enough ELF64 parsing to find the kernel's ABI note, so tests can check it and patch
//! its version (see `hypercall_abi::note`). Independent of the VMM's loader on purpose: a
//! test that shared the loader's parser would share its bugs.

use hypercall_abi::note;

const EHDR_SIZE: usize = 64;
const SHDR_MIN_SIZE: usize = 64;
const PHDR_MIN_SIZE: usize = 56;
const SHT_NOTE: u32 = 7;
const PT_NOTE: u32 = 4;
const NOTE_HEADER_SIZE: usize = 12;

/// Where the ABI note's descriptor is in the file, and what it says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AbiNote {
    /// File offset of the note header (`namesz`, `descsz`, `type`, each a `u32`).
    pub note_offset: usize,
    /// File offset of the 4-byte little-endian version.
    pub version_offset: usize,
    /// The version the note carries.
    pub version: u32,
}

/// Finds the astra ABI note in an ELF64 little-endian file, looking in the `.note.astra`
/// section, any other note section, then the `PT_NOTE` segments.
pub fn find_abi_note(file: &[u8]) -> Result<AbiNote, String> {
    if file.get(..4) != Some(b"\x7fELF".as_slice()) {
        return Err("not an ELF file (bad magic)".into());
    }
    if file.len() < EHDR_SIZE || file[4] != 2 || file[5] != 1 {
        return Err("not a little-endian ELF64 file".into());
    }
    let mut regions = Vec::new();
    regions.extend(note_sections(file)?);
    regions.extend(note_segments(file)?);
    for (offset, size, align) in regions {
        if let Some(found) = scan_notes(file, offset, size, align) {
            return Ok(found);
        }
    }
    Err(format!(
        "no `{}` note of type {:#x} with a 4-byte descriptor",
        String::from_utf8_lossy(&note::NAME[..note::NAME.len() - 1]),
        note::TYPE_ABI_VERSION
    ))
}

/// Overwrites the version in the ABI note of `file`.
pub fn patch_abi_version(file: &mut [u8], version: u32) -> Result<AbiNote, String> {
    let found = find_abi_note(file)?;
    file[found.version_offset..found.version_offset + 4].copy_from_slice(&version.to_le_bytes());
    Ok(found)
}

/// Changes the type of the ABI note in `file`, so that the file no longer carries one.
pub fn hide_abi_note(file: &mut [u8]) -> Result<AbiNote, String> {
    let found = find_abi_note(file)?;
    let type_offset = found.note_offset + 8;
    file[type_offset..type_offset + 4].copy_from_slice(&0x4153_dead_u32.to_le_bytes());
    Ok(found)
}

/// Sets `e_machine` of an ELF file (to make it a foreign-architecture file).
pub fn set_machine(file: &mut [u8], machine: u16) -> Result<(), String> {
    if file.get(..4) != Some(b"\x7fELF".as_slice()) || file.len() < EHDR_SIZE {
        return Err("not an ELF file".into());
    }
    file[18..20].copy_from_slice(&machine.to_le_bytes());
    Ok(())
}

/// (offset, size, alignment) of note sections, `.note.astra` first.
fn note_sections(file: &[u8]) -> Result<Vec<(usize, usize, usize)>, String> {
    let shoff = read_u64(file, 40)? as usize;
    let shentsize = read_u16(file, 58)? as usize;
    let shnum = read_u16(file, 60)? as usize;
    let shstrndx = read_u16(file, 62)? as usize;
    if shoff == 0 || shnum == 0 {
        return Ok(Vec::new());
    }
    if shentsize < SHDR_MIN_SIZE {
        return Err(format!("section header size {shentsize} is too small"));
    }
    let header = |index: usize| shoff.checked_add(index.checked_mul(shentsize)?);
    let strtab = header(shstrndx)
        .map(|h| {
            Ok::<_, String>((
                read_u64(file, h + 24)? as usize,
                read_u64(file, h + 32)? as usize,
            ))
        })
        .transpose()?;
    let mut named = Vec::new();
    let mut others = Vec::new();
    for index in 0..shnum {
        let h = header(index).ok_or("section header table overflows")?;
        if read_u32(file, h + 4)? != SHT_NOTE {
            continue;
        }
        let name_offset = read_u32(file, h)? as usize;
        let region = (
            read_u64(file, h + 24)? as usize,
            read_u64(file, h + 32)? as usize,
            read_u64(file, h + 48)? as usize,
        );
        let name = strtab.and_then(|(off, size)| c_str(file, off, size, name_offset));
        if name == Some(note::SECTION.as_bytes()) {
            named.push(region);
        } else {
            others.push(region);
        }
    }
    named.extend(others);
    Ok(named)
}

/// (offset, size, alignment) of `PT_NOTE` segments.
fn note_segments(file: &[u8]) -> Result<Vec<(usize, usize, usize)>, String> {
    let phoff = read_u64(file, 32)? as usize;
    let phentsize = read_u16(file, 54)? as usize;
    let phnum = read_u16(file, 56)? as usize;
    if phoff == 0 || phnum == 0 {
        return Ok(Vec::new());
    }
    if phentsize < PHDR_MIN_SIZE {
        return Err(format!("program header size {phentsize} is too small"));
    }
    let mut out = Vec::new();
    for index in 0..phnum {
        let h = phoff
            .checked_add(index * phentsize)
            .ok_or("program header table overflows")?;
        if read_u32(file, h)? == PT_NOTE {
            out.push((
                read_u64(file, h + 8)? as usize,
                read_u64(file, h + 32)? as usize,
                read_u64(file, h + 48)? as usize,
            ));
        }
    }
    Ok(out)
}

fn scan_notes(file: &[u8], offset: usize, size: usize, align: usize) -> Option<AbiNote> {
    // Notes pad name and descriptor to 8 bytes in 8-aligned regions, to 4 otherwise.
    let pad = if align == 8 { 8 } else { 4 };
    let end = offset.checked_add(size)?.min(file.len());
    let mut at = offset;
    while at.checked_add(NOTE_HEADER_SIZE)? <= end {
        let namesz = read_u32(file, at).ok()? as usize;
        let descsz = read_u32(file, at + 4).ok()? as usize;
        let kind = read_u32(file, at + 8).ok()?;
        let name_at = at + NOTE_HEADER_SIZE;
        let desc_at = name_at.checked_add(namesz.checked_next_multiple_of(pad)?)?;
        let next = desc_at.checked_add(descsz.checked_next_multiple_of(pad)?)?;
        if desc_at.checked_add(descsz)? > end {
            return None;
        }
        if kind == note::TYPE_ABI_VERSION
            && &file[name_at..name_at + namesz] == note::NAME.as_slice()
            && descsz == 4
        {
            return Some(AbiNote {
                note_offset: at,
                version_offset: desc_at,
                version: read_u32(file, desc_at).ok()?,
            });
        }
        at = next;
    }
    None
}

fn c_str(file: &[u8], table: usize, table_size: usize, offset: usize) -> Option<&[u8]> {
    let start = table.checked_add(offset)?;
    let end = table.checked_add(table_size)?.min(file.len());
    let bytes = file.get(start..end)?;
    let len = bytes.iter().position(|&b| b == 0)?;
    Some(&bytes[..len])
}

fn read_bytes<const N: usize>(file: &[u8], at: usize) -> Result<[u8; N], String> {
    at.checked_add(N)
        .and_then(|end| file.get(at..end))
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| format!("truncated ELF: {N} bytes at offset {at:#x} are past the end"))
}

fn read_u16(file: &[u8], at: usize) -> Result<u16, String> {
    read_bytes(file, at).map(u16::from_le_bytes)
}

fn read_u32(file: &[u8], at: usize) -> Result<u32, String> {
    read_bytes(file, at).map(u32::from_le_bytes)
}

fn read_u64(file: &[u8], at: usize) -> Result<u64, String> {
    read_bytes(file, at).map(u64::from_le_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hypercall_abi::ABI_VERSION;

    fn note_bytes(name: &[u8], kind: u32, desc: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend((name.len() as u32).to_le_bytes());
        out.extend((desc.len() as u32).to_le_bytes());
        out.extend(kind.to_le_bytes());
        out.extend(name);
        out.resize(out.len().next_multiple_of(4), 0);
        out.extend(desc);
        out.resize(out.len().next_multiple_of(4), 0);
        out
    }

    /// An ELF64 with one PT_NOTE segment holding `notes` and, if `with_sections`, section
    /// headers naming it `section_name`.
    fn elf(notes: &[u8], with_sections: bool, section_name: &str) -> Vec<u8> {
        let phoff = 64usize;
        let notes_at = phoff + 56;
        let mut file = vec![0u8; notes_at];
        file[..4].copy_from_slice(b"\x7fELF");
        file[4] = 2;
        file[5] = 1;
        file[18..20].copy_from_slice(&62u16.to_le_bytes());
        file[32..40].copy_from_slice(&(phoff as u64).to_le_bytes());
        file[54..56].copy_from_slice(&56u16.to_le_bytes());
        file[56..58].copy_from_slice(&1u16.to_le_bytes());
        file[phoff..phoff + 4].copy_from_slice(&PT_NOTE.to_le_bytes());
        file[phoff + 8..phoff + 16].copy_from_slice(&(notes_at as u64).to_le_bytes());
        file[phoff + 32..phoff + 40].copy_from_slice(&(notes.len() as u64).to_le_bytes());
        file[phoff + 48..phoff + 56].copy_from_slice(&4u64.to_le_bytes());
        file.extend(notes);
        if with_sections {
            let strtab_at = file.len();
            let strtab = format!("\0{section_name}\0.shstrtab\0");
            file.extend(strtab.as_bytes());
            file.resize(file.len().next_multiple_of(8), 0);
            let shoff = file.len();
            let mut shdr = |name: u32, kind: u32, off: usize, size: usize| {
                let mut h = [0u8; 64];
                h[..4].copy_from_slice(&name.to_le_bytes());
                h[4..8].copy_from_slice(&kind.to_le_bytes());
                h[24..32].copy_from_slice(&(off as u64).to_le_bytes());
                h[32..40].copy_from_slice(&(size as u64).to_le_bytes());
                h[48..56].copy_from_slice(&4u64.to_le_bytes());
                file.extend(h);
            };
            shdr(0, 0, 0, 0);
            shdr(1, SHT_NOTE, notes_at, notes.len());
            shdr(2 + section_name.len() as u32, 3, strtab_at, strtab.len());
            file[40..48].copy_from_slice(&(shoff as u64).to_le_bytes());
            file[58..60].copy_from_slice(&64u16.to_le_bytes());
            file[60..62].copy_from_slice(&3u16.to_le_bytes());
            file[62..64].copy_from_slice(&2u16.to_le_bytes());
        }
        file
    }

    fn astra_note(version: u32) -> Vec<u8> {
        note_bytes(note::NAME, note::TYPE_ABI_VERSION, &version.to_le_bytes())
    }

    #[test]
    fn finds_the_note_through_sections_and_through_segments() {
        let mut notes = note_bytes(b"GNU\0", 3, &[1, 2, 3, 4, 5, 6, 7, 8]);
        notes.extend(astra_note(ABI_VERSION));
        for with_sections in [true, false] {
            let file = elf(&notes, with_sections, ".note.astra");
            let found = find_abi_note(&file).unwrap();
            assert_eq!(found.version, ABI_VERSION);
            assert_eq!(found.note_offset, 120 + 24);
            assert_eq!(found.version_offset, 120 + 24 + 20);
        }
    }

    #[test]
    fn patching_changes_only_the_version() {
        let mut file = elf(&astra_note(ABI_VERSION), true, ".note.astra");
        let before = file.clone();
        let found = patch_abi_version(&mut file, 999).unwrap();
        assert_eq!(find_abi_note(&file).unwrap().version, 999);
        let changed: Vec<usize> = (0..file.len()).filter(|&i| file[i] != before[i]).collect();
        assert!(changed
            .iter()
            .all(|&i| (found.version_offset..found.version_offset + 4).contains(&i)));
    }

    #[test]
    fn a_hidden_note_is_no_longer_found() {
        let mut file = elf(&astra_note(ABI_VERSION), true, ".note.astra");
        hide_abi_note(&mut file).unwrap();
        assert!(find_abi_note(&file).is_err());
        set_machine(&mut file, 183).unwrap();
        assert_eq!(&file[18..20], &183u16.to_le_bytes());
        assert!(set_machine(&mut [0u8; 8], 183).is_err());
    }

    #[test]
    fn rejects_files_without_the_note() {
        let other = note_bytes(b"astra\0", 0x1234, &1u32.to_le_bytes());
        let err = find_abi_note(&elf(&other, true, ".note.gnu")).unwrap_err();
        assert!(err.contains("no `astra` note"), "{err}");
        let wrong_size = note_bytes(note::NAME, note::TYPE_ABI_VERSION, &[1, 0]);
        assert!(find_abi_note(&elf(&wrong_size, false, "")).is_err());
        assert!(find_abi_note(b"junk junk junk")
            .unwrap_err()
            .contains("not an ELF"));
        assert!(find_abi_note(b"\x7fELF\x01\x01").is_err());
    }

    #[test]
    fn truncated_notes_do_not_panic() {
        let mut file = elf(&astra_note(ABI_VERSION), false, "");
        // Claim a huge descriptor: the scan must stop at the end of the file.
        file[120 + 4..120 + 8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(find_abi_note(&file).is_err());
        for len in 0..file.len() {
            let _ = find_abi_note(&file[..len]);
        }
    }
}

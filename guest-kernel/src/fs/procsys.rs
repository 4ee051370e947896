//! The parts of `/proc` that describe the machine rather than a process: the read-only
//! `/proc/sys` tree programs probe (jemalloc reads `vm/overcommit_memory`, std and tools
//! read `kernel/osrelease`, `kernel/random/boot_id`, `fs/pipe-max-size`...), `cpuinfo`
//! from CPUID, `filesystems` and `version`, and the `fdinfo/N` text of an open file.
//!
//! `/proc/sys` is a fixed table ([`DIRS`], [`FILES`]): astra has no tunables, so every file
//! reads its value and refuses writes (`EACCES`, as for a non-root writer on Linux; the
//! modes say `0444`).

use alloc::string::String;

use crate::syscall::info::uts;

/// The directories of `/proc/sys`, by path below it ("" is `/proc/sys` itself).
pub const DIRS: [&str; 5] = ["", "fs", "kernel", "kernel/random", "vm"];

/// A file of `/proc/sys`: its directory (index into [`DIRS`]), its name, its text.
pub struct SysFile {
    /// Index into [`DIRS`].
    pub dir: usize,
    /// The file's name.
    pub name: &'static str,
    /// Makes its text (each read).
    pub text: fn() -> String,
}

fn line(value: impl core::fmt::Display) -> String {
    alloc::format!("{value}\n")
}

/// A random version-4 UUID in its text form (`kernel/random/uuid`, and `boot_id` once).
fn uuid() -> String {
    let mut b = [0u8; 16];
    for chunk in b.chunks_mut(8) {
        chunk.copy_from_slice(&crate::random::next_u64().to_le_bytes()[..chunk.len()]);
    }
    format_uuid(b)
}

/// `b` as a version-4, variant-1 UUID.
pub fn format_uuid(mut b: [u8; 16]) -> String {
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex = |r: core::ops::Range<usize>| {
        b[r].iter()
            .map(|x| alloc::format!("{x:02x}"))
            .collect::<String>()
    };
    alloc::format!(
        "{}-{}-{}-{}-{}\n",
        hex(0..4),
        hex(4..6),
        hex(6..8),
        hex(8..10),
        hex(10..16)
    )
}

fn boot_id() -> String {
    static ID: spin::Once<String> = spin::Once::new();
    ID.call_once(uuid).clone()
}

/// The files of `/proc/sys`, each directory's in name order.
pub const FILES: [SysFile; 20] = [
    SysFile {
        dir: 1,
        name: "file-max",
        text: || line(crate::fs::fd::NOFILE * crate::task::sched::max_tasks() as u64),
    },
    SysFile {
        dir: 1,
        name: "nr_open",
        text: || line(crate::fs::fd::NOFILE),
    },
    SysFile {
        dir: 1,
        name: "pipe-max-size",
        text: || line(crate::fs::pipe::PIPE_MAX_SIZE),
    },
    SysFile {
        dir: 2,
        name: "cap_last_cap",
        text: || line(40),
    },
    SysFile {
        dir: 2,
        name: "domainname",
        text: || line(uts::DOMAINNAME),
    },
    SysFile {
        dir: 2,
        name: "hostname",
        text: || line(uts::NODENAME),
    },
    SysFile {
        dir: 2,
        name: "ngroups_max",
        text: || line(65536),
    },
    SysFile {
        dir: 2,
        name: "osrelease",
        text: || line(uts::RELEASE),
    },
    SysFile {
        dir: 2,
        name: "ostype",
        text: || line(uts::SYSNAME),
    },
    SysFile {
        dir: 2,
        name: "overflowgid",
        text: || line(65534),
    },
    SysFile {
        dir: 2,
        name: "overflowuid",
        text: || line(65534),
    },
    SysFile {
        dir: 2,
        name: "pid_max",
        text: || line(4_194_304),
    },
    SysFile {
        dir: 2,
        name: "threads-max",
        text: || line(crate::task::sched::max_tasks()),
    },
    SysFile {
        dir: 2,
        name: "version",
        text: || line(uts::VERSION),
    },
    SysFile {
        dir: 3,
        name: "boot_id",
        text: boot_id,
    },
    SysFile {
        dir: 3,
        name: "entropy_avail",
        text: || line(256),
    },
    SysFile {
        dir: 3,
        name: "uuid",
        text: uuid,
    },
    // astra reserves address space without backing it until touched (Linux's heuristic
    // mode 0 behaves the same for programs that probe it).
    SysFile {
        dir: 4,
        name: "max_map_count",
        text: || line(crate::mm::vma::MAX_MAP_COUNT),
    },
    SysFile {
        dir: 4,
        name: "overcommit_memory",
        text: || line(0),
    },
    SysFile {
        dir: 4,
        name: "overcommit_ratio",
        text: || line(50),
    },
];

/// The directory called `name` in directory `dir`.
pub fn subdir(dir: usize, name: &str) -> Option<usize> {
    let parent = DIRS.get(dir)?;
    DIRS.iter().position(|d| match d.rsplit_once('/') {
        Some((p, n)) => p == *parent && n == name,
        None => parent.is_empty() && !d.is_empty() && *d == name,
    })
}

/// The file called `name` in directory `dir`.
pub fn file(dir: usize, name: &str) -> Option<usize> {
    FILES.iter().position(|f| f.dir == dir && f.name == name)
}

/// The directories directly in `dir`, with their names.
pub fn subdirs(dir: usize) -> impl Iterator<Item = (usize, &'static str)> {
    (0..DIRS.len()).filter_map(move |i| {
        let name = DIRS[i].rsplit('/').next()?;
        (i != 0 && subdir(dir, name) == Some(i)).then_some((i, name))
    })
}

/// `/proc/filesystems`: the file system types astra has, as Linux lists them (`nodev`
/// for those without a block device).
pub fn filesystems() -> String {
    [
        "sysfs", "tmpfs", "proc", "devtmpfs", "pipefs", "overlay", "tarfs", "hostfs",
    ]
    .iter()
    .map(|t| alloc::format!("nodev\t{t}\n"))
    .collect()
}

/// `/proc/version`.
pub fn version() -> String {
    alloc::format!(
        "{} version {} (astra) {}\n",
        uts::SYSNAME,
        uts::RELEASE,
        uts::VERSION
    )
}

/// The text of `/proc/[pid]/fdinfo/N`: offset, status flags in octal (with `O_CLOEXEC`
/// when the descriptor has it, as Linux shows it), mount id and inode number.
pub fn format_fdinfo(pos: u64, flags: u32, cloexec: bool, mnt_id: u64, ino: u64) -> String {
    let flags = flags | if cloexec { 0o2_000_000 } else { 0 };
    alloc::format!("pos:\t{pos}\nflags:\t0{flags:o}\nmnt_id:\t{mnt_id}\nino:\t{ino}\n")
}

/// What CPUID says, as `/proc/cpuinfo` needs it.
#[derive(Clone, Debug, Default)]
pub struct CpuId {
    /// Leaf 0: the vendor string.
    pub vendor: String,
    /// Leaves 0x80000002-4: the brand string.
    pub brand: String,
    /// Leaf 1 EAX: family, model, stepping.
    pub signature: u32,
    /// Leaf 1 EDX and ECX, leaf 7 EBX, ECX and EDX, leaf 0x80000001 EDX and ECX.
    pub features: [u32; 7],
    /// Leaf 0x80000008 EAX: address sizes.
    pub address_sizes: u32,
    /// Leaf 0x80000006 ECX bits 31-16: L2 size in KiB.
    pub cache_kb: u32,
}

/// Linux's names of CPUID feature bits, per word of [`CpuId::features`] (a name per bit,
/// "" for the bits Linux does not show).
const FLAG_NAMES: [[&str; 32]; 7] = [
    [
        "fpu", "vme", "de", "pse", "tsc", "msr", "pae", "mce", "cx8", "apic", "", "sep", "mtrr",
        "pge", "mca", "cmov", "pat", "pse36", "pn", "clflush", "", "dts", "acpi", "mmx", "fxsr",
        "sse", "sse2", "ss", "ht", "tm", "ia64", "pbe",
    ],
    [
        "pni",
        "pclmulqdq",
        "dtes64",
        "monitor",
        "ds_cpl",
        "vmx",
        "smx",
        "est",
        "tm2",
        "ssse3",
        "cid",
        "sdbg",
        "fma",
        "cx16",
        "xtpr",
        "pdcm",
        "",
        "pcid",
        "dca",
        "sse4_1",
        "sse4_2",
        "x2apic",
        "movbe",
        "popcnt",
        "tsc_deadline_timer",
        "aes",
        "xsave",
        "",
        "avx",
        "f16c",
        "rdrand",
        "hypervisor",
    ],
    [
        "fsgsbase",
        "tsc_adjust",
        "sgx",
        "bmi1",
        "hle",
        "avx2",
        "",
        "smep",
        "bmi2",
        "erms",
        "invpcid",
        "rtm",
        "cqm",
        "",
        "mpx",
        "rdt_a",
        "avx512f",
        "avx512dq",
        "rdseed",
        "adx",
        "smap",
        "avx512ifma",
        "",
        "clflushopt",
        "clwb",
        "intel_pt",
        "avx512pf",
        "avx512er",
        "avx512cd",
        "sha_ni",
        "avx512bw",
        "avx512vl",
    ],
    [
        "",
        "avx512vbmi",
        "umip",
        "pku",
        "ospke",
        "waitpkg",
        "avx512_vbmi2",
        "",
        "gfni",
        "vaes",
        "vpclmulqdq",
        "avx512_vnni",
        "avx512_bitalg",
        "tme",
        "avx512_vpopcntdq",
        "",
        "la57",
        "",
        "",
        "",
        "",
        "",
        "rdpid",
        "",
        "",
        "cldemote",
        "",
        "movdiri",
        "movdir64b",
        "enqcmd",
        "sgx_lc",
        "",
    ],
    [
        "",
        "",
        "avx512_4vnniw",
        "avx512_4fmaps",
        "fsrm",
        "",
        "",
        "",
        "avx512_vp2intersect",
        "",
        "md_clear",
        "",
        "",
        "",
        "serialize",
        "",
        "tsxldtrk",
        "",
        "pconfig",
        "",
        "",
        "",
        "amx_bf16",
        "avx512_fp16",
        "amx_tile",
        "amx_int8",
        "",
        "",
        "",
        "",
        "",
        "",
    ],
    [
        "", "", "", "", "", "", "", "", "", "", "", "syscall", "", "", "", "", "", "", "", "mp",
        "nx", "", "mmxext", "", "", "fxsr_opt", "pdpe1gb", "rdtscp", "", "lm", "3dnowext", "3dnow",
    ],
    [
        "lahf_lm",
        "cmp_legacy",
        "svm",
        "extapic",
        "cr8_legacy",
        "abm",
        "sse4a",
        "misalignsse",
        "3dnowprefetch",
        "osvw",
        "ibs",
        "xop",
        "skinit",
        "wdt",
        "",
        "lwp",
        "fma4",
        "tce",
        "",
        "nodeid_msr",
        "",
        "tbm",
        "topoext",
        "perfctr_core",
        "perfctr_nb",
        "",
        "bpext",
        "ptsc",
        "perfctr_llc",
        "mwaitx",
        "",
        "",
    ],
];

/// `/proc/cpuinfo` for `cpus` processors described by `id`, at `mhz` MHz, in Linux's
/// format (the fields `lscpu`, `nproc`-like tools and runtimes read).
pub fn format_cpuinfo(id: &CpuId, cpus: u32, mhz: u64) -> String {
    let sig = id.signature;
    let base_family = (sig >> 8) & 0xf;
    let family = if base_family == 0xf {
        base_family + ((sig >> 20) & 0xff)
    } else {
        base_family
    };
    let model = if base_family == 0x6 || base_family == 0xf {
        ((sig >> 4) & 0xf) | ((sig >> 16) & 0xf) << 4
    } else {
        (sig >> 4) & 0xf
    };
    let mut flags: alloc::vec::Vec<&str> = alloc::vec::Vec::new();
    for (word, names) in id.features.iter().zip(FLAG_NAMES.iter()) {
        for (bit, name) in names.iter().enumerate() {
            if !name.is_empty() && word & (1 << bit) != 0 {
                flags.push(name);
            }
        }
    }
    let flags = flags.join(" ");
    let mut out = String::new();
    for cpu in 0..cpus {
        out += &alloc::format!(
            "processor\t: {cpu}\nvendor_id\t: {}\ncpu family\t: {family}\nmodel\t\t: {model}\n\
             model name\t: {}\nstepping\t: {}\ncpu MHz\t\t: {mhz}.000\ncache size\t: {} KB\n\
             physical id\t: 0\nsiblings\t: {cpus}\ncore id\t\t: {cpu}\ncpu cores\t: {cpus}\n\
             apicid\t\t: {cpu}\nfpu\t\t: yes\nfpu_exception\t: yes\ncpuid level\t: 13\nwp\t\t: yes\n\
             flags\t\t: {flags}\nbogomips\t: {}.00\nclflush size\t: 64\ncache_alignment\t: 64\n\
             address sizes\t: {} bits physical, {} bits virtual\npower management:\n\n",
            id.vendor,
            id.brand.trim(),
            sig & 0xf,
            id.cache_kb,
            mhz * 2,
            id.address_sizes & 0xff,
            (id.address_sizes >> 8) & 0xff,
        );
    }
    out
}

/// This machine's [`CpuId`], asked once (CPUID traps on PVM).
pub fn cpuid() -> &'static CpuId {
    use crate::arch::cpu::cpuid as ask;
    static ID: spin::Once<CpuId> = spin::Once::new();
    ID.call_once(|| {
        let text = |regs: &[u32]| -> String {
            let bytes: alloc::vec::Vec<u8> = regs.iter().flat_map(|r| r.to_le_bytes()).collect();
            String::from_utf8_lossy(&bytes)
                .trim_end_matches('\0')
                .into()
        };
        let l0 = ask(0, 0);
        let max = l0[0];
        let ext_max = ask(0x8000_0000, 0)[0];
        let l1 = ask(1, 0);
        let l7 = if max >= 7 { ask(7, 0) } else { [0; 4] };
        let e1 = if ext_max >= 0x8000_0001 {
            ask(0x8000_0001, 0)
        } else {
            [0; 4]
        };
        let brand = if ext_max >= 0x8000_0004 {
            let regs: alloc::vec::Vec<u32> = (0x8000_0002..=0x8000_0004u32)
                .flat_map(|leaf| ask(leaf, 0))
                .collect();
            text(&regs)
        } else {
            String::new()
        };
        CpuId {
            vendor: text(&[l0[1], l0[3], l0[2]]),
            brand,
            signature: l1[0],
            features: [l1[3], l1[2], l7[1], l7[2], l7[3], e1[3], e1[2]],
            address_sizes: if ext_max >= 0x8000_0008 {
                ask(0x8000_0008, 0)[0]
            } else {
                0x3028
            },
            cache_kb: if ext_max >= 0x8000_0006 {
                ask(0x8000_0006, 0)[2] >> 16
            } else {
                0
            },
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sys_tree_resolves_by_name_and_lists_each_directory() {
        assert_eq!(subdir(0, "kernel"), Some(2));
        assert_eq!(subdir(2, "random"), Some(3));
        assert_eq!(subdir(0, "random"), None);
        assert_eq!(subdir(2, "kernel"), None);
        let top: alloc::vec::Vec<_> = subdirs(0).map(|(_, n)| n).collect();
        assert_eq!(top, ["fs", "kernel", "vm"]);
        let kernel: alloc::vec::Vec<_> = subdirs(2).map(|(_, n)| n).collect();
        assert_eq!(kernel, ["random"]);
        assert_eq!(
            file(2, "ostype").map(|i| (FILES[i].text)()),
            Some(String::from("Linux\n"))
        );
        assert_eq!(
            file(4, "overcommit_memory").map(|i| (FILES[i].text)()),
            Some(String::from("0\n"))
        );
        assert_eq!(file(2, "nosuch"), None);
        // Every file's directory exists; names are unique and sorted within a directory.
        for pair in FILES.windows(2) {
            assert!(
                pair[0].dir < pair[1].dir
                    || (pair[0].dir == pair[1].dir && pair[0].name < pair[1].name)
            );
        }
        assert!(FILES.iter().all(|f| f.dir < DIRS.len()));
    }

    #[test]
    fn uuids_are_version_4_and_fdinfo_is_linux_text() {
        let u = format_uuid([0xff; 16]);
        assert_eq!(u, "ffffffff-ffff-4fff-bfff-ffffffffffff\n");
        assert_eq!(
            format_fdinfo(12, 0o2, true, 25, 7),
            "pos:\t12\nflags:\t02000002\nmnt_id:\t25\nino:\t7\n"
        );
        assert_eq!(
            format_fdinfo(0, 0o100000, false, 1, 2).lines().nth(1),
            Some("flags:\t0100000")
        );
    }

    #[test]
    fn cpuinfo_decodes_the_signature_and_names_flags() {
        let id = CpuId {
            vendor: String::from("AuthenticAMD"),
            brand: String::from("AMD EPYC 7B13 64-Core Processor  "),
            // Family 0xf + 0xa = 25, model 0x01 with extended 0x0 -> 1, stepping 1.
            signature: 0x00a0_0f11,
            features: [1 | (1 << 25), 1 << 28, 1 << 5, 0, 0, 1 << 29, 0],
            address_sizes: 0x3030,
            cache_kb: 512,
        };
        let text = format_cpuinfo(&id, 2, 2300);
        assert!(text.contains("vendor_id\t: AuthenticAMD\n"));
        assert!(text.contains("cpu family\t: 25\nmodel\t\t: 1\nmodel name\t: AMD EPYC 7B13 64-Core Processor\nstepping\t: 1\n"));
        assert!(text.contains("flags\t\t: fpu sse avx avx2 lm\n"));
        assert!(text.contains("cpu MHz\t\t: 2300.000\n"));
        assert!(text.contains("address sizes\t: 48 bits physical, 48 bits virtual\n"));
        assert_eq!(text.matches("processor\t:").count(), 2);
        assert!(text.contains("processor\t: 1\n"));
    }
}

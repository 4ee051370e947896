//! `badptr`: hands the kernel bad user pointers through both system call entries and checks
//! that each call fails with `-EFAULT` (and that the process and kernel live on):
//! `write(1, addr, 10)` and `read(fd, addr, 10)` for an unmapped address and a kernel one,
//! through the `syscall` instruction and through `int 0x80`.
//!
//! `int 0x80` takes the x86-64 ABI on astra and the i386 ABI on Linux; the program finds out
//! which (see `sys::int80_abi`) so it tests the same thing on both. Under the i386 ABI
//! pointers are 32 bits, so the "kernel" address there is the unmapped top page below 4 GiB.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::process::ExitCode;

use astra_std_apps::checks::{CheckResult, Checks};
use astra_std_apps::sys::{self, Int80Abi};

/// Never mapped: page 0.
const UNMAPPED: usize = 0x1;
/// The top 2 GiB, where Linux and astra both put the kernel image.
const KERNEL: usize = 0xffff_ffff_8000_0000;
/// For 32-bit pointers: the last page below 4 GiB, unmapped in a 64-bit process.
const HIGH_32: u32 = 0xffff_f000;
/// Bytes each call asks for.
const LEN: usize = 10;

/// Which entry makes the call.
#[derive(Clone, Copy)]
enum Entry {
    Syscall,
    Int80(Int80Abi),
}

impl Entry {
    /// `read` (`write == false`) or `write` of `LEN` bytes at `addr` on `fd`.
    fn call(self, write: bool, fd: i32, addr: usize) -> isize {
        let fd = fd as usize;
        // SAFETY: every address passed here is one no Rust object lives at (unmapped or
        // kernel memory): the kernel must refuse it with EFAULT, which is what is tested.
        unsafe {
            match self {
                Entry::Syscall => {
                    let nr = if write { sys::nr::WRITE } else { sys::nr::READ };
                    sys::syscall3(nr, fd, addr, LEN)
                }
                Entry::Int80(Int80Abi::X86_64) => {
                    let nr = if write { sys::nr::WRITE } else { sys::nr::READ };
                    sys::int80_x86_64_3(nr, fd, addr, LEN)
                }
                Entry::Int80(Int80Abi::I386) => {
                    let nr = if write {
                        sys::nr_i386::WRITE
                    } else {
                        sys::nr_i386::READ
                    };
                    sys::int80_i386_3(nr, fd as u32, addr as u32, LEN as u32)
                }
            }
        }
    }

    fn bad_addresses(self) -> [(&'static str, usize); 2] {
        match self {
            Entry::Int80(Int80Abi::I386) => [("unmapped", UNMAPPED), ("high", HIGH_32 as usize)],
            _ => [("unmapped", UNMAPPED), ("kernel", KERNEL)],
        }
    }
}

fn expect_efault(what: &str, ret: isize) -> CheckResult {
    if ret == -sys::EFAULT {
        Ok(format!("{what} = -EFAULT"))
    } else {
        Err(format!("{what} returned {ret}, expected -14 (EFAULT)"))
    }
}

fn main() -> ExitCode {
    let abi = sys::int80_abi();
    println!("badptr: int 0x80 takes the {abi:?} ABI here");
    // read() needs a descriptor with data behind it, or it would return 0 (or block)
    // before touching the buffer: the program's own file.
    let argv0 = std::env::args().next().unwrap_or_default();
    let file = match File::open(&argv0) {
        Ok(file) => file,
        Err(e) => {
            eprintln!("badptr: cannot open my own file {argv0:?} to read from: {e}");
            return ExitCode::FAILURE;
        }
    };
    let fd = file.as_raw_fd();
    let mut checks = Checks::stdout("badptr");
    for (entry_name, entry) in [("syscall", Entry::Syscall), ("int80", Entry::Int80(abi))] {
        for (addr_name, addr) in entry.bad_addresses() {
            checks.run(&format!("{entry_name}_write_{addr_name}"), || {
                expect_efault(
                    &format!("write(1, {addr:#x}, {LEN})"),
                    entry.call(true, 1, addr),
                )
            });
            checks.run(&format!("{entry_name}_read_{addr_name}"), || {
                expect_efault(
                    &format!("read({fd}, {addr:#x}, {LEN})"),
                    entry.call(false, fd, addr),
                )
            });
        }
    }
    // The descriptor still works after the refused reads.
    checks.run("read_after_efault", || {
        let mut magic = [0u8; 4];
        std::io::Read::read_exact(&mut &file, &mut magic).map_err(|e| format!("read: {e}"))?;
        if &magic == b"\x7fELF" {
            Ok("ELF magic".into())
        } else {
            Err(format!("read {magic:?} from the start of my own file"))
        }
    });
    checks.finish()
}

//! `fault`: writes to address 0 on purpose; the kernel must kill it with SIGSEGV (status 139).
//! `fault int3` executes `int3` instead: SIGTRAP (status 133), as on Linux.
#![no_std]
#![no_main]

use guest_std::{entry, eprintln, println};

entry!(main);

/// The address written to: page 0 is never mapped in an astra process.
const FAULT_ADDR: usize = 0;

fn main(mut args: guest_std::env::Args) -> i32 {
    if args.nth(1) == Some(b"int3".as_slice()) {
        println!("fault: int3");
        // SAFETY: `int3` only raises #BP; the kernel turns it into SIGTRAP and ends us.
        unsafe { core::arch::asm!("int3") };
        eprintln!("fault: int3 did not trap");
        return 1;
    }
    println!("fault: writing to address {FAULT_ADDR:#x}");
    let ptr = core::hint::black_box(FAULT_ADDR as *mut u64);
    // SAFETY: not safe, on purpose: this program exists to make a user-mode page fault. The
    // volatile write keeps the compiler from deleting it; `black_box` hides that it is null.
    unsafe { ptr.write_volatile(0xdead_beef) };
    eprintln!("fault: the write to {FAULT_ADDR:#x} did not fault");
    1
}

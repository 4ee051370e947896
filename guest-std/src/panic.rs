//! The panic handler: report where and why on standard error, then exit with status 101
//! (what a panicking std program exits with).

use core::panic::PanicInfo;

use crate::errno::Errno;
use crate::io::{self, Buffered};
use crate::syscall::fd;

/// Exit status of a process that panicked.
const PANIC_EXIT_STATUS: i32 = 101;

#[panic_handler]
fn panic(info: &PanicInfo<'_>) -> ! {
    // Errors are ignored: stderr is the last resort, and panicking here would recurse.
    let mut out =
        Buffered::new(|bytes: &[u8]| -> Result<(), Errno> { io::write_all(fd::STDERR, bytes) });
    let _ = match info.location() {
        Some(loc) => core::fmt::Write::write_fmt(
            &mut out,
            format_args!(
                "panicked at {}:{}: {}\n",
                loc.file(),
                loc.line(),
                info.message()
            ),
        ),
        None => {
            core::fmt::Write::write_fmt(&mut out, format_args!("panicked: {}\n", info.message()))
        }
    };
    let _ = out.flush();
    crate::process::exit(PANIC_EXIT_STATUS)
}

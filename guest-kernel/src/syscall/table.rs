//! THE system call table: Linux x86-64 number → name, argument shapes, handler.

use super::strace::Arg::{self, *};
use super::{io, mem, mremap, proc, Ctx, SysResult};

/// A system call handler.
pub type Handler = fn(&mut Ctx<'_>, [u64; 6]) -> SysResult;

/// One row of the table.
pub struct Entry {
    /// Linux name.
    pub name: &'static str,
    /// How `--strace` shows each argument.
    pub args: &'static [Arg],
    /// The implementation.
    pub handler: Handler,
}

macro_rules! syscall_table {
    ($($nr:literal => $name:ident($($arg:expr),*) = $handler:path;)*) => {
        /// The entry for system call `nr`, if astra implements it.
        pub fn lookup(nr: u64) -> Option<Entry> {
            match nr {
                $($nr => Some(Entry { name: stringify!($name), args: &[$($arg),*], handler: $handler }),)*
                _ => None,
            }
        }

        /// The name of every implemented system call with its number.
        #[allow(dead_code)]
        pub const IMPLEMENTED: &[(u64, &str)] = &[$(($nr, stringify!($name))),*];
    };
}

syscall_table! {
    1 => write(Fd, Buf(2), Int) = io::write;
    9 => mmap(Ptr, UInt, Prot, MapFlags, Fd, Ptr) = mem::mmap;
    10 => mprotect(Ptr, UInt, Prot) = mem::mprotect;
    11 => munmap(Ptr, UInt) = mem::munmap;
    12 => brk(Ptr) = mem::brk;
    20 => writev(Fd, Ptr, Int) = io::writev;
    25 => mremap(Ptr, UInt, UInt, Ptr, Ptr) = mremap::mremap;
    26 => msync(Ptr, UInt, Int) = mem::msync;
    27 => mincore(Ptr, UInt, Ptr) = mem::mincore;
    28 => madvise(Ptr, UInt, Advice) = mem::madvise;
    39 => getpid() = proc::getpid;
    60 => exit(Int) = proc::exit;
    231 => exit_group(Int) = proc::exit_group;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_names_are_unique() {
        for (i, (nr, name)) in IMPLEMENTED.iter().enumerate() {
            for (nr2, name2) in &IMPLEMENTED[i + 1..] {
                assert_ne!(nr, nr2);
                assert_ne!(name, name2);
            }
            assert_eq!(lookup(*nr).map(|e| e.name), Some(*name));
        }
        assert!(lookup(9999).is_none());
    }
}

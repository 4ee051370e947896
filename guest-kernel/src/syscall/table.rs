//! THE system call table: Linux x86-64 number → name, argument shapes, handler.

use super::strace::Arg::{self, *};
use super::strace::{Ret, Shape};
use super::{io, proc, Ctx, SysResult};

/// A system call handler.
pub type Handler = fn(&mut Ctx<'_>, [u64; 6]) -> SysResult;

/// One row of the table.
pub struct Entry {
    /// Linux name.
    pub name: &'static str,
    /// How `--strace` shows each argument.
    pub args: &'static [Arg],
    /// How `--strace` shows the result.
    pub ret: Ret,
    /// The implementation.
    pub handler: Handler,
}

impl Entry {
    /// What `--strace` needs to know about the call.
    pub fn shape(&self) -> Shape {
        Shape {
            name: self.name,
            args: self.args,
            ret: self.ret,
        }
    }
}

macro_rules! syscall_table {
    ($($nr:literal => $name:ident($($arg:expr),*) $(-> $ret:ident)? = $handler:path;)*) => {
        /// The entry for system call `nr`, if astra implements it.
        pub fn lookup(nr: u64) -> Option<Entry> {
            match nr {
                $($nr => Some(Entry {
                    name: stringify!($name),
                    args: &[$($arg),*],
                    ret: ret_shape!($($ret)?),
                    handler: $handler,
                }),)*
                _ => None,
            }
        }

        /// The name of every implemented system call with its number.
        #[allow(dead_code)]
        pub const IMPLEMENTED: &[(u64, &str)] = &[$(($nr, stringify!($name))),*];
    };
}

/// A row's result shape: `-> Addr` or `-> Never` after the arguments, [`Ret::Int`] if none.
macro_rules! ret_shape {
    () => {
        Ret::Int
    };
    ($ret:ident) => {
        Ret::$ret
    };
}

syscall_table! {
    1 => write(Fd, Buf(2), Int) = io::write;
    20 => writev(Fd, Iovec(2), Int) = io::writev;
    39 => getpid() = proc::getpid;
    60 => exit(Int) -> Never = proc::exit;
    231 => exit_group(Int) -> Never = proc::exit_group;
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
        assert_eq!(lookup(1).map(|e| e.ret), Some(Ret::Int));
        assert_eq!(lookup(231).map(|e| e.ret), Some(Ret::Never));
    }
}

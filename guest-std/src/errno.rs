//! Linux error numbers, as the astra kernel returns them (negated) in `rax`.

use core::fmt;

/// A Linux error number (`EPERM` = 1, ...), always positive.
///
/// A newtype rather than an enum so that a value this crate does not name still round-trips.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Errno(i32);

/// Largest error number a system call can return: results in `-4095..=-1` are errors.
pub const MAX_ERRNO: usize = 4095;

macro_rules! errnos {
    ($($name:ident = $value:literal, $text:literal;)*) => {
        impl Errno {
            $(
                #[doc = $text]
                pub const $name: Errno = Errno($value);
            )*

            /// The symbolic name (`"ENOENT"`), or `None` for a number this crate does not name.
            pub const fn name(self) -> Option<&'static str> {
                match self.0 {
                    $($value => Some(stringify!($name)),)*
                    _ => None,
                }
            }

            /// A short description (`"No such file or directory"`), as `strerror` gives it.
            pub const fn description(self) -> Option<&'static str> {
                match self.0 {
                    $($value => Some($text),)*
                    _ => None,
                }
            }
        }
    };
}

errnos! {
    EPERM = 1, "Operation not permitted";
    ENOENT = 2, "No such file or directory";
    ESRCH = 3, "No such process";
    EINTR = 4, "Interrupted system call";
    EIO = 5, "Input/output error";
    ENXIO = 6, "No such device or address";
    E2BIG = 7, "Argument list too long";
    ENOEXEC = 8, "Exec format error";
    EBADF = 9, "Bad file descriptor";
    ECHILD = 10, "No child processes";
    EAGAIN = 11, "Resource temporarily unavailable";
    ENOMEM = 12, "Cannot allocate memory";
    EACCES = 13, "Permission denied";
    EFAULT = 14, "Bad address";
    EBUSY = 16, "Device or resource busy";
    EEXIST = 17, "File exists";
    EXDEV = 18, "Invalid cross-device link";
    ENODEV = 19, "No such device";
    ENOTDIR = 20, "Not a directory";
    EISDIR = 21, "Is a directory";
    EINVAL = 22, "Invalid argument";
    ENFILE = 23, "Too many open files in system";
    EMFILE = 24, "Too many open files";
    ENOTTY = 25, "Inappropriate ioctl for device";
    EFBIG = 27, "File too large";
    ENOSPC = 28, "No space left on device";
    ESPIPE = 29, "Illegal seek";
    EROFS = 30, "Read-only file system";
    EMLINK = 31, "Too many links";
    EPIPE = 32, "Broken pipe";
    EDOM = 33, "Numerical argument out of domain";
    ERANGE = 34, "Numerical result out of range";
    EDEADLK = 35, "Resource deadlock avoided";
    ENAMETOOLONG = 36, "File name too long";
    ENOLCK = 37, "No locks available";
    ENOSYS = 38, "Function not implemented";
    ENOTEMPTY = 39, "Directory not empty";
    ELOOP = 40, "Too many levels of symbolic links";
    ENOTSOCK = 88, "Socket operation on non-socket";
    EOPNOTSUPP = 95, "Operation not supported";
    EADDRINUSE = 98, "Address already in use";
    ENETUNREACH = 101, "Network is unreachable";
    ECONNRESET = 104, "Connection reset by peer";
    ETIMEDOUT = 110, "Connection timed out";
    ECONNREFUSED = 111, "Connection refused";
}

impl Errno {
    /// `EWOULDBLOCK` is `EAGAIN` on Linux.
    pub const EWOULDBLOCK: Errno = Errno::EAGAIN;

    /// Wraps a raw (positive) error number.
    pub const fn new(raw: i32) -> Errno {
        Errno(raw)
    }

    /// The raw (positive) error number.
    pub const fn raw(self) -> i32 {
        self.0
    }

    /// Decodes a raw system call result: `-4095..=-1` is an error, anything else a value.
    pub const fn from_ret(ret: isize) -> Result<usize, Errno> {
        if ret < 0 && ret.unsigned_abs() <= MAX_ERRNO {
            // The range check above makes the narrowing lossless.
            Err(Errno(-ret as i32))
        } else {
            Ok(ret as usize)
        }
    }
}

impl fmt::Debug for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "Errno({})", self.0),
        }
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.description() {
            Some(text) => write!(f, "{text} (os error {})", self.0),
            None => write!(f, "Unknown error {}", self.0),
        }
    }
}

impl core::error::Error for Errno {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_ret_splits_values_and_errors() {
        assert_eq!(Errno::from_ret(0), Ok(0));
        assert_eq!(Errno::from_ret(17), Ok(17));
        assert_eq!(Errno::from_ret(-38), Err(Errno::ENOSYS));
        assert_eq!(Errno::from_ret(-1), Err(Errno::EPERM));
        assert_eq!(Errno::from_ret(-4095), Err(Errno::new(4095)));
        // Just past the errno range: a (huge) value such as a high mmap address.
        assert_eq!(Errno::from_ret(-4096), Ok(-4096isize as usize));
        assert_eq!(Errno::from_ret(isize::MIN), Ok(isize::MIN as usize));
    }

    #[test]
    fn linux_values() {
        assert_eq!(Errno::ENOENT.raw(), 2);
        assert_eq!(Errno::EBADF.raw(), 9);
        assert_eq!(Errno::EFAULT.raw(), 14);
        assert_eq!(Errno::EINVAL.raw(), 22);
        assert_eq!(Errno::ENOSYS.raw(), 38);
        assert_eq!(Errno::EWOULDBLOCK, Errno::EAGAIN);
    }

    #[test]
    fn names_and_formatting() {
        assert_eq!(Errno::ENOSYS.name(), Some("ENOSYS"));
        assert_eq!(format!("{:?}", Errno::ENOSYS), "ENOSYS");
        assert_eq!(
            format!("{}", Errno::ENOSYS),
            "Function not implemented (os error 38)"
        );
        assert_eq!(Errno::new(4000).name(), None);
        assert_eq!(format!("{:?}", Errno::new(4000)), "Errno(4000)");
        assert_eq!(format!("{}", Errno::new(4000)), "Unknown error 4000");
    }
}

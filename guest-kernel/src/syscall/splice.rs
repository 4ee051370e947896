//! `splice`, `tee` and `vmsplice`: moving data to, from and between pipes inside the
//! kernel. astra copies through a kernel buffer where Linux moves page references, so the
//! results are Linux's (what is moved, the offsets, the errors) but not its zero-copy.
//! One call moves at most one [`CHUNK`] (Linux moves at most a pipe's worth too).

use alloc::sync::Arc;

use super::io::fd_arg;
use super::{Ctx, Errno, SysResult};
use crate::fs::file::{SliceSource, VecSink};
use crate::fs::inode::FileType;
use crate::fs::open::{self, flags::O_APPEND};
use crate::fs::vfs::Vnode;
use crate::fs::OpenFile;

/// `SPLICE_F_MOVE`, `SPLICE_F_NONBLOCK`, `SPLICE_F_MORE`, `SPLICE_F_GIFT`.
const SPLICE_F_ALL: u64 = 0xf;
const SPLICE_F_NONBLOCK: u64 = 2;
/// Bytes moved per call at most (a default pipe's capacity).
const CHUNK: usize = 64 * 1024;

/// What kind of transfer a `splice` is, from which end is a pipe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Direction {
    PipeToPipe,
    PipeToFile,
    FileToPipe,
}

/// Linux's `splice` argument checks once both files are known (`__do_splice` and
/// `do_splice`, in their order): `in_pipe`/`out_pipe` say which are pipes, `*_off` whether
/// an offset pointer was given, `readable`/`writable` the access modes, `same` whether the
/// two are one pipe, `append` whether the output has `O_APPEND`, `out_seekable` /
/// `in_seekable` whether the files have positions (`pread`/`pwrite`).
#[allow(clippy::too_many_arguments)]
fn splice_direction(
    in_pipe: bool,
    out_pipe: bool,
    in_off: bool,
    out_off: bool,
    readable: bool,
    writable: bool,
    same: bool,
    append: bool,
    in_seekable: bool,
    out_seekable: bool,
) -> Result<Direction, Errno> {
    if (in_pipe && in_off) || (out_pipe && out_off) {
        return Err(Errno::ESPIPE);
    }
    if !readable || !writable {
        return Err(Errno::EBADF);
    }
    match (in_pipe, out_pipe) {
        (true, true) if same => Err(Errno::EINVAL),
        (true, true) => Ok(Direction::PipeToPipe),
        (true, false) => {
            if (out_off && !out_seekable) || append {
                return Err(Errno::EINVAL);
            }
            Ok(Direction::PipeToFile)
        }
        (false, true) => {
            if in_off && !in_seekable {
                return Err(Errno::EINVAL);
            }
            Ok(Direction::FileToPipe)
        }
        (false, false) => Err(Errno::EINVAL),
    }
}

/// Reads an `loff_t *` argument (`EINVAL` if negative, as `rw_verify_area`).
fn read_offset(ctx: &Ctx<'_>, va: u64) -> Result<u64, Errno> {
    let off: i64 = ctx.read_obj(va)?;
    u64::try_from(off).map_err(|_| Errno::EINVAL)
}

/// SIGPIPE for a write into a pipe with no reader, as `write` sends it.
fn sigpipe(ctx: &mut Ctx<'_>) {
    super::io::send_sigpipe(ctx);
}

fn is_dir(f: &OpenFile) -> bool {
    matches!(f.vnode(), Vnode::Node(n) if n.file_type() == FileType::Dir)
}

/// The two open files of a call: `EBADF` for a bad descriptor.
fn two_files(ctx: &Ctx<'_>, a: u64, b: u64) -> Result<(Arc<OpenFile>, Arc<OpenFile>), Errno> {
    let files = ctx.task.files.lock();
    Ok((files.get(fd_arg(a))?, files.get(fd_arg(b))?))
}

/// splice(fd_in, off_in, fd_out, off_out, len, flags)
pub fn splice(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    let (off_in, off_out, len, flags) = (a[1], a[3], a[4], a[5]);
    if len == 0 {
        return Ok(0);
    }
    if flags & !SPLICE_F_ALL != 0 {
        return Err(Errno::EINVAL);
    }
    let (input, output) = two_files(ctx, a[0], a[2])?;
    let (ipipe, opipe) = (input.pipe_end(), output.pipe_end());
    let dir = splice_direction(
        ipipe.is_some(),
        opipe.is_some(),
        off_in != 0,
        off_out != 0,
        open::readable(input.status()),
        open::writable(output.status()),
        matches!((ipipe, opipe), (Some(i), Some(o)) if i.same_pipe(o)),
        output.status() & O_APPEND != 0,
        input.regular().is_some(),
        output.regular().is_some(),
    )?;
    let len = (len as usize).min(CHUNK);
    let nonblock_flag = flags & SPLICE_F_NONBLOCK != 0;
    match dir {
        Direction::PipeToPipe => {
            let (i, o) = (ipipe.ok_or(Errno::EINVAL)?, opipe.ok_or(Errno::EINVAL)?);
            if o.poll() & crate::fs::file::poll_events::POLLERR != 0 {
                sigpipe(ctx);
                return Err(Errno::EPIPE);
            }
            let nonblock = nonblock_flag || input.nonblocking() || output.nonblocking();
            let mut sink = VecSink::new(len);
            let n = i.read(&mut sink, nonblock)?;
            let written = o.write(&mut SliceSource(&sink.data[..n]), nonblock);
            if written == Err(Errno::EPIPE) {
                sigpipe(ctx);
            }
            Ok(written? as u64)
        }
        Direction::PipeToFile => {
            let i = ipipe.ok_or(Errno::EINVAL)?;
            let at = match off_out {
                0 => None,
                va => Some(read_offset(ctx, va)?),
            };
            let nonblock = nonblock_flag || input.nonblocking();
            let mut sink = VecSink::new(len);
            let n = i.read(&mut sink, nonblock)?;
            let mut src = SliceSource(&sink.data[..n]);
            let w = match at {
                Some(at) => output.pwrite(at, &mut src)?,
                None => output.write(&mut src)?,
            };
            if let Some(at) = at {
                ctx.write_obj(off_out, &((at + w as u64) as i64))?;
            }
            Ok(w as u64)
        }
        Direction::FileToPipe => {
            let o = opipe.ok_or(Errno::EINVAL)?;
            if is_dir(&input) {
                return Err(Errno::EINVAL);
            }
            let nonblock = nonblock_flag || output.nonblocking();
            let from = match off_in {
                0 => None,
                va => Some(read_offset(ctx, va)?),
            };
            let mut sink = VecSink::new(len);
            let n = match (input.regular(), from) {
                (Some(_), Some(at)) => input.pread(at, &mut sink)?,
                (Some(_), None) => input.pread(input.position(), &mut sink)?,
                (None, _) => input.read(&mut sink)?,
            };
            if n == 0 {
                return Ok(0);
            }
            let written = o.write(&mut SliceSource(&sink.data[..n]), nonblock);
            if written == Err(Errno::EPIPE) {
                sigpipe(ctx);
            }
            let w = written? as u64;
            match (input.regular(), from) {
                (Some(_), Some(at)) => ctx.write_obj(off_in, &((at + w) as i64))?,
                (Some(_), None) => {
                    input.seek((input.position() + w) as i64, 0)?;
                }
                (None, _) => {}
            }
            Ok(w)
        }
    }
}

/// Linux's `tee` checks: flags, then the length, then (once the descriptors are known)
/// access modes and that both are ends of two different pipes.
fn tee_check(readable: bool, writable: bool, pipes: Option<bool>) -> Result<(), Errno> {
    if !readable || !writable {
        return Err(Errno::EBADF);
    }
    match pipes {
        Some(false) => Ok(()),
        _ => Err(Errno::EINVAL),
    }
}

/// tee(fd_in, fd_out, len, flags): copies what the input pipe holds into the output pipe
/// without consuming it.
pub fn tee(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    let (len, flags) = (a[2], a[3]);
    if flags & !SPLICE_F_ALL != 0 {
        return Err(Errno::EINVAL);
    }
    if len == 0 {
        return Ok(0);
    }
    let (input, output) = two_files(ctx, a[0], a[1])?;
    let (ipipe, opipe) = (input.pipe_end(), output.pipe_end());
    let same = match (ipipe, opipe) {
        (Some(i), Some(o)) => Some(i.same_pipe(o)),
        _ => None,
    };
    tee_check(
        open::readable(input.status()),
        open::writable(output.status()),
        same,
    )?;
    let (i, o) = (ipipe.ok_or(Errno::EINVAL)?, opipe.ok_or(Errno::EINVAL)?);
    if o.poll() & crate::fs::file::poll_events::POLLERR != 0 {
        sigpipe(ctx);
        return Err(Errno::EPIPE);
    }
    let nonblock = flags & SPLICE_F_NONBLOCK != 0 || input.nonblocking() || output.nonblocking();
    let mut sink = VecSink::new((len as usize).min(CHUNK));
    let n = i.peek(&mut sink, nonblock)?;
    if n == 0 {
        return Ok(0);
    }
    let written = o.write(&mut SliceSource(&sink.data[..n]), nonblock);
    if written == Err(Errno::EPIPE) {
        sigpipe(ctx);
    }
    Ok(written? as u64)
}

/// vmsplice(fd, iov, nr_segs, flags): the user memory the vector names into the pipe
/// (write end) or out of it (read end), as `writev`/`readv` (copied; `SPLICE_F_GIFT`
/// changes nothing). `EBADF` if `fd` is not a pipe.
pub fn vmsplice(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    if a[3] & !SPLICE_F_ALL != 0 {
        return Err(Errno::EINVAL);
    }
    let file = ctx.task.files.lock().get(fd_arg(a[0]))?;
    let writing = open::writable(file.status());
    if !writing && !open::readable(file.status()) {
        return Err(Errno::EBADF);
    }
    if file.pipe_end().is_none() {
        return Err(Errno::EBADF);
    }
    let args = [a[0], a[1], a[2], 0, 0, 0];
    if writing {
        super::io::writev(ctx, args)
    } else {
        super::io::readv(ctx, args)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(
        pipes: (bool, bool),
        offs: (bool, bool),
        rw: (bool, bool),
        same: bool,
        append: bool,
    ) -> Result<Direction, Errno> {
        splice_direction(
            pipes.0, pipes.1, offs.0, offs.1, rw.0, rw.1, same, append, true, true,
        )
    }

    #[test]
    fn splice_arguments_are_checked_in_linuxs_order() {
        const RW: (bool, bool) = (true, true);
        const NO: (bool, bool) = (false, false);
        assert_eq!(
            dir((true, true), NO, RW, false, false),
            Ok(Direction::PipeToPipe)
        );
        assert_eq!(
            dir((true, false), NO, RW, false, false),
            Ok(Direction::PipeToFile)
        );
        assert_eq!(
            dir((false, true), NO, RW, false, false),
            Ok(Direction::FileToPipe)
        );
        assert_eq!(
            dir((false, false), NO, RW, false, false),
            Err(Errno::EINVAL)
        );
        assert_eq!(dir((true, true), NO, RW, true, false), Err(Errno::EINVAL));
        // An offset for a pipe: ESPIPE, before the access modes.
        assert_eq!(
            dir((true, false), (true, false), NO, false, false),
            Err(Errno::ESPIPE)
        );
        assert_eq!(
            dir((false, true), (false, true), RW, false, false),
            Err(Errno::ESPIPE)
        );
        assert_eq!(
            dir((true, false), NO, (true, false), false, false),
            Err(Errno::EBADF)
        );
        assert_eq!(dir((true, false), NO, RW, false, true), Err(Errno::EINVAL));
        assert_eq!(
            splice_direction(true, false, false, true, true, true, false, false, true, false),
            Err(Errno::EINVAL),
            "an offset into a file without positions"
        );
        assert_eq!(
            splice_direction(false, true, true, false, true, true, false, false, false, true),
            Err(Errno::EINVAL)
        );
    }

    #[test]
    fn tee_needs_two_different_pipes() {
        assert_eq!(tee_check(true, true, Some(false)), Ok(()));
        assert_eq!(tee_check(true, true, Some(true)), Err(Errno::EINVAL));
        assert_eq!(tee_check(true, true, None), Err(Errno::EINVAL));
        assert_eq!(tee_check(false, true, Some(false)), Err(Errno::EBADF));
    }
}

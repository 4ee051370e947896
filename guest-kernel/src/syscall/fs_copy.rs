//! Copies between open files inside the kernel (`sendfile`, `copy_file_range`, through a
//! kernel buffer: astra copies where Linux may share pages) and `memfd_create` (a tmpfs
//! file that no directory names).

use alloc::sync::Arc;
use alloc::vec::Vec;

use super::io::fd_arg;
use super::{Ctx, Errno, SysResult};
use crate::fs::file::{ReadSink, SliceSource, VecSink};
use crate::fs::inode::FileType;
use crate::fs::open::{self, flags::*, Opened};
use crate::fs::vfs::Vnode;
use crate::fs::OpenFile;

/// Bytes moved per step.
const CHUNK: usize = 64 * 1024;
/// Linux's cap on one transfer (`MAX_RW_COUNT`).
const MAX_RW_COUNT: u64 = 0x7fff_f000;

/// Reads an `loff_t *` argument (`EINVAL` if negative).
fn read_offset(ctx: &Ctx<'_>, va: u64) -> Result<u64, Errno> {
    let off: i64 = ctx.read_obj(va)?;
    u64::try_from(off).map_err(|_| Errno::EINVAL)
}

/// Moves up to `count` bytes from `input` at `from` to `output` (at `to`, or at its own
/// position when `None`); returns (bytes moved, the error that ended it early if nothing
/// moved).
fn pump(
    input: &OpenFile,
    mut from: u64,
    output: &OpenFile,
    mut to: Option<u64>,
    count: u64,
) -> Result<u64, Errno> {
    let mut done = 0u64;
    while done < count {
        let want = (count - done).min(CHUNK as u64) as usize;
        let mut sink = VecSink::new(want);
        let n = match input.pread(from, &mut sink) {
            Ok(n) => n,
            Err(e) if done == 0 => return Err(e),
            Err(_) => break,
        };
        if n == 0 {
            break;
        }
        let mut src = SliceSource(&sink.data[..n]);
        let written = match to {
            Some(at) => output.pwrite(at, &mut src),
            None => output.write(&mut src),
        };
        let w = match written {
            Ok(w) => w,
            Err(e) if done == 0 => return Err(e),
            Err(_) => break,
        };
        done += w as u64;
        from += w as u64;
        to = to.map(|t| t + w as u64);
        if w < n || sink.remaining() > 0 {
            break;
        }
    }
    Ok(done)
}

/// sendfile(out_fd, in_fd, offset, count): `in_fd` must be a regular file; from `*offset`
/// (updated; the file position untouched) or from its position (advanced).
pub fn sendfile(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    let (output, input) = {
        let files = ctx.task.files.lock();
        (files.get(fd_arg(a[0]))?, files.get(fd_arg(a[1]))?)
    };
    if !open::readable(input.status()) || !open::writable(output.status()) {
        return Err(Errno::EBADF);
    }
    if input.regular().is_none() || output.status() & O_APPEND != 0 {
        return Err(Errno::EINVAL);
    }
    let start = match a[2] {
        0 => input.position(),
        va => read_offset(ctx, va)?,
    };
    let count = a[3].min(MAX_RW_COUNT);
    let n = pump(&input, start, &output, None, count)?;
    match a[2] {
        0 => {
            input.seek((start + n) as i64, 0)?;
        }
        va => ctx.write_obj(va, &((start + n) as i64))?,
    }
    Ok(n)
}

/// copy_file_range(fd_in, off_in, fd_out, off_out, len, flags): between regular files,
/// each from `*off` (updated) or its position (advanced); flags must be 0.
pub fn copy_file_range(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    if a[5] != 0 {
        return Err(Errno::EINVAL);
    }
    let (input, output) = {
        let files = ctx.task.files.lock();
        (files.get(fd_arg(a[0]))?, files.get(fd_arg(a[2]))?)
    };
    if !open::readable(input.status())
        || !open::writable(output.status())
        || output.status() & O_APPEND != 0
    {
        return Err(Errno::EBADF);
    }
    let is_dir =
        |f: &OpenFile| matches!(f.vnode(), Vnode::Node(n) if n.file_type() == FileType::Dir);
    if is_dir(&input) || is_dir(&output) {
        return Err(Errno::EISDIR);
    }
    let (Some(in_node), Some(out_node)) = (input.regular(), output.regular()) else {
        return Err(Errno::EINVAL);
    };
    let from = match a[1] {
        0 => input.position(),
        va => read_offset(ctx, va)?,
    };
    let to = match a[3] {
        0 => output.position(),
        va => read_offset(ctx, va)?,
    };
    let len = a[4].min(MAX_RW_COUNT);
    let same = crate::fs::inode::same_node(in_node, out_node);
    if same && from < to.saturating_add(len) && to < from.saturating_add(len) {
        return Err(Errno::EINVAL);
    }
    let n = pump(&input, from, &output, Some(to), len)?;
    match a[1] {
        0 => {
            input.seek((from + n) as i64, 0)?;
        }
        va => ctx.write_obj(va, &((from + n) as i64))?,
    }
    match a[3] {
        0 => {
            output.seek((to + n) as i64, 0)?;
        }
        va => ctx.write_obj(va, &((to + n) as i64))?,
    }
    Ok(n)
}

const MFD_CLOEXEC: u64 = 1;
const MFD_ALLOW_SEALING: u64 = 2;
const MFD_HUGETLB: u64 = 4;
const MFD_NOEXEC_SEAL: u64 = 8;
const MFD_EXEC: u64 = 0x10;
/// Linux's limit on the name (249 bytes, so `memfd:` and the name fit in 255).
const MFD_NAME_MAX: usize = 249;

/// memfd_create(name, flags): an unnamed tmpfs file open for reading and writing.
/// Sealing is not implemented (`MFD_ALLOW_SEALING` is accepted; `F_ADD_SEALS` is
/// `EINVAL`), nor huge pages (`MFD_HUGETLB`: `EINVAL`).
pub fn memfd_create(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    let flags = a[1];
    let known = MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_NOEXEC_SEAL | MFD_EXEC;
    if flags & !known != 0 || flags & MFD_HUGETLB != 0 {
        return Err(Errno::EINVAL);
    }
    if flags & MFD_EXEC != 0 && flags & MFD_NOEXEC_SEAL != 0 {
        return Err(Errno::EINVAL);
    }
    let name: Vec<u8> = match ctx.read_cstr(a[0], MFD_NAME_MAX) {
        Err(Errno::ENAMETOOLONG) => return Err(Errno::EINVAL),
        r => r?,
    };
    drop(name);
    ctx.task.files.lock().check_free()?;
    let node = crate::fs::unnamed_file(0o777)?;
    let file = OpenFile::new(Opened {
        vnode: Vnode::Node(node),
        status: O_RDWR | O_LARGEFILE,
    });
    let file: Arc<OpenFile> = file;
    ctx.task.files.lock().insert(file, flags & MFD_CLOEXEC != 0)
}

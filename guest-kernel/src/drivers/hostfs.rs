//! The host file-system device (`--volume`): one request at a time through a block and
//! bounce buffers in the kernel image (physically contiguous, below 4 GiB), so callers may
//! pass any kernel memory. The VMM's replies are bounded before use: a count never exceeds
//! what was asked, an errno outside Linux's range becomes `EIO`.

use core::sync::atomic::{AtomicU16, AtomicU32, Ordering};

use hypercall_abi::hostfs::op;
use hypercall_abi::{status, BootInfo, DeviceKind, HostFsAttr, HostFsRequest, HostFsTime};
use spin::Mutex;

use crate::arch::port;
use crate::errno::Errno;
use crate::mm::kernel_virt_to_phys;

/// Size of the data bounce buffer: the most one request moves.
pub const IO_CHUNK: usize = 64 << 10;
/// Longest name (`NAME_MAX`).
const NAME_CAP: usize = 256;
/// Longest symlink target, NUL left out (`PATH_MAX - 1`).
const TARGET_CAP: usize = 4096;

#[repr(C, align(8))]
struct Channel {
    req: HostFsRequest,
    name: [u8; NAME_CAP],
    name2: [u8; TARGET_CAP],
    buf: [u8; IO_CHUNK],
}

static CHANNEL: Mutex<Channel> = Mutex::new(Channel {
    req: HostFsRequest {
        op: 0,
        flags: 0,
        handle: 0,
        handle2: 0,
        offset: 0,
        name_gpa: 0,
        name2_gpa: 0,
        buf_gpa: 0,
        name_len: 0,
        name2_len: 0,
        buf_len: 0,
        mode: 0,
        atime: HostFsTime {
            sec: 0,
            nsec: 0,
            _pad: 0,
        },
        mtime: HostFsTime {
            sec: 0,
            nsec: 0,
            _pad: 0,
        },
        status: 0,
        error: 0,
        count: 0,
        out_handle: 0,
        out_offset: 0,
        out_flags: 0,
        _pad: 0,
        attr: HostFsAttr {
            ino: 0,
            size: 0,
            blocks: 0,
            mode: 0,
            nlink: 0,
            uid: 0,
            gid: 0,
            atime: HostFsTime {
                sec: 0,
                nsec: 0,
                _pad: 0,
            },
            mtime: HostFsTime {
                sec: 0,
                nsec: 0,
                _pad: 0,
            },
            ctime: HostFsTime {
                sec: 0,
                nsec: 0,
                _pad: 0,
            },
        },
    },
    name: [0; NAME_CAP],
    name2: [0; TARGET_CAP],
    buf: [0; IO_CHUNK],
});

static PORT: AtomicU16 = AtomicU16::new(0);
static VOLUMES: AtomicU32 = AtomicU32::new(0);

/// Takes the device from the boot device table, if the VMM gave one.
pub fn init(info: &BootInfo) {
    if let Some(dev) = info.device(DeviceKind::HostFs) {
        PORT.store(dev.port, Ordering::Relaxed);
        VOLUMES.store(dev.size.min(64) as u32, Ordering::Relaxed);
    }
}

/// The number of volumes the VMM shares (0 without the device).
pub fn volume_count() -> u32 {
    if PORT.load(Ordering::Relaxed) == 0 {
        0
    } else {
        VOLUMES.load(Ordering::Relaxed)
    }
}

/// One request's inputs.
#[derive(Default)]
pub struct Call<'a> {
    /// An [`op`] value.
    pub op: u32,
    /// Operation flags.
    pub flags: u32,
    /// The handle operated on.
    pub handle: u64,
    /// The second handle.
    pub handle2: u64,
    /// Offset, entry number or size.
    pub offset: u64,
    /// The name (at most 255 bytes).
    pub name: &'a [u8],
    /// The second name or a symlink target.
    pub name2: &'a [u8],
    /// Type and permission bits.
    pub mode: u32,
    /// Times for SETATTR.
    pub atime: HostFsTime,
    /// Times for SETATTR.
    pub mtime: HostFsTime,
    /// Bytes to write ([`op::WRITE`]).
    pub data: &'a [u8],
}

/// One request's outputs.
#[derive(Clone, Copy, Default)]
pub struct Reply {
    /// A new handle.
    pub handle: u64,
    /// Attributes.
    pub attr: HostFsAttr,
    /// Bytes moved (never more than were asked for).
    pub count: usize,
    /// READDIR's next entry number.
    pub next: u64,
    /// `out_flags`.
    pub flags: u32,
}

/// Carries out `call`; data the VMM returns lands in `out` (at most its length, and at
/// most [`IO_CHUNK`] bytes).
pub fn call(c: &Call<'_>, out: &mut [u8]) -> Result<Reply, Errno> {
    let port = PORT.load(Ordering::Relaxed);
    if port == 0 {
        return Err(Errno::ENODEV);
    }
    if c.name.len() >= NAME_CAP {
        return Err(Errno::ENAMETOOLONG);
    }
    if c.name2.len() >= TARGET_CAP {
        return Err(Errno::ENAMETOOLONG);
    }
    if c.data.len() > IO_CHUNK {
        return Err(Errno::EINVAL);
    }
    let mut ch = CHANNEL.lock();
    let ch = &mut *ch;
    ch.name[..c.name.len()].copy_from_slice(c.name);
    ch.name2[..c.name2.len()].copy_from_slice(c.name2);
    let buf_len = if c.op == op::WRITE {
        ch.buf[..c.data.len()].copy_from_slice(c.data);
        c.data.len()
    } else {
        out.len().min(IO_CHUNK)
    };
    let phys = |p: *const u8| kernel_virt_to_phys(p as u64);
    ch.req = HostFsRequest {
        op: c.op,
        flags: c.flags,
        handle: c.handle,
        handle2: c.handle2,
        offset: c.offset,
        name_gpa: phys(ch.name.as_ptr()),
        name2_gpa: phys(ch.name2.as_ptr()),
        buf_gpa: phys(ch.buf.as_ptr()),
        name_len: c.name.len() as u32,
        name2_len: c.name2.len() as u32,
        buf_len: buf_len as u32,
        mode: c.mode,
        atime: c.atime,
        mtime: c.mtime,
        status: status::PENDING,
        ..HostFsRequest::default()
    };
    let gpa = kernel_virt_to_phys(&ch.req as *const HostFsRequest as u64);
    // The port write is a compiler barrier (no `nomem`): the block is in memory before it.
    port::outl(port, gpa as u32);
    // SAFETY: `ch.req` is a valid, aligned block the VMM wrote during the port write; read
    // it volatile so the compiler does not assume it unchanged.
    let done = unsafe { core::ptr::read_volatile(&ch.req) };
    match done.status {
        status::OK => {}
        status::IO_ERROR => {
            return Err(Errno::from_code(done.error as i32).unwrap_or(Errno::EIO));
        }
        // A request the VMM found malformed is the kernel's bug; a block left pending
        // means no device answered.
        _ => return Err(Errno::EIO),
    }
    let count = usize::try_from(done.count)
        .unwrap_or(usize::MAX)
        .min(buf_len);
    if c.op != op::WRITE {
        out[..count].copy_from_slice(&ch.buf[..count]);
    }
    Ok(Reply {
        handle: done.out_handle,
        attr: done.attr,
        count,
        next: done.out_offset,
        flags: done.out_flags,
    })
}

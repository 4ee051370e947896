//! The host file-system device (`--volume`): the guest writes the 32-bit GPA of a
//! [`HostFsRequest`] to [`port::HOSTFS`]; the VMM carries out the file operation on the
//! shared host directory ([`host`]) and writes the results back.
//!
//! The guest is hostile: the block, names and buffers are copied through vm-memory's
//! checked accessors after their lengths are bounded, a block or range outside guest RAM
//! gets [`status::INVALID`] (where the block itself lies in RAM; otherwise it is dropped),
//! an unknown handle `EBADF`, and no request can reach a host file outside the shared
//! directories (see [`host`]).
//!
//! [`port::HOSTFS`]: hypercall_abi::port::HOSTFS

pub mod host;

use hypercall_abi::hostfs::{op, out_flags, setattr, UNLINK_DIR};
use hypercall_abi::{status, HostFsRequest, HOSTFS_IO_MAX};
use vm_memory::{ByteValued, Bytes, GuestAddress, GuestMemoryMmap};

use super::{IoAction, PortIo};
use host::{Errno, HostFs};

/// Longest name or symlink target read from the guest.
const NAME_LIMIT: u32 = 4096;

/// [`HostFsRequest`] as vm-memory sees it.
#[derive(Clone, Copy, Debug, Default)]
#[repr(transparent)]
struct RequestBytes(HostFsRequest);

// SAFETY: `HostFsRequest` is `repr(C)`, integers only with explicit padding fields (the
// ABI crate's size/offset asserts), so every bit pattern is valid and it has no implicit
// padding.
unsafe impl ByteValued for RequestBytes {}

/// A request the device refuses as malformed.
struct Invalid;

/// The device.
pub struct HostFsDevice {
    mem: GuestMemoryMmap,
    fs: HostFs,
}

impl HostFsDevice {
    /// The device over guest memory `mem` serving `fs`.
    pub fn new(mem: GuestMemoryMmap, fs: HostFs) -> Self {
        HostFsDevice { mem, fs }
    }

    /// The shared state (for tests).
    pub fn fs(&self) -> &HostFs {
        &self.fs
    }

    fn bytes(&self, gpa: u64, len: u32, limit: u32) -> Result<Vec<u8>, Invalid> {
        if len > limit {
            return Err(Invalid);
        }
        let mut buf = vec![0u8; len as usize];
        self.mem
            .read_slice(&mut buf, GuestAddress(gpa))
            .map_err(|_| Invalid)?;
        Ok(buf)
    }

    fn check_buf(&self, req: &HostFsRequest) -> Result<(), Invalid> {
        use vm_memory::GuestMemoryBackend;
        if req.buf_len > HOSTFS_IO_MAX
            || !self
                .mem
                .check_range(GuestAddress(req.buf_gpa), req.buf_len as usize)
        {
            return Err(Invalid);
        }
        Ok(())
    }

    fn put(&self, req: &mut HostFsRequest, data: &[u8]) -> Result<(), Invalid> {
        self.mem
            .write_slice(data, GuestAddress(req.buf_gpa))
            .map_err(|_| Invalid)?;
        req.count = data.len() as u64;
        Ok(())
    }

    /// Carries out `req`, filling in its outputs: `Err(Invalid)` for a malformed request,
    /// `Ok(Err(errno))` for a failed operation.
    fn serve(&mut self, req: &mut HostFsRequest) -> Result<Result<(), Errno>, Invalid> {
        let name = |d: &Self| d.bytes(req.name_gpa, req.name_len, NAME_LIMIT);
        let name2 = |d: &Self| d.bytes(req.name2_gpa, req.name2_len, NAME_LIMIT);
        Ok(match req.op {
            op::VOLUME => {
                self.check_buf(req)?;
                match self.fs.volume(req.flags) {
                    Ok((h, attr, ro, path)) if path.len() <= req.buf_len as usize => {
                        self.put(req, path.as_bytes())?;
                        req.out_handle = h;
                        req.attr = attr;
                        req.out_flags = if ro { out_flags::READ_ONLY } else { 0 };
                        Ok(())
                    }
                    Ok((h, ..)) => {
                        let _ = self.fs.forget(h);
                        Err(libc::ERANGE)
                    }
                    Err(e) => Err(e),
                }
            }
            op::LOOKUP => {
                let n = name(self)?;
                self.fs.lookup(req.handle, &n).map(|(h, attr)| {
                    req.out_handle = h;
                    req.attr = attr;
                })
            }
            op::FORGET => self.fs.forget(req.handle),
            op::GETATTR => self.fs.getattr(req.handle).map(|a| req.attr = a),
            op::STATFS => self.fs.statfs(req.handle).map(|a| req.attr = a),
            op::READ => {
                self.check_buf(req)?;
                match self.fs.read(req.handle, req.offset, req.buf_len as usize) {
                    Ok(data) => Ok(self.put(req, &data)?),
                    Err(e) => Err(e),
                }
            }
            op::WRITE => {
                self.check_buf(req)?;
                let data = self.bytes(req.buf_gpa, req.buf_len, HOSTFS_IO_MAX)?;
                self.fs
                    .write(req.handle, req.offset, &data)
                    .map(|n| req.count = n as u64)
            }
            op::READDIR => {
                self.check_buf(req)?;
                match self
                    .fs
                    .readdir(req.handle, req.offset, req.buf_len as usize)
                {
                    Ok((data, next, end)) => {
                        self.put(req, &data)?;
                        req.out_offset = next;
                        req.out_flags = if end { out_flags::END } else { 0 };
                        Ok(())
                    }
                    Err(e) => Err(e),
                }
            }
            op::CREATE => {
                let (n, target) = (name(self)?, name2(self)?);
                self.fs
                    .create(req.handle, &n, req.mode, &target)
                    .map(|(h, attr)| {
                        req.out_handle = h;
                        req.attr = attr;
                    })
            }
            op::UNLINK => {
                let n = name(self)?;
                self.fs.unlink(req.handle, &n, req.flags & UNLINK_DIR != 0)
            }
            op::RENAME => {
                let (a, b) = (name(self)?, name2(self)?);
                self.fs.rename(req.handle, &a, req.handle2, &b, req.flags)
            }
            op::LINK => {
                let n = name(self)?;
                self.fs.link(req.handle, &n, req.handle2)
            }
            op::TRUNCATE => self.fs.truncate(req.handle, req.offset),
            op::READLINK => {
                self.check_buf(req)?;
                match self.fs.readlink(req.handle) {
                    Ok(t) if t.len() <= req.buf_len as usize => Ok(self.put(req, &t)?),
                    Ok(_) => Err(libc::ERANGE),
                    Err(e) => Err(e),
                }
            }
            op::SETATTR => {
                let f = req.flags;
                let mode = (f & setattr::MODE != 0).then_some(req.mode);
                let atime = (f & setattr::ATIME != 0).then_some(req.atime);
                let mtime = (f & setattr::MTIME != 0).then_some(req.mtime);
                self.fs
                    .setattr(req.handle, mode, atime, mtime)
                    .map(|a| req.attr = a)
            }
            _ => return Err(Invalid),
        })
    }

    /// Serves the request at `gpa`; the status written, or `None` if the block is not in
    /// guest RAM (or misaligned) and nothing could be written.
    pub fn handle(&mut self, gpa: u64) -> Option<u32> {
        if !gpa.is_multiple_of(8) {
            return None;
        }
        let RequestBytes(mut req) = self.mem.read_obj(GuestAddress(gpa)).ok()?;
        req.error = 0;
        req.status = match self.serve(&mut req) {
            Ok(Ok(())) => status::OK,
            Ok(Err(errno)) => {
                req.error = errno as u32;
                status::IO_ERROR
            }
            Err(Invalid) => status::INVALID,
        };
        self.mem
            .write_obj(RequestBytes(req), GuestAddress(gpa))
            .ok()?;
        Some(req.status)
    }
}

impl PortIo for HostFsDevice {
    fn read(&mut self, _offset: u16, data: &mut [u8]) {
        data.fill(0xff);
    }

    fn write(&mut self, _offset: u16, data: &[u8]) -> IoAction {
        let gpa = match super::doorbell_gpa("host file-system", data) {
            Ok(gpa) => gpa,
            Err(stop) => return stop,
        };
        match self.handle(gpa) {
            Some(status::INVALID) => crate::guest_warn!("hostfs: invalid request at {gpa:#x}"),
            Some(_) => {}
            None => crate::guest_warn!("hostfs: request at {gpa:#x} is outside guest RAM, dropped"),
        }
        IoAction::Continue
    }
}

#[cfg(test)]
mod tests;

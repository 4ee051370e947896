//! Nodes of open files that no mounted file system holds: a pipe, and one of the VMM's
//! standard streams that is not a terminal ([`HostStream`]).
//!
//! Linux gives every pipe an inode on its internal pipefs, so `/proc/[pid]/fd/N` (and
//! `/dev/stdin`, a link to it) leads somewhere for a pipe too: `stat -L` describes it and
//! `open` opens the same pipe again, as a FIFO open would. A [`StreamNode`] is that inode
//! here. A host stream's descriptor is one from the start (so `fstat` tells a character
//! device from a FIFO, as the host's stream is); a pipe's descriptor keeps
//! [`super::vfs::Vnode::Pipe`] and `/proc/[pid]/fd/N` makes the node on the way
//! ([`StreamNode::pipe`]).
//!
//! Nothing names a stream node in a directory: links to it give `ENOENT` ([`is_stream`]),
//! as Linux's `linkat` of an anonymous pipe does.

use alloc::string::String;
use alloc::sync::Arc;

use hypercall_abi::host_stdio::StreamKind;

use super::host_stream::HostStream;
use super::inode::{FileType, FsStats, Inode, InodeRef};
use super::pipe::{new_ino, PipeHandle, PIPEFS_DEV};
use super::stat::{Metadata, Timestamp, S_IFCHR, S_IFIFO};
use crate::errno::Errno;

/// Linux's `PIPEFS_MAGIC`.
const PIPEFS_MAGIC: u64 = 0x5049_5045;

/// What a [`StreamNode`] stands for.
#[derive(Clone)]
pub enum Stream {
    /// A pipe (or a FIFO's pipe).
    Pipe(PipeHandle),
    /// One of the VMM's standard streams, and what the VMM's is.
    Host(HostStream, StreamKind),
}

/// The inode of a pipe or a host stream.
pub struct StreamNode {
    ino: u64,
    stream: Stream,
}

impl StreamNode {
    /// The node of the pipe `handle` leads to.
    pub fn pipe(handle: PipeHandle) -> InodeRef {
        Arc::new(StreamNode {
            ino: handle.ino(),
            stream: Stream::Pipe(handle),
        })
    }

    /// A node for the VMM's stream `stream`, which is a `kind` in the VMM, with a fresh
    /// inode number.
    pub fn host(stream: HostStream, kind: StreamKind) -> InodeRef {
        Arc::new(StreamNode {
            ino: new_ino(),
            stream: Stream::Host(stream, kind),
        })
    }

    /// What it stands for.
    pub fn stream(&self) -> &Stream {
        &self.stream
    }

    /// The target `/proc/[pid]/fd/N` shows: `pipe:[ino]`, as Linux does for pipes (and
    /// for the host's pipes and files behind a stream), `host:[stdin]` for a host
    /// character device, which the guest cannot name.
    pub fn link_text(&self) -> String {
        match &self.stream {
            Stream::Host(s, StreamKind::CharDevice) => alloc::format!("host:[{}]", s.name()),
            _ => alloc::format!("pipe:[{}]", self.ino),
        }
    }

    fn is_char_device(&self) -> bool {
        matches!(&self.stream, Stream::Host(_, StreamKind::CharDevice))
    }
}

/// What `stat` reports for pipe-filesystem inode `ino` with `mode` (type and permission
/// bits): owned by root, one link, no size or times, as Linux's pipefs.
pub fn metadata(ino: u64, mode: u32) -> Metadata {
    Metadata {
        dev: PIPEFS_DEV,
        ino,
        mode,
        nlink: 1,
        uid: 0,
        gid: 0,
        rdev: (0, 0),
        size: 0,
        atime: Timestamp::default(),
        mtime: Timestamp::default(),
        ctime: Timestamp::default(),
        mount_root: false,
    }
}

/// The stream node `node` is, if it is one.
pub fn as_stream(node: &InodeRef) -> Option<&StreamNode> {
    node.as_any().downcast_ref::<StreamNode>()
}

/// Whether `node` is a stream node (nothing can link to it).
pub fn is_stream(node: &InodeRef) -> bool {
    as_stream(node).is_some()
}

impl Inode for StreamNode {
    fn fs_id(&self) -> u64 {
        u64::from(PIPEFS_DEV.1)
    }

    fn ino(&self) -> u64 {
        self.ino
    }

    fn file_type(&self) -> FileType {
        if self.is_char_device() {
            FileType::CharDev
        } else {
            FileType::Fifo
        }
    }

    fn metadata(&self) -> Metadata {
        // The mode Linux gives a pipe (0600) and a FIFO-like stream; a host device's
        // permissions are those of the direction it goes.
        let (kind, perm) = match &self.stream {
            Stream::Pipe(_) => (S_IFIFO, 0o600),
            Stream::Host(HostStream::Stdin, _) => (S_IFIFO, 0o400),
            Stream::Host(..) => (S_IFIFO, 0o200),
        };
        let kind = if self.is_char_device() { S_IFCHR } else { kind };
        metadata(self.ino, kind | perm)
    }

    // A pipe or stream is no directory: the trait's defaults (ENOTDIR) stand.

    fn read_at(&self, _: u64, _: &mut [u8]) -> Result<usize, Errno> {
        // Streams are read through their open files, never at an offset.
        Err(Errno::ESPIPE)
    }

    fn write_at(&self, _: u64, _: &[u8]) -> Result<usize, Errno> {
        Err(Errno::ESPIPE)
    }

    fn truncate(&self, _: u64) -> Result<(), Errno> {
        // Linux: truncate(2) of a FIFO or a device is EINVAL.
        Err(Errno::EINVAL)
    }

    fn set_mode(&self, _: u32) -> Result<(), Errno> {
        Err(Errno::EPERM)
    }

    fn as_any(&self) -> &dyn core::any::Any {
        self
    }

    fn statfs(&self) -> FsStats {
        FsStats {
            magic: PIPEFS_MAGIC,
            bsize: 4096,
            ..FsStats::default()
        }
    }

    fn fs_name(&self) -> &'static str {
        "pipefs"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pipes_node_is_a_fifo_with_the_pipes_inode_number() {
        let (read, _write) = super::super::pipe::pipe();
        let node = StreamNode::pipe(read.handle());
        assert_eq!(node.file_type(), FileType::Fifo);
        assert_eq!(node.ino(), read.handle().ino());
        let meta = node.metadata();
        assert_eq!((meta.mode, meta.dev), (S_IFIFO | 0o600, PIPEFS_DEV));
        let stream = as_stream(&node).unwrap();
        assert_eq!(stream.link_text(), alloc::format!("pipe:[{}]", node.ino()));
        assert!(is_stream(&node));
        assert!(!is_stream(&super::super::devices::root()));
        assert_eq!(node.lookup("x").err(), Some(Errno::ENOTDIR));
        assert_eq!(node.truncate(0), Err(Errno::EINVAL));
    }

    #[test]
    fn reopening_a_pipe_through_its_node_reaches_the_same_queue() {
        use super::super::file::{SliceSource, VecSink};
        let (read, write) = super::super::pipe::pipe();
        let Stream::Pipe(handle) = as_stream(&StreamNode::pipe(read.handle()))
            .unwrap()
            .stream()
            .clone()
        else {
            panic!("not a pipe");
        };
        let again = handle.open(true, false);
        write.write(&mut SliceSource(b"hi"), true).unwrap();
        let mut sink = VecSink::new(8);
        assert_eq!(again.read(&mut sink, true), Ok(2));
        assert_eq!(sink.data, b"hi");
        drop((read, write, again));
        // Nobody left: an anonymous pipe's open neither waits nor fails (Linux's
        // fifo_open on pipefs); the writer meets EPIPE, a reader the end.
        let writer = handle.open(false, true);
        assert_eq!(
            writer.write(&mut SliceSource(b"x"), true),
            Err(Errno::EPIPE)
        );
        let reader = handle.open(true, false);
        drop(writer);
        assert_eq!(reader.read(&mut VecSink::new(8), true), Ok(0));
    }

    #[test]
    fn host_streams_are_fifos_unless_the_host_has_a_device() {
        let input = StreamNode::host(HostStream::Stdin, StreamKind::Stream);
        let output = StreamNode::host(HostStream::Stderr, StreamKind::Stream);
        assert_eq!(input.metadata().mode, S_IFIFO | 0o400);
        assert_eq!(output.metadata().mode, S_IFIFO | 0o200);
        assert_ne!(input.ino(), output.ino());
        let null = StreamNode::host(HostStream::Stdin, StreamKind::CharDevice);
        assert_eq!(null.metadata().mode, S_IFCHR | 0o400);
        assert_eq!(null.file_type(), FileType::CharDev);
        assert_eq!(as_stream(&null).unwrap().link_text(), "host:[stdin]");
    }
}

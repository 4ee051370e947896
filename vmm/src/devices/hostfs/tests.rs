use super::host::Volume;
use super::*;
use crate::exit_code::Outcome;

const RAM: u64 = 0x10000;
const REQ: u64 = 0x1000;
const NAME: u64 = 0x2000;
const BUF: u64 = 0x3000;

struct Tmp(std::path::PathBuf);

impl Drop for Tmp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn device() -> (Tmp, HostFsDevice) {
    let dir = std::env::temp_dir().join(format!(
        "astra-hostfs-dev-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("f"), b"file data").unwrap();
    let mem = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), RAM as usize)]).unwrap();
    let fs = HostFs::new(vec![Volume::open(&dir, "/data", false).unwrap()]);
    (Tmp(dir), HostFsDevice::new(mem, fs))
}

fn ring(dev: &mut HostFsDevice, req: HostFsRequest) -> HostFsRequest {
    dev.mem
        .write_obj(RequestBytes(req), GuestAddress(REQ))
        .unwrap();
    assert_eq!(
        dev.write(0, &(REQ as u32).to_le_bytes()),
        IoAction::Continue
    );
    dev.mem
        .read_obj::<RequestBytes>(GuestAddress(REQ))
        .unwrap()
        .0
}

fn root(dev: &mut HostFsDevice) -> u64 {
    let r = ring(
        dev,
        HostFsRequest {
            op: op::VOLUME,
            buf_gpa: BUF,
            buf_len: 64,
            ..Default::default()
        },
    );
    assert_eq!(r.status, status::OK);
    let mut path = [0u8; 5];
    dev.mem.read_slice(&mut path, GuestAddress(BUF)).unwrap();
    assert_eq!((&path, r.count, r.out_flags), (b"/data", 5, 0));
    r.out_handle
}

fn named(dev: &HostFsDevice, name: &[u8]) -> (u64, u32) {
    dev.mem.write_slice(name, GuestAddress(NAME)).unwrap();
    (NAME, name.len() as u32)
}

#[test]
fn serves_lookups_and_reads_through_guest_memory() {
    let (_t, mut dev) = device();
    let root = root(&mut dev);
    let (name_gpa, name_len) = named(&dev, b"f");
    let r = ring(
        &mut dev,
        HostFsRequest {
            op: op::LOOKUP,
            handle: root,
            name_gpa,
            name_len,
            ..Default::default()
        },
    );
    assert_eq!((r.status, r.attr.size), (status::OK, 9));
    let f = r.out_handle;
    let r = ring(
        &mut dev,
        HostFsRequest {
            op: op::READ,
            handle: f,
            offset: 5,
            buf_gpa: BUF,
            buf_len: 100,
            ..Default::default()
        },
    );
    assert_eq!((r.status, r.count), (status::OK, 4));
    let mut data = [0u8; 4];
    dev.mem.read_slice(&mut data, GuestAddress(BUF)).unwrap();
    assert_eq!(&data, b"data");
    // A failure is an errno, with the status saying so.
    let (name_gpa, name_len) = named(&dev, b"missing");
    let r = ring(
        &mut dev,
        HostFsRequest {
            op: op::LOOKUP,
            handle: root,
            name_gpa,
            name_len,
            ..Default::default()
        },
    );
    assert_eq!((r.status, r.error), (status::IO_ERROR, libc::ENOENT as u32));
}

#[test]
fn hostile_requests_get_errors_and_the_vmm_goes_on() {
    let (_t, mut dev) = device();
    let root = root(&mut dev);
    let (name_gpa, _) = named(&dev, b"f");
    let bad = [
        // Unknown operation.
        HostFsRequest {
            op: 999,
            ..Default::default()
        },
        // Name and buffers outside RAM, or wrapping around.
        HostFsRequest {
            op: op::LOOKUP,
            handle: root,
            name_gpa: RAM - 1,
            name_len: 2,
            ..Default::default()
        },
        HostFsRequest {
            op: op::LOOKUP,
            handle: root,
            name_gpa: u64::MAX,
            name_len: 2,
            ..Default::default()
        },
        HostFsRequest {
            op: op::LOOKUP,
            handle: root,
            name_gpa,
            name_len: u32::MAX,
            ..Default::default()
        },
        HostFsRequest {
            op: op::READ,
            handle: root,
            buf_gpa: RAM - 8,
            buf_len: 16,
            ..Default::default()
        },
        HostFsRequest {
            op: op::WRITE,
            handle: root,
            buf_gpa: u64::MAX - 3,
            buf_len: 8,
            ..Default::default()
        },
        HostFsRequest {
            op: op::READ,
            handle: root,
            buf_gpa: 0,
            buf_len: HOSTFS_IO_MAX + 1,
            ..Default::default()
        },
        HostFsRequest {
            op: op::READDIR,
            handle: root,
            buf_gpa: RAM,
            buf_len: 64,
            ..Default::default()
        },
        HostFsRequest {
            op: op::VOLUME,
            buf_gpa: RAM + 0x1000,
            buf_len: 64,
            ..Default::default()
        },
    ];
    for req in bad {
        let r = ring(&mut dev, req);
        assert_eq!(r.status, status::INVALID, "{req:?}");
    }
    // Handles it never gave, and escapes by name, are errnos.
    for handle in [0, 7777, u64::MAX] {
        let r = ring(
            &mut dev,
            HostFsRequest {
                op: op::GETATTR,
                handle,
                ..Default::default()
            },
        );
        assert_eq!((r.status, r.error), (status::IO_ERROR, libc::EBADF as u32));
    }
    let (name_gpa, name_len) = named(&dev, b"..");
    let r = ring(
        &mut dev,
        HostFsRequest {
            op: op::LOOKUP,
            handle: root,
            name_gpa,
            name_len,
            ..Default::default()
        },
    );
    assert_eq!((r.status, r.error), (status::IO_ERROR, libc::EINVAL as u32));
    // Blocks that are misaligned or outside RAM are dropped; the wrong width stops the VM.
    assert_eq!(dev.handle(REQ + 4), None);
    assert_eq!(dev.handle(RAM - 8), None);
    assert_eq!(dev.handle(u64::MAX - 7), None);
    assert!(matches!(
        dev.write(0, &[1, 2]),
        IoAction::Stop(Outcome::GuestCrash { .. })
    ));
    // Still serving.
    let r = ring(
        &mut dev,
        HostFsRequest {
            op: op::GETATTR,
            handle: root,
            ..Default::default()
        },
    );
    assert_eq!(r.status, status::OK);
    assert_eq!(dev.fs().handle_count(), 1);
}

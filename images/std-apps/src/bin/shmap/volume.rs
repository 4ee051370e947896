//! `shmap`'s runs on host volumes (`--volume-file`, `--volume-exit`, `--volume-fill`),
//! which tests/tests/volume.rs and the volume scenarios drive.

use super::*;

/// `shmap --volume-file PATH` (run by tests/tests/volume.rs, which then checks the host
/// file, and by a scenario on a volume; the same on Linux): a shared writable mapping of a
/// new file at PATH (on a host volume under astra) sees `write`s and `read` sees its
/// stores; `msync`/`fsync` write it back; growing the file with `ftruncate` makes the new
/// page mappable, the page past the end is `SIGBUS`; a read-only open refuses `PROT_WRITE`
/// (EACCES). Leaves the file as `ABCD45xy89`, zeros, `Z` at 4096 + 50, size 4096 + 100,
/// and reads it back after closing; with `remove` (the scenario, which shares the host's
/// `/tmp`) removes it then.
pub(super) fn volume_file(path: &str, remove: bool) -> ExitCode {
    let run = || -> Result<(), String> {
        let f = file(path, 0)?;
        f.write_all_at(b"0123456789", 0)
            .map_err(|e| e.to_string())?;
        let m = map(&f, 3 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED)?;
        ensure(m.bytes(0, 4) == b"0123", || {
            "mapping misses the file".into()
        })?;
        m.put(0, b"ABCD");
        ensure(read_back(&f, 0, 6)? == b"ABCD45", || {
            "read misses the store".into()
        })?;
        f.write_all_at(b"xy", 6).map_err(|e| e.to_string())?;
        ensure(m.bytes(6, 2) == b"xy", || {
            "the mapping misses a write".into()
        })?;
        // SAFETY: msync of our own mapping.
        let r = unsafe { syscall3(26, m.addr, PAGE, 4) };
        ensure(r == 0, || format!("msync(MS_SYNC): {r}"))?;
        f.set_len(PAGE as u64 + 100).map_err(|e| e.to_string())?;
        ensure(m.get(PAGE + 50) == 0, || "grown part is not zeros".into())?;
        m.set(PAGE + 50, b'Z');
        // SAFETY: msync of our own mapping (MS_ASYNC).
        let r = unsafe { syscall3(26, m.addr, 2 * PAGE, 1) };
        ensure(r == 0, || format!("msync(MS_ASYNC): {r}"))?;
        f.sync_data().map_err(|e| format!("fdatasync: {e}"))?;
        let status = in_child(|| i32::from(m.get(2 * PAGE + 1)))?;
        ensure(status & 0x7f == SIGBUS, || {
            format!("past the end: wait status {status:#x}, not SIGBUS")
        })?;
        let ro = File::open(path).map_err(|e| e.to_string())?;
        let e = Map::new(ro.as_raw_fd(), PAGE, PROT_READ | PROT_WRITE, MAP_SHARED).err();
        ensure(e == Some(EACCES), || format!("read-only open: {e:?}"))?;
        drop(m);
        drop(ro);
        drop(f);
        let back = std::fs::read(path).map_err(|e| e.to_string())?;
        let mut want = b"ABCD45xy89".to_vec();
        want.resize(PAGE + 100, 0);
        want[PAGE + 50] = b'Z';
        ensure(back == want, || {
            format!(
                "read back {} bytes: {:?}...",
                back.len(),
                &back[..back.len().min(12)]
            )
        })?;
        if remove {
            std::fs::remove_file(path).map_err(|e| format!("remove {path}: {e}"))?;
        }
        Ok(())
    };
    match run() {
        Ok(()) => {
            println!("shmap: volume file: shared writable mapping written back");
            ExitCode::SUCCESS
        }
        Err(why) => {
            println!("shmap: volume file: {why}");
            ExitCode::FAILURE
        }
    }
}

/// `shmap --volume-exit PATH`: stores `exit` through a shared mapping of a new one-page
/// file at PATH and exits without `munmap`, `msync` or `close`: the exit writes it back.
pub(super) fn volume_exit(path: &str) -> ExitCode {
    let f = match file(path, PAGE) {
        Ok(f) => f,
        Err(why) => {
            println!("shmap: volume exit: {why}");
            return ExitCode::FAILURE;
        }
    };
    match map(&f, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED) {
        Ok(m) => {
            m.put(0, b"exit");
            println!("shmap: volume exit: stored");
            std::mem::forget(m);
            std::mem::forget(f);
            std::process::exit(0)
        }
        Err(why) => {
            println!("shmap: volume exit: {why}");
            ExitCode::FAILURE
        }
    }
}

/// `shmap --volume-fill DIR` (astra's own bound, run by tests/tests/volume.rs): stores
/// through a shared mapping of a sparse 1 GiB file on a volume fill the host-file page
/// cache (a quarter of guest memory); the store that finds it full gets SIGBUS (in a
/// child, where Linux would write back and evict), and once that mapping is gone a new
/// one works again.
pub(super) fn volume_fill(dir: &str) -> ExitCode {
    let run = || -> Result<(), String> {
        let path = format!("{dir}/shmap-fill.bin");
        fill_until_sigbus(&path)?;
        let g = file(&path, PAGE)?;
        let m = map(&g, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED)?;
        m.put(0, b"again");
        ensure(read_back(&g, 0, 5)? == b"again", || {
            "no page after the fill".into()
        })?;
        drop(m);
        std::fs::remove_file(&path).map_err(|e| e.to_string())
    };
    match run() {
        Ok(()) => {
            println!("shmap volume fill: a full page cache stopped the stores with SIGBUS, then recovered");
            ExitCode::SUCCESS
        }
        Err(why) => {
            println!("shmap volume fill: {why}");
            ExitCode::FAILURE
        }
    }
}

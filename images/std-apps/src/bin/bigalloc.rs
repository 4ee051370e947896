//! `bigalloc`: memory beyond the guest's RAM must be reservable as long as it is not
//! touched. Reserves 1 GiB with `Vec::with_capacity` (run it with `--mem 128M`), writes one
//! byte per 16 MiB of it (64 pages in all), fills and checks 32 MiB of fresh memory, then
//! frees both and exits 0.

use std::process::ExitCode;

use astra_std_apps::checks::{ensure, Checks};

/// The reservation.
const RESERVE: usize = 1 << 30;
/// Distance between the bytes written in the reservation.
const STRIDE: usize = 16 << 20;
/// Memory filled and checked after the reservation.
const FILLED: usize = 32 << 20;

fn main() -> ExitCode {
    let mut checks = Checks::stdout("bigalloc");
    checks.run("reserve_1gib_sparse", || {
        let mut big: Vec<u8> = Vec::with_capacity(RESERVE);
        ensure(big.capacity() >= RESERVE, || {
            format!("capacity {}", big.capacity())
        })?;
        let base = big.as_mut_ptr();
        for offset in (0..RESERVE).step_by(STRIDE) {
            // SAFETY: `offset < capacity`, so the byte is inside the allocation; the Vec's
            // length stays 0, so these bytes are only ever reached through `base`.
            unsafe { base.add(offset).write_volatile((offset / STRIDE) as u8) };
        }
        for offset in (0..RESERVE).step_by(STRIDE) {
            // SAFETY: as above; the byte was written just before.
            let value = unsafe { base.add(offset).read_volatile() };
            ensure(value == (offset / STRIDE) as u8, || {
                format!("byte at +{offset:#x} is {value}")
            })?;
        }
        Ok(format!(
            "{} MiB at {base:p}, {} pages touched",
            RESERVE >> 20,
            RESERVE / STRIDE
        ))
    });
    checks.run("fill_32mib_after", || {
        let mut buf = vec![0u8; FILLED];
        for (i, b) in buf.iter_mut().enumerate() {
            *b = (i % 253) as u8;
        }
        let bad = buf
            .iter()
            .enumerate()
            .position(|(i, &b)| b != (i % 253) as u8);
        ensure(bad.is_none(), || format!("byte {bad:?} reads back wrong"))?;
        Ok(format!("{} MiB", FILLED >> 20))
    });
    checks.finish()
}

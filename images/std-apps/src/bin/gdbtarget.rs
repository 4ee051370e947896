//! `gdbtarget`: the program the gdb tests debug (tests/tests/gdb.rs). `gdbtarget` adds to a
//! global through a function that is not inlined and exits with status 3 whatever the
//! sum; `gdbtarget spin` first spins until a debugger sets `STOP`; `gdbtarget sleep` first
//! sleeps 3 s (the kernel halts the CPU meanwhile); `gdbtarget threads` first starts two
//! threads that wait on a barrier while the main thread calls `bump` (so a debugger
//! stopped there sees three threads, two of them blocked in the kernel).

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};

/// The global the tests print and watch.
static COUNTER: AtomicU64 = AtomicU64::new(0);
/// Set (by a debugger: `set var gdbtarget::STOP = 1`) to end `spin`. A plain static, as
/// gdb cannot assign to an atomic's cell.
static mut STOP: u64 = 0;

#[inline(never)]
fn bump(n: u64) -> u64 {
    COUNTER.fetch_add(n, Ordering::SeqCst) + n
}

fn main() {
    let start = black_box(41u64);
    if std::env::args().nth(1).as_deref() == Some("sleep") {
        std::thread::sleep(std::time::Duration::from_secs(3));
    }
    if std::env::args().nth(1).as_deref() == Some("spin") {
        // SAFETY: a volatile read of a static only a debugger writes.
        while unsafe { std::ptr::read_volatile(&raw const STOP) } == 0 {
            std::hint::spin_loop();
        }
    }
    let waiters = if std::env::args().nth(1).as_deref() == Some("threads") {
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(3));
        let started = std::sync::Arc::new(std::sync::Barrier::new(3));
        let handles: Vec<_> = (0..2)
            .map(|i| {
                let (b, s) = (barrier.clone(), started.clone());
                std::thread::Builder::new()
                    .name(format!("waiter{i}"))
                    .spawn(move || {
                        s.wait();
                        b.wait();
                    })
                    .expect("spawn")
            })
            .collect();
        started.wait();
        Some((barrier, handles))
    } else {
        None
    };
    let sum = bump(start);
    if let Some((barrier, handles)) = waiters {
        barrier.wait();
        for h in handles {
            h.join().expect("join");
        }
    }
    println!("counter {sum}");
    std::process::exit(3);
}

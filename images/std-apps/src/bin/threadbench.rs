//! Thread micro-benchmarks for `make bench` (run the same binary on the host and in astra):
//! spawn+join, futex ping-pong between two threads (a Mutex/Condvar round trip), Mutex
//! contention with 4 threads, and the yield cost of two threads taking turns (a context
//! switch each). Prints `threadbench <name> ns=<median ns per operation>` lines.

use std::sync::{Arc, Barrier, Condvar, Mutex};
use std::thread;
use std::time::Instant;

/// Median of `rounds` timings of `f`, each divided by `ops`.
fn measure(rounds: usize, ops: u64, mut f: impl FnMut()) -> u64 {
    let mut ns: Vec<u64> = (0..rounds)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_nanos() as u64 / ops
        })
        .collect();
    ns.sort_unstable();
    ns[ns.len() / 2]
}

fn spawn_join() -> u64 {
    measure(9, 20, || {
        for _ in 0..20 {
            thread::spawn(|| std::hint::black_box(1)).join().unwrap();
        }
    })
}

fn ping_pong() -> u64 {
    const ROUNDS: u32 = 200;
    measure(5, ROUNDS as u64, || {
        let pair = Arc::new((Mutex::new(0u32), Condvar::new()));
        let other = {
            let pair = Arc::clone(&pair);
            thread::spawn(move || {
                let (m, cv) = &*pair;
                for i in 0..ROUNDS {
                    let mut t = cv
                        .wait_while(m.lock().unwrap(), |t| *t != 2 * i + 1)
                        .unwrap();
                    *t += 1;
                    cv.notify_one();
                }
            })
        };
        let (m, cv) = &*pair;
        for i in 0..ROUNDS {
            let mut t = cv.wait_while(m.lock().unwrap(), |t| *t != 2 * i).unwrap();
            *t += 1;
            cv.notify_one();
        }
        other.join().unwrap();
    })
}

fn mutex_contention() -> u64 {
    const PER_THREAD: u64 = 20_000;
    measure(5, 4 * PER_THREAD, || {
        let m = Arc::new(Mutex::new(0u64));
        let start = Arc::new(Barrier::new(4));
        let hs: Vec<_> = (0..4)
            .map(|_| {
                let (m, start) = (Arc::clone(&m), Arc::clone(&start));
                thread::spawn(move || {
                    start.wait();
                    for _ in 0..PER_THREAD {
                        *m.lock().unwrap() += 1;
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        assert_eq!(*m.lock().unwrap(), 4 * PER_THREAD);
    })
}

fn yield_switch() -> u64 {
    const YIELDS: u64 = 2_000;
    measure(5, 2 * YIELDS, || {
        let start = Arc::new(Barrier::new(2));
        let other = {
            let start = Arc::clone(&start);
            thread::spawn(move || {
                start.wait();
                for _ in 0..YIELDS {
                    thread::yield_now();
                }
            })
        };
        start.wait();
        for _ in 0..YIELDS {
            thread::yield_now();
        }
        other.join().unwrap();
    })
}

fn main() {
    for (name, f) in [
        ("spawn_join", spawn_join as fn() -> u64),
        ("futex_ping_pong", ping_pong),
        ("mutex_4_threads", mutex_contention),
        ("yield_switch", yield_switch),
    ] {
        println!("threadbench {name} ns={}", f());
    }
}

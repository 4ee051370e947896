//! std threads conformance: spawn/join, scoped threads, the std sync primitives, thread
//! locals, names, panics, many threads at once, sleeping without spinning, preemption and
//! park/unpark. One `PASS`/`FAIL` line per check.
//!
//! `threads overflow` overflows a spawned thread's stack (std reports it and aborts);
//! `threads bomb` spawns threads until the system refuses or 10,000 run, then joins them.

use std::cell::Cell;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Barrier, Condvar, Mutex, Once, OnceLock, RwLock};
use std::thread;
use std::time::{Duration, Instant};

use astra_std_apps::checks::{CheckResult, Checks};
use astra_std_apps::sys;

fn ensure(cond: bool, why: impl FnOnce() -> String) -> Result<(), String> {
    if cond {
        Ok(())
    } else {
        Err(why())
    }
}

fn spawn_join_values() -> CheckResult {
    let handles: Vec<_> = (0..4u64).map(|i| thread::spawn(move || i * i)).collect();
    let sum: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
    ensure(sum == 14, || format!("sum of squares {sum}"))?;
    Ok("4 threads".into())
}

fn scoped() -> CheckResult {
    let mut data = vec![1u64; 1000];
    thread::scope(|s| {
        for chunk in data.chunks_mut(250) {
            s.spawn(move || chunk.iter_mut().for_each(|x| *x *= 3));
        }
    });
    let total: u64 = data.iter().sum();
    ensure(total == 3000, || format!("total {total}"))?;
    Ok(String::new())
}

fn mutex_counter() -> CheckResult {
    let counter = Arc::new(Mutex::new(0u64));
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let c = Arc::clone(&counter);
            thread::spawn(move || {
                for _ in 0..20_000 {
                    *c.lock().unwrap() += 1;
                }
            })
        })
        .collect();
    for h in handles {
        h.join().map_err(|_| "a worker panicked")?;
    }
    let n = *counter.lock().unwrap();
    ensure(n == 160_000, || format!("counter {n}"))?;
    Ok("8 x 20000".into())
}

fn rwlock() -> CheckResult {
    let lock = Arc::new(RwLock::new(vec![0u32; 16]));
    let writer = {
        let l = Arc::clone(&lock);
        thread::spawn(move || {
            for round in 1..=200u32 {
                let mut v = l.write().unwrap();
                v.iter_mut().for_each(|x| *x = round);
            }
        })
    };
    let readers: Vec<_> = (0..4)
        .map(|_| {
            let l = Arc::clone(&lock);
            thread::spawn(move || {
                for _ in 0..200 {
                    let v = l.read().unwrap();
                    // A reader never sees a half-written vector.
                    assert!(v.iter().all(|&x| x == v[0]), "torn read");
                }
            })
        })
        .collect();
    writer.join().map_err(|_| "writer panicked")?;
    for r in readers {
        r.join().map_err(|_| "a reader saw a torn write")?;
    }
    ensure(lock.read().unwrap()[7] == 200, || "final value".into())?;
    Ok(String::new())
}

fn condvar_ping_pong() -> CheckResult {
    let pair = Arc::new((Mutex::new(0u32), Condvar::new()));
    const ROUNDS: u32 = 500;
    let other = {
        let pair = Arc::clone(&pair);
        thread::spawn(move || {
            let (m, cv) = &*pair;
            for i in 0..ROUNDS {
                let mut turn = cv
                    .wait_while(m.lock().unwrap(), |t| *t != 2 * i + 1)
                    .unwrap();
                *turn += 1;
                cv.notify_one();
            }
        })
    };
    let (m, cv) = &*pair;
    for i in 0..ROUNDS {
        let mut turn = cv.wait_while(m.lock().unwrap(), |t| *t != 2 * i).unwrap();
        *turn += 1;
        cv.notify_one();
    }
    other.join().map_err(|_| "the other side panicked")?;
    let t = *m.lock().unwrap();
    ensure(t == 2 * ROUNDS, || format!("turn {t}"))?;
    Ok(format!("{ROUNDS} round trips"))
}

fn channels() -> CheckResult {
    let (tx, rx) = mpsc::channel();
    for p in 0..4u64 {
        let tx = tx.clone();
        thread::spawn(move || {
            for i in 0..1000 {
                tx.send(p * 1000 + i).unwrap();
            }
        });
    }
    drop(tx);
    let got: Vec<u64> = rx.iter().collect();
    ensure(got.len() == 4000, || format!("{} messages", got.len()))?;
    ensure(got.iter().sum::<u64>() == (0..4000).sum(), || "sum".into())?;
    let (stx, srx) = mpsc::sync_channel(0);
    let h = thread::spawn(move || (0..100u32).map(|_| srx.recv().unwrap()).sum::<u32>());
    for i in 0..100 {
        stx.send(i).map_err(|e| e.to_string())?;
    }
    let s = h.join().map_err(|_| "receiver panicked")?;
    ensure(s == 4950, || format!("rendezvous sum {s}"))?;
    Ok(String::new())
}

fn barrier() -> CheckResult {
    let b = Arc::new(Barrier::new(8));
    let arrived = Arc::new(AtomicUsize::new(0));
    let hs: Vec<_> = (0..8)
        .map(|_| {
            let (b, a) = (Arc::clone(&b), Arc::clone(&arrived));
            thread::spawn(move || {
                let mut leaders = 0;
                for round in 1..=3 {
                    a.fetch_add(1, Ordering::SeqCst);
                    if b.wait().is_leader() {
                        leaders += 1;
                    }
                    // Everyone of this round arrived before anyone passed.
                    assert!(a.load(Ordering::SeqCst) >= 8 * round);
                    b.wait();
                }
                leaders
            })
        })
        .collect();
    let leaders: usize = hs.into_iter().map(|h| h.join().unwrap()).sum();
    ensure(leaders == 3, || format!("{leaders} leaders in 3 rounds"))?;
    Ok(String::new())
}

static DROPPED: AtomicUsize = AtomicUsize::new(0);

struct CountsDrop(Cell<u32>);

impl Drop for CountsDrop {
    fn drop(&mut self) {
        DROPPED.fetch_add(self.0.get() as usize, Ordering::SeqCst);
    }
}

thread_local! {
    static LOCAL: CountsDrop = const { CountsDrop(Cell::new(0)) };
}

fn thread_locals() -> CheckResult {
    let hs: Vec<_> = (1..=4u32)
        .map(|i| thread::spawn(move || LOCAL.with(|l| l.0.set(i))))
        .collect();
    for h in hs {
        h.join().unwrap();
    }
    LOCAL.with(|l| l.0.set(100));
    let d = DROPPED.load(Ordering::SeqCst);
    ensure(d == 10, || {
        format!("destructors added {d}, expected 1+2+3+4")
    })?;
    Ok(String::new())
}

fn once() -> CheckResult {
    static ONCE: Once = Once::new();
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    static CELL: OnceLock<u64> = OnceLock::new();
    let hs: Vec<_> = (0..8u64)
        .map(|i| {
            thread::spawn(move || {
                ONCE.call_once(|| {
                    RUNS.fetch_add(1, Ordering::SeqCst);
                });
                *CELL.get_or_init(|| 1000 + i) >= 1000
            })
        })
        .collect();
    for h in hs {
        ensure(h.join().unwrap(), || "OnceLock value".into())?;
    }
    ensure(RUNS.load(Ordering::SeqCst) == 1, || {
        "Once ran more than once".into()
    })?;
    Ok(String::new())
}

fn names_and_ids() -> CheckResult {
    let main_id = thread::current().id();
    let h = thread::Builder::new()
        .name("worker-7".into())
        .spawn(|| {
            (
                thread::current().name().map(String::from),
                thread::current().id(),
            )
        })
        .map_err(|e| e.to_string())?;
    let (name, id) = h.join().unwrap();
    ensure(name.as_deref() == Some("worker-7"), || {
        format!("name {name:?}")
    })?;
    ensure(id != main_id, || "same id as main".into())?;
    ensure(thread::current().name() == Some("main"), || {
        "main's name".into()
    })?;
    Ok(String::new())
}

fn panic_is_join_error() -> CheckResult {
    let h = thread::Builder::new()
        .name("doomed".into())
        .spawn(|| -> u32 { panic!("thread panic test") })
        .map_err(|e| e.to_string())?;
    match h.join() {
        Ok(v) => Err(format!("join returned {v}")),
        Err(payload) => {
            let msg = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .unwrap_or_default();
            ensure(msg == "thread panic test", || format!("payload {msg:?}"))?;
            Ok(String::new())
        }
    }
}

fn many_alive() -> CheckResult {
    const N: usize = 64;
    let b = Arc::new(Barrier::new(N + 1));
    let hs: Vec<_> = (0..N)
        .map(|i| {
            let b = Arc::clone(&b);
            thread::Builder::new()
                .stack_size(64 << 10)
                .spawn(move || {
                    b.wait();
                    i
                })
                .map_err(|e| format!("thread {i}: {e}"))
        })
        .collect::<Result<_, _>>()?;
    b.wait();
    let sum: usize = hs.into_iter().map(|h| h.join().unwrap()).sum();
    ensure(sum == N * (N - 1) / 2, || format!("sum {sum}"))?;
    Ok(format!("{N} at once"))
}

fn cpu_time() -> Result<Duration, String> {
    sys::clock_time(sys::CLOCK_PROCESS_CPUTIME_ID).map_err(|e| e.to_string())
}

fn sleep_does_not_spin() -> CheckResult {
    let before = cpu_time()?;
    let wall = Instant::now();
    thread::sleep(Duration::from_millis(200));
    let slept = wall.elapsed();
    let used = cpu_time()? - before;
    ensure(slept >= Duration::from_millis(200), || {
        format!("slept {slept:?}")
    })?;
    ensure(used < Duration::from_millis(50), || {
        format!("sleeping 200 ms used {used:?} of CPU time")
    })?;
    Ok(format!("{used:?} CPU in {slept:?}"))
}

fn preemption() -> CheckResult {
    let stop = Arc::new(AtomicBool::new(false));
    let spinners: Vec<_> = (0..2)
        .map(|_| {
            let stop = Arc::clone(&stop);
            thread::spawn(move || {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    n = n.wrapping_add(1);
                    std::hint::spin_loop();
                }
                n
            })
        })
        .collect();
    let sleeper = thread::spawn(|| {
        let t = Instant::now();
        thread::sleep(Duration::from_millis(50));
        t.elapsed()
    });
    let late = sleeper.join().unwrap();
    stop.store(true, Ordering::Relaxed);
    let spun: Vec<u64> = spinners.into_iter().map(|h| h.join().unwrap()).collect();
    ensure(late < Duration::from_millis(500), || {
        format!("a 50 ms sleep beside two spinning threads took {late:?}")
    })?;
    ensure(spun.iter().all(|&n| n > 0), || "a spinner never ran".into())?;
    Ok(format!("sleeper woke after {late:?}"))
}

fn park_unpark() -> CheckResult {
    let flag = Arc::new(AtomicBool::new(false));
    let f = Arc::clone(&flag);
    let h = thread::spawn(move || {
        while !f.load(Ordering::SeqCst) {
            thread::park();
        }
        true
    });
    thread::sleep(Duration::from_millis(20));
    flag.store(true, Ordering::SeqCst);
    h.thread().unpark();
    ensure(h.join().unwrap(), || "parked thread".into())?;
    Ok(String::new())
}

fn overflow() -> ExitCode {
    fn recurse(depth: u64) -> u64 {
        let pad = [depth; 64];
        std::hint::black_box(&pad);
        if std::hint::black_box(depth) == u64::MAX {
            return 0;
        }
        recurse(depth + 1) + pad[3]
    }
    println!("threads: overflowing a thread's stack");
    let h = thread::spawn(|| recurse(0));
    let _ = h.join();
    println!("threads: the overflow was survived?");
    ExitCode::FAILURE
}

fn bomb() -> ExitCode {
    const MAX: usize = 10_000;
    let stop = Arc::new(AtomicBool::new(false));
    let mut handles = Vec::new();
    let mut error = None;
    while handles.len() < MAX {
        let stop = Arc::clone(&stop);
        match thread::Builder::new().stack_size(16 << 10).spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                thread::park();
            }
        }) {
            Ok(h) => handles.push(h),
            Err(e) => {
                error = Some(e);
                break;
            }
        }
    }
    match &error {
        Some(e) => println!("bomb: refused after {} threads: {e}", handles.len()),
        None => println!("bomb: {} threads", handles.len()),
    }
    stop.store(true, Ordering::SeqCst);
    for h in &handles {
        h.thread().unpark();
    }
    let n = handles.len();
    for h in handles {
        if h.join().is_err() {
            println!("bomb: a thread panicked");
            return ExitCode::FAILURE;
        }
    }
    println!("bomb: survived, joined {n}");
    ExitCode::SUCCESS
}

fn main() -> ExitCode {
    match std::env::args().nth(1).as_deref() {
        Some("overflow") => return overflow(),
        Some("bomb") => return bomb(),
        _ => {}
    }
    let mut checks = Checks::stdout("threads");
    checks.run("spawn_join_values", spawn_join_values);
    checks.run("scope", scoped);
    checks.run("mutex_counter", mutex_counter);
    checks.run("rwlock", rwlock);
    checks.run("condvar_ping_pong", condvar_ping_pong);
    checks.run("channels", channels);
    checks.run("barrier", barrier);
    checks.run("thread_local_destructors", thread_locals);
    checks.run("once", once);
    checks.run("names_and_ids", names_and_ids);
    checks.run("panic_is_join_error", panic_is_join_error);
    checks.run("many_alive", many_alive);
    checks.run("sleep_does_not_spin", sleep_does_not_spin);
    checks.run("preemption", preemption);
    checks.run("park_unpark", park_unpark);
    checks.finish()
}

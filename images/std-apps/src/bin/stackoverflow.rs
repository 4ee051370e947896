//! `stackoverflow [--thread]`: unbounded recursion.
//!
//! On the main thread (the default) the process must die of the fault, status 139. std
//! prints no "has overflowed its stack" there on musl: musl cannot tell std where the main
//! thread's stack ends, so std installs no guard range for it and its SIGSEGV handler
//! leaves the fault to kill the process, exactly as on Linux.
//!
//! With `--thread` the recursion runs on a spawned thread, whose guard page std knows: on
//! Linux std prints `thread 'overflow' has overflowed its stack` and aborts (status 134).
//! Where threads cannot be spawned it says so and exits 1.

/// Recurses forever; the array and `black_box` keep each frame large and the recursion real.
#[allow(unconditional_recursion)] // the point of the program
fn recurse(depth: u64) -> u64 {
    let frame = std::hint::black_box([depth; 64]);
    recurse(depth + 1).wrapping_add(frame[depth as usize % 64])
}

fn main() {
    let on_thread = std::env::args().nth(1).as_deref() == Some("--thread");
    if !on_thread {
        println!("stackoverflow: recursing");
        let result = recurse(std::hint::black_box(0));
        println!("stackoverflow: recursion returned {result}");
        return;
    }
    println!("stackoverflow: recursing on a thread");
    let spawned = std::thread::Builder::new()
        .name("overflow".into())
        .spawn(|| recurse(std::hint::black_box(0)));
    match spawned {
        Ok(handle) => {
            let result = handle.join();
            println!("stackoverflow: the thread ended: {result:?}");
        }
        Err(e) => {
            eprintln!("stackoverflow: cannot spawn a thread: {e}");
            std::process::exit(1);
        }
    }
}

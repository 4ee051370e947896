//! `segv`: writes through a null pointer. The kernel must kill it with SIGSEGV (status 139):
//! std's SIGSEGV handler sees a fault outside any stack guard and lets it kill the process.

fn main() {
    println!("segv: writing through a null pointer");
    let ptr = std::hint::black_box(std::ptr::null_mut::<u64>());
    // SAFETY: not safe, on purpose: this program exists to fault. `black_box` hides the null
    // from the optimizer and the volatile write keeps the store.
    unsafe { ptr.write_volatile(0xdead_beef) };
    eprintln!("segv: the write through a null pointer did not fault");
    std::process::exit(1);
}

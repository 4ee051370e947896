//! `panic`: panics with a known message. Like any std program it must print
//! `thread 'main' panicked at ...` and the message on standard error and exit with 101.

fn main() {
    let answer = std::hint::black_box(42);
    println!("panic: about to panic");
    panic!("astra panic test: the answer is {answer}");
}

//! `hello-std`: the smallest std program, for the boot benchmark.

fn main() {
    println!("Hello from Rust std!");
}

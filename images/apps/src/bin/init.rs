//! `init`: the program the kernel runs when none is named; greets and exits 0.
#![no_std]
#![no_main]

use guest_std::{entry, println, process};

entry!(main);

fn main(_args: guest_std::env::Args) -> i32 {
    println!("astra init: hello from PID {}", process::id());
    0
}

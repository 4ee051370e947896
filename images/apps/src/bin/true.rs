//! `true`: exits 0.
#![no_std]
#![no_main]

guest_std::entry!(main);

fn main(_args: guest_std::env::Args) -> i32 {
    0
}

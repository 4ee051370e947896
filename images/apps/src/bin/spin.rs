//! `spin`: runs forever without a system call, for timeout and preemption tests.
#![no_std]
#![no_main]

guest_std::entry!(main);

fn main(_args: guest_std::env::Args) -> i32 {
    loop {
        core::hint::spin_loop();
    }
}

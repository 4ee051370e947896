//! `hello`: greets, then echoes its arguments (argv[0] included) on one line:
//!
//! ```text
//! Hello from astra!
//! argv: /bin/hello a b
//! ```
#![no_std]
#![no_main]

use core::fmt;

use guest_std::env::Args;
use guest_std::io::Bytes;
use guest_std::{entry, println};

entry!(main);

/// The arguments separated by spaces, formatted as one piece so the line is one write.
struct SpaceSeparated(Args);

impl fmt::Display for SpaceSeparated {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, arg) in self.0.clone().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{}", Bytes(arg))?;
        }
        Ok(())
    }
}

fn main(args: Args) -> i32 {
    println!("Hello from astra!");
    println!("argv: {}", SpaceSeparated(args));
    0
}

//! `isatty`: says whether standard input, output and error are terminals, as
//! `std::io::IsTerminal` sees them, on one line:
//! `isatty: stdin=no stdout=no stderr=no` (under a test harness: `/dev/null` and pipes).

use std::io::{self, IsTerminal};

fn yes_no(terminal: bool) -> &'static str {
    if terminal {
        "yes"
    } else {
        "no"
    }
}

fn main() {
    println!(
        "isatty: stdin={} stdout={} stderr={}",
        yes_no(io::stdin().is_terminal()),
        yes_no(io::stdout().is_terminal()),
        yes_no(io::stderr().is_terminal())
    );
}

//! `stackoverflow`: unbounded recursion on the main thread. std's guard-page handler must
//! print `thread 'main' has overflowed its stack` and abort the process.

/// Recurses forever; the array and `black_box` keep each frame large and the recursion real.
#[allow(unconditional_recursion)] // the point of the program
fn recurse(depth: u64) -> u64 {
    let frame = std::hint::black_box([depth; 64]);
    recurse(depth + 1).wrapping_add(frame[depth as usize % 64])
}

fn main() {
    println!("stackoverflow: recursing");
    let result = recurse(std::hint::black_box(0));
    println!("stackoverflow: recursion returned {result}");
}

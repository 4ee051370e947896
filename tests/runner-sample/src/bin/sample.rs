//! `cargo run` through the runner: counts the words of its arguments, or of the fixture.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let text = if args.is_empty() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/words.txt");
        std::fs::read_to_string(path).expect("the fixture")
    } else {
        args.join(" ")
    };
    println!("sample: {} words", runner_sample::word_count(&text));
}

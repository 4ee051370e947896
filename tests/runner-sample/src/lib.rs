//! The code under test: a word counter and a summing helper for the threads test.

/// The number of whitespace-separated words in `text`.
pub fn word_count(text: &str) -> usize {
    text.split_whitespace().count()
}

/// The sum of `1..=n`, computed by `threads` threads each taking every `threads`-th number.
pub fn parallel_sum(n: u64, threads: u64) -> u64 {
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            std::thread::spawn(move || {
                (1..=n)
                    .skip(t as usize)
                    .step_by(threads as usize)
                    .sum::<u64>()
            })
        })
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_words() {
        assert_eq!(word_count("one two  three\n"), 3);
    }

    #[test]
    fn threads_sum_like_the_formula() {
        assert_eq!(parallel_sum(10_000, 4), 10_000 * 10_001 / 2);
    }

    #[cfg(feature = "fail")]
    #[test]
    fn deliberately_fails() {
        assert_eq!(word_count("a b"), 3, "this test fails on purpose");
    }
}

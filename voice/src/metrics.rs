//! Recognition quality metrics: word error rate for tests, benchmarks and the eval harness.

/// Lower case, punctuation dropped (apostrophes kept), split on whitespace.
pub fn normalized_words(text: &str) -> Vec<String> {
    text.to_lowercase()
        .split(|c: char| !c.is_alphanumeric() && c != '\'')
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

/// Word error rate: word-level Levenshtein distance (substitutions, insertions, deletions)
/// over the reference length, after [`normalized_words`].
pub fn word_error_rate(reference: &str, hypothesis: &str) -> f64 {
    let (r, h) = (normalized_words(reference), normalized_words(hypothesis));
    let mut prev: Vec<usize> = (0..=h.len()).collect();
    for (i, rw) in r.iter().enumerate() {
        let mut cur = vec![i + 1; h.len() + 1];
        for (j, hw) in h.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(rw != hw))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[h.len()] as f64 / r.len().max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::word_error_rate as wer;

    #[test]
    fn counts_substitutions_insertions_and_deletions() {
        assert_eq!(wer("call me back", "Call me back."), 0.0);
        assert!((wer("call me back", "call back") - 1.0 / 3.0).abs() < 1e-9);
        assert!((wer("call me back", "please call me back now") - 2.0 / 3.0).abs() < 1e-9);
        assert!((wer("a b c d", "a x c d") - 0.25).abs() < 1e-9);
        assert!((wer("I'm busy", "im busy") - 0.5).abs() < 1e-9);
    }
}

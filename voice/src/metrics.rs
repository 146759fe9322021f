//! Recognition quality metrics: word error rate (English) and character error rate (Chinese) for
//! tests, benchmarks and the eval harness, with the text normalization both sides get.

/// Lower case, punctuation dropped (apostrophes kept), split on whitespace; numbers spelled out
/// in words become digits and "$40" becomes "40 dollars", so "six thirty" matches Whisper's
/// "6:30" and "two hundred and fifty dollars" its "$250".
pub fn normalized_words(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    for raw in text.to_lowercase().split_whitespace() {
        // "1,000" is one number; "$40" is "40 dollars"; "5%" is "5 percent".
        let joined: String = raw
            .char_indices()
            .filter(|&(i, c)| {
                !(c == ','
                    && raw[..i].ends_with(|p: char| p.is_ascii_digit())
                    && raw[i + 1..].starts_with(|n: char| n.is_ascii_digit()))
            })
            .map(|(_, c)| c)
            .collect();
        let dollars = joined.starts_with('$');
        let percent = joined.trim_end_matches(['.', ',', '!', '?']).ends_with('%');
        words.extend(
            joined
                .split(|c: char| !c.is_alphanumeric() && c != '\'')
                .map(|w| w.trim_matches('\''))
                .filter(|w| !w.is_empty())
                .map(str::to_string),
        );
        if dollars {
            words.push("dollars".into());
        }
        if percent {
            words.push("percent".into());
        }
    }
    numbers_to_digits(words)
}

/// What a number word contributes.
#[derive(Debug, Clone, Copy, PartialEq)]
enum NumberWord {
    /// zero to nineteen.
    Small(u64),
    /// twenty to ninety.
    Tens(u64),
    Hundred,
    Thousand,
}

fn number_word(w: &str) -> Option<NumberWord> {
    const SMALL: [&str; 20] = [
        "zero",
        "one",
        "two",
        "three",
        "four",
        "five",
        "six",
        "seven",
        "eight",
        "nine",
        "ten",
        "eleven",
        "twelve",
        "thirteen",
        "fourteen",
        "fifteen",
        "sixteen",
        "seventeen",
        "eighteen",
        "nineteen",
    ];
    const TENS: [&str; 8] = [
        "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety",
    ];
    if let Some(i) = SMALL.iter().position(|&s| s == w) {
        return Some(NumberWord::Small(i as u64));
    }
    if let Some(i) = TENS.iter().position(|&s| s == w) {
        return Some(NumberWord::Tens(20 + 10 * i as u64));
    }
    match w {
        "hundred" => Some(NumberWord::Hundred),
        "thousand" => Some(NumberWord::Thousand),
        _ => None,
    }
}

/// Replaces runs of number words by their value in digits: "two hundred and fifty" → "250",
/// "forty two" → "42", "six thirty" → "6 30" (two numbers, as a time is said).
fn numbers_to_digits(words: Vec<String>) -> Vec<String> {
    /// A number being read: the value so far and what its last word was.
    struct Open {
        thousands: u64,
        value: u64,
        last: NumberWord,
    }
    fn close(open: &mut Option<Open>, out: &mut Vec<String>) {
        if let Some(n) = open.take() {
            out.push((n.thousands + n.value).to_string());
        }
    }
    let mut out = Vec::with_capacity(words.len());
    let mut open: Option<Open> = None;
    for (i, word) in words.iter().enumerate() {
        let Some(kind) = number_word(word) else {
            // "two hundred and fifty": "and" inside a number after hundred or thousand.
            let joins = word == "and"
                && open
                    .as_ref()
                    .is_some_and(|n| matches!(n.last, NumberWord::Hundred | NumberWord::Thousand))
                && words
                    .get(i + 1)
                    .and_then(|w| number_word(w))
                    .is_some_and(|k| {
                        matches!(k, NumberWord::Small(v) if v > 0)
                            || matches!(k, NumberWord::Tens(_))
                    });
            if !joins {
                close(&mut open, &mut out);
                out.push(word.clone());
            }
            continue;
        };
        let extends = match (&open, kind) {
            (None, _) => false,
            (Some(n), NumberWord::Small(v)) => {
                v > 0
                    && match n.last {
                        NumberWord::Tens(_) => v < 10,
                        NumberWord::Hundred | NumberWord::Thousand => true,
                        NumberWord::Small(_) => false,
                    }
            }
            (Some(n), NumberWord::Tens(_)) => {
                matches!(n.last, NumberWord::Hundred | NumberWord::Thousand)
            }
            (Some(n), NumberWord::Hundred) => {
                matches!(n.last, NumberWord::Small(_) | NumberWord::Tens(_))
                    && n.value % 100 == n.value
            }
            (Some(n), NumberWord::Thousand) => !matches!(n.last, NumberWord::Thousand),
        };
        if !extends {
            close(&mut open, &mut out);
            match kind {
                NumberWord::Small(v) | NumberWord::Tens(v) => {
                    open = Some(Open {
                        thousands: 0,
                        value: v,
                        last: kind,
                    });
                }
                // "hundred" or "thousand" alone ("a hundred") stays a word.
                NumberWord::Hundred | NumberWord::Thousand => out.push(word.clone()),
            }
            continue;
        }
        if let Some(n) = open.as_mut() {
            match kind {
                NumberWord::Small(v) | NumberWord::Tens(v) => n.value += v,
                NumberWord::Hundred => n.value *= 100,
                NumberWord::Thousand => {
                    n.thousands = (n.thousands + n.value) * 1000;
                    n.value = 0;
                }
            }
            n.last = kind;
        }
    }
    close(&mut open, &mut out);
    out
}

/// Word error rate: word-level Levenshtein distance (substitutions, insertions, deletions)
/// over the reference length, after [`normalized_words`].
pub fn word_error_rate(reference: &str, hypothesis: &str) -> f64 {
    let (r, h) = (normalized_words(reference), normalized_words(hypothesis));
    edit_distance(&r, &h) as f64 / r.len().max(1) as f64
}

/// The characters a Chinese transcript is scored on: punctuation and whitespace dropped, Latin
/// letters lower-cased, traditional characters converted to simplified.
pub fn normalized_chars(text: &str) -> Vec<char> {
    crate::asr::to_simplified(text)
        .chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// Character error rate: character-level Levenshtein distance over the reference length, after
/// [`normalized_chars`]. Above 1 when the hypothesis has many more characters than the
/// reference (a hallucination).
pub fn char_error_rate(reference: &str, hypothesis: &str) -> f64 {
    let (r, h) = (normalized_chars(reference), normalized_chars(hypothesis));
    edit_distance(&r, &h) as f64 / r.len().max(1) as f64
}

/// Spans of `n` units (words or characters) that `hypothesis` holds more often than
/// `reference` does, each once: what a decoding loop leaves ("… the whole family. It lives with
/// the …" said again). Units are compared after the same normalization as the error rates.
pub fn repeated_spans<T: PartialEq + Clone>(
    reference: &[T],
    hypothesis: &[T],
    n: usize,
) -> Vec<Vec<T>> {
    let count = |units: &[T], span: &[T]| units.windows(n).filter(|w| *w == span).count();
    let mut found: Vec<Vec<T>> = Vec::new();
    if n == 0 {
        return found;
    }
    for span in hypothesis.windows(n) {
        if found.iter().any(|f| f.as_slice() == span) {
            continue;
        }
        if count(hypothesis, span) > count(reference, span).max(1) {
            found.push(span.to_vec());
        }
    }
    found
}

/// Levenshtein distance between two sequences.
fn edit_distance<T: PartialEq>(r: &[T], h: &[T]) -> usize {
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
    prev[h.len()]
}

#[cfg(test)]
mod tests {
    use super::{char_error_rate as cer, normalized_words, word_error_rate as wer};

    #[test]
    fn counts_substitutions_insertions_and_deletions() {
        assert_eq!(wer("call me back", "Call me back."), 0.0);
        assert!((wer("call me back", "call back") - 1.0 / 3.0).abs() < 1e-9);
        assert!((wer("call me back", "please call me back now") - 2.0 / 3.0).abs() < 1e-9);
        assert!((wer("a b c d", "a x c d") - 0.25).abs() < 1e-9);
        assert!((wer("I'm busy", "im busy") - 0.5).abs() < 1e-9);
    }

    #[test]
    fn numbers_in_words_and_digits_compare_equal() {
        let n = |s: &str| normalized_words(s).join(" ");
        assert_eq!(n("Call me after six thirty."), "call me after 6 30");
        assert_eq!(n("Call me after 6:30."), "call me after 6 30");
        assert_eq!(
            n("I paid two hundred and fifty dollars"),
            "i paid 250 dollars"
        );
        assert_eq!(n("I paid $250."), "i paid 250 dollars");
        assert_eq!(n("forty two, not forty"), "42 not 40");
        assert_eq!(n("three thousand five hundred"), "3500");
        assert_eq!(n("$1,200 a year"), "1200 dollars a year");
        assert_eq!(n("about 5% more"), "about 5 percent more");
        assert_eq!(n("one and two"), "1 and 2");
        assert_eq!(n("a hundred people"), "a hundred people");
        assert_eq!(
            n("my son's at school until 3 o'clock"),
            "my son's at school until 3 o'clock"
        );
    }

    #[test]
    fn character_error_rate_ignores_punctuation_and_script() {
        assert_eq!(cer("我不感兴趣。", "我不感興趣"), 0.0);
        assert!((cer("明天再打", "明天打") - 0.25).abs() < 1e-9);
        assert!(cer("好的", "好的好的好的") > 1.0);
    }
}

//! Sparse text features for the intent and sentiment classifiers: hashed word uni- and bigrams
//! plus character trigrams inside words (English, robust to ASR misspellings), hashed character
//! uni-, bi- and trigrams (Mandarin), each set L2-normalised; plus lexicon cues (a keyword and
//! its polarity, a time mention, a question) at a weight each model chose in training.

use super::text;
use retrieval::Language;

/// Number of hash buckets of the n-gram features.
pub const HASH_DIM: usize = 4096;

/// A sparse feature vector: (bucket, value) pairs, buckets unique, in ascending order.
pub type SparseVec = Vec<(u32, f32)>;

/// FNV-1a over a namespace tag and the bytes of a feature: stable across runs and platforms.
fn bucket(namespace: u8, feature: &str) -> u32 {
    let h = std::iter::once(namespace)
        .chain(feature.bytes())
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        });
    (h % HASH_DIM as u64) as u32
}

/// Hashed n-gram features of an already normalised text.
pub fn ngrams(normalized: &str, language: Language) -> SparseVec {
    let mut buckets: Vec<u32> = Vec::new();
    match language {
        Language::En => {
            for clause in text::clauses(normalized) {
                let words = text::words(clause);
                for (i, w) in words.iter().enumerate() {
                    buckets.push(bucket(1, w));
                    let next = words.get(i + 1).copied().unwrap_or("</s>");
                    buckets.push(bucket(2, &format!("{w} {next}")));
                    let padded: Vec<char> = format!("<{w}>").chars().collect();
                    for tri in padded.windows(3) {
                        buckets.push(bucket(3, &tri.iter().collect::<String>()));
                    }
                }
                if let Some(first) = words.first() {
                    buckets.push(bucket(2, &format!("<s> {first}")));
                }
            }
        }
        Language::Zh => {
            for clause in text::clauses(normalized) {
                let chars = text::chars_no_space(clause);
                for n in 1..=3 {
                    for gram in chars.windows(n) {
                        buckets.push(bucket(n as u8, &gram.iter().collect::<String>()));
                    }
                }
            }
        }
    }
    buckets.sort_unstable();
    buckets.dedup();
    let value = if buckets.is_empty() {
        0.0
    } else {
        1.0 / (buckets.len() as f32).sqrt()
    };
    buckets.into_iter().map(|b| (b, value)).collect()
}

/// Value of one lexicon cue in the feature vector of a model whose metadata names none (the
/// weight every model had before it became a trained choice).
pub const DEFAULT_CUE_WEIGHT: f32 = 0.5;

/// Adds named cues (`kw:too_expensive`, `time`, …) at `weight` to `features`, keeping buckets
/// sorted and unique (a cue landing on an n-gram bucket adds to it).
pub fn add_cues(features: &mut SparseVec, cues: &[String], weight: f32) {
    for cue in cues {
        let b = bucket(9, cue);
        match features.binary_search_by_key(&b, |(i, _)| *i) {
            Ok(at) => features[at].1 += weight,
            Err(at) => features.insert(at, (b, weight)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn features_are_unit_length_and_deterministic() {
        for (t, lang) in [("too expensive", Language::En), ("太贵了", Language::Zh)] {
            let a = ngrams(t, lang);
            assert_eq!(a, ngrams(t, lang));
            let norm: f32 = a.iter().map(|(_, v)| v * v).sum();
            assert!((norm - 1.0).abs() < 1e-5);
        }
        assert!(ngrams("", Language::En).is_empty());
    }
}

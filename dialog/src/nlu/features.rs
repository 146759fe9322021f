//! Sparse text features for the intent and sentiment classifiers: hashed word uni- and bigrams
//! plus character trigrams inside words (English, robust to ASR misspellings), hashed character
//! n-grams up to a trained length (Mandarin), each bucket weighted 1 or by its inverse document
//! frequency and the set L2-normalised; plus lexicon cues (a keyword and its polarity, a time
//! mention, a question) at a weight each model chose in training.

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

/// Longest Mandarin character n-gram of a model whose metadata names none.
pub const DEFAULT_MAX_CHAR_NGRAM: usize = 3;

/// How a model turns a text's n-gram buckets and cues into its sparse features.
#[derive(Debug, Clone, PartialEq)]
pub struct SparseScheme {
    /// Value of each lexicon cue.
    pub cue_weight: f32,
    /// Longest Mandarin character n-gram (English ignores it).
    pub max_char_ngram: usize,
    /// Per-bucket inverse document frequency of the training turns ([`idf`]), or `None` for
    /// every bucket weighing 1.
    pub idf: Option<Vec<f32>>,
}

impl Default for SparseScheme {
    fn default() -> Self {
        Self {
            cue_weight: DEFAULT_CUE_WEIGHT,
            max_char_ngram: DEFAULT_MAX_CHAR_NGRAM,
            idf: None,
        }
    }
}

/// Hashed n-gram features of an already normalised text, every bucket weighing 1.
pub fn ngrams(normalized: &str, language: Language) -> SparseVec {
    weigh(
        &ngram_buckets(normalized, language, DEFAULT_MAX_CHAR_NGRAM),
        None,
    )
}

/// The n-gram buckets of an already normalised text, sorted and unique; Mandarin character
/// n-grams up to `max_char_ngram` long.
pub fn ngram_buckets(normalized: &str, language: Language, max_char_ngram: usize) -> Vec<u32> {
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
                for n in 1..=max_char_ngram.max(1) {
                    for gram in chars.windows(n) {
                        buckets.push(bucket(n as u8, &gram.iter().collect::<String>()));
                    }
                }
            }
        }
    }
    buckets.sort_unstable();
    buckets.dedup();
    buckets
}

/// L2-normalised features of `buckets`, each weighing `idf[bucket]` (1 without `idf`; a bucket
/// outside a short `idf` weighs 1 too).
pub fn weigh(buckets: &[u32], idf: Option<&[f32]>) -> SparseVec {
    let mut out: SparseVec = buckets
        .iter()
        .map(|&b| {
            let w = idf.and_then(|idf| idf.get(b as usize)).copied();
            (b, w.unwrap_or(1.0))
        })
        .collect();
    let norm = out.iter().map(|(_, v)| v * v).sum::<f32>().sqrt();
    if norm > 0.0 {
        out.iter_mut().for_each(|(_, v)| *v /= norm);
    }
    out
}

/// Smoothed inverse document frequency of every bucket over `docs` (each a text's unique
/// buckets): `ln((1 + n) / (1 + df)) + 1`, so a bucket no training turn had weighs the most and
/// one every turn had weighs 1.
pub fn idf(docs: &[Vec<u32>]) -> Vec<f32> {
    let mut df = vec![0u32; HASH_DIM];
    for doc in docs {
        for &b in doc {
            if let Some(d) = df.get_mut(b as usize) {
                *d += 1;
            }
        }
    }
    let n = docs.len() as f32;
    df.into_iter()
        .map(|d| ((1.0 + n) / (1.0 + d as f32)).ln() + 1.0)
        .collect()
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

    #[test]
    fn idf_weighs_rare_buckets_more_and_stays_unit_length() {
        let a = ngram_buckets("太贵了", Language::Zh, 3);
        let b = ngram_buckets("太忙了", Language::Zh, 3);
        let weights = idf(&[a.clone(), b]);
        let shared = bucket(1, "太");
        let rare = bucket(1, "贵");
        assert!(weights[rare as usize] > weights[shared as usize]);
        assert!((weights[shared as usize] - 1.0).abs() < 1e-6);
        let f = weigh(&a, Some(&weights));
        let norm: f32 = f.iter().map(|(_, v)| v * v).sum();
        assert!((norm - 1.0).abs() < 1e-5);
        let value = |b: u32| f.iter().find(|(i, _)| *i == b).map(|(_, v)| *v);
        assert!(value(rare) > value(shared));
        // Bigrams only: no trigram "太贵了".
        assert!(ngram_buckets("太贵了", Language::Zh, 2).len() < a.len());
        assert_eq!(weigh(&[], Some(&weights)), Vec::new());
    }
}

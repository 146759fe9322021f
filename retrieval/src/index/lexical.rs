//! Lexical index beside the dense one: Okapi BM25 over words (Latin scripts, digits, product
//! names) and over Chinese/Japanese/Korean characters as unigrams plus bigrams, so Chinese text
//! and exact product names are found where embeddings blur them. Same payload filters and the
//! same on-disk form as the embedded vector index.

use super::log::JsonLog;
use super::{Filter, Hit, Payload};
use crate::RetrievalError;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;
use std::sync::RwLock;

const FILE: &str = "lexical.jsonl";
/// BM25 term-frequency saturation and length normalization (the usual values).
const K1: f32 = 1.2;
const B: f32 = 0.75;

/// A text to index lexically, under the same id and payload as its vector point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Document {
    pub id: u64,
    pub payload: Payload,
}

/// BM25 search with payload filters, kept in memory and persisted under one folder.
#[derive(Debug)]
pub struct LexicalIndex {
    log: JsonLog,
    state: RwLock<State>,
}

#[derive(Debug, Default)]
struct State {
    docs: HashMap<u64, (Payload, u32)>,
    /// term → (document id → term frequency)
    postings: HashMap<String, HashMap<u64, u32>>,
    total_len: u64,
}

impl State {
    fn remove(&mut self, id: u64) {
        let Some((payload, len)) = self.docs.remove(&id) else {
            return;
        };
        self.total_len -= u64::from(len);
        for t in tokens(&payload.text) {
            if let Some(p) = self.postings.get_mut(&t) {
                p.remove(&id);
                if p.is_empty() {
                    self.postings.remove(&t);
                }
            }
        }
    }

    fn insert(&mut self, d: Document) {
        self.remove(d.id);
        let toks = tokens(&d.payload.text);
        let len = u32::try_from(toks.len()).unwrap_or(u32::MAX);
        for t in toks {
            *self.postings.entry(t).or_default().entry(d.id).or_default() += 1;
        }
        self.total_len += u64::from(len);
        self.docs.insert(d.id, (d.payload, len));
    }
}

/// English function words: they match everything and would let "at" or "the" pull unrelated
/// snippets up. Chinese single characters stay (their bigrams carry the meaning).
const STOP_WORDS: &[&str] = &[
    "a", "am", "an", "and", "are", "at", "be", "can", "did", "do", "does", "each", "for", "has",
    "have", "how", "i", "if", "in", "is", "it", "me", "my", "of", "on", "or", "the", "this", "to",
    "was", "what", "when", "who", "would", "you", "your",
];

/// Lower-cased index terms of `text`: each run of letters or digits is a word (English
/// function words dropped); each CJK character is a term and so is each pair of adjacent CJK
/// characters (Chinese has no spaces).
pub fn tokens(text: &str) -> Vec<String> {
    let mut out = words(text);
    out.retain(|w| !STOP_WORDS.contains(&w.as_str()));
    out
}

fn words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut cjk: Vec<char> = Vec::new();
    let flush_cjk = |cjk: &mut Vec<char>, out: &mut Vec<String>| {
        for (i, c) in cjk.iter().enumerate() {
            out.push(c.to_string());
            if let Some(next) = cjk.get(i + 1) {
                out.push([*c, *next].iter().collect());
            }
        }
        cjk.clear();
    };
    for c in text.chars() {
        if is_cjk(c) {
            if !word.is_empty() {
                out.push(std::mem::take(&mut word));
            }
            cjk.push(c);
        } else {
            flush_cjk(&mut cjk, &mut out);
            if c.is_alphanumeric() {
                word.extend(c.to_lowercase());
            } else if !word.is_empty() {
                out.push(std::mem::take(&mut word));
            }
        }
    }
    flush_cjk(&mut cjk, &mut out);
    if !word.is_empty() {
        out.push(word);
    }
    out
}

pub(crate) fn is_cjk(c: char) -> bool {
    matches!(c,
        '\u{3040}'..='\u{30ff}' // Hiragana, Katakana
        | '\u{3400}'..='\u{4dbf}' // CJK extension A
        | '\u{4e00}'..='\u{9fff}' // CJK unified ideographs
        | '\u{ac00}'..='\u{d7af}' // Hangul syllables
        | '\u{f900}'..='\u{faff}' // CJK compatibility ideographs
        | '\u{20000}'..='\u{2ebef}') // CJK extensions B–F
}

impl LexicalIndex {
    /// Opens (or creates) the index in `dir`.
    pub fn open(dir: &Path) -> Result<Self, RetrievalError> {
        let (log, records) = JsonLog::open::<Document>(dir, FILE)?;
        let lines = records.len();
        let mut state = State::default();
        records.into_iter().for_each(|d| state.insert(d));
        if lines > 2 * state.docs.len() + 1024 {
            log.rewrite(&Self::documents(&state))?;
        }
        Ok(Self {
            log,
            state: RwLock::new(state),
        })
    }

    fn documents(state: &State) -> Vec<Document> {
        let mut docs: Vec<Document> = state
            .docs
            .iter()
            .map(|(id, (payload, _))| Document {
                id: *id,
                payload: payload.clone(),
            })
            .collect();
        docs.sort_by_key(|d| d.id);
        docs
    }

    fn poisoned() -> RetrievalError {
        RetrievalError::Index("lexical index lock poisoned by a panic in another thread".into())
    }

    /// Inserts or replaces documents by id.
    pub fn upsert(&self, docs: Vec<Document>) -> Result<(), RetrievalError> {
        let mut state = self.state.write().map_err(|_| Self::poisoned())?;
        self.log.append(&docs)?;
        docs.into_iter().for_each(|d| state.insert(d));
        Ok(())
    }

    /// The `k` best BM25 matches of `query` that pass `filter`, best first; documents sharing
    /// no term with the query are never returned.
    pub fn search(
        &self,
        query: &str,
        k: usize,
        filter: &Filter,
    ) -> Result<Vec<Hit>, RetrievalError> {
        let state = self.state.read().map_err(|_| Self::poisoned())?;
        let n = state.docs.len() as f32;
        if n == 0.0 || k == 0 {
            return Ok(Vec::new());
        }
        let avg_len = state.total_len as f32 / n;
        let mut terms = tokens(query);
        terms.sort();
        terms.dedup();
        let mut scores: HashMap<u64, f32> = HashMap::new();
        let mut passes: HashMap<u64, bool> = HashMap::new();
        for t in &terms {
            let Some(posting) = state.postings.get(t) else {
                continue;
            };
            let df = posting.len() as f32;
            let idf = (1.0 + (n - df + 0.5) / (df + 0.5)).ln();
            for (id, tf) in posting {
                let Some((payload, len)) = state.docs.get(id) else {
                    continue;
                };
                if !*passes.entry(*id).or_insert_with(|| filter.matches(payload)) {
                    continue;
                }
                let tf = *tf as f32;
                let norm = K1 * (1.0 - B + B * *len as f32 / avg_len);
                *scores.entry(*id).or_default() += idf * tf * (K1 + 1.0) / (tf + norm);
            }
        }
        let mut hits: Vec<(u64, f32)> = scores.into_iter().collect();
        hits.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        hits.truncate(k);
        Ok(hits
            .into_iter()
            .filter_map(|(id, score)| {
                let (payload, _) = state.docs.get(&id)?;
                Some(Hit {
                    id,
                    score,
                    payload: payload.clone(),
                })
            })
            .collect())
    }

    /// Deletes every document that passes `filter` (rewriting the file); returns how many.
    pub fn delete(&self, filter: &Filter) -> Result<u64, RetrievalError> {
        let mut state = self.state.write().map_err(|_| Self::poisoned())?;
        let gone: Vec<u64> = state
            .docs
            .iter()
            .filter(|(_, (p, _))| filter.matches(p))
            .map(|(id, _)| *id)
            .collect();
        if gone.is_empty() {
            return Ok(0);
        }
        let mut next = State::default();
        for d in Self::documents(&state) {
            if !filter.matches(&d.payload) {
                next.insert(d);
            }
        }
        self.log.rewrite(&Self::documents(&next))?;
        *state = next;
        Ok(gone.len() as u64)
    }

    /// Number of documents that pass `filter`.
    pub fn count(&self, filter: &Filter) -> Result<u64, RetrievalError> {
        let state = self.state.read().map_err(|_| Self::poisoned())?;
        Ok(state
            .docs
            .values()
            .filter(|(p, _)| filter.matches(p))
            .count() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(id: u64, customer: &str, text: &str) -> Document {
        Document {
            id,
            payload: Payload {
                customer_id: Some(customer.into()),
                campaign_id: Some("camp".into()),
                kind: "knowledge".into(),
                text: text.into(),
            },
        }
    }

    #[test]
    fn tokens_split_words_and_chinese_characters() {
        assert_eq!(
            tokens("SafeDrive-Plus 2.0"),
            ["safedrive", "plus", "2", "0"]
        );
        assert_eq!(tokens("What is the price of it?"), ["price"]);
        assert_eq!(
            tokens("车险价格"),
            ["车", "车险", "险", "险价", "价", "价格", "格"]
        );
        assert_eq!(tokens("买e家保"), ["买", "e", "家", "家保", "保"]);
        assert!(tokens(" ,.!").is_empty());
    }

    #[test]
    fn finds_chinese_and_product_names_filters_and_persists() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let index = LexicalIndex::open(dir.path()).expect("open");
            index
                .upsert(vec![
                    doc(1, "a", "客户询问车险的价格，觉得太贵"),
                    doc(2, "a", "客户孩子明年上小学，关心教育金"),
                    doc(3, "b", "SafeDrive Plus covers windscreen damage"),
                    doc(4, "b", "The basic plan does not cover the windscreen"),
                ])
                .expect("upsert");
            let hits = index
                .search("车险多少钱", 5, &Filter::default())
                .expect("search");
            assert_eq!(hits[0].id, 1, "{hits:?}");
            let hits = index
                .search("教育金", 5, &Filter::default())
                .expect("search");
            assert_eq!(hits[0].id, 2);
            let hits = index
                .search("does safedrive plus cover it?", 5, &Filter::default())
                .expect("search");
            assert_eq!(hits[0].id, 3);
            assert!(index
                .search("车险", 5, &Filter::customer("b"))
                .expect("search")
                .is_empty());
            // Replacing by id drops the old terms.
            index.upsert(vec![doc(1, "a", "已购买")]).expect("upsert");
            assert!(index
                .search("车险", 5, &Filter::default())
                .expect("search")
                .is_empty());
        }
        let index = LexicalIndex::open(dir.path()).expect("reopen");
        assert_eq!(index.count(&Filter::default()).expect("count"), 4);
        assert_eq!(index.delete(&Filter::customer("a")).expect("delete"), 2);
        let text = std::fs::read_to_string(dir.path().join(FILE)).expect("read");
        assert!(
            !text.contains("已购买") && !text.contains("教育金"),
            "erased text left on disk"
        );
        assert_eq!(
            LexicalIndex::open(dir.path())
                .expect("reopen")
                .count(&Filter::default())
                .expect("count"),
            2
        );
    }
}

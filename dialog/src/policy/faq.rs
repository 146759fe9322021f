//! FAQ retrieval: a caller's question matched to the campaign's approved answers by sentence
//! embeddings (English, with a word-overlap score beside them) and a character-bigram score
//! (Chinese); an exact product name in the question picks its entry.
//! The answer is spoken as written; the policy decides whether the match is good enough.

use crate::policy::campaign::Campaign;
use crate::DialogError;
use retrieval::{Embedder, Language};
use std::collections::BTreeSet;
use std::sync::Arc;

/// The best FAQ entry for a question and how close it is (0..1).
#[derive(Debug, Clone, PartialEq)]
pub struct FaqMatch {
    pub id: String,
    pub score: f32,
    /// The question variant that matched best.
    pub question: String,
}

struct Question {
    entry: usize,
    language: Language,
    text: String,
    units: BTreeSet<String>,
    embedding: Option<Vec<f32>>,
}

/// The campaign's questions, indexed once at load.
pub struct FaqIndex {
    ids: Vec<String>,
    names: Vec<Vec<String>>,
    questions: Vec<Question>,
    embedder: Option<Arc<dyn Embedder>>,
}

impl std::fmt::Debug for FaqIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaqIndex")
            .field("entries", &self.ids.len())
            .field("questions", &self.questions.len())
            .field("dense", &self.embedder.is_some())
            .finish()
    }
}

/// Lexical units of a text: character bigrams for Chinese (no word boundaries), lower-cased
/// words for English (character bigrams would make any two short questions look alike).
fn units(text: &str, language: Language) -> BTreeSet<String> {
    match language {
        Language::Zh => {
            let chars: Vec<char> = text
                .chars()
                .filter(|c| c.is_alphanumeric())
                .flat_map(char::to_lowercase)
                .collect();
            chars.windows(2).map(|w| w.iter().collect()).collect()
        }
        Language::En => text
            .to_lowercase()
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(str::to_string)
            .collect(),
    }
}

/// Mean of containment (how much of the question is in the query) and Dice overlap.
fn lexical(query: &BTreeSet<String>, question: &BTreeSet<String>) -> f32 {
    if query.is_empty() || question.is_empty() {
        return 0.0;
    }
    let shared = query.intersection(question).count() as f32;
    let containment = shared / question.len() as f32;
    let dice = 2.0 * shared / (query.len() + question.len()) as f32;
    (containment + dice) / 2.0
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

impl FaqIndex {
    /// Indexes every question variant; English ones are embedded when an embedder is given.
    pub fn build(
        campaign: &Campaign,
        embedder: Option<Arc<dyn Embedder>>,
    ) -> Result<Self, DialogError> {
        let mut questions = Vec::new();
        for (entry, faq) in campaign.faq.iter().enumerate() {
            for language in [Language::En, Language::Zh] {
                for q in faq.questions.get(language).into_iter().flatten() {
                    questions.push(Question {
                        entry,
                        language,
                        text: q.clone(),
                        units: units(q, language),
                        embedding: None,
                    });
                }
            }
        }
        if let Some(e) = &embedder {
            let en: Vec<usize> = (0..questions.len())
                .filter(|&i| questions[i].language == Language::En)
                .collect();
            let texts: Vec<&str> = en.iter().map(|&i| questions[i].text.as_str()).collect();
            if !texts.is_empty() {
                let vectors = e
                    .embed(&texts)
                    .map_err(|e| DialogError::Retrieval(e.to_string()))?;
                for (i, v) in en.into_iter().zip(vectors) {
                    questions[i].embedding = Some(v);
                }
            }
        }
        Ok(Self {
            ids: campaign.faq.iter().map(|f| f.id.clone()).collect(),
            names: campaign
                .faq
                .iter()
                .map(|f| f.names.iter().map(|n| n.to_lowercase()).collect())
                .collect(),
            questions,
            embedder,
        })
    }

    /// The closest entry for a caller's question in `language`, or `None` without entries.
    pub fn search(&self, text: &str, language: Language) -> Result<Option<FaqMatch>, DialogError> {
        self.search_with(text, language, None)
    }

    /// As [`FaqIndex::search`], reusing the turn's embedding when the NLU already computed it
    /// with the same model (saves one MiniLM pass per English question).
    pub fn search_with(
        &self,
        text: &str,
        language: Language,
        turn_embedding: Option<&[f32]>,
    ) -> Result<Option<FaqMatch>, DialogError> {
        let query_units = units(text, language);
        let dense = match (&self.embedder, language, turn_embedding) {
            (Some(_), Language::En, Some(v)) => Some(v.to_vec()),
            (Some(e), Language::En, None) => e
                .embed(&[text])
                .map_err(|e| DialogError::Retrieval(e.to_string()))?
                .into_iter()
                .next(),
            _ => None,
        };
        let lowered = text.to_lowercase();
        let mut best: Option<FaqMatch> = None;
        for q in self.questions.iter().filter(|q| q.language == language) {
            let lex = lexical(&query_units, &q.units);
            let mut score = match (&dense, &q.embedding) {
                (Some(d), Some(e)) => cosine(d, e).max(lex),
                _ => lex,
            };
            if self.names[q.entry].iter().any(|n| lowered.contains(n)) {
                score = score.max(1.0);
            }
            if best.as_ref().is_none_or(|b| score > b.score) {
                best = Some(FaqMatch {
                    id: self.ids[q.entry].clone(),
                    score,
                    question: q.text.clone(),
                });
            }
        }
        Ok(best)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lexical_scores_containment() {
        let zh = |t| units(t, Language::Zh);
        let q = zh("每个月多少钱");
        assert!(lexical(&zh("那个，这个保险每个月要交多少钱啊"), &q) > 0.4);
        assert!(lexical(&zh("我不需要"), &q) < 0.1);
        let en = |t| units(t, Language::En);
        assert!(lexical(&en("Sure, what is it about?"), &en("What does it cover?")) < 0.5);
    }
}

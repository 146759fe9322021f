//! [`FakeNlu`]: a deterministic stand-in for unit tests that needs no model files. Intent comes
//! from the lexicon's keywords by fixed rules, sentiment from the lexicon alone; keywords and
//! times are found exactly as the real engine finds them.

use super::engine::sentiment_from_score;
use super::lexicon::Lexicon;
use super::{text, time, Intent, NluResult, Understand};
use crate::DialogError;
use retrieval::Language;

/// Rule-based NLU from the bundled lexicon. Much weaker than [`super::NluEngine`] on free
/// phrasing (it is not measured as an NLU); meant for tests of the code that consumes NLU.
#[derive(Debug)]
pub struct FakeNlu {
    lexicon: Lexicon,
}

impl FakeNlu {
    /// Builds the fake from the lexicon compiled into the crate.
    pub fn new() -> Result<Self, DialogError> {
        Lexicon::parse(include_str!("../../data/nlu/lexicon.json"))
            .map(|lexicon| Self { lexicon })
            .map_err(|e| DialogError::Nlu(format!("bundled lexicon: {e}")))
    }
}

impl Understand for FakeNlu {
    fn understand(&self, text: &str, language: Language) -> Result<NluResult, DialogError> {
        let normalized = text::normalize(text, language);
        let keywords = self.lexicon.keywords(&normalized, language);
        let times = time::extract(&normalized, language);
        let has = |key: &str| keywords.iter().any(|k| k.key == key && !k.negated);
        let question = normalized.contains('?')
            || (language == Language::Zh && (normalized.contains('吗') || has("robot")));
        let intent = if has("do_not_call") {
            Intent::OptOut
        } else if has("robot") && question {
            Intent::AsksIfRobot
        } else if has("complaint") {
            Intent::Complaint
        } else if has("callback") || !times.is_empty() {
            Intent::CallbackRequest
        } else if has("wants_to_buy") {
            Intent::PurchaseIntent
        } else if has("too_expensive") || has("discount") {
            Intent::PriceObjection
        } else if has("not_interested") || has("no_time") || has("already_have") {
            Intent::Refusal
        } else if question || has("price") {
            Intent::Enquiry
        } else {
            Intent::Other
        };
        Ok(NluResult {
            intent,
            confidence: 1.0,
            sentiment: sentiment_from_score(self.lexicon.sentiment(&normalized, language)),
            keywords,
            language,
            times,
            embedding: None,
        })
    }
}

//! Natural-language understanding of one caller turn: intent, sentiment and keywords, in English
//! and Mandarin. Fast (≤ 20 ms) and deterministic; the policy acts only on what this returns.

use crate::DialogError;
use retrieval::Language;
use serde::{Deserialize, Serialize};

/// What the caller wants in this turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Intent {
    /// A question about the product, terms, cover, process.
    Enquiry,
    Complaint,
    PurchaseIntent,
    PriceObjection,
    Refusal,
    CallbackRequest,
    /// "Take me off your list", "don't call me again".
    OptOut,
    AsksIfRobot,
    Other,
}

impl Intent {
    pub const ALL: [Intent; 9] = [
        Intent::Enquiry,
        Intent::Complaint,
        Intent::PurchaseIntent,
        Intent::PriceObjection,
        Intent::Refusal,
        Intent::CallbackRequest,
        Intent::OptOut,
        Intent::AsksIfRobot,
        Intent::Other,
    ];

    /// The snake_case label used in data files and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Intent::Enquiry => "enquiry",
            Intent::Complaint => "complaint",
            Intent::PurchaseIntent => "purchase_intent",
            Intent::PriceObjection => "price_objection",
            Intent::Refusal => "refusal",
            Intent::CallbackRequest => "callback_request",
            Intent::OptOut => "opt_out",
            Intent::AsksIfRobot => "asks_if_robot",
            Intent::Other => "other",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Intent::ALL.into_iter().find(|i| i.as_str() == s.trim())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SentimentLabel {
    Negative,
    Neutral,
    Positive,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Sentiment {
    /// -1 (very negative) to +1 (very positive).
    pub score: f32,
    pub label: SentimentLabel,
}

/// A keyword from the lexicon found in the turn, e.g. `too_expensive` for "too expensive" or
/// 太贵. `negated` is true for "not too expensive" / 不贵-style mentions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Keyword {
    /// Canonical key: `too_expensive`, `no_time`, `child_school`, … (see the lexicon files).
    pub key: String,
    /// The words of the turn that matched.
    pub matched: String,
    pub negated: bool,
}

/// Everything NLU says about one turn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NluResult {
    pub intent: Intent,
    /// Probability of `intent`, 0..1.
    pub confidence: f32,
    pub sentiment: Sentiment,
    pub keywords: Vec<Keyword>,
    pub language: Language,
}

impl NluResult {
    /// Whether a (non-negated) keyword with this key was found.
    pub fn has_keyword(&self, key: &str) -> bool {
        self.keywords.iter().any(|k| k.key == key && !k.negated)
    }
}

/// Understands one caller turn.
pub trait Understand: Send + Sync {
    fn understand(&self, text: &str, language: Language) -> Result<NluResult, DialogError>;
}

//! Natural-language understanding of one caller turn: intent, sentiment and keywords, in English
//! and Mandarin. Fast (≤ 20 ms) and deterministic; the policy acts only on what this returns.
//!
//! [`NluEngine`] is the real implementation (trained classifiers in `data/nlu/`, retrained with
//! `cargo run -p dialog --example train_nlu`), [`FakeNlu`] the rule-based stand-in for tests.
//! The labelled turns and the label guide are in `data/nlu/` (see its README).

pub mod classifier;
pub mod data;
pub mod engine;
pub mod fake;
pub mod features;
pub mod lexicon;
pub mod model;
pub mod text;
pub mod time;

pub use engine::NluEngine;
pub use fake::FakeNlu;

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

/// A day the caller referred to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DayRef {
    Today,
    Tomorrow,
    /// 后天, "the day after tomorrow".
    DayAfterTomorrow,
    /// A weekday, 1 = Monday … 7 = Sunday ("on Friday", 周五, 星期五).
    Weekday(u8),
    /// "At the weekend", 周末.
    Weekend,
    /// "Next week", 下周 (no day given).
    NextWeek,
}

/// A part of the day the caller referred to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PartOfDay {
    Morning,
    Noon,
    Afternoon,
    Evening,
}

/// A time expression found in the turn. Every part is optional: "later" has none but
/// `after_minutes`, "tomorrow" has only `day`, "at 3" only `hour`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeMention {
    /// The words of the turn that matched.
    pub matched: String,
    pub day: Option<DayRef>,
    pub part_of_day: Option<PartOfDay>,
    /// Clock time on a 24 h clock (a bare "3" or 三点 is read as 15:00 unless the caller said
    /// morning / 上午: calls happen in business hours).
    pub hour: Option<u8>,
    pub minute: Option<u8>,
    /// "In an hour", "in 20 minutes", 半小时后: minutes from now.
    pub after_minutes: Option<u32>,
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
    /// Times the caller named ("tomorrow at 3", 明天下午三点), in order of appearance; the
    /// policy books a callback from the first one.
    pub times: Vec<TimeMention>,
    /// The turn's sentence embedding when the model read one (English with the MiniLM
    /// embedder): unit length, from the process's [`retrieval::Embedder`], so the FAQ lookup and
    /// `ProfileStore::context_with_embedding` can reuse it instead of embedding the turn again.
    /// Not serialised (call records stay small).
    #[serde(skip)]
    pub embedding: Option<Vec<f32>>,
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

//! Conversation state of one call: turns with their NLU results, every decision with its reason,
//! progress through the script and the outcome. Serializable: it is the source of the call
//! record.

use crate::nlu::TimeMention;
use crate::policy::campaign::Segment;
use crate::policy::rules::{Action, Decision};
use crate::NluResult;
use retrieval::{CustomerProfile, Language};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Script variants fixed for a call from outside the dialogue (an A/B arm, a bandit's choice):
/// template key (`script.greet`, …) → variant index. A template it does not name keeps the
/// seeded choice.
pub type VariantChoice = BTreeMap<String, usize>;

/// How a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Converted,
    Callback,
    Refused,
    HandedOff,
    DoNotCall,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Converted => "converted",
            Outcome::Callback => "callback",
            Outcome::Refused => "refused",
            Outcome::HandedOff => "handed_off",
            Outcome::DoNotCall => "do_not_call",
        }
    }
}

/// Where the spoken words of a turn came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplyMode {
    /// The approved template (with its rule-chosen opener).
    Template,
    /// An LLM opener that passed the guard, then the template.
    LlmOpener,
    /// An LLM paraphrase of the template that passed the guard and the semantic check.
    LlmParaphrase,
}

/// What the caller said in a turn and what NLU made of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallerTurn {
    pub text: String,
    pub nlu: NluResult,
}

/// One exchange: the caller's words (none for the bot's opening), the decision, the reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Turn {
    pub index: usize,
    pub caller: Option<CallerTurn>,
    pub decision: Decision,
    pub reply: String,
    pub mode: ReplyMode,
    /// Why an LLM phrasing was rejected and the template spoken instead.
    pub fallback: Option<String>,
    /// Profile context arrived within its latency budget.
    pub profile_in_time: bool,
    /// Retrieved snippets used for this turn.
    pub snippets: usize,
    /// From the caller's words (or the turn start) to the first sentence of the reply.
    pub first_sentence_ms: f64,
}

/// Which parts of the script the call has been through.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    pub pitched: bool,
    pub discount_offered: bool,
    pub callback_offered: bool,
    pub bot_disclosed: bool,
    /// Recommendation ids already made.
    pub recommended: Vec<String>,
    pub clarifications: u32,
}

/// LLM phrasing counters of the call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhrasingCounters {
    pub attempts: u32,
    pub accepted: u32,
    pub fallbacks: u32,
}

/// Everything the dialogue knows about one call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConversationState {
    pub call_id: String,
    pub campaign_id: String,
    pub customer_id: String,
    pub language: Language,
    /// Seeds the template variant choice: the same call replays the same words.
    pub seed: u64,
    pub segment: Segment,
    /// Variants chosen for this call by the orchestrator (see [`VariantChoice`]).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub variants: VariantChoice,
    pub turns: Vec<Turn>,
    pub progress: Progress,
    pub callback: Option<TimeMention>,
    pub outcome: Option<Outcome>,
    pub phrasing: PhrasingCounters,
    /// The customer's profile as last fetched: used when a turn's context is late. Not part of
    /// the call record.
    #[serde(skip)]
    pub profile: CustomerProfile,
}

impl ConversationState {
    /// A call that has reached an outcome takes no more turns.
    pub fn finished(&self) -> bool {
        self.outcome.is_some()
    }

    /// The last action the bot took.
    pub fn last_action(&self) -> Option<&Action> {
        self.turns.last().map(|t| &t.decision.action)
    }

    /// The actions of the call in order (for tests and reports).
    pub fn actions(&self) -> Vec<&Action> {
        self.turns.iter().map(|t| &t.decision.action).collect()
    }

    pub fn to_json(&self) -> Result<String, crate::DialogError> {
        serde_json::to_string(self).map_err(|e| crate::DialogError::State(e.to_string()))
    }

    pub fn from_json(json: &str) -> Result<Self, crate::DialogError> {
        serde_json::from_str(json).map_err(|e| crate::DialogError::State(e.to_string()))
    }
}

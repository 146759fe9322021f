//! What a driver saw in one scenario's call: the greeting and, per caller turn, what was said
//! (and heard, in audio mode), the NLU labels, the action and rule, the reply and its latency.
//! The runner's checks and every report read only this.

use serde::{Deserialize, Serialize};

/// One caller turn and the bot's answer to it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ObservedTurn {
    /// What the caller said ("" for silence or noise).
    pub caller: String,
    /// What the recognizer heard (audio mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heard: Option<String>,
    /// NLU labels (absent for a silent turn).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intent: Option<String>,
    #[serde(default)]
    pub confidence: f32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sentiment: Option<String>,
    #[serde(default)]
    pub sentiment_score: f32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keywords: Vec<String>,
    /// The action kind (`pitch`, `hand_off`, `reprompt`, …).
    pub action: String,
    /// The action's JSON form (text mode), e.g. `{"type":"answer_faq","id":"price"}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action_detail: Option<serde_json::Value>,
    #[serde(default)]
    pub rule: String,
    pub reply: String,
    /// Text mode: the dialogue turn; audio mode: end of caller speech to the first bot frame.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<f64>,
    /// The caller talked over the bot and the bot stopped (audio mode).
    #[serde(default)]
    pub barged_in: bool,
}

/// A whole scenario call as one driver saw it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Transcript {
    pub greeting: String,
    pub turns: Vec<ObservedTurn>,
    /// `converted`, `callback`, `refused`, `handed_off`, `do_not_call`, `no_input`, or `open`
    /// when the turns ran out first.
    pub outcome: String,
}

impl Transcript {
    /// Every reply of the bot, the greeting first.
    pub fn replies(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.greeting.as_str()).chain(self.turns.iter().map(|t| t.reply.as_str()))
    }

    /// Turn latencies that were measured.
    pub fn latencies(&self) -> Vec<f64> {
        self.turns.iter().filter_map(|t| t.latency_ms).collect()
    }
}

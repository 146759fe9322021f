//! A stored call as the grader and the report read it: the transcript turn by turn, each turn
//! with its line time, the caller's NLU result and the bot's action, plus barge-ins and
//! hand-offs, rebuilt from the rows the orchestrator stores (turns, actions, events, latencies).
//!
//! The orchestrator stores turns in speaking order: the bot's greeting, then per exchange the
//! caller's words and the bot's reply. The k-th caller turn matches the k-th `turn` event (intent,
//! sentiment, keywords, action) and `turn_metrics` row k (caller speech start/end, voice-to-voice
//! latency); `actions.seq` is the exchange index (0 = greeting). Records that lack events (older
//! or hand-made ones) still read: what is missing is `None`, and checks that need it do not apply.

use dialog::Intent;
use retrieval::store::QaCallRecord;
use serde::{Deserialize, Serialize};

/// Who spoke a turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Speaker {
    Bot,
    Caller,
}

/// What NLU made of a caller turn (from the call's `turn` event).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TurnNlu {
    /// `None` when the stored label is not one this build knows.
    pub intent: Option<Intent>,
    pub confidence: f32,
    /// -1 (very negative) to +1.
    pub sentiment: f32,
    /// Non-negated lexicon keys (`too_expensive`, `do_not_call`, …).
    pub keywords: Vec<String>,
}

impl TurnNlu {
    pub fn has_keyword(&self, keys: &[String]) -> bool {
        self.keywords.iter().any(|k| keys.contains(k))
    }
}

/// One turn of the transcript.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ViewTurn {
    /// Index in the call's turns: what evidence spans and per-turn anchors refer to.
    pub index: usize,
    pub speaker: Speaker,
    pub text: String,
    /// Exchange number: 0 is the greeting, then one per caller turn.
    pub exchange: usize,
    /// Line time (ms of caller audio received) at which the turn started, when known.
    pub at_ms: Option<i64>,
    /// Line time at which the caller stopped speaking (caller turns).
    pub end_ms: Option<i64>,
    /// Caller turns.
    pub nlu: Option<TurnNlu>,
    /// Bot turns: the action kind (`discount_offer`, `hand_off`, …) and the rule that chose it.
    pub action: Option<String>,
    pub rule: Option<String>,
    /// Bot turns: the ended outcome of a `close` action (`converted`, `refused`).
    pub close_outcome: Option<String>,
    /// Bot turns: end of the caller's speech to the reply's first audio (line time, else wall).
    pub v2v_ms: Option<f64>,
    /// Bot turns: the caller cut the reply short.
    pub interrupted: bool,
    /// Bot turns: how long the reply played, when measured.
    pub spoken_ms: Option<i64>,
}

/// The caller started speaking while the bot spoke.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BargeIn {
    /// Start of the caller's speech (line time).
    pub onset_ms: i64,
    /// When the session learned of it.
    pub detected_ms: i64,
    /// End of the last bot audio sent.
    pub bot_stopped_ms: i64,
}

impl BargeIn {
    /// How long the bot talked over the caller: from the later of the caller's onset and the
    /// start of the bot's speech (`reply_start_ms`, when known) to the end of the bot's audio.
    pub fn overlap_ms(&self, reply_start_ms: Option<i64>) -> i64 {
        let from = reply_start_ms.map_or(self.onset_ms, |s| s.max(self.onset_ms));
        (self.bot_stopped_ms - from).max(0)
    }
}

/// A hand-off to a human agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HandOffEvent {
    pub at_ms: i64,
    pub reason: String,
    pub agent_assigned: bool,
}

/// A stored call, ready to grade and to show.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallView {
    pub id: String,
    pub customer_id: String,
    pub campaign_id: String,
    pub started_at_ms: i64,
    pub ended_at_ms: i64,
    pub outcome: String,
    pub end_reason: String,
    pub language: String,
    pub segment: String,
    pub duration_ms: i64,
    /// The CRM name (what the greeting should say). Not shown in reports.
    pub customer_name: String,
    /// The customer's number as a report may show it (`+86 138****1234`), when known.
    pub phone_masked: Option<String>,
    /// The customer is on the do-not-call list now.
    pub do_not_call: bool,
    pub turns: Vec<ViewTurn>,
    pub barge_ins: Vec<BargeIn>,
    pub hand_offs: Vec<HandOffEvent>,
    /// Caller turns the session dropped (speech it had started answering, then superseded).
    pub dropped_turns: usize,
    pub reprompts: usize,
}

#[derive(Deserialize)]
struct TurnEvent {
    info: TurnEventInfo,
}

#[derive(Deserialize)]
struct TurnEventInfo {
    #[serde(default)]
    intent: String,
    #[serde(default)]
    confidence: f32,
    #[serde(default)]
    sentiment: f32,
    #[serde(default)]
    keywords: Vec<String>,
    #[serde(default)]
    action: String,
    #[serde(default)]
    rule: String,
}

#[derive(Deserialize)]
struct HandOffDetail {
    #[serde(default)]
    reason: String,
    #[serde(default)]
    agent_assigned: bool,
}

/// The `close` outcome inside a stored decision (`{"action":{"type":"close","outcome":…}}`).
fn close_outcome(detail: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(detail).ok()?;
    let action = v.get("action")?;
    (action.get("type")?.as_str()? == "close")
        .then(|| action.get("outcome")?.as_str().map(str::to_string))
        .flatten()
}

impl CallView {
    /// Rebuilds the call from its stored rows. Never fails: malformed event details are skipped
    /// (and the checks that need them do not apply).
    pub fn from_record(r: &QaCallRecord) -> Self {
        let mut greeting_at = None;
        let mut turn_events: Vec<(i64, TurnEventInfo)> = Vec::new();
        let mut barge_ins = Vec::new();
        let mut hand_offs = Vec::new();
        let (mut dropped_turns, mut reprompts) = (0, 0);
        for e in &r.events {
            match e.kind.as_str() {
                "greeting" => greeting_at = greeting_at.or(Some(e.at_ms)),
                "turn" => {
                    if let Ok(t) = serde_json::from_str::<TurnEvent>(&e.detail) {
                        turn_events.push((e.at_ms, t.info));
                    }
                }
                "barge_in" => {
                    if let Ok(v) = serde_json::from_str::<serde_json::Value>(&e.detail) {
                        let get = |k: &str| v.get(k).and_then(serde_json::Value::as_i64);
                        if let (Some(onset_ms), Some(detected_ms), Some(bot_stopped_ms)) =
                            (get("onset_ms"), get("detected_ms"), get("bot_stopped_ms"))
                        {
                            barge_ins.push(BargeIn {
                                onset_ms,
                                detected_ms,
                                bot_stopped_ms,
                            });
                        }
                    }
                }
                "hand_off" => {
                    if let Ok(h) = serde_json::from_str::<HandOffDetail>(&e.detail) {
                        hand_offs.push(HandOffEvent {
                            at_ms: e.at_ms,
                            reason: h.reason,
                            agent_assigned: h.agent_assigned,
                        });
                    }
                }
                "turn_dropped" => dropped_turns += 1,
                "reprompt" => reprompts += 1,
                _ => {}
            }
        }
        let mut turns = Vec::with_capacity(r.call.turns.len());
        let mut exchange = 0usize;
        let mut caller_no = 0usize; // caller turns seen so far
        for (index, t) in r.call.turns.iter().enumerate() {
            if t.speaker == "caller" {
                exchange = exchange.max(1);
                caller_no += 1;
                let metrics = r.metrics.iter().find(|m| m.turn == caller_no as i64);
                let event = turn_events.get(caller_no - 1);
                turns.push(ViewTurn {
                    index,
                    speaker: Speaker::Caller,
                    text: t.text.clone(),
                    exchange,
                    at_ms: metrics
                        .map(|m| m.caller_start_ms)
                        .or(event.map(|(at, _)| *at)),
                    end_ms: metrics.map(|m| m.caller_end_ms),
                    nlu: event.map(|(_, i)| TurnNlu {
                        intent: Intent::parse(&i.intent),
                        confidence: i.confidence,
                        sentiment: i.sentiment,
                        keywords: i.keywords.clone(),
                    }),
                    action: None,
                    rule: None,
                    close_outcome: None,
                    v2v_ms: None,
                    interrupted: false,
                    spoken_ms: None,
                });
            } else {
                let action = r.actions.iter().find(|a| a.seq == exchange as i64);
                let (metrics, event) = if exchange == 0 {
                    (None, None)
                } else {
                    (
                        r.metrics.iter().find(|m| m.turn == caller_no as i64),
                        turn_events.get(caller_no.saturating_sub(1)),
                    )
                };
                let v2v_ms = metrics.and_then(|m| m.v2v_line_ms.or(m.v2v_wall_ms));
                let at_ms = if exchange == 0 {
                    greeting_at.or(Some(0))
                } else {
                    match (metrics, v2v_ms) {
                        (Some(m), Some(v)) => Some(m.caller_end_ms + v.round() as i64),
                        _ => event.map(|(at, _)| *at),
                    }
                };
                turns.push(ViewTurn {
                    index,
                    speaker: Speaker::Bot,
                    text: t.text.clone(),
                    exchange,
                    at_ms,
                    end_ms: None,
                    nlu: None,
                    action: action
                        .map(|a| a.kind.clone())
                        .or_else(|| event.map(|(_, i)| i.action.clone())),
                    rule: event.map(|(_, i)| i.rule.clone()).or_else(|| {
                        let v: serde_json::Value = serde_json::from_str(&action?.detail).ok()?;
                        v.get("rule")?.as_str().map(str::to_string)
                    }),
                    close_outcome: action.and_then(|a| close_outcome(&a.detail)),
                    v2v_ms,
                    interrupted: metrics.is_some_and(|m| m.interrupted)
                        || t.text.ends_with("[interrupted]"),
                    spoken_ms: metrics.map(|m| m.spoken_ms).filter(|ms| *ms > 0),
                });
                exchange += 1;
            }
        }
        Self {
            id: r.call.id.clone(),
            customer_id: r.call.customer_id.clone(),
            campaign_id: r.call.campaign_id.clone(),
            started_at_ms: r.call.started_at_ms,
            ended_at_ms: r.call.ended_at_ms,
            outcome: r.call.outcome.clone(),
            end_reason: r.end_reason.clone().unwrap_or_default(),
            language: r.language.clone().unwrap_or_default(),
            segment: r
                .segment
                .clone()
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "unknown".into()),
            duration_ms: r
                .duration_ms
                .unwrap_or(r.call.ended_at_ms - r.call.started_at_ms),
            customer_name: r.customer_name.clone(),
            phone_masked: None,
            do_not_call: r.do_not_call,
            turns,
            barge_ins,
            hand_offs,
            dropped_turns,
            reprompts,
        }
    }

    pub fn caller_turns(&self) -> impl Iterator<Item = &ViewTurn> {
        self.turns.iter().filter(|t| t.speaker == Speaker::Caller)
    }

    pub fn bot_turns(&self) -> impl Iterator<Item = &ViewTurn> {
        self.turns.iter().filter(|t| t.speaker == Speaker::Bot)
    }

    /// The bot's reply in an exchange.
    pub fn reply_in(&self, exchange: usize) -> Option<&ViewTurn> {
        self.bot_turns().find(|t| t.exchange == exchange)
    }

    /// Every bot reply's voice-to-voice latency.
    pub fn v2v_ms(&self) -> impl Iterator<Item = f64> + '_ {
        self.bot_turns().filter_map(|t| t.v2v_ms)
    }

    /// Whether anyone answered: some caller words, or an outcome only a conversation reaches.
    pub fn answered(&self) -> bool {
        self.caller_turns().next().is_some()
            || !matches!(
                self.outcome.as_str(),
                "no_answer" | "voicemail" | "busy" | "failed" | "interrupted"
            )
    }
}

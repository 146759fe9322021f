//! Hand-written and synthetic calls in the exact shape the orchestrator stores them: a
//! [`CallScript`] (greeting, then exchanges of caller words with their NLU labels and the bot's
//! reply with its action) becomes a [`StoredCall`] (turns, actions, `turn` / `greeting` /
//! `barge_in` / `hand_off` events, per-turn latencies) or directly a [`QaCallRecord`]. The grader
//! tests read YAML scripts; the benchmark and report tests use [`synthetic_calls`].

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use retrieval::store::{
    Action, CallEventRecord, CallRecord, QaCallRecord, StoredCall, TurnMetrics, TurnRecord,
};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// A call written by hand: the greeting and one entry per exchange.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CallScript {
    pub id: String,
    pub customer_id: String,
    pub customer_name: String,
    pub campaign_id: String,
    pub language: String,
    pub segment: String,
    pub started_at_ms: i64,
    pub outcome: String,
    pub end_reason: String,
    /// The customer is on the do-not-call list after the call.
    pub do_not_call: bool,
    /// The bot's opening; empty for a call nobody answered.
    pub greeting: String,
    pub exchanges: Vec<Exchange>,
    pub barge_ins: Vec<ScriptBargeIn>,
    /// A hand-off found no agent.
    pub no_agent: bool,
}

impl Default for CallScript {
    fn default() -> Self {
        Self {
            id: "call-1".into(),
            customer_id: "cust-1".into(),
            customer_name: "Alice Chen".into(),
            campaign_id: "family-plan".into(),
            language: "en".into(),
            segment: "price_sensitive".into(),
            started_at_ms: 1_765_000_000_000,
            outcome: "refused".into(),
            end_reason: "outcome".into(),
            do_not_call: false,
            greeting: "Hello Alice Chen, this is Ava, an automated assistant from Acme. Do you have a minute?".into(),
            exchanges: Vec::new(),
            barge_ins: Vec::new(),
            no_agent: false,
        }
    }
}

/// The caller's words (with NLU labels) and the bot's reply (with its action).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Exchange {
    pub caller: String,
    pub intent: String,
    pub confidence: f32,
    pub sentiment: f32,
    pub keywords: Vec<String>,
    pub bot: String,
    /// Action kind, e.g. `discount_offer`, `hand_off`, `close`.
    pub action: String,
    /// The rule that chose it (default: the action kind).
    pub rule: String,
    /// For `close`: `converted` or `refused`.
    pub close_outcome: Option<String>,
    /// End of the caller's speech to the reply's first audio.
    pub v2v_ms: f64,
    /// The caller cut the reply short.
    pub interrupted: bool,
}

impl Default for Exchange {
    fn default() -> Self {
        Self {
            caller: String::new(),
            intent: "other".into(),
            confidence: 0.9,
            sentiment: 0.0,
            keywords: Vec::new(),
            bot: String::new(),
            action: "clarify".into(),
            rule: String::new(),
            close_outcome: None,
            v2v_ms: 800.0,
            interrupted: false,
        }
    }
}

/// A barge-in during the reply of exchange `exchange`, times relative to that reply's start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScriptBargeIn {
    pub exchange: usize,
    pub onset_after_ms: i64,
    pub detected_after_onset_ms: i64,
    pub bot_stopped_after_onset_ms: i64,
}

impl Default for ScriptBargeIn {
    fn default() -> Self {
        Self {
            exchange: 1,
            onset_after_ms: 1000,
            detected_after_onset_ms: 200,
            bot_stopped_after_onset_ms: 300,
        }
    }
}

/// Speaking time of a text: ~150 words a minute in English, ~4 characters a second in Chinese.
pub fn speaking_ms(text: &str) -> i64 {
    let cjk = text
        .chars()
        .filter(|c| ('\u{4e00}'..='\u{9fff}').contains(c))
        .count() as i64;
    let words = text.split_whitespace().count() as i64;
    cjk * 250 + words * 400
}

impl CallScript {
    /// The call as `SqlStore::store_call` stores it.
    pub fn to_stored(&self) -> StoredCall {
        let id = self.id.clone();
        let mut turns = Vec::new();
        let mut actions = Vec::new();
        let mut events = Vec::new();
        let mut metrics = Vec::new();
        let mut line_ms = 0i64;
        let mut reply_start = vec![0i64];
        if !self.greeting.is_empty() {
            events.push(CallEventRecord {
                at_ms: 0,
                kind: "greeting".into(),
                detail: json!({ "text": self.greeting, "rule": "greet" }).to_string(),
            });
            turns.push(TurnRecord {
                speaker: "bot".into(),
                text: self.greeting.clone(),
                latency_ms: Some(20.0),
            });
            actions.push(Action {
                call_id: id.clone(),
                seq: 0,
                kind: "greet".into(),
                detail: json!({ "action": { "type": "greet" }, "rule": "greet", "reason": "" })
                    .to_string(),
                at_ms: 0,
            });
            line_ms += speaking_ms(&self.greeting);
        }
        for (i, x) in self.exchanges.iter().enumerate() {
            let n = i as i64 + 1;
            let caller_start = line_ms + 600;
            let caller_end = caller_start + speaking_ms(&x.caller).max(400);
            let reply_at = caller_end + x.v2v_ms.round() as i64;
            let spoken = speaking_ms(&x.bot);
            let spoken = if x.interrupted { spoken / 2 } else { spoken };
            reply_start.push(reply_at);
            line_ms = reply_at + spoken;
            let rule = if x.rule.is_empty() {
                x.action.clone()
            } else {
                x.rule.clone()
            };
            turns.push(TurnRecord {
                speaker: "caller".into(),
                text: x.caller.clone(),
                latency_ms: None,
            });
            turns.push(TurnRecord {
                speaker: "bot".into(),
                text: if x.interrupted {
                    format!("{} [interrupted]", x.bot)
                } else {
                    x.bot.clone()
                },
                latency_ms: Some(x.v2v_ms / 2.0),
            });
            let mut action = json!({ "type": x.action });
            if let Some(o) = &x.close_outcome {
                action["outcome"] = json!(o);
            }
            let decision = json!({ "action": action, "rule": rule, "reason": "" });
            actions.push(Action {
                call_id: id.clone(),
                seq: n,
                kind: x.action.clone(),
                detail: decision.to_string(),
                at_ms: self.started_at_ms,
            });
            events.push(CallEventRecord {
                at_ms: caller_end + 200,
                kind: "turn".into(),
                detail: json!({
                    "info": {
                        "index": n, "caller_text": x.caller, "intent": x.intent,
                        "confidence": x.confidence, "sentiment": x.sentiment,
                        "keywords": x.keywords, "action": x.action, "rule": rule,
                        "reply": x.bot,
                    },
                    "decision": decision,
                })
                .to_string(),
            });
            if x.action == "hand_off" {
                events.push(CallEventRecord {
                    at_ms: caller_end + 250,
                    kind: "hand_off".into(),
                    detail:
                        json!({ "reason": rule, "summary": "", "agent_assigned": !self.no_agent })
                            .to_string(),
                });
            }
            if x.action == "add_to_do_not_call" {
                events.push(CallEventRecord {
                    at_ms: caller_end + 250,
                    kind: "dialog_event".into(),
                    detail: json!({ "type": "add_to_do_not_call" }).to_string(),
                });
            }
            metrics.push(TurnMetrics {
                turn: n,
                caller_start_ms: caller_start,
                caller_end_ms: caller_end,
                asr_final_ms: 150.0,
                dialog_ms: 40.0,
                tts_first_audio_ms: 120.0,
                v2v_line_ms: Some(x.v2v_ms),
                v2v_wall_ms: Some(x.v2v_ms),
                interrupted: x.interrupted,
                spoken_ms: spoken,
            });
        }
        for b in &self.barge_ins {
            let start = reply_start.get(b.exchange).copied().unwrap_or(0);
            let onset = start + b.onset_after_ms;
            events.push(CallEventRecord {
                at_ms: onset + b.detected_after_onset_ms,
                kind: "barge_in".into(),
                detail: json!({
                    "onset_ms": onset,
                    "detected_ms": onset + b.detected_after_onset_ms,
                    "bot_stopped_ms": onset + b.bot_stopped_after_onset_ms,
                })
                .to_string(),
            });
        }
        events.sort_by_key(|e| e.at_ms);
        let duration_ms = line_ms + 500;
        StoredCall {
            call: CallRecord {
                id,
                customer_id: self.customer_id.clone(),
                campaign_id: self.campaign_id.clone(),
                started_at_ms: self.started_at_ms,
                ended_at_ms: self.started_at_ms + duration_ms,
                outcome: self.outcome.clone(),
                turns,
            },
            attempt_id: None,
            end_reason: self.end_reason.clone(),
            language: self.language.clone(),
            segment: self.segment.clone(),
            duration_ms,
            actions,
            events,
            metrics,
            recording: None,
            do_not_call: self.do_not_call,
        }
    }

    /// The call as the QA job reads it back from the store.
    pub fn to_record(&self) -> QaCallRecord {
        let s = self.to_stored();
        QaCallRecord {
            call: s.call,
            end_reason: Some(s.end_reason),
            language: Some(s.language),
            segment: Some(s.segment),
            duration_ms: Some(s.duration_ms),
            customer_name: self.customer_name.clone(),
            phone_sealed: None,
            do_not_call: self.do_not_call,
            actions: s.actions,
            events: s.events,
            metrics: s.metrics,
        }
    }
}

fn ex(caller: &str, intent: &str, sentiment: f32, bot: &str, action: &str) -> Exchange {
    Exchange {
        caller: caller.into(),
        intent: intent.into(),
        sentiment,
        bot: bot.into(),
        action: action.into(),
        ..Exchange::default()
    }
}

/// `n` seeded synthetic calls over a mix of personas (buyers, price objections, refusals,
/// complaints, opt-outs, no answers) with the bot sometimes at fault (slow replies, a missed
/// objection, a forbidden promise, talking over the caller), spread over 14 days and the hours
/// 8-20 UTC, across four segments.
pub fn synthetic_calls(n: usize, seed: u64) -> Vec<CallScript> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    const SEGMENTS: [&str; 4] = [
        "price_sensitive",
        "quality_oriented",
        "young_families",
        "retirees",
    ];
    const NAMES: [&str; 6] = [
        "Alice Chen",
        "Bob Li",
        "Carol Wang",
        "Dan Zhou",
        "Erin Xu",
        "Frank Wu",
    ];
    const PITCH: &str =
        "Our family plan covers four lines for 39 dollars a month, with 20 gigabytes each.";
    const DISCOUNT: &str = "I can offer you 20% off for six months, which brings it to 31 dollars.";
    (0..n)
        .map(|i| {
            let name = NAMES[(i / 2) % NAMES.len()];
            let mut s = CallScript {
                id: format!("call-{i:06}"),
                customer_id: format!("cust-{:06}", i / 2),
                customer_name: name.into(),
                segment: SEGMENTS[rng.random_range(0..SEGMENTS.len())].into(),
                started_at_ms: 1_765_000_000_000
                    + rng.random_range(0..14i64) * 86_400_000
                    + rng.random_range(8..21i64) * 3_600_000
                    + rng.random_range(0..3_600_000i64),
                greeting: format!(
                    "Hello {name}, this is Ava, an automated assistant from Acme. Do you have a minute?"
                ),
                ..CallScript::default()
            };
            let slow = rng.random_bool(0.08);
            let v2v = |rng: &mut ChaCha8Rng| {
                if slow {
                    rng.random_range(1600.0..3200.0)
                } else {
                    rng.random_range(450.0..1300.0)
                }
            };
            let persona = rng.random_range(0..100u32);
            let mut xs = vec![ex(
                "Yes, what is it about?",
                "enquiry",
                0.1,
                PITCH,
                "pitch",
            )];
            match persona {
                0..=11 => {
                    s.outcome = "no_answer".into();
                    s.end_reason = "no_answer".into();
                    s.greeting.clear();
                    xs.clear();
                }
                12..=29 => {
                    xs.push(ex(
                        "Sounds good, sign me up.",
                        "purchase_intent",
                        0.6,
                        "Great, I have noted that. Thank you!",
                        "close",
                    ));
                    xs[1].close_outcome = Some("converted".into());
                    s.outcome = "converted".into();
                }
                30..=49 => {
                    let missed = rng.random_bool(0.15);
                    xs.push(ex(
                        "That's too expensive for us.",
                        "price_objection",
                        -0.4,
                        if missed { PITCH } else { DISCOUNT },
                        if missed { "pitch" } else { "discount_offer" },
                    ));
                    if rng.random_bool(0.5) {
                        xs.push(ex(
                            "OK, that works, let's do it.",
                            "purchase_intent",
                            0.5,
                            "Wonderful, you are all set.",
                            "close",
                        ));
                        xs[2].close_outcome = Some("converted".into());
                        s.outcome = "converted".into();
                    } else {
                        xs.push(ex(
                            "No, still not interested.",
                            "refusal",
                            -0.3,
                            "Understood, thank you for your time.",
                            "close",
                        ));
                        xs[2].close_outcome = Some("refused".into());
                        s.outcome = "refused".into();
                    }
                }
                50..=64 => {
                    xs.push(ex(
                        "I'm not interested, I'm busy.",
                        "refusal",
                        -0.3,
                        "No problem. When would be a better time to call back?",
                        "offer_callback",
                    ));
                    xs.push(ex(
                        "Tomorrow at 3 then.",
                        "callback_request",
                        0.0,
                        "I'll call you tomorrow at 3 pm.",
                        "book_callback",
                    ));
                    s.outcome = "callback".into();
                }
                65..=74 => {
                    xs.push(ex(
                        "This is the third time you call, I want to complain!",
                        "complaint",
                        -0.8,
                        "I'm sorry. Let me put you through to a colleague.",
                        "hand_off",
                    ));
                    s.outcome = "handed_off".into();
                }
                75..=81 => {
                    xs.push(ex(
                        "Take me off your list, don't call me again.",
                        "opt_out",
                        -0.5,
                        "Sorry for the trouble. You will not be called again.",
                        "add_to_do_not_call",
                    ));
                    xs[1].keywords = vec!["do_not_call".into()];
                    s.outcome = "do_not_call".into();
                    s.do_not_call = true;
                }
                82..=89 => {
                    xs.push(ex(
                        "Hmm.",
                        "other",
                        0.0,
                        "Sorry, could you say that again?",
                        "clarify",
                    ));
                    xs[1].confidence = 0.2;
                    xs[1].rule = "low_confidence".into();
                    xs.push(ex(
                        "...",
                        "other",
                        -0.2,
                        "Sorry, I did not catch that.",
                        "clarify",
                    ));
                    xs[2].confidence = 0.1;
                    xs[2].rule = "low_confidence".into();
                    s.outcome = "hung_up".into();
                    s.end_reason = "caller_hung_up".into();
                }
                _ => {
                    xs.push(ex(
                        "Is it a good investment?",
                        "enquiry",
                        0.2,
                        "It is a guaranteed return on your money, you cannot lose.",
                        "answer_faq",
                    ));
                    xs.push(ex(
                        "No thanks.",
                        "refusal",
                        -0.2,
                        "Would another time suit you better?",
                        "offer_callback",
                    ));
                    xs.push(ex(
                        "No.",
                        "refusal",
                        -0.3,
                        "Thank you for your time, goodbye.",
                        "close",
                    ));
                    xs[3].close_outcome = Some("refused".into());
                    s.outcome = "refused".into();
                }
            }
            for x in &mut xs {
                x.v2v_ms = v2v(&mut rng);
            }
            if xs.len() > 1 && rng.random_bool(0.1) {
                let long = rng.random_bool(0.4);
                s.barge_ins.push(ScriptBargeIn {
                    exchange: 1,
                    onset_after_ms: 1500,
                    detected_after_onset_ms: 250,
                    bot_stopped_after_onset_ms: if long { 1400 } else { 350 },
                });
                xs[0].interrupted = true;
            }
            s.exchanges = xs;
            s
        })
        .collect()
}

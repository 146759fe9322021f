//! Checks a scenario's expectations against the transcript of its call: one [`Failure`] per
//! broken expectation, each naming the turn and the check, so a report says exactly what broke.

use crate::scenario::{CallExpect, Mode, Scenario, TurnExpect};
use crate::transcript::{ObservedTurn, Transcript};
use retrieval::Language;
use serde::{Deserialize, Serialize};

/// One broken expectation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Failure {
    /// The caller turn (1-based), or none for a per-call check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub turn: Option<usize>,
    /// `action`, `intent`, `say`, `not_say`, `latency`, `outcome`, `well_formed`, `crash`, …
    pub check: String,
    pub message: String,
}

impl Failure {
    pub fn call(check: &str, message: String) -> Self {
        Self {
            turn: None,
            check: check.into(),
            message,
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.turn {
            Some(t) => write!(f, "turn {t} {}: {}", self.check, self.message),
            None => write!(f, "{}: {}", self.check, self.message),
        }
    }
}

/// Every broken expectation of `scenario` in `transcript`, in turn order.
pub fn check(scenario: &Scenario, mode: Mode, transcript: &Transcript) -> Vec<Failure> {
    let mut out = Vec::new();
    let file = &scenario.file;
    let language = file.language;
    let expected_turns = if file.persona.is_some() {
        0
    } else {
        file.turns.len()
    };
    if transcript.turns.len() < expected_turns {
        // The call ended before every scripted turn was said: the later expectations cannot
        // hold, and the outcome check says why.
        for (i, t) in file.turns.iter().enumerate().skip(transcript.turns.len()) {
            if has_expectations(&t.expect) {
                out.push(Failure {
                    turn: Some(i + 1),
                    check: "turn_reached".into(),
                    message: format!(
                        "the call ended ({}) after {} caller turns; this turn was never answered",
                        transcript.outcome,
                        transcript.turns.len()
                    ),
                });
            }
        }
    }
    for (i, observed) in transcript.turns.iter().enumerate() {
        if let Some(spec) = file.turns.get(i) {
            check_turn(i + 1, &spec.expect, observed, mode, language, &mut out);
        }
    }
    check_call(&file.expect, transcript, language, &mut out);
    out
}

fn has_expectations(e: &TurnExpect) -> bool {
    serde_json::to_value(e).is_ok_and(|v| v.as_object().is_some_and(|o| !o.is_empty()))
}

fn check_turn(
    turn: usize,
    e: &TurnExpect,
    o: &ObservedTurn,
    mode: Mode,
    language: Language,
    out: &mut Vec<Failure>,
) {
    let mut fail = |check: &str, message: String| {
        out.push(Failure {
            turn: Some(turn),
            check: check.into(),
            message,
        })
    };
    let intent = o.intent.as_deref().unwrap_or("none");
    if let Some(want) = e.intent {
        if intent != want.as_str() {
            fail(
                "intent",
                format!(
                    "expected intent {}, got {intent} ({:.2})",
                    want.as_str(),
                    o.confidence
                ),
            );
        }
    }
    if !e.intent_any.is_empty() && !e.intent_any.iter().any(|i| i.as_str() == intent) {
        let want: Vec<&str> = e.intent_any.iter().map(|i| i.as_str()).collect();
        fail(
            "intent",
            format!(
                "expected one of {}, got {intent} ({:.2})",
                want.join("/"),
                o.confidence
            ),
        );
    }
    if let (Some(want), Some(got)) = (e.sentiment, o.sentiment.as_deref()) {
        let want = serde_json::to_value(want)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        if got != want {
            fail(
                "sentiment",
                format!(
                    "expected {want} sentiment, got {got} ({:.2})",
                    o.sentiment_score
                ),
            );
        }
    }
    for k in &e.keywords {
        if !o.keywords.contains(k) {
            fail(
                "keywords",
                format!("keyword {k} not found (found: {})", list(&o.keywords)),
            );
        }
    }
    let action = o.action.as_str();
    if let Some(want) = e.action {
        if action != want.as_str() {
            fail(
                "action",
                format!(
                    "expected {}, got {action} (rule {}); reply: {:?}",
                    want.as_str(),
                    o.rule,
                    o.reply
                ),
            );
        }
    }
    if !e.action_any.is_empty() && !e.action_any.iter().any(|a| a.as_str() == action) {
        let want: Vec<&str> = e.action_any.iter().map(|a| a.as_str()).collect();
        fail(
            "action",
            format!(
                "expected one of {}, got {action} (rule {})",
                want.join("/"),
                o.rule
            ),
        );
    }
    if e.not_action.iter().any(|a| a.as_str() == action) {
        fail(
            "not_action",
            format!(
                "the bot must not {action} here (rule {}); reply: {:?}",
                o.rule, o.reply
            ),
        );
    }
    if let Some(want) = &e.action_detail {
        match (&o.action_detail, mode) {
            (Some(got), _) => {
                if let Some(path) = mismatch(want, got, String::new()) {
                    fail(
                        "action_detail",
                        format!("{path}: expected {want} within {got}"),
                    );
                }
            }
            (None, Mode::Text) => fail("action_detail", "the action has no details".into()),
            // Audio mode sees the action's name only; the detail is checked in text mode.
            (None, Mode::Audio) => {}
        }
    }
    if let Some(rule) = &e.rule {
        if &o.rule != rule && !o.rule.is_empty() {
            fail("rule", format!("expected rule {rule}, got {}", o.rule));
        }
    }
    check_phrases(&o.reply, &e.say, &e.not_say, language, &mut fail);
    for p in &e.say_match {
        if !p.regex.is_match(&o.reply) {
            fail(
                "say_match",
                format!("reply does not match /{}/: {:?}", p.source, o.reply),
            );
        }
    }
    for p in &e.not_match {
        if let Some(m) = p.regex.find(&o.reply) {
            fail(
                "not_match",
                format!(
                    "reply matches /{}/ at {:?}: {:?}",
                    p.source,
                    m.as_str(),
                    o.reply
                ),
            );
        }
    }
    if let (Some(budget), Some(got)) = (e.max_latency_ms, o.latency_ms) {
        if got > budget {
            fail(
                "latency",
                format!("{got:.1} ms over the {budget:.0} ms budget"),
            );
        }
    }
    // Text mode has no audio to stop.
    if let (Some(want), Mode::Audio) = (e.barged_in, mode) {
        if o.barged_in != want {
            fail(
                "barged_in",
                if want {
                    "the bot did not stop speaking when the caller talked over it".into()
                } else {
                    "the bot stopped speaking (a barge-in) where none was expected".into()
                },
            );
        }
    }
}

fn check_phrases(
    reply: &str,
    say: &[String],
    not_say: &[String],
    language: Language,
    fail: &mut impl FnMut(&str, String),
) {
    let hay = normalize(reply, language);
    for s in say {
        if !hay.contains(&normalize(s, language)) {
            fail("say", format!("reply lacks {s:?}: {reply:?}"));
        }
    }
    for s in not_say {
        if hay.contains(&normalize(s, language)) {
            fail(
                "not_say",
                format!("reply contains forbidden {s:?}: {reply:?}"),
            );
        }
    }
}

/// Lower case, whitespace collapsed (Chinese: whitespace removed).
fn normalize(s: &str, language: Language) -> String {
    let lower = s.to_lowercase();
    match language {
        Language::En => lower.split_whitespace().collect::<Vec<_>>().join(" "),
        Language::Zh => lower.chars().filter(|c| !c.is_whitespace()).collect(),
    }
}

fn check_call(e: &CallExpect, t: &Transcript, language: Language, out: &mut Vec<Failure>) {
    if let Some(want) = e.outcome {
        if t.outcome != want.as_str() {
            let actions: Vec<&str> = t.turns.iter().map(|t| t.action.as_str()).collect();
            out.push(Failure::call(
                "outcome",
                format!(
                    "expected outcome {}, got {} (actions: {})",
                    want.as_str(),
                    t.outcome,
                    actions.join(" → ")
                ),
            ));
        }
    }
    for a in &e.actions_include {
        if !t.turns.iter().any(|o| o.action == a.as_str()) {
            out.push(Failure::call(
                "actions_include",
                format!("the call never did {}", a.as_str()),
            ));
        }
    }
    for a in &e.actions_exclude {
        if let Some((i, o)) = t
            .turns
            .iter()
            .enumerate()
            .find(|(_, o)| o.action == a.as_str())
        {
            out.push(Failure {
                turn: Some(i + 1),
                check: "actions_exclude".into(),
                message: format!(
                    "the bot did {} (rule {}): {:?}",
                    a.as_str(),
                    o.rule,
                    o.reply
                ),
            });
        }
    }
    let actions = std::iter::once("greet").chain(t.turns.iter().map(|o| o.action.as_str()));
    for (i, (reply, action)) in t.replies().zip(actions).enumerate() {
        if action == "no_input_close" {
            // The session hangs up without a word.
            continue;
        }
        let turn = (i > 0).then_some(i);
        let mut fail = |check: &str, message: String| {
            out.push(Failure {
                turn,
                check: check.into(),
                message,
            })
        };
        check_phrases(reply, &[], &e.never_say, language, &mut fail);
        for p in &e.never_match {
            if let Some(m) = p.regex.find(reply) {
                fail(
                    "never_match",
                    format!(
                        "reply matches /{}/ at {:?}: {reply:?}",
                        p.source,
                        m.as_str()
                    ),
                );
            }
        }
        if e.well_formed.unwrap_or(true) {
            if let Some(problem) = malformed(reply, language) {
                fail("well_formed", format!("{problem}: {reply:?}"));
            }
        }
    }
    if let Some(budget) = e.max_latency_ms {
        for (i, o) in t.turns.iter().enumerate() {
            if let Some(got) = o.latency_ms.filter(|ms| *ms > budget) {
                out.push(Failure {
                    turn: Some(i + 1),
                    check: "latency".into(),
                    message: format!("{got:.1} ms over the call's {budget:.0} ms budget"),
                });
            }
        }
    }
}

/// Why a reply is not well-formed text, if it is not.
pub fn malformed(reply: &str, language: Language) -> Option<String> {
    let text = reply.trim();
    if text.is_empty() {
        return Some("empty reply".into());
    }
    if let Some(start) = text.find('{') {
        if text[start..].contains('}') {
            return Some("an unfilled {slot}".into());
        }
    }
    if language == Language::En {
        for sentence in dialog::policy::templates::split_sentences(text) {
            if sentence.chars().next().is_some_and(|c| c.is_lowercase()) {
                return Some(format!("a sentence starts in lower case ({sentence:?})"));
            }
        }
        if text.contains("  ") || text.contains(" .") || text.contains(" ,") {
            return Some("stray spacing".into());
        }
    }
    let last = text.chars().last().unwrap_or(' ');
    if !matches!(last, '.' | '?' | '!' | '。' | '？' | '！') {
        return Some("no closing punctuation".into());
    }
    None
}

/// Where `want` (a subset) differs from `got`, as a JSON path, or `None` if it is contained.
fn mismatch(want: &serde_json::Value, got: &serde_json::Value, at: String) -> Option<String> {
    use serde_json::Value;
    match (want, got) {
        (Value::Object(w), Value::Object(g)) => w.iter().find_map(|(k, wv)| {
            let path = if at.is_empty() {
                k.clone()
            } else {
                format!("{at}.{k}")
            };
            match g.get(k) {
                Some(gv) => mismatch(wv, gv, path),
                None => Some(path),
            }
        }),
        (Value::Number(w), Value::Number(g)) => {
            (w.as_f64() != g.as_f64()).then(|| if at.is_empty() { "value".into() } else { at })
        }
        (w, g) => (w != g).then(|| if at.is_empty() { "value".into() } else { at }),
    }
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "none".into()
    } else {
        items.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subset_match_names_the_path() {
        let got =
            serde_json::json!({"type": "book_callback", "time": {"day": "tomorrow", "hour": 15}});
        assert_eq!(
            mismatch(
                &serde_json::json!({"time": {"hour": 15}}),
                &got,
                String::new()
            ),
            None
        );
        assert_eq!(
            mismatch(
                &serde_json::json!({"time": {"hour": 10}}),
                &got,
                String::new()
            )
            .as_deref(),
            Some("time.hour")
        );
        assert_eq!(
            mismatch(&serde_json::json!({"reason": "x"}), &got, String::new()).as_deref(),
            Some("reason")
        );
    }

    #[test]
    fn malformed_replies_are_caught() {
        assert!(malformed("the Family Shield plan costs 39 dollars.", Language::En).is_some());
        assert!(malformed("Hello {customer_name}.", Language::En).is_some());
        assert!(malformed("", Language::Zh).is_some());
        assert!(malformed("It costs 39 dollars a month. Shall I?", Language::En).is_none());
        assert!(malformed("家庭守护计划每月39元。", Language::Zh).is_none());
    }
}

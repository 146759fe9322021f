//! A recorded call (with its QA grades) turned into a scenario file, so a bad call found by QA
//! becomes a regression test. The caller's recognized words become the turns; the bot's
//! recorded actions become the expectations (what it did then: edit them to what it should
//! have done); the session's re-prompts after silence become silent turns; failing QA criteria
//! become judge criteria. The customer's name is not copied.

use crate::error::EvalError;
use crate::scenario::{
    ActionKind, CallExpect, CallerTurn, OutcomeKind, ProfileSpec, ScenarioFile, Source, TurnExpect,
};
use retrieval::store::{Action, CallFacts, CallRecord, QaGrade};
use retrieval::{CustomerProfile, Language, SqlStore};

/// Everything stored about one call that a scenario needs.
#[derive(Debug, Clone)]
pub struct RecordedCall {
    pub call: CallRecord,
    pub actions: Vec<Action>,
    pub facts: Option<CallFacts>,
    pub grades: Vec<QaGrade>,
    pub profile: Option<CustomerProfile>,
}

/// Reads a call, its actions, facts, QA grades and the customer's profile from the store.
pub async fn fetch(store: &SqlStore, call_id: &str) -> Result<RecordedCall, EvalError> {
    let err = |e: retrieval::RetrievalError| EvalError::Io {
        path: format!("call {call_id}").into(),
        message: e.to_string(),
    };
    let call = store
        .call(call_id)
        .await
        .map_err(err)?
        .ok_or_else(|| EvalError::Io {
            path: format!("call {call_id}").into(),
            message:
                "no such call in the store (list calls with the ListCalls RPC or the calls table)"
                    .into(),
        })?;
    let actions = store.actions(call_id).await.map_err(err)?;
    let facts = store.call_facts(call_id).await.map_err(err)?;
    let grades = store.qa_grades(call_id).await.map_err(err)?;
    let profile = store.profile(&call.customer_id).await.map_err(err)?;
    Ok(RecordedCall {
        call,
        actions,
        facts,
        grades,
        profile,
    })
}

/// The scenario for a recorded call.
pub fn scenario_of(rec: &RecordedCall) -> ScenarioFile {
    let language = rec
        .facts
        .as_ref()
        .and_then(|f| f.language.as_deref())
        .and_then(Language::parse)
        .or_else(|| rec.profile.as_ref().map(|p| p.language))
        .unwrap_or_default();
    let mut decisions: Vec<(i64, serde_json::Value)> = rec
        .actions
        .iter()
        .filter_map(|a| Some((a.seq, serde_json::from_str(&a.detail).ok()?)))
        .collect();
    decisions.sort_by_key(|(seq, _)| *seq);
    let mut turns = Vec::new();
    let callers = rec.call.turns.iter().filter(|t| t.speaker == "caller");
    for (i, said) in callers.enumerate() {
        // Decision 0 is the greeting; caller turn i is answered by decision i + 1.
        let decision = decisions
            .iter()
            .find(|(seq, _)| *seq == i as i64 + 1)
            .map(|(_, d)| d);
        turns.push(CallerTurn {
            say: Some(said.text.clone()),
            expect: decision.map(expect_of).unwrap_or_default(),
            ..CallerTurn::default()
        });
    }
    let events = rec.facts.as_ref().map_or(&[][..], |f| f.events.as_slice());
    let no_input = events.iter().any(|e| e.kind == "no_input");
    if no_input {
        let reprompts = events.iter().filter(|e| e.kind == "reprompt").count();
        for n in 0..=reprompts {
            turns.push(CallerTurn {
                silence_ms: Some(7000),
                expect: TurnExpect {
                    action: Some(if n < reprompts {
                        ActionKind::Reprompt
                    } else {
                        ActionKind::NoInputClose
                    }),
                    ..TurnExpect::default()
                },
                ..CallerTurn::default()
            });
        }
    }
    let outcome = match rec.call.outcome.as_str() {
        "converted" => Some(OutcomeKind::Converted),
        "callback" => Some(OutcomeKind::Callback),
        "refused" => Some(OutcomeKind::Refused),
        "handed_off" | "abandoned_handoff" => Some(OutcomeKind::HandedOff),
        "do_not_call" => Some(OutcomeKind::DoNotCall),
        "no_input" => Some(OutcomeKind::NoInput),
        _ => None,
    };
    let qa: Vec<String> = rec
        .grades
        .iter()
        .map(|g| {
            format!(
                "{}: {}/{} ({}){}",
                g.criterion,
                g.score,
                g.max_score,
                g.grader,
                if g.notes.is_empty() {
                    String::new()
                } else {
                    format!(" {}", g.notes)
                }
            )
        })
        .collect();
    let judge = rec
        .grades
        .iter()
        .filter(|g| g.score < g.max_score)
        .map(|g| {
            format!(
                "QA marked `{}` {}/{} on the recorded call{}: the bot must do better on it.",
                g.criterion,
                g.score,
                g.max_score,
                if g.notes.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", g.notes)
                }
            )
        })
        .collect();
    let segment = rec
        .facts
        .as_ref()
        .and_then(|f| f.segment.clone())
        .filter(|s| !s.is_empty());
    let profile = rec.profile.as_ref();
    ScenarioFile {
        name: format!("captured call {}", rec.call.id),
        description: format!(
            "Captured from call {} (campaign {}, outcome {}). Expectations are what the bot did on that call: edit them to what it should have done.",
            rec.call.id, rec.call.campaign_id, rec.call.outcome
        ),
        language,
        tags: vec!["captured".into()],
        seed: None,
        modes: Vec::new(),
        profile: ProfileSpec {
            segment: segment.or_else(|| profile.and_then(|p| p.segment.clone())),
            price_sensitivity: profile.and_then(|p| p.price_sensitivity),
            children_in_school: profile.and_then(|p| p.children_in_school),
            age: profile.and_then(|p| p.age),
            interests: profile.map(|p| p.interests.clone()).unwrap_or_default(),
            calls_so_far: profile.map_or(0, |p| p.calls_so_far),
            ..ProfileSpec::default()
        },
        persona: None,
        turns,
        expect: CallExpect {
            outcome,
            ..CallExpect::default()
        },
        judge,
        source: Some(Source {
            call_id: rec.call.id.clone(),
            campaign_id: rec.call.campaign_id.clone(),
            outcome: rec.call.outcome.clone(),
            qa,
        }),
    }
}

/// A recorded decision (`{"action": {"type": …, …}, "rule": …}`) as turn expectations.
fn expect_of(decision: &serde_json::Value) -> TurnExpect {
    let action = &decision["action"];
    let kind: Option<ActionKind> = action
        .get("type")
        .and_then(|t| serde_json::from_value(t.clone()).ok());
    let detail = action.as_object().map(|o| {
        o.iter()
            .filter(|(k, v)| *k != "type" && !v.is_null())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect::<serde_json::Map<_, _>>()
    });
    TurnExpect {
        action: kind,
        action_detail: detail
            .filter(|d| !d.is_empty())
            .map(serde_json::Value::Object),
        ..TurnExpect::default()
    }
}

/// The scenario as YAML with a header saying where it came from.
pub fn to_yaml(file: &ScenarioFile) -> Result<String, EvalError> {
    let body = serde_yaml_ng::to_string(file).map_err(|e| EvalError::Io {
        path: "scenario".into(),
        message: e.to_string(),
    })?;
    let source = file.source.as_ref().map_or("", |s| s.call_id.as_str());
    Ok(format!(
        "# Captured by `ringwise eval capture {source}`. The turns are what the recognizer heard;\n\
         # the expectations are what the bot did then. Edit them to what it should have done.\n{body}"
    ))
}

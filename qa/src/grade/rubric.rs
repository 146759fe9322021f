//! The rubric: one function per check over a [`CallView`], each returning pass / fail / not
//! applicable, a score, evidence spans and the failure reason a failing check stands for. The
//! intent checks mirror the dialogue policy's precedence (opt-out, then complaint and anger, then
//! objections): they ask whether the bot did what its own rules require for what the caller said.

use super::{
    CheckResult, CheckStatus, Evidence, Failure, FailureReason, GraderConfig, RULES_GRADER,
};
use crate::transcript::{CallView, Speaker, ViewTurn};
use dialog::Intent;

/// Criterion names as stored in `qa_grades.criterion`, in rubric order.
pub mod criteria {
    pub const DISCLOSURE: &str = "disclosure";
    pub const IDENTIFIED_CUSTOMER: &str = "identified_customer";
    pub const INTENT_HANDLED: &str = "intent_handled";
    pub const HAND_OFF: &str = "hand_off";
    pub const OPT_OUT_HONOURED: &str = "opt_out_honoured";
    pub const NO_FORBIDDEN_PROMISES: &str = "no_forbidden_promises";
    pub const TONE: &str = "tone";
    pub const LATENCY: &str = "latency";
    pub const INTERRUPTIONS: &str = "interruptions";
    pub const TALK_RATIO: &str = "talk_ratio";
    pub const OUTCOME: &str = "outcome";
    pub const ALL: [&str; 11] = [
        DISCLOSURE,
        IDENTIFIED_CUSTOMER,
        INTENT_HANDLED,
        HAND_OFF,
        OPT_OUT_HONOURED,
        NO_FORBIDDEN_PROMISES,
        TONE,
        LATENCY,
        INTERRUPTIONS,
        TALK_RATIO,
        OUTCOME,
    ];
}
use criteria::*;

/// A check's result before it is tagged with its criterion and weight.
struct Verdict {
    status: CheckStatus,
    /// 0..1 of the weight.
    fraction: f64,
    notes: String,
    evidence: Vec<Evidence>,
}

impl Verdict {
    fn pass(notes: impl Into<String>, evidence: Vec<Evidence>) -> Self {
        Self {
            status: CheckStatus::Pass,
            fraction: 1.0,
            notes: notes.into(),
            evidence,
        }
    }
    fn fail(notes: impl Into<String>, evidence: Vec<Evidence>) -> Self {
        Self {
            status: CheckStatus::Fail,
            fraction: 0.0,
            notes: notes.into(),
            evidence,
        }
    }
    fn na(notes: impl Into<String>) -> Self {
        Self {
            status: CheckStatus::NotApplicable,
            fraction: 0.0,
            notes: notes.into(),
            evidence: Vec::new(),
        }
    }
    fn graded(pass: bool, fraction: f64, notes: String, evidence: Vec<Evidence>) -> Self {
        Self {
            status: if pass {
                CheckStatus::Pass
            } else {
                CheckStatus::Fail
            },
            fraction: fraction.clamp(0.0, 1.0),
            notes,
            evidence,
        }
    }
}

/// Weight of each criterion (its `max_score`) and the failure reason its failure stands for.
fn weight_and_reason(criterion: &str) -> (f64, FailureReason) {
    match criterion {
        DISCLOSURE => (2.0, FailureReason::ComplianceBreach),
        IDENTIFIED_CUSTOMER => (1.0, FailureReason::MisidentifiedCustomer),
        INTENT_HANDLED => (2.0, FailureReason::MissedIntent),
        HAND_OFF => (2.0, FailureReason::WrongHandoff),
        OPT_OUT_HONOURED => (2.0, FailureReason::ComplianceBreach),
        NO_FORBIDDEN_PROMISES => (2.0, FailureReason::ComplianceBreach),
        TONE => (1.0, FailureReason::NegativeTone),
        LATENCY => (1.0, FailureReason::BotFailureLatency),
        INTERRUPTIONS => (1.0, FailureReason::BotTalkedOver),
        TALK_RATIO => (1.0, FailureReason::BotMonologue),
        _ => (1.0, FailureReason::BotFailureEngine),
    }
}

/// Runs every check, then derives the failure reasons (primary first).
pub fn grade(call: &CallView, cfg: &GraderConfig) -> (Vec<CheckResult>, Vec<Failure>) {
    let verdicts = [
        (DISCLOSURE, disclosure(call, cfg)),
        (IDENTIFIED_CUSTOMER, identified_customer(call, cfg)),
        (INTENT_HANDLED, intent_handled(call, cfg)),
        (HAND_OFF, hand_off(call, cfg)),
        (OPT_OUT_HONOURED, opt_out_honoured(call, cfg)),
        (NO_FORBIDDEN_PROMISES, forbidden_promises(call, cfg)),
        (TONE, tone(call, cfg)),
        (LATENCY, latency(call, cfg)),
        (INTERRUPTIONS, interruptions(call, cfg)),
        (TALK_RATIO, talk_ratio(call, cfg)),
        (OUTCOME, outcome(call)),
    ];
    let mut failures: Vec<Failure> = Vec::new();
    let mut add = |f: Failure| {
        if !failures.iter().any(|x| x.reason == f.reason) {
            failures.push(f);
        }
    };
    let mut checks = Vec::with_capacity(verdicts.len());
    for (criterion, v) in verdicts {
        let (weight, reason) = weight_and_reason(criterion);
        if v.status == CheckStatus::Fail && criterion != OUTCOME {
            add(Failure {
                reason,
                criterion: Some(criterion.to_string()),
                detail: v.notes.clone(),
                evidence: v.evidence.first().cloned(),
            });
        }
        checks.push(CheckResult {
            criterion: criterion.to_string(),
            status: v.status,
            score: if v.status == CheckStatus::NotApplicable {
                0.0
            } else {
                (weight * v.fraction * 100.0).round() / 100.0
            },
            max_score: if v.status == CheckStatus::NotApplicable {
                0.0
            } else {
                weight
            },
            grader: RULES_GRADER.to_string(),
            notes: v.notes,
            evidence: v.evidence,
        });
    }
    if let Some(f) = recognition_failure(call, cfg) {
        add(f);
    }
    let outcome_check = checks.iter().find(|c| c.criterion == OUTCOME);
    let reason = FailureReason::from_outcome(&call.outcome, &call.end_reason).or_else(|| {
        // A success the bot's actions do not lead to: the record or the session is wrong.
        outcome_check
            .is_some_and(|c| c.status == CheckStatus::Fail)
            .then_some(FailureReason::BotFailureEngine)
    });
    if let Some(reason) = reason {
        let evidence = outcome_check
            .and_then(|c| c.evidence.first().cloned())
            .or_else(|| call.turns.last().map(|t| Evidence::at(t, "last turn")));
        add(Failure {
            reason,
            criterion: Some(OUTCOME.to_string()),
            detail: match outcome_check {
                Some(c) if c.status == CheckStatus::Fail => c.notes.clone(),
                _ => format!("outcome {} (end: {})", call.outcome, call.end_reason),
            },
            evidence,
        });
    }
    // A customer who refuses after a bot failure is still counted, but second.
    failures.sort_by_key(|f| f.reason);
    (checks, failures)
}

fn contains_any(text: &str, phrases: &[String]) -> Option<String> {
    let lower = text.to_lowercase();
    phrases
        .iter()
        .map(|p| p.trim())
        .find(|p| !p.is_empty() && lower.contains(&p.to_lowercase()))
        .map(str::to_string)
}

fn first_bot_turn(call: &CallView) -> Option<&ViewTurn> {
    call.bot_turns().next()
}

fn intent_of(t: &ViewTurn) -> Option<Intent> {
    t.nlu.as_ref().and_then(|n| n.intent)
}

fn action_of(call: &CallView, t: &ViewTurn) -> Option<String> {
    call.reply_in(t.exchange).and_then(|r| r.action.clone())
}

/// The bot said it is automated in its first turn, and whenever the caller asked.
fn disclosure(call: &CallView, cfg: &GraderConfig) -> Verdict {
    let Some(first) = first_bot_turn(call) else {
        return Verdict::na("the bot never spoke");
    };
    if contains_any(&first.text, &cfg.disclosure_phrases).is_none() {
        return Verdict::fail(
            "the first bot turn does not say an automated assistant is calling",
            vec![Evidence::at(first, "no disclosure in the opening")],
        );
    }
    for t in call.caller_turns() {
        if intent_of(t) != Some(Intent::AsksIfRobot) {
            continue;
        }
        let reply = call.reply_in(t.exchange);
        let disclosed = reply.is_some_and(|r| {
            r.action.as_deref() == Some("disclose_bot")
                || contains_any(&r.text, &cfg.disclosure_phrases).is_some()
        });
        if !disclosed {
            return Verdict::fail(
                "the caller asked whether a person is speaking and the bot did not say it is automated",
                vec![Evidence::at(reply.unwrap_or(t), "asks_if_robot not answered")],
            );
        }
    }
    Verdict::pass(
        "disclosed in the opening",
        vec![Evidence::at(first, "disclosure")],
    )
}

/// The greeting named the customer, and a "wrong person" was not pitched to.
fn identified_customer(call: &CallView, cfg: &GraderConfig) -> Verdict {
    let Some(first) = first_bot_turn(call) else {
        return Verdict::na("the bot never spoke");
    };
    for t in call.caller_turns() {
        if contains_any(&t.text, &cfg.wrong_person_phrases).is_some() {
            let action = action_of(call, t).unwrap_or_default();
            if !matches!(
                action.as_str(),
                "close" | "add_to_do_not_call" | "hand_off" | "clarify"
            ) {
                return Verdict::fail(
                    format!(
                        "the caller said it is the wrong person and the bot went on ({action})"
                    ),
                    vec![Evidence::at(t, "wrong person")],
                );
            }
        }
    }
    let name = call
        .customer_name
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    if name.is_empty() {
        return Verdict::na("the customer has no name on record");
    }
    let said = first.text.split_whitespace().collect::<Vec<_>>().join(" ");
    if said.to_lowercase().contains(&name.to_lowercase()) {
        Verdict::pass(
            "the greeting names the customer",
            vec![Evidence::at(first, "customer named")],
        )
    } else {
        Verdict::fail(
            "the greeting does not name the customer on record",
            vec![Evidence::at(first, "customer not named")],
        )
    }
}

/// What the policy's safety rules require for a caller turn, before any script.
enum Safety {
    OptOut,
    HandOff(&'static str),
    None,
}

fn safety(t: &ViewTurn, cfg: &GraderConfig) -> Safety {
    let Some(nlu) = &t.nlu else {
        return Safety::None;
    };
    let p = &cfg.policy;
    if nlu.intent == Some(Intent::OptOut) || nlu.has_keyword(&p.opt_out_keywords) {
        return Safety::OptOut;
    }
    if nlu.intent == Some(Intent::Complaint) {
        return Safety::HandOff("complaint");
    }
    let objection = matches!(
        nlu.intent,
        Some(Intent::PriceObjection) | Some(Intent::Refusal)
    ) || nlu.has_keyword(&p.price_keywords)
        || nlu.has_keyword(&p.later_keywords);
    if nlu.sentiment <= p.extreme_sentiment || (nlu.sentiment <= p.hand_off_sentiment && !objection)
    {
        return Safety::HandOff("strong negative sentiment");
    }
    if nlu.has_keyword(&p.human_keywords) && nlu.intent != Some(Intent::AsksIfRobot) {
        return Safety::HandOff("caller asked for a person");
    }
    Safety::None
}

/// Price objection → discount script (or, once discounted, a callback offer or a close);
/// refusal → callback offer (or, once offered, a close); callback request → offer or booking;
/// purchase intent → close.
fn intent_handled(call: &CallView, cfg: &GraderConfig) -> Verdict {
    let p = &cfg.policy;
    let (mut discounted, mut callback_offered) = (false, false);
    let mut handled = Vec::new();
    for t in call.caller_turns() {
        let action = action_of(call, t).unwrap_or_default();
        let before = (discounted, callback_offered);
        discounted |= action == "discount_offer";
        callback_offered |= matches!(action.as_str(), "offer_callback" | "book_callback");
        let Some(nlu) = &t.nlu else { continue };
        if !matches!(safety(t, cfg), Safety::None) || nlu.confidence < p.min_confidence {
            continue;
        }
        let intent = nlu.intent.unwrap_or(Intent::Other);
        let mut wanted: Vec<(&str, Vec<&str>)> = Vec::new();
        if intent == Intent::PriceObjection
            || (nlu.has_keyword(&p.price_keywords) && intent != Intent::Enquiry)
        {
            wanted.push((
                "price objection",
                if before.0 {
                    vec!["offer_callback", "book_callback", "close", "discount_offer"]
                } else {
                    vec!["discount_offer"]
                },
            ));
        }
        if intent == Intent::Refusal || nlu.has_keyword(&p.later_keywords) {
            wanted.push((
                "refusal",
                if before.1 {
                    vec!["offer_callback", "book_callback", "close"]
                } else {
                    vec!["offer_callback", "book_callback"]
                },
            ));
        }
        if intent == Intent::CallbackRequest {
            wanted.push(("callback request", vec!["offer_callback", "book_callback"]));
        }
        if intent == Intent::PurchaseIntent {
            wanted.push(("purchase intent", vec!["close"]));
        }
        if wanted.is_empty() {
            continue;
        }
        let what = wanted
            .iter()
            .map(|(w, _)| *w)
            .collect::<Vec<_>>()
            .join(" + ");
        let ok = wanted.iter().any(|(_, a)| a.contains(&action.as_str()));
        let reply = call.reply_in(t.exchange).unwrap_or(t);
        if !ok {
            let expected: Vec<&str> = wanted.iter().flat_map(|(_, a)| a.iter().copied()).collect();
            return Verdict::fail(
                format!(
                    "{what} answered with {} instead of {}",
                    if action.is_empty() {
                        "nothing"
                    } else {
                        &action
                    },
                    expected.join(" / ")
                ),
                vec![
                    Evidence::at(t, what.clone()),
                    Evidence::at(reply, format!("bot: {action}")),
                ],
            );
        }
        handled.push(Evidence::at(reply, format!("{what} → {action}")));
    }
    if handled.is_empty() {
        Verdict::na("no objection, refusal, callback request or purchase to handle")
    } else {
        Verdict::pass(
            format!("{} caller intent(s) handled by their script", handled.len()),
            handled,
        )
    }
}

/// Complaints, anger and requests for a person go to a human; nothing else does.
fn hand_off(call: &CallView, cfg: &GraderConfig) -> Verdict {
    let mut evidence = Vec::new();
    let mut any = false;
    for t in call.caller_turns() {
        let action = action_of(call, t).unwrap_or_default();
        let reply = call.reply_in(t.exchange).unwrap_or(t);
        match safety(t, cfg) {
            Safety::HandOff(why) => {
                any = true;
                if action != "hand_off" {
                    return Verdict::fail(
                        format!("{why} but the bot answered with {action} instead of a hand-off"),
                        vec![
                            Evidence::at(t, why),
                            Evidence::at(reply, format!("bot: {action}")),
                        ],
                    );
                }
                evidence.push(Evidence::at(reply, format!("{why} → hand_off")));
            }
            Safety::None if action == "hand_off" && t.nlu.is_some() => {
                return Verdict::fail(
                    "hand-off without a complaint, strong negative sentiment or a request for a person",
                    vec![Evidence::at(reply, "unwarranted hand_off")],
                );
            }
            _ => {}
        }
    }
    if any {
        Verdict::pass("every complaint or angry caller was handed off", evidence)
    } else {
        Verdict::na("no complaint, strong negative sentiment or request for a person")
    }
}

/// "Don't call me again" → the do-not-call action, and the number is on the list after the call.
fn opt_out_honoured(call: &CallView, cfg: &GraderConfig) -> Verdict {
    let mut asked = None;
    for t in call.caller_turns() {
        if matches!(safety(t, cfg), Safety::OptOut) {
            let action = action_of(call, t).unwrap_or_default();
            let reply = call.reply_in(t.exchange).unwrap_or(t);
            if action != "add_to_do_not_call" {
                return Verdict::fail(
                    format!("the caller opted out and the bot answered with {action}"),
                    vec![
                        Evidence::at(t, "opt-out"),
                        Evidence::at(reply, format!("bot: {action}")),
                    ],
                );
            }
            asked.get_or_insert(reply);
        }
    }
    let Some(reply) = asked else {
        return Verdict::na("the caller did not opt out");
    };
    if call.do_not_call {
        Verdict::pass(
            "opt-out honoured: on the do-not-call list",
            vec![Evidence::at(reply, "add_to_do_not_call")],
        )
    } else {
        Verdict::fail(
            "the bot said so, but the customer is not on the do-not-call list",
            vec![Evidence::at(reply, "not on the do-not-call list")],
        )
    }
}

fn forbidden_promises(call: &CallView, cfg: &GraderConfig) -> Verdict {
    if first_bot_turn(call).is_none() {
        return Verdict::na("the bot never spoke");
    }
    let hits: Vec<Evidence> = call
        .bot_turns()
        .filter_map(|t| {
            contains_any(&t.text, &cfg.forbidden_phrases)
                .map(|p| Evidence::at(t, format!("forbidden phrase \"{p}\"")))
        })
        .collect();
    if hits.is_empty() {
        Verdict::pass("no forbidden promise", Vec::new())
    } else {
        Verdict::fail(
            format!("{} bot turn(s) with a forbidden promise", hits.len()),
            hits,
        )
    }
}

/// The caller's sentiment from the first to the last turn.
fn tone(call: &CallView, cfg: &GraderConfig) -> Verdict {
    let scored: Vec<(&ViewTurn, f32)> = call
        .caller_turns()
        .filter_map(|t| t.nlu.as_ref().map(|n| (t, n.sentiment)))
        .collect();
    let (Some(first), Some(last)) = (scored.first(), scored.last()) else {
        return Verdict::na("no caller sentiment recorded");
    };
    if scored.len() < 2 {
        return Verdict::na("one caller turn: no trajectory");
    }
    let delta = last.1 - first.1;
    let mut evidence = vec![Evidence::at(last.0, format!("sentiment {:.2}", last.1))];
    if let Some(low) = scored
        .iter()
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .filter(|low| low.0.index != last.0.index)
    {
        evidence.insert(
            0,
            Evidence::at(low.0, format!("lowest sentiment {:.2}", low.1)),
        );
    }
    Verdict::graded(
        delta >= -cfg.tone_max_drop,
        0.5 + f64::from(delta) / 2.0,
        format!(
            "caller sentiment {:.2} → {:.2} over {} turns (change {delta:+.2}, allowed fall {:.2})",
            first.1,
            last.1,
            scored.len(),
            cfg.tone_max_drop
        ),
        evidence,
    )
}

fn latency(call: &CallView, cfg: &GraderConfig) -> Verdict {
    let timed: Vec<(&ViewTurn, f64)> = call
        .bot_turns()
        .filter_map(|t| t.v2v_ms.map(|v| (t, v)))
        .collect();
    if timed.is_empty() {
        return Verdict::na("no reply latency recorded");
    }
    let slow: Vec<&(&ViewTurn, f64)> = timed
        .iter()
        .filter(|(_, v)| *v > cfg.v2v_threshold_ms)
        .collect();
    let on_time = 1.0 - slow.len() as f64 / timed.len() as f64;
    let worst = timed.iter().map(|(_, v)| *v).fold(0.0, f64::max);
    Verdict::graded(
        on_time >= cfg.latency_pass_share,
        on_time,
        format!(
            "{} of {} replies within {:.0} ms (slowest {worst:.0} ms)",
            timed.len() - slow.len(),
            timed.len(),
            cfg.v2v_threshold_ms
        ),
        slow.iter()
            .map(|(t, v)| Evidence::at(t, format!("voice-to-voice {v:.0} ms")))
            .collect(),
    )
}

/// The bot turn being spoken when its audio stopped at line time `at_ms`.
fn bot_turn_at(call: &CallView, at_ms: i64) -> Option<&ViewTurn> {
    call.bot_turns()
        .filter(|t| t.at_ms.is_some_and(|s| s <= at_ms))
        .last()
        .or_else(|| call.bot_turns().find(|t| t.interrupted))
}

fn interruptions(call: &CallView, cfg: &GraderConfig) -> Verdict {
    if first_bot_turn(call).is_none() || call.caller_turns().next().is_none() {
        return Verdict::na("no conversation");
    }
    if call.barge_ins.is_empty() {
        return Verdict::pass("the caller never had to talk over the bot", Vec::new());
    }
    let mut evidence = Vec::new();
    let mut over = 0;
    for b in &call.barge_ins {
        // The caller may have begun before the reply did (a turn still being decided): the
        // overlap counts from whichever started later.
        let turn = bot_turn_at(call, b.bot_stopped_ms);
        let overlap = b.overlap_ms(turn.and_then(|t| t.at_ms));
        let talked_over = overlap > cfg.talk_over_ms;
        over += usize::from(talked_over);
        if let Some(t) = turn {
            evidence.push(Evidence {
                turn: t.index,
                at_ms: Some(t.at_ms.map_or(b.onset_ms, |s| s.max(b.onset_ms))),
                note: format!(
                    "barge-in: bot kept talking {overlap} ms after the caller began{}",
                    if talked_over { " (talked over)" } else { "" }
                ),
            });
        }
    }
    evidence.sort_by_key(|e| std::cmp::Reverse(e.note.ends_with("(talked over)")));
    let n = call.barge_ins.len();
    Verdict::graded(
        over == 0,
        1.0 - over as f64 / n as f64,
        format!(
            "{n} barge-in(s), {over} with the bot talking on over {} ms",
            cfg.talk_over_ms
        ),
        evidence,
    )
}

/// The bot's share of the talking after its opening (the script fixes the opening's length), on
/// calls with at least two caller turns.
fn talk_ratio(call: &CallView, cfg: &GraderConfig) -> Verdict {
    if call.caller_turns().nth(1).is_none() {
        return Verdict::na("fewer than two caller turns: too short to judge");
    }
    let (mut bot, mut caller) = (0i64, 0i64);
    for t in &call.turns {
        match t.speaker {
            Speaker::Bot if t.exchange == 0 => {}
            Speaker::Bot => {
                bot += t
                    .spoken_ms
                    .unwrap_or_else(|| crate::synth::speaking_ms(&t.text))
            }
            Speaker::Caller => {
                caller += match (t.at_ms, t.end_ms) {
                    (Some(a), Some(b)) if b > a => b - a,
                    _ => crate::synth::speaking_ms(&t.text),
                }
            }
        }
    }
    let share = bot as f64 / (bot + caller).max(1) as f64;
    let limit = cfg.max_bot_talk_share;
    let fraction = if share <= limit {
        1.0
    } else {
        1.0 - (share - limit) / (1.0 - limit).max(1e-9)
    };
    Verdict::graded(
        share <= limit,
        fraction,
        format!(
            "bot {:.0}% of the talk ({:.1} s bot, {:.1} s caller; at most {:.0}%)",
            share * 100.0,
            bot as f64 / 1e3,
            caller as f64 / 1e3,
            limit * 100.0
        ),
        Vec::new(),
    )
}

/// The call reached an outcome, and the outcome matches the bot's last action.
fn outcome(call: &CallView) -> Verdict {
    let last = call.bot_turns().filter(|t| t.action.is_some()).last();
    let evidence = |note: &str| {
        last.map(|t| vec![Evidence::at(t, note)])
            .unwrap_or_default()
    };
    let expected_action = match call.outcome.as_str() {
        "no_answer" | "voicemail" | "busy" => return Verdict::na("nobody answered"),
        "do_not_call" if call.end_reason == "do_not_call_blocked" => {
            return Verdict::na("a do-not-call customer: never greeted")
        }
        "converted" | "refused" => "close",
        "callback" => "book_callback",
        "handed_off" => "hand_off",
        "do_not_call" => "add_to_do_not_call",
        other => {
            return Verdict::fail(
                format!(
                    "no outcome: the call ended as {other} ({})",
                    call.end_reason
                ),
                evidence("last action"),
            )
        }
    };
    let Some(last) = last else {
        return Verdict::fail(
            format!("outcome {} without any bot action", call.outcome),
            Vec::new(),
        );
    };
    let action = last.action.as_deref().unwrap_or_default();
    let matches = call
        .bot_turns()
        .any(|t| t.action.as_deref() == Some(expected_action))
        && (expected_action != "close"
            || last
                .close_outcome
                .as_deref()
                .is_none_or(|o| o == call.outcome));
    if matches {
        Verdict::pass(
            format!("outcome {} after {action}", call.outcome),
            evidence("outcome"),
        )
    } else {
        Verdict::fail(
            format!(
                "outcome {} but the bot's actions do not lead there (last: {action})",
                call.outcome
            ),
            evidence("outcome mismatch"),
        )
    }
}

/// Signs that the bot did not understand the caller: repeated low-confidence clarifications,
/// or caller turns recognised as nothing.
fn recognition_failure(call: &CallView, cfg: &GraderConfig) -> Option<Failure> {
    let unclear: Vec<&ViewTurn> = call
        .caller_turns()
        .filter(|t| {
            let reply = call.reply_in(t.exchange);
            t.text.trim().trim_matches('.').is_empty()
                || reply.is_some_and(|r| {
                    r.action.as_deref() == Some("clarify")
                        && t.nlu
                            .as_ref()
                            .is_some_and(|n| n.confidence < cfg.policy.min_confidence)
                })
        })
        .collect();
    (unclear.len() > cfg.max_clarifications).then(|| Failure {
        reason: FailureReason::BotFailureAsr,
        criterion: None,
        detail: format!(
            "{} caller turns not understood (empty or low-confidence, answered with clarify)",
            unclear.len()
        ),
        evidence: unclear.first().map(|t| Evidence::at(t, "not understood")),
    })
}

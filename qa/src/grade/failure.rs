//! The fixed taxonomy of why a call went wrong or did not convert. A call may have several
//! reasons; they are kept in the enum's order, so the first is the primary one: what the bot or
//! the compliance rules got wrong comes before what the customer or the line did. The learning
//! loop reads [`FailureReason::is_bot_failure`] to tell calls lost to the bot from real refusals.

use serde::{Deserialize, Serialize};

/// Who a failure reason blames.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureClass {
    /// A rule the bot must keep (disclosure, forbidden promises, opt-out).
    Compliance,
    /// The bot: recognition, latency, policy, manner.
    Bot,
    /// No human agent to take a hand-off.
    Operations,
    /// The customer's own choice.
    Customer,
    /// Nobody (or a machine) answered.
    Line,
}

/// Why a call failed, in priority order (the first a call has is its primary reason).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureReason {
    /// No disclosure of the automated call, a forbidden promise, an opt-out not honoured, or a
    /// do-not-call customer dialed.
    ComplianceBreach,
    /// The call broke off on an engine or session error, or ran into the maximum length.
    BotFailureEngine,
    /// The bot did not understand the caller (repeated low-confidence clarifications, empty
    /// recognitions).
    BotFailureAsr,
    /// Replies came too late (voice-to-voice over the threshold).
    BotFailureLatency,
    /// A price objection, refusal, callback request or purchase went unanswered by its script.
    MissedIntent,
    /// A complaint or an angry caller was not handed off, or a hand-off had no cause.
    WrongHandoff,
    /// The bot kept talking over a caller who had started to speak.
    BotTalkedOver,
    /// The greeting did not name the customer, or the bot went on with the wrong person.
    MisidentifiedCustomer,
    /// The caller's mood fell during the call.
    NegativeTone,
    /// The bot did nearly all the talking.
    BotMonologue,
    /// A hand-off found no agent.
    AbandonedHandoff,
    /// The caller hung up before an outcome.
    CustomerHungUp,
    /// The caller said nothing (no input).
    CallerSilent,
    /// The caller declined.
    CustomerRefusal,
    /// The caller asked not to be called again (honoured).
    CustomerOptOut,
    Voicemail,
    NoAnswer,
}

impl FailureReason {
    pub const ALL: [FailureReason; 17] = [
        FailureReason::ComplianceBreach,
        FailureReason::BotFailureEngine,
        FailureReason::BotFailureAsr,
        FailureReason::BotFailureLatency,
        FailureReason::MissedIntent,
        FailureReason::WrongHandoff,
        FailureReason::BotTalkedOver,
        FailureReason::MisidentifiedCustomer,
        FailureReason::NegativeTone,
        FailureReason::BotMonologue,
        FailureReason::AbandonedHandoff,
        FailureReason::CustomerHungUp,
        FailureReason::CallerSilent,
        FailureReason::CustomerRefusal,
        FailureReason::CustomerOptOut,
        FailureReason::Voicemail,
        FailureReason::NoAnswer,
    ];

    /// The stored spelling, e.g. `bot_failure_latency`.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureReason::ComplianceBreach => "compliance_breach",
            FailureReason::BotFailureEngine => "bot_failure_engine",
            FailureReason::BotFailureAsr => "bot_failure_asr",
            FailureReason::BotFailureLatency => "bot_failure_latency",
            FailureReason::MissedIntent => "missed_intent",
            FailureReason::WrongHandoff => "wrong_handoff",
            FailureReason::BotTalkedOver => "bot_talked_over",
            FailureReason::MisidentifiedCustomer => "misidentified_customer",
            FailureReason::NegativeTone => "negative_tone",
            FailureReason::BotMonologue => "bot_monologue",
            FailureReason::AbandonedHandoff => "abandoned_handoff",
            FailureReason::CustomerHungUp => "customer_hung_up",
            FailureReason::CallerSilent => "caller_silent",
            FailureReason::CustomerRefusal => "customer_refusal",
            FailureReason::CustomerOptOut => "customer_opt_out",
            FailureReason::Voicemail => "voicemail",
            FailureReason::NoAnswer => "no_answer",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }

    pub fn class(self) -> FailureClass {
        use FailureReason::*;
        match self {
            ComplianceBreach => FailureClass::Compliance,
            BotFailureEngine
            | BotFailureAsr
            | BotFailureLatency
            | MissedIntent
            | WrongHandoff
            | BotTalkedOver
            | MisidentifiedCustomer
            | NegativeTone
            | BotMonologue => FailureClass::Bot,
            AbandonedHandoff => FailureClass::Operations,
            CustomerHungUp | CallerSilent | CustomerRefusal | CustomerOptOut => {
                FailureClass::Customer
            }
            Voicemail | NoAnswer => FailureClass::Line,
        }
    }

    /// The bot (or its compliance) is to blame, not the customer or the line.
    pub fn is_bot_failure(self) -> bool {
        matches!(self.class(), FailureClass::Bot | FailureClass::Compliance)
    }

    /// What a call's stored outcome says by itself, if anything went wrong.
    pub fn from_outcome(outcome: &str, end_reason: &str) -> Option<Self> {
        match outcome {
            "converted" | "callback" | "handed_off" => None,
            "refused" => Some(FailureReason::CustomerRefusal),
            "do_not_call" if end_reason == "do_not_call_blocked" => {
                Some(FailureReason::ComplianceBreach)
            }
            "do_not_call" => Some(FailureReason::CustomerOptOut),
            "no_answer" | "busy" => Some(FailureReason::NoAnswer),
            "voicemail" => Some(FailureReason::Voicemail),
            "no_input" => Some(FailureReason::CallerSilent),
            "hung_up" => Some(FailureReason::CustomerHungUp),
            "abandoned_handoff" => Some(FailureReason::AbandonedHandoff),
            _ => Some(FailureReason::BotFailureEngine),
        }
    }
}

impl std::fmt::Display for FailureReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

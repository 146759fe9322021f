//! The dialogue policy: deterministic rules from the caller's NLU result, the conversation state
//! and the customer's profile to one explicit [`Action`], each with the rule and reason that chose
//! it. No wording is decided here.

use crate::nlu::TimeMention;
use crate::policy::campaign::{Campaign, Recommendation, Segment};
use crate::policy::faq::FaqMatch;
use crate::policy::schedule::is_bookable;
use crate::policy::state::{ConversationState, Outcome};
use crate::{Intent, NluResult};
use retrieval::{CustomerProfile, Snippet};
use serde::{Deserialize, Serialize};

/// Why a call goes to a human.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HandOffReason {
    Complaint,
    NegativeSentiment,
    /// The caller asked for a person.
    HumanRequested,
}

/// What the bot does next. Every turn is exactly one action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Action {
    /// The opening of the call.
    Greet,
    /// The campaign pitch for the customer's segment.
    Pitch { segment: Segment },
    /// The discount script (price talk).
    DiscountOffer,
    /// An approved FAQ answer, spoken as written.
    AnswerFaq { id: String },
    /// No approved answer: an advisor follows up. Never invent one.
    AdvisorFollowUp,
    /// A human takes over (an event to the orchestrator).
    HandOff { reason: HandOffReason },
    /// Asks when to call back.
    OfferCallback,
    /// Confirms a callback; `time` is what the caller said, if anything.
    BookCallback { time: Option<TimeMention> },
    /// Adds the number to the do-not-call list and closes politely.
    AddToDoNotCall,
    /// "Yes, I'm an automated assistant."
    DiscloseBot,
    /// A product from the campaign's recommendations (by id) that fits the profile.
    Recommend { product: String },
    /// Asks the caller to say it again or decide.
    Clarify,
    /// Ends the call: `converted` or `refused` (other outcomes have their own actions).
    Close { outcome: Outcome },
}

impl Action {
    /// The snake_case action name used in data files, reports and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Action::Greet => "greet",
            Action::Pitch { .. } => "pitch",
            Action::DiscountOffer => "discount_offer",
            Action::AnswerFaq { .. } => "answer_faq",
            Action::AdvisorFollowUp => "advisor_follow_up",
            Action::HandOff { .. } => "hand_off",
            Action::OfferCallback => "offer_callback",
            Action::BookCallback { .. } => "book_callback",
            Action::AddToDoNotCall => "add_to_do_not_call",
            Action::DiscloseBot => "disclose_bot",
            Action::Recommend { .. } => "recommend",
            Action::Clarify => "clarify",
            Action::Close { .. } => "close",
        }
    }

    /// The outcome this action ends the call with, if it ends it.
    pub fn outcome(&self) -> Option<Outcome> {
        match self {
            Action::HandOff { .. } => Some(Outcome::HandedOff),
            Action::BookCallback { .. } => Some(Outcome::Callback),
            Action::AddToDoNotCall => Some(Outcome::DoNotCall),
            Action::Close { outcome } => Some(*outcome),
            _ => None,
        }
    }
}

/// An action with the rule that chose it and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    pub action: Action,
    /// Stable rule name, e.g. `opt_out`, `price_talk`.
    pub rule: String,
    /// Human-readable reason with the evidence (intent, confidence, keyword, score).
    pub reason: String,
}

/// Tunable thresholds of the rules.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct PolicyConfig {
    /// Sentiment score at or below which a human takes over.
    pub hand_off_sentiment: f32,
    /// Score at or below which even an objection (price, refusal, no time: negative by nature)
    /// goes to a human.
    pub extreme_sentiment: f32,
    /// Below this NLU confidence, only safety intents (opt-out, complaint) are acted on.
    pub min_confidence: f32,
    /// NLU keyword keys that mean price talk.
    pub price_keywords: Vec<String>,
    /// NLU keyword keys that mean "not now" (no time, will think about it).
    pub later_keywords: Vec<String>,
    /// NLU keyword keys that ask for a person: the call goes to a human (unless the turn is a
    /// question about the bot, "are you a real person?").
    pub human_keywords: Vec<String>,
    /// NLU keyword keys that are requests for a person however the turn is classified ("can I
    /// speak to a real person?", 转人工): the call goes to a human.
    pub human_request_keywords: Vec<String>,
    /// NLU keyword keys that mean "take me off your list".
    pub opt_out_keywords: Vec<String>,
    /// FAQ similarity needed to answer (English, dense + lexical).
    pub faq_threshold_en: f32,
    /// FAQ similarity needed to answer (Chinese, character bigrams).
    pub faq_threshold_zh: f32,
    /// Profile price sensitivity at or above which the saving is pitched first.
    pub price_sensitive_from: f32,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        Self {
            hand_off_sentiment: -0.7,
            extreme_sentiment: -0.9,
            min_confidence: 0.4,
            price_keywords: vec!["too_expensive".into(), "price".into(), "discount".into()],
            later_keywords: vec!["no_time".into(), "think_about_it".into()],
            human_keywords: vec!["human_agent".into()],
            human_request_keywords: vec!["ask_for_person".into()],
            opt_out_keywords: vec!["do_not_call".into()],
            faq_threshold_en: 0.6,
            faq_threshold_zh: 0.45,
            price_sensitive_from: 0.6,
        }
    }
}

/// What the rules look at besides the state.
#[derive(Debug, Clone, Copy)]
pub struct PolicyInput<'a> {
    pub nlu: &'a NluResult,
    pub profile: &'a CustomerProfile,
    pub snippets: &'a [Snippet],
    /// Best FAQ match for the turn (looked up for enquiries only).
    pub faq: Option<&'a FaqMatch>,
}

/// The dialogue rules and their thresholds (one per process; campaigns are inputs).
#[derive(Debug, Clone)]
pub struct Policy {
    pub config: PolicyConfig,
}

fn decision(action: Action, rule: &str, reason: String) -> Decision {
    Decision {
        action,
        rule: rule.to_string(),
        reason,
    }
}

impl Policy {
    pub fn new(config: PolicyConfig) -> Self {
        Self { config }
    }

    /// The pitch a profile hears first.
    pub fn segment_of(&self, campaign: &Campaign, profile: &CustomerProfile) -> Segment {
        match profile.segment.as_deref() {
            Some("price_sensitive") => Segment::PriceSensitive,
            Some("quality_oriented") => Segment::QualityOriented,
            _ => match profile.price_sensitivity {
                Some(p) if p >= self.config.price_sensitive_from => Segment::PriceSensitive,
                Some(_) => Segment::QualityOriented,
                None => campaign.default_segment,
            },
        }
    }

    /// Decides the next action for a caller turn. Deterministic in its inputs.
    pub fn decide(
        &self,
        campaign: &Campaign,
        state: &ConversationState,
        input: &PolicyInput<'_>,
    ) -> Decision {
        let nlu = input.nlu;
        let c = &self.config;
        let evidence = format!(
            "intent {} ({:.2}), sentiment {:.2}",
            nlu.intent.as_str(),
            nlu.confidence,
            nlu.sentiment.score
        );
        let keyword = |keys: &[String]| keys.iter().find(|k| nlu.has_keyword(k)).cloned();
        let time = nlu.times.iter().find(|t| is_bookable(t)).cloned();
        let awaiting_time = state.last_action() == Some(&Action::OfferCallback);
        let p = &state.progress;

        // Safety first: these act even on an unsure NLU.
        if nlu.intent == Intent::OptOut {
            return decision(Action::AddToDoNotCall, "opt_out", evidence);
        }
        if let Some(k) = keyword(&c.opt_out_keywords) {
            return decision(
                Action::AddToDoNotCall,
                "opt_out",
                format!("keyword {k}; {evidence}"),
            );
        }
        if nlu.intent == Intent::Complaint {
            return decision(
                Action::HandOff {
                    reason: HandOffReason::Complaint,
                },
                "complaint",
                evidence,
            );
        }
        // A request for a person is one even when it reads like a question about the bot.
        if let Some(k) = keyword(&c.human_request_keywords) {
            return decision(
                Action::HandOff {
                    reason: HandOffReason::HumanRequested,
                },
                "human_requested",
                format!("keyword {k}; {evidence}"),
            );
        }
        // Objections (price, "not interested", "no time") sound negative by nature and have
        // their own script; only an extreme score hands one over.
        let price = keyword(&c.price_keywords);
        let no_time = keyword(&c.later_keywords);
        let objection = matches!(nlu.intent, Intent::PriceObjection | Intent::Refusal)
            || price.is_some()
            || no_time.is_some();
        let score = nlu.sentiment.score;
        if score <= c.extreme_sentiment || (score <= c.hand_off_sentiment && !objection) {
            return decision(
                Action::HandOff {
                    reason: HandOffReason::NegativeSentiment,
                },
                "strong_negative_sentiment",
                format!(
                    "sentiment {score:.2} (hand-off at {:.2}, {:.2} for an objection); {evidence}",
                    c.hand_off_sentiment, c.extreme_sentiment
                ),
            );
        }
        if let Some(k) = keyword(&c.human_keywords) {
            // "Are you a real person?" is a question about the bot, not a request for one.
            if nlu.intent != Intent::AsksIfRobot {
                return decision(
                    Action::HandOff {
                        reason: HandOffReason::HumanRequested,
                    },
                    "human_requested",
                    format!("keyword {k}; {evidence}"),
                );
            }
        }
        let sure = nlu.confidence >= c.min_confidence;
        let intent = if sure { nlu.intent } else { Intent::Other };
        if intent == Intent::AsksIfRobot {
            return decision(Action::DiscloseBot, "asks_if_robot", evidence);
        }
        // Callbacks: a time said after we asked for one, or with a callback request.
        if let Some(t) = time {
            if awaiting_time
                || intent == Intent::CallbackRequest
                || intent == Intent::Refusal
                || no_time.is_some()
            {
                return decision(
                    Action::BookCallback { time: Some(t) },
                    "callback_time_given",
                    format!("caller named a time; {evidence}"),
                );
            }
        }
        if intent == Intent::CallbackRequest {
            return if p.callback_offered {
                decision(
                    Action::BookCallback { time: None },
                    "callback_without_time",
                    format!("callback asked again without a time; {evidence}"),
                )
            } else {
                decision(Action::OfferCallback, "callback_request", evidence)
            };
        }
        if intent == Intent::Refusal || no_time.is_some() {
            let why = match &no_time {
                Some(k) => format!("keyword {k}; {evidence}"),
                None => evidence.clone(),
            };
            return if p.callback_offered {
                decision(
                    Action::Close {
                        outcome: Outcome::Refused,
                    },
                    "refusal_after_callback_offer",
                    why,
                )
            } else {
                decision(Action::OfferCallback, "refusal_or_no_time", why)
            };
        }
        // A price word in a question is an enquiry, and in "too expensive... alright, sign me
        // up" the caller has made up their mind: a sure purchase intent outweighs the word.
        if intent == Intent::PriceObjection
            || (price.is_some() && !matches!(intent, Intent::Enquiry | Intent::PurchaseIntent))
        {
            let why = match &price {
                Some(k) => format!("keyword {k}; {evidence}"),
                None => evidence.clone(),
            };
            return if !p.discount_offered {
                decision(Action::DiscountOffer, "price_talk", why)
            } else if !p.callback_offered {
                decision(Action::OfferCallback, "price_after_discount", why)
            } else {
                decision(
                    Action::Close {
                        outcome: Outcome::Refused,
                    },
                    "price_after_discount_and_callback",
                    why,
                )
            };
        }
        if intent == Intent::PurchaseIntent {
            return decision(
                Action::Close {
                    outcome: Outcome::Converted,
                },
                "purchase_intent",
                evidence,
            );
        }
        if let Some(r) = campaign.recommendations.iter().find(|r| {
            !p.recommended.contains(&r.id) && r.keywords.iter().any(|k| nlu.has_keyword(k))
        }) {
            return decision(
                Action::Recommend {
                    product: r.id.clone(),
                },
                "recommend_from_caller",
                format!("caller mentioned {}; {evidence}", r.keywords.join("/")),
            );
        }
        if intent == Intent::Enquiry {
            let threshold = match state.language {
                retrieval::Language::En => c.faq_threshold_en,
                retrieval::Language::Zh => c.faq_threshold_zh,
            };
            return match input.faq {
                Some(m) if m.score >= threshold => decision(
                    Action::AnswerFaq { id: m.id.clone() },
                    "faq_match",
                    format!(
                        "faq {} score {:.2} >= {threshold:.2}; {evidence}",
                        m.id, m.score
                    ),
                ),
                // "What is it about?" before the pitch: the pitch is the answer.
                _ if !p.pitched => decision(
                    Action::Pitch {
                        segment: state.segment,
                    },
                    "enquiry_before_pitch",
                    format!(
                        "no faq answer at or above {threshold:.2}; not pitched yet; {evidence}"
                    ),
                ),
                Some(m) => decision(
                    Action::AdvisorFollowUp,
                    "no_faq_match",
                    format!(
                        "best faq {} score {:.2} < {threshold:.2}; {evidence}",
                        m.id, m.score
                    ),
                ),
                None => decision(
                    Action::AdvisorFollowUp,
                    "no_faq_match",
                    format!("no faq entries; {evidence}"),
                ),
            };
        }
        if !p.pitched {
            return decision(
                Action::Pitch {
                    segment: state.segment,
                },
                "pitch",
                format!("segment {}; {evidence}", state.segment.as_str()),
            );
        }
        if let Some(r) = campaign
            .recommendations
            .iter()
            .find(|r| !p.recommended.contains(&r.id) && profile_fits(r, input))
        {
            return decision(
                Action::Recommend {
                    product: r.id.clone(),
                },
                "recommend_from_profile",
                format!("profile or history fits {}; {evidence}", r.id),
            );
        }
        if !sure {
            return decision(
                Action::Clarify,
                "low_confidence",
                format!(
                    "confidence {:.2} < {:.2}; {evidence}",
                    nlu.confidence, c.min_confidence
                ),
            );
        }
        decision(Action::Clarify, "nothing_to_act_on", evidence)
    }

    /// Applies a decision's effects to the state (progress, segment, outcome).
    pub fn apply(&self, state: &mut ConversationState, decision: &Decision) {
        let p = &mut state.progress;
        match &decision.action {
            Action::Pitch { .. } => p.pitched = true,
            Action::DiscountOffer => {
                p.discount_offered = true;
                // A caller who talks price hears the saving first from now on.
                state.segment = Segment::PriceSensitive;
            }
            Action::OfferCallback => p.callback_offered = true,
            Action::BookCallback { time } => state.callback = time.clone(),
            Action::DiscloseBot => p.bot_disclosed = true,
            Action::Recommend { product } => p.recommended.push(product.clone()),
            Action::Clarify => p.clarifications += 1,
            _ => {}
        }
        if let Some(outcome) = decision.action.outcome() {
            state.outcome = Some(outcome);
        }
    }
}

/// Whether the profile or the retrieved snippets call for this recommendation.
fn profile_fits(r: &Recommendation, input: &PolicyInput<'_>) -> bool {
    let prof = input.profile;
    let children = matches!(
        (r.min_children_in_school, prof.children_in_school),
        (Some(min), Some(n)) if n >= min
    );
    let interest = r
        .interests
        .iter()
        .any(|i| prof.interests.iter().any(|p| p.eq_ignore_ascii_case(i)));
    let snippet = r.snippet_words.iter().any(|w| {
        let w = w.to_lowercase();
        input
            .snippets
            .iter()
            .any(|s| s.text.to_lowercase().contains(&w))
    });
    children || interest || snippet
}

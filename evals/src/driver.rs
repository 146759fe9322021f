//! Drivers play a scenario's call against the bot and return its [`Transcript`]. The
//! [`Driver`] trait is the seam between the harness and the bot: [`TextDriver`] sends caller
//! text straight into a [`DialogManager`]; the orchestrator implements audio mode (TTS → the
//! gRPC `Call` stream → ASR) behind the same trait, so the runner and reports do not know which.

use crate::caller::Caller;
use crate::error::EvalError;
use crate::scenario::{Mode, Scenario};
use crate::transcript::{ObservedTurn, Transcript};
use async_trait::async_trait;
use dialog::policy::DialogManager;
use dialog::{BotReply, ConversationState};
use retrieval::{CustomerProfile, Language, ProfileContext, ProfileStore, RetrievalError};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use tokio_util::sync::CancellationToken;

/// Plays one scenario's call against the bot.
#[async_trait]
pub trait Driver: Send + Sync {
    fn mode(&self) -> Mode;
    /// What is under test, for reports: engines, model, LLM phrasing.
    fn label(&self) -> String;
    async fn run(&self, scenario: &Scenario) -> Result<Transcript, EvalError>;
}

/// What the call session does when the caller says nothing (the orchestrator passes its
/// `[session]` configuration; the defaults are the session's defaults).
#[derive(Debug, Clone)]
pub struct NoInput {
    pub max_reprompts: u32,
    pub reprompt_en: String,
    pub reprompt_zh: String,
}

impl Default for NoInput {
    fn default() -> Self {
        Self {
            max_reprompts: 1,
            reprompt_en: "Hello, are you still there?".into(),
            reprompt_zh: "您好，请问您还在吗？".into(),
        }
    }
}

/// Scenario customers in memory: each scenario's profile under its own customer id.
#[derive(Debug, Default)]
pub struct ScenarioProfiles {
    profiles: RwLock<HashMap<String, CustomerProfile>>,
}

impl ScenarioProfiles {
    pub fn insert(&self, profile: CustomerProfile) {
        if let Ok(mut map) = self.profiles.write() {
            map.insert(profile.customer_id.clone(), profile);
        }
    }

    fn get(&self, customer_id: &str) -> Option<CustomerProfile> {
        self.profiles
            .read()
            .ok()
            .and_then(|m| m.get(customer_id).cloned())
    }
}

#[async_trait]
impl ProfileStore for ScenarioProfiles {
    async fn profile(&self, customer_id: &str) -> Result<Option<CustomerProfile>, RetrievalError> {
        Ok(self.get(customer_id))
    }

    async fn context(
        &self,
        customer_id: &str,
        _campaign_id: &str,
        _turn_text: &str,
        _k: usize,
    ) -> Result<ProfileContext, RetrievalError> {
        Ok(ProfileContext {
            profile: self.get(customer_id).unwrap_or_default(),
            snippets: Vec::new(),
        })
    }
}

/// Text mode: caller words straight into the dialogue manager, the session's no-input rule for
/// silent turns. Fast; every label the dialogue knows is observed.
pub struct TextDriver {
    manager: Arc<DialogManager>,
    profiles: Arc<ScenarioProfiles>,
    no_input: NoInput,
    label: String,
}

impl std::fmt::Debug for TextDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextDriver")
            .field("label", &self.label)
            .finish_non_exhaustive()
    }
}

impl TextDriver {
    /// `manager` must have been built over `profiles` (the scenarios' customers go there).
    pub fn new(
        manager: Arc<DialogManager>,
        profiles: Arc<ScenarioProfiles>,
        no_input: NoInput,
        label: impl Into<String>,
    ) -> Self {
        Self {
            manager,
            profiles,
            no_input,
            label: label.into(),
        }
    }
}

#[async_trait]
impl Driver for TextDriver {
    fn mode(&self) -> Mode {
        Mode::Text
    }

    fn label(&self) -> String {
        self.label.clone()
    }

    async fn run(&self, scenario: &Scenario) -> Result<Transcript, EvalError> {
        let language = scenario.file.language;
        let profile = scenario.profile();
        let customer = profile.customer_id.clone();
        self.profiles.insert(profile);
        let call_id = format!("eval-{}", scenario.id);
        let (mut state, greeting) = self
            .manager
            .start(&call_id, &customer, language, scenario.seed())
            .await?;
        let mut transcript = Transcript {
            greeting: greeting.text(language),
            turns: Vec::new(),
            outcome: String::new(),
        };
        let mut caller = Caller::new(scenario);
        let mut last = "greet".to_string();
        let mut silences = 0u32;
        let cancel = CancellationToken::new();
        while !state.finished() {
            let Some(turn) = caller.next(&last) else {
                break;
            };
            if turn.is_silent_in_text() {
                let (action, reply) = if silences < self.no_input.max_reprompts {
                    silences += 1;
                    let text = match language {
                        Language::En => &self.no_input.reprompt_en,
                        Language::Zh => &self.no_input.reprompt_zh,
                    };
                    ("reprompt", text.clone())
                } else {
                    transcript.outcome = "no_input".into();
                    ("no_input_close", String::new())
                };
                transcript.turns.push(ObservedTurn {
                    action: action.into(),
                    rule: "session_no_input".into(),
                    reply: reply.clone(),
                    ..ObservedTurn::default()
                });
                last = action.into();
                if action == "no_input_close" {
                    // The session hangs up without a word.
                    return Ok(transcript);
                }
                continue;
            }
            silences = 0;
            let text = turn.say.clone().unwrap_or_default();
            let reply = self.manager.turn(&mut state, &text, &cancel).await?;
            let observed = observe(&text, &reply, &state, language);
            last = observed.action.clone();
            transcript.turns.push(observed);
        }
        transcript.outcome = state
            .outcome
            .map_or_else(|| "open".to_string(), |o| o.as_str().to_string());
        Ok(transcript)
    }
}

fn observe(
    caller: &str,
    reply: &BotReply,
    state: &ConversationState,
    language: Language,
) -> ObservedTurn {
    let nlu = state
        .turns
        .last()
        .and_then(|t| t.caller.as_ref())
        .map(|c| &c.nlu);
    ObservedTurn {
        caller: caller.to_string(),
        heard: None,
        intent: nlu.map(|n| n.intent.as_str().to_string()),
        confidence: nlu.map_or(0.0, |n| n.confidence),
        sentiment: nlu.and_then(|n| {
            serde_json::to_value(n.sentiment.label)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
        }),
        sentiment_score: nlu.map_or(0.0, |n| n.sentiment.score),
        keywords: nlu.map_or_else(Vec::new, |n| {
            n.keywords
                .iter()
                .filter(|k| !k.negated)
                .map(|k| k.key.clone())
                .collect()
        }),
        action: reply.action().kind().to_string(),
        action_detail: serde_json::to_value(reply.action()).ok(),
        rule: reply.decision.rule.clone(),
        reply: reply.text(language),
        latency_ms: Some(reply.first_sentence_ms),
        barged_in: false,
    }
}

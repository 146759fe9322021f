//! The dialogue manager: per caller turn, NLU → profile context (within a latency budget) →
//! policy → reply text (template by default, LLM phrasing only when qualified), recorded in the
//! [`ConversationState`] and returned sentence by sentence for TTS.

use crate::nlu::TimeMention;
use crate::policy::campaign::{Campaign, Variants, COMMON_SLOTS};
use crate::policy::faq::FaqIndex;
use crate::policy::guard::GuardConfig;
use crate::policy::phrasing::{Phraser, PhrasingMode};
use crate::policy::rules::{Action, Decision, HandOffReason, Policy, PolicyConfig, PolicyInput};
use crate::policy::schedule::render_time;
use crate::policy::state::{
    CallerTurn, ConversationState, Outcome, PhrasingCounters, Progress, ReplyMode, Turn,
    VariantChoice,
};
use crate::policy::templates::{capitalize_sentences, choose_variant, render, split_sentences};
use crate::{DialogError, Intent, NluResult, Understand};
use retrieval::{CustomerProfile, Embedder, Language, ProfileContext, ProfileStore};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Configuration of the dialogue manager.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct DialogConfig {
    pub policy: PolicyConfig,
    pub guard: GuardConfig,
    /// Budget for the profile context of a turn; past it the turn goes on with the profile
    /// fetched at the start of the call.
    pub profile_budget_ms: u64,
    /// Budget for the profile at the start of the call.
    pub start_profile_budget_ms: u64,
    /// Retrieved snippets per turn.
    pub snippets: usize,
}

impl Default for DialogConfig {
    fn default() -> Self {
        Self {
            policy: PolicyConfig::default(),
            guard: GuardConfig::default(),
            profile_budget_ms: 15,
            start_profile_budget_ms: 1000,
            snippets: 3,
        }
    }
}

/// What the orchestrator must do besides speaking.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum DialogEvent {
    /// Transfer the call to a human now.
    HandOff { reason: HandOffReason },
    /// Put the customer on the do-not-call list.
    AddToDoNotCall,
    /// Schedule a callback (the time as the caller said it, if they did).
    CallbackBooked { time: Option<TimeMention> },
    /// The call has an outcome: hang up after speaking.
    CallEnded { outcome: Outcome },
}

/// The bot's reply to one turn.
#[derive(Debug, Clone, PartialEq)]
pub struct BotReply {
    pub decision: Decision,
    /// The reply, one sentence per item, in speaking order (feed them to TTS one by one).
    pub sentences: Vec<String>,
    pub events: Vec<DialogEvent>,
    pub mode: ReplyMode,
    /// From the start of the turn to the first sentence being ready.
    pub first_sentence_ms: f64,
}

impl BotReply {
    pub fn action(&self) -> &Action {
        &self.decision.action
    }

    pub fn text(&self, language: Language) -> String {
        self.sentences.join(joiner(language))
    }
}

fn joiner(language: Language) -> &'static str {
    match language {
        Language::En => " ",
        Language::Zh => "",
    }
}

/// Decides and phrases the bot's turns for one campaign; shared by all its calls.
pub struct DialogManager {
    campaign: Arc<Campaign>,
    policy: Policy,
    faq: FaqIndex,
    nlu: Arc<dyn Understand>,
    profiles: Arc<dyn ProfileStore>,
    phraser: Option<Arc<Phraser>>,
    config: DialogConfig,
}

impl std::fmt::Debug for DialogManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DialogManager")
            .field("campaign", &self.campaign.id)
            .field("faq", &self.faq)
            .field("phraser", &self.phraser)
            .finish()
    }
}

/// The slots, template key and variants of an action's body.
enum Body<'a> {
    Template {
        key: String,
        variants: &'a Variants,
        extra: Option<(&'static str, String)>,
    },
    AsWritten(String),
}

impl DialogManager {
    /// `embedder` powers English FAQ retrieval (BertEmbedder in production).
    pub fn new(
        campaign: Arc<Campaign>,
        nlu: Arc<dyn Understand>,
        profiles: Arc<dyn ProfileStore>,
        embedder: Option<Arc<dyn Embedder>>,
        config: DialogConfig,
    ) -> Result<Self, DialogError> {
        let faq = FaqIndex::build(&campaign, embedder)?;
        Ok(Self {
            campaign,
            policy: Policy::new(config.policy.clone()),
            faq,
            nlu,
            profiles,
            phraser: None,
            config,
        })
    }

    /// Turns LLM phrasing on (see [`Phraser::new`] for who may).
    pub fn with_phraser(mut self, phraser: Phraser) -> Self {
        self.phraser = Some(Arc::new(phraser));
        self
    }

    pub fn campaign(&self) -> &Campaign {
        &self.campaign
    }

    /// Opens a call: fetches the profile, picks the pitch segment, and greets. Template
    /// variants are chosen by `seed`.
    pub async fn start(
        &self,
        call_id: &str,
        customer_id: &str,
        language: Language,
        seed: u64,
    ) -> Result<(ConversationState, BotReply), DialogError> {
        self.start_with(call_id, customer_id, language, seed, VariantChoice::new())
            .await
    }

    /// [`start`](Self::start) with some templates' variants fixed from outside (an experiment's
    /// arm or a bandit's choice); the others are chosen by `seed`.
    pub async fn start_with(
        &self,
        call_id: &str,
        customer_id: &str,
        language: Language,
        seed: u64,
        variants: VariantChoice,
    ) -> Result<(ConversationState, BotReply), DialogError> {
        let started = Instant::now();
        if !self.campaign.languages.contains(&language) {
            return Err(DialogError::InvalidRequest(format!(
                "campaign {} has no {} script",
                self.campaign.id,
                language.code()
            )));
        }
        let budget = Duration::from_millis(self.config.start_profile_budget_ms);
        let profile = match tokio::time::timeout(budget, self.profiles.profile(customer_id)).await {
            Ok(Ok(Some(p))) => p,
            Ok(Ok(None)) => CustomerProfile {
                customer_id: customer_id.to_string(),
                ..CustomerProfile::default()
            },
            Ok(Err(e)) => return Err(DialogError::Retrieval(e.to_string())),
            Err(_) => {
                tracing::warn!(
                    call_id,
                    "profile not loaded within {budget:?}; greeting without it"
                );
                CustomerProfile::default()
            }
        };
        if profile.do_not_call {
            return Err(DialogError::DoNotCall);
        }
        let segment = self.policy.segment_of(&self.campaign, &profile);
        let mut state = ConversationState {
            call_id: call_id.to_string(),
            campaign_id: self.campaign.id.clone(),
            customer_id: customer_id.to_string(),
            language,
            seed,
            segment,
            variants,
            turns: Vec::new(),
            progress: Progress::default(),
            callback: None,
            outcome: None,
            phrasing: PhrasingCounters::default(),
            profile,
        };
        let decision = Decision {
            action: Action::Greet,
            rule: "call_start".into(),
            reason: format!("outbound call opens; segment {}", segment.as_str()),
        };
        tracing::info!(call_id, action = "greet", rule = %decision.rule, reason = %decision.reason, "dialog decision");
        let text = self.template_text(&state, &decision.action, &state.profile);
        let reply = self.finish_turn(
            &mut state,
            None,
            decision,
            text,
            ReplyMode::Template,
            None,
            true,
            0,
            started,
        );
        Ok((state, reply))
    }

    /// Answers one caller turn. `cancel` stops an LLM phrasing (barge-in); the template is
    /// never cancelled, it is ready at once.
    pub async fn turn(
        &self,
        state: &mut ConversationState,
        caller_text: &str,
        cancel: &CancellationToken,
    ) -> Result<BotReply, DialogError> {
        let started = Instant::now();
        if state.finished() {
            return Err(DialogError::CallFinished);
        }
        let nlu = self.nlu.understand(caller_text, state.language)?;
        let budget = Duration::from_millis(self.config.profile_budget_ms);
        // The NLU's turn embedding (same MiniLM) saves the retrieval a second pass.
        let fetched = match &nlu.embedding {
            Some(vector) => {
                tokio::time::timeout(
                    budget,
                    self.profiles.context_with_embedding(
                        &state.customer_id,
                        &state.campaign_id,
                        caller_text,
                        vector,
                        self.config.snippets,
                    ),
                )
                .await
            }
            None => {
                tokio::time::timeout(
                    budget,
                    self.profiles.context(
                        &state.customer_id,
                        &state.campaign_id,
                        caller_text,
                        self.config.snippets,
                    ),
                )
                .await
            }
        };
        let (context, in_time) = match fetched {
            Ok(Ok(ctx)) => (ctx, true),
            Ok(Err(e)) => {
                tracing::warn!(call_id = %state.call_id, error = %e, "profile context failed; using the call's profile");
                (self.cached_context(state), false)
            }
            Err(_) => {
                tracing::warn!(call_id = %state.call_id, "profile context over its {budget:?} budget; using the call's profile");
                (self.cached_context(state), false)
            }
        };
        if in_time {
            state.profile = context.profile.clone();
        }
        self.respond(state, caller_text, nlu, &context, in_time, cancel, started)
            .await
    }

    fn cached_context(&self, state: &ConversationState) -> ProfileContext {
        ProfileContext {
            profile: state.profile.clone(),
            snippets: Vec::new(),
        }
    }

    /// Policy and phrasing for a turn whose NLU result and context are known.
    #[allow(clippy::too_many_arguments)]
    async fn respond(
        &self,
        state: &mut ConversationState,
        caller_text: &str,
        nlu: NluResult,
        context: &ProfileContext,
        in_time: bool,
        cancel: &CancellationToken,
        started: Instant,
    ) -> Result<BotReply, DialogError> {
        let faq = if nlu.intent == Intent::Enquiry {
            self.faq
                .search_with(caller_text, state.language, nlu.embedding.as_deref())?
        } else {
            None
        };
        let decision = self.policy.decide(
            &self.campaign,
            state,
            &PolicyInput {
                nlu: &nlu,
                profile: &context.profile,
                snippets: &context.snippets,
                faq: faq.as_ref(),
            },
        );
        tracing::info!(
            call_id = %state.call_id,
            turn = state.turns.len(),
            intent = nlu.intent.as_str(),
            action = decision.action.kind(),
            rule = %decision.rule,
            reason = %decision.reason,
            "dialog decision"
        );
        self.policy.apply(state, &decision);
        let body = self.template_text(state, &decision.action, &context.profile);
        let opener = self.rule_opener(state, &nlu);
        let (mut text, mut mode, mut fallback) = (
            join(&opener, &body, state.language),
            ReplyMode::Template,
            None,
        );
        let as_written = matches!(decision.action, Action::AnswerFaq { .. });
        if let (Some(phraser), false) = (&self.phraser, as_written) {
            state.phrasing.attempts += 1;
            let phrasing_mode = phraser.mode;
            let phraser = Arc::clone(phraser);
            let campaign = Arc::clone(&self.campaign);
            let (template, caller, language, cancel) = (
                body.clone(),
                caller_text.to_string(),
                state.language,
                cancel.clone(),
            );
            let phrased = tokio::task::spawn_blocking(move || {
                let facts: Vec<&str> = campaign.fact_values(language).collect();
                phraser.phrase(&template, &caller, &facts, language, &cancel)
            })
            .await
            .map_err(|e| DialogError::Llm(format!("phrasing task failed: {e}")))??;
            match (phrased.verdict, phrasing_mode) {
                (Ok(accepted), PhrasingMode::Opener) => {
                    state.phrasing.accepted += 1;
                    text = join(&accepted, &body, state.language);
                    mode = ReplyMode::LlmOpener;
                }
                (Ok(accepted), PhrasingMode::Paraphrase) => {
                    state.phrasing.accepted += 1;
                    text = join(&opener, &accepted, state.language);
                    mode = ReplyMode::LlmParaphrase;
                }
                (Err(rejection), _) => {
                    state.phrasing.fallbacks += 1;
                    tracing::info!(call_id = %state.call_id, llm = %phrased.llm_text, %rejection, "LLM phrasing rejected; speaking the template");
                    fallback = Some(rejection.to_string());
                }
            }
        }
        let caller = CallerTurn {
            text: caller_text.to_string(),
            nlu,
        };
        Ok(self.finish_turn(
            state,
            Some(caller),
            decision,
            text,
            mode,
            fallback,
            in_time,
            context.snippets.len(),
            started,
        ))
    }

    #[allow(clippy::too_many_arguments)]
    fn finish_turn(
        &self,
        state: &mut ConversationState,
        caller: Option<CallerTurn>,
        decision: Decision,
        text: String,
        mode: ReplyMode,
        fallback: Option<String>,
        profile_in_time: bool,
        snippets: usize,
        started: Instant,
    ) -> BotReply {
        let sentences = split_sentences(&text);
        // Rounded to a microsecond so the call record round-trips through JSON exactly.
        let first_sentence_ms = (started.elapsed().as_secs_f64() * 1e6).round() / 1e3;
        let mut events = Vec::new();
        match &decision.action {
            Action::HandOff { reason } => events.push(DialogEvent::HandOff { reason: *reason }),
            Action::AddToDoNotCall => events.push(DialogEvent::AddToDoNotCall),
            Action::BookCallback { time } => {
                events.push(DialogEvent::CallbackBooked { time: time.clone() })
            }
            _ => {}
        }
        if let Some(outcome) = decision.action.outcome() {
            events.push(DialogEvent::CallEnded { outcome });
        }
        state.turns.push(Turn {
            index: state.turns.len(),
            caller,
            decision: decision.clone(),
            reply: text,
            mode,
            fallback,
            profile_in_time,
            snippets,
            first_sentence_ms,
        });
        BotReply {
            decision,
            sentences,
            events,
            mode,
            first_sentence_ms,
        }
    }

    /// The opener campaign rules pick for the caller's intent ("" if none).
    fn rule_opener(&self, state: &ConversationState, nlu: &NluResult) -> String {
        let intent = if nlu.confidence >= self.policy.config.min_confidence {
            nlu.intent
        } else {
            Intent::Other
        };
        self.campaign
            .openers
            .get(&intent)
            .and_then(|v| v.get(state.language))
            .filter(|v| !v.is_empty())
            .map(|v| {
                let key = format!("openers.{}", intent.as_str());
                v[choose_variant(v.len(), state.seed, state.turns.len(), &key)].clone()
            })
            .unwrap_or_default()
    }

    /// The approved body of an action for this call, slots filled.
    pub fn template_text(
        &self,
        state: &ConversationState,
        action: &Action,
        profile: &CustomerProfile,
    ) -> String {
        let lang = state.language;
        let s = &self.campaign.script;
        let body = match action {
            Action::Greet => self.scripted("script.greet", &s.greet),
            Action::Pitch { segment } => match segment {
                crate::policy::campaign::Segment::PriceSensitive => {
                    self.scripted("script.pitch.price_sensitive", &s.pitch.price_sensitive)
                }
                crate::policy::campaign::Segment::QualityOriented => {
                    self.scripted("script.pitch.quality_oriented", &s.pitch.quality_oriented)
                }
            },
            Action::DiscountOffer => self.scripted("script.discount_offer", &s.discount_offer),
            Action::AnswerFaq { id } => Body::AsWritten(
                self.campaign
                    .faq
                    .iter()
                    .find(|f| &f.id == id)
                    .and_then(|f| f.answer.get(lang).cloned())
                    .unwrap_or_default(),
            ),
            Action::AdvisorFollowUp => {
                self.scripted("script.advisor_follow_up", &s.advisor_follow_up)
            }
            Action::HandOff { .. } => self.scripted("script.hand_off", &s.hand_off),
            Action::OfferCallback => self.scripted("script.offer_callback", &s.offer_callback),
            Action::BookCallback { time: Some(t) } => Body::Template {
                key: "script.book_callback".into(),
                variants: &s.book_callback,
                extra: Some(("callback_time", render_time(t, lang))),
            },
            Action::BookCallback { time: None } => self.scripted(
                "script.book_callback_unspecified",
                &s.book_callback_unspecified,
            ),
            Action::AddToDoNotCall => self.scripted("script.do_not_call", &s.do_not_call),
            Action::DiscloseBot => self.scripted("script.disclose_bot", &s.disclose_bot),
            Action::Recommend { product } => {
                match self
                    .campaign
                    .recommendations
                    .iter()
                    .find(|r| &r.id == product)
                {
                    Some(r) => Body::Template {
                        key: format!("recommendations[{}].say", r.id),
                        variants: &r.say,
                        extra: Some((
                            "recommended_product",
                            r.product.get(lang).cloned().unwrap_or_default(),
                        )),
                    },
                    None => self.scripted("script.clarify", &s.clarify),
                }
            }
            Action::Clarify => self.scripted("script.clarify", &s.clarify),
            Action::Close {
                outcome: Outcome::Converted,
            } => self.scripted("script.close_converted", &s.close_converted),
            Action::Close { .. } => self.scripted("script.close_refused", &s.close_refused),
        };
        match body {
            Body::AsWritten(text) => text,
            Body::Template {
                key,
                variants,
                extra,
            } => {
                let list = variants.get(lang).map(Vec::as_slice).unwrap_or_default();
                if list.is_empty() {
                    return String::new();
                }
                let at = match state.variants.get(&key) {
                    Some(i) => i % list.len(),
                    None => choose_variant(list.len(), state.seed, state.turns.len(), &key),
                };
                let chosen = &list[at];
                let mut slots = self.slots(lang, profile);
                if let Some((name, value)) = extra {
                    slots.insert(name.to_string(), value);
                }
                let text = render(chosen, &slots);
                match lang {
                    Language::En => capitalize_sentences(&text),
                    Language::Zh => text,
                }
            }
        }
    }

    fn scripted<'a>(&self, key: &str, variants: &'a Variants) -> Body<'a> {
        Body::Template {
            key: key.to_string(),
            variants,
            extra: None,
        }
    }

    fn slots(&self, lang: Language, profile: &CustomerProfile) -> BTreeMap<String, String> {
        let c = &self.campaign;
        let get = |v: &crate::policy::campaign::PerLanguage<String>| {
            v.get(lang).cloned().unwrap_or_default()
        };
        let name = if profile.display_name.trim().is_empty() {
            get(&c.customer_name_fallback)
        } else {
            profile.display_name.trim().to_string()
        };
        let mut slots: BTreeMap<String, String> = COMMON_SLOTS
            .iter()
            .zip([get(&c.agent), get(&c.company), get(&c.product), name])
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        for (k, v) in &c.facts {
            slots.insert(k.clone(), get(v));
        }
        slots
    }
}

fn join(opener: &str, body: &str, language: Language) -> String {
    if opener.is_empty() {
        body.to_string()
    } else if body.is_empty() {
        opener.to_string()
    } else {
        format!("{opener}{}{body}", joiner(language))
    }
}

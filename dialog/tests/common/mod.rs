//! Shared helpers of the dialogue tests: data paths, an in-memory [`ProfileStore`] with an
//! optional delay, the real embedder, and the scenario files with their runner.
#![allow(dead_code)] // Each test binary uses part of the helpers.

use dialog::nlu::{FakeNlu, NluEngine};
use dialog::policy::{Campaign, DialogConfig, DialogManager};
use dialog::{DialogError, Understand};
use retrieval::{
    BertEmbedder, CustomerProfile, Embedder, Language, ProfileContext, ProfileStore,
    RetrievalError, Snippet, SnippetKind,
};
use serde::Deserialize;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn models() -> PathBuf {
    crate_dir().join("../models")
}

pub fn campaign(name: &str) -> Arc<Campaign> {
    let path = crate_dir().join(format!("data/campaigns/{name}.yaml"));
    Arc::new(Campaign::load(&path).unwrap_or_else(|e| panic!("{e}")))
}

/// The real MiniLM sentence embedder (models/all-MiniLM-L6-v2), loaded once.
pub fn bert() -> Arc<dyn Embedder> {
    static BERT: OnceLock<Arc<dyn Embedder>> = OnceLock::new();
    BERT.get_or_init(|| {
        let dir = models().join("all-MiniLM-L6-v2");
        Arc::new(
            BertEmbedder::load(&dir)
                .unwrap_or_else(|e| panic!("{}: {e} (run scripts/setup.sh)", dir.display())),
        )
    })
    .clone()
}

pub fn fake_nlu() -> Arc<dyn Understand> {
    Arc::new(FakeNlu::new().unwrap_or_else(|e| panic!("{e}")))
}

/// The production NLU on the checked-in models (needs MiniLM).
pub fn real_nlu() -> Arc<dyn Understand> {
    static NLU: OnceLock<Arc<dyn Understand>> = OnceLock::new();
    NLU.get_or_init(|| {
        Arc::new(
            NluEngine::load(&crate_dir().join("data/nlu"), Some(bert()))
                .unwrap_or_else(|e| panic!("{e}")),
        )
    })
    .clone()
}

/// Profiles and snippets in memory; `delay` simulates a slow database.
#[derive(Default)]
pub struct MemoryProfiles {
    pub profiles: HashMap<String, CustomerProfile>,
    pub snippets: HashMap<String, Vec<Snippet>>,
    pub delay: Duration,
}

#[async_trait::async_trait]
impl ProfileStore for MemoryProfiles {
    async fn profile(&self, customer_id: &str) -> Result<Option<CustomerProfile>, RetrievalError> {
        Ok(self.profiles.get(customer_id).cloned())
    }

    async fn context(
        &self,
        customer_id: &str,
        _campaign_id: &str,
        _turn_text: &str,
        k: usize,
    ) -> Result<ProfileContext, RetrievalError> {
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        Ok(ProfileContext {
            profile: self.profiles.get(customer_id).cloned().unwrap_or_default(),
            snippets: self
                .snippets
                .get(customer_id)
                .map(|s| s.iter().take(k).cloned().collect())
                .unwrap_or_default(),
        })
    }
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct ScenarioProfile {
    pub display_name: String,
    pub segment: Option<String>,
    pub price_sensitivity: Option<f32>,
    pub children_in_school: Option<u8>,
    pub interests: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioTurn {
    pub caller: String,
    /// Expected NLU intent label.
    pub intent: Option<String>,
    /// Expected action kind.
    pub action: String,
    /// Fields the action must have (a subset of its JSON form).
    #[serde(default)]
    pub detail: serde_json::Map<String, serde_json::Value>,
    /// Phrases the template reply must contain.
    #[serde(default)]
    pub say: Vec<String>,
    /// Phrases no reply (template or LLM) may contain.
    #[serde(default)]
    pub never_say: Vec<String>,
    /// Event types the turn must emit.
    #[serde(default)]
    pub events: Vec<String>,
}

/// A text-level dialogue: profile, caller turns, expected actions.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    pub campaign: String,
    pub language: Language,
    #[serde(default)]
    pub profile: ScenarioProfile,
    /// History snippets the store returns for the customer.
    #[serde(default)]
    pub snippets: Vec<String>,
    /// Expected pitch segment / greeting is always first; this is the final outcome.
    pub outcome: Option<String>,
    pub turns: Vec<ScenarioTurn>,
}

pub fn scenarios() -> Vec<(String, Scenario)> {
    let dir = crate_dir().join("tests/data/dialogues");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap_or_default();
            let s: Scenario =
                serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (
                p.file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned(),
                s,
            )
        })
        .collect()
}

impl Scenario {
    pub fn store(&self) -> MemoryProfiles {
        let id = "customer-1".to_string();
        let profile = CustomerProfile {
            customer_id: id.clone(),
            display_name: self.profile.display_name.clone(),
            language: self.language,
            segment: self.profile.segment.clone(),
            price_sensitivity: self.profile.price_sensitivity,
            children_in_school: self.profile.children_in_school,
            interests: self.profile.interests.clone(),
            ..CustomerProfile::default()
        };
        let snippets = self
            .snippets
            .iter()
            .map(|t| Snippet {
                kind: SnippetKind::History,
                text: t.clone(),
                score: 0.8,
            })
            .collect();
        MemoryProfiles {
            profiles: HashMap::from([(id.clone(), profile)]),
            snippets: HashMap::from([(id, snippets)]),
            delay: Duration::ZERO,
        }
    }

    pub fn manager(
        &self,
        nlu: Arc<dyn Understand>,
        embedder: Option<Arc<dyn Embedder>>,
    ) -> Result<DialogManager, DialogError> {
        DialogManager::new(
            campaign(&self.campaign),
            nlu,
            Arc::new(self.store()),
            embedder,
            DialogConfig {
                // Generous for a loaded CI box: the budget itself is tested separately.
                profile_budget_ms: 1000,
                ..DialogConfig::default()
            },
        )
    }
}

/// Runs a scenario and returns every mismatch (empty = pass). `check_wording` asserts the
/// template phrases (`say`), which only holds in template mode.
pub async fn run(
    file: &str,
    s: &Scenario,
    manager: &DialogManager,
    check_wording: bool,
) -> Result<(Vec<String>, dialog::ConversationState), DialogError> {
    let mut problems = Vec::new();
    let (mut state, greeting) = manager.start(file, "customer-1", s.language, 11).await?;
    if greeting.action().kind() != "greet" {
        problems.push(format!("{file}: the call did not open with greet"));
    }
    let cancel = CancellationToken::new();
    for (i, t) in s.turns.iter().enumerate() {
        let at = format!("{file} turn {i} \"{}\"", t.caller);
        if state.finished() {
            problems.push(format!(
                "{at}: the call already ended ({:?})",
                state.outcome
            ));
            break;
        }
        let reply = manager.turn(&mut state, &t.caller, &cancel).await?;
        let nlu = state
            .turns
            .last()
            .and_then(|t| t.caller.as_ref())
            .map(|c| c.nlu.clone());
        if let (Some(want), Some(nlu)) = (&t.intent, &nlu) {
            if nlu.intent.as_str() != want {
                problems.push(format!(
                    "{at}: NLU intent {} (want {want})",
                    nlu.intent.as_str()
                ));
            }
        }
        if reply.action().kind() != t.action {
            problems.push(format!(
                "{at}: action {} by rule {} ({}) (want {})",
                reply.action().kind(),
                reply.decision.rule,
                reply.decision.reason,
                t.action
            ));
        }
        let json = serde_json::to_value(reply.action()).unwrap_or_default();
        for (k, v) in &t.detail {
            if json.get(k) != Some(v) {
                problems.push(format!("{at}: action {json} lacks {k}={v}"));
            }
        }
        let text = reply.text(s.language).to_lowercase();
        if check_wording {
            for p in &t.say {
                if !text.contains(&p.to_lowercase()) {
                    problems.push(format!("{at}: reply \"{text}\" does not say \"{p}\""));
                }
            }
        }
        for p in &t.never_say {
            if text.contains(&p.to_lowercase()) {
                problems.push(format!("{at}: reply \"{text}\" says \"{p}\""));
            }
        }
        for e in &t.events {
            let has = reply.events.iter().any(|ev| {
                serde_json::to_value(ev)
                    .ok()
                    .and_then(|v| v.get("type").cloned())
                    == Some(serde_json::Value::String(e.clone()))
            });
            if !has {
                problems.push(format!("{at}: no {e} event in {:?}", reply.events));
            }
        }
        if reply.sentences.is_empty() {
            problems.push(format!("{at}: empty reply"));
        }
    }
    let outcome = state.outcome.map(|o| o.as_str().to_string());
    if outcome != s.outcome {
        problems.push(format!(
            "{file}: outcome {outcome:?} (want {:?})",
            s.outcome
        ));
    }
    Ok((problems, state))
}

//! The running product assembled once from the configuration: the SQL store and privacy keys,
//! the vector and lexical indexes, the profile store, the dialogue manager, the call context
//! (engines + manager + sink + metrics + hand-off desk) and the campaign runner. `ringwise
//! serve`, `ringwise demo` and the tests all build this one thing, so the demo runs the same
//! code paths as production.

use crate::demo::{build_manager, demo_keys, ensure_sqlite_folder};
use crate::metrics::Metrics;
use crate::records::SqlCallSink;
use crate::session::{AgentDesk, CallContext};
use crate::{Config, Engines};
use retrieval::index::embedded::EmbeddedIndex;
use retrieval::{LexicalIndex, PrivacyKeys, SqlProfileStore, SqlStore, VectorIndex};
use std::sync::Arc;

/// Everything a call, the API and the dialer share.
pub struct App {
    pub config: Config,
    pub engines: Arc<Engines>,
    pub store: SqlStore,
    pub keys: PrivacyKeys,
    pub index: Arc<dyn VectorIndex>,
    pub lexical: Arc<LexicalIndex>,
    pub profiles: Arc<SqlProfileStore>,
    pub calls: Arc<CallContext>,
    pub metrics: Metrics,
    /// Human for the LLM phrasing state ("off (templates …)").
    pub llm_phrasing: String,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App").finish_non_exhaustive()
    }
}

impl App {
    /// Connects the store (migrating it), opens the indexes and builds the dialogue stack over
    /// loaded `engines`. `agents` is the hand-off desk (the dialer's); `attempts` completes the
    /// dialer's attempts in each call's transaction.
    pub async fn build(
        config: &Config,
        engines: Arc<Engines>,
        metrics: Metrics,
        agents: Option<Arc<dyn AgentDesk>>,
        attempts: Option<Arc<dyn crate::records::AttemptCompletion>>,
    ) -> anyhow::Result<Self> {
        ensure_sqlite_folder(&config.retrieval.database_url)?;
        let store = SqlStore::connect(&config.retrieval.database_url).await?;
        let keys = demo_keys(config, &config.dialog.data_dir)?;
        let index: Arc<dyn VectorIndex> = Arc::new(EmbeddedIndex::open(
            &config.retrieval.index_dir,
            engines.embedder.dim(),
        )?);
        let lexical = Arc::new(LexicalIndex::open(&config.retrieval.lexical_dir)?);
        let profiles = Arc::new(SqlProfileStore::new(
            store.clone(),
            engines.embedder.clone(),
            index.clone(),
            lexical.clone(),
        ));
        let (manager, llm_phrasing) = build_manager(config, &engines, profiles.clone())?;
        let sink = Arc::new(SqlCallSink {
            store: store.clone(),
            keys: keys.clone(),
            profiles: Some(profiles.clone()),
            attempts,
        });
        let calls = Arc::new(CallContext {
            engines: engines.clone(),
            manager: Arc::new(manager),
            config: config.session.clone(),
            metrics: metrics.clone(),
            agents,
            sink,
            recordings_dir: config.dialog.data_dir.join("recordings"),
        });
        Ok(Self {
            config: config.clone(),
            engines,
            store,
            keys,
            index,
            lexical,
            profiles,
            calls,
            metrics,
            llm_phrasing,
        })
    }

    /// Indexes the campaign's FAQ answers as knowledge snippets; returns how many.
    pub async fn index_knowledge(&self) -> anyhow::Result<usize> {
        let campaign = self.calls.manager.campaign();
        let mut knowledge: Vec<&str> = Vec::new();
        for entry in &campaign.faq {
            knowledge.extend(entry.answer.en.as_deref());
            knowledge.extend(entry.answer.zh.as_deref());
        }
        Ok(self
            .profiles
            .index_knowledge(&campaign.id, &knowledge)
            .await?)
    }
}

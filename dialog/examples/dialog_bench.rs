//! Template-mode latency of the dialogue manager: for every caller turn of the dialogue scenarios
//! (dialog/tests/data/dialogues), the time from the caller's text to the first sentence of the
//! reply (real NLU, MiniLM FAQ retrieval, an in-memory profile store), p50 / p95 / max over 20
//! rounds, and the NLU's own share. Prints `dialog.template_first_sentence_ms`. Run:
//! `cargo run -p dialog --example dialog_bench`.
#![allow(clippy::print_stdout)]

use dialog::nlu::NluEngine;
use dialog::policy::{Campaign, DialogConfig, DialogManager};
use dialog::Understand;
use retrieval::{
    BertEmbedder, CustomerProfile, Embedder, Language, ProfileContext, ProfileStore, RetrievalError,
};
use serde::Deserialize;
use std::path::PathBuf;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// A profile store answering from memory (no database cost in the figure).
struct OneProfile(CustomerProfile);

#[async_trait::async_trait]
impl ProfileStore for OneProfile {
    async fn profile(&self, _: &str) -> Result<Option<CustomerProfile>, RetrievalError> {
        Ok(Some(self.0.clone()))
    }
    async fn context(
        &self,
        _: &str,
        _: &str,
        _: &str,
        _: usize,
    ) -> Result<ProfileContext, RetrievalError> {
        Ok(ProfileContext {
            profile: self.0.clone(),
            snippets: Vec::new(),
        })
    }
}

#[derive(Deserialize)]
struct Turn {
    caller: String,
}

#[derive(Deserialize)]
struct Scenario {
    campaign: String,
    language: Language,
    turns: Vec<Turn>,
}

fn main() -> anyhow::Result<()> {
    retrieval::embed::block_on_main(run())?
}

async fn run() -> anyhow::Result<()> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let embedder: Arc<dyn Embedder> =
        Arc::new(BertEmbedder::load(&dir.join("../models/all-MiniLM-L6-v2"))?);
    let nlu: Arc<dyn Understand> = Arc::new(NluEngine::load(
        &dir.join("data/nlu"),
        Some(embedder.clone()),
    )?);
    let mut scenarios = Vec::new();
    for entry in std::fs::read_dir(dir.join("tests/data/dialogues"))? {
        let text = std::fs::read_to_string(entry?.path())?;
        let s: Scenario = serde_yaml_ng::from_str(&text)?;
        scenarios.push(s);
    }
    let (mut times, mut nlu_times) = (Vec::new(), Vec::new());
    for round in 0..20u64 {
        for s in &scenarios {
            let campaign = Arc::new(Campaign::load(
                &dir.join(format!("data/campaigns/{}.yaml", s.campaign)),
            )?);
            let manager = DialogManager::new(
                campaign,
                nlu.clone(),
                Arc::new(OneProfile(CustomerProfile::default())),
                Some(embedder.clone()),
                DialogConfig::default(),
            )?;
            let (mut state, _) = manager.start("bench", "c", s.language, round).await?;
            for t in &s.turns {
                if state.finished() {
                    break;
                }
                let started = std::time::Instant::now();
                nlu.understand(&t.caller, s.language)?;
                nlu_times.push(started.elapsed().as_secs_f64() * 1e3);
                let reply = manager
                    .turn(&mut state, &t.caller, &CancellationToken::new())
                    .await?;
                times.push(reply.first_sentence_ms);
            }
        }
    }
    for (key, mut v) in [
        ("dialog.template_first_sentence_ms", times),
        (
            "of which NLU alone (same turns, measured apart) nlu_ms",
            nlu_times,
        ),
    ] {
        v.sort_by(f64::total_cmp);
        let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
        println!(
            "{key} p50={:.2} p95={:.2} max={:.2} (n={})",
            at(0.5),
            at(0.95),
            at(1.0),
            v.len()
        );
    }
    Ok(())
}

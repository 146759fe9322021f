//! Shared helpers of the eval tests: the text-mode driver on the production dialogue stack
//! (campaign file, trained NLU, MiniLM from models/ — run scripts/setup.sh when missing).
#![allow(dead_code)] // Each test binary uses part of the helpers.

use dialog::nlu::NluEngine;
use dialog::policy::{Campaign, DialogConfig, DialogManager};
use evals::{NoInput, ScenarioProfiles, TextDriver};
use retrieval::{BertEmbedder, Embedder};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

pub fn suite_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scenarios")
}

pub fn bert() -> Arc<dyn Embedder> {
    static BERT: OnceLock<Arc<dyn Embedder>> = OnceLock::new();
    BERT.get_or_init(|| {
        let dir = root().join("models/all-MiniLM-L6-v2");
        Arc::new(
            BertEmbedder::load(&dir)
                .unwrap_or_else(|e| panic!("{}: {e} (run scripts/setup.sh)", dir.display())),
        )
    })
    .clone()
}

/// The text driver over the real NLU and the insurance campaign.
pub fn text_driver() -> Arc<TextDriver> {
    let campaign = Arc::new(
        Campaign::load(&root().join("dialog/data/campaigns/family_education_insurance.yaml"))
            .unwrap_or_else(|e| panic!("{e}")),
    );
    let nlu = Arc::new(
        NluEngine::load(&root().join("dialog/data/nlu"), Some(bert()))
            .unwrap_or_else(|e| panic!("{e}")),
    );
    let profiles = Arc::new(ScenarioProfiles::default());
    let manager = DialogManager::new(
        campaign,
        nlu,
        profiles.clone(),
        Some(bert()),
        DialogConfig::default(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    Arc::new(TextDriver::new(
        Arc::new(manager),
        profiles,
        NoInput::default(),
        "templates, trained NLU (test)",
    ))
}

//! Typed configuration of the data layer.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct RetrievalConfig {
    /// `sqlite://data/ringwise.db` (default, created if missing) or `postgres://…`.
    pub database_url: String,
    /// Folder of the sentence-embedding model (safetensors + tokenizer.json + config.json).
    pub embedder_dir: PathBuf,
    /// Where the embedded vector index keeps its files.
    pub index_dir: PathBuf,
    /// When set, use a Qdrant server or cluster at this URL instead of the embedded index.
    pub qdrant_url: Option<String>,
    /// Qdrant collection name.
    pub collection: String,
}

impl Default for RetrievalConfig {
    fn default() -> Self {
        Self {
            database_url: "sqlite://data/ringwise.db".into(),
            embedder_dir: PathBuf::from("models/all-MiniLM-L6-v2"),
            index_dir: PathBuf::from("data/index"),
            qdrant_url: None,
            collection: "ringwise".into(),
        }
    }
}

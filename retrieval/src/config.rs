//! Typed configuration of the data layer.

use crate::import::{CallLogMapping, CrmMapping};
use crate::{PrivacyKeys, RetrievalError};
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
    /// Folder of the BM25 index beside the embedded vector index.
    pub lexical_dir: PathBuf,
    /// Base64 of 32 secret bytes keying the phone-number hash. No default: set it in the
    /// configuration file or the environment (e.g. from `openssl rand -base64 32`).
    pub phone_hash_key: Option<String>,
    /// Base64 of 32 secret bytes for AES-256-GCM field encryption (phones, recording paths).
    pub encryption_key: Option<String>,
    /// Which CRM export column holds which customer attribute.
    pub crm: CrmMapping,
    /// Which column of a CRM call-log export holds which field.
    pub call_logs: CallLogMapping,
}

impl RetrievalConfig {
    /// The privacy keys from `phone_hash_key` and `encryption_key`.
    pub fn privacy_keys(&self) -> Result<PrivacyKeys, RetrievalError> {
        match (&self.phone_hash_key, &self.encryption_key) {
            (Some(h), Some(e)) => PrivacyKeys::from_base64(h, e),
            _ => Err(RetrievalError::InvalidInput(
                "retrieval.phone_hash_key and retrieval.encryption_key must both be set \
                 (base64 of 32 random bytes each, e.g. `openssl rand -base64 32`)"
                    .into(),
            )),
        }
    }
}

impl Default for RetrievalConfig {
    fn default() -> Self {
        Self {
            database_url: "sqlite://data/ringwise.db".into(),
            embedder_dir: PathBuf::from("models/all-MiniLM-L6-v2"),
            index_dir: PathBuf::from("data/index"),
            qdrant_url: None,
            collection: "ringwise".into(),
            lexical_dir: PathBuf::from("data/lexical"),
            phone_hash_key: None,
            encryption_key: None,
            crm: CrmMapping::default(),
            call_logs: CallLogMapping::default(),
        }
    }
}

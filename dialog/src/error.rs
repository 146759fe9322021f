//! Errors of the dialog crate.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum DialogError {
    #[error("model file {path} is missing: run scripts/setup.sh to fetch the models")]
    ModelMissing { path: PathBuf },
    #[error("language model failed: {0}")]
    Llm(String),
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    #[error("the language model worker has stopped; restart the process")]
    WorkerGone,
}

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
    #[error("NLU file {path}: {message}")]
    NluFile { path: PathBuf, message: String },
    #[error("NLU failed: {0}")]
    Nlu(String),
    #[error("campaign {path}: {message}")]
    Campaign { path: String, message: String },
    #[error("conversation state: {0}")]
    State(String),
    #[error("retrieval failed: {0}")]
    Retrieval(String),
    #[error("the call has ended: start a new conversation")]
    CallFinished,
    #[error("the customer is on the do-not-call list: the call must not be made")]
    DoNotCall,
    #[error("model {model} has not passed qualification for {mode} phrasing: run `qualify` with it, or keep template mode")]
    NotQualified { model: String, mode: String },
    #[error("qualification suite: {0}")]
    Qualify(String),
}

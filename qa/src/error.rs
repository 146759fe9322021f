//! Errors of the qa crate: what was wrong and what to do about it.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum QaError {
    #[error("store: {0}")]
    Store(#[from] retrieval::RetrievalError),
    #[error("I/O on {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid input: {0}")]
    InvalidInput(String),
    #[error("writing {what}: {message}")]
    Render { what: String, message: String },
    #[error("judge {judge}: {message}")]
    Judge { judge: String, message: String },
}

impl QaError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        QaError::Io {
            path: path.into(),
            source,
        }
    }
}

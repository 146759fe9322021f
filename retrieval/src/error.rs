//! Errors of the retrieval crate.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum RetrievalError {
    #[error("model file {path} is missing: run scripts/setup.sh to fetch the models")]
    ModelMissing { path: PathBuf },
    #[error("embedding model failed: {0}")]
    Embed(String),
    #[error("vector index: {0}")]
    Index(String),
    #[error("vector of dimension {got} given to an index of dimension {want}")]
    Dimension { want: usize, got: usize },
    #[error("database: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("database migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("I/O on {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid input: {0}")]
    InvalidInput(String),
    #[error("field encryption: {0}")]
    Crypto(String),
    #[error("background task failed: {0}")]
    Task(String),
    #[error("qdrant: {0}")]
    Qdrant(String),
}

impl From<candle_core::Error> for RetrievalError {
    fn from(e: candle_core::Error) -> Self {
        RetrievalError::Embed(e.to_string())
    }
}

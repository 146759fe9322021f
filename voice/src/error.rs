//! Errors of the voice crate: what went wrong and, where it helps, what to do about it.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum VoiceError {
    #[error("model file {path} is missing: run scripts/setup.sh to fetch the models")]
    ModelMissing { path: PathBuf },
    #[error("model file {path} could not be read: {reason}")]
    ModelFormat { path: PathBuf, reason: String },
    #[error("invalid input: {0}")]
    InvalidInput(String),
    #[error("{engine} engine failed: {reason}")]
    Engine {
        engine: &'static str,
        reason: String,
    },
    #[error("audio I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("wav: {0}")]
    Wav(#[from] hound::Error),
}

impl VoiceError {
    pub(crate) fn engine(engine: &'static str, reason: impl std::fmt::Display) -> Self {
        VoiceError::Engine {
            engine,
            reason: reason.to_string(),
        }
    }
}

impl From<candle_core::Error> for VoiceError {
    fn from(e: candle_core::Error) -> Self {
        VoiceError::engine("candle", e)
    }
}

/// Fails with [`VoiceError::ModelMissing`] unless `path` exists.
pub(crate) fn require_file(path: &std::path::Path) -> Result<(), VoiceError> {
    if path.exists() {
        Ok(())
    } else {
        Err(VoiceError::ModelMissing {
            path: path.to_path_buf(),
        })
    }
}

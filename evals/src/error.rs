//! Errors of the eval harness: bad scenario files (with file, line and key), unreadable result
//! files, and a bot that failed a scenario's call.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// A scenario file that does not load; the message names the line and key.
    #[error("scenario {path}: {message}")]
    Scenario { path: PathBuf, message: String },
    #[error("{path}: {message}")]
    Io { path: PathBuf, message: String },
    /// The bot under test returned an error during a scenario.
    #[error("the bot failed: {0}")]
    Bot(String),
    #[error("results file {path}: {message}")]
    Results { path: PathBuf, message: String },
}

impl From<dialog::DialogError> for EvalError {
    fn from(e: dialog::DialogError) -> Self {
        EvalError::Bot(e.to_string())
    }
}

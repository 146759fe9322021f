//! What can go wrong reading training data, training, saving or loading a propensity model.
//! Each message says what was wrong and, where there is one, what to do.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum PropensityError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not readable as CSV: {source}")]
    Csv { path: PathBuf, source: csv::Error },
    #[error("{path}: the file has no data rows (a header and at least one row are needed)")]
    Empty { path: PathBuf },
    #[error("{path}: no column named `{column}` (the {role} column); columns are: {available}")]
    MissingColumn {
        path: PathBuf,
        column: String,
        role: &'static str,
        available: String,
    },
    #[error(
        "{path}: line {line}, column `{column}`: `{value}` is not a number (every column but the \
         id and the label is a numeric feature; leave a cell empty or write NA for a missing value)"
    )]
    NonNumeric {
        path: PathBuf,
        line: u64,
        column: String,
        value: String,
    },
    #[error(
        "{path}: line {line}, label column `{column}`: `{value}` is not a label (use 1/0, yes/no \
         or true/false)"
    )]
    BadLabel {
        path: PathBuf,
        line: u64,
        column: String,
        value: String,
    },
    #[error(
        "{path}: every row of label column `{column}` is {class}; training needs both buyers and \
         non-buyers"
    )]
    SingleClass {
        path: PathBuf,
        column: String,
        class: &'static str,
    },
    #[error(
        "too few positive rows ({positives}) to split into train, calibration and held-out parts; \
         at least {needed} are needed"
    )]
    TooFewPositives { positives: usize, needed: usize },
    #[error("{path}: no feature columns besides the id and the label")]
    NoFeatures { path: PathBuf },
    #[error(
        "the data's columns do not match the model's features: missing {missing}; a model scores \
         only data with the columns it was trained on"
    )]
    FeatureMismatch { missing: String },
    #[error("training the {model} model: {message}")]
    Training {
        model: &'static str,
        message: String,
    },
    #[error("{path}: {message} (retrain the model with `ringwise train`)")]
    BadModel { path: PathBuf, message: String },
    #[error("model store: {0}")]
    Store(#[from] retrieval::RetrievalError),
    #[error("model store query: {0}")]
    Sql(#[from] sqlx::Error),
}

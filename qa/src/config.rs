//! The `[qa]` section of the configuration: the rule grader's phrases and thresholds, and the
//! report's settings.

use crate::grade::GraderConfig;
use crate::report::ReportConfig;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct QaConfig {
    /// `[qa.grader]`: disclosure and forbidden phrases, thresholds (the dialogue policy's own
    /// thresholds are taken from `[dialog]` by `ringwise qa run`).
    pub grader: GraderConfig,
    /// `[qa.report]`: time zone of the by-hour chart, title, latency bin width.
    pub report: ReportConfig,
    /// Calls read and stored per transaction by `ringwise qa run`.
    pub page: usize,
    /// The retraining schedule: `ringwise retrain --if-due` (run it daily from cron or a
    /// systemd timer) retrains once the active propensity model is this many days old.
    pub retrain_every_days: u32,
    /// Where `ringwise retrain` keeps its model folders.
    pub models_dir: std::path::PathBuf,
}

impl Default for QaConfig {
    fn default() -> Self {
        Self {
            grader: GraderConfig::default(),
            report: ReportConfig::default(),
            page: 500,
            retrain_every_days: 30,
            models_dir: std::path::PathBuf::from("data/models"),
        }
    }
}

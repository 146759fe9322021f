//! The `[qa]` section of the configuration: the rule grader's phrases and thresholds, the
//! optional LLM judge, and the report's settings.

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
    /// The LLM judge's GGUF (`[qa] judge_model`). Unset (the default), `ringwise qa run` grades
    /// by the rules alone; set, it also asks this model its advisory `judge.*` questions about
    /// each call it grades. `ringwise qa run --judge` turns the judge on for one run, with this
    /// file or, unset, [`DEFAULT_JUDGE_MODEL`]. Off by default because the judges measured so
    /// far agree with the rules too little to be worth seconds per call (BENCHMARKS.md,
    /// `qa.judge_agreement_*`).
    pub judge_model: Option<std::path::PathBuf>,
    /// llama.cpp threads of the judge (see `llm.threads` on why 1 is often fastest).
    pub judge_threads: u32,
}

/// The judge model `scripts/setup.sh` fetches: Qwen2.5-Coder-0.5B-Instruct Q4_K_M.
pub const DEFAULT_JUDGE_MODEL: &str = "models/llm/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf";

impl Default for QaConfig {
    fn default() -> Self {
        Self {
            grader: GraderConfig::default(),
            report: ReportConfig::default(),
            page: 500,
            retrain_every_days: 30,
            models_dir: std::path::PathBuf::from("data/models"),
            judge_model: None,
            judge_threads: 1,
        }
    }
}

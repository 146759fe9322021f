//! A run's results: per scenario its verdict, failures, transcript and timings, plus what was
//! under test. Saved as JSON (`--save`), the baseline that `compare` reads.

use crate::check::Failure;
use crate::error::EvalError;
use crate::scenario::{Mode, Scenario};
use crate::transcript::Transcript;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The results file format version.
pub const RESULTS_VERSION: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Pass,
    /// An expectation was broken.
    Fail,
    /// The scenario could not be judged: a bad file, a bot crash or error, a timeout.
    Error,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "FAIL",
            Verdict::Error => "ERROR",
        }
    }
}

/// One scenario's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScenarioResult {
    pub id: String,
    pub name: String,
    pub file: String,
    pub language: String,
    #[serde(default)]
    pub tags: Vec<String>,
    pub mode: Mode,
    pub verdict: Verdict,
    #[serde(default)]
    pub failures: Vec<Failure>,
    /// Wall time of the scenario's call.
    pub duration_ms: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transcript: Option<Transcript>,
    /// LLM-judge criteria of the scenario (not judged by this harness).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub judge: Vec<String>,
}

impl ScenarioResult {
    fn base(s: &Scenario, mode: Mode, verdict: Verdict, ms: f64) -> Self {
        Self {
            id: s.id.clone(),
            name: s.name().to_string(),
            file: s.path.display().to_string(),
            language: s.file.language.code().to_string(),
            tags: s.file.tags.clone(),
            mode,
            verdict,
            failures: Vec::new(),
            duration_ms: ms,
            transcript: None,
            judge: s.file.judge.clone(),
        }
    }

    pub fn finished(
        s: &Scenario,
        mode: Mode,
        transcript: Transcript,
        failures: Vec<Failure>,
        ms: f64,
    ) -> Self {
        let verdict = if failures.is_empty() {
            Verdict::Pass
        } else {
            Verdict::Fail
        };
        Self {
            failures,
            transcript: Some(transcript),
            ..Self::base(s, mode, verdict, ms)
        }
    }

    pub fn crashed(s: &Scenario, mode: Mode, failure: Failure, ms: f64) -> Self {
        Self {
            failures: vec![failure],
            ..Self::base(s, mode, Verdict::Error, ms)
        }
    }

    /// A scenario file that did not load.
    pub fn load_error(e: &EvalError) -> Self {
        let (file, message) = match e {
            EvalError::Scenario { path, message } => (path.display().to_string(), message.clone()),
            other => (String::new(), other.to_string()),
        };
        Self {
            id: file.clone(),
            name: file.clone(),
            file,
            language: String::new(),
            tags: Vec::new(),
            mode: Mode::Text,
            verdict: Verdict::Error,
            failures: vec![Failure::call("scenario_file", message)],
            duration_ms: 0.0,
            transcript: None,
            judge: Vec::new(),
        }
    }

    /// Mean turn latency, if any turn was timed.
    pub fn mean_latency_ms(&self) -> Option<f64> {
        let l = self.transcript.as_ref()?.latencies();
        (!l.is_empty()).then(|| l.iter().sum::<f64>() / l.len() as f64)
    }

    /// Largest turn latency, if any turn was timed.
    pub fn max_latency_ms(&self) -> Option<f64> {
        self.transcript
            .as_ref()?
            .latencies()
            .into_iter()
            .reduce(f64::max)
    }
}

/// A whole run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunResults {
    pub version: u32,
    /// The run's name (`--label`).
    pub label: String,
    /// What was under test (from the driver).
    pub bot: String,
    pub mode: Mode,
    pub jobs: usize,
    pub wall_s: f64,
    /// Scenarios of the suite that do not run in this mode.
    #[serde(default)]
    pub skipped: Vec<String>,
    pub scenarios: Vec<ScenarioResult>,
}

impl RunResults {
    pub fn passed(&self) -> usize {
        self.count(Verdict::Pass)
    }

    pub fn count(&self, v: Verdict) -> usize {
        self.scenarios.iter().filter(|s| s.verdict == v).count()
    }

    /// Passed / run (0 for an empty run).
    pub fn pass_rate(&self) -> f64 {
        if self.scenarios.is_empty() {
            0.0
        } else {
            self.passed() as f64 / self.scenarios.len() as f64
        }
    }

    /// Scenarios per second of wall time.
    pub fn scenarios_per_s(&self) -> f64 {
        self.scenarios.len() as f64 / self.wall_s.max(1e-9)
    }

    /// All timed turn latencies of the run.
    pub fn latencies(&self) -> Vec<f64> {
        self.scenarios
            .iter()
            .filter_map(|s| s.transcript.as_ref())
            .flat_map(|t| t.latencies())
            .collect()
    }

    pub fn save(&self, path: &Path) -> Result<(), EvalError> {
        let io = |e: String| EvalError::Results {
            path: path.to_path_buf(),
            message: e,
        };
        let json = serde_json::to_string_pretty(self).map_err(|e| io(e.to_string()))?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| io(e.to_string()))?;
        }
        std::fs::write(path, json).map_err(|e| io(e.to_string()))
    }

    pub fn load(path: &Path) -> Result<Self, EvalError> {
        let err = |message: String| EvalError::Results {
            path: path.to_path_buf(),
            message,
        };
        let text =
            std::fs::read_to_string(path).map_err(|e| err(format!("cannot read it: {e}")))?;
        let r: Self = serde_json::from_str(&text).map_err(|e| {
            err(format!(
                "not a results file of `ringwise eval run --save` (line {}: {e})",
                e.line()
            ))
        })?;
        if r.version != RESULTS_VERSION {
            return Err(err(format!(
                "format version {} (this build reads {RESULTS_VERSION}); re-run the suite",
                r.version
            )));
        }
        Ok(r)
    }
}

/// The `p`-th percentile (nearest rank) of `values`, 0 for none.
pub fn percentile(values: &[f64], p: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

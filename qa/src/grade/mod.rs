//! Grading a recorded call: a rubric of rule checks ([`rubric`]), each with pass/fail, a score
//! and evidence spans (turn + line time), and the call's failure reasons from a fixed taxonomy
//! ([`FailureReason`]). The rules decide the grade; an LLM judge for open criteria plugs in
//! through [`Judge`] ([`judge::LlmJudge`]) and only adds advisory `judge.*` checks.

pub mod failure;
pub mod judge;
pub mod rubric;

pub use failure::{FailureClass, FailureReason};
pub use judge::{JudgeConfig, LlmJudge};

use crate::transcript::{CallView, ViewTurn};
use crate::QaError;
use dialog::policy::PolicyConfig;
use retrieval::store::{QaCallGradeRecord, QaCheckRecord, QaEvidenceRecord, QaFailureRecord};
use serde::{Deserialize, Serialize};

/// The name the rule grader stores its grades under.
pub const RULES_GRADER: &str = "rules";
/// Changes when a check's meaning changes (stored with every grade).
pub const RUBRIC_VERSION: &str = "1";

/// Result of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckStatus {
    Pass,
    Fail,
    /// Nothing in the call to check (e.g. no price objection to handle).
    NotApplicable,
}

/// A span of the call a check points at.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// Index into the call's turns.
    pub turn: usize,
    /// Line time of the turn, when known.
    pub at_ms: Option<i64>,
    /// What the turn shows (words of the call stay in the transcript).
    pub note: String,
}

impl Evidence {
    pub fn at(turn: &ViewTurn, note: impl Into<String>) -> Self {
        Self {
            turn: turn.index,
            at_ms: turn.at_ms,
            note: note.into(),
        }
    }
}

/// One rubric check of a call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckResult {
    pub criterion: String,
    pub status: CheckStatus,
    pub score: f64,
    pub max_score: f64,
    /// `rules` or a judge's name.
    pub grader: String,
    pub notes: String,
    pub evidence: Vec<Evidence>,
}

/// One failure reason of a call, with what found it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Failure {
    pub reason: FailureReason,
    pub criterion: Option<String>,
    pub detail: String,
    pub evidence: Option<Evidence>,
}

/// A call's grade: the checks and the failure reasons, primary first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallGrade {
    pub call_id: String,
    pub grader: String,
    pub rubric_version: String,
    pub checks: Vec<CheckResult>,
    pub failures: Vec<Failure>,
    pub graded_at_ms: i64,
}

impl CallGrade {
    /// Sum of the applicable rule checks' scores (a judge's checks are advisory).
    pub fn score(&self) -> f64 {
        self.applicable().map(|c| c.score).sum()
    }

    /// Sum of the applicable rule checks' maxima.
    pub fn max_score(&self) -> f64 {
        self.applicable().map(|c| c.max_score).sum()
    }

    fn applicable(&self) -> impl Iterator<Item = &CheckResult> {
        self.checks
            .iter()
            .filter(|c| c.status != CheckStatus::NotApplicable && c.grader == RULES_GRADER)
    }

    pub fn check(&self, criterion: &str) -> Option<&CheckResult> {
        self.checks.iter().find(|c| c.criterion == criterion)
    }

    pub fn primary_failure(&self) -> Option<FailureReason> {
        self.failures.first().map(|f| f.reason)
    }

    pub fn has_failure(&self, reason: FailureReason) -> bool {
        self.failures.iter().any(|f| f.reason == reason)
    }

    /// The stored form.
    pub fn to_record(&self) -> QaCallGradeRecord {
        QaCallGradeRecord {
            call_id: self.call_id.clone(),
            grader: self.grader.clone(),
            rubric_version: self.rubric_version.clone(),
            score: self.score(),
            max_score: self.max_score(),
            checks: self
                .checks
                .iter()
                .map(|c| QaCheckRecord {
                    criterion: c.criterion.clone(),
                    passed: match c.status {
                        CheckStatus::Pass => Some(true),
                        CheckStatus::Fail => Some(false),
                        CheckStatus::NotApplicable => None,
                    },
                    score: c.score,
                    max_score: c.max_score,
                    grader: c.grader.clone(),
                    notes: c.notes.clone(),
                    evidence: c
                        .evidence
                        .iter()
                        .map(|e| QaEvidenceRecord {
                            turn: e.turn as i64,
                            at_ms: e.at_ms,
                            note: e.note.clone(),
                        })
                        .collect(),
                })
                .collect(),
            failures: self
                .failures
                .iter()
                .map(|f| QaFailureRecord {
                    reason: f.reason.as_str().to_string(),
                    criterion: f.criterion.clone(),
                    detail: f.detail.clone(),
                    turn: f.evidence.as_ref().map(|e| e.turn as i64),
                    at_ms: f.evidence.as_ref().and_then(|e| e.at_ms),
                })
                .collect(),
            graded_at_ms: self.graded_at_ms,
        }
    }

    /// Reads a stored grade back. A reason this build does not know is an error (the taxonomy
    /// is fixed; a newer build wrote it).
    pub fn from_record(r: &QaCallGradeRecord) -> Result<Self, QaError> {
        let failures = r
            .failures
            .iter()
            .map(|f| {
                Ok(Failure {
                    reason: FailureReason::parse(&f.reason).ok_or_else(|| {
                        QaError::InvalidInput(format!(
                            "call {}: unknown failure reason {:?} in qa_failures (graded by a newer build? re-run `ringwise qa run` with it)",
                            r.call_id, f.reason
                        ))
                    })?,
                    criterion: f.criterion.clone(),
                    detail: f.detail.clone(),
                    evidence: f.turn.map(|t| Evidence {
                        turn: t.max(0) as usize,
                        at_ms: f.at_ms,
                        note: String::new(),
                    }),
                })
            })
            .collect::<Result<Vec<_>, QaError>>()?;
        Ok(Self {
            call_id: r.call_id.clone(),
            grader: r.grader.clone(),
            rubric_version: r.rubric_version.clone(),
            checks: r
                .checks
                .iter()
                .map(|c| CheckResult {
                    criterion: c.criterion.clone(),
                    status: match c.passed {
                        Some(true) => CheckStatus::Pass,
                        Some(false) => CheckStatus::Fail,
                        None => CheckStatus::NotApplicable,
                    },
                    score: c.score,
                    max_score: c.max_score,
                    grader: c.grader.clone(),
                    notes: c.notes.clone(),
                    evidence: c
                        .evidence
                        .iter()
                        .map(|e| Evidence {
                            turn: e.turn.max(0) as usize,
                            at_ms: e.at_ms,
                            note: e.note.clone(),
                        })
                        .collect(),
                })
                .collect(),
            failures,
            graded_at_ms: r.graded_at_ms,
        }
        .in_rubric_order())
    }

    /// Checks in rubric order, a judge's after the rules' (the store keeps no order).
    fn in_rubric_order(mut self) -> Self {
        let rank = |c: &CheckResult| {
            rubric::criteria::ALL
                .iter()
                .position(|x| *x == c.criterion)
                .unwrap_or(rubric::criteria::ALL.len())
        };
        self.checks.sort_by_key(rank);
        self
    }
}

/// The rule grader's settings: what counts as a disclosure, a forbidden promise, a wrong
/// person, and the thresholds. The policy thresholds are the ones the bot acts on, so QA checks
/// the bot against its own rules; `ringwise qa run` takes them from the dialog configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct GraderConfig {
    /// Phrases that tell the callee an automated assistant is calling; one must be in the bot's
    /// first turn (case-insensitive), and in its answer to "are you a robot?".
    pub disclosure_phrases: Vec<String>,
    /// Promises the bot must never make (English and Chinese); any bot turn containing one
    /// fails `no_forbidden_promises`.
    pub forbidden_phrases: Vec<String>,
    /// Caller phrases saying the bot reached the wrong person.
    pub wrong_person_phrases: Vec<String>,
    /// Sentiment thresholds, confidence floor and keyword sets of the dialogue policy.
    pub policy: PolicyConfig,
    /// A reply later than this (end of caller speech to first bot audio) is slow.
    pub v2v_threshold_ms: f64,
    /// Share of replies that must be on time for `latency` to pass.
    pub latency_pass_share: f64,
    /// The bot talked over the caller when its audio ran on this long after the caller began.
    pub talk_over_ms: i64,
    /// Most of the talking the bot may do (its share of bot + caller speech).
    pub max_bot_talk_share: f64,
    /// Largest fall of the caller's sentiment (first to last turn) that still passes `tone`.
    pub tone_max_drop: f32,
    /// More low-confidence clarifications than this in one call is a recognition failure.
    pub max_clarifications: usize,
}

impl Default for GraderConfig {
    fn default() -> Self {
        let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
        Self {
            disclosure_phrases: strings(&[
                "automated assistant",
                "virtual assistant",
                "automated call",
                "ai assistant",
                "digital assistant",
                "not a person",
                "not a real person",
                "智能助理",
                "语音助理",
                "智能客服",
                "机器人",
                "自动语音",
                "人工智能",
            ]),
            forbidden_phrases: strings(&[
                "guaranteed return",
                "guaranteed profit",
                "guaranteed approval",
                "risk-free",
                "risk free",
                "no risk at all",
                "you cannot lose",
                "you can't lose",
                "double your money",
                "保证收益",
                "保本保息",
                "稳赚不赔",
                "零风险",
                "无风险",
                "保证赔付",
                "百分之百赔付",
            ]),
            wrong_person_phrases: strings(&[
                "wrong number",
                "wrong person",
                "no one by that name",
                "nobody by that name",
                "you have the wrong",
                "打错了",
                "不是本人",
                "没有这个人",
            ]),
            policy: PolicyConfig::default(),
            v2v_threshold_ms: 1500.0,
            latency_pass_share: 0.9,
            talk_over_ms: 800,
            max_bot_talk_share: 0.85,
            tone_max_drop: 0.5,
            max_clarifications: 1,
        }
    }
}

impl GraderConfig {
    /// Rejects settings no grade could be right with.
    pub fn validate(&self) -> Result<(), QaError> {
        let bad = |what: &str| Err(QaError::InvalidInput(format!("qa.grader: {what}")));
        if self.disclosure_phrases.iter().all(|p| p.trim().is_empty()) {
            return bad(
                "disclosure_phrases is empty: list the words the bot discloses itself with",
            );
        }
        if self.v2v_threshold_ms.is_nan() || self.v2v_threshold_ms <= 0.0 {
            return bad("v2v_threshold_ms must be above 0");
        }
        if !(0.0..=1.0).contains(&self.latency_pass_share)
            || !(0.0..=1.0).contains(&self.max_bot_talk_share)
        {
            return bad("latency_pass_share and max_bot_talk_share are shares from 0 to 1");
        }
        Ok(())
    }
}

/// An extra grader for open criteria (e.g. a local LLM through `dialog::LanguageModel`), run
/// after the rules on every call. Its checks are stored under its own name, with criteria
/// prefixed `judge.` so they never replace a rule's; comparing them with the rules' checks is
/// how its agreement is measured. Errors are logged and the call keeps its rule grade.
pub trait Judge: Send + Sync {
    /// Stored as the grader of its checks (e.g. the model file and version).
    fn name(&self) -> &str;
    /// Grades one call, seeing the rules' checks.
    fn judge(&self, call: &CallView, rules: &[CheckResult]) -> Result<Vec<CheckResult>, QaError>;
}

/// The rule grader, with optional judges.
pub struct Grader {
    config: GraderConfig,
    judges: Vec<Box<dyn Judge>>,
}

impl std::fmt::Debug for Grader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Grader")
            .field("config", &self.config)
            .field(
                "judges",
                &self.judges.iter().map(|j| j.name()).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Grader {
    pub fn new(config: GraderConfig) -> Result<Self, QaError> {
        config.validate()?;
        Ok(Self {
            config,
            judges: Vec::new(),
        })
    }

    pub fn with_judge(mut self, judge: Box<dyn Judge>) -> Self {
        self.judges.push(judge);
        self
    }

    pub fn config(&self) -> &GraderConfig {
        &self.config
    }

    /// Whether a judge runs after the rules (grading then blocks on a model: keep it off the
    /// async runtime's threads).
    pub fn has_judges(&self) -> bool {
        !self.judges.is_empty()
    }

    /// Grades one call. Deterministic in the call and the configuration.
    pub fn grade(&self, call: &CallView, graded_at_ms: i64) -> CallGrade {
        let (mut checks, failures) = rubric::grade(call, &self.config);
        for judge in &self.judges {
            match judge.judge(call, &checks) {
                Ok(judged) => checks.extend(judged.into_iter().map(|mut c| {
                    if !c.criterion.starts_with("judge.") {
                        c.criterion = format!("judge.{}", c.criterion);
                    }
                    c.grader = judge.name().to_string();
                    c
                })),
                Err(e) => {
                    tracing::warn!(call_id = %call.id, judge = judge.name(), error = %e, "judge skipped")
                }
            }
        }
        CallGrade {
            call_id: call.id.clone(),
            grader: RULES_GRADER.to_string(),
            rubric_version: RUBRIC_VERSION.to_string(),
            checks,
            failures,
            graded_at_ms,
        }
    }
}

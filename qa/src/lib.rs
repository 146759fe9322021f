//! Offline grading of recorded calls, QA reports, and the training of propensity and segment
//! models from graded outcomes.
//!
//! Grading: [`transcript::CallView`] rebuilds a stored call turn by turn, [`grade::Grader`] runs
//! the rubric on it and names its failure reasons, [`run::grade_ungraded`] is `ringwise qa run`,
//! and [`report`] writes the HTML / JSON / CSV report.

pub mod config;
pub mod error;
pub mod experiment;
pub mod grade;
pub mod learning;
pub mod propensity;
pub mod report;
pub mod run;
pub mod segments;
pub mod synth;
pub mod transcript;

pub use config::QaConfig;
pub use error::QaError;
pub use grade::{CallGrade, FailureReason, Grader, GraderConfig, Judge, JudgeConfig, LlmJudge};
pub use report::{GradedCall, ModelComparison, Report};
pub use transcript::CallView;

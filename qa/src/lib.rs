//! Offline grading of recorded calls, QA reports, and the training of propensity and segment
//! models from graded outcomes. Filled in by the QA wave; for now it only names the crate.

pub mod propensity;
pub mod segments;

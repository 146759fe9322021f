//! `ringwise qa run`: grades every call the rule grader has not graded yet, page by page, and
//! stores each page's grades in one transaction (every call whole). A second run finds nothing
//! to do; a run that stops half-way leaves the rest ungraded for the next one. A grader with a
//! judge judges the calls it grades (calls graded before keep their rule grade only).

use crate::grade::{CallGrade, FailureReason, Grader, RULES_GRADER};
use crate::transcript::CallView;
use crate::QaError;
use retrieval::SqlStore;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Instant;

/// What a QA run did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct QaRunSummary {
    pub graded: usize,
    /// Calls by primary failure reason (`none` for calls without one).
    pub by_primary_failure: BTreeMap<String, usize>,
    pub checks_failed: usize,
    pub elapsed_s: f64,
}

/// Grades the ungraded calls of `store`, `page` calls per read and transaction, reporting
/// `(graded so far, total to grade)` to `progress` after each page.
pub async fn grade_ungraded(
    store: &SqlStore,
    grader: &Grader,
    page: usize,
    now_ms: i64,
    progress: &mut (dyn FnMut(usize, usize) + Send),
) -> Result<QaRunSummary, QaError> {
    let started = Instant::now();
    let total = store.count_ungraded_calls(RULES_GRADER).await?.max(0) as usize;
    let mut summary = QaRunSummary::default();
    progress(0, total);
    let mut after = String::new();
    loop {
        let ids = store
            .ungraded_call_ids(RULES_GRADER, &after, page.max(1) as i64)
            .await?;
        let Some(last) = ids.last() else { break };
        after = last.clone();
        let calls = store.qa_calls(&ids).await?;
        let grade_page = || -> Vec<CallGrade> {
            calls
                .iter()
                .map(|r| grader.grade(&CallView::from_record(r), now_ms))
                .collect()
        };
        // A judge blocks on its model for seconds per call: on a multi-threaded runtime the
        // worker hands its other tasks off first. Rules alone take microseconds.
        let multi_thread = tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
        let grades = if grader.has_judges() && multi_thread {
            tokio::task::block_in_place(grade_page)
        } else {
            grade_page()
        };
        let records: Vec<_> = grades.iter().map(CallGrade::to_record).collect();
        store.store_qa_grades(&records).await?;
        for g in &grades {
            *summary
                .by_primary_failure
                .entry(
                    g.primary_failure()
                        .map_or("none", FailureReason::as_str)
                        .to_string(),
                )
                .or_default() += 1;
            summary.checks_failed += g
                .checks
                .iter()
                .filter(|c| c.status == crate::grade::CheckStatus::Fail)
                .count();
        }
        summary.graded += grades.len();
        progress(summary.graded, total.max(summary.graded));
    }
    summary.elapsed_s = started.elapsed().as_secs_f64();
    tracing::info!(graded = summary.graded, "qa run done");
    Ok(summary)
}

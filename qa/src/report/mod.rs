//! QA reports people read: from graded calls, the figures ([`Report`]: rubric pass rates,
//! failure-reason Pareto, outcomes by segment, latency distribution, conversion by hour, an
//! optional model before/after, campaign experiments and the bandit's regret) and their files — a self-contained `index.html` with inline SVG
//! charts ([`charts`]) and one page per call with its transcript and evidence ([`html`]), plus
//! `report.json` and `calls.csv` ([`export`]). Phone numbers are masked everywhere; every text
//! from a call is escaped.

pub mod charts;
pub mod experiments;
pub mod export;
pub mod html;

use crate::grade::{CallGrade, CheckStatus, FailureReason};
use crate::transcript::CallView;
use crate::QaError;
use chrono::Timelike;
use retrieval::{PhoneNumber, PrivacyKeys, SqlStore};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// A call with its grade.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GradedCall {
    pub call: CallView,
    pub grade: CallGrade,
}

/// Report settings (`qa.report` in the configuration).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct ReportConfig {
    /// IANA zone the "conversion by hour" chart counts hours in.
    pub time_zone: String,
    /// Title of the report.
    pub title: String,
    /// Width of a latency histogram bin.
    pub latency_bin_ms: f64,
}

impl Default for ReportConfig {
    fn default() -> Self {
        Self {
            time_zone: "UTC".into(),
            title: "Ringwise call QA".into(),
            latency_bin_ms: 250.0,
        }
    }
}

impl ReportConfig {
    pub fn zone(&self) -> Result<chrono_tz::Tz, QaError> {
        self.time_zone.parse().map_err(|_| {
            QaError::InvalidInput(format!(
                "qa.report.time_zone {:?} is not an IANA time zone (e.g. \"Asia/Shanghai\", \"UTC\")",
                self.time_zone
            ))
        })
    }
}

/// How a model did before and after retraining, on the same held-out data. Filled by the
/// learning loop (`ringwise train` with QA labels); the report shows it when present.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelComparison {
    /// e.g. `propensity`.
    pub model: String,
    pub before_version: String,
    pub after_version: String,
    /// What both were evaluated on (e.g. "seeded 20% held-out split, 2,000 customers").
    pub evaluated_on: String,
    pub metrics: Vec<MetricDelta>,
    /// The new version became the active one.
    pub promoted: bool,
    pub note: String,
}

/// One metric before and after.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricDelta {
    pub name: String,
    pub before: f64,
    pub after: f64,
    pub higher_is_better: bool,
}

/// Totals over the report's calls.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Totals {
    pub calls: usize,
    /// Calls in the store that no grade covers yet (run `ringwise qa run`).
    pub ungraded: usize,
    pub answered: usize,
    pub converted: usize,
    /// Converted / answered.
    pub conversion_rate: f64,
    /// Mean of score / max score over calls with any applicable check.
    pub mean_score_pct: f64,
    /// Calls whose primary failure is the bot's (or compliance).
    pub bot_failures: usize,
}

/// Pass rate of one criterion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RubricRow {
    pub criterion: String,
    pub grader: String,
    pub applicable: usize,
    pub passed: usize,
    pub failed: usize,
    pub pass_rate: f64,
    pub mean_score: f64,
    pub max_score: f64,
}

/// Calls with one failure reason, in Pareto order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParetoRow {
    pub reason: FailureReason,
    pub class: crate::grade::FailureClass,
    /// Calls with this reason at all.
    pub calls: usize,
    /// Calls with it as the primary reason.
    pub primary: usize,
    /// Share of all reason mentions, and the running total.
    pub share: f64,
    pub cumulative: f64,
}

/// Outcomes of one segment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentRow {
    pub segment: String,
    pub calls: usize,
    pub outcomes: BTreeMap<String, usize>,
    pub conversion_rate: f64,
}

/// Voice-to-voice latency over every bot reply.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencySummary {
    pub replies: usize,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub threshold_ms: f64,
    pub over_threshold: usize,
    pub bin_ms: f64,
    /// Replies per bin: bin i covers [i·bin_ms, (i+1)·bin_ms).
    pub histogram: Vec<usize>,
}

/// Calls and conversions started in one hour of the day.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HourRow {
    pub hour: u32,
    pub calls: usize,
    pub answered: usize,
    pub converted: usize,
    /// Converted / answered.
    pub conversion_rate: f64,
}

/// One call's line in the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallRow {
    pub call_id: String,
    pub customer_id: String,
    /// Masked (`+86 138****1234`) or empty.
    pub phone: String,
    pub campaign_id: String,
    pub segment: String,
    pub language: String,
    pub started_at_ms: i64,
    pub hour: u32,
    pub duration_ms: i64,
    pub outcome: String,
    pub end_reason: String,
    pub score: f64,
    pub max_score: f64,
    pub checks_passed: usize,
    pub checks_failed: usize,
    pub failed_criteria: Vec<String>,
    pub primary_failure: Option<FailureReason>,
    pub failure_reasons: Vec<FailureReason>,
    pub v2v_p50_ms: Option<f64>,
    pub v2v_max_ms: Option<f64>,
    pub turns: usize,
    /// The call's page, relative to `index.html`.
    pub page: String,
}

/// Everything the report shows; `report.json` is this.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub title: String,
    pub generated_at_ms: i64,
    pub time_zone: String,
    pub totals: Totals,
    pub rubric: Vec<RubricRow>,
    pub failures: Vec<ParetoRow>,
    pub outcomes_by_segment: Vec<SegmentRow>,
    pub latency: LatencySummary,
    pub conversion_by_hour: Vec<HourRow>,
    /// Each LLM judge's agreement with the rules per criterion (empty without judge checks).
    #[serde(default)]
    pub judge_agreement: Vec<crate::grade::judge::Agreement>,
    /// The learning loop's before/after, rendered when present.
    pub model_comparison: Option<ModelComparison>,
    /// Campaign experiments (A/B arms, bandit choices) from the stored calls' arms.
    #[serde(default)]
    pub experiments: Vec<experiments::ExperimentSection>,
    /// The bandit's regret against a fixed split on simulated callees, rendered when present.
    #[serde(default)]
    pub regret: Option<crate::experiment::RegretCurve>,
    pub calls: Vec<CallRow>,
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let at = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[at.min(sorted.len() - 1)]
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

/// A file name for a call's page: its id with anything but `[A-Za-z0-9_-]` replaced, made
/// unique.
fn page_names(calls: &[GradedCall]) -> Vec<String> {
    let mut used: HashMap<String, usize> = HashMap::new();
    calls
        .iter()
        .map(|c| {
            let mut base: String = c
                .call
                .id
                .chars()
                .map(|ch| {
                    if ch.is_ascii_alphanumeric() || ch == '-' || ch == '_' {
                        ch
                    } else {
                        '_'
                    }
                })
                .take(80)
                .collect();
            if base.is_empty() {
                base.push_str("call");
            }
            let n = used.entry(base.clone()).or_default();
            *n += 1;
            if *n > 1 {
                base = format!("{base}-{n}");
            }
            format!("calls/{base}.html")
        })
        .collect()
}

/// Computes the report's figures.
pub fn build(
    calls: &[GradedCall],
    config: &ReportConfig,
    v2v_threshold_ms: f64,
    generated_at_ms: i64,
) -> Result<Report, QaError> {
    let tz = config.zone()?;
    let hour_of = |ms: i64| {
        chrono::DateTime::from_timestamp_millis(ms)
            .map(|t| t.with_timezone(&tz).hour())
            .unwrap_or(0)
    };
    let pages = page_names(calls);
    let mut totals = Totals {
        calls: calls.len(),
        ..Totals::default()
    };
    let mut score_pcts = Vec::new();
    let mut rubric: BTreeMap<(usize, String), RubricRow> = BTreeMap::new();
    let mut order: HashMap<String, usize> = HashMap::new();
    let mut pareto: HashMap<FailureReason, (usize, usize)> = HashMap::new();
    let mut segments: BTreeMap<String, SegmentRow> = BTreeMap::new();
    let mut hours: Vec<HourRow> = (0..24)
        .map(|hour| HourRow {
            hour,
            ..HourRow::default()
        })
        .collect();
    let mut v2v_all = Vec::new();
    let mut rows = Vec::with_capacity(calls.len());
    for (c, page) in calls.iter().zip(pages) {
        let (view, grade) = (&c.call, &c.grade);
        let answered = view.answered();
        let converted = view.outcome == "converted";
        totals.answered += usize::from(answered);
        totals.converted += usize::from(converted);
        if grade.max_score() > 0.0 {
            score_pcts.push(grade.score() / grade.max_score());
        }
        if grade
            .primary_failure()
            .is_some_and(FailureReason::is_bot_failure)
        {
            totals.bot_failures += 1;
        }
        for check in &grade.checks {
            let next = order.len();
            let pos = *order.entry(check.criterion.clone()).or_insert(next);
            let row = rubric
                .entry((pos, check.criterion.clone()))
                .or_insert_with(|| RubricRow {
                    criterion: check.criterion.clone(),
                    grader: check.grader.clone(),
                    applicable: 0,
                    passed: 0,
                    failed: 0,
                    pass_rate: 0.0,
                    mean_score: 0.0,
                    max_score: 0.0,
                });
            if check.status != CheckStatus::NotApplicable {
                row.applicable += 1;
                row.passed += usize::from(check.status == CheckStatus::Pass);
                row.failed += usize::from(check.status == CheckStatus::Fail);
                row.mean_score += check.score;
                row.max_score = row.max_score.max(check.max_score);
            }
        }
        for (i, f) in grade.failures.iter().enumerate() {
            let e = pareto.entry(f.reason).or_default();
            e.0 += 1;
            e.1 += usize::from(i == 0);
        }
        let seg = segments
            .entry(view.segment.clone())
            .or_insert_with(|| SegmentRow {
                segment: view.segment.clone(),
                calls: 0,
                outcomes: BTreeMap::new(),
                conversion_rate: 0.0,
            });
        seg.calls += 1;
        *seg.outcomes.entry(view.outcome.clone()).or_default() += 1;
        let hour = hour_of(view.started_at_ms);
        let h = &mut hours[hour as usize % 24];
        h.calls += 1;
        h.answered += usize::from(answered);
        h.converted += usize::from(converted);
        let mut v2v: Vec<f64> = view.v2v_ms().collect();
        v2v.sort_by(f64::total_cmp);
        v2v_all.extend_from_slice(&v2v);
        rows.push(CallRow {
            call_id: view.id.clone(),
            customer_id: view.customer_id.clone(),
            phone: view.phone_masked.clone().unwrap_or_default(),
            campaign_id: view.campaign_id.clone(),
            segment: view.segment.clone(),
            language: view.language.clone(),
            started_at_ms: view.started_at_ms,
            hour,
            duration_ms: view.duration_ms,
            outcome: view.outcome.clone(),
            end_reason: view.end_reason.clone(),
            score: grade.score(),
            max_score: grade.max_score(),
            checks_passed: grade
                .checks
                .iter()
                .filter(|c| c.status == CheckStatus::Pass)
                .count(),
            checks_failed: grade
                .checks
                .iter()
                .filter(|c| c.status == CheckStatus::Fail)
                .count(),
            failed_criteria: grade
                .checks
                .iter()
                .filter(|c| c.status == CheckStatus::Fail)
                .map(|c| c.criterion.clone())
                .collect(),
            primary_failure: grade.primary_failure(),
            failure_reasons: grade.failures.iter().map(|f| f.reason).collect(),
            v2v_p50_ms: (!v2v.is_empty()).then(|| percentile(&v2v, 50.0)),
            v2v_max_ms: v2v.last().copied(),
            turns: view.turns.len(),
            page,
        });
    }
    totals.conversion_rate = ratio(totals.converted, totals.answered);
    totals.mean_score_pct = if score_pcts.is_empty() {
        0.0
    } else {
        100.0 * score_pcts.iter().sum::<f64>() / score_pcts.len() as f64
    };
    let rubric = rubric
        .into_values()
        .map(|mut r| {
            r.pass_rate = ratio(r.passed, r.applicable);
            if r.applicable > 0 {
                r.mean_score /= r.applicable as f64;
            }
            r
        })
        .collect();
    let mut failures: Vec<ParetoRow> = pareto
        .into_iter()
        .map(|(reason, (n, primary))| ParetoRow {
            reason,
            class: reason.class(),
            calls: n,
            primary,
            share: 0.0,
            cumulative: 0.0,
        })
        .collect();
    failures.sort_by(|a, b| b.calls.cmp(&a.calls).then(a.reason.cmp(&b.reason)));
    let mentions: usize = failures.iter().map(|f| f.calls).sum();
    let mut running = 0;
    for f in &mut failures {
        running += f.calls;
        f.share = ratio(f.calls, mentions);
        f.cumulative = ratio(running, mentions);
    }
    let outcomes_by_segment = segments
        .into_values()
        .map(|mut s| {
            let converted = s.outcomes.get("converted").copied().unwrap_or(0);
            s.conversion_rate = ratio(converted, s.calls);
            s
        })
        .collect();
    for h in &mut hours {
        h.conversion_rate = ratio(h.converted, h.answered);
    }
    v2v_all.sort_by(f64::total_cmp);
    let bin_ms = config.latency_bin_ms.max(1.0);
    let max_ms = v2v_all.last().copied().unwrap_or(0.0);
    // Bins up to the 99th percentile or twice the threshold; slower replies share the last bin.
    let top = percentile(&v2v_all, 99.0).max(2.0 * v2v_threshold_ms);
    let n_bins = ((top / bin_ms).ceil() as usize).clamp(1, 200);
    let mut histogram = vec![0usize; n_bins];
    for v in &v2v_all {
        histogram[((v.max(0.0) / bin_ms) as usize).min(n_bins - 1)] += 1;
    }
    let latency = LatencySummary {
        replies: v2v_all.len(),
        p50_ms: percentile(&v2v_all, 50.0),
        p90_ms: percentile(&v2v_all, 90.0),
        p95_ms: percentile(&v2v_all, 95.0),
        p99_ms: percentile(&v2v_all, 99.0),
        max_ms,
        threshold_ms: v2v_threshold_ms,
        over_threshold: v2v_all.iter().filter(|v| **v > v2v_threshold_ms).count(),
        bin_ms,
        histogram,
    };
    Ok(Report {
        title: config.title.clone(),
        generated_at_ms,
        time_zone: config.time_zone.clone(),
        totals,
        rubric,
        failures,
        outcomes_by_segment,
        latency,
        conversion_by_hour: hours,
        judge_agreement: crate::grade::judge::agreement(
            calls.iter().map(|c| c.grade.checks.as_slice()),
        ),
        model_comparison: None,
        experiments: Vec::new(),
        regret: None,
        calls: rows,
    })
}

/// The files a report wrote.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportFiles {
    pub index: PathBuf,
    pub json: PathBuf,
    pub csv: PathBuf,
    pub call_pages: usize,
}

/// Writes `index.html`, `calls/*.html`, `report.json` and `calls.csv` into `dir`.
pub fn write(report: &Report, calls: &[GradedCall], dir: &Path) -> Result<ReportFiles, QaError> {
    let pages = dir.join("calls");
    std::fs::create_dir_all(&pages).map_err(|e| QaError::io(&pages, e))?;
    let index = dir.join("index.html");
    let write_file =
        |path: &Path, text: &str| std::fs::write(path, text).map_err(|e| QaError::io(path, e));
    write_file(&index, &html::index_page(report)?)?;
    for (call, row) in calls.iter().zip(&report.calls) {
        write_file(&dir.join(&row.page), &html::call_page(report, call, row))?;
    }
    let json = dir.join("report.json");
    write_file(&json, &export::json(report)?)?;
    let csv = dir.join("calls.csv");
    write_file(&csv, &export::csv(report)?)?;
    Ok(ReportFiles {
        index,
        json,
        csv,
        call_pages: report.calls.len(),
    })
}

/// Every call the rule grader has graded, with its grade, oldest first; phone numbers masked
/// with `keys` when given. Also says how many calls are not graded yet.
pub async fn load_graded(
    store: &SqlStore,
    keys: Option<&PrivacyKeys>,
) -> Result<(Vec<GradedCall>, usize), QaError> {
    let ids = store.all_call_ids().await?;
    let grades = store
        .qa_call_grades(crate::grade::RULES_GRADER, &ids)
        .await?;
    let graded_ids: Vec<String> = grades.iter().map(|g| g.call_id.clone()).collect();
    let records = store.qa_calls(&graded_ids).await?;
    let mut by_id: HashMap<String, retrieval::store::QaCallRecord> = records
        .into_iter()
        .map(|r| (r.call.id.clone(), r))
        .collect();
    let mut out = Vec::with_capacity(grades.len());
    for g in &grades {
        let Some(record) = by_id.remove(&g.call_id) else {
            continue;
        };
        let mut call = CallView::from_record(&record);
        if let (Some(keys), Some(sealed)) = (keys, &record.phone_sealed) {
            call.phone_masked = keys
                .decrypt(sealed)
                .ok()
                .and_then(|raw| PhoneNumber::parse(&raw, "").ok())
                .map(|p| p.to_string());
        }
        out.push(GradedCall {
            call,
            grade: CallGrade::from_record(g)?,
        });
    }
    let ungraded = ids.len().saturating_sub(out.len());
    Ok((out, ungraded))
}

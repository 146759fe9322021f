//! The report's machine-readable files: `report.json` (the whole [`Report`]) and `calls.csv`
//! (one row per call, phone numbers masked).

use super::Report;
use crate::QaError;

fn render_err<E: std::fmt::Display>(what: &'static str) -> impl FnOnce(E) -> QaError {
    move |e| QaError::Render {
        what: what.into(),
        message: e.to_string(),
    }
}

/// `report.json`: pretty-printed.
pub fn json(report: &Report) -> Result<String, QaError> {
    serde_json::to_string_pretty(report).map_err(render_err("report.json"))
}

/// `calls.csv`: a header and one row per call; lists are `;`-separated.
pub fn csv(report: &Report) -> Result<String, QaError> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "call_id",
        "customer_id",
        "phone",
        "campaign_id",
        "segment",
        "language",
        "started_at_ms",
        "hour",
        "duration_ms",
        "outcome",
        "end_reason",
        "score",
        "max_score",
        "checks_passed",
        "checks_failed",
        "failed_criteria",
        "primary_failure",
        "failure_reasons",
        "v2v_p50_ms",
        "v2v_max_ms",
        "turns",
        "page",
    ])
    .map_err(render_err("calls.csv"))?;
    let opt = |v: Option<f64>| v.map_or_else(String::new, |v| format!("{v:.0}"));
    for c in &report.calls {
        w.write_record([
            c.call_id.as_str(),
            &c.customer_id,
            &c.phone,
            &c.campaign_id,
            &c.segment,
            &c.language,
            &c.started_at_ms.to_string(),
            &c.hour.to_string(),
            &c.duration_ms.to_string(),
            &c.outcome,
            &c.end_reason,
            &format!("{:.2}", c.score),
            &format!("{:.2}", c.max_score),
            &c.checks_passed.to_string(),
            &c.checks_failed.to_string(),
            &c.failed_criteria.join(";"),
            c.primary_failure.map_or("", |r| r.as_str()),
            &c.failure_reasons
                .iter()
                .map(|r| r.as_str())
                .collect::<Vec<_>>()
                .join(";"),
            &opt(c.v2v_p50_ms),
            &opt(c.v2v_max_ms),
            &c.turns.to_string(),
            &c.page,
        ])
        .map_err(render_err("calls.csv"))?;
    }
    let bytes = w.into_inner().map_err(render_err("calls.csv"))?;
    String::from_utf8(bytes).map_err(render_err("calls.csv"))
}

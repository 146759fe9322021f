//! The HTML pages: `index.html` (figures, charts, rubric and failure tables, every call linked)
//! and one page per call (checks with evidence links to the transcript's turn anchors
//! `#turn-N`, failure reasons, the transcript). Self-contained: inline CSS and SVG, no script,
//! nothing fetched. Every text from a call is escaped and its phone numbers masked.

use super::{charts, CallRow, GradedCall, Report};
use crate::grade::CheckStatus;
use crate::transcript::Speaker;
use crate::QaError;
use std::fmt::Write as _;

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Words from a call: phone numbers masked, then escaped.
fn said(text: &str) -> String {
    escape(&retrieval::mask_phone_numbers(text))
}

const STYLE: &str = "body{font-family:sans-serif;margin:2em;color:#222;max-width:1100px}\
table{border-collapse:collapse;margin:1em 0;font-size:14px}\
th,td{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}\
th{background:#f3f3f3}.pass{color:#0a7d32}.fail{color:#b3261e;font-weight:bold}.na{color:#888}\
tr.bot td{background:#f6f9ff}tr.caller td{background:#fffdf4}tr:target td{outline:2px solid #e69f00}\
figure{margin:1em 0}.num{text-align:right}.muted{color:#666;font-size:13px}\
.better{color:#0a7d32}.worse{color:#b3261e}";

fn page_start(title: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{}</title><style>{STYLE}</style></head><body>\n",
        escape(title)
    )
}

fn pct(v: f64) -> String {
    format!("{:.1}%", 100.0 * v)
}

fn when(report: &Report, ms: i64) -> String {
    let tz: chrono_tz::Tz = report.time_zone.parse().unwrap_or(chrono_tz::UTC);
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.with_timezone(&tz).format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_default()
}

fn status_cell(status: CheckStatus) -> &'static str {
    match status {
        CheckStatus::Pass => "<td class=\"pass\">pass</td>",
        CheckStatus::Fail => "<td class=\"fail\">fail</td>",
        CheckStatus::NotApplicable => "<td class=\"na\">n/a</td>",
    }
}

/// The "judge vs rules agreement" table, when an LLM judge graded calls.
fn judge_agreement_section(h: &mut String, rows: &[crate::grade::judge::Agreement]) {
    if rows.is_empty() {
        return;
    }
    let _ = writeln!(
        h,
        "<section id=\"judge-agreement\"><h2>Judge vs rules agreement</h2>\
         <p class=\"muted\">The LLM judge's advisory verdict on each rule criterion against the \
         rules' (pass / fail / n/a); Cohen's kappa corrects for chance agreement.</p>\
         <table id=\"judge-agreement-table\"><thead><tr><th>criterion</th><th>judge</th>\
         <th>compared</th><th>agreed</th><th>raw</th><th>kappa</th><th>abstained</th>\
         </tr></thead><tbody>"
    );
    for a in rows {
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            escape(&a.criterion),
            escape(&a.judge),
            a.compared,
            a.agreed,
            if a.compared == 0 {
                "—".to_string()
            } else {
                pct(a.raw)
            },
            a.kappa.map_or("—".to_string(), |k| format!("{k:.2}")),
            a.abstained
        );
    }
    let _ = writeln!(h, "</tbody></table></section>");
}

/// `index.html`.
pub fn index_page(report: &Report) -> Result<String, QaError> {
    let t = &report.totals;
    let mut h = page_start(&report.title);
    let _ = writeln!(
        h,
        "<h1>{}</h1>\n<p class=\"muted\">Generated {} ({}). Report data: \
         <a href=\"report.json\">report.json</a>, <a href=\"calls.csv\">calls.csv</a>.</p>",
        escape(&report.title),
        when(report, report.generated_at_ms),
        escape(&report.time_zone)
    );
    let _ = writeln!(
        h,
        "<section id=\"summary\"><h2>Summary</h2><table><tbody>\
         <tr><th>Calls graded</th><td class=\"num\">{}</td></tr>\
         <tr><th>Not graded yet</th><td class=\"num\">{}</td></tr>\
         <tr><th>Answered</th><td class=\"num\">{}</td></tr>\
         <tr><th>Converted</th><td class=\"num\">{} ({} of answered)</td></tr>\
         <tr><th>Mean rubric score</th><td class=\"num\">{:.1}%</td></tr>\
         <tr><th>Calls lost to the bot (primary failure: bot or compliance)</th><td class=\"num\">{}</td></tr>\
         </tbody></table></section>",
        t.calls,
        t.ungraded,
        t.answered,
        t.converted,
        pct(t.conversion_rate),
        t.mean_score_pct,
        t.bot_failures
    );
    if let Some(m) = &report.model_comparison {
        let _ = writeln!(
            h,
            "<section id=\"model-comparison\"><h2>Model before / after: {}</h2>\
             <p>{} → {} on {}. {}</p><table><thead><tr><th>metric</th><th>before</th>\
             <th>after</th><th>change</th></tr></thead><tbody>",
            escape(&m.model),
            escape(&m.before_version),
            escape(&m.after_version),
            escape(&m.evaluated_on),
            if m.promoted {
                "Promoted: the new version is active."
            } else {
                "Not promoted: the previous version stays active."
            }
        );
        for d in &m.metrics {
            let better = (d.after > d.before) == d.higher_is_better && d.after != d.before;
            let _ = writeln!(
                h,
                "<tr><td>{}</td><td class=\"num\">{:.4}</td><td class=\"num\">{:.4}</td>\
                 <td class=\"num {}\">{:+.4}</td></tr>",
                escape(&d.name),
                d.before,
                d.after,
                if d.after == d.before {
                    ""
                } else if better {
                    "better"
                } else {
                    "worse"
                },
                d.after - d.before
            );
        }
        let _ = writeln!(
            h,
            "</tbody></table><p class=\"muted\">{}</p></section>",
            escape(&m.note)
        );
    }
    experiments_section(&mut h, report)?;
    let _ = writeln!(h, "<section id=\"charts\"><h2>Charts</h2>");
    for (id, svg) in [
        (
            "chart-outcomes-by-segment",
            charts::outcomes_by_segment(report)?,
        ),
        ("chart-failure-pareto", charts::failure_pareto(report)?),
        ("chart-latency", charts::latency_distribution(report)?),
        (
            "chart-conversion-by-hour",
            charts::conversion_by_hour(report)?,
        ),
    ] {
        let _ = writeln!(h, "<figure id=\"{id}\">{svg}</figure>");
    }
    let _ = writeln!(h, "</section>");

    let _ = writeln!(
        h,
        "<section id=\"rubric\"><h2>Rubric pass rates</h2><table id=\"rubric-table\"><thead><tr>\
         <th>criterion</th><th>grader</th><th>applicable</th><th>passed</th><th>failed</th>\
         <th>pass rate</th><th>mean score</th></tr></thead><tbody>"
    );
    for r in &report.rubric {
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{:.2} / {:.0}</td></tr>",
            escape(&r.criterion),
            escape(&r.grader),
            r.applicable,
            r.passed,
            r.failed,
            if r.applicable == 0 {
                "—".to_string()
            } else {
                pct(r.pass_rate)
            },
            r.mean_score,
            r.max_score
        );
    }
    let _ = writeln!(h, "</tbody></table></section>");
    judge_agreement_section(&mut h, &report.judge_agreement);

    let _ = writeln!(
        h,
        "<section id=\"failures\"><h2>Failure reasons</h2><table id=\"failure-table\"><thead><tr>\
         <th>reason</th><th>class</th><th>calls</th><th>as primary</th><th>share</th>\
         <th>cumulative</th></tr></thead><tbody>"
    );
    for f in &report.failures {
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{:?}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            f.reason.as_str(),
            f.class,
            f.calls,
            f.primary,
            pct(f.share),
            pct(f.cumulative)
        );
    }
    let _ = writeln!(h, "</tbody></table></section>");

    let l = &report.latency;
    let _ = writeln!(
        h,
        "<section id=\"latency\"><h2>Latency</h2><p>{} replies: p50 {:.0} ms, p90 {:.0} ms, \
         p95 {:.0} ms, p99 {:.0} ms, max {:.0} ms; {} over {:.0} ms.</p></section>",
        l.replies,
        l.p50_ms,
        l.p90_ms,
        l.p95_ms,
        l.p99_ms,
        l.max_ms,
        l.over_threshold,
        l.threshold_ms
    );

    let _ = writeln!(
        h,
        "<section id=\"calls\"><h2>Calls</h2><table id=\"calls-table\"><thead><tr><th>call</th>\
         <th>started</th><th>customer</th><th>phone</th><th>segment</th><th>outcome</th>\
         <th>score</th><th>failed checks</th><th>primary failure</th></tr></thead><tbody>"
    );
    for c in &report.calls {
        let _ = writeln!(
            h,
            "<tr><td><a class=\"call-link\" href=\"{}\">{}</a></td><td>{}</td><td>{}</td>\
             <td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{:.1} / {:.0}</td><td>{}</td><td>{}</td></tr>",
            escape(&c.page),
            escape(&c.call_id),
            when(report, c.started_at_ms),
            escape(&c.customer_id),
            escape(&c.phone),
            escape(&c.segment),
            escape(&c.outcome),
            c.score,
            c.max_score,
            escape(&c.failed_criteria.join(", ")),
            c.primary_failure.map_or("", |r| r.as_str())
        );
    }
    let _ = writeln!(h, "</tbody></table></section>\n</body></html>");
    Ok(h)
}

/// The experiments section: per experiment, the A/B arms with the comparison and its verdict,
/// and the bandit's plays; then the regret chart. Nothing when the report has neither.
fn experiments_section(h: &mut String, report: &Report) -> Result<(), QaError> {
    if report.experiments.is_empty() && report.regret.is_none() {
        return Ok(());
    }
    let _ = writeln!(h, "<section id=\"experiments\"><h2>Experiments</h2>");
    for e in &report.experiments {
        let _ = writeln!(
            h,
            "<h3>{} — campaign {}</h3>",
            escape(&e.experiment),
            escape(&e.campaign_id)
        );
        if let Some(ab) = &e.ab {
            let _ = writeln!(
                h,
                "<table class=\"ab-table\"><thead><tr><th>arm</th><th>calls</th>\
                 <th>converted</th><th>conversion</th></tr></thead><tbody>"
            );
            for a in &ab.arms {
                let _ = writeln!(
                    h,
                    "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
                     <td class=\"num\">{}</td></tr>",
                    escape(&a.arm),
                    a.calls,
                    a.conversions,
                    pct(a.conversion_rate)
                );
            }
            let _ = writeln!(h, "</tbody></table>");
            if let Some(c) = &ab.comparison {
                let _ = writeln!(
                    h,
                    "<p class=\"muted\">Difference (second − first) {:+.1} points, Newcombe 95% \
                     interval [{:.1}, {:.1}], two-sided p = {:.3} (pooled z-test).</p>",
                    100.0 * c.difference,
                    100.0 * c.ci_low,
                    100.0 * c.ci_high,
                    c.p_value
                );
            }
            let _ = writeln!(
                h,
                "<p class=\"ab-verdict\"><strong>{}</strong></p>",
                escape(&ab.verdict)
            );
        }
        if !e.bandit.is_empty() {
            let _ = writeln!(
                h,
                "<table class=\"bandit-table\"><thead><tr><th>choice point</th><th>segment</th>\
                 <th>variant</th><th>calls</th><th>share</th><th>converted</th><th>conversion</th>\
                 </tr></thead><tbody>"
            );
            for b in &e.bandit {
                let _ = writeln!(
                    h,
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td>\
                     <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
                    escape(&b.choice),
                    escape(&b.segment),
                    escape(&b.arm),
                    b.calls,
                    pct(b.share),
                    b.conversions,
                    pct(b.conversion_rate)
                );
            }
            let _ = writeln!(h, "</tbody></table>");
        }
    }
    if let Some(curve) = &report.regret {
        let _ = writeln!(
            h,
            "<figure id=\"chart-bandit-regret\">{}</figure><p id=\"regret-summary\">{}</p>\
             <p class=\"muted\">{}</p>",
            charts::regret(curve)?,
            escape(&super::experiments::regret_summary(curve)),
            escape(&curve.scenario)
        );
    }
    let _ = writeln!(h, "</section>");
    Ok(())
}

fn seconds(ms: Option<i64>) -> String {
    ms.map_or_else(|| "—".into(), |ms| format!("{:.1} s", ms as f64 / 1e3))
}

/// One call's page.
pub fn call_page(report: &Report, call: &GradedCall, row: &CallRow) -> String {
    let (v, g) = (&call.call, &call.grade);
    let mut h = page_start(&format!("Call {}", v.id));
    let _ = writeln!(
        h,
        "<p><a id=\"back\" href=\"../index.html\">← {}</a></p><h1>Call {}</h1>\
         <table id=\"facts\"><tbody>\
         <tr><th>Started</th><td>{}</td></tr><tr><th>Customer</th><td>{}</td></tr>\
         <tr><th>Phone</th><td>{}</td></tr><tr><th>Campaign</th><td>{}</td></tr>\
         <tr><th>Segment</th><td>{}</td></tr><tr><th>Language</th><td>{}</td></tr>\
         <tr><th>Duration</th><td>{}</td></tr><tr><th>Outcome</th><td>{} (end: {})</td></tr>\
         <tr><th>Score</th><td>{:.1} / {:.0}</td></tr></tbody></table>",
        escape(&report.title),
        escape(&v.id),
        when(report, v.started_at_ms),
        escape(&v.customer_id),
        escape(&row.phone),
        escape(&v.campaign_id),
        escape(&v.segment),
        escape(&v.language),
        seconds(Some(v.duration_ms)),
        escape(&v.outcome),
        escape(&v.end_reason),
        row.score,
        row.max_score
    );
    let _ = writeln!(
        h,
        "<h2>Checks</h2><table id=\"checks\"><thead><tr><th>criterion</th><th>result</th>\
         <th>score</th><th>notes</th><th>evidence</th></tr></thead><tbody>"
    );
    for c in &g.checks {
        let evidence: Vec<String> = c
            .evidence
            .iter()
            .map(|e| {
                format!(
                    "<a class=\"evidence\" href=\"#turn-{}\">turn {} @ {}</a> {}",
                    e.turn,
                    e.turn,
                    seconds(e.at_ms),
                    said(&e.note)
                )
            })
            .collect();
        let _ = writeln!(
            h,
            "<tr><td>{}</td>{}<td class=\"num\">{:.2} / {:.0}</td><td>{}</td><td>{}</td></tr>",
            escape(&c.criterion),
            status_cell(c.status),
            c.score,
            c.max_score,
            said(&c.notes),
            evidence.join("<br>")
        );
    }
    let _ = writeln!(h, "</tbody></table>");
    let _ = writeln!(h, "<h2>Failure reasons</h2><ol id=\"failures\">");
    if g.failures.is_empty() {
        let _ = writeln!(h, "<li class=\"muted\">none</li>");
    }
    for f in &g.failures {
        let link = f.evidence.as_ref().map_or_else(String::new, |e| {
            format!(
                " — <a class=\"evidence\" href=\"#turn-{}\">turn {}</a>",
                e.turn, e.turn
            )
        });
        let _ = writeln!(
            h,
            "<li><strong>{}</strong> ({:?}): {}{link}</li>",
            f.reason.as_str(),
            f.reason.class(),
            said(&f.detail)
        );
    }
    let _ = writeln!(
        h,
        "</ol><h2>Transcript</h2><table id=\"transcript\"><thead><tr><th>#</th><th>at</th>\
         <th>speaker</th><th>words</th><th>understood / did</th><th>v2v</th></tr></thead><tbody>"
    );
    for t in &v.turns {
        let (class, who) = match t.speaker {
            Speaker::Bot => ("bot", "bot"),
            Speaker::Caller => ("caller", "caller"),
        };
        let info = match t.speaker {
            Speaker::Caller => t.nlu.as_ref().map_or_else(String::new, |n| {
                format!(
                    "{} ({:.2}), sentiment {:+.2}{}",
                    n.intent.map_or("?", |i| i.as_str()),
                    n.confidence,
                    n.sentiment,
                    if n.keywords.is_empty() {
                        String::new()
                    } else {
                        format!(", keywords {}", n.keywords.join(" "))
                    }
                )
            }),
            Speaker::Bot => format!(
                "{}{}{}",
                t.action.as_deref().unwrap_or(""),
                t.rule
                    .as_deref()
                    .filter(|r| !r.is_empty() && Some(*r) != t.action.as_deref())
                    .map_or_else(String::new, |r| format!(" (rule {r})")),
                if t.interrupted {
                    " — interrupted"
                } else {
                    ""
                }
            ),
        };
        let _ = writeln!(
            h,
            "<tr id=\"turn-{}\" class=\"{class}\"><td>{}</td><td>{}</td><td>{who}</td><td>{}</td>\
             <td>{}</td><td class=\"num\">{}</td></tr>",
            t.index,
            t.index,
            seconds(t.at_ms),
            said(&t.text),
            said(&info),
            t.v2v_ms.map_or_else(String::new, |v| format!("{v:.0} ms"))
        );
    }
    let _ = writeln!(h, "</tbody></table>\n</body></html>");
    h
}

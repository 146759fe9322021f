//! Reports of a run: the terminal table, JUnit XML for CI systems ([`junit`]), and Markdown and
//! self-contained HTML summaries ([`html`]). All are pure functions of [`RunResults`].

pub mod html;
pub mod junit;

use crate::results::{percentile, RunResults, ScenarioResult, Verdict};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// One line of progress: `[ 12/48] pass  en/price_talk  34 ms`.
pub fn progress_line(done: usize, total: usize, r: &ScenarioResult) -> String {
    let width = total.to_string().len();
    let mut line = format!(
        "[{done:>width$}/{total}] {:<5} {}  {:.0} ms",
        r.verdict.as_str(),
        r.id,
        r.duration_ms
    );
    if let Some(f) = r.failures.first() {
        let _ = write!(line, "  — {}", clip(&f.to_string(), 110));
    }
    line
}

/// The terminal table: one row per scenario, then the totals.
pub fn table(r: &RunResults) -> String {
    let mut s = String::new();
    let id_w = r
        .scenarios
        .iter()
        .map(|s| s.id.chars().count())
        .max()
        .unwrap_or(8)
        .clamp(8, 48);
    let _ = writeln!(
        s,
        "{:<id_w$}  {:<4}  {:<7}  {:>5}  {:>9}  first failure",
        "scenario", "lang", "verdict", "turns", "max ms"
    );
    let _ = writeln!(s, "{}", "-".repeat(id_w + 44));
    for sc in &r.scenarios {
        let turns = sc.transcript.as_ref().map_or(0, |t| t.turns.len());
        let max = sc
            .max_latency_ms()
            .map_or_else(|| "-".to_string(), |m| format!("{m:.1}"));
        let first = sc
            .failures
            .first()
            .map_or_else(String::new, |f| clip(&f.to_string(), 90));
        let _ = writeln!(
            s,
            "{:<id_w$}  {:<4}  {:<7}  {:>5}  {:>9}  {first}",
            clip(&sc.id, id_w),
            sc.language,
            sc.verdict.as_str(),
            turns,
            max
        );
    }
    let _ = writeln!(s, "{}", "-".repeat(id_w + 44));
    let _ = write!(s, "{}", totals(r));
    s
}

/// The totals: verdicts, pass rate, speed, latency.
pub fn totals(r: &RunResults) -> String {
    let lat = r.latencies();
    format!(
        "{} scenarios ({} mode{}): {} passed, {} failed, {} errors — pass rate {:.1}%; {:.1} s wall, {:.2} scenarios/s on {} jobs; turn latency p50 {:.1} ms, p95 {:.1} ms{}\n",
        r.scenarios.len(),
        r.mode.as_str(),
        if r.label.is_empty() { String::new() } else { format!(", run {:?}", r.label) },
        r.passed(),
        r.count(Verdict::Fail),
        r.count(Verdict::Error),
        100.0 * r.pass_rate(),
        r.wall_s,
        r.scenarios_per_s(),
        r.jobs,
        percentile(&lat, 50.0),
        percentile(&lat, 95.0),
        if r.skipped.is_empty() {
            String::new()
        } else {
            format!("; {} scenarios do not run in this mode", r.skipped.len())
        }
    )
}

/// (passed, total) per group name.
pub type Counts = BTreeMap<String, (usize, usize)>;

/// Pass counts by tag and by language.
pub fn breakdown(r: &RunResults) -> (Counts, Counts) {
    let mut by_tag = Counts::new();
    let mut by_lang = Counts::new();
    for s in &r.scenarios {
        let pass = usize::from(s.verdict == Verdict::Pass);
        for t in &s.tags {
            let e = by_tag.entry(t.clone()).or_default();
            e.0 += pass;
            e.1 += 1;
        }
        let e = by_lang.entry(s.language.clone()).or_default();
        e.0 += pass;
        e.1 += 1;
    }
    (by_tag, by_lang)
}

/// The Markdown summary: totals, pass rates by language and tag, every failure with its
/// transcript.
pub fn markdown(r: &RunResults) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# Eval run{}\n",
        if r.label.is_empty() {
            String::new()
        } else {
            format!(": {}", r.label)
        }
    );
    let _ = writeln!(s, "Bot under test: {}\n", r.bot);
    let _ = writeln!(s, "{}", totals(r));
    let (by_tag, by_lang) = breakdown(r);
    let _ = writeln!(s, "| language | passed | scenarios |\n|---|---:|---:|");
    for (k, (p, n)) in &by_lang {
        let _ = writeln!(s, "| {k} | {p} | {n} |");
    }
    let _ = writeln!(s, "\n| tag | passed | scenarios |\n|---|---:|---:|");
    for (k, (p, n)) in &by_tag {
        let _ = writeln!(s, "| {k} | {p} | {n} |");
    }
    let _ = writeln!(s, "\n## Scenarios\n\n| scenario | lang | verdict | turns | max latency ms | first failure |\n|---|---|---|---:|---:|---|");
    for sc in &r.scenarios {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} |",
            md_cell(&sc.id),
            sc.language,
            sc.verdict.as_str(),
            sc.transcript.as_ref().map_or(0, |t| t.turns.len()),
            sc.max_latency_ms()
                .map_or_else(|| "-".into(), |m| format!("{m:.1}")),
            md_cell(
                &sc.failures
                    .first()
                    .map_or_else(String::new, |f| f.to_string())
            )
        );
    }
    let failing: Vec<&ScenarioResult> = r
        .scenarios
        .iter()
        .filter(|s| s.verdict != Verdict::Pass)
        .collect();
    if !failing.is_empty() {
        let _ = writeln!(s, "\n## Failures\n");
        for sc in failing {
            let _ = writeln!(
                s,
                "### {} ({})\n\n{}\n",
                sc.id,
                sc.verdict.as_str(),
                sc.file
            );
            for f in &sc.failures {
                let _ = writeln!(s, "- {}", md_cell(&f.to_string()));
            }
            if let Some(t) = &sc.transcript {
                let _ = writeln!(s, "\n```text\nbot: {}", t.greeting);
                for (i, o) in t.turns.iter().enumerate() {
                    let _ = writeln!(
                        s,
                        "caller {}: {}{}\n  → {} [{}] intent {} — {}",
                        i + 1,
                        if o.caller.is_empty() {
                            "(silence)"
                        } else {
                            &o.caller
                        },
                        o.heard
                            .as_ref()
                            .map_or_else(String::new, |h| format!(" (heard: {h})")),
                        o.action,
                        o.rule,
                        o.intent.as_deref().unwrap_or("-"),
                        o.reply
                    );
                }
                let _ = writeln!(s, "outcome: {}\n```\n", t.outcome);
            }
        }
    }
    let judged: Vec<&ScenarioResult> = r.scenarios.iter().filter(|s| !s.judge.is_empty()).collect();
    if !judged.is_empty() {
        let _ = writeln!(
            s,
            "\n## Judge criteria (not judged: no judge model is configured)\n"
        );
        for sc in judged {
            for c in &sc.judge {
                let _ = writeln!(s, "- {}: {}", sc.id, md_cell(c));
            }
        }
    }
    s
}

fn md_cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

/// At most `max` characters, with an ellipsis when cut.
pub fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let mut s: String = text.chars().take(max.saturating_sub(1)).collect();
        s.push('…');
        s
    }
}

//! A self-contained HTML summary (no scripts, no external files): totals, pass rates by language
//! and tag, a row per scenario with its transcript folded under it, failures first.

use crate::report::{breakdown, totals};
use crate::results::{RunResults, Verdict};
use std::fmt::Write as _;

/// The run as one HTML page.
pub fn html(r: &RunResults) -> String {
    let mut h = String::new();
    let title = if r.label.is_empty() {
        "Eval run".to_string()
    } else {
        format!("Eval run: {}", r.label)
    };
    let _ = writeln!(
        h,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title>\n<style>\
body{{font-family:system-ui,sans-serif;margin:2em;max-width:80em}}table{{border-collapse:collapse}}\
td,th{{border:1px solid #ccc;padding:.25em .5em;vertical-align:top;text-align:left}}\
.pass{{color:#176f2c}}.FAIL,.ERROR{{color:#b00020;font-weight:bold}}pre{{white-space:pre-wrap;background:#f6f6f6;padding:.5em}}\
</style></head><body>",
        esc(&title)
    );
    let _ = writeln!(
        h,
        "<h1>{}</h1>\n<p>Bot under test: {}</p>\n<p>{}</p>",
        esc(&title),
        esc(&r.bot),
        esc(&totals(r))
    );
    let (by_tag, by_lang) = breakdown(r);
    h.push_str("<h2>By language and tag</h2><table><tr><th>group</th><th>passed</th><th>scenarios</th></tr>\n");
    for (k, (p, n)) in by_lang.iter().chain(by_tag.iter()) {
        let _ = writeln!(h, "<tr><td>{}</td><td>{p}</td><td>{n}</td></tr>", esc(k));
    }
    h.push_str("</table>\n<h2>Scenarios</h2><table><tr><th>scenario</th><th>lang</th><th>verdict</th><th>max latency ms</th><th>failures and transcript</th></tr>\n");
    let mut order: Vec<_> = r.scenarios.iter().collect();
    order.sort_by_key(|s| (s.verdict == Verdict::Pass, s.id.clone()));
    for s in order {
        let v = s.verdict.as_str();
        let mut cell = String::new();
        if !s.failures.is_empty() {
            cell.push_str("<ul>");
            for f in &s.failures {
                let _ = write!(cell, "<li>{}</li>", esc(&f.to_string()));
            }
            cell.push_str("</ul>");
        }
        if let Some(t) = &s.transcript {
            let mut text = format!("bot: {}\n", t.greeting);
            for o in &t.turns {
                let _ = writeln!(
                    text,
                    "caller: {}{}\n  → {} [{}] intent {}{}\nbot: {}",
                    if o.caller.is_empty() {
                        "(silence)"
                    } else {
                        &o.caller
                    },
                    o.heard
                        .as_ref()
                        .map_or_else(String::new, |x| format!(" (heard: {x})")),
                    o.action,
                    o.rule,
                    o.intent.as_deref().unwrap_or("-"),
                    o.latency_ms
                        .map_or_else(String::new, |l| format!(", {l:.1} ms")),
                    o.reply
                );
            }
            let _ = writeln!(text, "outcome: {}", t.outcome);
            let _ = write!(
                cell,
                "<details><summary>transcript</summary><pre>{}</pre></details>",
                esc(&text)
            );
        }
        if !s.judge.is_empty() {
            let _ = write!(
                cell,
                "<p>judge criteria (not judged): {}</p>",
                esc(&s.judge.join("; "))
            );
        }
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td class=\"{v}\">{v}</td><td>{}</td><td>{cell}</td></tr>",
            esc(&s.id),
            esc(&s.language),
            s.max_latency_ms()
                .map_or_else(|| "-".into(), |m| format!("{m:.1}"))
        );
    }
    h.push_str("</table></body></html>\n");
    h
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

//! JUnit XML, the format CI systems (GitHub Actions reporters, GitLab, Jenkins) show as test
//! results: one `<testsuite>` per language, one `<testcase>` per scenario, a `<failure>` per
//! broken expectation set and an `<error>` for a crash or a bad file, the transcript in
//! `<system-out>`.

use crate::results::{RunResults, ScenarioResult, Verdict};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// The run as a JUnit XML document.
pub fn junit(r: &RunResults) -> String {
    let mut suites: BTreeMap<String, Vec<&ScenarioResult>> = BTreeMap::new();
    for s in &r.scenarios {
        let key = if s.language.is_empty() {
            "files".to_string()
        } else {
            s.language.clone()
        };
        suites.entry(key).or_default().push(s);
    }
    let count = |v: Verdict| r.scenarios.iter().filter(|s| s.verdict == v).count();
    let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        x,
        "<testsuites name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" time=\"{:.3}\">",
        esc(&format!(
            "ringwise evals ({} mode{})",
            r.mode.as_str(),
            if r.label.is_empty() {
                String::new()
            } else {
                format!(", {}", r.label)
            }
        )),
        r.scenarios.len(),
        count(Verdict::Fail),
        count(Verdict::Error),
        r.wall_s
    );
    for (lang, cases) in &suites {
        let time: f64 = cases.iter().map(|c| c.duration_ms / 1e3).sum();
        let _ = writeln!(
            x,
            "  <testsuite name=\"evals.{}.{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"0\" time=\"{time:.3}\">",
            r.mode.as_str(),
            esc(lang),
            cases.len(),
            cases.iter().filter(|c| c.verdict == Verdict::Fail).count(),
            cases.iter().filter(|c| c.verdict == Verdict::Error).count(),
        );
        let _ = writeln!(
            x,
            "    <properties><property name=\"bot\" value=\"{}\"/></properties>",
            esc(&r.bot)
        );
        for c in cases {
            let _ = write!(
                x,
                "    <testcase classname=\"evals.{}.{}\" name=\"{}\" file=\"{}\" time=\"{:.3}\"",
                r.mode.as_str(),
                esc(lang),
                esc(&c.id),
                esc(&c.file),
                c.duration_ms / 1e3
            );
            if c.verdict == Verdict::Pass && c.transcript.is_none() {
                x.push_str("/>\n");
                continue;
            }
            x.push_str(">\n");
            let body: String = c.failures.iter().map(|f| format!("{f}\n")).collect();
            match c.verdict {
                Verdict::Pass => {}
                Verdict::Fail => {
                    let _ = writeln!(
                        x,
                        "      <failure message=\"{}\" type=\"{}\">{}</failure>",
                        esc(&c
                            .failures
                            .first()
                            .map_or_else(String::new, |f| f.to_string())),
                        esc(&c
                            .failures
                            .first()
                            .map_or_else(String::new, |f| f.check.clone())),
                        esc(&body)
                    );
                }
                Verdict::Error => {
                    let _ = writeln!(
                        x,
                        "      <error message=\"{}\" type=\"{}\">{}</error>",
                        esc(&c
                            .failures
                            .first()
                            .map_or_else(String::new, |f| f.to_string())),
                        esc(&c
                            .failures
                            .first()
                            .map_or_else(String::new, |f| f.check.clone())),
                        esc(&body)
                    );
                }
            }
            if let Some(t) = &c.transcript {
                let mut out = format!("bot: {}\n", t.greeting);
                for o in &t.turns {
                    let _ = writeln!(
                        out,
                        "caller: {}\n  -> {} [{}]: {}",
                        o.caller, o.action, o.rule, o.reply
                    );
                }
                let _ = writeln!(out, "outcome: {}", t.outcome);
                let _ = writeln!(x, "      <system-out>{}</system-out>", esc(&out));
            }
            x.push_str("    </testcase>\n");
        }
        x.push_str("  </testsuite>\n");
    }
    x.push_str("</testsuites>\n");
    x
}

/// XML text and attribute escaping; characters XML 1.0 forbids are dropped.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
    out
}

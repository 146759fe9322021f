//! Two runs side by side (two models, two scripts, before and after a change): which scenarios
//! changed verdict, how their latency moved, and how far the bot's wording moved (normalized
//! character edit distance per reply), with the changed replies and actions next to each other.

use crate::results::{RunResults, ScenarioResult, Verdict};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// One scenario in both runs.
#[derive(Debug, Clone, Serialize)]
pub struct ScenarioDiff {
    pub id: String,
    pub verdict_a: Verdict,
    pub verdict_b: Verdict,
    pub latency_a_ms: Option<f64>,
    pub latency_b_ms: Option<f64>,
    /// Mean normalized edit distance between the two runs' replies, turn by turn (0 = same
    /// words, 1 = nothing in common).
    pub wording: f64,
    /// Turns (0 = greeting) whose action differs: (turn, a, b).
    pub actions: Vec<(usize, String, String)>,
    /// Turns whose reply differs: (turn, a, b).
    pub replies: Vec<(usize, String, String)>,
    pub outcome_a: String,
    pub outcome_b: String,
}

impl ScenarioDiff {
    pub fn verdict_changed(&self) -> bool {
        self.verdict_a != self.verdict_b
    }

    /// Passed in A, not in B.
    pub fn regressed(&self) -> bool {
        self.verdict_a == Verdict::Pass && self.verdict_b != Verdict::Pass
    }
}

/// Run A against run B.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub a: String,
    pub b: String,
    pub scenarios: Vec<ScenarioDiff>,
    pub only_in_a: Vec<String>,
    pub only_in_b: Vec<String>,
    pub pass_rate_a: f64,
    pub pass_rate_b: f64,
}

fn describe(r: &RunResults) -> String {
    let label = if r.label.is_empty() { "run" } else { &r.label };
    format!("{label} ({}; {} mode)", r.bot, r.mode.as_str())
}

/// Compares the scenarios two runs share.
pub fn compare(a: &RunResults, b: &RunResults) -> Comparison {
    let by_id = |r: &RunResults| -> BTreeMap<String, ScenarioResult> {
        r.scenarios
            .iter()
            .map(|s| (s.id.clone(), s.clone()))
            .collect()
    };
    let (ma, mb) = (by_id(a), by_id(b));
    let mut scenarios = Vec::new();
    for (id, sa) in &ma {
        let Some(sb) = mb.get(id) else { continue };
        let (ta, tb) = (
            sa.transcript.clone().unwrap_or_default(),
            sb.transcript.clone().unwrap_or_default(),
        );
        let ra: Vec<&str> = ta.replies().collect();
        let rb: Vec<&str> = tb.replies().collect();
        let n = ra.len().max(rb.len());
        let mut distance = 0.0;
        let mut replies = Vec::new();
        for i in 0..n {
            let (x, y) = (
                ra.get(i).copied().unwrap_or(""),
                rb.get(i).copied().unwrap_or(""),
            );
            let d = wording_distance(x, y);
            distance += d;
            if d > 0.0 {
                replies.push((i, x.to_string(), y.to_string()));
            }
        }
        let acts = |t: &crate::transcript::Transcript| -> Vec<String> {
            std::iter::once("greet".to_string())
                .chain(t.turns.iter().map(|o| o.action.clone()))
                .collect()
        };
        let (aa, ab) = (acts(&ta), acts(&tb));
        let actions = (0..aa.len().max(ab.len()))
            .filter_map(|i| {
                let (x, y) = (
                    aa.get(i).cloned().unwrap_or_default(),
                    ab.get(i).cloned().unwrap_or_default(),
                );
                (x != y).then_some((i, x, y))
            })
            .collect();
        scenarios.push(ScenarioDiff {
            id: id.clone(),
            verdict_a: sa.verdict,
            verdict_b: sb.verdict,
            latency_a_ms: sa.mean_latency_ms(),
            latency_b_ms: sb.mean_latency_ms(),
            wording: if n == 0 { 0.0 } else { distance / n as f64 },
            actions,
            replies,
            outcome_a: ta.outcome.clone(),
            outcome_b: tb.outcome.clone(),
        });
    }
    Comparison {
        a: describe(a),
        b: describe(b),
        only_in_a: ma
            .keys()
            .filter(|k| !mb.contains_key(*k))
            .cloned()
            .collect(),
        only_in_b: mb
            .keys()
            .filter(|k| !ma.contains_key(*k))
            .cloned()
            .collect(),
        scenarios,
        pass_rate_a: a.pass_rate(),
        pass_rate_b: b.pass_rate(),
    }
}

impl Comparison {
    /// Scenarios that passed in A and do not in B.
    pub fn regressions(&self) -> Vec<&ScenarioDiff> {
        self.scenarios.iter().filter(|s| s.regressed()).collect()
    }

    /// The comparison as Markdown (also readable in a terminal).
    pub fn markdown(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "# Eval comparison\n\n- A: {}\n- B: {}\n", self.a, self.b);
        let _ = writeln!(
            s,
            "Pass rate {:.1}% → {:.1}%; {} scenarios in both, {} changed verdict ({} regressed), {} changed wording, {} changed an action.\n",
            100.0 * self.pass_rate_a,
            100.0 * self.pass_rate_b,
            self.scenarios.len(),
            self.scenarios.iter().filter(|d| d.verdict_changed()).count(),
            self.regressions().len(),
            self.scenarios.iter().filter(|d| d.wording > 0.0).count(),
            self.scenarios.iter().filter(|d| !d.actions.is_empty()).count(),
        );
        let _ = writeln!(s, "| scenario | verdict A → B | mean latency ms A → B | wording distance | actions changed |\n|---|---|---|---:|---|");
        let mut rows: Vec<&ScenarioDiff> = self.scenarios.iter().collect();
        rows.sort_by(|x, y| {
            (y.regressed(), y.verdict_changed(), !y.actions.is_empty())
                .cmp(&(x.regressed(), x.verdict_changed(), !x.actions.is_empty()))
                .then(y.wording.total_cmp(&x.wording))
                .then(x.id.cmp(&y.id))
        });
        let ms = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |m| format!("{m:.1}"));
        for d in &rows {
            let _ = writeln!(
                s,
                "| {} | {}{} → {} | {} → {} | {:.3} | {} |",
                d.id,
                if d.regressed() { "**REGRESSED** " } else { "" },
                d.verdict_a.as_str(),
                d.verdict_b.as_str(),
                ms(d.latency_a_ms),
                ms(d.latency_b_ms),
                d.wording,
                d.actions
                    .iter()
                    .map(|(t, a, b)| format!("turn {t}: {a} → {b}"))
                    .collect::<Vec<_>>()
                    .join("; ")
            );
        }
        let changed: Vec<&&ScenarioDiff> = rows.iter().filter(|d| !d.replies.is_empty()).collect();
        if !changed.is_empty() {
            let _ = writeln!(s, "\n## Replies side by side\n");
            for d in changed {
                let _ = writeln!(
                    s,
                    "### {} (outcome {} → {})\n\n| turn | A | B |\n|---:|---|---|",
                    d.id, d.outcome_a, d.outcome_b
                );
                for (t, a, b) in &d.replies {
                    let _ = writeln!(
                        s,
                        "| {t} | {} | {} |",
                        a.replace('|', "\\|"),
                        b.replace('|', "\\|")
                    );
                }
                s.push('\n');
            }
        }
        for (which, ids) in [("A", &self.only_in_a), ("B", &self.only_in_b)] {
            if !ids.is_empty() {
                let _ = writeln!(s, "Only in {which}: {}", ids.join(", "));
            }
        }
        s
    }
}

/// Character edit distance divided by the longer length: 0 for equal texts, 1 for disjoint.
pub fn wording_distance(a: &str, b: &str) -> f64 {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let longest = a.len().max(b.len());
    if longest == 0 {
        return 0.0;
    }
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()] as f64 / longest as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wording_distance_is_normalized() {
        assert_eq!(wording_distance("abc", "abc"), 0.0);
        assert_eq!(wording_distance("", ""), 0.0);
        assert_eq!(wording_distance("abc", "xyz"), 1.0);
        assert!((wording_distance("kitten", "sitting") - 3.0 / 7.0).abs() < 1e-9);
        assert!((wording_distance("好的。", "好的！") - 1.0 / 3.0).abs() < 1e-9);
    }
}

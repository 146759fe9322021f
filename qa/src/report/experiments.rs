//! The report's experiments section: for each campaign experiment, conversion per A/B arm
//! compared with [`crate::experiment::compare`] (Newcombe 95% interval, p-value) and a verdict in
//! plain words, and what the bandit played per choice point, segment and variant; plus the
//! bandit's regret against a fixed split on simulated callees.

use crate::experiment::{compare, verdict, AbComparison, RegretCurve, Tally};
use retrieval::store::{CallArm, AB_CHOICE};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One arm's calls and conversions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArmRow {
    pub arm: String,
    pub calls: u64,
    pub conversions: u64,
    pub conversion_rate: f64,
}

/// The A/B split of an experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AbSection {
    /// In name order; the comparison is the second against the first.
    pub arms: Vec<ArmRow>,
    /// `None` until both arms have a call (or with other than two arms).
    pub comparison: Option<AbComparison>,
    pub verdict: String,
}

/// What a bandit played at one choice point for one segment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BanditRow {
    pub choice: String,
    pub segment: String,
    pub arm: String,
    pub calls: u64,
    pub conversions: u64,
    pub conversion_rate: f64,
    /// Share of the segment's calls at this choice point that played this variant.
    pub share: f64,
}

/// One experiment of one campaign.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExperimentSection {
    pub campaign_id: String,
    pub experiment: String,
    pub ab: Option<AbSection>,
    pub bandit: Vec<BanditRow>,
}

fn row(arm: &str, t: Tally) -> ArmRow {
    ArmRow {
        arm: arm.to_string(),
        calls: t.calls,
        conversions: t.conversions,
        conversion_rate: t.rate(),
    }
}

/// Groups stored call arms into one section per (campaign, experiment).
pub fn sections(arms: &[CallArm]) -> Vec<ExperimentSection> {
    type Key = (String, String);
    let mut ab: BTreeMap<Key, BTreeMap<String, Tally>> = BTreeMap::new();
    let mut bandit: BTreeMap<Key, BTreeMap<(String, String, String), Tally>> = BTreeMap::new();
    for a in arms {
        let key = (a.campaign_id.clone(), a.experiment.clone());
        let t = if a.choice == AB_CHOICE {
            ab.entry(key).or_default().entry(a.arm.clone()).or_default()
        } else {
            bandit
                .entry(key)
                .or_default()
                .entry((a.choice.clone(), a.segment.clone(), a.arm.clone()))
                .or_default()
        };
        t.calls += 1;
        t.conversions += u64::from(a.converted);
    }
    let mut keys: Vec<Key> = ab.keys().chain(bandit.keys()).cloned().collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .map(|key| {
            let ab_section = ab.get(&key).map(|arms| {
                let rows: Vec<ArmRow> = arms.iter().map(|(n, t)| row(n, *t)).collect();
                let pair: Vec<(&String, &Tally)> = arms.iter().collect();
                let comparison = match pair.as_slice() {
                    [(_, a), (_, b)] => compare(**a, **b).ok(),
                    _ => None,
                };
                let verdict = match (&comparison, pair.as_slice()) {
                    (Some(c), [(a, _), (b, _)]) => verdict(c, a, b),
                    _ => "Not enough calls yet: each arm needs at least one answered call.".into(),
                };
                AbSection {
                    arms: rows,
                    comparison,
                    verdict,
                }
            });
            let mut rows = Vec::new();
            if let Some(cells) = bandit.get(&key) {
                let mut totals: BTreeMap<(&str, &str), u64> = BTreeMap::new();
                for ((choice, segment, _), t) in cells {
                    *totals
                        .entry((choice.as_str(), segment.as_str()))
                        .or_default() += t.calls;
                }
                for ((choice, segment, arm), t) in cells {
                    let total = totals.get(&(choice.as_str(), segment.as_str())).copied();
                    rows.push(BanditRow {
                        choice: choice.clone(),
                        segment: segment.clone(),
                        arm: arm.clone(),
                        calls: t.calls,
                        conversions: t.conversions,
                        conversion_rate: t.rate(),
                        share: t.calls as f64 / total.unwrap_or(1).max(1) as f64,
                    });
                }
            }
            ExperimentSection {
                campaign_id: key.0,
                experiment: key.1,
                ab: ab_section,
                bandit: rows,
            }
        })
        .collect()
}

/// The regret summary in words, for the report and the command line.
pub fn regret_summary(curve: &RegretCurve) -> String {
    let s = &curve.summary;
    let saved = if s.fixed_split_regret > 0.0 {
        100.0 * (1.0 - s.bandit_regret / s.fixed_split_regret)
    } else {
        0.0
    };
    format!(
        "Over {} calls (mean of {} seeds) the bandit lost {:.1} expected conversions against \
         always playing each segment's best variant; a fixed equal split lost {:.1} ({saved:.0}% \
         less regret). Conversions: bandit {:.1}, fixed split {:.1}; in the last 20% of calls the \
         bandit played the best variant {:.0}% of the time.",
        s.calls,
        s.seeds,
        s.bandit_regret,
        s.fixed_split_regret,
        s.bandit_conversions,
        s.fixed_split_conversions,
        100.0 * s.bandit_best_share_late
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arm(call: usize, choice: &str, arm: &str, segment: &str, converted: bool) -> CallArm {
        CallArm {
            call_id: format!("c{call}"),
            customer_id: format!("u{call}"),
            campaign_id: "camp".into(),
            experiment: "exp".into(),
            choice: choice.into(),
            arm: arm.into(),
            segment: segment.into(),
            converted,
            by_bandit: choice != AB_CHOICE,
        }
    }

    #[test]
    fn arms_become_an_ab_comparison_and_bandit_rows() {
        let mut arms = Vec::new();
        for i in 0..400 {
            let b = i % 2 == 1;
            // A converts 5%, B 15%.
            let converted = if b { i % 20 < 6 } else { i % 40 == 0 };
            arms.push(arm(i, AB_CHOICE, if b { "B" } else { "A" }, "s", converted));
            arms.push(arm(
                i,
                "opening",
                if i % 4 == 0 { "v0" } else { "v1" },
                "s",
                converted,
            ));
        }
        let s = sections(&arms);
        assert_eq!(s.len(), 1);
        let ab = s[0].ab.as_ref().unwrap();
        assert_eq!(ab.arms.len(), 2);
        assert_eq!(ab.arms[0].calls, 200);
        assert!(ab.comparison.as_ref().unwrap().significant());
        assert!(ab.verdict.starts_with("B converts"), "{}", ab.verdict);
        assert_eq!(s[0].bandit.len(), 2);
        assert!((s[0].bandit[0].share - 0.25).abs() < 1e-9);
        // One arm only: no comparison, a clear verdict.
        let one: Vec<CallArm> = arms.iter().filter(|a| a.arm == "A").cloned().collect();
        let s = sections(&one);
        assert!(s[0].ab.as_ref().unwrap().comparison.is_none());
    }
}

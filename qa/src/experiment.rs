//! Experiments on campaigns: an A/B comparison of two conversion rates with a confidence
//! interval, and a Thompson-sampling bandit per segment that learns which of a script's variants
//! (opening line, pitch order, what to say after a first refusal) converts best.
//!
//! The bandit keeps a Beta(1 + conversions, 1 + misses) posterior per (segment, variant) and
//! plays the variant whose posterior draw is highest; [`simulate_regret`] measures its regret
//! against a fixed equal split on seeded simulated callees whose true rates are known.

use crate::QaError;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Beta, Distribution};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Conversions out of calls for one arm of an experiment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Tally {
    pub calls: u64,
    pub conversions: u64,
}

impl Tally {
    pub fn rate(&self) -> f64 {
        if self.calls == 0 {
            0.0
        } else {
            self.conversions as f64 / self.calls as f64
        }
    }
}

/// B against A: the difference of conversion rates with its 95% interval (Newcombe's hybrid
/// score interval, from Wilson intervals of each rate: it keeps its coverage at the low rates
/// and small counts outbound campaigns have) and a two-sided p-value (pooled z-test).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AbComparison {
    pub a: Tally,
    pub b: Tally,
    /// rate(B) − rate(A).
    pub difference: f64,
    pub ci_low: f64,
    pub ci_high: f64,
    pub p_value: f64,
}

impl AbComparison {
    /// Whether the interval excludes no difference.
    pub fn significant(&self) -> bool {
        self.ci_low > 0.0 || self.ci_high < 0.0
    }
}

const Z95: f64 = 1.959_963_984_540_054;

/// Wilson score interval of a proportion at 95%.
fn wilson(t: Tally) -> (f64, f64) {
    let n = t.calls as f64;
    let p = t.rate();
    let z2 = Z95 * Z95;
    let centre = (p + z2 / (2.0 * n)) / (1.0 + z2 / n);
    let half = Z95 * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt() / (1.0 + z2 / n);
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

/// Standard normal CDF (Abramowitz–Stegun 7.1.26 on erf; error < 1.5e-7).
fn normal_cdf(x: f64) -> f64 {
    let t = 1.0 / (1.0 + 0.327_591_1 * x.abs() / std::f64::consts::SQRT_2);
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let erf = 1.0 - poly * (-(x * x) / 2.0).exp();
    if x >= 0.0 {
        0.5 * (1.0 + erf)
    } else {
        0.5 * (1.0 - erf)
    }
}

/// Compares B with A. Both arms need at least one call, and conversions cannot exceed calls.
pub fn compare(a: Tally, b: Tally) -> Result<AbComparison, QaError> {
    for (name, t) in [("A", a), ("B", b)] {
        if t.calls == 0 {
            return Err(QaError::InvalidInput(format!(
                "A/B comparison: arm {name} has no calls"
            )));
        }
        if t.conversions > t.calls {
            return Err(QaError::InvalidInput(format!(
                "A/B comparison: arm {name} has {} conversions in {} calls",
                t.conversions, t.calls
            )));
        }
    }
    let (pa, pb) = (a.rate(), b.rate());
    let (la, ua) = wilson(a);
    let (lb, ub) = wilson(b);
    let d = pb - pa;
    let ci_low = d - ((pb - lb).powi(2) + (ua - pa).powi(2)).sqrt();
    let ci_high = d + ((ub - pb).powi(2) + (pa - la).powi(2)).sqrt();
    let pooled = (a.conversions + b.conversions) as f64 / (a.calls + b.calls) as f64;
    let se = (pooled * (1.0 - pooled) * (1.0 / a.calls as f64 + 1.0 / b.calls as f64)).sqrt();
    let p_value = if se == 0.0 {
        1.0
    } else {
        2.0 * (1.0 - normal_cdf((d / se).abs()))
    };
    Ok(AbComparison {
        a,
        b,
        difference: d,
        ci_low,
        ci_high,
        p_value,
    })
}

/// Thompson sampling over a script's variants, one posterior per segment: segments differ in
/// what works (a price-sensitive segment may answer a discount-first pitch, another a
/// quality-first one).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ThompsonBandit {
    variants: Vec<String>,
    /// segment → per-variant tallies.
    arms: BTreeMap<String, Vec<Tally>>,
}

impl ThompsonBandit {
    pub fn new(variants: Vec<String>) -> Result<Self, QaError> {
        if variants.len() < 2 {
            return Err(QaError::InvalidInput(
                "a bandit needs at least two script variants".into(),
            ));
        }
        Ok(Self {
            variants,
            arms: BTreeMap::new(),
        })
    }

    pub fn variants(&self) -> &[String] {
        &self.variants
    }

    /// The tallies of a segment so far (zeros for a segment never seen).
    pub fn tallies(&self, segment: &str) -> Vec<Tally> {
        self.arms
            .get(segment)
            .cloned()
            .unwrap_or_else(|| vec![Tally::default(); self.variants.len()])
    }

    /// The variant (index) to play for a customer of `segment`: the best draw from each
    /// variant's Beta(1 + conversions, 1 + misses) posterior.
    pub fn choose(&self, segment: &str, rng: &mut impl Rng) -> usize {
        let tallies = self.tallies(segment);
        let mut best = (0, f64::MIN);
        for (i, t) in tallies.iter().enumerate() {
            let alpha = 1.0 + t.conversions as f64;
            let beta = 1.0 + (t.calls - t.conversions) as f64;
            // Both parameters are ≥ 1, so the distribution always exists.
            let draw = Beta::new(alpha, beta).map_or(0.5, |d| d.sample(rng));
            if draw > best.1 {
                best = (i, draw);
            }
        }
        best.0
    }

    /// Sets a segment's counts for one variant (a bandit whose state is kept elsewhere, e.g. in
    /// SQL, is rebuilt this way); a variant out of range is ignored.
    pub fn set_tally(&mut self, segment: &str, variant: usize, tally: Tally) {
        if let Some(t) = self.tally_mut(segment, variant) {
            *t = tally;
        }
    }

    /// A segment's counts for one variant (the segment starts from the prior), if in range.
    fn tally_mut(&mut self, segment: &str, variant: usize) -> Option<&mut Tally> {
        let n = self.variants.len();
        self.arms
            .entry(segment.to_string())
            .or_insert_with(|| vec![Tally::default(); n])
            .get_mut(variant)
    }

    /// Records a call's outcome for the variant played.
    pub fn record(&mut self, segment: &str, variant: usize, converted: bool) {
        if let Some(t) = self.tally_mut(segment, variant) {
            t.calls += 1;
            t.conversions += u64::from(converted);
        }
    }
}

/// Regret of the bandit and of a fixed equal split on the same simulated callees.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegretReport {
    pub calls: usize,
    pub seeds: u64,
    /// Expected conversions lost against always playing each segment's best variant, mean over
    /// seeds.
    pub bandit_regret: f64,
    pub fixed_split_regret: f64,
    pub bandit_conversions: f64,
    pub fixed_split_conversions: f64,
    /// Share of the bandit's last 20% of calls that played the segment's best variant.
    pub bandit_best_share_late: f64,
}

/// Simulates `calls` callees per seed: each belongs to a segment drawn with `segment_weights`
/// and converts with the true rate of (segment, variant played), `true_rates[segment][variant]`.
/// The bandit learns online; the fixed split plays variants in turn.
pub fn simulate_regret(
    true_rates: &[Vec<f64>],
    segment_weights: &[f64],
    calls: usize,
    seeds: u64,
) -> Result<RegretReport, QaError> {
    Ok(regret_curve(true_rates, segment_weights, calls, seeds, 1)?.summary)
}

/// Cumulative regret call by call, mean over seeds, for the report's chart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegretCurve {
    /// Calls so far at each point (ascending, ends at the total).
    pub at_calls: Vec<usize>,
    /// Expected conversions lost so far by the bandit, and by the fixed equal split.
    pub bandit: Vec<f64>,
    pub fixed_split: Vec<f64>,
    pub summary: RegretReport,
    /// What was simulated, in words (segments, true rates, seeds).
    pub scenario: String,
}

/// [`simulate_regret`] with the cumulative regrets sampled at about `points` evenly spaced call
/// counts.
pub fn regret_curve(
    true_rates: &[Vec<f64>],
    segment_weights: &[f64],
    calls: usize,
    seeds: u64,
    points: usize,
) -> Result<RegretCurve, QaError> {
    let variants = true_rates.first().map_or(0, Vec::len);
    if true_rates.is_empty()
        || true_rates.len() != segment_weights.len()
        || true_rates.iter().any(|r| r.len() != variants)
    {
        return Err(QaError::InvalidInput(
            "simulation: one row of true rates per segment, the same variants in each".into(),
        ));
    }
    if true_rates
        .iter()
        .flatten()
        .any(|r| !(0.0..=1.0).contains(r))
        || segment_weights.iter().any(|w| !w.is_finite() || *w < 0.0)
    {
        return Err(QaError::InvalidInput(
            "simulation: true rates lie in 0–1 and segment weights are not negative".into(),
        ));
    }
    let total_weight: f64 = segment_weights.iter().sum();
    let best: Vec<f64> = true_rates
        .iter()
        .map(|r| r.iter().copied().fold(0.0, f64::max))
        .collect();
    let names: Vec<String> = (0..variants).map(|v| format!("v{v}")).collect();
    let step = (calls / points.max(1)).max(1);
    let at_calls: Vec<usize> = (1..=calls)
        .filter(|c| c % step == 0 || *c == calls)
        .collect();
    let mut curve_b = vec![0.0; at_calls.len()];
    let mut curve_f = vec![0.0; at_calls.len()];
    let (mut regret_b, mut regret_f, mut conv_b, mut conv_f, mut late_best) =
        (0.0, 0.0, 0.0, 0.0, 0.0);
    for seed in 0..seeds {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut bandit = ThompsonBandit::new(names.clone())?;
        let (mut late, mut late_calls) = (0usize, 0usize);
        let (mut seed_b, mut seed_f, mut point) = (0.0, 0.0, 0);
        for call in 0..calls {
            let mut x = rng.random::<f64>() * total_weight;
            let mut segment = 0;
            while segment + 1 < segment_weights.len() && x >= segment_weights[segment] {
                x -= segment_weights[segment];
                segment += 1;
            }
            let key = format!("s{segment}");
            let played = bandit.choose(&key, &mut rng);
            let rate = true_rates[segment][played];
            let converted = rng.random::<f64>() < rate;
            bandit.record(&key, played, converted);
            seed_b += best[segment] - rate;
            conv_b += f64::from(u8::from(converted));
            if call >= calls * 4 / 5 {
                late_calls += 1;
                late += usize::from(rate >= best[segment]);
            }
            // The fixed split, on the same callee (same segment), with its own coin.
            let fixed = call % variants;
            let rate_f = true_rates[segment][fixed];
            seed_f += best[segment] - rate_f;
            conv_f += f64::from(u8::from(rng.random::<f64>() < rate_f));
            if at_calls.get(point) == Some(&(call + 1)) {
                curve_b[point] += seed_b;
                curve_f[point] += seed_f;
                point += 1;
            }
        }
        regret_b += seed_b;
        regret_f += seed_f;
        late_best += late as f64 / late_calls.max(1) as f64;
    }
    let s = seeds.max(1) as f64;
    for v in curve_b.iter_mut().chain(curve_f.iter_mut()) {
        *v /= s;
    }
    let rates: Vec<String> = true_rates
        .iter()
        .zip(segment_weights)
        .enumerate()
        .map(|(i, (r, w))| {
            let r: Vec<String> = r.iter().map(|x| format!("{:.0}%", 100.0 * x)).collect();
            format!("s{i} (weight {w}): {}", r.join(" / "))
        })
        .collect();
    Ok(RegretCurve {
        at_calls,
        bandit: curve_b,
        fixed_split: curve_f,
        summary: RegretReport {
            calls,
            seeds,
            bandit_regret: regret_b / s,
            fixed_split_regret: regret_f / s,
            bandit_conversions: conv_b / s,
            fixed_split_conversions: conv_f / s,
            bandit_best_share_late: late_best / s,
        },
        scenario: format!(
            "{calls} simulated callees × {seeds} seeds; true conversion per variant v0 / v1 / …: {}",
            rates.join("; ")
        ),
    })
}

/// The simulated callees the report's regret chart and the `bandit.regret_vs_fixed_split`
/// benchmark use: three segments that answer three script variants differently (price-sensitive
/// callees convert best on the saving-first variant v1, quality-oriented ones on the cover-first
/// v0, the rest on v2), the rates of the size the demo campaign converts at.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegretScenario {
    pub true_rates: Vec<Vec<f64>>,
    pub segment_weights: Vec<f64>,
    pub calls: usize,
    pub seeds: u64,
}

impl Default for RegretScenario {
    fn default() -> Self {
        Self {
            true_rates: vec![
                vec![0.06, 0.11, 0.07],
                vec![0.12, 0.06, 0.08],
                vec![0.08, 0.07, 0.10],
            ],
            segment_weights: vec![0.4, 0.4, 0.2],
            calls: 5000,
            seeds: 20,
        }
    }
}

impl RegretScenario {
    /// Runs the scenario, sampled at 100 points.
    pub fn run(&self) -> Result<RegretCurve, QaError> {
        regret_curve(
            &self.true_rates,
            &self.segment_weights,
            self.calls,
            self.seeds,
            100,
        )
    }
}

/// 0.84: the one-sided z of 80% power.
const Z_POWER80: f64 = 0.841_621_233_572_914_3;

/// Calls per arm a two-sided 5% test needs to detect a true difference `d` between rates near
/// `pa` and `pa + d` with 80% power (normal approximation).
pub fn calls_per_arm_to_detect(pa: f64, d: f64) -> u64 {
    let d = d.abs().max(1e-4);
    let pb = (pa + d).clamp(0.0, 1.0);
    let var = pa * (1.0 - pa) + pb * (1.0 - pb);
    ((Z95 + Z_POWER80).powi(2) * var / (d * d)).ceil() as u64
}

/// A verdict in plain words for a comparison of arm `b` against arm `a`: the difference in
/// percentage points with its 95% interval when it is significant; otherwise that there is no
/// significant difference yet and about how many more calls would show one of the observed size
/// (at least 1 point) with 80% power.
pub fn verdict(c: &AbComparison, a: &str, b: &str) -> String {
    let pts = |x: f64| 100.0 * x;
    if c.significant() {
        let (better, worse, d, lo, hi) = if c.difference > 0.0 {
            (b, a, c.difference, c.ci_low, c.ci_high)
        } else {
            (a, b, -c.difference, -c.ci_high, -c.ci_low)
        };
        format!(
            "{better} converts {:.1} points better than {worse}, 95% CI [{:.1}, {:.1}] (p = {:.3}).",
            pts(d),
            pts(lo),
            pts(hi),
            c.p_value
        )
    } else {
        let target = c.difference.abs().max(0.01);
        let need = calls_per_arm_to_detect(c.a.rate().min(c.b.rate()), target);
        // What each arm still lacks, added up (arms of unequal size lack different amounts).
        let more = need.saturating_sub(c.a.calls) + need.saturating_sub(c.b.calls);
        format!(
            "No significant difference yet: {b} − {a} = {:+.1} points, 95% CI [{:.1}, {:.1}] (p = {:.2}); \
             need ~{more} more calls ({need} per arm) to detect a {:.1}-point difference.",
            pts(c.difference),
            pts(c.ci_low),
            pts(c.ci_high),
            c.p_value,
            pts(target)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clear_difference_is_significant_and_equal_rates_are_not() {
        let a = Tally {
            calls: 2000,
            conversions: 100,
        };
        let b = Tally {
            calls: 2000,
            conversions: 160,
        };
        let c = compare(a, b).unwrap();
        assert!((c.difference - 0.03).abs() < 1e-12);
        assert!(c.significant() && c.ci_low > 0.0 && c.ci_low < 0.03 && c.ci_high > 0.03);
        assert!(c.p_value < 0.001, "{c:?}");
        let same = compare(a, a).unwrap();
        assert!(!same.significant());
        assert!((same.p_value - 1.0).abs() < 1e-6);
        // Small counts: wide, and the interval stays inside [-1, 1].
        let small = compare(
            Tally {
                calls: 10,
                conversions: 0,
            },
            Tally {
                calls: 10,
                conversions: 2,
            },
        )
        .unwrap();
        assert!(!small.significant() && small.ci_low >= -1.0 && small.ci_high <= 1.0);
    }

    #[test]
    fn verdicts_say_the_difference_or_how_many_calls_are_missing() {
        let t = |calls, conversions| Tally { calls, conversions };
        let v = verdict(&compare(t(2000, 100), t(2000, 160)).unwrap(), "A", "B");
        assert!(
            v.starts_with("B converts 3.0 points better than A, 95% CI ["),
            "{v}"
        );
        let v = verdict(&compare(t(2000, 160), t(2000, 100)).unwrap(), "A", "B");
        assert!(v.starts_with("A converts 3.0 points better than B"), "{v}");
        let v = verdict(&compare(t(100, 5), t(100, 7)).unwrap(), "A", "B");
        assert!(v.starts_with("No significant difference yet"), "{v}");
        assert!(v.contains("more calls"), "{v}");
        // Unequal arms: each lacks its own share (2 and 4 calls of 8 per arm: 6 + 4 more).
        let v = verdict(&compare(t(2, 1), t(4, 0)).unwrap(), "A", "B");
        let need = calls_per_arm_to_detect(0.0, 0.5);
        let more = (need - 2) + (need - 4);
        assert!(
            v.contains(&format!("need ~{more} more calls ({need} per arm)")),
            "{v}"
        );
        // 5% vs 7%: about 2,200 calls per arm (the textbook figure).
        let n = calls_per_arm_to_detect(0.05, 0.02);
        assert!((2000..2400).contains(&n), "{n}");
    }

    #[test]
    fn the_default_scenario_favours_the_bandit() {
        let c = RegretScenario::default().run().unwrap();
        assert!(
            c.summary.bandit_regret < c.summary.fixed_split_regret,
            "{:?}",
            c.summary
        );
        assert_eq!(c.at_calls.len(), c.bandit.len());
    }

    #[test]
    fn bad_tallies_are_refused() {
        let none = Tally::default();
        let ok = Tally {
            calls: 5,
            conversions: 1,
        };
        assert!(compare(none, ok)
            .unwrap_err()
            .to_string()
            .contains("no calls"));
        let bad = Tally {
            calls: 1,
            conversions: 2,
        };
        assert!(compare(ok, bad).is_err());
        assert!(ThompsonBandit::new(vec!["only".into()]).is_err());
        assert!(simulate_regret(&[vec![0.1, 0.2]], &[1.0, 1.0], 10, 1).is_err());
    }

    #[test]
    fn the_bandit_learns_each_segments_best_variant_with_less_regret_than_a_fixed_split() {
        // Two segments that prefer different variants (discount-first vs quality-first).
        let rates = vec![vec![0.04, 0.10, 0.06], vec![0.12, 0.05, 0.05]];
        let r = simulate_regret(&rates, &[0.6, 0.4], 4000, 8).unwrap();
        assert!(
            r.bandit_regret < 0.5 * r.fixed_split_regret,
            "bandit {:.1} vs fixed {:.1}",
            r.bandit_regret,
            r.fixed_split_regret
        );
        assert!(r.bandit_best_share_late > 0.8, "{r:?}");
        assert!(r.bandit_conversions > r.fixed_split_conversions);
        // The curve ends at the totals and never decreases.
        let curve = regret_curve(&rates, &[0.6, 0.4], 4000, 8, 50).unwrap();
        assert_eq!(curve.summary, r);
        assert_eq!(curve.at_calls.last(), Some(&4000));
        assert!((curve.bandit.last().unwrap() - r.bandit_regret).abs() < 1e-6);
        assert!(curve.bandit.windows(2).all(|w| w[1] >= w[0]));
        // Seeded: the same run twice is the same.
        assert_eq!(r, simulate_regret(&rates, &[0.6, 0.4], 4000, 8).unwrap());
    }
}

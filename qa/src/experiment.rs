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

    /// Records a call's outcome for the variant played.
    pub fn record(&mut self, segment: &str, variant: usize, converted: bool) {
        let n = self.variants.len();
        let arms = self
            .arms
            .entry(segment.to_string())
            .or_insert_with(|| vec![Tally::default(); n]);
        if let Some(t) = arms.get_mut(variant) {
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
    let variants = true_rates.first().map_or(0, Vec::len);
    if true_rates.is_empty()
        || true_rates.len() != segment_weights.len()
        || true_rates.iter().any(|r| r.len() != variants)
    {
        return Err(QaError::InvalidInput(
            "simulation: one row of true rates per segment, the same variants in each".into(),
        ));
    }
    let total_weight: f64 = segment_weights.iter().sum();
    let best: Vec<f64> = true_rates
        .iter()
        .map(|r| r.iter().copied().fold(0.0, f64::max))
        .collect();
    let names: Vec<String> = (0..variants).map(|v| format!("v{v}")).collect();
    let (mut regret_b, mut regret_f, mut conv_b, mut conv_f, mut late_best) =
        (0.0, 0.0, 0.0, 0.0, 0.0);
    for seed in 0..seeds {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut bandit = ThompsonBandit::new(names.clone())?;
        let (mut late, mut late_calls) = (0usize, 0usize);
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
            regret_b += best[segment] - rate;
            conv_b += f64::from(u8::from(converted));
            if call >= calls * 4 / 5 {
                late_calls += 1;
                late += usize::from(rate >= best[segment]);
            }
            // The fixed split, on the same callee (same segment), with its own coin.
            let fixed = call % variants;
            let rate_f = true_rates[segment][fixed];
            regret_f += best[segment] - rate_f;
            conv_f += f64::from(u8::from(rng.random::<f64>() < rate_f));
        }
        late_best += late as f64 / late_calls.max(1) as f64;
    }
    let s = seeds.max(1) as f64;
    Ok(RegretReport {
        calls,
        seeds,
        bandit_regret: regret_b / s,
        fixed_split_regret: regret_f / s,
        bandit_conversions: conv_b / s,
        fixed_split_conversions: conv_f / s,
        bandit_best_share_late: late_best / s,
    })
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
        // Seeded: the same run twice is the same.
        assert_eq!(r, simulate_regret(&rates, &[0.6, 0.4], 4000, 8).unwrap());
    }
}

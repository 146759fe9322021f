//! Platt scaling: a one-feature logistic fit of the labels on the logit of a model's raw
//! probability, on rows the model was not fitted on, so the score reads as a probability.

use serde::{Deserialize, Serialize};

/// `p = σ(a · logit(raw) + b)`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Platt {
    pub a: f64,
    pub b: f64,
}

impl Platt {
    /// Fits by Newton's method with backtracking (Lin, Lin and Weng's version of Platt's
    /// algorithm) on Platt's smoothed targets (`(n₊+1)/(n₊+2)` and `1/(n₋+2)`), which keep a
    /// separable calibration set from driving `a` to infinity. `a` may come out negative: a
    /// learner that ranks backwards is turned around, not flattened.
    pub fn fit(raw: &[f64], labels: &[bool]) -> Platt {
        let s: Vec<f64> = raw.iter().map(|&p| logit(p)).collect();
        let pos = labels.iter().filter(|&&y| y).count() as f64;
        let neg = labels.len() as f64 - pos;
        let (hi, lo) = ((pos + 1.0) / (pos + 2.0), 1.0 / (neg + 2.0));
        let t: Vec<f64> = labels.iter().map(|&y| if y { hi } else { lo }).collect();
        let loss = |a: f64, b: f64| -> f64 {
            s.iter()
                .zip(&t)
                .map(|(&si, &ti)| {
                    let z = a * si + b;
                    // log(1 + e^z) − t·z, without overflow.
                    let softplus = if z >= 0.0 {
                        z + (-z).exp().ln_1p()
                    } else {
                        z.exp().ln_1p()
                    };
                    softplus - ti * z
                })
                .sum()
        };
        let (mut a, mut b) = (0.0, ((pos + 1.0) / (neg + 1.0)).ln());
        let mut f = loss(a, b);
        for _ in 0..100 {
            let (mut g_a, mut g_b, mut h_aa, mut h_ab, mut h_bb) = (0.0, 0.0, 1e-12, 0.0, 1e-12);
            for (&si, &ti) in s.iter().zip(&t) {
                let p = sigmoid(a * si + b);
                let w = p * (1.0 - p);
                g_a += (p - ti) * si;
                g_b += p - ti;
                h_aa += w * si * si;
                h_ab += w * si;
                h_bb += w;
            }
            if g_a.abs() < 1e-7 && g_b.abs() < 1e-7 {
                break;
            }
            let det = h_aa * h_bb - h_ab * h_ab;
            let da = -(h_bb * g_a - h_ab * g_b) / det;
            let db = -(h_aa * g_b - h_ab * g_a) / det;
            let slope = g_a * da + g_b * db;
            let mut step = 1.0;
            while step >= 1e-10 {
                let (na, nb) = (a + step * da, b + step * db);
                let nf = loss(na, nb);
                if nf < f + 1e-4 * step * slope {
                    (a, b, f) = (na, nb, nf);
                    break;
                }
                step /= 2.0;
            }
            if step < 1e-10 {
                break;
            }
        }
        Platt { a, b }
    }

    pub fn apply(&self, raw: f64) -> f64 {
        sigmoid(self.a * logit(raw) + self.b)
    }
}

fn logit(p: f64) -> f64 {
    let p = p.clamp(1e-9, 1.0 - 1e-9);
    (p / (1.0 - p)).ln()
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shrinks_overconfident_scores() {
        // Raw scores say 0.9 / 0.1, but the truth is 60% / 40%.
        let mut raw = Vec::new();
        let mut labels = Vec::new();
        for i in 0..1000 {
            let high = i % 2 == 0;
            raw.push(if high { 0.9 } else { 0.1 });
            labels.push(if high { i % 10 < 6 } else { i % 10 < 4 });
        }
        let c = Platt::fit(&raw, &labels);
        assert!((c.apply(0.9) - 0.6).abs() < 0.02, "{}", c.apply(0.9));
        assert!((c.apply(0.1) - 0.4).abs() < 0.02, "{}", c.apply(0.1));
        // Scores that rank backwards are turned around.
        let flipped: Vec<f64> = raw.iter().map(|p| 1.0 - p).collect();
        let c = Platt::fit(&flipped, &labels);
        assert!(c.a < 0.0 && (c.apply(0.1) - 0.6).abs() < 0.02, "{c:?}");
    }
}

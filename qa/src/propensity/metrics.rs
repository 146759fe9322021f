//! How good a propensity score is on labelled rows: ranking (AUC, top-decile lift, precision at
//! the top and at a probability cutoff) and calibration (Brier score, expected calibration
//! error, mean predicted vs observed rate).

use serde::{Deserialize, Serialize};

/// A model's figures on one set of labelled rows (the held-out split).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    pub rows: usize,
    pub positives: usize,
    /// Area under the ROC curve (ties count half).
    pub auc: f64,
    /// Positive rate among the 10% highest scores over the overall positive rate.
    pub lift_top10: f64,
    /// Positive rate among the 10% highest scores.
    pub precision_top10: f64,
    /// The probability at or above which a row counts as predicted positive.
    pub cutoff: f64,
    /// Positive rate among rows scored at or above `cutoff` (0 when there are none).
    pub precision_at_cutoff: f64,
    /// Rows scored at or above `cutoff`.
    pub predicted_at_cutoff: usize,
    /// Mean squared error of the probabilities.
    pub brier: f64,
    /// Expected calibration error over 10 equal-count bins: the mean |predicted − observed|.
    pub ece: f64,
    pub mean_predicted: f64,
    pub base_rate: f64,
}

impl Metrics {
    /// The figures for probabilities `p` against `labels` (same length, both classes present).
    pub fn of(p: &[f64], labels: &[bool], cutoff: f64) -> Metrics {
        let n = p.len();
        let positives = labels.iter().filter(|&&y| y).count();
        let base_rate = positives as f64 / n.max(1) as f64;
        let order = descending(p);
        let top = (n as f64 * 0.1).ceil().max(1.0) as usize;
        let top_pos = order[..top.min(n)].iter().filter(|&&i| labels[i]).count();
        let precision_top10 = top_pos as f64 / top as f64;
        let at: Vec<usize> = (0..n).filter(|&i| p[i] >= cutoff).collect();
        let at_pos = at.iter().filter(|&&i| labels[i]).count();
        let brier = p
            .iter()
            .zip(labels)
            .map(|(&q, &y)| (q - f64::from(u8::from(y))).powi(2))
            .sum::<f64>()
            / n.max(1) as f64;
        Metrics {
            rows: n,
            positives,
            auc: auc(p, labels),
            lift_top10: if base_rate > 0.0 {
                precision_top10 / base_rate
            } else {
                0.0
            },
            precision_top10,
            cutoff,
            precision_at_cutoff: if at.is_empty() {
                0.0
            } else {
                at_pos as f64 / at.len() as f64
            },
            predicted_at_cutoff: at.len(),
            brier,
            ece: ece(p, labels, &order),
            mean_predicted: p.iter().sum::<f64>() / n.max(1) as f64,
            base_rate,
        }
    }
}

/// Indices of `p` from the highest score down (ties by index, so the order is deterministic).
fn descending(p: &[f64]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..p.len()).collect();
    order.sort_by(|&a, &b| p[b].total_cmp(&p[a]).then(a.cmp(&b)));
    order
}

/// The Mann–Whitney form of the ROC AUC, with tied scores counting half.
pub fn auc(p: &[f64], labels: &[bool]) -> f64 {
    let mut order: Vec<usize> = (0..p.len()).collect();
    order.sort_by(|&a, &b| p[a].total_cmp(&p[b]));
    let (mut rank_sum, mut i) = (0.0, 0);
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && p[order[j + 1]] == p[order[i]] {
            j += 1;
        }
        let mid_rank = (i + j) as f64 / 2.0 + 1.0;
        rank_sum += order[i..=j].iter().filter(|&&k| labels[k]).count() as f64 * mid_rank;
        i = j + 1;
    }
    let pos = labels.iter().filter(|&&y| y).count() as f64;
    let neg = labels.len() as f64 - pos;
    if pos == 0.0 || neg == 0.0 {
        return 0.5;
    }
    (rank_sum - pos * (pos + 1.0) / 2.0) / (pos * neg)
}

fn ece(p: &[f64], labels: &[bool], order: &[usize]) -> f64 {
    let n = p.len();
    if n == 0 {
        return 0.0;
    }
    let bins = 10.min(n);
    (0..bins)
        .map(|b| {
            let rows = &order[b * n / bins..(b + 1) * n / bins];
            let predicted = rows.iter().map(|&i| p[i]).sum::<f64>();
            let observed = rows.iter().filter(|&&i| labels[i]).count() as f64;
            (predicted - observed).abs()
        })
        .sum::<f64>()
        / n as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_and_lift_of_known_rankings() {
        let labels = [true, false, true, false];
        assert_eq!(auc(&[0.9, 0.1, 0.8, 0.2], &labels), 1.0);
        assert_eq!(auc(&[0.1, 0.9, 0.2, 0.8], &labels), 0.0);
        assert_eq!(auc(&[0.5; 4], &labels), 0.5);
        let labels: Vec<bool> = (0..100).map(|i| i < 10).collect();
        let perfect: Vec<f64> = (0..100).map(|i| 1.0 - i as f64 / 100.0).collect();
        let m = Metrics::of(&perfect, &labels, 0.5);
        assert_eq!(m.lift_top10, 10.0);
        assert_eq!(m.precision_top10, 1.0);
        assert_eq!(m.predicted_at_cutoff, 51);
    }
}

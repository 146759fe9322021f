//! The seeded, stratified three-way split every model of one training run shares: rows to fit on,
//! rows to calibrate probabilities on, and held-out rows the metrics (and promotion) are read on.

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Row indices of each part, each sorted ascending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    pub train: Vec<usize>,
    pub calibrate: Vec<usize>,
    pub test: Vec<usize>,
}

/// Splits rows by label so each part keeps the positive rate: `test_share` of each class is held
/// out, then `calibration_share` of the rest calibrates. The same labels and seed always give
/// the same split.
pub fn stratified(labels: &[bool], seed: u64, test_share: f64, calibration_share: f64) -> Split {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut split = Split {
        train: Vec::new(),
        calibrate: Vec::new(),
        test: Vec::new(),
    };
    for class in [false, true] {
        let mut idx: Vec<usize> = (0..labels.len()).filter(|&i| labels[i] == class).collect();
        idx.shuffle(&mut rng);
        let n_test = (idx.len() as f64 * test_share).round() as usize;
        let n_cal = ((idx.len() - n_test) as f64 * calibration_share).round() as usize;
        split.test.extend_from_slice(&idx[..n_test]);
        split
            .calibrate
            .extend_from_slice(&idx[n_test..n_test + n_cal]);
        split.train.extend_from_slice(&idx[n_test + n_cal..]);
    }
    split.train.sort_unstable();
    split.calibrate.sort_unstable();
    split.test.sort_unstable();
    split
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_positive_rate_and_is_seeded() {
        let labels: Vec<bool> = (0..1000).map(|i| i % 10 == 0).collect();
        let s = stratified(&labels, 7, 0.25, 0.2);
        assert_eq!(s.train.len() + s.calibrate.len() + s.test.len(), 1000);
        assert_eq!(s.test.iter().filter(|&&i| labels[i]).count(), 25);
        assert_eq!(s.calibrate.iter().filter(|&&i| labels[i]).count(), 15);
        assert_eq!(s, stratified(&labels, 7, 0.25, 0.2));
        assert_ne!(s, stratified(&labels, 8, 0.25, 0.2));
    }
}

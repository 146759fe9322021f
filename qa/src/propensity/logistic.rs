//! L2-regularised logistic regression (linfa-logistic) on standardised features: each feature is
//! centred and scaled by its training mean and deviation, and a missing value becomes the mean.

use super::{Dataset, PropensityError};
use linfa::prelude::Fit;
use linfa_logistic::{FittedLogisticRegression, LogisticRegression};
use ndarray::{Array1, Array2};
use serde::{Deserialize, Serialize};

/// A fitted logistic regression with the scaling it was fitted on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogisticModel {
    pub means: Vec<f64>,
    pub scales: Vec<f64>,
    pub fitted: FittedLogisticRegression<f64, usize>,
}

impl LogisticModel {
    /// Fits on `data` with L2 strength `alpha` (linfa's: the penalty is `alpha/2 · |w|²` on the
    /// summed log-loss, as scikit-learn's `C = 1/alpha`).
    /// `warm` starts the solver from another fit's weights (same features and scaling), which
    /// saves most iterations when a list of alphas is tried in turn.
    pub fn fit(
        data: &Dataset,
        alpha: f64,
        warm: Option<&LogisticModel>,
    ) -> Result<Self, PropensityError> {
        let (rows, cols) = (data.rows(), data.cols());
        let mut means = vec![0.0; cols];
        let mut scales = vec![1.0; cols];
        for j in 0..cols {
            let present: Vec<f64> = (0..rows)
                .map(|i| data.features[i * cols + j])
                .filter(|v| !v.is_nan())
                .collect();
            if present.is_empty() {
                continue;
            }
            let mean = present.iter().sum::<f64>() / present.len() as f64;
            let var =
                present.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / present.len() as f64;
            means[j] = mean;
            scales[j] = if var > 1e-12 { var.sqrt() } else { 1.0 };
        }
        let x = standardise(data, &means, &scales);
        let y = Array1::from_iter(data.labels.iter().map(|&l| usize::from(l)));
        // The loss is summed over rows, so its gradient grows with them: stop when the mean
        // gradient's norm is under 1e-4 (a fixed 1e-5 ran 100k-row fits to the iteration cap,
        // 27 s each; the ranking, which is all AUC and lift read, settles long before).
        let mut params = LogisticRegression::default();
        if let Some(w) = warm.filter(|w| w.fitted.params().len() == cols) {
            // linfa's solver works on its own label sign (+1 = the more frequent class), the
            // sign the warm fit's weights already have when both fits saw the same labels.
            let mut init = w.fitted.params().to_vec();
            init.push(w.fitted.intercept());
            params = params.initial_params(Array1::from(init));
        }
        let fitted = params
            .alpha(alpha)
            .max_iterations(100)
            .gradient_tolerance(1e-4 * rows as f64)
            .fit(&linfa::Dataset::new(x, y))
            .map_err(|e| PropensityError::Training {
                model: "logistic",
                message: e.to_string(),
            })?;
        Ok(LogisticModel {
            means,
            scales,
            fitted,
        })
    }

    /// P(label = 1) for every row (the model's own, before calibration).
    pub fn predict(&self, data: &Dataset) -> Vec<f64> {
        let p = self
            .fitted
            .predict_probabilities(&standardise(data, &self.means, &self.scales));
        // linfa's probability is of its "positive" class, which is the MORE FREQUENT label
        // (linfa-logistic 0.8 `label_classes`): usually 0 here, as buyers are few.
        if self.fitted.labels().pos.class == 1 {
            p.to_vec()
        } else {
            p.iter().map(|q| 1.0 - q).collect()
        }
    }
}

fn standardise(data: &Dataset, means: &[f64], scales: &[f64]) -> Array2<f64> {
    let cols = data.cols();
    Array2::from_shape_fn((data.rows(), cols), |(i, j)| {
        let v = data.features[i * cols + j];
        if v.is_nan() {
            0.0
        } else {
            (v - means[j]) / scales[j]
        }
    })
}

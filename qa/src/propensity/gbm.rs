//! Gradient-boosted trees (perpetual): one `budget` knob instead of learning rate, depth and
//! rounds; missing values (`NaN`) are split on natively. Seeded, so a run is repeatable.

use super::{Dataset, PropensityError};
use perpetual::booster::config::BoosterIO;
use perpetual::objective::Objective;
use perpetual::{Matrix, PerpetualBooster};

/// Memory perpetual may plan its histogram arena for. Without a limit it sizes the arena from
/// the machine's free memory (up to 10,000 node histograms, gigabytes) and allocating it took
/// 2–20 s of a Caravan fit that itself takes 0.4 s; the trees came out the same.
const MEMORY_LIMIT_GB: f32 = 0.25;

/// A fitted booster.
#[derive(Clone)]
pub struct GbmModel {
    pub booster: PerpetualBooster,
}

impl std::fmt::Debug for GbmModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GbmModel")
            .field("trees", &self.booster.trees.len())
            .finish()
    }
}

impl GbmModel {
    /// Fits on `data` with perpetual's `budget` (0.5 is its default; higher fits harder).
    pub fn fit(data: &Dataset, budget: f32, seed: u64) -> Result<Self, PropensityError> {
        let x = column_major(data);
        let y: Vec<f64> = data
            .labels
            .iter()
            .map(|&l| f64::from(u8::from(l)))
            .collect();
        let mut booster = PerpetualBooster::default()
            .set_objective(Objective::LogLoss)
            .set_budget(budget)
            .set_seed(seed)
            .set_memory_limit(Some(MEMORY_LIMIT_GB));
        booster
            .fit(&Matrix::new(&x, data.rows(), data.cols()), &y, None, None)
            .map_err(|e| PropensityError::Training {
                model: "gbm",
                message: e.to_string(),
            })?;
        Ok(GbmModel { booster })
    }

    /// P(label = 1) for every row (the booster's own, before calibration).
    pub fn predict(&self, data: &Dataset) -> Vec<f64> {
        let x = column_major(data);
        self.booster
            .predict_proba(&Matrix::new(&x, data.rows(), data.cols()), true, false)
    }

    pub fn trees(&self) -> usize {
        self.booster.trees.len()
    }

    pub fn to_json(&self) -> Result<String, String> {
        self.booster.json_dump().map_err(|e| e.to_string())
    }

    pub fn from_json(json: &str) -> Result<Self, String> {
        PerpetualBooster::from_json(json)
            .map(|booster| GbmModel { booster })
            .map_err(|e| e.to_string())
    }
}

/// perpetual's `Matrix` is column-major.
fn column_major(data: &Dataset) -> Vec<f64> {
    let (rows, cols) = (data.rows(), data.cols());
    let mut x = Vec::with_capacity(rows * cols);
    for j in 0..cols {
        x.extend((0..rows).map(|i| data.features[i * cols + j]));
    }
    x
}

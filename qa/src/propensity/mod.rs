//! Propensity to buy: who is worth calling. Trains a logistic regression (linfa) and
//! gradient-boosted trees (perpetual) on any labelled CSV, calibrates their probabilities (Platt)
//! on a calibration split, reads AUC, top-decile lift, precision and Brier score on a held-out
//! split, and saves a [`PropensityModel`] as a folder that `ringwise score` and the dialer load.
//!
//! One training run splits the rows once (seeded, stratified): `train` rows fit the model,
//! `calibrate` rows choose its one setting (alpha, budget: best AUC of a short list) and fit the
//! Platt map, `test` rows are never seen until the metrics are read.
//! A saved model folder holds `model.json` (the learner), `features.json` (the ordered feature
//! names scoring data must have), `meta.json` (kind, calibration, split sizes, seed),
//! `metrics.json` (held-out figures, also of the other candidate) and `sha256` (of the first
//! three files; checked at load, and the digest the model registry records).

mod calibrate;
mod data;
mod error;
mod gbm;
mod logistic;
mod metrics;
pub mod profile;
mod registry;
mod split;

pub use calibrate::Platt;
pub use data::{read_csv, read_features, Dataset};
pub use error::PropensityError;
pub use gbm::GbmModel;
pub use logistic::LogisticModel;
pub use metrics::{auc, Metrics};
pub use registry::{active_model, model_version, register, Promotion, MODEL_NAME};
pub use split::{stratified, Split};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::Path;

/// Which learner a model is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    Logistic,
    Gbm,
}

impl ModelKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ModelKind::Logistic => "logistic",
            ModelKind::Gbm => "gbm",
        }
    }
}

/// How a training run splits, fits and judges.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainOptions {
    pub seed: u64,
    /// Share of each class held out for the metrics.
    pub test_share: f64,
    /// Share of the remaining rows (each class) kept to calibrate on.
    pub calibration_share: f64,
    /// The learners to train; the one with the best held-out AUC is the run's model.
    pub kinds: Vec<ModelKind>,
    /// L2 strengths tried for the logistic regression (scikit-learn's `C = 1/alpha`); the one
    /// with the best AUC on the calibration rows is kept.
    pub logistic_alphas: Vec<f64>,
    /// perpetual complexity budgets tried, chosen the same way.
    pub gbm_budgets: Vec<f32>,
    /// Probability cutoff for `precision_at_cutoff`.
    pub cutoff: f64,
}

impl Default for TrainOptions {
    /// Seed 2000 (the CoIL challenge's year), 25% held out, 20% of the rest to calibrate, both
    /// learners, alpha from 100, 10, 1 (strongest first: each fit starts from the previous
    /// one's weights), budget 0.5 (perpetual's default) or 1.0, and a
    /// precision cutoff of 0.2. The held-out rows play no part in any choice.
    fn default() -> Self {
        TrainOptions {
            seed: 2000,
            test_share: 0.25,
            calibration_share: 0.2,
            kinds: vec![ModelKind::Logistic, ModelKind::Gbm],
            logistic_alphas: vec![100.0, 10.0, 1.0],
            gbm_budgets: vec![0.5, 1.0],
            cutoff: 0.2,
        }
    }
}

/// The learner inside a model.
#[derive(Debug, Clone)]
pub enum Learner {
    Logistic(LogisticModel),
    Gbm(Box<GbmModel>),
}

impl Learner {
    fn predict(&self, data: &Dataset) -> Vec<f64> {
        match self {
            Learner::Logistic(m) => m.predict(data),
            Learner::Gbm(m) => m.predict(data),
        }
    }

    fn kind(&self) -> ModelKind {
        match self {
            Learner::Logistic(_) => ModelKind::Logistic,
            Learner::Gbm(_) => ModelKind::Gbm,
        }
    }
}

/// Everything about a model but its weights (`meta.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelCard {
    pub kind: ModelKind,
    pub id_column: String,
    pub label_column: String,
    pub features: Vec<String>,
    pub calibration: Platt,
    /// The setting chosen on the calibration rows: the logistic regression's alpha or the
    /// booster's budget.
    pub setting: f64,
    pub seed: u64,
    pub train_rows: usize,
    pub calibration_rows: usize,
    pub test_rows: usize,
    /// Held-out figures of this model.
    pub metrics: Metrics,
    /// Held-out figures of every learner of the run (this one included), same rows.
    pub candidates: Vec<(ModelKind, Metrics)>,
    pub train_s: f64,
    pub created_at_ms: i64,
}

/// A trained, calibrated propensity model: scores rows with the features it was trained on.
#[derive(Debug, Clone)]
pub struct PropensityModel {
    pub card: ModelCard,
    pub learner: Learner,
}

/// What one training run produced.
#[derive(Debug)]
pub struct TrainReport {
    /// One model per learner asked for, in the order asked.
    pub models: Vec<PropensityModel>,
    /// Index into `models` of the best held-out AUC.
    pub best: usize,
    pub split: Split,
}

impl TrainReport {
    pub fn best(&self) -> &PropensityModel {
        &self.models[self.best]
    }
}

/// Positives each part of the split needs at least.
const MIN_POSITIVES: usize = 10;

/// Trains every learner of `opts` on `data` (labelled) and reads them on the held-out split.
/// `step` hears what is being done, for a progress display.
pub fn train(
    data: &Dataset,
    id_column: &str,
    label_column: &str,
    opts: &TrainOptions,
    step: &mut dyn FnMut(&str),
) -> Result<TrainReport, PropensityError> {
    let split = stratified(
        &data.labels,
        opts.seed,
        opts.test_share,
        opts.calibration_share,
    );
    let positives = |idx: &[usize]| idx.iter().filter(|&&i| data.labels[i]).count();
    let least = [&split.train, &split.calibrate, &split.test]
        .iter()
        .map(|p| positives(p))
        .min()
        .unwrap_or(0);
    if least < MIN_POSITIVES {
        return Err(PropensityError::TooFewPositives {
            positives: data.positives(),
            needed: MIN_POSITIVES * 3,
        });
    }
    let (train_set, cal_set, test_set) = (
        data.subset(&split.train),
        data.subset(&split.calibrate),
        data.subset(&split.test),
    );
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let mut models = Vec::new();
    for &kind in &opts.kinds {
        step(&format!(
            "training {} on {} rows",
            kind.as_str(),
            train_set.rows()
        ));
        let started = std::time::Instant::now();
        let settings: Vec<f64> = match kind {
            ModelKind::Logistic => opts.logistic_alphas.clone(),
            ModelKind::Gbm => opts.gbm_budgets.iter().map(|&b| f64::from(b)).collect(),
        };
        let mut chosen: Option<(f64, f64, Learner, Vec<f64>)> = None;
        for &setting in &settings {
            let learner = match kind {
                ModelKind::Logistic => {
                    let warm = match chosen.as_ref().map(|c| &c.2) {
                        Some(Learner::Logistic(m)) => Some(m),
                        _ => None,
                    };
                    Learner::Logistic(LogisticModel::fit(&train_set, setting, warm)?)
                }
                ModelKind::Gbm => Learner::Gbm(Box::new(GbmModel::fit(
                    &train_set,
                    setting as f32,
                    opts.seed,
                )?)),
            };
            let raw = learner.predict(&cal_set);
            let cal_auc = auc(&raw, &cal_set.labels);
            tracing::debug!(model = kind.as_str(), setting, cal_auc, "candidate");
            if chosen.as_ref().is_none_or(|c| cal_auc > c.1) {
                chosen = Some((setting, cal_auc, learner, raw));
            }
        }
        let Some((setting, _, learner, raw)) = chosen else {
            return Err(PropensityError::Training {
                model: kind.as_str(),
                message: "no setting to try (empty alpha / budget list)".into(),
            });
        };
        let calibration = Platt::fit(&raw, &cal_set.labels);
        let train_s = started.elapsed().as_secs_f64();
        step(&format!(
            "scoring {} on {} held-out rows",
            kind.as_str(),
            test_set.rows()
        ));
        let p: Vec<f64> = learner
            .predict(&test_set)
            .into_iter()
            .map(|r| calibration.apply(r))
            .collect();
        let metrics = Metrics::of(&p, &test_set.labels, opts.cutoff);
        tracing::info!(
            model = kind.as_str(),
            auc = metrics.auc,
            lift_top10 = metrics.lift_top10,
            train_s,
            "propensity model trained"
        );
        models.push(PropensityModel {
            card: ModelCard {
                kind,
                id_column: id_column.to_string(),
                label_column: label_column.to_string(),
                features: data.feature_names.clone(),
                calibration,
                setting,
                seed: opts.seed,
                train_rows: train_set.rows(),
                calibration_rows: cal_set.rows(),
                test_rows: test_set.rows(),
                metrics,
                candidates: Vec::new(),
                train_s,
                created_at_ms: now_ms,
            },
            learner,
        });
    }
    let candidates: Vec<(ModelKind, Metrics)> = models
        .iter()
        .map(|m| (m.card.kind, m.card.metrics))
        .collect();
    for m in &mut models {
        m.card.candidates = candidates.clone();
    }
    let best = (0..models.len())
        .max_by(|&a, &b| {
            models[a]
                .card
                .metrics
                .auc
                .total_cmp(&models[b].card.metrics.auc)
                .then(b.cmp(&a))
        })
        .unwrap_or(0);
    Ok(TrainReport {
        models,
        best,
        split,
    })
}

const MODEL_FILE: &str = "model.json";
const FEATURES_FILE: &str = "features.json";
const META_FILE: &str = "meta.json";
const METRICS_FILE: &str = "metrics.json";
const SHA_FILE: &str = "sha256";

impl PropensityModel {
    pub fn kind(&self) -> ModelKind {
        self.learner.kind()
    }

    pub fn features(&self) -> &[String] {
        &self.card.features
    }

    /// Calibrated probabilities for `data`'s rows; `data` must have every feature the model was
    /// trained on (by name, any order, extra columns ignored).
    pub fn score(&self, data: &Dataset) -> Result<Vec<f64>, PropensityError> {
        let data = if data.feature_names == self.card.features {
            std::borrow::Cow::Borrowed(data)
        } else {
            std::borrow::Cow::Owned(data.select(&self.card.features)?)
        };
        Ok(self.score_ordered(&data))
    }

    /// Scores rows whose features are already in the model's order.
    fn score_ordered(&self, data: &Dataset) -> Vec<f64> {
        self.learner
            .predict(data)
            .into_iter()
            .map(|r| self.card.calibration.apply(r))
            .collect()
    }

    /// One row's calibrated probability; `row` holds the model's features in its order.
    pub fn score_row(&self, row: &[f64]) -> f64 {
        let data = Dataset {
            feature_names: self.card.features.clone(),
            ids: vec![String::new()],
            features: row.to_vec(),
            labels: Vec::new(),
        };
        self.score_ordered(&data).first().copied().unwrap_or(0.0)
    }

    /// Writes the model folder (created if needed) and returns its sha256.
    pub fn save(&self, dir: &Path) -> Result<String, PropensityError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| PropensityError::Io { path, source }
        };
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let model = match &self.learner {
            Learner::Logistic(m) => serde_json::to_string(m).map_err(|e| e.to_string()),
            Learner::Gbm(m) => m.to_json(),
        }
        .map_err(|message| PropensityError::BadModel {
            path: dir.join(MODEL_FILE),
            message,
        })?;
        let files = [
            (MODEL_FILE, model),
            (
                FEATURES_FILE,
                pretty(&self.card.features, dir, FEATURES_FILE)?,
            ),
            (META_FILE, pretty(&self.card, dir, META_FILE)?),
        ];
        for (name, text) in &files {
            let path = dir.join(name);
            std::fs::write(&path, text).map_err(io(&path))?;
        }
        let metrics = serde_json::json!({
            "kind": self.card.kind,
            "held_out": self.card.metrics,
            "candidates": self.card.candidates.iter()
                .map(|(k, m)| serde_json::json!({"kind": k, "held_out": m}))
                .collect::<Vec<_>>(),
            "rows": {"train": self.card.train_rows, "calibrate": self.card.calibration_rows,
                     "test": self.card.test_rows},
            "seed": self.card.seed,
            "train_s": self.card.train_s,
        });
        let path = dir.join(METRICS_FILE);
        std::fs::write(&path, pretty(&metrics, dir, METRICS_FILE)?).map_err(io(&path))?;
        let sha = digest(files.iter().map(|(_, t)| t.as_bytes()));
        let path = dir.join(SHA_FILE);
        std::fs::write(&path, format!("{sha}\n")).map_err(io(&path))?;
        Ok(sha)
    }

    /// Reads a model folder written by [`PropensityModel::save`], checking its sha256.
    pub fn load(dir: &Path) -> Result<PropensityModel, PropensityError> {
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read_to_string(&path).map_err(|source| PropensityError::Io { path, source })
        };
        let bad = |name: &str, message: String| PropensityError::BadModel {
            path: dir.join(name),
            message,
        };
        let (model, features, meta) = (read(MODEL_FILE)?, read(FEATURES_FILE)?, read(META_FILE)?);
        let want = read(SHA_FILE)?;
        let got = digest([model.as_bytes(), features.as_bytes(), meta.as_bytes()].into_iter());
        if want.trim() != got {
            return Err(bad(
                SHA_FILE,
                format!(
                    "the model files changed since they were saved (sha256 {got}, recorded {})",
                    want.trim()
                ),
            ));
        }
        let card: ModelCard =
            serde_json::from_str(&meta).map_err(|e| bad(META_FILE, e.to_string()))?;
        let names: Vec<String> =
            serde_json::from_str(&features).map_err(|e| bad(FEATURES_FILE, e.to_string()))?;
        if names != card.features {
            return Err(bad(
                FEATURES_FILE,
                "differs from meta.json's feature list".into(),
            ));
        }
        let learner = match card.kind {
            ModelKind::Logistic => Learner::Logistic(
                serde_json::from_str(&model).map_err(|e| bad(MODEL_FILE, e.to_string()))?,
            ),
            ModelKind::Gbm => Learner::Gbm(Box::new(
                GbmModel::from_json(&model).map_err(|e| bad(MODEL_FILE, e))?,
            )),
        };
        Ok(PropensityModel { card, learner })
    }

    /// The sha256 of a saved model folder, as recorded in it.
    pub fn saved_sha256(dir: &Path) -> Result<String, PropensityError> {
        let path = dir.join(SHA_FILE);
        std::fs::read_to_string(&path)
            .map(|s| s.trim().to_string())
            .map_err(|source| PropensityError::Io { path, source })
    }
}

fn digest<'a>(parts: impl Iterator<Item = &'a [u8]>) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p);
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

fn pretty<T: Serialize>(v: &T, dir: &Path, name: &str) -> Result<String, PropensityError> {
    serde_json::to_string_pretty(v).map_err(|e| PropensityError::BadModel {
        path: dir.join(name),
        message: e.to_string(),
    })
}

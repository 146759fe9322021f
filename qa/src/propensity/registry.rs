//! Model versions in the store's `model_versions` table: a trained model is recorded with its
//! folder, sha256 and held-out metrics, and becomes the active one only if it beats the active
//! version on the same held-out rows.

use super::{Dataset, Metrics, PropensityError, PropensityModel};
use retrieval::store::ModelVersion;
use retrieval::SqlStore;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The `model_versions.name` of propensity models.
pub const MODEL_NAME: &str = "propensity";

/// What registering a model decided.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Promotion {
    pub version: String,
    pub promoted: bool,
    /// The new model's AUC on the held-out rows.
    pub auc: f64,
    /// The previously active version and its AUC on the same rows, if there was one.
    pub previous: Option<(String, f64)>,
    pub reason: String,
}

/// Records the model saved in `dir` (its sha256 read from the folder) and makes it the active
/// version when there is none, or when it has a higher AUC than the active version on
/// `held_out` (labelled rows neither model was fitted on — the new model's test split). An
/// active version that cannot be read or that needs features `held_out` lacks is not
/// comparable; the new model is then recorded inactive, and the reason says so.
pub async fn register(
    store: &SqlStore,
    model: &PropensityModel,
    dir: &Path,
    held_out: &Dataset,
    now_ms: i64,
) -> Result<Promotion, PropensityError> {
    let sha256 = PropensityModel::saved_sha256(dir)?;
    let version = format!(
        "{}-{}",
        model.kind().as_str(),
        &sha256[..12.min(sha256.len())]
    );
    let auc = Metrics::of(
        &model.score(held_out)?,
        &held_out.labels,
        model.card.metrics.cutoff,
    )
    .auc;
    let (promoted, previous, reason) = match store.active_model(MODEL_NAME).await? {
        None => (true, None, "no active version".to_string()),
        Some(active) if active.version == version => {
            (true, None, "already the active version".to_string())
        }
        Some(active) => {
            match PropensityModel::load(Path::new(&active.path)).and_then(|m| m.score(held_out)) {
                Ok(p) => {
                    let old = Metrics::of(&p, &held_out.labels, model.card.metrics.cutoff).auc;
                    let better = auc > old;
                    (
                        better,
                        Some((active.version.clone(), old)),
                        format!(
                            "held-out AUC {auc:.4} {} active {} {old:.4}",
                            if better { "beats" } else { "does not beat" },
                            active.version
                        ),
                    )
                }
                Err(e) => (
                    false,
                    None,
                    format!("active version {} cannot be compared: {e}", active.version),
                ),
            }
        }
    };
    let path = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    store
        .register_model(&ModelVersion {
            name: MODEL_NAME.into(),
            version: version.clone(),
            path: path.display().to_string(),
            sha256,
            metrics: serde_json::to_string(&model.card.candidates).unwrap_or_default(),
            active: promoted,
            created_at_ms: now_ms,
        })
        .await?;
    Ok(Promotion {
        version,
        promoted,
        auc,
        previous,
        reason,
    })
}

/// Propensity model version `version` (active or not), loaded from its folder and checked
/// against its registered sha256; `None` when no such version is registered.
pub async fn model_version(
    store: &SqlStore,
    version: &str,
) -> Result<Option<(ModelVersion, PropensityModel)>, PropensityError> {
    let Some(v) = store.model_version(MODEL_NAME, version).await? else {
        return Ok(None);
    };
    let model = load_checked(&v)?;
    Ok(Some((v, model)))
}

fn load_checked(v: &ModelVersion) -> Result<PropensityModel, PropensityError> {
    let dir = Path::new(&v.path);
    let sha = PropensityModel::saved_sha256(dir)?;
    if sha != v.sha256 {
        return Err(PropensityError::BadModel {
            path: dir.to_path_buf(),
            message: format!(
                "sha256 {sha} differs from the registered {} of version {}",
                v.sha256, v.version
            ),
        });
    }
    PropensityModel::load(dir)
}

/// The active propensity model, loaded from its folder; `None` when no version is active.
/// A folder whose sha256 differs from the registered one is an error, not a silent swap.
pub async fn active_model(
    store: &SqlStore,
) -> Result<Option<(ModelVersion, PropensityModel)>, PropensityError> {
    let Some(active) = store.active_model(MODEL_NAME).await? else {
        return Ok(None);
    };
    let model = load_checked(&active)?;
    Ok(Some((active, model)))
}

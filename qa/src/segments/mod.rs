//! Customer segments: K-Means (linfa-clustering) on standardised profile features, k chosen by
//! the silhouette score in a small range, each segment named from how its centroid differs from
//! the average customer ("price-sensitive young families"); and, per segment, the best hours
//! and weekdays to call from the store's call history ([`best_time`]).
//!
//! Everything is seeded: the same profiles and seed give the same segments, names and order
//! (segments are numbered by size, largest first).

pub mod best_time;
mod describe;

pub use best_time::{best_times, load_contacts, Contact, RateCell, SegmentTimes, TimeOptions};

use linfa::prelude::*;
use linfa_clustering::KMeans;
use ndarray::{Array1, Array2, ArrayView1};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_xoshiro::rand_core::SeedableRng as _;
use rand_xoshiro::Xoshiro256Plus;
use retrieval::{CustomerProfile, SqlStore};
use serde::{Deserialize, Serialize};

/// The profile features segments are built on (the propensity features without the language:
/// a segment is about what people need and how they buy, not which language they speak).
pub const SEGMENT_FEATURES: [&str; 7] = [
    "age",
    "income_band",
    "children_in_school",
    "recent_purchases",
    "days_since_last_contact",
    "price_sensitivity",
    "calls_so_far",
];

#[derive(Debug, thiserror::Error)]
pub enum SegmentError {
    #[error("{have} profiles are too few to segment into {k} groups; import customers first")]
    TooFewProfiles { have: usize, k: usize },
    #[error("k range {min}..={max} is empty or starts below 2")]
    BadRange { min: usize, max: usize },
    #[error("clustering: {0}")]
    Clustering(String),
    #[error("store: {0}")]
    Store(#[from] retrieval::RetrievalError),
    #[error("store query: {0}")]
    Sql(#[from] sqlx::Error),
}

/// How segments are fitted.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentOptions {
    pub seed: u64,
    /// The k tried, inclusive.
    pub k_min: usize,
    pub k_max: usize,
    /// Profiles the silhouette score is computed on (a seeded sample; the score is quadratic).
    pub silhouette_sample: usize,
}

impl Default for SegmentOptions {
    fn default() -> Self {
        SegmentOptions {
            seed: 7,
            k_min: 3,
            k_max: 6,
            silhouette_sample: 1500,
        }
    }
}

/// One segment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Segment {
    pub index: usize,
    /// Identifier form of the description, e.g. `price_sensitive_young_families` (unique).
    pub name: String,
    /// e.g. `price-sensitive young families`.
    pub description: String,
    pub size: usize,
    /// The centroid in the features' own units, in [`SEGMENT_FEATURES`] order.
    pub centroid: Vec<f64>,
    /// How far the centroid is from the average customer, in standard deviations.
    pub z: Vec<f64>,
}

/// Fitted segments and how profiles map to them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Segmentation {
    pub features: Vec<String>,
    pub means: Vec<f64>,
    pub scales: Vec<f64>,
    /// Standardised centroids, one row per segment, segment order.
    pub centroids: Vec<Vec<f64>>,
    pub segments: Vec<Segment>,
    /// Silhouette score of each k tried.
    pub silhouettes: Vec<(usize, f64)>,
    pub k: usize,
}

/// The segment features of a profile at `now_ms`, in [`SEGMENT_FEATURES`] order (NaN missing).
pub fn profile_features(p: &CustomerProfile, now_ms: i64) -> Vec<f64> {
    let all = crate::propensity::profile::features(p, now_ms);
    SEGMENT_FEATURES
        .iter()
        .map(|f| {
            let i = crate::propensity::profile::PROFILE_FEATURES
                .iter()
                .position(|g| g == f)
                .unwrap_or_default();
            all[i]
        })
        .collect()
}

impl Segmentation {
    /// Fits segments on `rows` (one feature vector per customer, [`SEGMENT_FEATURES`] order).
    pub fn fit(rows: &[Vec<f64>], opts: &SegmentOptions) -> Result<Segmentation, SegmentError> {
        if opts.k_min < 2 || opts.k_min > opts.k_max {
            return Err(SegmentError::BadRange {
                min: opts.k_min,
                max: opts.k_max,
            });
        }
        if rows.len() < opts.k_max * 5 {
            return Err(SegmentError::TooFewProfiles {
                have: rows.len(),
                k: opts.k_max,
            });
        }
        let d = SEGMENT_FEATURES.len();
        let (means, scales) = moments(rows, d);
        let x = Array2::from_shape_fn((rows.len(), d), |(i, j)| {
            standardise(rows[i][j], means[j], scales[j])
        });
        let mut sample: Vec<usize> = (0..rows.len()).collect();
        sample.shuffle(&mut ChaCha8Rng::seed_from_u64(opts.seed));
        sample.truncate(opts.silhouette_sample);
        sample.sort_unstable();
        let xs = x.select(ndarray::Axis(0), &sample);
        let mut best: Option<(f64, usize, KMeans<f64, _>)> = None;
        let mut silhouettes = Vec::new();
        for k in opts.k_min..=opts.k_max {
            let model = KMeans::params_with_rng(k, Xoshiro256Plus::seed_from_u64(opts.seed))
                .n_runs(4)
                .max_n_iterations(200)
                .tolerance(1e-5)
                .fit(&DatasetBase::from(x.clone()))
                .map_err(|e| SegmentError::Clustering(e.to_string()))?;
            let labels: Array1<usize> = model.predict(&xs);
            let score = DatasetBase::new(xs.clone(), labels)
                .silhouette_score()
                .map_err(|e| SegmentError::Clustering(e.to_string()))?;
            tracing::debug!(k, silhouette = score, "k-means");
            silhouettes.push((k, score));
            if best.as_ref().is_none_or(|(s, _, _)| score > *s) {
                best = Some((score, k, model));
            }
        }
        let Some((_, k, model)) = best else {
            return Err(SegmentError::BadRange {
                min: opts.k_min,
                max: opts.k_max,
            });
        };
        let labels: Array1<usize> = model.predict(&x);
        let mut sizes = vec![0usize; k];
        for &l in &labels {
            sizes[l] += 1;
        }
        // Largest first; ties by centroid order, so the numbering is deterministic.
        let mut order: Vec<usize> = (0..k).collect();
        order.sort_by(|&a, &b| sizes[b].cmp(&sizes[a]).then(a.cmp(&b)));
        let centroids: Vec<Vec<f64>> = order
            .iter()
            .map(|&c| model.centroids().row(c).to_vec())
            .collect();
        let mut segments: Vec<Segment> = order
            .iter()
            .enumerate()
            .map(|(index, &c)| {
                let z = model.centroids().row(c).to_vec();
                Segment {
                    index,
                    name: String::new(),
                    description: String::new(),
                    size: sizes[c],
                    centroid: z
                        .iter()
                        .enumerate()
                        .map(|(j, v)| means[j] + v * scales[j])
                        .collect(),
                    z,
                }
            })
            .collect();
        describe::name_all(&mut segments);
        Ok(Segmentation {
            features: SEGMENT_FEATURES.iter().map(|s| s.to_string()).collect(),
            means,
            scales,
            centroids,
            segments,
            silhouettes,
            k,
        })
    }

    /// The index of the segment nearest to `row` ([`SEGMENT_FEATURES`] order).
    pub fn assign(&self, row: &[f64]) -> usize {
        let z: Vec<f64> = row
            .iter()
            .enumerate()
            .map(|(j, &v)| standardise(v, self.means[j], self.scales[j]))
            .collect();
        let dist = |c: &Vec<f64>| c.iter().zip(&z).map(|(a, b)| (a - b).powi(2)).sum::<f64>();
        (0..self.centroids.len())
            .min_by(|&a, &b| dist(&self.centroids[a]).total_cmp(&dist(&self.centroids[b])))
            .unwrap_or(0)
    }
}

fn standardise(v: f64, mean: f64, scale: f64) -> f64 {
    if v.is_nan() {
        0.0
    } else {
        (v - mean) / scale
    }
}

/// Mean and standard deviation of each column, ignoring NaN (scale 1 for a constant column).
fn moments(rows: &[Vec<f64>], d: usize) -> (Vec<f64>, Vec<f64>) {
    let mut means = vec![0.0; d];
    let mut scales = vec![1.0; d];
    for j in 0..d {
        let col: Vec<f64> = rows.iter().map(|r| r[j]).filter(|v| !v.is_nan()).collect();
        if col.is_empty() {
            continue;
        }
        let view = ArrayView1::from(&col);
        let mean = view.mean().unwrap_or(0.0);
        let sd = view.std(0.0);
        means[j] = mean;
        scales[j] = if sd > 1e-9 { sd } else { 1.0 };
    }
    (means, scales)
}

/// Every stored customer's profile (ids in order), read through the store's one profile query.
/// `progress` hears (done, total).
pub async fn load_profiles(
    store: &SqlStore,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Vec<CustomerProfile>, SegmentError> {
    let ids: Vec<String> = sqlx::query_scalar("SELECT id FROM customers ORDER BY id")
        .fetch_all(store.pool())
        .await?;
    let mut out = Vec::with_capacity(ids.len());
    for (i, id) in ids.iter().enumerate() {
        if let Some(p) = store.profile(id).await? {
            out.push(p);
        }
        if i % 256 == 0 || i + 1 == ids.len() {
            progress(i + 1, ids.len());
        }
    }
    Ok(out)
}

/// Stores each customer's segment name in `profiles.segment` (the dialer reports customers
/// under it). Customers without a profile row are left alone. One transaction.
pub async fn write_segments(
    store: &SqlStore,
    assignments: &[(String, String)],
    now_ms: i64,
) -> Result<u64, SegmentError> {
    let mut tx = store.pool().begin().await?;
    let mut n = 0;
    for (customer, segment) in assignments {
        n += sqlx::query(
            "UPDATE profiles SET segment = $1, updated_at_ms = $2 WHERE customer_id = $3",
        )
        .bind(segment)
        .bind(now_ms)
        .bind(customer)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    }
    tx.commit().await?;
    Ok(n)
}

//! The features a propensity model for the dialer is trained on and scored with, built from a
//! [`CustomerProfile`] (its CRM attributes and its call history as the store summarises it):
//!
//! | feature | from | missing |
//! |---|---|---|
//! | `age` | `age` | NaN |
//! | `income_band` | `income_band` (1–5) | NaN |
//! | `children_in_school` | `children_in_school` | NaN |
//! | `recent_purchases` | `recent_purchases` | NaN |
//! | `days_since_last_contact` | `now − last_contact_ms` (CRM or our calls), in days, ≥ 0 | NaN |
//! | `price_sensitivity` | `price_sensitivity` (0–1) | NaN |
//! | `calls_so_far` | `calls_so_far` (our calls + CRM call logs) | — |
//! | `language_zh` | 1 for Mandarin, 0 for English | — |
//!
//! A missing value stays missing (NaN): the boosted trees split on it, the logistic regression
//! reads it as the training mean. A model whose features are all in this table can score
//! profiles; one trained on other columns (e.g. Caravan's) cannot, and the dialer keeps its
//! baseline.

use super::Dataset;
use retrieval::{CustomerProfile, Language};

/// The profile features, in the order [`features`] returns them.
pub const PROFILE_FEATURES: [&str; 8] = [
    "age",
    "income_band",
    "children_in_school",
    "recent_purchases",
    "days_since_last_contact",
    "price_sensitivity",
    "calls_so_far",
    "language_zh",
];

/// The profile's features at `now_ms`, in [`PROFILE_FEATURES`] order.
pub fn features(p: &CustomerProfile, now_ms: i64) -> [f64; 8] {
    let opt = |v: Option<f64>| v.unwrap_or(f64::NAN);
    [
        opt(p.age.map(f64::from)),
        opt(p.income_band.map(f64::from)),
        opt(p.children_in_school.map(f64::from)),
        opt(p.recent_purchases.map(f64::from)),
        opt(p
            .last_contact_ms
            .map(|t| ((now_ms - t) as f64 / 86_400_000.0).max(0.0))),
        opt(p.price_sensitivity.map(f64::from)),
        f64::from(p.calls_so_far),
        f64::from(u8::from(p.language == Language::Zh)),
    ]
}

/// The value of feature `name` for a profile, or `None` for a name not in [`PROFILE_FEATURES`].
pub fn feature(p: &CustomerProfile, name: &str, now_ms: i64) -> Option<f64> {
    let i = PROFILE_FEATURES.iter().position(|f| *f == name)?;
    Some(features(p, now_ms)[i])
}

/// Labelled profiles as a training set (id = customer id).
pub fn dataset(rows: &[(CustomerProfile, bool)], now_ms: i64) -> Dataset {
    dataset_at(rows.iter().map(|(p, y)| (p, now_ms, *y)))
}

/// Labelled profiles, each read at its own time (e.g. when the customer was called), as a
/// training set (id = customer id).
pub fn dataset_at<'a>(rows: impl IntoIterator<Item = (&'a CustomerProfile, i64, bool)>) -> Dataset {
    let mut data = Dataset {
        feature_names: PROFILE_FEATURES.iter().map(|s| s.to_string()).collect(),
        ids: Vec::new(),
        features: Vec::new(),
        labels: Vec::new(),
    };
    for (p, at_ms, y) in rows {
        data.ids.push(p.customer_id.clone());
        data.features.extend(features(p, at_ms));
        data.labels.push(y);
    }
    data
}

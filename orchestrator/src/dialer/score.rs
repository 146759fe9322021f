//! Who is worth calling first: the [`Scorer`] trait, its documented baseline, and
//! [`ModelScorer`], the active trained propensity model (qa) when there is one; plus the segment
//! a customer is reported under.

use qa::propensity::{profile, PropensityModel};
use retrieval::{CustomerProfile, SqlStore};
use std::sync::Arc;

/// Profile price sensitivity at or above which a customer without a stored segment counts as
/// `price_sensitive`: the dialogue policy's default `price_sensitive_from`, so the dialer
/// reports a customer under the pitch they will hear.
pub const PRICE_SENSITIVE_FROM: f32 = 0.6;

/// Ranks customers for a campaign's queue. Higher scores are dialed first; a score is taken
/// once, when the customer is enqueued.
pub trait Scorer: Send + Sync {
    /// The scorer's name and version, for logs and the status API.
    fn name(&self) -> &str;

    /// The customer's score at `now_ms` (the baseline's is a probability in 0–1).
    fn score(&self, profile: &CustomerProfile, now_ms: i64) -> f64;

    /// The segment the customer is queued and reported under: the profile's stored segment
    /// (from the clustering job) when present; otherwise `price_sensitive` at a price
    /// sensitivity of [`PRICE_SENSITIVE_FROM`] or more, `quality_oriented` below it, and
    /// `unsegmented` when the profile has neither.
    fn segment(&self, profile: &CustomerProfile) -> String {
        match (profile.segment.as_deref(), profile.price_sensitivity) {
            (Some(s), _) if !s.trim().is_empty() => s.trim().to_string(),
            (_, Some(p)) if p >= PRICE_SENSITIVE_FROM => "price_sensitive".into(),
            (_, Some(_)) => "quality_oriented".into(),
            _ => "unsegmented".into(),
        }
    }
}

/// A hand-set logistic score from profile fields, standing in for a trained propensity model:
///
/// ```text
/// x = −2.0 + 0.5·children_in_school + 0.3·recent_purchases + 0.4·[income band 2–4]
///          − 1.0·price_sensitivity − 0.004·days_since_last_contact
/// score = 1 / (1 + e^−x)
/// ```
///
/// Why these terms: the product the campaigns sell is family education insurance, so parents
/// of school children are its buyers (children are counted up to 3); recent purchases mark a
/// customer who is active and reachable (up to 5); the middle income bands both need and can
/// afford the cover; price-sensitive customers convert less at list price; and a customer not
/// contacted for long has gone cold (days counted up to 365, from the profile's last contact,
/// CRM or ours). The signs are the product's; the weights are round numbers of the size the
/// synthetic CRM's own conversion model uses, so the demo ranks sensibly — they are not
/// fitted. A missing field contributes what an average customer would: no children, no
/// purchases, no income bonus, sensitivity 0.5, 180 days. The logistic form makes the score
/// read as a rough conversion probability, the same scale the propensity model will have.
#[derive(Debug, Clone, Copy, Default)]
pub struct BaselineScorer;

impl Scorer for BaselineScorer {
    fn name(&self) -> &str {
        "baseline-v1"
    }

    fn score(&self, p: &CustomerProfile, now_ms: i64) -> f64 {
        let children = f64::from(p.children_in_school.unwrap_or(0).min(3));
        let purchases = f64::from(p.recent_purchases.unwrap_or(0).min(5));
        let middle_income = matches!(p.income_band, Some(2..=4));
        let price = f64::from(p.price_sensitivity.unwrap_or(0.5).clamp(0.0, 1.0));
        let days = p
            .last_contact_ms
            .map(|t| ((now_ms - t) as f64 / 86_400_000.0).clamp(0.0, 365.0))
            .unwrap_or(180.0);
        let x = -2.0 + 0.5 * children + 0.3 * purchases + if middle_income { 0.4 } else { 0.0 }
            - 1.0 * price
            - 0.004 * days;
        1.0 / (1.0 + (-x).exp())
    }
}

/// The active propensity model of the store (`model_versions`, name `propensity`) as the
/// dialer's score: the calibrated probability of a purchase, from the profile features of
/// [`qa::propensity::profile`] (age, income band, children in school, recent purchases, days
/// since the last contact, price sensitivity, calls so far, Mandarin or not; a missing field
/// stays missing and the model treats it as it learned to). Only a model trained on those
/// columns can score profiles; [`ModelScorer::active_or_baseline`] keeps the baseline otherwise.
#[derive(Debug)]
pub struct ModelScorer {
    name: String,
    model: PropensityModel,
}

impl ModelScorer {
    /// Wraps `model` (registered as `version`), or says which of its features no profile has.
    pub fn new(version: &str, model: PropensityModel) -> Result<Self, String> {
        let unknown: Vec<&str> = model
            .features()
            .iter()
            .filter(|f| !profile::PROFILE_FEATURES.contains(&f.as_str()))
            .map(String::as_str)
            .collect();
        if !unknown.is_empty() {
            return Err(format!(
                "propensity model {version} needs features no profile has: {}",
                unknown.join(", ")
            ));
        }
        Ok(ModelScorer {
            name: format!("propensity-{version}"),
            model,
        })
    }

    /// The store's active propensity model when it can score profiles, else [`BaselineScorer`]
    /// (the reason is logged).
    pub async fn active_or_baseline(store: &SqlStore) -> Arc<dyn Scorer> {
        match qa::propensity::active_model(store).await {
            Ok(Some((version, model))) => match ModelScorer::new(&version.version, model) {
                Ok(s) => {
                    tracing::info!(scorer = s.name(), "dialer scores with the active model");
                    return Arc::new(s);
                }
                Err(why) => tracing::warn!("{why}; the dialer keeps the baseline score"),
            },
            Ok(None) => tracing::info!("no active propensity model; baseline score"),
            Err(e) => tracing::warn!("active propensity model unusable ({e}); baseline score"),
        }
        Arc::new(BaselineScorer)
    }
}

impl Scorer for ModelScorer {
    fn name(&self) -> &str {
        &self.name
    }

    fn score(&self, p: &CustomerProfile, now_ms: i64) -> f64 {
        let row: Vec<f64> = self
            .model
            .features()
            .iter()
            .map(|f| profile::feature(p, f, now_ms).unwrap_or(f64::NAN))
            .collect();
        self.model.score_row(&row)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn baseline_prefers_parents_and_buyers() {
        let now = 1_750_000_000_000;
        let base = CustomerProfile {
            customer_id: "c".into(),
            ..Default::default()
        };
        let keen = CustomerProfile {
            children_in_school: Some(2),
            recent_purchases: Some(3),
            income_band: Some(3),
            price_sensitivity: Some(0.2),
            last_contact_ms: Some(now - 10 * 86_400_000),
            ..base.clone()
        };
        let cold = CustomerProfile {
            price_sensitivity: Some(0.9),
            last_contact_ms: Some(now - 400 * 86_400_000),
            ..base.clone()
        };
        let s = BaselineScorer;
        assert!(s.score(&keen, now) > s.score(&base, now));
        assert!(s.score(&base, now) > s.score(&cold, now));
        assert!((0.0..=1.0).contains(&s.score(&keen, now)));
        assert_eq!(s.segment(&cold), "price_sensitive");
        assert_eq!(s.segment(&keen), "quality_oriented");
        assert_eq!(s.segment(&base), "unsegmented");
    }

    #[test]
    fn model_scorer_ranks_like_the_truth_and_refuses_foreign_features() {
        use qa::propensity::{self, ModelKind, TrainOptions};
        let now = 1_750_000_000_000;
        let people = retrieval::synth::generate(3000, 21, 0.5);
        let rows: Vec<(CustomerProfile, bool)> = people
            .iter()
            .map(|c| {
                let p = CustomerProfile {
                    customer_id: c.customer_id.clone(),
                    age: Some(c.age),
                    income_band: Some(c.income_band),
                    children_in_school: Some(c.children_in_school),
                    recent_purchases: Some(c.recent_purchases),
                    last_contact_ms: Some(now - i64::from(c.days_since_last_contact) * 86_400_000),
                    price_sensitivity: Some(c.price_sensitivity),
                    ..Default::default()
                };
                (p, c.converted)
            })
            .collect();
        let data = propensity::profile::dataset(&rows, now);
        let opts = TrainOptions {
            kinds: vec![ModelKind::Logistic],
            ..TrainOptions::default()
        };
        let report = propensity::train(&data, "customer_id", "converted", &opts, &mut |_| {})
            .expect("train");
        let model = report.best().clone();
        let scorer = ModelScorer::new("test", model.clone()).expect("profile features");
        assert_eq!(scorer.name(), "propensity-test");
        let scores: Vec<f64> = rows.iter().map(|(p, _)| scorer.score(p, now)).collect();
        let truth: Vec<bool> = rows.iter().map(|&(_, y)| y).collect();
        assert!(propensity::auc(&scores, &truth) > 0.65);
        // The scorer's numbers are the model's own on the same features.
        assert_eq!(scores, model.score(&data).expect("score"));
        // A model on columns no profile has is refused (the dialer then keeps the baseline).
        let mut foreign = model;
        foreign.card.features[0] = "MOSTYPE".into();
        let err = ModelScorer::new("caravan", foreign).expect_err("foreign features");
        assert!(err.contains("MOSTYPE"), "{err}");
    }
}

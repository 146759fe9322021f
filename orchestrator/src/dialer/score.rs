//! Who is worth calling first: the [`Scorer`] trait and its documented baseline, used until the
//! QA wave's propensity model takes its place, plus the segment a customer is reported under.

use retrieval::CustomerProfile;

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
}

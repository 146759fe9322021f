//! Campaign experiments, declared under `experiment:` in the campaign YAML: an A/B split of the
//! customers between two arms — two propensity model versions (the dialer's [`Scorer`]) or two
//! script variants — and a Thompson-sampling bandit per customer segment over the script's named
//! choice points ([`dialog::policy::CHOICE_POINTS`]: opening line, pitch order, what to say
//! after a first refusal).
//!
//! A customer's arm is a seeded hash of the experiment and the customer id: stable across
//! attempts and restarts, and balanced. The bandit's counts live in SQL (`bandit_arms`): each
//! call start reads them, so every line of the campaign and a restarted runner share what was
//! learned; each stored call adds its outcome in its own transaction, with the arms it played
//! (`call_arms`). The dialogue only receives the chosen variants ([`VariantChoice`]); it knows
//! nothing of SQL or experiments.

use crate::campaign::CampaignError;
use crate::dialer::{BaselineScorer, ModelScorer, Scorer};
use dialog::policy::{Campaign, VariantChoice, CHOICE_POINTS};
use qa::experiment::{Tally, ThompsonBandit};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use retrieval::store::{CallArm, AB_CHOICE};
use retrieval::{CustomerProfile, RetrievalError, SqlStore};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

/// The `model` of an arm scored by the dialer's documented baseline instead of a trained version.
pub const BASELINE_MODEL: &str = "baseline";

/// An experiment as written in the campaign YAML.
///
/// ```yaml
/// experiment:
///   id: spring-opening      # optional; default: the campaign id
///   seed: 7                 # the arm hash and the bandit's draws
///   arms:                   # optional A/B split: exactly two arms, each a model or variants
///     - { name: A, model: baseline }
///     - { name: B, model: logistic-3f2a9c1b0d4e }
///   bandit: true            # optional: learn the choice points below per segment
///   choices: [opening, pitch_order, after_refusal]
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExperimentSpec {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub seed: u64,
    #[serde(default)]
    pub arms: Vec<ArmSpec>,
    #[serde(default)]
    pub bandit: bool,
    /// The choice points the bandit learns (default: all of them).
    #[serde(default = "all_choice_points")]
    pub choices: Vec<String>,
}

fn all_choice_points() -> Vec<String> {
    CHOICE_POINTS.iter().map(|(n, _)| n.to_string()).collect()
}

/// One arm of an A/B split: a propensity model version, or script variants per choice point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArmSpec {
    pub name: String,
    /// A registered propensity model version (`ringwise train` prints it), or `baseline`.
    #[serde(default)]
    pub model: Option<String>,
    /// Choice point → variant index (0-based) this arm's customers hear.
    #[serde(default)]
    pub variants: BTreeMap<String, usize>,
}

fn invalid(message: String) -> CampaignError {
    CampaignError::Invalid(format!("campaign YAML: experiment: {message}"))
}

/// The A/B arm (0 or 1) of a customer: a seeded 64-bit hash (FNV-1a, splitmix64 finalizer) of
/// the experiment id and the customer id, so arms are stable and split evenly.
pub fn arm_of(seed: u64, experiment: &str, customer_id: &str) -> usize {
    let mut h = 0xcbf2_9ce4_8422_2325u64 ^ seed;
    for b in experiment.bytes().chain([0xff]).chain(customer_id.bytes()) {
        h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
    }
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^= h >> 31;
    (h & 1) as usize
}

/// The dialer's score for a model A/B split: each customer is scored by their arm's model.
pub struct ArmScorer {
    name: String,
    seed: u64,
    experiment: String,
    arms: [Arc<dyn Scorer>; 2],
}

impl Scorer for ArmScorer {
    fn name(&self) -> &str {
        &self.name
    }

    fn score(&self, profile: &CustomerProfile, now_ms: i64) -> f64 {
        let arm = arm_of(self.seed, &self.experiment, &profile.customer_id);
        self.arms[arm].score(profile, now_ms)
    }

    fn segment(&self, profile: &CustomerProfile) -> String {
        self.arms[0].segment(profile)
    }
}

/// What one call plays.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Assignment {
    pub experiment: String,
    pub segment: String,
    /// The customer's A/B arm, when the experiment splits.
    pub ab_arm: Option<String>,
    /// Choice point → (variant, chosen by the bandit).
    pub choices: BTreeMap<String, (usize, bool)>,
    /// What the dialogue receives: template key → variant.
    pub variants: VariantChoice,
}

impl Assignment {
    /// The rows stored with the call.
    pub fn call_arms(
        &self,
        call_id: &str,
        customer_id: &str,
        campaign_id: &str,
        converted: bool,
    ) -> Vec<CallArm> {
        let row = |choice: &str, arm: String, by_bandit: bool| CallArm {
            call_id: call_id.to_string(),
            customer_id: customer_id.to_string(),
            campaign_id: campaign_id.to_string(),
            experiment: self.experiment.clone(),
            choice: choice.to_string(),
            arm,
            segment: self.segment.clone(),
            converted,
            by_bandit,
        };
        self.ab_arm
            .iter()
            .map(|a| row(AB_CHOICE, a.clone(), false))
            .chain(
                self.choices
                    .iter()
                    .map(|(c, (v, by_bandit))| row(c, variant_name(*v), *by_bandit)),
            )
            .collect()
    }
}

/// How a variant is named in the store and the report.
pub fn variant_name(index: usize) -> String {
    format!("v{index}")
}

/// A campaign's experiment, checked against the campaign's script.
pub struct Experiment {
    pub campaign_id: String,
    pub id: String,
    spec: ExperimentSpec,
    /// Choice point → (its templates, its variants).
    points: BTreeMap<String, (&'static [&'static str], usize)>,
    store: SqlStore,
    rng: Mutex<ChaCha8Rng>,
}

impl std::fmt::Debug for Experiment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Experiment")
            .field("campaign_id", &self.campaign_id)
            .field("id", &self.id)
            .field("spec", &self.spec)
            .finish_non_exhaustive()
    }
}

impl Experiment {
    /// Checks `spec` against the dialogue's `script` (choice points and their variants): one
    /// arm, two arms of different kinds, an unknown choice point or a variant the script does
    /// not have are errors that say what to write. Model versions are checked by
    /// [`arm_scorer`](Self::arm_scorer).
    pub fn new(
        campaign_id: &str,
        spec: ExperimentSpec,
        script: &Campaign,
        store: SqlStore,
    ) -> Result<Self, CampaignError> {
        let id = spec
            .id
            .clone()
            .unwrap_or_else(|| campaign_id.to_string())
            .trim()
            .to_string();
        if id.is_empty() || id.len() > 64 {
            return Err(invalid("`id` must be 1 to 64 characters".into()));
        }
        if spec.arms.is_empty() && !spec.bandit {
            return Err(invalid(
                "declares neither `arms` (an A/B split) nor `bandit: true`".into(),
            ));
        }
        let mut points = BTreeMap::new();
        let mut point = |name: &str| -> Result<(&'static [&'static str], usize), CampaignError> {
            let found = script
                .choice_point(name)
                .map_err(|e| invalid(format!("{e} (script {})", script.id)))?;
            points.insert(name.to_string(), found);
            Ok(found)
        };
        if !spec.arms.is_empty() {
            if spec.arms.len() != 2 {
                return Err(invalid(format!(
                    "an A/B split needs exactly two arms, found {}: add the other arm (e.g. `- {{ name: B, model: … }}`) or remove `arms`",
                    spec.arms.len()
                )));
            }
            let (a, b) = (&spec.arms[0], &spec.arms[1]);
            for arm in [a, b] {
                if arm.name.trim().is_empty() {
                    return Err(invalid("every arm needs a `name`".into()));
                }
                match (&arm.model, arm.variants.is_empty()) {
                    (Some(_), false) | (None, true) => {
                        return Err(invalid(format!(
                            "arm {:?}: set either `model` (a propensity model version or `baseline`) or `variants` (choice point: variant), one of them",
                            arm.name
                        )))
                    }
                    _ => {}
                }
                for (name, v) in &arm.variants {
                    let (_, n) = point(name)?;
                    if *v >= n {
                        return Err(invalid(format!(
                            "arm {:?}: choice point {name} has {n} variant(s) (0 to {}) in the script; {v} is out of range",
                            arm.name,
                            n.saturating_sub(1)
                        )));
                    }
                }
            }
            if a.name == b.name {
                return Err(invalid(format!("both arms are named {:?}", a.name)));
            }
            if a.model.is_some() != b.model.is_some() {
                return Err(invalid(
                    "the two arms must vary the same thing: both `model` or both `variants`".into(),
                ));
            }
            if a.model.is_some() && a.model == b.model {
                return Err(invalid(format!(
                    "both arms use model {:?}: an A/B split compares two versions",
                    a.model.as_deref().unwrap_or_default()
                )));
            }
            if a.model.is_none() && a.variants == b.variants {
                return Err(invalid(
                    "both arms play the same variants: an A/B split compares two".into(),
                ));
            }
        }
        if spec.bandit {
            if spec.choices.is_empty() {
                return Err(invalid(
                    "`bandit: true` with no `choices`: list some of opening, pitch_order, after_refusal"
                        .into(),
                ));
            }
            for name in &spec.choices {
                let (_, n) = point(name)?;
                if n < 2 {
                    return Err(invalid(format!(
                        "choice point {name} has {n} variant(s) in the script; a bandit needs at least two"
                    )));
                }
                if spec.arms.iter().any(|a| a.variants.contains_key(name)) {
                    return Err(invalid(format!(
                        "choice point {name} is both fixed by an arm and learned by the bandit: pick one"
                    )));
                }
            }
        }
        Ok(Self {
            campaign_id: campaign_id.to_string(),
            id,
            rng: Mutex::new(ChaCha8Rng::seed_from_u64(spec.seed ^ 0x005e_edba_4d17)),
            spec,
            points,
            store,
        })
    }

    pub fn spec(&self) -> &ExperimentSpec {
        &self.spec
    }

    /// For a model A/B split, the dialer's scorer: each customer scored by their arm's model
    /// version (loaded and checked against its sha256). An unknown version is an error naming
    /// it.
    pub async fn arm_scorer(&self) -> Result<Option<ArmScorer>, CampaignError> {
        let [a, b] = self.spec.arms.as_slice() else {
            return Ok(None);
        };
        let (Some(ma), Some(mb)) = (&a.model, &b.model) else {
            return Ok(None);
        };
        let mut scorers: Vec<Arc<dyn Scorer>> = Vec::new();
        for (arm, version) in [(a, ma), (b, mb)] {
            if version == BASELINE_MODEL {
                scorers.push(Arc::new(BaselineScorer));
                continue;
            }
            let loaded = qa::propensity::model_version(&self.store, version)
                .await
                .map_err(|e| {
                    invalid(format!(
                        "arm {:?}: model version {version:?} cannot be loaded: {e}",
                        arm.name
                    ))
                })?;
            let Some((_, model)) = loaded else {
                return Err(invalid(format!(
                    "arm {:?}: unknown model version {version:?}: use a version `ringwise train` registered (table model_versions) or `baseline`",
                    arm.name
                )));
            };
            let scorer = ModelScorer::new(version, model)
                .map_err(|e| invalid(format!("arm {:?}: {e}", arm.name)))?;
            scorers.push(Arc::new(scorer));
        }
        let [sa, sb] = <[Arc<dyn Scorer>; 2]>::try_from(scorers)
            .map_err(|_| invalid("two arms, two scorers".into()))?;
        Ok(Some(ArmScorer {
            name: format!("ab({} | {})", sa.name(), sb.name()),
            seed: self.spec.seed,
            experiment: self.id.clone(),
            arms: [sa, sb],
        }))
    }

    /// What a customer of `segment` plays on this call: their A/B arm (hashed) and, with the
    /// bandit on, a Thompson draw per choice point from the segment's counts in the store.
    pub async fn assign(
        &self,
        customer_id: &str,
        segment: &str,
    ) -> Result<Assignment, RetrievalError> {
        let mut out = Assignment {
            experiment: self.id.clone(),
            segment: segment.to_string(),
            ..Assignment::default()
        };
        if let Some(arm) = self
            .spec
            .arms
            .get(arm_of(self.spec.seed, &self.id, customer_id))
        {
            out.ab_arm = Some(arm.name.clone());
            for (point, v) in &arm.variants {
                out.choices.insert(point.clone(), (*v, false));
            }
        }
        if self.spec.bandit {
            let counts = self.store.bandit_arms(&self.campaign_id).await?;
            let mut rng = self.rng.lock().unwrap_or_else(PoisonError::into_inner);
            for point in &self.spec.choices {
                let Some((_, n)) = self.points.get(point) else {
                    continue;
                };
                let names: Vec<String> = (0..*n).map(variant_name).collect();
                let Ok(mut bandit) = ThompsonBandit::new(names.clone()) else {
                    continue;
                };
                for c in counts
                    .iter()
                    .filter(|c| c.segment == segment && &c.choice == point)
                {
                    if let Some(v) = names.iter().position(|n| *n == c.arm) {
                        bandit.set_tally(
                            segment,
                            v,
                            Tally {
                                calls: c.plays.max(0) as u64,
                                conversions: c.conversions.clamp(0, c.plays.max(0)) as u64,
                            },
                        );
                    }
                }
                out.choices
                    .insert(point.clone(), (bandit.choose(segment, &mut *rng), true));
            }
        }
        for (point, (v, _)) in &out.choices {
            if let Some((keys, _)) = self.points.get(point) {
                for key in keys.iter() {
                    out.variants.insert(key.to_string(), *v);
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arms_are_stable_and_balanced() {
        let ids: Vec<String> = (0..10_000).map(|i| format!("cust-{i:05}")).collect();
        let first: Vec<usize> = ids.iter().map(|c| arm_of(7, "exp", c)).collect();
        let again: Vec<usize> = ids.iter().map(|c| arm_of(7, "exp", c)).collect();
        assert_eq!(first, again);
        let b = first.iter().filter(|a| **a == 1).count();
        // Binomial(10 000, 0.5): 4 standard deviations is ±200.
        assert!((4800..=5200).contains(&b), "{b} of 10000 in arm B");
        // Another experiment (or seed) splits independently of this one.
        let other: Vec<usize> = ids.iter().map(|c| arm_of(7, "exp2", c)).collect();
        let same = first.iter().zip(&other).filter(|(x, y)| x == y).count();
        assert!((4800..=5200).contains(&same), "{same}");
    }
}

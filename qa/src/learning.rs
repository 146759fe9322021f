//! The learning loop: what a graded call teaches the propensity model. A call the bot lost (its
//! QA failure reason is a bot failure: the ASR missed the caller, the reply came too late, the
//! intent went unanswered…) says nothing about whether the customer would buy, so it is left out
//! of training instead of counted as the customer's refusal; calls that reached no one (no
//! answer, voicemail, silence) are left out too, as the model predicts conversion once
//! contacted.
//!
//! [`simulate`] measures the loop: a seeded campaign on the synthetic CRM whose bot fails more
//! often for one group of customers (injected failures), trained once with the raw outcomes and
//! once with the QA labels, both read on the same held-out customers against their true
//! outcomes.

use crate::grade::FailureReason;
use crate::propensity::{self, Dataset, Metrics, ModelKind, PropensityError, TrainOptions};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// What one call contributes to the training data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TrainingLabel {
    Converted,
    Declined,
    /// Not a customer's answer: left out of training.
    Excluded,
}

/// The training label of a call from its outcome and its QA failure reason (the primary one).
pub fn training_label(outcome: &str, failure: Option<FailureReason>) -> TrainingLabel {
    if outcome == "converted" {
        return TrainingLabel::Converted;
    }
    match failure {
        Some(f) if f.is_bot_failure() => TrainingLabel::Excluded,
        Some(FailureReason::NoAnswer | FailureReason::Voicemail | FailureReason::CallerSilent) => {
            TrainingLabel::Excluded
        }
        _ => TrainingLabel::Declined,
    }
}

/// Keeps the rows whose label is not [`TrainingLabel::Excluded`], labelled accordingly.
pub fn relabel(data: &Dataset, labels: &[TrainingLabel]) -> Dataset {
    let keep: Vec<usize> = (0..data.rows())
        .filter(|&i| labels.get(i).is_some_and(|l| *l != TrainingLabel::Excluded))
        .collect();
    let mut out = data.subset(&keep);
    out.labels = keep
        .iter()
        .map(|&i| labels[i] == TrainingLabel::Converted)
        .collect();
    out
}

/// The store's calls as training data for the propensity model (one row per call, the
/// customer's profile features at the time of the call).
#[derive(Debug, Clone)]
pub struct TrainingSet {
    /// Every call with a profile, labelled by its raw outcome (converted or not).
    pub raw: Dataset,
    /// The calls the QA labels keep, labelled by them.
    pub graded: Dataset,
    pub calls: usize,
    /// Calls the QA labels left out (bot failures, nobody reached).
    pub excluded: usize,
    /// Calls without a QA grade (labelled by their outcome alone).
    pub ungraded: usize,
    /// Calls whose customer has no profile any more (erased): not used.
    pub without_profile: usize,
}

/// Reads every stored call with its QA verdict and builds both training sets.
pub async fn store_training_set(
    store: &retrieval::SqlStore,
) -> Result<TrainingSet, crate::QaError> {
    let calls = store.training_calls().await?;
    let mut profiles = std::collections::HashMap::new();
    for c in &calls {
        if !profiles.contains_key(&c.customer_id) {
            let p = store.profile(&c.customer_id).await?;
            profiles.insert(c.customer_id.clone(), p);
        }
    }
    // Calls of erased customers (no profile any more) are not used.
    let usable: Vec<_> = calls
        .iter()
        .filter_map(|c| Some((c, profiles.get(&c.customer_id)?.as_ref()?)))
        .collect();
    let raw = crate::propensity::profile::dataset_at(
        usable
            .iter()
            .map(|(c, p)| (*p, c.started_at_ms, c.outcome == "converted")),
    );
    let qa: Vec<TrainingLabel> = usable
        .iter()
        .map(|(c, _)| {
            let failure = c.primary_failure.as_deref().and_then(FailureReason::parse);
            training_label(&c.outcome, failure)
        })
        .collect();
    let ungraded = usable.iter().filter(|(c, _)| !c.graded).count();
    let without_profile = calls.len() - usable.len();
    let graded = relabel(&raw, &qa);
    Ok(TrainingSet {
        calls: calls.len(),
        excluded: raw.rows() - graded.rows(),
        ungraded,
        without_profile,
        raw,
        graded,
    })
}

/// The loop's effect, measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoopReport {
    pub campaign_calls: usize,
    /// Calls the injected bot failures lost.
    pub bot_failures: usize,
    /// Held-out customers, scored against their true outcomes.
    pub held_out: usize,
    pub without_qa: Metrics,
    pub with_qa: Metrics,
}

impl LoopReport {
    pub fn lift_gain(&self) -> f64 {
        self.with_qa.lift_top10 - self.without_qa.lift_top10
    }
    pub fn auc_gain(&self) -> f64 {
        self.with_qa.auc - self.without_qa.auc
    }
}

/// How the simulated campaign goes wrong.
#[derive(Debug, Clone, PartialEq)]
pub struct LoopSimulation {
    pub campaign_calls: usize,
    pub held_out: usize,
    pub seed: u64,
    /// Share of Mandarin-speaking customers.
    pub zh_share: f64,
    /// Chance the bot loses a Mandarin call (e.g. the ASR on accented speech) / an English one.
    pub bot_failure_zh: f64,
    pub bot_failure_en: f64,
    pub kinds: Vec<ModelKind>,
}

impl Default for LoopSimulation {
    fn default() -> Self {
        Self {
            campaign_calls: 8000,
            held_out: 4000,
            seed: 7,
            zh_share: 0.5,
            bot_failure_zh: 0.5,
            bot_failure_en: 0.05,
            kinds: vec![ModelKind::Logistic],
        }
    }
}

const FEATURES: [&str; 8] = [
    "age",
    "income_band",
    "children_in_school",
    "recent_purchases",
    "days_since_last_contact",
    "price_sensitivity",
    "speaks_zh",
    "best_hour",
];

fn dataset(customers: &[retrieval::synth::SyntheticCustomer], labels: Vec<bool>) -> Dataset {
    Dataset {
        feature_names: FEATURES.iter().map(|s| s.to_string()).collect(),
        ids: customers.iter().map(|c| c.customer_id.clone()).collect(),
        features: customers
            .iter()
            .flat_map(|c| {
                [
                    f64::from(c.age),
                    f64::from(c.income_band),
                    f64::from(c.children_in_school),
                    f64::from(c.recent_purchases),
                    f64::from(c.days_since_last_contact),
                    f64::from(c.price_sensitivity),
                    f64::from(u8::from(c.language == "zh")),
                    f64::from(c.best_hour),
                ]
            })
            .collect(),
        labels,
    }
}

/// Runs the simulated campaign and both trainings (see the module docs).
pub fn simulate(sim: &LoopSimulation) -> Result<LoopReport, PropensityError> {
    let mut rng = ChaCha8Rng::seed_from_u64(sim.seed);
    let campaign = retrieval::synth::generate(sim.campaign_calls, sim.seed, sim.zh_share);
    let mut raw = Vec::with_capacity(campaign.len());
    let mut qa_labels = Vec::with_capacity(campaign.len());
    let mut bot_failures = 0;
    for c in &campaign {
        let fail_rate = if c.language == "zh" {
            sim.bot_failure_zh
        } else {
            sim.bot_failure_en
        };
        let (outcome, failure) = if rng.random_bool(fail_rate.clamp(0.0, 1.0)) {
            bot_failures += 1;
            // The caller was lost before answering: stored as a refusal.
            ("refused", Some(FailureReason::BotFailureAsr))
        } else if c.converted {
            ("converted", None)
        } else {
            ("refused", Some(FailureReason::CustomerRefusal))
        };
        raw.push(outcome == "converted");
        qa_labels.push(training_label(outcome, failure));
    }
    let naive = dataset(&campaign, raw);
    let graded = relabel(&naive, &qa_labels);
    // Held-out customers of the same population, with their true outcomes.
    let held = retrieval::synth::generate(sim.held_out, sim.seed ^ 0x5EED, sim.zh_share);
    let truth: Vec<bool> = held.iter().map(|c| c.converted).collect();
    let held_data = dataset(&held, truth.clone());
    let opts = TrainOptions {
        seed: sim.seed,
        kinds: sim.kinds.clone(),
        ..TrainOptions::default()
    };
    let read = |data: &Dataset| -> Result<Metrics, PropensityError> {
        let report = propensity::train(data, "customer_id", "converted", &opts, &mut |_| {})?;
        let scores = report.best().score(&held_data)?;
        Ok(Metrics::of(&scores, &truth, opts.cutoff))
    };
    Ok(LoopReport {
        campaign_calls: campaign.len(),
        bot_failures,
        held_out: held.len(),
        without_qa: read(&naive)?,
        with_qa: read(&graded)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bot_failures_and_unreached_calls_are_left_out_and_refusals_kept() {
        use FailureReason as F;
        assert_eq!(training_label("converted", None), TrainingLabel::Converted);
        assert_eq!(
            training_label("refused", Some(F::CustomerRefusal)),
            TrainingLabel::Declined
        );
        assert_eq!(
            training_label("refused", Some(F::BotFailureLatency)),
            TrainingLabel::Excluded
        );
        assert_eq!(
            training_label("no_answer", Some(F::NoAnswer)),
            TrainingLabel::Excluded
        );
        assert_eq!(training_label("hung_up", None), TrainingLabel::Declined);
    }
}

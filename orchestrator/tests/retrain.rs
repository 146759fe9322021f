//! The learning loop over a real SQLite store: calls stored the way the orchestrator stores them,
//! QA grades the way `ringwise qa run` writes them (with injected bot failures on half the
//! Mandarin calls), then `retrain`: a model is saved, promoted when there is none, its
//! before/after written for the report; `--if-due` then waits for the schedule.

use orchestrator::Config;
use retrieval::store::{CallRecord, QaCallGradeRecord, QaFailureRecord, StoredCall};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retrain_learns_from_graded_calls_and_keeps_to_its_schedule() {
    let tmp = tempfile::tempdir().unwrap();
    let config = Config::default().with_data_in(tmp.path());
    let store = retrieval::SqlStore::connect(&config.retrieval.database_url)
        .await
        .unwrap();
    let keys = orchestrator::demo::demo_keys(&config, &config.dialog.data_dir).unwrap();
    let customers = retrieval::synth::generate(900, 5, 0.5);
    let now = orchestrator::session::now_ms();
    let csv = retrieval::synth::to_csv(&customers, now);
    retrieval::import::import_customers(
        &store,
        &keys,
        &config.retrieval.crm,
        retrieval::import::Format::Csv,
        &csv,
        now,
    )
    .await
    .unwrap();
    let mut grades = Vec::new();
    for (i, c) in customers.iter().enumerate() {
        if store.profile(&c.customer_id).await.unwrap().is_none() {
            continue; // rejected by the import (invalid phone on purpose)
        }
        let bot_lost = c.language == "zh" && i % 2 == 0;
        let outcome = if c.converted && !bot_lost {
            "converted"
        } else {
            "refused"
        };
        let call_id = format!("call-{i}");
        let started = now - 86_400_000 + i as i64 * 1000;
        let call = StoredCall {
            call: CallRecord {
                id: call_id.clone(),
                customer_id: c.customer_id.clone(),
                campaign_id: "loop".into(),
                started_at_ms: started,
                ended_at_ms: started + 60_000,
                outcome: outcome.into(),
                turns: vec![],
            },
            attempt_id: None,
            end_reason: "outcome".into(),
            language: c.language.clone(),
            segment: String::new(),
            duration_ms: 60_000,
            actions: vec![],
            events: vec![],
            metrics: vec![],
            recording: None,
            do_not_call: false,
        };
        store
            .store_call(&call, &keys, async |_| Ok(()))
            .await
            .unwrap();
        let reason = match (outcome, bot_lost) {
            ("converted", _) => None,
            (_, true) => Some("bot_failure_asr"),
            _ => Some("customer_refusal"),
        };
        grades.push(QaCallGradeRecord {
            call_id,
            grader: "rules".into(),
            rubric_version: "test".into(),
            score: 1.0,
            max_score: 1.0,
            checks: vec![],
            failures: reason
                .map(|r| QaFailureRecord {
                    reason: r.into(),
                    criterion: None,
                    detail: String::new(),
                    turn: None,
                    at_ms: None,
                })
                .into_iter()
                .collect(),
            graded_at_ms: now,
        });
    }
    store.store_qa_grades(&grades).await.unwrap();

    let set = qa::learning::store_training_set(&store).await.unwrap();
    let lost = grades
        .iter()
        .filter(|g| {
            g.failures
                .first()
                .is_some_and(|f| f.reason == "bot_failure_asr")
        })
        .count();
    assert_eq!(set.excluded, lost, "bot-lost calls are left out");
    assert_eq!(set.ungraded, 0);

    let models = tmp.path().join("models");
    let text = orchestrator::learn::retrain(&config, &models, false)
        .await
        .unwrap();
    eprintln!("{text}");
    assert!(text.contains("promoted: no active version"), "{text}");
    let version = std::fs::read_dir(&models).unwrap().next().unwrap().unwrap();
    let comparison: qa::ModelComparison = serde_json::from_str(
        &std::fs::read_to_string(version.path().join("model_comparison.json")).unwrap(),
    )
    .unwrap();
    assert!(comparison.promoted);
    assert_eq!(comparison.before_version, "raw outcomes (no QA labels)");
    let auc = comparison.metrics.iter().find(|m| m.name == "auc").unwrap();
    assert!(auc.after > 0.55, "{comparison:?}");
    assert!(
        qa::propensity::active_model(&store)
            .await
            .unwrap()
            .is_some(),
        "the dialer's scorer finds the active version"
    );
    // The schedule: a fresh active version is not retrained.
    let text = orchestrator::learn::retrain(&config, &models, true)
        .await
        .unwrap();
    assert!(text.starts_with("not due"), "{text}");
}

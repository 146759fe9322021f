//! The main job on every real engine (models from scripts/setup.sh) and embedded defaults: the
//! demo campaign imports a CRM export, starts the gRPC server in-process, and the dialer places
//! calls on two lines to simulated callees who speak over the gRPC `Call` stream (8 kHz μ-law).
//! Every answered call must be stored whole (record, turns, latencies, sealed recording) with its
//! attempt completed, and the callees' personas must mostly reach the outcome they play.
#![allow(clippy::unwrap_used)] // Test helpers may unwrap: a failure is the test failing.

use orchestrator::demo::{self, DemoOptions};
use orchestrator::Config;
use std::path::PathBuf;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_campaign_runs_end_to_end_on_real_engines() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let tmp = tempfile::tempdir().unwrap();
    let mut config = Config::default().with_data_in(tmp.path());
    config.voice.models_dir = root.join("models");
    config.retrieval.embedder_dir = root.join("models/all-MiniLM-L6-v2");
    config.dialog.campaign = root.join("dialog/data/campaigns/family_education_insurance.yaml");
    config.dialog.nlu_dir = root.join("dialog/data/nlu");
    let options = DemoOptions {
        customers: 60,
        calls: 4,
        lines: 2,
        seed: 11,
        campaign: root.join("orchestrator/data/demo_campaign.yaml"),
        personas: root.join("orchestrator/data/personas.yaml"),
        out_dir: tmp.path().join("out"),
        speed: 1.5,
        progress: false,
    };
    let report = demo::run(&config, options).await.unwrap();
    assert!(report.imported > 40, "imported {}", report.imported);
    assert!(report.llm_phrasing.starts_with("off"));
    assert_eq!(report.calls.len(), 4, "{:#?}", report.calls);
    let store = retrieval::SqlStore::connect(&config.retrieval.database_url)
        .await
        .unwrap();
    let mut as_played = 0;
    for call in &report.calls {
        eprintln!(
            "{} {:?} -> {} ({:?}); heard {:?}; said {:?}",
            call.sim.call_id,
            call.sim.persona,
            call.outcome,
            call.end_reason,
            call.sim.report.as_ref().map(|r| &r.heard),
            call.sim.report.as_ref().map(|r| &r.said)
        );
        assert!(call.sim.error.is_none(), "{:?}", call.sim.error);
        if call.outcome == call.sim.persona.expected_outcome() {
            as_played += 1;
        }
        if call.outcome == "no_answer" {
            continue;
        }
        let stored = store.call(&call.sim.call_id).await.unwrap().unwrap();
        assert_eq!(stored.campaign_id, report.campaign_id);
        let facts = store.call_facts(&call.sim.call_id).await.unwrap().unwrap();
        // What the bot made of each turn, barge-ins and dropped turns: the reason a persona
        // missed its outcome is here.
        for e in &facts.events {
            if matches!(
                e.kind.as_str(),
                "turn" | "barge_in" | "turn_dropped" | "dialog_event" | "reprompt" | "bot_gap"
            ) {
                eprintln!("    {} {} {}", e.at_ms, e.kind, e.detail);
            }
        }
        assert!(facts.attempt_id.is_some());
        assert!(
            facts.events.iter().any(|e| e.kind == "greeting"),
            "{:?}",
            facts.events
        );
    }
    assert!(
        as_played * 2 >= report.calls.len(),
        "{as_played} of {} calls reached the persona's outcome",
        report.calls.len()
    );
    // Every attempt completed: nothing left dialing.
    let counts = store.dial_counts(&report.campaign_id).await.unwrap();
    assert_eq!(counts.dialing, 0, "{counts:?}");
    assert_eq!(counts.attempts, 4, "{counts:?}");
    assert!(!report.v2v_wall().is_empty());
}

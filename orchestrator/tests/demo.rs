//! The demo campaign on every real engine (models from scripts/setup.sh) and embedded defaults:
//! the CRM import, four calls (each persona once, en / zh alternating) whose outcomes must be the
//! personas' expected ones, transcripts close to what the simulated caller said, and every call
//! stored with its turns, actions, recording and consequences (do-not-call).
#![allow(clippy::unwrap_used)] // Test helpers may unwrap: a failure is the test failing.

use orchestrator::demo::{self, DemoOptions};
use orchestrator::Config;
use std::path::PathBuf;
use voice::metrics::{char_error_rate as cer, word_error_rate as wer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_campaign_runs_end_to_end_on_real_engines() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let tmp = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.voice.models_dir = root.join("models");
    config.retrieval.embedder_dir = root.join("models/all-MiniLM-L6-v2");
    config.retrieval.database_url = format!("sqlite://{}", tmp.path().join("db.sqlite").display());
    config.retrieval.index_dir = tmp.path().join("index");
    config.retrieval.lexical_dir = tmp.path().join("lexical");
    config.dialog.campaign = root.join("dialog/data/campaigns/family_education_insurance.yaml");
    config.dialog.nlu_dir = root.join("dialog/data/nlu");
    config.dialog.data_dir = tmp.path().join("data");
    let options = DemoOptions {
        customers: 80,
        calls: 4,
        personas: root.join("orchestrator/data/demo_callers.yaml"),
        out_dir: tmp.path().join("out"),
        // The test checks outcomes and records, not latency: no need to wait for the line.
        real_time: false,
        ..DemoOptions::default()
    };

    let report = demo::run(&config, options).await.unwrap();
    assert!(report.imported > 60, "imported {}", report.imported);
    assert!(report.knowledge_snippets > 0);
    assert!(report.llm_phrasing.starts_with("off"));
    assert_eq!(report.calls.len(), 4);
    let store = retrieval::SqlStore::connect(&config.retrieval.database_url)
        .await
        .unwrap();
    let (mut en_said, mut en_heard, mut zh_said, mut zh_heard) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for call in &report.calls {
        let r = &call.report;
        assert!(
            call.as_expected(),
            "{} ({}, {}): outcome {:?}, expected {}; turns {:#?}",
            r.call_id,
            call.persona,
            r.language,
            r.outcome,
            call.expected_outcome,
            r.turns
        );
        let (said, heard) = if r.language == "zh" {
            (&mut zh_said, &mut zh_heard)
        } else {
            (&mut en_said, &mut en_heard)
        };
        for t in &r.turns {
            said.push(t.caller_said.clone());
            heard.push(t.transcript.clone());
        }
        let stored = store.call(&r.call_id).await.unwrap().expect("call stored");
        assert_eq!(stored.turns.len(), 1 + 2 * r.turns.len());
        assert_eq!(Some(stored.outcome.as_str()), r.outcome.as_deref());
        let actions = store.actions(&r.call_id).await.unwrap();
        assert_eq!(actions.len(), 1 + r.turns.len());
        assert_eq!(actions[0].kind, "greet");
        let wav = hound::WavReader::open(&r.recording).unwrap();
        assert_eq!(wav.spec().channels, 2);
        assert!(
            wav.duration() > 16_000,
            "recording {} frames",
            wav.duration()
        );
        let profile = store.profile(&r.customer_id).await.unwrap().unwrap();
        assert_eq!(profile.do_not_call, call.expected_outcome == "do_not_call");
    }
    // Over all caller lines of a language (one short line may be misheard; the policy still
    // reached the outcome above).
    let en = wer(&en_said.join(" "), &en_heard.join(" "));
    assert!(
        en <= 0.25,
        "WER {en:.2}: heard {en_heard:?} for {en_said:?}"
    );
    let zh = cer(&zh_said.join(""), &zh_heard.join(""));
    assert!(zh <= 0.3, "CER {zh:.2}: heard {zh_heard:?} for {zh_said:?}");
}

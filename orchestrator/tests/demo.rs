//! The demo on every real engine (models from scripts/setup.sh): Whisper must recover the
//! synthesized sentence, the LLM must reply, and the call must be stored and indexed.
#![allow(clippy::unwrap_used)] // Test helpers may unwrap: a failure is the test failing.

use orchestrator::demo::{self, DemoOptions};
use orchestrator::Config;
use std::path::PathBuf;
use voice::metrics::word_error_rate as wer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_runs_end_to_end_on_real_engines() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let tmp = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.voice.models_dir = root.join("models");
    config.llm.model_path = root.join("models/llm/SmolLM2-135M-Instruct.Q4_1.gguf");
    config.retrieval.embedder_dir = root.join("models/all-MiniLM-L6-v2");
    config.retrieval.database_url = format!("sqlite://{}", tmp.path().join("db.sqlite").display());
    config.retrieval.index_dir = tmp.path().join("index");
    let options = DemoOptions {
        out_dir: tmp.path().join("out"),
        ..DemoOptions::default()
    };
    let sentence = options.caller_sentence.clone();

    let report = demo::run(&config, options).await.unwrap();
    let w = wer(&sentence, &report.transcript);
    assert!(
        w <= 0.25,
        "WER {w:.2}: {:?} vs {sentence:?}",
        report.transcript
    );
    assert!(!report.reply.is_empty());
    assert!(
        report.reply_audio_ms > 500.0,
        "reply audio {} ms",
        report.reply_audio_ms
    );
    assert!(report.reply_wav.exists() && report.caller_wav.exists());
    let store = retrieval::SqlStore::connect(&config.retrieval.database_url)
        .await
        .unwrap();
    let call = store
        .call(&report.call_id)
        .await
        .unwrap()
        .expect("call stored");
    assert_eq!(call.turns.len(), 2);
    assert_eq!(call.turns[0].text, report.transcript);
}

//! The eval suite's audio subset (scenarios with `modes: [.., audio]`) on every real engine
//! (models from scripts/setup.sh): each caller turn is spoken (the bot's voice pitched down)
//! into the gRPC `Call` stream of an in-process server (8 kHz μ-law), heard by Silero + Whisper,
//! answered by the dialogue and spoken by Piper; the decisions that come back must meet the same
//! expectations as in text mode. A handful of scenarios, so it stays within a few minutes on 2
//! cores.
#![allow(clippy::unwrap_used)] // Test helpers may unwrap: a failure is the test failing.

use evals::{Mode, Verdict};
use orchestrator::evaluate::{self, EvalRunArgs};
use orchestrator::Config;
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audio_subset_passes_over_the_call_stream() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut config = Config::default();
    config.voice.models_dir = root.join("models");
    config.retrieval.embedder_dir = root.join("models/all-MiniLM-L6-v2");
    config.dialog.campaign = root.join("dialog/data/campaigns/family_education_insurance.yaml");
    config.dialog.nlu_dir = root.join("dialog/data/nlu");
    assert!(
        config.voice.models_dir.join("silero_vad.onnx").is_file(),
        "models missing: run scripts/setup.sh"
    );
    let args = EvalRunArgs {
        dir: root.join("evals/scenarios"),
        mode: Mode::Audio,
        jobs: 1,
        filter: None,
        label: "audio subset".into(),
        llm_phrasing: None,
        speed: 1.0,
        timeout: Duration::from_secs(120),
    };
    let t = Instant::now();
    let results = evaluate::run(&config, &args, &mut |line| eprintln!("{line}"))
        .await
        .unwrap();
    eprintln!(
        "{}\n{:.1} s, {:.3} audio scenarios/s",
        evals::report::table(&results),
        t.elapsed().as_secs_f64(),
        results.scenarios_per_s()
    );
    assert!(results.scenarios.len() >= 4, "{:?}", results.scenarios);
    for s in &results.scenarios {
        assert_eq!(s.mode, Mode::Audio);
        let t = s.transcript.as_ref();
        assert!(
            t.is_some_and(|t| !t.greeting.is_empty()),
            "{}: no greeting stored",
            s.id
        );
    }
    assert!(
        results.scenarios.iter().all(|s| s.verdict == Verdict::Pass),
        "{}",
        evals::report::markdown(&results)
    );
}

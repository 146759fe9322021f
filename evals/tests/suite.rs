//! The repository's scenario suite (`evals/scenarios/`) in text mode on the production dialogue
//! stack: every scenario must pass. A failure prints the Markdown summary with the transcript.

mod common;

use evals::{load_dir, run_suite, RunOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_suite_passes_in_text_mode() {
    let (scenarios, bad) = load_dir(&common::suite_dir()).unwrap_or_else(|e| panic!("{e}"));
    assert!(bad.is_empty(), "bad scenario files: {bad:?}");
    assert!(scenarios.len() >= 40, "{} scenarios", scenarios.len());
    let results = run_suite(
        scenarios,
        Vec::new(),
        common::text_driver(),
        &RunOptions::default(),
        &mut |_| {},
    )
    .await;
    assert!(
        !results.failed(),
        "{}\n{}",
        evals::report::table(&results),
        evals::report::markdown(&results)
    );
}

//! The harness tests itself: scenarios that must fail fail for the right reason (wrong action,
//! forbidden phrase, latency over budget, wrong outcome); a bot that panics or errors is a failed
//! scenario, not a crashed run; bad files are reported with file, line and key while the good
//! ones run; the JUnit XML parses back with the right structure; a comparison finds the
//! regression; a stored call (with QA grades) captured into a scenario runs and passes.
#![allow(clippy::unwrap_used)] // Test helpers may unwrap: a failure is the test failing.

mod common;

use async_trait::async_trait;
use evals::results::Verdict;
use evals::{
    load_dir, run_suite, Driver, EvalError, Mode, RunOptions, RunResults, Scenario, Transcript,
};
use retrieval::store::{Action, CallRecord, ProfileRecord, QaGrade, StoredCall, TurnRecord};
use retrieval::{PrivacyKeys, SqlStore};
use std::path::PathBuf;
use std::sync::Arc;

fn data(dir: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(dir)
}

async fn run_dir(dir: &str, driver: Arc<dyn Driver>) -> RunResults {
    let (ok, bad) = load_dir(&data(dir)).unwrap();
    run_suite(ok, bad, driver, &RunOptions::default(), &mut |_| {}).await
}

fn result<'a>(r: &'a RunResults, id: &str) -> &'a evals::ScenarioResult {
    r.scenarios
        .iter()
        .find(|s| s.id == id || s.id.ends_with(id))
        .unwrap_or_else(|| panic!("no result {id}: {:?}", r.scenarios))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scenarios_that_must_fail_fail_for_their_reason() {
    let r = run_dir("must_fail", common::text_driver()).await;
    assert_eq!(r.scenarios.len(), 4);
    for (id, check) in [
        ("wrong_action", "action"),
        ("forbidden_phrase", "not_say"),
        ("latency", "latency"),
        ("outcome", "outcome"),
    ] {
        let s = result(&r, id);
        assert_eq!(s.verdict, Verdict::Fail, "{id}: {s:?}");
        assert!(
            s.failures.iter().any(|f| f.check == check),
            "{id} should fail on {check}: {:?}",
            s.failures
        );
    }
    assert!(result(&r, "outcome")
        .failures
        .iter()
        .any(|f| f.check == "never_match"));
    assert!(r.failed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_files_are_named_and_the_good_ones_still_run() {
    let r = run_dir("bad", common::text_driver()).await;
    assert_eq!(r.scenarios.len(), 4);
    let msg = |file: &str| -> String {
        let s = r
            .scenarios
            .iter()
            .find(|s| s.file.ends_with(file))
            .unwrap_or_else(|| panic!("{file}: {:?}", r.scenarios));
        assert_eq!(s.verdict, Verdict::Error, "{file}");
        s.failures[0].message.clone()
    };
    let unknown = msg("unknown_key.yaml");
    assert!(
        unknown.contains("line 5") && unknown.contains("acton"),
        "{unknown}"
    );
    let audio = msg("missing_audio.yaml");
    assert!(
        audio.contains("clips/caller_hello.wav") && audio.contains("line 4"),
        "{audio}"
    );
    let wrong = msg("wrong_type.yaml");
    assert!(
        wrong.contains("line 4") && wrong.contains("max_latency_ms"),
        "{wrong}"
    );
    assert_eq!(result(&r, "good").verdict, Verdict::Pass);
}

/// A bot that panics on one scenario and errors on another.
struct BrokenBot;

#[async_trait]
impl Driver for BrokenBot {
    fn mode(&self) -> Mode {
        Mode::Text
    }

    fn label(&self) -> String {
        "broken".into()
    }

    async fn run(&self, scenario: &Scenario) -> Result<Transcript, EvalError> {
        match scenario.id.as_str() {
            id if id.ends_with("wrong_action") => panic!("index out of bounds in the bot"),
            id if id.ends_with("latency") => Err(EvalError::Bot("NLU model missing".into())),
            _ => Ok(Transcript {
                greeting: "Hello.".into(),
                turns: Vec::new(),
                outcome: "open".into(),
            }),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashing_bot_fails_its_scenario_not_the_run() {
    let r = run_dir("must_fail", Arc::new(BrokenBot)).await;
    assert_eq!(r.scenarios.len(), 4, "every scenario has a result");
    let panicked = result(&r, "wrong_action");
    assert_eq!(panicked.verdict, Verdict::Error);
    assert!(
        panicked.failures[0]
            .message
            .contains("index out of bounds in the bot"),
        "{:?}",
        panicked.failures
    );
    let errored = result(&r, "latency");
    assert_eq!(errored.verdict, Verdict::Error);
    assert!(errored.failures[0].message.contains("NLU model missing"));
    // The others ran and were judged.
    assert_eq!(result(&r, "forbidden_phrase").verdict, Verdict::Fail);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn junit_output_parses_back_with_its_structure() {
    let mut r = run_dir("must_fail", Arc::new(BrokenBot)).await;
    // Text that must be escaped.
    r.label = "a <b> & \"c\"".into();
    let xml = evals::report::junit::junit(&r);
    let doc = roxmltree::Document::parse(&xml).unwrap_or_else(|e| panic!("{e}\n{xml}"));
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "testsuites");
    assert!(root.attribute("name").unwrap().contains("a <b> & \"c\""));
    let cases: Vec<_> = root
        .descendants()
        .filter(|n| n.has_tag_name("testcase"))
        .collect();
    assert_eq!(cases.len(), r.scenarios.len());
    assert_eq!(root.attribute("tests"), Some("4"));
    let failures = root
        .descendants()
        .filter(|n| n.has_tag_name("failure"))
        .count();
    let errors = root
        .descendants()
        .filter(|n| n.has_tag_name("error"))
        .count();
    assert_eq!(failures, r.count(Verdict::Fail));
    assert_eq!(errors, r.count(Verdict::Error));
    assert_eq!(root.attribute("errors"), Some(errors.to_string().as_str()));
    for suite in root.children().filter(|n| n.is_element()) {
        assert_eq!(suite.tag_name().name(), "testsuite");
        let n: usize = suite.attribute("tests").unwrap().parse().unwrap();
        assert_eq!(
            n,
            suite
                .children()
                .filter(|c| c.has_tag_name("testcase"))
                .count()
        );
    }
    for case in cases {
        assert!(case.attribute("name").is_some() && case.attribute("classname").is_some());
        let _: f64 = case.attribute("time").unwrap().parse().unwrap();
    }
    // The summaries carry every scenario too.
    let md = evals::report::markdown(&r);
    let html = evals::report::html::html(&r);
    for s in &r.scenarios {
        assert!(md.contains(&s.id) && html.contains(&s.id), "{}", s.id);
    }
    assert!(!html.contains("<b>"), "escaped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_round_trip_and_compare_finds_the_regression() {
    let good = run_dir("must_fail", common::text_driver()).await;
    let broken = run_dir("must_fail", Arc::new(BrokenBot)).await;
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("a.json");
    good.save(&path).unwrap();
    assert_eq!(RunResults::load(&path).unwrap(), good);
    // Flip one verdict so that A has a pass to lose.
    let mut a = good.clone();
    a.scenarios[0].verdict = Verdict::Pass;
    let c = evals::compare(&a, &broken);
    let id = &a.scenarios[0].id;
    assert!(
        c.regressions().iter().any(|d| &d.id == id),
        "{}",
        c.markdown()
    );
    let same = evals::compare(&good, &good);
    assert!(same.regressions().is_empty());
    assert!(same.scenarios.iter().all(|d| d.wording == 0.0));
    assert!(c.markdown().contains("REGRESSED"));
    let bad = tmp.path().join("bad.json");
    std::fs::write(&bad, "{\"version\": 1}").unwrap();
    let err = RunResults::load(&bad).unwrap_err().to_string();
    assert!(err.contains("bad.json"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_call_captured_as_a_scenario_runs_and_passes() {
    // 1. Play a scenario to get a realistic call.
    let suite = common::suite_dir();
    let scenario = Scenario::load("en/price_talk", &suite.join("en/price_talk.yaml")).unwrap();
    let driver = common::text_driver();
    let transcript = driver.run(&scenario).await.unwrap();
    assert_eq!(transcript.outcome, "refused");

    // 2. Store it as the orchestrator stores a call, with a QA grade.
    let tmp = tempfile::tempdir().unwrap();
    let store = SqlStore::connect(&format!(
        "sqlite://{}",
        tmp.path().join("calls.db").display()
    ))
    .await
    .unwrap();
    let keys = PrivacyKeys::from_base64(
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
        "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=",
    )
    .unwrap();
    let profile = scenario.profile();
    store
        .upsert_profiles(
            &[ProfileRecord {
                profile: profile.clone(),
                phone: None,
                created_at_ms: 1,
            }],
            "test",
            1,
        )
        .await
        .unwrap();
    let call_id = "call-captured-1";
    let mut turns = vec![TurnRecord {
        speaker: "bot".into(),
        text: transcript.greeting.clone(),
        latency_ms: None,
    }];
    let mut actions = vec![Action {
        call_id: call_id.into(),
        seq: 0,
        kind: "greet".into(),
        detail: r#"{"action":{"type":"greet"},"rule":"call_start","reason":"x"}"#.into(),
        at_ms: 2,
    }];
    for (i, t) in transcript.turns.iter().enumerate() {
        turns.push(TurnRecord {
            speaker: "caller".into(),
            text: t.caller.clone(),
            latency_ms: None,
        });
        turns.push(TurnRecord {
            speaker: "bot".into(),
            text: t.reply.clone(),
            latency_ms: t.latency_ms,
        });
        actions.push(Action {
            call_id: call_id.into(),
            seq: i as i64 + 1,
            kind: t.action.clone(),
            detail: serde_json::json!({"action": t.action_detail, "rule": t.rule, "reason": "x"})
                .to_string(),
            at_ms: 2,
        });
    }
    let stored = StoredCall {
        call: CallRecord {
            id: call_id.into(),
            customer_id: profile.customer_id.clone(),
            campaign_id: "family-protection-2026".into(),
            started_at_ms: 1,
            ended_at_ms: 2,
            outcome: transcript.outcome.clone(),
            turns,
        },
        attempt_id: None,
        end_reason: "outcome".into(),
        language: "en".into(),
        segment: "quality_oriented".into(),
        duration_ms: 1,
        actions,
        events: Vec::new(),
        metrics: Vec::new(),
        recording: None,
        do_not_call: false,
    };
    store
        .store_call(&stored, &keys, async |_c: &mut sqlx::AnyConnection| Ok(()))
        .await
        .unwrap();
    store
        .upsert_qa_grades(&[QaGrade {
            call_id: call_id.into(),
            criterion: "objection_handling".into(),
            score: 1.0,
            max_score: 3.0,
            grader: "rules-v1".into(),
            notes: "closed after the second objection".into(),
            graded_at_ms: 3,
        }])
        .await
        .unwrap();

    // 3. Capture, write, load and run it.
    let recorded = evals::capture::fetch(&store, call_id).await.unwrap();
    let file = evals::capture::scenario_of(&recorded);
    let yaml = evals::capture::to_yaml(&file).unwrap();
    assert!(yaml.contains("objection_handling"), "{yaml}");
    let path = tmp.path().join("captured.yaml");
    std::fs::write(&path, &yaml).unwrap();
    let captured = Scenario::load("captured", &path).unwrap_or_else(|e| panic!("{e}\n{yaml}"));
    assert_eq!(captured.file.turns.len(), transcript.turns.len());
    assert_eq!(captured.file.judge.len(), 1);
    let replay = driver.run(&captured).await.unwrap();
    let failures = evals::check(&captured, Mode::Text, &replay);
    assert!(failures.is_empty(), "{failures:?}\n{yaml}");
    assert_eq!(replay.outcome, "refused");
    // And an unknown call is named.
    let err = evals::capture::fetch(&store, "nope").await.unwrap_err();
    assert!(err.to_string().contains("nope"), "{err}");
}

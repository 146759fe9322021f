//! Campaign experiments over a real SQLite store: bad `experiment:` YAML is refused with a clear
//! error; the bandit's counts, written with each call in its transaction, survive a restart and
//! steer the next choices; and the demo campaign (gRPC `Call` stream, dialer, call sessions; fake
//! engines so it runs in seconds) records the arms every answered call played, the A/B variant
//! reaching the dialogue. The bandit's persistence and the erasure of a customer's arms run on
//! the PostgreSQL of our machine kind too (skipped with a message when it is absent).
#![allow(clippy::unwrap_used)] // Test helpers may unwrap: a failure is the test failing.

use dialog::policy::Campaign;
use orchestrator::callee::{CalleeEngines, PersonaLines};
use orchestrator::campaign::CampaignSpec;
use orchestrator::demo::{self, DemoOptions};
use orchestrator::experiment::{Experiment, ExperimentSpec};
use orchestrator::{Config, Engines};
use rand::{Rng, SeedableRng};
use retrieval::store::{record_call_arms_in, CallRecord, StoredCall, AB_CHOICE};
use retrieval::SqlStore;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn script() -> Campaign {
    Campaign::load(&root().join("dialog/data/campaigns/family_education_insurance.yaml")).unwrap()
}

fn spec(yaml: &str) -> ExperimentSpec {
    let campaign = format!("id: c1\nname: test\nexperiment:\n{yaml}");
    CampaignSpec::parse(&campaign).unwrap().experiment.unwrap()
}

fn keys() -> retrieval::PrivacyKeys {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    retrieval::PrivacyKeys::from_base64(&b64.encode([7u8; 32]), &b64.encode([9u8; 32])).unwrap()
}

async fn store(dir: &std::path::Path) -> SqlStore {
    SqlStore::connect(&format!("sqlite://{}", dir.join("db.sqlite").display()))
        .await
        .unwrap()
}

#[tokio::test]
async fn bad_experiment_yaml_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let db = store(tmp.path()).await;
    let script = script();
    let refuse = |yaml: &str| {
        Experiment::new("c1", spec(yaml), &script, db.clone())
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    };
    let one_arm = refuse("  arms:\n    - { name: A, model: baseline }\n");
    assert!(one_arm.contains("exactly two arms, found 1"), "{one_arm}");
    let nothing = refuse("  seed: 3\n");
    assert!(nothing.contains("neither `arms`"), "{nothing}");
    let mixed = refuse(
        "  arms:\n    - { name: A, model: baseline }\n    - { name: B, variants: { opening: 1 } }\n",
    );
    assert!(mixed.contains("vary the same thing"), "{mixed}");
    let unknown_point = refuse("  bandit: true\n  choices: [closing_line]\n");
    assert!(
        unknown_point.contains("unknown choice point \"closing_line\"")
            && unknown_point.contains("opening, pitch_order, after_refusal"),
        "{unknown_point}"
    );
    let out_of_range = refuse(
        "  arms:\n    - { name: A, variants: { opening: 0 } }\n    - { name: B, variants: { opening: 9 } }\n",
    );
    assert!(out_of_range.contains("9 is out of range"), "{out_of_range}");
    let both = refuse(
        "  bandit: true\n  arms:\n    - { name: A, variants: { opening: 0 } }\n    - { name: B, variants: { opening: 1 } }\n",
    );
    assert!(both.contains("both fixed by an arm and learned"), "{both}");
    // An unknown model version is found when the dialer's scorer is built.
    let x = Experiment::new(
        "c1",
        spec("  arms:\n    - { name: A, model: baseline }\n    - { name: B, model: logistic-nope }\n"),
        &script,
        db.clone(),
    )
    .unwrap();
    let err = x
        .arm_scorer()
        .await
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        err.contains("unknown model version \"logistic-nope\"") && err.contains("arm \"B\""),
        "{err}"
    );
    // A misspelt key names itself.
    let typo = CampaignSpec::parse("id: c1\nname: t\nexperiment:\n  bandits: true\n")
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(typo.contains("unknown field `bandits`"), "{typo}");
}

/// Stores `n` calls of a bandit campaign: each call's opening is the bandit's choice; variant
/// v1 converts 40% of the time, the others 5% (seeded).
async fn play(
    db: &SqlStore,
    x: &Experiment,
    campaign: &str,
    customers: &[String],
    from: usize,
    n: usize,
) {
    let keys = keys();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(from as u64);
    for i in from..from + n {
        let customer = &customers[i % customers.len()];
        let a = x.assign(customer, "families").await.unwrap();
        let (opening, by_bandit) = a.choices["opening"];
        assert!(by_bandit);
        assert_eq!(a.variants.get("script.greet"), Some(&opening));
        let converted = rng.random::<f64>() < if opening == 1 { 0.4 } else { 0.05 };
        let call_id = format!("{campaign}-call-{i}");
        let call = StoredCall {
            call: CallRecord {
                id: call_id.clone(),
                customer_id: customer.clone(),
                campaign_id: campaign.into(),
                started_at_ms: i as i64,
                ended_at_ms: i as i64 + 1,
                outcome: if converted { "converted" } else { "refused" }.into(),
                turns: vec![],
            },
            attempt_id: None,
            end_reason: "outcome".into(),
            language: "en".into(),
            segment: "families".into(),
            duration_ms: 1,
            actions: vec![],
            events: vec![],
            metrics: vec![],
            recording: None,
            do_not_call: false,
        };
        let arms = a.call_arms(&call_id, customer, campaign, converted);
        db.store_call(&call, &keys, async |conn: &mut sqlx::AnyConnection| {
            record_call_arms_in(conn, &arms, i as i64).await
        })
        .await
        .unwrap();
    }
}

#[tokio::test]
async fn the_bandit_state_persists_across_a_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let customers: Vec<String> = {
        let db = store(tmp.path()).await;
        let rows = retrieval::synth::generate(40, 9, 0.0);
        // Dated from now: last contacts before 1970 would be refused by the import.
        let now = orchestrator::session::now_ms();
        let csv = retrieval::synth::to_csv(&rows, now);
        let keys = keys();
        retrieval::import::import_customers(
            &db,
            &keys,
            &retrieval::import::CrmMapping::default(),
            retrieval::import::Format::Csv,
            &csv,
            now,
        )
        .await
        .unwrap();
        let mut ids = Vec::new();
        for r in &rows {
            if db.profile(&r.customer_id).await.unwrap().is_some() {
                ids.push(r.customer_id.clone());
            }
        }
        assert!(ids.len() > 30, "{} of 40 customers imported", ids.len());
        ids
    };
    let yaml = "  seed: 5\n  bandit: true\n  choices: [opening]\n";
    let before = {
        let db = store(tmp.path()).await;
        let x = Experiment::new("c1", spec(yaml), &script(), db.clone()).unwrap();
        play(&db, &x, "c1", &customers, 0, 150).await;
        let counts = db.bandit_arms("c1").await.unwrap();
        assert_eq!(counts.iter().map(|c| c.plays).sum::<i64>(), 150);
        counts
    };
    // A new process: a new connection and a new experiment over the same file.
    let db = store(tmp.path()).await;
    assert_eq!(db.bandit_arms("c1").await.unwrap(), before);
    let x = Experiment::new("c1", spec(yaml), &script(), db.clone()).unwrap();
    let mut v1 = 0;
    for c in customers.iter().take(40) {
        v1 += usize::from(x.assign(c, "families").await.unwrap().choices["opening"].0 == 1);
    }
    assert!(
        v1 >= 30,
        "after a restart the bandit plays the best opening {v1} of 40 times"
    );
    // A segment it has not seen starts from the prior.
    let fresh = db.bandit_arms("c1").await.unwrap();
    assert!(fresh.iter().all(|c| c.segment == "families"));
    play(&db, &x, "c1", &customers, 150, 10).await;
    let after: i64 = db
        .bandit_arms("c1")
        .await
        .unwrap()
        .iter()
        .map(|c| c.plays)
        .sum();
    assert_eq!(after, 160);
    assert_eq!(db.call_arms().await.unwrap().len(), 160);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_demo_campaign_records_the_arms_of_every_answered_call() {
    let root = root();
    let tmp = tempfile::tempdir().unwrap();
    let mut config = Config::default().with_data_in(tmp.path());
    config.dialog.campaign = root.join("dialog/data/campaigns/family_education_insurance.yaml");
    config.dialog.nlu_dir = root.join("dialog/data/nlu");
    config.session.no_input_ms = 1500;
    let campaign = tmp.path().join("campaign.yaml");
    std::fs::write(
        &campaign,
        "id: exp-demo\nname: experiment demo\ndialer:\n  max_attempts: 1\n  window:\n    open: \"00:00\"\n    close: \"23:59\"\n\
         experiment:\n  id: opening-ab\n  seed: 3\n  arms:\n    - { name: A, variants: { opening: 0 } }\n    - { name: B, variants: { opening: 1 } }\n  bandit: true\n  choices: [pitch_order, after_refusal]\n",
    )
    .unwrap();
    let engines = Arc::new(Engines::fake(&["yes I will take it"]));
    let callee_asr: Arc<dyn voice::SpeechToText> = Arc::new(voice::asr::FakeAsr {
        script: vec!["hello".into()],
    });
    let callees = Arc::new(CalleeEngines::new(
        engines.new_vad.clone(),
        callee_asr.clone(),
        callee_asr,
        Arc::new(voice::tts::FakeTts),
        Arc::new(voice::tts::FakeTts),
        PersonaLines::load(&root.join("orchestrator/data/personas.yaml")).unwrap(),
    ));
    let options = DemoOptions {
        customers: 60,
        calls: 8,
        lines: 4,
        seed: 5,
        campaign,
        personas: root.join("orchestrator/data/personas.yaml"),
        out_dir: tmp.path().join("out"),
        speed: 8.0,
        progress: false,
    };
    let report = demo::run_on(
        &config,
        options,
        engines,
        callees,
        Vec::new(),
        Instant::now(),
    )
    .await
    .unwrap();
    assert!(!report.calls.is_empty());
    assert!(
        report.calls.iter().all(|c| c.sim.error.is_none()),
        "{:#?}",
        report.calls
    );
    let store = SqlStore::connect(&config.retrieval.database_url)
        .await
        .unwrap();
    let arms = store.call_arms().await.unwrap();
    let mut answered = 0;
    for call in &report.calls {
        let Some(stored) = store.call(&call.sim.call_id).await.unwrap() else {
            continue;
        };
        let mine: Vec<_> = arms.iter().filter(|a| a.call_id == stored.id).collect();
        if mine.is_empty() {
            // Only a call blocked before the greeting (do-not-call) plays no arm.
            assert_eq!(stored.outcome, "do_not_call", "{stored:?}");
            continue;
        }
        answered += 1;
        let choices: Vec<&str> = mine.iter().map(|a| a.choice.as_str()).collect();
        // The A/B arm, the opening it fixes, and the two choice points the bandit learns.
        assert_eq!(
            choices,
            ["ab", "after_refusal", "opening", "pitch_order"],
            "{mine:?}"
        );
        for a in &mine {
            assert_eq!(
                a.by_bandit,
                a.choice == "after_refusal" || a.choice == "pitch_order"
            );
        }
        assert!(mine.iter().all(|a| a.experiment == "opening-ab"));
        let ab = mine.iter().find(|a| a.choice == AB_CHOICE).unwrap();
        assert_eq!(
            ab.arm,
            ["A", "B"][orchestrator::experiment::arm_of(3, "opening-ab", &stored.customer_id)]
        );
        assert_eq!(
            mine.iter().all(|a| a.converted),
            stored.outcome == "converted"
        );
        // The arm's opening reached the dialogue: the greeting is that variant.
        let greeting = &stored
            .turns
            .iter()
            .find(|t| t.speaker == "bot")
            .unwrap()
            .text;
        let variant = if ab.arm == "A" { 0 } else { 1 };
        let opening = mine.iter().find(|a| a.choice == "opening").unwrap();
        assert_eq!(opening.arm, format!("v{variant}"));
        let greet = script().script.greet;
        let heads: Vec<String> = [greet.en.unwrap(), greet.zh.unwrap()]
            .iter()
            .map(|v| {
                v[variant]
                    .chars()
                    .take_while(|c| *c != '{')
                    .collect::<String>()
                    .trim()
                    .to_lowercase()
            })
            .collect();
        assert!(
            heads.iter().any(|h| greeting.to_lowercase().starts_with(h)),
            "arm {} greeting {greeting:?} is not variant {variant} ({heads:?})",
            ab.arm
        );
    }
    assert!(answered >= 3, "{answered} answered calls recorded arms");
    let learned: i64 = store
        .bandit_arms("exp-demo")
        .await
        .unwrap()
        .iter()
        .map(|c| c.plays)
        .sum();
    assert_eq!(learned, 2 * answered as i64);
}

/// The bandit's counts on PostgreSQL (127.0.0.1:5432, or `DATABASE_URL_PG`): they survive a new
/// connection and steer the next choices, and erasing a customer removes their `call_arms` rows
/// but not the per-segment counts. Every id carries a unique tag: the database is shared.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bandit_state_persists_on_postgres_and_erasure_takes_the_arms() {
    let url = std::env::var("DATABASE_URL_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let db = match SqlStore::connect(&url).await {
        Ok(db) => db,
        Err(e) => {
            eprintln!("SKIP: PostgreSQL not reachable at {url}: {e}");
            return;
        }
    };
    let tag = format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let campaign = format!("exp-{tag}");
    let customers: Vec<String> = (0..40).map(|i| format!("pg-{tag}-{i}")).collect();
    for id in &customers {
        db.upsert_customer(&retrieval::store::Customer {
            id: id.clone(),
            display_name: "Test Customer".into(),
            language: "en".into(),
            created_at_ms: 0,
        })
        .await
        .unwrap();
    }
    let yaml = "  seed: 5\n  bandit: true\n  choices: [opening]\n";
    let x = Experiment::new(&campaign, spec(yaml), &script(), db.clone()).unwrap();
    play(&db, &x, &campaign, &customers, 0, 150).await;
    let before = db.bandit_arms(&campaign).await.unwrap();
    assert_eq!(before.iter().map(|c| c.plays).sum::<i64>(), 150);
    drop((x, db));

    let db = SqlStore::connect(&url).await.unwrap();
    assert_eq!(db.bandit_arms(&campaign).await.unwrap(), before);
    let x = Experiment::new(&campaign, spec(yaml), &script(), db.clone()).unwrap();
    let mut v1 = 0;
    for c in &customers {
        v1 += usize::from(x.assign(c, "families").await.unwrap().choices["opening"].0 == 1);
    }
    assert!(
        v1 >= 30,
        "after reconnecting the bandit plays the best opening {v1} of 40 times"
    );

    let arms_of = |db: SqlStore, customer: String| async move {
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM call_arms WHERE customer_id = $1")
            .bind(customer)
            .fetch_one(db.pool())
            .await
            .unwrap()
    };
    assert!(arms_of(db.clone(), customers[0].clone()).await > 0);
    db.erase_customer(&customers[0]).await.unwrap();
    assert_eq!(arms_of(db.clone(), customers[0].clone()).await, 0);
    let after: i64 = db
        .bandit_arms(&campaign)
        .await
        .unwrap()
        .iter()
        .map(|c| c.plays)
        .sum();
    assert_eq!(
        after, 150,
        "the per-segment counts hold no customer and stay"
    );
}

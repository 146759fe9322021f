//! Erasure removes every trace of a customer: every personal table, the vector index, the
//! lexical index (in memory and on disk) and the recording files, and nothing of anyone else.
#![allow(clippy::unwrap_used)] // Test helpers may unwrap: a failure is the test failing.

use base64::Engine;
use retrieval::import::{import_call_logs, import_customers, CallLogMapping, CrmMapping, Format};
use retrieval::index::embedded::EmbeddedIndex;
use retrieval::store::{
    Action, CallRecord, QaCallGradeRecord, QaCheckRecord, QaEvidenceRecord, QaFailureRecord,
    QaGrade, Recording, TurnRecord, PERSONAL_TABLES,
};
use retrieval::{
    erase_customer, FakeEmbedder, Filter, LexicalIndex, PrivacyKeys, SqlProfileStore, SqlStore,
    VectorIndex,
};
use std::path::PathBuf;
use std::sync::Arc;

fn fixture(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name);
    std::fs::read_to_string(path).unwrap()
}

async fn rows_of(store: &SqlStore, customer_id: &str) -> Vec<(&'static str, i64)> {
    let mut out = Vec::new();
    for (table, condition) in PERSONAL_TABLES {
        let n: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table} WHERE {condition}"))
            .bind(customer_id)
            .fetch_one(store.pool())
            .await
            .unwrap();
        out.push((*table, n));
    }
    out
}

#[tokio::test]
async fn erase_removes_every_trace() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("crm.db").display());
    let store = SqlStore::connect(&url).await.unwrap();
    let b64 = base64::engine::general_purpose::STANDARD;
    let keys = PrivacyKeys::from_base64(&b64.encode([1u8; 32]), &b64.encode([2u8; 32])).unwrap();
    import_customers(
        &store,
        &keys,
        &CrmMapping::default(),
        Format::Csv,
        &fixture("customers_messy.csv"),
        1,
    )
    .await
    .unwrap();
    import_call_logs(
        &store,
        &keys,
        &CallLogMapping::default(),
        Format::Csv,
        &fixture("call_logs_messy.csv"),
    )
    .await
    .unwrap();
    for (customer, call) in [("c001", "call-1"), ("c002", "call-2")] {
        store
            .insert_call(&CallRecord {
                id: call.into(),
                customer_id: customer.into(),
                campaign_id: "car".into(),
                started_at_ms: 10,
                ended_at_ms: 20,
                outcome: "callback".into(),
                turns: vec![TurnRecord {
                    speaker: "caller".into(),
                    text: format!("{customer} 说车险太贵了"),
                    latency_ms: None,
                }],
            })
            .await
            .unwrap();
        // A live call session's events and per-turn latencies (written by store_call).
        for sql in [
            "INSERT INTO call_events (call_id, seq, at_ms, kind, detail) VALUES ($1, 0, 0, 'barge_in', '{}')",
            "INSERT INTO turn_metrics (call_id, turn, caller_start_ms, caller_end_ms, asr_final_ms, dialog_ms, \
             tts_first_audio_ms, interrupted, spoken_ms) VALUES ($1, 1, 0, 900, 120.0, 9.0, 80.0, 0, 2000)",
        ] {
            sqlx::query(sql).bind(call).execute(store.pool()).await.unwrap();
        }
        store
            .insert_actions(&[Action {
                call_id: call.into(),
                seq: 0,
                kind: "callback_scheduled".into(),
                detail: "{}".into(),
                at_ms: 20,
            }])
            .await
            .unwrap();
        let wav = dir.path().join(format!("recordings/{customer}.wav"));
        std::fs::create_dir_all(wav.parent().unwrap()).unwrap();
        std::fs::write(&wav, b"RIFF").unwrap();
        store
            .insert_recording(
                &Recording {
                    call_id: call.into(),
                    path: wav,
                    sample_rate: 8000,
                    duration_ms: 10,
                    bytes: 4,
                    created_at_ms: 20,
                },
                &keys,
            )
            .await
            .unwrap();
        store
            .upsert_qa_grades(&[QaGrade {
                call_id: call.into(),
                criterion: "greeting".into(),
                score: 1.0,
                max_score: 1.0,
                grader: "qa-v1".into(),
                notes: String::new(),
                graded_at_ms: 30,
            }])
            .await
            .unwrap();
        // The QA job's rows: a check with its evidence, a failure reason, the summary.
        store
            .store_qa_grades(&[QaCallGradeRecord {
                call_id: call.into(),
                grader: "rules".into(),
                rubric_version: "1".into(),
                score: 0.0,
                max_score: 1.0,
                checks: vec![QaCheckRecord {
                    criterion: "latency".into(),
                    passed: Some(false),
                    score: 0.0,
                    max_score: 1.0,
                    grader: "rules".into(),
                    notes: String::new(),
                    evidence: vec![QaEvidenceRecord {
                        turn: 0,
                        at_ms: Some(5),
                        note: "slow".into(),
                    }],
                }],
                failures: vec![QaFailureRecord {
                    reason: "bot_failure_latency".into(),
                    criterion: Some("latency".into()),
                    detail: String::new(),
                    turn: Some(0),
                    at_ms: Some(5),
                }],
                graded_at_ms: 31,
            }])
            .await
            .unwrap();
    }
    let index: Arc<EmbeddedIndex> =
        Arc::new(EmbeddedIndex::open(&dir.path().join("index"), 64).unwrap());
    let lexical = Arc::new(LexicalIndex::open(&dir.path().join("index")).unwrap());
    let profiles = SqlProfileStore::new(
        store.clone(),
        Arc::new(FakeEmbedder::default()),
        index.clone(),
        lexical.clone(),
    );
    assert_eq!(
        profiles.index_customer("c001").await.unwrap(),
        3,
        "profile, CRM log, call"
    );
    profiles.index_customer("c002").await.unwrap();
    assert!(
        rows_of(&store, "c001").await.iter().all(|(_, n)| *n > 0),
        "every table holds c001"
    );
    let c002_before = rows_of(&store, "c002").await;

    let report = erase_customer(&store, index.as_ref(), &lexical, &keys, "c001")
        .await
        .unwrap();
    assert_eq!(
        (report.vectors, report.lexical, report.recording_files),
        (3, 3, 1)
    );
    assert_eq!(report.rows.turns, 1);

    for (table, n) in rows_of(&store, "c001").await {
        assert_eq!(n, 0, "{table} still holds c001");
    }
    assert_eq!(index.count(&Filter::customer("c001")).await.unwrap(), 0);
    assert_eq!(lexical.count(&Filter::customer("c001")).unwrap(), 0);
    assert!(!dir.path().join("recordings/c001.wav").exists());
    for file in ["points.jsonl", "lexical.jsonl"] {
        let text = std::fs::read_to_string(dir.path().join("index").join(file)).unwrap();
        assert!(
            !text.contains("c001") && !text.contains("王伟"),
            "{file} still names c001"
        );
    }
    // Nor does the database file keep the erased rows in its free space (SQLite's
    // secure_delete zeroes what is deleted).
    let bytes = std::fs::read(dir.path().join("crm.db")).unwrap();
    for gone in ["王伟", "c001 说车险太贵了"] {
        assert!(
            !bytes.windows(gone.len()).any(|w| w == gone.as_bytes()),
            "crm.db still holds {gone:?}"
        );
    }
    // Everyone else is untouched, and a second request erases nothing.
    assert_eq!(rows_of(&store, "c002").await, c002_before);
    assert!(dir.path().join("recordings/c002.wav").exists());
    assert_eq!(index.count(&Filter::customer("c002")).await.unwrap(), 3);
    let again = erase_customer(&store, index.as_ref(), &lexical, &keys, "c001")
        .await
        .unwrap();
    assert_eq!(again, Default::default());
}

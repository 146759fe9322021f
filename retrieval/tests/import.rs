//! CRM import of messy fixtures (tests/data): exact accepted and rejected rows with their line
//! numbers, cleaned values, call logs fused by phone hash, and idempotent re-import.
#![allow(clippy::unwrap_used)] // Test helpers may unwrap: a failure is the test failing.

use base64::Engine;
use retrieval::import::{
    import_call_logs, import_customers, CallLogMapping, CrmMapping, Format, ImportReport,
};
use retrieval::{Language, PrivacyKeys, SqlStore};
use std::path::PathBuf;

fn fixture(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn keys() -> PrivacyKeys {
    let b64 = base64::engine::general_purpose::STANDARD;
    PrivacyKeys::from_base64(&b64.encode([7u8; 32]), &b64.encode([8u8; 32])).unwrap()
}

fn lines(r: &ImportReport) -> Vec<usize> {
    r.rejected.iter().map(|r| r.line).collect()
}

async fn count(store: &SqlStore, table: &str) -> i64 {
    sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
        .fetch_one(store.pool())
        .await
        .unwrap()
}

async fn sqlite() -> (tempfile::TempDir, SqlStore) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("crm.db").display());
    let store = SqlStore::connect(&url).await.unwrap();
    (dir, store)
}

#[tokio::test]
async fn messy_csv_imports_exactly_the_good_rows_and_reimport_changes_nothing() {
    let (_dir, store) = sqlite().await;
    let keys = keys();
    let csv = fixture("customers_messy.csv");
    let mapping = CrmMapping::default();
    let report = import_customers(&store, &keys, &mapping, Format::Csv, &csv, 1000)
        .await
        .unwrap();
    assert_eq!(report.accepted, 6, "{report:#?}");
    assert_eq!(
        lines(&report),
        vec![5, 6, 7, 8, 9, 11, 12, 14],
        "{report:#?}"
    );
    let reason = |line| {
        &report
            .rejected
            .iter()
            .find(|r| r.line == line)
            .unwrap()
            .reason
    };
    assert!(reason(7).contains("duplicate customer id, first on line 2"));
    assert!(reason(8).contains("duplicate phone number, first on line 2"));
    assert!(reason(6).contains("age"));
    assert!(
        !reason(5).contains("12345"),
        "reasons never show a full number"
    );

    let p = store.profile("c001").await.unwrap().unwrap();
    assert_eq!(p.display_name, "王伟");
    assert_eq!(p.language, Language::Zh);
    assert_eq!(
        (p.age, p.income_band, p.children_in_school),
        (Some(42), Some(3), Some(2))
    );
    assert_eq!(p.occupation.as_deref(), Some("teacher"));
    assert_eq!(p.interests, vec!["car insurance", "education"]);
    assert_eq!(p.last_contact_ms, Some(1_709_251_200_000));
    assert!(!p.do_not_call);
    let sparse = store.profile("c003").await.unwrap().unwrap();
    assert_eq!((sparse.age, sparse.income_band), (None, None));
    assert!(store.profile("c013").await.unwrap().unwrap().do_not_call);
    // The row without an id is keyed by its phone hash.
    let derived: String =
        sqlx::query_scalar("SELECT id FROM customers WHERE display_name = 'No Id'")
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert!(derived.starts_with("crm-"), "{derived}");
    // The number is stored only hashed and sealed.
    let sealed: String = sqlx::query_scalar("SELECT phone_sealed FROM customers WHERE id = 'c001'")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(keys.decrypt(&sealed).unwrap(), "+8613812340001");

    let logs = import_call_logs(
        &store,
        &keys,
        &CallLogMapping::default(),
        Format::Csv,
        &fixture("call_logs_messy.csv"),
    )
    .await
    .unwrap();
    assert_eq!(logs.accepted, 3, "{logs:#?}");
    assert_eq!(lines(&logs), vec![4, 5, 6, 7], "{logs:#?}");
    let c001 = store.call_logs("c001").await.unwrap();
    assert_eq!(c001.len(), 1);
    assert_eq!(c001[0].outcome, "callback");
    assert_eq!(store.call_logs("c003").await.unwrap()[0].duration_s, None);
    let p = store.profile("c001").await.unwrap().unwrap();
    assert_eq!(p.calls_so_far, 1);
    assert_eq!(
        p.last_contact_ms,
        Some(1_709_287_200_000),
        "the CRM log is newer"
    );

    // Re-importing both files accepts the same rows and leaves every table as it was.
    let tables = [
        "customers",
        "profiles",
        "interests",
        "consents",
        "call_logs",
    ];
    let mut before = Vec::new();
    for t in tables {
        before.push(count(&store, t).await);
    }
    let again = import_customers(&store, &keys, &mapping, Format::Csv, &csv, 2000)
        .await
        .unwrap();
    assert_eq!((again.accepted, lines(&again)), (6, lines(&report)));
    let logs_again = import_call_logs(
        &store,
        &keys,
        &CallLogMapping::default(),
        Format::Csv,
        &fixture("call_logs_messy.csv"),
    )
    .await
    .unwrap();
    assert_eq!(logs_again.accepted, 3);
    let mut after = Vec::new();
    for t in tables {
        after.push(count(&store, t).await);
    }
    assert_eq!(before, after);
    assert_eq!(before, vec![6, 6, 5, 6, 3]);
    assert_eq!(store.profile("c001").await.unwrap().unwrap(), p);
}

#[tokio::test]
async fn a_failed_import_stores_nothing() {
    let (_dir, store) = sqlite().await;
    let mapping = CrmMapping {
        phone: "mobile".into(),
        ..CrmMapping::default()
    };
    let err = import_customers(
        &store,
        &keys(),
        &mapping,
        Format::Csv,
        &fixture("customers_messy.csv"),
        1,
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(err.contains("\"mobile\" is not in the CSV header"), "{err}");
    assert_eq!(count(&store, "customers").await, 0);
}

/// Rows are written in chunks while later ones are still being checked: a database failure in a
/// late chunk must still undo the chunks already written (one transaction) and keep what was
/// stored before.
#[tokio::test]
async fn a_database_failure_late_in_a_large_import_stores_nothing() {
    let (_dir, store) = sqlite().await;
    let earlier = retrieval::synth::generate(3, 7, 0.5);
    let first = import_customers(
        &store,
        &keys(),
        &CrmMapping::default(),
        Format::Csv,
        &retrieval::synth::to_csv(&earlier, 1_700_000_000_000),
        1,
    )
    .await
    .unwrap();
    assert_eq!(first.accepted, 3, "{first:#?}");
    let customers = retrieval::synth::generate(20_000, 8, 0.5);
    let doomed = &customers[19_000].customer_id;
    sqlx::query(&format!(
        "CREATE TRIGGER doomed BEFORE INSERT ON customers WHEN NEW.id = '{doomed}' \
         BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
    ))
    .execute(store.pool())
    .await
    .unwrap();
    let err = import_customers(
        &store,
        &keys(),
        &CrmMapping::default(),
        Format::Csv,
        &retrieval::synth::to_csv(&customers, 1_700_000_000_000),
        2,
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(err.contains("refused by the test"), "{err}");
    for table in ["customers", "profiles", "consents"] {
        assert_eq!(count(&store, table).await, 3, "{table}");
    }
    for c in &earlier {
        assert!(store.profile(&c.customer_id).await.unwrap().is_some());
    }
}

#[tokio::test]
async fn json_lines_import_reports_broken_lines() {
    let (_dir, store) = sqlite().await;
    let report = import_customers(
        &store,
        &keys(),
        &CrmMapping::default(),
        Format::JsonLines,
        &fixture("customers.jsonl"),
        1,
    )
    .await
    .unwrap();
    assert_eq!(report.accepted, 2, "{report:#?}");
    assert_eq!(lines(&report), vec![2, 3, 4]);
    let p = store.profile("j001").await.unwrap().unwrap();
    assert_eq!(p.interests, vec!["car insurance", "travel"]);
    assert_eq!(store.profile("j004").await.unwrap().unwrap().age, Some(30));
}

#[tokio::test]
async fn postgres_import_is_idempotent() {
    let url = std::env::var("DATABASE_URL_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let store = match SqlStore::connect(&url).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("SKIP: PostgreSQL not reachable at {url}: {e}");
            return;
        }
    };
    // Own keys so these phone hashes never meet another test's rows.
    let b64 = base64::engine::general_purpose::STANDARD;
    let keys = PrivacyKeys::from_base64(&b64.encode([0x5au8; 32]), &b64.encode([8u8; 32])).unwrap();
    let mapping = CrmMapping {
        customer_id: None,
        ..CrmMapping::default()
    };
    let csv = fixture("customers_messy.csv");
    let first = import_customers(&store, &keys, &mapping, Format::Csv, &csv, 1)
        .await
        .unwrap();
    let second = import_customers(&store, &keys, &mapping, Format::Csv, &csv, 2)
        .await
        .unwrap();
    // Without the id column only phone duplicates and bad values are refused.
    assert_eq!(first.accepted, 7, "{first:#?}");
    assert_eq!(
        (second.accepted, lines(&second)),
        (first.accepted, lines(&first))
    );
}

//! The SQL store on SQLite (always) and on the PostgreSQL of our machine kind (127.0.0.1:5432,
//! database `test`; skipped with a message when no server answers).
#![allow(clippy::unwrap_used)] // Test helpers may unwrap: a failure is the test failing.

use retrieval::store::{CallRecord, Customer, TurnRecord};
use retrieval::SqlStore;

fn keys() -> retrieval::PrivacyKeys {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    retrieval::PrivacyKeys::from_base64(&b64.encode([1u8; 32]), &b64.encode([2u8; 32])).unwrap()
}

async fn contract(store: &SqlStore, suffix: &str) {
    let customer = Customer {
        id: format!("cust-{suffix}"),
        display_name: "Li Wei".into(),
        language: "zh".into(),
        created_at_ms: 1,
    };
    store.upsert_customer(&customer).await.unwrap();
    store
        .upsert_customer(&Customer {
            display_name: "Li Wei (updated)".into(),
            ..customer.clone()
        })
        .await
        .unwrap();
    let call = CallRecord {
        id: format!("call-{suffix}"),
        customer_id: customer.id.clone(),
        campaign_id: "camp".into(),
        started_at_ms: 10,
        ended_at_ms: 20,
        outcome: "callback".into(),
        turns: vec![
            TurnRecord {
                speaker: "bot".into(),
                text: "您好".into(),
                latency_ms: Some(120.5),
            },
            TurnRecord {
                speaker: "caller".into(),
                text: "没时间".into(),
                latency_ms: None,
            },
        ],
    };
    store.insert_call(&call).await.unwrap();
    assert_eq!(store.call(&call.id).await.unwrap(), Some(call.clone()));
    assert_eq!(store.call("missing").await.unwrap(), None);
    // A duplicate call id fails and leaves the stored call as it was (one transaction).
    let dup = CallRecord {
        outcome: "converted".into(),
        ..call.clone()
    };
    assert!(store.insert_call(&dup).await.is_err());
    assert_eq!(store.call(&call.id).await.unwrap(), Some(call.clone()));
    erasure(store, &customer.id, &call.id).await;
}

/// Erasure removes the customer from every table and from the vector index, and only them.
async fn erasure(store: &SqlStore, customer_id: &str, call_id: &str) {
    use retrieval::index::embedded::EmbeddedIndex;
    use retrieval::{Filter, Payload, Point, VectorIndex};
    let dir = tempfile::tempdir().unwrap();
    let index = EmbeddedIndex::open(dir.path(), 2).unwrap();
    let point = |id, customer: &str| Point {
        id,
        vector: vec![1.0, 0.0],
        payload: Payload {
            customer_id: Some(customer.into()),
            campaign_id: None,
            kind: "history".into(),
            text: "x".into(),
        },
    };
    index
        .upsert(vec![point(1, customer_id), point(2, "someone-else")])
        .await
        .unwrap();

    let lexical = retrieval::LexicalIndex::open(dir.path()).unwrap();
    let keys = keys();
    let report = retrieval::erase_customer(store, &index, &lexical, &keys, customer_id)
        .await
        .unwrap();
    assert_eq!(
        (
            report.rows.customers,
            report.rows.calls,
            report.rows.turns,
            report.vectors
        ),
        (1, 1, 2, 1)
    );
    assert_eq!(store.call(call_id).await.unwrap(), None);
    for (table, column, key) in [
        ("customers", "id", customer_id),
        ("calls", "customer_id", customer_id),
        ("turns", "call_id", call_id),
    ] {
        let n: i64 =
            sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table} WHERE {column} = $1"))
                .bind(key)
                .fetch_one(store.pool())
                .await
                .unwrap();
        assert_eq!(n, 0, "{table} still holds the customer");
    }
    assert_eq!(
        index.count(&Filter::customer(customer_id)).await.unwrap(),
        0
    );
    assert_eq!(
        index.count(&Filter::default()).await.unwrap(),
        1,
        "other customers stay"
    );
    // Idempotent: a second request erases nothing and succeeds.
    assert_eq!(
        retrieval::erase_customer(store, &index, &lexical, &keys, customer_id)
            .await
            .unwrap(),
        Default::default()
    );
}

#[tokio::test]
async fn sqlite_store() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("sub/ringwise.db").display());
    let store = SqlStore::connect(&url).await.unwrap();
    contract(&store, "a").await;
    // Migrations are idempotent on reconnect.
    drop(store);
    SqlStore::connect(&url).await.unwrap();
}

#[tokio::test]
async fn postgres_store() {
    let url = std::env::var("DATABASE_URL_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let store = match SqlStore::connect(&url).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("SKIP: PostgreSQL not reachable at {url}: {e}");
            return;
        }
    };
    let suffix = format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    contract(&store, &suffix).await;
}

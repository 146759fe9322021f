//! Contract tests for [`VectorIndex`], run against the embedded index and, when `QDRANT_URL`
//! names a Qdrant server (gRPC, e.g. http://127.0.0.1:6334), against Qdrant. Plus neighbours on
//! a small labelled set with the real embedder (all-MiniLM-L6-v2 from models/).
#![allow(clippy::unwrap_used)] // Test helpers may unwrap: a failure is the test failing.

mod common;

use retrieval::index::embedded::EmbeddedIndex;
use retrieval::index::qdrant::QdrantIndex;
use retrieval::{BertEmbedder, Embedder, FakeEmbedder, Filter, Payload, Point, VectorIndex};
use std::path::PathBuf;

fn payload(customer: &str, kind: &str, text: &str) -> Payload {
    Payload {
        customer_id: Some(customer.into()),
        campaign_id: Some("c1".into()),
        kind: kind.into(),
        text: text.into(),
    }
}

async fn contract(index: &dyn VectorIndex, embedder: &dyn Embedder) {
    let texts = [
        (
            "alice",
            "history",
            "Customer asked about the price of car insurance",
        ),
        (
            "alice",
            "profile",
            "Lives in Shanghai, two children in primary school",
        ),
        (
            "bob",
            "history",
            "Said he has no time and asked for a callback tomorrow",
        ),
        ("bob", "profile", "Retired teacher, price sensitive"),
    ];
    let vectors = embedder
        .embed(&texts.iter().map(|t| t.2).collect::<Vec<_>>())
        .unwrap();
    let points: Vec<Point> = texts
        .iter()
        .zip(vectors.clone())
        .enumerate()
        .map(|(i, (t, v))| Point {
            id: i as u64 + 1,
            vector: v,
            payload: payload(t.0, t.1, t.2),
        })
        .collect();
    index.upsert(points.clone()).await.unwrap();
    assert_eq!(index.count(&Filter::default()).await.unwrap(), 4);

    // The exact vector of a point finds that point first, with cosine ≈ 1.
    let hits = index
        .search(&vectors[2], 2, &Filter::default())
        .await
        .unwrap();
    assert_eq!(hits[0].id, 3);
    assert!((hits[0].score - 1.0).abs() < 1e-3, "{hits:?}");
    assert_eq!(hits[0].payload, points[2].payload);

    // Filters restrict results to one customer and kind.
    let f = Filter {
        customer_id: Some("alice".into()),
        kind: Some("profile".into()),
        ..Filter::default()
    };
    let hits = index.search(&vectors[2], 10, &f).await.unwrap();
    assert_eq!(hits.iter().map(|h| h.id).collect::<Vec<_>>(), vec![2]);

    // Upsert replaces by id.
    let mut changed = points[0].clone();
    changed.payload.text = "replaced".into();
    index.upsert(vec![changed]).await.unwrap();
    assert_eq!(index.count(&Filter::default()).await.unwrap(), 4);
    let hits = index
        .search(&vectors[0], 1, &Filter::default())
        .await
        .unwrap();
    assert_eq!(hits[0].payload.text, "replaced");

    // Wrong dimension is an error, not a panic.
    assert!(index
        .search(&[1.0, 0.0], 1, &Filter::default())
        .await
        .is_err());

    // Erasure removes every point of a customer.
    assert_eq!(index.delete(&Filter::customer("alice")).await.unwrap(), 2);
    assert_eq!(index.count(&Filter::customer("alice")).await.unwrap(), 0);
    assert_eq!(index.count(&Filter::default()).await.unwrap(), 2);
}

#[tokio::test]
async fn embedded_index_meets_the_contract_and_persists() {
    let dir = tempfile::tempdir().unwrap();
    let embedder = FakeEmbedder::default();
    {
        let index = EmbeddedIndex::open(dir.path(), embedder.dim()).unwrap();
        contract(&index, &embedder).await;
    }
    let reopened = EmbeddedIndex::open(dir.path(), embedder.dim()).unwrap();
    assert_eq!(
        reopened.count(&Filter::default()).await.unwrap(),
        2,
        "points survive a reopen"
    );
    assert!(
        EmbeddedIndex::open(dir.path(), embedder.dim() + 1).is_err(),
        "dimension mismatch on open"
    );
}

#[tokio::test]
async fn qdrant_client_meets_the_contract_against_the_in_process_server() {
    let url = common::qdrant_server::start().await;
    let embedder = FakeEmbedder::default();
    let index = QdrantIndex::connect(&url, "contract", embedder.dim())
        .await
        .unwrap();
    contract(&index, &embedder).await;
    // Connecting again finds the collection instead of creating it twice.
    QdrantIndex::connect(&url, "contract", embedder.dim())
        .await
        .unwrap();
}

#[tokio::test]
async fn qdrant_index_meets_the_contract_when_a_server_is_given() {
    let Ok(url) = std::env::var("QDRANT_URL") else {
        eprintln!("SKIP: QDRANT_URL is not set; no Qdrant server to test against");
        return;
    };
    let embedder = FakeEmbedder::default();
    let collection = format!("contract_{}", std::process::id());
    let index = QdrantIndex::connect(&url, &collection, embedder.dim())
        .await
        .unwrap();
    contract(&index, &embedder).await;
}

fn real_embedder() -> BertEmbedder {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models/all-MiniLM-L6-v2");
    BertEmbedder::load(&dir).unwrap_or_else(|e| panic!("{e}"))
}

/// The [`Embedder`] contract: unit vectors of `dim()`, one per input in order, independent of
/// the batch they came in, nothing for nothing.
fn embedder_contract(e: &dyn Embedder) {
    let batch = e
        .embed(&["too expensive for me", "call me back tomorrow", "hi"])
        .unwrap();
    assert_eq!(batch.len(), 3);
    for v in &batch {
        assert_eq!(v.len(), e.dim());
        let n: f32 = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((n - 1.0).abs() < 1e-4, "norm {n}");
    }
    // Padding in a batch must not change a sentence's vector.
    let alone = e.embed(&["hi"]).unwrap();
    let cos: f32 = alone[0].iter().zip(&batch[2]).map(|(a, b)| a * b).sum();
    assert!(cos > 0.999, "cos {cos}");
    assert!(e.embed(&[]).unwrap().is_empty());
}

#[test]
fn fake_embedder_meets_the_contract() {
    embedder_contract(&FakeEmbedder::default());
}

#[test]
fn bert_embedder_meets_the_contract() {
    let e = real_embedder();
    assert_eq!(e.dim(), 384);
    embedder_contract(&e);
}

#[tokio::test]
async fn real_embedder_finds_the_expected_neighbours() {
    let e = real_embedder();
    let dir = tempfile::tempdir().unwrap();
    let index = EmbeddedIndex::open(dir.path(), e.dim()).unwrap();
    // A small labelled set: each query's expected nearest snippet.
    let snippets = [
        "The premium for comprehensive car insurance is 120 dollars per month.",
        "Our education savings plan helps parents pay for their children's school fees.",
        "You can cancel the policy within 14 days for a full refund.",
        "Claims are handled by phone around the clock, every day of the year.",
    ];
    let vectors = e.embed(&snippets).unwrap();
    let points = vectors
        .into_iter()
        .enumerate()
        .map(|(i, v)| Point {
            id: i as u64,
            vector: v,
            payload: payload("kb", "knowledge", snippets[i]),
        })
        .collect();
    index.upsert(points).await.unwrap();
    let queries = [
        ("How much does the car cover cost each month?", 0),
        (
            "My kid is starting primary school, how do I save for it?",
            1,
        ),
        ("What if I change my mind after signing?", 2),
        ("Who do I call when I have an accident at night?", 3),
    ];
    for (q, want) in queries {
        let v = e.embed(&[q]).unwrap().remove(0);
        let hits = index.search(&v, 1, &Filter::default()).await.unwrap();
        assert_eq!(
            hits[0].id, want,
            "query {q:?} found {:?}",
            hits[0].payload.text
        );
    }
}

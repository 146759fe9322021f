//! The real [`ProfileStore`] on the real embedder (all-MiniLM-L6-v2 from models/): for a small
//! labelled set of turns, the expected snippet (campaign knowledge, the customer's own history,
//! a Chinese note, an exact product name) comes back first, and other customers' snippets never.
#![allow(clippy::unwrap_used)] // Test helpers may unwrap: a failure is the test failing.

use base64::Engine;
use retrieval::import::{import_call_logs, import_customers, CallLogMapping, CrmMapping, Format};
use retrieval::index::embedded::EmbeddedIndex;
use retrieval::{
    BertEmbedder, LexicalIndex, PrivacyKeys, ProfileStore, SnippetKind, SqlProfileStore, SqlStore,
};
use std::path::PathBuf;
use std::sync::Arc;

const KNOWLEDGE: &[&str] = &[
    "SafeDrive Plus costs 120 dollars per month and covers windscreen damage.",
    "Our education savings plan helps parents pay their children's school fees.",
    "You can cancel the policy within 14 days for a full refund.",
    "Claims are handled by phone around the clock, every day of the year.",
];

/// A SQLite store in `dir` holding the customers of `tests/data/customers_messy.csv`, and the
/// keys they were imported with.
async fn store_with_customers(dir: &std::path::Path) -> (SqlStore, PrivacyKeys) {
    let store = SqlStore::connect(&format!("sqlite://{}", dir.join("crm.db").display()))
        .await
        .unwrap();
    let b64 = base64::engine::general_purpose::STANDARD;
    let keys = PrivacyKeys::from_base64(&b64.encode([1u8; 32]), &b64.encode([2u8; 32])).unwrap();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let csv = std::fs::read_to_string(root.join("tests/data/customers_messy.csv")).unwrap();
    import_customers(&store, &keys, &CrmMapping::default(), Format::Csv, &csv, 1)
        .await
        .unwrap();
    (store, keys)
}

#[tokio::test]
async fn context_returns_the_expected_snippets_on_the_real_embedder() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let embedder = BertEmbedder::load(&root.join("../models/all-MiniLM-L6-v2"))
        .unwrap_or_else(|e| panic!("{e}"));
    let dir = tempfile::tempdir().unwrap();
    let (store, keys) = store_with_customers(dir.path()).await;
    let read = |f: &str| std::fs::read_to_string(root.join("tests/data").join(f)).unwrap();
    import_call_logs(
        &store,
        &keys,
        &CallLogMapping::default(),
        Format::Csv,
        &read("call_logs_messy.csv"),
    )
    .await
    .unwrap();
    let profiles = SqlProfileStore::new(
        store,
        Arc::new(embedder),
        Arc::new(EmbeddedIndex::open(&dir.path().join("index"), 384).unwrap()),
        Arc::new(LexicalIndex::open(&dir.path().join("index")).unwrap()),
    );
    profiles.index_knowledge("car", KNOWLEDGE).await.unwrap();
    profiles
        .index_knowledge("other", &["Pet insurance covers vet bills."])
        .await
        .unwrap();
    for c in ["c001", "c002", "c003"] {
        profiles.index_customer(c).await.unwrap();
    }
    // (customer, turn, the text the first snippet must contain)
    let labelled = [
        (
            "c002",
            "How much would the car cover cost me each month?",
            "120 dollars per month",
        ),
        ("c002", "What if I change my mind after signing?", "14 days"),
        (
            "c002",
            "Who do I call when I have an accident at night?",
            "around the clock",
        ),
        (
            "c002",
            "I told you last time I am too busy at work",
            "Too busy at work",
        ),
        ("c003", "我想再给孩子买一份教育金", "教育金"),
        ("c001", "车险价格太贵了", "车险价格"),
        (
            "c001",
            "Does SafeDrive Plus cover the windscreen?",
            "SafeDrive Plus",
        ),
    ];
    for (customer, turn, want) in labelled {
        let ctx = profiles.context(customer, "car", turn, 3).await.unwrap();
        assert_eq!(ctx.profile.customer_id, customer);
        assert!(ctx.snippets.len() <= 3);
        assert!(
            ctx.snippets[0].text.contains(want),
            "{customer} {turn:?} gave {:#?}",
            ctx.snippets
        );
        for s in &ctx.snippets {
            assert!(
                !s.text.contains("Pet insurance"),
                "another campaign's knowledge"
            );
            if s.kind == SnippetKind::Profile {
                assert!(
                    s.text.starts_with(&ctx.profile.display_name),
                    "another customer's profile: {s:?}"
                );
            }
        }
    }
    assert!(profiles.context("nobody", "car", "hi", 3).await.is_err());
}

/// Counts the texts it embeds (a [`retrieval::FakeEmbedder`] inside).
struct Counting(retrieval::FakeEmbedder, std::sync::atomic::AtomicUsize);

impl retrieval::Embedder for Counting {
    fn dim(&self) -> usize {
        self.0.dim
    }
    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, retrieval::RetrievalError> {
        self.1
            .fetch_add(texts.len(), std::sync::atomic::Ordering::SeqCst);
        self.0.embed(texts)
    }
}

/// A Chinese turn is ranked by BM25 alone: the English sentence model is not run for it (it is
/// most of a context's time), and the Chinese snippet still comes first.
#[tokio::test]
async fn a_chinese_turn_is_not_embedded() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = store_with_customers(dir.path()).await;
    let embedder = Arc::new(Counting(
        retrieval::FakeEmbedder { dim: 64 },
        Default::default(),
    ));
    let profiles = SqlProfileStore::new(
        store,
        Arc::clone(&embedder) as Arc<dyn retrieval::Embedder>,
        Arc::new(EmbeddedIndex::open(&dir.path().join("index"), 64).unwrap()),
        Arc::new(LexicalIndex::open(&dir.path().join("index")).unwrap()),
    );
    profiles
        .index_knowledge("car", &["车险每月一百二十元，包括挡风玻璃。", KNOWLEDGE[2]])
        .await
        .unwrap();
    let indexed = embedder.1.load(std::sync::atomic::Ordering::SeqCst);
    let ctx = profiles
        .context("c001", "car", "车险每个月多少钱？", 2)
        .await
        .unwrap();
    assert!(ctx.snippets[0].text.contains("挡风玻璃"), "{ctx:#?}");
    assert_eq!(
        embedder.1.load(std::sync::atomic::Ordering::SeqCst),
        indexed
    );
    // An English turn is embedded.
    profiles
        .context("c001", "car", "Can I cancel the policy?", 2)
        .await
        .unwrap();
    assert_eq!(
        embedder.1.load(std::sync::atomic::Ordering::SeqCst),
        indexed + 1
    );
}

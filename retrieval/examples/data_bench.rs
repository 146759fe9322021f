//! Prints the data layer's benchmark figures, one `key value unit` line each:
//! `vector.search_ms_p99_100k`, `vector.recall_at_10_100k`, `ingest.sqlite_events_per_s`,
//! `ingest.postgres_events_per_s` (skipped without a server), `import.csv_rows_per_s` and
//! `profile.context_ms_p95` (real embedder; also with the turn's embedding passed in). Run:
//! `cargo run -p retrieval --example data_bench [vector|ingest|import|context]`
//! (`RUST_LOG=retrieval=info` for the import's phases).
#![allow(clippy::print_stdout)]

use base64::Engine;
use rand::{Rng, SeedableRng};
use retrieval::import::{import_customers, CrmMapping, Format};
use retrieval::index::embedded::EmbeddedIndex;
use retrieval::store::{CallRecord, TurnRecord};
use retrieval::{
    BertEmbedder, Filter, LexicalIndex, Payload, Point, PrivacyKeys, ProfileStore, SqlProfileStore,
    SqlStore, VectorIndex,
};
use std::sync::Arc;
use std::time::Instant;

fn percentile(mut ms: Vec<f64>, p: f64) -> f64 {
    ms.sort_by(f64::total_cmp);
    ms[((ms.len() as f64 * p) as usize).min(ms.len() - 1)]
}

fn unit(mut v: Vec<f32>) -> Vec<f32> {
    retrieval::embed::normalize(&mut v);
    v
}

/// Clustered unit vectors (2,000 topics), closer to sentence embeddings than uniform noise.
fn vectors(n: usize, seed: u64, centres: &[Vec<f32>]) -> Vec<Vec<f32>> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            let c = &centres[rng.random_range(0..centres.len())];
            unit(
                c.iter()
                    .map(|x| x + rng.random_range(-0.1f32..0.1))
                    .collect(),
            )
        })
        .collect()
}

/// Resident memory of this process in MiB (Linux), to show what the index holds.
fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

/// The ids of the 10 nearest rows of `data` to each query, by a brute-force scan written
/// independently of the index (two threads).
fn ground_truth(data: &[Vec<f32>], queries: &[Vec<f32>]) -> Vec<Vec<u64>> {
    let exact = |q: &Vec<f32>| -> Vec<u64> {
        let mut all: Vec<(f32, usize)> = data
            .iter()
            .enumerate()
            .map(|(i, v)| (v.iter().zip(q).map(|(a, b)| a * b).sum(), i))
            .collect();
        all.select_nth_unstable_by(10, |a, b| b.0.total_cmp(&a.0));
        all[..10].iter().map(|e| e.1 as u64).collect()
    };
    let half = queries.len() / 2;
    std::thread::scope(|s| {
        let first = s.spawn(|| queries[..half].iter().map(exact).collect::<Vec<_>>());
        let mut second: Vec<Vec<u64>> = queries[half..].iter().map(exact).collect();
        let mut out = first.join().unwrap_or_default();
        out.append(&mut second);
        out
    })
}

/// p50 and p99 search latency (ms) over `REPEATS` rounds of the queries, and recall@10.
async fn measure(
    index: &EmbeddedIndex,
    queries: &[Vec<f32>],
    truth: &[Vec<u64>],
) -> anyhow::Result<(f64, f64, f64)> {
    const REPEATS: usize = 5;
    let (mut ms, mut found) = (Vec::new(), 0usize);
    for round in 0..REPEATS {
        for (q, want) in queries.iter().zip(truth) {
            let t = Instant::now();
            let hits = index.search(q, 10, &Filter::default()).await?;
            ms.push(t.elapsed().as_secs_f64() * 1e3);
            if round == 0 {
                found += hits.iter().filter(|h| want.contains(&h.id)).count();
            }
        }
    }
    let recall = found as f64 / (10.0 * queries.len() as f64);
    Ok((percentile(ms.clone(), 0.5), percentile(ms, 0.99), recall))
}

async fn vector_search() -> anyhow::Result<()> {
    const N: usize = 100_000;
    const DIM: usize = 384;
    const REPEATS: usize = 5;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    let centres: Vec<Vec<f32>> = (0..2000)
        .map(|_| unit((0..DIM).map(|_| rng.random_range(-1f32..1.0)).collect()))
        .collect();
    let dir = tempfile::tempdir()?;
    let data = vectors(N, 2, &centres);
    let points: Vec<Point> = data
        .iter()
        .enumerate()
        .map(|(i, v)| Point {
            id: i as u64,
            vector: v.clone(),
            payload: Payload {
                customer_id: Some(format!("cust-{}", i / 5)),
                campaign_id: Some(format!("camp-{}", i % 10)),
                kind: "history".into(),
                text: String::new(),
            },
        })
        .collect();
    let rss_before = rss_mib();
    let t = Instant::now();
    let index = EmbeddedIndex::open(dir.path(), DIM)?;
    for chunk in points.chunks(10_000) {
        index.upsert(chunk.to_vec()).await?;
    }
    println!("vector.build_s_100k {:.1} s", t.elapsed().as_secs_f64());
    println!(
        "vector.index_rss_mib_100k {:.0} MiB (vectors alone {:.0} MiB)",
        rss_mib() - rss_before,
        (N * DIM * 4) as f64 / (1024.0 * 1024.0)
    );
    drop(points);
    println!("vector.cells_100k {}", index.cells()?.unwrap_or(0));
    let queries = vectors(200, 3, &centres);
    let truth = ground_truth(&data, &queries);
    for nprobe in [4, 8, 16, 32, 64] {
        index.set_nprobe(nprobe)?;
        let (p50, p99, recall) = measure(&index, &queries, &truth).await?;
        println!(
            "vector.sweep nprobe={nprobe} p50={p50:.3} ms p99={p99:.3} ms recall@10={recall:.3}"
        );
    }
    let nprobe = retrieval::index::embedded::AnnOptions::default().nprobe;
    index.set_nprobe(nprobe)?;
    let (p50, p99, recall) = measure(&index, &queries, &truth).await?;
    println!("vector.nprobe {nprobe}");
    println!("vector.search_ms_p50_100k {p50:.3} ms");
    println!("vector.search_ms_p99_100k {p99:.3} ms");
    println!("vector.recall_at_10_100k {recall:.3}");
    let mut filtered = Vec::new();
    for round in 0..REPEATS {
        for (qi, q) in queries.iter().enumerate() {
            let t = Instant::now();
            index
                .search(
                    q,
                    10,
                    &Filter::customer(format!("cust-{}", (qi + round) * 97)),
                )
                .await?;
            filtered.push(t.elapsed().as_secs_f64() * 1e3);
        }
    }
    println!(
        "vector.search_ms_p99_100k_customer_filter {:.3} ms",
        percentile(filtered, 0.99)
    );
    drop(index);
    let t = Instant::now();
    let reopened = EmbeddedIndex::open(dir.path(), DIM)?;
    println!("vector.reload_s_100k {:.1} s", t.elapsed().as_secs_f64());
    let t = Instant::now();
    let erased = reopened.delete(&Filter::customer("cust-42")).await?;
    println!(
        "vector.erase_customer_s_100k {:.2} s ({erased} points)",
        t.elapsed().as_secs_f64()
    );
    Ok(())
}

fn calls(n: usize, prefix: &str) -> Vec<CallRecord> {
    (0..n)
        .map(|i| CallRecord {
            id: format!("{prefix}-{i}"),
            customer_id: format!("{prefix}-cust"),
            campaign_id: "bench".into(),
            started_at_ms: i as i64,
            ended_at_ms: i as i64 + 60_000,
            outcome: "callback".into(),
            turns: (0..9)
                .map(|t| TurnRecord {
                    speaker: if t % 2 == 0 { "bot" } else { "caller" }.into(),
                    text: "请问您现在方便说话吗？我们有一款新的车险产品。".into(),
                    latency_ms: Some(420.0),
                })
                .collect(),
        })
        .collect()
}

/// Events are rows written: a call and its nine turns are ten events.
async fn ingest(store: &SqlStore, key: &str, prefix: &str) -> anyhow::Result<()> {
    store
        .upsert_customer(&retrieval::store::Customer {
            id: format!("{prefix}-cust"),
            display_name: "bench".into(),
            language: "zh".into(),
            created_at_ms: 0,
        })
        .await?;
    let batch = calls(20_000, prefix);
    let t = Instant::now();
    for chunk in batch.chunks(2_000) {
        store.insert_calls(chunk).await?;
    }
    let events = batch.len() * 10;
    println!(
        "{key} {:.0} events/s",
        events as f64 / t.elapsed().as_secs_f64()
    );
    store.erase_customer(&format!("{prefix}-cust")).await?;
    Ok(())
}

fn keys() -> anyhow::Result<PrivacyKeys> {
    let b64 = base64::engine::general_purpose::STANDARD;
    Ok(PrivacyKeys::from_base64(
        &b64.encode([1u8; 32]),
        &b64.encode([2u8; 32]),
    )?)
}

async fn import(dir: &std::path::Path) -> anyhow::Result<()> {
    let store = SqlStore::connect(&format!("sqlite://{}", dir.join("import.db").display())).await?;
    let customers = retrieval::synth::generate(50_000, 11, 0.5);
    let csv = retrieval::synth::to_csv(&customers, 1_700_000_000_000);
    let t = Instant::now();
    let report = import_customers(
        &store,
        &keys()?,
        &CrmMapping::default(),
        Format::Csv,
        &csv,
        0,
    )
    .await?;
    let s = t.elapsed().as_secs_f64();
    println!(
        "import.csv_rows_per_s {:.0} rows/s ({} accepted, {} rejected)",
        customers.len() as f64 / s,
        report.accepted,
        report.rejected.len()
    );
    Ok(())
}

/// Context latency with the real embedder, and with the fake one to show what embedding the
/// turn costs against SQL, search and fusion.
async fn context(dir: &std::path::Path) -> anyhow::Result<()> {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let real = BertEmbedder::load(&root.join("../models/all-MiniLM-L6-v2"))?;
    context_with(dir, "profile.context_ms_p95", Arc::new(real), 384).await?;
    let fake = retrieval::FakeEmbedder { dim: 384 };
    context_with(
        dir,
        "profile.context_ms_p95_fake_embedder",
        Arc::new(fake),
        384,
    )
    .await
}

async fn context_with(
    dir: &std::path::Path,
    key: &str,
    embedder: Arc<dyn retrieval::Embedder>,
    dim: usize,
) -> anyhow::Result<()> {
    let dir = dir.join(key);
    let store = SqlStore::connect(&format!("sqlite://{}", dir.join("ctx.db").display())).await?;
    let customers = retrieval::synth::generate(300, 5, 0.5);
    import_customers(
        &store,
        &keys()?,
        &CrmMapping::default(),
        Format::Csv,
        &retrieval::synth::to_csv(&customers, 1_700_000_000_000),
        0,
    )
    .await?;
    let profiles = SqlProfileStore::new(
        store,
        Arc::clone(&embedder),
        Arc::new(EmbeddedIndex::open(&dir.join("ctx-index"), dim)?),
        Arc::new(LexicalIndex::open(&dir.join("ctx-index"))?),
    );
    let knowledge: Vec<String> = (0..50)
        .map(|i| format!("Car insurance fact {i}: the plan covers windscreen, theft and towing in region {i}."))
        .collect();
    let refs: Vec<&str> = knowledge.iter().map(String::as_str).collect();
    profiles.index_knowledge("car", &refs).await?;
    let mut ids = Vec::new();
    for c in customers.iter().take(100) {
        if profiles.index_customer(&c.customer_id).await.is_ok() {
            ids.push(c.customer_id.clone());
        }
    }
    let turns = [
        "How much is it per month?",
        "我没时间，下次再说",
        "Does it cover the windscreen?",
    ];
    // Turn embedded inside the call (what `context` does) ...
    let mut ms = Vec::new();
    for (i, id) in ids.iter().cycle().take(300).enumerate() {
        let t = Instant::now();
        profiles
            .context(id, "car", turns[i % turns.len()], 5)
            .await?;
        ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    println!("{key} {:.2} ms", percentile(ms, 0.95));
    // A Chinese turn alone: ranked by BM25 only, not embedded.
    let mut ms = Vec::new();
    for id in ids.iter().cycle().take(300) {
        let t = Instant::now();
        profiles.context(id, "car", turns[1], 5).await?;
        ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    println!("{key}_zh {:.2} ms", percentile(ms, 0.95));
    // ... and passed in, as dialog does with the vector its NLU already computed for the turn.
    let vectors = embedder.embed(&turns)?;
    let mut ms = Vec::new();
    for (i, id) in ids.iter().cycle().take(300).enumerate() {
        let t = Instant::now();
        profiles
            .context_with_embedding(
                id,
                "car",
                turns[i % turns.len()],
                &vectors[i % turns.len()],
                5,
            )
            .await?;
        ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    println!("{key}_with_embedding {:.2} ms", percentile(ms, 0.95));
    Ok(())
}

fn main() -> anyhow::Result<()> {
    retrieval::embed::block_on_main(run())?
}

async fn run() -> anyhow::Result<()> {
    // `RUST_LOG=retrieval=info` shows where an import's time went (checks vs writes).
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let dir = tempfile::tempdir()?;
    let only = std::env::args().nth(1);
    let run = |name: &str| only.as_deref().is_none_or(|o| o == name);
    if run("vector") {
        vector_search().await?;
    }
    if run("ingest") {
        let sqlite = SqlStore::connect(&format!(
            "sqlite://{}",
            dir.path().join("ingest.db").display()
        ))
        .await?;
        ingest(&sqlite, "ingest.sqlite_events_per_s", "sqlite").await?;
        let url = std::env::var("DATABASE_URL_PG")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        match SqlStore::connect(&url).await {
            Ok(pg) => {
                ingest(
                    &pg,
                    "ingest.postgres_events_per_s",
                    &format!("pg{}", std::process::id()),
                )
                .await?
            }
            Err(e) => println!("ingest.postgres_events_per_s skipped: {e}"),
        }
    }
    if run("import") {
        import(dir.path()).await?;
    }
    if run("context") {
        context(dir.path()).await?;
    }
    Ok(())
}

//! Scores the NLU on the held-out split of `dialog/data/nlu/{en,zh}.jsonl` and times it: one line
//! per figure, the BENCHMARKS.md key first, then the confusion matrix and the misses. Needs
//! `models/all-MiniLM-L6-v2` (scripts/setup.sh).
//! Run: `cargo run -p dialog --example nlu_bench`. Environment:
//! `NLU_BENCH_LOAD=<n>` keeps n extra threads busy while timing (other calls on the same CPU);
//! `NLU_BENCH_OUT=<file>` writes each held-out turn's prediction as JSONL.
#![allow(clippy::print_stdout)]

use dialog::nlu::data::{load_turns, Scores, Split};
use dialog::nlu::model::SENTIMENT_CLASSES;
use dialog::nlu::NluEngine;
use dialog::{Intent, Understand};
use retrieval::{BertEmbedder, Embedder, Language};
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// Timed passes over the held-out turns (the first, untimed, warms caches).
const PASSES: usize = 3;

fn percentile(sorted: &[f64], q: f64) -> f64 {
    sorted
        .get(((sorted.len() as f64 - 1.0) * q).round() as usize)
        .copied()
        .unwrap_or(0.0)
}

/// Short column names of the confusion matrix, in [`Intent::ALL`] order.
const SHORT: [&str; 9] = [
    "enq", "cmp", "buy", "price", "ref", "cb", "opt", "robot", "oth",
];

fn main() -> anyhow::Result<()> {
    retrieval::embed::set_cpu_threads_once();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = root.join("data/nlu");
    let embedder: Arc<dyn Embedder> = Arc::new(BertEmbedder::load(
        &root.join("../models/all-MiniLM-L6-v2"),
    )?);
    let engine = NluEngine::load(&dir, Some(embedder))?;
    let load: usize = std::env::var("NLU_BENCH_LOAD")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut out = match std::env::var("NLU_BENCH_OUT") {
        Ok(path) => Some(std::fs::File::create(path)?),
        Err(_) => None,
    };
    let mut all_ms = Vec::new();
    for language in [Language::En, Language::Zh] {
        let code = language.code();
        let turns: Vec<_> = load_turns(&dir.join(format!("{code}.jsonl")))?
            .into_iter()
            .filter(|t| t.split == Split::Test)
            .collect();
        let (mut gold, mut predicted, mut sent_ok) = (Vec::new(), Vec::new(), 0usize);
        let index = |i: Intent| Intent::ALL.iter().position(|x| *x == i).unwrap_or(0);
        let mut errors = Vec::new();
        for t in &turns {
            let r = engine.understand(&t.text, language)?;
            gold.push(index(t.intent));
            predicted.push(index(r.intent));
            sent_ok += usize::from(r.sentiment.label == t.sentiment);
            if let Some(f) = out.as_mut() {
                let row = serde_json::json!({
                    "language": code,
                    "text": t.text,
                    "gold": t.intent.as_str(),
                    "predicted": r.intent.as_str(),
                    "confidence": r.confidence,
                });
                writeln!(f, "{row}")?;
            }
            if r.intent != t.intent {
                errors.push(format!(
                    "  miss {code}: {:?} gold={} got={} p={:.2}",
                    t.text,
                    t.intent.as_str(),
                    r.intent.as_str(),
                    r.confidence
                ));
            }
        }
        let scores = Scores::compute(&gold, &predicted, Intent::ALL.len());
        println!(
            "nlu.macro_f1_{code} {:.3} macro-F1 over 9 intents ({} held-out turns)",
            scores.macro_f1,
            turns.len()
        );
        println!("nlu.accuracy_{code} {:.3} intent accuracy", scores.accuracy);
        for (intent, s) in Intent::ALL.iter().zip(&scores.per_class) {
            println!(
                "nlu.f1_{code}.{} {:.3} F1 (precision {:.3}, recall {:.3}, support {})",
                intent.as_str(),
                s.f1,
                s.precision,
                s.recall,
                s.support
            );
        }
        println!(
            "nlu.sentiment_accuracy_{code} {:.3} label accuracy over {:?}",
            sent_ok as f64 / turns.len().max(1) as f64,
            SENTIMENT_CLASSES
        );
        println!("  confusion {code} (rows gold, columns predicted):");
        println!("  {:>6} {}", "", SHORT.map(|s| format!("{s:>5}")).join(" "));
        for (g, name) in SHORT.iter().enumerate() {
            let row: Vec<String> = (0..Intent::ALL.len())
                .map(|p| {
                    let n = gold
                        .iter()
                        .zip(&predicted)
                        .filter(|(a, b)| **a == g && **b == p)
                        .count();
                    format!("{n:>5}")
                })
                .collect();
            println!("  {name:>6} {}", row.join(" "));
        }
        for e in &errors {
            println!("{e}");
        }
        // Latency: one turn at a time, as in a call, with `load` other threads spinning.
        let stop = Arc::new(AtomicBool::new(false));
        let spinners: Vec<_> = (0..load)
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let mut x = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        x = std::hint::black_box(
                            x.wrapping_mul(6364136223846793005).wrapping_add(1),
                        );
                    }
                })
            })
            .collect();
        for t in &turns {
            engine.understand(&t.text, language)?;
        }
        let mut ms = Vec::new();
        for _ in 0..PASSES {
            for t in &turns {
                let start = Instant::now();
                engine.understand(&t.text, language)?;
                ms.push(start.elapsed().as_secs_f64() * 1e3);
            }
        }
        stop.store(true, Ordering::Relaxed);
        for s in spinners {
            let _ = s.join();
        }
        ms.sort_by(f64::total_cmp);
        println!(
            "nlu.latency_ms_p95_{code} {:.2} ms per turn (p50 {:.2}, max {:.2}, {} calls, {load} busy threads beside)",
            percentile(&ms, 0.95),
            percentile(&ms, 0.5),
            ms.last().copied().unwrap_or(0.0),
            ms.len()
        );
        all_ms.extend(ms);
    }
    all_ms.sort_by(f64::total_cmp);
    println!(
        "nlu.latency_ms_p95 {:.2} ms per turn, en and zh together (p50 {:.2}, {} calls, {load} busy threads beside)",
        percentile(&all_ms, 0.95),
        percentile(&all_ms, 0.5),
        all_ms.len()
    );
    Ok(())
}

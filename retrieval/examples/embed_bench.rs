//! Prints all-MiniLM-L6-v2 throughput on candle (sentences/s at batch 1 and 32).
//! Run: `cargo run -p retrieval --example embed_bench`.
#![allow(clippy::print_stdout)]

use retrieval::{BertEmbedder, Embedder};
use std::time::Instant;

fn main() -> anyhow::Result<()> {
    retrieval::embed::set_cpu_threads_once();
    let dir =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models/all-MiniLM-L6-v2");
    let e = BertEmbedder::load(&dir)?;
    let base = [
        "The customer said the premium is too expensive for her family.",
        "Please call me back tomorrow afternoon after three.",
        "I would like to know more about the education insurance plan.",
        "He complained that the last agent was rude and hung up.",
    ];
    let sentences: Vec<String> = (0..256)
        .map(|i| format!("{} (#{i})", base[i % base.len()]))
        .collect();
    let refs: Vec<&str> = sentences.iter().map(String::as_str).collect();
    e.embed(&refs[..8])?; // warm-up
    for batch in [1usize, 32] {
        let t = Instant::now();
        for chunk in refs.chunks(batch) {
            e.embed(chunk)?;
        }
        let s = t.elapsed().as_secs_f64();
        println!(
            "embed batch={batch} sentences_per_s={:.1}",
            refs.len() as f64 / s
        );
    }
    Ok(())
}

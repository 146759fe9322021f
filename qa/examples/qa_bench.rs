//! QA throughput: rule grading of 10k synthetic calls in memory (`qa.calls_graded_per_s`),
//! `ringwise qa run` end to end on a temporary SQLite store (`qa.run_calls_per_s_sqlite`: read,
//! grade, store in one transaction per page) and the report of 10k graded calls
//! (`report.render_s_10k_calls`: figures, index.html with four SVG charts, 10k call pages,
//! report.json, calls.csv).
//!
//! `cargo run -p qa --example qa_bench [-- --calls 10000 --stored 2000]`

#![allow(clippy::print_stdout)]

use anyhow::Context;
use base64::Engine;
use qa::grade::{Grader, GraderConfig};
use qa::report::{GradedCall, ReportConfig};
use qa::synth::synthetic_calls;
use qa::CallView;
use retrieval::store::Customer;
use retrieval::{PrivacyKeys, SqlStore};
use std::time::Instant;

fn arg(name: &str, default: usize) -> anyhow::Result<usize> {
    let args: Vec<String> = std::env::args().collect();
    match args.iter().position(|a| a == name) {
        Some(i) => args
            .get(i + 1)
            .context("a number after the flag")?
            .parse()
            .with_context(|| format!("{name} takes a number")),
        None => Ok(default),
    }
}

fn main() -> anyhow::Result<()> {
    let n = arg("--calls", 10_000)?;
    let stored = arg("--stored", 2_000)?;
    let grader = Grader::new(GraderConfig::default())?;

    // 1. Rules only, in memory: from the stored rows to a grade.
    let records: Vec<_> = synthetic_calls(n, 1)
        .iter()
        .map(|s| s.to_record())
        .collect();
    let t = Instant::now();
    let calls: Vec<GradedCall> = records
        .iter()
        .map(|r| {
            let call = CallView::from_record(r);
            let grade = grader.grade(&call, 0);
            GradedCall { call, grade }
        })
        .collect();
    let s = t.elapsed().as_secs_f64();
    println!(
        "qa.calls_graded_per_s={:.0} ({n} calls in {s:.3} s; rules, in memory, one thread)",
        n as f64 / s
    );

    // 2. The report of all of them.
    let dir = tempfile::tempdir()?;
    let t = Instant::now();
    let report = qa::report::build(&calls, &ReportConfig::default(), 1500.0, 0)?;
    let files = qa::report::write(&report, &calls, dir.path())?;
    let s = t.elapsed().as_secs_f64();
    let size = std::fs::metadata(&files.index)?.len();
    println!(
        "report.render_s_10k_calls={s:.2} ({n} calls: index.html {:.1} MB, {} call pages, report.json, calls.csv)",
        size as f64 / 1e6,
        files.call_pages
    );

    // 3. `qa run` end to end on SQLite.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let db = tempfile::tempdir()?;
        let store = SqlStore::connect(&format!("sqlite://{}/bench.db", db.path().display())).await?;
        let b64 = base64::engine::general_purpose::STANDARD;
        let keys = PrivacyKeys::from_base64(&b64.encode([1u8; 32]), &b64.encode([2u8; 32]))?;
        let scripts = synthetic_calls(stored, 2);
        for s in &scripts {
            store
                .upsert_customer(&Customer {
                    id: s.customer_id.clone(),
                    display_name: s.customer_name.clone(),
                    language: s.language.clone(),
                    created_at_ms: 0,
                })
                .await?;
            store
                .store_call(&s.to_stored(), &keys, async |_| Ok(()))
                .await?;
        }
        let t = Instant::now();
        let summary = qa::run::grade_ungraded(&store, &grader, 500, 0, &mut |_, _| {}).await?;
        let s = t.elapsed().as_secs_f64();
        println!(
            "qa.run_calls_per_s_sqlite={:.0} ({} calls read, graded and stored in {s:.2} s, pages of 500)",
            summary.graded as f64 / s,
            summary.graded
        );
        let t = Instant::now();
        let (loaded, _) = qa::report::load_graded(&store, Some(&keys)).await?;
        println!(
            "report.load_s_sqlite={:.2} ({} graded calls read back)",
            t.elapsed().as_secs_f64(),
            loaded.len()
        );
        anyhow::Ok(())
    })?;
    Ok(())
}

//! Qualifies a GGUF for LLM phrasing: runs the labelled suite (dialog/data/qualify) in opener and
//! paraphrase mode, prints the Markdown report and the figures `dialog.guard_fallback_rate` and
//! `dialog.wrong_accepted_rate`, and writes `qualify_report.{json,md}` to `--out` if given.
//! Run: `cargo run -p dialog --example qualify -- [--model PATH] [--threads N] [--out DIR]`.
#![allow(clippy::print_stdout)]

use dialog::llm::llama::LlamaCppModel;
use dialog::policy::{qualify, QualifyConfig};
use dialog::{LanguageModel, LlmConfig};
use retrieval::{BertEmbedder, Embedder};
use std::path::PathBuf;
use std::sync::Arc;

fn main() -> anyhow::Result<()> {
    retrieval::embed::block_on_main(run())?
}

async fn run() -> anyhow::Result<()> {
    tracing_subscriber_init();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut config = LlmConfig {
        model_path: root.join(LlmConfig::default().model_path),
        threads: 1,
        ..LlmConfig::default()
    };
    let mut out = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--model" => config.model_path = args.next().map(PathBuf::from).unwrap_or_default(),
            "--threads" => config.threads = args.next().and_then(|t| t.parse().ok()).unwrap_or(1),
            "--out" => out = args.next().map(PathBuf::from),
            other => {
                anyhow::bail!("unknown argument {other}; use --model PATH, --threads N, --out DIR")
            }
        }
    }
    let llm: Arc<dyn LanguageModel> = Arc::new(LlamaCppModel::load(&config)?);
    let embedder: Arc<dyn Embedder> =
        Arc::new(BertEmbedder::load(&root.join("models/all-MiniLM-L6-v2"))?);
    let report = qualify(llm, Some(embedder), &QualifyConfig::default()).await?;
    let md = report.to_markdown();
    println!("{md}");
    for m in &report.modes {
        println!(
            "dialog.guard_fallback_rate[{}] = {:.3}\ndialog.wrong_accepted_rate[{}] = {:.3}",
            m.mode.as_str(),
            m.total.fallback_rate,
            m.mode.as_str(),
            m.total.wrong_accepted_rate
        );
    }
    if let Some(dir) = out {
        std::fs::create_dir_all(&dir)?;
        std::fs::write(
            dir.join("qualify_report.json"),
            serde_json::to_string_pretty(&report)?,
        )?;
        std::fs::write(dir.join("qualify_report.md"), md)?;
    }
    Ok(())
}

/// Logs to stderr at RUST_LOG (default warn), so the report on stdout stays clean.
fn tracing_subscriber_init() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .try_init();
}

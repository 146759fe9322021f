//! `ringwise`: the product's single binary. Subcommands run the demo, serve the gRPC API, and
//! run single engines on files.

use anyhow::Context;
use clap::{Parser, Subcommand};
use orchestrator::demo::{self, DemoOptions, DemoReport};
use orchestrator::{grpc, Config, Engines};
use std::io::Write;
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use voice::audio::{read_wav, resample, write_wav};
use voice::{AsrOptions, AudioChunk, Language, SAMPLE_RATE};

#[derive(Parser)]
#[command(name = "ringwise", version, about = "Outbound voice-bot orchestrator")]
struct Cli {
    /// TOML configuration file (defaults ← file ← RINGWISE_* environment).
    #[arg(long, global = true, env = "RINGWISE_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The demo campaign end to end on the real engines and embedded defaults: synthetic CRM
    /// import, retrieval indexing, simulated callers through TTS → VAD → Whisper → dialogue
    /// manager → TTS, calls stored and recorded.
    Demo {
        /// Synthetic CRM size.
        #[arg(long, default_value_t = 500)]
        customers: usize,
        /// Calls placed (personas in turn, en / zh alternating).
        #[arg(long, default_value_t = 8)]
        calls: usize,
        #[arg(long, default_value_t = 7)]
        seed: u64,
        /// The simulated callers (YAML).
        #[arg(long, default_value = "orchestrator/data/demo_callers.yaml")]
        personas: PathBuf,
        /// Folder for the CRM export.
        #[arg(long, default_value = "out")]
        out: PathBuf,
        /// Print the report as JSON instead of text.
        #[arg(long)]
        json: bool,
        /// Feed the callers' audio as fast as the engines take it instead of at the pace of a
        /// phone line (faster; the endpoint-to-final latency then means nothing).
        #[arg(long)]
        fast: bool,
    },
    /// Import a CRM export (customers) or a CRM call-log export into the store. Columns are
    /// mapped by `retrieval.crm` / `retrieval.call_logs`; bad rows are listed with their line.
    Import {
        file: PathBuf,
        /// `customers` or `call-logs`.
        #[arg(long, default_value = "customers")]
        kind: String,
        /// `csv` or `jsonl` (default: from the file name).
        #[arg(long)]
        format: Option<String>,
    },
    /// Qualify the configured GGUF for LLM phrasing: runs the labelled suite and reports
    /// wrong-but-accepted and fallback rates per action; phrasing may be switched on only
    /// with a passing report.
    Qualify {
        /// Folder for qualify_report.{json,md}.
        #[arg(long, default_value = "out/qualify")]
        out: PathBuf,
    },
    /// Serve the gRPC API until Ctrl-C.
    Serve,
    /// Transcribe a 16-bit WAV file with Whisper (any rate; resampled to 16 kHz).
    Transcribe {
        wav: PathBuf,
        #[arg(long, default_value = "en")]
        language: String,
    },
    /// Speak text into a WAV file (Piper for en, espeak-ng for zh).
    Speak {
        text: String,
        #[arg(long, default_value = "en")]
        language: String,
        #[arg(long, default_value = "out/speak.wav")]
        out: PathBuf,
    },
    /// Print the effective configuration as TOML-like JSON.
    Config,
}

fn out(text: &str) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{text}")?;
    Ok(())
}

fn main() -> anyhow::Result<()> {
    retrieval::embed::block_on_main(run()).context("starting the async runtime")?
}

async fn run() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,ort=warn,llama_cpp_2=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let config = Config::load(cli.config.as_deref()).context("reading the configuration")?;
    match cli.command {
        Command::Demo {
            customers,
            calls,
            seed,
            personas,
            out: out_dir,
            json,
            fast,
        } => {
            let opts = DemoOptions {
                customers,
                calls,
                seed,
                personas,
                out_dir,
                real_time: !fast,
            };
            let report = demo::run(&config, opts).await?;
            if json {
                out(&serde_json::to_string_pretty(&report)?)?;
            } else {
                out(&demo_text(&report, &config))?;
            }
        }
        Command::Import { file, kind, format } => {
            out(&import(&config, &file, &kind, format.as_deref()).await?)?;
        }
        Command::Qualify { out: dir } => {
            let text = qualify(&config, &dir).await?;
            out(&text)?;
        }
        Command::Serve => {
            let cfg = config.clone();
            let engines =
                Arc::new(tokio::task::spawn_blocking(move || Engines::load(&cfg, false)).await??);
            let listener = tokio::net::TcpListener::bind(&config.server.listen)
                .await
                .with_context(|| {
                    format!("listening on server.listen = {:?}", config.server.listen)
                })?;
            let shutdown = CancellationToken::new();
            let trigger = shutdown.clone();
            tokio::spawn(async move {
                let _ = tokio::signal::ctrl_c().await;
                tracing::info!("shutting down");
                trigger.cancel();
            });
            grpc::serve(engines, listener, &config.server, shutdown).await?;
        }
        Command::Transcribe { wav, language } => {
            let language: Language = language.parse()?;
            let audio = read_wav(&wav)?;
            let pcm = resample(&audio.samples, audio.sample_rate, SAMPLE_RATE)?;
            let v = config.voice.clone();
            let text = tokio::task::spawn_blocking(move || -> anyhow::Result<String> {
                let size = if language == Language::English {
                    v.asr_model_en
                } else {
                    v.asr_model_zh
                };
                let asr = voice::asr::whisper::WhisperAsr::from_config(&v, size)?;
                let mut stream = voice::SpeechToText::start(
                    &asr,
                    &AsrOptions {
                        language,
                        initial_prompt: None,
                    },
                )?;
                stream.push(&pcm)?;
                Ok(stream.finish()?.text)
            })
            .await??;
            out(&text)?;
        }
        Command::Speak {
            text,
            language,
            out: path,
        } => {
            let language: Language = language.parse()?;
            let v = config.voice.clone();
            let audio = tokio::task::spawn_blocking(move || -> anyhow::Result<AudioChunk> {
                let tts: Box<dyn voice::TextToSpeech> = match language {
                    Language::English => Box::new(voice::tts::piper::PiperTts::load(&v)?),
                    Language::Chinese => voice::tts::zh_fastspeech::load_mandarin(&v)?,
                };
                let mut samples = Vec::new();
                tts.synthesize(&text, language, &CancellationToken::new(), &mut |c| {
                    samples.extend_from_slice(&c.samples);
                    ControlFlow::Continue(())
                })?;
                Ok(AudioChunk {
                    sample_rate: tts.sample_rate(),
                    samples,
                })
            })
            .await??;
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            write_wav(&path, &audio)?;
            out(&format!(
                "{} ({:.0} ms)",
                path.display(),
                audio.duration_ms()
            ))?;
        }
        Command::Config => out(&serde_json::to_string_pretty(&config)?)?,
    }
    Ok(())
}

/// The demo report as text: per call the turns with what was heard, understood and decided.
fn demo_text(r: &DemoReport, config: &Config) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "CRM export  : {} -> {} imported, {} rejected{}",
        r.crm_file.display(),
        r.imported,
        r.rejected.len(),
        r.rejected
            .first()
            .map_or_else(String::new, |x| format!(" (e.g. {x})"))
    );
    let _ = writeln!(
        s,
        "knowledge   : {} snippets indexed; LLM phrasing {}",
        r.knowledge_snippets, r.llm_phrasing
    );
    for c in &r.calls {
        let rep = &c.report;
        let _ = writeln!(
            s,
            "\ncall {} [{}] customer {} segment {} persona {}: outcome {} {}",
            rep.call_id,
            rep.language,
            rep.customer_id,
            rep.segment,
            c.persona,
            rep.outcome.as_deref().unwrap_or("none"),
            if c.as_expected() {
                "(as expected)".to_string()
            } else {
                format!("(EXPECTED {})", c.expected_outcome)
            }
        );
        let _ = writeln!(s, "  bot    : {}", rep.greeting);
        for t in &rep.turns {
            let _ = writeln!(s, "  caller : {}", t.caller_said);
            let _ = writeln!(
                s,
                "  heard  : {} [{} partials; intent {}, sentiment {:+.2}{}]",
                t.transcript,
                t.partials,
                t.intent,
                t.sentiment,
                if t.keywords.is_empty() {
                    String::new()
                } else {
                    format!(", keywords {}", t.keywords.join(" "))
                }
            );
            let _ = writeln!(s, "  action : {} (rule {})", t.action, t.rule);
            let _ = writeln!(s, "  bot    : {}", t.reply);
            let _ = writeln!(
                s,
                "  latency: final text {:.0} ms + decision {:.1} ms + first audio {:.0} ms = {:.0} ms after the endpoint",
                t.endpoint_to_final_ms, t.decide_ms, t.tts_first_audio_ms, t.response_ms
            );
        }
        let _ = writeln!(
            s,
            "  record : {} ({:.1} s stereo, caller left / bot right)",
            rep.recording.display(),
            rep.recording_ms / 1000.0
        );
    }
    let expected = r.calls.iter().filter(|c| c.as_expected()).count();
    let _ = writeln!(
        s,
        "\n{} calls, {} reached the expected outcome",
        r.calls.len(),
        expected
    );
    let _ = writeln!(
        s,
        "per turn (ms): response p50 {:.0} p95 {:.0}; final text p50 {:.0}; decision p50 {:.1} p95 {:.1}; first audio p50 {:.0}",
        r.turn_percentile(|t| t.response_ms, 50.0),
        r.turn_percentile(|t| t.response_ms, 95.0),
        r.turn_percentile(|t| t.endpoint_to_final_ms, 50.0),
        r.turn_percentile(|t| t.decide_ms, 50.0),
        r.turn_percentile(|t| t.decide_ms, 95.0),
        r.turn_percentile(|t| t.tts_first_audio_ms, 50.0),
    );
    let _ = writeln!(
        s,
        "stored in   : {} (calls, turns, actions, recordings), {}/calls/*.json",
        config.retrieval.database_url,
        config.dialog.data_dir.display()
    );
    let _ = writeln!(s, "timings (ms):");
    for (stage, ms) in &r.timings {
        let _ = writeln!(s, "  {stage:<28} {ms:>9.1}");
    }
    s
}

/// `ringwise import`: customers or call logs from CSV / JSON lines.
async fn import(
    config: &Config,
    file: &std::path::Path,
    kind: &str,
    format: Option<&str>,
) -> anyhow::Result<String> {
    use retrieval::import::{import_call_logs, import_customers, Format};
    let format = match format {
        Some("csv") => Format::Csv,
        Some("jsonl" | "json") => Format::JsonLines,
        Some(other) => anyhow::bail!("unknown --format {other:?}: use csv or jsonl"),
        None => Format::from_path(file).with_context(|| {
            format!(
                "{}: cannot tell the format from the name; pass --format csv or --format jsonl",
                file.display()
            )
        })?,
    };
    let input = std::fs::read_to_string(file)
        .with_context(|| format!("reading {} (UTF-8 text expected)", file.display()))?;
    let keys = demo::demo_keys(config, &config.dialog.data_dir)?;
    demo::ensure_sqlite_folder(&config.retrieval.database_url)?;
    let store = retrieval::SqlStore::connect(&config.retrieval.database_url).await?;
    let now = orchestrator::call::now_ms();
    let report = match kind {
        "customers" => {
            import_customers(&store, &keys, &config.retrieval.crm, format, &input, now).await?
        }
        "call-logs" => {
            import_call_logs(&store, &keys, &config.retrieval.call_logs, format, &input).await?
        }
        other => anyhow::bail!("unknown --kind {other:?}: use customers or call-logs"),
    };
    let mut s = format!(
        "{}: {} rows accepted, {} rejected",
        file.display(),
        report.accepted,
        report.rejected.len()
    );
    for r in &report.rejected {
        s.push_str(&format!("\n  line {}: {}", r.line, r.reason));
    }
    Ok(s)
}

/// `ringwise qualify`: the configured GGUF over the labelled phrasing suite.
async fn qualify(config: &Config, dir: &std::path::Path) -> anyhow::Result<String> {
    use dialog::policy::{qualify, QualifyConfig};
    let (llm_config, embedder_dir) = (config.llm.clone(), config.retrieval.embedder_dir.clone());
    let (llm, embedder) = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        let llm: Arc<dyn dialog::LanguageModel> =
            Arc::new(dialog::llm::llama::LlamaCppModel::load(&llm_config)?);
        let embedder: Arc<dyn retrieval::Embedder> =
            Arc::new(retrieval::BertEmbedder::load(&embedder_dir)?);
        Ok((llm, embedder))
    })
    .await??;
    let report = qualify(llm, Some(embedder), &QualifyConfig::default()).await?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let md = report.to_markdown();
    std::fs::write(
        dir.join("qualify_report.json"),
        serde_json::to_string_pretty(&report)?,
    )?;
    std::fs::write(dir.join("qualify_report.md"), &md)?;
    let verdict = if report.any_passed() {
        "PASSED: LLM phrasing may be switched on (dialog.phrasing + dialog.qualify_report)"
    } else {
        "FAILED: LLM phrasing stays off; every reply is a template"
    };
    Ok(format!(
        "{md}\n{verdict}\nreport: {}",
        dir.join("qualify_report.json").display()
    ))
}

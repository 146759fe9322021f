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
    /// import, retrieval indexing, the gRPC server in-process, and the campaign dialer calling
    /// simulated callees on several lines over the gRPC `Call` stream; calls stored and recorded.
    Demo {
        /// Synthetic CRM size.
        #[arg(long, default_value_t = 500)]
        customers: usize,
        /// Customers the campaign calls (one attempt each).
        #[arg(long, default_value_t = 50)]
        calls: usize,
        /// Concurrent lines.
        #[arg(long, default_value_t = 4)]
        lines: usize,
        #[arg(long, default_value_t = 7)]
        seed: u64,
        /// The campaign file (id, name, dialer settings).
        #[arg(long, default_value = "orchestrator/data/demo_campaign.yaml")]
        campaign: PathBuf,
        /// The simulated callees' lines (YAML).
        #[arg(long, default_value = "orchestrator/data/personas.yaml")]
        personas: PathBuf,
        /// Folder for the CRM export.
        #[arg(long, default_value = "out")]
        out: PathBuf,
        /// Print the report as JSON instead of text.
        #[arg(long)]
        json: bool,
        /// The callees' line clock: 1 is a phone line in real time; 2 runs them twice as fast
        /// (the engines' latencies then weigh double in line time).
        #[arg(long, default_value_t = 1.0)]
        speed: f64,
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
    /// Train propensity models on a labelled CSV (an id column, a 0/1 or yes/no label column,
    /// every other column numeric): logistic regression and gradient-boosted trees on a seeded
    /// stratified split, calibrated, judged on held-out rows; the best is saved to --out.
    Train {
        #[arg(long)]
        csv: PathBuf,
        /// The id column.
        #[arg(long, default_value = "customer_id")]
        id: String,
        /// The label column (1/0, yes/no, true/false).
        #[arg(long)]
        label: String,
        /// Folder for the model (model.json, features.json, meta.json, metrics.json, sha256).
        #[arg(long)]
        out: PathBuf,
        /// `logistic`, `gbm` or `both` (the better on held-out AUC is saved to --out).
        #[arg(long, default_value = "both")]
        model: String,
        #[arg(long, default_value_t = 2000)]
        seed: u64,
        /// Record the model in the store and make it active if it beats the active version on
        /// this run's held-out rows (the dialer scores with the active version).
        #[arg(long)]
        register: bool,
        /// Also write the split's train.csv (fit + calibration rows) and test.csv here.
        #[arg(long)]
        export_split: Option<PathBuf>,
    },
    /// Score a CSV with a saved propensity model: writes `id,probability` per row.
    Score {
        /// The model folder written by `ringwise train`.
        #[arg(long)]
        model: PathBuf,
        #[arg(long)]
        csv: PathBuf,
        #[arg(long)]
        out: PathBuf,
        /// The id column (default: the one the model was trained with).
        #[arg(long)]
        id: Option<String>,
    },
    /// The learning loop: retrain the propensity model on the stored calls with their QA labels
    /// (calls the bot lost are left out), promote it only if it beats the active version on
    /// the same held-out calls, and write the before/after for `ringwise report`.
    Retrain {
        /// Folder for the model versions (default: `qa.models_dir`).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Only when the active version is older than `qa.retrain_every_days` (for a daily
        /// timer).
        #[arg(long)]
        if_due: bool,
    },
    /// K-Means segments of the store's customer profiles with readable names, and each
    /// segment's best hours and weekdays to call from the call history.
    Segments {
        #[arg(long, default_value_t = 7)]
        seed: u64,
        /// Smallest and largest k tried (chosen by silhouette).
        #[arg(long, default_value_t = 3)]
        k_min: usize,
        #[arg(long, default_value_t = 6)]
        k_max: usize,
        /// Time zone for calls whose customer has no dialer time zone.
        #[arg(long, default_value = "UTC")]
        zone: String,
        /// Store each customer's segment name in the profile (the dialer reports by it).
        #[arg(long)]
        write: bool,
        #[arg(long)]
        json: bool,
    },
    /// Call QA: `ringwise qa run` grades every stored call not graded yet (rubric checks with
    /// evidence, failure reasons); running it again grades nothing new.
    Qa {
        #[command(subcommand)]
        command: QaCommand,
    },
    /// Write the QA report of the graded calls: index.html (inline SVG charts, rubric and
    /// failure tables), a page per call, report.json and calls.csv; phone numbers masked.
    Report {
        #[arg(long, default_value = "out/report")]
        out: PathBuf,
        /// A model before/after (JSON of `qa::ModelComparison`) to show in the report.
        #[arg(long)]
        model_comparison: Option<PathBuf>,
    },
    /// Dialogue regression tests: `eval run` a folder of scenarios, `eval compare` two saved
    /// runs, `eval capture` a stored call into a scenario file.
    Eval {
        #[command(subcommand)]
        command: EvalCommand,
    },
    /// Print the effective configuration as TOML-like JSON.
    Config,
}

#[derive(Subcommand)]
enum EvalCommand {
    /// Run every scenario under DIR; exit status 1 when any fails (a regression).
    Run {
        dir: PathBuf,
        /// `text` (caller text straight into the dialogue) or `audio` (TTS → gRPC call → ASR,
        /// real engines; scenarios with `modes: [.., audio]`).
        #[arg(long, default_value = "text")]
        mode: String,
        /// Scenarios at a time (default: cores in text mode, 1 in audio mode).
        #[arg(long)]
        jobs: Option<usize>,
        /// Only scenarios whose id contains this.
        #[arg(long)]
        filter: Option<String>,
        /// Names the run in reports and comparisons (e.g. the model or script version).
        #[arg(long, default_value = "")]
        label: String,
        /// Text mode: phrase replies with the configured GGUF (`llm.model_path`) in `opener` or
        /// `paraphrase` mode, for measurement only (no qualification needed).
        #[arg(long)]
        llm_phrasing: Option<String>,
        /// Audio mode: the callers' line clock (1 = real time).
        #[arg(long, default_value_t = 1.0)]
        speed: f64,
        /// Seconds one scenario may take.
        #[arg(long, default_value_t = 180)]
        timeout: u64,
        /// Write JUnit XML here.
        #[arg(long)]
        junit: Option<PathBuf>,
        /// Write a Markdown summary here.
        #[arg(long)]
        summary: Option<PathBuf>,
        /// Write an HTML summary here.
        #[arg(long)]
        html: Option<PathBuf>,
        /// Save the results (the input of `eval compare`).
        #[arg(long)]
        save: Option<PathBuf>,
    },
    /// Two saved runs side by side: verdict, latency and wording changes; exit status 1 when a
    /// scenario that passed in A fails in B.
    Compare {
        a: PathBuf,
        b: PathBuf,
        /// Also write the comparison as Markdown here.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Turn a stored call (and its QA grades) into a scenario file.
    Capture {
        call_id: String,
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Subcommand)]
enum QaCommand {
    /// Grade every call the rule grader has not graded yet.
    Run {
        /// Also ask the LLM judge (`qa.judge_model`, else the Qwen GGUF setup fetches) about
        /// the calls graded now: advisory `judge.*` checks, seconds per call.
        #[arg(long)]
        judge: bool,
    },
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
                .unwrap_or_else(|_| "info,ort=warn,llama_cpp_2=warn,perpetual=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let config = Config::load(cli.config.as_deref()).context("reading the configuration")?;
    match cli.command {
        Command::Demo {
            customers,
            calls,
            lines,
            seed,
            campaign,
            personas,
            out: out_dir,
            json,
            speed,
        } => {
            if !(0.1..=20.0).contains(&speed) {
                anyhow::bail!("--speed {speed}: give a value from 0.1 to 20");
            }
            let opts = DemoOptions {
                customers,
                calls,
                lines,
                seed,
                campaign,
                personas,
                out_dir,
                speed,
                progress: !json,
            };
            let report = demo::run(&config, opts).await?;
            if json {
                out(&serde_json::to_string_pretty(&report)?)?;
            } else {
                out(&demo_text(&report))?;
            }
        }
        Command::Import { file, kind, format } => {
            out(&import(&config, &file, &kind, format.as_deref()).await?)?;
        }
        Command::Qualify { out: dir } => {
            let text = qualify(&config, &dir).await?;
            out(&text)?;
        }
        Command::Serve => serve(&config).await?,
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
        Command::Train {
            csv,
            id,
            label,
            out: dir,
            model,
            seed,
            register,
            export_split,
        } => {
            let args = orchestrator::learn::TrainArgs {
                csv,
                id,
                label,
                out: dir,
                model,
                seed,
                register,
                export_split,
            };
            out(&orchestrator::learn::train(&config, args).await?)?;
        }
        Command::Score {
            model,
            csv,
            out: path,
            id,
        } => out(&orchestrator::learn::score(&model, &csv, &path, id.as_deref()).await?)?,
        Command::Retrain { out: dir, if_due } => {
            let dir = dir.unwrap_or_else(|| config.qa.models_dir.clone());
            out(&orchestrator::learn::retrain(&config, &dir, if_due).await?)?
        }
        Command::Segments {
            seed,
            k_min,
            k_max,
            zone,
            write,
            json,
        } => {
            let args = orchestrator::learn::SegmentArgs {
                seed,
                k_min,
                k_max,
                zone,
                write,
                json,
            };
            out(&orchestrator::learn::segments(&config, args).await?)?;
        }
        Command::Qa {
            command: QaCommand::Run { judge },
        } => out(&orchestrator::grading::qa_run(&config, judge).await?)?,
        Command::Report {
            out: dir,
            model_comparison,
        } => {
            out(&orchestrator::grading::report(&config, &dir, model_comparison.as_deref()).await?)?
        }
        Command::Eval { command } => {
            if !eval(&config, command).await? {
                std::process::exit(1);
            }
        }
        Command::Config => out(&serde_json::to_string_pretty(&config)?)?,
    }
    Ok(())
}

/// `ringwise eval …`; `false` when the run or comparison found a regression.
async fn eval(config: &Config, command: EvalCommand) -> anyhow::Result<bool> {
    use evals::{report, Mode, RunResults};
    let write = |path: &Option<PathBuf>, text: &str| -> anyhow::Result<()> {
        if let Some(p) = path {
            if let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)?;
            }
            std::fs::write(p, text).with_context(|| format!("writing {}", p.display()))?;
        }
        Ok(())
    };
    match command {
        EvalCommand::Run {
            dir,
            mode,
            jobs,
            filter,
            label,
            llm_phrasing,
            speed,
            timeout,
            junit,
            summary,
            html,
            save,
        } => {
            let mode = Mode::parse(&mode)
                .with_context(|| format!("--mode {mode:?}: use text or audio"))?;
            let llm_phrasing = match llm_phrasing.as_deref() {
                None => None,
                Some("opener") => Some(dialog::policy::PhrasingMode::Opener),
                Some("paraphrase") => Some(dialog::policy::PhrasingMode::Paraphrase),
                Some(other) => anyhow::bail!("--llm-phrasing {other:?}: use opener or paraphrase"),
            };
            let jobs = jobs.unwrap_or(match mode {
                Mode::Text => std::thread::available_parallelism().map_or(2, |n| n.get()),
                Mode::Audio => 1,
            });
            let args = orchestrator::evaluate::EvalRunArgs {
                dir,
                mode,
                jobs,
                filter,
                label,
                llm_phrasing,
                speed,
                timeout: std::time::Duration::from_secs(timeout),
            };
            let results: RunResults = orchestrator::evaluate::run(config, &args, &mut |line| {
                let _ = writeln!(std::io::stderr(), "{line}");
            })
            .await?;
            out(&report::table(&results))?;
            write(&junit, &report::junit::junit(&results))?;
            write(&summary, &report::markdown(&results))?;
            write(&html, &report::html::html(&results))?;
            if let Some(path) = &save {
                results.save(path)?;
            }
            Ok(!results.failed())
        }
        EvalCommand::Compare { a, b, out: path } => {
            let (ra, rb) = (RunResults::load(&a)?, RunResults::load(&b)?);
            let comparison = evals::compare(&ra, &rb);
            let md = comparison.markdown();
            out(&md)?;
            write(&path, &md)?;
            Ok(comparison.regressions().is_empty())
        }
        EvalCommand::Capture { call_id, out: path } => {
            out(&orchestrator::evaluate::capture(config, &call_id, &path).await?)?;
            Ok(true)
        }
    }
}

/// The demo report as text: outcomes by segment and persona, conversion, hand-offs, latency.
fn demo_text(r: &DemoReport) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "CRM export   : {} -> {} imported, {} rejected{}",
        r.crm_file.display(),
        r.imported,
        r.rejected.len(),
        r.rejected
            .first()
            .map_or(String::new(), |f| format!(" (e.g. {f})"))
    );
    let _ = writeln!(
        s,
        "Knowledge    : {} snippets indexed",
        r.knowledge_snippets
    );
    let _ = writeln!(s, "LLM phrasing : {}", r.llm_phrasing);
    let _ = writeln!(
        s,
        "Campaign     : {} — {} calls on {} lines in {:.0} s ({:.0} s dialing; {} customers skipped as do-not-call)",
        r.campaign_id,
        r.calls.len(),
        r.lines,
        r.wall_s,
        r.campaign_s,
        r.skipped_do_not_call
    );
    let mut by_persona: std::collections::BTreeMap<&str, (usize, usize)> = Default::default();
    for c in &r.calls {
        let e = by_persona.entry(c.sim.persona.as_str()).or_default();
        e.0 += 1;
        if c.outcome == c.sim.persona.expected_outcome() {
            e.1 += 1;
        }
    }
    let _ = writeln!(s, "\nOutcomes by segment:");
    for (segment, outcomes) in r.outcomes_by_segment() {
        let line: Vec<String> = outcomes.iter().map(|(o, n)| format!("{o} {n}")).collect();
        let _ = writeln!(s, "  {segment:<20} {}", line.join(", "));
    }
    let _ = writeln!(
        s,
        "\nSimulated personas (calls, outcome as the persona intends):"
    );
    for (p, (n, ok)) in &by_persona {
        let _ = writeln!(s, "  {p:<20} {n:>3}  {ok}/{n}");
    }
    let answered: Vec<_> = r
        .calls
        .iter()
        .filter(|c| c.outcome != "no_answer")
        .collect();
    let converted = r.calls.iter().filter(|c| c.outcome == "converted").count();
    let handed = r
        .calls
        .iter()
        .filter(|c| c.outcome == "handed_off" || c.outcome == "abandoned_handoff")
        .count();
    let _ = writeln!(
        s,
        "\nConversion   : {converted}/{} answered calls ({:.1}%), {converted}/{} dialed",
        answered.len(),
        100.0 * converted as f64 / answered.len().max(1) as f64,
        r.calls.len()
    );
    let _ = writeln!(
        s,
        "Hand-offs    : {handed} (abandoned-hand-off rate {:.1}%)",
        100.0 * r.abandoned_handoff_rate
    );
    let barge: usize = r.calls.iter().map(|c| c.barge_ins).sum();
    let _ = writeln!(s, "Barge-ins    : {barge}");
    let wall = r.v2v_wall();
    let line = r.v2v_line();
    let _ = writeln!(
        s,
        "Voice-to-voice (end of caller speech -> first bot frame), {} turns:\n  line  p50 {:.0} ms, p95 {:.0} ms (what the callee heard)\n  wall  p50 {:.0} ms, p95 {:.0} ms (equals line time at --speed 1)",
        line.len(),
        demo::percentile(&line, 50.0),
        demo::percentile(&line, 95.0),
        demo::percentile(&wall, 50.0),
        demo::percentile(&wall, 95.0)
    );
    let _ = writeln!(
        s,
        "\nRecords for the QA job: {} (tables calls, turns, actions, call_events, turn_metrics, recordings); sealed stereo recordings in {}",
        r.database,
        r.recordings.display()
    );
    s
}

/// `ringwise serve`: the whole API on the configured store and engines, the campaign runner
/// (calls are placed by a telephony gateway connecting to the `Call` stream), and `/metrics`.
async fn serve(config: &Config) -> anyhow::Result<()> {
    let cfg = config.clone();
    let engines = Arc::new(tokio::task::spawn_blocking(move || Engines::load(&cfg, false)).await??);
    let metrics = orchestrator::metrics::Metrics::new();
    let app = Arc::new(
        orchestrator::app::App::build(config, engines, metrics.clone(), None, None).await?,
    );
    app.index_knowledge().await?;
    let listener = tokio::net::TcpListener::bind(&config.server.listen)
        .await
        .with_context(|| format!("listening on server.listen = {:?}", config.server.listen))?;
    let shutdown = CancellationToken::new();
    let trigger = shutdown.clone();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutting down");
        trigger.cancel();
    });
    if !config.server.metrics_listen.is_empty() {
        let m = tokio::net::TcpListener::bind(&config.server.metrics_listen)
            .await
            .with_context(|| {
                format!(
                    "listening on server.metrics_listen = {:?}",
                    config.server.metrics_listen
                )
            })?;
        tokio::spawn(orchestrator::metrics::serve_metrics(
            metrics,
            m,
            shutdown.clone(),
        ));
    }
    let service = grpc::OrchestratorService::with_app(app, None);
    grpc::serve(service, listener, &config.server, shutdown).await
}

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
    let now = orchestrator::session::now_ms();
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

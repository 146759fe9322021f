//! `ringwise`: the product's single binary. Subcommands run the demo, serve the gRPC API, and
//! run single engines on files.

use anyhow::Context;
use clap::{Parser, Subcommand};
use orchestrator::demo::{self, DemoOptions};
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
    /// End-to-end demo on the real engines: TTS → VAD → Whisper → LLM → Piper → WAV.
    Demo {
        /// What the simulated caller says.
        #[arg(long)]
        say: Option<String>,
        /// Folder for the WAV files.
        #[arg(long, default_value = "out")]
        out: PathBuf,
        /// Print the report as JSON instead of text.
        #[arg(long)]
        json: bool,
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

#[tokio::main]
async fn main() -> anyhow::Result<()> {
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
            say,
            out: out_dir,
            json,
        } => {
            let mut opts = DemoOptions {
                out_dir,
                ..DemoOptions::default()
            };
            if let Some(s) = say {
                opts.caller_sentence = s;
            }
            let report = demo::run(&config, opts).await?;
            if json {
                out(&serde_json::to_string_pretty(&report)?)?;
            } else {
                out(&format!("caller said : {}", report.caller_sentence))?;
                for p in &report.partials {
                    out(&format!("  partial   : {p}"))?;
                }
                out(&format!("transcript  : {}", report.transcript))?;
                out(&format!("bot replied : {}", report.reply))?;
                out(&format!(
                    "audio       : caller {:.0} ms -> {} ; reply {:.0} ms -> {}",
                    report.caller_audio_ms,
                    report.caller_wav.display(),
                    report.reply_audio_ms,
                    report.reply_wav.display()
                ))?;
                out(&format!(
                    "call stored : {} ({} LLM tokens)",
                    report.call_id, report.llm_tokens
                ))?;
                out("timings (ms):")?;
                for (stage, ms) in &report.timings {
                    out(&format!("  {stage:<28} {ms:>9.1}"))?;
                }
            }
        }
        Command::Serve => {
            let cfg = config.clone();
            let engines =
                Arc::new(tokio::task::spawn_blocking(move || Engines::load(&cfg)).await??);
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

//! `ringwise eval`: the eval harness (`evals` crate) on the product's own stack. Text mode
//! builds the configured dialogue manager (campaign, NLU, optional LLM phrasing) over the
//! scenarios' customers; audio mode ([`AudioDriver`]) speaks each caller turn (the bot's
//! English or Mandarin voice pitched down, or the scenario's WAV) into the real gRPC `Call`
//! stream of an in-process server on the real engines (Silero, Whisper, dialogue, TTS) and reads
//! what came back: transcripts, decisions, barge-in clears, the end. `capture` turns a stored
//! call into a scenario file.

use crate::app::App;
use crate::auth::{AuthConfig, Role, SecretToken, TokenEntry};
use crate::callee::caller_voices;
use crate::demo::build_dialog;
use crate::grpc::OrchestratorService;
use crate::metrics::Metrics;
use crate::proto::orchestrator_client::OrchestratorClient;
use crate::proto::{self, call_in, call_out};
use crate::transport::{LineCodec, LineFormat};
use crate::{Config, Engines};
use anyhow::Context;
use async_trait::async_trait;
use dialog::policy::PhrasingMode;
use evals::caller::Caller;
use evals::scenario::CallerTurn;
use evals::{
    Driver, EvalError, Mode, NoInput, ObservedTurn, RunOptions, RunResults, Scenario,
    ScenarioProfiles, TextDriver, Transcript,
};
use retrieval::store::ProfileRecord;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use voice::audio::{read_wav, resample, FRAME_SAMPLES};
use voice::{TextToSpeech, SAMPLE_RATE};

/// `ringwise eval run` options.
#[derive(Debug, Clone)]
pub struct EvalRunArgs {
    pub dir: PathBuf,
    pub mode: Mode,
    pub jobs: usize,
    pub filter: Option<String>,
    pub label: String,
    /// Text mode: phrase replies with the configured GGUF in this mode, for measurement.
    pub llm_phrasing: Option<PhrasingMode>,
    /// Audio mode: the callers' line clock (1 = a phone line in real time).
    pub speed: f64,
    pub timeout: Duration,
}

/// Runs a suite; `progress` sees each finished scenario's line.
pub async fn run(
    config: &Config,
    args: &EvalRunArgs,
    progress: &mut (dyn FnMut(String) + Send),
) -> anyhow::Result<RunResults> {
    let (scenarios, bad) = evals::load_dir(&args.dir)?;
    let driver: Arc<dyn Driver> = match args.mode {
        Mode::Text => text_driver(config, args.llm_phrasing).await?,
        Mode::Audio => {
            if args.llm_phrasing.is_some() {
                anyhow::bail!("--llm-phrasing is for text mode; audio mode phrases as configured (dialog.phrasing with a qualify report)");
            }
            Arc::new(AudioDriver::start(config, args.speed).await?)
        }
    };
    let options = RunOptions {
        jobs: args.jobs,
        timeout: args.timeout,
        filter: args.filter.clone(),
        label: args.label.clone(),
    };
    let results = evals::run_suite(scenarios, bad, driver, &options, &mut |p| {
        progress(evals::report::progress_line(p.done, p.total, p.result))
    })
    .await;
    Ok(results)
}

/// The text-mode driver over the configured campaign and NLU (MiniLM only; no audio engines).
async fn text_driver(
    config: &Config,
    llm_phrasing: Option<PhrasingMode>,
) -> anyhow::Result<Arc<dyn Driver>> {
    let cfg = config.clone();
    let (embedder, llm) = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        let embedder: Arc<dyn retrieval::Embedder> = Arc::new(
            retrieval::BertEmbedder::load(&cfg.retrieval.embedder_dir).with_context(|| {
                format!(
                    "loading MiniLM from {} (run scripts/setup.sh)",
                    cfg.retrieval.embedder_dir.display()
                )
            })?,
        );
        let wants_llm = llm_phrasing.is_some() || cfg.dialog.phrasing.is_some();
        let llm: Option<Arc<dyn dialog::LanguageModel>> = if wants_llm {
            Some(Arc::new(dialog::llm::llama::LlamaCppModel::load(&cfg.llm)?))
        } else {
            None
        };
        Ok((embedder, llm))
    })
    .await??;
    let profiles = Arc::new(ScenarioProfiles::default());
    let (manager, phrasing) = build_dialog(config, embedder, llm, profiles.clone(), llm_phrasing)?;
    let label = format!(
        "text mode: campaign {}, NLU {}, LLM phrasing {phrasing}",
        config.dialog.campaign.display(),
        config.dialog.nlu_dir.display()
    );
    Ok(Arc::new(TextDriver::new(
        Arc::new(manager),
        profiles,
        no_input(config),
        label,
    )))
}

fn no_input(config: &Config) -> NoInput {
    NoInput {
        max_reprompts: config.session.max_reprompts,
        reprompt_en: config.session.reprompt_en.clone(),
        reprompt_zh: config.session.reprompt_zh.clone(),
    }
}

/// `ringwise eval capture`: a stored call as a scenario file; returns what was written.
pub async fn capture(config: &Config, call_id: &str, out: &Path) -> anyhow::Result<String> {
    crate::demo::ensure_sqlite_folder(&config.retrieval.database_url)?;
    let store = retrieval::SqlStore::connect(&config.retrieval.database_url).await?;
    let recorded = evals::capture::fetch(&store, call_id).await?;
    let file = evals::capture::scenario_of(&recorded);
    let yaml = evals::capture::to_yaml(&file)?;
    // What is written must load as a scenario.
    Scenario::parse("captured", out, &yaml)?;
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(out, &yaml).with_context(|| format!("writing {}", out.display()))?;
    Ok(format!(
        "{}: {} caller turns from call {call_id} (outcome {}, {} QA grades)",
        out.display(),
        file.turns.len(),
        recorded.call.outcome,
        recorded.grades.len()
    ))
}

/// What the caller's end of the line hears from the server.
#[derive(Debug)]
enum Heard {
    /// One 20 ms frame of bot audio.
    Audio,
    Clear,
    Turn(proto::TurnInfo),
    Ended {
        outcome: String,
        reason: String,
    },
}

/// Audio mode: every scenario is a real call over the in-process server's gRPC `Call` stream.
pub struct AudioDriver {
    channel: tonic::transport::Channel,
    token: String,
    app: Arc<App>,
    voice_en: Arc<dyn TextToSpeech>,
    voice_zh: Arc<dyn TextToSpeech>,
    speed: f64,
    label: String,
    shutdown: CancellationToken,
    dir: PathBuf,
}

impl std::fmt::Debug for AudioDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AudioDriver")
            .field("label", &self.label)
            .finish_non_exhaustive()
    }
}

impl Drop for AudioDriver {
    fn drop(&mut self) {
        self.shutdown.cancel();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl AudioDriver {
    /// Loads the real engines and starts a server on 127.0.0.1 over a throwaway store.
    pub async fn start(config: &Config, speed: f64) -> anyhow::Result<Self> {
        if !(0.25..=8.0).contains(&speed) {
            anyhow::bail!("--speed {speed}: give a value from 0.25 to 8");
        }
        let dir = std::env::temp_dir().join(format!("ringwise-eval-{}", std::process::id()));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let cfg = config.clone().with_data_in(&dir);
        let load = cfg.clone();
        let wants_llm = cfg.dialog.phrasing.is_some();
        let engines =
            Arc::new(tokio::task::spawn_blocking(move || Engines::load(&load, wants_llm)).await??);
        let (voice_en, voice_zh) = caller_voices(&engines.tts_en, &engines.tts_zh);
        let app = Arc::new(App::build(&cfg, engines, Metrics::new(), None, None).await?);
        app.index_knowledge().await?;
        let token = format!("eval-{:032x}", rand::random::<u128>());
        let mut server = cfg.server.clone();
        server.auth = AuthConfig {
            tokens: vec![TokenEntry {
                role: Role::Operator,
                token: Some(SecretToken::new(token.clone())),
                token_env: None,
            }],
            ..AuthConfig::default()
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let shutdown = CancellationToken::new();
        let service = OrchestratorService::with_app(app.clone(), None);
        let stop = shutdown.clone();
        tokio::spawn(async move {
            if let Err(e) = crate::grpc::serve(service, listener, &server, stop).await {
                tracing::error!(error = %e, "the eval server stopped");
            }
        });
        let channel = tonic::transport::Endpoint::from_shared(url)?.connect_lazy();
        Ok(Self {
            channel,
            token,
            label: format!(
                "audio mode: real engines over the gRPC Call stream (8 kHz μ-law), line clock x{speed}, LLM phrasing {}",
                app.llm_phrasing
            ),
            app,
            voice_en,
            voice_zh,
            speed,
            shutdown,
            dir,
        })
    }

    /// The caller's words as 16 kHz PCM: the scenario's WAV, or its text spoken.
    async fn caller_audio(
        &self,
        scenario: &Scenario,
        turn: &CallerTurn,
    ) -> anyhow::Result<Vec<i16>> {
        if let Some(file) = &turn.audio {
            let path = scenario.path.parent().unwrap_or(Path::new(".")).join(file);
            let wav = read_wav(&path).with_context(|| format!("reading {}", path.display()))?;
            return Ok(resample(&wav.samples, wav.sample_rate, SAMPLE_RATE)?);
        }
        let text = turn.say.clone().unwrap_or_default();
        let (tts, language) = match scenario.file.language {
            retrieval::Language::En => (self.voice_en.clone(), voice::Language::English),
            retrieval::Language::Zh => (self.voice_zh.clone(), voice::Language::Chinese),
        };
        tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<i16>> {
            let mut pcm = Vec::new();
            tts.synthesize(&text, language, &CancellationToken::new(), &mut |c| {
                pcm.extend_from_slice(&c.samples);
                ControlFlow::Continue(())
            })?;
            Ok(resample(&pcm, tts.sample_rate(), SAMPLE_RATE)?)
        })
        .await?
    }

    async fn call(&self, scenario: &Scenario) -> anyhow::Result<Transcript> {
        let now = crate::session::now_ms();
        self.app
            .store
            .upsert_profiles(
                &[ProfileRecord {
                    profile: scenario.profile(),
                    phone: None,
                    created_at_ms: now,
                }],
                "eval",
                now,
            )
            .await?;
        let mut line = Line::connect(self, scenario).await?;
        let mut transcript = Transcript::default();
        let mut caller = Caller::new(scenario);
        let mut last = "greet".to_string();
        // The greeting: wait until it has been said (or until a barge-in point).
        let first = caller.next(&last);
        let barge = first.as_ref().and_then(|t| t.barge_in_ms);
        line.wait_for_bot(barge).await?;
        let mut next = first;
        while let Some(turn) = next.take() {
            if line.ended.is_some() {
                break;
            }
            let observed = self.play_turn(scenario, &turn, &mut line).await?;
            last = observed.action.clone();
            transcript.turns.push(observed);
            if line.ended.is_some() {
                break;
            }
            next = caller.next(&last);
            if let Some(t) = &next {
                line.wait_for_bot(t.barge_in_ms).await?;
            }
        }
        if line.ended.is_none() {
            // The caller is done; the bot may still be closing the call (a goodbye, then the
            // end): listen until it has, before hanging up.
            line.wait_for_bot(None).await?;
            line.wait_for_end(Duration::from_secs(3)).await?;
        }
        transcript.outcome = match &line.ended {
            Some((outcome, _)) if !outcome.is_empty() => outcome.clone(),
            _ => {
                line.hang_up().await;
                "open".into()
            }
        };
        // The stream carries no greeting text; the stored call has it (stored before `Ended`,
        // and shortly after a hang-up).
        for _ in 0..50 {
            if let Some(call) = self.app.store.call(&line.call_id).await? {
                if let Some(first) = call.turns.iter().find(|t| t.speaker == "bot") {
                    transcript.greeting = first.text.clone();
                }
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(transcript)
    }

    async fn play_turn(
        &self,
        scenario: &Scenario,
        turn: &CallerTurn,
        line: &mut Line,
    ) -> anyhow::Result<ObservedTurn> {
        let said = if turn.noise_ms.is_some() {
            String::new()
        } else {
            turn.say.clone().unwrap_or_default()
        };
        let clears = line.clears;
        let turns_before = line.turns.len();
        let audio_before = line.bot_frames;
        if let Some(ms) = turn.silence_ms {
            line.send_silence(ms).await?;
        } else if let Some(ms) = turn.noise_ms {
            line.send_noise(ms, scenario.seed()).await?;
        } else {
            let pcm = self.caller_audio(scenario, turn).await?;
            line.send_pcm(trim_silence(&pcm)).await?;
        }
        // The answer: a decision, or for silence the session's re-prompt or close.
        let speech_end = line.line_ms();
        let waited = if turn.silence_ms.is_some() {
            if line.bot_frames > audio_before {
                // A re-prompt, or the goodbye of a close: let it finish.
                line.wait_for_bot(None).await?;
            } else {
                // A close may come without words.
                line.wait_for_end(Duration::from_millis(1500)).await?;
            }
            false
        } else {
            let answered = line
                .wait_for_answer(turns_before, Duration::from_secs(20))
                .await?;
            // The decision comes before its audio: wait for the reply to start.
            line.wait_for_bot_start(speech_end, Duration::from_secs(10))
                .await?;
            answered
        };
        // Voice to voice as the caller hears it: end of its speech to the first bot frame after.
        let v2v = line
            .first_bot_after(speech_end)
            .map(|at| (at - speech_end) as f64);
        let mut observed = match line.turns.get(turns_before).filter(|_| waited) {
            Some(info) => ObservedTurn {
                caller: said,
                heard: Some(info.caller_text.clone()),
                intent: Some(info.intent.clone()).filter(|s| !s.is_empty()),
                confidence: info.confidence,
                sentiment: None,
                sentiment_score: info.sentiment,
                keywords: info.keywords.clone(),
                action: info.action.clone(),
                action_detail: None,
                rule: info.rule.clone(),
                reply: info.reply.clone(),
                latency_ms: v2v,
                barged_in: false,
            },
            None => {
                let (action, reply) = match &line.ended {
                    Some((outcome, _)) if outcome == "no_input" => {
                        ("no_input_close", String::new())
                    }
                    _ if line.bot_frames > audio_before => (
                        "reprompt",
                        match scenario.file.language {
                            retrieval::Language::En => self.app.config.session.reprompt_en.clone(),
                            retrieval::Language::Zh => self.app.config.session.reprompt_zh.clone(),
                        },
                    ),
                    _ => ("none", String::new()),
                };
                ObservedTurn {
                    caller: said,
                    action: action.into(),
                    rule: "session".into(),
                    reply,
                    ..ObservedTurn::default()
                }
            }
        };
        observed.barged_in = line.clears > clears;
        Ok(observed)
    }
}

/// A clip without its trailing silence (TTS pads its output; the end of the caller's speech is
/// where latency is measured from).
fn trim_silence(pcm: &[i16]) -> &[i16] {
    match pcm.iter().rposition(|s| s.unsigned_abs() > 500) {
        Some(end) => &pcm[..=end],
        None => pcm,
    }
}

#[async_trait]
impl Driver for AudioDriver {
    fn mode(&self) -> Mode {
        Mode::Audio
    }

    fn label(&self) -> String {
        self.label.clone()
    }

    async fn run(&self, scenario: &Scenario) -> Result<Transcript, EvalError> {
        self.call(scenario)
            .await
            .map_err(|e| EvalError::Bot(format!("{e:#}")))
    }
}

/// The caller's end of one gRPC `Call`: a line clock that sends a 20 ms frame per tick (the
/// caller's voice, noise or silence) and collects what the server says meanwhile.
struct Line {
    call_id: String,
    to_server: mpsc::Sender<proto::CallIn>,
    heard: mpsc::Receiver<Heard>,
    codec: LineCodec,
    frame_wall: Duration,
    clock: tokio::time::Instant,
    ticks: u64,
    /// Line time of the last bot frame.
    last_bot_ms: Option<u64>,
    /// Line times at which bot audio started after a pause.
    bot_starts: Vec<u64>,
    bot_frames: u64,
    clears: u32,
    turns: Vec<proto::TurnInfo>,
    ended: Option<(String, String)>,
}

const FRAME_MS: u64 = voice::FRAME_MS as u64;

impl Line {
    async fn connect(driver: &AudioDriver, scenario: &Scenario) -> anyhow::Result<Self> {
        let (tx, rx) = mpsc::channel::<proto::CallIn>(64);
        let call_id = format!(
            "eval-{}-{:08x}",
            scenario.id.replace('/', "-"),
            rand::random::<u32>()
        );
        tx.send(proto::CallIn {
            msg: Some(call_in::Msg::Start(proto::CallStart {
                attempt_id: String::new(),
                call_id: call_id.clone(),
                campaign_id: driver.app.calls.manager.campaign().id.clone(),
                customer_id: scenario.customer_id(),
                language: scenario.file.language.code().to_string(),
                format: Some(proto::AudioFormat {
                    sample_rate: 8000,
                    encoding: proto::Encoding::Pcmu as i32,
                }),
                seed: scenario.seed(),
            })),
        })
        .await?;
        let mut request = tonic::Request::new(tokio_stream::wrappers::ReceiverStream::new(rx));
        let bearer: tonic::metadata::MetadataValue<_> =
            format!("Bearer {}", driver.token).parse()?;
        request.metadata_mut().insert("authorization", bearer);
        let mut client = OrchestratorClient::new(driver.channel.clone());
        let mut inbound = client.call(request).await?.into_inner();
        let (heard_tx, heard_rx) = mpsc::channel::<Heard>(1024);
        tokio::spawn(async move {
            loop {
                let heard = match inbound.message().await {
                    Ok(Some(m)) => match m.msg {
                        Some(call_out::Msg::Audio(_)) => Heard::Audio,
                        Some(call_out::Msg::Clear(_)) => Heard::Clear,
                        Some(call_out::Msg::Turn(t)) => Heard::Turn(t),
                        Some(call_out::Msg::Ended(e)) => Heard::Ended {
                            outcome: e.outcome,
                            reason: e.reason,
                        },
                        _ => continue,
                    },
                    Ok(None) => return,
                    Err(status) => Heard::Ended {
                        outcome: String::new(),
                        reason: format!("stream error: {}", status.message()),
                    },
                };
                let last = matches!(heard, Heard::Ended { .. });
                if heard_tx.send(heard).await.is_err() || last {
                    return;
                }
            }
        });
        Ok(Self {
            call_id,
            to_server: tx,
            heard: heard_rx,
            codec: LineCodec::new(LineFormat::PHONE_ULAW)?,
            frame_wall: Duration::from_secs_f64(FRAME_MS as f64 / 1e3 / driver.speed),
            clock: tokio::time::Instant::now(),
            ticks: 0,
            last_bot_ms: None,
            bot_starts: Vec::new(),
            bot_frames: 0,
            clears: 0,
            turns: Vec::new(),
            ended: None,
        })
    }

    fn line_ms(&self) -> u64 {
        self.ticks * FRAME_MS
    }

    /// Sends one caller frame at its time on the line clock, then takes in what arrived.
    async fn tick(&mut self, pcm: &[i16]) -> anyhow::Result<()> {
        let due = self.clock + self.frame_wall * (self.ticks as u32 + 1);
        tokio::time::sleep_until(due).await;
        if self.ended.is_none() {
            let data = self.codec.encode(pcm)?;
            let sent = self
                .to_server
                .send(proto::CallIn {
                    msg: Some(call_in::Msg::Audio(proto::AudioFrame { data })),
                })
                .await;
            if sent.is_err() && self.ended.is_none() {
                self.ended = Some((String::new(), "the call stream closed".into()));
            }
        }
        self.ticks += 1;
        while let Ok(h) = self.heard.try_recv() {
            match h {
                Heard::Audio => {
                    let now = self.line_ms();
                    if self.last_bot_ms.is_none_or(|t| now > t + 2 * FRAME_MS) {
                        self.bot_starts.push(now);
                    }
                    self.bot_frames += 1;
                    self.last_bot_ms = Some(now);
                }
                Heard::Clear => self.clears += 1,
                Heard::Turn(t) => self.turns.push(t),
                Heard::Ended { outcome, reason } => self.ended = Some((outcome, reason)),
            }
        }
        Ok(())
    }

    async fn send_pcm(&mut self, pcm: &[i16]) -> anyhow::Result<()> {
        for chunk in pcm.chunks(FRAME_SAMPLES) {
            let mut frame = chunk.to_vec();
            frame.resize(FRAME_SAMPLES, 0);
            self.tick(&frame).await?;
            if self.ended.is_some() {
                break;
            }
        }
        Ok(())
    }

    async fn send_silence(&mut self, ms: u64) -> anyhow::Result<()> {
        let silence = vec![0i16; FRAME_SAMPLES];
        for _ in 0..ms.div_ceil(FRAME_MS) {
            self.tick(&silence).await?;
            if self.ended.is_some() {
                break;
            }
        }
        Ok(())
    }

    /// Seeded noise (white, low-passed: a hissing line), about -24 dBFS.
    async fn send_noise(&mut self, ms: u64, seed: u64) -> anyhow::Result<()> {
        let mut state = seed | 1;
        let mut low = 0f32;
        for _ in 0..ms.div_ceil(FRAME_MS) {
            let frame: Vec<i16> = (0..FRAME_SAMPLES)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    let white = (state >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0;
                    low = 0.8 * low + 0.2 * white;
                    (low * 6000.0) as i16
                })
                .collect();
            self.tick(&frame).await?;
            if self.ended.is_some() {
                break;
            }
        }
        Ok(())
    }

    /// Sends silence until the bot is quiet (600 ms without a frame, after it has said
    /// something in this call), or, for a barge-in, until `barge_in_ms` into its speech (the
    /// reply in progress or the next one).
    async fn wait_for_bot(&mut self, barge_in_ms: Option<u64>) -> anyhow::Result<()> {
        let silence = vec![0i16; FRAME_SAMPLES];
        let start = self.line_ms();
        let frames_at_start = self.bot_frames;
        let mut speaking_since: Option<u64> = None;
        while self.ended.is_none() && self.line_ms() - start < 30_000 {
            let now = self.line_ms();
            match barge_in_ms {
                None => {
                    if self.last_bot_ms.is_some_and(|t| now >= t + 600) {
                        return Ok(());
                    }
                }
                Some(ms) => {
                    let speaking = self.bot_frames > frames_at_start
                        || self.last_bot_ms.is_some_and(|t| now <= t + 2 * FRAME_MS);
                    if speaking && speaking_since.is_none() {
                        speaking_since = Some(now);
                    }
                    if speaking_since.is_some_and(|at| now >= at + ms) {
                        return Ok(());
                    }
                }
            }
            self.tick(&silence).await?;
        }
        Ok(())
    }

    /// The first time bot audio started at or after `line_ms`.
    fn first_bot_after(&self, line_ms: u64) -> Option<u64> {
        self.bot_starts.iter().copied().find(|t| *t >= line_ms)
    }

    /// Sends silence until bot audio starts at or after `line_ms`, the call ends, or `limit`.
    async fn wait_for_bot_start(&mut self, line_ms: u64, limit: Duration) -> anyhow::Result<()> {
        let silence = vec![0i16; FRAME_SAMPLES];
        let start = self.line_ms();
        while self.ended.is_none()
            && self.first_bot_after(line_ms).is_none()
            && self.line_ms() - start < limit.as_millis() as u64
        {
            self.tick(&silence).await?;
        }
        Ok(())
    }

    /// Sends silence until the call ends or `limit` of line time has passed.
    async fn wait_for_end(&mut self, limit: Duration) -> anyhow::Result<()> {
        let silence = vec![0i16; FRAME_SAMPLES];
        let start = self.line_ms();
        while self.ended.is_none() && self.line_ms() - start < limit.as_millis() as u64 {
            self.tick(&silence).await?;
        }
        Ok(())
    }

    /// Sends silence until a new decision arrives, the call ends, or `limit` of line time.
    /// Returns whether a decision came.
    async fn wait_for_answer(
        &mut self,
        turns_before: usize,
        limit: Duration,
    ) -> anyhow::Result<bool> {
        let silence = vec![0i16; FRAME_SAMPLES];
        let start = self.line_ms();
        while self.ended.is_none() && self.turns.len() == turns_before {
            if self.line_ms() - start >= limit.as_millis() as u64 {
                break;
            }
            self.tick(&silence).await?;
        }
        Ok(self.turns.len() > turns_before)
    }

    async fn hang_up(&mut self) {
        let _ = self
            .to_server
            .send(proto::CallIn {
                msg: Some(call_in::Msg::Hangup(proto::Hangup {
                    reason: "the eval caller has no more turns".into(),
                })),
            })
            .await;
    }
}

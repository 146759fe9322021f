//! One call as one async task ([`CallSession::run`]) over a [`CallTransport`]: the caller's
//! frames go through VAD + streaming Whisper (the `Listener`, on the blocking pool, one batch in
//! flight per call), each final transcript to `DialogManager::turn` (on the blocking pool), and
//! the reply through TTS (on the blocking pool, frames into a queue deep enough for a whole
//! reply; a silence mid-reply is logged as `bot_gap`) back to the line.
//!
//! **One line clock.** Time in a call is line time: milliseconds of caller audio received. The
//! bot's frames are sent at most `lookahead_ms` ahead of it, so the line never holds more than
//! that of unplayed bot audio, and every latency and barge-in figure is measured in frames, the
//! same whether the far end is a phone line in real time or a simulated callee running faster.
//!
//! **Barge-in.** Caller speech (the VAD's start) while the bot speaks cancels the turn's token
//! (TTS stops within a frame, LLM phrasing between tokens), drops the queued frames, tells the
//! line to clear what it buffered, and marks the reply as interrupted. A dialogue turn in flight
//! when the caller starts again is dropped and its state change undone.
//!
//! The call ends on an outcome (after the closing words are spoken), a hang-up, no input after
//! a re-prompt, the maximum length, or a line error; the record is stored through the
//! [`CallSink`] before the line hears `Ended`, so a call counts as done only once it is stored.

use crate::ears::Ears;
use crate::metrics::Metrics;
use crate::transport::CallTransport;
use crate::Engines;
use async_trait::async_trait;
use dialog::policy::{BotReply, DialogEvent, DialogManager};
use dialog::{ConversationState, DialogError};
use serde::{Deserialize, Serialize};
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use voice::audio::{CallRecorder, StreamResampler, FRAME_SAMPLES};
use voice::{AsrOptions, Language, Listener, SpeechEvent, FRAME_MS, SAMPLE_RATE};

const FRAME: u64 = FRAME_MS as u64;
/// Caller frames whose arrival instants are kept (60 s): wall-time latencies are measured from
/// the frame that ended the caller's speech.
const ARRIVALS_KEPT: usize = 3000;

/// Settings of every call session (`[session]` in the configuration).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct SessionConfig {
    /// Silence from the caller after the bot stops speaking before the bot re-prompts, in ms.
    pub no_input_ms: u64,
    /// Re-prompts before the bot closes the call politely for no input.
    pub max_reprompts: u32,
    /// Longest call, in ms of line time; past it the bot closes.
    pub max_call_ms: u64,
    /// Bot audio sent ahead of the line clock, in ms (bounds what a barge-in must clear).
    pub lookahead_ms: u64,
    /// Caller speech over the bot stops the bot.
    pub barge_in: bool,
    /// Start the dialogue turn on the recognizer's speculative final at the caller's pause,
    /// before the VAD's hang-over confirms the end, and synthesize the reply meanwhile; the
    /// reply goes out when the final confirms the text and is dropped if the caller goes on or
    /// the final differs. Hand-off replies wait for the final (they call an agent).
    pub speculative_turns: bool,
    /// Caller frames queued for the listener before the session stops reading the line.
    pub listener_queue_frames: usize,
    /// Bot frames synthesized ahead into the per-call queue. Deep enough for a whole reply:
    /// the engine synthesizes a sentence while the one before plays, and with a queue of
    /// half a second the next sentence started only when the last was nearly out, so one that
    /// took longer than that to synthesize left a silence mid-reply, which callers take for
    /// their turn (the demo on a loaded host: "I hear you." … 1.5 s … "I can offer you 15
    /// percent off…", talked over after "I hear you."). The depth adds no latency; it costs
    /// memory (1 s = 32 KB) and, when a barge-in cancels the synthesis (at the next frame),
    /// the CPU already spent on audio that is never played.
    pub tts_queue_frames: usize,
    /// How long a hand-off waits for a free human agent before it counts as abandoned, in ms.
    pub handoff_wait_ms: u64,
    /// The caller's first words that mean an answering machine (lower-case substrings).
    pub voicemail_cues: Vec<String>,
    /// What the bot says when the caller is silent, per language.
    pub reprompt_en: String,
    pub reprompt_zh: String,
    /// What the bot says when it closes for no input or the maximum length.
    pub goodbye_en: String,
    pub goodbye_zh: String,
    /// What the bot says when a hand-off finds no free agent.
    pub no_agent_en: String,
    pub no_agent_zh: String,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            no_input_ms: 6000,
            max_reprompts: 1,
            max_call_ms: 300_000,
            lookahead_ms: 60,
            barge_in: true,
            speculative_turns: true,
            listener_queue_frames: 250,
            tts_queue_frames: 1500,
            handoff_wait_ms: 2000,
            voicemail_cues: [
                "leave a message",
                "leave your message",
                "after the tone",
                "after the beep",
                "not available to take your call",
                "voicemail",
                "请留言",
                "留言",
                "无法接听",
                "不在服务区",
            ]
            .map(String::from)
            .to_vec(),
            reprompt_en: "Hello, are you still there?".into(),
            reprompt_zh: "您好，请问您还在吗？".into(),
            goodbye_en: "I'll let you go now. Thank you for your time, goodbye.".into(),
            goodbye_zh: "那就不打扰您了，感谢您的时间，再见。".into(),
            no_agent_en:
                "All our advisors are busy right now; one of them will call you back shortly. Goodbye."
                    .into(),
            no_agent_zh: "现在顾问都在忙，稍后会有顾问给您回电。再见。".into(),
        }
    }
}

/// Who is called, about what, on which attempt.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CallSetup {
    pub call_id: String,
    /// The dialer's attempt, when the call is part of a campaign.
    pub attempt_id: Option<String>,
    pub campaign_id: String,
    pub customer_id: String,
    pub language: retrieval::Language,
    /// Seeds template variants.
    pub seed: u64,
    /// Variants fixed by a campaign experiment (A/B arm, bandit); the others follow `seed`.
    #[serde(default)]
    pub variants: dialog::policy::VariantChoice,
}

/// One caller turn's result, as the line sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TurnInfo {
    pub index: u32,
    pub caller_text: String,
    pub intent: String,
    pub confidence: f32,
    pub sentiment: f32,
    pub keywords: Vec<String>,
    pub action: String,
    pub rule: String,
    pub reply: String,
}

/// What the session tells the line. `at_ms` is line time.
#[derive(Debug, Clone, PartialEq)]
pub enum CallEvent {
    Accepted {
        call_id: String,
    },
    /// 20 ms of the bot's voice, 16 kHz PCM (the transport codes it for the line).
    Audio {
        at_ms: u64,
        pcm: Vec<i16>,
    },
    /// Barge-in: drop the bot audio the line has not played yet.
    Clear {
        at_ms: u64,
    },
    SpeechStarted {
        at_ms: u64,
    },
    Partial {
        at_ms: u64,
        text: String,
    },
    Final {
        at_ms: u64,
        text: String,
        start_ms: u64,
        end_ms: u64,
        avg_logprob: f32,
    },
    Turn {
        at_ms: u64,
        info: TurnInfo,
        /// End of the caller's speech to the reply's first frame on the line.
        v2v_ms: Option<f64>,
    },
    HandOff {
        at_ms: u64,
        reason: String,
        summary: String,
        agent_assigned: bool,
    },
    Ended {
        at_ms: u64,
        outcome: String,
        reason: String,
        turns: u32,
        barge_ins: u32,
    },
}

/// Human agents who take hand-offs (the dialer's hand-off desk implements it).
#[async_trait]
pub trait AgentDesk: Send + Sync {
    /// Waits up to `max_wait` for a free agent of the call's campaign; `false` means the
    /// hand-off is abandoned.
    async fn take_agent(&self, setup: &CallSetup, max_wait: Duration) -> bool;
}

/// Where a finished call is stored. Called once per call, before the line hears `Ended`.
#[async_trait]
pub trait CallSink: Send + Sync {
    async fn store(&self, call: &FinishedCall) -> anyhow::Result<()>;
}

/// Per-stage latencies of one turn, in ms. `v2v_line_ms` is line time (what the caller hears),
/// the others wall time.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TurnLatency {
    /// The frame that confirmed the end of speech (after the VAD's hang-over) arriving, to the
    /// final transcript (wall; queueing behind other calls included).
    pub asr_final_ms: f64,
    /// NLU + retrieval + policy + template: the reply's first sentence ready (wall).
    pub dialog_ms: f64,
    /// The reply's text to its first synthesized frame (wall).
    pub tts_first_audio_ms: f64,
    /// End of the caller's speech to the reply's first frame sent, in line time.
    pub v2v_line_ms: Option<f64>,
    /// The same in wall time: from the arrival of the frame that ended the caller's speech to
    /// the reply's first frame sent (the VAD's hang-over included, as in line time).
    pub v2v_wall_ms: Option<f64>,
}

/// One caller turn and the bot's answer, with what was spoken of it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TurnLog {
    pub info: TurnInfo,
    /// Line time of the caller's speech.
    pub caller_start_ms: u64,
    pub caller_end_ms: u64,
    pub latency: TurnLatency,
    /// The reply was cut off by the caller (barge-in).
    pub interrupted: bool,
    /// Milliseconds of the reply that reached the line.
    pub spoken_ms: u64,
}

/// A barge-in, in line time.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BargeIn {
    /// Where the VAD places the start of the caller's speech.
    pub onset_ms: u64,
    /// The frame at which the session learned of it.
    pub detected_ms: u64,
    /// The end of the last bot frame sent.
    pub bot_stopped_ms: u64,
}

impl BargeIn {
    /// Bot audio on the line after the session learned of the caller's speech.
    pub fn stop_ms(&self) -> u64 {
        self.bot_stopped_ms.saturating_sub(self.detected_ms)
    }
}

/// A call event kept in the record.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoggedEvent {
    pub at_ms: u64,
    pub kind: String,
    pub detail: serde_json::Value,
}

/// Everything about a finished call: the source of its record.
#[derive(Debug, Clone)]
pub struct FinishedCall {
    pub setup: CallSetup,
    /// The dialogue state (every decision with its reason); `None` when the dialogue never
    /// started (do-not-call, a setup failure).
    pub state: Option<ConversationState>,
    /// `converted`, `callback`, `refused`, `handed_off`, `do_not_call`, `voicemail`, `no_input`,
    /// `hung_up`, `abandoned_handoff`, `failed` (the dialer's `CallOutcome` spellings).
    pub outcome: String,
    /// Why it ended: `outcome`, `caller_hung_up`, `no_input`, `max_duration`, `voicemail`,
    /// `line_error: …`, `engine_error: …`, `do_not_call`.
    pub end_reason: String,
    pub greeting: String,
    pub turns: Vec<TurnLog>,
    pub events: Vec<LoggedEvent>,
    pub barge_ins: Vec<BargeIn>,
    pub started_at_ms: i64,
    pub ended_at_ms: i64,
    /// Line time at the end.
    pub duration_ms: u64,
    /// The stereo WAV (caller left, bot right), 16 kHz, unsealed; the sink seals it.
    pub recording: Option<PathBuf>,
    pub recording_ms: u64,
}

/// Milliseconds since the Unix epoch (one clock for calls and the dialer).
pub use crate::dialer::now_ms;

/// The voice crate's language for a dialogue language.
pub fn voice_language(language: retrieval::Language) -> Language {
    match language {
        retrieval::Language::En => Language::English,
        retrieval::Language::Zh => Language::Chinese,
    }
}

/// What every call shares: the engines, the dialogue manager, the settings, the metrics, the
/// hand-off desk and the store. One per process; many calls at once.
pub struct CallContext {
    pub engines: Arc<Engines>,
    pub manager: Arc<DialogManager>,
    pub config: SessionConfig,
    pub metrics: Metrics,
    pub agents: Option<Arc<dyn AgentDesk>>,
    pub sink: Arc<dyn CallSink>,
    /// Folder of the calls' WAV files.
    pub recordings_dir: PathBuf,
}

impl std::fmt::Debug for CallContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallContext")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Why the bot is speaking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SpeechKind {
    Greeting,
    Reply,
    Reprompt,
    Closing,
}

/// The bot's current utterance.
struct Speaking {
    kind: SpeechKind,
    cancel: CancellationToken,
    frames: mpsc::Receiver<Vec<i16>>,
    /// Index into `turns` for a reply.
    turn: Option<usize>,
    /// Caller speech end (line time, wall) the reply answers, for v2v.
    answers: Option<(u64, Instant)>,
    text_ready: Instant,
    first_frame: Option<f64>,
    sent_ms: u64,
    synth: JoinHandle<Result<(), voice::VoiceError>>,
}

/// A dialogue turn in flight, with the state to restore if it is dropped.
struct Thinking {
    handle: JoinHandle<(ConversationState, Result<BotReply, DialogError>)>,
    cancel: CancellationToken,
    before: ConversationState,
    /// Started on a speculative transcript the final has not confirmed yet.
    speculative: bool,
    caller_text: String,
    caller_start_ms: u64,
    caller_end_ms: u64,
    ended_wall: Instant,
    asr_final_ms: f64,
}

/// A reply worked out on a speculative transcript, waiting for the final to confirm it, with
/// its speech being synthesized meanwhile (held back from the line).
struct Held {
    thinking: Thinking,
    state: ConversationState,
    reply: Result<BotReply, DialogError>,
    speech: Option<Speaking>,
}

/// One call.
pub struct CallSession {
    ctx: Arc<CallContext>,
    setup: CallSetup,
    language: Language,
    line_ms: u64,
    /// (line time at the frame's end, when it arrived), oldest first.
    arrivals: std::collections::VecDeque<(u64, Instant)>,
    bot_ms: u64,
    recorder: Option<CallRecorder>,
    recording: Option<PathBuf>,
    recorded_bot_ms: u64,
    state: Option<ConversationState>,
    speaking: Option<Speaking>,
    thinking: Option<Thinking>,
    held: Option<Held>,
    caller_in_speech: bool,
    last_activity_ms: u64,
    reprompts: u32,
    closing: Option<(String, String)>,
    finished: Option<(String, String)>,
    turns: Vec<TurnLog>,
    events: Vec<LoggedEvent>,
    barge_ins: Vec<BargeIn>,
    greeting: String,
    pending_handoff: Option<String>,
}

impl std::fmt::Debug for CallSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallSession")
            .field("call_id", &self.setup.call_id)
            .field("line_ms", &self.line_ms)
            .finish_non_exhaustive()
    }
}

impl CallSession {
    /// Runs a call to its end over `line`, stores it through the context's sink, then tells the
    /// line it ended. Never panics on what the line sends; an engine or line failure ends the
    /// call with its reason and the record is still stored.
    pub async fn run(
        ctx: Arc<CallContext>,
        setup: CallSetup,
        mut line: Box<dyn CallTransport>,
    ) -> FinishedCall {
        let span = tracing::info_span!("call", call_id = %setup.call_id);
        ctx.metrics.call_started();
        let started_at_ms = now_ms();
        let mut session = CallSession {
            language: voice_language(setup.language),
            ctx: ctx.clone(),
            setup,
            line_ms: 0,
            arrivals: std::collections::VecDeque::new(),
            bot_ms: 0,
            recorder: None,
            recording: None,
            recorded_bot_ms: 0,
            state: None,
            speaking: None,
            thinking: None,
            held: None,
            caller_in_speech: false,
            last_activity_ms: 0,
            reprompts: 0,
            closing: None,
            finished: None,
            turns: Vec::new(),
            events: Vec::new(),
            barge_ins: Vec::new(),
            greeting: String::new(),
            pending_handoff: None,
        };
        let result =
            tracing::Instrument::instrument(session.converse(&mut *line), span.clone()).await;
        let (outcome, reason) = match result {
            Ok(()) => session
                .finished
                .clone()
                .unwrap_or_else(|| ("failed".into(), "no outcome".into())),
            Err(e) => {
                let kind = e.kind();
                ctx.metrics.error(kind);
                tracing::warn!(parent: &span, error = %e, "call ended on an error");
                let outcome = session
                    .state
                    .as_ref()
                    .and_then(|s| s.outcome)
                    .map_or_else(|| "failed".to_string(), |o| o.as_str().to_string());
                (outcome, e.to_string())
            }
        };
        if let Some(s) = session.speaking.take() {
            s.cancel.cancel();
        }
        // A turn still being worked out never happened: the state goes back to before it.
        session.drop_ahead("call_ended");
        let (recording, recording_ms) = match session.recorder.take() {
            Some(recorder) => match tokio::task::spawn_blocking(move || recorder.finish()).await {
                Ok(Ok(info)) => (Some(info.path), info.duration.as_millis() as u64),
                Ok(Err(e)) => {
                    tracing::warn!(parent: &span, error = %e, "recording not finished");
                    (session.recording.clone(), 0)
                }
                Err(e) => {
                    tracing::warn!(parent: &span, error = %e, "recording task failed");
                    (session.recording.clone(), 0)
                }
            },
            None => (None, 0),
        };
        let finished = FinishedCall {
            setup: session.setup.clone(),
            state: session.state.take(),
            outcome: outcome.clone(),
            end_reason: reason.clone(),
            greeting: session.greeting.clone(),
            turns: std::mem::take(&mut session.turns),
            events: std::mem::take(&mut session.events),
            barge_ins: std::mem::take(&mut session.barge_ins),
            started_at_ms,
            ended_at_ms: now_ms(),
            duration_ms: session.line_ms,
            recording,
            recording_ms,
        };
        if let Err(e) = ctx.sink.store(&finished).await {
            ctx.metrics.error("store");
            tracing::error!(parent: &span, error = %format!("{e:#}"), "call record not stored");
        }
        ctx.metrics.call_ended(&outcome);
        let ended = CallEvent::Ended {
            at_ms: finished.duration_ms,
            outcome,
            reason,
            turns: finished.turns.len() as u32,
            barge_ins: finished.barge_ins.len() as u32,
        };
        let _ = line.send(ended).await;
        finished
    }

    fn log(&mut self, kind: &str, detail: serde_json::Value) {
        self.events.push(LoggedEvent {
            at_ms: self.line_ms,
            kind: kind.to_string(),
            detail,
        });
    }

    async fn converse(&mut self, line: &mut dyn CallTransport) -> Result<(), SessionError> {
        let ctx = self.ctx.clone();
        line.send(CallEvent::Accepted {
            call_id: self.setup.call_id.clone(),
        })
        .await?;
        // The dialogue opens first: a do-not-call customer is never greeted, nor recorded.
        let opened = ctx
            .manager
            .start_with(
                &self.setup.call_id,
                &self.setup.customer_id,
                self.setup.language,
                self.setup.seed,
                self.setup.variants.clone(),
            )
            .await;
        let (state, greeting) = match opened {
            Ok(v) => v,
            Err(DialogError::DoNotCall) => {
                self.log("do_not_call_blocked", serde_json::Value::Null);
                self.finished = Some(("do_not_call".into(), "do_not_call_blocked".into()));
                return Ok(());
            }
            Err(e) => return Err(SessionError::Engine(e.to_string())),
        };
        self.greeting = greeting.text(self.setup.language);
        self.state = Some(state);
        std::fs::create_dir_all(&ctx.recordings_dir)
            .map_err(|e| SessionError::Engine(format!("creating the recordings folder: {e}")))?;
        let path = ctx
            .recordings_dir
            .join(format!("{}.wav", sanitize(&self.setup.call_id)));
        self.recorder = Some(
            CallRecorder::create(&path, SAMPLE_RATE)
                .map_err(|e| SessionError::Engine(e.to_string()))?,
        );
        self.recording = Some(path);

        let campaign = ctx.manager.campaign();
        let prompt = [&campaign.company, &campaign.product]
            .iter()
            .filter_map(|p| p.get(self.setup.language).cloned())
            .collect::<Vec<_>>()
            .join(", ");
        let asr = ctx
            .engines
            .asr(self.language)
            .start(&AsrOptions {
                language: self.language,
                initial_prompt: Some(prompt),
            })
            .map_err(|e| SessionError::Engine(e.to_string()))?;
        let vad = (ctx.engines.new_vad)().map_err(|e| SessionError::Engine(e.to_string()))?;
        let mut ears = Ears::new(Listener::new(vad, asr));
        self.speak(
            greeting.sentences.join(" "),
            SpeechKind::Greeting,
            None,
            None,
        );
        self.log(
            "greeting",
            serde_json::json!({ "text": self.greeting, "rule": greeting.decision.rule }),
        );

        let lookahead = ctx.config.lookahead_ms.max(FRAME);
        loop {
            if let Some(done) = self.done_when_quiet() {
                self.finished = Some(done);
                return Ok(());
            }
            let can_send = self
                .speaking
                .as_ref()
                .is_some_and(|_| self.bot_ms < self.line_ms + lookahead);
            let can_read = ears.queued() < ctx.config.listener_queue_frames;
            tokio::select! {
                // Listener results first: a barge-in must not wait behind audio.
                biased;
                events = ears.next() => {
                    let events = events.map_err(|e| SessionError::Engine(e.to_string()))?;
                    for (at_ms, wall, event) in events {
                        self.on_speech(line, at_ms, wall, event).await?;
                    }
                }
                result = async { self.thinking.as_mut().map(|t| &mut t.handle).expect("guarded").await },
                    if self.thinking.is_some() => {
                    let thinking = self.thinking.take().expect("guarded");
                    let (state, reply) = result.map_err(|e| SessionError::Engine(format!("dialogue task failed: {e}")))?;
                    if thinking.speculative {
                        self.hold(thinking, state, reply);
                    } else {
                        self.on_reply(line, thinking, state, reply, None).await?;
                    }
                }
                frame = async { self.speaking.as_mut().expect("guarded").frames.recv().await }, if can_send => {
                    match frame {
                        Some(pcm) => self.send_bot_frame(line, pcm).await?,
                        None => self.finish_speaking().await?,
                    }
                }
                frame = line.recv(), if can_read => {
                    match frame? {
                        Some(pcm) => {
                            self.on_caller_frame(&pcm)?;
                            ears.push(self.line_ms, pcm);
                            self.check_timers();
                        }
                        None => {
                            self.log("caller_hung_up", serde_json::Value::Null);
                            let outcome = self.state.as_ref().and_then(|s| s.outcome)
                                .map_or_else(|| "hung_up".to_string(), |o| o.as_str().to_string());
                            self.finished = Some((outcome, "caller_hung_up".into()));
                            return Ok(());
                        }
                    }
                }
            }
        }
    }

    /// The call is over once its closing words are out: an outcome reached, or a close for no
    /// input / the maximum length.
    fn done_when_quiet(&self) -> Option<(String, String)> {
        if self.speaking.is_some() || self.thinking.is_some() || self.held.is_some() {
            return None;
        }
        if let Some(c) = &self.closing {
            return Some(c.clone());
        }
        let outcome = self.state.as_ref()?.outcome?;
        Some((outcome.as_str().to_string(), "outcome".into()))
    }

    /// When the caller frame ending at line time `ms` (or the first after it) arrived.
    fn arrival(&self, ms: u64) -> Option<Instant> {
        let i = self.arrivals.partition_point(|(at, _)| *at < ms);
        self.arrivals.get(i).map(|(_, t)| *t)
    }

    fn on_caller_frame(&mut self, pcm: &[i16]) -> Result<(), SessionError> {
        self.line_ms += FRAME;
        self.arrivals.push_back((self.line_ms, Instant::now()));
        while self.arrivals.len() > ARRIVALS_KEPT {
            self.arrivals.pop_front();
        }
        if let Some(rec) = self.recorder.as_mut() {
            rec.push_caller(pcm)
                .map_err(|e| SessionError::Engine(e.to_string()))?;
            // The bot's channel gets silence for line time it did not speak.
            while self.recorded_bot_ms < self.line_ms {
                rec.push_bot(&[0i16; FRAME_SAMPLES])
                    .map_err(|e| SessionError::Engine(e.to_string()))?;
                self.recorded_bot_ms += FRAME;
            }
        }
        Ok(())
    }

    fn check_timers(&mut self) {
        let cfg = &self.ctx.config;
        if self.closing.is_some() {
            return;
        }
        if self.line_ms >= cfg.max_call_ms {
            self.log("max_duration", serde_json::Value::Null);
            self.close("max_duration");
            return;
        }
        let idle = self.speaking.is_none()
            && self.thinking.is_none()
            && self.held.is_none()
            && !self.caller_in_speech
            && self.line_ms.saturating_sub(self.last_activity_ms) >= cfg.no_input_ms;
        if !idle {
            return;
        }
        if self.reprompts < cfg.max_reprompts {
            self.reprompts += 1;
            let text = match self.language {
                Language::English => cfg.reprompt_en.clone(),
                Language::Chinese => cfg.reprompt_zh.clone(),
            };
            self.log("reprompt", serde_json::json!({ "n": self.reprompts }));
            self.speak(text, SpeechKind::Reprompt, None, None);
        } else {
            self.log("no_input", serde_json::Value::Null);
            self.close("no_input");
        }
    }

    /// Says goodbye; the call ends when it is spoken.
    fn close(&mut self, reason: &str) {
        let cfg = &self.ctx.config;
        let text = match self.language {
            Language::English => cfg.goodbye_en.clone(),
            Language::Chinese => cfg.goodbye_zh.clone(),
        };
        let outcome = self
            .state
            .as_ref()
            .and_then(|s| s.outcome)
            .map_or_else(|| reason.to_string(), |o| o.as_str().to_string());
        self.closing = Some((outcome, reason.to_string()));
        self.stop_speaking();
        self.speak(text, SpeechKind::Closing, None, None);
    }

    async fn on_speech(
        &mut self,
        line: &mut dyn CallTransport,
        at_ms: u64,
        wall: Instant,
        event: SpeechEvent,
    ) -> Result<(), SessionError> {
        match event {
            SpeechEvent::Started { at_ms: onset } => {
                self.caller_in_speech = true;
                self.last_activity_ms = at_ms;
                line.send(CallEvent::SpeechStarted { at_ms: onset }).await?;
                if self.ctx.config.barge_in && self.closing.is_none() {
                    if let Some(s) = &self.speaking {
                        if s.kind != SpeechKind::Closing {
                            self.barge_in(line, onset, at_ms).await?;
                        }
                    }
                }
                // The caller goes on: a turn started on what they said so far is dropped.
                self.drop_ahead("caller_went_on");
            }
            SpeechEvent::Speculative {
                start_ms,
                transcript,
            } => {
                let text = transcript.text.trim().to_string();
                let confirmed_in_flight = self.thinking.as_ref().is_some_and(|t| !t.speculative);
                if !self.ctx.config.speculative_turns
                    || text.is_empty()
                    || self.closing.is_some()
                    || confirmed_in_flight
                    // An answering machine is recognized on the final.
                    || (self.turns.is_empty() && self.is_voicemail(&text))
                    || self.ahead_text() == Some(text.as_str())
                {
                    return Ok(());
                }
                self.drop_ahead("newer_speculation");
                let paused_wall = self.arrival(at_ms).unwrap_or(wall);
                self.start_turn(text, start_ms, at_ms, paused_wall, 0.0, true);
            }
            SpeechEvent::Partial { transcript, .. } => {
                line.send(CallEvent::Partial {
                    at_ms,
                    text: transcript.text,
                })
                .await?;
            }
            SpeechEvent::Final {
                start_ms,
                end_ms,
                transcript,
            } => {
                self.caller_in_speech = false;
                self.last_activity_ms = at_ms;
                // Wall time from the arrival of the frame that confirmed the end (after the
                // VAD's hang-over) to the final text: the recognizer's latency, queueing
                // included. The caller's speech ended with the frame at `end_ms`.
                let confirmed = self.arrival(at_ms).unwrap_or(wall);
                let asr_final_ms = wall.saturating_duration_since(confirmed).as_secs_f64() * 1e3;
                let ended_wall = self.arrival(end_ms).unwrap_or(confirmed);
                line.send(CallEvent::Final {
                    at_ms,
                    text: transcript.text.clone(),
                    start_ms,
                    end_ms,
                    avg_logprob: transcript.avg_logprob,
                })
                .await?;
                let text = transcript.text.trim().to_string();
                if text.is_empty() || self.closing.is_some() {
                    self.drop_ahead("final_empty");
                    return Ok(());
                }
                if self.turns.is_empty() && self.is_voicemail(&text) {
                    self.drop_ahead("voicemail");
                    self.log("voicemail", serde_json::json!({ "heard": text }));
                    self.stop_speaking();
                    self.closing = Some(("voicemail".into(), "voicemail".into()));
                    return Ok(());
                }
                self.ctx
                    .metrics
                    .observe_stage("vad_endpoint", at_ms.saturating_sub(end_ms) as f64);
                self.ctx.metrics.observe_stage("asr_final", asr_final_ms);
                // The final confirms a turn started at the pause, or replaces it.
                let confirm = |t: &mut Thinking| {
                    t.speculative = false;
                    t.caller_start_ms = start_ms;
                    t.caller_end_ms = end_ms;
                    t.ended_wall = ended_wall;
                    t.asr_final_ms = asr_final_ms;
                };
                if self.ahead_text().is_some_and(|t| same_words(t, &text)) {
                    self.log("speculation_confirmed", serde_json::json!({ "text": text }));
                    if let Some(t) = self.thinking.as_mut() {
                        confirm(t);
                    } else if let Some(mut held) = self.held.take() {
                        confirm(&mut held.thinking);
                        self.on_reply(line, held.thinking, held.state, held.reply, held.speech)
                            .await?;
                    }
                } else {
                    self.drop_ahead("final_differs");
                    self.start_turn(text, start_ms, end_ms, ended_wall, asr_final_ms, false);
                }
            }
        }
        Ok(())
    }

    fn is_voicemail(&self, text: &str) -> bool {
        let lower = text.to_lowercase();
        self.ctx
            .config
            .voicemail_cues
            .iter()
            .any(|c| lower.contains(c.as_str()))
    }

    /// The caller text of the turn worked out ahead of the final (in flight or held), if any.
    fn ahead_text(&self) -> Option<&str> {
        match (&self.thinking, &self.held) {
            (Some(t), _) if t.speculative => Some(&t.caller_text),
            (_, Some(h)) => Some(&h.thinking.caller_text),
            _ => None,
        }
    }

    /// Drops a turn in flight (speculative or not) and a held reply, restoring the dialogue
    /// state from before them.
    fn drop_ahead(&mut self, why: &str) {
        let mut dropped = Vec::new();
        if let Some(t) = self.thinking.take() {
            t.cancel.cancel();
            t.handle.abort();
            self.state = Some(t.before);
            dropped.push(t.caller_text);
        }
        if let Some(h) = self.held.take() {
            if let Some(s) = h.speech {
                s.cancel.cancel();
            }
            self.state = Some(h.thinking.before);
            dropped.push(h.thinking.caller_text);
        }
        for caller_text in dropped {
            self.log(
                "turn_dropped",
                serde_json::json!({ "caller_text": caller_text, "why": why }),
            );
        }
    }

    /// Keeps a speculative turn's reply until the final confirms it, synthesizing its speech
    /// meanwhile. Hand-offs and errors are not acted on before the final.
    fn hold(
        &mut self,
        thinking: Thinking,
        state: ConversationState,
        reply: Result<BotReply, DialogError>,
    ) {
        let speech = match &reply {
            Ok(r)
                if !r
                    .events
                    .iter()
                    .any(|e| matches!(e, DialogEvent::HandOff { .. })) =>
            {
                Some(self.synthesize(r.sentences.join(" "), SpeechKind::Reply))
            }
            _ => None,
        };
        self.held = Some(Held {
            thinking,
            state,
            reply,
            speech,
        });
    }

    fn start_turn(
        &mut self,
        text: String,
        caller_start_ms: u64,
        caller_end_ms: u64,
        ended_wall: Instant,
        asr_final_ms: f64,
        speculative: bool,
    ) {
        let Some(state) = self.state.take() else {
            return;
        };
        if state.finished() {
            self.state = Some(state);
            return;
        }
        let before = state.clone();
        let cancel = CancellationToken::new();
        let manager = self.ctx.manager.clone();
        let runtime = tokio::runtime::Handle::current();
        let (turn_text, turn_cancel) = (text.clone(), cancel.clone());
        // NLU runs candle models: keep it off the async workers.
        let handle = tokio::task::spawn_blocking(move || {
            let mut state = state;
            let reply = runtime.block_on(manager.turn(&mut state, &turn_text, &turn_cancel));
            (state, reply)
        });
        self.thinking = Some(Thinking {
            handle,
            cancel,
            before,
            speculative,
            caller_text: text,
            caller_start_ms,
            caller_end_ms,
            ended_wall,
            asr_final_ms,
        });
    }

    async fn on_reply(
        &mut self,
        line: &mut dyn CallTransport,
        thinking: Thinking,
        state: ConversationState,
        reply: Result<BotReply, DialogError>,
        speech: Option<Speaking>,
    ) -> Result<(), SessionError> {
        if reply.is_err() {
            if let Some(s) = &speech {
                s.cancel.cancel();
            }
        }
        let reply = match reply {
            Ok(r) => r,
            Err(DialogError::CallFinished) => {
                self.state = Some(state);
                return Ok(());
            }
            Err(e) => {
                self.state = Some(thinking.before);
                return Err(SessionError::Engine(e.to_string()));
            }
        };
        self.state = Some(state);
        self.ctx.metrics.turn();
        self.ctx
            .metrics
            .observe_stage("dialog", reply.first_sentence_ms);
        let nlu = self
            .state
            .as_ref()
            .and_then(|s| s.turns.last())
            .and_then(|t| t.caller.as_ref())
            .map(|c| c.nlu.clone());
        let info = TurnInfo {
            index: self.turns.len() as u32 + 1,
            caller_text: thinking.caller_text.clone(),
            intent: nlu
                .as_ref()
                .map_or_else(String::new, |n| n.intent.as_str().to_string()),
            confidence: nlu.as_ref().map_or(0.0, |n| n.confidence),
            sentiment: nlu.as_ref().map_or(0.0, |n| n.sentiment.score),
            keywords: nlu.map_or_else(Vec::new, |n| {
                n.keywords
                    .into_iter()
                    .filter(|k| !k.negated)
                    .map(|k| k.key)
                    .collect()
            }),
            action: reply.action().kind().to_string(),
            rule: reply.decision.rule.clone(),
            reply: reply.text(self.setup.language),
        };
        self.log(
            "turn",
            serde_json::json!({ "info": info, "decision": reply.decision }),
        );
        let mut text = reply.sentences.join(" ");
        for event in &reply.events {
            self.log(
                "dialog_event",
                serde_json::to_value(event).unwrap_or_default(),
            );
            if let DialogEvent::HandOff { reason } = event {
                let reason = format!("{reason:?}").to_lowercase();
                let assigned = self.hand_off(line, &reason).await?;
                if !assigned {
                    // Nobody to take the call: say so instead of promising a transfer.
                    text = match self.language {
                        Language::English => self.ctx.config.no_agent_en.clone(),
                        Language::Chinese => self.ctx.config.no_agent_zh.clone(),
                    };
                    self.closing = Some(("abandoned_handoff".into(), "no_agent".into()));
                }
            }
        }
        self.turns.push(TurnLog {
            info: info.clone(),
            caller_start_ms: thinking.caller_start_ms,
            caller_end_ms: thinking.caller_end_ms,
            latency: TurnLatency {
                asr_final_ms: thinking.asr_final_ms,
                dialog_ms: reply.first_sentence_ms,
                ..TurnLatency::default()
            },
            interrupted: false,
            spoken_ms: 0,
        });
        line.send(CallEvent::Turn {
            at_ms: self.line_ms,
            info,
            v2v_ms: None,
        })
        .await?;
        let turn = self.turns.len() - 1;
        let answers = Some((thinking.caller_end_ms, thinking.ended_wall));
        self.stop_speaking();
        match speech {
            // Synthesized while the final was awaited: it goes out now.
            Some(mut s) if self.closing.is_none() => {
                s.turn = Some(turn);
                s.answers = answers;
                s.text_ready = Instant::now();
                self.start_speaking(s);
            }
            other => {
                if let Some(s) = other {
                    s.cancel.cancel();
                }
                self.speak(text, SpeechKind::Reply, Some(turn), answers);
            }
        }
        Ok(())
    }

    async fn hand_off(
        &mut self,
        line: &mut dyn CallTransport,
        reason: &str,
    ) -> Result<bool, SessionError> {
        let summary = self.summary(reason);
        let assigned = match &self.ctx.agents {
            Some(desk) => {
                desk.take_agent(
                    &self.setup,
                    Duration::from_millis(self.ctx.config.handoff_wait_ms),
                )
                .await
            }
            None => true,
        };
        self.ctx.metrics.handoff(!assigned);
        self.log(
            "hand_off",
            serde_json::json!({ "reason": reason, "summary": summary, "agent_assigned": assigned }),
        );
        self.pending_handoff = Some(reason.to_string());
        line.send(CallEvent::HandOff {
            at_ms: self.line_ms,
            reason: reason.to_string(),
            summary,
            agent_assigned: assigned,
        })
        .await?;
        Ok(assigned)
    }

    /// What a human agent needs in the first seconds: who, about what, why, what was said.
    fn summary(&self, reason: &str) -> String {
        let Some(state) = &self.state else {
            return format!("hand-off ({reason})");
        };
        let p = &state.profile;
        let mut s = format!(
            "{} ({}), segment {}, {} call(s) before. Hand-off: {reason}.",
            if p.display_name.is_empty() {
                "Customer"
            } else {
                p.display_name.as_str()
            },
            state.customer_id,
            state.segment.as_str(),
            p.calls_so_far
        );
        let actions: Vec<&str> = state
            .turns
            .iter()
            .map(|t| t.decision.action.kind())
            .collect();
        s.push_str(&format!(" Bot so far: {}.", actions.join(", ")));
        let said: Vec<&str> = state
            .turns
            .iter()
            .rev()
            .filter_map(|t| t.caller.as_ref().map(|c| c.text.as_str()))
            .take(2)
            .collect();
        if !said.is_empty() {
            let said: Vec<String> = said.iter().rev().map(|t| format!("\"{t}\"")).collect();
            s.push_str(&format!(" Caller said: {}.", said.join(" then ")));
        }
        s
    }

    async fn barge_in(
        &mut self,
        line: &mut dyn CallTransport,
        onset_ms: u64,
        detected_ms: u64,
    ) -> Result<(), SessionError> {
        let Some(speaking) = self.speaking.take() else {
            return Ok(());
        };
        speaking.cancel.cancel();
        let b = BargeIn {
            onset_ms,
            detected_ms,
            bot_stopped_ms: self.bot_ms,
        };
        self.barge_ins.push(b);
        self.ctx.metrics.barge_in();
        if let Some(turn) = speaking.turn.and_then(|i| self.turns.get_mut(i)) {
            turn.interrupted = true;
            turn.spoken_ms = speaking.sent_ms;
        }
        if let Some(state) = self.state.as_mut() {
            // The reply the dialogue recorded was cut: say so in the transcript.
            if let (Some(turn), SpeechKind::Reply) = (state.turns.last_mut(), speaking.kind) {
                turn.reply.push_str(" [interrupted]");
            }
        }
        self.log("barge_in", serde_json::to_value(b).unwrap_or_default());
        // What the line has not played yet is dropped there; the bot's clock restarts at now.
        self.bot_ms = self.bot_ms.min(self.line_ms.max(detected_ms));
        line.send(CallEvent::Clear { at_ms: detected_ms }).await?;
        Ok(())
    }

    fn stop_speaking(&mut self) {
        if let Some(s) = self.speaking.take() {
            s.cancel.cancel();
        }
    }

    /// Starts synthesizing `text` and makes it the bot's current utterance.
    fn speak(
        &mut self,
        text: String,
        kind: SpeechKind,
        turn: Option<usize>,
        answers: Option<(u64, Instant)>,
    ) {
        let mut s = self.synthesize(text, kind);
        s.turn = turn;
        s.answers = answers;
        self.start_speaking(s);
    }

    fn start_speaking(&mut self, s: Speaking) {
        if self.bot_ms < self.line_ms {
            self.bot_ms = self.line_ms;
        }
        self.speaking = Some(s);
    }

    /// Starts synthesizing `text` on the blocking pool into a bounded frame queue.
    fn synthesize(&self, text: String, kind: SpeechKind) -> Speaking {
        let cancel = CancellationToken::new();
        let (tx, rx) = mpsc::channel(self.ctx.config.tts_queue_frames.max(2));
        let tts = self.ctx.engines.tts(self.language).clone();
        let language = self.language;
        let token = cancel.clone();
        let synth = tokio::task::spawn_blocking(move || {
            let mut resampler = StreamResampler::new(tts.sample_rate(), SAMPLE_RATE)?;
            let mut pending: Vec<i16> = Vec::new();
            let mut wide = Vec::new();
            let send = |pending: &mut Vec<i16>, all: bool| -> ControlFlow<()> {
                while pending.len() >= FRAME_SAMPLES || (all && !pending.is_empty()) {
                    let take = pending.len().min(FRAME_SAMPLES);
                    let mut frame: Vec<i16> = pending.drain(..take).collect();
                    frame.resize(FRAME_SAMPLES, 0);
                    if tx.blocking_send(frame).is_err() {
                        return ControlFlow::Break(());
                    }
                }
                ControlFlow::Continue(())
            };
            let stats = tts.synthesize(&text, language, &token, &mut |chunk| {
                wide.clear();
                if resampler.process(&chunk.samples, &mut wide).is_err() {
                    return ControlFlow::Break(());
                }
                pending.extend_from_slice(&wide);
                send(&mut pending, false)
            })?;
            if !stats.cancelled {
                wide.clear();
                resampler.finish(&mut wide)?;
                pending.extend_from_slice(&wide);
                let _ = send(&mut pending, true);
            }
            Ok(())
        });
        Speaking {
            kind,
            cancel,
            frames: rx,
            turn: None,
            answers: None,
            text_ready: Instant::now(),
            first_frame: None,
            sent_ms: 0,
            synth,
        }
    }

    async fn send_bot_frame(
        &mut self,
        line: &mut dyn CallTransport,
        pcm: Vec<i16>,
    ) -> Result<(), SessionError> {
        let Some((first, sent_ms)) = self
            .speaking
            .as_ref()
            .map(|s| (s.first_frame.is_none(), s.sent_ms))
        else {
            return Ok(());
        };
        if self.bot_ms < self.line_ms {
            // The line played out everything sent: mid-utterance, the caller hears a gap.
            if !first {
                let gap_ms = self.line_ms - self.bot_ms;
                self.log(
                    "bot_gap",
                    serde_json::json!({ "ms": gap_ms, "after_ms": sent_ms }),
                );
            }
            self.bot_ms = self.line_ms;
        }
        let at_ms = self.bot_ms;
        let Some(s) = self.speaking.as_mut() else {
            return Ok(());
        };
        if first {
            s.first_frame = Some(s.text_ready.elapsed().as_secs_f64() * 1e3);
        }
        s.sent_ms += FRAME;
        let (turn, answers, tts_ms) = (s.turn, s.answers, s.first_frame.unwrap_or_default());
        if let Some(rec) = self.recorder.as_mut() {
            // The bot channel is at least as far as the line; a frame ahead of it is queued.
            if self.recorded_bot_ms <= at_ms {
                rec.push_bot(&pcm)
                    .map_err(|e| SessionError::Engine(e.to_string()))?;
                self.recorded_bot_ms = at_ms + FRAME;
            }
        }
        line.send(CallEvent::Audio { at_ms, pcm }).await?;
        self.bot_ms += FRAME;
        if first {
            if let (Some(i), Some((end_ms, end_wall))) = (turn, answers) {
                let v2v_line = at_ms.saturating_sub(end_ms) as f64;
                let v2v_wall = end_wall.elapsed().as_secs_f64() * 1e3;
                self.ctx.metrics.observe_stage("tts_first_audio", tts_ms);
                self.ctx.metrics.observe_stage("v2v", v2v_wall);
                if let Some(t) = self.turns.get_mut(i) {
                    t.latency.tts_first_audio_ms = tts_ms;
                    t.latency.v2v_line_ms = Some(v2v_line);
                    t.latency.v2v_wall_ms = Some(v2v_wall);
                }
            }
        }
        Ok(())
    }

    async fn finish_speaking(&mut self) -> Result<(), SessionError> {
        let Some(s) = self.speaking.take() else {
            return Ok(());
        };
        if let Some(t) = s.turn.and_then(|i| self.turns.get_mut(i)) {
            t.spoken_ms = s.sent_ms;
        }
        self.last_activity_ms = self.bot_ms.max(self.line_ms);
        match s.synth.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(SessionError::Engine(format!("speech synthesis: {e}"))),
            Err(e) => Err(SessionError::Engine(format!("speech synthesis task: {e}"))),
        }
    }
}

/// The same words, whatever the case, spacing and punctuation: a speculative transcript and
/// the final of the same decode differ at most in those.
fn same_words(a: &str, b: &str) -> bool {
    let words = |s: &str| -> String {
        s.chars()
            .filter(|c| c.is_alphanumeric())
            .flat_map(char::to_lowercase)
            .collect()
    };
    words(a) == words(b)
}

/// A call id safe as a file name.
fn sanitize(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Why a session stopped early.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("line_error: {0}")]
    Line(#[from] crate::transport::TransportError),
    #[error("engine_error: {0}")]
    Engine(String),
}

impl SessionError {
    fn kind(&self) -> &'static str {
        match self {
            SessionError::Line(_) => "line",
            SessionError::Engine(_) => "engine",
        }
    }
}

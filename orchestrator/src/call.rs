//! One outbound call through every engine: the bot's words are synthesized, the caller's audio
//! streams in 20 ms frames through VAD and Whisper, each final transcript goes to the dialogue
//! manager, and its reply is spoken sentence by sentence. Both sides go to a stereo recording
//! (caller left, bot right). The caller here is simulated (a script spoken by TTS); the same
//! loop serves a telephony leg later, with the script replaced by the line's audio.

use crate::Engines;
use anyhow::{bail, Context};
use dialog::policy::{BotReply, DialogEvent, DialogManager};
use dialog::ConversationState;
use serde::Serialize;
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;
use tokio_util::sync::CancellationToken;
use voice::audio::{resample, CallRecorder, FRAME_SAMPLES};
use voice::{AsrOptions, Language, Listener, SpeechEvent, FRAME_MS, SAMPLE_RATE};

/// The voice crate's language for a dialogue language.
pub fn voice_language(language: retrieval::Language) -> Language {
    match language {
        retrieval::Language::En => Language::English,
        retrieval::Language::Zh => Language::Chinese,
    }
}

/// Who is called, in which language, and what the (simulated) caller says.
#[derive(Debug, Clone)]
pub struct CallPlan {
    pub call_id: String,
    pub customer_id: String,
    pub language: retrieval::Language,
    /// Seeds the choice of template variants.
    pub seed: u64,
    /// The caller's lines, one per turn.
    pub caller_lines: Vec<String>,
    /// Where the stereo WAV goes.
    pub recording: PathBuf,
    /// Feed the caller's audio at the pace of a phone line (20 ms per frame), as a real call
    /// does, so the end-of-speech → final latency is the one a caller would feel; otherwise as
    /// fast as the engines take it (tests).
    pub real_time: bool,
}

/// One caller turn and the bot's answer, with the latencies the caller feels.
#[derive(Debug, Clone, Serialize)]
pub struct TurnReport {
    /// What the simulated caller said (the reference for the transcript).
    pub caller_said: String,
    pub transcript: String,
    /// Partial transcripts emitted while the caller spoke.
    pub partials: usize,
    pub intent: String,
    pub sentiment: f32,
    pub keywords: Vec<String>,
    pub action: String,
    pub rule: String,
    pub reply: String,
    /// From the frame that ended the utterance (after the VAD's hang-over) to the final text.
    pub endpoint_to_final_ms: f64,
    /// NLU + profile context + policy + template: the reply's first sentence ready.
    pub decide_ms: f64,
    /// Synthesis of the reply's first audio chunk.
    pub tts_first_audio_ms: f64,
    /// The three above: the silence the caller hears after the VAD's endpoint.
    pub response_ms: f64,
}

/// What happened on one call.
#[derive(Debug, Clone, Serialize)]
pub struct CallReport {
    pub call_id: String,
    pub customer_id: String,
    pub language: String,
    pub segment: String,
    pub greeting: String,
    pub turns: Vec<TurnReport>,
    /// `converted`, `callback`, `refused`, `handed_off`, `do_not_call`; none if the caller's
    /// script ran out first.
    pub outcome: Option<String>,
    pub events: Vec<DialogEvent>,
    pub recording: PathBuf,
    pub recording_ms: f64,
    pub started_at_ms: i64,
    pub ended_at_ms: i64,
    /// The full conversation state (every decision with its reason): the call record's source.
    #[serde(skip)]
    pub state: ConversationState,
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Speaks `sentences` with the call's voice, at 16 kHz, into the bot's channel; returns the
/// time to the first audio chunk.
fn speak(
    engines: &Engines,
    language: Language,
    sentences: &[String],
    recorder: &mut CallRecorder,
    cancel: &CancellationToken,
) -> anyhow::Result<f64> {
    let tts = engines.tts(language);
    let t = Instant::now();
    let mut first = None;
    for sentence in sentences {
        let mut pcm = Vec::new();
        tts.synthesize(sentence, language, cancel, &mut |chunk| {
            first.get_or_insert_with(|| ms(t));
            pcm.extend_from_slice(&chunk.samples);
            ControlFlow::Continue(())
        })?;
        recorder.push_bot(&resample(&pcm, tts.sample_rate(), SAMPLE_RATE)?)?;
    }
    recorder.align()?;
    Ok(first.unwrap_or_default())
}

/// The voices that play the (simulated) callers, per language.
pub struct CallerVoices {
    pub en: Arc<dyn voice::TextToSpeech>,
    pub zh: Arc<dyn voice::TextToSpeech>,
}

impl CallerVoices {
    fn get(&self, language: Language) -> &Arc<dyn voice::TextToSpeech> {
        match language {
            Language::English => &self.en,
            Language::Chinese => &self.zh,
        }
    }
}

/// The caller's line as 16 kHz audio with the pauses of a phone line around it.
fn caller_audio(voices: &CallerVoices, language: Language, line: &str) -> anyhow::Result<Vec<i16>> {
    let tts = voices.get(language);
    let mut pcm = Vec::new();
    tts.synthesize(line, language, &CancellationToken::new(), &mut |chunk| {
        pcm.extend_from_slice(&chunk.samples);
        ControlFlow::Continue(())
    })?;
    let speech = resample(&pcm, tts.sample_rate(), SAMPLE_RATE)?;
    let before = vec![0i16; SAMPLE_RATE as usize * 3 / 10];
    let after = vec![0i16; SAMPLE_RATE as usize];
    Ok([&before[..], &speech[..], &after[..]].concat())
}

/// The final transcript of one utterance, its partial count and the endpoint-to-final time.
struct Heard {
    text: String,
    partials: usize,
    endpoint_to_final_ms: f64,
}

fn listen(
    listener: &mut Listener,
    audio: &[i16],
    real_time: bool,
) -> anyhow::Result<Option<Heard>> {
    let mut partials = 0;
    let mut finals: Vec<(String, f64)> = Vec::new();
    let started = Instant::now();
    for (i, frame) in audio.chunks(FRAME_SAMPLES).enumerate() {
        if real_time {
            let due = started + std::time::Duration::from_millis(u64::from(FRAME_MS) * i as u64);
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
        }
        let t = Instant::now();
        for event in listener.push(frame)? {
            match event {
                SpeechEvent::Started { .. } => {}
                SpeechEvent::Partial { .. } => partials += 1,
                SpeechEvent::Final { transcript, .. } => finals.push((transcript.text, ms(t))),
            }
        }
    }
    let t = Instant::now();
    for event in listener.flush()? {
        if let SpeechEvent::Final { transcript, .. } = event {
            finals.push((transcript.text, ms(t)));
        }
    }
    // A caller's line is one turn even when the VAD split it at a pause.
    let text = finals
        .iter()
        .map(|(t, _)| t.trim())
        .filter(|t| !t.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    if text.is_empty() {
        return Ok(None);
    }
    Ok(Some(Heard {
        text,
        partials,
        endpoint_to_final_ms: finals.last().map_or(0.0, |(_, t)| *t),
    }))
}

/// Runs one call to its end (an outcome, or the caller's script running out). Blocking: call
/// from a blocking thread inside a Tokio runtime (the dialogue manager is async).
pub fn run_call(
    engines: &Arc<Engines>,
    manager: &DialogManager,
    callers: &CallerVoices,
    plan: &CallPlan,
) -> anyhow::Result<CallReport> {
    let runtime = tokio::runtime::Handle::try_current()
        .context("run_call needs a Tokio runtime (call it from spawn_blocking)")?;
    let language = voice_language(plan.language);
    let cancel = CancellationToken::new();
    let started_at_ms = now_ms();
    if let Some(dir) = plan.recording.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let mut recorder = CallRecorder::create(&plan.recording, SAMPLE_RATE)?;

    let (mut state, greeting) = runtime.block_on(manager.start(
        &plan.call_id,
        &plan.customer_id,
        plan.language,
        plan.seed,
    ))?;
    speak(
        engines,
        language,
        &greeting.sentences,
        &mut recorder,
        &cancel,
    )?;
    let mut events = greeting.events.clone();

    let campaign = manager.campaign();
    let prompt = [&campaign.company, &campaign.product]
        .iter()
        .filter_map(|p| p.get(plan.language).cloned())
        .collect::<Vec<_>>()
        .join(", ");
    let asr = engines.asr(language).start(&AsrOptions {
        language,
        initial_prompt: Some(prompt),
    })?;
    let mut listener = Listener::new((engines.new_vad)()?, asr);
    let mut turns = Vec::new();
    for line in &plan.caller_lines {
        if state.finished() {
            break;
        }
        let audio = caller_audio(callers, language, line)?;
        recorder.push_caller(&audio)?;
        recorder.align()?;
        let Some(heard) = listen(&mut listener, &audio, plan.real_time)? else {
            bail!(
                "call {}: the VAD and Whisper heard nothing in {line:?}",
                plan.call_id
            );
        };
        let reply: BotReply = runtime.block_on(manager.turn(&mut state, &heard.text, &cancel))?;
        let tts_first_audio_ms =
            speak(engines, language, &reply.sentences, &mut recorder, &cancel)?;
        let nlu = state
            .turns
            .last()
            .and_then(|t| t.caller.as_ref())
            .map(|c| c.nlu.clone());
        events.extend(reply.events.iter().cloned());
        turns.push(TurnReport {
            caller_said: line.clone(),
            transcript: heard.text,
            partials: heard.partials,
            intent: nlu
                .as_ref()
                .map_or_else(String::new, |n| n.intent.as_str().to_string()),
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
            reply: reply.text(plan.language),
            endpoint_to_final_ms: heard.endpoint_to_final_ms,
            decide_ms: reply.first_sentence_ms,
            tts_first_audio_ms,
            response_ms: heard.endpoint_to_final_ms + reply.first_sentence_ms + tts_first_audio_ms,
        });
    }
    let info = recorder.finish()?;
    Ok(CallReport {
        call_id: plan.call_id.clone(),
        customer_id: plan.customer_id.clone(),
        language: plan.language.code().to_string(),
        segment: state.segment.as_str().to_string(),
        greeting: greeting.text(plan.language),
        turns,
        outcome: state.outcome.map(|o| o.as_str().to_string()),
        events,
        recording: info.path,
        recording_ms: info.duration.as_secs_f64() * 1e3,
        started_at_ms,
        ended_at_ms: now_ms(),
        state,
    })
}

//! The end-to-end demo on real engines and embedded defaults: a caller's sentence is spoken by
//! TTS, streamed in 20 ms frames through VAD and Whisper, answered by the LLM, spoken back by
//! Piper into a WAV file, and the call is stored (SQLite) and indexed (embedded vector index).
//! No fake engine is on this path.

use crate::{Config, Engines};
use anyhow::{bail, Context};
use dialog::{ChatMessage, GenerationRequest, Role};
use retrieval::index::embedded::EmbeddedIndex;
use retrieval::store::{CallRecord, Customer, TurnRecord};
use retrieval::{Filter, Payload, Point, SqlStore, VectorIndex};
use serde::Serialize;
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::time::{Instant, SystemTime, UNIX_EPOCH};
use tokio_util::sync::CancellationToken;
use voice::audio::{resample, write_wav, FRAME_SAMPLES};
use voice::{AsrOptions, AudioChunk, Language, Listener, SpeechEvent, SAMPLE_RATE};

/// The agent's static system prompt: first in every request, so its KV prefix is reused.
pub const SYSTEM_PROMPT: &str = "You are Ava, a friendly phone agent for Sunrise Insurance. \
You are calling customers about car insurance. Answer the caller in one or two short, polite \
sentences. Never invent prices or discounts.";

#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// What the simulated caller says.
    pub caller_sentence: String,
    pub language: Language,
    /// Where WAV files go.
    pub out_dir: PathBuf,
}

impl Default for DemoOptions {
    fn default() -> Self {
        Self {
            caller_sentence: "Hello, I got your message about car insurance. How much would it cost me per month?"
                .into(),
            language: Language::English,
            out_dir: PathBuf::from("out"),
        }
    }
}

/// What the demo did, with per-stage timings in milliseconds.
#[derive(Debug, Clone, Serialize)]
pub struct DemoReport {
    pub caller_sentence: String,
    pub partials: Vec<String>,
    pub transcript: String,
    pub reply: String,
    pub caller_wav: PathBuf,
    pub reply_wav: PathBuf,
    pub call_id: String,
    pub caller_audio_ms: f64,
    pub reply_audio_ms: f64,
    pub llm_tokens: u32,
    /// (stage, milliseconds) in pipeline order.
    pub timings: Vec<(String, f64)>,
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Runs the demo. Engine work is blocking and runs on the blocking pool.
pub async fn run(config: &Config, options: DemoOptions) -> anyhow::Result<DemoReport> {
    let total = Instant::now();
    std::fs::create_dir_all(&options.out_dir)
        .with_context(|| format!("creating {}", options.out_dir.display()))?;
    let cfg = config.clone();
    let opts = options.clone();
    let (engines, mut report) = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        let engines = Engines::load(&cfg)?;
        let report = converse(&engines, &opts)?;
        Ok((engines, report))
    })
    .await??;
    for (name, t) in engines.load_ms.iter().rev() {
        report.timings.insert(0, (format!("load.{name}"), *t));
    }

    // Persist the call (SQLite by default) and index the caller's words for retrieval.
    let t = Instant::now();
    let store = SqlStore::connect(&config.retrieval.database_url).await?;
    let customer_id = "demo-customer-1".to_string();
    store
        .upsert_customer(&Customer {
            id: customer_id.clone(),
            display_name: "Demo Customer".into(),
            language: options.language.code().into(),
            created_at_ms: now_ms(),
        })
        .await?;
    let call = CallRecord {
        id: report.call_id.clone(),
        customer_id: customer_id.clone(),
        campaign_id: "demo-car-insurance".into(),
        started_at_ms: now_ms() - total.elapsed().as_millis() as i64,
        ended_at_ms: now_ms(),
        outcome: "completed".into(),
        turns: vec![
            TurnRecord {
                speaker: "caller".into(),
                text: report.transcript.clone(),
                latency_ms: None,
            },
            TurnRecord {
                speaker: "bot".into(),
                text: report.reply.clone(),
                latency_ms: report
                    .timings
                    .iter()
                    .find(|(s, _)| s == "llm.total")
                    .map(|(_, t)| *t),
            },
        ],
    };
    store.insert_call(&call).await?;
    report.timings.push(("store.call".into(), ms(t)));

    let t = Instant::now();
    let index = EmbeddedIndex::open(&config.retrieval.index_dir, engines.embedder.dim())?;
    let text = report.transcript.clone();
    let embedder = engines.embedder.clone();
    let vector = tokio::task::spawn_blocking(move || embedder.embed(&[&text]))
        .await??
        .pop()
        .context("the embedder returned no vector")?;
    let id = now_ms() as u64;
    let payload = Payload {
        customer_id: Some(customer_id.clone()),
        campaign_id: Some(call.campaign_id.clone()),
        kind: "history".into(),
        text: report.transcript.clone(),
    };
    index
        .upsert(vec![Point {
            id,
            vector: vector.clone(),
            payload,
        }])
        .await?;
    let hits = index
        .search(&vector, 1, &Filter::customer(customer_id))
        .await?;
    if hits.first().map(|h| h.id) != Some(id) {
        bail!("the call snippet just indexed was not found again");
    }
    report
        .timings
        .push(("index.embed_upsert_search".into(), ms(t)));
    report.timings.push(("total".into(), ms(total)));
    Ok(report)
}

/// The reply up to its last complete sentence, so a reply cut by the token budget is not spoken
/// half-finished; the whole text when it has no sentence end.
fn whole_sentences(text: &str) -> String {
    let text = text.trim();
    match text.rfind(['.', '!', '?', '。', '！', '？']) {
        Some(at) => {
            let end = at + text[at..].chars().next().map_or(1, char::len_utf8);
            text[..end].to_string()
        }
        None => text.to_string(),
    }
}

/// One caller turn through every engine. Blocking.
fn converse(engines: &Engines, opts: &DemoOptions) -> anyhow::Result<DemoReport> {
    let mut timings: Vec<(String, f64)> = Vec::new();
    let cancel = CancellationToken::new();

    // 1. The caller's voice, synthesized, brought to 16 kHz, with silence around it.
    let t = Instant::now();
    let tts = engines.tts(opts.language);
    let mut caller = Vec::<i16>::new();
    tts.synthesize(
        &opts.caller_sentence,
        opts.language,
        &cancel,
        &mut |chunk| {
            caller.extend_from_slice(&chunk.samples);
            ControlFlow::Continue(())
        },
    )?;
    timings.push(("tts.caller".into(), ms(t)));
    let speech = resample(&caller, tts.sample_rate(), SAMPLE_RATE)?;
    let silence = vec![0i16; SAMPLE_RATE as usize / 2];
    let stream: Vec<i16> = [&silence[..], &speech[..], &silence[..], &silence[..]].concat();
    let caller_audio = AudioChunk {
        sample_rate: SAMPLE_RATE,
        samples: stream,
    };
    let caller_wav = opts.out_dir.join("demo_caller.wav");
    write_wav(&caller_wav, &caller_audio)?;

    // 2. 20 ms frames through VAD and Whisper (with pre-roll), partials while speaking.
    let asr = engines.asr(opts.language).start(&AsrOptions {
        language: opts.language,
        initial_prompt: Some("Sunrise Insurance, car insurance".into()),
    })?;
    let mut listener = Listener::new((engines.new_vad)()?, asr);
    let mut partials = Vec::new();
    let mut transcript = None;
    let t_stream = Instant::now();
    let mut final_latency_ms = 0.0;
    let frames = caller_audio
        .samples
        .chunks(FRAME_SAMPLES)
        .collect::<Vec<_>>();
    for (i, &frame) in frames.iter().enumerate() {
        let t = Instant::now();
        let mut events = listener.push(frame)?;
        if i + 1 == frames.len() {
            events.extend(listener.flush()?);
        }
        for event in events {
            match event {
                SpeechEvent::Started { .. } => {}
                SpeechEvent::Partial { transcript: p, .. } => partials.push(p.text),
                SpeechEvent::Final { transcript: f, .. } => {
                    // The frame that ended the utterance also paid for the final decode.
                    final_latency_ms = ms(t);
                    transcript.get_or_insert(f.text);
                }
            }
        }
    }
    timings.push(("vad_asr.stream".into(), ms(t_stream)));
    timings.push(("asr.endpoint_to_final".into(), final_latency_ms));
    let transcript = transcript.context("the VAD found no speech in the caller's audio")?;
    if transcript.trim().is_empty() {
        bail!("Whisper returned an empty transcript for the caller's sentence");
    }

    // 3. The LLM answers; static system prompt first.
    let mut request = GenerationRequest::new(vec![
        ChatMessage::new(Role::System, SYSTEM_PROMPT),
        ChatMessage::new(Role::User, transcript.clone()),
    ]);
    request.max_tokens = 64;
    request.stop = vec!["\n".into()];
    let t = Instant::now();
    let mut first_piece_ms = None;
    let out = engines.llm.generate(&request, &cancel, &mut |_| {
        first_piece_ms.get_or_insert_with(|| ms(t));
        ControlFlow::Continue(())
    })?;
    timings.push(("llm.first_token".into(), out.first_token_ms));
    timings.push(("llm.total".into(), out.total_ms));
    let reply = whole_sentences(&out.text);
    if reply.is_empty() {
        bail!("the LLM produced an empty reply ({:?})", out.stop_reason);
    }

    // 4. The reply spoken by Piper, first audio timed.
    let t = Instant::now();
    let mut first_audio = None;
    let mut reply_pcm = Vec::new();
    let bot_tts = engines.tts(opts.language);
    bot_tts.synthesize(&reply, opts.language, &cancel, &mut |chunk| {
        first_audio.get_or_insert_with(|| ms(t));
        reply_pcm.extend_from_slice(&chunk.samples);
        ControlFlow::Continue(())
    })?;
    timings.push((
        "tts.reply_first_audio".into(),
        first_audio.unwrap_or_default(),
    ));
    timings.push(("tts.reply_total".into(), ms(t)));
    let reply_audio = AudioChunk {
        sample_rate: bot_tts.sample_rate(),
        samples: reply_pcm,
    };
    let reply_wav = opts.out_dir.join("demo_reply.wav");
    write_wav(&reply_wav, &reply_audio)?;

    Ok(DemoReport {
        caller_sentence: opts.caller_sentence.clone(),
        partials,
        transcript,
        reply,
        caller_wav,
        reply_wav,
        call_id: format!("demo-{}", now_ms()),
        caller_audio_ms: speech.len() as f64 * 1000.0 / f64::from(SAMPLE_RATE),
        reply_audio_ms: reply_audio.duration_ms(),
        llm_tokens: out.generated_tokens,
        timings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_are_cut_to_whole_sentences() {
        assert_eq!(whole_sentences(" Sure. I can help with"), "Sure.");
        assert_eq!(whole_sentences("您好！请问"), "您好！");
        assert_eq!(whole_sentences("no end"), "no end");
    }
}

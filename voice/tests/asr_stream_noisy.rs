//! The noisy clips of the ASR corpus (`tests/data/corpus/`: in-band brown and pink noise over
//! the phone channel) by the natural-sounding voices, Piper joe in English and FastSpeech2 in
//! Mandarin, through the call's listening path: real Silero VAD and a real Whisper base stream in
//! a [`Listener`], 20 ms frames, partials every 0.5 s and the speculative final at pauses. No
//! partial and no final may repeat a span the reference does not (issue 22); streamed WER/CER
//! is printed next to the one-shot decode of the same clips. Needs `models/` from
//! scripts/setup.sh.

mod common;

use anyhow::{ensure, Context, Result};
use common::{
    audio, base, code_of, error_rate, manifest, options, repeats, silero, Clip, Score, REPEAT_SPAN,
    ZH_NEURAL_VOICE,
};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use voice::audio::FRAME_SAMPLES;
use voice::{AsrStream, Language, Listener, SpeechEvent, SpeechToText, Transcript, VoiceError};
use voice::{VoiceConfig, SAMPLE_RATE};

/// The corpus conditions streamed: the in-band noise ones (issue 22).
const CONDITIONS: [&str; 2] = ["phone_brown", "phone_pink"];
/// Silence before and after each clip, so that the VAD starts and ends the utterance itself.
const LEAD_IN_MS: usize = 500;
const TRAIL_MS: usize = 1000;
/// Voices streamed: the natural-sounding ones (Piper joe, the FastSpeech2 Mandarin voice).
/// espeak-ng's voices are left to `asr_corpus`, to keep this test to a few minutes (and its
/// Mandarin is gibberish to Whisper base).
const VOICES: [&str; 2] = ["piper-joe", ZH_NEURAL_VOICE];
/// Longest wait for a partial that is due. A partial can be skipped (the stream's only queue slot
/// still held a speculative decode it had just given up) and then none comes until more audio
/// does: the push gives up waiting and the clip goes on.
const PARTIAL_WAIT: Duration = Duration::from_secs(3);

/// A Whisper stream driven as on a machine that keeps up with the call: whenever a partial is
/// due (every partial interval of new audio), the push waits for it. Pushed as fast as the test
/// can, a stream would decode about one partial per clip; at real-time pace the clips would
/// take minutes more. Speculation and the final are passed through untouched.
struct KeepingUp {
    inner: Box<dyn AsrStream>,
    interval: usize,
    /// Samples pushed since the last partial came back (or the utterance began).
    since_partial: usize,
    /// Partials waited for in vain (see [`PARTIAL_WAIT`]), over every stream that shares it.
    missed: Arc<AtomicUsize>,
}

impl AsrStream for KeepingUp {
    fn push(&mut self, pcm: &[i16]) -> Result<Option<Transcript>, VoiceError> {
        let partial = self.inner.push(pcm)?;
        self.since_partial += pcm.len();
        if partial.is_some() || self.since_partial < self.interval {
            if partial.is_some() {
                self.since_partial = 0;
            }
            return Ok(partial);
        }
        // This push queued a decode (or one is still in flight): wait for its partial.
        self.since_partial = 0;
        let deadline = Instant::now() + PARTIAL_WAIT;
        while Instant::now() < deadline {
            if let Some(partial) = self.inner.push(&[])? {
                return Ok(Some(partial));
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        self.missed.fetch_add(1, Ordering::Relaxed);
        Ok(None)
    }

    fn speculate(&mut self) -> Result<(), VoiceError> {
        self.inner.speculate()
    }

    fn finish(&mut self) -> Result<Transcript, VoiceError> {
        self.since_partial = 0;
        self.inner.finish()
    }

    fn finish_at(&mut self, speech_end: usize) -> Result<Transcript, VoiceError> {
        self.since_partial = 0;
        self.inner.finish_at(speech_end)
    }
}

/// What the listener said about one clip.
#[derive(Debug, Default)]
struct Heard {
    partials: Vec<String>,
    finals: Vec<String>,
}

/// Streams `pcm` (with silence around it) through Silero and a Whisper stream in 20 ms frames.
fn listen(stream: Box<dyn AsrStream>, pcm: &[i16]) -> Result<Heard> {
    let ms = |ms: usize| ms * SAMPLE_RATE as usize / 1000;
    let mut padded = vec![0i16; ms(LEAD_IN_MS)];
    padded.extend_from_slice(pcm);
    padded.resize(padded.len() + ms(TRAIL_MS), 0);
    let mut listener = Listener::new(silero()?, stream);
    let mut events = Vec::new();
    for frame in padded.chunks(FRAME_SAMPLES) {
        events.extend(listener.push(frame)?);
    }
    events.extend(listener.flush()?);
    let mut heard = Heard::default();
    for event in events {
        match event {
            SpeechEvent::Partial { transcript, .. } => heard.partials.push(transcript.text),
            SpeechEvent::Final { transcript, .. } => heard.finals.push(transcript.text),
            SpeechEvent::Started { .. } | SpeechEvent::Speculative { .. } => {}
        }
    }
    Ok(heard)
}

fn is_streamed(clip: &Clip) -> bool {
    !clip.text.is_empty()
        && CONDITIONS.contains(&clip.condition.as_str())
        && VOICES.contains(&clip.voice.as_str())
}

#[test]
fn noisy_clips_stream_without_repeat_loops() -> Result<()> {
    let interval_ms = VoiceConfig::default().asr_partial_interval_ms;
    let asr = base().clone().with_partial_interval_ms(interval_ms);
    // (language, condition) → streamed and one-shot scores.
    let mut streamed: BTreeMap<(&str, String), Score> = BTreeMap::new();
    let mut one_shot: BTreeMap<(&str, String), Score> = BTreeMap::new();
    let mut failures = Vec::new();
    let (mut clips, mut looped, mut partials, mut finals, mut audio_ms) = (0, 0, 0, 0, 0);
    let (mut stream_time, mut one_shot_time) = (Duration::ZERO, Duration::ZERO);
    let missed = Arc::new(AtomicUsize::new(0));
    for clip in manifest()?.iter().filter(|c| is_streamed(c)) {
        let language = clip.lang.context("a speech clip needs its language")?;
        let pcm = audio(clip)?;
        audio_ms += pcm.len() * 1000 / SAMPLE_RATE as usize;
        let started = Instant::now();
        let stream = KeepingUp {
            inner: asr.start(&options(language))?,
            interval: interval_ms as usize * SAMPLE_RATE as usize / 1000,
            since_partial: 0,
            missed: Arc::clone(&missed),
        };
        let heard = listen(Box::new(stream), &pcm).with_context(|| clip.file.clone())?;
        stream_time += started.elapsed();
        let started = Instant::now();
        let whole = asr.transcribe(&pcm, &options(language))?;
        one_shot_time += started.elapsed();

        let separator = if language == Language::Chinese {
            ""
        } else {
            " "
        };
        let text = heard.finals.join(separator);
        let (rate, units) = error_rate(language, &clip.text, &text);
        let (whole_rate, _) = error_rate(language, &clip.text, &whole.text);
        let code = code_of(language, &clip.voice);
        let key = (code, clip.condition.clone());
        streamed.entry(key.clone()).or_default().add(rate, units);
        one_shot.entry(key).or_default().add(whole_rate, units);

        let mut loops = Vec::new();
        for (kind, said) in heard
            .partials
            .iter()
            .map(|p| ("partial", p))
            .chain(heard.finals.iter().map(|f| ("final", f)))
        {
            let spans = repeats(language, &clip.text, said);
            if !spans.is_empty() {
                loops.push(format!("{kind} {said:?} repeats {spans:?}"));
            }
        }
        clips += 1;
        looped += usize::from(!loops.is_empty());
        partials += heard.partials.len();
        finals += heard.finals.len();
        eprintln!(
            "{:44} {} streamed {rate:5.2} one-shot {whole_rate:5.2}  {} partials, finals {:?}  one-shot {:?}  ref {:?}",
            clip.file,
            language.code(),
            heard.partials.len(),
            heard.finals,
            whole.text,
            clip.text
        );
        for l in &loops {
            failures.push(format!("{}: {l} (ref {:?})", clip.file, clip.text));
        }
    }
    ensure!(clips > 0, "no noisy clips in the corpus manifest");
    for (key @ (code, condition), score) in &streamed {
        let metric = if *code == "en" { "wer" } else { "cer" };
        let whole = one_shot.get(key).map_or(f64::NAN, Score::rate);
        eprintln!(
            "figure asr.stream_{metric}_{code}_{condition} {:.3} (one-shot {whole:.3}; {} clips, {} reference units, Whisper base through Silero + Listener)",
            score.rate(),
            score.clips,
            score.units
        );
    }
    eprintln!(
        "figure asr.stream_repeat_loops_per_100_noisy {:.1} ({looped} of {clips} noisy clips have a partial or final repeating a span of {REPEAT_SPAN}; {partials} partials, {finals} finals checked)",
        100.0 * looped as f64 / clips as f64
    );
    eprintln!(
        "timing: {clips} clips, {:.1} s of speech audio; streamed in {:.1} s ({} due partials not \
         waited for), one-shot in {:.1} s",
        audio_ms as f64 / 1000.0,
        stream_time.as_secs_f64(),
        missed.load(Ordering::Relaxed),
        one_shot_time.as_secs_f64()
    );
    ensure!(failures.is_empty(), "{}", failures.join("\n"));
    Ok(())
}

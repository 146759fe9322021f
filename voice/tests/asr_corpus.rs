//! The ASR corpus (`tests/data/corpus/`, made by `cargo run -p voice --example make_corpus`):
//! call-centre phrases by several voices in three conditions, and non-speech clips. One runner
//! reads `corpus.jsonl`, decodes every clip with Whisper base and scores it: WER for English and
//! CER for Mandarin per condition (printed as `figure` lines for BENCHMARKS.md), bounds asserted
//! for English and for Mandarin by the neural voice (espeak-ng's `cmn` is scored apart, as
//! `asr.cer_zh_espeak_*`, and not asserted); non-speech must give no text, straight from Whisper
//! and through the `Listener` (Silero VAD + Whisper stream). A new case is a new line in the
//! manifest.
//! Needs `models/` from scripts/setup.sh.

use anyhow::{ensure, Context, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use voice::asr::whisper::{DecoderWeights, WhisperAsr};
use voice::audio::{read_wav, resample, FRAME_SAMPLES};
use voice::metrics::{
    char_error_rate, normalized_chars, normalized_words, repeated_spans, word_error_rate,
};
use voice::vad::silero::SileroVad;
use voice::{AsrOptions, Language, Listener, SpeechEvent, SpeechToText, VoiceConfig, SAMPLE_RATE};

/// Largest English WER (over all words of a condition, all voices) accepted, per condition.
/// Measured with Whisper base on 2026-11-25: 0.108 clean, 0.208 phone, 0.324 phone_noise (Piper
/// joe alone 0.068 over all three; the robotic espeak-ng voices make most errors). The bounds
/// leave margin for the other machine's float rounding, not for regressions.
/// The in-band noise conditions (brown at 15 dB, pink at 10 dB; added 2026-12-04 for issue 22):
/// 0.276 and 0.430 measured that day.
const MAX_WER_EN: [(&str, f64); 5] = [
    ("clean", 0.16),
    ("phone", 0.28),
    ("phone_noise", 0.42),
    ("phone_brown", 0.36),
    ("phone_pink", 0.52),
];
/// Conditions whose Piper clips are bounded one by one (in-band pink noise at 10 dB leaves
/// single phrases past recognition: worst 0.83).
const CLIP_BOUND_CONDITIONS: [&str; 3] = ["clean", "phone", "phone_noise"];
/// Largest WER of any single Piper clip (the natural-sounding voice; worst seen 0.50): one badly
/// wrong phrase is a regression even when the average holds. espeak-ng clips are bounded only
/// by the averages: some of them Whisper base simply cannot read.
const MAX_CLIP_WER_PIPER: f64 = 0.75;
/// Largest Mandarin CER (over all characters of a condition) of the neural FastSpeech2 voice,
/// per condition. Measured with Whisper base on 2026-11-26: 0.032 clean, 0.085 phone, 0.074
/// phone_noise (10 phrases, 94 characters: one character is 0.011); the bounds allow about
/// six more wrong characters per condition. Mandarin by espeak-ng is not bounded: Whisper base
/// hallucinates on it (CER 1.05–1.93, shared MODELS.md).
/// In-band noise (2026-12-04, 12 phrases with two long ones, 149 characters): 0.128 brown, 0.134
/// pink.
const MAX_CER_ZH: [(&str, f64); 5] = [
    ("clean", 0.10),
    ("phone", 0.15),
    ("phone_noise", 0.15),
    ("phone_brown", 0.20),
    ("phone_pink", 0.20),
];
/// A decoding loop: a span of this many words (characters for Mandarin) that a final holds
/// more often than its reference. None is allowed in any clip (issue 22) but espeak-ng's
/// Mandarin, which Whisper base cannot read at all ("4x4x4x2x3x1" for 我现在没有时间): its
/// loops are counted and printed, not asserted.
const REPEAT_SPAN: usize = 4;
/// The Mandarin voice whose CER is asserted; every other Mandarin voice is reported apart.
const ZH_NEURAL_VOICE: &str = "zh-fastspeech2";

#[derive(Debug, serde::Deserialize)]
struct Clip {
    file: String,
    lang: Option<Language>,
    voice: String,
    condition: String,
    text: String,
}

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/corpus")
}

fn models_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../models")
}

fn manifest() -> Result<Vec<Clip>> {
    let path = corpus_dir().join("corpus.jsonl");
    let text = std::fs::read_to_string(&path).with_context(|| format!("{}", path.display()))?;
    let clips: Vec<Clip> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, l)| serde_json::from_str(l).with_context(|| format!("corpus.jsonl:{}", i + 1)))
        .collect::<Result<_>>()?;
    ensure!(!clips.is_empty(), "{} lists no clips", path.display());
    Ok(clips)
}

/// The clip at 16 kHz (phone conditions are stored at 8 kHz, as the line carries them).
fn audio(clip: &Clip) -> Result<Vec<i16>> {
    let path = corpus_dir().join(&clip.file);
    let wav = read_wav(&path).with_context(|| format!("{}", path.display()))?;
    Ok(resample(&wav.samples, wav.sample_rate, SAMPLE_RATE)?)
}

fn base() -> &'static WhisperAsr {
    static BASE: OnceLock<WhisperAsr> = OnceLock::new();
    BASE.get_or_init(|| {
        let dir = models_dir().join("whisper-base");
        assert!(
            dir.join("model.bin").exists(),
            "{} is missing: run scripts/setup.sh to fetch the Whisper models",
            dir.join("model.bin").display()
        );
        // `ASR_DECODER_WEIGHTS=f32` scores the exact decoder instead of the default 8-bit one.
        let weights = match std::env::var("ASR_DECODER_WEIGHTS").as_deref() {
            Ok("f32") => DecoderWeights::F32,
            _ => DecoderWeights::default(),
        };
        let asr = WhisperAsr::load_with(&dir, 2, 1, weights)
            .unwrap_or_else(|e| panic!("loading {}: {e}", dir.display()));
        // `ASR_FALLBACK=off` measures without the temperature fallback (the loop guard stays).
        match std::env::var("ASR_FALLBACK").as_deref() {
            Ok("off") => asr.with_fallback_temperatures(&[]),
            _ => asr,
        }
    })
}

fn options(language: Language) -> AsrOptions {
    AsrOptions {
        language,
        initial_prompt: None,
    }
}

/// Errors and reference length, summed over clips.
#[derive(Debug, Default, Clone, Copy)]
struct Score {
    errors: f64,
    units: usize,
    clips: usize,
}

impl Score {
    fn add(&mut self, rate: f64, units: usize) {
        self.errors += rate * units as f64;
        self.units += units;
        self.clips += 1;
    }
    fn rate(&self) -> f64 {
        self.errors / self.units.max(1) as f64
    }
}

/// The figures' language code: Mandarin figures are the neural voice's; espeak-ng's cmn gets its
/// own, apart.
fn code_of(language: Language, voice: &str) -> &'static str {
    match language {
        Language::Chinese if voice != ZH_NEURAL_VOICE => "zh_espeak",
        _ => language.code(),
    }
}

#[test]
fn whisper_base_on_the_speech_corpus() -> Result<()> {
    let asr = base();
    // (language, condition) and (language, voice) → score.
    let mut by_condition: BTreeMap<(&str, String), Score> = BTreeMap::new();
    let mut by_voice: BTreeMap<(&str, String), Score> = BTreeMap::new();
    let mut failures = Vec::new();
    // Noisy clips, and those whose final repeats a span; clips whose greedy decode was suspect,
    // fallback decodes run and their time.
    let (mut noisy, mut looped) = (0usize, 0usize);
    let (mut suspect, mut fallbacks, mut fallback_ms, mut decode_ms) = (0usize, 0usize, 0f64, 0f64);
    let clips = manifest()?;
    for clip in clips.iter().filter(|c| !c.text.is_empty()) {
        let language = clip.lang.context("a speech clip needs its language")?;
        let (t, stats) = asr.transcribe_with_stats(&audio(clip)?, &options(language))?;
        let (rate, units, repeats) = match language {
            Language::English => (
                word_error_rate(&clip.text, &t.text),
                normalized_words(&clip.text).len(),
                repeated_spans(
                    &normalized_words(&clip.text),
                    &normalized_words(&t.text),
                    REPEAT_SPAN,
                )
                .into_iter()
                .map(|s| s.join(" "))
                .collect::<Vec<_>>(),
            ),
            Language::Chinese => (
                char_error_rate(&clip.text, &t.text),
                normalized_chars(&clip.text).len(),
                repeated_spans(
                    &normalized_chars(&clip.text),
                    &normalized_chars(&t.text),
                    REPEAT_SPAN,
                )
                .into_iter()
                .map(String::from_iter)
                .collect(),
            ),
        };
        let is_noisy = clip.condition != "clean" && clip.condition != "phone";
        noisy += usize::from(is_noisy);
        suspect += stats.suspect.min(1);
        fallbacks += stats.fallbacks;
        fallback_ms += stats.fallback_ms;
        decode_ms += stats.mel_ms + stats.encoder_ms + stats.decoder_ms;
        if !repeats.is_empty() {
            looped += usize::from(is_noisy);
        }
        if !repeats.is_empty() && code_of(language, &clip.voice) != "zh_espeak" {
            failures.push(format!(
                "{}: the final repeats {repeats:?}: {:?} vs {:?}",
                clip.file, t.text, clip.text
            ));
        }
        eprintln!(
            "{:44} {} {rate:5.2} (no_speech {:.2} avg_logprob {:.2} fallbacks {})  {:?}  ref {:?}",
            clip.file,
            language.code(),
            t.no_speech_prob,
            t.avg_logprob,
            stats.fallbacks,
            t.text,
            clip.text
        );
        let code = code_of(language, &clip.voice);
        by_condition
            .entry((code, clip.condition.clone()))
            .or_default()
            .add(rate, units);
        by_voice
            .entry((code, clip.voice.clone()))
            .or_default()
            .add(rate, units);
        if clip.voice.starts_with("piper")
            && CLIP_BOUND_CONDITIONS.contains(&clip.condition.as_str())
            && rate > MAX_CLIP_WER_PIPER
        {
            failures.push(format!(
                "{}: WER {rate:.2} > {MAX_CLIP_WER_PIPER}: {:?} vs {:?}",
                clip.file, t.text, clip.text
            ));
        }
    }
    for ((code, voice), score) in &by_voice {
        let metric = if *code == "en" { "WER" } else { "CER" };
        eprintln!(
            "voice {code} {voice:24} {metric} {:.3} ({} clips)",
            score.rate(),
            score.clips
        );
    }
    for ((code, condition), score) in &by_condition {
        let metric = if *code == "en" { "wer" } else { "cer" };
        eprintln!(
            "figure asr.{metric}_{code}_{condition} {:.3} ({} clips, {} reference units, Whisper base)",
            score.rate(),
            score.clips,
            score.units
        );
    }
    eprintln!(
        "figure asr.repeat_loops_per_100_noisy {:.1} ({looped} of {noisy} noisy clips repeat a span of {REPEAT_SPAN}, espeak-ng Mandarin included)",
        100.0 * looped as f64 / noisy.max(1) as f64
    );
    eprintln!(
        "figure asr.compression_ratio_fallbacks {suspect} clips of {} suspect, {fallbacks} fallback decodes, {fallback_ms:.0} ms of {decode_ms:.0} ms decoding",
        clips.iter().filter(|c| !c.text.is_empty()).count()
    );
    for (condition, max) in MAX_WER_EN {
        let score = by_condition
            .get(&("en", condition.to_string()))
            .with_context(|| format!("no English clips in condition {condition}"))?;
        if score.rate() > max {
            failures.push(format!("en {condition}: WER {:.3} > {max}", score.rate()));
        }
    }
    for (condition, max) in MAX_CER_ZH {
        let score = by_condition
            .get(&("zh", condition.to_string()))
            .with_context(|| format!("no {ZH_NEURAL_VOICE} clips in condition {condition}"))?;
        if score.rate() > max {
            failures.push(format!("zh {condition}: CER {:.3} > {max}", score.rate()));
        }
    }
    ensure!(failures.is_empty(), "{}", failures.join("\n"));
    Ok(())
}

/// Silence, line noise, hum and hold music give no text in either language, decoded whole.
#[test]
fn whisper_base_hears_nothing_in_non_speech() -> Result<()> {
    let asr = base();
    let mut heard = Vec::new();
    for clip in manifest()?.iter().filter(|c| c.text.is_empty()) {
        let pcm = audio(clip)?;
        for language in [Language::English, Language::Chinese] {
            let t = asr.transcribe(&pcm, &options(language))?;
            eprintln!(
                "{} {}: {:?} no_speech {:.2} avg_logprob {:.2}",
                clip.file,
                language.code(),
                t.text,
                t.no_speech_prob,
                t.avg_logprob
            );
            if !t.text.is_empty() {
                heard.push(format!("{} ({}): {:?}", clip.file, language.code(), t.text));
            }
        }
    }
    ensure!(
        heard.is_empty(),
        "text from non-speech:\n{}",
        heard.join("\n")
    );
    Ok(())
}

/// The same clips through the call's listening path: Silero VAD and a Whisper stream in 20 ms
/// frames. Nothing may come out as text (a VAD start alone is allowed: it only pauses the bot).
#[test]
fn listener_hears_nothing_in_non_speech() -> Result<()> {
    let config = VoiceConfig {
        models_dir: models_dir(),
        ..VoiceConfig::default()
    };
    let mut heard = Vec::new();
    for clip in manifest()?.iter().filter(|c| c.text.is_empty()) {
        let pcm = audio(clip)?;
        let mut listener = Listener::new(
            Box::new(SileroVad::new(&config)?),
            base().start(&options(Language::English))?,
        );
        let mut events = Vec::new();
        for frame in pcm.chunks(FRAME_SAMPLES) {
            events.extend(listener.push(frame)?);
        }
        events.extend(listener.flush()?);
        eprintln!("{}: {events:?}", clip.file);
        for event in events {
            match event {
                SpeechEvent::Partial { transcript, .. } | SpeechEvent::Final { transcript, .. }
                    if !transcript.text.is_empty() =>
                {
                    heard.push(format!("{}: {:?}", clip.file, transcript.text));
                }
                _ => {}
            }
        }
    }
    ensure!(
        heard.is_empty(),
        "text from non-speech:\n{}",
        heard.join("\n")
    );
    Ok(())
}

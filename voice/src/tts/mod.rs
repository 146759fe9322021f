//! Text to speech: synthesizes text and hands audio out in 20 ms frames as it is produced, so
//! playback starts before the whole reply is spoken; a cancellation token stops it within one
//! frame (barge-in). [`piper`] (English) and [`zh_fastspeech`] (Mandarin, neural) are the real
//! engines, with [`espeak`] as the Mandarin fallback; [`FakeTts`] is for unit tests.

pub mod espeak;
pub mod piper;
pub mod zh_fastspeech;

use crate::audio::AudioChunk;
use crate::{Language, VoiceError};
use std::ops::ControlFlow;
use tokio_util::sync::CancellationToken;

/// What one synthesis produced.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SynthesisStats {
    /// Audio handed to the sink, in milliseconds.
    pub audio_ms: f64,
    /// Whether the token or the sink stopped synthesis early.
    pub cancelled: bool,
}

/// A speech synthesizer. One loaded voice serves many calls.
pub trait TextToSpeech: Send + Sync {
    /// Sample rate of the frames handed to the sink.
    fn sample_rate(&self) -> u32;
    /// Languages this engine can speak.
    fn languages(&self) -> &[Language];
    /// Synthesizes `text`, calling `sink` with consecutive 20 ms frames (the last may be
    /// shorter). Stops within one frame when `cancel` fires or the sink returns `Break`.
    fn synthesize(
        &self,
        text: &str,
        language: Language,
        cancel: &CancellationToken,
        sink: &mut dyn FnMut(AudioChunk) -> ControlFlow<()>,
    ) -> Result<SynthesisStats, VoiceError>;
}

/// The sentence loop every engine shares: synthesizes `text` one sentence at a time with
/// `synthesize_sentence` and hands the audio to the sink in 20 ms frames as each sentence is
/// ready. Audio past the last whole frame waits for the next sentence, so every frame but the
/// very last is a full 20 ms. Cancellation is checked before every sentence and every frame.
pub(crate) fn synthesize_by_sentence(
    text: &str,
    sample_rate: u32,
    cancel: &CancellationToken,
    sink: &mut dyn FnMut(AudioChunk) -> ControlFlow<()>,
    mut synthesize_sentence: impl FnMut(&str) -> Result<Vec<i16>, VoiceError>,
) -> Result<SynthesisStats, VoiceError> {
    let mut stats = SynthesisStats::default();
    let frame = ((sample_rate * crate::FRAME_MS / 1000) as usize).max(1);
    let mut pending = Vec::new();
    for sentence in split_sentences(text) {
        if cancel.is_cancelled() {
            stats.cancelled = true;
            return Ok(stats);
        }
        pending.extend(synthesize_sentence(sentence)?);
        let whole = pending.len() / frame * frame;
        if emit_frames(
            &pending[..whole],
            frame,
            sample_rate,
            cancel,
            sink,
            &mut stats,
        )
        .is_break()
        {
            return Ok(stats);
        }
        pending.drain(..whole);
    }
    let _ = emit_frames(&pending, frame, sample_rate, cancel, sink, &mut stats);
    Ok(stats)
}

/// Hands `samples` to the sink in chunks of `frame`, stopping when the token fires or the sink
/// returns `Break`.
fn emit_frames(
    samples: &[i16],
    frame: usize,
    sample_rate: u32,
    cancel: &CancellationToken,
    sink: &mut dyn FnMut(AudioChunk) -> ControlFlow<()>,
    stats: &mut SynthesisStats,
) -> ControlFlow<()> {
    for chunk in samples.chunks(frame) {
        if cancel.is_cancelled() {
            stats.cancelled = true;
            return ControlFlow::Break(());
        }
        stats.audio_ms += chunk.len() as f64 * 1000.0 / f64::from(sample_rate);
        if sink(AudioChunk {
            sample_rate,
            samples: chunk.to_vec(),
        })
        .is_break()
        {
            stats.cancelled = true;
            return ControlFlow::Break(());
        }
    }
    ControlFlow::Continue(())
}

/// Splits text into sentences at . ! ? 。！？ (keeping the mark), so synthesis can start on the
/// first sentence.
pub fn split_sentences(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, c) in text.char_indices() {
        if matches!(c, '.' | '!' | '?' | '。' | '！' | '？' | ';' | '；') {
            let end = i + c.len_utf8();
            let s = text[start..end].trim();
            if !s.is_empty() {
                out.push(s);
            }
            start = end;
        }
    }
    let rest = text[start..].trim();
    if !rest.is_empty() {
        out.push(rest);
    }
    out
}

/// Deterministic fake: a 440 Hz tone, 60 ms per character, at 16 kHz.
#[derive(Debug, Default)]
pub struct FakeTts;

impl TextToSpeech for FakeTts {
    fn sample_rate(&self) -> u32 {
        16_000
    }

    fn languages(&self) -> &[Language] {
        &[Language::English, Language::Chinese]
    }

    fn synthesize(
        &self,
        text: &str,
        _language: Language,
        cancel: &CancellationToken,
        sink: &mut dyn FnMut(AudioChunk) -> ControlFlow<()>,
    ) -> Result<SynthesisStats, VoiceError> {
        synthesize_by_sentence(text, 16_000, cancel, sink, |sentence| {
            let n = sentence.chars().count() * 960;
            Ok((0..n)
                .map(|i| {
                    ((i as f32 * 440.0 * std::f32::consts::TAU / 16000.0).sin() * 8000.0) as i16
                })
                .collect())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentences_split_in_both_languages() {
        assert_eq!(
            split_sentences("Hi there. How are you? Fine"),
            vec!["Hi there.", "How are you?", "Fine"]
        );
        assert_eq!(
            split_sentences("您好。请问您有时间吗？"),
            vec!["您好。", "请问您有时间吗？"]
        );
    }
}

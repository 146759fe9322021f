//! Text to speech: synthesizes text and hands audio out in 20 ms frames as it is produced, so
//! playback starts before the whole reply is spoken; a cancellation token stops it within one
//! frame (barge-in). [`piper`] (English) and [`zh_fastspeech`] (Mandarin, neural) are the real
//! engines, with [`espeak`] as the Mandarin fallback; [`FakeTts`] is for unit tests.

pub mod espeak;
mod onnx;
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

/// How a reply is cut into the pieces an engine synthesizes one at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Chunking {
    /// One piece per sentence.
    Sentences,
    /// Sentences, but the first one cut after its first clause (see [`speech_chunks`]): the
    /// first audio leaves after a short piece instead of a whole sentence.
    FirstClause,
}

/// The sentence loop every engine shares: synthesizes `text` one piece at a time (see
/// [`Chunking`]) with `synthesize_sentence` and hands the audio to the sink in 20 ms frames as
/// each piece is ready. Audio past the last whole frame waits for the next piece, so every frame
/// but the very last is a full 20 ms. Cancellation is checked before every piece and every
/// frame.
pub(crate) fn synthesize_by_sentence(
    text: &str,
    chunking: Chunking,
    sample_rate: u32,
    cancel: &CancellationToken,
    sink: &mut dyn FnMut(AudioChunk) -> ControlFlow<()>,
    mut synthesize_sentence: impl FnMut(&str) -> Result<Vec<i16>, VoiceError>,
) -> Result<SynthesisStats, VoiceError> {
    let mut stats = SynthesisStats::default();
    let frame = ((sample_rate * crate::FRAME_MS / 1000) as usize).max(1);
    let mut pending = Vec::new();
    for sentence in speech_chunks(text, chunking == Chunking::FirstClause) {
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

/// Splits text into sentences at . ! ? ; 。！？； (keeping the mark), so synthesis can start on
/// the first sentence. A mark between two digits ("57.80") is part of a number, not an end.
pub fn split_sentences(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, c) in text.char_indices() {
        if matches!(c, '.' | '!' | '?' | '。' | '！' | '？' | ';' | '；') && !inside_number(text, i)
        {
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

/// Fewest words (characters for Chinese) a sentence keeps after its first clause for
/// [`speech_chunks`] to cut it there: a shorter rest is spoken with the clause.
const MIN_REST_WORDS: usize = 3;

/// The pieces a reply is synthesized in: its sentences ([`split_sentences`]) and, with
/// `first_clause`, the first sentence cut after its first comma (kept with the clause, so the
/// voice still pauses there) when at least [`MIN_REST_WORDS`] words follow. A comma is where a
/// speaker pauses anyway, so the cut costs little prosody, and the first audio leaves after
/// "Hello," rather than after the whole first sentence.
pub fn speech_chunks(text: &str, first_clause: bool) -> Vec<&str> {
    let mut sentences = split_sentences(text);
    if !first_clause {
        return sentences;
    }
    let Some(&first) = sentences.first() else {
        return sentences;
    };
    let cut = first.char_indices().find_map(|(i, c)| {
        let end = i + c.len_utf8();
        let rest = first[end..].trim();
        let rest_words = if rest.is_ascii() {
            rest.split_whitespace().count()
        } else {
            rest.chars().filter(|c| c.is_alphanumeric()).count()
        };
        (matches!(c, ',' | '，' | '、' | ':' | '：')
            && !inside_number(first, i)
            && rest_words >= MIN_REST_WORDS)
            .then_some(end)
    });
    if let Some(end) = cut {
        let (clause, rest) = first.split_at(end);
        sentences.splice(0..1, [clause.trim(), rest.trim()]);
    }
    sentences
}

/// Whether the mark at byte `i` of `text` sits between two digits ("57.80", "12,000").
fn inside_number(text: &str, i: usize) -> bool {
    let before = text[..i].chars().next_back();
    let after = text[i..].chars().nth(1);
    before.is_some_and(|c| c.is_ascii_digit()) && after.is_some_and(|c| c.is_ascii_digit())
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
        synthesize_by_sentence(
            text,
            Chunking::Sentences,
            16_000,
            cancel,
            sink,
            |sentence| {
                let n = sentence.chars().count() * 960;
                Ok((0..n)
                    .map(|i| {
                        ((i as f32 * 440.0 * std::f32::consts::TAU / 16000.0).sin() * 8000.0) as i16
                    })
                    .collect())
            },
        )
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
        assert_eq!(
            split_sentences("It is 57.80 a month. Shall I?"),
            vec!["It is 57.80 a month.", "Shall I?"]
        );
    }

    #[test]
    fn the_first_sentence_is_cut_after_its_first_clause() {
        assert_eq!(
            speech_chunks("Hello, this is Anna from Northwind. Is now good?", true),
            vec!["Hello,", "this is Anna from Northwind.", "Is now good?"]
        );
        // Only the first sentence, and only with enough words after the comma.
        assert_eq!(
            speech_chunks("Yes, of course. No, thank you, bye.", true),
            vec!["Yes, of course.", "No, thank you, bye."]
        );
        assert_eq!(
            speech_chunks("It saves 12,000 pounds a year.", true),
            vec!["It saves 12,000 pounds a year."]
        );
        assert_eq!(
            speech_chunks("您好，我是北风能源的客服。", true),
            vec!["您好，", "我是北风能源的客服。"]
        );
        assert_eq!(
            speech_chunks("Hello, this is Anna.", false),
            vec!["Hello, this is Anna."]
        );
    }
}

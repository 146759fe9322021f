//! Speech to text: a per-utterance stream that takes 16 kHz PCM and gives partial and final
//! transcripts. [`whisper`] is the real engine (Whisper on candle); [`FakeAsr`] is for unit tests.

pub mod whisper;

use crate::{Language, VoiceError};
use serde::{Deserialize, Serialize};

/// Traditional Chinese characters converted to simplified; everything else unchanged. Whisper
/// often writes Mandarin in traditional characters even with the language forced to zh, and the
/// calls are mainland (zh-CN), so every Chinese transcript goes through this.
pub fn to_simplified(text: &str) -> String {
    fast2s::convert(text)
}

/// Options for one recognition stream (one call, or one utterance of it).
#[derive(Debug, Clone, Default)]
pub struct AsrOptions {
    /// Language forced for decoding; Whisper does not detect it per call.
    pub language: Language,
    /// Text that biases decoding toward the campaign's words (product names).
    pub initial_prompt: Option<String>,
}

/// A recognition result. Partial results may change; a final one never does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transcript {
    pub text: String,
    pub is_final: bool,
    /// Mean log-probability of the decoded tokens (≤ 0; lower is less sure).
    pub avg_logprob: f32,
    /// Probability the segment held no speech, from the model's no-speech token.
    pub no_speech_prob: f32,
}

/// A speech recognizer. One loaded model serves many streams.
pub trait SpeechToText: Send + Sync {
    /// Opens a stream for one utterance or call.
    fn start(&self, options: &AsrOptions) -> Result<Box<dyn AsrStream>, VoiceError>;
}

/// One recognition stream. Audio is pushed as it arrives; `finish` ends the utterance.
pub trait AsrStream: Send {
    /// Appends 16 kHz mono PCM. Returns a partial transcript when the stream decided to
    /// re-decode (about every half second of new audio), otherwise `None`.
    fn push(&mut self, pcm: &[i16]) -> Result<Option<Transcript>, VoiceError>;
    /// End of the utterance: decodes everything pushed and returns the final transcript, then
    /// resets so the stream can take the next utterance.
    fn finish(&mut self) -> Result<Transcript, VoiceError>;
    /// The caller paused: the utterance may end here. A stream may start decoding what it has
    /// so that a final confirmed soon after is ready sooner.
    fn speculate(&mut self) -> Result<(), VoiceError> {
        Ok(())
    }
    /// [`Self::finish`] knowing that the speech ended `speech_end` samples into what was pushed
    /// for this utterance (the rest is the VAD's hang-over): a decode that already covered the
    /// speech may serve as the final, and trailing silence need not be decoded.
    fn finish_at(&mut self, speech_end: usize) -> Result<Transcript, VoiceError> {
        let _ = speech_end;
        self.finish()
    }
}

/// Deterministic fake: "hears" a fixed script, one entry per utterance, and reports a partial
/// (the first half of the words) once at least 0.5 s of audio has been pushed.
#[derive(Debug, Clone, Default)]
pub struct FakeAsr {
    pub script: Vec<String>,
}

impl SpeechToText for FakeAsr {
    fn start(&self, _options: &AsrOptions) -> Result<Box<dyn AsrStream>, VoiceError> {
        Ok(Box::new(FakeAsrStream {
            script: self.script.clone(),
            next: 0,
            samples: 0,
            partial_sent: false,
        }))
    }
}

struct FakeAsrStream {
    script: Vec<String>,
    next: usize,
    samples: usize,
    partial_sent: bool,
}

impl FakeAsrStream {
    fn current(&self) -> &str {
        self.script.get(self.next).map(String::as_str).unwrap_or("")
    }
}

impl AsrStream for FakeAsrStream {
    fn push(&mut self, pcm: &[i16]) -> Result<Option<Transcript>, VoiceError> {
        self.samples += pcm.len();
        if !self.partial_sent && self.samples >= 8000 {
            self.partial_sent = true;
            let words: Vec<&str> = self.current().split_whitespace().collect();
            let text = words[..words.len() / 2].join(" ");
            return Ok(Some(Transcript {
                text,
                is_final: false,
                avg_logprob: -0.1,
                no_speech_prob: 0.0,
            }));
        }
        Ok(None)
    }

    fn finish(&mut self) -> Result<Transcript, VoiceError> {
        let text = if self.samples == 0 {
            String::new()
        } else {
            self.current().to_string()
        };
        if self.samples > 0 {
            self.next += 1;
        }
        self.samples = 0;
        self.partial_sent = false;
        Ok(Transcript {
            text,
            is_final: true,
            avg_logprob: -0.1,
            no_speech_prob: 0.0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::to_simplified;

    #[test]
    fn traditional_chinese_becomes_simplified() {
        assert_eq!(
            to_simplified("我對這個不感興趣，請不要再打電話了。"),
            "我对这个不感兴趣，请不要再打电话了。"
        );
        assert_eq!(to_simplified("我对这个不感兴趣"), "我对这个不感兴趣");
        assert_eq!(to_simplified("Call me at 6:30."), "Call me at 6:30.");
    }
}

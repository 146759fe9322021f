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
    /// The full hypothesis of everything heard up to the last [`Self::speculate`], once a decode
    /// covering it is done (taken once): the final the utterance will have if the pause turns
    /// out to be its end. A caller may start answering it and drop the answer if the final
    /// differs. Streams that do not speculate return `None`.
    fn take_speculative(&mut self) -> Option<Transcript> {
        None
    }
}

/// Deterministic fake: "hears" a fixed script, one entry per utterance, and reports a partial
/// (the first half of the words) once at least 0.5 s of audio has been pushed. An entry may
/// mark the caller's pauses with `|`: the speculation at the n-th pause is what was said before
/// the n-th mark, and the final is the whole entry without the marks.
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
            speculative: None,
            pauses: 0,
        }))
    }
}

struct FakeAsrStream {
    script: Vec<String>,
    next: usize,
    samples: usize,
    partial_sent: bool,
    speculative: Option<Transcript>,
    /// Pauses speculated on in this utterance.
    pauses: usize,
}

impl FakeAsrStream {
    /// The current entry's parts between pause marks.
    fn parts(&self) -> Vec<&str> {
        self.script
            .get(self.next)
            .map(|e| {
                e.split('|')
                    .map(str::trim)
                    .filter(|p| !p.is_empty())
                    .collect()
            })
            .unwrap_or_default()
    }

    fn current(&self) -> String {
        self.parts().join(" ")
    }
}

impl AsrStream for FakeAsrStream {
    fn push(&mut self, pcm: &[i16]) -> Result<Option<Transcript>, VoiceError> {
        self.samples += pcm.len();
        if !self.partial_sent && self.samples >= 8000 {
            self.partial_sent = true;
            let current = self.current();
            let words: Vec<&str> = current.split_whitespace().collect();
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

    /// The fake's speculation is its next final: what it will hear is scripted.
    fn speculate(&mut self) -> Result<(), VoiceError> {
        if self.samples > 0 {
            self.pauses += 1;
            let parts = self.parts();
            self.speculative = Some(Transcript {
                text: parts[..self.pauses.min(parts.len())].join(" "),
                is_final: false,
                avg_logprob: -0.1,
                no_speech_prob: 0.0,
            });
        }
        Ok(())
    }

    fn take_speculative(&mut self) -> Option<Transcript> {
        self.speculative.take()
    }

    fn finish(&mut self) -> Result<Transcript, VoiceError> {
        let text = if self.samples == 0 {
            String::new()
        } else {
            self.current()
        };
        if self.samples > 0 {
            self.next += 1;
        }
        self.samples = 0;
        self.partial_sent = false;
        self.speculative = None;
        self.pauses = 0;
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

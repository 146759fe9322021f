//! Voice: everything between the phone line and text. Audio frames and WAV I/O, voice activity
//! detection, streaming speech recognition and text-to-speech, each behind a small trait with a
//! real engine and a deterministic fake.
//!
//! Engines here are blocking and CPU-heavy: callers run them on dedicated threads, never inside
//! an async task's poll.

pub mod asr;
pub mod audio;
pub mod config;
pub mod error;
pub mod listener;
pub mod metrics;
pub mod tts;
pub mod vad;

pub use asr::{AsrOptions, AsrStream, SpeechToText, Transcript};
pub use audio::{AudioChunk, FRAME_MS, SAMPLE_RATE};
pub use config::VoiceConfig;
pub use error::VoiceError;
pub use listener::{Listener, SpeechEvent};
pub use tts::{SynthesisStats, TextToSpeech};
pub use vad::{VadEvent, VoiceActivity};

use serde::{Deserialize, Serialize};

/// Language of a call or an utterance. Calls are Mandarin or English; ASR is forced to the
/// call's language, and TTS picks the voice for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub enum Language {
    #[default]
    #[serde(rename = "en")]
    English,
    #[serde(rename = "zh")]
    Chinese,
}

impl Language {
    /// ISO 639-1 code, as Whisper's language tokens spell it.
    pub fn code(self) -> &'static str {
        match self {
            Language::English => "en",
            Language::Chinese => "zh",
        }
    }
}

impl std::str::FromStr for Language {
    type Err = VoiceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "en" | "en-us" | "en-gb" | "english" => Ok(Language::English),
            "zh" | "zh-cn" | "cmn" | "chinese" | "mandarin" => Ok(Language::Chinese),
            other => Err(VoiceError::InvalidInput(format!(
                "unknown language {other:?}: use \"en\" or \"zh\""
            ))),
        }
    }
}

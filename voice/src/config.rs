//! Typed configuration of the voice engines: model paths, languages, VAD timing. Defaults point
//! into `models/` as laid out by scripts/setup.sh.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Which Whisper checkpoint to load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WhisperSize {
    /// Multilingual base (zh + en).
    Base,
    /// English-only tiny, about twice as fast.
    TinyEn,
}

/// Which engine speaks Mandarin.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ZhTtsEngine {
    /// The neural voice when scripts/setup.sh has produced its files, else espeak-ng.
    #[default]
    Auto,
    /// The FastSpeech2 + MB-MelGAN neural voice (`models_dir/zh-fastspeech2`).
    Fastspeech2,
    /// espeak-ng's formant `cmn` voice (robotic; the fallback).
    Espeak,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct VoiceConfig {
    /// Folder holding the model files (scripts/setup.sh fills it).
    pub models_dir: PathBuf,
    /// Whisper checkpoint for English calls.
    pub asr_model_en: WhisperSize,
    /// Whisper checkpoint for Mandarin calls (must be multilingual).
    pub asr_model_zh: WhisperSize,
    /// Threads candle may use for Whisper's matrix products, shared by all ASR workers.
    pub asr_threads: usize,
    /// Worker threads decoding for all calls on one shared Whisper model (each decodes one
    /// utterance at a time). Finals queue ahead of partials; when the queue is full a final waits
    /// for room and a partial is skipped.
    pub asr_workers: usize,
    /// How Whisper's decoder stores its per-token matrices: `q8` (default; 8-bit blocks, a
    /// quarter of the memory read per token) or `f32` (as loaded).
    pub asr_decoder_weights: crate::asr::whisper::DecoderWeights,
    /// How much new audio a recognition stream waits for before it re-decodes the utterance and
    /// reports a partial transcript, in milliseconds. Shorter gives earlier partials and costs
    /// more decodes per utterance (each decode re-runs the encoder on the whole utterance).
    pub asr_partial_interval_ms: u32,
    /// Temperatures at which a suspect final is decoded again, in order, until one passes
    /// (Whisper's reference fallback: the loop guard cut a repeat, the text compresses better
    /// than 2.4, or the average log-probability is below -1). Each try costs one more decoder
    /// run on the same encoder output; `[]` turns it off (the loop guard still cuts repeats).
    pub asr_fallback_temperatures: Vec<f32>,
    /// Silence after speech that ends an utterance, in milliseconds.
    pub vad_hangover_ms: u32,
    /// Silero speech probability threshold.
    pub vad_threshold: f32,
    /// Shortest utterance kept, in milliseconds.
    pub vad_min_speech_ms: u32,
    /// Piper voice (ONNX file name under `models_dir/piper`).
    pub piper_voice_en: String,
    /// espeak-ng voice for Mandarin.
    pub espeak_voice_zh: String,
    /// Mandarin speech engine: `auto` (default), `fastspeech2` or `espeak`.
    pub tts_zh: ZhTtsEngine,
}

impl Default for VoiceConfig {
    fn default() -> Self {
        Self {
            models_dir: PathBuf::from("models"),
            asr_model_en: WhisperSize::Base,
            asr_model_zh: WhisperSize::Base,
            asr_threads: 2,
            asr_workers: 1,
            asr_decoder_weights: Default::default(),
            asr_partial_interval_ms: crate::asr::whisper::DEFAULT_PARTIAL_INTERVAL_MS,
            asr_fallback_temperatures: crate::asr::whisper::DEFAULT_FALLBACK_TEMPERATURES.to_vec(),
            vad_hangover_ms: 300,
            vad_threshold: 0.5,
            vad_min_speech_ms: 200,
            piper_voice_en: "en_US-joe-medium.onnx".into(),
            espeak_voice_zh: "cmn".into(),
            tts_zh: ZhTtsEngine::Auto,
        }
    }
}

impl VoiceConfig {
    pub fn whisper_dir(&self, size: WhisperSize) -> PathBuf {
        self.models_dir.join(match size {
            WhisperSize::Base => "whisper-base",
            WhisperSize::TinyEn => "whisper-tiny.en",
        })
    }
    pub fn silero_model(&self) -> PathBuf {
        self.models_dir.join("silero_vad.onnx")
    }
    pub fn piper_model_en(&self) -> PathBuf {
        self.models_dir.join("piper").join(&self.piper_voice_en)
    }
    pub fn espeak_data_dir(&self) -> PathBuf {
        self.models_dir.join("espeak-ng-data")
    }
    pub fn zh_fastspeech_dir(&self) -> PathBuf {
        self.models_dir.join("zh-fastspeech2")
    }
    pub fn onnxruntime_lib(&self) -> PathBuf {
        self.models_dir.join("lib/onnxruntime/libonnxruntime.so")
    }
}

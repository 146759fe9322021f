//! Loads every real engine once per process, from the configuration, and times each load.

use crate::Config;
use anyhow::Context;
use dialog::llm::llama::LlamaCppModel;
use dialog::LanguageModel;
use retrieval::{BertEmbedder, Embedder};
use std::sync::Arc;
use std::time::Instant;
use voice::asr::whisper::WhisperAsr;
use voice::tts::piper::PiperTts;
use voice::tts::zh_fastspeech::load_mandarin;
use voice::vad::silero::SileroVad;
use voice::{Language, SpeechToText, TextToSpeech, VoiceActivity};

/// Makes a fresh VAD for one audio stream (VADs keep per-stream state).
pub type VadFactory =
    Arc<dyn Fn() -> Result<Box<dyn VoiceActivity>, voice::VoiceError> + Send + Sync>;

/// The loaded engines, shared by all calls.
pub struct Engines {
    pub new_vad: VadFactory,
    pub asr_en: Arc<dyn SpeechToText>,
    pub asr_zh: Arc<dyn SpeechToText>,
    pub tts_en: Arc<dyn TextToSpeech>,
    pub tts_zh: Arc<dyn TextToSpeech>,
    /// Loaded only where it is used (LLM phrasing of a qualified model, `qualify`).
    pub llm: Option<Arc<dyn LanguageModel>>,
    pub embedder: Arc<dyn Embedder>,
    /// (engine, milliseconds to load) in load order.
    pub load_ms: Vec<(&'static str, f64)>,
}

impl std::fmt::Debug for Engines {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engines")
            .field("load_ms", &self.load_ms)
            .finish()
    }
}

fn timed<T>(
    load_ms: &mut Vec<(&'static str, f64)>,
    name: &'static str,
    f: impl FnOnce() -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let t = Instant::now();
    let v = f().with_context(|| format!("loading the {name} engine"))?;
    load_ms.push((name, t.elapsed().as_secs_f64() * 1e3));
    Ok(v)
}

impl Engines {
    /// Loads Whisper (one checkpoint per configured language, shared when equal), Piper, the
    /// Mandarin voice, the embedder, and the LLM if `with_llm`. Blocking: call before serving,
    /// or in `spawn_blocking`.
    pub fn load(config: &Config, with_llm: bool) -> anyhow::Result<Self> {
        let v = &config.voice;
        let mut load_ms = Vec::new();
        let asr_en: Arc<dyn SpeechToText> = timed(&mut load_ms, "asr_en", || {
            Ok(Arc::new(WhisperAsr::from_config(v, v.asr_model_en)?))
        })?;
        let asr_zh: Arc<dyn SpeechToText> = if v.asr_model_zh == v.asr_model_en {
            asr_en.clone()
        } else {
            timed(&mut load_ms, "asr_zh", || {
                Ok(Arc::new(WhisperAsr::from_config(v, v.asr_model_zh)?))
            })?
        };
        let tts_en: Arc<dyn TextToSpeech> =
            timed(&mut load_ms, "tts_en", || Ok(Arc::new(PiperTts::load(v)?)))?;
        let tts_zh: Arc<dyn TextToSpeech> =
            timed(&mut load_ms, "tts_zh", || Ok(Arc::from(load_mandarin(v)?)))?;
        let llm = if with_llm {
            let llm: Arc<dyn LanguageModel> = timed(&mut load_ms, "llm", || {
                Ok(Arc::new(LlamaCppModel::load(&config.llm)?))
            })?;
            Some(llm)
        } else {
            None
        };
        let embedder: Arc<dyn Embedder> = timed(&mut load_ms, "embedder", || {
            Ok(Arc::new(BertEmbedder::load(
                &config.retrieval.embedder_dir,
            )?))
        })?;
        // Fail now, not on the first call, if the VAD cannot be built.
        let vad_config = v.clone();
        let new_vad: VadFactory = Arc::new(move || Ok(Box::new(SileroVad::new(&vad_config)?)));
        timed(&mut load_ms, "vad", || Ok(new_vad()?))?;
        Ok(Self {
            new_vad,
            asr_en,
            asr_zh,
            tts_en,
            tts_zh,
            llm,
            embedder,
            load_ms,
        })
    }

    /// Deterministic fakes (fast tests and benchmarks of the call path): an energy VAD, an ASR
    /// that hears `script` one utterance at a time, tone TTS, a 384-dimension fake embedder (the
    /// NLU model's size), no LLM.
    pub fn fake(script: &[&str]) -> Self {
        let asr: Arc<dyn SpeechToText> = Arc::new(voice::asr::FakeAsr {
            script: script.iter().map(|s| s.to_string()).collect(),
        });
        let new_vad: VadFactory = Arc::new(|| Ok(Box::new(voice::vad::EnergyVad::new(500.0, 300))));
        Self {
            new_vad,
            asr_en: asr.clone(),
            asr_zh: asr,
            tts_en: Arc::new(voice::tts::FakeTts),
            tts_zh: Arc::new(voice::tts::FakeTts),
            llm: None,
            embedder: Arc::new(retrieval::FakeEmbedder { dim: 384 }),
            load_ms: vec![("fake", 0.0)],
        }
    }

    pub fn asr(&self, language: Language) -> &Arc<dyn SpeechToText> {
        match language {
            Language::English => &self.asr_en,
            Language::Chinese => &self.asr_zh,
        }
    }

    pub fn tts(&self, language: Language) -> &Arc<dyn TextToSpeech> {
        match language {
            Language::English => &self.tts_en,
            Language::Chinese => &self.tts_zh,
        }
    }
}

//! Piper TTS (English) through piper-rs: espeak-ng turns each sentence into phonemes, the VITS
//! voice in ONNX turns them into audio, with onnxruntime loaded dynamically from the PyPI wheel.
//!
//! One [`PiperTts`] holds one loaded voice and is shared between calls (`Send + Sync`): an
//! onnxruntime session runs one inference at a time, so concurrent calls on the same voice take
//! turns sentence by sentence. Text is synthesized one sentence at a time, and each sentence's
//! frames go to the sink as soon as it is ready, so the first audio leaves after the first
//! sentence rather than the whole reply.
//!
//! Process-wide state, set once by the first [`PiperTts::load`]: the onnxruntime library
//! (ort loads exactly one per process) and espeak-ng's data folder (espeak-ng is initialised once,
//! reading `PIPER_ESPEAKNG_DATA_DIRECTORY`). A later load with other paths keeps the first ones
//! and logs a warning.

use super::{synthesize_by_sentence, Chunking, SynthesisStats, TextToSpeech};
use crate::audio::{f32_to_pcm, AudioChunk};
use crate::error::require_file;
use crate::{Language, VoiceConfig, VoiceError};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock, PoisonError};
use tokio_util::sync::CancellationToken;

const ENGINE: &str = "piper";
/// Environment variable through which espeak-rs finds the folder holding `espeak-ng-data/`.
const ESPEAK_DATA_ENV: &str = "PIPER_ESPEAKNG_DATA_DIRECTORY";

// espeak-rs-sys builds espeak-ng against the system's libsonic (Debian `libsonic-dev`) but does
// not tell cargo to link it.
#[link(name = "sonic")]
extern "C" {}

/// The folder espeak-ng was pointed at.
static ESPEAK_DATA: OnceLock<PathBuf> = OnceLock::new();
/// espeak-ng keeps global state (current voice, text pointer): one phonemization at a time in
/// the whole process, whichever voice asks.
static ESPEAK_LOCK: Mutex<()> = Mutex::new(());

/// A loaded Piper voice.
pub struct PiperTts {
    voice: Mutex<piper_rs::Piper>,
    /// espeak-ng voice the model was trained with (from the `.onnx.json`), e.g. `en-us`.
    espeak_voice: String,
    sample_rate: u32,
    /// VITS sampling noise (`noise_scale`, `noise_w`); `None` keeps the voice's own defaults.
    sampling_noise: Option<(f32, f32)>,
}

impl std::fmt::Debug for PiperTts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PiperTts")
            .field("espeak_voice", &self.espeak_voice)
            .field("sample_rate", &self.sample_rate)
            .finish_non_exhaustive()
    }
}

impl PiperTts {
    /// Loads the English voice named in `config` (`models/piper/<voice>.onnx` and its
    /// `.onnx.json`), onnxruntime from [`VoiceConfig::onnxruntime_lib`] and espeak-ng's data
    /// from [`VoiceConfig::espeak_data_dir`].
    pub fn load(config: &VoiceConfig) -> Result<Self, VoiceError> {
        let model = config.piper_model_en();
        let mut json = model.clone().into_os_string();
        json.push(".json");
        let json = PathBuf::from(json);
        let espeak_data = config.espeak_data_dir();
        let onnxruntime = config.onnxruntime_lib();
        // Every file is checked before the process-wide set-up, so a bad configuration leaves
        // nothing half-initialised behind.
        for file in [&model, &json, &espeak_data.join("phontab"), &onnxruntime] {
            require_file(file)?;
        }
        init_espeak_data(&espeak_data)?;
        super::onnx::init_onnxruntime(&onnxruntime)?;

        let model_config: piper_rs::ModelConfig = std::fs::File::open(&json)
            .map_err(|e| VoiceError::ModelFormat {
                path: json.clone(),
                reason: e.to_string(),
            })
            .and_then(|file| {
                serde_json::from_reader(std::io::BufReader::new(file)).map_err(|e| {
                    VoiceError::ModelFormat {
                        path: json.clone(),
                        reason: e.to_string(),
                    }
                })
            })?;
        let sample_rate = model_config.audio.sample_rate;
        if sample_rate == 0 {
            return Err(VoiceError::ModelFormat {
                path: json,
                reason: "audio.sample_rate is 0".into(),
            });
        }
        let espeak_voice = model_config.espeak.voice.clone();

        let session = super::onnx::open_session(&model, None)?;
        tracing::info!(model = %model.display(), sample_rate, %espeak_voice, "loaded Piper voice");
        Ok(Self {
            voice: Mutex::new(piper_rs::Piper::from_session(session, model_config)),
            espeak_voice,
            sample_rate,
            sampling_noise: None,
        })
    }

    /// Sets VITS's sampling noise (`noise_scale` for the audio, `noise_w` for phoneme durations)
    /// instead of the voice's defaults from its `.onnx.json`. The model draws random numbers on
    /// every run, so only zero for both makes synthesis repeatable (the test-corpus generator
    /// needs that); the speech is then a little flatter.
    pub fn with_sampling_noise(mut self, noise_scale: f32, noise_w: f32) -> Self {
        self.sampling_noise = Some((noise_scale, noise_w));
        self
    }

    /// One sentence to 16-bit PCM at [`TextToSpeech::sample_rate`]; empty when the sentence has
    /// nothing to pronounce (only punctuation, say).
    fn synthesize_sentence(&self, sentence: &str) -> Result<Vec<i16>, VoiceError> {
        let phonemes = {
            let _espeak = ESPEAK_LOCK.lock().unwrap_or_else(PoisonError::into_inner);
            espeak_rs::text_to_phonemes(sentence, &self.espeak_voice, None)
                .map_err(|e| VoiceError::engine(ENGINE, e))?
                .join(" ")
        };
        if !phonemes.chars().any(char::is_alphabetic) {
            return Ok(Vec::new());
        }
        let (samples, _) = self
            .voice
            .lock()
            // A panic inside an earlier inference leaves no half-updated state behind.
            .unwrap_or_else(PoisonError::into_inner)
            .create(
                &phonemes,
                true,
                None,
                None,
                self.sampling_noise.map(|(scale, _)| scale),
                self.sampling_noise.map(|(_, w)| w),
            )
            .map_err(|e| VoiceError::engine(ENGINE, e))?;
        Ok(f32_to_pcm(&samples))
    }
}

impl TextToSpeech for PiperTts {
    fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    fn languages(&self) -> &[Language] {
        &[Language::English]
    }

    fn synthesize(
        &self,
        text: &str,
        language: Language,
        cancel: &CancellationToken,
        sink: &mut dyn FnMut(AudioChunk) -> ControlFlow<()>,
    ) -> Result<SynthesisStats, VoiceError> {
        if language != Language::English {
            return Err(VoiceError::InvalidInput(format!(
                "the Piper voice speaks English only, not {:?}: use the espeak-ng engine for it",
                language.code()
            )));
        }
        synthesize_by_sentence(
            text,
            Chunking::FirstClause,
            self.sample_rate,
            cancel,
            sink,
            |sentence| self.synthesize_sentence(sentence),
        )
    }
}

/// Points espeak-ng at `data_dir` (a folder named `espeak-ng-data`) before its one-time
/// initialisation.
fn init_espeak_data(data_dir: &Path) -> Result<(), VoiceError> {
    require_file(&data_dir.join("phontab"))?;
    let data_dir = data_dir.canonicalize()?;
    let parent = data_dir
        .parent()
        .filter(|_| {
            data_dir
                .file_name()
                .is_some_and(|name| name == "espeak-ng-data")
        })
        .ok_or_else(|| {
            VoiceError::InvalidInput(format!(
                "espeak-ng data folder {} must be named espeak-ng-data",
                data_dir.display()
            ))
        })?
        .to_path_buf();
    let first = ESPEAK_DATA.get_or_init(|| {
        // Set once, before espeak-ng first reads it (espeak-rs initialises on first use, and
        // only Piper uses it in this process).
        std::env::set_var(ESPEAK_DATA_ENV, &parent);
        data_dir.clone()
    });
    if *first != data_dir {
        tracing::warn!(
            loaded = %first.display(),
            requested = %data_dir.display(),
            "espeak-ng already uses another data folder; keeping it"
        );
    }
    Ok(())
}

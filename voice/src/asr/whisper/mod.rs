//! Whisper on candle: loads the CTranslate2 `model.bin` shipped in registry packages, computes
//! the log-mel front end and decodes greedily with the language forced per call.
//!
//! The encoder sees only the utterance's own frames (plus a little padding), not 30 s of
//! silence: candle's encoder narrows its positional embedding to the input length, and that is
//! where short utterances win their latency.

mod ct2;
mod decode;
mod mel;
mod tokens;

use crate::asr::{AsrOptions, AsrStream, SpeechToText, Transcript};
use crate::config::{VoiceConfig, WhisperSize};
use crate::{Language, VoiceError};
use candle_core::{Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::whisper::{model::Whisper, Config};
use decode::{DecodeRequest, Decoded};
use mel::{LogMel, HOP_LENGTH, SAMPLE_RATE};
use std::path::Path;
use std::sync::{Arc, Mutex};
use tokens::WhisperTokenizer;

/// Longest window Whisper takes at once: 30 s.
const WINDOW_SAMPLES: usize = 30 * SAMPLE_RATE;
/// Shorter audio is not decoded at all (reported as no speech).
const MIN_SAMPLES: usize = SAMPLE_RATE / 10;
/// Whisper's thresholds: a window whose no-speech probability is above this *and* whose average
/// log-probability is below [`LOGPROB_THRESHOLD`] is treated as silence.
const NO_SPEECH_THRESHOLD: f32 = 0.6;
const LOGPROB_THRESHOLD: f32 = -1.0;
/// Default spacing of partial results during `push`.
const DEFAULT_PARTIAL_INTERVAL_MS: u32 = 1000;
/// Mel frames (10 ms each) of Whisper's zero padding appended after the audio before the
/// encoder. 0.3 s gave the lowest WER on tests/data for both checkpoints (swept 0–1 s and the
/// full 30 s); the differences were one or two words, so this is a mild preference.
const DEFAULT_TAIL_PAD_FRAMES: usize = 30;

/// The Whisper recognizer: one loaded model shared by every stream it starts.
#[derive(Clone)]
pub struct WhisperAsr {
    shared: Arc<Shared>,
    partial_interval_samples: usize,
}

impl std::fmt::Debug for WhisperAsr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WhisperAsr")
            .field("dims", &self.shared.dims)
            .field("partial_interval_samples", &self.partial_interval_samples)
            .finish_non_exhaustive()
    }
}

struct Shared {
    /// Model and front end behind one lock: candle's model keeps a cache, so one decode at a time.
    engine: Mutex<Engine>,
    tokenizer: WhisperTokenizer,
    dims: ct2::WhisperDims,
    /// Threads for this model's matrix products (`asr_threads`).
    pool: rayon::ThreadPool,
    tail_pad_frames: usize,
}

struct Engine {
    model: Whisper,
    mel: LogMel,
}

impl WhisperAsr {
    /// Loads `model.bin`, `tokenizer.json` and `config.json` from `dir` (a folder laid out by
    /// scripts/setup.sh) and runs inference on `threads` threads.
    pub fn load(dir: &Path, threads: usize) -> Result<Self, VoiceError> {
        let started = std::time::Instant::now();
        let device = Device::Cpu;
        let file = ct2::Ct2Model::read(&dir.join("model.bin"))?;
        tracing::trace!(names = ?file.names(), "CTranslate2 variables");
        let dims = ct2::WhisperDims::read(&file)?;
        let tensors = ct2::hf_tensors(&file, &dims, &device)?;
        drop(file);
        let tokenizer = WhisperTokenizer::load(dir, dims.n_vocab, dims.is_multilingual())?;
        let config = Config {
            num_mel_bins: dims.n_mels,
            max_source_positions: dims.n_audio_ctx,
            d_model: dims.n_state,
            encoder_attention_heads: dims.n_audio_head,
            encoder_layers: dims.n_audio_layer,
            vocab_size: dims.n_vocab,
            max_target_positions: dims.n_text_ctx,
            decoder_attention_heads: dims.n_text_head,
            decoder_layers: dims.n_text_layer,
            suppress_tokens: tokenizer.suppress.clone(),
        };
        let vb = VarBuilder::from_tensors(tensors, candle_core::DType::F32, &device);
        let model = Whisper::load(&vb, config).map_err(|e| VoiceError::ModelFormat {
            path: dir.join("model.bin"),
            reason: e.to_string(),
        })?;
        let mel = LogMel::new(dims.n_mels, &device)?;
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads.max(1))
            .thread_name(|i| format!("whisper-{i}"))
            .build()
            .map_err(|e| VoiceError::engine("whisper", format!("thread pool: {e}")))?;
        tracing::info!(dir = %dir.display(), ?dims, threads, elapsed_ms = started.elapsed().as_millis() as u64, "Whisper loaded");
        Ok(Self {
            shared: Arc::new(Shared {
                engine: Mutex::new(Engine { model, mel }),
                tokenizer,
                dims,
                pool,
                tail_pad_frames: DEFAULT_TAIL_PAD_FRAMES,
            }),
            partial_interval_samples: DEFAULT_PARTIAL_INTERVAL_MS as usize * SAMPLE_RATE / 1000,
        })
    }

    /// Loads the checkpoint `size` from the configured models folder with `asr_threads`.
    pub fn from_config(config: &VoiceConfig, size: WhisperSize) -> Result<Self, VoiceError> {
        Self::load(&config.whisper_dir(size), config.asr_threads)
    }

    /// How much new audio a stream waits for before it re-decodes and reports a partial.
    pub fn with_partial_interval_ms(mut self, ms: u32) -> Self {
        self.partial_interval_samples = (ms as usize * SAMPLE_RATE / 1000).max(1);
        self
    }

    /// Whether the checkpoint can transcribe languages other than English.
    pub fn is_multilingual(&self) -> bool {
        self.shared.dims.is_multilingual()
    }

    /// Transcribes one utterance of 16 kHz mono PCM in one go (windows of 30 s at most).
    pub fn transcribe(&self, pcm: &[i16], options: &AsrOptions) -> Result<Transcript, VoiceError> {
        let windows = pcm
            .chunks(WINDOW_SAMPLES)
            .map(|w| self.shared.decode_window(w, options))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(self.shared.merge(&windows, options.language, true))
    }
}

/// One decoded window with its text.
#[derive(Debug, Clone)]
struct WindowResult {
    text: String,
    decoded: Decoded,
}

impl Shared {
    fn decode_window(&self, pcm: &[i16], options: &AsrOptions) -> Result<WindowResult, VoiceError> {
        let sot_sequence = self.tokenizer.sot_sequence(options.language)?;
        if pcm.len() < MIN_SAMPLES {
            let decoded = Decoded {
                tokens: Vec::new(),
                sum_logprob: 0.0,
                no_speech_prob: 1.0,
                looped: false,
            };
            return Ok(WindowResult {
                text: String::new(),
                decoded,
            });
        }
        let max_prompt = self.dims.n_text_ctx / 2 - 1;
        let mut prefix = self
            .tokenizer
            .prompt_prefix(options.initial_prompt.as_deref(), max_prompt)?;
        let sot_index = prefix.len();
        prefix.extend_from_slice(&sot_sequence);
        let max_tokens = (self.dims.n_text_ctx / 2).min(self.dims.n_text_ctx - prefix.len());

        let samples: Vec<f32> = pcm.iter().map(|&s| f32::from(s) / 32768.0).collect();
        // Conv2 has stride 2: an even frame count maps exactly onto encoder positions.
        let frames = (samples.len() / HOP_LENGTH + self.tail_pad_frames)
            .next_multiple_of(2)
            .min(2 * self.dims.n_audio_ctx);

        let mut engine = self
            .engine
            .lock()
            .map_err(|_| VoiceError::engine("whisper", "model lock poisoned by a panic"))?;
        let engine = &mut *engine;
        let started = std::time::Instant::now();
        let decoded = self.pool.install(|| -> Result<Decoded, VoiceError> {
            let mel: Tensor = engine.mel.compute(&samples, frames)?;
            let features = engine.model.encoder.forward(&mel, true)?;
            let req = DecodeRequest {
                prefix: &prefix,
                sot_index,
                special: &self.tokenizer.special,
                suppress: &self.tokenizer.suppress,
                suppress_begin: &self.tokenizer.suppress_begin,
                max_tokens,
            };
            decode::greedy(&mut engine.model, &features, &req)
        })?;
        let text = self.tokenizer.decode(&decoded.tokens)?;
        tracing::debug!(
            audio_ms = pcm.len() * 1000 / SAMPLE_RATE,
            frames,
            tokens = decoded.tokens.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            no_speech_prob = decoded.no_speech_prob,
            avg_logprob = decoded.avg_logprob(),
            looped = decoded.looped,
            "whisper window decoded"
        );
        Ok(WindowResult { text, decoded })
    }

    /// Joins windows into one transcript. A window Whisper itself would call silent (high
    /// no-speech probability and low confidence) contributes no text.
    fn merge(&self, windows: &[WindowResult], language: Language, is_final: bool) -> Transcript {
        let separator = if language == Language::Chinese {
            ""
        } else {
            " "
        };
        let mut texts = Vec::new();
        let (mut sum_logprob, mut count) = (0f32, 0usize);
        let mut no_speech_prob = 1f32;
        for w in windows {
            let d = &w.decoded;
            let silent =
                d.no_speech_prob > NO_SPEECH_THRESHOLD && d.avg_logprob() < LOGPROB_THRESHOLD;
            if !silent && !w.text.is_empty() {
                texts.push(w.text.as_str());
            }
            sum_logprob += d.sum_logprob;
            count += d.tokens.len() + 1;
            no_speech_prob = no_speech_prob.min(d.no_speech_prob);
        }
        let avg_logprob = if count == 0 {
            0.0
        } else {
            sum_logprob / count as f32
        };
        Transcript {
            text: texts.join(separator),
            is_final,
            avg_logprob,
            no_speech_prob,
        }
    }
}

impl SpeechToText for WhisperAsr {
    fn start(&self, options: &AsrOptions) -> Result<Box<dyn AsrStream>, VoiceError> {
        // Fail now, not at the first partial, if the model cannot do this language.
        self.shared.tokenizer.sot_sequence(options.language)?;
        Ok(Box::new(WhisperStream {
            shared: Arc::clone(&self.shared),
            options: options.clone(),
            partial_interval_samples: self.partial_interval_samples,
            buffer: Vec::new(),
            decoded_len: 0,
            done_windows: Vec::new(),
        }))
    }
}

/// One utterance being recognized: buffers PCM, re-decodes the whole buffer for partials.
struct WhisperStream {
    shared: Arc<Shared>,
    options: AsrOptions,
    partial_interval_samples: usize,
    /// Audio of the current (open) window.
    buffer: Vec<i16>,
    /// `buffer.len()` at the last partial decode.
    decoded_len: usize,
    /// Full 30 s windows already decoded in this utterance.
    done_windows: Vec<WindowResult>,
}

impl WhisperStream {
    fn transcript(&mut self, is_final: bool) -> Result<Transcript, VoiceError> {
        let mut windows = self.done_windows.clone();
        if !self.buffer.is_empty() || windows.is_empty() {
            windows.push(self.shared.decode_window(&self.buffer, &self.options)?);
        }
        self.decoded_len = self.buffer.len();
        Ok(self.shared.merge(&windows, self.options.language, is_final))
    }
}

impl AsrStream for WhisperStream {
    fn push(&mut self, pcm: &[i16]) -> Result<Option<Transcript>, VoiceError> {
        let mut rest = pcm;
        while !rest.is_empty() {
            let room = WINDOW_SAMPLES - self.buffer.len();
            let (now, later) = rest.split_at(room.min(rest.len()));
            self.buffer.extend_from_slice(now);
            rest = later;
            if self.buffer.len() == WINDOW_SAMPLES {
                let window = self.shared.decode_window(&self.buffer, &self.options)?;
                self.done_windows.push(window);
                self.buffer.clear();
                self.decoded_len = 0;
            }
        }
        if self.buffer.len() >= self.decoded_len + self.partial_interval_samples {
            return self.transcript(false).map(Some);
        }
        Ok(None)
    }

    fn finish(&mut self) -> Result<Transcript, VoiceError> {
        let result = self.transcript(true);
        self.buffer.clear();
        self.decoded_len = 0;
        self.done_windows.clear();
        result
    }
}

//! Whisper on candle: loads the CTranslate2 `model.bin` shipped in registry packages, computes
//! the log-mel front end and decodes greedily with the language forced per call, on our own
//! cached decoder ([`decoder`]); streams report LocalAgreement-2 partials.
//!
//! The encoder sees only the utterance's own frames (plus a little padding), not 30 s of
//! silence: candle's encoder narrows its positional embedding to the input length, and that is
//! where short utterances win their latency.

mod ct2;
mod decode;
mod decoder;
mod mel;
mod tokens;

use crate::asr::{AsrOptions, AsrStream, SpeechToText, Transcript};
use crate::config::{VoiceConfig, WhisperSize};
use crate::{Language, VoiceError};
use candle_core::{Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::whisper::{model::Whisper, Config};
use decode::{DecodeRequest, Decoded};
use decoder::TextDecoder;
use mel::{LogMel, HOP_LENGTH, SAMPLE_RATE};
use std::path::Path;
use std::sync::{Arc, Mutex, TryLockError};
use tokens::WhisperTokenizer;

/// Longest window Whisper takes at once: 30 s.
const WINDOW_SAMPLES: usize = 30 * SAMPLE_RATE;
/// Shorter audio is not decoded at all (reported as no speech).
const MIN_SAMPLES: usize = SAMPLE_RATE / 10;
/// Whisper's thresholds: a window whose no-speech probability is above this *and* whose average
/// log-probability is below [`LOGPROB_THRESHOLD`] is treated as silence.
const NO_SPEECH_THRESHOLD: f32 = 0.6;
const LOGPROB_THRESHOLD: f32 = -1.0;
/// A window whose no-speech probability is above this is silence whatever its confidence
/// (silence decodes to a confident "you" with no-speech 0.91).
const NO_SPEECH_ALONE_THRESHOLD: f32 = 0.8;
/// A window whose no-speech probability is above this *and* whose average log-probability is
/// below [`VERY_LOW_LOGPROB`] is silence too: mains hum over a phone line decoded to "and"
/// (no-speech 0.59, log-probability -2.88). On the ASR corpus every speech clip this rule
/// would drop was already wrong (espeak-ng voices in noise).
const NO_SPEECH_WEAK_THRESHOLD: f32 = 0.5;
const VERY_LOW_LOGPROB: f32 = -2.0;
/// Default spacing of partial results during `push`.
pub(crate) const DEFAULT_PARTIAL_INTERVAL_MS: u32 = 500;
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
    /// candle's model; only its encoder runs (the decoder is [`TextDecoder`], same weights).
    model: Whisper,
    decoder: TextDecoder,
    mel: LogMel,
    /// Scratch for the PCM as floats, reused across decodes.
    samples: Vec<f32>,
}

/// Where the time of one decode went (all windows of it summed).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct DecodeStats {
    /// Log-mel front end.
    pub mel_ms: f64,
    pub encoder_ms: f64,
    /// Decoder passes, output projection and token choice.
    pub decoder_ms: f64,
    /// Text tokens produced.
    pub tokens: usize,
    /// Decoder forward passes.
    pub decoder_passes: usize,
    /// Tokens taken from the previous hypothesis without a pass of their own.
    pub draft_accepted: usize,
    /// Encoder input frames (10 ms each).
    pub frames: usize,
}

impl DecodeStats {
    fn add(&mut self, o: &DecodeStats) {
        self.mel_ms += o.mel_ms;
        self.encoder_ms += o.encoder_ms;
        self.decoder_ms += o.decoder_ms;
        self.tokens += o.tokens;
        self.decoder_passes += o.decoder_passes;
        self.draft_accepted += o.draft_accepted;
        self.frames += o.frames;
    }
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
        let decoder = TextDecoder::new(&tensors, dims.n_text_layer, dims.n_text_head)?;
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
                engine: Mutex::new(Engine {
                    model,
                    decoder,
                    mel,
                    samples: Vec::new(),
                }),
                tokenizer,
                dims,
                pool,
                tail_pad_frames: DEFAULT_TAIL_PAD_FRAMES,
            }),
            partial_interval_samples: DEFAULT_PARTIAL_INTERVAL_MS as usize * SAMPLE_RATE / 1000,
        })
    }

    /// Loads the checkpoint `size` from the configured models folder with `asr_threads` and
    /// `asr_partial_interval_ms`.
    pub fn from_config(config: &VoiceConfig, size: WhisperSize) -> Result<Self, VoiceError> {
        Ok(Self::load(&config.whisper_dir(size), config.asr_threads)?
            .with_partial_interval_ms(config.asr_partial_interval_ms))
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
        self.transcribe_with_stats(pcm, options).map(|(t, _)| t)
    }

    /// [`Self::transcribe`], also saying where the time went.
    pub fn transcribe_with_stats(
        &self,
        pcm: &[i16],
        options: &AsrOptions,
    ) -> Result<(Transcript, DecodeStats), VoiceError> {
        self.transcribe_windows(pcm, options, Decoding::Cached { draft: &[] })
    }

    /// [`Self::transcribe_with_stats`] with candle-transformers' own decoder, which re-runs every
    /// token at each step: the reference the cached decoder must agree with, and the baseline
    /// `asr_bench` compares against.
    pub fn transcribe_reference(
        &self,
        pcm: &[i16],
        options: &AsrOptions,
    ) -> Result<(Transcript, DecodeStats), VoiceError> {
        self.transcribe_windows(pcm, options, Decoding::Reference)
    }

    /// Decodes `pcm` in windows of 30 s at most and joins their text.
    fn transcribe_windows(
        &self,
        pcm: &[i16],
        options: &AsrOptions,
        decoding: Decoding<'_>,
    ) -> Result<(Transcript, DecodeStats), VoiceError> {
        let mut stats = DecodeStats::default();
        let windows = pcm
            .chunks(WINDOW_SAMPLES)
            .map(|w| {
                self.shared
                    .decode_window(w, options, decoding, Turn::Wait, &mut stats)
                    .and_then(waited)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok((self.shared.merge(&windows, options.language, true), stats))
    }

    /// Opens a stream; [`SpeechToText::start`] boxes the same.
    pub fn stream(&self, options: &AsrOptions) -> Result<WhisperStream, VoiceError> {
        // Fail now, not at the first partial, if the model cannot do this language.
        self.shared.tokenizer.sot_sequence(options.language)?;
        Ok(WhisperStream {
            shared: Arc::clone(&self.shared),
            options: options.clone(),
            partial_interval_samples: self.partial_interval_samples,
            buffer: Vec::new(),
            decoded_len: 0,
            done_windows: Vec::new(),
            draft: Vec::new(),
            last_units: Vec::new(),
            stable: Vec::new(),
            last_stats: DecodeStats::default(),
        })
    }
}

/// How a window's tokens are found; both give the same greedy tokens.
#[derive(Debug, Clone, Copy)]
enum Decoding<'a> {
    /// [`TextDecoder`] with caches. `draft` is the previous hypothesis of this window's text
    /// tokens (or empty): the result is the same with or without it, only faster.
    Cached { draft: &'a [u32] },
    /// candle's decoder re-running every token each step (the slow reference).
    Reference,
}

/// What a decode does when another stream is using the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Turn {
    /// Waits its turn (finals and one-shot transcriptions).
    Wait,
    /// Gives up at once (partials: the stream tries again on its next push).
    Skip,
}

/// The result of a decode that waited its turn, which always runs.
fn waited<T>(result: Option<T>) -> Result<T, VoiceError> {
    result.ok_or_else(|| {
        VoiceError::engine("whisper", "a decode that waits for the model was skipped")
    })
}

/// One decoded window with its text.
#[derive(Debug, Clone)]
struct WindowResult {
    text: String,
    decoded: Decoded,
}

impl Shared {
    /// Decodes one window of at most 30 s; `None` when `turn` is [`Turn::Skip`] and another
    /// stream holds the model.
    fn decode_window(
        &self,
        pcm: &[i16],
        options: &AsrOptions,
        decoding: Decoding<'_>,
        turn: Turn,
        stats: &mut DecodeStats,
    ) -> Result<Option<WindowResult>, VoiceError> {
        let sot_sequence = self.tokenizer.sot_sequence(options.language)?;
        if pcm.len() < MIN_SAMPLES {
            let decoded = Decoded {
                tokens: Vec::new(),
                sum_logprob: 0.0,
                no_speech_prob: 1.0,
                looped: false,
                passes: 0,
                draft_accepted: 0,
            };
            return Ok(Some(WindowResult {
                text: String::new(),
                decoded,
            }));
        }
        let max_prompt = self.dims.n_text_ctx / 2 - 1;
        let mut prefix = self
            .tokenizer
            .prompt_prefix(options.initial_prompt.as_deref(), max_prompt)?;
        let sot_index = prefix.len();
        prefix.extend_from_slice(&sot_sequence);
        let max_tokens = (self.dims.n_text_ctx / 2).min(self.dims.n_text_ctx - prefix.len());

        // Conv2 has stride 2: an even frame count maps exactly onto encoder positions.
        let frames = (pcm.len() / HOP_LENGTH + self.tail_pad_frames)
            .next_multiple_of(2)
            .min(2 * self.dims.n_audio_ctx);

        let mut engine = match (self.engine.try_lock(), turn) {
            (Ok(engine), _) => engine,
            (Err(TryLockError::WouldBlock), Turn::Skip) => return Ok(None),
            (Err(TryLockError::WouldBlock), Turn::Wait) => self.engine.lock().map_err(poisoned)?,
            (Err(TryLockError::Poisoned(_)), _) => return Err(poisoned(())),
        };
        let engine = &mut *engine;
        let mut samples = std::mem::take(&mut engine.samples);
        samples.clear();
        samples.extend(pcm.iter().map(|&s| f32::from(s) / 32768.0));
        let mut window_stats = DecodeStats {
            frames,
            ..DecodeStats::default()
        };
        let started = std::time::Instant::now();
        let decoded = self.pool.install(|| -> Result<Decoded, VoiceError> {
            let t0 = std::time::Instant::now();
            let mel: Tensor = engine.mel.compute(&samples, frames)?;
            let t1 = std::time::Instant::now();
            let features = engine.model.encoder.forward(&mel, true)?;
            let t2 = std::time::Instant::now();
            let req = DecodeRequest {
                prefix: &prefix,
                sot_index,
                special: &self.tokenizer.special,
                suppress: &self.tokenizer.suppress,
                suppress_begin: &self.tokenizer.suppress_begin,
                max_tokens,
            };
            let decoded = match decoding {
                Decoding::Cached { draft } => {
                    decode::greedy(&engine.decoder, &features, &req, draft)?
                }
                Decoding::Reference => {
                    decode::greedy_reference(&mut engine.model, &features, &req)?
                }
            };
            window_stats.mel_ms = ms(t1 - t0);
            window_stats.encoder_ms = ms(t2 - t1);
            window_stats.decoder_ms = ms(t2.elapsed());
            Ok(decoded)
        });
        engine.samples = samples;
        let decoded = decoded?;
        window_stats.tokens = decoded.tokens.len();
        window_stats.decoder_passes = decoded.passes;
        window_stats.draft_accepted = decoded.draft_accepted;
        stats.add(&window_stats);
        let text = self.tokenizer.decode(&decoded.tokens)?;
        tracing::debug!(
            audio_ms = pcm.len() * 1000 / SAMPLE_RATE,
            frames,
            tokens = decoded.tokens.len(),
            passes = decoded.passes,
            draft_accepted = decoded.draft_accepted,
            mel_ms = window_stats.mel_ms,
            encoder_ms = window_stats.encoder_ms,
            decoder_ms = window_stats.decoder_ms,
            elapsed_ms = started.elapsed().as_millis() as u64,
            no_speech_prob = decoded.no_speech_prob,
            avg_logprob = decoded.avg_logprob(),
            looped = decoded.looped,
            "whisper window decoded"
        );
        Ok(Some(WindowResult { text, decoded }))
    }

    /// Joins windows into one transcript. A window Whisper itself would call silent (high
    /// no-speech probability and low confidence), or whose no-speech probability is very high,
    /// contributes no text.
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
            let silent = d.no_speech_prob > NO_SPEECH_ALONE_THRESHOLD
                || (d.no_speech_prob > NO_SPEECH_THRESHOLD && d.avg_logprob() < LOGPROB_THRESHOLD)
                || (d.no_speech_prob > NO_SPEECH_WEAK_THRESHOLD
                    && d.avg_logprob() < VERY_LOW_LOGPROB);
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
        let text = texts.join(separator);
        Transcript {
            text: if language == Language::Chinese {
                crate::asr::to_simplified(&text)
            } else {
                text
            },
            is_final,
            avg_logprob,
            no_speech_prob,
        }
    }
}

impl SpeechToText for WhisperAsr {
    fn start(&self, options: &AsrOptions) -> Result<Box<dyn AsrStream>, VoiceError> {
        Ok(Box::new(self.stream(options)?))
    }
}

/// One utterance being recognized. Every partial interval it re-decodes the open window (the
/// previous hypothesis as draft) and reports the stable prefix: the longest common word prefix of
/// the last two hypotheses (LocalAgreement-2). A partial is never shorter than the one before;
/// a longer agreement may still revise its words (the final is decoded afresh).
///
/// Streams of many calls share one model, which decodes one window at a time. When another
/// stream holds it, a partial is skipped (the next push tries again), so a busy model costs
/// partials, never audio or VAD events; a final waits its turn.
pub struct WhisperStream {
    shared: Arc<Shared>,
    options: AsrOptions,
    partial_interval_samples: usize,
    /// Audio of the current (open) window.
    buffer: Vec<i16>,
    /// `buffer.len()` at the last partial decode.
    decoded_len: usize,
    /// Full 30 s windows already decoded in this utterance.
    done_windows: Vec<WindowResult>,
    /// Text tokens of the open window's last decode: the next decode's draft.
    draft: Vec<u32>,
    /// Words (characters for Chinese) of the last hypothesis.
    last_units: Vec<String>,
    /// The stable prefix reported so far.
    stable: Vec<String>,
    last_stats: DecodeStats,
}

impl std::fmt::Debug for WhisperStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WhisperStream")
            .field("buffered", &self.buffer.len())
            .field("done_windows", &self.done_windows.len())
            .field("stable", &self.stable)
            .finish_non_exhaustive()
    }
}

impl WhisperStream {
    /// Where the time of the last decode (partial or final) went.
    pub fn last_stats(&self) -> DecodeStats {
        self.last_stats
    }

    fn cached(&self) -> Decoding<'_> {
        Decoding::Cached { draft: &self.draft }
    }

    /// Decodes everything pushed so far (finished windows are reused). `None` when `turn` is
    /// [`Turn::Skip`] and the model was busy.
    fn hypothesis(&mut self, turn: Turn) -> Result<Option<Transcript>, VoiceError> {
        let mut stats = DecodeStats::default();
        let mut windows = self.done_windows.clone();
        if !self.buffer.is_empty() || windows.is_empty() {
            let Some(w) = self.shared.decode_window(
                &self.buffer,
                &self.options,
                self.cached(),
                turn,
                &mut stats,
            )?
            else {
                return Ok(None);
            };
            self.draft.clone_from(&w.decoded.tokens);
            windows.push(w);
        }
        self.decoded_len = self.buffer.len();
        self.last_stats = stats;
        let is_final = turn == Turn::Wait;
        Ok(Some(self.shared.merge(
            &windows,
            self.options.language,
            is_final,
        )))
    }

    /// The stable prefix of a new hypothesis, or `None` when another stream holds the model: a
    /// partial never waits (it would hold up this stream's audio, and the VAD's barge-in with
    /// it); the next push tries again.
    fn partial(&mut self) -> Result<Option<Transcript>, VoiceError> {
        let Some(mut t) = self.hypothesis(Turn::Skip)? else {
            return Ok(None);
        };
        let units = units(&t.text, self.options.language);
        let agreed = common_prefix(&self.last_units, &units);
        if agreed > self.stable.len() {
            self.stable = units[..agreed].to_vec();
        }
        self.last_units = units;
        t.text = join_units(&self.stable, self.options.language);
        Ok(Some(t))
    }
}

/// Words, or characters for Chinese (written without spaces).
fn units(text: &str, language: Language) -> Vec<String> {
    if language == Language::Chinese {
        text.chars()
            .filter(|c| !c.is_whitespace())
            .map(String::from)
            .collect()
    } else {
        text.split_whitespace().map(str::to_string).collect()
    }
}

fn join_units(units: &[String], language: Language) -> String {
    units.join(if language == Language::Chinese {
        ""
    } else {
        " "
    })
}

/// Length of the longest common prefix.
fn common_prefix(a: &[String], b: &[String]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

fn poisoned<T>(_: T) -> VoiceError {
    VoiceError::engine("whisper", "model lock poisoned by a panic")
}

fn ms(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1000.0
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
                let mut stats = DecodeStats::default();
                let window = self
                    .shared
                    .decode_window(
                        &self.buffer,
                        &self.options,
                        self.cached(),
                        Turn::Wait,
                        &mut stats,
                    )
                    .and_then(waited)?;
                self.last_stats = stats;
                self.done_windows.push(window);
                self.buffer.clear();
                self.draft.clear();
                self.decoded_len = 0;
            }
        }
        if self.buffer.len() >= self.decoded_len + self.partial_interval_samples {
            return self.partial();
        }
        Ok(None)
    }

    fn finish(&mut self) -> Result<Transcript, VoiceError> {
        let result = self.hypothesis(Turn::Wait).and_then(waited);
        self.buffer.clear();
        self.decoded_len = 0;
        self.done_windows.clear();
        self.draft.clear();
        self.last_units.clear();
        self.stable.clear();
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(s: &str) -> Vec<String> {
        units(s, Language::English)
    }

    #[test]
    fn local_agreement_takes_the_common_word_prefix() {
        assert_eq!(
            common_prefix(&w("please call me"), &w("please call me back")),
            3
        );
        assert_eq!(common_prefix(&w("please cal"), &w("please call me")), 1);
        assert_eq!(common_prefix(&[], &w("please")), 0);
    }

    #[test]
    fn chinese_agrees_per_character() {
        let a = units("我不感兴趣", Language::Chinese);
        let b = units("我不感谢", Language::Chinese);
        assert_eq!(common_prefix(&a, &b), 3);
        assert_eq!(join_units(&a[..3], Language::Chinese), "我不感");
    }
}

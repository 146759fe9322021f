//! Whisper on candle: loads the CTranslate2 `model.bin` shipped in registry packages, computes
//! the log-mel front end and decodes greedily with the language forced per call, on our own
//! cached decoder ([`decoder`]); streams report LocalAgreement-2 partials. Decoding runs on a
//! small pool of worker threads (`asr_workers`) sharing one copy of the weights, fed by a
//! bounded queue in which finals go first ([`workers`]); a stream keeps its own state and never
//! decodes on its caller's thread.
//!
//! The encoder sees only the utterance's own frames (plus a little padding), not 30 s of
//! silence: candle's encoder narrows its positional embedding to the input length, and that is
//! where short utterances win their latency.

mod ct2;
mod decode;
mod decoder;
mod mel;
mod tokens;
mod workers;

use crate::asr::{AsrOptions, AsrStream, SpeechToText, Transcript};
use crate::config::{VoiceConfig, WhisperSize};
use crate::{Language, VoiceError};
use candle_core::{Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::whisper::{model::Whisper, Config};
use decode::{DecodeRequest, Decoded, COMPRESSION_RATIO_THRESHOLD, FALLBACK_LOGPROB_THRESHOLD};
pub use decoder::DecoderWeights;
use decoder::TextDecoder;
use mel::{LogMel, HOP_LENGTH, SAMPLE_RATE};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokens::WhisperTokenizer;
use workers::{Priority, Ticket, WorkerPool};

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
/// Whisper's reference temperatures for decoding a suspect window again (see
/// [`Common::decode_window`]); `asr_fallback_temperatures` in the config.
pub const DEFAULT_FALLBACK_TEMPERATURES: [f32; 5] = [0.2, 0.4, 0.6, 0.8, 1.0];
/// Default spacing of partial results during `push`.
pub(crate) const DEFAULT_PARTIAL_INTERVAL_MS: u32 = 500;
/// Mel frames (10 ms each) of Whisper's zero padding appended after the audio before the
/// encoder. 0.3 s gave the lowest WER on tests/data for both checkpoints (swept 0–1 s and the
/// full 30 s); the differences were one or two words, so this is a mild preference.
const DEFAULT_TAIL_PAD_FRAMES: usize = 30;
/// Audio kept after the end of speech the VAD reported when the final is decoded (the VAD
/// places the end 23–71 ms late; this is margin on top, the rest of the hang-over is cut).
const FINAL_TAIL_SAMPLES: usize = SAMPLE_RATE / 5;

/// The Whisper recognizer: one loaded model shared by every stream it starts, decoded on a small
/// pool of worker threads ([`workers`]).
#[derive(Clone)]
pub struct WhisperAsr {
    shared: Arc<Shared>,
    partial_interval_samples: usize,
    /// Temperatures a suspect final is decoded at again, in order (empty: never).
    fallback: Arc<[f32]>,
}

impl std::fmt::Debug for WhisperAsr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WhisperAsr")
            .field("dims", &self.shared.common.dims)
            .field("workers", &self.shared.workers)
            .field("partial_interval_samples", &self.partial_interval_samples)
            .field("fallback", &self.fallback)
            .finish_non_exhaustive()
    }
}

/// What every stream of one model shares: the read-only parts and the workers.
struct Shared {
    common: Arc<Common>,
    workers: WorkerPool<DecodeJob, DecodedWindow>,
}

/// Read-only model data the workers share.
struct Common {
    tokenizer: WhisperTokenizer,
    dims: ct2::WhisperDims,
    /// Threads for this model's matrix products (`asr_threads`), shared by all workers.
    pool: rayon::ThreadPool,
    tail_pad_frames: usize,
}

/// One worker's decoding state. The weights inside are shared with every other worker (candle
/// tensors are reference-counted); only caches and scratch are the worker's own.
struct Engine {
    /// candle's model; only its encoder runs (the decoder is [`TextDecoder`], same weights).
    model: Whisper,
    decoder: TextDecoder,
    mel: LogMel,
    /// Scratch for the PCM as floats, reused across decodes.
    samples: Vec<f32>,
}

/// One window for a worker to decode.
struct DecodeJob {
    pcm: Vec<i16>,
    options: AsrOptions,
    decoding: Decoding,
    /// Temperatures to decode again at when the greedy result is suspect; empty for partials
    /// (their result is only marked suspect, and a final does not reuse it).
    fallback: Arc<[f32]>,
    queued_at: std::time::Instant,
}

/// A decoded window and where its time went.
type DecodedWindow = (WindowResult, DecodeStats);

/// Where the time of one decode went (all windows of it summed).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct DecodeStats {
    /// Log-mel front end.
    pub mel_ms: f64,
    pub encoder_ms: f64,
    /// Decoder passes, output projection and token choice.
    pub decoder_ms: f64,
    /// Tokens produced.
    pub tokens: usize,
    /// Decoder forward passes.
    pub decoder_passes: usize,
    /// Tokens taken from the previous hypothesis without a pass of their own.
    pub draft_accepted: usize,
    /// Encoder input frames (10 ms each).
    pub frames: usize,
    /// Time the job waited in the queue for a worker.
    pub queued_ms: f64,
    /// Greedy results found suspect (loop guard, compression ratio, low log-probability).
    pub suspect: usize,
    /// Decodes at a fallback temperature run, and the decoder time they took.
    pub fallbacks: usize,
    pub fallback_ms: f64,
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
        self.queued_ms += o.queued_ms;
        self.suspect += o.suspect;
        self.fallbacks += o.fallbacks;
        self.fallback_ms += o.fallback_ms;
    }
}

impl WhisperAsr {
    /// Loads `model.bin`, `tokenizer.json` and `config.json` from `dir` (a folder laid out by
    /// scripts/setup.sh) and runs inference on one worker with `threads` threads.
    pub fn load(dir: &Path, threads: usize) -> Result<Self, VoiceError> {
        Self::load_with_workers(dir, threads, 1)
    }

    /// [`Self::load_with`] with the default decoder weights.
    pub fn load_with_workers(
        dir: &Path,
        threads: usize,
        workers: usize,
    ) -> Result<Self, VoiceError> {
        Self::load_with(dir, threads, workers, DecoderWeights::default())
    }

    /// [`Self::load`] with `workers` decoding threads sharing the one loaded model (each decodes
    /// one window at a time; their matrix products share the `threads` threads) and the decoder's
    /// per-token matrices stored as `weights` says.
    pub fn load_with(
        dir: &Path,
        threads: usize,
        workers: usize,
        weights: DecoderWeights,
    ) -> Result<Self, VoiceError> {
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
        let decoder = TextDecoder::new(&tensors, dims.n_text_layer, dims.n_text_head, weights)?;
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
        let workers = workers.max(1);
        // Clones share the weight tensors: one model in memory whatever the worker count.
        let engines = (0..workers)
            .map(|_| Engine {
                model: model.clone(),
                decoder: decoder.clone(),
                mel: mel.clone(),
                samples: Vec::new(),
            })
            .collect();
        let common = Arc::new(Common {
            tokenizer,
            dims,
            pool,
            tail_pad_frames: DEFAULT_TAIL_PAD_FRAMES,
        });
        let worker_common = Arc::clone(&common);
        let workers =
            WorkerPool::start("whisper", engines, move |engine, job: DecodeJob, stop| {
                let queued_ms = ms(job.queued_at.elapsed());
                let (window, mut stats) = worker_common.decode_window(
                    engine,
                    &job.pcm,
                    &job.options,
                    &job.decoding,
                    &job.fallback,
                    stop,
                )?;
                stats.queued_ms = queued_ms;
                Ok((window, stats))
            })?;
        tracing::info!(dir = %dir.display(), dims = ?common.dims, threads, ?workers, ?weights, elapsed_ms = started.elapsed().as_millis() as u64, "Whisper loaded");
        Ok(Self {
            shared: Arc::new(Shared { common, workers }),
            partial_interval_samples: DEFAULT_PARTIAL_INTERVAL_MS as usize * SAMPLE_RATE / 1000,
            fallback: Arc::from(DEFAULT_FALLBACK_TEMPERATURES.as_slice()),
        })
    }

    /// Loads the checkpoint `size` from the configured models folder with `asr_threads`,
    /// `asr_workers`, `asr_decoder_weights`, `asr_partial_interval_ms` and
    /// `asr_fallback_temperatures`.
    pub fn from_config(config: &VoiceConfig, size: WhisperSize) -> Result<Self, VoiceError> {
        Ok(Self::load_with(
            &config.whisper_dir(size),
            config.asr_threads,
            config.asr_workers,
            config.asr_decoder_weights,
        )?
        .with_partial_interval_ms(config.asr_partial_interval_ms)
        .with_fallback_temperatures(&config.asr_fallback_temperatures))
    }

    /// The temperatures a suspect final is decoded at again, in order; empty turns the
    /// fallback off (the loop guard still cuts a repeat).
    pub fn with_fallback_temperatures(mut self, temperatures: &[f32]) -> Self {
        self.fallback = temperatures
            .iter()
            .copied()
            .filter(|t| t.is_finite() && *t > 0.0)
            .collect();
        self
    }

    /// How much new audio a stream waits for before it re-decodes and reports a partial.
    pub fn with_partial_interval_ms(mut self, ms: u32) -> Self {
        self.partial_interval_samples = (ms as usize * SAMPLE_RATE / 1000).max(1);
        self
    }

    /// Whether the checkpoint can transcribe languages other than English.
    pub fn is_multilingual(&self) -> bool {
        self.shared.common.dims.is_multilingual()
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
        self.transcribe_windows(pcm, options, || Decoding::Cached { draft: Vec::new() })
    }

    /// [`Self::transcribe_with_stats`] with candle-transformers' own decoder, which re-runs every
    /// token at each step: the reference the cached decoder must agree with, and the baseline
    /// `asr_bench` compares against.
    pub fn transcribe_reference(
        &self,
        pcm: &[i16],
        options: &AsrOptions,
    ) -> Result<(Transcript, DecodeStats), VoiceError> {
        self.transcribe_windows(pcm, options, || Decoding::Reference)
    }

    /// Decodes `pcm` in windows of 30 s at most and joins their text.
    fn transcribe_windows(
        &self,
        pcm: &[i16],
        options: &AsrOptions,
        decoding: impl Fn() -> Decoding,
    ) -> Result<(Transcript, DecodeStats), VoiceError> {
        let mut stats = DecodeStats::default();
        // Every window is queued before the first is waited for: with several workers they run
        // side by side.
        let tickets = pcm
            .chunks(WINDOW_SAMPLES)
            .map(|w| {
                let fallback = Arc::clone(&self.fallback);
                self.shared
                    .submit(w, options, decoding(), fallback, Priority::Final)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut windows = Vec::with_capacity(tickets.len());
        for ticket in tickets {
            let (w, s) = ticket.wait()?;
            stats.add(&s);
            windows.push(w);
        }
        Ok((merge(&windows, options.language, true), stats))
    }

    /// Opens a stream; [`SpeechToText::start`] boxes the same.
    pub fn stream(&self, options: &AsrOptions) -> Result<WhisperStream, VoiceError> {
        // Fail now, not at the first partial, if the model cannot do this language.
        self.shared
            .common
            .tokenizer
            .sot_sequence(options.language)?;
        Ok(WhisperStream {
            shared: Arc::clone(&self.shared),
            options: options.clone(),
            partial_interval_samples: self.partial_interval_samples,
            fallback: Arc::clone(&self.fallback),
            buffer: Vec::new(),
            decoded_len: 0,
            done_windows: Vec::new(),
            last_units: Vec::new(),
            stable: Vec::new(),
            last_stats: DecodeStats::default(),
            pending: None,
            heard: None,
            speculation: None,
            speculative: None,
        })
    }
}

/// How a window's tokens are found; both give the same greedy tokens.
#[derive(Debug, Clone)]
enum Decoding {
    /// [`TextDecoder`] with caches. `draft` is the previous hypothesis of this window's text
    /// tokens (or empty): the result is the same with or without it, only faster.
    Cached { draft: Vec<u32> },
    /// candle's decoder re-running every token at each step (the slow reference).
    Reference,
}

/// A decode in the workers' hands.
enum Pending {
    /// Already known without a worker (audio too short to decode).
    Ready(DecodedWindow),
    Queued(Ticket<DecodedWindow>),
}

impl Pending {
    fn wait(self) -> Result<DecodedWindow, VoiceError> {
        match self {
            Pending::Ready(w) => Ok(w),
            Pending::Queued(ticket) => ticket.wait(),
        }
    }

    /// Gives the decode up without waiting; a result already there is returned.
    fn cancel(self) -> Option<DecodedWindow> {
        match self {
            Pending::Ready(w) => Some(w),
            Pending::Queued(ticket) => ticket.cancel().and_then(Result::ok),
        }
    }
}

/// A stream's decode of the first `covered` samples of its open window.
struct InFlight {
    pending: Pending,
    covered: usize,
}

/// One decoded window with its text.
#[derive(Debug, Clone)]
struct WindowResult {
    text: String,
    decoded: Decoded,
    /// The greedy result needed a fallback that this decode did not run (a partial's): a
    /// final decodes the audio again rather than reuse it.
    suspect: bool,
}

impl Shared {
    /// Queues one window of at most 30 s (see [`WorkerPool::submit`]: a final waits for room,
    /// a partial gives up when there is none and returns `Ok(None)`).
    fn try_submit(
        &self,
        pcm: &[i16],
        options: &AsrOptions,
        decoding: Decoding,
        fallback: Arc<[f32]>,
        priority: Priority,
    ) -> Result<Option<Pending>, VoiceError> {
        self.common.tokenizer.sot_sequence(options.language)?;
        if pcm.len() < MIN_SAMPLES {
            let decoded = Decoded {
                tokens: Vec::new(),
                sum_logprob: 0.0,
                no_speech_prob: 1.0,
                looped: false,
                passes: 0,
                draft_accepted: 0,
            };
            let window = WindowResult {
                text: String::new(),
                decoded,
                suspect: false,
            };
            return Ok(Some(Pending::Ready((window, DecodeStats::default()))));
        }
        let job = DecodeJob {
            pcm: pcm.to_vec(),
            options: options.clone(),
            decoding,
            fallback,
            queued_at: std::time::Instant::now(),
        };
        Ok(self.workers.submit(job, priority).map(Pending::Queued))
    }

    /// Queues a window that will be waited for.
    fn submit(
        &self,
        pcm: &[i16],
        options: &AsrOptions,
        decoding: Decoding,
        fallback: Arc<[f32]>,
        priority: Priority,
    ) -> Result<Pending, VoiceError> {
        self.try_submit(pcm, options, decoding, fallback, priority)?
            .ok_or_else(|| VoiceError::engine("whisper", "a decode that waits was dropped"))
    }
}

impl Common {
    /// Decodes one window of at most 30 s (at least [`MIN_SAMPLES`]) on `engine`.
    /// `stop` is checked between the stages and before every decoder pass.
    ///
    /// The temperature fallback of Whisper's reference decoding: a greedy result whose text
    /// compresses better than [`COMPRESSION_RATIO_THRESHOLD`] or whose average log-probability
    /// is below [`FALLBACK_LOGPROB_THRESHOLD`] (and that is not silence) is decoded again at
    /// each of `fallback`'s temperatures in turn, on the same encoder output, until one passes.
    /// If none does, the best is kept as faster-whisper chooses ([`best_of`]). Every decode's
    /// exact repeats were already cut by the loop guard, and a restart of the utterance or a stretch
    /// said again by [`cut_text`].
    fn decode_window(
        &self,
        engine: &mut Engine,
        pcm: &[i16],
        options: &AsrOptions,
        decoding: &Decoding,
        fallback: &[f32],
        stop: &AtomicBool,
    ) -> Result<DecodedWindow, VoiceError> {
        let sot_sequence = self.tokenizer.sot_sequence(options.language)?;
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

        let mut samples = std::mem::take(&mut engine.samples);
        samples.clear();
        samples.extend(pcm.iter().map(|&s| f32::from(s) / 32768.0));
        let mut stats = DecodeStats {
            frames,
            ..DecodeStats::default()
        };
        let started = std::time::Instant::now();
        let tokenizer = &self.tokenizer;
        let result = self.pool.install(|| -> Result<WindowResult, VoiceError> {
            let t0 = std::time::Instant::now();
            let mel: Tensor = engine.mel.compute(&samples, frames)?;
            let t1 = std::time::Instant::now();
            if stop.load(Ordering::Relaxed) {
                return Err(decode::cancelled());
            }
            let features = engine.model.encoder.forward(&mel, true)?;
            let t2 = std::time::Instant::now();
            let greedy = DecodeRequest {
                prefix: &prefix,
                sot_index,
                special: &tokenizer.special,
                suppress: &tokenizer.suppress,
                suppress_begin: &tokenizer.suppress_begin,
                max_tokens,
                temperature: 0.0,
                seed: 0,
            };
            let mut run = |req: &DecodeRequest<'_>| -> Result<WindowResult, VoiceError> {
                if stop.load(Ordering::Relaxed) {
                    return Err(decode::cancelled());
                }
                let mut decoded = match decoding {
                    Decoding::Cached { draft } => {
                        decode::greedy(&engine.decoder, &features, req, draft, stop)?
                    }
                    Decoding::Reference => {
                        decode::greedy_reference(&mut engine.model, &features, req)?
                    }
                };
                let mut text = tokenizer.decode(&decoded.tokens)?;
                let restart = decode::restart_at(&text, options.language);
                let tandem = decode::tandem_repeat_at(&text, options.language);
                if let Some(at) = restart.into_iter().chain(tandem).min() {
                    let why = if Some(at) == tandem {
                        "whisper repeat guard: the decode said a stretch again"
                    } else {
                        "whisper restart guard: the decode said the utterance again"
                    };
                    cut_text(tokenizer, &mut decoded, &mut text, at, why)?;
                }
                let suspect = needs_fallback(&decoded, &text);
                Ok(WindowResult {
                    text,
                    decoded,
                    suspect,
                })
            };
            let first = run(&greedy)?;
            let t3 = std::time::Instant::now();
            stats.mel_ms = ms(t1 - t0);
            stats.encoder_ms = ms(t2 - t1);
            if !first.suspect {
                stats.decoder_ms = ms(t3 - t2);
                return Ok(first);
            }
            stats.suspect = 1;
            let mut tried = vec![first];
            for (i, &temperature) in fallback.iter().enumerate() {
                let hot = DecodeRequest {
                    temperature,
                    // The same audio gets the same draws: a rerun gives the same text.
                    seed: (pcm.len() as u64) << 8 | i as u64,
                    ..greedy
                };
                let w = run(&hot)?;
                stats.fallbacks += 1;
                tracing::debug!(
                    temperature,
                    tokens = w.decoded.tokens.len(),
                    avg_logprob = w.decoded.avg_logprob(),
                    compression_ratio = decode::compression_ratio(&w.text),
                    looped = w.decoded.looped,
                    "whisper temperature fallback"
                );
                let passed = !w.suspect;
                tried.push(w);
                if passed {
                    break;
                }
            }
            stats.decoder_ms = ms(t2.elapsed());
            stats.fallback_ms = ms(t3.elapsed());
            let mut chosen = best_of(tried);
            // Partials (no fallback list) stay marked, so that a final decodes them again.
            chosen.suspect &= fallback.is_empty();
            Ok(chosen)
        });
        engine.samples = samples;
        let window = result?;
        let decoded = &window.decoded;
        stats.tokens = decoded.tokens.len();
        stats.decoder_passes = decoded.passes;
        stats.draft_accepted = decoded.draft_accepted;
        tracing::debug!(
            audio_ms = pcm.len() * 1000 / SAMPLE_RATE,
            frames,
            tokens = decoded.tokens.len(),
            passes = decoded.passes,
            draft_accepted = decoded.draft_accepted,
            mel_ms = stats.mel_ms,
            encoder_ms = stats.encoder_ms,
            decoder_ms = stats.decoder_ms,
            fallbacks = stats.fallbacks,
            fallback_ms = stats.fallback_ms,
            elapsed_ms = started.elapsed().as_millis() as u64,
            no_speech_prob = decoded.no_speech_prob,
            avg_logprob = decoded.avg_logprob(),
            looped = decoded.looped,
            "whisper window decoded"
        );
        Ok((window, stats))
    }
}

/// Cuts a decode to its text before byte `at`, where it starts its utterance over
/// ([`decode::restart_at`]) or says a stretch again ([`decode::tandem_repeat_at`]): its tokens
/// up to the longest prefix whose text is the kept text or the start of it (a token may hold
/// characters on both sides of the cut). Like the loop guard's cuts, the log-probability sum
/// keeps the cut tokens.
fn cut_text(
    tokenizer: &WhisperTokenizer,
    decoded: &mut Decoded,
    text: &mut String,
    at: usize,
    why: &'static str,
) -> Result<(), VoiceError> {
    let kept = text[..at].trim_end();
    for keep in (1..decoded.tokens.len()).rev() {
        let prefix = tokenizer.decode(&decoded.tokens[..keep])?;
        let prefix = prefix.trim_end();
        if !prefix.is_empty() && kept.starts_with(prefix) {
            tracing::debug!(
                tokens = decoded.tokens.len(),
                keep,
                cut = &text[at..],
                "{why}"
            );
            decoded.tokens.truncate(keep);
            decoded.looped = true;
            *text = prefix.to_string();
            break;
        }
    }
    Ok(())
}

/// Whether Whisper would call this window silence: then its text is dropped, and a low
/// log-probability is no reason to decode it again.
fn is_silent(d: &Decoded) -> bool {
    d.no_speech_prob > NO_SPEECH_ALONE_THRESHOLD
        || (d.no_speech_prob > NO_SPEECH_THRESHOLD && d.avg_logprob() < LOGPROB_THRESHOLD)
        || (d.no_speech_prob > NO_SPEECH_WEAK_THRESHOLD && d.avg_logprob() < VERY_LOW_LOGPROB)
}

/// Whether a decode is suspect enough to be decoded again at a higher temperature: its text
/// compresses too well (a loop the exact guard missed: the copies differ a little) or its
/// confidence is low, and it is not silence. A repeat the loop guard cut is not a reason by
/// itself: on windows cut to the utterance the model often says the sentence again instead of
/// ending (141 of 390 corpus clips), and the cut copy is the right text.
fn needs_fallback(d: &Decoded, text: &str) -> bool {
    if d.tokens.is_empty() || is_silent(d) {
        return false;
    }
    decode::compression_ratio(text) > COMPRESSION_RATIO_THRESHOLD
        || d.avg_logprob() < FALLBACK_LOGPROB_THRESHOLD
}

/// The decode to keep of a greedy one and its fallbacks: the first that is not suspect, else
/// the most confident of those that do not compress too well, else the most confident.
fn best_of(tried: Vec<WindowResult>) -> WindowResult {
    let repetitive =
        |w: &WindowResult| decode::compression_ratio(&w.text) > COMPRESSION_RATIO_THRESHOLD;
    let confidence = |w: &WindowResult| w.decoded.avg_logprob();
    let mut tried = tried;
    if let Some(i) = tried.iter().position(|w| !w.suspect) {
        return tried.swap_remove(i);
    }
    let pool: Vec<usize> = match (0..tried.len())
        .filter(|&i| !repetitive(&tried[i]))
        .collect::<Vec<_>>()
    {
        clean if !clean.is_empty() => clean,
        _ => (0..tried.len()).collect(),
    };
    let best = pool
        .into_iter()
        .max_by(|&a, &b| confidence(&tried[a]).total_cmp(&confidence(&tried[b])))
        .unwrap_or(0);
    tried.swap_remove(best)
}

/// Joins windows into one transcript. A window Whisper itself would call silent (high
/// no-speech probability and low confidence), or whose no-speech probability is very high,
/// contributes no text.
fn merge(windows: &[WindowResult], language: Language, is_final: bool) -> Transcript {
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
        if !is_silent(d) && !w.text.is_empty() {
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

impl SpeechToText for WhisperAsr {
    fn start(&self, options: &AsrOptions) -> Result<Box<dyn AsrStream>, VoiceError> {
        Ok(Box::new(self.stream(options)?))
    }
}

/// One utterance being recognized. Every partial interval it queues a re-decode of the open
/// window (the previous hypothesis as draft) and, when that comes back, reports the stable
/// prefix: the longest common word prefix of the last two hypotheses (LocalAgreement-2). A
/// partial is never shorter than the one before; a longer agreement may still revise its words.
///
/// The stream keeps its own state (audio, draft, agreement); the decoding happens on the model's
/// workers. `push` never waits for a partial: its result comes out of a later `push`, and while
/// one is in flight no other is queued. When the workers' queue is full a partial is skipped (the
/// next push tries again), so a busy model costs partials, never audio or VAD events.
///
/// The final: when the listener says the caller paused ([`AsrStream::speculate`]), the stream
/// decodes everything heard so far at once; when the end of speech is then confirmed
/// ([`AsrStream::finish_at`]) and that decode (or any other) covered the whole of the speech, its
/// full hypothesis is the final, already decoded or partly so. Otherwise the stream cancels the
/// decode in flight and queues the final ahead of every partial, on the audio up to the end of
/// speech (plus [`FINAL_TAIL_SAMPLES`]), and waits for it.
pub struct WhisperStream {
    shared: Arc<Shared>,
    options: AsrOptions,
    partial_interval_samples: usize,
    fallback: Arc<[f32]>,
    /// Audio of the current (open) window.
    buffer: Vec<i16>,
    /// `buffer.len()` at the last decode queued.
    decoded_len: usize,
    /// Full 30 s windows already decoded in this utterance.
    done_windows: Vec<WindowResult>,
    /// Words (characters for Chinese) of the last hypothesis.
    last_units: Vec<String>,
    /// The stable prefix reported so far.
    stable: Vec<String>,
    last_stats: DecodeStats,
    /// The decode of the open window in flight.
    pending: Option<InFlight>,
    /// The open window's latest finished decode and the samples it covered; its text tokens
    /// are the next decode's draft.
    heard: Option<(DecodedWindow, usize)>,
    /// Samples of the open window at the last pause, until a decode covering them is done.
    speculation: Option<usize>,
    /// That decode's full hypothesis, for [`AsrStream::take_speculative`].
    speculative: Option<Transcript>,
}

impl std::fmt::Debug for WhisperStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WhisperStream")
            .field("buffered", &self.buffer.len())
            .field("done_windows", &self.done_windows.len())
            .field("stable", &self.stable)
            .field("decode_in_flight", &self.pending.is_some())
            .finish_non_exhaustive()
    }
}

impl WhisperStream {
    /// Where the time of the last decode (partial or final) went.
    pub fn last_stats(&self) -> DecodeStats {
        self.last_stats
    }

    fn cached(&self) -> Decoding {
        Decoding::Cached {
            draft: self
                .heard
                .as_ref()
                .map(|((window, _), _)| window.decoded.tokens.clone())
                .unwrap_or_default(),
        }
    }

    /// The decode in flight, if it is done.
    fn take_partial(&mut self) -> Option<Result<(DecodedWindow, usize), VoiceError>> {
        let InFlight { pending, covered } = self.pending.take()?;
        match pending {
            Pending::Ready(w) => Some(Ok((w, covered))),
            Pending::Queued(ticket) => match ticket.try_take() {
                Some(result) => Some(result.map(|w| (w, covered))),
                None => {
                    self.pending = Some(InFlight {
                        pending: Pending::Queued(ticket),
                        covered,
                    });
                    None
                }
            },
        }
    }

    /// Gives up the decode in flight without waiting (a worker running it stops at its next
    /// step); a result already there is kept as the latest hypothesis.
    fn abandon_partial(&mut self) {
        if let Some(InFlight { pending, covered }) = self.pending.take() {
            if let Some(w) = pending.cancel() {
                self.heard = Some((w, covered));
            }
        }
    }

    /// Queues a decode of the whole open window (dropped if the workers' queue is full).
    fn queue_partial(&mut self) -> Result<(), VoiceError> {
        let covered = self.buffer.len();
        let pending = self.shared.try_submit(
            &self.buffer,
            &self.options,
            self.cached(),
            Arc::from([]),
            Priority::Partial,
        )?;
        if let Some(pending) = pending {
            self.pending = Some(InFlight { pending, covered });
            self.decoded_len = covered;
        }
        Ok(())
    }

    /// The stable prefix of a new hypothesis of the open window.
    fn partial(&mut self, (decoded, covered): (DecodedWindow, usize)) -> Transcript {
        let (window, stats) = &decoded;
        self.last_stats = *stats;
        let mut windows = self.done_windows.clone();
        windows.push(window.clone());
        self.heard = Some((decoded, covered));
        self.check_speculation();
        let mut t = merge(&windows, self.options.language, false);
        let units = units(&t.text, self.options.language);
        let agreed = common_prefix(&self.last_units, &units);
        if agreed > self.stable.len() {
            self.stable = units[..agreed].to_vec();
        }
        self.last_units = units;
        t.text = join_units(&self.stable, self.options.language);
        t
    }

    /// Decodes the first `len` samples of the open window now and waits (a final, or a full
    /// 30 s window).
    fn decode_open_window(&mut self, len: usize) -> Result<DecodedWindow, VoiceError> {
        self.abandon_partial();
        let len = len.min(self.buffer.len());
        self.shared
            .submit(
                &self.buffer[..len],
                &self.options,
                self.cached(),
                Arc::clone(&self.fallback),
                Priority::Final,
            )?
            .wait()
    }

    /// The open window's final decode, given that the speech ends at sample `end` of it: a
    /// decode that covered all of the speech if there is one and it is not suspect (a partial's
    /// decode runs no temperature fallback), else a fresh one.
    fn final_window(&mut self, end: usize) -> Result<DecodedWindow, VoiceError> {
        if let Some(InFlight { pending, covered }) = self.pending.take() {
            if covered >= end {
                match pending.wait() {
                    Ok(w) if !w.0.suspect => return Ok(w),
                    Ok(w) => self.heard = Some((w, covered)),
                    // Decoded afresh below.
                    Err(e) => tracing::debug!(error = %e, "whisper: speculative final failed"),
                }
            } else {
                self.pending = Some(InFlight { pending, covered });
            }
        }
        self.abandon_partial();
        if self
            .heard
            .as_ref()
            .is_some_and(|((w, _), covered)| *covered >= end && !w.suspect)
        {
            if let Some((w, _)) = self.heard.take() {
                return Ok(w);
            }
        }
        // The latest decode stays as the draft.
        self.decode_open_window(end.saturating_add(FINAL_TAIL_SAMPLES))
    }

    /// Fulfils a pending speculation from the latest decode when it covers the pause and is not
    /// suspect (a suspect one is decoded afresh as the final, so it would not be the final).
    fn check_speculation(&mut self) {
        let Some(need) = self.speculation else {
            return;
        };
        let Some(((window, _), covered)) = self.heard.as_ref() else {
            return;
        };
        if *covered < need || window.suspect {
            return;
        }
        let mut windows = self.done_windows.clone();
        windows.push(window.clone());
        let mut t = merge(&windows, self.options.language, true);
        t.is_final = false;
        self.speculation = None;
        self.speculative = Some(t);
    }

    fn reset(&mut self) {
        self.speculation = None;
        self.speculative = None;
        self.buffer.clear();
        self.decoded_len = 0;
        self.done_windows.clear();
        self.last_units.clear();
        self.stable.clear();
        self.heard = None;
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

fn ms(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

impl AsrStream for WhisperStream {
    fn push(&mut self, pcm: &[i16]) -> Result<Option<Transcript>, VoiceError> {
        let mut out = match self.take_partial() {
            Some(result) => Some(self.partial(result?)),
            None => None,
        };
        let mut rest = pcm;
        while !rest.is_empty() {
            let room = WINDOW_SAMPLES - self.buffer.len();
            let (now, later) = rest.split_at(room.min(rest.len()));
            self.buffer.extend_from_slice(now);
            rest = later;
            if self.buffer.len() == WINDOW_SAMPLES {
                let (window, stats) = self.decode_open_window(WINDOW_SAMPLES)?;
                self.last_stats = stats;
                self.done_windows.push(window);
                self.buffer.clear();
                self.decoded_len = 0;
                self.heard = None;
                self.speculation = None;
                // A partial of the window just closed would be stale.
                out = None;
            }
        }
        if self.pending.is_none()
            && self.buffer.len() >= self.decoded_len + self.partial_interval_samples
        {
            self.queue_partial()?;
        }
        Ok(out)
    }

    fn speculate(&mut self) -> Result<(), VoiceError> {
        let len = self.buffer.len();
        self.speculation = Some(len);
        self.speculative = None;
        self.check_speculation();
        let covered = |c: usize| c >= len;
        if len < MIN_SAMPLES
            || self.pending.as_ref().is_some_and(|f| covered(f.covered))
            || self.heard.as_ref().is_some_and(|(_, c)| covered(*c))
        {
            return Ok(());
        }
        self.abandon_partial();
        self.queue_partial()
    }

    fn finish(&mut self) -> Result<Transcript, VoiceError> {
        self.finish_at(usize::MAX)
    }

    fn take_speculative(&mut self) -> Option<Transcript> {
        self.speculative.take()
    }

    fn finish_at(&mut self, speech_end: usize) -> Result<Transcript, VoiceError> {
        let closed = self.done_windows.len() * WINDOW_SAMPLES;
        let end = match speech_end.saturating_sub(closed).min(self.buffer.len()) {
            // No speech in the open window by that count: decode all of it rather than nothing.
            0 => self.buffer.len(),
            end => end,
        };
        let result = if self.buffer.is_empty() && !self.done_windows.is_empty() {
            Ok(merge(&self.done_windows, self.options.language, true))
        } else {
            self.final_window(end).map(|(window, stats)| {
                self.last_stats = stats;
                let mut windows = std::mem::take(&mut self.done_windows);
                windows.push(window);
                merge(&windows, self.options.language, true)
            })
        };
        // Nothing in flight outlives the utterance.
        self.abandon_partial();
        self.reset();
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

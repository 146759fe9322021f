//! Silero VAD through sherpa-rs (sherpa-onnx's C API from the PyPI wheel): the real
//! [`VoiceActivity`] engine. Speech start is reported per 32 ms window, as soon as sherpa-onnx
//! detects it (for barge-in); the utterance's samples come with the end event.

use super::{VadEvent, VoiceActivity};
use crate::audio::SAMPLE_RATE;
use crate::error::require_file;
use crate::{VoiceConfig, VoiceError};
use sherpa_rs::silero_vad::{SileroVad as SherpaVad, SileroVadConfig};
use std::path::PathBuf;

/// New samples per model window at 16 kHz (what Silero v5 requires).
pub const WINDOW_SAMPLES: usize = 512;
/// sherpa-onnx runs Silero v5 on the new window plus 64 samples of context; it places an
/// utterance's start `2 * MODEL_WINDOW + min_speech` samples before the window that confirmed it.
const MODEL_WINDOW: u64 = 576;
/// Samples cut from the end of an utterance that silence ended: sherpa-onnx ends it at the end
/// of the first window judged silent (with the hang-over in whole windows, see
/// [`Params::min_silence_s`]), and Silero's probability stays up for about one window after the
/// speech stops (the window overlaps the last 64 samples and the LSTM carries state), so the
/// speech ended about two windows before that mark. Measured on tests/data/vad: ends about
/// 108 ms late before (hang-over not in whole windows, nothing cut), 55–103 ms late with one
/// window cut, 23–71 ms with two (when the end is reported does not change, only where).
const SILENT_WINDOW_TRIM: u64 = 2 * WINDOW_SAMPLES as u64;
/// Longest utterance: past it sherpa-onnx raises the threshold to 0.9 and the silence to 0.1 s to
/// force a cut, so a caller who never pauses still yields segments for ASR.
const MAX_SPEECH_S: f32 = 20.0;
/// Audio sherpa-onnx keeps for the utterance in progress; must exceed [`MAX_SPEECH_S`].
const BUFFER_S: f32 = 30.0;
/// Silence (whole model windows) after which the second, quick detector ends its segment: the
/// moment a pause is reported (`SpeechPaused`), well before the hang-over ends the utterance.
const PAUSE_WINDOWS: u64 = 1;

/// Silero voice activity detector for one stream. Accepts PCM in chunks of any length, buffers
/// it into [`WINDOW_SAMPLES`] windows and emits [`VadEvent`]s with times from the stream start.
#[derive(Debug)]
pub struct SileroVad {
    vad: SherpaVad,
    /// The same model with a one-window hang-over, fed the same windows: its segment ends are
    /// the pauses inside the main detector's utterances.
    quick: SherpaVad,
    params: Params,
    /// Samples waiting for a full window.
    window: Vec<i16>,
    /// Samples handed to the current sherpa detector.
    fed: u64,
    /// Stream position (samples) where the current sherpa detector started.
    base: u64,
    /// Samples received through `push` over the whole stream.
    pushed: u64,
    /// Start (ms) of the utterance announced with `SpeechStarted` and not ended yet.
    open_start_ms: Option<u64>,
    /// End (relative to `base`) of the last utterance; the next one cannot start before it.
    last_end: u64,
    /// `flush` ran: the next `push` starts a fresh detector (sherpa-rs cannot reset one).
    flushed: bool,
}

/// What it takes to build a sherpa detector again.
#[derive(Debug, Clone)]
struct Params {
    model: String,
    threshold: f32,
    min_silence_s: f32,
    min_speech_s: f32,
}

impl Params {
    /// The hang-over in whole model windows, rounded up. sherpa-onnx counts silence in windows
    /// anyway (it ends an utterance on the first window at or past the hang-over), so this
    /// changes no timing; it only makes its end mark exact: it places the end `min_silence`
    /// before the window that closed the utterance, which with a whole number of windows is the
    /// end of the first window judged silent, not up to a window after it.
    fn min_silence_s(hangover_ms: u32) -> f32 {
        let samples = u64::from(hangover_ms) * u64::from(SAMPLE_RATE) / 1000;
        let windows = samples.div_ceil(WINDOW_SAMPLES as u64).max(1);
        (windows * WINDOW_SAMPLES as u64) as f32 / SAMPLE_RATE as f32
    }

    fn min_speech_samples(&self) -> u64 {
        (self.min_speech_s * SAMPLE_RATE as f32) as u64
    }

    /// The main detector (`quick` false) or the pause detector.
    fn build(&self, quick: bool) -> Result<SherpaVad, VoiceError> {
        let min_silence_duration = if quick {
            (PAUSE_WINDOWS * WINDOW_SAMPLES as u64) as f32 / SAMPLE_RATE as f32
        } else {
            self.min_silence_s
        };
        let config = SileroVadConfig {
            model: self.model.clone(),
            min_silence_duration,
            min_speech_duration: self.min_speech_s,
            max_speech_duration: MAX_SPEECH_S,
            threshold: self.threshold,
            sample_rate: SAMPLE_RATE,
            window_size: WINDOW_SAMPLES as i32,
            provider: None,
            num_threads: Some(1),
            debug: false,
        };
        SherpaVad::new(config, BUFFER_S).map_err(|e| VoiceError::engine("silero-vad", e))
    }
}

impl SileroVad {
    /// Loads `config.silero_model()` with the configured threshold, hang-over (minimum silence)
    /// and minimum speech duration.
    pub fn new(config: &VoiceConfig) -> Result<Self, VoiceError> {
        let path: PathBuf = config.silero_model();
        require_file(&path)?;
        // sherpa-onnx's C API returns a null detector on an invalid config and sherpa-rs does not
        // check for it, so everything its validation rejects is rejected here first.
        let model = path
            .to_str()
            .filter(|s| !s.contains('\0') && !s.ends_with(".rknn"))
            .ok_or_else(|| VoiceError::ModelFormat {
                path: path.clone(),
                reason: "the path must be valid UTF-8 naming an .onnx file".into(),
            })?
            .to_owned();
        if !(0.01..1.0).contains(&config.vad_threshold) {
            return Err(VoiceError::InvalidInput(format!(
                "vad_threshold {} is out of range: use a value in [0.01, 1)",
                config.vad_threshold
            )));
        }
        for (name, ms) in [
            ("vad_hangover_ms", config.vad_hangover_ms),
            ("vad_min_speech_ms", config.vad_min_speech_ms),
        ] {
            if ms == 0 {
                return Err(VoiceError::InvalidInput(format!(
                    "{name} must be at least 1 ms for the Silero VAD"
                )));
            }
        }
        let params = Params {
            model,
            threshold: config.vad_threshold,
            min_silence_s: Params::min_silence_s(config.vad_hangover_ms),
            min_speech_s: config.vad_min_speech_ms as f32 / 1000.0,
        };
        Ok(Self {
            vad: params.build(false)?,
            quick: params.build(true)?,
            params,
            window: Vec::with_capacity(WINDOW_SAMPLES),
            fed: 0,
            base: 0,
            pushed: 0,
            open_start_ms: None,
            last_end: 0,
            flushed: false,
        })
    }

    fn ms(samples: u64) -> u64 {
        samples * 1000 / u64::from(SAMPLE_RATE)
    }

    /// Runs one full window through the model and collects the events it completes.
    fn run_window(&mut self, events: &mut Vec<VadEvent>) {
        let window: Vec<f32> = self
            .window
            .iter()
            .map(|&s| f32::from(s) / 32768.0)
            .collect();
        self.window.clear();
        self.vad.accept_waveform(window.clone());
        self.quick.accept_waveform(window);
        self.fed += WINDOW_SAMPLES as u64;
        self.drain(events, SILENT_WINDOW_TRIM);
        self.pauses(events);
        if self.open_start_ms.is_none() && self.vad.is_speech() {
            // Where sherpa-onnx will put the segment's start: it has consumed every full
            // `MODEL_WINDOW` (shifted by `WINDOW_SAMPLES`) of what it was fed.
            let consumed = match self.fed.checked_sub(MODEL_WINDOW) {
                Some(rest) => (rest / WINDOW_SAMPLES as u64 + 1) * WINDOW_SAMPLES as u64,
                None => 0,
            };
            let start = consumed
                .saturating_sub(2 * MODEL_WINDOW + self.params.min_speech_samples())
                .max(self.last_end);
            let at_ms = Self::ms(self.base + start);
            self.open_start_ms = Some(at_ms);
            events.push(VadEvent::SpeechStarted { at_ms });
        }
    }

    /// Turns every finished sherpa segment into a `SpeechEnded` (preceded by a `SpeechStarted`
    /// if none was announced for it), without its last `trim` samples (see
    /// [`SILENT_WINDOW_TRIM`]; none for a segment cut by `flush`).
    fn drain(&mut self, events: &mut Vec<VadEvent>, trim: u64) {
        while !self.vad.is_empty() {
            let segment = self.vad.front();
            self.vad.pop();
            let start = u64::try_from(segment.start).unwrap_or(0);
            // A flushed segment may include the silence that padded the last window: cut it.
            let end = (start + segment.samples.len() as u64)
                .min(self.pushed - self.base)
                .saturating_sub(trim)
                .max(start + 1);
            let kept = usize::try_from(end.saturating_sub(start)).unwrap_or(usize::MAX);
            if self.open_start_ms.is_none() {
                events.push(VadEvent::SpeechStarted {
                    at_ms: Self::ms(self.base + start),
                });
            }
            // Exact inverse of the i16 → f32 conversion in `run_window`.
            let samples = segment
                .samples
                .iter()
                .take(kept)
                .map(|&x| (x * 32768.0).round().clamp(-32768.0, 32767.0) as i16)
                .collect();
            events.push(VadEvent::SpeechEnded {
                start_ms: Self::ms(self.base + start),
                end_ms: Self::ms(self.base + end),
                samples,
            });
            self.open_start_ms = None;
            self.last_end = end;
        }
    }

    /// Turns the quick detector's finished segments into `SpeechPaused` while an utterance is
    /// open (a pause the main detector's hang-over then confirms or not).
    fn pauses(&mut self, events: &mut Vec<VadEvent>) {
        while !self.quick.is_empty() {
            let segment = self.quick.front();
            self.quick.pop();
            if self.open_start_ms.is_none() {
                continue;
            }
            let start = u64::try_from(segment.start).unwrap_or(0);
            let end = (start + segment.samples.len() as u64)
                .min(self.pushed - self.base)
                .saturating_sub(SILENT_WINDOW_TRIM);
            events.push(VadEvent::SpeechPaused {
                at_ms: Self::ms(self.base + end),
            });
        }
    }

    /// After a flush, continues the stream on a fresh detector: the old one still holds model
    /// state from before the flush.
    fn restart_if_flushed(&mut self) -> Result<(), VoiceError> {
        if self.flushed {
            self.vad = self.params.build(false)?;
            self.quick = self.params.build(true)?;
            self.base = self.pushed;
            self.fed = 0;
            self.last_end = 0;
            self.flushed = false;
        }
        Ok(())
    }
}

impl VoiceActivity for SileroVad {
    fn push(&mut self, pcm: &[i16]) -> Result<Vec<VadEvent>, VoiceError> {
        self.restart_if_flushed()?;
        self.pushed += pcm.len() as u64;
        let mut events = Vec::new();
        let mut rest = pcm;
        while !rest.is_empty() {
            let take = (WINDOW_SAMPLES - self.window.len()).min(rest.len());
            self.window.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if self.window.len() == WINDOW_SAMPLES {
                self.run_window(&mut events);
            }
        }
        Ok(events)
    }

    fn flush(&mut self) -> Result<Vec<VadEvent>, VoiceError> {
        if self.flushed {
            return Ok(Vec::new());
        }
        let mut events = Vec::new();
        if !self.window.is_empty() {
            // Complete the last partial window with silence so its audio is judged too.
            self.window.resize(WINDOW_SAMPLES, 0);
            self.run_window(&mut events);
        }
        self.vad.flush();
        self.drain(&mut events, 0);
        // Pauses are of no use once the stream ends.
        self.quick.flush();
        while !self.quick.is_empty() {
            self.quick.pop();
        }
        if let Some(start_ms) = self.open_start_ms.take() {
            // sherpa-onnx had nothing to hand back; still close what was announced.
            tracing::warn!("silero-vad: flush found no segment for an open utterance");
            let end_ms = Self::ms(self.pushed).max(start_ms);
            events.push(VadEvent::SpeechEnded {
                start_ms,
                end_ms,
                samples: Vec::new(),
            });
        }
        self.flushed = true;
        Ok(events)
    }
}

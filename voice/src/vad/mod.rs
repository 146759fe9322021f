//! Voice activity detection: turns a stream of PCM into speech-start and speech-end events.
//! [`silero`] is the real engine (Silero through sherpa-rs); [`EnergyVad`] is a deterministic
//! fake for unit tests.

pub mod silero;

use crate::audio::SAMPLE_RATE;
use crate::VoiceError;

/// What the detector saw. Times are milliseconds from the start of the stream.
#[derive(Debug, Clone, PartialEq)]
pub enum VadEvent {
    /// Speech began (the orchestrator uses this for barge-in).
    SpeechStarted { at_ms: u64 },
    /// Inside an utterance the caller went quiet at `at_ms`; a `SpeechEnded` follows after the
    /// hang-over unless speech resumes. The recognizer may start on its final here.
    SpeechPaused { at_ms: u64 },
    /// Speech ended after the configured silence hang-over; `samples` is the utterance.
    SpeechEnded {
        start_ms: u64,
        end_ms: u64,
        samples: Vec<i16>,
    },
}

/// A stateful detector for one audio stream (one per call).
pub trait VoiceActivity: Send {
    /// Feeds 16 kHz mono PCM of any length; returns the events it completed.
    fn push(&mut self, pcm: &[i16]) -> Result<Vec<VadEvent>, VoiceError>;
    /// End of stream: closes an utterance still open.
    fn flush(&mut self) -> Result<Vec<VadEvent>, VoiceError>;
}

/// Fake VAD on frame energy: a 20 ms frame louder than `threshold` RMS is speech; `hangover_ms`
/// of quiet frames end an utterance. Deterministic, no model.
#[derive(Debug)]
pub struct EnergyVad {
    threshold: f32,
    hangover_frames: usize,
    frame: Vec<i16>,
    utterance: Vec<i16>,
    in_speech: bool,
    quiet_frames: usize,
    start_ms: u64,
    processed: u64,
}

impl EnergyVad {
    pub fn new(threshold: f32, hangover_ms: u32) -> Self {
        Self {
            threshold,
            hangover_frames: (hangover_ms / crate::FRAME_MS).max(1) as usize,
            frame: Vec::with_capacity(crate::audio::FRAME_SAMPLES),
            utterance: Vec::new(),
            in_speech: false,
            quiet_frames: 0,
            start_ms: 0,
            processed: 0,
        }
    }

    fn ms(samples: u64) -> u64 {
        samples * 1000 / u64::from(SAMPLE_RATE)
    }

    fn end(&mut self, events: &mut Vec<VadEvent>) {
        let trailing = self.quiet_frames * crate::audio::FRAME_SAMPLES;
        let keep = self.utterance.len().saturating_sub(trailing);
        self.utterance.truncate(keep);
        let end_ms = Self::ms(self.processed - trailing as u64);
        events.push(VadEvent::SpeechEnded {
            start_ms: self.start_ms,
            end_ms,
            samples: std::mem::take(&mut self.utterance),
        });
        self.in_speech = false;
        self.quiet_frames = 0;
    }
}

impl VoiceActivity for EnergyVad {
    fn push(&mut self, pcm: &[i16]) -> Result<Vec<VadEvent>, VoiceError> {
        let mut events = Vec::new();
        for &s in pcm {
            self.frame.push(s);
            if self.frame.len() < crate::audio::FRAME_SAMPLES {
                continue;
            }
            let rms = (self
                .frame
                .iter()
                .map(|&x| f32::from(x).powi(2))
                .sum::<f32>()
                / self.frame.len() as f32)
                .sqrt();
            let loud = rms > self.threshold;
            if loud && !self.in_speech {
                self.in_speech = true;
                self.start_ms = Self::ms(self.processed);
                events.push(VadEvent::SpeechStarted {
                    at_ms: self.start_ms,
                });
            }
            self.processed += self.frame.len() as u64;
            if self.in_speech {
                self.utterance.extend_from_slice(&self.frame);
                self.quiet_frames = if loud { 0 } else { self.quiet_frames + 1 };
                if self.quiet_frames == 1 && self.hangover_frames > 1 {
                    events.push(VadEvent::SpeechPaused {
                        at_ms: Self::ms(self.processed) - u64::from(crate::FRAME_MS),
                    });
                }
                if self.quiet_frames >= self.hangover_frames {
                    self.end(&mut events);
                }
            }
            self.frame.clear();
        }
        Ok(events)
    }

    fn flush(&mut self) -> Result<Vec<VadEvent>, VoiceError> {
        let mut events = Vec::new();
        if self.in_speech {
            self.end(&mut events);
        }
        Ok(events)
    }
}

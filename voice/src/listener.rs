//! The listening half of a call: VAD and a recognition stream joined, with pre-roll. Audio goes
//! in as it arrives; speech-start (for barge-in), partial and final transcripts come out. The
//! VAD reports a start only after some speech, so the audio from just before its estimated start
//! is kept and handed to the recognizer first — otherwise the first word is lost.

use crate::asr::{AsrStream, Transcript};
use crate::audio::SAMPLE_RATE;
use crate::vad::{VadEvent, VoiceActivity};
use crate::VoiceError;
use std::collections::VecDeque;

/// How much audio is kept while no one speaks.
const PREROLL_MS: u64 = 1000;
/// How far before the VAD's estimated start the recognizer's audio begins.
const PREROLL_MARGIN_MS: u64 = 100;

/// What the listener heard. Times are milliseconds from the start of the stream.
#[derive(Debug, Clone, PartialEq)]
pub enum SpeechEvent {
    /// The caller started speaking: stop the bot's audio (barge-in).
    Started { at_ms: u64 },
    /// The stable part of what is being said so far.
    Partial {
        start_ms: u64,
        transcript: Transcript,
    },
    /// The caller paused and the recognizer has decoded everything up to the pause: the final
    /// this utterance will have if the pause is its end (not yet confirmed by the VAD's
    /// hang-over). A dialogue may start on it and drop it if the final differs.
    Speculative {
        start_ms: u64,
        transcript: Transcript,
    },
    /// The utterance ended; its final text.
    Final {
        start_ms: u64,
        end_ms: u64,
        transcript: Transcript,
    },
}

/// VAD + ASR for one audio stream (one call). Feed chunks of up to about 100 ms: a chunk is
/// given to the recognizer whole, so a long chunk blurs utterance boundaries.
pub struct Listener {
    vad: Box<dyn VoiceActivity>,
    asr: Box<dyn AsrStream>,
    /// Chunks heard outside speech, with their start time, oldest first.
    preroll: VecDeque<(u64, Vec<i16>)>,
    preroll_samples: usize,
    in_speech: bool,
    start_ms: u64,
    /// Samples pushed so far.
    position: u64,
    /// Stream time (ms) of the first sample given to the recognizer for this utterance.
    asr_origin_ms: Option<u64>,
}

impl std::fmt::Debug for Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listener")
            .field("in_speech", &self.in_speech)
            .field("position", &self.position)
            .finish()
    }
}

impl Listener {
    pub fn new(vad: Box<dyn VoiceActivity>, asr: Box<dyn AsrStream>) -> Self {
        Self {
            vad,
            asr,
            preroll: VecDeque::new(),
            preroll_samples: 0,
            in_speech: false,
            start_ms: 0,
            position: 0,
            asr_origin_ms: None,
        }
    }

    /// Takes the next chunk of 16 kHz mono PCM and returns what it completed, in order.
    pub fn push(&mut self, pcm: &[i16]) -> Result<Vec<SpeechEvent>, VoiceError> {
        let chunk_start = self.position * 1000 / u64::from(SAMPLE_RATE);
        self.position += pcm.len() as u64;
        let vad_events = self.vad.push(pcm)?;
        let mut out = Vec::new();
        if self.in_speech {
            self.feed(chunk_start, pcm, &mut out)?;
        } else {
            self.keep(chunk_start, pcm);
        }
        self.handle(vad_events, &mut out)?;
        if self.in_speech {
            if let Some(transcript) = self.asr.take_speculative() {
                out.push(SpeechEvent::Speculative {
                    start_ms: self.start_ms,
                    transcript,
                });
            }
        }
        Ok(out)
    }

    /// End of the stream: closes an utterance still open.
    pub fn flush(&mut self) -> Result<Vec<SpeechEvent>, VoiceError> {
        let vad_events = self.vad.flush()?;
        let mut out = Vec::new();
        self.handle(vad_events, &mut out)?;
        Ok(out)
    }

    fn keep(&mut self, start_ms: u64, pcm: &[i16]) {
        self.preroll.push_back((start_ms, pcm.to_vec()));
        self.preroll_samples += pcm.len();
        let max = (PREROLL_MS * u64::from(SAMPLE_RATE) / 1000) as usize;
        while self.preroll_samples > max && self.preroll.len() > 1 {
            if let Some((_, old)) = self.preroll.pop_front() {
                self.preroll_samples -= old.len();
            }
        }
    }

    fn feed(
        &mut self,
        start_ms: u64,
        pcm: &[i16],
        out: &mut Vec<SpeechEvent>,
    ) -> Result<(), VoiceError> {
        self.asr_origin_ms.get_or_insert(start_ms);
        if let Some(transcript) = self.asr.push(pcm)? {
            out.push(SpeechEvent::Partial {
                start_ms: self.start_ms,
                transcript,
            });
        }
        Ok(())
    }

    fn handle(
        &mut self,
        events: Vec<VadEvent>,
        out: &mut Vec<SpeechEvent>,
    ) -> Result<(), VoiceError> {
        for event in events {
            match event {
                VadEvent::SpeechStarted { at_ms } => {
                    self.in_speech = true;
                    self.start_ms = at_ms;
                    out.push(SpeechEvent::Started { at_ms });
                    let from = at_ms.saturating_sub(PREROLL_MARGIN_MS);
                    let chunks: Vec<_> = self.preroll.drain(..).collect();
                    self.preroll_samples = 0;
                    for (start, pcm) in chunks {
                        let end = start + pcm.len() as u64 * 1000 / u64::from(SAMPLE_RATE);
                        if end > from {
                            self.feed(start, &pcm, out)?;
                        }
                    }
                }
                VadEvent::SpeechPaused { .. } => {
                    if self.in_speech {
                        self.asr.speculate()?;
                    }
                }
                VadEvent::SpeechEnded {
                    start_ms, end_ms, ..
                } => {
                    self.in_speech = false;
                    // Where the speech ended in what the recognizer was given.
                    let origin = self.asr_origin_ms.take().unwrap_or(start_ms);
                    let speech_end = end_ms.saturating_sub(origin) * u64::from(SAMPLE_RATE) / 1000;
                    let transcript = self
                        .asr
                        .finish_at(usize::try_from(speech_end).unwrap_or(usize::MAX))?;
                    out.push(SpeechEvent::Final {
                        start_ms,
                        end_ms,
                        transcript,
                    });
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::asr::{AsrOptions, FakeAsr, SpeechToText};
    use crate::vad::EnergyVad;

    fn tone(ms: usize) -> Vec<i16> {
        (0..ms * 16)
            .map(|i| ((i as f32 * 0.2).sin() * 6000.0) as i16)
            .collect()
    }

    #[test]
    fn hears_each_utterance_with_its_start_and_final() {
        let asr = FakeAsr {
            script: vec!["first".into(), "second".into()],
        };
        let mut l = Listener::new(
            Box::new(EnergyVad::new(500.0, 300)),
            asr.start(&AsrOptions::default()).expect("start"),
        );
        let mut audio = vec![0i16; 8000];
        for _ in 0..2 {
            audio.extend(tone(1000));
            audio.extend(vec![0i16; 9600]);
        }
        let mut events = Vec::new();
        for chunk in audio.chunks(320) {
            events.extend(l.push(chunk).expect("push"));
        }
        events.extend(l.flush().expect("flush"));
        let kinds: Vec<String> = events
            .iter()
            .filter_map(|e| match e {
                SpeechEvent::Started { at_ms } => Some(format!("start@{at_ms}")),
                SpeechEvent::Final { transcript, .. } => Some(format!("final:{}", transcript.text)),
                SpeechEvent::Speculative { transcript, .. } => {
                    Some(format!("pause:{}", transcript.text))
                }
                SpeechEvent::Partial { .. } => None,
            })
            .collect();
        // At each pause the recognizer's guess at the final comes first, then the VAD's
        // hang-over confirms the end and the final follows.
        assert_eq!(
            kinds,
            vec![
                "start@500",
                "pause:first",
                "final:first",
                "start@2100",
                "pause:second",
                "final:second"
            ]
        );
    }

    /// A VAD that reports the start late (as Silero does) still gets the pre-roll to the ASR.
    #[test]
    fn preroll_reaches_the_recognizer() {
        struct LateVad(u64);
        impl VoiceActivity for LateVad {
            fn push(&mut self, pcm: &[i16]) -> Result<Vec<VadEvent>, VoiceError> {
                self.0 += pcm.len() as u64;
                Ok(if self.0 == 16_000 {
                    vec![VadEvent::SpeechStarted { at_ms: 700 }]
                } else {
                    vec![]
                })
            }
            fn flush(&mut self) -> Result<Vec<VadEvent>, VoiceError> {
                Ok(vec![VadEvent::SpeechEnded {
                    start_ms: 700,
                    end_ms: 1000,
                    samples: vec![],
                }])
            }
        }
        struct CountingAsr(std::sync::Arc<std::sync::atomic::AtomicUsize>);
        impl AsrStream for CountingAsr {
            fn push(&mut self, pcm: &[i16]) -> Result<Option<Transcript>, VoiceError> {
                self.0
                    .fetch_add(pcm.len(), std::sync::atomic::Ordering::SeqCst);
                Ok(None)
            }
            fn finish(&mut self) -> Result<Transcript, VoiceError> {
                Ok(Transcript {
                    text: String::new(),
                    is_final: true,
                    avg_logprob: 0.0,
                    no_speech_prob: 0.0,
                })
            }
        }
        let pushed = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut l = Listener::new(Box::new(LateVad(0)), Box::new(CountingAsr(pushed.clone())));
        for chunk in vec![0i16; 16_000].chunks(320) {
            l.push(chunk).expect("push");
        }
        // The start was reported at 1000 ms for speech from 700 ms: 600..1000 ms reach the ASR.
        assert_eq!(pushed.load(std::sync::atomic::Ordering::SeqCst), 400 * 16);
    }

    /// A pause inside speech asks the recognizer to speculate; the end tells it where the
    /// speech stopped in the audio it was given (pre-roll included).
    #[test]
    fn pause_speculates_and_end_says_where_speech_stopped() {
        use std::sync::{Arc, Mutex};
        struct Recording(Arc<Mutex<Vec<String>>>);
        impl AsrStream for Recording {
            fn push(&mut self, _pcm: &[i16]) -> Result<Option<Transcript>, VoiceError> {
                Ok(None)
            }
            fn speculate(&mut self) -> Result<(), VoiceError> {
                self.0.lock().expect("lock").push("speculate".into());
                Ok(())
            }
            fn finish(&mut self) -> Result<Transcript, VoiceError> {
                unreachable!("the listener knows where the speech ended")
            }
            fn finish_at(&mut self, speech_end: usize) -> Result<Transcript, VoiceError> {
                self.0
                    .lock()
                    .expect("lock")
                    .push(format!("finish_at {speech_end}"));
                Ok(Transcript {
                    text: String::new(),
                    is_final: true,
                    avg_logprob: 0.0,
                    no_speech_prob: 0.0,
                })
            }
        }
        let calls = Arc::new(Mutex::new(Vec::new()));
        let mut l = Listener::new(
            Box::new(EnergyVad::new(500.0, 300)),
            Box::new(Recording(calls.clone())),
        );
        let mut audio = vec![0i16; 8000];
        audio.extend(tone(1000));
        audio.extend(vec![0i16; 9600]);
        for chunk in audio.chunks(320) {
            l.push(chunk).expect("push");
        }
        // Speech 500..1500 ms; the recognizer's audio starts 100 ms before the start.
        assert_eq!(
            *calls.lock().expect("lock"),
            vec!["speculate".to_string(), format!("finish_at {}", 1100 * 16)]
        );
    }
}

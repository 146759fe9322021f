//! A `Listener` (VAD + streaming ASR) run on the blocking pool for one audio stream, one batch
//! of frames in flight at a time: no thread per call, and frames that arrive while a batch runs
//! are queued and go in the next one. Each event comes back with the stream time (ms) of the
//! frame that produced it and the instant it was produced. The call session listens to the
//! caller with it; the simulated callee listens to the bot with it.

use std::time::Instant;
use tokio::task::JoinHandle;
use voice::{Listener, SpeechEvent};

/// Events of one batch: (stream time of the frame's end, when it was produced, the event).
pub type HeardEvents = Vec<(u64, Instant, SpeechEvent)>;

type Batch = (Box<Listener>, Result<HeardEvents, voice::VoiceError>);

/// A listener on the blocking pool.
pub struct Ears {
    listener: Option<Box<Listener>>,
    inflight: Option<JoinHandle<Batch>>,
    queued: Vec<(u64, Vec<i16>)>,
}

impl std::fmt::Debug for Ears {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ears")
            .field("queued", &self.queued.len())
            .field("inflight", &self.inflight.is_some())
            .finish()
    }
}

impl Ears {
    pub fn new(listener: Listener) -> Self {
        Self {
            listener: Some(Box::new(listener)),
            inflight: None,
            queued: Vec::new(),
        }
    }

    /// Frames waiting for the next batch.
    pub fn queued(&self) -> usize {
        self.queued.len()
    }

    /// Queues one frame ending at stream time `end_ms`; starts a batch if none runs.
    pub fn push(&mut self, end_ms: u64, pcm: Vec<i16>) {
        self.queued.push((end_ms, pcm));
        self.start_batch();
    }

    fn start_batch(&mut self) {
        if self.inflight.is_some() || self.queued.is_empty() {
            return;
        }
        let Some(mut listener) = self.listener.take() else {
            return;
        };
        let batch = std::mem::take(&mut self.queued);
        self.inflight = Some(tokio::task::spawn_blocking(move || {
            let mut out = Vec::new();
            for (end_ms, pcm) in batch {
                match listener.push(&pcm) {
                    Ok(events) => {
                        let now = Instant::now();
                        out.extend(events.into_iter().map(|e| (end_ms, now, e)));
                    }
                    Err(e) => return (listener, Err(e)),
                }
            }
            (listener, Ok(out))
        }));
    }

    /// The next batch's events (pending forever while none runs: use in `select!`). Starts the
    /// next batch with what queued meanwhile.
    pub async fn next(&mut self) -> Result<HeardEvents, voice::VoiceError> {
        let Some(handle) = self.inflight.as_mut() else {
            return std::future::pending().await;
        };
        let result = handle.await;
        self.inflight = None;
        let (listener, events) = match result {
            Ok(batch) => batch,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => {
                return Err(voice::VoiceError::InvalidInput(format!(
                    "listener task cancelled: {e}"
                )))
            }
        };
        self.listener = Some(listener);
        self.start_batch();
        events
    }
}

//! The line a call runs over: the [`CallTransport`] trait (caller frames in, the bot's frames and
//! the call's events out), the [`LineCodec`] that turns a line's negotiated format (8 or 16 kHz,
//! PCM16 or G.711) into the 16 kHz PCM the engines hear, and [`ChannelTransport`], the in-process
//! line the simulated callee and unit tests use. The gRPC line is in `grpc.rs`; a SIP/RTP line
//! implements the same trait.

use crate::session::CallEvent;
use async_trait::async_trait;
use std::collections::VecDeque;
use std::time::Duration;
use tokio::sync::mpsc;
use voice::audio::g711::G711Law;
use voice::audio::{StreamResampler, FRAME_SAMPLES, SAMPLE_RATE};

/// Longest chunk of audio one message may carry: 200 ms. A line sends 20 ms frames; more than
/// this is a client bug, not audio to buffer.
pub const MAX_CHUNK_MS: u32 = 200;

/// What went wrong on the line.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The far end sent something that is not audio of the negotiated format.
    #[error("invalid audio from the line: {0}")]
    InvalidAudio(String),
    /// The far end went away (stream reset, connection closed).
    #[error("the line went away: {0}")]
    Gone(String),
    /// The far end stopped reading what the bot says for longer than the send timeout.
    #[error("the line stopped reading for {0:?}")]
    Stalled(Duration),
}

/// How audio is coded on the line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LineEncoding {
    /// Signed 16-bit little-endian PCM.
    Pcm16,
    /// G.711 μ-law.
    Ulaw,
    /// G.711 A-law.
    Alaw,
}

/// The audio format both directions of a line use, negotiated at call start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineFormat {
    /// 8000 or 16000.
    pub sample_rate: u32,
    pub encoding: LineEncoding,
}

impl LineFormat {
    /// The engines' own format: 16 kHz PCM16.
    pub const WIDEBAND_PCM: LineFormat = LineFormat {
        sample_rate: SAMPLE_RATE,
        encoding: LineEncoding::Pcm16,
    };
    /// A narrowband phone line: 8 kHz μ-law.
    pub const PHONE_ULAW: LineFormat = LineFormat {
        sample_rate: 8_000,
        encoding: LineEncoding::Ulaw,
    };

    /// Checks the rate is one a line may negotiate.
    pub fn validate(self) -> Result<Self, TransportError> {
        if self.sample_rate != 8_000 && self.sample_rate != SAMPLE_RATE {
            return Err(TransportError::InvalidAudio(format!(
                "sample rate {} Hz is not supported: use 8000 or 16000",
                self.sample_rate
            )));
        }
        Ok(self)
    }

    fn bytes_per_sample(self) -> usize {
        match self.encoding {
            LineEncoding::Pcm16 => 2,
            LineEncoding::Ulaw | LineEncoding::Alaw => 1,
        }
    }

    /// Bytes in `ms` milliseconds of audio.
    pub fn bytes_for_ms(self, ms: u32) -> usize {
        (self.sample_rate * ms / 1000) as usize * self.bytes_per_sample()
    }
}

/// Converts one call's audio between the line's format and 16 kHz PCM, both ways, keeping the
/// resamplers' state across frames, and re-cuts the caller's audio into 20 ms frames.
#[derive(Debug)]
pub struct LineCodec {
    format: LineFormat,
    up: StreamResampler,
    down: StreamResampler,
    /// Decoded caller audio (16 kHz) not yet handed out as a whole frame.
    pending: VecDeque<i16>,
    scratch: Vec<i16>,
}

impl LineCodec {
    pub fn new(format: LineFormat) -> Result<Self, TransportError> {
        let format = format.validate()?;
        let resampler = |from, to| {
            StreamResampler::new(from, to).map_err(|e| TransportError::InvalidAudio(e.to_string()))
        };
        Ok(Self {
            format,
            up: resampler(format.sample_rate, SAMPLE_RATE)?,
            down: resampler(SAMPLE_RATE, format.sample_rate)?,
            pending: VecDeque::new(),
            scratch: Vec::new(),
        })
    }

    pub fn format(&self) -> LineFormat {
        self.format
    }

    /// Takes one chunk from the line (any length up to [`MAX_CHUNK_MS`], whole samples) and
    /// returns the complete 20 ms frames of 16 kHz PCM it finished.
    pub fn decode(&mut self, bytes: &[u8]) -> Result<Vec<Vec<i16>>, TransportError> {
        let max = self.format.bytes_for_ms(MAX_CHUNK_MS);
        if bytes.len() > max {
            return Err(TransportError::InvalidAudio(format!(
                "a chunk of {} bytes is over the {MAX_CHUNK_MS} ms limit ({max} bytes at {} Hz {:?}); send 20 ms frames",
                bytes.len(),
                self.format.sample_rate,
                self.format.encoding
            )));
        }
        let bps = self.format.bytes_per_sample();
        if !bytes.len().is_multiple_of(bps) {
            return Err(TransportError::InvalidAudio(format!(
                "a chunk of {} bytes is not whole {bps}-byte samples",
                bytes.len()
            )));
        }
        self.scratch.clear();
        match self.format.encoding {
            LineEncoding::Pcm16 => self.scratch.extend(
                bytes
                    .chunks_exact(2)
                    .map(|b| i16::from_le_bytes([b[0], b[1]])),
            ),
            LineEncoding::Ulaw => G711Law::MuLaw.decode_into(bytes, &mut self.scratch),
            LineEncoding::Alaw => G711Law::ALaw.decode_into(bytes, &mut self.scratch),
        }
        let mut wide = Vec::with_capacity(self.scratch.len() * 2);
        self.up
            .process(&self.scratch, &mut wide)
            .map_err(|e| TransportError::InvalidAudio(e.to_string()))?;
        self.pending.extend(wide);
        let mut frames = Vec::new();
        while self.pending.len() >= FRAME_SAMPLES {
            frames.push(self.pending.drain(..FRAME_SAMPLES).collect());
        }
        Ok(frames)
    }

    /// Codes 16 kHz PCM of the bot for the line.
    pub fn encode(&mut self, pcm: &[i16]) -> Result<Vec<u8>, TransportError> {
        let mut narrow = Vec::with_capacity(pcm.len());
        self.down
            .process(pcm, &mut narrow)
            .map_err(|e| TransportError::InvalidAudio(e.to_string()))?;
        let mut out = Vec::with_capacity(narrow.len() * 2);
        match self.format.encoding {
            LineEncoding::Pcm16 => out.extend(narrow.iter().flat_map(|s| s.to_le_bytes())),
            LineEncoding::Ulaw => G711Law::MuLaw.encode_into(&narrow, &mut out),
            LineEncoding::Alaw => G711Law::ALaw.encode_into(&narrow, &mut out),
        }
        Ok(out)
    }
}

/// A call's line as seen by the [`crate::session::CallSession`]: 20 ms frames of the caller at
/// 16 kHz in, the bot's frames and the call's events out. Implementations: the gRPC `Call`
/// stream, [`ChannelTransport`] (in-process), and later SIP/RTP.
#[async_trait]
pub trait CallTransport: Send {
    /// The next 20 ms of caller audio (16 kHz mono PCM); `Ok(None)` when the far end hung up.
    async fn recv(&mut self) -> Result<Option<Vec<i16>>, TransportError>;
    /// Hands one event (bot audio frame, transcript, decision, hand-off, end) to the line.
    /// Awaits while the line's queue is full: a line that stops reading slows the call, and
    /// one stalled past its timeout fails the call with [`TransportError::Stalled`].
    async fn send(&mut self, event: CallEvent) -> Result<(), TransportError>;
}

/// What a far end sends into an in-process line.
#[derive(Debug, Clone)]
pub enum LineInput {
    /// One chunk of audio in the line's format.
    Audio(Vec<u8>),
    /// The far end hangs up.
    Hangup,
}

/// An in-process line: the far end sends [`LineInput`] coded in the line's format (so audio takes
/// the same codec path as over the network) and receives [`CallEvent`]s with the bot's audio
/// still as 16 kHz PCM. Bounded both ways.
#[derive(Debug)]
pub struct ChannelTransport {
    codec: LineCodec,
    inbound: mpsc::Receiver<LineInput>,
    outbound: mpsc::Sender<CallEvent>,
    ready: VecDeque<Vec<i16>>,
    send_timeout: Duration,
}

/// The far end's half of a [`ChannelTransport`].
#[derive(Debug)]
pub struct FarEnd {
    pub to_bot: mpsc::Sender<LineInput>,
    pub from_bot: mpsc::Receiver<CallEvent>,
    pub format: LineFormat,
}

impl ChannelTransport {
    /// A line pair with `queue` messages of room each way.
    pub fn pair(format: LineFormat, queue: usize) -> Result<(Self, FarEnd), TransportError> {
        let (to_bot, inbound) = mpsc::channel(queue.max(1));
        let (outbound, from_bot) = mpsc::channel(queue.max(1));
        Ok((
            Self {
                codec: LineCodec::new(format)?,
                inbound,
                outbound,
                ready: VecDeque::new(),
                send_timeout: Duration::from_secs(10),
            },
            FarEnd {
                to_bot,
                from_bot,
                format,
            },
        ))
    }
}

#[async_trait]
impl CallTransport for ChannelTransport {
    async fn recv(&mut self) -> Result<Option<Vec<i16>>, TransportError> {
        loop {
            if let Some(frame) = self.ready.pop_front() {
                return Ok(Some(frame));
            }
            match self.inbound.recv().await {
                Some(LineInput::Audio(bytes)) => self.ready.extend(self.codec.decode(&bytes)?),
                Some(LineInput::Hangup) | None => return Ok(None),
            }
        }
    }

    async fn send(&mut self, event: CallEvent) -> Result<(), TransportError> {
        match tokio::time::timeout(self.send_timeout, self.outbound.send(event)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(TransportError::Gone("the far end closed".into())),
            Err(_) => Err(TransportError::Stalled(self.send_timeout)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(samples: usize, rate: u32) -> Vec<i16> {
        (0..samples)
            .map(|i| {
                ((i as f32 * 440.0 * std::f32::consts::TAU / rate as f32).sin() * 8000.0) as i16
            })
            .collect()
    }

    #[test]
    fn narrowband_ulaw_round_trips_into_20ms_wideband_frames() {
        let mut codec = LineCodec::new(LineFormat::PHONE_ULAW).expect("codec");
        let narrow = tone(8000, 8000);
        let mut coded = Vec::new();
        G711Law::MuLaw.encode_into(&narrow, &mut coded);
        let mut frames = Vec::new();
        for chunk in coded.chunks(160) {
            frames.extend(codec.decode(chunk).expect("decode"));
        }
        assert!(frames.iter().all(|f| f.len() == FRAME_SAMPLES));
        // One second in; the resampler's delay holds back less than two frames.
        assert!((48..=50).contains(&frames.len()), "{} frames", frames.len());
        let back = codec.encode(&frames.concat()).expect("encode");
        assert!(back.len() > 7000 && back.len() <= 8000, "{}", back.len());
    }

    #[test]
    fn bad_chunks_are_refused_with_the_reason() {
        let mut codec = LineCodec::new(LineFormat::WIDEBAND_PCM).expect("codec");
        let odd = codec.decode(&[0u8; 3]).expect_err("odd bytes");
        assert!(odd.to_string().contains("whole 2-byte samples"), "{odd}");
        let big = codec.decode(&vec![0u8; 16_000 * 2]).expect_err("oversized");
        assert!(big.to_string().contains("200 ms"), "{big}");
        let rate = LineCodec::new(LineFormat {
            sample_rate: 44_100,
            encoding: LineEncoding::Pcm16,
        })
        .expect_err("rate");
        assert!(rate.to_string().contains("8000 or 16000"), "{rate}");
    }
}

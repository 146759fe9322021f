//! Audio plumbing: 16 kHz mono 16-bit PCM in 20 ms frames, sample conversions, WAV I/O, and the
//! telephony pieces (G.711 codecs, rate conversion, call recording, phone-line simulation).

pub mod g711;
mod line;
mod recorder;
mod resample;

pub use line::telephone_band;
pub use recorder::{CallRecorder, RecordingInfo};
pub use resample::{resample, StreamResampler};

use crate::VoiceError;
use std::path::Path;

/// Sample rate the recognizer and the VAD work at.
pub const SAMPLE_RATE: u32 = 16_000;
/// Length of one frame on the wire.
pub const FRAME_MS: u32 = 20;
/// Sample rate of a narrowband (G.711) phone line.
pub const TELEPHONE_RATE: u32 = 8_000;
/// Samples in one 20 ms frame at [`SAMPLE_RATE`].
pub const FRAME_SAMPLES: usize = (SAMPLE_RATE * FRAME_MS / 1000) as usize;

/// A run of mono 16-bit PCM at a given sample rate.
#[derive(Debug, Clone, PartialEq)]
pub struct AudioChunk {
    pub sample_rate: u32,
    pub samples: Vec<i16>,
}

impl AudioChunk {
    pub fn duration_ms(&self) -> f64 {
        self.samples.len() as f64 * 1000.0 / f64::from(self.sample_rate.max(1))
    }
}

/// i16 PCM → f32 in [-1, 1).
pub fn pcm_to_f32(pcm: &[i16], out: &mut Vec<f32>) {
    out.extend(pcm.iter().map(|&s| f32::from(s) / 32768.0));
}

/// f32 in [-1, 1] → i16 PCM, clipping.
pub fn f32_to_pcm(samples: &[f32]) -> Vec<i16> {
    samples
        .iter()
        .map(|&s| (s.clamp(-1.0, 1.0) * 32767.0).round() as i16)
        .collect()
}

/// Reads a mono or stereo 16-bit WAV file; stereo is mixed down.
pub fn read_wav(path: &Path) -> Result<AudioChunk, VoiceError> {
    let mut reader = hound::WavReader::open(path)?;
    let spec = reader.spec();
    if spec.sample_format != hound::SampleFormat::Int || spec.bits_per_sample != 16 {
        return Err(VoiceError::InvalidInput(format!(
            "{}: only 16-bit PCM WAV is supported, got {:?} {} bits",
            path.display(),
            spec.sample_format,
            spec.bits_per_sample
        )));
    }
    let raw: Vec<i16> = reader.samples::<i16>().collect::<Result<_, _>>()?;
    let channels = usize::from(spec.channels.max(1));
    let samples = if channels == 1 {
        raw
    } else {
        raw.chunks(channels)
            .map(|c| (c.iter().map(|&s| i32::from(s)).sum::<i32>() / channels as i32) as i16)
            .collect()
    };
    Ok(AudioChunk {
        sample_rate: spec.sample_rate,
        samples,
    })
}

/// Writes mono 16-bit PCM as a WAV file.
pub fn write_wav(path: &Path, audio: &AudioChunk) -> Result<(), VoiceError> {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: audio.sample_rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec)?;
    for &s in &audio.samples {
        w.write_sample(s)?;
    }
    w.finalize()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wav_round_trip() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("a.wav");
        let audio = AudioChunk {
            sample_rate: 16000,
            samples: vec![0, 100, -100, i16::MAX, i16::MIN],
        };
        write_wav(&path, &audio)?;
        assert_eq!(read_wav(&path)?, audio);
        Ok(())
    }
}

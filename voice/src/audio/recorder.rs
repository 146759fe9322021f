//! Call recording: one stereo 16-bit WAV per call, caller on the left channel and bot on the
//! right, fed independently by each side and lined up by sample time.
//!
//! Each side's samples are its own clock: sample `i` of the caller and sample `i` of the bot
//! land in the same stereo frame. Frames are written as soon as both sides have reached them;
//! only the lead of one side over the other is held in memory.

use crate::VoiceError;
use std::collections::VecDeque;
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What a finished recording holds.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordingInfo {
    pub path: PathBuf,
    pub sample_rate: u32,
    /// Stereo frames in the file (the longer side, after padding the other with silence).
    pub frames: u64,
    pub duration: Duration,
    /// Samples pushed by the caller side, before padding.
    pub caller_samples: u64,
    /// Samples pushed by the bot side, before padding.
    pub bot_samples: u64,
}

/// Stereo WAV writer for one call. Caller audio goes to the left channel, bot audio to the right.
///
/// The two sides are independent streams at the same rate: when one side has been quiet (the
/// bot between turns, say) and is about to be heard again, call [`align`](Self::align) first
/// so its audio starts at the current time rather than right after its last sample.
pub struct CallRecorder {
    path: PathBuf,
    sample_rate: u32,
    writer: hound::WavWriter<BufWriter<File>>,
    /// Caller samples the bot side has not reached yet (empty whenever `bot` is not).
    caller: VecDeque<i16>,
    /// Bot samples the caller side has not reached yet (empty whenever `caller` is not).
    bot: VecDeque<i16>,
    frames: u64,
    caller_samples: u64,
    bot_samples: u64,
}

impl std::fmt::Debug for CallRecorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallRecorder")
            .field("path", &self.path)
            .field("sample_rate", &self.sample_rate)
            .field("frames", &self.frames)
            .field("caller_pending", &self.caller.len())
            .field("bot_pending", &self.bot.len())
            .finish()
    }
}

#[derive(Clone, Copy)]
enum Side {
    Caller,
    Bot,
}

impl CallRecorder {
    /// Creates (or truncates) the WAV file at `path`, recording at `sample_rate` Hz.
    pub fn create(path: &Path, sample_rate: u32) -> Result<Self, VoiceError> {
        if sample_rate == 0 {
            return Err(VoiceError::InvalidInput(format!(
                "{}: a call recording needs a sample rate above 0 Hz",
                path.display()
            )));
        }
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let writer = hound::WavWriter::create(path, spec)?;
        Ok(Self {
            path: path.to_path_buf(),
            sample_rate,
            writer,
            caller: VecDeque::new(),
            bot: VecDeque::new(),
            frames: 0,
            caller_samples: 0,
            bot_samples: 0,
        })
    }

    /// Appends caller audio (left channel).
    pub fn push_caller(&mut self, pcm: &[i16]) -> Result<(), VoiceError> {
        self.push(Side::Caller, pcm)
    }

    /// Appends bot audio (right channel).
    pub fn push_bot(&mut self, pcm: &[i16]) -> Result<(), VoiceError> {
        self.push(Side::Bot, pcm)
    }

    /// Pads the lagging side with silence up to the leading one, so that whatever either side
    /// pushes next starts at the same time.
    pub fn align(&mut self) -> Result<(), VoiceError> {
        while let Some(left) = self.caller.pop_front() {
            self.write_frame(left, 0)?;
        }
        while let Some(right) = self.bot.pop_front() {
            self.write_frame(0, right)?;
        }
        Ok(())
    }

    /// Length of the recording so far (the leading side), in seconds.
    pub fn duration(&self) -> Duration {
        let lead = self.caller.len().max(self.bot.len()) as u64;
        frames_to_duration(self.frames + lead, self.sample_rate)
    }

    /// Pads the shorter side with silence, finalizes the WAV header and closes the file.
    pub fn finish(mut self) -> Result<RecordingInfo, VoiceError> {
        self.align()?;
        self.writer.finalize()?;
        Ok(RecordingInfo {
            path: self.path,
            sample_rate: self.sample_rate,
            frames: self.frames,
            duration: frames_to_duration(self.frames, self.sample_rate),
            caller_samples: self.caller_samples,
            bot_samples: self.bot_samples,
        })
    }

    fn push(&mut self, side: Side, pcm: &[i16]) -> Result<(), VoiceError> {
        let Self {
            writer,
            caller,
            bot,
            frames,
            caller_samples,
            bot_samples,
            ..
        } = self;
        let (mine, other) = match side {
            Side::Caller => {
                *caller_samples += pcm.len() as u64;
                (caller, bot)
            }
            Side::Bot => {
                *bot_samples += pcm.len() as u64;
                (bot, caller)
            }
        };
        // Pair the new samples with what the other side already has, then keep the rest.
        let (now, later) = pcm.split_at(other.len().min(pcm.len()));
        for &new in now {
            let old = other.pop_front().unwrap_or(0);
            match side {
                Side::Caller => write_frame(writer, frames, new, old)?,
                Side::Bot => write_frame(writer, frames, old, new)?,
            }
        }
        mine.extend(later);
        Ok(())
    }

    fn write_frame(&mut self, caller: i16, bot: i16) -> Result<(), VoiceError> {
        write_frame(&mut self.writer, &mut self.frames, caller, bot)
    }
}

fn write_frame(
    writer: &mut hound::WavWriter<BufWriter<File>>,
    frames: &mut u64,
    caller: i16,
    bot: i16,
) -> Result<(), VoiceError> {
    writer.write_sample(caller)?;
    writer.write_sample(bot)?;
    *frames += 1;
    Ok(())
}

fn frames_to_duration(frames: u64, sample_rate: u32) -> Duration {
    Duration::from_secs_f64(frames as f64 / f64::from(sample_rate.max(1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_stereo(path: &Path) -> anyhow::Result<(hound::WavSpec, Vec<i16>, Vec<i16>)> {
        let mut reader = hound::WavReader::open(path)?;
        let spec = reader.spec();
        let samples: Vec<i16> = reader.samples::<i16>().collect::<Result<_, _>>()?;
        let left = samples.iter().step_by(2).copied().collect();
        let right = samples.iter().skip(1).step_by(2).copied().collect();
        Ok((spec, left, right))
    }

    #[test]
    fn channels_hold_each_side_and_the_short_one_is_padded() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("call.wav");
        let caller: Vec<i16> = (0..16_000).map(|i| (i % 1000) as i16 + 1).collect();
        let bot: Vec<i16> = (0..12_000).map(|i| -((i % 700) as i16) - 1).collect();

        let mut rec = CallRecorder::create(&path, 16_000)?;
        // Uneven, interleaved pushes: 20 ms frames from the caller, odd chunks from the bot.
        let mut bot_chunks = bot.chunks(777);
        for frame in caller.chunks(320) {
            rec.push_caller(frame)?;
            if let Some(chunk) = bot_chunks.next() {
                rec.push_bot(chunk)?;
            }
        }
        for chunk in bot_chunks {
            rec.push_bot(chunk)?;
        }
        rec.push_bot(&[])?;
        let info = rec.finish()?;

        assert_eq!(info.frames, 16_000);
        assert_eq!(info.duration, Duration::from_secs(1));
        assert_eq!((info.caller_samples, info.bot_samples), (16_000, 12_000));
        let (spec, left, right) = read_stereo(&path)?;
        assert_eq!(
            (spec.channels, spec.sample_rate, spec.bits_per_sample),
            (2, 16_000, 16)
        );
        assert_eq!(left, caller);
        assert_eq!(&right[..12_000], &bot[..]);
        assert!(right[12_000..].iter().all(|&s| s == 0));
        Ok(())
    }

    #[test]
    fn align_places_the_next_turn_at_the_current_time() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("turns.wav");
        let mut rec = CallRecorder::create(&path, 8_000)?;
        rec.push_caller(&[1000; 8_000])?; // caller speaks for a second
        assert_eq!(rec.duration(), Duration::from_secs(1));
        rec.align()?; // bot's turn starts now
        rec.push_bot(&[-2000; 4_000])?;
        rec.push_caller(&[0; 4_000])?;
        let info = rec.finish()?;
        assert_eq!(info.frames, 12_000);
        let (_, left, right) = read_stereo(&path)?;
        assert!(left[..8_000].iter().all(|&s| s == 1000));
        assert!(right[..8_000].iter().all(|&s| s == 0));
        assert!(right[8_000..].iter().all(|&s| s == -2000));
        Ok(())
    }

    #[test]
    fn empty_recording_is_a_valid_wav() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("empty.wav");
        let info = CallRecorder::create(&path, 16_000)?.finish()?;
        assert_eq!(info.frames, 0);
        assert_eq!(info.duration, Duration::ZERO);
        let (spec, left, right) = read_stereo(&path)?;
        assert_eq!(spec.channels, 2);
        assert!(left.is_empty() && right.is_empty());
        Ok(())
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        assert!(CallRecorder::create(&dir.path().join("zero.wav"), 0).is_err());
        let missing_dir = dir.path().join("no").join("such").join("dir.wav");
        assert!(CallRecorder::create(&missing_dir, 16_000).is_err());
        Ok(())
    }
}

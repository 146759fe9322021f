//! Sample-rate conversion of mono 16-bit PCM between the phone line (8 kHz), the recognizer
//! (16 kHz) and the Piper voices (22.05 kHz): one-shot, or streaming in chunks of any size.
//!
//! Built on rubato's synchronous FFT resampler with a windowed-sinc anti-aliasing filter
//! (Blackman-Harris, passband to about 0.9 of the lower Nyquist frequency). The filter's start-up
//! delay is trimmed, so output sample `i` lines up with input time `i / to` — exactly between
//! 8 and 16 kHz; with 22.05 kHz on either side the 20 ms block is an odd 441 samples and the
//! output is off by half a 22.05 kHz sample (23 µs), which nothing downstream can hear.

use super::FRAME_MS;
use crate::VoiceError;
use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Resampler};

/// Highest sample rate accepted, in Hz.
const MAX_RATE: u32 = 384_000;

/// Resamples a whole clip of mono 16-bit PCM from `from` Hz to `to` Hz.
///
/// The output has `round(len × to / from)` samples and is what [`StreamResampler`] produces
/// from the same input followed by [`StreamResampler::finish`].
pub fn resample(pcm: &[i16], from: u32, to: u32) -> Result<Vec<i16>, VoiceError> {
    let mut stream = StreamResampler::new(from, to)?;
    let mut out = Vec::with_capacity(stream.output_len_for(pcm.len() as u64) as usize);
    stream.process(pcm, &mut out)?;
    stream.finish(&mut out)?;
    Ok(out)
}

/// Streaming resampler for one mono stream (one call leg, one TTS utterance).
///
/// Feed chunks of any size with [`process`](Self::process); output comes in blocks of 20 ms
/// (at the output rate) as soon as a full 20 ms block of input is buffered, so the added latency
/// is under one block plus the filter delay (see [`latency_ms`](Self::latency_ms)). Call
/// [`finish`](Self::finish) at the end of the stream to flush the tail; the resampler is then
/// ready for a new stream. Once constructed it does not allocate, as long as the caller's output
/// vector has room (reuse it between calls).
#[derive(Debug)]
pub struct StreamResampler {
    from: u32,
    to: u32,
    /// `None` when both rates are equal: samples pass through untouched.
    engine: Option<Fft<f32>>,
    /// Input samples per processing block.
    block_in: usize,
    /// Input waiting for a full block, as f32 in [-1, 1).
    pending: Vec<f32>,
    /// Output of the last block.
    block_out: Vec<f32>,
    /// Filter delay, in output samples.
    delay: usize,
    /// Output samples of the start-up delay still to drop.
    to_skip: usize,
    samples_in: u64,
    samples_out: u64,
}

impl StreamResampler {
    /// A resampler from `from` Hz to `to` Hz. Any rates up to 384 kHz work; rates with a large
    /// common divisor (8000, 16000, 22050, 44100, 48000, …) give small blocks and low latency.
    pub fn new(from: u32, to: u32) -> Result<Self, VoiceError> {
        for rate in [from, to] {
            if rate == 0 || rate > MAX_RATE {
                return Err(VoiceError::InvalidInput(format!(
                    "cannot resample {from} Hz → {to} Hz: sample rates must be 1..={MAX_RATE} Hz"
                )));
            }
        }
        if from == to {
            return Ok(Self {
                from,
                to,
                engine: None,
                block_in: 0,
                pending: Vec::new(),
                block_out: Vec::new(),
                delay: 0,
                to_skip: 0,
                samples_in: 0,
                samples_out: 0,
            });
        }
        let block_hint = (from as usize * FRAME_MS as usize).div_ceil(1000);
        let engine = Fft::<f32>::new(from as usize, to as usize, block_hint, 1, FixedSync::Both)
            .map_err(|e| {
                VoiceError::InvalidInput(format!("cannot resample {from} Hz → {to} Hz: {e}"))
            })?;
        let block_in = engine.input_frames_max();
        let block_out = engine.output_frames_max();
        let delay = engine.output_delay();
        Ok(Self {
            from,
            to,
            engine: Some(engine),
            block_in,
            pending: Vec::with_capacity(block_in),
            block_out: vec![0.0; block_out],
            delay,
            to_skip: delay,
            samples_in: 0,
            samples_out: 0,
        })
    }

    /// Input rate in Hz.
    pub fn input_rate(&self) -> u32 {
        self.from
    }

    /// Output rate in Hz.
    pub fn output_rate(&self) -> u32 {
        self.to
    }

    /// Worst-case delay between a sample going in and its resampled counterpart coming out of
    /// [`process`](Self::process): one block of buffering plus the filter's look-ahead.
    pub fn latency_ms(&self) -> f64 {
        if self.engine.is_none() {
            return 0.0;
        }
        self.block_in as f64 * 1000.0 / f64::from(self.from)
            + self.delay as f64 * 1000.0 / f64::from(self.to)
    }

    /// Number of output samples a stream of `samples_in` input samples resamples to, once
    /// finished: `round(samples_in × to / from)`.
    pub fn output_len_for(&self, samples_in: u64) -> u64 {
        let (from, to) = (u64::from(self.from), u64::from(self.to));
        (samples_in * to + from / 2) / from
    }

    /// Resamples `pcm` and appends whatever output is ready to `out`. Returns how many samples
    /// were appended (0 while less than a block is buffered).
    pub fn process(&mut self, pcm: &[i16], out: &mut Vec<i16>) -> Result<usize, VoiceError> {
        let before = out.len();
        self.samples_in += pcm.len() as u64;
        if self.engine.is_none() {
            out.extend_from_slice(pcm);
            self.samples_out += pcm.len() as u64;
            return Ok(pcm.len());
        }
        let mut rest = pcm;
        while !rest.is_empty() {
            let take = (self.block_in - self.pending.len()).min(rest.len());
            let (now, later) = rest.split_at(take);
            self.pending
                .extend(now.iter().map(|&s| f32::from(s) / 32768.0));
            rest = later;
            if self.pending.len() == self.block_in {
                self.run_block(out, u64::MAX)?;
            }
        }
        Ok(out.len() - before)
    }

    /// Ends the stream: flushes buffered input and the filter's tail into `out`, so the whole
    /// stream has produced exactly [`output_len_for`](Self::output_len_for) samples, then resets
    /// for a new stream. Returns how many samples were appended.
    pub fn finish(&mut self, out: &mut Vec<i16>) -> Result<usize, VoiceError> {
        let before = out.len();
        if self.engine.is_some() {
            let target = self.output_len_for(self.samples_in);
            // The last partial block, then silence until the delayed tail is out.
            while self.samples_out < target {
                self.pending.resize(self.block_in, 0.0);
                self.run_block(out, target)?;
            }
        }
        self.reset();
        Ok(out.len() - before)
    }

    /// Drops buffered input and filter state, ready for a new stream.
    pub fn reset(&mut self) {
        if let Some(engine) = self.engine.as_mut() {
            engine.reset();
        }
        self.pending.clear();
        self.to_skip = self.delay;
        self.samples_in = 0;
        self.samples_out = 0;
    }

    /// Resamples the full block in `pending` and appends its output to `out`, dropping the
    /// start-up delay and stopping once `limit` samples have been produced in total.
    fn run_block(&mut self, out: &mut Vec<i16>, limit: u64) -> Result<(), VoiceError> {
        let Some(engine) = self.engine.as_mut() else {
            return Ok(());
        };
        let input = InterleavedSlice::new(&self.pending[..], 1, self.pending.len())
            .map_err(|e| VoiceError::engine("resampler", e))?;
        let frames_out = self.block_out.len();
        let mut output = InterleavedSlice::new_mut(&mut self.block_out[..], 1, frames_out)
            .map_err(|e| VoiceError::engine("resampler", e))?;
        let (_, produced) = engine
            .process_into_buffer(&input, &mut output, None)
            .map_err(|e| VoiceError::engine("resampler", e))?;
        self.pending.clear();

        let skip = self.to_skip.min(produced);
        self.to_skip -= skip;
        let room = usize::try_from(limit.saturating_sub(self.samples_out)).unwrap_or(usize::MAX);
        let keep = (produced - skip).min(room);
        // Float-to-int `as` saturates, so filter overshoot past full scale clips, never wraps.
        out.extend(
            self.block_out[skip..skip + keep]
                .iter()
                .map(|&s| (s * 32768.0).round() as i16),
        );
        self.samples_out += keep as u64;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::f64::consts::PI;

    fn tone(freq: f64, rate: u32, seconds: f64, amplitude: f64) -> Vec<i16> {
        let n = (f64::from(rate) * seconds) as usize;
        (0..n)
            .map(|i| (amplitude * (2.0 * PI * freq * i as f64 / f64::from(rate)).sin()) as i16)
            .collect()
    }

    fn rms(x: &[i16]) -> f64 {
        (x.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / x.len().max(1) as f64).sqrt()
    }

    /// Pearson correlation of `a` and `b` over their common length.
    fn correlation(a: &[i16], b: &[i16]) -> f64 {
        let n = a.len().min(b.len());
        let (a, b) = (&a[..n], &b[..n]);
        let mean = |x: &[i16]| x.iter().map(|&s| f64::from(s)).sum::<f64>() / n as f64;
        let (ma, mb) = (mean(a), mean(b));
        let (mut ab, mut aa, mut bb) = (0.0, 0.0, 0.0);
        for (&x, &y) in a.iter().zip(b) {
            let (x, y) = (f64::from(x) - ma, f64::from(y) - mb);
            ab += x * y;
            aa += x * x;
            bb += y * y;
        }
        ab / (aa * bb).sqrt()
    }

    /// Best correlation of `b` against `a` shifted by up to `max_lag` samples either way, with
    /// `margin` samples cut at both ends (edge effects of the filter), and the lag it was found at.
    fn aligned_correlation(a: &[i16], b: &[i16], max_lag: usize, margin: usize) -> (f64, isize) {
        let n = a.len().min(b.len());
        let a = &a[margin..n - margin];
        (-(max_lag as isize)..=max_lag as isize)
            .map(|lag| {
                let start = (margin as isize + lag) as usize;
                (correlation(a, &b[start..n - margin]), lag)
            })
            .fold((f64::MIN, 0), |best, c| if c.0 > best.0 { c } else { best })
    }

    #[test]
    fn sine_survives_16k_8k_16k() -> Result<(), VoiceError> {
        let original = tone(1000.0, 16_000, 1.0, 10_000.0);
        let narrow = resample(&original, 16_000, 8_000)?;
        assert_eq!(narrow.len(), 8_000);
        let back = resample(&narrow, 8_000, 16_000)?;
        assert!(back.len().abs_diff(original.len()) <= 2, "{}", back.len());
        // Search lags within half a period (8 samples at 1 kHz) so the answer is unambiguous.
        let (corr, lag) = aligned_correlation(&original, &back, 7, 400);
        assert!(corr > 0.99, "correlation {corr} at lag {lag}");
        // Delay is trimmed: the best alignment is at zero lag.
        assert_eq!(lag, 0);
        // And the level is kept.
        let gain = rms(&back[400..15_600]) / rms(&original[400..15_600]);
        assert!((gain - 1.0).abs() < 0.02, "gain {gain}");
        Ok(())
    }

    #[test]
    fn lengths_follow_the_ratio() -> Result<(), VoiceError> {
        let one_second = vec![0i16; 22_050];
        assert_eq!(resample(&one_second, 22_050, 16_000)?.len(), 16_000);
        assert_eq!(resample(&one_second, 22_050, 8_000)?.len(), 8_000);
        let odd = vec![0i16; 12_345];
        assert_eq!(resample(&odd, 22_050, 16_000)?.len(), 8_958); // 12345 × 320/441 = 8957.8
        assert_eq!(resample(&odd, 8_000, 22_050)?.len(), 34_026); // 12345 × 441/160 = 34025.9
        assert_eq!(resample(&odd, 16_000, 16_000)?, odd);
        assert!(resample(&[], 16_000, 8_000)?.is_empty());
        assert_eq!(resample(&[1000], 16_000, 8_000)?.len(), 1);
        Ok(())
    }

    #[test]
    fn voice_rate_to_recognizer_rate_keeps_a_tone() -> Result<(), VoiceError> {
        let original = tone(440.0, 22_050, 1.0, 8_000.0);
        let out = resample(&original, 22_050, 16_000)?;
        let expected = tone(440.0, 16_000, 1.0, 8_000.0);
        let (corr, lag) = aligned_correlation(&expected, &out, 4, 400);
        // 0.998 measured: the output is 23 µs early (see the module docs), the rest is exact.
        assert!(corr > 0.995 && lag == 0, "correlation {corr} at lag {lag}");
        Ok(())
    }

    #[test]
    fn a_click_stays_where_it_was() -> Result<(), VoiceError> {
        for (from, to) in [
            (16_000, 8_000),
            (8_000, 16_000),
            (22_050, 16_000),
            (16_000, 22_050),
            (8_000, 22_050),
        ] {
            let mut input = vec![0i16; from as usize];
            input[from as usize / 2] = 20_000;
            let out = resample(&input, from, to)?;
            let peak = out
                .iter()
                .enumerate()
                .max_by_key(|(_, &s)| s)
                .map(|(i, _)| i)
                .unwrap_or(0);
            // Half a second in, half a second out; ±1 sample for the 22.05 kHz half-sample.
            assert!(
                peak.abs_diff(to as usize / 2) <= 1,
                "{from} → {to}: click at {peak}"
            );
        }
        Ok(())
    }

    #[test]
    fn tones_above_4k_are_filtered_out_on_the_way_to_8k() -> Result<(), VoiceError> {
        for freq in [4_500.0, 5_000.0, 6_000.0, 7_000.0] {
            let input = tone(freq, 16_000, 1.0, 16_000.0);
            let out = resample(&input, 16_000, 8_000)?;
            // Skip the edges, where the filter sees the start and end of the tone.
            let attenuation_db = 20.0 * (rms(&input) / rms(&out[400..7_600]).max(1e-9)).log10();
            assert!(
                attenuation_db >= 30.0,
                "{freq} Hz attenuated by only {attenuation_db:.1} dB"
            );
        }
        // While speech-band tones pass.
        let input = tone(3_000.0, 16_000, 1.0, 16_000.0);
        let out = resample(&input, 16_000, 8_000)?;
        let gain_db = 20.0 * (rms(&out[400..7_600]) / rms(&input)).log10();
        assert!(gain_db.abs() < 1.0, "3 kHz gain {gain_db:.2} dB");
        Ok(())
    }

    #[test]
    fn streaming_in_frames_matches_one_shot() -> Result<(), VoiceError> {
        for (from, to) in [
            (8_000, 16_000),
            (16_000, 8_000),
            (22_050, 16_000),
            (16_000, 22_050),
        ] {
            let input = tone(700.0, from, 0.77, 9_000.0);
            let whole = resample(&input, from, to)?;
            let mut stream = StreamResampler::new(from, to)?;
            let mut streamed = Vec::new();
            let frame = (from * FRAME_MS / 1000) as usize;
            for chunk in input.chunks(frame) {
                stream.process(chunk, &mut streamed)?;
            }
            stream.finish(&mut streamed)?;
            assert_eq!(streamed.len(), whole.len(), "{from} → {to}");
            let worst = streamed
                .iter()
                .zip(&whole)
                .map(|(&a, &b)| (i32::from(a) - i32::from(b)).abs())
                .max()
                .unwrap_or(0);
            assert!(worst <= 1, "{from} → {to}: streamed differs by {worst}");
        }
        Ok(())
    }

    #[test]
    fn odd_chunk_sizes_leave_no_gaps() -> Result<(), VoiceError> {
        let input = tone(500.0, 8_000, 1.0, 9_000.0);
        let whole = resample(&input, 8_000, 16_000)?;
        let mut stream = StreamResampler::new(8_000, 16_000)?;
        let mut streamed = Vec::new();
        let mut rest = &input[..];
        for size in [1usize, 7, 159, 160, 161, 333, 0, 1000].iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let (chunk, later) = rest.split_at((*size).min(rest.len()));
            stream.process(chunk, &mut streamed)?;
            rest = later;
        }
        stream.finish(&mut streamed)?;
        assert_eq!(streamed, whole);
        // The stream can be reused after finish.
        let mut again = Vec::new();
        stream.process(&input, &mut again)?;
        stream.finish(&mut again)?;
        assert_eq!(again, whole);
        Ok(())
    }

    #[test]
    fn streaming_output_keeps_pace() -> Result<(), VoiceError> {
        let mut stream = StreamResampler::new(8_000, 16_000)?;
        let mut out = Vec::new();
        let frame = vec![100i16; 160];
        for _ in 0..50 {
            stream.process(&frame, &mut out)?;
        }
        // One second in, one second out, minus the trimmed filter delay.
        assert!(
            out.len() <= 16_000 && out.len() >= 16_000 - 320,
            "{}",
            out.len()
        );
        assert!(stream.latency_ms() > 0.0 && stream.latency_ms() <= 40.0);
        Ok(())
    }

    #[test]
    fn bad_rates_are_errors() {
        assert!(StreamResampler::new(0, 16_000).is_err());
        assert!(StreamResampler::new(16_000, 0).is_err());
        assert!(resample(&[1, 2, 3], 1_000_000, 16_000).is_err());
    }
}

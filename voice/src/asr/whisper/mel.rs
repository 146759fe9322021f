//! Whisper's log-mel front end computed in Rust: Hann-windowed 400-point STFT every 160 samples
//! (centred, reflect-padded), Slaney mel filters, log10, clamp to max − 8, then (x + 4) / 4.

use crate::VoiceError;
use candle_core::{Device, Tensor};

/// Samples per second Whisper expects.
pub(crate) const SAMPLE_RATE: usize = 16_000;
/// STFT window length.
pub(crate) const N_FFT: usize = 400;
/// STFT hop: one mel frame per 10 ms.
pub(crate) const HOP_LENGTH: usize = 160;
/// Frequency bins of a real 400-point FFT.
const N_FREQ: usize = N_FFT / 2 + 1;

/// Precomputed DFT basis and mel filter bank, as tensors so the front end is two matrix products.
#[derive(Debug, Clone)]
pub(crate) struct LogMel {
    n_mels: usize,
    /// (N_FFT, 2 · N_FREQ): Hann-windowed cosines, then windowed negated sines.
    dft: Tensor,
    /// (N_FREQ, n_mels): filters transposed.
    filters_t: Tensor,
    device: Device,
}

impl LogMel {
    pub fn new(n_mels: usize, device: &Device) -> Result<Self, VoiceError> {
        let window: Vec<f64> = (0..N_FFT)
            .map(|n| 0.5 * (1.0 - (2.0 * std::f64::consts::PI * n as f64 / N_FFT as f64).cos()))
            .collect();
        let mut dft = vec![0f32; N_FFT * 2 * N_FREQ];
        for n in 0..N_FFT {
            for k in 0..N_FREQ {
                // (k·n) mod N keeps the angle small and exact.
                let angle = 2.0 * std::f64::consts::PI * ((k * n) % N_FFT) as f64 / N_FFT as f64;
                dft[n * 2 * N_FREQ + k] = (window[n] * angle.cos()) as f32;
                dft[n * 2 * N_FREQ + N_FREQ + k] = (-window[n] * angle.sin()) as f32;
            }
        }
        let dft = Tensor::from_vec(dft, (N_FFT, 2 * N_FREQ), device)?;
        let filters = slaney_mel_filters(SAMPLE_RATE, N_FFT, n_mels);
        let filters = Tensor::from_vec(filters, (n_mels, N_FREQ), device)?
            .t()?
            .contiguous()?;
        Ok(Self {
            n_mels,
            dft,
            filters_t: filters,
            device: device.clone(),
        })
    }

    /// Log-mel spectrogram of `samples` (16 kHz, in [-1, 1]) with exactly `n_frames` frames, as a
    /// `(1, n_mels, n_frames)` tensor. Frames past the audio are what Whisper computes for its
    /// zero padding. Needs more than `N_FFT / 2` samples (the reflect padding).
    pub fn compute(&self, samples: &[f32], n_frames: usize) -> Result<Tensor, VoiceError> {
        let half = N_FFT / 2;
        if samples.len() <= half {
            return Err(VoiceError::InvalidInput(format!(
                "{} samples are too few for a mel frame (need more than {half})",
                samples.len()
            )));
        }
        // Frames that still see audio; the max for the clamp is taken over them, as Whisper
        // takes it over the whole (zero-padded) input.
        let audio_frames = (samples.len() + half).div_ceil(HOP_LENGTH);
        let total = n_frames.max(audio_frames);
        // Zero padding after the audio, then centre reflect padding on both sides.
        let padded_len = (total - 1) * HOP_LENGTH + N_FFT;
        let mut padded = Vec::with_capacity(padded_len);
        padded.extend((1..=half).rev().map(|i| samples[i]));
        padded.extend_from_slice(samples);
        padded.resize(padded_len, 0.0);
        let mut frames = Vec::with_capacity(total * N_FFT);
        for t in 0..total {
            frames.extend_from_slice(&padded[t * HOP_LENGTH..t * HOP_LENGTH + N_FFT]);
        }
        let frames = Tensor::from_vec(frames, (total, N_FFT), &self.device)?;
        let spec = frames.matmul(&self.dft)?;
        let re = spec.narrow(1, 0, N_FREQ)?;
        let im = spec.narrow(1, N_FREQ, N_FREQ)?;
        let power = (re.sqr()? + im.sqr()?)?;
        let mel = power.matmul(&self.filters_t)?; // (total, n_mels)
        let log = mel
            .clamp(1e-10f32, f32::MAX)?
            .log()?
            .affine(1.0 / std::f64::consts::LN_10, 0.0)?;
        let max = log.flatten_all()?.max(0)?.to_scalar::<f32>()?;
        let log = log.clamp(max - 8.0, f32::MAX)?.affine(0.25, 1.0)?;
        Ok(log
            .narrow(0, 0, n_frames)?
            .t()?
            .contiguous()?
            .reshape((1, self.n_mels, n_frames))?)
    }
}

/// librosa's `filters.mel(sr, n_fft, n_mels)` with its defaults (Slaney mel scale, Slaney area
/// normalisation, fmin 0, fmax sr/2), as Whisper's `mel_filters.npz` was made. Row-major
/// `(n_mels, n_fft/2 + 1)`.
pub(crate) fn slaney_mel_filters(sample_rate: usize, n_fft: usize, n_mels: usize) -> Vec<f32> {
    const F_SP: f64 = 200.0 / 3.0;
    const MIN_LOG_HZ: f64 = 1000.0;
    const MIN_LOG_MEL: f64 = MIN_LOG_HZ / F_SP;
    let logstep = 6.4f64.ln() / 27.0;
    let hz_to_mel = |f: f64| {
        if f >= MIN_LOG_HZ {
            MIN_LOG_MEL + (f / MIN_LOG_HZ).ln() / logstep
        } else {
            f / F_SP
        }
    };
    let mel_to_hz = |m: f64| {
        if m >= MIN_LOG_MEL {
            MIN_LOG_HZ * (logstep * (m - MIN_LOG_MEL)).exp()
        } else {
            F_SP * m
        }
    };

    let n_freq = n_fft / 2 + 1;
    let fmax = sample_rate as f64 / 2.0;
    let fft_freqs: Vec<f64> = (0..n_freq)
        .map(|k| k as f64 * fmax / (n_freq - 1) as f64)
        .collect();
    let (mel_min, mel_max) = (hz_to_mel(0.0), hz_to_mel(fmax));
    let mel_f: Vec<f64> = (0..n_mels + 2)
        .map(|i| mel_to_hz(mel_min + (mel_max - mel_min) * i as f64 / (n_mels + 1) as f64))
        .collect();
    let mut out = vec![0f32; n_mels * n_freq];
    for m in 0..n_mels {
        let (lo, center, hi) = (mel_f[m], mel_f[m + 1], mel_f[m + 2]);
        let enorm = 2.0 / (hi - lo);
        for (k, &f) in fft_freqs.iter().enumerate() {
            let lower = (f - lo) / (center - lo);
            let upper = (hi - f) / (hi - center);
            out[m * n_freq + k] = (lower.min(upper).max(0.0) * enorm) as f32;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reference values from Whisper's `assets/mel_filters.npz` (`mel_80`, shape 80 × 201).
    #[test]
    fn filters_match_whisper_assets() {
        let f = slaney_mel_filters(16_000, 400, 80);
        let at = |m: usize, k: usize| f[m * 201 + k];
        assert!((at(0, 1) - 0.024_862_595).abs() < 1e-6, "{}", at(0, 1));
        assert_eq!(at(0, 2), 0.0);
        assert!(
            (at(79, 190) - 0.002_232_055).abs() < 1e-6,
            "{}",
            at(79, 190)
        );
        assert_eq!(at(79, 200), 0.0);
        let sum: f64 = f.iter().map(|&x| f64::from(x)).sum();
        assert!((sum - 1.999_024_092).abs() < 1e-4, "{sum}");
        assert_eq!(f.iter().filter(|&&x| x > 0.0).count(), 391);
    }

    #[test]
    fn silence_is_flat_and_shape_is_exact() {
        let mel = LogMel::new(80, &Device::Cpu).expect("front end");
        let out = mel.compute(&vec![0.0; 16_000], 100).expect("mel");
        assert_eq!(out.dims(), &[1, 80, 100]);
        let v = out
            .flatten_all()
            .expect("flat")
            .to_vec1::<f32>()
            .expect("vec");
        // log10(1e-10) = -10 everywhere → (−10 + 4) / 4.
        assert!(v.iter().all(|&x| (x + 1.5).abs() < 1e-6));
    }

    #[test]
    fn a_tone_peaks_in_the_right_band() {
        let mel = LogMel::new(80, &Device::Cpu).expect("front end");
        let tone: Vec<f32> = (0..16_000)
            .map(|i| 0.5 * (2.0 * std::f32::consts::PI * 1000.0 * i as f32 / 16_000.0).sin())
            .collect();
        let out = mel.compute(&tone, 100).expect("mel");
        let frame: Vec<f32> = out
            .squeeze(0)
            .expect("2d")
            .narrow(1, 50, 1)
            .expect("col")
            .flatten_all()
            .expect("flat")
            .to_vec1()
            .expect("vec");
        let peak = frame
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|(i, _)| i)
            .expect("bins");
        // 1 kHz is mel 15 on the Slaney scale; 80 bands span 0..45.2 mel, so band ≈ 15/0.558 − 1.
        assert!((25..=27).contains(&peak), "peak band {peak}");
    }
}

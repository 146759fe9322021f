//! Phone-line simulation: what 16 kHz audio becomes after a trip over a narrowband G.711 line
//! (8 kHz, μ-law), for testing recognition and VAD on telephony audio.

use super::g711::G711Law;
use super::{resample, SAMPLE_RATE, TELEPHONE_RATE};
use crate::VoiceError;

/// Passes 16 kHz mono PCM through a simulated phone line: down to 8 kHz (flat to 3.4 kHz,
/// -10 dB at 3.7 kHz, nothing above 4 kHz), μ-law encode and decode (about 43 dB SNR on a
/// 1 kHz tone at -12 dBFS), and back up to 16 kHz. The output has the input's length (±1 sample
/// of rounding) and timing.
pub fn telephone_band(pcm16k: &[i16]) -> Result<Vec<i16>, VoiceError> {
    let narrow = resample(pcm16k, SAMPLE_RATE, TELEPHONE_RATE)?;
    let mut codes = Vec::with_capacity(narrow.len());
    G711Law::MuLaw.encode_into(&narrow, &mut codes);
    let mut line = Vec::with_capacity(codes.len());
    G711Law::MuLaw.decode_into(&codes, &mut line);
    resample(&line, TELEPHONE_RATE, SAMPLE_RATE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::f64::consts::PI;

    fn tone(freq: f64, amplitude: f64) -> Vec<i16> {
        (0..SAMPLE_RATE as usize)
            .map(|i| {
                (amplitude * (2.0 * PI * freq * i as f64 / f64::from(SAMPLE_RATE)).sin()) as i16
            })
            .collect()
    }

    fn power(x: impl Iterator<Item = f64>) -> f64 {
        let (sum, n) = x.fold((0.0, 0usize), |(s, n), v| (s + v * v, n + 1));
        sum / n.max(1) as f64
    }

    #[test]
    fn speech_band_passes_with_codec_noise_and_high_band_is_cut() -> Result<(), VoiceError> {
        // 1 kHz comes through: same length, same timing, noise at μ-law's level.
        let speech_band = tone(1_000.0, 8_000.0);
        let line = telephone_band(&speech_band)?;
        assert!(
            line.len().abs_diff(speech_band.len()) <= 1,
            "{}",
            line.len()
        );
        let inner = 400..15_600;
        let signal = power(speech_band[inner.clone()].iter().map(|&s| f64::from(s)));
        let noise = power(
            speech_band[inner.clone()]
                .iter()
                .zip(&line[inner.clone()])
                .map(|(&a, &b)| f64::from(a) - f64::from(b)),
        );
        let snr_db = 10.0 * (signal / noise).log10();
        assert!(snr_db > 30.0, "1 kHz through the line: SNR {snr_db:.1} dB");

        // 6 kHz does not.
        let high = tone(6_000.0, 8_000.0);
        let line = telephone_band(&high)?;
        let kept = power(line[inner.clone()].iter().map(|&s| f64::from(s)));
        let sent = power(high[inner].iter().map(|&s| f64::from(s)));
        let attenuation_db = 10.0 * (sent / kept.max(1e-9)).log10();
        assert!(
            attenuation_db > 30.0,
            "6 kHz attenuated by {attenuation_db:.1} dB"
        );
        Ok(())
    }

    #[test]
    fn empty_in_empty_out() -> Result<(), VoiceError> {
        assert!(telephone_band(&[])?.is_empty());
        Ok(())
    }
}

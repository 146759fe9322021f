//! G.711 companding (ITU-T G.711): μ-law and A-law, 16-bit linear PCM ↔ 8-bit codes, as carried
//! by telephone trunks and RTP payload types 0 (PCMU) and 8 (PCMA).
//!
//! Encoding follows the ITU-T G.191 reference (`ulaw_compress` / `alaw_compress`): negative
//! samples are folded with one's complement, so the quantizer is symmetric around -0.5 and every
//! decoded value sits in the middle of its quantization interval.

/// Bias added to the magnitude before μ-law segment search (33 in 14-bit units).
const ULAW_BIAS: i32 = 0x84;
/// A-law codes have their even bits inverted on the line.
const ALAW_AMI_MASK: u8 = 0x55;

/// Which companding law a line uses: μ-law in North America and Japan, A-law elsewhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum G711Law {
    #[default]
    MuLaw,
    ALaw,
}

impl G711Law {
    /// Encodes `pcm` and appends the codes to `out` (one byte per sample).
    pub fn encode_into(self, pcm: &[i16], out: &mut Vec<u8>) {
        match self {
            G711Law::MuLaw => out.extend(pcm.iter().map(|&s| ulaw_encode(s))),
            G711Law::ALaw => out.extend(pcm.iter().map(|&s| alaw_encode(s))),
        }
    }

    /// Decodes `codes` and appends the 16-bit samples to `out`.
    pub fn decode_into(self, codes: &[u8], out: &mut Vec<i16>) {
        match self {
            G711Law::MuLaw => out.extend(codes.iter().map(|&c| ulaw_decode(c))),
            G711Law::ALaw => out.extend(codes.iter().map(|&c| alaw_decode(c))),
        }
    }
}

/// Index of the segment (0..=7, or 8 and above when out of range) that a biased magnitude falls
/// in: segment `s` holds magnitudes in `[2^(s+7), 2^(s+8))`, segment 0 also everything below.
fn segment(magnitude: i32) -> u32 {
    // `| 0xFF` makes the top bit at least 7, so the subtraction cannot underflow.
    (31 - (magnitude | 0xFF).leading_zeros()) - 7
}

/// Linear 16-bit sample → μ-law code.
pub fn ulaw_encode(sample: i16) -> u8 {
    let sample = i32::from(sample);
    let (mask, magnitude) = if sample >= 0 {
        (0xFF, ULAW_BIAS + sample)
    } else {
        (0x7F, ULAW_BIAS - sample - 1)
    };
    let seg = segment(magnitude);
    let code = if seg >= 8 {
        // Beyond the top of segment 7: clip to the largest magnitude.
        0x7F
    } else {
        // seg ≤ 7 and the mantissa is 4 bits, so this fits in 7 bits.
        ((seg << 4) as i32 | ((magnitude >> (seg + 3)) & 0x0F)) as u8
    };
    code ^ mask
}

/// μ-law code → linear 16-bit sample.
pub fn ulaw_decode(code: u8) -> i16 {
    ULAW_TABLE[usize::from(code)]
}

/// Linear 16-bit sample → A-law code.
pub fn alaw_encode(sample: i16) -> u8 {
    let sample = i32::from(sample);
    let (mask, magnitude) = if sample >= 0 {
        (ALAW_AMI_MASK | 0x80, sample)
    } else {
        (ALAW_AMI_MASK, -sample - 1)
    };
    let seg = segment(magnitude);
    let code = if seg >= 8 {
        // Unreachable for 16-bit input (magnitude ≤ 32767), kept as a clip for safety.
        0x7F
    } else {
        let shift = if seg == 0 { 4 } else { seg + 3 };
        ((seg << 4) as i32 | ((magnitude >> shift) & 0x0F)) as u8
    };
    code ^ mask
}

/// A-law code → linear 16-bit sample.
pub fn alaw_decode(code: u8) -> i16 {
    ALAW_TABLE[usize::from(code)]
}

const fn ulaw_decode_calc(code: u8) -> i16 {
    // Codes are sent inverted.
    let u = !code;
    let seg = ((u & 0x70) >> 4) as i32;
    // Middle of the quantization interval, biased, then unbiased.
    let t = ((((u & 0x0F) as i32) << 3) + ULAW_BIAS) << seg;
    if u & 0x80 != 0 {
        (ULAW_BIAS - t) as i16
    } else {
        (t - ULAW_BIAS) as i16
    }
}

const fn alaw_decode_calc(code: u8) -> i16 {
    let a = code ^ ALAW_AMI_MASK;
    let seg = ((a & 0x70) >> 4) as i32;
    let mut t = ((a & 0x0F) as i32) << 4;
    if seg == 0 {
        t += 8;
    } else {
        t = (t + 0x108) << (seg - 1);
    }
    if a & 0x80 != 0 {
        t as i16
    } else {
        -t as i16
    }
}

/// Decoding is a table lookup: 256 entries per law, built at compile time.
static ULAW_TABLE: [i16; 256] = {
    let mut out = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        out[i] = ulaw_decode_calc(i as u8);
        i += 1;
    }
    out
};
static ALAW_TABLE: [i16; 256] = {
    let mut out = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        out[i] = alaw_decode_calc(i as u8);
        i += 1;
    }
    out
};

#[cfg(test)]
mod tests {
    use super::*;

    /// Half the quantization step at `x` for μ-law (segment `s` has step `2^(s+3)`), plus one
    /// for the one's-complement fold of negative samples.
    fn ulaw_bound(x: i32) -> i32 {
        (x.abs() + ULAW_BIAS) / 32 + 1
    }

    /// Same for A-law: step 16 in segments 0 and 1, `2^(s+3)` above.
    fn alaw_bound(x: i32) -> i32 {
        (x.abs() / 32).max(8) + 1
    }

    #[test]
    fn ulaw_round_trip_every_sample_within_half_step() {
        let mut worst_relative = 0.0f64;
        for x in i16::MIN..=i16::MAX {
            let y = ulaw_decode(ulaw_encode(x));
            let (x, y) = (i32::from(x), i32::from(y));
            let err = (x - y).abs();
            assert!(
                err <= ulaw_bound(x),
                "μ-law {x} → {y}: error {err} > {}",
                ulaw_bound(x)
            );
            // Sign is kept (zero may come back from either side of it).
            assert!(x.signum() * y.signum() >= 0, "μ-law {x} → {y} flips sign");
            if x.abs() >= 256 {
                worst_relative = worst_relative.max(f64::from(err) / f64::from(x.abs()));
            }
        }
        // 4 bits of mantissa: half a step is at most 1/32 of the magnitude (plus bias).
        assert!(
            worst_relative < 0.05,
            "worst relative error {worst_relative}"
        );
    }

    #[test]
    fn alaw_round_trip_every_sample_within_half_step() {
        let mut worst_relative = 0.0f64;
        for x in i16::MIN..=i16::MAX {
            let y = alaw_decode(alaw_encode(x));
            let (x, y) = (i32::from(x), i32::from(y));
            let err = (x - y).abs();
            assert!(
                err <= alaw_bound(x),
                "A-law {x} → {y}: error {err} > {}",
                alaw_bound(x)
            );
            assert!(x.signum() * y.signum() >= 0, "A-law {x} → {y} flips sign");
            if x.abs() >= 256 {
                worst_relative = worst_relative.max(f64::from(err) / f64::from(x.abs()));
            }
        }
        assert!(
            worst_relative < 0.04,
            "worst relative error {worst_relative}"
        );
    }

    #[test]
    fn reference_values() {
        // Silence.
        assert_eq!(ulaw_encode(0), 0xFF);
        assert_eq!(ulaw_encode(-1), 0x7F);
        assert_eq!(alaw_encode(0), 0xD5);
        assert_eq!(alaw_encode(-1), 0x55);
        assert_eq!(ulaw_decode(0xFF), 0);
        assert_eq!(ulaw_decode(0x7F), 0);
        assert_eq!(alaw_decode(0xD5), 8);
        assert_eq!(alaw_decode(0x55), -8);
        // Full scale clips to the top code.
        assert_eq!(ulaw_encode(i16::MAX), 0x80);
        assert_eq!(ulaw_encode(i16::MIN), 0x00);
        assert_eq!(alaw_encode(i16::MAX), 0xAA);
        assert_eq!(alaw_encode(i16::MIN), 0x2A);
        // First entries of the usual G.711 expansion tables.
        assert_eq!(
            (0..4).map(ulaw_decode).collect::<Vec<_>>(),
            [-32124, -31100, -30076, -29052]
        );
        assert_eq!(
            (0..4).map(alaw_decode).collect::<Vec<_>>(),
            [-5504, -5248, -6016, -5760]
        );
        assert_eq!(ulaw_decode(0x80), 32124);
        assert_eq!(alaw_decode(0xAA), 32256);
        // A 1000-ish sample lands in the expected segment.
        assert_eq!(ulaw_encode(1000), 0xCE);
        assert_eq!(alaw_encode(1000), 0xFA);
    }

    #[test]
    fn every_code_survives_decode_then_encode() {
        for code in 0..=255u8 {
            // μ-law has two zeros; both encode back as the positive one.
            let want = if code == 0x7F { 0xFF } else { code };
            assert_eq!(ulaw_encode(ulaw_decode(code)), want, "μ-law {code:#04x}");
            assert_eq!(alaw_encode(alaw_decode(code)), code, "A-law {code:#04x}");
        }
    }

    #[test]
    fn slice_helpers_append() {
        let pcm = [0i16, 1000, -1000, i16::MAX, i16::MIN];
        for law in [G711Law::MuLaw, G711Law::ALaw] {
            let mut codes = vec![0xAB];
            law.encode_into(&pcm, &mut codes);
            assert_eq!(codes.len(), 1 + pcm.len());
            let mut back = vec![7];
            law.decode_into(&codes[1..], &mut back);
            assert_eq!(back.len(), 1 + pcm.len());
            assert_eq!(back[0], 7);
        }
    }
}

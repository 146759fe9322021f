//! Generates the ASR test corpus in `tests/data/corpus/`: every phrase of `phrases.tsv` spoken
//! by its voices, each in three conditions, plus non-speech clips (silence, line noise, mains
//! hum, hold music) that must give no text; `corpus.jsonl` lists every clip with its reference.
//!
//! Voices: English by Piper joe (sampling noise off, so it is repeatable) and by one espeak-ng
//! voice taken in turn from [`ESPEAK_EN`]; Mandarin by the neural FastSpeech2 voice (the crate's
//! `ZhFastSpeechTts`, deterministic) and by espeak-ng `cmn` (poor test audio, which Whisper
//! hallucinates on: see shared MODELS.md; scored apart). espeak-ng runs as the `espeak-ng`
//! program (Debian's), Piper and FastSpeech2 as the crate's engines on the models from
//! scripts/setup.sh.
//!
//! Conditions: `clean` (16 kHz), `phone` (down to 8 kHz, G.711 μ-law encoded and decoded, stored
//! at 8 kHz), `phone_noise` (pink noise mixed in at [`NOISE_SNR_DB`] first, then the phone line),
//! and the in-band noise of a real line (issue 22): `phone_brown` and `phone_pink` band the speech
//! to the telephone channel (300–3400 Hz at 8 kHz), mix in brown or pink noise banded the same way
//! at [`IN_BAND_NOISE`]'s SNR against the active speech, then μ-law.
//! The output is deterministic: run `cargo run -p voice --example make_corpus` and the files come
//! out byte-identical (given the same espeak-ng version).

use anyhow::{bail, ensure, Context, Result};
use serde::Serialize;
use std::io::Write;
use std::ops::ControlFlow;
use std::path::Path;
use std::process::Command;
use tokio_util::sync::CancellationToken;
use voice::audio::g711::G711Law;
use voice::audio::{read_wav, resample, write_wav, AudioChunk, TELEPHONE_RATE};
use voice::tts::piper::PiperTts;
use voice::tts::zh_fastspeech::ZhFastSpeechTts;
use voice::{Language, TextToSpeech, VoiceConfig, SAMPLE_RATE};

/// espeak-ng voices for English, one per phrase in turn.
const ESPEAK_EN: [&str; 4] = ["en-us", "en-gb", "en-us+f3", "en-gb-scotland"];
/// espeak-ng speaking rate, words per minute.
const ESPEAK_WPM: &str = "160";
/// Speech-to-noise ratio of the `phone_noise` condition, in dB (speech power over the voiced
/// part of the clip against the noise's power).
const NOISE_SNR_DB: f64 = 10.0;
/// In-band noise conditions: name, colour, SNR in dB against the active speech in the band.
const IN_BAND_NOISE: [(&str, NoiseColour, f64); 2] = [
    ("phone_brown", NoiseColour::Brown, 15.0),
    ("phone_pink", NoiseColour::Pink, 10.0),
];
/// The telephone channel's pass band, Hz.
const PHONE_BAND: (f64, f64) = (300.0, 3400.0);
/// Silence kept before and after the speech.
const MARGIN_MS: usize = 200;
/// Peak level speech is scaled to (−3 dBFS).
const PEAK: f64 = 0.7;
/// Length of each non-speech clip.
const NON_SPEECH_S: usize = 4;

/// One line of `corpus.jsonl`.
#[derive(Debug, Serialize)]
struct Clip {
    /// WAV file in the corpus folder.
    file: String,
    /// Phrase id from phrases.tsv, or the non-speech kind.
    id: String,
    /// Language the clip is decoded in; non-speech clips are decoded in every language.
    lang: Option<Language>,
    voice: String,
    condition: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    snr_db: Option<f64>,
    /// Reference text; empty for non-speech.
    text: String,
}

fn main() -> Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = root.join("tests/data/corpus");
    let config = VoiceConfig {
        models_dir: root.join("../models"),
        ..VoiceConfig::default()
    };
    let piper = PiperTts::load(&config)
        .context("loading Piper (run scripts/setup.sh)")?
        .with_sampling_noise(0.0, 0.0);
    let mandarin = ZhFastSpeechTts::load(&config)
        .context("loading the Mandarin voice (run scripts/setup.sh)")?;
    let phrases = std::fs::read_to_string(dir.join("phrases.tsv")).context("phrases.tsv")?;
    for old in std::fs::read_dir(&dir)? {
        let path = old?.path();
        if path.extension().is_some_and(|e| e == "wav") {
            std::fs::remove_file(&path)?;
        }
    }
    let mut clips = Vec::new();
    let mut en_index = 0;
    for line in phrases.lines() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let mut fields = line.split('\t');
        let (Some(id), Some(lang), Some(text), None) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            bail!("phrases.tsv: want id<TAB>lang<TAB>text, got {line:?}");
        };
        let lang: Language = lang.parse()?;
        let voices: Vec<(String, Vec<i16>)> = match lang {
            Language::English => {
                let espeak_voice = ESPEAK_EN[en_index % ESPEAK_EN.len()];
                en_index += 1;
                vec![
                    ("piper-joe".into(), speak(&piper, Language::English, text)?),
                    (
                        format!("espeak-{espeak_voice}"),
                        speak_espeak(espeak_voice, text)?,
                    ),
                ]
            }
            Language::Chinese => vec![
                (
                    "zh-fastspeech2".into(),
                    speak(&mandarin, Language::Chinese, text)?,
                ),
                ("espeak-cmn".into(), speak_espeak("cmn", text)?),
            ],
        };
        for (voice, pcm) in voices {
            let speech = prepare_speech(&pcm)?;
            let seed = fnv1a(format!("{id}/{voice}").as_bytes());
            let noisy = add_noise(&speech, NOISE_SNR_DB, seed);
            let mut conditions = vec![
                ("clean", chunk(SAMPLE_RATE, speech.clone()), None),
                ("phone", phone_line(&speech)?, None),
                ("phone_noise", phone_line(&noisy)?, Some(NOISE_SNR_DB)),
            ];
            for (condition, colour, snr_db) in IN_BAND_NOISE {
                let audio = noisy_phone_line(&speech, colour, snr_db, seed ^ colour as u64)?;
                conditions.push((condition, audio, Some(snr_db)));
            }
            for (condition, audio, snr_db) in conditions {
                let file = format!("{id}_{}_{condition}.wav", voice.replace('+', "_"));
                write_wav(&dir.join(&file), &audio)?;
                clips.push(Clip {
                    file,
                    id: id.to_string(),
                    lang: Some(lang),
                    voice: voice.clone(),
                    condition,
                    snr_db,
                    text: text.to_string(),
                });
            }
        }
    }
    for (kind, pcm) in non_speech() {
        for (condition, audio) in [
            ("clean", chunk(SAMPLE_RATE, pcm.clone())),
            ("phone", phone_line(&pcm)?),
        ] {
            let file = format!("none_{kind}_{condition}.wav");
            write_wav(&dir.join(&file), &audio)?;
            clips.push(Clip {
                file,
                id: kind.to_string(),
                lang: None,
                voice: "none".into(),
                condition,
                snr_db: None,
                text: String::new(),
            });
        }
    }
    let mut manifest = std::fs::File::create(dir.join("corpus.jsonl"))?;
    for clip in &clips {
        writeln!(manifest, "{}", serde_json::to_string(clip)?)?;
    }
    eprintln!("wrote {} clips to {}", clips.len(), dir.display());
    Ok(())
}

fn chunk(sample_rate: u32, samples: Vec<i16>) -> AudioChunk {
    AudioChunk {
        sample_rate,
        samples,
    }
}

/// One of the crate's voices at its own rate, resampled to 16 kHz.
fn speak(tts: &dyn TextToSpeech, language: Language, text: &str) -> Result<Vec<i16>> {
    let mut pcm = Vec::new();
    tts.synthesize(text, language, &CancellationToken::new(), &mut |frame| {
        pcm.extend_from_slice(&frame.samples);
        ControlFlow::Continue(())
    })?;
    Ok(resample(&pcm, tts.sample_rate(), SAMPLE_RATE)?)
}

/// The `espeak-ng` program with `voice`, resampled to 16 kHz.
fn speak_espeak(voice: &str, text: &str) -> Result<Vec<i16>> {
    let tmp = tempfile::tempdir()?;
    let wav = tmp.path().join("out.wav");
    let status = Command::new("espeak-ng")
        .args(["-v", voice, "-s", ESPEAK_WPM, "-w"])
        .arg(&wav)
        .arg(text)
        .status()
        .context("running espeak-ng (apt-get install espeak-ng)")?;
    ensure!(status.success(), "espeak-ng -v {voice} failed: {status}");
    let audio = read_wav(&wav)?;
    Ok(resample(&audio.samples, audio.sample_rate, SAMPLE_RATE)?)
}

/// Trims leading and trailing silence to [`MARGIN_MS`] and scales the peak to [`PEAK`].
fn prepare_speech(pcm: &[i16]) -> Result<Vec<i16>> {
    let threshold = 300;
    let first = pcm.iter().position(|s| s.unsigned_abs() > threshold);
    let last = pcm.iter().rposition(|s| s.unsigned_abs() > threshold);
    let (Some(first), Some(last)) = (first, last) else {
        bail!("synthesized audio is silent");
    };
    let margin = MARGIN_MS * SAMPLE_RATE as usize / 1000;
    let peak = pcm[first..=last]
        .iter()
        .map(|s| f64::from(s.unsigned_abs()))
        .fold(1.0, f64::max);
    let gain = PEAK * 32767.0 / peak;
    let mut out = vec![0i16; margin];
    out.extend(
        pcm[first..=last]
            .iter()
            .map(|&s| (f64::from(s) * gain).round() as i16),
    );
    out.extend(std::iter::repeat_n(0, margin));
    Ok(out)
}

/// 16 kHz → 8 kHz → μ-law → 8 kHz PCM, as a G.711 line delivers it.
fn phone_line(pcm16k: &[i16]) -> Result<AudioChunk> {
    let narrow = resample(pcm16k, SAMPLE_RATE, TELEPHONE_RATE)?;
    let mut codes = Vec::with_capacity(narrow.len());
    G711Law::MuLaw.encode_into(&narrow, &mut codes);
    let mut line = Vec::with_capacity(codes.len());
    G711Law::MuLaw.decode_into(&codes, &mut line);
    Ok(chunk(TELEPHONE_RATE, line))
}

/// Mixes pink noise into `speech` at `snr_db` below the power of its voiced part.
fn add_noise(speech: &[i16], snr_db: f64, seed: u64) -> Vec<i16> {
    let voiced: Vec<f64> = speech
        .iter()
        .filter(|s| s.unsigned_abs() > 300)
        .map(|&s| f64::from(s))
        .collect();
    let speech_power = power(&voiced);
    let noise = pink_noise(speech.len(), seed);
    let gain = (speech_power / power(&noise) / 10f64.powf(snr_db / 10.0)).sqrt();
    speech
        .iter()
        .zip(&noise)
        .map(|(&s, &n)| (f64::from(s) + n * gain).clamp(-32768.0, 32767.0).round() as i16)
        .collect()
}

#[derive(Debug, Clone, Copy)]
enum NoiseColour {
    Brown = 0xb0,
    Pink = 0x91,
}

/// The telephone channel with noise in its band: speech down to 8 kHz and band-passed to
/// [`PHONE_BAND`], noise of `colour` band-passed the same way and scaled to `snr_db` below the
/// band's speech power over its active part, then μ-law encoded and decoded.
fn noisy_phone_line(
    pcm16k: &[i16],
    colour: NoiseColour,
    snr_db: f64,
    seed: u64,
) -> Result<AudioChunk> {
    let narrow = resample(pcm16k, SAMPLE_RATE, TELEPHONE_RATE)?;
    let speech = band_pass(&narrow.iter().map(|&s| f64::from(s)).collect::<Vec<_>>());
    // Active speech: the samples of 10 ms blocks within 30 dB of the loudest block.
    let block = TELEPHONE_RATE as usize / 100;
    let levels: Vec<f64> = speech.chunks(block).map(power).collect();
    let loudest = levels.iter().copied().fold(0.0, f64::max);
    let active: Vec<f64> = speech
        .chunks(block)
        .zip(&levels)
        .filter(|(_, &l)| l > loudest * 1e-3)
        .flat_map(|(c, _)| c.iter().copied())
        .collect();
    let raw = match colour {
        NoiseColour::Brown => brown_noise(speech.len(), seed),
        NoiseColour::Pink => pink_noise(speech.len(), seed),
    };
    let noise = band_pass(&raw);
    let gain = (power(&active) / power(&noise) / 10f64.powf(snr_db / 10.0)).sqrt();
    let mixed: Vec<i16> = speech
        .iter()
        .zip(&noise)
        .map(|(s, n)| (s + n * gain).clamp(-32768.0, 32767.0).round() as i16)
        .collect();
    let mut codes = Vec::with_capacity(mixed.len());
    G711Law::MuLaw.encode_into(&mixed, &mut codes);
    let mut line = Vec::with_capacity(codes.len());
    G711Law::MuLaw.decode_into(&codes, &mut line);
    Ok(chunk(TELEPHONE_RATE, line))
}

/// [`PHONE_BAND`] at 8 kHz: two second-order high-pass and two low-pass biquads (RBJ
/// cookbook, Q = 0.707), i.e. 24 dB per octave on each side.
fn band_pass(x: &[f64]) -> Vec<f64> {
    let fs = f64::from(TELEPHONE_RATE);
    let mut y = x.to_vec();
    for (f, high) in [
        (PHONE_BAND.0, true),
        (PHONE_BAND.0, true),
        (PHONE_BAND.1, false),
        (PHONE_BAND.1, false),
    ] {
        let w = std::f64::consts::TAU * f / fs;
        let alpha = w.sin() / (2.0 * std::f64::consts::FRAC_1_SQRT_2);
        let c = w.cos();
        let (b0, b1, b2) = if high {
            ((1.0 + c) / 2.0, -(1.0 + c), (1.0 + c) / 2.0)
        } else {
            ((1.0 - c) / 2.0, 1.0 - c, (1.0 - c) / 2.0)
        };
        let (a0, a1, a2) = (1.0 + alpha, -2.0 * c, 1.0 - alpha);
        let (mut x1, mut x2, mut y1, mut y2) = (0.0, 0.0, 0.0, 0.0);
        for v in &mut y {
            let x0 = *v;
            let out = (b0 * x0 + b1 * x1 + b2 * x2 - a1 * y1 - a2 * y2) / a0;
            (x2, x1, y2, y1) = (x1, x0, y1, out);
            *v = out;
        }
    }
    y
}

/// Brown (1/f²) noise: leaky integrated white noise; unit-less.
fn brown_noise(n: usize, seed: u64) -> Vec<f64> {
    let mut white = Noise(seed | 1);
    let mut level = 0.0;
    (0..n)
        .map(|_| {
            level = 0.998 * level + 0.05 * white.next();
            level
        })
        .collect()
}

fn power(x: &[f64]) -> f64 {
    x.iter().map(|v| v * v).sum::<f64>() / x.len().max(1) as f64
}

/// Deterministic uniform noise in [-1, 1) (xorshift64).
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 52) as f64 - 1.0
    }
}

/// Pink (1/f) noise, Paul Kellet's filter over white noise; unit-less, roughly ±1.
fn pink_noise(n: usize, seed: u64) -> Vec<f64> {
    let mut white = Noise(seed | 1);
    let mut b = [0f64; 7];
    (0..n)
        .map(|_| {
            let w = white.next();
            b[0] = 0.99886 * b[0] + w * 0.0555179;
            b[1] = 0.99332 * b[1] + w * 0.0750759;
            b[2] = 0.96900 * b[2] + w * 0.1538520;
            b[3] = 0.86650 * b[3] + w * 0.3104856;
            b[4] = 0.55000 * b[4] + w * 0.5329522;
            b[5] = -0.7616 * b[5] - w * 0.0168980;
            let out = b.iter().sum::<f64>() + w * 0.5362;
            b[6] = w * 0.115926;
            out * 0.11
        })
        .collect()
}

/// Scales `x` to an RMS level of `dbfs` and converts to PCM.
fn at_level(x: &[f64], dbfs: f64) -> Vec<i16> {
    let gain = 32767.0 * 10f64.powf(dbfs / 20.0) / power(x).sqrt().max(1e-12);
    x.iter()
        .map(|v| (v * gain).clamp(-32768.0, 32767.0).round() as i16)
        .collect()
}

/// Non-speech a line carries: digital silence, white and pink line noise, mains hum with its
/// harmonics, and hold music (a chord progression with a plucked melody).
fn non_speech() -> Vec<(&'static str, Vec<i16>)> {
    let n = NON_SPEECH_S * SAMPLE_RATE as usize;
    let sr = f64::from(SAMPLE_RATE);
    let mut white = Noise(0x9e37_79b9_7f4a_7c15);
    let white: Vec<f64> = (0..n).map(|_| white.next()).collect();
    let hum: Vec<f64> = (0..n)
        .map(|i| {
            let t = i as f64 / sr;
            [
                (50.0, 1.0),
                (100.0, 0.5),
                (150.0, 0.6),
                (250.0, 0.3),
                (350.0, 0.2),
            ]
            .iter()
            .map(|(f, a)| a * (std::f64::consts::TAU * f * t).sin())
            .sum::<f64>()
        })
        .collect();
    vec![
        ("silence", vec![0; n]),
        ("white", at_level(&white, -35.0)),
        ("pink", at_level(&pink_noise(n, 7), -30.0)),
        ("hum", at_level(&hum, -25.0)),
        ("music", at_level(&hold_music(n), -18.0)),
    ]
}

/// C – Am – F – G, one chord a second (three notes with a few harmonics, slow decay), and a
/// melody of chord tones an octave up every quarter second (fast decay).
fn hold_music(n: usize) -> Vec<f64> {
    const CHORDS: [[f64; 3]; 4] = [
        [261.63, 329.63, 392.00],
        [220.00, 261.63, 329.63],
        [174.61, 220.00, 261.63],
        [196.00, 246.94, 293.66],
    ];
    let sr = f64::from(SAMPLE_RATE);
    let tone = |f: f64, t: f64| -> f64 {
        [(1.0, 1.0), (2.0, 0.4), (3.0, 0.2), (4.0, 0.1)]
            .iter()
            .map(|(h, a)| a * (std::f64::consts::TAU * f * h * t).sin())
            .sum()
    };
    (0..n)
        .map(|i| {
            let t = i as f64 / sr;
            let chord = CHORDS[(t as usize) % CHORDS.len()];
            let in_chord = t.fract();
            let pad: f64 = chord.iter().map(|&f| tone(f, t)).sum::<f64>()
                * (1.0 - (-in_chord / 0.02).exp())
                * (-in_chord * 1.5).exp();
            let beat = (t * 4.0) as usize;
            let in_note = t * 4.0 - beat as f64;
            let note = chord[beat % 3] * 2.0;
            let melody = tone(note, t) * (1.0 - (-in_note / 0.005).exp()) * (-in_note * 6.0).exp();
            pad + 1.5 * melody
        })
        .collect()
}

/// FNV-1a, for per-clip noise seeds that do not depend on the order of generation.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

//! Contract of [`VoiceActivity`], checked once and run against every implementation: the
//! energy fake and Silero (sherpa-onnx, needs `models/` from scripts/setup.sh).
//!
//! Cases are data: every `tests/data/vad/<case>.wav` has a `<case>.json` with the true speech
//! bounds (`make.sh` there regenerates both), so a new case is a new pair of files.

use anyhow::{ensure, Context, Result};
use std::path::{Path, PathBuf};
use voice::audio::{read_wav, FRAME_SAMPLES};
use voice::vad::silero::SileroVad;
use voice::vad::EnergyVad;
use voice::{VadEvent, VoiceActivity, VoiceConfig, SAMPLE_RATE};

/// How far a reported start may be from the true start. sherpa-onnx backdates Silero's start by
/// two model windows plus the minimum speech time from the window that confirmed it; the energy
/// fake works in 20 ms frames.
const START_TOLERANCE_MS: i64 = 150;
/// How far a reported end may be from the true end of clean synthetic speech (the voice
/// issue's target: an endpoint within 100 ms).
const END_TOLERANCE_MS: i64 = 100;
/// Hang-over used for both engines (the configured default).
const HANGOVER_MS: u32 = 300;
/// RMS above which the energy fake calls a 20 ms frame speech: above the cases' background
/// noise (about 100), below espeak-ng's voiced sounds.
const ENERGY_THRESHOLD: f32 = 400.0;

type MakeVad = fn() -> Result<Box<dyn VoiceActivity>>;

fn energy() -> Result<Box<dyn VoiceActivity>> {
    Ok(Box::new(EnergyVad::new(ENERGY_THRESHOLD, HANGOVER_MS)))
}

fn silero() -> Result<Box<dyn VoiceActivity>> {
    let models_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models");
    let config = VoiceConfig {
        models_dir,
        vad_hangover_ms: HANGOVER_MS,
        ..Default::default()
    };
    let model = config.silero_model();
    assert!(
        model.is_file(),
        "{} is missing: run scripts/setup.sh to fetch the models (this test needs the real Silero \
         VAD model)",
        model.display()
    );
    Ok(Box::new(SileroVad::new(&config)?))
}

/// One test case: a WAV file and the true utterance bounds.
#[derive(Debug, serde::Deserialize)]
struct Truth {
    utterances_ms: Vec<(u64, u64)>,
    /// The audio stops mid-utterance: only `flush` can end the last one.
    ends_in_speech: bool,
}

struct Case {
    name: String,
    pcm: Vec<i16>,
    truth: Truth,
}

fn cases() -> Result<Vec<Case>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/vad");
    let mut wavs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    wavs.retain(|p| p.extension().is_some_and(|e| e == "wav"));
    wavs.sort();
    ensure!(!wavs.is_empty(), "no test cases in {}", dir.display());
    wavs.iter()
        .map(|wav| {
            let audio = read_wav(wav)?;
            ensure!(
                audio.sample_rate == SAMPLE_RATE,
                "{}: not 16 kHz",
                wav.display()
            );
            let json = wav.with_extension("json");
            let truth = serde_json::from_str(
                &std::fs::read_to_string(&json).with_context(|| format!("{}", json.display()))?,
            )
            .with_context(|| format!("parsing {}", json.display()))?;
            let name = wav
                .file_stem()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            Ok(Case {
                name,
                pcm: audio.samples,
                truth,
            })
        })
        .collect()
}

/// Events of one run, split at the flush.
struct Run {
    before_flush: Vec<VadEvent>,
    from_flush: Vec<VadEvent>,
}

impl Run {
    fn all(&self) -> impl Iterator<Item = &VadEvent> {
        self.before_flush.iter().chain(&self.from_flush)
    }
}

fn run(make: MakeVad, pcm: &[i16], chunk: usize) -> Result<Run> {
    let mut vad = make()?;
    let mut before_flush = Vec::new();
    for piece in pcm.chunks(chunk) {
        before_flush.extend(vad.push(piece)?);
    }
    Ok(Run {
        before_flush,
        from_flush: vad.flush()?,
    })
}

/// (start_ms, end_ms, samples) of each utterance, checking that events come as
/// `SpeechStarted`, `SpeechEnded` pairs that agree on the start.
fn utterances(case: &str, run: &Run) -> Vec<(u64, u64, usize)> {
    let mut out = Vec::new();
    let mut open: Option<u64> = None;
    for event in run.all() {
        match (event, open) {
            (VadEvent::SpeechStarted { at_ms }, None) => open = Some(*at_ms),
            (VadEvent::SpeechPaused { at_ms }, Some(open_at)) => assert!(
                *at_ms >= open_at,
                "{case}: pause at {at_ms} ms before its utterance's start {open_at} ms"
            ),
            (
                VadEvent::SpeechEnded {
                    start_ms,
                    end_ms,
                    samples,
                },
                Some(at_ms),
            ) => {
                assert!(
                    start_ms.abs_diff(at_ms) <= 40,
                    "{case}: SpeechEnded.start_ms {start_ms} far from SpeechStarted.at_ms {at_ms}"
                );
                assert!(
                    end_ms > start_ms,
                    "{case}: empty utterance {start_ms}..{end_ms}"
                );
                out.push((*start_ms, *end_ms, samples.len()));
                open = None;
            }
            (event, open) => panic!("{case}: {event:?} out of order (open utterance: {open:?})"),
        }
    }
    assert_eq!(open, None, "{case}: flush left an utterance open");
    out
}

/// Every case, pushed in 20 ms frames: one start and one end per true utterance, in order,
/// near the true bounds, with the utterance's samples; silence and noise give nothing.
fn detects_each_utterance(make: MakeVad) -> Result<()> {
    for case in cases()? {
        let name = &case.name;
        let run = run(make, &case.pcm, FRAME_SAMPLES)?;
        let got = utterances(name, &run);
        let want = &case.truth.utterances_ms;
        let spans: Vec<_> = got.iter().map(|&(s, e, _)| (s, e)).collect();
        assert_eq!(
            got.len(),
            want.len(),
            "{name}: got utterances {spans:?}, want {want:?}"
        );
        for (&(start, end, n), &(true_start, true_end)) in got.iter().zip(want) {
            let (ds, de) = (
                start as i64 - true_start as i64,
                end as i64 - true_end as i64,
            );
            eprintln!("{name}: start {ds:+} ms, end {de:+} ms from the truth");
            assert!(
                ds.abs() <= START_TOLERANCE_MS,
                "{name}: start {start} ms, true start {true_start} ms (all: {spans:?})"
            );
            assert!(
                de.abs() <= END_TOLERANCE_MS,
                "{name}: end {end} ms, true end {true_end} ms (all: {spans:?})"
            );
            let want_n = (end - start) * u64::from(SAMPLE_RATE) / 1000;
            assert!(
                (n as i64 - want_n as i64).abs() <= FRAME_SAMPLES as i64,
                "{name}: {n} samples for {start}..{end} ms"
            );
        }
        let ended_by_flush = run
            .from_flush
            .iter()
            .filter(|e| matches!(e, VadEvent::SpeechEnded { .. }))
            .count();
        let want_flush = usize::from(case.truth.ends_in_speech);
        assert_eq!(
            ended_by_flush, want_flush,
            "{name}: utterances ended by flush"
        );
    }
    Ok(())
}

/// Chunking does not matter: one big chunk, 20 ms frames and odd-sized pieces give the same
/// utterances.
fn chunking_does_not_matter(make: MakeVad) -> Result<()> {
    for case in cases()? {
        let spans = |chunk| -> Result<Vec<(u64, u64)>> {
            let run = run(make, &case.pcm, chunk)?;
            Ok(utterances(&case.name, &run)
                .into_iter()
                .map(|(s, e, _)| (s, e))
                .collect())
        };
        let framed = spans(FRAME_SAMPLES)?;
        assert_eq!(
            spans(case.pcm.len().max(1))?,
            framed,
            "{}: one chunk vs 20 ms",
            case.name
        );
        assert_eq!(
            spans(37)?,
            framed,
            "{}: 37-sample pieces vs 20 ms",
            case.name
        );
    }
    Ok(())
}

/// `SpeechStarted` comes while the caller is still talking (barge-in), not with the end.
fn announces_start_during_speech(make: MakeVad) -> Result<()> {
    for case in cases()? {
        let mut vad = make()?;
        let mut pushed_ms = 0u64;
        for frame in case.pcm.chunks(FRAME_SAMPLES) {
            pushed_ms += frame.len() as u64 * 1000 / u64::from(SAMPLE_RATE);
            for event in vad.push(frame)? {
                if let VadEvent::SpeechStarted { at_ms } = event {
                    let (_, true_end) = case
                        .truth
                        .utterances_ms
                        .iter()
                        .copied()
                        .find(|&(s, e)| at_ms + START_TOLERANCE_MS as u64 >= s && at_ms < e)
                        .unwrap_or_else(|| panic!("{}: start {at_ms} in no utterance", case.name));
                    assert!(
                        pushed_ms < true_end,
                        "{}: start at {at_ms} ms announced only after the utterance ended \
                         ({pushed_ms} ms pushed)",
                        case.name
                    );
                }
            }
        }
    }
    Ok(())
}

/// Every utterance that silence ends is preceded by a pause near its end: the moment the
/// recognizer may start on the final, at least the rest of the hang-over before the end is
/// confirmed.
fn pauses_before_each_end(make: MakeVad) -> Result<()> {
    for case in cases()? {
        let mut vad = make()?;
        let (mut pushed_ms, mut paused_ms) = (0u64, None);
        for frame in case.pcm.chunks(FRAME_SAMPLES) {
            pushed_ms += frame.len() as u64 * 1000 / u64::from(SAMPLE_RATE);
            for event in vad.push(frame)? {
                match event {
                    VadEvent::SpeechStarted { .. } => paused_ms = None,
                    VadEvent::SpeechPaused { .. } => paused_ms = Some(pushed_ms),
                    VadEvent::SpeechEnded { end_ms, .. } => {
                        let paused = paused_ms.unwrap_or_else(|| {
                            panic!("{}: end at {end_ms} ms without a pause", case.name)
                        });
                        let ahead = pushed_ms - paused;
                        eprintln!(
                            "{}: pause reported {ahead} ms before the end (at {end_ms} ms)",
                            case.name
                        );
                        assert!(
                            ahead + 100 >= u64::from(HANGOVER_MS),
                            "{}: the pause came only {ahead} ms before the end",
                            case.name
                        );
                    }
                }
            }
        }
    }
    Ok(())
}

/// Pushing empty slices and flushing twice are harmless.
fn empty_input_and_double_flush(make: MakeVad) -> Result<()> {
    let mut vad = make()?;
    ensure!(vad.push(&[])?.is_empty(), "empty push gave events");
    ensure!(vad.flush()?.is_empty(), "flush of nothing gave events");
    ensure!(vad.flush()?.is_empty(), "second flush gave events");
    Ok(())
}

macro_rules! contract {
    ($engine:ident) => {
        mod $engine {
            #[test]
            fn detects_each_utterance() -> anyhow::Result<()> {
                super::detects_each_utterance(super::$engine)
            }
            #[test]
            fn chunking_does_not_matter() -> anyhow::Result<()> {
                super::chunking_does_not_matter(super::$engine)
            }
            #[test]
            fn announces_start_during_speech() -> anyhow::Result<()> {
                super::announces_start_during_speech(super::$engine)
            }
            #[test]
            fn pauses_before_each_end() -> anyhow::Result<()> {
                super::pauses_before_each_end(super::$engine)
            }
            #[test]
            fn empty_input_and_double_flush() -> anyhow::Result<()> {
                super::empty_input_and_double_flush(super::$engine)
            }
        }
    };
}

contract!(energy);
contract!(silero);

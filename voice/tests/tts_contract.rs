//! Contract of [`TextToSpeech`], written once and run against every engine: the fake, Piper
//! (English, needs the models from scripts/setup.sh) and espeak-ng (Mandarin, needs the Debian
//! `espeak-ng` package).

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use tokio_util::sync::CancellationToken;
use voice::tts::espeak::EspeakTts;
use voice::tts::piper::PiperTts;
use voice::tts::zh_fastspeech::ZhFastSpeechTts;
use voice::tts::FakeTts;
use voice::{AudioChunk, Language, TextToSpeech, VoiceConfig, FRAME_MS};

fn models_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../models")
}

fn config() -> VoiceConfig {
    VoiceConfig {
        models_dir: models_dir(),
        ..VoiceConfig::default()
    }
}

fn fake() -> Arc<dyn TextToSpeech> {
    Arc::new(FakeTts)
}

/// One Piper voice per test binary, shared by the tests running in parallel, as calls share it.
fn piper() -> Arc<dyn TextToSpeech> {
    static VOICE: OnceLock<Arc<PiperTts>> = OnceLock::new();
    VOICE
        .get_or_init(|| {
            let voice = PiperTts::load(&config()).unwrap_or_else(|e| {
                panic!(
                    "Piper voice not loaded from {}: {e}",
                    models_dir().display()
                )
            });
            Arc::new(voice)
        })
        .clone()
}

/// The Mandarin neural voice, one per test binary like Piper.
fn zh_fastspeech() -> Arc<dyn TextToSpeech> {
    static VOICE: OnceLock<Arc<ZhFastSpeechTts>> = OnceLock::new();
    VOICE
        .get_or_init(|| {
            Arc::new(ZhFastSpeechTts::load(&config()).unwrap_or_else(|e| {
                panic!(
                    "Mandarin voice not loaded from {}: {e}",
                    models_dir().display()
                )
            }))
        })
        .clone()
}

fn espeak_cmn() -> Arc<dyn TextToSpeech> {
    Arc::new(EspeakTts::load(&config()).unwrap_or_else(|e| panic!("espeak-ng cmn voice: {e}")))
}

/// A sentence in the engine's first language, with its plausible spoken length in seconds.
fn sentence(engine: &dyn TextToSpeech) -> (&'static str, Language) {
    match engine.languages()[0] {
        Language::English => (
            "Hello, this is Anna calling about your account.",
            Language::English,
        ),
        Language::Chinese => ("您好，我是客服中心的小王。", Language::Chinese),
    }
}

fn two_sentences(engine: &dyn TextToSpeech) -> (&'static str, Language) {
    match engine.languages()[0] {
        Language::English => (
            "Hello, this is Anna. Do you have a minute to talk today?",
            Language::English,
        ),
        Language::Chinese => ("您好，我是小王。请问您现在方便说话吗？", Language::Chinese),
    }
}

fn collect(engine: &dyn TextToSpeech, text: &str, language: Language) -> Vec<AudioChunk> {
    let mut frames = Vec::new();
    let stats = engine
        .synthesize(text, language, &CancellationToken::new(), &mut |frame| {
            frames.push(frame);
            ControlFlow::Continue(())
        })
        .expect("synthesis succeeds");
    assert!(!stats.cancelled, "nothing cancelled this synthesis");
    let total: f64 = frames.iter().map(AudioChunk::duration_ms).sum();
    assert!(
        (stats.audio_ms - total).abs() < 1e-6,
        "stats {} ms, frames {total} ms",
        stats.audio_ms
    );
    frames
}

fn frames_are_20ms_at_the_sample_rate(engine: &dyn TextToSpeech) {
    let (text, language) = two_sentences(engine);
    let frames = collect(engine, text, language);
    let frame_len = (engine.sample_rate() * FRAME_MS / 1000) as usize;
    assert!(frames.len() > 10, "only {} frames", frames.len());
    let last = frames.len() - 1;
    for (i, frame) in frames.iter().enumerate() {
        assert_eq!(frame.sample_rate, engine.sample_rate(), "frame {i}");
        if i < last {
            assert_eq!(
                frame.samples.len(),
                frame_len,
                "frame {i} of {}",
                frames.len()
            );
        } else {
            assert!((1..=frame_len).contains(&frame.samples.len()), "last frame");
        }
    }
}

fn a_sentence_is_audible_speech_of_plausible_length(engine: &dyn TextToSpeech) {
    let (text, language) = sentence(engine);
    let frames = collect(engine, text, language);
    let samples: Vec<i16> = frames
        .iter()
        .flat_map(|f| f.samples.iter().copied())
        .collect();
    let seconds = samples.len() as f64 / f64::from(engine.sample_rate());
    assert!(
        (0.8..8.0).contains(&seconds),
        "{seconds:.2} s of audio for {text:?}"
    );
    let rms =
        (samples.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / samples.len() as f64).sqrt();
    let peak = samples.iter().map(|s| s.unsigned_abs()).max().unwrap_or(0);
    assert!(
        rms > 200.0 && peak > 2000,
        "too quiet: rms {rms:.0}, peak {peak}"
    );
}

fn cancelling_after_the_first_frame_yields_at_most_one_more(engine: &dyn TextToSpeech) {
    let (text, language) = two_sentences(engine);
    let cancel = CancellationToken::new();
    let mut frames = 0;
    let stats = engine
        .synthesize(text, language, &cancel, &mut |_| {
            frames += 1;
            cancel.cancel();
            ControlFlow::Continue(())
        })
        .expect("a cancelled synthesis is not an error");
    assert!(frames <= 2, "{frames} frames after cancelling on the first");
    assert!(stats.cancelled);
}

fn a_sink_returning_break_stops_synthesis(engine: &dyn TextToSpeech) {
    let (text, language) = two_sentences(engine);
    let mut frames = 0;
    let stats = engine
        .synthesize(text, language, &CancellationToken::new(), &mut |_| {
            frames += 1;
            ControlFlow::Break(())
        })
        .expect("a stopped synthesis is not an error");
    assert_eq!(frames, 1);
    assert!(stats.cancelled);
    assert!(
        stats.audio_ms <= f64::from(FRAME_MS) + 1e-6,
        "{} ms",
        stats.audio_ms
    );
}

fn empty_text_gives_no_audio_and_no_error(engine: &dyn TextToSpeech) {
    let language = engine.languages()[0];
    for text in ["", "   ", "\n"] {
        let frames = collect(engine, text, language);
        assert!(frames.is_empty(), "{} frames for {text:?}", frames.len());
    }
}

fn a_cancelled_token_gives_no_audio(engine: &dyn TextToSpeech) {
    let (text, language) = sentence(engine);
    let cancel = CancellationToken::new();
    cancel.cancel();
    let mut frames = 0;
    let stats = engine
        .synthesize(text, language, &cancel, &mut |_| {
            frames += 1;
            ControlFlow::Continue(())
        })
        .expect("a cancelled synthesis is not an error");
    assert_eq!(frames, 0);
    assert!(stats.cancelled);
}

fn one_engine_serves_concurrent_calls(engine: Arc<dyn TextToSpeech>) {
    let (text, language) = sentence(engine.as_ref());
    let alone = collect(engine.as_ref(), text, language).len();
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let engine = Arc::clone(&engine);
            std::thread::spawn(move || collect(engine.as_ref(), text, language).len())
        })
        .collect();
    for thread in threads {
        let frames = thread.join().expect("synthesis thread panicked");
        // Piper samples noise, so lengths of the same sentence vary a little between runs.
        assert!(
            frames.abs_diff(alone) * 5 <= alone,
            "{frames} frames vs {alone} alone"
        );
    }
}

/// The whole contract for one engine, as a module of tests.
macro_rules! tts_contract {
    ($name:ident, $engine:expr) => {
        mod $name {
            use super::*;

            #[test]
            fn frames_are_20ms_at_the_sample_rate() {
                super::frames_are_20ms_at_the_sample_rate($engine.as_ref());
            }
            #[test]
            fn a_sentence_is_audible_speech_of_plausible_length() {
                super::a_sentence_is_audible_speech_of_plausible_length($engine.as_ref());
            }
            #[test]
            fn cancelling_after_the_first_frame_yields_at_most_one_more() {
                super::cancelling_after_the_first_frame_yields_at_most_one_more($engine.as_ref());
            }
            #[test]
            fn a_sink_returning_break_stops_synthesis() {
                super::a_sink_returning_break_stops_synthesis($engine.as_ref());
            }
            #[test]
            fn empty_text_gives_no_audio_and_no_error() {
                super::empty_text_gives_no_audio_and_no_error($engine.as_ref());
            }
            #[test]
            fn a_cancelled_token_gives_no_audio() {
                super::a_cancelled_token_gives_no_audio($engine.as_ref());
            }
            #[test]
            fn one_engine_serves_concurrent_calls() {
                super::one_engine_serves_concurrent_calls($engine);
            }
        }
    };
}

tts_contract!(fake, fake());
tts_contract!(piper, piper());
tts_contract!(espeak, espeak_cmn());
tts_contract!(zh_fastspeech, zh_fastspeech());

#[test]
fn piper_speaks_at_the_voice_sample_rate() {
    assert_eq!(piper().sample_rate(), 22_050);
}

#[test]
fn piper_refuses_mandarin_with_a_hint() {
    let err = piper()
        .synthesize(
            "您好",
            Language::Chinese,
            &CancellationToken::new(),
            &mut |_| ControlFlow::Continue(()),
        )
        .expect_err("Piper has no Mandarin voice");
    assert!(err.to_string().contains("espeak"), "{err}");
}

#[test]
fn piper_without_models_says_to_run_setup() {
    let config = VoiceConfig {
        models_dir: PathBuf::from("/nonexistent/models"),
        ..config()
    };
    let err = PiperTts::load(&config).expect_err("no models there");
    assert!(err.to_string().contains("scripts/setup.sh"), "{err}");
}

#[test]
fn piper_without_onnxruntime_says_to_run_setup() {
    let models = tempfile::tempdir().expect("temp dir");
    let real = models_dir()
        .canonicalize()
        .expect("run scripts/setup.sh: no models/ folder");
    std::os::unix::fs::symlink(real.join("piper"), models.path().join("piper")).expect("link");
    std::os::unix::fs::symlink(
        real.join("espeak-ng-data"),
        models.path().join("espeak-ng-data"),
    )
    .expect("link");
    let config = VoiceConfig {
        models_dir: models.path().to_path_buf(),
        ..config()
    };
    let err = PiperTts::load(&config).expect_err("no onnxruntime there");
    assert!(err.to_string().contains("libonnxruntime.so"), "{err}");
    assert!(err.to_string().contains("scripts/setup.sh"), "{err}");
}

#[test]
fn an_unknown_espeak_voice_is_a_clear_error() {
    let err = EspeakTts::new(Path::new("espeak-ng"), "zzvoice", Language::Chinese)
        .expect_err("unknown voice");
    assert!(err.to_string().contains("zzvoice"), "{err}");
}

/// sherpa-onnx (the Silero VAD) links its own onnxruntime 1.17 by name; Piper loads 1.24 by path.
/// Both must work in one process: Piper's speech, resampled to 16 kHz, is heard by the VAD.
#[test]
fn piper_and_the_silero_vad_share_a_process() {
    use voice::vad::{silero::SileroVad, VadEvent, VoiceActivity};
    let mut vad = SileroVad::new(&config()).unwrap_or_else(|e| panic!("Silero VAD: {e}"));
    let tts = piper();
    let mut speech = vec![0; voice::SAMPLE_RATE as usize / 2];
    let (text, language) = sentence(tts.as_ref());
    let voiced: Vec<i16> = collect(tts.as_ref(), text, language)
        .into_iter()
        .flat_map(|frame| frame.samples)
        .collect();
    speech.extend(
        voice::audio::resample(&voiced, tts.sample_rate(), voice::SAMPLE_RATE)
            .expect("resampling to 16 kHz"),
    );
    speech.extend(vec![0; voice::SAMPLE_RATE as usize]);
    let mut events = vad.push(&speech).expect("VAD runs");
    events.extend(vad.flush().expect("VAD flushes"));
    assert!(
        events.iter().any(|e| matches!(e, VadEvent::SpeechEnded { end_ms, start_ms, .. } if end_ms - start_ms > 1000)),
        "no utterance of over a second in {events:?}"
    );
    let maps = std::fs::read_to_string("/proc/self/maps").expect("Linux");
    let runtimes: std::collections::BTreeSet<&str> = maps
        .lines()
        .filter_map(|line| line.split_whitespace().nth(5))
        .filter(|path| path.contains("libonnxruntime"))
        .collect();
    assert_eq!(
        runtimes.len(),
        2,
        "expected both onnxruntimes mapped, found {runtimes:?}"
    );
}

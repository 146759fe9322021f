//! Whisper on the real model files: transcripts of the clips in `tests/data/asr_*.wav` against
//! their `.txt` references (word error rate), silence and noise, partials during `push`, and the
//! cached decoder against candle's own, the 8-bit decoder against the f32 one.
//! Needs `models/whisper-base` and `models/whisper-tiny.en` (run scripts/setup.sh).

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use voice::asr::whisper::{DecoderWeights, WhisperAsr};
use voice::audio::read_wav;
use voice::metrics::{normalized_words, word_error_rate as wer};
use voice::{AsrOptions, AsrStream, Language, SpeechToText};

/// Largest word error rate accepted on any one espeak-ng clip.
const MAX_CLIP_WER: f64 = 0.5;
/// Largest mean word error rate over all clips, per model. tiny.en loses the end of
/// asr_en_04 ("Who is calling?") or repeats a phrase there, depending on the padding.
const MAX_MEAN_WER_BASE: f64 = 0.10;
const MAX_MEAN_WER_TINY_EN: f64 = 0.15;

fn models_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../models")
}

fn load(name: &str) -> &'static WhisperAsr {
    static BASE: OnceLock<WhisperAsr> = OnceLock::new();
    static TINY_EN: OnceLock<WhisperAsr> = OnceLock::new();
    let cell = match name {
        "whisper-base" => &BASE,
        _ => &TINY_EN,
    };
    cell.get_or_init(|| {
        let dir = models_dir().join(name);
        assert!(
            dir.join("model.bin").exists(),
            "{} is missing: run scripts/setup.sh to fetch the Whisper models",
            dir.join("model.bin").display()
        );
        WhisperAsr::load(&dir, 2).unwrap_or_else(|e| panic!("loading {}: {e}", dir.display()))
    })
}

/// Every `asr_*.wav` with its reference text.
fn clips() -> Result<Vec<(PathBuf, String)>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if name.starts_with("asr_") && name.ends_with(".wav") {
            let text = std::fs::read_to_string(path.with_extension("txt"))
                .with_context(|| format!("reference text for {}", path.display()))?;
            out.push((path, text.trim().to_string()));
        }
    }
    out.sort();
    if out.is_empty() {
        bail!("no asr_*.wav clips in {}", dir.display());
    }
    Ok(out)
}

fn check_clips(model: &str, max_mean_wer: f64) -> Result<()> {
    let asr = load(model);
    let options = AsrOptions {
        language: Language::English,
        initial_prompt: None,
    };
    let mut failures = Vec::new();
    let mut total = 0.0;
    let all = clips()?;
    for (path, reference) in &all {
        let audio = read_wav(path)?;
        assert_eq!(
            audio.sample_rate,
            16_000,
            "{} must be 16 kHz",
            path.display()
        );
        let t = asr.transcribe(&audio.samples, &options)?;
        let e = wer(reference, &t.text);
        total += e;
        eprintln!(
            "{model} {}: WER {e:.2} avg_logprob {:.2} no_speech {:.3}\n  ref: {reference}\n  hyp: {}",
            path.display(),
            t.avg_logprob,
            t.no_speech_prob,
            t.text
        );
        assert!(t.is_final);
        if e > MAX_CLIP_WER {
            failures.push(format!(
                "{}: WER {e:.2} > {MAX_CLIP_WER}: {:?} vs {reference:?}",
                path.display(),
                t.text
            ));
        }
    }
    let mean = total / all.len() as f64;
    eprintln!("{model}: mean WER {mean:.3} over {} clips", all.len());
    if mean > max_mean_wer {
        failures.push(format!("mean WER {mean:.3} > {max_mean_wer}"));
    }
    if !failures.is_empty() {
        bail!("{model}:\n{}", failures.join("\n"));
    }
    Ok(())
}

#[test]
fn base_transcribes_english_clips() -> Result<()> {
    check_clips("whisper-base", MAX_MEAN_WER_BASE)
}

#[test]
fn tiny_en_transcribes_english_clips() -> Result<()> {
    check_clips("whisper-tiny.en", MAX_MEAN_WER_TINY_EN)
}

/// Deterministic low white noise (xorshift), about −40 dBFS.
fn white_noise(samples: usize) -> Vec<i16> {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    (0..samples)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            ((state >> 40) as i32 % 600 - 300) as i16
        })
        .collect()
}

#[test]
fn silence_and_noise_give_no_text() -> Result<()> {
    let options = AsrOptions::default();
    for model in ["whisper-base", "whisper-tiny.en"] {
        let asr = load(model);
        for (what, pcm) in [
            ("silence", vec![0i16; 32_000]),
            ("noise", white_noise(32_000)),
        ] {
            let t = asr.transcribe(&pcm, &options)?;
            eprintln!(
                "{model} {what}: {:?} no_speech {:.3} avg_logprob {:.2}",
                t.text, t.no_speech_prob, t.avg_logprob
            );
            assert!(
                t.text.is_empty(),
                "{model} {what}: heard {:?} with no_speech {}",
                t.text,
                t.no_speech_prob
            );
        }
    }
    Ok(())
}

#[test]
fn stream_gives_partials_then_a_final() -> Result<()> {
    let asr = load("whisper-tiny.en");
    let (path, reference) = clips()?.into_iter().next().context("a clip")?;
    let audio = read_wav(&path)?;
    let mut stream = asr.start(&AsrOptions::default())?;
    let mut partials: Vec<String> = Vec::new();
    // 20 ms frames at the pace they arrive from the line: partials are decoded on the model's
    // workers and come back on a later push.
    let started = Instant::now();
    for (i, frame) in audio.samples.chunks(320).enumerate() {
        let due = started + Duration::from_millis(20 * i as u64);
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
        if let Some(p) = stream.push(frame)? {
            assert!(!p.is_final);
            partials.push(p.text);
        }
    }
    let last = stream.finish()?;
    eprintln!("partials: {partials:?}\nfinal: {:?}", last.text);
    // At most one re-decode, hence one partial, per half second of audio (the default
    // interval); fewer when a decode takes longer than that.
    assert!(
        (1..=audio.samples.len() / 8_000).contains(&partials.len()),
        "partials {partials:?}"
    );
    // A partial is the part two hypotheses in a row agree on: nothing after the first decode,
    // and never taken back later.
    assert_eq!(partials[0], "", "{partials:?}");
    for pair in partials.windows(2) {
        let (a, b) = (normalized_words(&pair[0]), normalized_words(&pair[1]));
        assert!(
            b.len() >= a.len() && b[..a.len()] == a[..],
            "partial {:?} is not a prefix of {:?}",
            pair[0],
            pair[1]
        );
    }
    assert!(
        partials.iter().any(|p| !p.is_empty()),
        "all partials empty: {partials:?}"
    );
    assert!(last.is_final);
    assert!(
        wer(&reference, &last.text) <= MAX_CLIP_WER,
        "{:?} vs {reference:?}",
        last.text
    );
    // The stream was reset: an empty utterance gives empty text.
    let empty = stream.finish()?;
    assert!(empty.text.is_empty(), "{:?}", empty.text);
    Ok(())
}

/// The cached decoder with f32 weights (and the stream's final, which verifies the last
/// partial's tokens as a draft) must give what candle's uncached decoder gives. Base only:
/// tiny.en runs the same code, and the uncached reference is slow.
#[test]
fn cached_decoding_matches_candle_decoder() -> Result<()> {
    let options = AsrOptions {
        language: Language::English,
        initial_prompt: None,
    };
    for model in ["whisper-base"] {
        let asr = &WhisperAsr::load_with(&models_dir().join(model), 2, 1, DecoderWeights::F32)?;
        for (path, _) in clips()? {
            let audio = read_wav(&path)?;
            let (reference, _) = asr.transcribe_reference(&audio.samples, &options)?;
            let cached = asr.transcribe(&audio.samples, &options)?;
            assert_eq!(cached.text, reference.text, "{model} {}", path.display());
            assert!(
                (cached.avg_logprob - reference.avg_logprob).abs() < 1e-3
                    && (cached.no_speech_prob - reference.no_speech_prob).abs() < 1e-3,
                "{model} {}: {cached:?} vs {reference:?}",
                path.display()
            );
            let mut stream = asr.start(&options)?;
            for frame in audio.samples.chunks(320) {
                stream.push(frame)?;
            }
            let streamed = stream.finish()?;
            assert_eq!(
                streamed.text,
                reference.text,
                "{model} {} streamed",
                path.display()
            );
        }
    }
    Ok(())
}

/// The 8-bit decoder (the default) against the exact f32 one on every clip: the same words,
/// and average log-probabilities (which the hallucination filter reads) close.
#[test]
fn quantized_decoder_keeps_the_f32_text() -> Result<()> {
    let options = AsrOptions {
        language: Language::English,
        initial_prompt: None,
    };
    for model in ["whisper-base", "whisper-tiny.en"] {
        let exact = WhisperAsr::load_with(&models_dir().join(model), 2, 1, DecoderWeights::F32)?;
        let q8 = load(model);
        for (path, _) in clips()? {
            let audio = read_wav(&path)?;
            let reference = exact.transcribe(&audio.samples, &options)?;
            let quantized = q8.transcribe(&audio.samples, &options)?;
            eprintln!(
                "{model} {}: f32 {:.3} {:?} / q8 {:.3} {:?}",
                path.display(),
                reference.avg_logprob,
                reference.text,
                quantized.avg_logprob,
                quantized.text
            );
            assert_eq!(
                normalized_words(&quantized.text),
                normalized_words(&reference.text),
                "{model} {}",
                path.display()
            );
            assert!(
                (quantized.avg_logprob - reference.avg_logprob).abs() < 0.05
                    && (quantized.no_speech_prob - reference.no_speech_prob).abs() < 0.02,
                "{model} {}: {quantized:?} vs {reference:?}",
                path.display()
            );
        }
    }
    Ok(())
}

/// The final after a pause: the decode started at the pause (`speculate`) covers all the speech,
/// so the final confirmed after the hang-over is exactly the one-shot text of the speech; without
/// a pause the final is decoded on the speech plus a short tail, the rest of the silence cut.
#[test]
fn speculative_final_is_the_text_of_the_speech() -> Result<()> {
    let asr = load("whisper-tiny.en");
    let options = AsrOptions::default();
    for (path, reference) in clips()?.into_iter().take(2) {
        let speech = read_wav(&path)?.samples;
        let one_shot = asr.transcribe(&speech, &options)?;
        let hang_over = vec![0i16; 16_000 * 3 / 10];

        let mut stream = asr.stream(&options)?;
        for frame in speech.chunks(320) {
            stream.push(frame)?;
        }
        stream.speculate()?;
        for frame in hang_over.chunks(320) {
            stream.push(frame)?;
        }
        let speculative = stream.finish_at(speech.len())?;
        assert!(speculative.is_final);
        assert_eq!(speculative.text, one_shot.text, "{}", path.display());

        for frame in speech
            .iter()
            .chain(&hang_over)
            .copied()
            .collect::<Vec<_>>()
            .chunks(320)
        {
            stream.push(frame)?;
        }
        let cut = stream.finish_at(speech.len())?;
        assert!(
            wer(&reference, &cut.text) <= MAX_CLIP_WER,
            "{}: {:?} vs {reference:?}",
            path.display(),
            cut.text
        );
    }
    Ok(())
}

#[test]
fn english_only_model_refuses_chinese() {
    let asr = load("whisper-tiny.en");
    let options = AsrOptions {
        language: Language::Chinese,
        initial_prompt: None,
    };
    let err = asr.start(&options).err().expect("tiny.en must refuse zh");
    assert!(err.to_string().contains("English-only"), "{err}");
}

/// The campaign's product names in the initial prompt pull decoding toward their spelling: Piper
/// says sentences with made-up product names; with the names in the prompt Whisper base spells
/// more of them right than without.
#[test]
fn initial_prompt_biases_toward_product_names() -> Result<()> {
    use std::ops::ControlFlow;
    use voice::tts::piper::PiperTts;
    use voice::{TextToSpeech, VoiceConfig};
    let config = VoiceConfig {
        models_dir: models_dir(),
        ..VoiceConfig::default()
    };
    let piper = PiperTts::load(&config)?.with_sampling_noise(0.0, 0.0);
    let asr = load("whisper-base");
    let products = ["Zentaro Plus", "Kwikline Max", "Veltora Gold", "Flexifone"];
    let prompt = format!("Campaign products: {}.", products.join(", "));
    let (mut right_without, mut right_with) = (0, 0);
    for product in products {
        let text = format!("I would like to hear about {product}, please.");
        let mut pcm = Vec::new();
        piper.synthesize(
            &text,
            Language::English,
            &tokio_util::sync::CancellationToken::new(),
            &mut |frame| {
                pcm.extend_from_slice(&frame.samples);
                ControlFlow::Continue(())
            },
        )?;
        let pcm = voice::audio::resample(&pcm, piper.sample_rate(), 16_000)?;
        let heard = |initial_prompt: Option<String>| -> Result<String> {
            let options = AsrOptions {
                language: Language::English,
                initial_prompt,
            };
            Ok(asr.transcribe(&pcm, &options)?.text)
        };
        let without = heard(None)?;
        let with = heard(Some(prompt.clone()))?;
        eprintln!("{product}: without prompt {without:?}, with prompt {with:?}");
        let has = |t: &str| {
            normalized_words(t)
                .join(" ")
                .contains(&product.to_lowercase())
        };
        right_without += usize::from(has(&without));
        right_with += usize::from(has(&with));
    }
    eprintln!(
        "product names right: {right_without}/{n} without the prompt, {right_with}/{n} with it",
        n = products.len()
    );
    assert!(
        right_with > right_without,
        "the prompt did not help: {right_with} names right with it, {right_without} without"
    );
    Ok(())
}

#[test]
fn initial_prompt_is_accepted() -> Result<()> {
    let asr = load("whisper-base");
    let (path, reference) = clips()?.into_iter().next().context("a clip")?;
    let audio = read_wav(&path)?;
    let options = AsrOptions {
        language: Language::English,
        initial_prompt: Some("Acme Mobile outbound call.".into()),
    };
    let t = asr.transcribe(&audio.samples, &options)?;
    eprintln!("with prompt: {:?}", t.text);
    assert!(
        wer(&reference, &t.text) <= MAX_CLIP_WER,
        "{:?} vs {reference:?}",
        t.text
    );
    Ok(())
}

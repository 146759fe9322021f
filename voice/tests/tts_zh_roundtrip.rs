//! The Mandarin neural voice, heard by Whisper: call-centre sentences go through
//! [`ZhFastSpeechTts`], are resampled to 16 kHz and transcribed by Whisper base with the
//! language forced to zh; the character error rate (after traditional → simplified) must stay
//! low. espeak-ng's `cmn` voice fails this badly (Whisper hallucinates on it), so it is a real
//! test of intelligibility. Needs the models from scripts/setup.sh.

use anyhow::{Context, Result};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use tokio_util::sync::CancellationToken;
use voice::asr::whisper::WhisperAsr;
use voice::config::ZhTtsEngine;
use voice::metrics::char_error_rate;
use voice::tts::zh_fastspeech::{load_mandarin, ZhFastSpeechTts};
use voice::{AsrOptions, Language, TextToSpeech, VoiceConfig};

/// Highest CER over all the sentences together (measured 0.103 on 2026-11-25; per sentence
/// 0–0.28, the errors nearly all homophones).
const MAX_TOTAL_CER: f64 = 0.15;
/// Highest CER of any one sentence.
const MAX_SENTENCE_CER: f64 = 0.4;
/// Highest toneless-syllable error rate over all the sentences: most character errors are
/// homophones Whisper picks without context (保单 → 宝丹), which this does not count (measured
/// 0.009).
const MAX_TOTAL_SYLLABLE_ER: f64 = 0.08;

const SENTENCES: &[&str] = &[
    "您好，我是平安保险的客服，请问您现在方便吗？",
    "您的保单将于下个月到期，我们想跟您确认一下续保的事情。",
    "如果您现在不方便，我可以明天下午再给您打电话。",
    "这个套餐每个月可以帮您节省不少话费。",
    "请问您是本人吗？我们需要核实一下您的身份信息。",
    "感谢您的耐心，祝您生活愉快，再见！",
];

fn models_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../models")
}

fn config() -> VoiceConfig {
    VoiceConfig {
        models_dir: models_dir(),
        ..VoiceConfig::default()
    }
}

fn voice() -> &'static ZhFastSpeechTts {
    static VOICE: OnceLock<ZhFastSpeechTts> = OnceLock::new();
    VOICE.get_or_init(|| {
        ZhFastSpeechTts::load(&config()).unwrap_or_else(|e| {
            panic!(
                "Mandarin voice not loaded from {}: {e}",
                models_dir().display()
            )
        })
    })
}

/// Toneless pinyin of the Hanzi in `text` (after traditional → simplified).
fn syllables(text: &str) -> Vec<String> {
    use pinyin::ToPinyin;
    voice::asr::to_simplified(text)
        .chars()
        .filter_map(|c| c.to_pinyin())
        .map(|p| {
            p.with_tone_num_end()
                .trim_end_matches(|c: char| c.is_ascii_digit())
                .to_owned()
        })
        .collect()
}

fn edit_distance(r: &[String], h: &[String]) -> usize {
    let mut prev: Vec<usize> = (0..=h.len()).collect();
    for (i, rw) in r.iter().enumerate() {
        let mut cur = vec![i + 1; h.len() + 1];
        for (j, hw) in h.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(rw != hw))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[h.len()]
}

fn speak(tts: &dyn TextToSpeech, text: &str) -> Result<Vec<i16>> {
    let mut pcm = Vec::new();
    tts.synthesize(
        text,
        Language::Chinese,
        &CancellationToken::new(),
        &mut |frame| {
            pcm.extend_from_slice(&frame.samples);
            ControlFlow::Continue(())
        },
    )?;
    Ok(pcm)
}

#[test]
fn whisper_understands_the_mandarin_voice() -> Result<()> {
    let tts = voice();
    let asr = WhisperAsr::load(&models_dir().join("whisper-base"), 2).context("Whisper base")?;
    let options = AsrOptions {
        language: Language::Chinese,
        initial_prompt: None,
    };
    let (mut errors, mut chars) = (0.0, 0.0);
    let (mut syllable_errors, mut syllable_count) = (0, 0);
    for text in SENTENCES {
        let pcm = speak(tts, text)?;
        let pcm = voice::audio::resample(&pcm, tts.sample_rate(), voice::SAMPLE_RATE)?;
        let heard = asr.transcribe(&pcm, &options)?.text;
        let cer = char_error_rate(text, &heard);
        let n = voice::metrics::normalized_chars(text).len() as f64;
        eprintln!("CER {cer:.3}  {text}  →  {heard}");
        assert!(
            cer <= MAX_SENTENCE_CER,
            "CER {cer:.3} for {text:?}: heard {heard:?}"
        );
        errors += cer * n;
        chars += n;
        let (said, understood) = (syllables(text), syllables(&heard));
        syllable_errors += edit_distance(&said, &understood);
        syllable_count += said.len();
    }
    let total = errors / chars;
    let syllable_er = syllable_errors as f64 / syllable_count as f64;
    eprintln!(
        "total CER {total:.3}, syllable error rate {syllable_er:.3} over {} sentences",
        SENTENCES.len()
    );
    assert!(total <= MAX_TOTAL_CER, "total CER {total:.3}");
    assert!(
        syllable_er <= MAX_TOTAL_SYLLABLE_ER,
        "syllable error rate {syllable_er:.3}"
    );
    Ok(())
}

#[test]
fn the_voice_is_deterministic() -> Result<()> {
    let text = "请问您现在方便吗？";
    assert_eq!(speak(voice(), text)?, speak(voice(), text)?);
    Ok(())
}

#[test]
fn numbers_and_letters_are_spoken_not_skipped() -> Result<()> {
    let bare = speak(voice(), "您的还款日是每月，金额是元。")?;
    let with_numbers = speak(voice(), "您的还款日是每月15日，金额是3200元。")?;
    // 十五日 and 三千二百 add at least seven syllables.
    let extra_s = (with_numbers.len() - bare.len().min(with_numbers.len())) as f64 / 24_000.0;
    assert!(extra_s > 1.0, "numbers added only {extra_s:.2} s");
    assert!(!speak(voice(), "VIP")?.is_empty());
    Ok(())
}

#[test]
fn english_is_refused_with_a_hint() {
    let err = voice()
        .synthesize(
            "Hello",
            Language::English,
            &CancellationToken::new(),
            &mut |_| ControlFlow::Continue(()),
        )
        .expect_err("Mandarin only");
    assert!(err.to_string().contains("Piper"), "{err}");
}

#[test]
fn auto_picks_the_neural_voice_when_its_files_are_there() -> Result<()> {
    let tts = load_mandarin(&config())?;
    assert_eq!(
        tts.sample_rate(),
        24_000,
        "the neural voice speaks at 24 kHz"
    );
    Ok(())
}

#[test]
fn auto_falls_back_to_espeak_without_the_files_and_explicit_choice_fails_clearly() -> Result<()> {
    let empty = tempfile::tempdir()?;
    let config = VoiceConfig {
        models_dir: empty.path().to_path_buf(),
        ..VoiceConfig::default()
    };
    let fallback = load_mandarin(&config)?;
    assert_ne!(
        fallback.sample_rate(),
        24_000,
        "espeak-ng, not the neural voice"
    );
    let explicit = VoiceConfig {
        tts_zh: ZhTtsEngine::Fastspeech2,
        ..config
    };
    let err = load_mandarin(&explicit)
        .err()
        .context("no voice files there")?;
    assert!(err.to_string().contains("scripts/setup.sh"), "{err}");
    Ok(())
}

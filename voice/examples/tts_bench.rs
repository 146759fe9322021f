//! TTS benchmark: time to the first audio frame and real-time factor (synthesis time / audio
//! duration) of Piper (English) and espeak-ng (Mandarin) on call-centre sentences.
//!
//! `cargo run -p voice --example tts_bench [-- MODELS_DIR]` (models from scripts/setup.sh).

#![allow(clippy::print_stdout)]

use anyhow::Context;
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::time::Instant;
use tokio_util::sync::CancellationToken;
use voice::tts::espeak::EspeakTts;
use voice::tts::piper::PiperTts;
use voice::{Language, TextToSpeech, VoiceConfig};

const ENGLISH: &[&str] = &[
    "Hello, this is Anna from Northwind Energy.",
    "I'm calling about the new tariff on your account. It could save you about twelve pounds a month.",
    "Is now a good time to talk?",
    "No problem, I can call you back tomorrow afternoon. Thank you for your time, and have a nice day!",
];

const MANDARIN: &[&str] = &[
    "您好，我是北风能源的客服小王。",
    "我们打电话是想告诉您一个新的优惠套餐，每个月可以帮您节省大约五十元。",
    "请问您现在方便说话吗？",
    "没问题，我明天下午再给您打电话。谢谢您，祝您生活愉快！",
];

fn main() -> anyhow::Result<()> {
    let models_dir = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models"));
    let config = VoiceConfig {
        models_dir,
        ..VoiceConfig::default()
    };

    let started = Instant::now();
    let piper = PiperTts::load(&config).context("loading Piper")?;
    println!(
        "piper: loaded in {:.0} ms",
        started.elapsed().as_secs_f64() * 1000.0
    );
    // The first inference also pays for onnxruntime's lazy set-up; report it, then measure.
    bench_one(&piper, "warm-up.", Language::English, "piper (warm-up)")?;
    bench(&piper, ENGLISH, Language::English, "piper en")?;

    let espeak = EspeakTts::load(&config).context("starting espeak-ng")?;
    bench(&espeak, MANDARIN, Language::Chinese, "espeak cmn")?;
    Ok(())
}

fn bench(
    engine: &dyn TextToSpeech,
    texts: &[&str],
    language: Language,
    name: &str,
) -> anyhow::Result<()> {
    let (mut first_ms, mut synth_s, mut audio_s) = (Vec::new(), 0.0, 0.0);
    for text in texts {
        let (first, synth, audio) = bench_one(engine, text, language, name)?;
        first_ms.push(first);
        synth_s += synth;
        audio_s += audio;
    }
    first_ms.sort_by(f64::total_cmp);
    println!(
        "{name}: first audio median {:.0} ms (max {:.0} ms), RTF {:.3} over {:.1} s of audio",
        first_ms[first_ms.len() / 2],
        first_ms[first_ms.len() - 1],
        synth_s / audio_s,
        audio_s
    );
    Ok(())
}

/// Returns (ms to first frame, synthesis seconds, audio seconds).
fn bench_one(
    engine: &dyn TextToSpeech,
    text: &str,
    language: Language,
    name: &str,
) -> anyhow::Result<(f64, f64, f64)> {
    let started = Instant::now();
    let mut first = None;
    let stats = engine.synthesize(text, language, &CancellationToken::new(), &mut |_| {
        first.get_or_insert_with(|| started.elapsed());
        ControlFlow::Continue(())
    })?;
    let synth = started.elapsed().as_secs_f64();
    let first_ms = first.map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0);
    let audio = stats.audio_ms / 1000.0;
    println!(
        "  {name}: first audio {first_ms:6.0} ms, synth {:6.0} ms, audio {:6.0} ms, RTF {:.3}  {text:?}",
        synth * 1000.0,
        audio * 1000.0,
        synth / audio
    );
    Ok((first_ms, synth, audio))
}

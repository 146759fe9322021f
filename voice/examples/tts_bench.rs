//! TTS benchmark: time to the first audio frame and real-time factor (synthesis time / audio
//! duration) of Piper (English) and espeak-ng (Mandarin) on call-centre sentences. Prints
//! `tts.first_audio_ms` (median over the sentences), `tts.rtf` and `tts.zh_espeak.rtf`.
//!
//! `cargo run -p voice --example tts_bench [-- MODELS_DIR]` (models from scripts/setup.sh).

#![allow(clippy::print_stdout)]

#[path = "support/tts_timing.rs"]
mod tts_timing;

use anyhow::Context;
use std::path::PathBuf;
use std::time::Instant;
use voice::tts::espeak::EspeakTts;
use voice::tts::piper::PiperTts;
use voice::{Language, VoiceConfig};

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
    let en = tts_timing::time_all(&piper, "warm-up.", ENGLISH, Language::English, "piper en")?;
    println!(
        "tts.first_audio_ms {:.0} (max {:.0}; Piper joe medium)",
        en.first_ms_median, en.first_ms_max
    );
    println!("tts.rtf {:.3} (over {:.1} s of audio)", en.rtf, en.audio_s);

    let espeak = EspeakTts::load(&config).context("starting espeak-ng")?;
    let zh = tts_timing::time_all(&espeak, "您好。", MANDARIN, Language::Chinese, "espeak cmn")?;
    println!(
        "tts.zh_espeak.rtf {:.3} (first audio median {:.0} ms, over {:.1} s of audio)",
        zh.rtf, zh.first_ms_median, zh.audio_s
    );
    Ok(())
}

//! Mandarin neural TTS benchmark: time to the first audio frame and real-time factor
//! (synthesis time / audio duration) of the FastSpeech2 + MB-MelGAN voice on call-centre
//! sentences, one call at a time, after a warm-up sentence. Prints `tts.zh.rtf` and
//! `tts.zh.first_audio_ms` (median).
//!
//! `cargo run -p voice --example zh_tts_bench [-- MODELS_DIR]` (models from scripts/setup.sh).

#![allow(clippy::print_stdout)]

#[path = "support/tts_timing.rs"]
mod tts_timing;

use anyhow::Context;
use std::path::PathBuf;
use std::time::Instant;
use voice::tts::zh_fastspeech::ZhFastSpeechTts;
use voice::{Language, VoiceConfig};

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
    let tts = ZhFastSpeechTts::load(&config).context("loading the Mandarin voice")?;
    println!(
        "tts.zh.load_ms {:.0}",
        started.elapsed().as_secs_f64() * 1000.0
    );
    let zh = tts_timing::time_all(
        &tts,
        "您好。",
        MANDARIN,
        Language::Chinese,
        "zh fastspeech2",
    )?;
    println!("tts.zh.rtf {:.3}", zh.rtf);
    println!(
        "tts.zh.first_audio_ms {:.0} (max {:.0}, over {:.1} s of audio)",
        zh.first_ms_median, zh.first_ms_max, zh.audio_s
    );
    Ok(())
}

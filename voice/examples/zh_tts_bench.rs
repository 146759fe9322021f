//! Mandarin neural TTS benchmark: time to the first audio frame and real-time factor
//! (synthesis time / audio duration) of the FastSpeech2 + MB-MelGAN voice on call-centre
//! sentences, one call at a time, after a warm-up sentence. Prints `tts.zh.rtf` and
//! `tts.zh.first_audio_ms` (median).
//!
//! `cargo run -p voice --example zh_tts_bench [-- MODELS_DIR]` (models from scripts/setup.sh).

#![allow(clippy::print_stdout)]

use anyhow::Context;
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::time::Instant;
use tokio_util::sync::CancellationToken;
use voice::tts::zh_fastspeech::ZhFastSpeechTts;
use voice::{Language, TextToSpeech, VoiceConfig};

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
    run(&tts, "您好。")?;
    let (mut first_ms, mut synth_s, mut audio_s) = (Vec::new(), 0.0, 0.0);
    for text in MANDARIN {
        let (first, synth, audio) = run(&tts, text)?;
        println!(
            "  first audio {first:6.0} ms, synth {:6.0} ms, audio {:6.0} ms, RTF {:.3}  {text}",
            synth * 1000.0,
            audio * 1000.0,
            synth / audio
        );
        first_ms.push(first);
        synth_s += synth;
        audio_s += audio;
    }
    first_ms.sort_by(f64::total_cmp);
    println!("tts.zh.rtf {:.3}", synth_s / audio_s);
    println!(
        "tts.zh.first_audio_ms {:.0} (max {:.0}, over {:.1} s of audio)",
        first_ms[first_ms.len() / 2],
        first_ms[first_ms.len() - 1],
        audio_s
    );
    Ok(())
}

/// Returns (ms to the first frame, synthesis seconds, audio seconds).
fn run(tts: &ZhFastSpeechTts, text: &str) -> anyhow::Result<(f64, f64, f64)> {
    let started = Instant::now();
    let mut first = None;
    let stats = tts.synthesize(
        text,
        Language::Chinese,
        &CancellationToken::new(),
        &mut |_| {
            first.get_or_insert_with(|| started.elapsed());
            ControlFlow::Continue(())
        },
    )?;
    let synth = started.elapsed().as_secs_f64();
    let first_ms = first.map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0);
    Ok((first_ms, synth, stats.audio_ms / 1000.0))
}

//! Benchmark of the Silero VAD: microseconds per 20 ms frame over a speech WAV, pushed frame by
//! frame as a call would. `cargo run -p voice --example vad_bench [-- file.wav [repeats]]`.

use anyhow::{ensure, Context, Result};
use std::path::{Path, PathBuf};
use std::time::Instant;
use voice::audio::{read_wav, FRAME_SAMPLES};
use voice::vad::silero::SileroVad;
use voice::{VadEvent, VoiceActivity, VoiceConfig, SAMPLE_RATE};

#[allow(clippy::print_stdout)]
fn main() -> Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut args = std::env::args().skip(1);
    let wav = args
        .next()
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("tests/data/vad/three_utterances.wav"));
    let repeats: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(20);

    let audio = read_wav(&wav).with_context(|| format!("reading {}", wav.display()))?;
    ensure!(
        audio.sample_rate == SAMPLE_RATE,
        "{}: need 16 kHz audio",
        wav.display()
    );
    ensure!(
        !audio.samples.is_empty() && repeats > 0,
        "nothing to measure"
    );
    let config = VoiceConfig {
        models_dir: root.join("../models"),
        ..Default::default()
    };

    let mut frames = 0usize;
    let mut utterances = 0usize;
    let mut per_frame_us: Vec<f64> = Vec::new();
    let started = Instant::now();
    let mut first_run = Vec::new();
    for run in 0..repeats {
        let mut vad = SileroVad::new(&config)?;
        for frame in audio.samples.chunks(FRAME_SAMPLES) {
            let t = Instant::now();
            let events = vad.push(frame)?;
            per_frame_us.push(t.elapsed().as_secs_f64() * 1e6);
            utterances += count_ends(&events);
            frames += 1;
            if run == 0 {
                first_run.extend(events);
            }
        }
        let events = vad.flush()?;
        utterances += count_ends(&events);
        if run == 0 {
            first_run.extend(events);
        }
    }
    let total = started.elapsed();
    per_frame_us.sort_by(f64::total_cmp);
    let pct = |p: f64| per_frame_us[((per_frame_us.len() - 1) as f64 * p) as usize];
    let mean = per_frame_us.iter().sum::<f64>() / per_frame_us.len() as f64;
    let audio_s = frames as f64 * f64::from(voice::FRAME_MS) / 1000.0;
    println!(
        "file: {} ({repeats} runs, {frames} frames of 20 ms)",
        wav.display()
    );
    println!(
        "us/frame: mean {mean:.1}  p50 {:.1}  p99 {:.1}  max {:.1}",
        pct(0.5),
        pct(0.99),
        pct(1.0)
    );
    println!(
        "real-time factor {:.4} (model load included), {} utterances",
        total.as_secs_f64() / audio_s,
        utterances
    );
    for event in &first_run {
        match event {
            VadEvent::SpeechStarted { at_ms } => println!("  speech started at {at_ms} ms"),
            VadEvent::SpeechPaused { at_ms } => println!("  paused at {at_ms} ms"),
            VadEvent::SpeechEnded {
                start_ms,
                end_ms,
                samples,
            } => {
                println!(
                    "  speech {start_ms}..{end_ms} ms ({} samples)",
                    samples.len()
                )
            }
        }
    }
    Ok(())
}

fn count_ends(events: &[VadEvent]) -> usize {
    events
        .iter()
        .filter(|e| matches!(e, VadEvent::SpeechEnded { .. }))
        .count()
}

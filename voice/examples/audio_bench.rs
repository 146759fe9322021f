//! Benchmark of the telephony audio plumbing: microseconds per 20 ms frame for μ-law encode +
//! decode and for streaming 8 kHz → 16 kHz resampling, over a speech WAV sent as a phone line
//! would. `cargo run -p voice --example audio_bench [-- file.wav [repeats]]`.

use anyhow::{ensure, Context, Result};
use std::path::{Path, PathBuf};
use std::time::Instant;
use voice::audio::g711::G711Law;
use voice::audio::{read_wav, resample, StreamResampler, FRAME_MS, TELEPHONE_RATE};

/// Mean, median and 99th percentile of per-frame times, in µs.
fn summary(mut per_frame_us: Vec<f64>) -> String {
    let mean = per_frame_us.iter().sum::<f64>() / per_frame_us.len().max(1) as f64;
    per_frame_us.sort_by(f64::total_cmp);
    let at = |q: usize| {
        per_frame_us
            .get(per_frame_us.len() * q / 100)
            .copied()
            .unwrap_or(0.0)
    };
    format!(
        "mean {mean:.3} µs/frame, p50 {:.3}, p99 {:.3}",
        at(50),
        at(99)
    )
}

#[allow(clippy::print_stdout)]
fn main() -> Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut args = std::env::args().skip(1);
    let wav = args
        .next()
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("tests/data/asr_en_01.wav"));
    let repeats: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(50);

    let audio = read_wav(&wav).with_context(|| format!("reading {}", wav.display()))?;
    ensure!(
        !audio.samples.is_empty() && repeats > 0,
        "nothing to measure"
    );
    // What arrives from the line: 8 kHz, in 20 ms frames of 160 samples.
    let line = resample(&audio.samples, audio.sample_rate, TELEPHONE_RATE)?;
    let frame_len = (TELEPHONE_RATE * FRAME_MS / 1000) as usize;
    let frames = line.len() / frame_len * repeats;

    // μ-law encode + decode, buffers reused as a call would.
    let mut codes = Vec::with_capacity(frame_len);
    let mut decoded = Vec::with_capacity(frame_len);
    let mut g711_us = Vec::with_capacity(frames);
    let mut checksum = 0i64;
    for _ in 0..repeats {
        for frame in line.chunks_exact(frame_len) {
            let t = Instant::now();
            codes.clear();
            decoded.clear();
            G711Law::MuLaw.encode_into(frame, &mut codes);
            G711Law::MuLaw.decode_into(&codes, &mut decoded);
            g711_us.push(t.elapsed().as_secs_f64() * 1e6);
            checksum += i64::from(decoded[frame_len / 2]);
        }
    }

    // Streaming 8 kHz → 16 kHz, output buffer reused.
    let mut stream = StreamResampler::new(TELEPHONE_RATE, 16_000)?;
    let mut out = Vec::with_capacity(4 * frame_len);
    let mut resample_us = Vec::with_capacity(frames);
    let mut produced = 0usize;
    for _ in 0..repeats {
        for frame in line.chunks_exact(frame_len) {
            let t = Instant::now();
            out.clear();
            stream.process(frame, &mut out)?;
            resample_us.push(t.elapsed().as_secs_f64() * 1e6);
            produced += out.len();
        }
        out.clear();
        stream.finish(&mut out)?;
    }

    println!(
        "{}: {} frames of {FRAME_MS} ms at {TELEPHONE_RATE} Hz ({repeats} repeats)",
        wav.display(),
        frames
    );
    println!("μ-law encode+decode:     {}", summary(g711_us));
    println!(
        "stream resample 8k→16k:  {} (latency {:.1} ms, {produced} samples out)",
        summary(resample_us),
        stream.latency_ms()
    );
    println!("(checksum {checksum})");
    Ok(())
}

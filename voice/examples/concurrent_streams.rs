//! How many calls one machine listens to at once (`voice.concurrent_streams`): N streams, each a
//! thread fed 20 ms frames at real-time pace (a call's audio comes no faster), each running a
//! `Listener` — its own Silero VAD and a Whisper base stream with partials — on one shared model.
//! The audio is the corpus's phone clips (8 kHz μ-law) with pauses between them, staggered
//! between streams.
//!
//! Per N it prints: endpoint → final latency (from the arrival of the frame on which the VAD
//! closed the utterance to the final text; p50, p90, max), how far behind real time frames were
//! taken (p90 and max over all frames: decodes run on the model's workers, but a stream waits
//! for its final, and frames arriving meanwhile are caught up after), and partials per utterance
//! (a busy model skips partials, never audio). N streams are sustained when the lag p90 stays
//! within [`MAX_LAG_P90_MS`] (the backlog does not grow) and the final latency p90 within
//! [`MAX_FINAL_P90_MS`]; the largest such N is printed as the figure.
//!
//! `cargo run -p voice --example concurrent_streams [-- MAX_N [SECONDS [PARTIAL_MS [WORKERS]]]]`
//! (defaults 8, 20, and the configured `asr_partial_interval_ms` and `asr_workers`; a
//! PARTIAL_MS longer than any utterance turns partials off); needs scripts/setup.sh's models.

use anyhow::{Context, Result};
use std::path::Path;
use std::time::{Duration, Instant};
use voice::asr::whisper::WhisperAsr;
use voice::audio::{read_wav, resample, FRAME_SAMPLES};
use voice::vad::silero::SileroVad;
use voice::{AsrOptions, Listener, SpeechEvent, SpeechToText, VoiceConfig, SAMPLE_RATE};

/// Largest p90 of the per-frame lag behind real time of sustained streams.
const MAX_LAG_P90_MS: f64 = 500.0;
/// Largest p90 of endpoint → final latency for sustained streams.
const MAX_FINAL_P90_MS: f64 = 1000.0;
/// Pause between the caller's utterances.
const PAUSE_MS: usize = 1500;

fn arg<T: std::str::FromStr>(i: usize, default: T) -> Result<T> {
    match std::env::args().nth(i) {
        Some(s) => s
            .parse()
            .ok()
            .with_context(|| format!("argument {i} ({s:?}) is not a number")),
        None => Ok(default),
    }
}

/// What one stream saw.
#[derive(Debug, Default)]
struct StreamReport {
    finals_ms: Vec<f64>,
    /// Lag behind real time of every frame.
    lags_ms: Vec<f64>,
    partials: usize,
    utterances: usize,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() -> Result<()> {
    let max_n: usize = arg(1, 8)?;
    let seconds: usize = arg(2, 20)?;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let defaults = VoiceConfig::default();
    let config = VoiceConfig {
        models_dir: root.join("../models"),
        asr_partial_interval_ms: arg(3, defaults.asr_partial_interval_ms)?,
        asr_workers: arg(4, defaults.asr_workers)?,
        ..defaults
    };
    let asr = WhisperAsr::from_config(&config, config.asr_model_en)
        .context("loading Whisper (run scripts/setup.sh)")?;
    eprintln!(
        "Whisper base, {} workers on {} threads, partials every {} ms, VAD hang-over {} ms",
        config.asr_workers,
        config.asr_threads,
        config.asr_partial_interval_ms,
        config.vad_hangover_ms
    );

    let corpus = root.join("tests/data/corpus");
    let mut utterances = Vec::new();
    let mut names: Vec<_> = std::fs::read_dir(&corpus)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("en") && n.ends_with("_phone.wav"))
        })
        .collect();
    names.sort();
    for path in &names {
        let wav = read_wav(path)?;
        utterances.push(resample(&wav.samples, wav.sample_rate, SAMPLE_RATE)?);
    }
    anyhow::ensure!(
        !utterances.is_empty(),
        "no phone clips in {} (cargo run -p voice --example make_corpus)",
        corpus.display()
    );
    // Stream i: utterances from clip 3i on, with pauses, `seconds` long, started i × 250 ms late.
    let call = |i: usize| -> Vec<i16> {
        let total = seconds * SAMPLE_RATE as usize;
        let mut pcm = vec![0i16; i * 250 * SAMPLE_RATE as usize / 1000];
        let mut k = 3 * i;
        while pcm.len() < total {
            pcm.extend_from_slice(&utterances[k % utterances.len()]);
            pcm.extend(std::iter::repeat_n(
                0,
                PAUSE_MS * SAMPLE_RATE as usize / 1000,
            ));
            k += 1;
        }
        pcm
    };

    let mut sustained = 0;
    let mut n = 1;
    while n <= max_n {
        let reports = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..n)
                .map(|i| {
                    let (asr, config, pcm) = (&asr, &config, call(i));
                    scope.spawn(move || run_stream(asr, config, &pcm))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(anyhow::anyhow!("stream thread panicked")))
                })
                .collect::<Result<Vec<_>>>()
        })?;
        let mut finals: Vec<f64> = reports.iter().flat_map(|r| r.finals_ms.clone()).collect();
        finals.sort_by(f64::total_cmp);
        let mut lags: Vec<f64> = reports.iter().flat_map(|r| r.lags_ms.clone()).collect();
        lags.sort_by(f64::total_cmp);
        let lag = percentile(&lags, 0.9);
        let utterances: usize = reports.iter().map(|r| r.utterances).sum();
        let partials: usize = reports.iter().map(|r| r.partials).sum();
        let p90 = percentile(&finals, 0.9);
        let ok = lag <= MAX_LAG_P90_MS && p90 <= MAX_FINAL_P90_MS;
        eprintln!(
            "{n:2} streams: final p50 {:5.0} ms, p90 {p90:5.0} ms, max {:5.0} ms; lag p90 {lag:5.0} ms, max {:5.0} ms; {utterances} utterances, {:.1} partials each; {}",
            percentile(&finals, 0.5),
            percentile(&finals, 1.0),
            percentile(&lags, 1.0),
            partials as f64 / utterances.max(1) as f64,
            if ok { "sustained" } else { "NOT sustained" }
        );
        if !ok {
            break;
        }
        sustained = n;
        n = if n < 4 { n + 1 } else { n + 2 };
    }
    eprintln!(
        "figure voice.concurrent_streams {sustained} (Whisper base + Silero, {} ASR workers, {seconds} s per stream, partials every {} ms, lag p90 ≤ {MAX_LAG_P90_MS} ms, final p90 ≤ {MAX_FINAL_P90_MS} ms{})",
        config.asr_workers,
        config.asr_partial_interval_ms,
        if sustained == max_n { ", the most tried" } else { "" }
    );
    Ok(())
}

/// Feeds `pcm` to a fresh listener at real-time pace.
fn run_stream(asr: &WhisperAsr, config: &VoiceConfig, pcm: &[i16]) -> Result<StreamReport> {
    let mut listener = Listener::new(
        Box::new(SileroVad::new(config)?),
        asr.start(&AsrOptions::default())?,
    );
    let mut report = StreamReport::default();
    let started = Instant::now();
    let frame_duration = Duration::from_millis(u64::from(voice::FRAME_MS));
    for (i, frame) in pcm.chunks(FRAME_SAMPLES).enumerate() {
        // The frame has fully arrived at the end of its 20 ms.
        let arrives = started + frame_duration * (i as u32 + 1);
        let now = Instant::now();
        if now < arrives {
            std::thread::sleep(arrives - now);
        }
        report
            .lags_ms
            .push(now.saturating_duration_since(arrives).as_secs_f64() * 1000.0);
        for event in listener.push(frame)? {
            match event {
                SpeechEvent::Partial { .. } => report.partials += 1,
                SpeechEvent::Final { .. } => {
                    report.utterances += 1;
                    report
                        .finals_ms
                        .push(arrives.elapsed().as_secs_f64() * 1000.0);
                }
                SpeechEvent::Started { .. } | SpeechEvent::Speculative { .. } => {}
            }
        }
    }
    Ok(report)
}

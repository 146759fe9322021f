//! Whisper base and tiny.en on the ASR test clips, after one warm-up decode per model:
//! - each with the decoder's per-token matrices in f32 and in 8-bit blocks (`DecoderWeights`);
//! - one-shot decode: mel, encoder and decoder ms, tokens and decoder passes, RTF — for the
//!   cached decoder and, in the same run, candle's uncached f32 decoder (the baseline; a text that
//!   differs from it is printed);
//! - streaming: 20 ms frames pushed at the pace of a phone line, partials every `PARTIAL_MS`,
//!   and the time a bare `finish` takes after the last frame;
//! - endpointed, as on a call: the clip and 1 s of faint line noise through the [`Listener`]
//!   (Silero VAD with the default 300 ms hang-over + the Whisper stream) at the pace of a phone
//!   line; the endpoint → final latency is the time of the push in which the VAD ends the
//!   utterance and the final text comes out (`asr.*.final_latency_ms_p50`).
//!
//! Run with `cargo run -p voice --example asr_bench [-- THREADS [PARTIAL_MS [CLIP.wav...]]]`
//! (`ASR_BENCH_ONLY="whisper-base Q8"` runs only the checkpoint and weights named)
//! (default clips: `tests/data/asr_*.wav`; others are resampled to 16 kHz); needs
//! scripts/setup.sh's models. scripts/asr_reference.sh runs faster-whisper on the same clips
//! first, for comparison.

use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::time::Instant;
use voice::asr::whisper::{DecodeStats, DecoderWeights, WhisperAsr};
use voice::audio::{read_wav, resample};
use voice::vad::silero::SileroVad;
use voice::{AsrOptions, AsrStream, Language, Listener, SpeechEvent, VoiceConfig};

fn arg<T: std::str::FromStr>(i: usize, default: T) -> Result<T> {
    match std::env::args().nth(i) {
        Some(s) => s
            .parse()
            .ok()
            .with_context(|| format!("argument {i} ({s:?}) is not a number")),
        None => Ok(default),
    }
}

fn stats_line(s: &DecodeStats) -> String {
    format!(
        "queued {:4.1} ms, mel {:5.1} ms, encoder {:6.1} ms ({} frames), decoder {:6.1} ms ({} tokens, {} passes, {} from draft)",
        s.queued_ms, s.mel_ms, s.encoder_ms, s.frames, s.decoder_ms, s.tokens, s.decoder_passes, s.draft_accepted
    )
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() -> Result<()> {
    let threads: usize = arg(1, 2)?;
    let partial_ms: u32 = arg(2, 500)?;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut paths: Vec<PathBuf> = std::env::args().skip(3).map(PathBuf::from).collect();
    if paths.is_empty() {
        for entry in std::fs::read_dir(root.join("tests/data"))? {
            let path = entry?.path();
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            if name.starts_with("asr_") && name.ends_with(".wav") {
                paths.push(path);
            }
        }
        paths.sort();
    }
    let mut clips = Vec::new();
    for path in &paths {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        let wav = read_wav(path).with_context(|| format!("{}", path.display()))?;
        clips.push((name, resample(&wav.samples, wav.sample_rate, 16_000)?));
    }
    let options = AsrOptions {
        language: Language::English,
        initial_prompt: None,
    };
    // Each checkpoint with f32 and 8-bit decoder matrices, back to back in one run.
    let runs = ["whisper-base", "whisper-tiny.en"]
        .into_iter()
        .flat_map(|m| [(m, DecoderWeights::F32), (m, DecoderWeights::Q8)]);
    // `ASR_BENCH_ONLY="whisper-base Q8"` keeps the runs whose label contains it.
    let only = std::env::var("ASR_BENCH_ONLY").unwrap_or_default();
    for (checkpoint, weights) in runs {
        let model = format!("{checkpoint} {weights:?}");
        if !model.contains(only.as_str()) {
            continue;
        }
        let dir = root.join("../models").join(checkpoint);
        let started = Instant::now();
        let asr = WhisperAsr::load_with(&dir, threads, 1, weights)
            .with_context(|| format!("loading {} (run scripts/setup.sh)", dir.display()))?
            .with_partial_interval_ms(partial_ms);
        eprintln!(
            "{model}: loaded in {:.2} s, {threads} threads, partials every {partial_ms} ms",
            started.elapsed().as_secs_f64()
        );
        if let Some((_, pcm)) = clips.first() {
            asr.transcribe(pcm, &options)?; // warm-up
        }
        let (mut total_audio, mut total_new, mut total_ref) = (0.0, 0.0, 0.0);
        let (mut finals_ms, mut oneshot_ms, mut endpoint_ms) = (Vec::new(), Vec::new(), Vec::new());
        for (name, pcm) in &clips {
            let audio_s = pcm.len() as f64 / 16_000.0;

            let started = Instant::now();
            let (reference, ref_stats) = asr.transcribe_reference(pcm, &options)?;
            let ref_s = started.elapsed().as_secs_f64();
            let started = Instant::now();
            let (t, stats) = asr.transcribe_with_stats(pcm, &options)?;
            let new_s = started.elapsed().as_secs_f64();
            total_audio += audio_s;
            total_new += new_s;
            total_ref += ref_s;
            oneshot_ms.push(new_s * 1000.0);
            eprintln!(
                "{model} {name}: audio {audio_s:.2} s, no_speech {:.3}, avg_logprob {:.2}: {}",
                t.no_speech_prob, t.avg_logprob, t.text
            );
            eprintln!(
                "  uncached: {:7.1} ms, RTF {:.3}: {}",
                ref_s * 1000.0,
                ref_s / audio_s,
                stats_line(&ref_stats)
            );
            eprintln!(
                "  cached:   {:7.1} ms, RTF {:.3}: {}",
                new_s * 1000.0,
                new_s / audio_s,
                stats_line(&stats)
            );
            if reference.text != t.text {
                eprintln!("  TEXT DIFFERS, uncached: {}", reference.text);
            }

            // Streaming, as on a call: 20 ms frames at real-time pace (partials are decoded on
            // the workers and come back on a later push).
            let mut stream = asr.stream(&options)?;
            let (mut partials, mut push_ms) = (Vec::new(), Vec::new());
            for (frame, took) in paced(pcm, |frame| stream.push(frame)) {
                let partial = frame?;
                push_ms.push(took);
                if let Some(p) = partial {
                    partials.push(p.text);
                }
            }
            let started = Instant::now();
            let fin = stream.finish()?;
            let final_ms = started.elapsed().as_secs_f64() * 1000.0;
            finals_ms.push(final_ms);
            let worst_partial = push_ms.iter().copied().fold(0.0, f64::max);
            eprintln!(
                "  stream:   final {final_ms:7.1} ms ({}), {} partials (slowest push {worst_partial:.1} ms): {partials:?}",
                stats_line(&stream.last_stats()),
                partials.len(),
            );
            if fin.text != t.text {
                eprintln!("  STREAM FINAL DIFFERS: {}", fin.text);
            }

            let (latency, text) = endpointed(&asr, &options, pcm)?;
            eprintln!("  endpointed: final {latency:7.1} ms after the VAD's end: {text}");
            endpoint_ms.push(latency);
        }
        endpoint_ms.sort_by(f64::total_cmp);
        finals_ms.sort_by(f64::total_cmp);
        oneshot_ms.sort_by(f64::total_cmp);
        eprintln!(
            "{model}: {} clips, audio {total_audio:.2} s; uncached {total_ref:.3} s, RTF {:.3}; cached {total_new:.3} s, RTF {:.3}; one-shot p50 {:.0} ms, max {:.0} ms; bare finish p50 {:.0} ms, max {:.0} ms; endpoint to final p50 {:.0} ms, max {:.0} ms",
            clips.len(),
            total_ref / total_audio,
            total_new / total_audio,
            percentile(&oneshot_ms, 0.5),
            percentile(&oneshot_ms, 1.0),
            percentile(&finals_ms, 0.5),
            percentile(&finals_ms, 1.0),
            percentile(&endpoint_ms, 0.5),
            percentile(&endpoint_ms, 1.0),
        );
    }
    Ok(())
}

/// The clip and 1 s of faint noise through Silero + the Whisper stream at real-time pace:
/// the duration of the push that ended the utterance (VAD end + final text), and the text.
fn endpointed(asr: &WhisperAsr, options: &AsrOptions, pcm: &[i16]) -> Result<(f64, String)> {
    let config = VoiceConfig {
        models_dir: Path::new(env!("CARGO_MANIFEST_DIR")).join("../models"),
        ..VoiceConfig::default()
    };
    let mut listener = Listener::new(
        Box::new(SileroVad::new(&config)?),
        Box::new(asr.stream(options)?),
    );
    // A line is never digitally silent: ±20 LSB of deterministic noise after the clip.
    let mut seed = 0x2545_f491_u32;
    let tail = (0..16_000).map(|_| {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        (seed % 41) as i16 - 20
    });
    let audio: Vec<i16> = pcm.iter().copied().chain(tail).collect();
    let (mut latency, mut text) = (None, String::new());
    for (events, took) in paced(&audio, |frame| listener.push(frame)) {
        for event in events? {
            if let SpeechEvent::Final { transcript, .. } = event {
                // The last utterance's end is the end of the clip's speech.
                latency = Some(took);
                text.push_str(&transcript.text);
                text.push(' ');
            }
        }
    }
    for event in listener.flush()? {
        if let SpeechEvent::Final { transcript, .. } = event {
            anyhow::bail!(
                "the VAD did not end the utterance before the flush: {}",
                transcript.text
            );
        }
    }
    let latency = latency.context("the VAD found no utterance")?;
    Ok((latency, text.trim().to_string()))
}

/// Feeds `pcm` to `push` in 20 ms frames at the pace of a phone line; each result with the
/// milliseconds its push took.
fn paced<'a, T>(
    pcm: &'a [i16],
    mut push: impl FnMut(&[i16]) -> T + 'a,
) -> impl Iterator<Item = (T, f64)> + 'a {
    let call_started = Instant::now();
    pcm.chunks(320).enumerate().map(move |(i, frame)| {
        let due = call_started + std::time::Duration::from_millis(20 * i as u64);
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
        let started = Instant::now();
        let out = push(frame);
        (out, started.elapsed().as_secs_f64() * 1000.0)
    })
}

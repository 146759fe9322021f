//! Real-time factor of Whisper base and tiny.en on the ASR test clips: for each clip, decode
//! time / audio duration (after one warm-up decode). Run with
//! `cargo run -p voice --example asr_bench [-- THREADS]`; needs scripts/setup.sh's models.

use anyhow::{Context, Result};
use std::path::Path;
use std::time::Instant;
use voice::asr::whisper::WhisperAsr;
use voice::audio::read_wav;
use voice::{AsrOptions, Language};

fn main() -> Result<()> {
    let threads: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()
        .context("THREADS must be a number")?
        .unwrap_or(2);
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut clips = Vec::new();
    for entry in std::fs::read_dir(root.join("tests/data"))? {
        let path = entry?.path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        if name.starts_with("asr_") && name.ends_with(".wav") {
            clips.push((name, read_wav(&path)?.samples));
        }
    }
    clips.sort();
    let options = AsrOptions {
        language: Language::English,
        initial_prompt: None,
    };
    for model in ["whisper-base", "whisper-tiny.en"] {
        let dir = root.join("../models").join(model);
        let started = Instant::now();
        let asr = WhisperAsr::load(&dir, threads)
            .with_context(|| format!("loading {} (run scripts/setup.sh)", dir.display()))?;
        eprintln!(
            "{model}: loaded in {:.2} s, {threads} threads",
            started.elapsed().as_secs_f64()
        );
        if let Some((_, pcm)) = clips.first() {
            asr.transcribe(pcm, &options)?; // warm-up
        }
        let (mut total_audio, mut total_decode) = (0.0, 0.0);
        for (name, pcm) in &clips {
            let audio_s = pcm.len() as f64 / 16_000.0;
            let started = Instant::now();
            let t = asr.transcribe(pcm, &options)?;
            let decode_s = started.elapsed().as_secs_f64();
            total_audio += audio_s;
            total_decode += decode_s;
            eprintln!(
                "{model} {name}: audio {audio_s:.2} s, decode {decode_s:.3} s, RTF {:.3}: {}",
                decode_s / audio_s,
                t.text
            );
        }
        eprintln!(
            "{model}: total audio {total_audio:.2} s, decode {total_decode:.3} s, RTF {:.3}",
            total_decode / total_audio
        );
    }
    Ok(())
}

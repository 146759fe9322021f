//! The timing loop the TTS benchmarks share: time to the first 20 ms frame and real-time factor
//! (synthesis time / audio duration) of one engine over a list of sentences.

use std::ops::ControlFlow;
use std::time::Instant;
use tokio_util::sync::CancellationToken;
use voice::{Language, TextToSpeech};

/// One synthesis: ms to the first frame, synthesis seconds, audio seconds.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub first_ms: f64,
    pub synth_s: f64,
    pub audio_s: f64,
}

/// Over several texts: median and largest ms to the first frame, RTF, audio seconds.
#[derive(Debug, Clone, Copy)]
pub struct Summary {
    pub first_ms_median: f64,
    pub first_ms_max: f64,
    pub rtf: f64,
    pub audio_s: f64,
}

/// Synthesizes `text` once and prints one line for it, prefixed by `name`.
pub fn time_one(
    engine: &dyn TextToSpeech,
    text: &str,
    language: Language,
    name: &str,
) -> anyhow::Result<Timing> {
    let started = Instant::now();
    let mut first = None;
    let stats = engine.synthesize(text, language, &CancellationToken::new(), &mut |_| {
        first.get_or_insert_with(|| started.elapsed());
        ControlFlow::Continue(())
    })?;
    let t = Timing {
        first_ms: first.map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0),
        synth_s: started.elapsed().as_secs_f64(),
        audio_s: stats.audio_ms / 1000.0,
    };
    eprintln!(
        "  {name}: first audio {:6.0} ms, synth {:6.0} ms, audio {:6.0} ms, RTF {:.3}  {text:?}",
        t.first_ms,
        t.synth_s * 1000.0,
        t.audio_s * 1000.0,
        t.synth_s / t.audio_s
    );
    Ok(t)
}

/// Times every text after one warm-up synthesis (onnxruntime sets up lazily on the first run).
pub fn time_all(
    engine: &dyn TextToSpeech,
    warm_up: &str,
    texts: &[&str],
    language: Language,
    name: &str,
) -> anyhow::Result<Summary> {
    time_one(engine, warm_up, language, &format!("{name} (warm-up)"))?;
    let timings = texts
        .iter()
        .map(|text| time_one(engine, text, language, name))
        .collect::<anyhow::Result<Vec<_>>>()?;
    anyhow::ensure!(!timings.is_empty(), "no texts to time");
    let mut first: Vec<f64> = timings.iter().map(|t| t.first_ms).collect();
    first.sort_by(f64::total_cmp);
    let synth: f64 = timings.iter().map(|t| t.synth_s).sum();
    let audio: f64 = timings.iter().map(|t| t.audio_s).sum();
    Ok(Summary {
        first_ms_median: first[first.len() / 2],
        first_ms_max: first[first.len() - 1],
        rtf: synth / audio,
        audio_s: audio,
    })
}

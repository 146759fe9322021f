//! Call benchmarks, printed as `key=value` lines for BENCHMARKS.md.
//!
//! `call_bench real [--calls-x1 N] [--calls-x4 N]`: the demo campaign on the real engines, once
//! on 1 line and once on 4 lines (simulated callees over the gRPC `Call` stream, line clock at
//! real time): voice-to-voice latency in line time (end of the callee's speech to the bot's
//! first frame on the wire, the VAD's hang-over included), barge-in stop times, calls per hour.
//!
//! `call_bench scripted [--lines N] [--calls N]`: the real engines answering a scripted caller
//! whose lines were rendered beforehand (espeak-ng en-us, unlike the bot's Piper voice): the
//! far end only plays its clips at real-time pace and waits for the bot to be quiet, so the
//! machine's 2 cores go to the bot alone, as on a real line (the simulated callees of `real`
//! run their own ASR and TTS on the same cores). N calls, `--lines` at once; v2v as the
//! session measures it (line time from the end of the caller's speech to the bot's first
//! frame on the wire), with where the time went.
//!
//! `call_bench fake [--calls N]`: fake engines, the real session code: N concurrent calls over
//! in-process lines that send a frame a second (memory per call), then one call fed 3,000
//! frames as fast as it takes them (CPU per frame).
#![allow(clippy::print_stdout)] // A bench binary prints its numbers.

use anyhow::Context;
use orchestrator::app::App;
use orchestrator::demo::{self, percentile, DemoOptions, DemoReport};
use orchestrator::metrics::Metrics;
use orchestrator::session::{CallEvent, CallSession, CallSetup};
use orchestrator::transport::{ChannelTransport, LineFormat, LineInput};
use orchestrator::{Config, Engines};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn arg(args: &[String], name: &str, default: usize) -> usize {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn config_in(dir: &std::path::Path) -> Config {
    Config::default().with_data_in(dir)
}

async fn campaign(lines: usize, calls: usize) -> anyhow::Result<DemoReport> {
    let tmp = tempfile::tempdir()?;
    let options = DemoOptions {
        customers: 300,
        calls,
        lines,
        seed: 21,
        out_dir: tmp.path().join("out"),
        progress: false,
        ..DemoOptions::default()
    };
    demo::run(&config_in(tmp.path()), options).await
}

async fn real(args: &[String]) -> anyhow::Result<()> {
    let x1 = campaign(1, arg(args, "--calls-x1", 6)).await?;
    let line1 = x1.v2v_line();
    println!(
        "call.v2v_ms_p50_x1={:.0} call.v2v_ms_p95_x1={:.0} turns={} calls={}",
        percentile(&line1, 50.0),
        percentile(&line1, 95.0),
        line1.len(),
        x1.calls.len()
    );
    let x4 = campaign(4, arg(args, "--calls-x4", 12)).await?;
    let line4 = x4.v2v_line();
    println!(
        "call.v2v_ms_p50_x4={:.0} call.v2v_ms_p95_x4={:.0} turns={} calls={}",
        percentile(&line4, 50.0),
        percentile(&line4, 95.0),
        line4.len(),
        x4.calls.len()
    );
    let mut stops: Vec<f64> = Vec::new();
    for r in [&x1, &x4] {
        stops.extend(r.barge_in_stop_ms.iter().copied());
    }
    println!(
        "call.bargein_stop_ms_p95={:.0} barge_ins={} (bot audio sent after the caller's speech was detected)",
        percentile(&stops, 95.0),
        stops.len()
    );
    let answered = x4.calls.len();
    println!(
        "campaign.calls_per_hour_2core={:.0} (4 lines: {answered} calls in {:.0} s of dialing)",
        answered as f64 * 3600.0 / x4.campaign_s.max(1.0),
        x4.campaign_s
    );
    Ok(())
}

/// `n` synthetic English customers of the demo CRM, imported into the app's store.
async fn import_synthetic(
    app: &App,
    config: &Config,
    n: usize,
    seed: u64,
) -> anyhow::Result<Vec<retrieval::synth::SyntheticCustomer>> {
    let customers = retrieval::synth::generate(n, seed, 0.0);
    let now = orchestrator::session::now_ms();
    let csv = retrieval::synth::to_csv(&customers, now);
    retrieval::import::import_customers(
        &app.store,
        &app.keys,
        &config.retrieval.crm,
        retrieval::import::Format::Csv,
        &csv,
        now,
    )
    .await?;
    Ok(customers)
}

/// Resident memory of this process, from /proc.
fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

/// CPU time of this process (user + system), from /proc.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(vec![], |(_, rest)| rest.split_whitespace().collect());
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

async fn fake(args: &[String]) -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut config = config_in(tmp.path());
    config.dialog.campaign = root.join("dialog/data/campaigns/family_education_insurance.yaml");
    config.dialog.nlu_dir = root.join("dialog/data/nlu");
    let app = App::build(
        &config,
        Arc::new(Engines::fake(&["okay go on"; 64])),
        Metrics::new(),
        None,
        None,
    )
    .await?;
    let customers = import_synthetic(&app, &config, 50, 5).await?;
    let customer = customers[0].customer_id.clone();
    let setup = |i: usize| CallSetup {
        call_id: format!("bench-{i}"),
        attempt_id: None,
        campaign_id: "bench".into(),
        customer_id: customer.clone(),
        language: retrieval::Language::En,
        seed: i as u64,
        variants: Default::default(),
    };

    // 1. Many idle calls at once: each line sends a silent frame a second.
    let n = arg(args, "--calls", 5000);
    let before = rss_bytes();
    let mut far_ends = Vec::with_capacity(n);
    let mut sessions = tokio::task::JoinSet::new();
    for i in 0..n {
        let (line, far) = ChannelTransport::pair(LineFormat::WIDEBAND_PCM, 8)?;
        let ctx = app.calls.clone();
        let s = setup(i);
        sessions.spawn(async move { CallSession::run(ctx, s, Box::new(line)).await });
        far_ends.push(far);
    }
    let silence = vec![0u8; 640];
    let started = Instant::now();
    let mut alive = 0;
    while started.elapsed() < Duration::from_secs(10) {
        alive = 0;
        for far in &mut far_ends {
            if far
                .to_bot
                .try_send(LineInput::Audio(silence.clone()))
                .is_ok()
                || !far.to_bot.is_closed()
            {
                alive += 1;
            }
            while far.from_bot.try_recv().is_ok() {}
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let after = rss_bytes();
    println!(
        "call.max_concurrent_fake={alive} memory_per_call_kib={:.0} (rss {} MiB -> {} MiB with {n} calls open)",
        (after.saturating_sub(before)) as f64 / 1024.0 / n.max(1) as f64,
        before >> 20,
        after >> 20
    );
    for far in &far_ends {
        let _ = far.to_bot.try_send(LineInput::Hangup);
    }
    drop(far_ends);
    while sessions.join_next().await.is_some() {}

    // 2. One call fed frames as fast as it takes them: CPU per frame through the session.
    let frames = 3000usize;
    let (line, far) = ChannelTransport::pair(LineFormat::WIDEBAND_PCM, 64)?;
    let (to_bot, mut from_bot) = (far.to_bot, far.from_bot);
    // The far end reads the bot while it sends: a line that stops reading stalls the call.
    let reader = tokio::spawn(async move {
        let mut bot_frames = 0usize;
        while let Some(e) = from_bot.recv().await {
            if matches!(e, CallEvent::Audio { .. }) {
                bot_frames += 1;
            }
        }
        bot_frames
    });
    let ctx = app.calls.clone();
    let session = tokio::spawn(CallSession::run(ctx, setup(n + 1), Box::new(line)));
    let tone: Vec<u8> = (0..320)
        .flat_map(|i| (((i as f32 * 0.2).sin() * 6000.0) as i16).to_le_bytes())
        .collect();
    let cpu0 = cpu_seconds();
    let t = Instant::now();
    for i in 0..frames {
        // 1 s of speech in every 5 s, the rest silence: the listener and the bot both work.
        let frame = if i % 250 < 50 {
            tone.clone()
        } else {
            silence.clone()
        };
        to_bot
            .send(LineInput::Audio(frame))
            .await
            .context("the session closed the line")?;
    }
    let wall = t.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu0;
    let _ = to_bot.send(LineInput::Hangup).await;
    drop(to_bot);
    let _ = session.await;
    let bot_frames = reader.await.unwrap_or(0);
    println!(
        "call.frame_overhead_us={:.0} (process CPU per caller frame, {frames} frames in {:.2} s wall, {bot_frames} bot frames out, fake engines)",
        cpu * 1e6 / frames as f64,
        wall
    );
    Ok(())
}

/// What the scripted caller says, one clip per turn.
const SCRIPT: &[&str] = &[
    "Sure, what is it about?",
    "How much does it cost per month?",
    "Hmm, that is too expensive for me.",
    "Okay, sign me up.",
];

/// Renders `text` with `tts` as 16 kHz PCM.
fn render(tts: &dyn voice::TextToSpeech, text: &str) -> anyhow::Result<Vec<i16>> {
    let mut pcm = Vec::new();
    let cancel = tokio_util::sync::CancellationToken::new();
    tts.synthesize(text, voice::Language::English, &cancel, &mut |c| {
        pcm.extend_from_slice(&c.samples);
        std::ops::ControlFlow::Continue(())
    })?;
    Ok(voice::audio::resample(
        &pcm,
        tts.sample_rate(),
        voice::SAMPLE_RATE,
    )?)
}

/// One scripted call over an in-process line at real-time pace: after the bot has been quiet
/// for `gap_ms` of line time, the caller plays its next clip; it hangs up when the script is
/// done and the bot quiet, or when the call ends.
async fn scripted_call(
    app: Arc<App>,
    setup: CallSetup,
    clips: Arc<Vec<Vec<i16>>>,
) -> anyhow::Result<orchestrator::session::FinishedCall> {
    const GAP_MS: u64 = 500;
    let (line, far) = ChannelTransport::pair(LineFormat::WIDEBAND_PCM, 64)?;
    let session = tokio::spawn(CallSession::run(app.calls.clone(), setup, Box::new(line)));
    let (to_bot, mut from_bot) = (far.to_bot, far.from_bot);
    let mut clock = tokio::time::interval(Duration::from_millis(20));
    let (mut line_ms, mut last_bot, mut said) = (0u64, None::<u64>, 0usize);
    let mut said_until = 0u64;
    let mut bot_spoke_since_us = false;
    let mut speech: std::collections::VecDeque<i16> = Default::default();
    'call: loop {
        clock.tick().await;
        loop {
            match from_bot.try_recv() {
                Ok(CallEvent::Audio { at_ms, .. }) => {
                    last_bot = Some(at_ms);
                    bot_spoke_since_us = true;
                }
                Ok(CallEvent::Ended { .. })
                | Err(tokio::sync::mpsc::error::TryRecvError::Disconnected) => break 'call,
                Ok(_) => {}
                Err(tokio::sync::mpsc::error::TryRecvError::Empty) => break,
            }
        }
        // Quiet: the bot for GAP_MS since its last frame, and the caller since its last clip
        // (a caller who talked over the bot still pauses before the next line).
        let quiet =
            last_bot.is_none_or(|t| line_ms >= t + 20 + GAP_MS) && line_ms >= said_until + GAP_MS;
        if speech.is_empty() && bot_spoke_since_us && quiet {
            match clips.get(said) {
                Some(clip) => {
                    speech.extend(clip.iter().copied());
                    said += 1;
                    bot_spoke_since_us = false;
                }
                None => {
                    let _ = to_bot.send(LineInput::Hangup).await;
                    break;
                }
            }
        }
        if !speech.is_empty() {
            said_until = line_ms + 20;
        }
        let frame: Vec<u8> = (0..320)
            .map(|_| speech.pop_front().unwrap_or(0))
            .flat_map(i16::to_le_bytes)
            .collect();
        if to_bot.send(LineInput::Audio(frame)).await.is_err() {
            break;
        }
        line_ms += 20;
        if line_ms > 180_000 {
            let _ = to_bot.send(LineInput::Hangup).await;
            break;
        }
    }
    drop(to_bot);
    // Drain what the session still says so it never waits on a full line.
    let drain = tokio::spawn(async move { while from_bot.recv().await.is_some() {} });
    let finished = session.await?;
    drain.abort();
    Ok(finished)
}

async fn scripted(args: &[String]) -> anyhow::Result<()> {
    let lines = arg(args, "--lines", 1).max(1);
    let calls = arg(args, "--calls", 4 * lines).max(1);
    let tmp = tempfile::tempdir()?;
    let config = config_in(tmp.path());
    let cfg = config.clone();
    let engines = Arc::new(tokio::task::spawn_blocking(move || Engines::load(&cfg, false)).await??);
    let voice = voice::tts::espeak::EspeakTts::new(
        std::path::Path::new("espeak-ng"),
        "en-us",
        voice::Language::English,
    )?;
    let clips = Arc::new(
        SCRIPT
            .iter()
            .map(|t| render(&voice, t))
            .collect::<anyhow::Result<Vec<_>>>()?,
    );
    let app = Arc::new(App::build(&config, engines, Metrics::new(), None, None).await?);
    let customers = import_synthetic(&app, &config, 200, 11).await?;
    app.index_knowledge().await?;
    let mut english = Vec::new();
    for c in customers.iter().filter(|c| c.language == "en") {
        if app.store.profile(&c.customer_id).await?.is_some() {
            app.profiles.index_customer(&c.customer_id).await?;
            english.push(c.customer_id.clone());
        }
        if english.len() >= calls {
            break;
        }
    }
    anyhow::ensure!(
        !english.is_empty(),
        "no English customer in the synthetic CRM"
    );
    let mut finished = Vec::new();
    for (round, batch) in english.chunks(lines).enumerate() {
        let mut set = tokio::task::JoinSet::new();
        for (i, id) in batch.iter().enumerate() {
            let setup = CallSetup {
                call_id: format!("scripted-{round}-{i}"),
                attempt_id: None,
                campaign_id: "bench".into(),
                customer_id: id.clone(),
                language: retrieval::Language::En,
                seed: (round * lines + i) as u64,
                variants: Default::default(),
            };
            set.spawn(scripted_call(app.clone(), setup, clips.clone()));
        }
        while let Some(r) = set.join_next().await {
            finished.push(r??);
        }
    }
    let turns: Vec<_> = finished.iter().flat_map(|f| f.turns.iter()).collect();
    let v2v: Vec<f64> = turns.iter().filter_map(|t| t.latency.v2v_line_ms).collect();
    let median = |f: &dyn Fn(&orchestrator::session::TurnLog) -> f64| {
        percentile(&turns.iter().map(|t| f(t)).collect::<Vec<_>>(), 50.0)
    };
    let confirmed = finished
        .iter()
        .flat_map(|f| f.events.iter())
        .filter(|e| e.kind == "speculation_confirmed")
        .count();
    let outcomes: Vec<&str> = finished.iter().map(|f| f.outcome.as_str()).collect();
    for f in &finished {
        for e in f.events.iter().filter(|e| e.kind == "turn_dropped") {
            tracing::info!(call = %f.setup.call_id, at_ms = e.at_ms, detail = %e.detail, "turn dropped");
        }
        for t in &f.turns {
            tracing::info!(
                call = %f.setup.call_id,
                caller = %t.info.caller_text,
                end_ms = t.caller_end_ms,
                asr_final_ms = t.latency.asr_final_ms,
                v2v = ?t.latency.v2v_line_ms,
                "turn"
            );
        }
    }
    println!(
        "call.v2v_ms_p50_x{lines}={:.0} call.v2v_ms_p95_x{lines}={:.0} turns={} calls={} \
         (medians: asr_final {:.0} ms, dialog {:.0} ms, tts_first_audio {:.0} ms; \
         {confirmed} turns started on the speculative final; outcomes {outcomes:?})",
        percentile(&v2v, 50.0),
        percentile(&v2v, 95.0),
        v2v.len(),
        finished.len(),
        median(&|t| t.latency.asr_final_ms),
        median(&|t| t.latency.dialog_ms),
        median(&|t| t.latency.tts_first_audio_ms),
    );
    Ok(())
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "warn,call_bench=info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    retrieval::embed::block_on_main(async {
        let args: Vec<String> = std::env::args().skip(1).collect();
        match args.first().map(String::as_str) {
            Some("real") => real(&args).await,
            Some("fake") => fake(&args).await,
            Some("scripted") => scripted(&args).await,
            _ => anyhow::bail!(
                "usage: call_bench real [--calls-x1 N] [--calls-x4 N] | scripted [--lines N] [--calls N] | fake [--calls N]"
            ),
        }
    })?
}

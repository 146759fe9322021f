//! Call benchmarks, printed as `key=value` lines for BENCHMARKS.md.
//!
//! `call_bench real [--calls-x1 N] [--calls-x4 N]`: the demo campaign on the real engines, once
//! on 1 line and once on 4 lines (simulated callees over the gRPC `Call` stream, line clock at
//! real time): voice-to-voice latency in line time (end of the callee's speech to the bot's
//! first frame on the wire, the VAD's hang-over included), barge-in stop times, calls per hour.
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
    let mut config = Config::default();
    config.retrieval.database_url = format!("sqlite://{}", dir.join("db.sqlite").display());
    config.retrieval.index_dir = dir.join("index");
    config.retrieval.lexical_dir = dir.join("lexical");
    config.dialog.data_dir = dir.join("data");
    config
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
    let customers = retrieval::synth::generate(50, 5, 0.0);
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
    let customer = customers[0].customer_id.clone();
    let setup = |i: usize| CallSetup {
        call_id: format!("bench-{i}"),
        attempt_id: None,
        campaign_id: "bench".into(),
        customer_id: customer.clone(),
        language: retrieval::Language::En,
        seed: i as u64,
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

fn main() -> anyhow::Result<()> {
    retrieval::embed::block_on_main(async {
        let args: Vec<String> = std::env::args().skip(1).collect();
        match args.first().map(String::as_str) {
            Some("real") => real(&args).await,
            Some("fake") => fake(&args).await,
            _ => anyhow::bail!(
                "usage: call_bench real [--calls-x1 N] [--calls-x4 N] | fake [--calls N]"
            ),
        }
    })?
}

//! The demo campaign, the product's main job end to end on the real engines and embedded
//! defaults (SQLite, the embedded vector index, BM25): a seeded synthetic CRM export is imported
//! (phones hashed and sealed), the campaign's knowledge and its customers are indexed, the gRPC
//! server starts in-process, and the campaign dialer places the calls on several lines to
//! simulated callees who connect to the server's `Call` stream as a telephony gateway would
//! (8 kHz μ-law, bearer token). Every call runs through the production path — call session,
//! VAD + Whisper, dialogue manager, Piper / the Mandarin voice, barge-in, hand-off desk — and is
//! stored with its attempt in one transaction. No fake engine is on this path.

use crate::app::App;
use crate::auth::{AuthConfig, Role, SecretToken, TokenEntry};
use crate::callee::{caller_voices, CalleeEngines, PersonaLines};
use crate::campaign::{CampaignRunner, CampaignSpec, DialerHooks};
use crate::dialer::{CampaignDialer, ModelScorer};
use crate::grpc::{self, OrchestratorService};
use crate::metrics::Metrics;
use crate::session::now_ms;
use crate::simlines::{SimulatedCall, SimulatedLines};
use crate::{Config, Engines};
use anyhow::{bail, Context};
use base64::Engine as _;
use dialog::nlu::NluEngine;
use dialog::policy::{
    Campaign, DialogManager, Guard, Phraser, PhrasingAuthority, PhrasingMode, QualifyReport,
};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use retrieval::import::{import_customers, Format};
use retrieval::{PrivacyKeys, SqlProfileStore};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use voice::config::WhisperSize;

#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Synthetic CRM size.
    pub customers: usize,
    /// Customers enqueued in the campaign (one attempt each).
    pub calls: usize,
    /// Concurrent lines (overrides the campaign file's `max_lines`).
    pub lines: usize,
    pub seed: u64,
    /// The campaign file (id, name, dialer settings).
    pub campaign: PathBuf,
    /// The simulated callees' lines.
    pub personas: PathBuf,
    /// Where the CRM export goes.
    pub out_dir: PathBuf,
    /// The callees' line clock: 1.0 is a phone line in real time.
    pub speed: f64,
    /// Print progress to stderr.
    pub progress: bool,
}

impl Default for DemoOptions {
    fn default() -> Self {
        Self {
            customers: 500,
            calls: 50,
            lines: 4,
            seed: 7,
            campaign: PathBuf::from("orchestrator/data/demo_campaign.yaml"),
            personas: PathBuf::from("orchestrator/data/personas.yaml"),
            out_dir: PathBuf::from("out"),
            speed: 1.0,
            progress: true,
        }
    }
}

/// One call's figures for the report.
#[derive(Debug, Clone, Serialize)]
pub struct DemoCall {
    #[serde(flatten)]
    pub sim: SimulatedCall,
    /// The outcome stored for the attempt.
    pub outcome: String,
    pub end_reason: Option<String>,
    pub turns: usize,
    pub v2v_line_ms: Vec<f64>,
    pub v2v_wall_ms: Vec<f64>,
    pub barge_ins: usize,
}

/// What the demo did.
#[derive(Debug, Clone, Serialize)]
pub struct DemoReport {
    pub crm_file: PathBuf,
    pub imported: usize,
    /// Rejected CRM rows as `line N: reason`.
    pub rejected: Vec<String>,
    pub knowledge_snippets: usize,
    pub llm_phrasing: String,
    pub campaign_id: String,
    pub lines: usize,
    pub calls: Vec<DemoCall>,
    pub abandoned_handoff_rate: f64,
    /// Per barge-in: bot audio sent after the session learned of the caller's speech (ms).
    pub barge_in_stop_ms: Vec<f64>,
    /// Customers the dialer skipped because they must not be called.
    pub skipped_do_not_call: u64,
    /// Wall time of the dialing alone (engines loaded, data imported).
    pub campaign_s: f64,
    pub database: String,
    pub recordings: PathBuf,
    pub wall_s: f64,
    /// (stage, milliseconds) in order.
    pub timings: Vec<(String, f64)>,
}

/// Percentile (0..=100) of `v` (nearest rank), 0 when empty.
pub fn percentile(v: &[f64], p: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    let at = ((p / 100.0) * (v.len() - 1) as f64).round() as usize;
    v[at.min(v.len() - 1)]
}

impl DemoReport {
    /// Outcomes by segment: segment → outcome → count.
    pub fn outcomes_by_segment(&self) -> BTreeMap<String, BTreeMap<String, usize>> {
        let mut m: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
        for c in &self.calls {
            *m.entry(c.sim.segment.clone())
                .or_default()
                .entry(c.outcome.clone())
                .or_default() += 1;
        }
        m
    }

    /// Every turn's voice-to-voice latency in wall time.
    pub fn v2v_wall(&self) -> Vec<f64> {
        self.calls
            .iter()
            .flat_map(|c| c.v2v_wall_ms.clone())
            .collect()
    }

    /// Every turn's voice-to-voice latency in line time.
    pub fn v2v_line(&self) -> Vec<f64> {
        self.calls
            .iter()
            .flat_map(|c| c.v2v_line_ms.clone())
            .collect()
    }
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

/// The configured privacy keys, or for the demo a key file under `data_dir` created once
/// (mode 0600). Production sets `retrieval.phone_hash_key` / `retrieval.encryption_key`.
pub fn demo_keys(config: &Config, data_dir: &Path) -> anyhow::Result<PrivacyKeys> {
    if config.retrieval.phone_hash_key.is_some() || config.retrieval.encryption_key.is_some() {
        return Ok(config.retrieval.privacy_keys()?);
    }
    #[derive(Serialize, Deserialize)]
    struct KeyFile {
        phone_hash_key: String,
        encryption_key: String,
    }
    let path = data_dir.join("demo_keys.json");
    if !path.exists() {
        std::fs::create_dir_all(data_dir)
            .with_context(|| format!("creating {}", data_dir.display()))?;
        let b64 = base64::engine::general_purpose::STANDARD;
        let keys = KeyFile {
            phone_hash_key: b64.encode(rand::random::<[u8; 32]>()),
            encryption_key: b64.encode(rand::random::<[u8; 32]>()),
        };
        std::fs::write(&path, serde_json::to_string_pretty(&keys)?)
            .with_context(|| format!("writing {}", path.display()))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
        }
        tracing::warn!(
            "no privacy keys configured: generated demo keys in {} (set retrieval.phone_hash_key and retrieval.encryption_key for real data)",
            path.display()
        );
    }
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let keys: KeyFile =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    Ok(PrivacyKeys::from_base64(
        &keys.phone_hash_key,
        &keys.encryption_key,
    )?)
}

/// Creates the folder of a `sqlite://` database file (SQLite creates the file, not the folder).
pub fn ensure_sqlite_folder(url: &str) -> anyhow::Result<()> {
    if let Some(path) = url.strip_prefix("sqlite://") {
        let path = path.split('?').next().unwrap_or(path);
        if let Some(dir) = Path::new(path)
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
        {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
    }
    Ok(())
}

/// The dialogue manager of the configured campaign over the data layer: real NLU, profile
/// retrieval, and LLM phrasing only if a passing qualification report says so.
pub fn build_manager(
    config: &Config,
    engines: &Engines,
    profiles: Arc<SqlProfileStore>,
) -> anyhow::Result<(DialogManager, String)> {
    build_dialog(
        config,
        engines.embedder.clone(),
        engines.llm.clone(),
        profiles,
        None,
    )
}

/// The dialogue manager over any profile store. `evaluate` switches LLM phrasing on in that
/// mode for measurement only (the eval harness comparing models), without a qualification
/// report; calls with customers never take this path.
pub fn build_dialog(
    config: &Config,
    embedder: Arc<dyn retrieval::Embedder>,
    llm: Option<Arc<dyn dialog::LanguageModel>>,
    profiles: Arc<dyn retrieval::ProfileStore>,
    evaluate: Option<PhrasingMode>,
) -> anyhow::Result<(DialogManager, String)> {
    let d = &config.dialog;
    let campaign = Arc::new(Campaign::load(&d.campaign)?);
    let nlu = Arc::new(NluEngine::load(&d.nlu_dir, Some(embedder.clone()))?);
    let mut manager = DialogManager::new(
        campaign,
        nlu,
        profiles,
        Some(embedder.clone()),
        d.manager.clone(),
    )?;
    let guard = || Guard::new(d.manager.guard.clone(), Some(embedder.clone()));
    let phrasing = match (evaluate, &d.phrasing, &d.qualify_report, &llm) {
        (Some(mode), _, _, Some(llm)) => {
            let phraser = Phraser::new(llm.clone(), mode, guard(), PhrasingAuthority::Evaluation)?;
            manager = manager.with_phraser(phraser);
            format!(
                "on ({}, {}; evaluation only, not qualified)",
                mode.as_str(),
                config.llm.model_path.display()
            )
        }
        (Some(_), _, _, None) => bail!("LLM phrasing for evaluation needs the LLM loaded"),
        (None, Some(mode), Some(report), Some(llm)) => {
            let text = std::fs::read_to_string(report).with_context(|| {
                format!("reading the qualification report {}", report.display())
            })?;
            let report: QualifyReport = serde_json::from_str(&text).with_context(|| {
                format!("parsing the qualification report {}", report.display())
            })?;
            let phraser = Phraser::new(
                llm.clone(),
                *mode,
                guard(),
                PhrasingAuthority::Qualified(&report),
            )?;
            manager = manager.with_phraser(phraser);
            format!("on ({}, {} qualified)", mode.as_str(), report.model)
        }
        (None, Some(_), None, _) => {
            bail!("dialog.phrasing is set but dialog.qualify_report is not: run `ringwise qualify --out DIR` and point dialog.qualify_report at DIR/qualify_report.json")
        }
        _ => "off (templates; no qualified model configured)".to_string(),
    };
    Ok((manager, phrasing))
}

/// The simulated callees' engines: their own Whisper (tiny.en for English, base for Chinese;
/// not the bot's, so their decoding never queues behind the bot's), Silero, and voices unlike
/// the bot's (its English and Mandarin voices pitched down).
pub fn callee_engines(
    config: &Config,
    engines: &Engines,
    personas: &Path,
) -> anyhow::Result<CalleeEngines> {
    let v = &config.voice;
    let asr_en = Arc::new(voice::asr::whisper::WhisperAsr::from_config(
        v,
        WhisperSize::TinyEn,
    )?);
    let asr_zh = Arc::new(voice::asr::whisper::WhisperAsr::from_config(
        v,
        WhisperSize::Base,
    )?);
    let (voice_en, voice_zh) = caller_voices(&engines.tts_en, &engines.tts_zh);
    Ok(CalleeEngines::new(
        engines.new_vad.clone(),
        asr_en,
        asr_zh,
        voice_en,
        voice_zh,
        PersonaLines::load(personas)?,
    ))
}

/// Runs the demo campaign.
pub async fn run(config: &Config, options: DemoOptions) -> anyhow::Result<DemoReport> {
    let total = Instant::now();
    let mut timings = Vec::new();
    // A bad campaign file is reported before the engines load.
    let spec_text = std::fs::read_to_string(&options.campaign)
        .with_context(|| format!("reading the campaign {}", options.campaign.display()))?;
    CampaignSpec::parse_over(&spec_text, &config.dialer)?;
    // 1. Engines: the bot's, then the callees' (the LLM only when phrasing may be on).
    let t = Instant::now();
    let cfg = config.clone();
    let wants_llm = config.dialog.phrasing.is_some();
    let engines =
        Arc::new(tokio::task::spawn_blocking(move || Engines::load(&cfg, wants_llm)).await??);
    for (name, t) in &engines.load_ms {
        timings.push((format!("load.{name}"), *t));
    }
    let (cfg, e, personas) = (config.clone(), engines.clone(), options.personas.clone());
    let callees =
        Arc::new(tokio::task::spawn_blocking(move || callee_engines(&cfg, &e, &personas)).await??);
    timings.push(("load.engines".into(), ms(t)));
    run_on(config, options, engines, callees, timings, total).await
}

/// The demo campaign on loaded engines (the real ones in [`run`]; tests may pass fakes):
/// everything after loading, `timings` so far and the `total` clock carried on.
pub async fn run_on(
    config: &Config,
    options: DemoOptions,
    engines: Arc<Engines>,
    callees: Arc<CalleeEngines>,
    mut timings: Vec<(String, f64)>,
    total: Instant,
) -> anyhow::Result<DemoReport> {
    std::fs::create_dir_all(&options.out_dir)
        .with_context(|| format!("creating {}", options.out_dir.display()))?;
    let spec_text = std::fs::read_to_string(&options.campaign)
        .with_context(|| format!("reading the campaign {}", options.campaign.display()))?;
    let mut spec = CampaignSpec::parse_over(&spec_text, &config.dialer)?;
    spec.dialer.max_lines = options.lines.max(1);

    // 2. The app over the store; the dialer's hooks join the call sessions to the campaign.
    let metrics = Metrics::new();
    let hooks = Arc::new(DialerHooks::default());
    let app = Arc::new(
        App::build(
            config,
            engines.clone(),
            metrics.clone(),
            Some(hooks.clone()),
            Some(hooks.clone()),
        )
        .await?,
    );

    // 3. The CRM export, imported (cleaned, phones normalized, hashed and sealed).
    let t = Instant::now();
    let customers = retrieval::synth::generate(options.customers, options.seed, 0.5);
    let csv = retrieval::synth::to_csv(&customers, now_ms());
    let crm_file = options.out_dir.join("demo_crm.csv");
    std::fs::write(&crm_file, &csv).with_context(|| format!("writing {}", crm_file.display()))?;
    let import = import_customers(
        &app.store,
        &app.keys,
        &config.retrieval.crm,
        Format::Csv,
        &csv,
        now_ms(),
    )
    .await?;
    timings.push(("import.crm".into(), ms(t)));

    // 4. Who the campaign calls: a seeded draw of imported customers, indexed for retrieval.
    let t = Instant::now();
    let knowledge_snippets = app.index_knowledge().await?;
    let mut ids: Vec<String> = Vec::new();
    for c in &customers {
        if app.store.profile(&c.customer_id).await?.is_some() {
            ids.push(c.customer_id.clone());
        }
    }
    ids.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(options.seed));
    ids.truncate(options.calls);
    for id in &ids {
        app.profiles.index_customer(id).await?;
    }
    timings.push(("index.customers".into(), ms(t)));

    // 5. The gRPC server in-process, with a demo operator token.
    let token = format!("demo-{:032x}", rand::random::<u128>());
    let mut server = config.server.clone();
    server.auth = AuthConfig {
        tokens: vec![TokenEntry {
            role: Role::Operator,
            token: Some(SecretToken::new(token.clone())),
            token_env: None,
        }],
        ..AuthConfig::default()
    };
    let dialer = Arc::new(CampaignDialer::new(
        app.store.clone(),
        spec.dialer.clone(),
        ModelScorer::active_or_baseline(&app.store).await,
    )?);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let channel = tonic::transport::Endpoint::from_shared(url)?.connect_lazy();
    let placer = Arc::new(SimulatedLines {
        channel,
        token,
        engines: callees,
        store: app.store.clone(),
        speed: options.speed,
        calls: std::sync::Mutex::new(Vec::new()),
    });
    let runner = Arc::new(CampaignRunner::new(
        app.clone(),
        dialer.clone(),
        placer.clone(),
        options.seed,
        Duration::from_secs(20),
    ));
    hooks.attach(&runner);
    let shutdown = CancellationToken::new();
    let service = OrchestratorService::with_app(app.clone(), Some(runner.clone()));
    let server_task = {
        let shutdown = shutdown.clone();
        tokio::spawn(async move { grpc::serve(service, listener, &server, shutdown).await })
    };

    // 6. The campaign, dialed to its end.
    let yaml = serde_yaml_ng::to_string(&serde_json::json!({
        "id": spec.id, "name": spec.name, "dialer": spec.dialer, "experiment": spec.experiment,
    }))?;
    runner.create_for(&yaml, &ids).await?;
    let t = Instant::now();
    let progress = options.progress.then(|| {
        let (runner, id, total) = (runner.clone(), spec.id.clone(), ids.len());
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(2)).await;
                if let Ok(v) = runner.status(&id).await {
                    let done: u64 = v.outcomes.values().sum();
                    let width = 30usize;
                    let filled = (done as usize * width / total.max(1)).min(width);
                    eprint!(
                        "\r[{}{}] {done}/{total} calls, {} live, {:.0} s   ",
                        "#".repeat(filled),
                        ".".repeat(width - filled),
                        v.live_calls,
                        t.elapsed().as_secs_f64()
                    );
                }
            }
        })
    });
    let status = runner.run_to_end(&spec.id).await?;
    if let Some(p) = progress {
        p.abort();
        eprintln!();
    }
    let campaign_s = t.elapsed().as_secs_f64();
    timings.push(("campaign".into(), ms(t)));
    shutdown.cancel();
    server_task.await??;

    // 7. The report, from what was stored.
    let sims = placer
        .calls
        .lock()
        .map_err(|_| anyhow::anyhow!("poisoned"))?
        .clone();
    let mut calls = Vec::new();
    let mut barge_in_stop_ms = Vec::new();
    for sim in sims {
        let stored = app.store.call(&sim.call_id).await?;
        let facts = app.store.call_facts(&sim.call_id).await?;
        let outcome = match (&stored, &sim.report) {
            (Some(c), _) => c.outcome.clone(),
            (None, _) if sim.persona == crate::callee::PersonaKind::NoAnswer => "no_answer".into(),
            _ => "failed".into(),
        };
        let metrics = facts
            .as_ref()
            .map(|f| f.metrics.clone())
            .unwrap_or_default();
        for e in facts
            .iter()
            .flat_map(|f| &f.events)
            .filter(|e| e.kind == "barge_in")
        {
            if let Ok(b) = serde_json::from_str::<crate::session::BargeIn>(&e.detail) {
                barge_in_stop_ms.push(b.stop_ms() as f64);
            }
        }
        calls.push(DemoCall {
            outcome,
            end_reason: facts.as_ref().and_then(|f| f.end_reason.clone()),
            turns: metrics.len(),
            v2v_line_ms: metrics.iter().filter_map(|m| m.v2v_line_ms).collect(),
            v2v_wall_ms: metrics.iter().filter_map(|m| m.v2v_wall_ms).collect(),
            barge_ins: facts.as_ref().map_or(0, |f| {
                f.events.iter().filter(|e| e.kind == "barge_in").count()
            }),
            sim,
        });
    }
    timings.push(("total".into(), ms(total)));
    Ok(DemoReport {
        crm_file,
        imported: import.accepted,
        rejected: import
            .rejected
            .iter()
            .map(|r| format!("line {}: {}", r.line, r.reason))
            .collect(),
        knowledge_snippets,
        llm_phrasing: app.llm_phrasing.clone(),
        campaign_id: spec.id.clone(),
        lines: spec.dialer.max_lines,
        calls,
        abandoned_handoff_rate: status.abandoned_handoff_rate,
        barge_in_stop_ms,
        skipped_do_not_call: status.do_not_call_skipped,
        campaign_s,
        database: config.retrieval.database_url.clone(),
        recordings: app.calls.recordings_dir.clone(),
        wall_s: total.elapsed().as_secs_f64(),
        timings,
    })
}

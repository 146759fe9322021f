//! The demo campaign, end to end on the real engines and embedded defaults (SQLite, the embedded
//! vector index, BM25): a seeded synthetic CRM export is imported (phones hashed and sealed),
//! the campaign's knowledge and the called customers are indexed, and a few outbound calls run
//! through TTS → VAD → Whisper → NLU + policy + profile retrieval → Piper / the Mandarin voice,
//! each recorded in stereo and stored with its turns, actions and outcome. No fake engine is on
//! this path. Callers are simulated from `orchestrator/data/demo_callers.yaml`.

use crate::call::{now_ms, run_call, CallPlan, CallReport, CallerVoices};
use crate::{Config, Engines};
use anyhow::{bail, Context};
use base64::Engine as _;
use dialog::nlu::NluEngine;
use dialog::policy::{
    Campaign, DialogEvent, DialogManager, Guard, Phraser, PhrasingAuthority, QualifyReport,
};
use retrieval::import::{import_customers, Format};
use retrieval::index::embedded::EmbeddedIndex;
use retrieval::store::{CallRecord, TurnRecord};
use retrieval::{Language, LexicalIndex, PrivacyKeys, SqlProfileStore, SqlStore, VectorIndex};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Synthetic CRM size.
    pub customers: usize,
    /// Calls placed (personas in turn, languages alternating en / zh).
    pub calls: usize,
    pub seed: u64,
    /// The simulated callers.
    pub personas: PathBuf,
    /// Where the CRM export, call records and recordings go.
    pub out_dir: PathBuf,
    /// Callers speak at the pace of a phone line (see [`CallPlan::real_time`]).
    pub real_time: bool,
}

impl Default for DemoOptions {
    fn default() -> Self {
        Self {
            customers: 500,
            calls: 8,
            seed: 7,
            personas: PathBuf::from("orchestrator/data/demo_callers.yaml"),
            out_dir: PathBuf::from("out"),
            real_time: true,
        }
    }
}

/// A simulated caller: what they say per language, and the outcome the policy should reach.
#[derive(Debug, Clone, Deserialize)]
pub struct Persona {
    pub name: String,
    pub expect: String,
    #[serde(default)]
    pub en: Vec<String>,
    #[serde(default)]
    pub zh: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct PersonaFile {
    personas: Vec<Persona>,
}

/// Reads the simulated callers.
pub fn load_personas(path: &Path) -> anyhow::Result<Vec<Persona>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the demo callers {}", path.display()))?;
    let file: PersonaFile = serde_yaml_ng::from_str(&text)
        .with_context(|| format!("parsing the demo callers {}", path.display()))?;
    if file.personas.is_empty() {
        bail!("{} lists no persona", path.display());
    }
    Ok(file.personas)
}

/// One placed call with the persona that played the customer.
#[derive(Debug, Clone, Serialize)]
pub struct DemoCall {
    pub persona: String,
    pub expected_outcome: String,
    #[serde(flatten)]
    pub report: CallReport,
}

impl DemoCall {
    pub fn as_expected(&self) -> bool {
        self.report.outcome.as_deref() == Some(self.expected_outcome.as_str())
    }
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
    pub calls: Vec<DemoCall>,
    /// (stage, milliseconds) in order.
    pub timings: Vec<(String, f64)>,
}

impl DemoReport {
    /// Percentile (0..=100) of a per-turn latency over every call.
    pub fn turn_percentile(&self, field: fn(&crate::call::TurnReport) -> f64, p: f64) -> f64 {
        let mut v: Vec<f64> = self
            .calls
            .iter()
            .flat_map(|c| c.report.turns.iter().map(field))
            .collect();
        if v.is_empty() {
            return 0.0;
        }
        v.sort_by(f64::total_cmp);
        let at = ((p / 100.0) * (v.len() - 1) as f64).round() as usize;
        v[at.min(v.len() - 1)]
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
    let d = &config.dialog;
    let campaign = Arc::new(Campaign::load(&d.campaign)?);
    let nlu = Arc::new(NluEngine::load(&d.nlu_dir, Some(engines.embedder.clone()))?);
    let mut manager = DialogManager::new(
        campaign,
        nlu,
        profiles,
        Some(engines.embedder.clone()),
        d.manager.clone(),
    )?;
    let phrasing = match (&d.phrasing, &d.qualify_report, &engines.llm) {
        (Some(mode), Some(report), Some(llm)) => {
            let text = std::fs::read_to_string(report).with_context(|| {
                format!("reading the qualification report {}", report.display())
            })?;
            let report: QualifyReport = serde_json::from_str(&text).with_context(|| {
                format!("parsing the qualification report {}", report.display())
            })?;
            let phraser = Phraser::new(
                llm.clone(),
                *mode,
                Guard::new(d.manager.guard.clone(), Some(engines.embedder.clone())),
                PhrasingAuthority::Qualified(&report),
            )?;
            manager = manager.with_phraser(phraser);
            format!("on ({}, {} qualified)", mode.as_str(), report.model)
        }
        (Some(_), None, _) => {
            bail!("dialog.phrasing is set but dialog.qualify_report is not: run `ringwise qualify --out DIR` and point dialog.qualify_report at DIR/qualify_report.json")
        }
        _ => "off (templates; no qualified model configured)".to_string(),
    };
    Ok((manager, phrasing))
}

/// Runs the demo campaign.
pub async fn run(config: &Config, options: DemoOptions) -> anyhow::Result<DemoReport> {
    let total = Instant::now();
    let mut timings = Vec::new();
    let personas = load_personas(&options.personas)?;
    let data_dir = config.dialog.data_dir.clone();
    std::fs::create_dir_all(&options.out_dir)
        .with_context(|| format!("creating {}", options.out_dir.display()))?;
    let keys = demo_keys(config, &data_dir)?;

    // 1. The CRM export, imported (cleaned, phones normalized, hashed and sealed).
    let t = Instant::now();
    ensure_sqlite_folder(&config.retrieval.database_url)?;
    let store = SqlStore::connect(&config.retrieval.database_url).await?;
    let customers = retrieval::synth::generate(options.customers, options.seed, 0.5);
    let csv = retrieval::synth::to_csv(&customers, now_ms());
    let crm_file = options.out_dir.join("demo_crm.csv");
    std::fs::write(&crm_file, &csv).with_context(|| format!("writing {}", crm_file.display()))?;
    let import = import_customers(
        &store,
        &keys,
        &config.retrieval.crm,
        Format::Csv,
        &csv,
        now_ms(),
    )
    .await?;
    timings.push(("import.crm".into(), ms(t)));

    // 2. Engines (the LLM only when phrasing may be switched on).
    let cfg = config.clone();
    let wants_llm = config.dialog.phrasing.is_some();
    let engines =
        Arc::new(tokio::task::spawn_blocking(move || Engines::load(&cfg, wants_llm)).await??);
    for (name, t) in &engines.load_ms {
        timings.push((format!("load.{name}"), *t));
    }
    // The simulated callers: Piper without sampling noise (the same line sounds the same on
    // every run, so the demo and its test are repeatable) and the Mandarin voice.
    let t = Instant::now();
    let voice_config = config.voice.clone();
    let en: Arc<dyn voice::TextToSpeech> = Arc::new(
        tokio::task::spawn_blocking(move || voice::tts::piper::PiperTts::load(&voice_config))
            .await??
            .with_sampling_noise(0.0, 0.0),
    );
    let callers = Arc::new(CallerVoices {
        en,
        zh: engines.tts_zh.clone(),
    });
    timings.push(("load.caller_voices".into(), ms(t)));

    // 3. The data layer for retrieval and the campaign's knowledge.
    let t = Instant::now();
    let index: Arc<dyn VectorIndex> = Arc::new(EmbeddedIndex::open(
        &config.retrieval.index_dir,
        engines.embedder.dim(),
    )?);
    let lexical = Arc::new(LexicalIndex::open(&config.retrieval.lexical_dir)?);
    let profiles = Arc::new(SqlProfileStore::new(
        store.clone(),
        engines.embedder.clone(),
        index,
        lexical,
    ));
    let (manager, llm_phrasing) = build_manager(config, &engines, profiles.clone())?;
    let manager = Arc::new(manager);
    let campaign = manager.campaign();
    store
        .upsert_campaign(&retrieval::store::Campaign {
            id: campaign.id.clone(),
            name: campaign.name.clone(),
            product: campaign.product.en.clone().unwrap_or_default(),
            language: campaign
                .languages
                .iter()
                .map(|l| l.code())
                .collect::<Vec<_>>()
                .join(","),
            status: "running".into(),
            created_at_ms: now_ms(),
        })
        .await?;
    let mut knowledge: Vec<&str> = Vec::new();
    for entry in &campaign.faq {
        knowledge.extend(entry.answer.en.as_deref());
        knowledge.extend(entry.answer.zh.as_deref());
    }
    let knowledge_snippets = profiles.index_knowledge(&campaign.id, &knowledge).await?;
    timings.push(("index.knowledge".into(), ms(t)));

    // 4. Who is called: imported, reachable customers, languages alternating.
    let mut calls = Vec::new();
    let mut used = std::collections::HashSet::new();
    for i in 0..options.calls {
        let persona = &personas[i % personas.len()];
        let language = if i % 2 == 0 {
            Language::En
        } else {
            Language::Zh
        };
        let lines = match language {
            Language::En => &persona.en,
            Language::Zh => &persona.zh,
        };
        if lines.is_empty() || !campaign.languages.contains(&language) {
            continue;
        }
        let mut chosen = None;
        for c in customers
            .iter()
            .filter(|c| c.language == language.code() && !used.contains(&c.customer_id))
        {
            match store.profile(&c.customer_id).await? {
                Some(p) if !p.do_not_call => {
                    chosen = Some(c.customer_id.clone());
                    break;
                }
                _ => {}
            }
        }
        let Some(customer_id) = chosen else {
            tracing::warn!(
                "no reachable {} customer left for call {i}",
                language.code()
            );
            continue;
        };
        used.insert(customer_id.clone());
        let t = Instant::now();
        profiles.index_customer(&customer_id).await?;
        timings.push((format!("call{i}.index_customer"), ms(t)));

        let call_id = format!("demo-{}-{i}", now_ms());
        let plan = CallPlan {
            call_id: call_id.clone(),
            customer_id,
            language,
            seed: options.seed + i as u64,
            caller_lines: lines.clone(),
            recording: data_dir.join("recordings").join(format!("{call_id}.wav")),
            real_time: options.real_time,
        };
        let t = Instant::now();
        let (e, m, v) = (engines.clone(), manager.clone(), callers.clone());
        let report = tokio::task::spawn_blocking(move || run_call(&e, &m, &v, &plan)).await??;
        timings.push((format!("call{i}.run"), ms(t)));
        let t = Instant::now();
        persist(&store, &keys, &profiles, &data_dir, &report).await?;
        timings.push((format!("call{i}.persist"), ms(t)));
        calls.push(DemoCall {
            persona: persona.name.clone(),
            expected_outcome: persona.expect.clone(),
            report,
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
        llm_phrasing,
        calls,
        timings,
    })
}

/// Stores the call (turns, actions, outcome, sealed recording path), applies its events
/// (do-not-call) and re-indexes the customer so the next call retrieves this one.
async fn persist(
    store: &SqlStore,
    keys: &PrivacyKeys,
    profiles: &SqlProfileStore,
    data_dir: &Path,
    report: &CallReport,
) -> anyhow::Result<()> {
    let state = &report.state;
    let mut turns = Vec::new();
    for t in &state.turns {
        if let Some(c) = &t.caller {
            turns.push(TurnRecord {
                speaker: "caller".into(),
                text: c.text.clone(),
                latency_ms: None,
            });
        }
        turns.push(TurnRecord {
            speaker: "bot".into(),
            text: t.reply.clone(),
            latency_ms: Some(t.first_sentence_ms),
        });
    }
    store
        .insert_call(&CallRecord {
            id: report.call_id.clone(),
            customer_id: report.customer_id.clone(),
            campaign_id: state.campaign_id.clone(),
            started_at_ms: report.started_at_ms,
            ended_at_ms: report.ended_at_ms,
            outcome: report
                .outcome
                .clone()
                .unwrap_or_else(|| "no_outcome".into()),
            turns,
        })
        .await?;
    let actions = state
        .turns
        .iter()
        .map(|t| {
            Ok(retrieval::store::Action {
                call_id: report.call_id.clone(),
                seq: t.index as i64,
                kind: t.decision.action.kind().to_string(),
                detail: serde_json::to_string(&t.decision)?,
                at_ms: report.ended_at_ms,
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    store.insert_actions(&actions).await?;
    if report
        .events
        .iter()
        .any(|e| matches!(e, DialogEvent::AddToDoNotCall))
    {
        store
            .set_do_not_call(&report.customer_id, true, "call", now_ms())
            .await?;
    }
    let bytes = std::fs::metadata(&report.recording).map_or(0, |m| m.len() as i64);
    store
        .insert_recording(
            &retrieval::store::Recording {
                call_id: report.call_id.clone(),
                path: report.recording.clone(),
                sample_rate: i64::from(voice::SAMPLE_RATE),
                duration_ms: report.recording_ms as i64,
                bytes,
                created_at_ms: report.ended_at_ms,
            },
            keys,
        )
        .await?;
    let dir = data_dir.join("calls");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join(format!("{}.json", report.call_id));
    std::fs::write(&path, state.to_json()?)
        .with_context(|| format!("writing {}", path.display()))?;
    profiles.index_customer(&report.customer_id).await?;
    Ok(())
}

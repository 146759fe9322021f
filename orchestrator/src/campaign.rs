//! Running campaigns: a campaign YAML (id, name, dialer settings) and a customer query become a
//! dial queue; the [`CampaignRunner`] asks the [`CampaignDialer`] who to call next (score,
//! calling window, do-not-call, callbacks, attempts, lines, hand-off pacing) and places each call
//! through a [`LinePlacer`] — a telephony gateway in production, simulated callees over the gRPC
//! `Call` stream in the demo. The call session stores each call with its attempt's completion in
//! one transaction (the runner's [`AttemptCompletion`]); the dialer's state lives in the
//! database, so a restarted runner resumes where a killed one stopped.

use crate::app::App;
use crate::dialer::{
    callback_at_ms, CallOutcome, CallingWindows, CampaignDialer, DialTicket, DialerConfig,
    DialerStatus, NextCall, WaitReason,
};
use crate::experiment::{Assignment, Experiment, ExperimentSpec};
use crate::records::AttemptCompletion;
use crate::session::{now_ms, AgentDesk, CallSetup, FinishedCall};
use async_trait::async_trait;
use dialog::policy::VariantChoice;
use retrieval::store::{complete_attempt_in, record_call_arms_in};
use retrieval::RetrievalError;
use serde::Deserialize;
use sqlx::AnyConnection;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// A campaign request that cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum CampaignError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    State(String),
}

/// A campaign file: who runs it and how the dialer paces it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CampaignSpec {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub dialer: DialerConfig,
    /// An A/B split and/or a bandit over the script's choice points (see
    /// [`crate::experiment`]).
    #[serde(default)]
    pub experiment: Option<ExperimentSpec>,
}

impl CampaignSpec {
    /// Parses and checks a campaign YAML over the built-in dialer defaults; errors name the
    /// line and key.
    pub fn parse(yaml: &str) -> Result<Self, CampaignError> {
        Self::parse_over(yaml, &DialerConfig::default())
    }

    /// Parses and checks a campaign YAML whose `dialer:` keys override `defaults` (the
    /// configuration's `[dialer]` section) one top-level key at a time: a campaign that sets
    /// `window` replaces the whole default window, and keys it does not set keep the
    /// call centre's values (e.g. its per-region rules).
    pub fn parse_over(yaml: &str, defaults: &DialerConfig) -> Result<Self, CampaignError> {
        let invalid =
            |e: serde_yaml_ng::Error| CampaignError::Invalid(format!("campaign YAML: {e}"));
        // Parsed as written first, so a mistake is reported with its line.
        let mut spec: Self = serde_yaml_ng::from_str(yaml).map_err(invalid)?;
        let written: serde_yaml_ng::Value = serde_yaml_ng::from_str(yaml).map_err(invalid)?;
        if let Some(serde_yaml_ng::Value::Mapping(keys)) = written.get("dialer") {
            let mut merged = serde_yaml_ng::to_value(defaults).map_err(invalid)?;
            if let serde_yaml_ng::Value::Mapping(base) = &mut merged {
                for (k, v) in keys {
                    base.insert(k.clone(), v.clone());
                }
            }
            spec.dialer = serde_yaml_ng::from_value(merged).map_err(invalid)?;
        } else {
            spec.dialer = defaults.clone();
        }
        if spec.id.trim().is_empty() || spec.id.len() > 64 {
            return Err(CampaignError::Invalid(
                "campaign YAML: `id` must be 1 to 64 characters".into(),
            ));
        }
        Ok(spec)
    }
}

/// A campaign's state and counters.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct CampaignView {
    pub campaign_id: String,
    pub state: String,
    pub queued: u64,
    pub dialing: u64,
    pub completed: u64,
    pub do_not_call_skipped: u64,
    pub exhausted: u64,
    pub outcomes: BTreeMap<String, u64>,
    pub live_calls: u32,
    pub agents_available: u32,
    pub abandoned_handoff_rate: f64,
}

/// How a placed call went, from the placer's side.
#[derive(Debug)]
pub enum Placed {
    /// The line was answered and the call ran to its end (stored by the session).
    Answered,
    /// Nobody picked up (stored as the attempt's outcome; there is no call record).
    NoAnswer,
    /// The line could not be dialed.
    Failed(String),
}

/// Dials a customer for a ticket and connects the answered line to a call session.
#[async_trait]
pub trait LinePlacer: Send + Sync {
    async fn place(&self, ticket: &DialTicket, setup: CallSetup) -> Placed;
}

/// Runs campaigns over one app and one line placer.
pub struct CampaignRunner {
    app: Arc<App>,
    dialer: Arc<CampaignDialer>,
    placer: Arc<dyn LinePlacer>,
    /// Seeds the calls' template variants and simulated callees.
    seed: u64,
    /// How long a human agent stays busy with a hand-off (the desk's lease is held that long).
    agent_handle: Duration,
    /// Live tickets by attempt id: the call's store completes them.
    tickets: Mutex<HashMap<String, DialTicket>>,
    /// Campaigns this runner created or opened, with their stop signal.
    campaigns: Mutex<HashMap<String, CancellationToken>>,
    /// The experiments of campaigns that declare one.
    experiments: Mutex<HashMap<String, Arc<Experiment>>>,
    /// What each live attempt's call plays, by attempt id (stored with the call).
    assignments: Mutex<HashMap<String, Assignment>>,
    live: AtomicUsize,
}

impl std::fmt::Debug for CampaignRunner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CampaignRunner").finish_non_exhaustive()
    }
}

/// Ties a call's end to its dial attempt (as the session's [`AttemptCompletion`]) and a
/// hand-off to the campaign's desk (as its [`AgentDesk`]). The runner is set once it exists.
#[derive(Default)]
pub struct DialerHooks {
    runner: std::sync::OnceLock<std::sync::Weak<CampaignRunner>>,
}

impl std::fmt::Debug for DialerHooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DialerHooks").finish_non_exhaustive()
    }
}

impl DialerHooks {
    /// Connects the hooks to the runner (once).
    pub fn attach(&self, runner: &Arc<CampaignRunner>) {
        let _ = self.runner.set(Arc::downgrade(runner));
    }

    fn runner(&self) -> Option<Arc<CampaignRunner>> {
        self.runner.get().and_then(std::sync::Weak::upgrade)
    }
}

#[async_trait]
impl AttemptCompletion for DialerHooks {
    async fn complete(
        &self,
        conn: &mut AnyConnection,
        call: &FinishedCall,
    ) -> Result<(), RetrievalError> {
        let (Some(attempt_id), Some(runner)) = (&call.setup.attempt_id, self.runner()) else {
            return Ok(());
        };
        let Some(ticket) = runner.take_ticket(attempt_id) else {
            tracing::warn!(call_id = %call.setup.call_id, "call names an attempt this runner does not hold");
            return Ok(());
        };
        let outcome = CallOutcome::parse(&call.outcome).unwrap_or(CallOutcome::Failed);
        let zone = runner
            .dialer
            .config(&ticket.campaign_id)
            .ok()
            .and_then(|c| CallingWindows::new(&c).ok())
            .map(|w| w.parse_zone_or_default(&ticket.time_zone));
        let callback_at = match (&call.state, zone) {
            (Some(state), Some(zone)) => state
                .callback
                .as_ref()
                .and_then(|t| callback_at_ms(t, zone, call.ended_at_ms)),
            _ => None,
        };
        let done = runner
            .dialer
            .attempt_done(&ticket, outcome, callback_at, call.ended_at_ms)
            .map_err(|e| RetrievalError::InvalidInput(e.to_string()))?;
        complete_attempt_in(conn, &done).await?;
        // The arms the call played, and the bandit's counts, in the call's transaction. A call
        // blocked before the greeting (do-not-call) heard no script: nothing to learn.
        if let Some(assignment) = runner.take_assignment(attempt_id) {
            if call.state.is_some() {
                let arms = assignment.call_arms(
                    &call.setup.call_id,
                    &call.setup.customer_id,
                    &ticket.campaign_id,
                    call.outcome == "converted",
                );
                record_call_arms_in(conn, &arms, call.ended_at_ms).await?;
            }
        }
        Ok(())
    }
}

#[async_trait]
impl AgentDesk for DialerHooks {
    async fn take_agent(&self, setup: &CallSetup, max_wait: Duration) -> bool {
        let Some(runner) = self.runner() else {
            return true;
        };
        let Ok(desk) = runner.dialer.desk(&setup.campaign_id) else {
            // Not a campaign call: nobody paces it.
            return true;
        };
        match desk.try_take(max_wait).await {
            Some(lease) => {
                // The agent stays busy with the customer for the handle time.
                let busy = runner.agent_handle;
                tokio::spawn(async move {
                    tokio::time::sleep(busy).await;
                    drop(lease);
                });
                true
            }
            None => false,
        }
    }
}

fn view_of(status: DialerStatus, live: usize) -> CampaignView {
    let c = &status.counts;
    CampaignView {
        campaign_id: status.campaign_id,
        state: status.state.as_str().to_string(),
        queued: c.pending.max(0) as u64,
        dialing: c.dialing.max(0) as u64,
        completed: c.done.max(0) as u64,
        do_not_call_skipped: c.do_not_call.max(0) as u64,
        exhausted: c.exhausted.max(0) as u64,
        outcomes: c
            .attempts_by_outcome
            .iter()
            .map(|(k, v)| (k.clone(), (*v).max(0) as u64))
            .collect(),
        live_calls: live as u32,
        agents_available: status.agents.saturating_sub(status.agents_busy) as u32,
        abandoned_handoff_rate: status.abandon_rate.unwrap_or(0.0),
    }
}

impl CampaignRunner {
    pub fn new(
        app: Arc<App>,
        dialer: Arc<CampaignDialer>,
        placer: Arc<dyn LinePlacer>,
        seed: u64,
        agent_handle: Duration,
    ) -> Self {
        Self {
            app,
            dialer,
            placer,
            seed,
            agent_handle,
            tickets: Mutex::new(HashMap::new()),
            campaigns: Mutex::new(HashMap::new()),
            experiments: Mutex::new(HashMap::new()),
            assignments: Mutex::new(HashMap::new()),
            live: AtomicUsize::new(0),
        }
    }

    pub fn dialer(&self) -> &Arc<CampaignDialer> {
        &self.dialer
    }

    fn take_ticket(&self, attempt_id: &str) -> Option<DialTicket> {
        self.tickets.lock().ok()?.remove(attempt_id)
    }

    fn take_assignment(&self, attempt_id: &str) -> Option<Assignment> {
        self.assignments.lock().ok()?.remove(attempt_id)
    }

    /// The script variants a live attempt's call plays (empty outside experiments): the gRPC
    /// edge passes them to the call session when the line names the attempt.
    pub fn variants_for(&self, attempt_id: &str) -> VariantChoice {
        self.assignments
            .lock()
            .ok()
            .and_then(|m| m.get(attempt_id).map(|a| a.variants.clone()))
            .unwrap_or_default()
    }

    /// The experiment of a campaign this runner runs, if it declares one.
    pub fn experiment(&self, campaign_id: &str) -> Option<Arc<Experiment>> {
        self.experiments.lock().ok()?.get(campaign_id).cloned()
    }

    /// Whether this runner runs `campaign_id`.
    pub fn knows(&self, campaign_id: &str) -> bool {
        self.campaigns
            .lock()
            .map(|m| m.contains_key(campaign_id))
            .unwrap_or(false)
    }

    fn token(&self, id: &str) -> anyhow::Result<CancellationToken> {
        self.campaigns
            .lock()
            .map_err(|_| anyhow::anyhow!("campaign table poisoned"))?
            .get(id)
            .cloned()
            .ok_or_else(|| CampaignError::NotFound(format!("campaign {id:?} not found")).into())
    }

    /// Human agents free to take hand-offs, for every campaign this runner runs.
    pub async fn set_agents(&self, agents: u32) -> anyhow::Result<u32> {
        let ids: Vec<String> = self
            .campaigns
            .lock()
            .map_err(|_| anyhow::anyhow!("campaign table poisoned"))?
            .keys()
            .cloned()
            .collect();
        for id in ids {
            self.dialer
                .set_agents(&id, agents as usize, now_ms())
                .await?;
        }
        Ok(agents)
    }

    /// Creates (or re-opens after a restart) a campaign from its YAML and a customer query (see
    /// the proto), enqueuing every matching customer (do-not-call ones are counted, not dialed).
    pub async fn create(&self, yaml: &str, query: &str) -> anyhow::Result<CampaignView> {
        let customers = select_customers(&self.app, query).await?;
        self.create_for(yaml, &customers).await
    }

    /// Creates (or re-opens) a campaign from its YAML for the given customers.
    pub async fn create_for(
        &self,
        yaml: &str,
        customers: &[String],
    ) -> anyhow::Result<CampaignView> {
        let spec = CampaignSpec::parse_over(yaml, &self.app.config.dialer)?;
        // The experiment is checked (script variants, model versions) before anything is opened.
        let experiment = match &spec.experiment {
            Some(x) => {
                let experiment = Experiment::new(
                    &spec.id,
                    x.clone(),
                    self.app.calls.manager.campaign(),
                    self.app.store.clone(),
                )?;
                let scorer = experiment.arm_scorer().await?;
                Some((Arc::new(experiment), scorer))
            }
            None => None,
        };
        self.dialer
            .open(&spec.id, Some(spec.dialer.clone()), now_ms())
            .await?;
        if let Some((experiment, scorer)) = experiment {
            if let Some(scorer) = scorer {
                self.dialer.set_scorer(&spec.id, Arc::new(scorer));
            }
            self.experiments
                .lock()
                .map_err(|_| anyhow::anyhow!("experiment table poisoned"))?
                .insert(spec.id.clone(), experiment);
        }
        self.dialer.enqueue(&spec.id, customers, now_ms()).await?;
        self.campaigns
            .lock()
            .map_err(|_| anyhow::anyhow!("campaign table poisoned"))?
            .entry(spec.id.clone())
            .or_default();
        self.status(&spec.id).await
    }

    /// Starts dialing in the background.
    pub async fn start(self: &Arc<Self>, id: &str) -> anyhow::Result<CampaignView> {
        let cancel = self.token(id)?;
        self.dialer.resume(id, now_ms()).await?;
        let (this, id2) = (self.clone(), id.to_string());
        tokio::spawn(async move {
            if let Err(e) = this.dial_loop(&id2, cancel, false).await {
                tracing::error!(campaign_id = %id2, error = %format!("{e:#}"), "campaign stopped on an error");
            }
        });
        self.status(id).await
    }

    pub async fn pause(&self, id: &str) -> anyhow::Result<CampaignView> {
        self.token(id)?;
        self.dialer.pause(id, now_ms()).await?;
        self.status(id).await
    }

    pub async fn resume(&self, id: &str) -> anyhow::Result<CampaignView> {
        self.token(id)?;
        self.dialer.resume(id, now_ms()).await?;
        self.status(id).await
    }

    /// Stops placing new calls for good; calls in progress finish and are stored.
    pub async fn stop(&self, id: &str) -> anyhow::Result<CampaignView> {
        self.token(id)?.cancel();
        self.dialer.stop(id, now_ms()).await?;
        self.status(id).await
    }

    pub async fn status(&self, id: &str) -> anyhow::Result<CampaignView> {
        self.token(id)?;
        let status = self.dialer.status(id).await?;
        Ok(view_of(status, self.live.load(Ordering::SeqCst)))
    }

    /// Runs a created campaign to its end (everyone done, or `stop`), placing calls on up to
    /// the dialer's lines at once; returns when the last call has ended.
    pub async fn run_to_end(self: &Arc<Self>, id: &str) -> anyhow::Result<CampaignView> {
        let cancel = self.token(id)?;
        self.dial_loop(id, cancel, true).await?;
        self.status(id).await
    }

    /// Places calls until the campaign finishes or is stopped; with `until_idle`, also returns
    /// once no call is live and nobody is due before later (booked callbacks, back-offs).
    async fn dial_loop(
        self: &Arc<Self>,
        id: &str,
        cancel: CancellationToken,
        until_idle: bool,
    ) -> anyhow::Result<()> {
        let poll = Duration::from_millis(200);
        let mut calls = tokio::task::JoinSet::new();
        loop {
            while calls.try_join_next().is_some() {}
            let live = self.live.load(Ordering::SeqCst);
            self.app.metrics.set_live_lines(live);
            if cancel.is_cancelled() {
                break;
            }
            let ticket = match self.dialer.next_call(id, now_ms(), live).await? {
                NextCall::Dial(t) => t,
                NextCall::Finished(_) => break,
                NextCall::Wait(reason) => {
                    let wait = match reason {
                        WaitReason::NothingDue { .. } if live == 0 && until_idle => break,
                        WaitReason::NothingDue {
                            next_due_at_ms: Some(at),
                        } if live == 0 => {
                            Duration::from_millis((at - now_ms()).clamp(10, 60_000) as u64)
                        }
                        _ => poll,
                    };
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = cancel.cancelled() => break,
                        Some(_) = calls.join_next(), if !calls.is_empty() => {}
                    }
                    continue;
                }
            };
            let profile = self.app.store.profile(&ticket.customer_id).await?;
            let language = profile.map_or(retrieval::Language::En, |p| p.language);
            let mut h = self.seed;
            for b in ticket
                .customer_id
                .bytes()
                .chain(ticket.attempt_no.to_le_bytes())
            {
                h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
            }
            let assignment = match self.experiment(id) {
                Some(x) => Some(x.assign(&ticket.customer_id, &ticket.segment).await?),
                None => None,
            };
            let setup = CallSetup {
                call_id: ticket.call_id.clone(),
                attempt_id: Some(ticket.attempt_id.clone()),
                campaign_id: ticket.campaign_id.clone(),
                customer_id: ticket.customer_id.clone(),
                language,
                seed: h,
                variants: assignment
                    .as_ref()
                    .map(|a| a.variants.clone())
                    .unwrap_or_default(),
            };
            if let Ok(mut t) = self.tickets.lock() {
                t.insert(ticket.attempt_id.clone(), ticket.clone());
            }
            if let (Some(a), Ok(mut m)) = (assignment, self.assignments.lock()) {
                m.insert(ticket.attempt_id.clone(), a);
            }
            self.live.fetch_add(1, Ordering::SeqCst);
            let this = self.clone();
            calls.spawn(async move {
                let placed = this.placer.place(&ticket, setup).await;
                let unanswered = match placed {
                    Placed::Answered => None,
                    Placed::NoAnswer => Some(CallOutcome::NoAnswer),
                    Placed::Failed(why) => {
                        tracing::warn!(call_id = %ticket.call_id, why, "call not placed");
                        Some(CallOutcome::Failed)
                    }
                };
                if let Some(outcome) = unanswered {
                    // No call record: the attempt alone is completed; no arm is stored or
                    // learned from (nobody heard the script).
                    this.take_assignment(&ticket.attempt_id);
                    if this.take_ticket(&ticket.attempt_id).is_some() {
                        let done = this.dialer.attempt_done(&ticket, outcome, None, now_ms());
                        let stored = match done {
                            Ok(d) => this.app.store.complete_attempt(&d).await.map_err(anyhow::Error::from),
                            Err(e) => Err(e.into()),
                        };
                        if let Err(e) = stored {
                            tracing::error!(call_id = %ticket.call_id, error = %e, "attempt not completed");
                        }
                    }
                }
                this.live.fetch_sub(1, Ordering::SeqCst);
            });
        }
        while calls.join_next().await.is_some() {}
        Ok(())
    }
}

/// The customers a query selects: empty = all; otherwise `key=value` terms joined by ` and `
/// over `language`, `segment`, `region`.
pub async fn select_customers(app: &App, query: &str) -> anyhow::Result<Vec<String>> {
    let mut terms = Vec::new();
    for term in query
        .split(" and ")
        .map(str::trim)
        .filter(|t| !t.is_empty())
    {
        let (k, v) = term.split_once('=').ok_or_else(|| {
            CampaignError::Invalid(format!(
                "customer query term {term:?}: write key=value (language, segment, region)"
            ))
        })?;
        let column = match k.trim() {
            "language" => "c.language",
            "segment" => "p.segment",
            "region" => "p.region",
            other => {
                return Err(CampaignError::Invalid(format!(
                    "customer query key {other:?}: use language, segment or region"
                ))
                .into())
            }
        };
        terms.push((column, v.trim().to_string()));
    }
    let mut sql =
        "SELECT c.id FROM customers c LEFT JOIN profiles p ON p.customer_id = c.id WHERE 1 = 1"
            .to_string();
    for (i, (column, _)) in terms.iter().enumerate() {
        sql.push_str(&format!(" AND {column} = ${}", i + 1));
    }
    sql.push_str(" ORDER BY c.id");
    let mut q = sqlx::query_scalar::<_, String>(&sql);
    for (_, v) in &terms {
        q = q.bind(v.clone());
    }
    Ok(q.fetch_all(app.store.pool()).await?)
}

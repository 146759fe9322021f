//! The campaign dialer: who to call next, when, and on how many lines. Its state is in the
//! database (`retrieval::store`'s dial queue and attempts), so a dialer killed mid-campaign
//! resumes without calling anyone twice; the policy (scores, windows, caps, pacing) is here.
//!
//! A dial goes: [`CampaignDialer::next_call`] picks the best due customer inside their calling
//! window, checks consent and the frequency caps, and claims the row — the attempt is stored
//! as `dialing` before the ticket is returned. The call session places the call, hands off
//! through the campaign's [`HandOffDesk`] if the dialogue asks for a human, and when the call
//! ends turns the outcome into an [`AttemptDone`] with [`CampaignDialer::attempt_done`] and
//! stores it with [`complete_attempt_in`](retrieval::store::complete_attempt_in) in the
//! transaction that stores the call record.
//!
//! Several processes may later share a campaign on PostgreSQL: claims are single conditional
//! updates, live rows carry a lease (owner and expiry, renewed by `next_call`), and
//! [`CampaignDialer::recover`] takes back the attempts of a dialer whose lease ran out.

pub mod config;
pub mod outcome;
pub mod pacing;
pub mod score;
pub mod window;

pub use config::{DialerConfig, WindowRule};
pub use outcome::{queue_update, CallOutcome};
pub use pacing::{call_fits, handoff_blocked_chance, AgentLease, HandOffDesk, PacingStats};
pub use score::{BaselineScorer, ModelScorer, Scorer};
pub use window::{callback_at_ms, local_day_bounds, CallingWindows};

use retrieval::store::{
    AttemptDone, DialCandidate, DialClaim, DialCounts, QueueEntry, QueueStatus,
};
use retrieval::{RetrievalError, SqlStore};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// Due rows read per look-up (callbacks and fresh candidates each).
const CANDIDATES_PER_READ: i64 = 16;
/// Look-ups per `next_call` before it reports that nothing is due (each one defers or skips
/// every candidate it cannot dial, so the next look-up sees other rows).
const READS_PER_CALL: usize = 4;
const DAY_MS: i64 = 86_400_000;

/// Errors of the dialer.
#[derive(Debug, thiserror::Error)]
pub enum DialerError {
    #[error("dialer store: {0}")]
    Store(#[from] RetrievalError),
    #[error("dialer configuration: {0}")]
    Config(String),
    #[error("campaign {0} is not open in this dialer: call CampaignDialer::open first")]
    NotOpen(String),
    #[error("campaign {campaign} has a stored dialer configuration that does not parse ({source}): start it again with a configuration")]
    StoredConfig {
        campaign: String,
        source: serde_json::Error,
    },
    #[error("campaign {0} was stopped: a stopped campaign is not dialed again")]
    Stopped(String),
}

/// Where a campaign's dialing stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    Running,
    /// No new calls until resumed; live calls finish.
    Paused,
    /// No new calls, for good.
    Stopped,
    /// Nobody is left to call (enqueueing more customers runs it again).
    Done,
}

impl RunState {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Running => "running",
            RunState::Paused => "paused",
            RunState::Stopped => "stopped",
            RunState::Done => "done",
        }
    }

    /// Parses the stored spelling.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "running" => RunState::Running,
            "paused" => RunState::Paused,
            "stopped" => RunState::Stopped,
            "done" => RunState::Done,
            _ => return None,
        })
    }
}

/// A claimed dial: the attempt is already stored as `dialing` under `attempt_id`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DialTicket {
    pub campaign_id: String,
    pub attempt_id: String,
    /// The id the call record must be stored under.
    pub call_id: String,
    pub customer_id: String,
    pub segment: String,
    pub score: f64,
    /// 1 for the customer's first dial in this campaign.
    pub attempt_no: i64,
    /// Callbacks booked for this customer so far in this campaign.
    pub callbacks: i64,
    /// The dial honours a callback the customer booked.
    pub callback: bool,
    /// The customer's IANA zone (for reading a booked callback time, see [`callback_at_ms`]).
    pub time_zone: String,
    pub started_at_ms: i64,
}

/// Why [`CampaignDialer::next_call`] has no call to place now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WaitReason {
    /// The campaign is paused.
    Paused,
    /// Every line is in use.
    LinesFull,
    /// Hand-off pacing: one more call could bring a hand-off no agent is free for.
    AgentsBusy,
    /// Nobody is due inside their calling window; `next_due_at_ms` is the earliest time a
    /// queued customer may be due (window openings are found when it comes).
    NothingDue { next_due_at_ms: Option<i64> },
}

/// What [`CampaignDialer::next_call`] decided.
#[derive(Debug, Clone, PartialEq)]
pub enum NextCall {
    /// Place this call.
    Dial(DialTicket),
    /// Ask again later (when a call ends, an agent frees, or the due time comes).
    Wait(WaitReason),
    /// The campaign will place no more calls (`Stopped`, or `Done` with nobody left).
    Finished(RunState),
}

/// What [`CampaignDialer::enqueue`] did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EnqueueReport {
    /// Customers added to the queue as callable.
    pub queued: u64,
    /// Customers added but marked do-not-call (opted out before the campaign).
    pub do_not_call: u64,
    /// Customers already in the queue, left as they were.
    pub already_queued: u64,
    /// Ids with no customer profile: not queued.
    pub unknown: Vec<String>,
}

/// A campaign's dialing for the status API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DialerStatus {
    pub campaign_id: String,
    pub state: RunState,
    /// Queue and attempts counted (pending = queued, dialing, done by outcome, do-not-call
    /// skipped, exhausted).
    pub counts: DialCounts,
    pub agents: usize,
    pub agents_busy: usize,
    /// Learned share of calls that ask for a human.
    pub handoff_estimate: f64,
    /// Abandoned hand-offs over hand-offs asked for (`None` before the first).
    pub abandon_rate: Option<f64>,
    /// The pacing rule's target share of abandoned hand-offs now (shrinks as the measured
    /// rate nears the cap).
    pub pacing_target: f64,
    /// The scorer ranking the queue.
    pub scorer: String,
}

/// One open campaign in memory.
#[derive(Debug)]
struct Run {
    config: DialerConfig,
    windows: CallingWindows,
    desk: HandOffDesk,
    state: Mutex<RunState>,
    stats: Mutex<PacingStats>,
    last_renewal_ms: AtomicI64,
}

impl Run {
    fn state(&self) -> RunState {
        *self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn set_state(&self, state: RunState) {
        *self.state.lock().unwrap_or_else(PoisonError::into_inner) = state;
    }

    fn stats(&self) -> PacingStats {
        *self.stats.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn lease_ms(&self) -> i64 {
        i64::from(self.config.lease_minutes.max(1)) * 60_000
    }
}

/// The campaign dialer over the SQL store. One per process; it serves any number of
/// campaigns, each opened with [`open`](Self::open). Every method takes the time as `now_ms`
/// (milliseconds since the Unix epoch; see [`now_ms`]), so tests and simulations move time
/// themselves.
pub struct CampaignDialer {
    store: SqlStore,
    defaults: DialerConfig,
    scorer: Arc<dyn Scorer>,
    /// Campaigns scored otherwise than by `scorer` (an A/B experiment between two models).
    campaign_scorers: Mutex<HashMap<String, Arc<dyn Scorer>>>,
    runs: Mutex<HashMap<String, Arc<Run>>>,
}

impl std::fmt::Debug for CampaignDialer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CampaignDialer")
            .field("defaults", &self.defaults)
            .field("scorer", &self.scorer.name())
            .finish_non_exhaustive()
    }
}

/// The wall clock in milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

impl CampaignDialer {
    /// A dialer over `store`; `defaults` is the configuration of campaigns opened without one
    /// (checked here).
    pub fn new(
        store: SqlStore,
        defaults: DialerConfig,
        scorer: Arc<dyn Scorer>,
    ) -> Result<Self, DialerError> {
        CallingWindows::new(&defaults)?;
        Ok(Self {
            store,
            defaults,
            scorer,
            campaign_scorers: Mutex::new(HashMap::new()),
            runs: Mutex::new(HashMap::new()),
        })
    }

    /// The store the dialer writes to.
    pub fn store(&self) -> &SqlStore {
        &self.store
    }

    /// Opens a campaign for dialing: creates its run row (`running`) the first time, or picks
    /// up the stored one after a restart (its state, agents and configuration; `config`, when
    /// given, replaces the stored configuration). Then recovers the attempts a previous run of
    /// this dialer left live (see [`recover`](Self::recover)). Returns how many it recovered.
    pub async fn open(
        &self,
        campaign_id: &str,
        config: Option<DialerConfig>,
        now_ms: i64,
    ) -> Result<usize, DialerError> {
        if let Some(c) = &config {
            CallingWindows::new(c)?;
        }
        let to_json = |c: &DialerConfig| {
            serde_json::to_string(c).map_err(|e| DialerError::Config(e.to_string()))
        };
        let given = config.as_ref().map(to_json).transpose()?;
        let fallback = to_json(&self.defaults)?;
        let agents = i64::from(config.as_ref().unwrap_or(&self.defaults).agents);
        let row = self
            .store
            .open_dial_run(campaign_id, given.as_deref(), &fallback, agents, now_ms)
            .await?;
        let config: DialerConfig =
            serde_json::from_str(&row.config).map_err(|source| DialerError::StoredConfig {
                campaign: campaign_id.to_string(),
                source,
            })?;
        let windows = CallingWindows::new(&config)?;
        let state = RunState::parse(&row.state).unwrap_or(RunState::Running);
        let counts = self.store.dial_counts(campaign_id).await?;
        let count = |o: CallOutcome| {
            counts
                .attempts_by_outcome
                .get(o.as_str())
                .copied()
                .unwrap_or(0)
                .max(0) as u64
        };
        let stats = PacingStats {
            calls: counts.attempts_by_outcome.values().sum::<i64>().max(0) as u64,
            handed_off: count(CallOutcome::HandedOff),
            abandoned: count(CallOutcome::AbandonedHandoff),
        };
        let run = Arc::new(Run {
            desk: HandOffDesk::new(usize::try_from(row.agents.max(0)).unwrap_or(0)),
            config,
            windows,
            state: Mutex::new(state),
            stats: Mutex::new(stats),
            last_renewal_ms: AtomicI64::new(now_ms),
        });
        self.runs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(campaign_id.to_string(), run);
        self.recover(campaign_id, now_ms).await
    }

    fn run(&self, campaign_id: &str) -> Result<Arc<Run>, DialerError> {
        self.runs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(campaign_id)
            .cloned()
            .ok_or_else(|| DialerError::NotOpen(campaign_id.to_string()))
    }

    /// The configuration an open campaign runs with.
    pub fn config(&self, campaign_id: &str) -> Result<DialerConfig, DialerError> {
        Ok(self.run(campaign_id)?.config.clone())
    }

    /// The desk of agents taking an open campaign's hand-offs (the call session asks it for an
    /// agent with [`HandOffDesk::try_take`], waiting at most `handoff_max_wait_ms`).
    pub fn desk(&self, campaign_id: &str) -> Result<HandOffDesk, DialerError> {
        Ok(self.run(campaign_id)?.desk.clone())
    }

    /// Scores `campaign_id`'s customers with `scorer` instead of the dialer's own from now on
    /// (customers already queued keep their score).
    pub fn set_scorer(&self, campaign_id: &str, scorer: Arc<dyn Scorer>) {
        self.campaign_scorers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(campaign_id.to_string(), scorer);
    }

    fn scorer_for(&self, campaign_id: &str) -> Arc<dyn Scorer> {
        self.campaign_scorers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(campaign_id)
            .cloned()
            .unwrap_or_else(|| self.scorer.clone())
    }

    /// Scores and queues customers (idempotent: a customer already queued is left as is).
    /// Customers who opted out are queued as `do_not_call`, so the status counts them; ids
    /// without a profile are reported, not queued.
    pub async fn enqueue<S: AsRef<str>>(
        &self,
        campaign_id: &str,
        customer_ids: &[S],
        now_ms: i64,
    ) -> Result<EnqueueReport, DialerError> {
        let run = self.run(campaign_id)?;
        let scorer = self.scorer_for(campaign_id);
        let mut report = EnqueueReport::default();
        let mut entries = Vec::with_capacity(customer_ids.len());
        for id in customer_ids {
            let id = id.as_ref();
            let Some(profile) = self.store.profile(id).await? else {
                report.unknown.push(id.to_string());
                continue;
            };
            let zone = run.windows.zone_of(profile.region.as_deref());
            entries.push(QueueEntry {
                customer_id: id.to_string(),
                segment: scorer.segment(&profile),
                score: scorer.score(&profile, now_ms),
                time_zone: zone.name().to_string(),
                region: profile.region.clone(),
                status: if profile.do_not_call {
                    QueueStatus::DoNotCall
                } else {
                    QueueStatus::Pending
                },
            });
        }
        let mut added = 0;
        // Callable and do-not-call rows go in as two batches, so each is counted.
        for status in [QueueStatus::Pending, QueueStatus::DoNotCall] {
            let part: Vec<QueueEntry> = entries
                .iter()
                .filter(|e| e.status == status)
                .cloned()
                .collect();
            let n = self.store.enqueue_dials(campaign_id, &part, now_ms).await?;
            added += n;
            match status {
                QueueStatus::Pending => report.queued = n,
                _ => report.do_not_call = n,
            }
        }
        report.already_queued = entries.len() as u64 - added;
        if report.queued > 0 && run.state() == RunState::Done {
            self.set_state(campaign_id, &run, RunState::Running, now_ms)
                .await?;
        }
        Ok(report)
    }

    /// The next call to place for a campaign with `live_calls` bot calls live (placed, not yet
    /// ended or handed to an agent), or why there is none now.
    ///
    /// In order: the campaign must be running; a line must be free (`max_lines`); hand-off
    /// pacing must allow one more call ([`pacing`]); then due booked callbacks come first
    /// (earliest booking first), then the other due customers by score. A candidate is skipped
    /// (`do_not_call`) if their consent now says so or they were erased; deferred to the next
    /// opening if outside their calling window; deferred to the next local day if they have
    /// had `max_attempts_per_day` dials today in any campaign, or to the end of the cooldown
    /// after a refusal in any campaign (callbacks are exempt from both caps). The first
    /// candidate left is claimed — its attempt stored as `dialing` — and returned. Also renews
    /// this dialer's leases on live attempts.
    pub async fn next_call(
        &self,
        campaign_id: &str,
        now_ms: i64,
        live_calls: usize,
    ) -> Result<NextCall, DialerError> {
        let run = self.run(campaign_id)?;
        self.renew_leases(campaign_id, &run, now_ms).await?;
        match run.state() {
            RunState::Running => {}
            RunState::Paused => return Ok(NextCall::Wait(WaitReason::Paused)),
            s @ (RunState::Stopped | RunState::Done) => return Ok(NextCall::Finished(s)),
        }
        if live_calls >= run.config.max_lines {
            return Ok(NextCall::Wait(WaitReason::LinesFull));
        }
        let stats = run.stats();
        let c = &run.config;
        let p = stats.handoff_estimate(c.handoff_prior, c.handoff_prior_weight);
        let target = stats.target(c.abandon_cap, c.pacing_headroom);
        if !call_fits(live_calls, run.desk.free(), p, target) {
            return Ok(NextCall::Wait(WaitReason::AgentsBusy));
        }
        for _ in 0..READS_PER_CALL {
            let candidates = self
                .store
                .dial_candidates(campaign_id, now_ms, CANDIDATES_PER_READ)
                .await?;
            if candidates.is_empty() {
                break;
            }
            let ids: Vec<String> = candidates.iter().map(|c| c.customer_id.clone()).collect();
            let lookback = i64::from(c.refusal_cooldown_days.max(1)) * DAY_MS + DAY_MS;
            let recent = self
                .store
                .recent_dial_attempts(&ids, now_ms - lookback)
                .await?;
            for cand in &candidates {
                if let Some(ticket) = self
                    .try_candidate(campaign_id, &run, cand, &recent, now_ms)
                    .await?
                {
                    return Ok(NextCall::Dial(ticket));
                }
            }
        }
        let backlog = self.store.dial_backlog(campaign_id).await?;
        if backlog.pending == 0 && backlog.dialing == 0 {
            self.set_state(campaign_id, &run, RunState::Done, now_ms)
                .await?;
            return Ok(NextCall::Finished(RunState::Done));
        }
        Ok(NextCall::Wait(WaitReason::NothingDue {
            next_due_at_ms: backlog.next_due_at_ms,
        }))
    }

    /// Skips, defers or claims one candidate; `Some` if claimed.
    async fn try_candidate(
        &self,
        campaign_id: &str,
        run: &Run,
        cand: &DialCandidate,
        recent: &[retrieval::store::DialAttempt],
        now_ms: i64,
    ) -> Result<Option<DialTicket>, DialerError> {
        let store = &self.store;
        let id = cand.customer_id.as_str();
        let skip = async |reason: &str| {
            store
                .skip_dial(
                    campaign_id,
                    id,
                    cand.attempts,
                    QueueStatus::DoNotCall,
                    reason,
                )
                .await
        };
        if !cand.customer_exists {
            skip("erased").await?;
            return Ok(None);
        }
        if cand.do_not_call {
            tracing::info!(campaign_id, "customer opted out since enqueue; not dialed");
            skip(CallOutcome::DoNotCall.as_str()).await?;
            return Ok(None);
        }
        let zone = run.windows.parse_zone_or_default(&cand.time_zone);
        let region = cand.region.as_deref();
        let mut due = now_ms;
        if cand.callback_at_ms.is_none() {
            let mine = recent.iter().filter(|a| a.customer_id == id);
            if let Some((day_start, next_day)) = local_day_bounds(zone, now_ms) {
                let today = mine
                    .clone()
                    .filter(|a| a.started_at_ms >= day_start)
                    .count();
                if today >= run.config.max_attempts_per_day.max(1) as usize {
                    due = due.max(next_day);
                }
            }
            let cooldown = i64::from(run.config.refusal_cooldown_days) * DAY_MS;
            if let Some(refused_at) = mine
                .filter(|a| a.outcome.as_deref() == Some(CallOutcome::Refused.as_str()))
                .map(|a| a.ended_at_ms.unwrap_or(a.started_at_ms))
                .max()
            {
                due = due.max(refused_at + cooldown);
            }
        }
        let opening = run.windows.next_opening(zone, region, due);
        match opening {
            Some(t) if t == now_ms => {}
            // Never open (every day closed): look again in a week.
            None => {
                store
                    .defer_dial(campaign_id, id, cand.attempts, now_ms + 7 * DAY_MS)
                    .await?;
                return Ok(None);
            }
            Some(t) => {
                store.defer_dial(campaign_id, id, cand.attempts, t).await?;
                return Ok(None);
            }
        }
        let ticket = DialTicket {
            campaign_id: campaign_id.to_string(),
            attempt_id: format!("att-{:032x}", rand::random::<u128>()),
            call_id: format!("call-{:032x}", rand::random::<u128>()),
            customer_id: id.to_string(),
            segment: cand.segment.clone(),
            score: cand.score,
            attempt_no: cand.attempts + 1,
            callbacks: cand.callbacks,
            callback: cand.callback_at_ms.is_some(),
            time_zone: zone.name().to_string(),
            started_at_ms: now_ms,
        };
        let claim = DialClaim {
            attempt_id: ticket.attempt_id.clone(),
            call_id: ticket.call_id.clone(),
            campaign_id: campaign_id.to_string(),
            customer_id: id.to_string(),
            attempts: cand.attempts,
            owner: run.config.instance_id.clone(),
            now_ms,
            lease_until_ms: now_ms + run.lease_ms(),
            callback: ticket.callback,
        };
        Ok(store.claim_dial(&claim).await?.then_some(ticket))
    }

    /// The completion of a ticket's attempt: the outcome, and what the customer's queue row
    /// becomes by the policy of [`queue_update`]. Store it with
    /// [`complete_attempt_in`](retrieval::store::complete_attempt_in) in the transaction that
    /// stores the call record (or [`SqlStore::complete_attempt`] when there is none).
    /// `callback_at_ms` is the booked callback time (see [`callback_at_ms`]); without one a
    /// callback is due `callback_default_minutes` later. Also teaches hand-off pacing the
    /// outcome.
    pub fn attempt_done(
        &self,
        ticket: &DialTicket,
        outcome: CallOutcome,
        callback_at_ms: Option<i64>,
        ended_at_ms: i64,
    ) -> Result<AttemptDone, DialerError> {
        let run = self.run(&ticket.campaign_id)?;
        let callback_at_ms = callback_at_ms.filter(|_| outcome == CallOutcome::Callback);
        let queue = queue_update(
            &run.config,
            ticket.attempt_no,
            ticket.callbacks,
            outcome,
            callback_at_ms,
            ended_at_ms,
        );
        learn(&run, outcome);
        Ok(AttemptDone {
            attempt_id: ticket.attempt_id.clone(),
            campaign_id: ticket.campaign_id.clone(),
            customer_id: ticket.customer_id.clone(),
            attempt_no: ticket.attempt_no,
            call_id: ticket.call_id.clone(),
            ended_at_ms,
            outcome: outcome.as_str().to_string(),
            callback_at_ms,
            queue,
        })
    }

    /// Takes back the live attempts of a campaign that this dialer (by `instance_id`) left
    /// behind when it died, or that another dialer held past its lease: each is marked
    /// `interrupted` — it counts as an attempt — and its customer waits for the back-off (or
    /// is out of attempts), so nobody is dialed twice in a row. Returns how many.
    pub async fn recover(&self, campaign_id: &str, now_ms: i64) -> Result<usize, DialerError> {
        let run = self.run(campaign_id)?;
        let owner = run.config.instance_id.as_str();
        let mut recovered = 0;
        for leased in self.store.leased_dials(campaign_id, owner, now_ms).await? {
            let update = queue_update(
                &run.config,
                leased.attempts,
                leased.callbacks,
                CallOutcome::Interrupted,
                None,
                now_ms,
            );
            if self
                .store
                .interrupt_dial(campaign_id, &leased, owner, &update, now_ms)
                .await?
            {
                learn(&run, CallOutcome::Interrupted);
                recovered += 1;
            }
        }
        if recovered > 0 {
            tracing::warn!(
                campaign_id,
                recovered,
                "live dial attempts recovered as interrupted"
            );
        }
        Ok(recovered)
    }

    async fn renew_leases(
        &self,
        campaign_id: &str,
        run: &Run,
        now_ms: i64,
    ) -> Result<(), DialerError> {
        let lease = run.lease_ms();
        if now_ms - run.last_renewal_ms.load(Ordering::Acquire) < lease / 4 {
            return Ok(());
        }
        run.last_renewal_ms.store(now_ms, Ordering::Release);
        self.store
            .renew_dial_leases(
                campaign_id,
                &run.config.instance_id,
                now_ms + lease,
                now_ms + lease / 2,
            )
            .await?;
        Ok(())
    }

    async fn set_state(
        &self,
        campaign_id: &str,
        run: &Run,
        state: RunState,
        now_ms: i64,
    ) -> Result<(), DialerError> {
        self.store
            .set_dial_state(campaign_id, state.as_str(), now_ms)
            .await?;
        run.set_state(state);
        Ok(())
    }

    /// Stops placing new calls for a campaign until [`resume`](Self::resume); live calls go on.
    pub async fn pause(&self, campaign_id: &str, now_ms: i64) -> Result<(), DialerError> {
        let run = self.run(campaign_id)?;
        if run.state() == RunState::Stopped {
            return Err(DialerError::Stopped(campaign_id.to_string()));
        }
        self.set_state(campaign_id, &run, RunState::Paused, now_ms)
            .await
    }

    /// Places calls again for a paused campaign.
    pub async fn resume(&self, campaign_id: &str, now_ms: i64) -> Result<(), DialerError> {
        let run = self.run(campaign_id)?;
        if run.state() == RunState::Stopped {
            return Err(DialerError::Stopped(campaign_id.to_string()));
        }
        self.set_state(campaign_id, &run, RunState::Running, now_ms)
            .await
    }

    /// Ends a campaign's dialing for good; live calls finish and are recorded.
    pub async fn stop(&self, campaign_id: &str, now_ms: i64) -> Result<(), DialerError> {
        let run = self.run(campaign_id)?;
        self.set_state(campaign_id, &run, RunState::Stopped, now_ms)
            .await
    }

    /// Sets the number of agents taking a campaign's hand-offs (stored, and applied to the
    /// live desk at once).
    pub async fn set_agents(
        &self,
        campaign_id: &str,
        agents: usize,
        now_ms: i64,
    ) -> Result<(), DialerError> {
        let run = self.run(campaign_id)?;
        let stored = i64::try_from(agents)
            .map_err(|_| DialerError::Config(format!("{agents} agents is not a count")))?;
        self.store
            .set_dial_agents(campaign_id, stored, now_ms)
            .await?;
        run.desk.set_agents(agents);
        Ok(())
    }

    /// The campaign's state, queue and attempt counters, and pacing figures.
    pub async fn status(&self, campaign_id: &str) -> Result<DialerStatus, DialerError> {
        let run = self.run(campaign_id)?;
        let counts = self.store.dial_counts(campaign_id).await?;
        let stats = run.stats();
        let c = &run.config;
        Ok(DialerStatus {
            campaign_id: campaign_id.to_string(),
            state: run.state(),
            counts,
            agents: run.desk.agents(),
            agents_busy: run.desk.busy(),
            handoff_estimate: stats.handoff_estimate(c.handoff_prior, c.handoff_prior_weight),
            abandon_rate: stats.abandon_rate(),
            pacing_target: stats.target(c.abandon_cap, c.pacing_headroom),
            scorer: self.scorer.name().to_string(),
        })
    }
}

fn learn(run: &Run, outcome: CallOutcome) {
    let mut stats = run.stats.lock().unwrap_or_else(PoisonError::into_inner);
    stats.calls += 1;
    match outcome {
        CallOutcome::HandedOff => stats.handed_off += 1,
        CallOutcome::AbandonedHandoff => stats.abandoned += 1,
        _ => {}
    }
}

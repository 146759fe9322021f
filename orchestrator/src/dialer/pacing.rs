//! Hand-off pacing: the desk of human agents a call is handed to ([`HandOffDesk`]), and the rule
//! that keeps the live calls few enough that a hand-off finds a free agent.
//!
//! **The rule.** Let `F` be the free agents (agents − busy − hand-offs waiting), `p` the share
//! of placed calls that ask for a human, and `L` the live bot calls. A new call's hand-off, if
//! it comes, is abandoned when the other live calls' hand-offs have taken all `F` agents first
//! — an agent who takes a hand-off is usually busy for longer than the other calls have left,
//! so the rule counts on none freeing up. Those hand-offs are D ~ Binomial(L, p), so the call is
//! placed only if
//!
//! ```text
//! P(D ≥ F)  ≤  target = abandon_cap × pacing_headroom / (1 + 2·max(0, r/cap − ½))
//! ```
//!
//! `P(D ≥ F)` is also exactly what the call adds to the expected number of abandoned
//! hand-offs, per hand-off it brings (`E[(D + 1 − F)⁺] − E[(D − F)⁺] = P(D ≥ F)`), so every
//! call placed keeps the running abandon rate under the target as far as the model holds.
//! `p` is learned from the campaign's outcomes, starting from the configured prior:
//! `p = (prior·w + asked) / (w + calls)`. `r = abandoned / max(asked, 20)` is the measured
//! abandon rate (over at least 20 hand-offs, so a few early abandons already weigh): below half
//! the cap the target is `cap × headroom`; beyond it the target shrinks, so the dialer
//! throttles harder the nearer it runs to the cap. With a free agent for every live call
//! nothing can be abandoned and the call is always placed; with none free, none is. Agents
//! freed by finished hand-offs reopen lines.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Hand-offs counted before the measured abandon rate is taken at face value.
const MIN_HANDOFF_SAMPLE: f64 = 20.0;
/// How fast the target shrinks once the measured abandon rate passes half the cap.
const THROTTLE_GAIN: f64 = 2.0;

/// The human agents taking a campaign's hand-offs. A call session that hands off asks the desk
/// for an agent with [`try_take`](Self::try_take) and keeps the [`AgentLease`] for as long as
/// the agent is on the call.
#[derive(Debug, Clone)]
pub struct HandOffDesk {
    inner: Arc<DeskInner>,
}

#[derive(Debug)]
struct DeskInner {
    free: Arc<Semaphore>,
    /// Agents configured, and agents removed while busy (their lease ends the seat).
    seats: Mutex<Seats>,
    busy: AtomicUsize,
    waiting: AtomicUsize,
}

#[derive(Debug, Default)]
struct Seats {
    agents: usize,
    to_remove: usize,
}

/// One agent on a handed-off call; dropping it frees the agent.
#[derive(Debug)]
pub struct AgentLease {
    permit: Option<OwnedSemaphorePermit>,
    desk: Arc<DeskInner>,
}

impl Drop for AgentLease {
    fn drop(&mut self) {
        self.desk.busy.fetch_sub(1, Ordering::AcqRel);
        let mut seats = self
            .desk
            .seats
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(permit) = self.permit.take() {
            if seats.to_remove > 0 {
                seats.to_remove -= 1;
                permit.forget();
            }
        }
    }
}

/// Counts the waiting hand-offs while one waits.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl HandOffDesk {
    /// A desk of `agents` free agents.
    pub fn new(agents: usize) -> Self {
        Self {
            inner: Arc::new(DeskInner {
                free: Arc::new(Semaphore::new(agents)),
                seats: Mutex::new(Seats {
                    agents,
                    to_remove: 0,
                }),
                busy: AtomicUsize::new(0),
                waiting: AtomicUsize::new(0),
            }),
        }
    }

    /// An agent for a hand-off, waiting at most `max_wait` for one to come free (first come,
    /// first served). `None` means the hand-off is abandoned: the caller ends the call as
    /// `abandoned_handoff`, which the dialer counts against the cap.
    pub async fn try_take(&self, max_wait: Duration) -> Option<AgentLease> {
        if let Some(lease) = self.try_take_now() {
            return Some(lease);
        }
        self.inner.waiting.fetch_add(1, Ordering::AcqRel);
        let _waiting = Waiting(&self.inner.waiting);
        let permit = tokio::time::timeout(max_wait, self.inner.free.clone().acquire_owned())
            .await
            .ok()?
            .ok()?;
        Some(self.lease(permit))
    }

    /// An agent if one is free right now.
    pub fn try_take_now(&self) -> Option<AgentLease> {
        let permit = self.inner.free.clone().try_acquire_owned().ok()?;
        Some(self.lease(permit))
    }

    fn lease(&self, permit: OwnedSemaphorePermit) -> AgentLease {
        self.inner.busy.fetch_add(1, Ordering::AcqRel);
        AgentLease {
            permit: Some(permit),
            desk: self.inner.clone(),
        }
    }

    /// Changes the number of agents (the call centre's roster). Agents removed while on a
    /// call leave when their call ends.
    pub fn set_agents(&self, agents: usize) {
        let mut seats = self
            .inner
            .seats
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if agents >= seats.agents {
            let mut add = agents - seats.agents;
            let cancel = add.min(seats.to_remove);
            seats.to_remove -= cancel;
            add -= cancel;
            self.inner.free.add_permits(add);
        } else {
            let remove = seats.agents - agents;
            let gone = self.inner.free.forget_permits(remove);
            seats.to_remove += remove - gone;
        }
        seats.agents = agents;
    }

    /// Agents on the roster.
    pub fn agents(&self) -> usize {
        self.inner
            .seats
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .agents
    }

    /// Agents on a handed-off call.
    pub fn busy(&self) -> usize {
        self.inner.busy.load(Ordering::Acquire)
    }

    /// Hand-offs waiting for an agent.
    pub fn waiting(&self) -> usize {
        self.inner.waiting.load(Ordering::Acquire)
    }

    /// Agents free for a new hand-off: free seats less the hand-offs already waiting.
    pub fn free(&self) -> usize {
        self.inner
            .free
            .available_permits()
            .saturating_sub(self.waiting())
    }
}

/// What a campaign's outcomes taught the pacing so far.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PacingStats {
    /// Ended attempts.
    pub calls: u64,
    /// Hand-offs an agent took.
    pub handed_off: u64,
    /// Hand-offs that found no agent in time.
    pub abandoned: u64,
}

impl PacingStats {
    /// Calls that asked for a human.
    pub fn asked(&self) -> u64 {
        self.handed_off + self.abandoned
    }

    /// The share of placed calls expected to ask for a human:
    /// `(prior·weight + asked) / (weight + calls)`.
    pub fn handoff_estimate(&self, prior: f64, weight: f64) -> f64 {
        let weight = weight.max(0.0);
        let calls = self.calls as f64 + weight;
        if calls <= 0.0 {
            return prior.clamp(0.0, 1.0);
        }
        ((prior.clamp(0.0, 1.0) * weight + self.asked() as f64) / calls).clamp(0.0, 1.0)
    }

    /// Abandoned hand-offs over hand-offs asked for, once any was asked for.
    pub fn abandon_rate(&self) -> Option<f64> {
        (self.asked() > 0).then(|| self.abandoned as f64 / self.asked() as f64)
    }

    /// The rule's target for the expected share of abandoned hand-offs: `cap × headroom`
    /// while the measured rate stays under half the cap, shrinking as it nears the cap.
    pub fn target(&self, cap: f64, headroom: f64) -> f64 {
        let cap = cap.max(0.0);
        let r = self.abandoned as f64 / (self.asked() as f64).max(MIN_HANDOFF_SAMPLE);
        let pressure = if cap > 0.0 { r / cap } else { 0.0 };
        cap * headroom.clamp(0.0, 1.0) / (1.0 + THROTTLE_GAIN * (pressure - 0.5).max(0.0))
    }
}

/// The chance that a new call's hand-off finds no free agent: `P(D ≥ free_agents)` for the
/// hand-offs D ~ Binomial(`others`, `p`) of the other live calls, none of the busy agents
/// freeing up meanwhile.
pub fn handoff_blocked_chance(others: usize, free_agents: usize, p: f64) -> f64 {
    let p = p.clamp(0.0, 1.0);
    if free_agents == 0 {
        return 1.0;
    }
    if others < free_agents || p == 0.0 {
        return 0.0;
    }
    if p == 1.0 {
        return 1.0;
    }
    // P(D = k) by the ratio of successive binomial terms, in logs (large `others` stays finite).
    let n = others;
    let mut log_pk = n as f64 * (1.0 - p).ln();
    let odds = (p / (1.0 - p)).ln();
    let mut below = 0.0;
    for k in 0..free_agents {
        below += log_pk.exp();
        log_pk += ((n - k) as f64 / (k + 1) as f64).ln() + odds;
    }
    (1.0 - below).clamp(0.0, 1.0)
}

/// Whether one more call may be placed while `live_calls` are live and `free_agents` free,
/// each call asking for a human with probability `p`: the rule in this module's header, with
/// `target` from [`PacingStats::target`]. Without hand-offs (`p` = 0) agents do not limit.
pub fn call_fits(live_calls: usize, free_agents: usize, p: f64, target: f64) -> bool {
    p <= 0.0 || handoff_blocked_chance(live_calls, free_agents, p) <= target.max(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rule_fits_calls_to_free_agents() {
        // A free agent for every live call and the new one: always.
        assert!(call_fits(0, 1, 0.9, 0.0));
        assert!(call_fits(2, 3, 0.9, 0.0));
        // No free agent: never, unless nobody asks for one.
        assert!(!call_fits(0, 0, 0.2, 0.015));
        assert!(call_fits(100, 0, 0.0, 0.015));
        // p = 0.19, target 1.5%, 3 free agents: 3 live calls leave p³ = 0.69% (placed),
        // 4 leave 2.35% (not placed).
        assert!((handoff_blocked_chance(3, 3, 0.19) - 0.19f64.powi(3)).abs() < 1e-12);
        assert!(call_fits(3, 3, 0.19, 0.015));
        assert!(!call_fits(4, 3, 0.19, 0.015));
        assert!((handoff_blocked_chance(1, 1, 1.0) - 1.0).abs() < 1e-12);
        let big = handoff_blocked_chance(2_000, 100, 0.1);
        assert!(big.is_finite() && (0.0..=1.0).contains(&big));
    }

    #[test]
    fn the_target_shrinks_near_the_cap() {
        let calm = PacingStats {
            calls: 100,
            handed_off: 30,
            abandoned: 0,
        };
        assert!((calm.target(0.03, 0.5) - 0.015).abs() < 1e-12);
        let hot = PacingStats {
            calls: 100,
            handed_off: 29,
            abandoned: 1,
        };
        assert!(hot.target(0.03, 0.5) < 0.015);
        assert!((hot.handoff_estimate(0.15, 20.0) - (3.0 + 30.0) / 120.0).abs() < 1e-9);
        assert_eq!(PacingStats::default().abandon_rate(), None);
    }

    #[tokio::test]
    async fn the_desk_lends_agents_and_abandons_after_the_wait() {
        let desk = HandOffDesk::new(1);
        let first = desk.try_take(Duration::from_millis(10)).await;
        assert!(first.is_some());
        assert_eq!((desk.busy(), desk.free()), (1, 0));
        assert!(desk.try_take(Duration::from_millis(20)).await.is_none());
        // A waiting hand-off gets the agent as soon as the first call releases it.
        let waiter = {
            let desk = desk.clone();
            tokio::spawn(async move { desk.try_take(Duration::from_secs(5)).await.is_some() })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(first);
        assert!(waiter.await.unwrap_or(false));
        assert_eq!(desk.busy(), 0);
        // Roster changes: removing a busy agent takes effect when their call ends.
        let lease = desk.try_take_now();
        desk.set_agents(0);
        assert_eq!(desk.agents(), 0);
        drop(lease);
        assert!(desk.try_take_now().is_none());
        desk.set_agents(2);
        assert_eq!(desk.free(), 2);
    }
}

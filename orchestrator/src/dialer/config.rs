//! The dialer's configuration (`[dialer]`): lines, attempts and back-off, frequency caps,
//! calling windows with per-region rules, and hand-off pacing. Every field has a default.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How a campaign is dialed. Stored with the campaign's run row (JSON), so a restarted dialer
/// resumes with the configuration the campaign was started with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DialerConfig {
    /// Live bot calls of one campaign at most (lines; hand-off pacing may allow fewer).
    pub max_lines: usize,
    /// Dials per customer and campaign. A callback the customer booked is honoured beyond it,
    /// up to `max_callbacks`.
    pub max_attempts: u32,
    /// Minutes from the end of attempt n to attempt n + 1 (the last value repeats). The daily
    /// cap applies as well: the later of the two wins.
    pub retry_backoff_minutes: Vec<u32>,
    /// Dials per customer per calendar day in the customer's time zone, across campaigns.
    /// Booked callbacks are exempt (the customer asked for the call).
    pub max_attempts_per_day: u32,
    /// Days after a refusal, in any campaign, during which the customer is not dialed (a
    /// refusal also ends the customer's place in the campaign that heard it). Booked callbacks
    /// are exempt.
    pub refusal_cooldown_days: u32,
    /// Booked callbacks honoured per customer and campaign.
    pub max_callbacks: u32,
    /// When a callback is booked without a time: minutes after the call ends.
    pub callback_default_minutes: u32,
    /// The calling window in the callee's local time, for everyone.
    pub window: WindowRule,
    /// Stricter rules by region (the profile's region, case-insensitive) or IANA zone name
    /// (e.g. `"America/New_York"`). A rule narrows the default window; it never widens it.
    pub regions: BTreeMap<String, WindowRule>,
    /// Extra region → IANA time zone names, consulted before the built-in table.
    pub region_time_zones: BTreeMap<String, String>,
    /// The IANA zone of a customer whose region names no known zone. Set it to the zone the
    /// customer base lives in; the default is the demo CRM's home zone.
    pub default_time_zone: String,
    /// Human agents taking this campaign's hand-offs at start (the API may change it live).
    pub agents: u32,
    /// Share of placed calls expected to ask for a human before any is observed.
    pub handoff_prior: f64,
    /// How many calls the prior counts as: the estimate is
    /// `(prior × weight + hand-offs) / (weight + calls)`.
    pub handoff_prior_weight: f64,
    /// The share of `abandon_cap` the pacing rule aims for (0–1): a call is placed only if the
    /// chance that its hand-off would find no agent is under `abandon_cap × pacing_headroom`,
    /// leaving the rest of the cap for chance (see [`super::pacing`]).
    pub pacing_headroom: f64,
    /// Highest acceptable share of hand-offs that find no agent (3%, the common regulatory
    /// figure). The dialer throttles as the measured rate approaches it.
    pub abandon_cap: f64,
    /// How long a hand-off waits for a free agent before it is abandoned (ms).
    pub handoff_max_wait_ms: u64,
    /// How long a live attempt's lease lasts without renewal (minutes). Renewed while this
    /// dialer runs; a dead dialer's attempts are recovered once it runs out.
    pub lease_minutes: u32,
    /// This dialer's name as a lease owner. Unique per process when several share a campaign
    /// on PostgreSQL; the same across restarts, so a restart recovers its own attempts at once.
    pub instance_id: String,
}

impl Default for DialerConfig {
    fn default() -> Self {
        Self {
            max_lines: 4,
            max_attempts: 3,
            retry_backoff_minutes: vec![60, 240, 1440],
            max_attempts_per_day: 1,
            refusal_cooldown_days: 30,
            max_callbacks: 2,
            callback_default_minutes: 1440,
            window: WindowRule::default(),
            regions: BTreeMap::new(),
            region_time_zones: BTreeMap::new(),
            default_time_zone: "Asia/Shanghai".into(),
            agents: 2,
            handoff_prior: 0.15,
            handoff_prior_weight: 20.0,
            pacing_headroom: 0.5,
            abandon_cap: 0.03,
            handoff_max_wait_ms: 10_000,
            lease_minutes: 30,
            instance_id: "local".into(),
        }
    }
}

/// A weekly calling window in local time: `open`–`close` every day, except the days listed in
/// `days`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct WindowRule {
    /// First minute calls may start, `"HH:MM"`.
    pub open: String,
    /// End of the window (exclusive), `"HH:MM"`, after `open` (no window spans midnight).
    pub close: String,
    /// Per weekday (`mon` … `sun`): `"closed"` or `"HH:MM-HH:MM"` instead of `open`–`close`,
    /// e.g. `{ sun = "closed", sat = "10:00-16:00" }`.
    pub days: BTreeMap<String, String>,
}

impl Default for WindowRule {
    fn default() -> Self {
        Self {
            open: "08:00".into(),
            close: "21:00".into(),
            days: BTreeMap::new(),
        }
    }
}

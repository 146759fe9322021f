//! The campaign dialer's durable state: run rows, the dial queue and dial attempts (migration
//! `0003_dialer.sql`). Only SQL lives here; who to call and when is the orchestrator's policy.
//!
//! A queue row is claimed by one conditional `UPDATE` (status, attempt count, due time and
//! consent checked in its `WHERE`) in the transaction that inserts the `dialing` attempt, so two
//! dialers — two tasks or two processes — never claim the same row, and a call is on record
//! before it is placed. [`complete_attempt_in`] finishes an attempt inside the caller's
//! transaction, the one that stores the call record.

use super::{batch_rows, placeholders, SqlStore};
use crate::RetrievalError;
use serde::{Deserialize, Serialize};
use sqlx::{AnyConnection, Row};
use std::collections::BTreeMap;

/// Where a customer stands in a campaign's dial queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QueueStatus {
    /// Waits for its next attempt time.
    Pending,
    /// An attempt is live (leased to one dialer).
    Dialing,
    /// Finished: converted, refused, handed off, or the campaign has nothing more to say.
    Done,
    /// The customer must not be called (consent withdrawn, or erased).
    DoNotCall,
    /// Out of attempts.
    Exhausted,
}

impl QueueStatus {
    /// The stored spelling: `pending`, `dialing`, `done`, `do_not_call`, `exhausted`.
    pub fn as_str(self) -> &'static str {
        match self {
            QueueStatus::Pending => "pending",
            QueueStatus::Dialing => "dialing",
            QueueStatus::Done => "done",
            QueueStatus::DoNotCall => "do_not_call",
            QueueStatus::Exhausted => "exhausted",
        }
    }

    /// Parses the stored spelling.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => QueueStatus::Pending,
            "dialing" => QueueStatus::Dialing,
            "done" => QueueStatus::Done,
            "do_not_call" => QueueStatus::DoNotCall,
            "exhausted" => QueueStatus::Exhausted,
            _ => return None,
        })
    }
}

/// A campaign as the dialer runs it (one `dial_campaigns` row).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DialRun {
    pub campaign_id: String,
    /// `running`, `paused`, `stopped` or `done`.
    pub state: String,
    /// The dialer configuration the campaign runs with (JSON text, the orchestrator's type).
    pub config: String,
    /// Human agents taking this campaign's hand-offs.
    pub agents: i64,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

/// A customer to put in a campaign's queue, scored and placed by the dialer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueueEntry {
    pub customer_id: String,
    pub segment: String,
    /// Higher is dialed first.
    pub score: f64,
    /// IANA zone of the customer's calling window, e.g. `Asia/Shanghai`.
    pub time_zone: String,
    /// The profile's region, for per-region window rules.
    pub region: Option<String>,
    /// `Pending`, or `DoNotCall` for a customer who had opted out at enqueue.
    pub status: QueueStatus,
}

/// A queue row that is due, as read for the dialer to check before it claims it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DialCandidate {
    pub customer_id: String,
    pub segment: String,
    pub score: f64,
    pub time_zone: String,
    pub region: Option<String>,
    /// Attempts made so far (the claim checks it is unchanged).
    pub attempts: i64,
    pub callbacks: i64,
    pub next_attempt_at_ms: i64,
    /// Set while a booked callback is owed.
    pub callback_at_ms: Option<i64>,
    /// The customer's consent says do not call (read now, not at enqueue).
    pub do_not_call: bool,
    /// The customer still exists (not erased).
    pub customer_exists: bool,
}

/// A claim of one queue row: the attempt to record as `dialing` if the row is still as read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DialClaim {
    pub attempt_id: String,
    pub call_id: String,
    pub campaign_id: String,
    pub customer_id: String,
    /// The row's attempt count when read; the new attempt is number `attempts + 1`.
    pub attempts: i64,
    /// The dialer instance taking the lease.
    pub owner: String,
    pub now_ms: i64,
    pub lease_until_ms: i64,
    /// The attempt honours a booked callback.
    pub callback: bool,
}

/// What a queue row becomes when an attempt ends (computed by the dialer's policy).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueueUpdate {
    pub status: QueueStatus,
    /// When a `Pending` row is due next (ignored by the claim for other statuses).
    pub next_attempt_at_ms: i64,
    /// A callback still owed, or `None`.
    pub callback_at_ms: Option<i64>,
    /// Callbacks honoured or booked so far (the new total).
    pub callbacks: i64,
}

/// A finished dial attempt, for [`complete_attempt_in`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttemptDone {
    pub attempt_id: String,
    pub campaign_id: String,
    pub customer_id: String,
    /// The attempt's number (1 for the first dial of this customer in this campaign).
    pub attempt_no: i64,
    pub call_id: String,
    pub ended_at_ms: i64,
    /// `converted`, `callback`, `refused`, `handed_off`, `do_not_call`, `no_answer`,
    /// `voicemail`, `hung_up`, `no_input`, `failed`, `abandoned_handoff`, …
    pub outcome: String,
    /// The callback the customer booked, if any.
    pub callback_at_ms: Option<i64>,
    /// What the queue row becomes.
    pub queue: QueueUpdate,
}

/// One row of `dial_attempts`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DialAttempt {
    pub attempt_id: String,
    pub campaign_id: String,
    pub customer_id: String,
    pub attempt_no: i64,
    pub call_id: String,
    /// `dialing`, `completed` or `interrupted`.
    pub status: String,
    pub owner: String,
    pub callback: bool,
    pub started_at_ms: i64,
    pub ended_at_ms: Option<i64>,
    pub outcome: Option<String>,
}

/// A live queue row whose lease is to be recovered (its dialer died or its lease ran out).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeasedDial {
    pub customer_id: String,
    /// The live attempt's number.
    pub attempts: i64,
    pub callbacks: i64,
    pub lease_owner: Option<String>,
    pub lease_until_ms: Option<i64>,
}

/// A campaign's queue and attempts counted, for the status API.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DialCounts {
    /// Queue rows waiting for an attempt.
    pub pending: i64,
    /// Queue rows with a live attempt.
    pub dialing: i64,
    pub done: i64,
    /// Customers skipped because they must not be called.
    pub do_not_call: i64,
    pub exhausted: i64,
    /// Finished queue rows (done, do-not-call, exhausted) by their last outcome.
    pub finished_by_outcome: BTreeMap<String, i64>,
    /// Ended attempts by outcome (`interrupted` for attempts a crash cut off).
    pub attempts_by_outcome: BTreeMap<String, i64>,
    /// Attempts made, live ones included.
    pub attempts: i64,
}

impl SqlStore {
    /// Creates a campaign's run row if absent (state `running`) and returns the stored row: an
    /// existing row keeps its state, agents and config unless `config` is given, which
    /// replaces the stored one.
    pub async fn open_dial_run(
        &self,
        campaign_id: &str,
        config: Option<&str>,
        default_config: &str,
        agents: i64,
        now_ms: i64,
    ) -> Result<DialRun, RetrievalError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO dial_campaigns (campaign_id, state, config, agents, created_at_ms, updated_at_ms) \
             VALUES ($1, 'running', $2, $3, $4, $4) ON CONFLICT (campaign_id) DO NOTHING",
        )
        .bind(campaign_id)
        .bind(config.unwrap_or(default_config))
        .bind(agents)
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
        if let Some(config) = config {
            sqlx::query(
                "UPDATE dial_campaigns SET config = $2, updated_at_ms = $3 WHERE campaign_id = $1",
            )
            .bind(campaign_id)
            .bind(config)
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        self.dial_run(campaign_id).await?.ok_or_else(|| {
            RetrievalError::InvalidInput(format!(
                "dial campaign {campaign_id} vanished while it was opened: was it erased at the same time?"
            ))
        })
    }

    /// A campaign's run row, or `None`.
    pub async fn dial_run(&self, campaign_id: &str) -> Result<Option<DialRun>, RetrievalError> {
        let row = sqlx::query(
            "SELECT campaign_id, state, config, agents, created_at_ms, updated_at_ms \
             FROM dial_campaigns WHERE campaign_id = $1",
        )
        .bind(campaign_id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| -> Result<DialRun, RetrievalError> {
            Ok(DialRun {
                campaign_id: r.try_get(0)?,
                state: r.try_get(1)?,
                config: r.try_get(2)?,
                agents: r.try_get(3)?,
                created_at_ms: r.try_get(4)?,
                updated_at_ms: r.try_get(5)?,
            })
        })
        .transpose()
    }

    /// Sets a campaign's run state; `false` if the campaign has no run row.
    pub async fn set_dial_state(
        &self,
        campaign_id: &str,
        state: &str,
        now_ms: i64,
    ) -> Result<bool, RetrievalError> {
        let done = sqlx::query(
            "UPDATE dial_campaigns SET state = $2, updated_at_ms = $3 WHERE campaign_id = $1",
        )
        .bind(campaign_id)
        .bind(state)
        .bind(now_ms)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Sets the number of agents taking a campaign's hand-offs; `false` if the campaign has no
    /// run row.
    pub async fn set_dial_agents(
        &self,
        campaign_id: &str,
        agents: i64,
        now_ms: i64,
    ) -> Result<bool, RetrievalError> {
        let done = sqlx::query(
            "UPDATE dial_campaigns SET agents = $2, updated_at_ms = $3 WHERE campaign_id = $1",
        )
        .bind(campaign_id)
        .bind(agents)
        .bind(now_ms)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Adds customers to a campaign's queue in one transaction, due at `now_ms`. A customer
    /// already queued is left as it is (enqueueing is idempotent). Returns how many rows were
    /// added.
    pub async fn enqueue_dials(
        &self,
        campaign_id: &str,
        entries: &[QueueEntry],
        now_ms: i64,
    ) -> Result<u64, RetrievalError> {
        const COLS: usize = 10;
        let mut tx = self.pool.begin().await?;
        let mut added = 0;
        for chunk in entries.chunks(batch_rows(COLS)) {
            let sql = format!(
                "INSERT INTO dial_queue (campaign_id, customer_id, segment, score, time_zone, region, \
                 status, next_attempt_at_ms, enqueued_at_ms, last_outcome, attempts, callbacks) \
                 VALUES {} ON CONFLICT (campaign_id, customer_id) DO NOTHING",
                values_with_zeros(&tx, chunk.len(), COLS)
            );
            let mut q = sqlx::query(&sql);
            for e in chunk {
                let skipped = e.status != QueueStatus::Pending;
                q = q
                    .bind(campaign_id)
                    .bind(&e.customer_id)
                    .bind(&e.segment)
                    .bind(e.score)
                    .bind(&e.time_zone)
                    .bind(&e.region)
                    .bind(e.status.as_str())
                    .bind(now_ms)
                    .bind(now_ms)
                    .bind(skipped.then_some("do_not_call"));
            }
            added += q.execute(&mut *tx).await?.rows_affected();
        }
        tx.commit().await?;
        Ok(added)
    }
}

/// `(…, 0, 0)` rows: [`placeholders`] with the two zero counters (attempts, callbacks) after
/// each row's `cols` parameters.
fn values_with_zeros(conn: &AnyConnection, rows: usize, cols: usize) -> String {
    placeholders(conn, rows, cols).replace(')', ", 0, 0)")
}

/// One `dial_queue` row as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueueRow {
    pub campaign_id: String,
    pub customer_id: String,
    pub segment: String,
    pub score: f64,
    pub time_zone: String,
    pub region: Option<String>,
    pub status: QueueStatus,
    pub attempts: i64,
    pub callbacks: i64,
    pub next_attempt_at_ms: i64,
    pub callback_at_ms: Option<i64>,
    pub last_outcome: Option<String>,
    pub last_attempt_at_ms: Option<i64>,
    pub lease_owner: Option<String>,
    pub lease_until_ms: Option<i64>,
}

/// What is left in a campaign's queue (for telling "wait" from "finished").
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DialBacklog {
    pub pending: i64,
    pub dialing: i64,
    /// The earliest `next_attempt_at_ms` of a pending row.
    pub next_due_at_ms: Option<i64>,
}

const CANDIDATE_COLUMNS: &str = "q.customer_id, q.segment, q.score, q.time_zone, q.region, \
     q.attempts, q.callbacks, q.next_attempt_at_ms, q.callback_at_ms, k.do_not_call, c.id \
     FROM dial_queue q LEFT JOIN consents k ON k.customer_id = q.customer_id \
     LEFT JOIN customers c ON c.id = q.customer_id";

const ATTEMPT_COLUMNS: &str = "attempt_id, campaign_id, customer_id, attempt_no, call_id, status, \
     owner, callback, started_at_ms, ended_at_ms, outcome";

const QUEUE_COLUMNS: &str = "campaign_id, customer_id, segment, score, time_zone, region, status, \
     attempts, callbacks, next_attempt_at_ms, callback_at_ms, last_outcome, last_attempt_at_ms, \
     lease_owner, lease_until_ms";

impl SqlStore {
    /// Up to `limit` due booked callbacks (earliest first), then up to `limit` other due rows
    /// (highest score first), with each customer's consent and existence read now.
    pub async fn dial_candidates(
        &self,
        campaign_id: &str,
        now_ms: i64,
        limit: i64,
    ) -> Result<Vec<DialCandidate>, RetrievalError> {
        let mut out = Vec::new();
        for (which, order) in [
            ("IS NOT NULL", "q.next_attempt_at_ms, q.customer_id"),
            ("IS NULL", "q.score DESC, q.customer_id"),
        ] {
            let sql = format!(
                "SELECT {CANDIDATE_COLUMNS} WHERE q.campaign_id = $1 AND q.status = 'pending' \
                 AND q.next_attempt_at_ms <= $2 AND q.callback_at_ms {which} ORDER BY {order} LIMIT $3"
            );
            let rows = sqlx::query(&sql)
                .bind(campaign_id)
                .bind(now_ms)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
            for r in &rows {
                out.push(DialCandidate {
                    customer_id: r.try_get(0)?,
                    segment: r.try_get(1)?,
                    score: r.try_get(2)?,
                    time_zone: r.try_get(3)?,
                    region: r.try_get(4)?,
                    attempts: r.try_get(5)?,
                    callbacks: r.try_get(6)?,
                    next_attempt_at_ms: r.try_get(7)?,
                    callback_at_ms: r.try_get(8)?,
                    do_not_call: r.try_get::<Option<i64>, _>(9)?.unwrap_or(0) != 0,
                    customer_exists: r.try_get::<Option<String>, _>(10)?.is_some(),
                });
            }
        }
        Ok(out)
    }

    /// The attempts of these customers in any campaign that started at or after `since_ms`
    /// (for frequency caps that span campaigns).
    pub async fn recent_dial_attempts(
        &self,
        customer_ids: &[String],
        since_ms: i64,
    ) -> Result<Vec<DialAttempt>, RetrievalError> {
        let mut out = Vec::new();
        for chunk in customer_ids.chunks(batch_rows(1).min(500)) {
            let list = (0..chunk.len())
                .map(|i| format!("${}", i + 2))
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!(
                "SELECT {ATTEMPT_COLUMNS} FROM dial_attempts WHERE started_at_ms >= $1 \
                 AND customer_id IN ({list}) ORDER BY started_at_ms"
            );
            let mut q = sqlx::query(&sql).bind(since_ms);
            for id in chunk {
                q = q.bind(id);
            }
            for r in &q.fetch_all(&self.pool).await? {
                out.push(attempt_of(r)?);
            }
        }
        Ok(out)
    }

    /// Moves a pending row's next attempt to `until_ms` (outside its window, or capped), if it
    /// is still as read (`attempts`). Returns whether it moved.
    pub async fn defer_dial(
        &self,
        campaign_id: &str,
        customer_id: &str,
        attempts: i64,
        until_ms: i64,
    ) -> Result<bool, RetrievalError> {
        let done = sqlx::query(
            "UPDATE dial_queue SET next_attempt_at_ms = $4 WHERE campaign_id = $1 \
             AND customer_id = $2 AND status = 'pending' AND attempts = $3",
        )
        .bind(campaign_id)
        .bind(customer_id)
        .bind(attempts)
        .bind(until_ms)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Takes a pending row out of the queue without dialing (`status` with `reason` as its last
    /// outcome), if it is still as read. Returns whether it changed.
    pub async fn skip_dial(
        &self,
        campaign_id: &str,
        customer_id: &str,
        attempts: i64,
        status: QueueStatus,
        reason: &str,
    ) -> Result<bool, RetrievalError> {
        let done = sqlx::query(
            "UPDATE dial_queue SET status = $4, last_outcome = $5, callback_at_ms = NULL \
             WHERE campaign_id = $1 AND customer_id = $2 AND status = 'pending' AND attempts = $3",
        )
        .bind(campaign_id)
        .bind(customer_id)
        .bind(attempts)
        .bind(status.as_str())
        .bind(reason)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Claims a queue row and records its attempt as `dialing`, in one transaction. The row is
    /// claimed only if it is still pending with the attempt count read, due, and the customer
    /// exists and has not opted out — so of two dialers racing for a row, one wins and the
    /// other gets `false`.
    pub async fn claim_dial(&self, claim: &DialClaim) -> Result<bool, RetrievalError> {
        let mut tx = self.pool.begin().await?;
        let claimed = sqlx::query(
            "UPDATE dial_queue SET status = 'dialing', attempts = attempts + 1, \
             last_attempt_at_ms = $4, lease_owner = $5, lease_until_ms = $6 \
             WHERE campaign_id = $1 AND customer_id = $2 AND status = 'pending' AND attempts = $3 \
             AND next_attempt_at_ms <= $4 \
             AND EXISTS (SELECT 1 FROM customers WHERE id = $2) \
             AND NOT EXISTS (SELECT 1 FROM consents WHERE customer_id = $2 AND do_not_call <> 0)",
        )
        .bind(&claim.campaign_id)
        .bind(&claim.customer_id)
        .bind(claim.attempts)
        .bind(claim.now_ms)
        .bind(&claim.owner)
        .bind(claim.lease_until_ms)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if claimed != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO dial_attempts (attempt_id, campaign_id, customer_id, attempt_no, call_id, \
             status, owner, callback, started_at_ms) VALUES ($1, $2, $3, $4, $5, 'dialing', $6, $7, $8)",
        )
        .bind(&claim.attempt_id)
        .bind(&claim.campaign_id)
        .bind(&claim.customer_id)
        .bind(claim.attempts + 1)
        .bind(&claim.call_id)
        .bind(&claim.owner)
        .bind(i64::from(claim.callback))
        .bind(claim.now_ms)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Completes an attempt in its own transaction, for an attempt without a call record (a
    /// call's own completion runs [`complete_attempt_in`] inside [`SqlStore::store_call`]).
    pub async fn complete_attempt(&self, done: &AttemptDone) -> Result<(), RetrievalError> {
        let mut tx = self.pool.begin().await?;
        complete_attempt_in(&mut tx, done).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Live rows of a campaign whose lease is `owner`'s (a restart of the same dialer) or has
    /// run out by `now_ms` (a dialer that died).
    pub async fn leased_dials(
        &self,
        campaign_id: &str,
        owner: &str,
        now_ms: i64,
    ) -> Result<Vec<LeasedDial>, RetrievalError> {
        let rows = sqlx::query(
            "SELECT customer_id, attempts, callbacks, lease_owner, lease_until_ms FROM dial_queue \
             WHERE campaign_id = $1 AND status = 'dialing' AND (lease_owner = $2 \
             OR lease_owner IS NULL OR lease_until_ms IS NULL OR lease_until_ms <= $3) \
             ORDER BY customer_id",
        )
        .bind(campaign_id)
        .bind(owner)
        .bind(now_ms)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| -> Result<LeasedDial, RetrievalError> {
                Ok(LeasedDial {
                    customer_id: r.try_get(0)?,
                    attempts: r.try_get(1)?,
                    callbacks: r.try_get(2)?,
                    lease_owner: r.try_get(3)?,
                    lease_until_ms: r.try_get(4)?,
                })
            })
            .collect()
    }

    /// Marks a live attempt found by [`leased_dials`](Self::leased_dials) as `interrupted` and
    /// gives its row `update`, in one transaction, if the row is still as read (same attempt,
    /// lease still `owner`'s or run out). Returns whether it did.
    pub async fn interrupt_dial(
        &self,
        campaign_id: &str,
        leased: &LeasedDial,
        owner: &str,
        update: &QueueUpdate,
        now_ms: i64,
    ) -> Result<bool, RetrievalError> {
        let mut tx = self.pool.begin().await?;
        let taken = sqlx::query(
            "UPDATE dial_queue SET status = $4, next_attempt_at_ms = $5, callback_at_ms = $6, \
             callbacks = $7, last_outcome = 'interrupted', lease_owner = NULL, lease_until_ms = NULL \
             WHERE campaign_id = $1 AND customer_id = $2 AND status = 'dialing' AND attempts = $3 \
             AND (lease_owner = $8 OR lease_owner IS NULL OR lease_until_ms IS NULL OR lease_until_ms <= $9)",
        )
        .bind(campaign_id)
        .bind(&leased.customer_id)
        .bind(leased.attempts)
        .bind(update.status.as_str())
        .bind(update.next_attempt_at_ms)
        .bind(update.callback_at_ms)
        .bind(update.callbacks)
        .bind(owner)
        .bind(now_ms)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if taken != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        sqlx::query(
            "UPDATE dial_attempts SET status = 'interrupted', ended_at_ms = $4, outcome = 'interrupted' \
             WHERE campaign_id = $1 AND customer_id = $2 AND attempt_no = $3 AND status = 'dialing'",
        )
        .bind(campaign_id)
        .bind(&leased.customer_id)
        .bind(leased.attempts)
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Extends `owner`'s leases on a campaign's live rows to `until_ms` where they end before
    /// `renew_below_ms` (a heartbeat). Returns how many were extended.
    pub async fn renew_dial_leases(
        &self,
        campaign_id: &str,
        owner: &str,
        until_ms: i64,
        renew_below_ms: i64,
    ) -> Result<u64, RetrievalError> {
        Ok(sqlx::query(
            "UPDATE dial_queue SET lease_until_ms = $3 WHERE campaign_id = $1 AND status = 'dialing' \
             AND lease_owner = $2 AND lease_until_ms < $4",
        )
        .bind(campaign_id)
        .bind(owner)
        .bind(until_ms)
        .bind(renew_below_ms)
        .execute(&self.pool)
        .await?
        .rows_affected())
    }

    /// Pending and live rows left in a campaign's queue, and when the next pending one is due.
    pub async fn dial_backlog(&self, campaign_id: &str) -> Result<DialBacklog, RetrievalError> {
        let rows = sqlx::query(
            "SELECT status, COUNT(*), MIN(next_attempt_at_ms) FROM dial_queue \
             WHERE campaign_id = $1 AND status IN ('pending', 'dialing') GROUP BY status",
        )
        .bind(campaign_id)
        .fetch_all(&self.pool)
        .await?;
        let mut backlog = DialBacklog::default();
        for r in &rows {
            let status: String = r.try_get(0)?;
            let n: i64 = r.try_get(1)?;
            if status == "pending" {
                backlog.pending = n;
                backlog.next_due_at_ms = r.try_get(2)?;
            } else {
                backlog.dialing = n;
            }
        }
        Ok(backlog)
    }

    /// A campaign's queue and attempts counted.
    pub async fn dial_counts(&self, campaign_id: &str) -> Result<DialCounts, RetrievalError> {
        let mut counts = DialCounts::default();
        let rows = sqlx::query(
            "SELECT status, last_outcome, COUNT(*) FROM dial_queue WHERE campaign_id = $1 \
             GROUP BY status, last_outcome",
        )
        .bind(campaign_id)
        .fetch_all(&self.pool)
        .await?;
        for r in &rows {
            let status: String = r.try_get(0)?;
            let outcome: Option<String> = r.try_get(1)?;
            let n: i64 = r.try_get(2)?;
            let slot = match QueueStatus::parse(&status) {
                Some(QueueStatus::Pending) => &mut counts.pending,
                Some(QueueStatus::Dialing) => &mut counts.dialing,
                Some(QueueStatus::Done) => &mut counts.done,
                Some(QueueStatus::DoNotCall) => &mut counts.do_not_call,
                Some(QueueStatus::Exhausted) => &mut counts.exhausted,
                None => continue,
            };
            *slot += n;
            if !matches!(status.as_str(), "pending" | "dialing") {
                *counts
                    .finished_by_outcome
                    .entry(outcome.unwrap_or_else(|| status.clone()))
                    .or_default() += n;
            }
        }
        let rows = sqlx::query(
            "SELECT status, outcome, COUNT(*) FROM dial_attempts WHERE campaign_id = $1 \
             GROUP BY status, outcome",
        )
        .bind(campaign_id)
        .fetch_all(&self.pool)
        .await?;
        for r in &rows {
            let status: String = r.try_get(0)?;
            let outcome: Option<String> = r.try_get(1)?;
            let n: i64 = r.try_get(2)?;
            counts.attempts += n;
            if status != "dialing" {
                *counts
                    .attempts_by_outcome
                    .entry(outcome.unwrap_or(status))
                    .or_default() += n;
            }
        }
        Ok(counts)
    }

    /// A customer's row in a campaign's queue, or `None`.
    pub async fn dial_queue_row(
        &self,
        campaign_id: &str,
        customer_id: &str,
    ) -> Result<Option<QueueRow>, RetrievalError> {
        let sql = format!(
            "SELECT {QUEUE_COLUMNS} FROM dial_queue WHERE campaign_id = $1 AND customer_id = $2"
        );
        let row = sqlx::query(&sql)
            .bind(campaign_id)
            .bind(customer_id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| -> Result<QueueRow, RetrievalError> {
            let status: String = r.try_get(6)?;
            Ok(QueueRow {
                campaign_id: r.try_get(0)?,
                customer_id: r.try_get(1)?,
                segment: r.try_get(2)?,
                score: r.try_get(3)?,
                time_zone: r.try_get(4)?,
                region: r.try_get(5)?,
                status: QueueStatus::parse(&status).ok_or_else(|| {
                    RetrievalError::InvalidInput(format!(
                        "dial_queue row {campaign_id}/{customer_id} has unknown status {status:?}"
                    ))
                })?,
                attempts: r.try_get(7)?,
                callbacks: r.try_get(8)?,
                next_attempt_at_ms: r.try_get(9)?,
                callback_at_ms: r.try_get(10)?,
                last_outcome: r.try_get(11)?,
                last_attempt_at_ms: r.try_get(12)?,
                lease_owner: r.try_get(13)?,
                lease_until_ms: r.try_get(14)?,
            })
        })
        .transpose()
    }

    /// A campaign's attempts, oldest first.
    pub async fn dial_attempts(
        &self,
        campaign_id: &str,
    ) -> Result<Vec<DialAttempt>, RetrievalError> {
        let sql = format!(
            "SELECT {ATTEMPT_COLUMNS} FROM dial_attempts WHERE campaign_id = $1 \
             ORDER BY started_at_ms, attempt_id"
        );
        let rows = sqlx::query(&sql)
            .bind(campaign_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(attempt_of).collect()
    }
}

fn attempt_of(r: &sqlx::any::AnyRow) -> Result<DialAttempt, RetrievalError> {
    Ok(DialAttempt {
        attempt_id: r.try_get(0)?,
        campaign_id: r.try_get(1)?,
        customer_id: r.try_get(2)?,
        attempt_no: r.try_get(3)?,
        call_id: r.try_get(4)?,
        status: r.try_get(5)?,
        owner: r.try_get(6)?,
        callback: r.try_get::<i64, _>(7)? != 0,
        started_at_ms: r.try_get(8)?,
        ended_at_ms: r.try_get(9)?,
        outcome: r.try_get(10)?,
    })
}

/// Completes a live (or interrupted) dial attempt and gives its queue row the new state,
/// inside the caller's transaction — the one that stores the call record, so a finished call
/// and its attempt commit together. The queue row is left alone if a later attempt has
/// claimed it since. An attempt that is unknown or already completed is an error (the
/// transaction should be rolled back).
pub async fn complete_attempt_in(
    conn: &mut AnyConnection,
    done: &AttemptDone,
) -> Result<(), RetrievalError> {
    let finished = sqlx::query(
        "UPDATE dial_attempts SET status = 'completed', ended_at_ms = $5, outcome = $6 \
         WHERE attempt_id = $1 AND campaign_id = $2 AND customer_id = $3 AND attempt_no = $4 \
         AND status IN ('dialing', 'interrupted')",
    )
    .bind(&done.attempt_id)
    .bind(&done.campaign_id)
    .bind(&done.customer_id)
    .bind(done.attempt_no)
    .bind(done.ended_at_ms)
    .bind(&done.outcome)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if finished != 1 {
        return Err(RetrievalError::InvalidInput(format!(
            "dial attempt {} (campaign {}, attempt {}) is not live: it is unknown or already completed",
            done.attempt_id, done.campaign_id, done.attempt_no
        )));
    }
    let q = &done.queue;
    sqlx::query(
        "UPDATE dial_queue SET status = $4, next_attempt_at_ms = $5, callback_at_ms = $6, \
         callbacks = $7, last_outcome = $8, lease_owner = NULL, lease_until_ms = NULL \
         WHERE campaign_id = $1 AND customer_id = $2 AND attempts = $3 \
         AND status IN ('dialing', 'pending', 'exhausted')",
    )
    .bind(&done.campaign_id)
    .bind(&done.customer_id)
    .bind(done.attempt_no)
    .bind(q.status.as_str())
    .bind(q.next_attempt_at_ms)
    .bind(q.callback_at_ms)
    .bind(q.callbacks)
    .bind(&done.outcome)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Removes a customer's dial queue rows and attempts (every campaign) inside the caller's
/// transaction, for erasure. Returns (queue rows, attempts) removed.
pub async fn erase_dial_rows_in(
    conn: &mut AnyConnection,
    customer_id: &str,
) -> Result<(u64, u64), RetrievalError> {
    let queue = sqlx::query("DELETE FROM dial_queue WHERE customer_id = $1")
        .bind(customer_id)
        .execute(&mut *conn)
        .await?
        .rows_affected();
    let attempts = sqlx::query("DELETE FROM dial_attempts WHERE customer_id = $1")
        .bind(customer_id)
        .execute(&mut *conn)
        .await?
        .rows_affected();
    Ok((queue, attempts))
}

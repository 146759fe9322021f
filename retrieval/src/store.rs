//! The SQL store through sqlx: one schema (migrations in `retrieval/migrations`) for SQLite, the
//! one-machine default, and PostgreSQL, chosen by the URL's scheme. Writes are batched into
//! multi-row `INSERT`s inside one transaction, so a batch is stored whole or not at all.

pub(crate) mod calls;
pub(crate) mod dialer;
pub(crate) mod experiments;
pub(crate) mod operations;
pub(crate) mod profiles;
pub(crate) mod qa;

pub use calls::{CallEventRecord, CallFacts, SealedRecording, StoredCall, TurnMetrics};
pub use dialer::{
    complete_attempt_in, erase_dial_rows_in, AttemptDone, DialAttempt, DialBacklog, DialCandidate,
    DialClaim, DialCounts, DialRun, LeasedDial, QueueEntry, QueueRow, QueueStatus, QueueUpdate,
};
pub use experiments::{record_call_arms_in, BanditArm, CallArm, AB_CHOICE};
pub use operations::{Action, CallLog, Campaign, ModelVersion, QaGrade, Recording};
pub use profiles::ProfileRecord;
pub use qa::{
    QaCallGradeRecord, QaCallRecord, QaCheckRecord, QaEvidenceRecord, QaFailureRecord, TrainingCall,
};

use crate::RetrievalError;
use serde::{Deserialize, Serialize};
use sqlx::any::AnyPoolOptions;
use sqlx::{AnyConnection, AnyPool, Executor};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Customer {
    pub id: String,
    pub display_name: String,
    pub language: String,
    pub created_at_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TurnRecord {
    /// `caller` or `bot`.
    pub speaker: String,
    pub text: String,
    pub latency_ms: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallRecord {
    pub id: String,
    pub customer_id: String,
    pub campaign_id: String,
    pub started_at_ms: i64,
    pub ended_at_ms: i64,
    pub outcome: String,
    pub turns: Vec<TurnRecord>,
}

/// The relational store behind every durable fact.
#[derive(Debug, Clone)]
pub struct SqlStore {
    pool: AnyPool,
    /// Shared by clones, so a write through any clone invalidates what every clone cached.
    profiles: std::sync::Arc<profiles::ProfileCache>,
}

impl SqlStore {
    /// Connects to `url` (`sqlite://path.db` — the file and its folder are created — or
    /// `postgres://…`) and applies pending migrations.
    pub async fn connect(url: &str) -> Result<Self, RetrievalError> {
        sqlx::any::install_default_drivers();
        let url = if let Some(path) = url.strip_prefix("sqlite://") {
            let file = path.split('?').next().unwrap_or(path);
            if let Some(dir) = std::path::Path::new(file)
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
            {
                std::fs::create_dir_all(dir).map_err(|source| RetrievalError::Io {
                    path: dir.to_path_buf(),
                    source,
                })?;
            }
            if path.contains('?') {
                url.to_string()
            } else {
                format!("{url}?mode=rwc")
            }
        } else {
            url.to_string()
        };
        let pool = AnyPoolOptions::new()
            .max_connections(4)
            .after_connect(|conn, _| {
                Box::pin(async move {
                    if conn.backend_name().eq_ignore_ascii_case("sqlite") {
                        // A 64 MiB page cache (default 2 MiB) keeps a large import's indexes in
                        // memory. The journal stays the default rollback one with full sync:
                        // measured, WAL made the one big import commit slower, not faster.
                        conn.execute("PRAGMA cache_size = -65536").await?;
                        // Deleted rows are overwritten with zeros, not left in the file's free
                        // space: an erased customer's name and words must not be recoverable
                        // from the database file.
                        conn.execute("PRAGMA secure_delete = ON").await?;
                    }
                    Ok(())
                })
            })
            .connect(&url)
            .await?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        Ok(Self {
            pool,
            profiles: Default::default(),
        })
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Inserts or updates a customer by id.
    pub async fn upsert_customer(&self, c: &Customer) -> Result<(), RetrievalError> {
        sqlx::query(
            "INSERT INTO customers (id, display_name, language, created_at_ms) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (id) DO UPDATE SET display_name = excluded.display_name, language = excluded.language",
        )
        .bind(&c.id)
        .bind(&c.display_name)
        .bind(&c.language)
        .bind(c.created_at_ms)
        .execute(&self.pool)
        .await?;
        self.profiles_changed();
        Ok(())
    }

    /// Stores a finished call and its turns atomically.
    pub async fn insert_call(&self, call: &CallRecord) -> Result<(), RetrievalError> {
        self.insert_calls(std::slice::from_ref(call)).await
    }

    /// Stores finished calls and their turns in one transaction, in multi-row batches (the fast
    /// path for bulk ingest). A duplicate call id fails the whole batch.
    pub async fn insert_calls(&self, calls: &[CallRecord]) -> Result<(), RetrievalError> {
        let mut tx = self.pool.begin().await?;
        write_calls(&mut tx, calls).await?;
        tx.commit().await?;
        self.profiles_changed(); // call counts and last contact
        Ok(())
    }

    /// Removes every row about a customer in one transaction (QA grades with their evidence,
    /// failure reasons and summaries, recordings, actions, turns, calls, CRM call logs,
    /// interests, consent, profile, the customer) and says how many rows of each went. Unknown customers erase nothing and are not an error. Recording files
    /// and index entries are the caller's: see [`crate::erase_customer`].
    pub async fn erase_customer(&self, customer_id: &str) -> Result<ErasedRows, RetrievalError> {
        const OF_CALLS: &str = "IN (SELECT id FROM calls WHERE customer_id = $1)";
        let mut tx = self.pool.begin().await?;
        let mut delete = async |sql: String| -> Result<u64, RetrievalError> {
            Ok(sqlx::query(&sql)
                .bind(customer_id)
                .execute(&mut *tx)
                .await?
                .rows_affected())
        };
        let rows = ErasedRows {
            call_arms: delete("DELETE FROM call_arms WHERE customer_id = $1".into()).await?,
            qa_evidence: delete(format!("DELETE FROM qa_evidence WHERE call_id {OF_CALLS}"))
                .await?,
            qa_failures: delete(format!("DELETE FROM qa_failures WHERE call_id {OF_CALLS}"))
                .await?,
            qa_calls: delete(format!("DELETE FROM qa_calls WHERE call_id {OF_CALLS}")).await?,
            qa_grades: delete(format!("DELETE FROM qa_grades WHERE call_id {OF_CALLS}")).await?,
            call_events: delete(format!("DELETE FROM call_events WHERE call_id {OF_CALLS}"))
                .await?,
            turn_metrics: delete(format!("DELETE FROM turn_metrics WHERE call_id {OF_CALLS}"))
                .await?,
            recordings: delete(format!("DELETE FROM recordings WHERE call_id {OF_CALLS}")).await?,
            actions: delete(format!("DELETE FROM actions WHERE call_id {OF_CALLS}")).await?,
            turns: delete(format!("DELETE FROM turns WHERE call_id {OF_CALLS}")).await?,
            calls: delete("DELETE FROM calls WHERE customer_id = $1".into()).await?,
            call_logs: delete("DELETE FROM call_logs WHERE customer_id = $1".into()).await?,
            interests: delete("DELETE FROM interests WHERE customer_id = $1".into()).await?,
            consents: delete("DELETE FROM consents WHERE customer_id = $1".into()).await?,
            profiles: delete("DELETE FROM profiles WHERE customer_id = $1".into()).await?,
            customers: delete("DELETE FROM customers WHERE id = $1".into()).await?,
        };
        // The dialer's queue rows and attempts of the customer, in every campaign.
        dialer::erase_dial_rows_in(&mut tx, customer_id).await?;
        tx.commit().await?;
        self.profiles_changed();
        Ok(rows)
    }

    /// A customer's calls with their turns, newest first.
    pub async fn calls_of(&self, customer_id: &str) -> Result<Vec<CallRecord>, RetrievalError> {
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT id FROM calls WHERE customer_id = $1 ORDER BY started_at_ms DESC, id",
        )
        .bind(customer_id)
        .fetch_all(&self.pool)
        .await?;
        let mut calls = Vec::with_capacity(ids.len());
        for id in ids {
            calls.extend(self.call(&id).await?);
        }
        Ok(calls)
    }

    /// Reads a call and its turns back, or `None`.
    pub async fn call(&self, id: &str) -> Result<Option<CallRecord>, RetrievalError> {
        use sqlx::Row;
        let Some(row) = sqlx::query(
            "SELECT id, customer_id, campaign_id, started_at_ms, ended_at_ms, outcome FROM calls WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        else {
            return Ok(None);
        };
        let turns = sqlx::query(
            "SELECT speaker, text, latency_ms FROM turns WHERE call_id = $1 ORDER BY seq",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| -> Result<TurnRecord, sqlx::Error> {
            Ok(TurnRecord {
                speaker: r.try_get(0)?,
                text: r.try_get(1)?,
                latency_ms: r.try_get(2)?,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
        Ok(Some(CallRecord {
            id: row.try_get(0)?,
            customer_id: row.try_get(1)?,
            campaign_id: row.try_get(2)?,
            started_at_ms: row.try_get(3)?,
            ended_at_ms: row.try_get(4)?,
            outcome: row.try_get(5)?,
            turns,
        }))
    }
}

/// Rows removed by [`SqlStore::erase_customer`], per table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErasedRows {
    pub customers: u64,
    pub profiles: u64,
    pub interests: u64,
    pub consents: u64,
    pub call_logs: u64,
    pub calls: u64,
    pub turns: u64,
    pub actions: u64,
    pub recordings: u64,
    pub qa_grades: u64,
    pub qa_calls: u64,
    pub qa_failures: u64,
    pub qa_evidence: u64,
    pub call_events: u64,
    pub turn_metrics: u64,
    /// Experiment arms the customer's calls played (`call_arms`).
    #[serde(default)]
    pub call_arms: u64,
}

impl ErasedRows {
    /// Rows removed in all tables.
    pub fn total(&self) -> u64 {
        self.customers
            + self.profiles
            + self.interests
            + self.consents
            + self.call_logs
            + self.calls
            + self.turns
            + self.actions
            + self.recordings
            + self.qa_grades
            + self.qa_calls
            + self.qa_failures
            + self.qa_evidence
            + self.call_events
            + self.turn_metrics
            + self.call_arms
    }
}

/// The tables that hold personal data, with the column that leads to a customer: erasure
/// empties each of them, and the erasure test checks each of them.
pub const PERSONAL_TABLES: &[(&str, &str)] = &[
    ("customers", "id = $1"),
    ("profiles", "customer_id = $1"),
    ("interests", "customer_id = $1"),
    ("consents", "customer_id = $1"),
    ("call_logs", "customer_id = $1"),
    ("calls", "customer_id = $1"),
    (
        "turns",
        "call_id IN (SELECT id FROM calls WHERE customer_id = $1)",
    ),
    (
        "actions",
        "call_id IN (SELECT id FROM calls WHERE customer_id = $1)",
    ),
    (
        "recordings",
        "call_id IN (SELECT id FROM calls WHERE customer_id = $1)",
    ),
    (
        "qa_grades",
        "call_id IN (SELECT id FROM calls WHERE customer_id = $1)",
    ),
    (
        "qa_calls",
        "call_id IN (SELECT id FROM calls WHERE customer_id = $1)",
    ),
    (
        "qa_failures",
        "call_id IN (SELECT id FROM calls WHERE customer_id = $1)",
    ),
    (
        "qa_evidence",
        "call_id IN (SELECT id FROM calls WHERE customer_id = $1)",
    ),
    (
        "call_events",
        "call_id IN (SELECT id FROM calls WHERE customer_id = $1)",
    ),
    (
        "turn_metrics",
        "call_id IN (SELECT id FROM calls WHERE customer_id = $1)",
    ),
];

/// Most bound parameters in one statement: under SQLite's 32,766 and PostgreSQL's 65,535.
const MAX_BINDS: usize = 16_000;

/// Rows of `cols` columns per multi-row statement.
pub(crate) fn batch_rows(cols: usize) -> usize {
    (MAX_BINDS / cols.max(1)).max(1)
}

/// `($1, $2), ($3, $4)` for `rows` rows of `cols` columns. On SQLite the markers are anonymous
/// `?`: sqlx looks up every numbered parameter's name, which SQLite finds by a linear scan, so
/// `$n` makes a statement of n parameters cost O(n²) to bind (2,800 rows/s instead of 100k+).
pub(crate) fn placeholders(conn: &AnyConnection, rows: usize, cols: usize) -> String {
    let anonymous = conn.backend_name().eq_ignore_ascii_case("sqlite");
    let mut s = String::with_capacity(rows * cols * 6);
    for r in 0..rows {
        if r > 0 {
            s.push_str(", ");
        }
        s.push('(');
        for c in 0..cols {
            if c > 0 {
                s.push_str(", ");
            }
            if anonymous {
                s.push('?');
            } else {
                s.push('$');
                s.push_str(&(r * cols + c + 1).to_string());
            }
        }
        s.push(')');
    }
    s
}

pub(crate) async fn write_calls(
    conn: &mut AnyConnection,
    calls: &[CallRecord],
) -> Result<(), RetrievalError> {
    for chunk in calls.chunks(batch_rows(6)) {
        let sql = format!(
            "INSERT INTO calls (id, customer_id, campaign_id, started_at_ms, ended_at_ms, outcome) VALUES {}",
            placeholders(conn, chunk.len(), 6)
        );
        let mut q = sqlx::query(&sql);
        for c in chunk {
            q = q
                .bind(&c.id)
                .bind(&c.customer_id)
                .bind(&c.campaign_id)
                .bind(c.started_at_ms)
                .bind(c.ended_at_ms)
                .bind(&c.outcome);
        }
        q.execute(&mut *conn).await?;
    }
    let turns: Vec<(&str, i32, &TurnRecord)> = calls
        .iter()
        .flat_map(|c| {
            c.turns
                .iter()
                .enumerate()
                .map(|(seq, t)| (c.id.as_str(), seq as i32, t))
        })
        .collect();
    for chunk in turns.chunks(batch_rows(5)) {
        let sql = format!(
            "INSERT INTO turns (call_id, seq, speaker, text, latency_ms) VALUES {}",
            placeholders(conn, chunk.len(), 5)
        );
        let mut q = sqlx::query(&sql);
        for (call_id, seq, t) in chunk {
            q = q
                .bind(*call_id)
                .bind(*seq)
                .bind(&t.speaker)
                .bind(&t.text)
                .bind(t.latency_ms);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

//! The SQL store through sqlx: one schema (migrations in `retrieval/migrations`) for SQLite, the
//! one-machine default, and PostgreSQL, chosen by the URL's scheme. A call record and its turns
//! are written in one transaction, so a call is stored whole or not at all.

use crate::RetrievalError;
use serde::{Deserialize, Serialize};
use sqlx::any::AnyPoolOptions;
use sqlx::AnyPool;

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

/// Rows removed by [`SqlStore::erase_customer`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErasedRows {
    pub customers: u64,
    pub calls: u64,
    pub turns: u64,
}

/// The relational store behind every durable fact.
#[derive(Debug, Clone)]
pub struct SqlStore {
    pool: AnyPool,
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
            .connect(&url)
            .await?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        Ok(Self { pool })
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
        Ok(())
    }

    /// Stores a finished call and its turns atomically.
    pub async fn insert_call(&self, call: &CallRecord) -> Result<(), RetrievalError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO calls (id, customer_id, campaign_id, started_at_ms, ended_at_ms, outcome) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&call.id)
        .bind(&call.customer_id)
        .bind(&call.campaign_id)
        .bind(call.started_at_ms)
        .bind(call.ended_at_ms)
        .bind(&call.outcome)
        .execute(&mut *tx)
        .await?;
        for (seq, t) in call.turns.iter().enumerate() {
            sqlx::query("INSERT INTO turns (call_id, seq, speaker, text, latency_ms) VALUES ($1, $2, $3, $4, $5)")
                .bind(&call.id)
                .bind(seq as i32)
                .bind(&t.speaker)
                .bind(&t.text)
                .bind(t.latency_ms)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Removes every row about a customer (turns, calls, the customer) in one transaction and
    /// says how many rows of each went. Unknown customers erase nothing and are not an error.
    pub async fn erase_customer(&self, customer_id: &str) -> Result<ErasedRows, RetrievalError> {
        let mut tx = self.pool.begin().await?;
        let turns = sqlx::query(
            "DELETE FROM turns WHERE call_id IN (SELECT id FROM calls WHERE customer_id = $1)",
        )
        .bind(customer_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let calls = sqlx::query("DELETE FROM calls WHERE customer_id = $1")
            .bind(customer_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        let customers = sqlx::query("DELETE FROM customers WHERE id = $1")
            .bind(customer_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(ErasedRows {
            customers,
            calls,
            turns,
        })
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

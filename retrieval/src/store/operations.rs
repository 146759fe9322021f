//! Operational records around calls: campaigns, CRM call logs, the bot's actions, recordings
//! (metadata and a sealed file path), QA grades and trained model versions.

use super::{batch_rows, placeholders, SqlStore};
use crate::{PrivacyKeys, RetrievalError};
use serde::{Deserialize, Serialize};
use sqlx::{AnyConnection, Row};
use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Campaign {
    pub id: String,
    pub name: String,
    /// The product the campaign sells (its knowledge snippets are indexed under the campaign).
    pub product: String,
    pub language: String,
    /// `draft`, `running`, `paused` or `finished`.
    pub status: String,
    pub created_at_ms: i64,
}

/// One contact from the CRM's history, fused to a customer by phone hash at import.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallLog {
    /// Stable for the same customer and start time, so a re-import stores it once.
    pub id: String,
    pub customer_id: String,
    pub started_at_ms: i64,
    pub duration_s: Option<i64>,
    pub outcome: String,
    pub notes: String,
}

/// Something the bot did during a call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Action {
    pub call_id: String,
    pub seq: i64,
    /// `callback_scheduled`, `sms_sent`, `transfer`, `do_not_call`, …
    pub kind: String,
    /// Free-form details (JSON text).
    pub detail: String,
    pub at_ms: i64,
}

/// A call's audio file. The path is sealed in the database (it may name the customer).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recording {
    pub call_id: String,
    pub path: PathBuf,
    pub sample_rate: i64,
    pub duration_ms: i64,
    pub bytes: i64,
    pub created_at_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QaGrade {
    pub call_id: String,
    /// e.g. `greeting`, `compliance`, `empathy`.
    pub criterion: String,
    pub score: f64,
    pub max_score: f64,
    /// Who or what graded: a person's id or a model version.
    pub grader: String,
    pub notes: String,
    pub graded_at_ms: i64,
}

/// A trained model (propensity, segmentation, best time to call) and whether it is live.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelVersion {
    pub name: String,
    pub version: String,
    pub path: String,
    pub sha256: String,
    /// Evaluation metrics (JSON text).
    pub metrics: String,
    pub active: bool,
    pub created_at_ms: i64,
}

impl SqlStore {
    /// Inserts or updates a campaign by id.
    pub async fn upsert_campaign(&self, c: &Campaign) -> Result<(), RetrievalError> {
        sqlx::query(
            "INSERT INTO campaigns (id, name, product, language, status, created_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO UPDATE SET name = excluded.name, \
             product = excluded.product, language = excluded.language, status = excluded.status",
        )
        .bind(&c.id)
        .bind(&c.name)
        .bind(&c.product)
        .bind(&c.language)
        .bind(&c.status)
        .bind(c.created_at_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn campaign(&self, id: &str) -> Result<Option<Campaign>, RetrievalError> {
        let row = sqlx::query(
            "SELECT id, name, product, language, status, created_at_ms FROM campaigns WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| -> Result<Campaign, RetrievalError> {
            Ok(Campaign {
                id: r.try_get(0)?,
                name: r.try_get(1)?,
                product: r.try_get(2)?,
                language: r.try_get(3)?,
                status: r.try_get(4)?,
                created_at_ms: r.try_get(5)?,
            })
        })
        .transpose()
    }

    /// Stores call logs in one transaction; a log already stored (same id) is left as it is.
    pub async fn insert_call_logs(&self, logs: &[CallLog]) -> Result<(), RetrievalError> {
        let mut tx = self.pool.begin().await?;
        write_call_logs(&mut tx, logs).await?;
        tx.commit().await?;
        self.profiles_changed();
        Ok(())
    }

    /// A customer's CRM call logs, newest first.
    pub async fn call_logs(&self, customer_id: &str) -> Result<Vec<CallLog>, RetrievalError> {
        let rows = sqlx::query(
            "SELECT id, customer_id, started_at_ms, duration_s, outcome, notes FROM call_logs \
             WHERE customer_id = $1 ORDER BY started_at_ms DESC, id",
        )
        .bind(customer_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| -> Result<CallLog, RetrievalError> {
                Ok(CallLog {
                    id: r.try_get(0)?,
                    customer_id: r.try_get(1)?,
                    started_at_ms: r.try_get(2)?,
                    duration_s: r.try_get(3)?,
                    outcome: r.try_get(4)?,
                    notes: r.try_get(5)?,
                })
            })
            .collect()
    }

    /// Stores a call's actions in one transaction.
    pub async fn insert_actions(&self, actions: &[Action]) -> Result<(), RetrievalError> {
        let mut tx = self.pool.begin().await?;
        write_actions(&mut tx, actions).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn actions(&self, call_id: &str) -> Result<Vec<Action>, RetrievalError> {
        let rows = sqlx::query(
            "SELECT call_id, seq, kind, detail, at_ms FROM actions WHERE call_id = $1 ORDER BY seq",
        )
        .bind(call_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| -> Result<Action, RetrievalError> {
                Ok(Action {
                    call_id: r.try_get(0)?,
                    seq: r.try_get(1)?,
                    kind: r.try_get(2)?,
                    detail: r.try_get(3)?,
                    at_ms: r.try_get(4)?,
                })
            })
            .collect()
    }

    /// Records where a call's audio is; the path is sealed with `keys`.
    pub async fn insert_recording(
        &self,
        r: &Recording,
        keys: &PrivacyKeys,
    ) -> Result<(), RetrievalError> {
        let path = r.path.to_str().ok_or_else(|| {
            RetrievalError::InvalidInput(format!(
                "recording path {} is not UTF-8: store recordings under a UTF-8 folder",
                r.path.display()
            ))
        })?;
        sqlx::query(
            "INSERT INTO recordings (call_id, path_sealed, sample_rate, duration_ms, bytes, created_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&r.call_id)
        .bind(keys.encrypt(path)?)
        .bind(r.sample_rate)
        .bind(r.duration_ms)
        .bind(r.bytes)
        .bind(r.created_at_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The recordings of a customer's calls, paths unsealed with `keys`.
    pub async fn recordings(
        &self,
        customer_id: &str,
        keys: &PrivacyKeys,
    ) -> Result<Vec<Recording>, RetrievalError> {
        let rows = sqlx::query(
            "SELECT r.call_id, r.path_sealed, r.sample_rate, r.duration_ms, r.bytes, r.created_at_ms \
             FROM recordings r JOIN calls c ON c.id = r.call_id WHERE c.customer_id = $1 ORDER BY r.call_id",
        )
        .bind(customer_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| -> Result<Recording, RetrievalError> {
                let sealed: String = r.try_get(1)?;
                Ok(Recording {
                    call_id: r.try_get(0)?,
                    path: PathBuf::from(keys.decrypt(&sealed)?),
                    sample_rate: r.try_get(2)?,
                    duration_ms: r.try_get(3)?,
                    bytes: r.try_get(4)?,
                    created_at_ms: r.try_get(5)?,
                })
            })
            .collect()
    }

    /// Inserts or replaces grades by (call, criterion), in one transaction.
    pub async fn upsert_qa_grades(&self, grades: &[QaGrade]) -> Result<(), RetrievalError> {
        let mut tx = self.pool.begin().await?;
        for chunk in grades.chunks(batch_rows(7)) {
            let sql = format!(
                "INSERT INTO qa_grades (call_id, criterion, score, max_score, grader, notes, graded_at_ms) \
                 VALUES {} ON CONFLICT (call_id, criterion) DO UPDATE SET score = excluded.score, \
                 max_score = excluded.max_score, grader = excluded.grader, notes = excluded.notes, \
                 graded_at_ms = excluded.graded_at_ms",
                placeholders(&tx, chunk.len(), 7)
            );
            let mut q = sqlx::query(&sql);
            for g in chunk {
                q = q
                    .bind(&g.call_id)
                    .bind(&g.criterion)
                    .bind(g.score)
                    .bind(g.max_score)
                    .bind(&g.grader)
                    .bind(&g.notes)
                    .bind(g.graded_at_ms);
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn qa_grades(&self, call_id: &str) -> Result<Vec<QaGrade>, RetrievalError> {
        let rows = sqlx::query(
            "SELECT call_id, criterion, score, max_score, grader, notes, graded_at_ms FROM qa_grades \
             WHERE call_id = $1 ORDER BY criterion",
        )
        .bind(call_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| -> Result<QaGrade, RetrievalError> {
                Ok(QaGrade {
                    call_id: r.try_get(0)?,
                    criterion: r.try_get(1)?,
                    score: r.try_get(2)?,
                    max_score: r.try_get(3)?,
                    grader: r.try_get(4)?,
                    notes: r.try_get(5)?,
                    graded_at_ms: r.try_get(6)?,
                })
            })
            .collect()
    }

    /// Registers a model version; when `active`, it becomes the only active version of its name
    /// (in one transaction).
    pub async fn register_model(&self, m: &ModelVersion) -> Result<(), RetrievalError> {
        let mut tx = self.pool.begin().await?;
        if m.active {
            sqlx::query("UPDATE model_versions SET active = 0 WHERE name = $1")
                .bind(&m.name)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query(
            "INSERT INTO model_versions (name, version, path, sha256, metrics, active, created_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (name, version) DO UPDATE SET \
             path = excluded.path, sha256 = excluded.sha256, metrics = excluded.metrics, \
             active = excluded.active",
        )
        .bind(&m.name)
        .bind(&m.version)
        .bind(&m.path)
        .bind(&m.sha256)
        .bind(&m.metrics)
        .bind(i64::from(m.active))
        .bind(m.created_at_ms)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Version `version` of model `name`, active or not, if registered.
    pub async fn model_version(
        &self,
        name: &str,
        version: &str,
    ) -> Result<Option<ModelVersion>, RetrievalError> {
        self.one_model_version("WHERE name = $1 AND version = $2", name, Some(version))
            .await
    }

    /// The active version of model `name`, if any.
    pub async fn active_model(&self, name: &str) -> Result<Option<ModelVersion>, RetrievalError> {
        self.one_model_version("WHERE name = $1 AND active = 1", name, None)
            .await
    }

    /// The model version `filter` (binding `name`, then `version` if given) selects.
    async fn one_model_version(
        &self,
        filter: &str,
        name: &str,
        version: Option<&str>,
    ) -> Result<Option<ModelVersion>, RetrievalError> {
        let sql = format!(
            "SELECT name, version, path, sha256, metrics, created_at_ms, active FROM model_versions {filter}"
        );
        let mut query = sqlx::query(&sql).bind(name);
        if let Some(v) = version {
            query = query.bind(v);
        }
        let row = query.fetch_optional(&self.pool).await?;
        row.map(|r| -> Result<ModelVersion, RetrievalError> {
            Ok(ModelVersion {
                name: r.try_get(0)?,
                version: r.try_get(1)?,
                path: r.try_get(2)?,
                sha256: r.try_get(3)?,
                metrics: r.try_get(4)?,
                created_at_ms: r.try_get(5)?,
                active: r.try_get::<i64, _>(6)? != 0,
            })
        })
        .transpose()
    }
}

pub(crate) async fn write_call_logs(
    conn: &mut AnyConnection,
    logs: &[CallLog],
) -> Result<(), RetrievalError> {
    for chunk in logs.chunks(batch_rows(6)) {
        let sql = format!(
            "INSERT INTO call_logs (id, customer_id, started_at_ms, duration_s, outcome, notes) \
             VALUES {} ON CONFLICT (id) DO NOTHING",
            placeholders(conn, chunk.len(), 6)
        );
        let mut q = sqlx::query(&sql);
        for l in chunk {
            q = q
                .bind(&l.id)
                .bind(&l.customer_id)
                .bind(l.started_at_ms)
                .bind(l.duration_s)
                .bind(&l.outcome)
                .bind(&l.notes);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Inserts actions in multi-row batches on `conn` (inside the caller's transaction).
pub(crate) async fn write_actions(
    conn: &mut sqlx::AnyConnection,
    actions: &[Action],
) -> Result<(), RetrievalError> {
    for chunk in actions.chunks(batch_rows(5)) {
        let sql = format!(
            "INSERT INTO actions (call_id, seq, kind, detail, at_ms) VALUES {}",
            placeholders(conn, chunk.len(), 5)
        );
        let mut q = sqlx::query(&sql);
        for a in chunk {
            q = q
                .bind(&a.call_id)
                .bind(a.seq)
                .bind(&a.kind)
                .bind(&a.detail)
                .bind(a.at_ms);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

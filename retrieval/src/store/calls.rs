//! A finished live call stored whole: the call row (with how it ended), its turns, actions,
//! events, per-turn stage latencies, the sealed recording's place and a do-not-call request,
//! in one transaction, together with the dialer attempt it completes, so a call counts as done
//! exactly when all of it is stored.

use super::{batch_rows, placeholders, write_calls, Action, CallRecord, SqlStore};
use crate::{PrivacyKeys, RetrievalError};
use serde::{Deserialize, Serialize};
use sqlx::{AnyConnection, Row};
use std::path::PathBuf;

/// One call event (line time).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallEventRecord {
    pub at_ms: i64,
    pub kind: String,
    /// JSON.
    pub detail: String,
}

/// Stage latencies of one caller turn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TurnMetrics {
    pub turn: i64,
    pub caller_start_ms: i64,
    pub caller_end_ms: i64,
    pub asr_final_ms: f64,
    pub dialog_ms: f64,
    pub tts_first_audio_ms: f64,
    /// End of caller speech to the reply's first frame, line time.
    pub v2v_line_ms: Option<f64>,
    /// The same, wall time.
    pub v2v_wall_ms: Option<f64>,
    pub interrupted: bool,
    pub spoken_ms: i64,
}

/// The recording of a stored call: a sealed file and its facts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SealedRecording {
    pub path: PathBuf,
    pub sample_rate: i64,
    pub duration_ms: i64,
    pub bytes: i64,
}

/// Everything a finished call stores.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredCall {
    pub call: CallRecord,
    pub attempt_id: Option<String>,
    pub end_reason: String,
    pub language: String,
    pub segment: String,
    pub duration_ms: i64,
    pub actions: Vec<Action>,
    pub events: Vec<CallEventRecord>,
    pub metrics: Vec<TurnMetrics>,
    pub recording: Option<SealedRecording>,
    /// The caller asked not to be called again.
    pub do_not_call: bool,
}

/// A stored call's facts beyond [`CallRecord`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallFacts {
    pub end_reason: Option<String>,
    pub language: Option<String>,
    pub segment: Option<String>,
    pub duration_ms: Option<i64>,
    pub attempt_id: Option<String>,
    pub events: Vec<CallEventRecord>,
    pub metrics: Vec<TurnMetrics>,
}

impl SqlStore {
    /// Stores a finished call in one transaction, and runs `also` (e.g. the dialer's attempt
    /// completion) inside the same transaction before it commits: all of it or none.
    pub async fn store_call<F>(
        &self,
        c: &StoredCall,
        keys: &PrivacyKeys,
        also: F,
    ) -> Result<(), RetrievalError>
    where
        F: for<'a> AsyncFnOnce(&'a mut AnyConnection) -> Result<(), RetrievalError>,
    {
        let sealed_path = match &c.recording {
            Some(r) => Some(keys.encrypt(r.path.to_str().ok_or_else(|| {
                RetrievalError::InvalidInput(format!(
                    "recording path {} is not UTF-8: store recordings under a UTF-8 folder",
                    r.path.display()
                ))
            })?)?),
            None => None,
        };
        let mut tx = self.pool.begin().await?;
        write_calls(&mut tx, std::slice::from_ref(&c.call)).await?;
        sqlx::query(
            "UPDATE calls SET end_reason = $1, language = $2, segment = $3, duration_ms = $4, attempt_id = $5 WHERE id = $6",
        )
        .bind(&c.end_reason)
        .bind(&c.language)
        .bind(&c.segment)
        .bind(c.duration_ms)
        .bind(c.attempt_id.as_deref())
        .bind(&c.call.id)
        .execute(&mut *tx)
        .await?;
        super::operations::write_actions(&mut tx, &c.actions).await?;
        let events: Vec<(i64, &CallEventRecord)> = c
            .events
            .iter()
            .enumerate()
            .map(|(i, e)| (i as i64, e))
            .collect();
        for chunk in events.chunks(batch_rows(5)) {
            let sql = format!(
                "INSERT INTO call_events (call_id, seq, at_ms, kind, detail) VALUES {}",
                placeholders(&tx, chunk.len(), 5)
            );
            let mut q = sqlx::query(&sql);
            for (seq, e) in chunk {
                q = q
                    .bind(&c.call.id)
                    .bind(*seq)
                    .bind(e.at_ms)
                    .bind(&e.kind)
                    .bind(&e.detail);
            }
            q.execute(&mut *tx).await?;
        }
        for chunk in c.metrics.chunks(batch_rows(11)) {
            let sql = format!(
                "INSERT INTO turn_metrics (call_id, turn, caller_start_ms, caller_end_ms, asr_final_ms, dialog_ms, \
                 tts_first_audio_ms, v2v_line_ms, v2v_wall_ms, interrupted, spoken_ms) VALUES {}",
                placeholders(&tx, chunk.len(), 11)
            );
            let mut q = sqlx::query(&sql);
            for m in chunk {
                q = q
                    .bind(&c.call.id)
                    .bind(m.turn)
                    .bind(m.caller_start_ms)
                    .bind(m.caller_end_ms)
                    .bind(m.asr_final_ms)
                    .bind(m.dialog_ms)
                    .bind(m.tts_first_audio_ms)
                    .bind(m.v2v_line_ms)
                    .bind(m.v2v_wall_ms)
                    .bind(i64::from(m.interrupted))
                    .bind(m.spoken_ms);
            }
            q.execute(&mut *tx).await?;
        }
        if let (Some(r), Some(sealed)) = (&c.recording, sealed_path) {
            sqlx::query(
                "INSERT INTO recordings (call_id, path_sealed, sample_rate, duration_ms, bytes, created_at_ms) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(&c.call.id)
            .bind(sealed)
            .bind(r.sample_rate)
            .bind(r.duration_ms)
            .bind(r.bytes)
            .bind(c.call.ended_at_ms)
            .execute(&mut *tx)
            .await?;
        }
        if c.do_not_call {
            sqlx::query(
                "INSERT INTO consents (customer_id, do_not_call, source, updated_at_ms) VALUES ($1, 1, 'call', $2) \
                 ON CONFLICT (customer_id) DO UPDATE SET do_not_call = 1, source = 'call', updated_at_ms = excluded.updated_at_ms",
            )
            .bind(&c.call.customer_id)
            .bind(c.call.ended_at_ms)
            .execute(&mut *tx)
            .await?;
        }
        also(&mut *tx).await?;
        tx.commit().await?;
        self.profiles_changed();
        Ok(())
    }

    /// A stored call's end, events and latencies, or `None` for an unknown call.
    pub async fn call_facts(&self, call_id: &str) -> Result<Option<CallFacts>, RetrievalError> {
        let Some(row) = sqlx::query(
            "SELECT end_reason, language, segment, duration_ms, attempt_id FROM calls WHERE id = $1",
        )
        .bind(call_id)
        .fetch_optional(&self.pool)
        .await?
        else {
            return Ok(None);
        };
        let events = sqlx::query(
            "SELECT at_ms, kind, detail FROM call_events WHERE call_id = $1 ORDER BY seq",
        )
        .bind(call_id)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| -> Result<CallEventRecord, sqlx::Error> {
            Ok(CallEventRecord {
                at_ms: r.try_get(0)?,
                kind: r.try_get(1)?,
                detail: r.try_get(2)?,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
        let metrics = sqlx::query(
            "SELECT turn, caller_start_ms, caller_end_ms, asr_final_ms, dialog_ms, tts_first_audio_ms, \
             v2v_line_ms, v2v_wall_ms, interrupted, spoken_ms FROM turn_metrics WHERE call_id = $1 ORDER BY turn",
        )
        .bind(call_id)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| -> Result<TurnMetrics, sqlx::Error> {
            Ok(TurnMetrics {
                turn: r.try_get(0)?,
                caller_start_ms: r.try_get(1)?,
                caller_end_ms: r.try_get(2)?,
                asr_final_ms: r.try_get(3)?,
                dialog_ms: r.try_get(4)?,
                tts_first_audio_ms: r.try_get(5)?,
                v2v_line_ms: r.try_get(6)?,
                v2v_wall_ms: r.try_get(7)?,
                interrupted: r.try_get::<i64, _>(8)? != 0,
                spoken_ms: r.try_get(9)?,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
        Ok(Some(CallFacts {
            end_reason: row.try_get(0)?,
            language: row.try_get(1)?,
            segment: row.try_get(2)?,
            duration_ms: row.try_get(3)?,
            attempt_id: row.try_get(4)?,
            events,
            metrics,
        }))
    }

    /// Calls of a campaign and/or a customer, newest first (turns not loaded).
    pub async fn list_calls(
        &self,
        campaign_id: Option<&str>,
        customer_id: Option<&str>,
        limit: i64,
    ) -> Result<Vec<CallRecord>, RetrievalError> {
        let rows = sqlx::query(
            "SELECT id, customer_id, campaign_id, started_at_ms, ended_at_ms, outcome FROM calls \
             WHERE ($1 = '' OR campaign_id = $1) AND ($2 = '' OR customer_id = $2) \
             ORDER BY started_at_ms DESC, id LIMIT $3",
        )
        .bind(campaign_id.unwrap_or(""))
        .bind(customer_id.unwrap_or(""))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| -> Result<CallRecord, RetrievalError> {
                Ok(CallRecord {
                    id: r.try_get(0)?,
                    customer_id: r.try_get(1)?,
                    campaign_id: r.try_get(2)?,
                    started_at_ms: r.try_get(3)?,
                    ended_at_ms: r.try_get(4)?,
                    outcome: r.try_get(5)?,
                    turns: Vec::new(),
                })
            })
            .collect()
    }

    /// The sealed recording of one call, its path unsealed with `keys`, or `None`.
    pub async fn recording_of(
        &self,
        call_id: &str,
        keys: &PrivacyKeys,
    ) -> Result<Option<SealedRecording>, RetrievalError> {
        let Some(r) = sqlx::query(
            "SELECT path_sealed, sample_rate, duration_ms, bytes FROM recordings WHERE call_id = $1",
        )
        .bind(call_id)
        .fetch_optional(&self.pool)
        .await?
        else {
            return Ok(None);
        };
        let sealed: String = r.try_get(0)?;
        Ok(Some(SealedRecording {
            path: PathBuf::from(keys.decrypt(&sealed)?),
            sample_rate: r.try_get(1)?,
            duration_ms: r.try_get(2)?,
            bytes: r.try_get(3)?,
        }))
    }
}

impl SqlStore {
    /// A customer's sealed phone number (for dialing and masked display), or `None`.
    pub async fn phone_sealed(&self, customer_id: &str) -> Result<Option<String>, RetrievalError> {
        let v: Option<Option<String>> =
            sqlx::query_scalar("SELECT phone_sealed FROM customers WHERE id = $1")
                .bind(customer_id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(v.flatten())
    }
}

//! What the QA job reads and writes: a stored call with everything a grader looks at (turns,
//! actions, events, stage latencies, the customer's name and consent), calls not yet graded, and
//! a call's grade (rubric checks with evidence, failure reasons, a summary row) written whole.

use super::TurnRecord;
use super::{batch_rows, placeholders, Action, CallEventRecord, CallRecord, SqlStore, TurnMetrics};
use crate::RetrievalError;
use serde::{Deserialize, Serialize};
use sqlx::{AnyConnection, Row};
use std::collections::HashMap;

/// A stored call as the QA job reads it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QaCallRecord {
    /// The call row and its turns in order.
    pub call: CallRecord,
    pub end_reason: Option<String>,
    pub language: Option<String>,
    pub segment: Option<String>,
    pub duration_ms: Option<i64>,
    /// The customer's name as the CRM has it (what the greeting should say).
    pub customer_name: String,
    /// The sealed phone number, for a masked display; never printed in full.
    pub phone_sealed: Option<String>,
    /// The customer is on the do-not-call list now.
    pub do_not_call: bool,
    pub actions: Vec<Action>,
    pub events: Vec<CallEventRecord>,
    pub metrics: Vec<TurnMetrics>,
}

/// A span of a call a check points at.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QaEvidenceRecord {
    /// Index into the call's turns.
    pub turn: i64,
    /// Line time of the turn, when known.
    pub at_ms: Option<i64>,
    /// What the turn shows (no words of the call).
    pub note: String,
}

/// One rubric check of a call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QaCheckRecord {
    pub criterion: String,
    /// `None`: not applicable to this call.
    pub passed: Option<bool>,
    pub score: f64,
    pub max_score: f64,
    pub grader: String,
    pub notes: String,
    pub evidence: Vec<QaEvidenceRecord>,
}

/// One failure reason of a call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QaFailureRecord {
    pub reason: String,
    /// The check that found it, if one did.
    pub criterion: Option<String>,
    pub detail: String,
    pub turn: Option<i64>,
    pub at_ms: Option<i64>,
}

/// A call's grade: its checks, its failure reasons (the first is the primary one) and totals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QaCallGradeRecord {
    pub call_id: String,
    /// Who graded the call as a whole (`rules`, a person, a model version).
    pub grader: String,
    pub rubric_version: String,
    pub score: f64,
    pub max_score: f64,
    pub checks: Vec<QaCheckRecord>,
    pub failures: Vec<QaFailureRecord>,
    pub graded_at_ms: i64,
}

/// Ids per `IN (…)` list: well under every backend's bind limit.
const IDS_PER_QUERY: usize = 500;

impl SqlStore {
    /// Up to `limit` ids of calls `grader` has not graded, in id order after `after` (keyset
    /// pagination: pass the last id of the previous page, or "" to start).
    pub async fn ungraded_call_ids(
        &self,
        grader: &str,
        after: &str,
        limit: i64,
    ) -> Result<Vec<String>, RetrievalError> {
        Ok(sqlx::query_scalar(
            "SELECT c.id FROM calls c WHERE c.id > $1 AND NOT EXISTS \
             (SELECT 1 FROM qa_calls q WHERE q.call_id = c.id AND q.grader = $2) \
             ORDER BY c.id LIMIT $3",
        )
        .bind(after)
        .bind(grader)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    /// How many calls `grader` has not graded.
    pub async fn count_ungraded_calls(&self, grader: &str) -> Result<i64, RetrievalError> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM calls c WHERE NOT EXISTS \
             (SELECT 1 FROM qa_calls q WHERE q.call_id = c.id AND q.grader = $1)",
        )
        .bind(grader)
        .fetch_one(&self.pool)
        .await?)
    }

    /// Every call id, oldest first (what a report covers).
    pub async fn all_call_ids(&self) -> Result<Vec<String>, RetrievalError> {
        Ok(
            sqlx::query_scalar("SELECT id FROM calls ORDER BY started_at_ms, id")
                .fetch_all(&self.pool)
                .await?,
        )
    }

    /// The calls with these ids, whole, in the order given (unknown ids are left out).
    pub async fn qa_calls(&self, ids: &[String]) -> Result<Vec<QaCallRecord>, RetrievalError> {
        let mut out = Vec::with_capacity(ids.len());
        let mut conn = self.pool.acquire().await?;
        for chunk in ids.chunks(IDS_PER_QUERY) {
            out.extend(read_qa_calls(&mut conn, chunk).await?);
        }
        Ok(out)
    }

    /// Stores grades, each call's rows (checks, evidence, failures, summary) replacing what its
    /// grader wrote before, all in one transaction: a call is graded whole or not at all.
    pub async fn store_qa_grades(
        &self,
        grades: &[QaCallGradeRecord],
    ) -> Result<(), RetrievalError> {
        let mut tx = self.pool.begin().await?;
        write_qa_grades(&mut tx, grades).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The grades `grader` gave, for the calls given (in that order; ungraded ones left out).
    pub async fn qa_call_grades(
        &self,
        grader: &str,
        ids: &[String],
    ) -> Result<Vec<QaCallGradeRecord>, RetrievalError> {
        let mut out = Vec::with_capacity(ids.len());
        let mut conn = self.pool.acquire().await?;
        for chunk in ids.chunks(IDS_PER_QUERY) {
            out.extend(read_qa_grades(&mut conn, grader, chunk).await?);
        }
        Ok(out)
    }

    /// Every call's failure reasons, primary first: `(call_id, reasons)` in call-id order. What
    /// the learning loop reads to relabel calls lost to bot failures.
    pub async fn qa_failure_reasons(&self) -> Result<Vec<(String, Vec<String>)>, RetrievalError> {
        let rows = sqlx::query("SELECT call_id, reason FROM qa_failures ORDER BY call_id, ordinal")
            .fetch_all(&self.pool)
            .await?;
        let mut out: Vec<(String, Vec<String>)> = Vec::new();
        for r in &rows {
            let id: String = r.try_get(0)?;
            let reason: String = r.try_get(1)?;
            match out.last_mut() {
                Some((last, reasons)) if *last == id => reasons.push(reason),
                _ => out.push((id, vec![reason])),
            }
        }
        Ok(out)
    }
}

/// A stored call as the learning loop reads it: who, how it ended, and its QA verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingCall {
    pub call_id: String,
    pub customer_id: String,
    pub outcome: String,
    pub started_at_ms: i64,
    /// The primary failure reason of the call's QA grade (first grader by name), if graded
    /// and failed.
    pub primary_failure: Option<String>,
    pub graded: bool,
}

impl SqlStore {
    /// Every stored call with its outcome and QA verdict, oldest first.
    pub async fn training_calls(&self) -> Result<Vec<TrainingCall>, RetrievalError> {
        let rows = sqlx::query(
            "SELECT c.id, c.customer_id, c.outcome, c.started_at_ms, \
             (SELECT q.primary_failure FROM qa_calls q WHERE q.call_id = c.id ORDER BY q.grader LIMIT 1), \
             (SELECT COUNT(*) FROM qa_calls q WHERE q.call_id = c.id) \
             FROM calls c ORDER BY c.started_at_ms, c.id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(TrainingCall {
                    call_id: r.try_get(0)?,
                    customer_id: r.try_get(1)?,
                    outcome: r.try_get(2)?,
                    started_at_ms: r.try_get(3)?,
                    primary_failure: r.try_get(4)?,
                    graded: r.try_get::<i64, _>(5)? > 0,
                })
            })
            .collect()
    }
}

/// A query with `ids` bound to its first markers.
fn with_ids<'q>(
    sql: &'q str,
    ids: &'q [String],
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    ids.iter()
        .fold(sqlx::query(sql), |q, id| q.bind(id.as_str()))
}

async fn read_qa_calls(
    conn: &mut AnyConnection,
    ids: &[String],
) -> Result<Vec<QaCallRecord>, RetrievalError> {
    let list = placeholders(conn, 1, ids.len());
    let bind_all = |sql| with_ids(sql, ids);
    let sql = format!(
        "SELECT c.id, c.customer_id, c.campaign_id, c.started_at_ms, c.ended_at_ms, c.outcome, \
         c.end_reason, c.language, c.segment, c.duration_ms, cu.display_name, cu.phone_sealed, \
         co.do_not_call FROM calls c JOIN customers cu ON cu.id = c.customer_id \
         LEFT JOIN consents co ON co.customer_id = c.customer_id WHERE c.id IN {list}"
    );
    let mut calls: HashMap<String, QaCallRecord> = HashMap::with_capacity(ids.len());
    for r in bind_all(&sql).fetch_all(&mut *conn).await? {
        let id: String = r.try_get(0)?;
        let dnc: Option<i64> = r.try_get(12)?;
        calls.insert(
            id.clone(),
            QaCallRecord {
                call: CallRecord {
                    id,
                    customer_id: r.try_get(1)?,
                    campaign_id: r.try_get(2)?,
                    started_at_ms: r.try_get(3)?,
                    ended_at_ms: r.try_get(4)?,
                    outcome: r.try_get(5)?,
                    turns: Vec::new(),
                },
                end_reason: r.try_get(6)?,
                language: r.try_get(7)?,
                segment: r.try_get(8)?,
                duration_ms: r.try_get(9)?,
                customer_name: r.try_get(10)?,
                phone_sealed: r.try_get(11)?,
                do_not_call: dnc.unwrap_or(0) != 0,
                actions: Vec::new(),
                events: Vec::new(),
                metrics: Vec::new(),
            },
        );
    }
    let sql = format!(
        "SELECT call_id, speaker, text, latency_ms FROM turns WHERE call_id IN {list} ORDER BY call_id, seq"
    );
    for r in bind_all(&sql).fetch_all(&mut *conn).await? {
        let id: String = r.try_get(0)?;
        if let Some(c) = calls.get_mut(&id) {
            c.call.turns.push(TurnRecord {
                speaker: r.try_get(1)?,
                text: r.try_get(2)?,
                latency_ms: r.try_get(3)?,
            });
        }
    }
    let sql = format!(
        "SELECT call_id, seq, kind, detail, at_ms FROM actions WHERE call_id IN {list} ORDER BY call_id, seq"
    );
    for r in bind_all(&sql).fetch_all(&mut *conn).await? {
        let id: String = r.try_get(0)?;
        if let Some(c) = calls.get_mut(&id) {
            c.actions.push(Action {
                call_id: id,
                seq: r.try_get(1)?,
                kind: r.try_get(2)?,
                detail: r.try_get(3)?,
                at_ms: r.try_get(4)?,
            });
        }
    }
    let sql = format!(
        "SELECT call_id, at_ms, kind, detail FROM call_events WHERE call_id IN {list} ORDER BY call_id, seq"
    );
    for r in bind_all(&sql).fetch_all(&mut *conn).await? {
        let id: String = r.try_get(0)?;
        if let Some(c) = calls.get_mut(&id) {
            c.events.push(CallEventRecord {
                at_ms: r.try_get(1)?,
                kind: r.try_get(2)?,
                detail: r.try_get(3)?,
            });
        }
    }
    let sql = format!(
        "SELECT call_id, turn, caller_start_ms, caller_end_ms, asr_final_ms, dialog_ms, tts_first_audio_ms, \
         v2v_line_ms, v2v_wall_ms, interrupted, spoken_ms FROM turn_metrics WHERE call_id IN {list} \
         ORDER BY call_id, turn"
    );
    for r in bind_all(&sql).fetch_all(&mut *conn).await? {
        let id: String = r.try_get(0)?;
        if let Some(c) = calls.get_mut(&id) {
            c.metrics.push(TurnMetrics {
                turn: r.try_get(1)?,
                caller_start_ms: r.try_get(2)?,
                caller_end_ms: r.try_get(3)?,
                asr_final_ms: r.try_get(4)?,
                dialog_ms: r.try_get(5)?,
                tts_first_audio_ms: r.try_get(6)?,
                v2v_line_ms: r.try_get(7)?,
                v2v_wall_ms: r.try_get(8)?,
                interrupted: r.try_get::<i64, _>(9)? != 0,
                spoken_ms: r.try_get(10)?,
            });
        }
    }
    Ok(ids.iter().filter_map(|id| calls.remove(id)).collect())
}

async fn read_qa_grades(
    conn: &mut AnyConnection,
    grader: &str,
    ids: &[String],
) -> Result<Vec<QaCallGradeRecord>, RetrievalError> {
    let list = placeholders(conn, 1, ids.len());
    // The grader's marker is bound last: on SQLite the markers are positional `?`.
    let grader_marker = if conn.backend_name().eq_ignore_ascii_case("sqlite") {
        "?".to_string()
    } else {
        format!("${}", ids.len() + 1)
    };
    let bind_all = |sql, with_grader: bool| {
        let q = with_ids(sql, ids);
        if with_grader {
            q.bind(grader)
        } else {
            q
        }
    };
    let sql = format!(
        "SELECT call_id, grader, rubric_version, score, max_score, graded_at_ms FROM qa_calls \
         WHERE call_id IN {list} AND grader = {grader_marker}"
    );
    let mut grades: HashMap<String, QaCallGradeRecord> = HashMap::with_capacity(ids.len());
    for r in bind_all(&sql, true).fetch_all(&mut *conn).await? {
        let id: String = r.try_get(0)?;
        grades.insert(
            id.clone(),
            QaCallGradeRecord {
                call_id: id,
                grader: r.try_get(1)?,
                rubric_version: r.try_get(2)?,
                score: r.try_get(3)?,
                max_score: r.try_get(4)?,
                checks: Vec::new(),
                failures: Vec::new(),
                graded_at_ms: r.try_get(5)?,
            },
        );
    }
    // Every grader's checks of these calls (a judge's checks beside the rules').
    let sql = format!(
        "SELECT call_id, criterion, passed, score, max_score, grader, notes FROM qa_grades \
         WHERE call_id IN {list} ORDER BY call_id, graded_at_ms, criterion"
    );
    for r in bind_all(&sql, false).fetch_all(&mut *conn).await? {
        let id: String = r.try_get(0)?;
        if let Some(g) = grades.get_mut(&id) {
            let passed: Option<i64> = r.try_get(2)?;
            g.checks.push(QaCheckRecord {
                criterion: r.try_get(1)?,
                passed: passed.map(|p| p != 0),
                score: r.try_get(3)?,
                max_score: r.try_get(4)?,
                grader: r.try_get(5)?,
                notes: r.try_get(6)?,
                evidence: Vec::new(),
            });
        }
    }
    let sql = format!(
        "SELECT call_id, criterion, turn, at_ms, note FROM qa_evidence WHERE call_id IN {list} \
         ORDER BY call_id, criterion, seq"
    );
    for r in bind_all(&sql, false).fetch_all(&mut *conn).await? {
        let id: String = r.try_get(0)?;
        let criterion: String = r.try_get(1)?;
        if let Some(check) = grades
            .get_mut(&id)
            .and_then(|g| g.checks.iter_mut().find(|c| c.criterion == criterion))
        {
            check.evidence.push(QaEvidenceRecord {
                turn: r.try_get(2)?,
                at_ms: r.try_get(3)?,
                note: r.try_get(4)?,
            });
        }
    }
    let sql = format!(
        "SELECT call_id, reason, criterion, detail, turn, at_ms FROM qa_failures \
         WHERE call_id IN {list} ORDER BY call_id, ordinal"
    );
    for r in bind_all(&sql, false).fetch_all(&mut *conn).await? {
        let id: String = r.try_get(0)?;
        if let Some(g) = grades.get_mut(&id) {
            g.failures.push(QaFailureRecord {
                reason: r.try_get(1)?,
                criterion: r.try_get(2)?,
                detail: r.try_get(3)?,
                turn: r.try_get(4)?,
                at_ms: r.try_get(5)?,
            });
        }
    }
    Ok(ids.iter().filter_map(|id| grades.remove(id)).collect())
}

/// Writes grades on `conn` (inside the caller's transaction): each call's earlier rows from the
/// same graders go first, then checks, evidence, failures and the summary in multi-row batches.
async fn write_qa_grades(
    conn: &mut AnyConnection,
    grades: &[QaCallGradeRecord],
) -> Result<(), RetrievalError> {
    for g in grades {
        let mut graders: Vec<&str> = g.checks.iter().map(|c| c.grader.as_str()).collect();
        graders.push(&g.grader);
        graders.sort_unstable();
        graders.dedup();
        for grader in graders {
            sqlx::query(
                "DELETE FROM qa_evidence WHERE call_id = $1 AND criterion IN \
                 (SELECT criterion FROM qa_grades WHERE call_id = $2 AND grader = $3)",
            )
            .bind(&g.call_id)
            .bind(&g.call_id)
            .bind(grader)
            .execute(&mut *conn)
            .await?;
            for table in ["qa_grades", "qa_failures", "qa_calls"] {
                sqlx::query(&format!(
                    "DELETE FROM {table} WHERE call_id = $1 AND grader = $2"
                ))
                .bind(&g.call_id)
                .bind(grader)
                .execute(&mut *conn)
                .await?;
            }
        }
    }
    let checks: Vec<(&QaCallGradeRecord, &QaCheckRecord)> = grades
        .iter()
        .flat_map(|g| g.checks.iter().map(move |c| (g, c)))
        .collect();
    for chunk in checks.chunks(batch_rows(8)) {
        let sql = format!(
            "INSERT INTO qa_grades (call_id, criterion, score, max_score, grader, notes, graded_at_ms, passed) VALUES {}",
            placeholders(conn, chunk.len(), 8)
        );
        let mut q = sqlx::query(&sql);
        for (g, c) in chunk {
            q = q
                .bind(&g.call_id)
                .bind(&c.criterion)
                .bind(c.score)
                .bind(c.max_score)
                .bind(&c.grader)
                .bind(&c.notes)
                .bind(g.graded_at_ms)
                .bind(c.passed.map(i64::from));
        }
        q.execute(&mut *conn).await?;
    }
    let evidence: Vec<(&str, &str, i64, &QaEvidenceRecord)> = checks
        .iter()
        .flat_map(|(g, c)| {
            c.evidence
                .iter()
                .enumerate()
                .map(|(i, e)| (g.call_id.as_str(), c.criterion.as_str(), i as i64, e))
        })
        .collect();
    for chunk in evidence.chunks(batch_rows(6)) {
        let sql = format!(
            "INSERT INTO qa_evidence (call_id, criterion, seq, turn, at_ms, note) VALUES {}",
            placeholders(conn, chunk.len(), 6)
        );
        let mut q = sqlx::query(&sql);
        for (call_id, criterion, seq, e) in chunk {
            q = q
                .bind(*call_id)
                .bind(*criterion)
                .bind(*seq)
                .bind(e.turn)
                .bind(e.at_ms)
                .bind(&e.note);
        }
        q.execute(&mut *conn).await?;
    }
    let failures: Vec<(&QaCallGradeRecord, i64, &QaFailureRecord)> = grades
        .iter()
        .flat_map(|g| {
            g.failures
                .iter()
                .enumerate()
                .map(move |(i, f)| (g, i as i64, f))
        })
        .collect();
    for chunk in failures.chunks(batch_rows(8)) {
        let sql = format!(
            "INSERT INTO qa_failures (call_id, reason, ordinal, criterion, detail, turn, at_ms, grader) VALUES {}",
            placeholders(conn, chunk.len(), 8)
        );
        let mut q = sqlx::query(&sql);
        for (g, ordinal, f) in chunk {
            q = q
                .bind(&g.call_id)
                .bind(&f.reason)
                .bind(*ordinal)
                .bind(f.criterion.as_deref())
                .bind(&f.detail)
                .bind(f.turn)
                .bind(f.at_ms)
                .bind(&g.grader);
        }
        q.execute(&mut *conn).await?;
    }
    for chunk in grades.chunks(batch_rows(9)) {
        let sql = format!(
            "INSERT INTO qa_calls (call_id, grader, rubric_version, score, max_score, checks_passed, \
             checks_failed, primary_failure, graded_at_ms) VALUES {}",
            placeholders(conn, chunk.len(), 9)
        );
        let mut q = sqlx::query(&sql);
        for g in chunk {
            let passed = g.checks.iter().filter(|c| c.passed == Some(true)).count() as i64;
            let failed = g.checks.iter().filter(|c| c.passed == Some(false)).count() as i64;
            q = q
                .bind(&g.call_id)
                .bind(&g.grader)
                .bind(&g.rubric_version)
                .bind(g.score)
                .bind(g.max_score)
                .bind(passed)
                .bind(failed)
                .bind(g.failures.first().map(|f| f.reason.as_str()))
                .bind(g.graded_at_ms);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

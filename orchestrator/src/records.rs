//! Call records: a [`FinishedCall`] becomes the stored call (row, turns, actions, events, stage
//! latencies, the sealed recording, do-not-call) in one transaction with the dialer's attempt
//! completion ([`SqlCallSink`]), then the customer is re-indexed so the next call retrieves this
//! one. The stereo WAV is sealed (AES-256-GCM) on disk and the clear file removed.

use crate::session::{CallSink, FinishedCall};
use anyhow::Context;
use async_trait::async_trait;
use dialog::policy::DialogEvent;
use retrieval::store::{
    Action, CallEventRecord, CallRecord, SealedRecording, StoredCall, TurnMetrics, TurnRecord,
};
use retrieval::{PrivacyKeys, RetrievalError, SqlProfileStore, SqlStore};
use sqlx::AnyConnection;
use std::path::PathBuf;
use std::sync::Arc;

/// What the dialer does with an attempt's end, inside the call's transaction.
#[async_trait]
pub trait AttemptCompletion: Send + Sync {
    /// Marks the attempt done and schedules what follows (retry, callback, nothing).
    async fn complete(
        &self,
        conn: &mut AnyConnection,
        call: &FinishedCall,
    ) -> Result<(), RetrievalError>;
}

/// Stores calls in the SQL store.
pub struct SqlCallSink {
    pub store: SqlStore,
    pub keys: PrivacyKeys,
    /// Re-indexes the customer after the call (the next call retrieves this one).
    pub profiles: Option<Arc<SqlProfileStore>>,
    /// The dialer's side of a campaign call.
    pub attempts: Option<Arc<dyn AttemptCompletion>>,
}

impl std::fmt::Debug for SqlCallSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlCallSink").finish_non_exhaustive()
    }
}

/// Seals a WAV in place: writes `<path>.sealed` and removes the clear file.
fn seal_recording(path: &std::path::Path, keys: &PrivacyKeys) -> anyhow::Result<(PathBuf, u64)> {
    let clear = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let sealed = keys.seal_bytes(&clear)?;
    let mut out = path.as_os_str().to_owned();
    out.push(".sealed");
    let out = PathBuf::from(out);
    std::fs::write(&out, &sealed).with_context(|| format!("writing {}", out.display()))?;
    std::fs::remove_file(path).with_context(|| format!("removing {}", path.display()))?;
    Ok((out, sealed.len() as u64))
}

/// Reads a sealed recording back into WAV bytes.
pub fn open_recording(path: &std::path::Path, keys: &PrivacyKeys) -> anyhow::Result<Vec<u8>> {
    let sealed = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(keys.open_bytes(&sealed)?)
}

/// The stored form of a finished call (the recording given as already sealed).
pub fn stored_call(call: &FinishedCall, recording: Option<SealedRecording>) -> StoredCall {
    let id = call.setup.call_id.clone();
    let mut turns = Vec::new();
    let mut actions = Vec::new();
    let mut do_not_call = false;
    let mut segment = String::new();
    if let Some(state) = &call.state {
        segment = state.segment.as_str().to_string();
        for t in &state.turns {
            if let Some(c) = &t.caller {
                turns.push(TurnRecord {
                    speaker: "caller".into(),
                    text: c.text.clone(),
                    latency_ms: None,
                });
            }
            turns.push(TurnRecord {
                speaker: "bot".into(),
                text: t.reply.clone(),
                latency_ms: Some(t.first_sentence_ms),
            });
            actions.push(Action {
                call_id: id.clone(),
                seq: t.index as i64,
                kind: t.decision.action.kind().to_string(),
                detail: serde_json::to_string(&t.decision).unwrap_or_default(),
                at_ms: call.ended_at_ms,
            });
        }
    }
    for e in &call.events {
        if e.kind == "dialog_event" {
            if let Ok(DialogEvent::AddToDoNotCall) = serde_json::from_value(e.detail.clone()) {
                do_not_call = true;
            }
        }
    }
    let metrics = call
        .turns
        .iter()
        .enumerate()
        .map(|(i, t)| TurnMetrics {
            turn: i as i64 + 1,
            caller_start_ms: t.caller_start_ms as i64,
            caller_end_ms: t.caller_end_ms as i64,
            asr_final_ms: t.latency.asr_final_ms,
            dialog_ms: t.latency.dialog_ms,
            tts_first_audio_ms: t.latency.tts_first_audio_ms,
            v2v_line_ms: t.latency.v2v_line_ms,
            v2v_wall_ms: t.latency.v2v_wall_ms,
            interrupted: t.interrupted,
            spoken_ms: t.spoken_ms as i64,
        })
        .collect();
    StoredCall {
        call: CallRecord {
            id,
            customer_id: call.setup.customer_id.clone(),
            campaign_id: call.setup.campaign_id.clone(),
            started_at_ms: call.started_at_ms,
            ended_at_ms: call.ended_at_ms,
            outcome: call.outcome.clone(),
            turns,
        },
        attempt_id: call.setup.attempt_id.clone(),
        end_reason: call.end_reason.clone(),
        language: call.setup.language.code().to_string(),
        segment,
        duration_ms: call.duration_ms as i64,
        actions,
        events: call
            .events
            .iter()
            .map(|e| CallEventRecord {
                at_ms: e.at_ms as i64,
                kind: e.kind.clone(),
                detail: e.detail.to_string(),
            })
            .collect(),
        metrics,
        recording,
        do_not_call,
    }
}

#[async_trait]
impl CallSink for SqlCallSink {
    async fn store(&self, call: &FinishedCall) -> anyhow::Result<()> {
        let recording = match &call.recording {
            Some(path) => {
                let (path, keys) = (path.clone(), self.keys.clone());
                let (sealed, bytes) =
                    tokio::task::spawn_blocking(move || seal_recording(&path, &keys)).await??;
                Some(SealedRecording {
                    path: sealed,
                    sample_rate: i64::from(voice::SAMPLE_RATE),
                    duration_ms: call.recording_ms as i64,
                    bytes: bytes as i64,
                })
            }
            None => None,
        };
        let stored = stored_call(call, recording);
        let attempts = self.attempts.clone();
        self.store
            .store_call(
                &stored,
                &self.keys,
                async |conn: &mut AnyConnection| match &attempts {
                    Some(a) => a.complete(conn, call).await,
                    None => Ok(()),
                },
            )
            .await
            .with_context(|| format!("storing call {}", call.setup.call_id))?;
        if let Some(p) = &self.profiles {
            if call.state.is_some() {
                if let Err(e) = p.index_customer(&call.setup.customer_id).await {
                    tracing::warn!(call_id = %call.setup.call_id, error = %e, "customer not re-indexed");
                }
            }
        }
        Ok(())
    }
}

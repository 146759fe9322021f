-- What a live call session stores besides 0001's call and turns: how the call ended, its
-- events (barge-ins, hand-offs, re-prompts, dialogue events) and per-turn stage latencies.
-- Written with the call row in one transaction (SqlStore::store_call).
ALTER TABLE calls ADD COLUMN end_reason TEXT;
ALTER TABLE calls ADD COLUMN language TEXT;
ALTER TABLE calls ADD COLUMN segment TEXT;
ALTER TABLE calls ADD COLUMN duration_ms BIGINT;
ALTER TABLE calls ADD COLUMN attempt_id TEXT;

CREATE TABLE IF NOT EXISTS call_events (
    call_id TEXT NOT NULL REFERENCES calls(id),
    seq BIGINT NOT NULL,
    -- Line time: ms of caller audio received when it happened.
    at_ms BIGINT NOT NULL,
    kind TEXT NOT NULL,
    detail TEXT NOT NULL,
    PRIMARY KEY (call_id, seq)
);

CREATE TABLE IF NOT EXISTS turn_metrics (
    call_id TEXT NOT NULL REFERENCES calls(id),
    turn BIGINT NOT NULL,
    caller_start_ms BIGINT NOT NULL,
    caller_end_ms BIGINT NOT NULL,
    asr_final_ms DOUBLE PRECISION NOT NULL,
    dialog_ms DOUBLE PRECISION NOT NULL,
    tts_first_audio_ms DOUBLE PRECISION NOT NULL,
    v2v_line_ms DOUBLE PRECISION,
    v2v_wall_ms DOUBLE PRECISION,
    interrupted BIGINT NOT NULL,
    spoken_ms BIGINT NOT NULL,
    PRIMARY KEY (call_id, turn)
);
CREATE INDEX IF NOT EXISTS calls_campaign ON calls (campaign_id, started_at_ms);

-- QA grading (the qa crate's `ringwise qa run`), portable between SQLite and PostgreSQL (sqlx Any
-- driver): whether each rubric check passed, the evidence it points at, the failure reasons of a
-- call from a fixed taxonomy, and one summary row per graded call, which is also what marks a
-- call as graded. All of a call's rows are written in one transaction. Times are milliseconds
-- since the Unix epoch; every integer is BIGINT. Existing tables of 0001-0004 are unchanged but
-- for the new column of qa_grades.

-- 1 passed, 0 failed, NULL not applicable (e.g. no price objection to handle).
ALTER TABLE qa_grades ADD COLUMN passed BIGINT;

-- One row per call and grader: the rubric total and the primary failure reason, if any.
CREATE TABLE IF NOT EXISTS qa_calls (
    call_id TEXT NOT NULL REFERENCES calls(id),
    grader TEXT NOT NULL,
    rubric_version TEXT NOT NULL,
    score DOUBLE PRECISION NOT NULL,
    max_score DOUBLE PRECISION NOT NULL,
    checks_passed BIGINT NOT NULL,
    checks_failed BIGINT NOT NULL,
    primary_failure TEXT,
    graded_at_ms BIGINT NOT NULL,
    PRIMARY KEY (call_id, grader)
);
CREATE INDEX IF NOT EXISTS qa_calls_primary ON qa_calls (primary_failure);

-- Failure reasons of a call (taxonomy in qa::grade::FailureReason), `ordinal` 0 is the primary
-- one; `turn` / `at_ms` point at the first evidence (transcript index, line time).
CREATE TABLE IF NOT EXISTS qa_failures (
    call_id TEXT NOT NULL REFERENCES calls(id),
    reason TEXT NOT NULL,
    ordinal BIGINT NOT NULL,
    criterion TEXT,
    detail TEXT NOT NULL,
    turn BIGINT,
    at_ms BIGINT,
    grader TEXT NOT NULL,
    PRIMARY KEY (call_id, reason)
);
CREATE INDEX IF NOT EXISTS qa_failures_reason ON qa_failures (reason);

-- Evidence spans of a check: a transcript turn (index into the call's turns) and its line time.
-- The note says what the turn shows; the words themselves stay in `turns`.
CREATE TABLE IF NOT EXISTS qa_evidence (
    call_id TEXT NOT NULL REFERENCES calls(id),
    criterion TEXT NOT NULL,
    seq BIGINT NOT NULL,
    turn BIGINT NOT NULL,
    at_ms BIGINT,
    note TEXT NOT NULL,
    PRIMARY KEY (call_id, criterion, seq)
);

-- Campaign experiments (orchestrator::experiment): which arm of an A/B split and which script
-- variant of each bandit choice point a call played, written with the call in its transaction,
-- and the bandit's posterior per campaign, segment, choice point and arm. Portable between
-- SQLite and PostgreSQL (sqlx Any driver); every integer is BIGINT.

-- One row per call and choice: `choice` is `ab` for the A/B split, else a choice point
-- (`opening`, `pitch_order`, `after_refusal`); `arm` the arm's name (A/B) or variant (`v0`, …).
-- Personal: erased with the customer (SqlStore::erase_customer).
CREATE TABLE IF NOT EXISTS call_arms (
    call_id TEXT NOT NULL REFERENCES calls(id),
    customer_id TEXT NOT NULL,
    campaign_id TEXT NOT NULL,
    experiment TEXT NOT NULL,
    choice TEXT NOT NULL,
    arm TEXT NOT NULL,
    segment TEXT NOT NULL,
    -- 1 if the call's outcome was `converted`.
    converted BIGINT NOT NULL,
    -- 1 if a bandit chose the arm (its posterior was updated with this call).
    by_bandit BIGINT NOT NULL,
    PRIMARY KEY (call_id, choice)
);
CREATE INDEX IF NOT EXISTS call_arms_experiment ON call_arms (campaign_id, experiment, choice);
CREATE INDEX IF NOT EXISTS call_arms_customer ON call_arms (customer_id);

-- The bandit's state: Beta(1 + conversions, 1 + plays - conversions) per arm. Counts over a
-- segment only, no customer in them: erasure leaves them (like a report's totals).
CREATE TABLE IF NOT EXISTS bandit_arms (
    campaign_id TEXT NOT NULL,
    segment TEXT NOT NULL,
    choice TEXT NOT NULL,
    arm TEXT NOT NULL,
    plays BIGINT NOT NULL,
    conversions BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL,
    PRIMARY KEY (campaign_id, segment, choice, arm)
);

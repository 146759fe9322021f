-- The campaign dialer's durable state, portable between SQLite and PostgreSQL (sqlx Any driver):
-- one run row per campaign, the per-campaign dial queue and every dial attempt. Times are
-- milliseconds since the Unix epoch; every integer is BIGINT. A queue row is claimed by one
-- conditional UPDATE (status and attempt count checked) in the same transaction that inserts its
-- `dialing` attempt, so two dialers never claim the same row; the lease columns say which dialer
-- holds a row and until when, so several processes can share a campaign on PostgreSQL.
-- No foreign key to customers: erasing a customer must not be blocked by dialer rows (the
-- erasure removes them too).

-- A campaign as the dialer runs it: `running`, `paused`, `stopped` (for good) or `done`.
-- `config` is the dialer configuration (JSON) the campaign was started with; `agents` is the
-- number of human agents taking this campaign's hand-offs, updated by the API.
CREATE TABLE IF NOT EXISTS dial_campaigns (
    campaign_id TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    config TEXT NOT NULL,
    agents BIGINT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL
);

-- Who a campaign still has to call. `status`: pending (waits for `next_attempt_at_ms`),
-- dialing (an attempt is live, leased to `lease_owner` until `lease_until_ms`), done,
-- do_not_call, exhausted (out of attempts). `callback_at_ms` is set while a callback the
-- customer booked is owed (it is dialed before fresh candidates); `callbacks` counts the
-- callbacks honoured. `time_zone` (IANA) and `region` decide the calling window.
CREATE TABLE IF NOT EXISTS dial_queue (
    campaign_id TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    segment TEXT NOT NULL,
    score DOUBLE PRECISION NOT NULL,
    time_zone TEXT NOT NULL,
    region TEXT,
    status TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    callbacks BIGINT NOT NULL,
    next_attempt_at_ms BIGINT NOT NULL,
    callback_at_ms BIGINT,
    last_outcome TEXT,
    last_attempt_at_ms BIGINT,
    lease_owner TEXT,
    lease_until_ms BIGINT,
    enqueued_at_ms BIGINT NOT NULL,
    PRIMARY KEY (campaign_id, customer_id)
);
CREATE INDEX IF NOT EXISTS dial_queue_due ON dial_queue (campaign_id, status, next_attempt_at_ms);
CREATE INDEX IF NOT EXISTS dial_queue_score ON dial_queue (campaign_id, status, score);
CREATE INDEX IF NOT EXISTS dial_queue_customer ON dial_queue (customer_id);

-- Every dial, written as `dialing` before the call is placed and completed in the transaction
-- that stores the call record. `status`: dialing, completed, interrupted (the dialer died
-- while it was live). `callback` is 1 when the attempt honoured a booked callback. One attempt
-- number per customer and campaign: a second claim of the same attempt cannot be inserted.
CREATE TABLE IF NOT EXISTS dial_attempts (
    attempt_id TEXT PRIMARY KEY,
    campaign_id TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    attempt_no BIGINT NOT NULL,
    call_id TEXT NOT NULL,
    status TEXT NOT NULL,
    owner TEXT NOT NULL,
    callback BIGINT NOT NULL,
    started_at_ms BIGINT NOT NULL,
    ended_at_ms BIGINT,
    outcome TEXT,
    UNIQUE (campaign_id, customer_id, attempt_no)
);
CREATE INDEX IF NOT EXISTS dial_attempts_customer ON dial_attempts (customer_id, started_at_ms);
CREATE INDEX IF NOT EXISTS dial_attempts_campaign ON dial_attempts (campaign_id, status);

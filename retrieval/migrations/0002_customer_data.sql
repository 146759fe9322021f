-- The customer data layer, portable between SQLite and PostgreSQL (sqlx Any driver): profile
-- attributes, consent, campaigns, CRM call logs, actions, recordings, QA grades and model
-- versions. Times are milliseconds since the Unix epoch; flags are BIGINT 0/1; every integer is
-- BIGINT so both databases decode it as i64. Existing columns of 0001 are unchanged.

-- The CRM key of a customer is `customers.id`. The phone number is stored only as a keyed hash
-- (for joins and deduplication) and an AES-256-GCM sealed copy (for dialing).
ALTER TABLE customers ADD COLUMN phone_hash TEXT;
ALTER TABLE customers ADD COLUMN phone_sealed TEXT;
CREATE UNIQUE INDEX IF NOT EXISTS customers_phone_hash ON customers (phone_hash);

-- Static (age, region, occupation, income band, children), dynamic (purchases, last contact)
-- and implicit (price sensitivity, segment) attributes: one row per customer.
CREATE TABLE IF NOT EXISTS profiles (
    customer_id TEXT PRIMARY KEY REFERENCES customers(id),
    age BIGINT,
    region TEXT,
    occupation TEXT,
    income_band BIGINT,
    children_in_school BIGINT,
    recent_purchases BIGINT,
    last_contact_ms BIGINT,
    price_sensitivity DOUBLE PRECISION,
    segment TEXT,
    updated_at_ms BIGINT NOT NULL
);

-- Implicit attribute with many values per customer.
CREATE TABLE IF NOT EXISTS interests (
    customer_id TEXT NOT NULL REFERENCES customers(id),
    interest TEXT NOT NULL,
    PRIMARY KEY (customer_id, interest)
);

CREATE TABLE IF NOT EXISTS consents (
    customer_id TEXT PRIMARY KEY REFERENCES customers(id),
    do_not_call BIGINT NOT NULL,
    source TEXT NOT NULL,
    updated_at_ms BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS campaigns (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    product TEXT NOT NULL,
    language TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL
);

-- Contacts from the CRM's own history (before or beside this system), fused to customers by
-- phone hash at import.
CREATE TABLE IF NOT EXISTS call_logs (
    id TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL REFERENCES customers(id),
    started_at_ms BIGINT NOT NULL,
    duration_s BIGINT,
    outcome TEXT NOT NULL,
    notes TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS call_logs_customer ON call_logs (customer_id, started_at_ms);
CREATE INDEX IF NOT EXISTS calls_customer ON calls (customer_id, started_at_ms);

-- What the bot did during a call (callback scheduled, SMS sent, transfer, do-not-call, ...).
CREATE TABLE IF NOT EXISTS actions (
    call_id TEXT NOT NULL REFERENCES calls(id),
    seq BIGINT NOT NULL,
    kind TEXT NOT NULL,
    detail TEXT NOT NULL,
    at_ms BIGINT NOT NULL,
    PRIMARY KEY (call_id, seq)
);

-- The audio file's path is sealed (AES-256-GCM) like a phone number: it may name the customer.
CREATE TABLE IF NOT EXISTS recordings (
    call_id TEXT PRIMARY KEY REFERENCES calls(id),
    path_sealed TEXT NOT NULL,
    sample_rate BIGINT NOT NULL,
    duration_ms BIGINT NOT NULL,
    bytes BIGINT NOT NULL,
    created_at_ms BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS qa_grades (
    call_id TEXT NOT NULL REFERENCES calls(id),
    criterion TEXT NOT NULL,
    score DOUBLE PRECISION NOT NULL,
    max_score DOUBLE PRECISION NOT NULL,
    grader TEXT NOT NULL,
    notes TEXT NOT NULL,
    graded_at_ms BIGINT NOT NULL,
    PRIMARY KEY (call_id, criterion)
);

-- Trained models (propensity, segmentation, best time) and which one is live.
CREATE TABLE IF NOT EXISTS model_versions (
    name TEXT NOT NULL,
    version TEXT NOT NULL,
    path TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    metrics TEXT NOT NULL,
    active BIGINT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    PRIMARY KEY (name, version)
);

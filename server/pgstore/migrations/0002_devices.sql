-- Devices, their keys and names, the assertions they presented, and the
-- enrolment codes that enrol them. The devices table has the columns of
-- the SQLite server's: the sync store keeps its counters there.
CREATE TABLE devices (
    id           UUID PRIMARY KEY,
    unit_id      UUID NOT NULL,
    enrolled_at  TIMESTAMPTZ NOT NULL,
    enrolled_by  TEXT,
    revoked_at   TIMESTAMPTZ,
    retired_at   TIMESTAMPTZ,
    last_seq     BIGINT NOT NULL DEFAULT 0,
    last_push_at TIMESTAMPTZ,
    last_pull_at TIMESTAMPTZ,
    protocol     INTEGER,
    rejected     INTEGER NOT NULL DEFAULT 0,
    applied      BIGINT NOT NULL DEFAULT 0,
    healed       BIGINT NOT NULL DEFAULT 0,
    echo_after   BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE enrol_codes (
    code_hash  BYTEA PRIMARY KEY,
    unit_id    UUID NOT NULL,
    created_by TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    used_at    TIMESTAMPTZ,
    device_id  UUID,
    public_key BYTEA
);

CREATE TABLE device_keys (
    device_id  UUID PRIMARY KEY,
    public_key BYTEA NOT NULL UNIQUE,  -- 32 bytes, Ed25519
    audience   TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE device_assertions (
    device_id  TEXT NOT NULL,   -- the subject: device:<id> or an enrolment key's name
    jti_hash   BYTEA NOT NULL,  -- SHA-256 of the jti: no text a caller chose is kept
    expires_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (device_id, jti_hash)
);
CREATE INDEX device_assertions_expiry ON device_assertions (expires_at);

CREATE TABLE device_names (
    device_id UUID PRIMARY KEY,
    name      TEXT NOT NULL,
    named_at  TIMESTAMPTZ NOT NULL
);

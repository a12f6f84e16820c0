-- Devices authenticate with a key pair of their own (protocol 2): the
-- device makes an Ed25519 key pair at enrolment and keeps the private key;
-- the server keeps the public key. For an access token the device presents
-- a short-lived assertion signed with its key. No secret rotates, so no
-- lost or repeated answer can end a device's access: only revocation does.

-- The public key of each device, and the audience its assertions name (the
-- token endpoint's URL as the server gave it at enrolment).
CREATE TABLE device_keys (
    device_id  TEXT PRIMARY KEY,
    public_key BLOB NOT NULL UNIQUE,  -- 32 bytes, Ed25519
    audience   TEXT NOT NULL,
    created_at INTEGER NOT NULL
) WITHOUT ROWID;

-- The ids (jti) of assertions seen, until they expire: an assertion works
-- once. Rows past their expiry are pruned.
CREATE TABLE device_assertions (
    device_id  TEXT NOT NULL,
    jti_hash   BLOB NOT NULL,   -- SHA-256 of the jti: no text a caller chose is kept
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (device_id, jti_hash)
) WITHOUT ROWID;
CREATE INDEX device_assertions_expiry ON device_assertions (expires_at);

-- The key an enrolment code was used with: the same code from the same
-- key, while the code is valid, is the same enrolment (a retry after a
-- lost answer), not a second device.
ALTER TABLE enrol_codes ADD COLUMN public_key BLOB;

-- Rotating refresh tokens are gone: a lost answer could end a device's
-- session for good.
DROP TABLE refresh_tokens;

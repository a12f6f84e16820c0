-- Attempts the rate limits count (failed logins per username, logins and
-- enrolments per address), shared by every server on the database. The
-- name is a SHA-256 of the limiter's scope and the name it counts under:
-- no text a caller chose is kept.
CREATE TABLE limit_attempts (
    name_hash BYTEA NOT NULL,
    at        TIMESTAMPTZ NOT NULL
);
CREATE INDEX limit_attempts_name ON limit_attempts (name_hash, at);
CREATE INDEX limit_attempts_at ON limit_attempts (at);

-- The change sequence's counter: one row. A transaction that takes change
-- numbers updates it first and so holds its lock until it commits; numbers
-- thus commit in the order they are taken (see docs/deployment.md).
CREATE TABLE sync_counter (
    one        BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (one),
    change_seq BIGINT NOT NULL DEFAULT 0,
    hlc        TEXT   NOT NULL DEFAULT ''
);
INSERT INTO sync_counter DEFAULT VALUES;

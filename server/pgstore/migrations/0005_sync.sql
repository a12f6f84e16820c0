-- The sync's bookkeeping beside the record tables (those are generated
-- from schema's field descriptors, see records.go): the pushes each device
-- had processed, to answer retries, and the spans of the change
-- sequence's lineage, which pull cursors carry a mark of.
CREATE TABLE device_pushes (
    device_id  UUID NOT NULL,
    first_seq  BIGINT NOT NULL,
    last_seq   BIGINT NOT NULL,
    hashes     BYTEA NOT NULL, -- 16 bytes per mutation, first_seq's first
    rejections TEXT,           -- JSON object of seq to error, or NULL
    restamps   TEXT,           -- JSON object of seq to version, or NULL
    PRIMARY KEY (device_id, first_seq)
);

CREATE TABLE change_lineage (
    id        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    mark      BIGINT NOT NULL UNIQUE,
    from_seq  BIGINT NOT NULL,
    opened_at TIMESTAMPTZ NOT NULL
);

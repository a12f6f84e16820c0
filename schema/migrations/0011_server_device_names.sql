-- The name a manager gives a tablet ("Van 1", "Bil 2"): a short label of
-- letters, digits, spaces and hyphens (server.ValidDeviceName), never text
-- about a person. A device without a row has no name.
CREATE TABLE device_names (
    device_id TEXT PRIMARY KEY,
    name      TEXT NOT NULL,
    named_at  INTEGER NOT NULL
) WITHOUT ROWID;

-- The spans of the change sequence, one a time the database is opened: a
-- random mark and the change sequence number it started at. Pull cursors
-- carry the mark current when they were made, so that the server can tell
-- a cursor of its own history from one of a history it does not have: a
-- cursor whose mark it does not hold, or whose number lies beyond where
-- its mark's span ended, was made by a copy of the database that went on
-- after the copy the server now runs on was taken (a restore by hand,
-- which keeps the epoch). Such a device sends its records again.
CREATE TABLE change_lineage (
    id        INTEGER PRIMARY KEY,
    mark      INTEGER NOT NULL UNIQUE,
    from_seq  INTEGER NOT NULL,
    opened_at INTEGER NOT NULL
);

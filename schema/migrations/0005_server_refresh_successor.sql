-- What became of each refresh token after its first use. A device whose
-- refresh answer was lost on the way presents the old token again: while
-- the successor has never been used, and once per token, that is taken for
-- a lost answer, the unused successor is superseded and a new one issued.
-- Presenting a superseded token, or the old one a second time, is reuse.
ALTER TABLE refresh_tokens ADD COLUMN successor BLOB;
ALTER TABLE refresh_tokens ADD COLUMN reissued_at INTEGER;
ALTER TABLE refresh_tokens ADD COLUMN superseded_at INTEGER;

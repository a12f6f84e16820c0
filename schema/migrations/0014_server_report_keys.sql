-- The perturbation of each cell of the authority's reports, fixed when the
-- cell is first published with records (docs/REPORTS.md, "A cell's noise is
-- fixed"). key is the cell key its records had then (the sum of their
-- record keys, or of their client keys for unique clients, modulo 2^32);
-- every later publication of the cell perturbs its count with this key,
-- whatever records it gains or loses, so that a cell watched over time
-- shows one draw of its noise, not one per change of its records. top is,
-- for a sum, the largest single contribution when the sum was first
-- published (NULL until then): the scale of its noise, fixed in the same
-- way. cell is the cell's address: period key, breakdown, group,
-- indicator. Never published.
CREATE TABLE report_keys (
    cell TEXT PRIMARY KEY,
    key  INTEGER NOT NULL CHECK (key >= 0 AND key < 4294967296),
    top  INTEGER
) WITHOUT ROWID;

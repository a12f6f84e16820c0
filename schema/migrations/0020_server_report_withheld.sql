-- The count cells of the authority's reports that an audit has withheld
-- (docs/REPORTS.md, "Locking"). A cell once withheld stays withheld in
-- every later publication, in provisional periods as in final ones and
-- whatever its records become, so that whether a cell is shown never
-- flips back and forth from pull to pull and never follows its count.
-- cell is the cell's address: period key, breakdown, group, indicator.
-- Never published as such: the reports show the cell as withheld.
CREATE TABLE report_withheld (
    cell TEXT PRIMARY KEY
) WITHOUT ROWID;

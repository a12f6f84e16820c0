package stats

// FullCount counts the indicators of q from the record tables, as Compute
// does for a query cut in a zone the rollups are not kept in, whatever
// q's zone: the reference the rollups are tested against.
var FullCount = scan

package wire

// CodeReportBuilding answers a request for the authority's reports when
// the server has no publication yet (it has just started) and the first
// one is still being built: the client waits the seconds Retry-After says
// and asks again. docs/errors.md says more.
const CodeReportBuilding Code = "report_building"

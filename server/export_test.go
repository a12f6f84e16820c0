package server

import "time"

// SetReportTiming sets how long a report request waits for the build of
// the current publication, and how long after a push a background build
// starts, and stops a background build already due.
func SetReportTiming(s *Server, wait, delay time.Duration) { s.reports.SetTiming(wait, delay) }

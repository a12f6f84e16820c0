package server

import (
	"fmt"
	"testing"
	"time"
)

// TestLoginLimiter counts failures per username in a sliding window and
// forgets the usernames whose failures have left it, however many are
// tried.
func TestLoginLimiter(t *testing.T) {
	l := newLoginLimiter(3, 15*time.Minute)
	start := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	for i := range 3 {
		if !l.allowed("anna", start) {
			t.Fatalf("attempt %d refused", i+1)
		}
		l.fail("anna", start)
	}
	if l.allowed("anna", start.Add(time.Minute)) {
		t.Error("a fourth attempt within the window was allowed")
	}
	if !l.allowed("anna", start.Add(16*time.Minute)) {
		t.Error("an attempt after the window was refused")
	}

	// Ten thousand usernames tried once each, then one more a window
	// later: only the new one is still counted.
	for i := range 10000 {
		l.fail(fmt.Sprintf("guess%d", i), start.Add(20*time.Minute))
	}
	l.fail("late", start.Add(40*time.Minute))
	l.mu.Lock()
	n := len(l.failures)
	l.mu.Unlock()
	if n != 1 {
		t.Errorf("%d usernames counted, want 1", n)
	}
}

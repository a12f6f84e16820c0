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

// TestLoginLimiterRetryAfter: a key at its limit is told to wait until
// the failure that keeps it there leaves the window, and not at all below
// it.
func TestLoginLimiterRetryAfter(t *testing.T) {
	l := newLoginLimiter(2, time.Minute)
	start := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	if d := l.retryAfter("10.0.0.1", start); d != 0 {
		t.Errorf("no attempts: wait %v", d)
	}
	l.fail("10.0.0.1", start)
	l.fail("10.0.0.1", start.Add(20*time.Second))
	if d := l.retryAfter("10.0.0.1", start.Add(30*time.Second)); d != 30*time.Second {
		t.Errorf("at the limit: wait %v, want 30s", d)
	}
	if d := l.retryAfter("10.0.0.1", start.Add(61*time.Second)); d != 0 {
		t.Errorf("after the first attempt left the window: wait %v", d)
	}
}

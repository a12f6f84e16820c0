package brygga

import (
	"math/rand/v2"
	"testing"
	"time"
)

// TestRetryWait: the waits after failures double from one second, each
// somewhere in the upper half of its step, and stop at the interval.
func TestRetryWait(t *testing.T) {
	low := func(n int64) int64 { return 0 }
	high := func(n int64) int64 { return n - 1 }
	for failures, want := range map[int]time.Duration{1: 2 * time.Second, 2: 4 * time.Second, 3: 8 * time.Second, 6: 64 * time.Second} {
		lo, hi := retryWait(failures, time.Hour, low), retryWait(failures, time.Hour, high)
		if lo != want/2 || hi != want {
			t.Errorf("failure %d: waits %v to %v, want %v to %v", failures, lo, hi, want/2, want)
		}
	}
	if w := retryWait(40, 5*time.Minute, high); w != 5*time.Minute {
		t.Errorf("after 40 failures: %v, want the interval", w)
	}
	// The jitter spreads the tablets: 100 draws give many distinct waits.
	seen := map[time.Duration]bool{}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 100 {
		w := retryWait(5, time.Hour, rng.Int64N)
		if w < 16*time.Second || w > 32*time.Second {
			t.Fatalf("after 5 failures: %v, want 16 s to 32 s", w)
		}
		seen[w] = true
	}
	if len(seen) < 50 {
		t.Errorf("only %d distinct waits in 100", len(seen))
	}
}

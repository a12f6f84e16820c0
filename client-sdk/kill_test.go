package brygga_test

import (
	"context"
	"math/rand/v2"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	brygga "github.com/brygga/brygga/client-sdk"
	"github.com/brygga/brygga/schema"
)

// TestServerKilled kills the server process with SIGKILL again and again
// while tablets push; after every restart each mutation a tablet had been
// told was applied is on the server exactly once, and in the end
// everything is. BRYGGA_LONG=1 kills it thirty times instead of three.
func TestServerKilled(t *testing.T) {
	kills := 3
	if os.Getenv("BRYGGA_LONG") != "" {
		kills = 30
	}
	ctx := context.Background()
	dir := t.TempDir()
	p := startBryggadProcess(t, dir, 3)
	devices := p.tablets(dir)

	var mu sync.Mutex
	var made []uuid.UUID
	acked := make([][]uuid.UUID, len(devices)) // per device: made before its last successful sync
	mine := make([][]uuid.UUID, len(devices))
	rng := rand.New(rand.NewPCG(3, 3))
	for k := range kills {
		stop := make(chan struct{})
		wait := untilStopped(devices, stop, func(i int, d *brygga.Client) bool {
			var batch []uuid.UUID
			for range 10 {
				c := contact(schema.SettingStreet)
				if err := d.Add(ctx, c); err != nil {
					t.Error(err)
					return false
				}
				batch = append(batch, c.ID)
			}
			mu.Lock()
			made = append(made, batch...)
			mine[i] = append(mine[i], batch...)
			mu.Unlock()
			if d.Sync(ctx) == nil {
				// Everything this device made before the sync is
				// acknowledged.
				mu.Lock()
				acked[i] = append([]uuid.UUID{}, mine[i]...)
				mu.Unlock()
			}
			return true
		})
		time.Sleep(time.Duration(100+rng.IntN(300)) * time.Millisecond)
		p.kill()
		close(stop)
		wait()

		mu.Lock()
		var want []uuid.UUID
		for _, a := range acked {
			want = append(want, a...)
		}
		mu.Unlock()
		p.start()
		missing := countMissing(t, p.db, want)
		if missing != 0 {
			t.Fatalf("kill %d: %d of %d acknowledged contacts missing after the restart", k+1, missing, len(want))
		}
	}
	for _, d := range devices {
		if err := d.Sync(ctx); err != nil {
			t.Fatal(err)
		}
	}
	p.checkContacts(made)
	t.Logf("%d kills, %d contacts made, all on the server once", kills, len(made))
}

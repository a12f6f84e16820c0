package brygga_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	brygga "github.com/brygga/brygga/client-sdk"
	"github.com/brygga/brygga/schema"
)

// TestKilledAndRestored runs bryggad as a process: tablets push while
// bryggad backup copies the database; the server is killed, bryggad
// restore puts the copy in place, and the server is killed again while the
// tablets heal it. In the end every contact made is on the server once.
func TestKilledAndRestored(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	p := startBryggadProcess(t, dir, 3)
	devices := p.tablets(dir)
	var mu sync.Mutex
	var made []uuid.UUID
	// work records and syncs on every tablet until stop is closed.
	work := func(stop chan struct{}) (wait func()) {
		return untilStopped(devices, stop, func(_ int, d *brygga.Client) bool {
			for range 5 {
				c := contact(schema.SettingStreet)
				if err := d.Add(ctx, c); err != nil {
					t.Error(err)
					return false
				}
				mu.Lock()
				made = append(made, c.ID)
				mu.Unlock()
			}
			d.Sync(ctx) // fails while the server is away
			return true
		})
	}

	stop := make(chan struct{})
	wait := work(stop)
	time.Sleep(200 * time.Millisecond)
	copyPath := filepath.Join(dir, "copy.db")
	p.run("backup", "--db", p.db, "--out", copyPath)
	time.Sleep(300 * time.Millisecond)
	p.kill()
	close(stop)
	wait()
	p.run("restore", "--from", copyPath, "--db", p.db)
	p.start()
	// Killed again while the tablets heal it.
	stop = make(chan struct{})
	wait = work(stop)
	time.Sleep(150 * time.Millisecond)
	p.kill()
	close(stop)
	wait()
	p.start()
	for range 2 {
		for _, d := range devices {
			if err := d.Sync(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	p.checkContacts(made)
	for _, d := range devices {
		if st, _ := d.Status(ctx); st.Pending != 0 || len(st.Rejected) != 0 {
			t.Errorf("status of %s: %+v", d.DeviceID(), st)
		}
	}
	t.Logf("%d contacts made, all on the server once after a restore and two kills", len(made))
}

package replica_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/brygga/brygga/sync/replica"
	"github.com/brygga/brygga/sync/wire"
)

// TestRestoreByCopyIsRecognised: a database copied by hand keeps its
// epoch. Opened again, the server takes the cursors of its own history:
// one made before a restart, and on the copy one made before the copy was
// taken. A cursor made after the copy, on the database that went on, is
// answered server_restored on the copy (also once the copy's change
// sequence has passed its number), and so is a pull whose acknowledged
// mutation number is beyond what the copy processed of the device.
func TestRestoreByCopyIsRecognised(t *testing.T) {
	ctx := context.Background()
	clock := newTestClock()
	w := newWorld(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "server.db")
	open := func(p string) *replica.ServerStore {
		s, err := replica.OpenServer(ctx, p, replica.ServerConfig{Now: clock.Now})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := open(path)
	if err := s.PutReference(ctx, w.reference()...); err != nil {
		t.Fatal(err)
	}
	a := MustOpenDevice(t, clock.Now, s, w.unitA)
	b := MustOpenDevice(t, clock.Now, s, w.unitA)
	for range 3 {
		if err := a.Create(ctx, newContact(t, w, a.ID(), clock.Now())); err != nil {
			t.Fatal(err)
		}
	}
	syncAll(t, s, a)
	syncAll(t, s, b)
	pull := func(s *replica.ServerStore, d *replica.Device) error {
		req, err := d.PullRequest(ctx, 100)
		if err != nil {
			t.Fatal(err)
		}
		acked, _ := d.AckedThrough(ctx)
		req.Acked = acked
		_, err = s.Pull(ctx, d.ID(), req)
		return err
	}
	// A restart: the cursors stay good.
	s.Close()
	s = open(path)
	if err := pull(s, a); err != nil {
		t.Fatalf("pull after a restart: %v", err)
	}
	epoch := s.Epoch()
	s.Close()
	copyPath := filepath.Join(dir, "copy.db")
	if err := copyFile(copyPath, path); err != nil {
		t.Fatal(err)
	}
	s = open(path)
	// After the copy: a pushes and pulls; b only pulls.
	for range 2 {
		if err := a.Create(ctx, newContact(t, w, a.ID(), clock.Now())); err != nil {
			t.Fatal(err)
		}
	}
	syncAll(t, s, a)
	syncAll(t, s, b)
	s.Close()

	restored := open(copyPath)
	defer restored.Close()
	if restored.Epoch() != epoch {
		t.Fatalf("the copy's epoch %s, want %s", restored.Epoch(), epoch)
	}
	if err := pull(restored, a); wire.ErrorCode(err) != wire.CodeServerRestored {
		t.Errorf("pull of the device that pushed after the copy: %v", err)
	}
	if err := pull(restored, b); wire.ErrorCode(err) != wire.CodeServerRestored {
		t.Errorf("pull of the device that pulled after the copy: %v", err)
	}
	// A third device, enrolled before the copy, that saw nothing after it,
	// writes to the copy and moves its change sequence past b's cursor:
	// b's cursor is still recognised.
	c := MustOpenDevice(t, clock.Now, nil, w.unitA)
	if _, err := restored.RegisterDevice(ctx, c.ID(), w.unitA); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		if err := c.Create(ctx, newContact(t, w, c.ID(), clock.Now())); err != nil {
			t.Fatal(err)
		}
	}
	syncAll(t, restored, c)
	if err := pull(restored, b); wire.ErrorCode(err) != wire.CodeServerRestored {
		t.Errorf("pull of the device that pulled after the copy, the copy's sequence past its cursor: %v", err)
	}
	if err := pull(restored, c); err != nil {
		t.Errorf("pull of a device of the copy's own history: %v", err)
	}
}

// TestRestampedWriteHealed: a device whose clock is a day ahead pushes a
// record; the server re-stamps it, and the device holds it at the server's
// version from the push's answer on, before it pulls. A server restored
// from a copy without it takes the record back from the device's heal.
func TestRestampedWriteHealed(t *testing.T) {
	ctx := context.Background()
	clock := newTestClock()
	w := newWorld(t)
	s := MustOpenServer(t, clock, w)
	ahead := func() time.Time { return clock.Now().Add(24 * time.Hour) }
	d := MustOpenDevice(t, ahead, s, w.unitA)
	copyPath := filepath.Join(t.TempDir(), "copy.db")
	if _, err := s.Backup(ctx, copyPath); err != nil {
		t.Fatal(err)
	}
	rec := newContact(t, w, d.ID(), clock.Now())
	if err := d.Create(ctx, rec); err != nil {
		t.Fatal(err)
	}
	req, _ := d.NextPush(ctx, 100)
	resp, err := s.Push(ctx, d.ID(), req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Results[0].Version == 0 {
		t.Fatal("the write a day ahead was not re-stamped")
	}
	if err := d.AcceptPush(ctx, resp); err != nil { // and no pull follows
		t.Fatal(err)
	}
	recs, _, err := d.HealRecords(ctx, replica.HealCursor{}, 100)
	if err != nil {
		t.Fatal(err)
	}
	restored, err := replica.OpenServer(ctx, copyPath, replica.ServerConfig{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer restored.Close()
	acked, _ := d.AckedThrough(ctx)
	healed, err := restored.Heal(ctx, d.ID(), &wire.HealRequest{Versions: wire.Current(), AckedThrough: acked, Records: recs})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, r := range healed.Results {
		if r.ID == rec.ID.String() {
			n++
			if r.Status != wire.Healed {
				t.Errorf("the re-stamped record sent again: %+v", r)
			}
		}
	}
	if n != 1 {
		t.Errorf("the record was sent %d times", n)
	}
}

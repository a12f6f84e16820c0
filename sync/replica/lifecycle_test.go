package replica_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/brygga/brygga/schema"
	"github.com/brygga/brygga/sync/replica"
	"github.com/brygga/brygga/sync/wire"
)

// TestSealAndHealRecords: a sealed replica takes no writes, for good; its
// records, unpushed writes included, are what a heal sends, in batches;
// what it acknowledged is what AckedThrough says.
func TestSealAndHealRecords(t *testing.T) {
	ctx := context.Background()
	clock := newTestClock()
	w := newWorld(t)
	s := MustOpenServer(t, clock, w)
	d := MustOpenDevice(t, clock.Now, s, w.unitA)
	for range 3 {
		if err := d.Create(ctx, newContact(t, w, d.ID(), clock.Now())); err != nil {
			t.Fatal(err)
		}
	}
	syncAll(t, s, d)
	if n, err := d.AckedThrough(ctx); err != nil || n != 3 {
		t.Errorf("acked through %d, %v; want 3", n, err)
	}
	for range 2 {
		if err := d.Create(ctx, newContact(t, w, d.ID(), clock.Now())); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := d.AckedThrough(ctx); err != nil || n != 3 {
		t.Errorf("acked through %d with two queued, %v; want 3", n, err)
	}
	var all []wire.Change
	cursor := replica.HealCursor{}
	for range 10 {
		recs, next, err := d.HealRecords(ctx, cursor, 2)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, recs...)
		if len(recs) < 2 {
			break
		}
		cursor = next
	}
	if len(all) != 5 {
		t.Errorf("heal records: %d, want 5", len(all))
	}
	if n, err := d.Seal(ctx); err != nil || n != 2 {
		t.Errorf("seal: %d pending, %v; want 2", n, err)
	}
	if err := d.Create(ctx, newContact(t, w, d.ID(), clock.Now())); !errors.Is(err, replica.ErrSealed) {
		t.Errorf("a write on a sealed replica: %v", err)
	}
	path := d.DB().Path()
	d.Close()
	d2, err := replica.OpenDevice(ctx, path, replica.DeviceConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer d2.Close()
	if !d2.Sealed() {
		t.Error("the seal did not survive reopening")
	}
}

// TestHealServer: a server restored from an older copy takes back what a
// device holds, once: sent twice, nothing changes; the device's
// numbering goes on after what it acknowledged.
func TestHealServer(t *testing.T) {
	ctx := context.Background()
	clock := newTestClock()
	w := newWorld(t)
	dir := t.TempDir()
	s := MustOpenServer(t, clock, w)
	d := MustOpenDevice(t, clock.Now, s, w.unitA)
	if err := d.Create(ctx, newContact(t, w, d.ID(), clock.Now())); err != nil {
		t.Fatal(err)
	}
	syncAll(t, s, d)
	copyPath := filepath.Join(dir, "copy.db")
	epoch, err := s.Backup(ctx, copyPath)
	if err != nil {
		t.Fatal(err)
	}
	if epoch == s.Epoch() {
		t.Fatal("the copy kept the epoch")
	}
	for range 4 {
		if err := d.Create(ctx, newContact(t, w, d.ID(), clock.Now())); err != nil {
			t.Fatal(err)
		}
	}
	syncAll(t, s, d)
	s.Close()

	restored, err := replica.OpenServer(ctx, copyPath, replica.ServerConfig{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer restored.Close()
	if restored.Epoch() != epoch {
		t.Errorf("restored epoch %s, want the copy's %s", restored.Epoch(), epoch)
	}
	// The restored server has forgotten mutations 2-5: a new one is a gap.
	if err := d.Create(ctx, newContact(t, w, d.ID(), clock.Now())); err != nil {
		t.Fatal(err)
	}
	req, _ := d.NextPush(ctx, 100)
	if _, err := restored.Push(ctx, d.ID(), req); wire.ErrorCode(err) != wire.CodeSeqGap {
		t.Fatalf("push to the restored server: %v", err)
	}
	acked, _ := d.AckedThrough(ctx)
	recs, _, err := d.HealRecords(ctx, replica.HealCursor{}, 100)
	if err != nil {
		t.Fatal(err)
	}
	heal := &wire.HealRequest{Versions: wire.Current(), AckedThrough: acked, Records: recs}
	resp, err := restored.Heal(ctx, d.ID(), heal)
	if err != nil {
		t.Fatal(err)
	}
	count := map[wire.HealStatus]int{}
	for _, r := range resp.Results {
		count[r.Status]++
	}
	// The six records: one the copy had, four it lost, and the queued one
	// (its effect on the device) which the push brings too.
	if count[wire.Unchanged] != 1 || count[wire.Healed] != 5 || resp.LastSeq != 5 {
		t.Errorf("heal: %v, last_seq %d", count, resp.LastSeq)
	}
	again, err := restored.Heal(ctx, d.ID(), heal)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range again.Results {
		if r.Status != wire.Unchanged {
			t.Errorf("a heal sent again: %+v", r)
		}
	}
	pushed, err := restored.Push(ctx, d.ID(), req)
	if err != nil || pushed.Results[0].Status != wire.Applied {
		t.Fatalf("push after the heal: %+v %v", pushed, err)
	}
	// A number among those the heal took as processed, with content the
	// server cannot check, is refused as reused, not dropped as a
	// duplicate.
	reused := *req
	reused.Mutations = append([]wire.Mutation{}, req.Mutations...)
	reused.Mutations[0].Seq = 3
	if r, err := restored.Push(ctx, d.ID(), &reused); err != nil || r.Results[0].Status != wire.Rejected || r.Results[0].Error.Code != wire.CodeSeqReused {
		t.Errorf("a number the heal skipped: %+v %v", r, err)
	}
	var n int
	if err := restored.DB().Reader().QueryRowContext(ctx, `SELECT count(*) FROM `+string(schema.KindContact)).Scan(&n); err != nil || n != 6 {
		t.Errorf("the restored server holds %d contacts, %v; want 6", n, err)
	}
	// A retired device heals and pushes; a revoked one does neither.
	if err := restored.RetireDevice(ctx, d.ID()); err != nil {
		t.Fatal(err)
	}
	if _, err := restored.Heal(ctx, d.ID(), heal); err != nil {
		t.Errorf("heal of a retired device: %v", err)
	}
	if _, err := restored.Pull(ctx, d.ID(), &wire.PullRequest{Versions: wire.Current()}); wire.ErrorCode(err) != wire.CodeDeviceRetired {
		t.Errorf("pull of a retired device: %v", err)
	}
	if err := restored.RevokeDevice(ctx, d.ID()); err != nil {
		t.Fatal(err)
	}
	if err := restored.RetireDevice(ctx, d.ID()); !errors.Is(err, replica.ErrDeviceRevoked) {
		t.Errorf("retire a revoked device: %v", err)
	}
	if _, err := restored.Heal(ctx, d.ID(), heal); wire.ErrorCode(err) != wire.CodeDeviceRevoked {
		t.Errorf("heal of a revoked device: %v", err)
	}
}

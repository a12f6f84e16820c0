package replica_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/brygga/brygga/schema"
	"github.com/brygga/brygga/sync/replica"
)

// TestDeviceIdentity: a replica takes the identity it is first opened
// with; opened without ids it is that device again; a replica of no device,
// another device or another unit is refused.
func TestDeviceIdentity(t *testing.T) {
	ctx := context.Background()
	clock := newTestClock()
	w := newWorld(t)
	path := filepath.Join(t.TempDir(), "tablet.db")

	if _, err := replica.OpenDevice(ctx, path, replica.DeviceConfig{ID: newID(t)}); err == nil {
		t.Error("a device id without a unit id opens")
	}
	if _, err := replica.OpenDevice(ctx, path, replica.DeviceConfig{}); !errors.Is(err, replica.ErrNoIdentity) {
		t.Errorf("open a replica of no device without ids: %v, want ErrNoIdentity", err)
	}

	id := newID(t)
	d, err := replica.OpenDevice(ctx, path, replica.DeviceConfig{ID: id, UnitID: w.unitA, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Create(ctx, newContact(t, w, id, clock.Now())); err != nil {
		t.Fatal(err)
	}
	d.Close()

	again, err := replica.OpenDevice(ctx, path, replica.DeviceConfig{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if again.ID() != id || again.UnitID() != w.unitA {
		t.Errorf("opened without ids as %s of %s, want %s of %s", again.ID(), again.UnitID(), id, w.unitA)
	}
	if n, err := again.Pending(ctx); err != nil || n != 1 {
		t.Errorf("pending %d, %v; want the one write", n, err)
	}
	again.Close()

	for name, cfg := range map[string]replica.DeviceConfig{
		"another device": {ID: newID(t), UnitID: w.unitA},
		"another unit":   {ID: id, UnitID: w.unitB},
	} {
		if d, err := replica.OpenDevice(ctx, path, cfg); !errors.Is(err, replica.ErrIdentity) {
			if err == nil {
				d.Close()
			}
			t.Errorf("open as %s: %v, want ErrIdentity", name, err)
		}
	}
}

// TestMetaBeforeEnrolment: what a device keeps before it has an identity
// (its key pair, what enrolment gave it) is made once, survives, and is
// the device's once the replica takes its identity.
func TestMetaBeforeEnrolment(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "tablet.db")

	if _, err := replica.MetaAt(ctx, path, "key"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("meta of no replica: %v, want os.ErrNotExist", err)
	}
	made := 0
	create := func() (string, error) {
		made++
		return "key-" + string(rune('0'+made)), nil
	}
	accept := func(string) bool { return true }
	v, err := replica.PrepareMeta(ctx, path, "key", accept, create)
	if err != nil || v != "key-1" {
		t.Fatalf("prepare: %q, %v; want key-1", v, err)
	}
	if v, err := replica.PrepareMeta(ctx, path, "key", accept, create); err != nil || v != "key-1" || made != 1 {
		t.Errorf("prepare again: %q, %v, made %d times; want key-1 made once", v, err, made)
	}
	// A value the check refuses is made again and replaces it.
	if v, err := replica.PrepareMeta(ctx, path, "key", func(v string) bool { return v != "key-1" }, create); err != nil || v != "key-2" {
		t.Errorf("prepare with the value refused: %q, %v; want key-2", v, err)
	}
	// A value that cannot be made stores nothing.
	failed := errors.New("no entropy")
	if _, err := replica.PrepareMeta(ctx, path, "other", accept, func() (string, error) { return "", failed }); !errors.Is(err, failed) {
		t.Errorf("prepare with a failing create: %v", err)
	}
	if v, err := replica.MetaAt(ctx, path, "other"); err != nil || v != "" {
		t.Errorf("meta after a failed create: %q, %v; want unset", v, err)
	}

	if err := replica.SetMetaAt(ctx, path, map[string]string{"server": "http://127.0.0.1:8080", "token": "t1"}); err != nil {
		t.Fatal(err)
	}
	if v, err := replica.MetaAt(ctx, path, "server"); err != nil || v != "http://127.0.0.1:8080" {
		t.Errorf("meta server: %q, %v", v, err)
	}
	// The replica has no identity yet.
	if _, err := replica.OpenDevice(ctx, path, replica.DeviceConfig{}); !errors.Is(err, replica.ErrNoIdentity) {
		t.Errorf("open before enrolment: %v, want ErrNoIdentity", err)
	}

	w := newWorld(t)
	d, err := replica.OpenDevice(ctx, path, replica.DeviceConfig{ID: newID(t), UnitID: w.unitA})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for key, want := range map[string]string{"key": "key-2", "server": "http://127.0.0.1:8080", "token": "t1", "unset": ""} {
		if v, err := d.Meta(ctx, key); err != nil || v != want {
			t.Errorf("meta %s: %q, %v; want %q", key, v, err, want)
		}
	}
	if err := d.SetMeta(ctx, "token", "t2"); err != nil {
		t.Fatal(err)
	}
	if v, err := d.Meta(ctx, "token"); err != nil || v != "t2" {
		t.Errorf("meta token after SetMeta: %q, %v; want t2", v, err)
	}
}

// TestUnbind: an unbound replica keeps its records and mutation numbers,
// drops the writes queued under the old id, and is adopted by a new
// enrolment of the same unit; not by another unit.
func TestUnbind(t *testing.T) {
	ctx := context.Background()
	clock := newTestClock()
	w := newWorld(t)
	s := MustOpenServer(t, clock, w)
	d := MustOpenDevice(t, clock.Now, s, w.unitA)
	for range 2 {
		if err := d.Create(ctx, newContact(t, w, d.ID(), clock.Now())); err != nil {
			t.Fatal(err)
		}
	}
	syncAll(t, s, d)
	queued := newContact(t, w, d.ID(), clock.Now())
	if err := d.Create(ctx, queued); err != nil {
		t.Fatal(err)
	}
	acked, err := d.AckedThrough(ctx)
	if err != nil || acked != 2 {
		t.Fatalf("acked through %d, %v; want 2", acked, err)
	}
	if err := d.Unbind(ctx); err != nil {
		t.Fatal(err)
	}
	path := d.DB().Path()
	d.Close()

	if _, err := replica.OpenDevice(ctx, path, replica.DeviceConfig{}); !errors.Is(err, replica.ErrNoIdentity) {
		t.Errorf("open an unbound replica without ids: %v, want ErrNoIdentity", err)
	}
	if d, err := replica.OpenDevice(ctx, path, replica.DeviceConfig{ID: newID(t), UnitID: w.unitB}); !errors.Is(err, replica.ErrIdentity) {
		if err == nil {
			d.Close()
		}
		t.Errorf("adopt by another unit: %v, want ErrIdentity", err)
	}
	next := newID(t)
	if _, err := s.RegisterDevice(ctx, next, w.unitA); err != nil {
		t.Fatal(err)
	}
	adopted, err := replica.OpenDevice(ctx, path, replica.DeviceConfig{ID: next, UnitID: w.unitA, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer adopted.Close()
	if n, err := adopted.Pending(ctx); err != nil || n != 0 {
		t.Errorf("pending after unbind: %d, %v; want 0", n, err)
	}
	rows, err := adopted.Rows(ctx, schema.KindContact)
	if err != nil || len(rows) != 3 {
		t.Fatalf("contacts after unbind: %d, %v; want the 3, the queued one's effect included", len(rows), err)
	}
	// Numbering goes on where it was.
	if n, err := adopted.AckedThrough(ctx); err != nil || n != 3 {
		t.Errorf("acked through %d, %v; want 3 (the dropped write's number is used)", n, err)
	}
	if err := adopted.Create(ctx, newContact(t, w, next, clock.Now())); err != nil {
		t.Fatal(err)
	}
	req, err := adopted.NextPush(ctx, 10)
	if err != nil || req == nil {
		t.Fatalf("next push after unbind: %v, %v", req, err)
	}
	var seqs []int64
	for _, m := range req.Mutations {
		seqs = append(seqs, m.Seq)
	}
	if len(seqs) != 1 || seqs[0] != 4 {
		t.Errorf("next push after unbind: mutations %v, want [4]", seqs)
	}
}

package replica_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/brygga/brygga/schema"
	"github.com/brygga/brygga/sync/replica"
	"github.com/brygga/brygga/sync/wire"
)

// pushAll pushes d's whole outbox and returns the results.
func pushAll(tb testing.TB, s *replica.ServerStore, d *replica.Device) []wire.Result {
	tb.Helper()
	ctx := context.Background()
	var out []wire.Result
	for {
		req, err := d.NextPush(ctx, 100)
		if err != nil {
			tb.Fatal(err)
		}
		if req == nil {
			return out
		}
		resp, err := s.Push(ctx, d.ID(), req)
		if err != nil {
			tb.Fatal(err)
		}
		if err := d.AcceptPush(ctx, resp); err != nil {
			tb.Fatal(err)
		}
		out = append(out, resp.Results...)
	}
}

// pullAll pulls d up to date and returns the ids of the records the pages
// brought.
func pullAll(tb testing.TB, s *replica.ServerStore, d *replica.Device) map[uuid.UUID]bool {
	tb.Helper()
	ctx := context.Background()
	got := map[uuid.UUID]bool{}
	for range 1000 {
		req, err := d.PullRequest(ctx, 50)
		if err != nil {
			tb.Fatal(err)
		}
		resp, err := s.Pull(ctx, d.ID(), req)
		if err != nil {
			tb.Fatal(err)
		}
		for _, c := range resp.Changes {
			got[c.ID] = true
		}
		if ok, err := d.AcceptPull(ctx, resp); err != nil || !ok {
			tb.Fatalf("page not applied (%v)", err)
		}
		if !resp.HasMore {
			return got
		}
	}
	tb.Fatal("pull did not finish")
	return nil
}

// sameScope fails unless d holds exactly the server's state of every
// field record of its unit.
func sameScope(tb testing.TB, s *replica.ServerStore, d *replica.Device, unit uuid.UUID) {
	tb.Helper()
	ctx := context.Background()
	rows, err := s.ScopeRows(ctx, unit)
	if err != nil {
		tb.Fatal(err)
	}
	n := 0
	for _, want := range rows {
		if !schema.IsFieldKind(want.Kind) {
			continue
		}
		n++
		got, err := d.Get(ctx, want.Kind, want.ID())
		if err != nil {
			tb.Fatalf("device lacks %s: %v", want, err)
		}
		if !got.Equal(want) {
			tb.Fatalf("device holds %s\nserver holds %s", got, want)
		}
	}
	for _, k := range schema.FieldKinds {
		held, _ := d.Rows(ctx, k)
		for _, r := range held {
			if schema.HeaderOf(r.Record).UnitID == unit {
				n--
			}
		}
	}
	if n != 0 {
		tb.Fatalf("device and server hold different numbers of records (%d)", n)
	}
}

// TestPullLeavesOutEchoes: a device is not sent back the records its own
// pushes made, which it holds, and its rows get their change numbers from
// the push answers; but what others changed, merges with their writes,
// re-stamped writes and what it lost by a restore of its replica all reach
// it.
func TestPullLeavesOutEchoes(t *testing.T) {
	ctx := context.Background()
	clock := newTestClock()
	w := newWorld(t)
	s := MustOpenServer(t, clock, w)
	d := MustOpenDevice(t, clock.Now, s, w.unitA)
	e := MustOpenDevice(t, clock.Now, s, w.unitA)
	syncAll(t, s, d)
	syncAll(t, s, e)

	var ids []uuid.UUID
	for range 5 {
		c := newContact(t, w, d.ID(), clock.Now().Add(-time.Hour))
		if err := d.Create(ctx, c); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, c.ID)
	}
	for _, r := range pushAll(t, s, d) {
		if r.Status != wire.Applied || r.Change == 0 {
			t.Fatalf("create: %+v, want applied with its change number", r)
		}
	}
	if got := pullAll(t, s, d); len(got) != 0 {
		t.Errorf("the device pulled back %d records it made", len(got))
	}
	for _, id := range ids {
		mine, _ := d.Get(ctx, schema.KindContact, id)
		theirs, _ := s.Get(ctx, schema.KindContact, id)
		if mine.Seq != theirs.Seq || mine.Seq == 0 {
			t.Errorf("row %s at change %d, the server's at %d", id, mine.Seq, theirs.Seq)
		}
	}

	// Its correction of its own record is not sent back either.
	if err := d.Write(ctx, schema.KindContact, ids[0], json.RawMessage(`{"setting":"fixed_site"}`)); err != nil {
		t.Fatal(err)
	}
	if r := pushAll(t, s, d); r[0].Change == 0 {
		t.Errorf("correction: %+v", r[0])
	}
	if got := pullAll(t, s, d); len(got) != 0 {
		t.Errorf("the device pulled back its correction")
	}

	// A colleague's correction arrives, and so does the merge of the
	// device's concurrent correction with it.
	if got := pullAll(t, s, e); len(got) != 5 {
		t.Errorf("the colleague pulled %d records, want 5", len(got))
	}
	if err := e.Write(ctx, schema.KindContact, ids[1], json.RawMessage(`{"area_code":"2361"}`)); err != nil {
		t.Fatal(err)
	}
	pushAll(t, s, e)
	if err := d.Write(ctx, schema.KindContact, ids[1], json.RawMessage(`{"setting":"shelter"}`)); err != nil {
		t.Fatal(err)
	}
	if r := pushAll(t, s, d); r[0].Change != 0 {
		t.Errorf("a merge with another's write is not the device's state: %+v", r[0])
	}
	if got := pullAll(t, s, d); !got[ids[1]] || len(got) != 1 {
		t.Errorf("after the merge the device pulled %v", got)
	}
	// The device's next correction of that record is made on the merged
	// state, which it pulled (its base): the state after it is the
	// device's, and is not sent back.
	if err := d.Write(ctx, schema.KindContact, ids[1], json.RawMessage(`{"voided":true}`)); err != nil {
		t.Fatal(err)
	}
	if r := pushAll(t, s, d); r[0].Change == 0 {
		t.Errorf("a change of the merged state the device pulled: %+v", r[0])
	}
	if got := pullAll(t, s, d); len(got) != 0 {
		t.Errorf("the change of the merged state came back: %v", got)
	}
	// A change made on the server arrives.
	if err := s.Write(ctx, schema.KindContact, ids[2], json.RawMessage(`{"voided":true}`)); err != nil {
		t.Fatal(err)
	}
	if got := pullAll(t, s, d); !got[ids[2]] || len(got) != 1 {
		t.Errorf("after the server's write the device pulled %v", got)
	}
	pullAll(t, s, e)
	sameScope(t, s, d, w.unitA)
	sameScope(t, s, e, w.unitA)

	// Retention drops the device's own records too (the push answers gave
	// them their change numbers); one a colleague changes later arrives.
	if n, err := d.Purge(ctx, clock.Now()); err != nil || n != 5 {
		t.Fatalf("purged %d records (%v), want the 5", n, err)
	}
	if err := e.Write(ctx, schema.KindContact, ids[4], json.RawMessage(`{"area_code":"2309"}`)); err != nil {
		t.Fatal(err)
	}
	pushAll(t, s, e)
	if got := pullAll(t, s, d); !got[ids[4]] || len(got) != 1 {
		t.Errorf("after the colleague's change of a purged record the device pulled %v", got)
	}
	if r, err := d.Get(ctx, schema.KindContact, ids[4]); err != nil || r.Record.(*schema.Contact).AreaCode != "2309" {
		t.Errorf("the purged record changed by a colleague: %v, %v", r, err)
	}

	// A device whose clock is far ahead is re-stamped: its record arrives
	// with the server's versions.
	ahead := func() time.Time { return clock.Now().Add(48 * time.Hour) }
	f := MustOpenDevice(t, ahead, s, w.unitA)
	syncAll(t, s, f)
	c := newContact(t, w, f.ID(), clock.Now().Add(-time.Hour))
	if err := f.Create(ctx, c); err != nil {
		t.Fatal(err)
	}
	if r := pushAll(t, s, f); r[0].Version == 0 || r[0].Change != 0 {
		t.Errorf("re-stamped create: %+v", r[0])
	}
	if got := pullAll(t, s, f); !got[c.ID] {
		t.Errorf("the re-stamped record did not arrive")
	}
	sameScope(t, s, f, w.unitA)
}

// TestRestoredReplicaGetsItsRecordsBack: a device restored from a copy of
// its replica lacks what it recorded after the copy; its pulls bring those
// records back, also after it has reused their numbers for new records.
func TestRestoredReplicaGetsItsRecordsBack(t *testing.T) {
	ctx := context.Background()
	clock := newTestClock()
	w := newWorld(t)
	s := MustOpenServer(t, clock, w)
	dir := t.TempDir()
	path := filepath.Join(dir, "tablet.db")
	id := newID(t)
	if _, err := s.RegisterDevice(ctx, id, w.unitA); err != nil {
		t.Fatal(err)
	}
	open := func() *replica.Device {
		d, err := replica.OpenDevice(ctx, path, replica.DeviceConfig{ID: id, UnitID: w.unitA, Now: clock.Now})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	d := open()
	syncAll(t, s, d)
	if err := d.Create(ctx, newContact(t, w, id, clock.Now().Add(-time.Hour))); err != nil {
		t.Fatal(err)
	}
	syncAll(t, s, d)
	d.Close()
	backup, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}

	d = open()
	for range 3 {
		if err := d.Create(ctx, newContact(t, w, id, clock.Now().Add(-time.Hour))); err != nil {
			t.Fatal(err)
		}
	}
	syncAll(t, s, d)
	sameScope(t, s, d, w.unitA)
	d.Close()

	for _, suffix := range []string{"-wal", "-shm"} {
		os.Remove(path + suffix)
	}
	if err := os.WriteFile(path, backup, 0o600); err != nil {
		t.Fatal(err)
	}
	d = open()
	defer d.Close()
	if got := pullAll(t, s, d); len(got) != 3 {
		t.Errorf("the restored device pulled %d records, want its 3 made after the copy", len(got))
	}
	sameScope(t, s, d, w.unitA)

	// Restored again, it records before it pulls: its new records reuse
	// numbers and are refused, and the records made after the copy still
	// come back.
	d.Close()
	for _, suffix := range []string{"-wal", "-shm"} {
		os.Remove(path + suffix)
	}
	if err := os.WriteFile(path, backup, 0o600); err != nil {
		t.Fatal(err)
	}
	d = open()
	for range 4 {
		if err := d.Create(ctx, newContact(t, w, id, clock.Now().Add(-time.Hour))); err != nil {
			t.Fatal(err)
		}
	}
	reused := 0
	for _, r := range pushAll(t, s, d) {
		if r.Error != nil && r.Error.Code == wire.CodeSeqReused {
			reused++
		}
	}
	if reused != 3 {
		t.Errorf("%d numbers refused as reused, want 3", reused)
	}
	got := pullAll(t, s, d)
	if len(got) < 3 {
		t.Errorf("the restored device pulled %d records, want at least its 3 made after the copy", len(got))
	}
	sameScope(t, s, d, w.unitA)

	// What it records after is its echo span's, which its pulls pass over
	// again: the span of echoes sent to it again is not carried on.
	for range 5 {
		if err := d.Create(ctx, newContact(t, w, id, clock.Now().Add(-time.Hour))); err != nil {
			t.Fatal(err)
		}
	}
	res := pushAll(t, s, d)
	dev, err := s.LookupDevice(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if sp := dev.EchoSpan; sp.First <= dev.EchoAfter || sp.Last != res[len(res)-1].Seq || sp.To != res[len(res)-1].Change {
		t.Errorf("echo span %+v after echoes up to %d were sent again, want one a pull can pass over, to %d (change %d)",
			sp, dev.EchoAfter, res[len(res)-1].Seq, res[len(res)-1].Change)
	}
	if got := pullAll(t, s, d); len(got) != 0 {
		t.Errorf("the device pulled %d of its new records back", len(got))
	}
	sameScope(t, s, d, w.unitA)
}

// TestPullLeavesOutOthersRecordsEchoes: a receiving unit's tablet that
// moves on a referral another unit's tablet made is not sent its own
// change back, and neither is its next change of it; the tablet that made
// the referral gets both, and what the sending unit changes after reaches
// the receiving tablet. A change made on a state the tablet has not
// pulled is sent back, merged.
func TestPullLeavesOutOthersRecordsEchoes(t *testing.T) {
	ctx := context.Background()
	clock := newTestClock()
	w := newWorld(t)
	s := MustOpenServer(t, clock, w)
	a := MustOpenDevice(t, clock.Now, s, w.unitA)
	b := MustOpenDevice(t, clock.Now, s, w.unitB)
	b2 := MustOpenDevice(t, clock.Now, s, w.unitB)
	ref := &schema.Referral{Header: schema.Header{ID: newID(t), UnitID: w.unitA, DeviceID: a.ID(), StaffID: w.staffA, OccurredAt: clock.Now().Add(-time.Hour)},
		Service: schema.ServiceAddictionClinic, ToUnitID: w.unitB, Status: schema.StatusSent}
	if err := a.Create(ctx, ref); err != nil {
		t.Fatal(err)
	}
	pushAll(t, s, a)
	for _, d := range []*replica.Device{b, b2} {
		if got := pullAll(t, s, d); !got[ref.ID] {
			t.Fatalf("the receiving unit did not get the referral")
		}
	}
	same := func(d *replica.Device) {
		t.Helper()
		mine, err := d.Get(ctx, schema.KindReferral, ref.ID)
		if err != nil {
			t.Fatal(err)
		}
		theirs, _ := s.Get(ctx, schema.KindReferral, ref.ID)
		if !mine.Equal(theirs) || mine.Seq != theirs.Seq {
			t.Fatalf("the device holds %s at %d\nthe server holds %s at %d", mine, mine.Seq, theirs, theirs.Seq)
		}
	}

	for i, status := range []string{"received", "attended"} {
		if err := b.Write(ctx, schema.KindReferral, ref.ID, json.RawMessage(`{"status":"`+status+`","reopened":0}`)); err != nil {
			t.Fatal(err)
		}
		if r := pushAll(t, s, b); len(r) != 1 || r[0].Status != wire.Applied || r[0].Change == 0 {
			t.Errorf("change %d of another unit's referral: %+v, want applied with its change number", i+1, r)
		}
		if got := pullAll(t, s, b); len(got) != 0 {
			t.Errorf("change %d came back to the device that made it: %v", i+1, got)
		}
		same(b)
		if got := pullAll(t, s, a); !got[ref.ID] {
			t.Errorf("change %d did not reach the unit that made the referral", i+1)
		}
		same(a)
		if got := pullAll(t, s, b2); !got[ref.ID] {
			t.Errorf("change %d did not reach the receiving unit's other tablet", i+1)
		}
		same(b2)
	}

	// The sending unit corrects the referral; the receiving tablet gets
	// it, and its own change on top is its echo again.
	if err := a.Write(ctx, schema.KindReferral, ref.ID, json.RawMessage(`{"service":"psychiatry"}`)); err != nil {
		t.Fatal(err)
	}
	pushAll(t, s, a)
	if got := pullAll(t, s, b); !got[ref.ID] {
		t.Errorf("the sending unit's correction did not reach the receiving tablet")
	}
	same(b)
	if err := b.Write(ctx, schema.KindReferral, ref.ID, json.RawMessage(`{"status":"closed","reopened":0}`)); err != nil {
		t.Fatal(err)
	}
	if r := pushAll(t, s, b); r[0].Change == 0 {
		t.Errorf("a change of the correction the device pulled: %+v", r[0])
	}
	if got := pullAll(t, s, b); len(got) != 0 {
		t.Errorf("the change of the pulled correction came back: %v", got)
	}
	same(b)

	// The other receiving tablet changes the referral before it pulled
	// the close: its change is made on an older state, and the merge
	// comes back to it.
	if err := b2.Write(ctx, schema.KindReferral, ref.ID, json.RawMessage(`{"status":"closed","reopened":0}`)); err != nil {
		t.Fatal(err)
	}
	if r := pushAll(t, s, b2); r[0].Change != 0 {
		t.Errorf("a change made on a state the server no longer holds: %+v", r[0])
	}
	if got := pullAll(t, s, b2); !got[ref.ID] {
		t.Errorf("the merge did not reach the tablet")
	}
	same(b2)
	pullAll(t, s, a)
	pullAll(t, s, b)
	same(a)
	same(b)
}

// TestAcceptPushNotesEchoes: a push answer gives the rows it made their
// change numbers: all of them while the outbox holds the whole request,
// only those still queued when part of it was handled before, and none
// again when the same answer comes twice, even after a row has moved on.
func TestAcceptPushNotesEchoes(t *testing.T) {
	ctx := context.Background()
	clock := newTestClock()
	w := newWorld(t)
	s := MustOpenServer(t, clock, w)
	d := MustOpenDevice(t, clock.Now, s, w.unitA)
	syncAll(t, s, d)

	// create makes n contacts, each with a syringe exchange at it.
	create := func(n int) []schema.Record {
		var out []schema.Record
		for range n {
			c := newContact(t, w, d.ID(), clock.Now().Add(-time.Hour))
			x := &schema.SyringeExchange{Header: schema.Header{ID: newID(t), UnitID: w.unitA, DeviceID: d.ID(), StaffID: w.staffA, OccurredAt: c.OccurredAt},
				ContactID: c.ID, SyringesOut: 10}
			for _, r := range []schema.Record{c, x} {
				if err := d.Create(ctx, r); err != nil {
					t.Fatal(err)
				}
				out = append(out, r)
			}
		}
		return out
	}
	push := func() (*wire.PushRequest, *wire.PushResponse) {
		req, err := d.NextPush(ctx, 100)
		if err != nil || req == nil {
			t.Fatalf("next push: %v, %v", req, err)
		}
		resp, err := s.Push(ctx, d.ID(), req)
		if err != nil {
			t.Fatal(err)
		}
		return req, resp
	}
	// noted fails unless the records' rows are at the server's change
	// numbers (want) or still at none.
	noted := func(recs []schema.Record, want bool) {
		t.Helper()
		for _, r := range recs {
			mine, err := d.Get(ctx, r.Kind(), r.RecordID())
			if err != nil {
				t.Fatal(err)
			}
			theirs, err := s.Get(ctx, r.Kind(), r.RecordID())
			if err != nil {
				t.Fatal(err)
			}
			if want && (mine.Seq != theirs.Seq || mine.Seq == 0) || !want && mine.Seq != 0 {
				t.Errorf("%s %s at change %d, the server's at %d, noted %v", r.Kind(), r.RecordID(), mine.Seq, theirs.Seq, want)
			}
		}
	}

	// Part of the request was handled before: only the rest is noted.
	recs := create(3)
	req, resp := push()
	if err := d.SkipTo(ctx, req.Mutations[2].Seq); err != nil {
		t.Fatal(err)
	}
	if err := d.AcceptPush(ctx, resp); err != nil {
		t.Fatal(err)
	}
	noted(recs[:2], false)
	noted(recs[2:], true)

	// The whole request still queued: every row is noted, and the same
	// answer again, after a correction is queued, changes nothing.
	recs = create(4)
	_, resp = push()
	if err := d.AcceptPush(ctx, resp); err != nil {
		t.Fatal(err)
	}
	noted(recs, true)
	if n, _ := d.Pending(ctx); n != 0 {
		t.Fatalf("%d mutations still queued", n)
	}
	if err := d.Write(ctx, schema.KindContact, recs[0].RecordID(), json.RawMessage(`{"setting":"fixed_site"}`)); err != nil {
		t.Fatal(err)
	}
	other, err := d.NextPush(ctx, 100)
	if err != nil || other == nil {
		t.Fatalf("next push: %v, %v", other, err)
	}
	for range 2 {
		if err := d.AcceptPush(ctx, resp); err != nil {
			t.Fatal(err)
		}
	}
	noted(recs, true)
	if n, _ := d.Pending(ctx); n != 1 {
		t.Fatalf("%d mutations queued, want the correction", n)
	}
}

// TestEchoesOfWritesQueuedBeforeUpgrade: a replica whose writes were queued
// by a version before migration 0023 (rows with no echo named, no write
// marked superseded) notes the answers to them as one made since does:
// after each push of two mutations, every row the server has is at the
// server's change number, the corrected contact too, whose create is
// answered before its two corrections; in the end each holds the server's
// state.
func TestEchoesOfWritesQueuedBeforeUpgrade(t *testing.T) {
	ctx := context.Background()
	clock := newTestClock()
	w := newWorld(t)
	s := MustOpenServer(t, clock, w)
	id := newID(t)
	if _, err := s.RegisterDevice(ctx, id, w.unitA); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "tablet.db")
	cfg := replica.DeviceConfig{ID: id, UnitID: w.unitA, Now: clock.Now}
	d, err := replica.OpenDevice(ctx, path, cfg)
	if err != nil {
		t.Fatal(err)
	}
	syncAll(t, s, d)
	var recs []schema.Record
	for range 3 {
		c := newContact(t, w, d.ID(), clock.Now().Add(-time.Hour))
		x := &schema.SyringeExchange{Header: schema.Header{ID: newID(t), UnitID: w.unitA, DeviceID: d.ID(), StaffID: w.staffA, OccurredAt: c.OccurredAt},
			ContactID: c.ID, SyringesOut: 10}
		for _, r := range []schema.Record{c, x} {
			if err := d.Create(ctx, r); err != nil {
				t.Fatal(err)
			}
			recs = append(recs, r)
		}
	}
	for _, setting := range []string{"fixed_site", "street"} {
		if err := d.Write(ctx, schema.KindContact, recs[0].RecordID(), json.RawMessage(`{"setting":"`+setting+`"}`)); err != nil {
			t.Fatal(err)
		}
	}
	d.Close()

	// The replica as the version before 0023 left it.
	db, err := sql.Open("sqlite3", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	stmts := []string{`DROP INDEX outbox_superseded`, `ALTER TABLE outbox DROP COLUMN superseded`, `DROP TABLE echoes`,
		`DELETE FROM schema_migrations WHERE version = 23`}
	for _, k := range schema.FieldKinds {
		stmts = append(stmts, `ALTER TABLE `+string(k)+` DROP COLUMN echo`)
	}
	for _, q := range stmts {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	db.Close()

	if d, err = replica.OpenDevice(ctx, path, cfg); err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for {
		req, err := d.NextPush(ctx, 2)
		if err != nil {
			t.Fatal(err)
		}
		if req == nil {
			break
		}
		resp, err := s.Push(ctx, d.ID(), req)
		if err != nil {
			t.Fatal(err)
		}
		if err := d.AcceptPush(ctx, resp); err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			mine, err := d.Get(ctx, r.Kind(), r.RecordID())
			if err != nil {
				t.Fatal(err)
			}
			theirs, err := s.Get(ctx, r.Kind(), r.RecordID())
			if errors.Is(err, replica.ErrNotFound) || err == nil && theirs == nil {
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			if mine.Seq != theirs.Seq {
				t.Errorf("after mutations %d..%d the device holds %s %s at change %d, the server at %d",
					req.Mutations[0].Seq, req.Mutations[len(req.Mutations)-1].Seq, r.Kind(), r.RecordID(), mine.Seq, theirs.Seq)
			}
		}
	}
	for _, r := range recs {
		mine, err := d.Get(ctx, r.Kind(), r.RecordID())
		if err != nil {
			t.Fatal(err)
		}
		theirs, err := s.Get(ctx, r.Kind(), r.RecordID())
		if err != nil {
			t.Fatal(err)
		}
		if !mine.Equal(theirs) || mine.Seq != theirs.Seq || mine.Seq == 0 {
			t.Errorf("the device holds %s at change %d, the server %s at %d", mine, mine.Seq, theirs, theirs.Seq)
		}
	}
}

// TestPurgeKeepsEchoesOfRowsKept: retention drops the device's old records
// and the change numbers their answers gave them, and no other: the rows it
// keeps are at the server's change numbers still.
func TestPurgeKeepsEchoesOfRowsKept(t *testing.T) {
	ctx := context.Background()
	clock := newTestClock()
	w := newWorld(t)
	s := MustOpenServer(t, clock, w)
	d := MustOpenDevice(t, clock.Now, s, w.unitA)
	syncAll(t, s, d)
	var kept []uuid.UUID
	for i := range 6 {
		at := clock.Now().Add(-time.Hour)
		if i%2 == 0 {
			at = at.Add(-48 * time.Hour)
		}
		c := newContact(t, w, d.ID(), at)
		if err := d.Create(ctx, c); err != nil {
			t.Fatal(err)
		}
		if i%2 == 1 {
			kept = append(kept, c.ID)
		}
	}
	// One kept record corrected: its row names the correction.
	if err := d.Write(ctx, schema.KindContact, kept[0], json.RawMessage(`{"setting":"shelter"}`)); err != nil {
		t.Fatal(err)
	}
	pushAll(t, s, d)
	if n, err := d.EchoNotes(ctx); err != nil || n != 7 {
		t.Fatalf("%d answers noted (%v), want 7", n, err)
	}
	if n, err := d.Purge(ctx, clock.Now().Add(-24*time.Hour)); err != nil || n != 3 {
		t.Fatalf("purged %d records (%v), want 3", n, err)
	}
	if n, err := d.EchoNotes(ctx); err != nil || n != 3 {
		t.Errorf("%d answers noted after the purge (%v), want those of the 3 rows kept", n, err)
	}
	for _, id := range kept {
		mine, err := d.Get(ctx, schema.KindContact, id)
		if err != nil {
			t.Fatal(err)
		}
		theirs, err := s.Get(ctx, schema.KindContact, id)
		if err != nil {
			t.Fatal(err)
		}
		if mine.Seq == 0 || mine.Seq != theirs.Seq {
			t.Errorf("kept contact %s at change %d, the server's at %d", id, mine.Seq, theirs.Seq)
		}
	}
}

// TestEchoHeadOfAnswerToDroppedMutations: an answer whose mutations are no
// longer queued (dropped by SkipTo) notes nothing but still raises the echo
// head, so that a page read before it keeps the device's newer rows.
func TestEchoHeadOfAnswerToDroppedMutations(t *testing.T) {
	ctx := context.Background()
	clock := newTestClock()
	w := newWorld(t)
	s := MustOpenServer(t, clock, w)
	d := MustOpenDevice(t, clock.Now, s, w.unitA)
	e := MustOpenDevice(t, clock.Now, s, w.unitA)
	syncAll(t, s, e)
	q := newContact(t, w, e.ID(), clock.Now().Add(-time.Hour))
	if err := e.Create(ctx, q); err != nil {
		t.Fatal(err)
	}
	pushAll(t, s, e)
	req, err := d.PullRequest(ctx, 1000)
	if err != nil {
		t.Fatal(err)
	}
	stale, err := s.Pull(ctx, d.ID(), req)
	if err != nil || stale.HasMore {
		t.Fatalf("stale page: %v %v", err, stale.HasMore)
	}
	if err := e.Write(ctx, schema.KindContact, q.ID, json.RawMessage(`{"setting":"shelter"}`)); err != nil {
		t.Fatal(err)
	}
	pushAll(t, s, e)
	pullAll(t, s, d)
	before, err := d.Get(ctx, schema.KindContact, q.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.ResetCursor(ctx); err != nil {
		t.Fatal(err)
	}
	r := newContact(t, w, d.ID(), clock.Now().Add(-time.Hour))
	if err := d.Create(ctx, r); err != nil {
		t.Fatal(err)
	}
	pr, err := d.NextPush(ctx, 100)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := s.Push(ctx, d.ID(), pr)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.SkipTo(ctx, pr.Mutations[len(pr.Mutations)-1].Seq+1); err != nil {
		t.Fatal(err)
	}
	if err := d.AcceptPush(ctx, resp); err != nil {
		t.Fatal(err)
	}
	ok, err := d.AcceptPull(ctx, stale)
	if err != nil || !ok {
		t.Fatalf("stale page not applied: %v", err)
	}
	after, err := d.Get(ctx, schema.KindContact, q.ID)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("stale page head %d, answer change %d; contact at %d before, %d after", stale.Head, resp.Results[0].Change, before.Seq, after.Seq)
	if after.Seq != before.Seq {
		t.Errorf("the stale page took the contact back from change %d to %d", before.Seq, after.Seq)
	}
}

// TestEchoSpan: the pushes of records a device made give it an echo span,
// the run of change numbers that its pulls leave out whole. A number taken
// by anything else (a colleague's record, a merge) ends the run, and what
// that number names arrives; so do the device's own records while it has
// not had their answers.
func TestEchoSpan(t *testing.T) {
	ctx := context.Background()
	clock := newTestClock()
	w := newWorld(t)
	s := MustOpenServer(t, clock, w)
	d := MustOpenDevice(t, clock.Now, s, w.unitA)
	e := MustOpenDevice(t, clock.Now, s, w.unitA)
	syncAll(t, s, d)
	syncAll(t, s, e)
	span := func() replica.EchoSpan {
		t.Helper()
		dev, err := s.LookupDevice(ctx, d.ID())
		if err != nil {
			t.Fatal(err)
		}
		return dev.EchoSpan
	}
	create := func(dev *replica.Device, n int) []uuid.UUID {
		t.Helper()
		var ids []uuid.UUID
		for range n {
			c := newContact(t, w, dev.ID(), clock.Now().Add(-time.Hour))
			if err := dev.Create(ctx, c); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, c.ID)
		}
		return ids
	}
	spanOf := func(res []wire.Result) replica.EchoSpan {
		first, last := res[0], res[len(res)-1]
		return replica.EchoSpan{From: first.Change, To: last.Change, First: first.Seq, Last: last.Seq}
	}

	// Three pushes (pushAll sends 100 at a time) make one span.
	ids := create(d, 250)
	res := pushAll(t, s, d)
	if got, want := span(), spanOf(res); got != want || want.To-want.From != 249 {
		t.Errorf("span after 250 creates: %+v, want %+v", got, want)
	}
	if got := pullAll(t, s, d); len(got) != 0 {
		t.Errorf("the device pulled back %d of its records", len(got))
	}

	// A colleague's record takes the next number: the device's next push
	// begins a span of its own, and the record arrives.
	theirs := create(e, 1)
	pushAll(t, s, e)
	create(d, 10)
	res = pushAll(t, s, d)
	if got, want := span(), spanOf(res); got != want || want.From != res[0].Change {
		t.Errorf("span after a colleague's record: %+v, want %+v", got, want)
	}
	if got := pullAll(t, s, d); len(got) != 1 || !got[theirs[0]] {
		t.Errorf("after a colleague's record the device pulled %v", got)
	}

	// A push whose numbers include a merge of the device's correction with
	// a colleague's makes no span: the merged state arrives.
	if got := pullAll(t, s, e); len(got) != 260 {
		t.Fatalf("the colleague pulled %d records, want 260", len(got))
	}
	if err := e.Write(ctx, schema.KindContact, ids[0], json.RawMessage(`{"area_code":"2361"}`)); err != nil {
		t.Fatal(err)
	}
	pushAll(t, s, e)
	before := span()
	create(d, 5)
	if err := d.Write(ctx, schema.KindContact, ids[0], json.RawMessage(`{"setting":"shelter"}`)); err != nil {
		t.Fatal(err)
	}
	create(d, 5)
	res = pushAll(t, s, d)
	if len(res) != 11 || res[5].Change != 0 || res[4].Change == 0 || res[6].Change == 0 {
		t.Fatalf("push with a merge: %+v", res)
	}
	if got := span(); got != before {
		t.Errorf("a push with a merge left the span %+v, want it as it was, %+v", got, before)
	}
	if got := pullAll(t, s, d); len(got) != 1 || !got[ids[0]] {
		t.Errorf("after the merge the device pulled %v", got)
	}
	sameScope(t, s, d, w.unitA)

	// Records whose answer the device has not had are not left out: it
	// does not know their change numbers yet.
	mine := create(d, 20)
	req, err := d.NextPush(ctx, 100)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := s.Push(ctx, d.ID(), req)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := span(), spanOf(resp.Results); got != want {
		t.Errorf("span after 20 creates: %+v, want %+v", got, want)
	}
	got := pullAll(t, s, d) // the answer was lost
	for _, id := range mine {
		if !got[id] {
			t.Errorf("record %s, whose answer was lost, did not arrive", id)
		}
	}
	if len(got) != len(mine) {
		t.Errorf("the pull brought %d records, want the %d whose answer was lost", len(got), len(mine))
	}
	if err := d.AcceptPush(ctx, resp); err != nil {
		t.Fatal(err)
	}
	if got := pullAll(t, s, d); len(got) != 0 {
		t.Errorf("after the answer the device pulled %d records", len(got))
	}
	sameScope(t, s, d, w.unitA)
}

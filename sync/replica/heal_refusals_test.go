package replica_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/brygga/brygga/schema"
	"github.com/brygga/brygga/sync/replica"
	"github.com/brygga/brygga/sync/wire"
)

// healOne sends rec alone in a heal of device dev and returns its result.
func healOne(t *testing.T, s *replica.ServerStore, dev uuid.UUID, rec wire.Change) wire.HealResult {
	t.Helper()
	resp, err := s.Heal(context.Background(), dev, &wire.HealRequest{Versions: wire.Current(), Records: []wire.Change{rec}})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Results) != 1 || resp.Results[0].ID != rec.ID.String() {
		t.Fatalf("heal results %+v, want one for %s", resp.Results, rec.ID)
	}
	return resp.Results[0]
}

// withID returns c with its id, in the change and in its fields, set to id.
func withID(t *testing.T, c wire.Change, id uuid.UUID) wire.Change {
	t.Helper()
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(c.Fields, &fields); err != nil {
		t.Fatal(err)
	}
	fields["id"], _ = json.Marshal(id)
	c.Fields, _ = json.Marshal(fields)
	c.ID = id
	return c
}

// TestHealRefusals: what a heal may not bring is refused record by record,
// with a code the device can act on, and the others are taken; the store
// keeps its state of every refused record.
func TestHealRefusals(t *testing.T) {
	ctx := context.Background()
	clock := newTestClock()
	w := newWorld(t)
	s := MustOpenServer(t, clock, w)
	a := MustOpenDevice(t, clock.Now, s, w.unitA)
	b := MustOpenDevice(t, clock.Now, s, w.unitB)
	// b's contact is on the server; a's two are only on a.
	bc := newContact(t, w, b.ID(), clock.Now())
	bc.UnitID, bc.StaffID = w.unitB, w.staffB
	if err := b.Create(ctx, bc); err != nil {
		t.Fatal(err)
	}
	syncAll(t, s, b)
	for range 2 {
		if err := a.Create(ctx, newContact(t, w, a.ID(), clock.Now())); err != nil {
			t.Fatal(err)
		}
	}
	recs, _, err := a.HealRecords(ctx, replica.HealCursor{}, 10)
	if err != nil || len(recs) != 2 {
		t.Fatalf("a's heal records: %d, %v; want 2", len(recs), err)
	}
	bRecs, _, err := b.HealRecords(ctx, replica.HealCursor{}, 10)
	if err != nil || len(bRecs) != 1 {
		t.Fatalf("b's heal records: %d, %v; want 1", len(bRecs), err)
	}

	// A device whose clock runs a day ahead: its versions are ahead of the
	// server's clock by more than the skew allowed.
	ahead := func() time.Time { return clock.Now().Add(24 * time.Hour) }
	fast := MustOpenDevice(t, ahead, s, w.unitA)
	if err := fast.Create(ctx, newContact(t, w, fast.ID(), clock.Now())); err != nil {
		t.Fatal(err)
	}
	fastRecs, _, err := fast.HealRecords(ctx, replica.HealCursor{}, 10)
	if err != nil || len(fastRecs) != 1 {
		t.Fatalf("the fast device's heal records: %d, %v", len(fastRecs), err)
	}

	undecodable := recs[0]
	undecodable.Fields = json.RawMessage(`{"id":"` + recs[0].ID.String() + `","setting":7}`)
	noVersion := recs[0]
	noVersion.V = "yesterday"
	reference := recs[0]
	reference.Kind = schema.KindStaff

	cases := []struct {
		name  string
		dev   uuid.UUID
		rec   wire.Change
		code  wire.Code
		field string
	}{
		{"a kind devices do not write", a.ID(), reference, wire.CodeUnknownKind, "kind"},
		{"fields that do not decode", a.ID(), undecodable, wire.CodeInvalidRecord, "v"},
		{"a version that does not parse", a.ID(), noVersion, wire.CodeInvalidRecord, "v"},
		{"a version ahead of the server's clock", fast.ID(), fastRecs[0], wire.CodeInvalidRecord, "v"},
		{"another unit's record", a.ID(), bRecs[0], wire.CodeOutOfScope, "unit_id"},
		{"an id another unit's record has", a.ID(), withID(t, recs[0], bc.ID), wire.CodeOutOfScope, "id"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := healOne(t, s, tc.dev, tc.rec)
			if r.Status != wire.Refused || r.Error == nil || r.Error.Code != tc.code || r.Error.Field != tc.field {
				t.Errorf("heal: %+v (%v), want refused %s on %q", r, r.Error, tc.code, tc.field)
			}
		})
	}
	// b's contact is as b made it.
	got, err := s.Get(ctx, schema.KindContact, bc.ID)
	if err != nil || got == nil || got.Record.(*schema.Contact).UnitID != w.unitB {
		t.Errorf("b's contact after the refused heals: %v, %v", got, err)
	}
	for _, r := range recs {
		if got, _ := s.Get(ctx, schema.KindContact, r.ID); got != nil {
			t.Errorf("a refused record reached the store: %v", got)
		}
	}

	// One refused does not fail the others.
	mixed, err := s.Heal(ctx, a.ID(), &wire.HealRequest{Versions: wire.Current(), Records: []wire.Change{recs[0], bRecs[0], recs[1]}})
	if err != nil {
		t.Fatal(err)
	}
	if st := []wire.HealStatus{mixed.Results[0].Status, mixed.Results[1].Status, mixed.Results[2].Status}; st[0] != wire.Healed || st[1] != wire.Refused || st[2] != wire.Healed {
		t.Errorf("mixed heal: %v, want healed, refused, healed", st)
	}

	// A device the server does not know, and the whole request refused.
	if _, err := s.Heal(ctx, newID(t), &wire.HealRequest{Versions: wire.Current(), Records: recs}); wire.ErrorCode(err) != wire.CodeDeviceUnknown {
		t.Errorf("heal of an unknown device: %v, want %s", err, wire.CodeDeviceUnknown)
	}
}

// TestServerDevices: enrolment commits with what decided it or not at all;
// the device list says what each device did; retiring and revoking an
// unknown device fail.
func TestServerDevices(t *testing.T) {
	ctx := context.Background()
	clock := newTestClock()
	w := newWorld(t)
	s := MustOpenServer(t, clock, w)

	first := newID(t)
	if e, err := s.EnrolDevice(ctx, func(ctx context.Context, tx *sql.Tx) (uuid.UUID, uuid.UUID, error) {
		return first, w.unitA, nil
	}); err != nil || e == nil || e.ID != first || e.UnitID != w.unitA || !e.EnrolledAt.Equal(clock.Now()) {
		t.Fatalf("enrol: %+v, %v", e, err)
	}
	refused := errors.New("the code was used")
	rolledBack := newID(t)
	if _, err := s.EnrolDevice(ctx, func(ctx context.Context, tx *sql.Tx) (uuid.UUID, uuid.UUID, error) {
		return rolledBack, w.unitA, refused
	}); !errors.Is(err, refused) {
		t.Errorf("enrol refused by decide: %v", err)
	}
	if e, err := s.EnrolDevice(ctx, func(ctx context.Context, tx *sql.Tx) (uuid.UUID, uuid.UUID, error) {
		return uuid.Nil, uuid.Nil, nil
	}); err != nil || e != nil {
		t.Errorf("enrol of no device: %+v, %v; want none", e, err)
	}
	if _, err := s.LookupDevice(ctx, rolledBack); !errors.Is(err, replica.ErrUnknownDevice) {
		t.Errorf("a device whose enrolment was refused: %v", err)
	}
	if _, err := s.EnrolDevice(ctx, func(ctx context.Context, tx *sql.Tx) (uuid.UUID, uuid.UUID, error) {
		return first, w.unitA, nil
	}); err == nil {
		t.Error("a device enrolled twice")
	}

	clock.Advance(time.Hour)
	d := MustOpenDevice(t, clock.Now, s, w.unitA)
	if err := d.Create(ctx, newContact(t, w, d.ID(), clock.Now())); err != nil {
		t.Fatal(err)
	}
	syncAll(t, s, d)
	clock.Advance(time.Minute)
	if err := s.NotePull(ctx, d.ID()); err != nil {
		t.Fatal(err)
	}
	devs, err := s.Devices(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(devs) != 2 || devs[0].ID != d.ID() || devs[1].ID != first {
		t.Fatalf("devices %+v, want the later enrolment first", devs)
	}
	if e := devs[0]; e.LastSeq != 1 || e.Applied != 1 || e.Protocol == 0 || !e.LastPullAt.Equal(clock.Now()) || e.LastPushAt.IsZero() {
		t.Errorf("the device that synced: %+v", e)
	}
	if e := devs[1]; e.LastSeq != 0 || !e.LastPushAt.IsZero() || !e.LastPullAt.IsZero() || !e.RevokedAt.IsZero() || !e.RetiredAt.IsZero() {
		t.Errorf("the device that did nothing: %+v", e)
	}

	unknown := newID(t)
	if err := s.RetireDevice(ctx, unknown); !errors.Is(err, replica.ErrUnknownDevice) {
		t.Errorf("retire an unknown device: %v", err)
	}
	if err := s.RevokeDevice(ctx, unknown); !errors.Is(err, replica.ErrUnknownDevice) {
		t.Errorf("revoke an unknown device: %v", err)
	}
	if err := s.RetireDevice(ctx, first); err != nil {
		t.Fatal(err)
	}
	retired, _ := s.LookupDevice(ctx, first)
	clock.Advance(time.Minute)
	if err := s.RetireDevice(ctx, first); err != nil {
		t.Errorf("retire twice: %v", err)
	}
	if again, _ := s.LookupDevice(ctx, first); !again.RetiredAt.Equal(retired.RetiredAt) {
		t.Errorf("retiring again moved the time from %s to %s", retired.RetiredAt, again.RetiredAt)
	}
}

// TestBackupTime: a copy made by Backup says when, under an epoch of its
// own whose parent is the database's; a database not made by Backup says
// nothing.
func TestBackupTime(t *testing.T) {
	ctx := context.Background()
	clock := newTestClock()
	w := newWorld(t)
	dir := t.TempDir()
	s := MustOpenServer(t, clock, w)
	if at, err := replica.BackupTime(ctx, s.DB().Path()); err != nil || !at.IsZero() {
		t.Errorf("backup time of the live database: %s, %v; want none", at, err)
	}
	copyPath := filepath.Join(dir, "copy.db")
	epoch, err := s.Backup(ctx, copyPath)
	if err != nil {
		t.Fatal(err)
	}
	if at, err := replica.BackupTime(ctx, copyPath); err != nil || !at.Equal(clock.Now()) {
		t.Errorf("backup time %s, %v; want %s", at, err, clock.Now())
	}
	if _, err := s.Backup(ctx, copyPath); err == nil {
		t.Error("a backup over an existing file")
	}
	clock.Advance(time.Hour)
	restored, err := replica.NewEpoch(ctx, copyPath, "restored_at", clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if restored == epoch || restored == s.Epoch() {
		t.Errorf("the restore's epoch %s is not new", restored)
	}
	r, err := replica.OpenServer(ctx, copyPath, replica.ServerConfig{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.Epoch() != restored {
		t.Errorf("opened at epoch %s, want %s", r.Epoch(), restored)
	}
	if _, err := replica.NewEpoch(ctx, filepath.Join(dir, "missing", "x.db"), "restored_at", clock.Now()); err == nil {
		t.Error("a new epoch for a file that cannot exist")
	}
}

// TestHealReceivingUnit: the unit a referral is sent to heals the
// referral's status, as it may push it, and nothing else of it; a record
// sent again with an immutable field changed is refused as a push would be.
func TestHealReceivingUnit(t *testing.T) {
	ctx := context.Background()
	clock := newTestClock()
	w := newWorld(t)
	s := MustOpenServer(t, clock, w)
	a := MustOpenDevice(t, clock.Now, s, w.unitA)
	b := MustOpenDevice(t, clock.Now, s, w.unitB)
	c := newContact(t, w, a.ID(), clock.Now().Add(-time.Hour))
	ref := &schema.Referral{Header: c.Header, ContactID: c.ID, Service: schema.ServiceOpioidSubstitution, ToUnitID: w.unitB, Status: schema.StatusSent}
	ref.ID = newID(t)
	for _, rec := range []schema.Record{c, ref} {
		if err := a.Create(ctx, rec); err != nil {
			t.Fatal(err)
		}
	}
	syncAll(t, s, a)
	syncAll(t, s, b)
	heal := func(d *replica.Device) map[uuid.UUID]wire.HealResult {
		t.Helper()
		recs, _, err := d.HealRecords(ctx, replica.HealCursor{}, 100)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := s.Heal(ctx, d.ID(), &wire.HealRequest{Versions: wire.Current(), Records: recs})
		if err != nil {
			t.Fatal(err)
		}
		out := map[uuid.UUID]wire.HealResult{}
		for i, r := range resp.Results {
			out[recs[i].ID] = r
		}
		return out
	}
	serverRef := func() *schema.Referral {
		t.Helper()
		got, err := s.Get(ctx, schema.KindReferral, ref.ID)
		if err != nil || got == nil {
			t.Fatalf("the referral on the server: %v, %v", got, err)
		}
		return got.Record.(*schema.Referral)
	}

	clock.Advance(time.Minute)
	received := *ref
	received.Status = schema.StatusReceived
	if err := b.Update(ctx, &received, "status", "reopened"); err != nil {
		t.Fatal(err)
	}
	if r := heal(b)[ref.ID]; r.Status != wire.Healed {
		t.Errorf("heal of the receiver's status: %+v (%v), want healed", r, r.Error)
	}
	if got := serverRef(); got.Status != schema.StatusReceived {
		t.Errorf("status on the server %s, want received", got.Status)
	}

	clock.Advance(time.Minute)
	moved := received
	moved.Service = schema.ServiceHousing
	if err := b.Update(ctx, &moved, "service"); err != nil {
		t.Fatal(err)
	}
	if r := heal(b)[ref.ID]; r.Status != wire.Refused || r.Error == nil || r.Error.Code != wire.CodeOutOfScope || r.Error.Field != "service" {
		t.Errorf("heal of the receiver's service: %+v (%v), want refused out_of_scope on service", r, r.Error)
	}
	if got := serverRef(); got.Service != schema.ServiceOpioidSubstitution {
		t.Errorf("service on the server %s, want the sender's", got.Service)
	}

	// The sender's contact, sent again with another worker: staff_id is
	// immutable.
	recs, _, err := a.HealRecords(ctx, replica.HealCursor{}, 100)
	if err != nil {
		t.Fatal(err)
	}
	sent := false
	for _, rc := range recs {
		if rc.ID != c.ID {
			continue
		}
		sent = true
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(rc.Fields, &fields); err != nil {
			t.Fatal(err)
		}
		fields["staff_id"], _ = json.Marshal(newID(t))
		rc.Fields, _ = json.Marshal(fields)
		if r := healOne(t, s, a.ID(), rc); r.Status != wire.Refused || r.Error == nil || r.Error.Code != wire.CodeImmutable || r.Error.Field != "staff_id" {
			t.Errorf("heal with staff_id changed: %+v (%v), want refused %s on staff_id", r, r.Error, wire.CodeImmutable)
		}
	}
	if !sent {
		t.Fatal("the sender's heal records lack the contact")
	}
	if got, _ := s.Get(ctx, schema.KindContact, c.ID); got.Record.(*schema.Contact).StaffID != w.staffA {
		t.Errorf("the contact's worker on the server %s, want %s", got.Record.(*schema.Contact).StaffID, w.staffA)
	}
}

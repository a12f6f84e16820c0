package replica_test

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/brygga/brygga/schema"
	"github.com/brygga/brygga/sync/hlc"
	"github.com/brygga/brygga/sync/replica"
	"github.com/brygga/brygga/sync/wire"
)

func newContact(tb testing.TB, w world, dev uuid.UUID, at time.Time) *schema.Contact {
	return &schema.Contact{
		Header: schema.Header{ID: newID(tb), UnitID: w.unitA, DeviceID: dev, StaffID: w.staffA, OccurredAt: at},
		Gender: schema.GenderNotStated, AgeBand: schema.AgeNotStated, Setting: schema.SettingStreet, AreaCode: "2380",
	}
}

func mutation(tb testing.TB, seq int64, rec schema.Record, ts hlc.Timestamp) wire.Mutation {
	return wire.Mutation{Seq: seq, Kind: rec.Kind(), ID: rec.RecordID(), Version: ts, Fields: json.RawMessage(fieldsOf(tb, rec))}
}

func push(tb testing.TB, s *replica.ServerStore, dev uuid.UUID, ms ...wire.Mutation) *wire.PushResponse {
	tb.Helper()
	resp, err := s.Push(context.Background(), dev, &wire.PushRequest{Versions: wire.Current(), Mutations: ms})
	if err != nil {
		tb.Fatal(err)
	}
	if len(resp.Results) != len(ms) {
		tb.Fatalf("%d results for %d mutations", len(resp.Results), len(ms))
	}
	return resp
}

func TestPushExactlyOnce(t *testing.T) {
	clock := newTestClock()
	w := newWorld(t)
	s := MustOpenServer(t, clock, w)
	dev := newID(t)
	s.RegisterDevice(context.Background(), dev, w.unitA)
	hc := hlc.NewClock(clock.Now, 0)

	good1 := newContact(t, w, dev, clock.Now().Add(-time.Hour))
	bad := newContact(t, w, dev, clock.Now().Add(-time.Hour))
	bad.StaffID = w.staffB // staff of another unit
	good2 := newContact(t, w, dev, clock.Now().Add(-time.Hour))
	batch := []wire.Mutation{mutation(t, 1, good1, hc.Now()), mutation(t, 2, bad, hc.Now()), mutation(t, 3, good2, hc.Now())}

	resp := push(t, s, dev, batch...)
	if resp.LastSeq != 3 {
		t.Errorf("last seq %d", resp.LastSeq)
	}
	want := []wire.Status{wire.Applied, wire.Rejected, wire.Applied}
	for i, r := range resp.Results {
		if r.Status != want[i] || r.Seq != int64(i+1) {
			t.Errorf("result %d: %+v, want %s", i, r, want[i])
		}
	}
	if e := resp.Results[1].Error; e == nil || e.Code != wire.CodeNotFound || e.Field != "staff_id" {
		t.Errorf("rejection: %+v", e)
	}

	// The retry of the same batch applies nothing twice and answers the
	// rejection again.
	again := push(t, s, dev, batch...)
	want = []wire.Status{wire.Duplicate, wire.Rejected, wire.Duplicate}
	for i, r := range again.Results {
		if r.Status != want[i] {
			t.Errorf("retry result %d: %s, want %s", i, r.Status, want[i])
		}
	}
	rows, _ := s.ScopeRows(context.Background(), w.unitA)
	contacts := 0
	for _, r := range rows {
		if r.Kind == schema.KindContact {
			contacts++
		}
	}
	if contacts != 2 {
		t.Errorf("%d contacts stored, want 2", contacts)
	}

	// A restored device reusing number 3 for another record is refused.
	other := newContact(t, w, dev, clock.Now().Add(-time.Hour))
	reused := push(t, s, dev, mutation(t, 3, other, hc.Now()))
	if r := reused.Results[0]; r.Status != wire.Rejected || r.Error.Code != wire.CodeSeqReused {
		t.Errorf("reused number: %+v", r)
	}

	// A mutation of an unknown kind is rejected, and so is its retry.
	odd := wire.Mutation{Seq: 4, Kind: "patients", ID: newID(t), Version: hc.Now(), Fields: json.RawMessage(`{}`)}
	for range 2 {
		if r := push(t, s, dev, odd).Results[0]; r.Status != wire.Rejected || r.Error.Code != wire.CodeUnknownKind {
			t.Errorf("unknown kind: %+v", r)
		}
	}

	// A push that skips numbers is refused as a whole.
	_, err := s.Push(context.Background(), dev, &wire.PushRequest{Versions: wire.Current(), Mutations: []wire.Mutation{mutation(t, 9, other, hc.Now())}})
	var we *wire.Error
	if !errors.As(err, &we) || we.Code != wire.CodeSeqGap || we.Expected != 5 {
		t.Errorf("gap: got %v", err)
	}
}

func TestPushScope(t *testing.T) {
	clock := newTestClock()
	w := newWorld(t)
	s := MustOpenServer(t, clock, w)
	devA, devB := newID(t), newID(t)
	s.RegisterDevice(context.Background(), devA, w.unitA)
	s.RegisterDevice(context.Background(), devB, w.unitB)
	hc := hlc.NewClock(clock.Now, 0)

	c := newContact(t, w, devA, clock.Now().Add(-time.Hour))
	ref := &schema.Referral{Header: c.Header, Service: schema.ServiceOpioidSubstitution, ToUnitID: w.unitB, Status: schema.StatusSent}
	ref.ID = newID(t)
	push(t, s, devA, mutation(t, 1, c, hc.Now()), mutation(t, 2, ref, hc.Now()))

	// Unit B's device: may move the referral's status, nothing else of it,
	// and cannot see or change unit A's contact.
	steps := []struct {
		kind   schema.Kind
		id     uuid.UUID
		fields string
		code   wire.Code
	}{
		{schema.KindReferral, ref.ID, `{"status":"received","reopened":0}`, ""},
		{schema.KindReferral, ref.ID, `{"service":"housing"}`, wire.CodeOutOfScope},
		{schema.KindContact, c.ID, `{"voided":true}`, wire.CodeNotFound},
		{schema.KindContact, c.ID, fieldsOf(t, c), wire.CodeOutOfScope},
	}
	for i, st := range steps {
		resp := push(t, s, devB, wire.Mutation{Seq: int64(i + 1), Kind: st.kind, ID: st.id, Version: hc.Now(), Fields: json.RawMessage(st.fields)})
		r := resp.Results[0]
		if st.code == "" && r.Status != wire.Applied || st.code != "" && (r.Error == nil || r.Error.Code != st.code) {
			t.Errorf("step %d %s: %+v %+v, want %q", i, st.fields, r, r.Error, st.code)
		}
	}
	got, _ := s.Get(context.Background(), schema.KindReferral, ref.ID)
	if r := got.Record.(*schema.Referral); r.Status != schema.StatusReceived || r.Service != schema.ServiceOpioidSubstitution {
		t.Errorf("referral %+v", r)
	}
	if got, _ := s.Get(context.Background(), schema.KindContact, c.ID); got.Record.(*schema.Contact).Voided {
		t.Error("another unit voided the contact")
	}
}

// TestClockPolicy: a tablet set a week ahead does not win later
// conflicts, and one reset to the year 2000 keeps its records.
func TestClockPolicy(t *testing.T) {
	ctx := context.Background()
	clock := newTestClock()
	w := newWorld(t)
	s := MustOpenServer(t, clock, w)

	ahead := MustOpenDevice(t, func() time.Time { return clock.Now().Add(7 * 24 * time.Hour) }, s, w.unitA)
	honest := MustOpenDevice(t, clock.Now, s, w.unitA)

	c := newContact(t, w, ahead.ID(), clock.Now().Add(-time.Hour))
	if err := ahead.Create(ctx, c); err != nil {
		t.Fatal(err)
	}
	c.Setting = schema.SettingShelter
	if err := ahead.Update(ctx, c, "setting"); err != nil {
		t.Fatal(err)
	}
	syncAll(t, s, ahead)
	row, _ := s.Get(ctx, schema.KindContact, c.ID)
	ts, _, err := replica.ParseKey(row.Key("setting"))
	if err != nil {
		t.Fatal(err)
	}
	if ts.Wall().After(clock.Now().Add(replica.DefaultMaxSkew)) {
		t.Fatalf("a week-ahead stamp was kept: %v", ts.Wall())
	}
	if s.Clock().Wall().After(clock.Now().Add(time.Second)) {
		t.Errorf("the server's clock was dragged ahead to %v", s.Clock().Wall())
	}

	// A correction made later on an honest tablet wins.
	clock.Advance(time.Minute)
	syncAll(t, s, honest)
	hc, _ := honest.Get(ctx, schema.KindContact, c.ID)
	rec := hc.Record.(*schema.Contact)
	rec.Setting = schema.SettingFixedSite
	if err := honest.Update(ctx, rec, "setting"); err != nil {
		t.Fatal(err)
	}
	syncAll(t, s, honest)
	syncAll(t, s, ahead)
	for _, d := range []*replica.Device{honest, ahead} {
		r, _ := d.Get(ctx, schema.KindContact, c.ID)
		if got := r.Record.(*schema.Contact).Setting; got != schema.SettingFixedSite {
			t.Errorf("device %s: setting %s, want the later correction fixed_site", d.ID(), got)
		}
	}

	// A tablet whose clock is reset to 2000 keeps stamping after what it
	// knew: its new records and corrections arrive and order correctly.
	var reset bool
	resetNow := func() time.Time {
		if reset {
			return time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
		}
		return clock.Now()
	}
	dir := t.TempDir()
	id := newID(t)
	s.RegisterDevice(ctx, id, w.unitA)
	path := filepath.Join(dir, "reset.db")
	d, err := replica.OpenDevice(ctx, path, replica.DeviceConfig{ID: id, UnitID: w.unitA, Now: resetNow})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	syncAll(t, s, d)
	reset = true
	c2 := newContact(t, w, id, clock.Now().Add(-time.Minute)) // the worker enters the true time
	if err := d.Create(ctx, c2); err != nil {
		t.Fatal(err)
	}
	r2, _ := d.Get(ctx, schema.KindContact, c.ID)
	rec2 := r2.Record.(*schema.Contact)
	rec2.Setting = schema.SettingMobileUnit
	if err := d.Update(ctx, rec2, "setting"); err != nil {
		t.Fatal(err)
	}
	syncAll(t, s, d)
	if got, _ := s.Get(ctx, schema.KindContact, c2.ID); got == nil {
		t.Fatal("the reset tablet's record was lost")
	}
	if got, _ := s.Get(ctx, schema.KindContact, c.ID); got.Record.(*schema.Contact).Setting != schema.SettingMobileUnit {
		t.Errorf("the reset tablet's correction lost to an older one: %s", got.Record.(*schema.Contact).Setting)
	}
}

func TestPullCursor(t *testing.T) {
	ctx := context.Background()
	clock := newTestClock()
	w := newWorld(t)
	s := MustOpenServer(t, clock, w)
	d := MustOpenDevice(t, clock.Now, s, w.unitA)
	for range 25 {
		if err := d.Create(ctx, newContact(t, w, d.ID(), clock.Now().Add(-time.Hour))); err != nil {
			t.Fatal(err)
		}
	}
	syncAll(t, s, d)

	// Pages of 10 from the start cover everything once, in order.
	seen := map[uuid.UUID]bool{}
	cursor, pages := "", 0
	var last int64
	for {
		resp, err := s.Pull(ctx, d.ID(), &wire.PullRequest{Versions: wire.Current(), Cursor: cursor, Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, c := range resp.Changes {
			if seen[c.ID] || c.Seq <= last {
				t.Fatalf("change %s out of order or repeated", c.ID)
			}
			seen[c.ID], last = true, c.Seq
		}
		if resp.Since != cursor {
			t.Errorf("page says it continues from %q, asked %q", resp.Since, cursor)
		}
		cursor = resp.Cursor
		if !resp.HasMore {
			break
		}
	}
	if want := 25 + len(w.reference()); len(seen) != want || pages != 4 {
		t.Errorf("%d changes in %d pages, want %d in 4", len(seen), pages, want)
	}

	// Bad cursors ask the device to start over.
	other := wire.Cursor{Store: uuid.Must(uuid.NewRandom()), Seq: 3}.String()
	for _, c := range []string{"garbage", other} {
		_, err := s.Pull(ctx, d.ID(), &wire.PullRequest{Versions: wire.Current(), Cursor: c})
		var we *wire.Error
		if !errors.As(err, &we) || we.Code != wire.CodeCursorInvalid {
			t.Errorf("cursor %q: got %v", c, err)
		}
	}
	// A cursor of this database beyond what it holds, or of a span of its
	// history it does not hold, says it was put back to an older copy.
	at, _ := wire.ParseCursor(cursor)
	for _, c := range []string{
		wire.Cursor{Store: s.ID(), Seq: last + 1000}.String(),
		wire.Cursor{Store: s.ID(), Seq: at.Seq, Mark: at.Mark + 2}.String(),
	} {
		_, err := s.Pull(ctx, d.ID(), &wire.PullRequest{Versions: wire.Current(), Cursor: c})
		if wire.ErrorCode(err) != wire.CodeServerRestored {
			t.Errorf("cursor %q: got %v", c, err)
		}
	}
	if _, err := s.Pull(ctx, d.ID(), &wire.PullRequest{Versions: wire.Current(), Cursor: cursor}); err != nil {
		t.Errorf("the last cursor: %v", err)
	}

	// A restored server database: the device's cursor is refused; the
	// server holds none of the device's mutations, which the device's pull
	// says were answered (acked), so it is answered server_restored; the
	// device sends its records again and starts over, and ends with the
	// same state.
	s2path := filepath.Join(t.TempDir(), "other.db")
	s2, err := replica.OpenServer(ctx, s2path, replica.ServerConfig{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	s2.PutReference(ctx, w.reference()...)
	s2.RegisterDevice(ctx, d.ID(), w.unitA)
	req, err := d.PullRequest(ctx, 100)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s2.Pull(ctx, d.ID(), req); wire.ErrorCode(err) != wire.CodeCursorInvalid {
		t.Errorf("the device's cursor on another database: %v", err)
	}
	if req.Acked == 0 {
		t.Fatal("the device's pull says none of its mutations were answered")
	}
	req.Cursor = ""
	if _, err := s2.Pull(ctx, d.ID(), req); wire.ErrorCode(err) != wire.CodeServerRestored {
		t.Errorf("a pull acking %d of a server that processed none: %v", req.Acked, err)
	}
	for hc := (replica.HealCursor{}); ; {
		recs, next, err := d.HealRecords(ctx, hc, 100)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) == 0 {
			break
		}
		if _, err := s2.Heal(ctx, d.ID(), &wire.HealRequest{Versions: wire.Current(), AckedThrough: req.Acked, Records: recs}); err != nil {
			t.Fatal(err)
		}
		hc = next
	}
	syncAll(t, s2, d)
	n, _ := d.Rows(ctx, schema.KindContact)
	if len(n) != 25 {
		t.Errorf("device holds %d contacts after starting over", len(n))
	}

	// Revoked devices may not pull.
	if err := s.RevokeDevice(ctx, d.ID()); err != nil {
		t.Fatal(err)
	}
	_, err = s.Pull(ctx, d.ID(), &wire.PullRequest{Versions: wire.Current()})
	var we *wire.Error
	if !errors.As(err, &we) || we.Code != wire.CodeDeviceRevoked {
		t.Errorf("revoked device pulled: %v", err)
	}
}

// TestAppendPull: the encoded pull a server answers with is the page Pull
// returns, encoded, page after page, while the arrays pages are read into
// are reused; an error encodes nothing.
func TestAppendPull(t *testing.T) {
	ctx := context.Background()
	clock := newTestClock()
	w := newWorld(t)
	s := MustOpenServer(t, clock, w)
	d := MustOpenDevice(t, clock.Now, s, w.unitA)
	for range 2500 { // pages of 2000 take several of the 256 KiB arrays
		if err := d.Create(ctx, newContact(t, w, d.ID(), clock.Now().Add(-time.Hour))); err != nil {
			t.Fatal(err)
		}
	}
	syncAll(t, s, d)
	var body []byte
	for _, limit := range []int{2000, 7, 2000, 1} {
		cursor, changes := "", 0
		for {
			req := &wire.PullRequest{Versions: wire.Current(), Cursor: cursor, Limit: limit}
			var page replica.PullAnswer
			var err error
			body, page, err = s.AppendPull(ctx, d.ID(), req, body[:0])
			if err != nil {
				t.Fatal(err)
			}
			want, err := s.Pull(ctx, d.ID(), req)
			if err != nil {
				t.Fatal(err)
			}
			got, err := wire.ParsePullResponse(body)
			if err != nil {
				t.Fatalf("limit %d, after %q: %v", limit, cursor, err)
			}
			got.Clock = want.Clock // read at each pull
			if string(wire.AppendPullResponse(nil, got)) != string(wire.AppendPullResponse(nil, want)) {
				t.Fatalf("limit %d, after %q: the encoded page differs from Pull's", limit, cursor)
			}
			if page.Changes != len(want.Changes) || page.Cursor != want.Cursor || page.HasMore != want.HasMore {
				t.Fatalf("limit %d: told %+v of a page of %d changes to %s (has more %v)", limit, page, len(want.Changes), want.Cursor, want.HasMore)
			}
			changes += page.Changes
			cursor = page.Cursor
			if !page.HasMore || limit == 1 && changes >= 50 {
				break
			}
		}
		if limit != 1 && changes != 2500+len(w.reference()) {
			t.Errorf("limit %d: %d changes, want %d", limit, changes, 2500+len(w.reference()))
		}
	}
	out, _, err := s.AppendPull(ctx, d.ID(), &wire.PullRequest{Versions: wire.Current(), Cursor: "garbage"}, []byte("kept"))
	var we *wire.Error
	if !errors.As(err, &we) || we.Code != wire.CodeCursorInvalid || string(out) != "kept" {
		t.Errorf("bad cursor: %q, %v", out, err)
	}
}

// TestTwoWritersOneFile has two server stores write to one database file,
// as an admin command does while the server runs: every change gets its
// own sequence number, and a device that syncs through one of them
// receives what the other wrote, after its cursor as much as before.
func TestTwoWritersOneFile(t *testing.T) {
	ctx := context.Background()
	clock := newTestClock()
	w := newWorld(t)
	path := filepath.Join(t.TempDir(), "server.db")
	open := func() *replica.ServerStore {
		s, err := replica.OpenServer(ctx, path, replica.ServerConfig{Now: clock.Now})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	serving, admin := open(), open()
	if err := serving.PutReference(ctx, w.reference()...); err != nil {
		t.Fatal(err)
	}
	d := MustOpenDevice(t, clock.Now, serving, w.unitA)
	syncAll(t, serving, d)

	var added []uuid.UUID
	for i := range 3 {
		staff := &schema.Staff{ID: newID(t), UnitID: w.unitA, Role: schema.RoleOutreachWorker, Active: true}
		writer := admin
		if i == 1 {
			writer = serving
		}
		if err := writer.PutReference(ctx, staff); err != nil {
			t.Fatal(err)
		}
		added = append(added, staff.ID)
		if err := d.Create(ctx, newContact(t, w, d.ID(), clock.Now().Add(-time.Hour))); err != nil {
			t.Fatal(err)
		}
		syncAll(t, serving, d)
	}

	// The device holds every staff member either store wrote.
	rows, err := d.Rows(ctx, schema.KindStaff)
	if err != nil {
		t.Fatal(err)
	}
	held := map[uuid.UUID]bool{}
	for _, r := range rows {
		held[r.Record.RecordID()] = true
	}
	for _, id := range added {
		if !held[id] {
			t.Errorf("staff %s, written by the other store, never reached the device", id)
		}
	}
	// And no two changes share a sequence number.
	resp, err := serving.Pull(ctx, d.ID(), &wire.PullRequest{Versions: wire.Current(), Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	seqs := map[int64]uuid.UUID{}
	for _, c := range resp.Changes {
		if other, ok := seqs[c.Seq]; ok {
			t.Errorf("changes %s and %s share sequence number %d", other, c.ID, c.Seq)
		}
		seqs[c.Seq] = c.ID
	}
}

// TestConcurrentPushes pushes from many devices at once, as when a team's
// tablets reach the network together: the pushes that wait are applied
// together, and each keeps its own outcome. Good pushes are applied once,
// a revoked device's and a push with a gap leave no trace, and every
// change has its own sequence number.
func TestConcurrentPushes(t *testing.T) {
	ctx := context.Background()
	clock := newTestClock()
	w := newWorld(t)
	s := MustOpenServer(t, clock, w)
	hc := hlc.NewClock(clock.Now, 0)
	const n = 40
	type attempt struct {
		dev     uuid.UUID
		req     *wire.PushRequest
		contact uuid.UUID
		want    wire.Code // "" for applied
	}
	var attempts []attempt
	for i := range n {
		dev := newID(t)
		if _, err := s.RegisterDevice(ctx, dev, w.unitA); err != nil {
			t.Fatal(err)
		}
		c := newContact(t, w, dev, clock.Now().Add(-time.Hour))
		first := int64(1)
		var want wire.Code
		switch i % 10 {
		case 3:
			if err := s.RevokeDevice(ctx, dev); err != nil {
				t.Fatal(err)
			}
			want = wire.CodeDeviceRevoked
		case 7:
			first, want = 5, wire.CodeSeqGap
		}
		req := &wire.PushRequest{Versions: wire.Current(), Clock: hc.Now(), Mutations: []wire.Mutation{mutation(t, first, c, hc.Now())}}
		attempts = append(attempts, attempt{dev, req, c.ID, want})
	}
	gate := make(chan struct{})
	errs := make([]error, n)
	resps := make([]*wire.PushResponse, n)
	var wg sync.WaitGroup
	for i, a := range attempts {
		wg.Go(func() {
			<-gate
			resps[i], errs[i] = s.Push(ctx, a.dev, a.req)
		})
	}
	close(gate)
	wg.Wait()

	applied := 0
	for i, a := range attempts {
		row, err := s.Get(ctx, schema.KindContact, a.contact)
		if err != nil {
			t.Fatal(err)
		}
		if a.want == "" {
			if errs[i] != nil || len(resps[i].Results) != 1 || resps[i].Results[0].Status != wire.Applied || resps[i].LastSeq != 1 || row == nil {
				t.Errorf("push %d: %v %+v, stored %v", i, errs[i], resps[i], row != nil)
			}
			applied++
			continue
		}
		var we *wire.Error
		if !errors.As(errs[i], &we) || we.Code != a.want || row != nil {
			t.Errorf("push %d: got %v (stored %v), want %s and nothing stored", i, errs[i], row != nil, a.want)
		}
		if info, err := s.LookupDevice(ctx, a.dev); err != nil || info.LastSeq != 0 {
			t.Errorf("refused push %d moved the device on: %+v %v", i, info, err)
		}
	}
	resp, err := s.Pull(ctx, attempts[0].dev, &wire.PullRequest{Versions: wire.Current(), Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	seqs, contacts := map[int64]bool{}, 0
	for _, c := range resp.Changes {
		if seqs[c.Seq] {
			t.Errorf("sequence number %d given twice", c.Seq)
		}
		seqs[c.Seq] = true
		if c.Kind == schema.KindContact {
			contacts++
		}
	}
	if contacts != applied {
		t.Errorf("%d contacts on the server, %d pushes applied", contacts, applied)
	}
}

// TestPushSeesItsOwnInserts pushes, in one request, mutations that read
// what the ones before them inserted: a contact, an exchange at it, a
// change of the contact, and the contact's create sent again under a new
// number; then contacts that share some values with the contact before
// them and differ in others. Each later mutation sees the earlier ones'
// rows, and every stored row holds the record pushed, with the change
// numbers taken in order.
func TestPushSeesItsOwnInserts(t *testing.T) {
	ctx := context.Background()
	clock := newTestClock()
	w := newWorld(t)
	s := MustOpenServer(t, clock, w)
	dev := newID(t)
	s.RegisterDevice(ctx, dev, w.unitA)
	hc := hlc.NewClock(clock.Now, 0)
	at := clock.Now().Add(-time.Hour)

	c := newContact(t, w, dev, at)
	x := &schema.SyringeExchange{Header: schema.Header{ID: newID(t), UnitID: w.unitA, DeviceID: dev, StaffID: w.staffA, OccurredAt: at},
		ContactID: c.ID, SyringesOut: 20, NeedlesOut: 20, SyringesReturned: 12}
	createC := mutation(t, 1, c, hc.Now())
	voided := wire.Mutation{Seq: 3, Kind: schema.KindContact, ID: c.ID, Version: hc.Now(), Fields: json.RawMessage(`{"voided":true}`)}
	again := createC
	again.Seq = 4
	ms := []wire.Mutation{createC, mutation(t, 2, x, hc.Now()), voided, again}
	var others []*schema.Contact
	for i := range 4 {
		o := newContact(t, w, dev, at) // same unit, device, staff and time as c
		if i%2 == 1 {
			o.AreaCode = "1140"
			o.OccurredAt = at.Add(time.Duration(i) * time.Minute)
		}
		others = append(others, o)
		ms = append(ms, mutation(t, int64(5+i), o, hc.Now()))
	}
	before, err := s.Pull(ctx, dev, &wire.PullRequest{Versions: wire.Current(), Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	base := before.Head // the reference data's changes
	resp := push(t, s, dev, ms...)
	for i, r := range resp.Results {
		if r.Status != wire.Applied {
			t.Fatalf("mutation %d: %+v", ms[i].Seq, r)
		}
	}

	row, err := s.Get(ctx, schema.KindContact, c.ID)
	if err != nil || row == nil {
		t.Fatalf("contact: %v, %v", row, err)
	}
	if got := row.Record.(*schema.Contact); !got.Voided || got.AreaCode != c.AreaCode {
		t.Errorf("contact after its change in the same push: %+v", got)
	}
	// Created at 1, the exchange at 2, changed at 3; the create sent
	// again changes nothing.
	if row.Seq != base+3 {
		t.Errorf("contact's change number %d, want %d", row.Seq, base+3)
	}
	if xr, err := s.Get(ctx, schema.KindSyringeExchange, x.ID); err != nil || xr == nil || xr.Seq != base+2 || xr.Record.(*schema.SyringeExchange).ContactID != c.ID {
		t.Errorf("exchange: %v, %v", xr, err)
	}
	for i, o := range others {
		r, err := s.Get(ctx, schema.KindContact, o.ID)
		if err != nil || r == nil {
			t.Fatalf("contact %d: %v, %v", i, r, err)
		}
		want := replica.RowOf(o, replica.Key(ms[4+i].Version, dev))
		want.Seq = base + int64(4+i)
		if !r.Equal(want) || r.Seq != want.Seq || r.Echo != ms[4+i].Seq {
			t.Errorf("contact %d stored as %v (echo %d), want %v (echo %d)", i, r, r.Echo, want, ms[4+i].Seq)
		}
	}
}

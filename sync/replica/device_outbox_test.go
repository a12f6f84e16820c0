package replica_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/brygga/brygga/schema"
	"github.com/brygga/brygga/sync/replica"
	"github.com/brygga/brygga/sync/wire"
)

// TestDeviceWritesRefused: writes a device may not make are refused before
// anything is queued.
func TestDeviceWritesRefused(t *testing.T) {
	ctx := context.Background()
	clock := newTestClock()
	w := newWorld(t)
	d := MustOpenDevice(t, clock.Now, nil, w.unitA)
	c := newContact(t, w, d.ID(), clock.Now())
	if err := d.Create(ctx, c); err != nil {
		t.Fatal(err)
	}

	otherUnit := newContact(t, w, d.ID(), clock.Now())
	otherUnit.UnitID = w.unitB
	otherDevice := newContact(t, w, newID(t), clock.Now())
	var fe *schema.FieldError
	for name, err := range map[string]error{
		"reference data":         d.Create(ctx, &schema.Unit{ID: newID(t), OrgID: w.orgA, Name: "Ny enhet", AreaCode: "2380", Active: true}),
		"another unit's record":  d.Create(ctx, otherUnit),
		"another device's":       d.Create(ctx, otherDevice),
		"a write of a reference": d.Write(ctx, schema.KindStaff, w.staffA, json.RawMessage(`{"active":false}`)),
	} {
		if !errors.Is(err, replica.ErrOutOfScope) {
			t.Errorf("%s: %v, want ErrOutOfScope", name, err)
		}
	}
	if err := d.Void(ctx, schema.KindContact, newID(t)); !errors.Is(err, replica.ErrNotFound) {
		t.Errorf("void of a record the device lacks: %v, want ErrNotFound", err)
	}
	if err := d.Update(ctx, c); err == nil {
		t.Error("an update naming no fields is taken")
	}
	if err := d.Update(ctx, c, "id"); err == nil {
		t.Error("an update of the id is taken")
	}
	if err := d.Update(ctx, c, "setting", "colour"); !errors.As(err, &fe) || fe.Rule != schema.RuleUnknownField {
		t.Errorf("an update naming an unknown field: %v, want a %s error", err, schema.RuleUnknownField)
	}
	if err := d.Write(ctx, schema.KindContact, c.ID, json.RawMessage(`{"setting":"moon"}`)); !errors.As(err, &fe) || fe.Rule != schema.RuleEnum {
		t.Errorf("a value not in the enumeration: %v, want a %s error", err, schema.RuleEnum)
	}
	if n, err := d.Pending(ctx); err != nil || n != 1 {
		t.Errorf("pending %d, %v: the refused writes queued something", n, err)
	}
	got, err := d.Get(ctx, schema.KindContact, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Record.(*schema.Contact).Setting != schema.SettingStreet {
		t.Errorf("a refused write changed the record: %v", got)
	}

	// A correction is queued and shows at once.
	c.Setting = schema.SettingFixedSite
	if err := d.Update(ctx, c, "setting"); err != nil {
		t.Fatal(err)
	}
	if got, _ := d.Get(ctx, schema.KindContact, c.ID); got.Record.(*schema.Contact).Setting != schema.SettingFixedSite {
		t.Errorf("the correction does not show: %v", got)
	}
	if n, _ := d.Pending(ctx); n != 2 {
		t.Errorf("pending %d after a correction, want 2", n)
	}
}

// TestRejections: a record the server refuses is kept as a rejection the
// worker sees, with what was written; the record leaves the replica (the
// server has no state of it); the worker dismisses it once.
func TestRejections(t *testing.T) {
	ctx := context.Background()
	clock := newTestClock()
	w := newWorld(t)
	s := MustOpenServer(t, clock, w)
	d := MustOpenDevice(t, clock.Now, s, w.unitA)
	good := newContact(t, w, d.ID(), clock.Now())
	bad := newContact(t, w, d.ID(), clock.Now())
	bad.StaffID = w.staffB // staff of another unit: the device cannot tell, the server can
	for _, c := range []*schema.Contact{good, bad} {
		if err := d.Create(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	clock.Advance(time.Minute)
	syncAll(t, s, d)

	rejs, err := d.Rejections(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(rejs) != 1 {
		t.Fatalf("rejections %+v, want the one", rejs)
	}
	r := rejs[0]
	if r.Seq != 2 || r.Kind != schema.KindContact || r.ID != bad.ID || r.Error.Code != wire.CodeNotFound || r.Error.Field != "staff_id" {
		t.Errorf("rejection %+v, want mutation 2 of %s refused not_found on staff_id", r, bad.ID)
	}
	if !r.RejectedAt.Equal(clock.Now()) {
		t.Errorf("rejected at %s, want %s", r.RejectedAt, clock.Now())
	}
	rec, err := r.Record()
	if err != nil {
		t.Fatal(err)
	}
	if got := rec.(*schema.Contact); got.ID != bad.ID || got.StaffID != w.staffB || got.Setting != bad.Setting {
		t.Errorf("the rejected record %+v, want what was written", got)
	}
	if _, err := d.Get(ctx, schema.KindContact, bad.ID); !errors.Is(err, replica.ErrNotFound) {
		t.Errorf("the refused record is still on the device: %v", err)
	}
	if _, err := d.Get(ctx, schema.KindContact, good.ID); err != nil {
		t.Errorf("the good record: %v", err)
	}
	if n, _ := d.Pending(ctx); n != 0 {
		t.Errorf("pending %d after the push, want 0", n)
	}

	// Fields that do not decode give no record, and say why.
	odd := replica.Rejection{Seq: 9, Kind: schema.KindContact, ID: newID(t), Fields: json.RawMessage(`{"colour":"red"}`)}
	if rec, err := odd.Record(); err == nil {
		t.Errorf("a rejection of fields that do not decode gives %+v", rec)
	}

	if err := d.DismissRejection(ctx, r.Seq); err != nil {
		t.Fatal(err)
	}
	if err := d.DismissRejection(ctx, r.Seq); !errors.Is(err, replica.ErrNotFound) {
		t.Errorf("dismiss twice: %v, want ErrNotFound", err)
	}
	if rejs, err := d.Rejections(ctx); err != nil || len(rejs) != 0 {
		t.Errorf("rejections after dismissal: %+v, %v", rejs, err)
	}
}

// TestSkipTo: a server that has processed mutations already drops them
// from the outbox, and the next push starts after them.
func TestSkipTo(t *testing.T) {
	ctx := context.Background()
	clock := newTestClock()
	w := newWorld(t)
	d := MustOpenDevice(t, clock.Now, nil, w.unitA)
	for range 4 {
		if err := d.Create(ctx, newContact(t, w, d.ID(), clock.Now())); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.SkipTo(ctx, 3); err != nil {
		t.Fatal(err)
	}
	req, err := d.NextPush(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	var seqs []int64
	for _, m := range req.Mutations {
		seqs = append(seqs, m.Seq)
	}
	if len(seqs) != 2 || seqs[0] != 3 || seqs[1] != 4 {
		t.Errorf("next push after SkipTo(3): %v, want [3 4]", seqs)
	}
	if n, err := d.AckedThrough(ctx); err != nil || n != 2 {
		t.Errorf("acked through %d, %v; want 2", n, err)
	}
	// The batch after one in flight.
	if req, err := d.NextPushAfter(ctx, 3, 10); err != nil || len(req.Mutations) != 1 || req.Mutations[0].Seq != 4 {
		t.Errorf("next push after 3: %+v, %v", req, err)
	}
	if req, err := d.NextPushAfter(ctx, 4, 10); err != nil || req != nil {
		t.Errorf("next push after the last: %+v, %v; want none", req, err)
	}
}

// TestSelect: an app's reads of its replica, by kind, with a WHERE clause
// and arguments; an unknown kind is refused.
func TestSelect(t *testing.T) {
	ctx := context.Background()
	clock := newTestClock()
	w := newWorld(t)
	d := MustOpenDevice(t, clock.Now, nil, w.unitA)
	want := map[uuid.UUID]bool{}
	for i := range 5 {
		c := newContact(t, w, d.ID(), clock.Now())
		if i%2 == 0 {
			c.Setting = schema.SettingFixedSite
			want[c.ID] = true
		}
		if err := d.Create(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	rows, err := d.Select(ctx, schema.KindContact, `WHERE setting = ? ORDER BY id`, string(schema.SettingFixedSite))
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != len(want) {
		t.Errorf("selected %d rows, want %d", len(rows), len(want))
	}
	for i, r := range rows {
		if !want[r.ID()] {
			t.Errorf("selected %s, which is not at a fixed site", r.ID())
		}
		if i > 0 && r.ID().String() <= rows[i-1].ID().String() {
			t.Error("rows not in id order")
		}
	}
	if rows, err := d.Select(ctx, schema.KindContact, `WHERE setting = ? LIMIT 1`, string(schema.SettingFixedSite)); err != nil || len(rows) != 1 {
		t.Errorf("select with a limit: %d rows, %v", len(rows), err)
	}
	if _, err := d.Select(ctx, schema.Kind("patients"), ``); err == nil {
		t.Error("a select of an unknown kind is taken")
	}
}

// TestPages: a page applies only where the device's cursor is, so that a
// late or repeated answer changes nothing; a page whose changes do not
// decode is refused whole.
func TestPages(t *testing.T) {
	ctx := context.Background()
	clock := newTestClock()
	w := newWorld(t)
	s := MustOpenServer(t, clock, w)
	a := MustOpenDevice(t, clock.Now, s, w.unitA)
	b := MustOpenDevice(t, clock.Now, s, w.unitA)
	for range 6 {
		if err := a.Create(ctx, newContact(t, w, a.ID(), clock.Now())); err != nil {
			t.Fatal(err)
		}
	}
	syncAll(t, s, a)

	req, err := b.PullRequest(ctx, 4)
	if err != nil {
		t.Fatal(err)
	}
	if req.Cursor != "" || req.Limit != 4 {
		t.Errorf("first pull request %+v, want from the start, 4 a page", req)
	}
	first, err := s.Pull(ctx, b.ID(), req)
	if err != nil {
		t.Fatal(err)
	}
	page, err := replica.DecodePage(first)
	if err != nil {
		t.Fatal(err)
	}
	if page.Since() != "" || page.Response() != first {
		t.Errorf("page since %q, response %p; want the first page's", page.Since(), page.Response())
	}
	if ok, err := b.AcceptPage(ctx, page); err != nil || !ok {
		t.Fatalf("first page: %v, %v", ok, err)
	}
	// The same page again, as a duplicated answer: not applied.
	if ok, err := b.AcceptPull(ctx, first); err != nil || ok {
		t.Errorf("the first page again: applied %v, %v", ok, err)
	}
	req, _ = b.PullRequest(ctx, 4)
	if req.Cursor != first.Cursor {
		t.Errorf("cursor %q after the first page, want %q", req.Cursor, first.Cursor)
	}
	second, err := s.Pull(ctx, b.ID(), req)
	if err != nil {
		t.Fatal(err)
	}
	// A page with a change that does not decode is refused before
	// anything is applied.
	broken := *second
	broken.Changes = append([]wire.Change{}, second.Changes...)
	broken.Changes[0].Fields = json.RawMessage(`{"setting":`)
	if _, err := b.AcceptPull(ctx, &broken); err == nil {
		t.Error("a page with a change that does not decode is applied")
	}
	if req2, _ := b.PullRequest(ctx, 4); req2.Cursor != first.Cursor {
		t.Error("the refused page moved the cursor")
	}
	for {
		ok, err := b.AcceptPull(ctx, second)
		if err != nil || !ok {
			t.Fatalf("page: %v, %v", ok, err)
		}
		if !second.HasMore {
			break
		}
		req, _ = b.PullRequest(ctx, 4)
		if second, err = s.Pull(ctx, b.ID(), req); err != nil {
			t.Fatal(err)
		}
	}
	ra, _ := a.Rows(ctx, schema.KindContact)
	rb, _ := b.Rows(ctx, schema.KindContact)
	if len(rb) != 6 || len(ra) != len(rb) {
		t.Fatalf("b holds %d contacts, a %d; want 6 each", len(rb), len(ra))
	}
	for i := range ra {
		if !ra[i].Equal(rb[i]) {
			t.Errorf("contact %s differs: %v and %v", ra[i].ID(), ra[i], rb[i])
		}
	}

	// A cursor reset starts over and ends with the same state.
	if err := b.ResetCursor(ctx); err != nil {
		t.Fatal(err)
	}
	if req, _ := b.PullRequest(ctx, 4); req.Cursor != "" {
		t.Errorf("cursor %q after a reset", req.Cursor)
	}
	syncAll(t, s, b)
	if rb2, _ := b.Rows(ctx, schema.KindContact); len(rb2) != 6 {
		t.Errorf("b holds %d contacts after starting over", len(rb2))
	}
}

// TestPageText: reference names with characters JSON escapes reach a
// device exactly as the server holds them, through Pull and through the
// encoded page of AppendPull alike.
func TestPageText(t *testing.T) {
	ctx := context.Background()
	clock := newTestClock()
	w := newWorld(t)
	s := MustOpenServer(t, clock, w)
	names := []string{`Fält "norr"`, `Mottagning\Syd`, `"\"`, "Enhet <&> ÅÄÖ"}
	ids := make([]uuid.UUID, len(names))
	for i, name := range names {
		ids[i] = newID(t)
		if err := s.PutReference(ctx, &schema.Unit{ID: ids[i], OrgID: w.orgA, Name: name, AreaCode: "2380", Active: true}); err != nil {
			t.Fatal(err)
		}
	}
	d := MustOpenDevice(t, clock.Now, s, w.unitA)
	syncAll(t, s, d)
	for i, id := range ids {
		row, err := d.Get(ctx, schema.KindUnit, id)
		if err != nil {
			t.Fatal(err)
		}
		if got := row.Record.(*schema.Unit).Name; got != names[i] {
			t.Errorf("unit name %q on the device, want %q", got, names[i])
		}
	}
	body, _, err := s.AppendPull(ctx, d.ID(), &wire.PullRequest{Versions: wire.Current(), Limit: 1000}, nil)
	if err != nil {
		t.Fatal(err)
	}
	page, err := wire.ParsePullResponse(body)
	if err != nil {
		t.Fatal(err)
	}
	found := 0
	for i := range page.Changes {
		c := &page.Changes[i]
		if c.Kind != schema.KindUnit {
			continue
		}
		row, err := replica.RowOfChange(c)
		if err != nil {
			t.Fatal(err)
		}
		for j, id := range ids {
			if c.ID == id {
				found++
				if got := row.Record.(*schema.Unit).Name; got != names[j] {
					t.Errorf("unit name %q in the encoded page, want %q", got, names[j])
				}
			}
		}
	}
	if found != len(ids) {
		t.Errorf("the encoded page has %d of the %d units", found, len(ids))
	}
}

// TestNextPushBodyIsTheEncodedRequest: the push that SQLite encodes as it
// reads the outbox is, byte for byte, wire.AppendPushRequest's encoding of
// the request NextPushAfter reads, for every start and size of batch: over
// creates of several kinds, corrections made on a state pulled from the
// server (a base), and corrections whose base was forgotten.
func TestNextPushBodyIsTheEncodedRequest(t *testing.T) {
	ctx := context.Background()
	clock := newTestClock()
	w := newWorld(t)
	s := MustOpenServer(t, clock, w)
	d := MustOpenDevice(t, clock.Now, s, w.unitA)
	e := MustOpenDevice(t, clock.Now, s, w.unitA)
	syncAll(t, s, d)
	syncAll(t, s, e)
	at := clock.Now().Add(-time.Hour)
	var contacts []uuid.UUID
	for i := range 7 {
		c := newContact(t, w, d.ID(), at)
		recs := []schema.Record{c,
			&schema.SyringeExchange{Header: schema.Header{ID: newID(t), UnitID: w.unitA, DeviceID: d.ID(), StaffID: w.staffA, OccurredAt: at},
				ContactID: c.ID, SyringesOut: i, NeedlesOut: 2 * i, SyringesReturned: 3},
		}
		if i%3 == 0 {
			recs = append(recs, &schema.NaloxoneHandout{Header: schema.Header{ID: newID(t), UnitID: w.unitA, DeviceID: d.ID(), StaffID: w.staffA, OccurredAt: at},
				ContactID: c.ID, Doses: 2, Reason: schema.NaloxoneReason(schema.NaloxoneReasonEnum.Codes()[0])})
		}
		for _, r := range recs {
			if err := d.Create(ctx, r); err != nil {
				t.Fatal(err)
			}
		}
		contacts = append(contacts, c.ID)
	}
	syncAll(t, s, d)
	syncAll(t, s, e)
	// e corrects what it pulled (its writes have bases), d what it made.
	for i, id := range contacts {
		dev := e
		if i%2 == 0 {
			dev = d
		}
		if err := dev.Write(ctx, schema.KindContact, id, json.RawMessage(`{"setting":"shelter","area_code":"2361"}`)); err != nil {
			t.Fatal(err)
		}
		if i == 3 {
			if err := e.ResetCursor(ctx); err != nil { // forgets the bases so far
				t.Fatal(err)
			}
		}
	}
	for i := range 4 {
		if err := d.Create(ctx, newContact(t, w, d.ID(), at.Add(time.Duration(i)*time.Minute))); err != nil {
			t.Fatal(err)
		}
	}
	bases := 0
	for _, dev := range []*replica.Device{d, e} {
		for _, limit := range []int{1, 2, 5, 500} {
			for after := int64(0); ; after++ {
				got, err := dev.NextPushBody(ctx, after, limit)
				if err != nil {
					t.Fatal(err)
				}
				req, err := dev.NextPushAfter(ctx, after, limit)
				if err != nil {
					t.Fatal(err)
				}
				if req == nil {
					if got != nil {
						t.Fatalf("after %d: a body %s for no request", after, got.Body)
					}
					break
				}
				if got == nil {
					t.Fatalf("after %d limit %d: no body for %d mutations", after, limit, len(req.Mutations))
				}
				parsed, err := wire.ParsePushRequest(got.Body)
				if err != nil {
					t.Fatalf("after %d limit %d: %v\n%s", after, limit, err, got.Body)
				}
				req.Clock = parsed.Clock // read a moment apart
				if want := wire.AppendPushRequest(nil, req); string(got.Body) != string(want) {
					t.Fatalf("after %d limit %d:\n got %s\nwant %s", after, limit, got.Body, want)
				}
				n := len(req.Mutations)
				if got.Count != n || got.First != req.Mutations[0].Seq || got.Last != req.Mutations[n-1].Seq {
					t.Errorf("after %d limit %d: %d mutations %d..%d, want %d, %d..%d", after, limit, got.Count, got.First, got.Last,
						n, req.Mutations[0].Seq, req.Mutations[n-1].Seq)
				}
				for _, m := range req.Mutations {
					if m.Base > 0 {
						bases++
					}
				}
			}
		}
	}
	if bases == 0 {
		t.Error("no mutation had a base")
	}
}

// TestNextPushBodyEndsAtItsSize: a batch ends before the mutation that
// would take its body past its size, holds one mutation even if that one
// alone is larger, and the batches one after another hold every mutation
// once, in order, each body what AppendPushRequest writes of its own.
func TestNextPushBodyEndsAtItsSize(t *testing.T) {
	ctx := context.Background()
	clock := newTestClock()
	w := newWorld(t)
	s := MustOpenServer(t, clock, w)
	d := MustOpenDevice(t, clock.Now, s, w.unitA)
	syncAll(t, s, d)
	for range 20 {
		if err := d.Create(ctx, newContact(t, w, d.ID(), clock.Now().Add(-time.Hour))); err != nil {
			t.Fatal(err)
		}
	}
	one, err := d.NextPushBody(ctx, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	whole, err := d.NextPushBody(ctx, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if whole.Count != 20 {
		t.Fatalf("the whole queue in %d mutations, want 20", whole.Count)
	}
	size := len(whole.Body) / 20 // about a mutation's bytes
	for _, n := range []int{1, size / 2, 3 * size, 7*size + size/2} {
		t.Cleanup(replica.SetPushBodyBytes(n))
		var seqs []int64
		var counts []int
		for after := int64(0); ; {
			b, err := d.NextPushBody(ctx, after, 1000)
			if err != nil {
				t.Fatal(err)
			}
			if b == nil {
				break
			}
			if b.Count > 1 && len(b.Body) > n+len(one.Body) {
				t.Errorf("size %d: a body of %d bytes, %d mutations", n, len(b.Body), b.Count)
			}
			req, err := d.NextPushAfter(ctx, after, b.Count)
			if err != nil {
				t.Fatal(err)
			}
			parsed, err := wire.ParsePushRequest(b.Body)
			if err != nil {
				t.Fatal(err)
			}
			req.Clock = parsed.Clock
			if want := wire.AppendPushRequest(nil, req); string(b.Body) != string(want) {
				t.Fatalf("size %d after %d:\n got %s\nwant %s", n, after, b.Body, want)
			}
			for _, m := range parsed.Mutations {
				seqs = append(seqs, m.Seq)
			}
			counts = append(counts, b.Count)
			after = b.Last
		}
		if len(seqs) != 20 {
			t.Errorf("size %d: the batches held %d mutations, want 20", n, len(seqs))
		}
		for i, seq := range seqs {
			if i > 0 && seq != seqs[i-1]+1 {
				t.Errorf("size %d: mutation %d after %d", n, seq, seqs[i-1])
			}
		}
		switch batches := len(counts); {
		case n < size && batches != 20:
			t.Errorf("size %d, under a mutation's: %d batches, want one a mutation", n, batches)
		case n >= 3*size && slices.Min(counts[:batches-1]) < 2:
			t.Errorf("size %d, room for two mutations at least: batches of %v", n, counts)
		}
	}
}

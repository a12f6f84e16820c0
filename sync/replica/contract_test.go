package replica_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/brygga/brygga/schema"
	"github.com/brygga/brygga/sync/hlc"
	"github.com/brygga/brygga/sync/replica"
	"github.com/brygga/brygga/sync/wire"
)

// target is what the contract suite drives: a replica that takes writes
// made on one device of unit A and shows their merged result. The server
// store takes them as pushed mutations, the device replica as local writes;
// they must behave alike.
type target interface {
	Write(ctx context.Context, k schema.Kind, id uuid.UUID, fields string) error
	Get(ctx context.Context, k schema.Kind, id uuid.UUID) (*replica.Row, error) // nil if absent
	Unit() uuid.UUID
	DeviceID() uuid.UUID
}

type serverTarget struct {
	s     *replica.ServerStore
	dev   uuid.UUID
	unit  uuid.UUID
	seq   int64
	clock *hlc.Clock
}

func (t *serverTarget) Write(ctx context.Context, k schema.Kind, id uuid.UUID, fields string) error {
	t.seq++
	req := &wire.PushRequest{Versions: wire.Current(), Clock: t.clock.Now(), Mutations: []wire.Mutation{
		{Seq: t.seq, Kind: k, ID: id, Version: t.clock.Now(), Fields: json.RawMessage(fields)},
	}}
	resp, err := t.s.Push(ctx, t.dev, req)
	if err != nil {
		return err
	}
	if len(resp.Results) != 1 || resp.LastSeq != t.seq {
		return errors.New("push answered with the wrong results")
	}
	if r := resp.Results[0]; r.Status == wire.Rejected {
		return r.Error
	} else if r.Status != wire.Applied {
		return errors.New("mutation not applied: " + string(r.Status))
	}
	return nil
}

func (t *serverTarget) Get(ctx context.Context, k schema.Kind, id uuid.UUID) (*replica.Row, error) {
	return t.s.Get(ctx, k, id)
}
func (t *serverTarget) Unit() uuid.UUID     { return t.unit }
func (t *serverTarget) DeviceID() uuid.UUID { return t.dev }

type deviceTarget struct{ d *replica.Device }

func (t *deviceTarget) Write(ctx context.Context, k schema.Kind, id uuid.UUID, fields string) error {
	return t.d.Write(ctx, k, id, json.RawMessage(fields))
}

func (t *deviceTarget) Get(ctx context.Context, k schema.Kind, id uuid.UUID) (*replica.Row, error) {
	r, err := t.d.Get(ctx, k, id)
	if errors.Is(err, replica.ErrNotFound) {
		return nil, nil
	}
	return r, err
}
func (t *deviceTarget) Unit() uuid.UUID     { return t.d.UnitID() }
func (t *deviceTarget) DeviceID() uuid.UUID { return t.d.ID() }

// ruleOf returns the schema rule an error reports, from either form.
func ruleOf(err error) schema.Rule {
	var fe *schema.FieldError
	if errors.As(err, &fe) {
		return fe.Rule
	}
	var we *wire.Error
	if errors.As(err, &we) {
		if we.Code == wire.CodeImmutable {
			return schema.RuleImmutable
		}
		return we.Rule
	}
	return ""
}

func isNotFound(err error) bool {
	var we *wire.Error
	return errors.Is(err, replica.ErrNotFound) || (errors.As(err, &we) && we.Code == wire.CodeNotFound)
}

// fieldsOf encodes every field of rec as a create's fields object.
func fieldsOf(tb testing.TB, rec schema.Record) string {
	obj := map[string]json.RawMessage{}
	for _, f := range rec.Fields() {
		b, err := f.MarshalJSON()
		if err != nil {
			tb.Fatal(err)
		}
		obj[f.Name] = b
	}
	b, _ := json.Marshal(obj)
	return string(b)
}

func TestContract(t *testing.T) {
	impls := map[string]func(t *testing.T) (target, world){
		"server": func(t *testing.T) (target, world) {
			clock := newTestClock()
			w := newWorld(t)
			s := MustOpenServer(t, clock, w)
			dev := newID(t)
			if _, err := s.RegisterDevice(context.Background(), dev, w.unitA); err != nil {
				t.Fatal(err)
			}
			return &serverTarget{s: s, dev: dev, unit: w.unitA, clock: hlc.NewClock(clock.Now, 0)}, w
		},
		"device": func(t *testing.T) (target, world) {
			clock := newTestClock()
			w := newWorld(t)
			return &deviceTarget{d: MustOpenDevice(t, clock.Now, nil, w.unitA)}, w
		},
	}
	for name, open := range impls {
		t.Run(name, func(t *testing.T) {
			for _, c := range contractCases {
				t.Run(c.name, func(t *testing.T) {
					tg, w := open(t)
					c.run(t, tg, w)
				})
			}
		})
	}
}

func contact(tb testing.TB, tg target, w world) *schema.Contact {
	return &schema.Contact{
		Header: schema.Header{ID: newID(tb), UnitID: tg.Unit(), DeviceID: tg.DeviceID(), StaffID: w.staffA,
			OccurredAt: newTestClock().Now().Add(-30 * time.Minute)},
		Gender: schema.GenderWoman, AgeBand: schema.Age25to29, Setting: schema.SettingStreet, AreaCode: "2380",
	}
}

func referral(tb testing.TB, tg target, w world) *schema.Referral {
	return &schema.Referral{
		Header: schema.Header{ID: newID(tb), UnitID: tg.Unit(), DeviceID: tg.DeviceID(), StaffID: w.staffA,
			OccurredAt: newTestClock().Now().Add(-10 * time.Minute)},
		Service: schema.ServiceAddictionClinic, ToUnitID: w.unitB, Status: schema.StatusSent,
	}
}

func mustWrite(tb testing.TB, tg target, k schema.Kind, id uuid.UUID, fields string) {
	tb.Helper()
	if err := tg.Write(context.Background(), k, id, fields); err != nil {
		tb.Fatalf("write %s: %v", fields, err)
	}
}

func mustGet(tb testing.TB, tg target, k schema.Kind, id uuid.UUID) *replica.Row {
	tb.Helper()
	r, err := tg.Get(context.Background(), k, id)
	if err != nil || r == nil {
		tb.Fatalf("get %s %s: %v, %v", k, id, r, err)
	}
	return r
}

var contractCases = []struct {
	name string
	run  func(t *testing.T, tg target, w world)
}{
	{"create and read back", func(t *testing.T, tg target, w world) {
		c := contact(t, tg, w)
		mustWrite(t, tg, schema.KindContact, c.ID, fieldsOf(t, c))
		got := mustGet(t, tg, schema.KindContact, c.ID).Record.(*schema.Contact)
		if *got != *c {
			t.Errorf("got %+v, want %+v", got, c)
		}
	}},
	{"the same write twice changes nothing", func(t *testing.T, tg target, w world) {
		c := contact(t, tg, w)
		mustWrite(t, tg, schema.KindContact, c.ID, fieldsOf(t, c))
		mustWrite(t, tg, schema.KindContact, c.ID, `{"setting":"shelter"}`)
		first := mustGet(t, tg, schema.KindContact, c.ID)
		mustWrite(t, tg, schema.KindContact, c.ID, `{"setting":"shelter"}`)
		second := mustGet(t, tg, schema.KindContact, c.ID)
		if first.Record.(*schema.Contact).Setting != schema.SettingShelter || *second.Record.(*schema.Contact) != *first.Record.(*schema.Contact) {
			t.Errorf("repeated write changed the record: %v then %v", first, second)
		}
	}},
	{"a correction changes only its field", func(t *testing.T, tg target, w world) {
		c := contact(t, tg, w)
		mustWrite(t, tg, schema.KindContact, c.ID, fieldsOf(t, c))
		mustWrite(t, tg, schema.KindContact, c.ID, `{"setting":"fixed_site"}`)
		got := mustGet(t, tg, schema.KindContact, c.ID)
		want := *c
		want.Setting = schema.SettingFixedSite
		if *got.Record.(*schema.Contact) != want {
			t.Errorf("got %+v, want %+v", got.Record, want)
		}
		if got.Key("setting") <= got.Key("gender") {
			t.Errorf("corrected field's version %s is not after the create's %s", got.Key("setting"), got.Key("gender"))
		}
	}},
	{"voiding is a versioned change", func(t *testing.T, tg target, w world) {
		c := contact(t, tg, w)
		mustWrite(t, tg, schema.KindContact, c.ID, fieldsOf(t, c))
		mustWrite(t, tg, schema.KindContact, c.ID, `{"voided":true}`)
		if !mustGet(t, tg, schema.KindContact, c.ID).Record.(*schema.Contact).Voided {
			t.Error("record not voided")
		}
	}},
	{"an invalid record is refused and nothing is stored", func(t *testing.T, tg target, w world) {
		c := contact(t, tg, w)
		c.AreaCode = "Östersund"
		err := tg.Write(context.Background(), schema.KindContact, c.ID, fieldsOf(t, c))
		if ruleOf(err) != schema.RuleFormat {
			t.Fatalf("got %v, want a format error", err)
		}
		if r, err := tg.Get(context.Background(), schema.KindContact, c.ID); r != nil || err != nil {
			t.Errorf("refused record stored: %v %v", r, err)
		}
	}},
	{"an invalid correction leaves the record as it was", func(t *testing.T, tg target, w world) {
		c := contact(t, tg, w)
		mustWrite(t, tg, schema.KindContact, c.ID, fieldsOf(t, c))
		err := tg.Write(context.Background(), schema.KindContact, c.ID, `{"gender":"female"}`)
		if ruleOf(err) != schema.RuleEnum {
			t.Fatalf("got %v, want an enum error", err)
		}
		if got := mustGet(t, tg, schema.KindContact, c.ID).Record.(*schema.Contact); got.Gender != schema.GenderWoman {
			t.Errorf("gender is %s after a refused correction", got.Gender)
		}
	}},
	{"immutable fields cannot change", func(t *testing.T, tg target, w world) {
		c := contact(t, tg, w)
		mustWrite(t, tg, schema.KindContact, c.ID, fieldsOf(t, c))
		for _, f := range []string{`{"staff_id":"` + w.staffB.String() + `"}`, `{"unit_id":"` + w.unitB.String() + `"}`} {
			if err := tg.Write(context.Background(), schema.KindContact, c.ID, f); ruleOf(err) != schema.RuleImmutable {
				t.Errorf("%s: got %v, want an immutable error", f, err)
			}
		}
		if got := mustGet(t, tg, schema.KindContact, c.ID).Record.(*schema.Contact); got.StaffID != w.staffA || got.UnitID != tg.Unit() {
			t.Errorf("immutable field changed: %+v", got)
		}
	}},
	{"a change to a missing record is not found", func(t *testing.T, tg target, w world) {
		if err := tg.Write(context.Background(), schema.KindContact, newID(t), `{"voided":true}`); !isNotFound(err) {
			t.Errorf("got %v, want not found", err)
		}
	}},
	{"an unknown field is refused", func(t *testing.T, tg target, w world) {
		c := contact(t, tg, w)
		mustWrite(t, tg, schema.KindContact, c.ID, fieldsOf(t, c))
		if err := tg.Write(context.Background(), schema.KindContact, c.ID, `{"name":"Anna"}`); ruleOf(err) != schema.RuleUnknownField {
			t.Errorf("got %v, want unknown field", err)
		}
	}},
	{"a wrong type is refused", func(t *testing.T, tg target, w world) {
		c := contact(t, tg, w)
		mustWrite(t, tg, schema.KindContact, c.ID, fieldsOf(t, c))
		if err := tg.Write(context.Background(), schema.KindContact, c.ID, `{"voided":"yes"}`); ruleOf(err) != schema.RuleType {
			t.Errorf("got %v, want a type error", err)
		}
	}},
	{"a referral's status never moves back", func(t *testing.T, tg target, w world) {
		r := referral(t, tg, w)
		mustWrite(t, tg, schema.KindReferral, r.ID, fieldsOf(t, r))
		mustWrite(t, tg, schema.KindReferral, r.ID, `{"status":"attended","reopened":0}`)
		mustWrite(t, tg, schema.KindReferral, r.ID, `{"status":"received","reopened":0}`)
		if got := mustGet(t, tg, schema.KindReferral, r.ID).Record.(*schema.Referral); got.Status != schema.StatusAttended {
			t.Errorf("status %s, want attended", got.Status)
		}
	}},
	{"a reopen moves the status back, once", func(t *testing.T, tg target, w world) {
		r := referral(t, tg, w)
		mustWrite(t, tg, schema.KindReferral, r.ID, fieldsOf(t, r))
		mustWrite(t, tg, schema.KindReferral, r.ID, `{"status":"declined","reopened":0}`)
		mustWrite(t, tg, schema.KindReferral, r.ID, `{"status":"sent","reopened":1}`)
		got := mustGet(t, tg, schema.KindReferral, r.ID).Record.(*schema.Referral)
		if got.Status != schema.StatusSent || got.Reopened != 1 {
			t.Fatalf("after reopen: %s, %d", got.Status, got.Reopened)
		}
		// A status written before the reopen was seen does not undo it.
		mustWrite(t, tg, schema.KindReferral, r.ID, `{"status":"closed","reopened":0}`)
		if got := mustGet(t, tg, schema.KindReferral, r.ID).Record.(*schema.Referral); got.Status != schema.StatusSent {
			t.Errorf("stale status won over the reopen: %s", got.Status)
		}
		mustWrite(t, tg, schema.KindReferral, r.ID, `{"status":"attended","reopened":1}`)
		if got := mustGet(t, tg, schema.KindReferral, r.ID).Record.(*schema.Referral); got.Status != schema.StatusAttended {
			t.Errorf("status %s, want attended", got.Status)
		}
	}},
	{"a referral is closed only from attended", func(t *testing.T, tg target, w world) {
		r := referral(t, tg, w)
		r.Status = schema.StatusClosed
		if err := tg.Write(context.Background(), schema.KindReferral, r.ID, fieldsOf(t, r)); ruleOf(err) != schema.RuleTransition {
			t.Errorf("a new closed referral: got %v, want a transition error", err)
		}
		r.Status = schema.StatusSent
		mustWrite(t, tg, schema.KindReferral, r.ID, fieldsOf(t, r))
		mustWrite(t, tg, schema.KindReferral, r.ID, `{"status":"declined","reopened":0}`)
		if err := tg.Write(context.Background(), schema.KindReferral, r.ID, `{"status":"closed","reopened":0}`); ruleOf(err) != schema.RuleTransition {
			t.Errorf("closing a declined referral: got %v, want a transition error", err)
		}
		mustWrite(t, tg, schema.KindReferral, r.ID, `{"status":"attended","reopened":0}`)
		mustWrite(t, tg, schema.KindReferral, r.ID, `{"status":"closed","reopened":0}`)
		if got := mustGet(t, tg, schema.KindReferral, r.ID).Record.(*schema.Referral); got.Status != schema.StatusClosed {
			t.Errorf("status %s, want closed", got.Status)
		}
	}},
	{"a status without its reopen count is refused", func(t *testing.T, tg target, w world) {
		r := referral(t, tg, w)
		mustWrite(t, tg, schema.KindReferral, r.ID, fieldsOf(t, r))
		mustWrite(t, tg, schema.KindReferral, r.ID, `{"status":"sent","reopened":1}`)
		err := tg.Write(context.Background(), schema.KindReferral, r.ID, `{"status":"attended"}`)
		var fe *schema.FieldError
		var we *wire.Error
		if ruleOf(err) != schema.RuleRequired || !(errors.As(err, &fe) && fe.Field == "reopened" || errors.As(err, &we) && we.Field == "reopened") {
			t.Errorf("got %v, want reopened required", err)
		}
		if got := mustGet(t, tg, schema.KindReferral, r.ID).Record.(*schema.Referral); got.Status != schema.StatusSent {
			t.Errorf("status %s, want sent", got.Status)
		}
	}},
	{"a referral to the referring unit is refused", func(t *testing.T, tg target, w world) {
		r := referral(t, tg, w)
		r.ToUnitID = tg.Unit()
		if err := tg.Write(context.Background(), schema.KindReferral, r.ID, fieldsOf(t, r)); ruleOf(err) != schema.RuleSameUnit {
			t.Errorf("got %v, want same unit", err)
		}
	}},
}

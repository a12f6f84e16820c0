package pgstore_test

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/brygga/brygga/schema"
	"github.com/brygga/brygga/server/pgstore"
	"github.com/brygga/brygga/server/pgstore/pgtest"
	"github.com/brygga/brygga/sync/replica"
	"github.com/brygga/brygga/sync/wire"
)

// syncEngine is a server's sync on one engine, with a way to enrol a
// device on it.
type syncEngine struct {
	sync  *replica.ServerSync
	enrol func(t testing.TB, id, unit uuid.UUID)
}

// syncEngines open the server's sync on each engine: SQLite and
// PostgreSQL (skipped, saying why, where none answers).
var syncEngines = []struct {
	name string
	open func(t testing.TB, now func() time.Time) syncEngine
}{
	{"sqlite", func(t testing.TB, now func() time.Time) syncEngine {
		s, err := replica.OpenServer(context.Background(), filepath.Join(t.TempDir(), "server.db"), replica.ServerConfig{Now: now})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return syncEngine{sync: s.ServerSync, enrol: func(t testing.TB, id, unit uuid.UUID) {
			if _, err := s.RegisterDevice(context.Background(), id, unit); err != nil {
				t.Fatal(err)
			}
		}}
	}},
	{"postgres", func(t testing.TB, now func() time.Time) syncEngine {
		ctx := context.Background()
		url := pgtest.URL(t)
		st, err := pgstore.Open(ctx, url, pgstore.Config{Now: now})
		if err != nil {
			t.Fatal(err)
		}
		s, err := replica.NewServerSync(ctx, st.SyncEngine(), replica.ServerConfig{Now: now})
		if err != nil {
			st.Close()
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return syncEngine{sync: s, enrol: func(t testing.TB, id, unit uuid.UUID) {
			conn, err := pgx.Connect(ctx, url)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(ctx)
			if _, err := conn.Exec(ctx, `INSERT INTO devices (id, unit_id, enrolled_at) VALUES ($1, $2, $3)`, id, unit, now()); err != nil {
				t.Fatal(err)
			}
		}}
	}},
}

// syncDevice pushes and pulls d until both are done.
func syncDevice(t *testing.T, s *replica.ServerSync, d *replica.Device) {
	t.Helper()
	ctx := context.Background()
	for i := 0; ; i++ {
		if i > 100 {
			t.Fatal("push did not finish")
		}
		req, err := d.NextPush(ctx, 100)
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
	}
	for i := 0; ; i++ {
		if i > 100 {
			t.Fatal("pull did not finish")
		}
		req, err := d.PullRequest(ctx, 2)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := s.Pull(ctx, d.ID(), req)
		if err != nil {
			t.Fatal(err)
		}
		if ok, err := d.AcceptPull(ctx, resp); err != nil || !ok {
			t.Fatalf("page not applied (%v)", err)
		}
		if !resp.HasMore {
			return
		}
	}
}

// TestSyncContract runs the same sync on each engine: reference data,
// two units' devices pushing and pulling in small pages, a referral's
// status changed by the receiving unit and by the server, a push retried;
// and checks what each device and the server hold, and that both engines
// end with the same records.
func TestSyncContract(t *testing.T) {
	ctx := context.Background()
	at := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	now := func() time.Time { return at }
	ids := make([]uuid.UUID, 11)
	for i := range ids {
		ids[i] = uuid.Must(uuid.NewV7())
	}
	orgA, unitA, unitB, staffA, staffB, devA, devB, contactID, referralID, orgB := ids[0], ids[1], ids[2], ids[3], ids[4], ids[5], ids[6], ids[7], ids[8], ids[9]
	extraID := ids[10]
	final := map[string][]string{}
	for _, e := range syncEngines {
		t.Run(e.name, func(t *testing.T) {
			eng := e.open(t, now)
			s := eng.sync
			if err := s.PutReference(ctx,
				&schema.Organisation{ID: orgA, OrgKind: schema.OrgMunicipality, Name: "Östersunds kommun", RegionCode: "23", Active: true},
				&schema.Organisation{ID: orgB, OrgKind: schema.OrgRegion, Name: "Region Jämtland Härjedalen", RegionCode: "23", Active: true},
				&schema.Unit{ID: unitA, OrgID: orgA, Name: "Fältgruppen", AreaCode: "2380", Active: true},
				&schema.Unit{ID: unitB, OrgID: orgB, Name: "Beroendemottagningen", AreaCode: "2380", Active: true},
				&schema.Staff{ID: staffA, UnitID: unitA, Role: schema.RoleOutreachWorker, Active: true},
				&schema.Staff{ID: staffB, UnitID: unitB, Role: schema.RoleNurse, Active: true},
			); err != nil {
				t.Fatal(err)
			}
			open := func(id, unit uuid.UUID) *replica.Device {
				eng.enrol(t, id, unit)
				d, err := replica.OpenDevice(ctx, filepath.Join(t.TempDir(), id.String()+".db"), replica.DeviceConfig{ID: id, UnitID: unit, Now: now})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { d.Close() })
				return d
			}
			a, b := open(devA, unitA), open(devB, unitB)

			c := &schema.Contact{Header: schema.Header{ID: contactID, UnitID: unitA, DeviceID: devA, StaffID: staffA, OccurredAt: at.Add(-30 * time.Minute)},
				Gender: schema.GenderWoman, AgeBand: schema.Age25to29, Setting: schema.SettingStreet, AreaCode: "2380"}
			r := &schema.Referral{Header: schema.Header{ID: referralID, UnitID: unitA, DeviceID: devA, StaffID: staffA, OccurredAt: at.Add(-10 * time.Minute)},
				ContactID: contactID, Service: schema.ServiceAddictionClinic, ToUnitID: unitB, Status: schema.StatusSent}
			for _, rec := range []schema.Record{c, r} {
				if err := a.Create(ctx, rec); err != nil {
					t.Fatal(err)
				}
			}
			first, err := a.NextPush(ctx, 100)
			if err != nil || first == nil {
				t.Fatalf("first push: %v %v", first, err)
			}
			syncDevice(t, s, a)
			syncDevice(t, s, b)

			// A push sent again is answered as duplicates.
			resp, err := s.Push(ctx, devA, first)
			if err != nil {
				t.Fatal(err)
			}
			for _, res := range resp.Results {
				if res.Status != wire.Duplicate {
					t.Errorf("retried mutation %d: %s, want duplicate", res.Seq, res.Status)
				}
			}

			if row, err := b.Get(ctx, schema.KindContact, contactID); !errors.Is(err, replica.ErrNotFound) {
				t.Errorf("unit B's device holds unit A's contact: %v %v", row, err)
			}
			if err := b.Write(ctx, schema.KindReferral, referralID, json.RawMessage(`{"status":"received","reopened":0}`)); err != nil {
				t.Fatal(err)
			}
			syncDevice(t, s, b)
			syncDevice(t, s, a)
			got, err := a.Get(ctx, schema.KindReferral, referralID)
			if err != nil || got == nil || got.Record.(*schema.Referral).Status != schema.StatusReceived {
				t.Fatalf("unit A's device after unit B received the referral: %v %v", got, err)
			}
			// The receiving unit may change the status only.
			if err := b.Write(ctx, schema.KindReferral, referralID, json.RawMessage(`{"service":"`+string(schema.ServicePsychiatry)+`"}`)); err != nil {
				t.Fatal(err)
			}
			req, err := b.NextPush(ctx, 100)
			if err != nil {
				t.Fatal(err)
			}
			resp, err = s.Push(ctx, devB, req)
			if err != nil {
				t.Fatal(err)
			}
			if res := resp.Results[0]; res.Status != wire.Rejected || res.Error.Code != wire.CodeOutOfScope {
				t.Errorf("receiving unit's change of the service: %+v", res)
			}
			if err := b.AcceptPush(ctx, resp); err != nil {
				t.Fatal(err)
			}

			// A write of the server's own reaches both devices.
			if err := s.Write(ctx, schema.KindReferral, referralID, json.RawMessage(`{"status":"attended","reopened":0}`)); err != nil {
				t.Fatal(err)
			}
			if err := s.Write(ctx, schema.KindReferral, uuid.Must(uuid.NewV7()), json.RawMessage(`{"status":"attended","reopened":0}`)); !errors.Is(err, replica.ErrNotFound) {
				t.Errorf("server's write of a referral that does not exist: %v", err)
			}
			syncDevice(t, s, a)
			syncDevice(t, s, b)
			for _, d := range []*replica.Device{a, b} {
				got, err := d.Get(ctx, schema.KindReferral, referralID)
				if err != nil || got == nil || got.Record.(*schema.Referral).Status != schema.StatusAttended {
					t.Errorf("device %s after the server's write: %v %v", d.ID(), got, err)
				}
			}

			// Records sent again: those the server holds are unchanged, one
			// it lacks (never pushed) is healed and numbered, and the
			// device's last processed mutation becomes what it acked.
			extra := &schema.Contact{Header: schema.Header{ID: extraID, UnitID: unitA, DeviceID: devA, StaffID: staffA, OccurredAt: at.Add(-5 * time.Minute)},
				Gender: schema.GenderMan, AgeBand: schema.Age25to29, Setting: schema.SettingStreet, AreaCode: "2380"}
			if err := a.Create(ctx, extra); err != nil {
				t.Fatal(err)
			}
			recs, _, err := a.HealRecords(ctx, replica.HealCursor{}, 100)
			if err != nil {
				t.Fatal(err)
			}
			hresp, err := s.Heal(ctx, devA, &wire.HealRequest{Versions: wire.Current(), AckedThrough: 3, Records: recs})
			if err != nil {
				t.Fatal(err)
			}
			if len(hresp.Results) != 3 {
				t.Fatalf("heal answered %d results for 3 records", len(hresp.Results))
			}
			for i, res := range hresp.Results {
				want := wire.Unchanged
				if recs[i].ID == extraID {
					want = wire.Healed
				}
				if res.Status != want {
					t.Errorf("heal of %s %s: %s %v, want %s", recs[i].Kind, recs[i].ID, res.Status, res.Error, want)
				}
			}
			if hresp.LastSeq != 3 {
				t.Errorf("last processed after the heal: %d, want 3", hresp.LastSeq)
			}
			if row, err := s.Get(ctx, schema.KindContact, extraID); err != nil || row == nil || row.Seq == 0 {
				t.Errorf("server's contact after the heal: %v %v", row, err)
			}

			var fields []string
			for _, k := range []struct {
				kind schema.Kind
				id   uuid.UUID
			}{{schema.KindContact, contactID}, {schema.KindReferral, referralID}, {schema.KindUnit, unitB}, {schema.KindContact, extraID}} {
				row, err := s.Get(ctx, k.kind, k.id)
				if err != nil || row == nil {
					t.Fatalf("server's %s: %v %v", k.kind, row, err)
				}
				fields = append(fields, string(row.FieldsJSON()))
			}
			final[e.name] = fields
		})
	}
	if len(final) == 2 && !equal(final["sqlite"], final["postgres"]) {
		t.Errorf("the engines end apart:\nsqlite   %v\npostgres %v", final["sqlite"], final["postgres"])
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

package pgstore_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/brygga/brygga/schema"
	"github.com/brygga/brygga/sync/replica"
)

// TestSyncEchoOfOthersRecord runs on each engine: a receiving unit's
// device that moves on a referral another unit's device made is not sent
// its change back, and the device that made the referral gets it.
func TestSyncEchoOfOthersRecord(t *testing.T) {
	ctx := context.Background()
	at := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	now := func() time.Time { return at }
	for _, e := range syncEngines {
		t.Run(e.name, func(t *testing.T) {
			eng := e.open(t, now)
			s := eng.sync
			ids := make([]uuid.UUID, 9)
			for i := range ids {
				ids[i] = uuid.Must(uuid.NewV7())
			}
			orgA, orgB, unitA, unitB, staffA, staffB, devA, devB, refID := ids[0], ids[1], ids[2], ids[3], ids[4], ids[5], ids[6], ids[7], ids[8]
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
			ref := &schema.Referral{Header: schema.Header{ID: refID, UnitID: unitA, DeviceID: devA, StaffID: staffA, OccurredAt: at.Add(-10 * time.Minute)},
				Service: schema.ServiceAddictionClinic, ToUnitID: unitB, Status: schema.StatusSent}
			if err := a.Create(ctx, ref); err != nil {
				t.Fatal(err)
			}
			syncDevice(t, s, a)
			syncDevice(t, s, b)
			if err := b.Write(ctx, schema.KindReferral, refID, json.RawMessage(`{"status":"received","reopened":0}`)); err != nil {
				t.Fatal(err)
			}
			req, err := b.NextPush(ctx, 100)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := s.Push(ctx, devB, req)
			if err != nil {
				t.Fatal(err)
			}
			if r := resp.Results[0]; r.Change == 0 {
				t.Errorf("the receiving unit's status change: %+v, want its change number", r)
			}
			if err := b.AcceptPush(ctx, resp); err != nil {
				t.Fatal(err)
			}
			pull, err := b.PullRequest(ctx, 100)
			if err != nil {
				t.Fatal(err)
			}
			page, err := s.Pull(ctx, devB, pull)
			if err != nil {
				t.Fatal(err)
			}
			if len(page.Changes) != 0 {
				t.Errorf("the receiving unit's device was sent back %d changes", len(page.Changes))
			}
			syncDevice(t, s, a)
			got, err := a.Get(ctx, schema.KindReferral, refID)
			if err != nil || got.Record.(*schema.Referral).Status != schema.StatusReceived {
				t.Fatalf("the sending unit's device after the referral was received: %v %v", got, err)
			}
		})
	}
}

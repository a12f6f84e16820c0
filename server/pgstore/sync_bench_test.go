package pgstore_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/brygga/brygga/schema"
	"github.com/brygga/brygga/sync/replica"
)

// BenchmarkSyncPush measures a push of 500 new contacts, applied and
// committed, on each engine; records/s is the figure to compare.
func BenchmarkSyncPush(b *testing.B) {
	const n = 500
	ctx := context.Background()
	at := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	now := func() time.Time { return at }
	for _, e := range syncEngines {
		b.Run(e.name, func(b *testing.B) {
			eng := e.open(b, now)
			org, unit, staff, dev := uuid.Must(uuid.NewV7()), uuid.Must(uuid.NewV7()), uuid.Must(uuid.NewV7()), uuid.Must(uuid.NewV7())
			if err := eng.sync.PutReference(ctx,
				&schema.Organisation{ID: org, OrgKind: schema.OrgMunicipality, Name: "Östersunds kommun", RegionCode: "23", Active: true},
				&schema.Unit{ID: unit, OrgID: org, Name: "Fältgruppen", AreaCode: "2380", Active: true},
				&schema.Staff{ID: staff, UnitID: unit, Role: schema.RoleOutreachWorker, Active: true},
			); err != nil {
				b.Fatal(err)
			}
			eng.enrol(b, dev, unit)
			d, err := replica.OpenDevice(ctx, filepath.Join(b.TempDir(), "d.db"), replica.DeviceConfig{ID: dev, UnitID: unit, Now: now})
			if err != nil {
				b.Fatal(err)
			}
			defer d.Close()
			b.ResetTimer()
			for range b.N {
				b.StopTimer()
				for range n {
					c := &schema.Contact{Header: schema.Header{ID: uuid.Must(uuid.NewV7()), UnitID: unit, DeviceID: dev, StaffID: staff, OccurredAt: at.Add(-time.Hour)},
						Gender: schema.GenderWoman, AgeBand: schema.Age25to29, Setting: schema.SettingStreet, AreaCode: "2380"}
					if err := d.Create(ctx, c); err != nil {
						b.Fatal(err)
					}
				}
				req, err := d.NextPush(ctx, n)
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				resp, err := eng.sync.Push(ctx, dev, req)
				if err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if err := d.AcceptPush(ctx, resp); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
			b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "records/s")
		})
	}
}

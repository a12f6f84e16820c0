package pgstore_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/brygga/brygga/schema"
)

// TestSyncWritesManyRecordsAsGiven: reference data written many at once,
// which the engine sends by COPY, reads back as written, texts with
// backslashes included (texts hold no control characters: the schema
// refuses them), on each engine.
func TestSyncWritesManyRecordsAsGiven(t *testing.T) {
	ctx := context.Background()
	at := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	now := func() time.Time { return at }
	names := []string{`Östersunds kommun`, `a\b`, `\N`, `ends in \`, `\\.`, "plain", `\t literally`, `\n`, `"quoted"`, `{"a": 1}`}
	for _, e := range syncEngines {
		t.Run(e.name, func(t *testing.T) {
			eng := e.open(t, now)
			var recs []schema.Record
			for i, name := range names {
				recs = append(recs, &schema.Organisation{ID: uuid.Must(uuid.NewV7()), OrgKind: schema.OrgMunicipality, Name: name,
					RegionCode: fmt.Sprintf("%02d", 10+i), Active: i%2 == 0})
			}
			if err := eng.sync.PutReference(ctx, recs...); err != nil {
				t.Fatal(err)
			}
			for i, rec := range recs {
				row, err := eng.sync.Get(ctx, schema.KindOrganisation, rec.RecordID())
				if err != nil {
					t.Fatal(err)
				}
				if row == nil {
					t.Fatalf("organisation %d is missing", i)
				}
				got := row.Record.(*schema.Organisation)
				if want := rec.(*schema.Organisation); got.Name != want.Name || got.Active != want.Active || got.RegionCode != want.RegionCode {
					t.Errorf("organisation %d: read %q %v %q, wrote %q %v %q", i, got.Name, got.Active, got.RegionCode, want.Name, want.Active, want.RegionCode)
				}
				if row.Seq == 0 {
					t.Errorf("organisation %d has no change number", i)
				}
			}
		})
	}
}

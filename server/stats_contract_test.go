package server_test

import (
	"context"
	"testing"
	"time"

	"github.com/brygga/brygga/server"
	"github.com/brygga/brygga/server/stats"
)

// TestStatsStoreContract runs the statistics through each engine's
// StatsStore on a database without records: the rollups refresh, a
// query computes nothing, and the authority's publication is built, its
// cells empty.
func TestStatsStoreContract(t *testing.T) {
	engines(t, func(t *testing.T, s contractStore) {
		ctx := context.Background()
		ss, ok := s.(server.StatsStore)
		if !ok {
			t.Fatalf("%T is no StatsStore", s)
		}
		for range 2 {
			if err := ss.RefreshStats(ctx); err != nil {
				t.Fatal(err)
			}
		}
		stockholm, err := time.LoadLocation("Europe/Stockholm")
		if err != nil {
			t.Fatal(err)
		}
		for _, loc := range []*time.Location{stockholm, time.UTC} {
			r, err := ss.ComputeStats(ctx, stats.Query{From: time.Date(2026, 1, 1, 0, 0, 0, 0, loc), To: time.Date(2027, 1, 1, 0, 0, 0, 0, loc),
				Period: stats.Month, By: stats.ByUnit, Location: loc})
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range r.Values {
				if v != 0 {
					t.Errorf("%s: %+v = %d without records", loc, k, v)
				}
			}
		}
		pb := &stats.Publisher{Wait: time.Minute}
		defer pb.Close()
		p, err := ss.Publication(ctx, pb, contractNow, stats.DefaultK)
		if err != nil {
			t.Fatal(err)
		}
		rep := p.Report(stats.Month, 2026, stats.ByTotal)
		if len(rep.Rows) == 0 {
			t.Fatal("no rows")
		}
		for _, row := range rep.Rows {
			if c := row.Indicators[stats.Contacts]; c.Value == nil || *c.Value != 0 {
				t.Errorf("%s: contacts %+v without records", row.Period, c)
			}
		}
		ss.KickPublication(pb, func() time.Time { return contractNow }, stats.DefaultK)
	})
}

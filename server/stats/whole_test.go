package stats_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/brygga/brygga/server/stats"
)

// TestWholeAndUnits: the period Whole counts a range as one bucket, the
// same figures as a year over a range within one year and as the records
// themselves over a range across years; Units limits the count to units,
// the same figures as those units' groups.
func TestWholeAndUnits(t *testing.T) {
	d := newDataset(t, 3, 800)
	if stats.Whole.Valid() {
		t.Error("Whole is a publication period")
	}
	for _, loc := range zones {
		for _, by := range []stats.Dim{stats.ByTotal, stats.ByUnit, stats.ByGender, stats.ByAgeBand} {
			in := func(y int, m time.Month, day, h int) time.Time { return time.Date(y, m, day, h, 0, 0, 0, stockholm) }
			q := stats.Query{From: in(2026, 2, 11, 13), To: in(2026, 10, 17, 5), Period: stats.Year, By: by, Location: loc}
			year := d.compute(t, q)
			q.Period = stats.Whole
			whole := d.compute(t, q)
			for k, v := range year.Values {
				if got := whole.Value(string(stats.Whole), k.Group, k.Indicator); got != v {
					t.Errorf("%s by %q: whole %v = %d, year %d", zoneName(loc), by, k, got, v)
				}
			}
			q.From = in(2025, 9, 3, 0)
			across := d.compute(t, q)
			full, err := stats.FullCount(context.Background(), d.store.db, q)
			if err != nil {
				t.Fatal(err)
			}
			if len(across.Periods) != 1 || len(across.Values) != len(full.Values) {
				t.Errorf("%s by %q across years: periods %v, %d figures, want %d", zoneName(loc), by, across.Periods, len(across.Values), len(full.Values))
			}
			for k, v := range full.Values {
				if across.Values[k] != v {
					t.Errorf("%s by %q across years: %v = %d, want %d", zoneName(loc), by, k, across.Values[k], v)
				}
			}
		}
		q := stats.Query{From: time.Date(2026, 1, 1, 0, 0, 0, 0, stockholm), To: time.Date(2026, 12, 1, 0, 0, 0, 0, stockholm), Period: stats.Month, By: stats.ByUnit, Location: loc}
		byUnit := d.compute(t, q)
		for _, u := range d.units[:2] {
			one := q
			one.By, one.Units = stats.ByTotal, []uuid.UUID{u.id}
			got := d.compute(t, one)
			for _, p := range byUnit.Periods {
				for _, ind := range stats.Indicators {
					if a, b := got.Value(p, "", ind), byUnit.Value(p, u.id.String(), ind); a != b {
						t.Errorf("%s unit %s %s %s: %d, by unit %d", zoneName(loc), u.id, p, ind, a, b)
					}
				}
			}
		}
	}
}

package stats_test

import (
	"context"
	"math/rand/v2"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/brygga/brygga/schema"
	"github.com/brygga/brygga/server/stats"
)

// sameAsFullCount checks that Compute's result of q is exactly the full
// count's: the same periods, groups and unit maps, and the same figures,
// zeros included.
func (d *dataset) sameAsFullCount(t testing.TB, q stats.Query) {
	t.Helper()
	got := d.compute(t, q)
	want, err := stats.FullCount(context.Background(), d.store.db, q)
	if err != nil {
		t.Fatal(err)
	}
	if reflect.DeepEqual(got, want) {
		return
	}
	name := q.From.Format(time.RFC3339Nano) + " to " + q.To.Format(time.RFC3339Nano) + " by " + string(q.Period) + "/" + string(q.By)
	if !reflect.DeepEqual(got.Periods, want.Periods) {
		t.Errorf("%s: periods %v, want %v", name, got.Periods, want.Periods)
	}
	if !reflect.DeepEqual(got.Groups, want.Groups) {
		t.Errorf("%s: groups %v, want %v", name, got.Groups, want.Groups)
	}
	if !reflect.DeepEqual(got.UnitMunicipality, want.UnitMunicipality) || !reflect.DeepEqual(got.UnitOrganisation, want.UnitOrganisation) {
		t.Errorf("%s: units %v %v, want %v %v", name, got.UnitMunicipality, got.UnitOrganisation, want.UnitMunicipality, want.UnitOrganisation)
	}
	bad := 0
	for k, v := range want.Values {
		if w, ok := got.Values[k]; !ok || w != v {
			if bad++; bad <= 5 {
				t.Errorf("%s: %+v = %d (present %v), want %d", name, k, w, ok, v)
			}
		}
	}
	for k, v := range got.Values {
		if _, ok := want.Values[k]; !ok {
			if bad++; bad <= 5 {
				t.Errorf("%s: %+v = %d, want no figure", name, k, v)
			}
		}
	}
}

// instant returns a time around 2026 of the kinds that queries are bounded
// by: a day's start in Stockholm, the first of a month, a UTC midnight,
// around a change to or from summer time, or any millisecond.
func instant(rng *rand.Rand) time.Time {
	day := time.Date(2025, 12, 20, 0, 0, 0, 0, stockholm).AddDate(0, 0, rng.IntN(390))
	switch rng.IntN(6) {
	case 0:
		return day
	case 1:
		return time.Date(2025+rng.IntN(3), time.Month(1+rng.IntN(12)), 1, 0, 0, 0, 0, stockholm)
	case 2:
		return time.Date(day.Year(), day.Month(), day.Day(), 0, 0, 0, 0, time.UTC)
	case 3:
		dst := []time.Time{
			time.Date(2026, 3, 29, 0, 0, 0, 0, stockholm), time.Date(2026, 3, 29, 3, 0, 0, 0, stockholm),
			time.Date(2026, 3, 30, 0, 0, 0, 0, stockholm), time.Date(2026, 10, 25, 0, 0, 0, 0, stockholm),
			time.Date(2026, 10, 25, 2, 30, 0, 0, stockholm), time.Date(2026, 10, 26, 0, 0, 0, 0, stockholm),
		}
		return dst[rng.IntN(len(dst))]
	}
	return day.Add(time.Duration(rng.Int64N(int64(24 * time.Hour)))).Truncate(time.Millisecond)
}

// randomQuery returns a query cut in Stockholm between instants, of any
// period and breakdown, for the region or some organisations.
func randomQuery(rng *rand.Rand, d *dataset) stats.Query {
	from, to := instant(rng), instant(rng)
	switch rng.IntN(8) {
	case 0:
		to = from // empty
	case 1:
		to = from.Add(time.Duration(rng.Int64N(int64(30 * time.Hour)))) // within a day or across one
	default:
		if to.Before(from) {
			from, to = to, from
		}
	}
	periods := []stats.Period{stats.Week, stats.Month, stats.Quarter, stats.Year}
	dims := []stats.Dim{stats.ByTotal, stats.ByUnit, stats.ByMunicipality, stats.ByOrganisation, stats.ByGender, stats.ByAgeBand, stats.BySetting}
	q := stats.Query{From: from, To: to, Period: periods[rng.IntN(len(periods))], By: dims[rng.IntN(len(dims))], Location: stockholm}
	switch rng.IntN(4) {
	case 0:
		q.Orgs = []uuid.UUID{d.units[rng.IntN(len(d.units))].org}
	case 1:
		q.Orgs = []uuid.UUID{d.units[0].org, d.units[4].org}
	case 2:
		q.Orgs = []uuid.UUID{uuid.Must(uuid.NewV7())} // no such organisation
	}
	return q
}

// allQueries are a year's queries of every period and breakdown, and the
// same over the API's default window, with part months at both ends.
func allQueries() []stats.Query {
	var qs []stats.Query
	for _, w := range [][2]time.Time{
		{time.Date(2026, 1, 1, 0, 0, 0, 0, stockholm), time.Date(2027, 1, 1, 0, 0, 0, 0, stockholm)},
		{time.Date(2025, 12, 17, 0, 0, 0, 0, stockholm), time.Date(2026, 12, 17, 0, 0, 0, 0, stockholm)},
	} {
		for _, p := range []stats.Period{stats.Week, stats.Month, stats.Quarter, stats.Year} {
			for _, by := range []stats.Dim{stats.ByTotal, stats.ByUnit, stats.ByMunicipality, stats.ByOrganisation, stats.ByGender, stats.ByAgeBand, stats.BySetting} {
				qs = append(qs, stats.Query{From: w[0], To: w[1], Period: p, By: by, Location: stockholm})
			}
		}
	}
	return qs
}

// TestRollupsEqualFullCount holds the rollups to the full count of the
// records for queries bounded anywhere: at a day's start or within a day,
// across changes to and from summer time, empty, for some organisations
// only. The results must be identical, down to the zeros and the order of
// periods and groups, in dense data and in sparse data where voids empty
// whole periods and groups, after every round of changes.
func TestRollupsEqualFullCount(t *testing.T) {
	for _, c := range []struct {
		name      string
		contacts  int
		mutations int
	}{{"dense", 2000, 300}, {"sparse", 40, 25}} {
		for _, e := range engines {
			t.Run(c.name+"/"+e.name, func(t *testing.T) {
				d := newDatasetOn(t, []engine{e}, 3, c.contacts)
				rng := rand.New(rand.NewPCG(3, 9))
				for range 4 {
					for range 100 {
						d.sameAsFullCount(t, randomQuery(rng, d))
					}
					if t.Failed() {
						return
					}
					d.mutate(t, rng, c.mutations)
				}
			})
		}
	}
}

// TestRefreshIsIncremental computes the indicators, then pushes rounds of
// new records, corrections, voids and un-voids (of contacts too, which
// their exchanges and handouts follow), and checks after each round that
// the rollups, brought up to date from the changed records alone, give
// the model's figures and exactly the full count's. A rollup row that no
// record accounts for, planted after the first build, shows that they are
// counted from the rollups and never rebuilt meanwhile.
func TestRefreshIsIncremental(t *testing.T) {
	ctx := context.Background()
	d := newDataset(t, 4, 1500)
	year := stats.Query{From: time.Date(2026, 1, 1, 0, 0, 0, 0, stockholm), To: time.Date(2027, 1, 1, 0, 0, 0, 0, stockholm),
		Period: stats.Month, Location: stockholm}
	d.check(t, year, d.compute(t, year))

	// A contact on 1 June 2025, known to the day rollup only.
	planted := time.Date(2025, 6, 1, 0, 0, 0, 0, stockholm)
	if _, err := d.store.db.Writer.ExecContext(ctx, `INSERT INTO stats_cells (grain, bucket, unit_id, gender, age_band, setting,
		contacts, exchanges, syringes_out, needles_out, syringes_returned, handouts, naloxone_doses, reversals, referrals, attended)
		VALUES ('day', ?, ?, 'woman', 'not_stated', 'street', 1, 0, 0, 0, 0, 0, 0, 0, 0, 0)`,
		time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC).Unix()/86400, d.units[0].id.String()); err != nil {
		t.Fatal(err)
	}
	day := stats.Query{From: planted, To: planted.AddDate(0, 0, 1), Period: stats.Month, Location: stockholm}

	rng := rand.New(rand.NewPCG(4, 9))
	for round := range 6 {
		d.mutate(t, rng, 150+100*round)
		for _, q := range allQueries() {
			d.check(t, q, d.compute(t, q))
			d.sameAsFullCount(t, q)
		}
		if t.Failed() {
			t.Fatalf("round %d", round)
		}
		if got := d.compute(t, day).Value("2025-06", "", stats.Contacts); got != 1 {
			t.Fatalf("round %d: the planted contact is gone (%d): the rollups were rebuilt or not used", round, got)
		}
	}
}

// TestRefreshRebuilds checks that rollups are built from the records of a
// database that has none: emptied, just migrated to them, or of another
// layout, such as the one before the rollups kept the setting, whose
// figures by setting come from the records of before the migration too.
func TestRefreshRebuilds(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name string
		sql  []string
		// remigrate applies the migrations again after sql.
		remigrate bool
		// old makes, after sql, the rollups of the first layout, up to
		// date in it, with a contact no record accounts for.
		old bool
	}{
		{"emptied", []string{`DELETE FROM stats_state`, `DELETE FROM stats_facts`, `DELETE FROM stats_cells`,
			`DELETE FROM stats_services`, `DELETE FROM stats_clients`}, false, false},
		{"migrated", []string{`DROP TABLE stats_state`, `DROP TABLE stats_facts`, `DROP TABLE stats_cells`,
			`DROP TABLE stats_services`, `DROP TABLE stats_clients`,
			`DELETE FROM schema_migrations WHERE name IN ('0006_server_stats.sql', '0015_server_stats_setting.sql')`}, true, false},
		{"state only", []string{`DELETE FROM stats_state`}, false, false},
		{"other version", []string{`UPDATE stats_state SET version = version + 1`}, false, false},
		{"other zone", []string{`UPDATE stats_state SET zone = 'UTC'`}, false, false},
		{"layout before settings", []string{`DROP TABLE stats_state`, `DROP TABLE stats_facts`, `DROP TABLE stats_cells`,
			`DROP TABLE stats_services`, `DROP TABLE stats_clients`,
			`DELETE FROM schema_migrations WHERE name IN ('0006_server_stats.sql', '0015_server_stats_setting.sql')`}, true, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := newDataset(t, 5, 800)
			rng := rand.New(rand.NewPCG(5, 9))
			qs := allQueries()
			d.compute(t, qs[0])
			d.mutate(t, rng, 200)
			w := d.store.db.Writer
			for _, s := range c.sql {
				if _, err := w.ExecContext(ctx, s); err != nil {
					t.Fatal(err)
				}
			}
			want := 2
			if c.old {
				if n, err := schema.MigrateTo(ctx, w, schema.ServerDB, 6); err != nil || n != 1 {
					t.Fatalf("migrate to 6: %d, %v", n, err)
				}
				for _, s := range []string{
					`INSERT INTO stats_state (id, seq, zone, version) VALUES (1, (SELECT value FROM meta WHERE key = 'change_seq'), 'Europe/Stockholm', 1)`,
					`INSERT INTO stats_cells (grain, bucket, unit_id, gender, age_band, contacts, exchanges, syringes_out, needles_out,
						syringes_returned, handouts, naloxone_doses, reversals, referrals, attended)
						SELECT 'month', 20454, id, 'woman', 'not_stated', 1, 0, 0, 0, 0, 0, 0, 0, 0, 0 FROM units LIMIT 1`,
				} {
					if _, err := w.ExecContext(ctx, s); err != nil {
						t.Fatal(err)
					}
				}
				want = 1
			}
			if c.remigrate {
				if n, err := schema.Migrate(ctx, w, schema.ServerDB); err != nil || n != want {
					t.Fatalf("migrate: %d, %v", n, err)
				}
			}
			for _, q := range qs {
				d.check(t, q, d.compute(t, q))
				d.sameAsFullCount(t, q)
			}
			// And they are kept up to date from there on.
			d.mutate(t, rng, 200)
			for _, q := range qs {
				d.check(t, q, d.compute(t, q))
			}
		})
	}
}

// TestConcurrentRefreshes computes the indicators from several goroutines
// while records keep arriving: every computation succeeds, and once the
// records stop, every one gives the model's figures.
func TestConcurrentRefreshes(t *testing.T) {
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) { testConcurrentRefreshes(t, newDatasetOn(t, []engine{e}, 6, 600)) })
	}
}

func testConcurrentRefreshes(t *testing.T, d *dataset) {
	q := allQueries()[7]
	d.compute(t, q)
	rng := rand.New(rand.NewPCG(6, 9))
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := stats.Compute(context.Background(), d.store.db, q); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	for range 5 {
		d.mutate(t, rng, 100)
	}
	close(stop)
	wg.Wait()
	results := make([]*stats.Result, 4)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := stats.Compute(context.Background(), d.store.db, q)
			if err != nil {
				t.Error(err)
			}
			results[i] = r
		}()
	}
	wg.Wait()
	for _, r := range results {
		if r != nil {
			d.check(t, q, r)
		}
	}
}

package stats_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	_ "github.com/jackc/pgx/v5/stdlib" // database/sql's "pgx"

	"github.com/brygga/brygga/server/pgstore"
	"github.com/brygga/brygga/server/pgstore/pgtest"
	"github.com/brygga/brygga/server/stats"
	"github.com/brygga/brygga/sync/replica"
)

// backend is a server on one engine, as the statistics see it: its sync,
// which the dataset pushes to, and its database.
type backend struct {
	name  string
	sync  *replica.ServerSync
	db    stats.DB
	enrol func(t testing.TB, device, unit uuid.UUID)
	// url and pg are a PostgreSQL backend's database and store.
	url string
	pg  *pgstore.Store
}

// engine opens a backend of one engine.
type engine struct {
	name string
	open func(t testing.TB) *backend
}

var (
	sqliteEngine   = engine{"sqlite", openSQLite}
	postgresEngine = engine{"postgres", openPostgres}
	// engines are both; tests on PostgreSQL skip where none answers (see
	// pgtest).
	engines = []engine{sqliteEngine, postgresEngine}
)

// openSQLite opens a SQLite server database in the test's directory.
func openSQLite(t testing.TB) *backend {
	s, err := replica.OpenServer(context.Background(), filepath.Join(t.TempDir(), "s.db"), replica.ServerConfig{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return &backend{name: "sqlite", sync: s.ServerSync, db: stats.DB{Writer: s.DB().Writer(), Reader: s.DB().Reader(), Dialect: stats.SQLite},
		enrol: func(t testing.TB, device, unit uuid.UUID) {
			if _, err := s.RegisterDevice(context.Background(), device, unit); err != nil {
				t.Fatal(err)
			}
		}}
}

// openPostgres opens a PostgreSQL server database of the test's own.
func openPostgres(t testing.TB) *backend {
	ctx := context.Background()
	url := pgtest.URL(t)
	st, err := pgstore.Open(ctx, url, pgstore.Config{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	s, err := replica.NewServerSync(ctx, st.SyncEngine(), replica.ServerConfig{Now: func() time.Time { return now }})
	if err != nil {
		st.Close()
		t.Fatal(err)
	}
	db, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		db.Close()
		s.Close()
	})
	return &backend{name: "postgres", sync: s, db: stats.DB{Writer: db, Reader: db, Dialect: stats.Postgres}, url: url, pg: st,
		enrol: func(t testing.TB, device, unit uuid.UUID) {
			if _, err := db.Exec(`INSERT INTO devices (id, unit_id, enrolled_at) VALUES ($1, $2, $3)`, device, unit, now); err != nil {
				t.Fatal(err)
			}
		}}
}

// computeOn computes q on b.
func computeOn(t testing.TB, b *backend, q stats.Query) *stats.Result {
	t.Helper()
	r, err := stats.Compute(context.Background(), b.db, q)
	if err != nil {
		t.Fatalf("%s: %v", b.name, err)
	}
	return r
}

// rollupQueries read every row of the rollups, ids as text.
var rollupQueries = map[string]string{
	"stats_facts": `SELECT kind, CAST(id AS TEXT), CAST(contact_id AS TEXT), live, at, CAST(unit_id AS TEXT), gender, age_band, setting,
		client_code, syringes_out, needles_out, syringes_returned, doses, service, attended FROM stats_facts`,
	"stats_cells": `SELECT grain, bucket, CAST(unit_id AS TEXT), gender, age_band, setting, contacts, exchanges, syringes_out,
		needles_out, syringes_returned, handouts, naloxone_doses, reversals, referrals, attended FROM stats_cells`,
	"stats_services": `SELECT grain, bucket, CAST(unit_id AS TEXT), service, gender, age_band, setting, referrals FROM stats_services`,
	"stats_clients":  `SELECT grain, bucket, CAST(unit_id AS TEXT), client_code, gender, age_band, setting, contacts FROM stats_clients`,
}

// rows returns every row query reads from db, each as its columns' text
// joined, sorted.
func rows(t testing.TB, db *sql.DB, query string) []string {
	t.Helper()
	rs, err := db.Query(query)
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	cols, err := rs.Columns()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	vals := make([]sql.NullString, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rs.Next() {
		if err := rs.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		for _, v := range vals {
			if v.Valid {
				b.WriteString(v.String)
			} else {
				b.WriteString("NULL")
			}
			b.WriteByte('|')
		}
		out = append(out, b.String())
	}
	if err := rs.Err(); err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

// sameRows checks that every table's rows are the same in a and b.
func sameRows(t testing.TB, a, b *backend, queries map[string]string) {
	t.Helper()
	for table, q := range queries {
		ra, rb := rows(t, a.db.Reader, q), rows(t, b.db.Reader, q)
		if slices.Equal(ra, rb) {
			continue
		}
		only := func(x, y []string) []string {
			var out []string
			for _, r := range x {
				if _, found := slices.BinarySearch(y, r); !found {
					out = append(out, r)
				}
			}
			return out
		}
		t.Errorf("%s: %d rows on %s, %d on %s; only on %s: %.5q; only on %s: %.5q", table, len(ra), a.name, len(rb), b.name,
			a.name, only(ra, rb), b.name, only(rb, ra))
	}
}

// TestEnginesAgree pushes the same records to a SQLite and a PostgreSQL
// server, then corrections, voids and contacts changing gender, age band,
// setting and client code, round after round: the rollups hold the same
// rows on both, every query computes the same result on both (the
// model's), and so does a query in another zone, counted from the
// records. The first computation builds the rollups from all records,
// on PostgreSQL a page of them at a time.
func TestEnginesAgree(t *testing.T) {
	defer stats.SetPageSize(97)() // a rebuild on PostgreSQL reads many pages
	d := newDatasetOn(t, engines, 21, 700)
	sq, pg := d.backends[0], d.backends[1]
	rng := rand.New(rand.NewPCG(21, 9))
	utc := stats.Query{From: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC),
		Period: stats.Month, By: stats.BySetting, Location: time.UTC}
	for round := range 4 {
		if round > 0 {
			d.mutate(t, rng, 150*round)
		}
		for _, q := range allQueries() {
			a, b := computeOn(t, sq, q), computeOn(t, pg, q)
			if !reflect.DeepEqual(a, b) {
				t.Errorf("round %d: %s by %q from %s: the engines differ", round, q.Period, q.By, q.From)
			}
			d.check(t, q, b)
		}
		if a, b := computeOn(t, sq, utc), computeOn(t, pg, utc); !reflect.DeepEqual(a, b) {
			t.Errorf("round %d: in UTC, the engines differ", round)
		}
		sameRows(t, sq, pg, rollupQueries)
		if t.Failed() {
			t.Fatalf("round %d", round)
		}
	}
}

// keyQueries read the records' and client codes' keys.
var keyQueries = map[string]string{
	"record_keys": `SELECT kind, CAST(id AS TEXT), key FROM record_keys`,
	"client_keys": `SELECT client_code, key FROM client_keys`,
}

// copyKeys gives the records and client codes of to the keys they have
// in from, after checking that to keyed the same ones.
func copyKeys(t testing.TB, from, to *backend) {
	t.Helper()
	strip := func(rs []string) []string {
		out := make([]string, len(rs))
		for i, r := range rs {
			parts := strings.Split(r, "|")
			out[i] = strings.Join(parts[:len(parts)-2], "|")
		}
		slices.Sort(out)
		return out
	}
	for table, q := range keyQueries {
		a, b := rows(t, from.db.Reader, q), rows(t, to.db.Reader, q)
		if len(a) == 0 || !slices.Equal(strip(a), strip(b)) {
			t.Fatalf("%s: %d keys on %s, %d on %s, not of the same records", table, len(a), from.name, len(b), to.name)
		}
	}
	tx, err := to.db.Writer.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	for _, table := range []string{"record_keys", "client_keys"} {
		rs, err := from.db.Reader.Query(keyQueries[table])
		if err != nil {
			t.Fatal(err)
		}
		for rs.Next() {
			var err error
			if table == "record_keys" {
				var kind, id string
				var key int64
				if err = rs.Scan(&kind, &id, &key); err == nil {
					_, err = tx.Exec(`UPDATE record_keys SET key = $1 WHERE kind = $2 AND id = $3`, key, kind, id)
				}
			} else {
				var code string
				var key int64
				if err = rs.Scan(&code, &key); err == nil {
					_, err = tx.Exec(`UPDATE client_keys SET key = $1 WHERE client_code = $2`, key, code)
				}
			}
			if err != nil {
				rs.Close()
				t.Fatal(err)
			}
		}
		rs.Close()
		if err := rs.Err(); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

// samePublication checks that a and b publish the same: every report,
// the IVO report and the follow-up. (Their audits may have worked
// differently: a build that found cells withheld by another only holds
// them.)
func samePublication(t testing.TB, a, b *stats.Publication) {
	t.Helper()
	same := func(what string, x, y any) {
		jx, err := json.Marshal(x)
		if err != nil {
			t.Fatal(err)
		}
		jy, err := json.Marshal(y)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(jx, jy) {
			t.Errorf("%s: the engines publish differently", what)
		}
	}
	first, last := a.Years()
	if f, l := b.Years(); f != first || l != last {
		t.Fatalf("years %d-%d and %d-%d", first, last, f, l)
	}
	for y := first; y <= last; y++ {
		for _, kind := range periodKinds {
			for _, by := range breakdowns {
				same(fmt.Sprintf("%d %s by %s", y, kind, by), a.Report(kind, y, by), b.Report(kind, y, by))
			}
		}
		same(fmt.Sprintf("IVO %d", y), a.IVO("23", y), b.IVO("23", y))
		same(fmt.Sprintf("follow-up %d", y), a.FollowUp(stats.Month, y, stats.ByTotal), b.FollowUp(stats.Month, y, stats.ByTotal))
	}
}

// TestEnginesPublishAlike builds the authority's publication of the same
// records, with the same keys, on SQLite and PostgreSQL, then again after
// changes and late records: the reports, the IVO report and the
// follow-up are the same, and so are the cells' fixed noise, the withheld
// cells and the finals recorded.
func TestEnginesPublishAlike(t *testing.T) {
	for _, c := range []struct {
		name string
		data func(t *testing.T) *dataset
	}{
		{"region", func(t *testing.T) *dataset { return newDatasetOn(t, engines, 23, 600) }},
		{"health", func(t *testing.T) *dataset { return healthData(t, engines...) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := c.data(t)
			sq, pg := d.backends[0], d.backends[1]
			copyKeys(t, sq, pg)
			at := time.Date(2026, 12, 20, 12, 0, 0, 0, time.UTC)
			buildOn := func(b *backend) *stats.Publication {
				p, err := stats.BuildPublication(context.Background(), b.db, at, stats.DefaultK)
				if err != nil {
					t.Fatalf("%s: %v", b.name, err)
				}
				return p
			}
			a, b := buildOn(sq), buildOn(pg)
			samePublication(t, a, b)
			if a.Audit.Withheld != b.Audit.Withheld || a.Audit.Pinned != b.Audit.Pinned {
				t.Errorf("audit %+v and %+v", a.Audit, b.Audit)
			}
			if len(d.contactList) > 0 {
				d.mutate(t, rand.New(rand.NewPCG(23, 9)), 200)
				copyKeys(t, sq, pg)
			}
			samePublication(t, buildOn(sq), buildOn(pg))
			sameRows(t, sq, pg, map[string]string{
				"report_keys":     `SELECT cell, key, top FROM report_keys`,
				"report_withheld": `SELECT cell FROM report_withheld`,
				"report_finals":   `SELECT cell, value FROM report_finals`,
			})
		})
	}
}

// TestInstancesRefreshAlike runs two servers' stores on one PostgreSQL
// database, as two processes would, refreshing and computing at once
// while records keep arriving: every refresh succeeds, the rollups they
// end with hold what a rebuild from the records gives, counted once, and
// both compute the model's figures. Then both build the publication at
// once, and publish the same.
func TestInstancesRefreshAlike(t *testing.T) {
	ctx := context.Background()
	d := newDatasetOn(t, []engine{postgresEngine}, 31, 600)
	b := d.backends[0]
	other, err := pgstore.Open(ctx, b.url, pgstore.Config{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	instances := []*pgstore.Store{b.pg, other}
	q := allQueries()[7]
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := instances[i%2]
			for {
				select {
				case <-stop:
					return
				default:
				}
				if err := s.RefreshStats(ctx); err != nil {
					t.Error(err)
					return
				}
				if _, err := s.ComputeStats(ctx, q); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	rng := rand.New(rand.NewPCG(31, 9))
	for range 6 {
		d.mutate(t, rng, 120)
	}
	close(stop)
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	for _, s := range instances {
		r, err := s.ComputeStats(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		d.check(t, q, r)
	}
	kept := map[string][]string{}
	for table, query := range rollupQueries {
		kept[table] = rows(t, b.db.Reader, query)
	}
	if _, err := b.db.Writer.Exec(`DELETE FROM stats_state`); err != nil {
		t.Fatal(err)
	}
	if err := other.RefreshStats(ctx); err != nil {
		t.Fatal(err)
	}
	for table, query := range rollupQueries {
		if rebuilt := rows(t, b.db.Reader, query); !slices.Equal(kept[table], rebuilt) {
			t.Errorf("%s: %d rows kept up to date, %d rebuilt from the records", table, len(kept[table]), len(rebuilt))
		}
	}

	pubs := make([]*stats.Publication, 2)
	for i, s := range instances {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pb := &stats.Publisher{Wait: time.Minute}
			defer pb.Close()
			p, err := s.Publication(ctx, pb, now, stats.DefaultK)
			if err != nil {
				t.Error(err)
			}
			pubs[i] = p
		}()
	}
	wg.Wait()
	if pubs[0] != nil && pubs[1] != nil {
		samePublication(t, pubs[0], pubs[1])
	}
}

// TestPublicationRaced builds a publication from one snapshot, then, after
// records changed, another that records its cells first: the first then
// records nothing, and a build from there publishes what is recorded, as
// every build does once it has lost such a race.
func TestPublicationRaced(t *testing.T) {
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			ctx := context.Background()
			d := newDatasetOn(t, []engine{e}, 41, 400)
			db := d.store.db
			at := time.Date(2026, 12, 20, 12, 0, 0, 0, time.UTC)
			stale, record, err := stats.BuildUnrecorded(db, at, stats.DefaultK)
			if err != nil {
				t.Fatal(err)
			}
			d.mutate(t, rand.New(rand.NewPCG(41, 9)), 150)
			first, err := stats.BuildPublication(ctx, db, at, stats.DefaultK)
			if err != nil {
				t.Fatal(err)
			}
			if first.Seq == stale.Seq {
				t.Fatal("the records did not change")
			}
			recorded := map[string][]string{}
			tables := map[string]string{
				"report_keys":     `SELECT cell, key, top FROM report_keys`,
				"report_withheld": `SELECT cell FROM report_withheld`,
				"report_finals":   `SELECT cell, value FROM report_finals`,
			}
			for table, q := range tables {
				recorded[table] = rows(t, db.Reader, q)
			}
			if len(recorded["report_keys"]) == 0 || len(recorded["report_finals"]) == 0 {
				t.Fatalf("the build recorded %d keys, %d finals", len(recorded["report_keys"]), len(recorded["report_finals"]))
			}
			if err := record(); !errors.Is(err, stats.ErrRaced) {
				t.Fatalf("recording the stale build: %v, want ErrRaced", err)
			}
			for table, q := range tables {
				if got := rows(t, db.Reader, q); !slices.Equal(got, recorded[table]) {
					t.Errorf("%s: the stale build recorded %d rows over %d", table, len(got), len(recorded[table]))
				}
			}
			again, err := stats.BuildPublication(ctx, db, at, stats.DefaultK)
			if err != nil {
				t.Fatal(err)
			}
			samePublication(t, first, again)
		})
	}
}

// BenchmarkRefreshPostgres is BenchmarkRefresh on PostgreSQL, and reports
// how long the first refresh, which builds the rollups from all records,
// took.
func BenchmarkRefreshPostgres(b *testing.B) {
	ctx := context.Background()
	d := newDatasetOn(b, []engine{postgresEngine}, 1, benchEvents())
	start := time.Now()
	if err := stats.Refresh(ctx, d.store.db); err != nil {
		b.Fatal(err)
	}
	rebuild := time.Since(start)
	rng := rand.New(rand.NewPCG(2, 7))
	var pushing time.Duration
	for b.Loop() {
		b.StopTimer()
		start := time.Now()
		d.mutate(b, rng, 1000)
		pushing += time.Since(start)
		b.StartTimer()
		if err := stats.Refresh(ctx, d.store.db); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(pushing.Nanoseconds())/float64(b.N), "push-ns/op")
	b.ReportMetric(float64(rebuild.Milliseconds()), "rebuild-ms")
}

// TestKeysOfRecordsStoredBefore opens a PostgreSQL database whose records
// were stored before their keys were given, as in a database of before
// the statistics: every record and client code is keyed once the server
// has migrated, and the records stored from then on are keyed as stored.
func TestKeysOfRecordsStoredBefore(t *testing.T) {
	ctx := context.Background()
	d := newDatasetOn(t, []engine{postgresEngine}, 51, 150)
	b := d.store
	count := func(q string) int {
		var n int
		if err := b.db.Reader.QueryRow(q).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	records := `SELECT (SELECT count(*) FROM contacts) + (SELECT count(*) FROM syringe_exchanges) + (SELECT count(*) FROM naloxone_handouts)
		+ (SELECT count(*) FROM reversals) + (SELECT count(*) FROM referrals)`
	codes := `SELECT count(DISTINCT client_code) FROM contacts`
	want, wantCodes := count(records), count(codes)
	if n := count(`SELECT count(*) FROM record_keys`); n != want || want == 0 {
		t.Fatalf("%d keys for %d records", n, want)
	}
	for _, k := range []string{"contacts", "syringe_exchanges", "naloxone_handouts", "reversals", "referrals", "infection_tests", "vaccinations", "deaths"} {
		if _, err := b.db.Writer.Exec(`DROP TRIGGER ` + k + `_record_keys ON ` + k); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range []string{`DROP TRIGGER contacts_client_keys ON contacts`, `DROP TRIGGER deaths_client_keys ON deaths`,
		`DROP TRIGGER contacts_client_key_changed ON contacts`, `DROP TRIGGER deaths_client_key_changed ON deaths`,
		`DELETE FROM record_keys`, `DELETE FROM client_keys`} {
		if _, err := b.db.Writer.Exec(s); err != nil {
			t.Fatal(err)
		}
	}
	again, err := pgstore.Open(ctx, b.url, pgstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	again.Close()
	if n := count(`SELECT count(*) FROM record_keys`); n != want {
		t.Errorf("%d keys for %d records stored before", n, want)
	}
	if n := count(`SELECT count(*) FROM client_keys`); n != wantCodes {
		t.Errorf("%d client keys for %d client codes stored before", n, wantCodes)
	}
	if n := count(`SELECT count(*) FROM record_keys WHERE key < 0 OR key >= 4294967296`); n != 0 {
		t.Errorf("%d keys out of range", n)
	}
	d.mutate(t, rand.New(rand.NewPCG(51, 9)), 100)
	if n, m := count(`SELECT count(*) FROM record_keys`), count(records); n != m {
		t.Errorf("%d keys for %d records after more were stored", n, m)
	}
	if n, m := count(`SELECT count(*) FROM client_keys`), count(codes); n != m {
		t.Errorf("%d client keys for %d client codes after more were stored", n, m)
	}
}

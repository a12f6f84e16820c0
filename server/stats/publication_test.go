package stats_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/brygga/brygga/schema"
	"github.com/brygga/brygga/server/stats"
)

// TestPerturbationTable checks every row of the table for several k: the
// probabilities add up, zeros stay zero, no count from 1 to k-1 is ever
// published, the noise is bounded, every row is unbiased, Perturb is
// deterministic and follows the row over the key space, and preimages are
// ranges holding exactly the counts that can give the value.
func TestPerturbationTable(t *testing.T) {
	// The means of the rows 1 to 4, in per-mille, for every k: they read
	// low (docs/REPORTS.md).
	low := map[int64]int64{1: 300, 2: 1000, 3: 2500, 4: 3800}
	for _, k := range []int64{2, 3, 5, 10} {
		for n := int64(0); n <= 40; n++ {
			row := stats.Outcomes(n, k)
			total, mean := 0, int64(0)
			for _, o := range row {
				total += o.P
				mean += o.Value * int64(o.P)
				if o.Value >= 1 && o.Value < k {
					t.Errorf("k=%d n=%d: publishes %d", k, n, o.Value)
				}
				if n == 0 && o.Value != 0 {
					t.Errorf("k=%d: 0 published as %d", k, o.Value)
				}
				if d := o.Value - n; (d > 2 || d < -2) && !(n <= max(k+1, 4) && (o.Value == 0 || o.Value == k)) {
					t.Errorf("k=%d n=%d: noise %d", k, n, d)
				}
			}
			if total != 1000 {
				t.Errorf("k=%d n=%d: probabilities add up to %d per-mille", k, n, total)
			}
			want := 1000 * n
			if w, ok := low[n]; ok {
				want = w
			}
			if mean != want {
				t.Errorf("k=%d n=%d: mean %.3f, want %.3f", k, n, float64(mean)/1000, float64(want)/1000)
			}
			// Over the key space (every millionth), Perturb gives each
			// outcome with its probability, and the same key always the
			// same value.
			seen := map[int64]int{}
			for pm := range 1_000_000 {
				if pm%7 != 0 && n > 12 {
					continue // the general rows: a sample is enough
				}
				key := keyAt(pm)
				v := stats.Perturb(n, key, k)
				if v != stats.Perturb(n, key, k) {
					t.Fatalf("k=%d n=%d: Perturb is not deterministic", k, n)
				}
				if n > 0 && v < stats.Perturb(n-1, key, k) {
					t.Fatalf("k=%d n=%d: Perturb falls as the count grows", k, n)
				}
				seen[v]++
			}
			for _, o := range row {
				if n <= 12 && seen[o.Value] != 1000*o.P {
					t.Errorf("k=%d n=%d: %d drawn %d per-million, want %d", k, n, o.Value, seen[o.Value], 1000*o.P)
				}
				if n > 12 && seen[o.Value] == 0 {
					t.Errorf("k=%d n=%d: %d never drawn", k, n, o.Value)
				}
			}
		}
		for p := int64(0); p <= 30; p++ {
			lo, hi := stats.Preimage(p, k)
			if p >= 1 && p < k {
				if lo != -1 {
					t.Errorf("k=%d: %d, never published, has a preimage", k, p)
				}
				continue
			}
			for n := max(0, lo-5); n <= hi+5; n++ {
				can := false
				for _, o := range stats.Outcomes(n, k) {
					can = can || (o.Value == p && o.P > 0)
				}
				if can != (n >= lo && n <= hi) {
					t.Errorf("k=%d: %d from %d: %v, preimage [%d, %d]", k, p, n, can, lo, hi)
				}
			}
		}
	}
	// The table docs/REPORTS.md prints for k = 5.
	for p, want := range map[int64][2]int64{0: {0, 6}, 5: {1, 7}, 6: {4, 8}, 7: {5, 9}, 8: {6, 10}, 9: {7, 11}, 20: {18, 22}} {
		if lo, hi := stats.Preimage(p, 5); lo != want[0] || hi != want[1] {
			t.Errorf("preimage of %d = [%d, %d], want %v", p, lo, hi, want)
		}
	}
}

// TestPerturbSum checks the magnitude noise: deterministic, never zero,
// between a quarter and a half of the largest contribution, unbiased over
// the key space.
func TestPerturbSum(t *testing.T) {
	var total int64
	for at := range 1000 {
		key := uint32(uint64(at) << 32 / 1000)
		v := stats.PerturbSum(1000, 40, key)
		if v != stats.PerturbSum(1000, 40, key) {
			t.Fatal("PerturbSum is not deterministic")
		}
		if d := v - 1000; d == 0 || d > 20 || d < -20 || (d > -10 && d < 10) {
			t.Errorf("sum 1000, largest 40: published %d", v)
		}
		total += v - 1000
	}
	if total > 40 || total < -40 {
		t.Errorf("the noise adds up to %d over the key space", total)
	}
}

// build builds d's publication as of at.
func build(t testing.TB, d *dataset, at time.Time) *stats.Publication {
	t.Helper()
	p, err := stats.BuildPublication(context.Background(), d.store.db, at, stats.DefaultK)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

var (
	periodKinds = []stats.Period{stats.Week, stats.Month, stats.Quarter, stats.Year}
	breakdowns  = []stats.Dim{stats.ByTotal, stats.ByGender, stats.ByAgeBand, stats.ByUnit, stats.ByMunicipality, stats.ByOrganisation}
)

// counted reports whether an indicator is a count (perturbed by the
// table) rather than a sum.
func counted(i stats.Indicator) bool {
	switch i {
	case stats.SyringesOut, stats.NeedlesOut, stats.SyringesReturned, stats.NaloxoneDoses,
		stats.DeathsPriorContacts, stats.DeathsPriorNaloxoneDoses, stats.DeathsPriorReferrals, stats.DeathsPriorReferralsAttended:
		return false
	}
	return true
}

// TestPublication checks the reports of a region's year against the true
// figures: every group and period listed; every count published is a
// value its true count can give (so never 1 to k-1); every sum published
// within half of itself of the truth; a period's total the same cell in
// every breakdown; CSV the same figures as JSON; a second build the same
// to the byte; and the audit left nothing pinned.
func TestPublication(t *testing.T) {
	d := newDataset(t, 3, 1200)
	ctx := context.Background()
	pub := build(t, d, now)
	if pub.Audit.Unresolved != 0 || pub.Audit.Unconverged != 0 {
		t.Errorf("audit: %+v", pub.Audit)
	}
	t.Logf("audit: %+v", pub.Audit)
	if n := stats.Repinned(pub); n != 0 {
		t.Errorf("after the audit, %d small counts are still pinned", n)
	}
	// A year before the first record: every period and group, zeros.
	before := pub.Report(stats.Month, 2025, stats.ByGender)
	if len(before.Periods) != 12 || len(before.Rows) != 12*5 {
		t.Fatalf("2025: %d periods, %d rows", len(before.Periods), len(before.Rows))
	}
	for _, row := range before.Rows {
		for ind, c := range row.Indicators {
			if counted(ind) && (c.Value == nil || *c.Value != 0) || !counted(ind) && !c.Withheld || row.Status != stats.Final {
				t.Fatalf("2025 %s %s %s: %+v, %s", row.Period, row.Group, ind, c, row.Status)
			}
		}
	}
	groups := map[stats.Dim]int{stats.ByTotal: 0, stats.ByGender: 4, stats.ByAgeBand: 8, stats.ByUnit: 5, stats.ByMunicipality: 3, stats.ByOrganisation: 3}
	periods := map[stats.Period]int{stats.Week: 53, stats.Month: 12, stats.Quarter: 4, stats.Year: 1}
	totals := map[string]stats.Cell{}
	small := 0 // count cells withheld from 1 to k-1, for a manager's steps
	again := build(t, d, now)
	for _, kind := range periodKinds {
		from := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		to := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
		if kind == stats.Week {
			from, to = time.Date(2025, 12, 29, 0, 0, 0, 0, time.UTC), time.Date(2027, 1, 4, 0, 0, 0, 0, time.UTC)
		}
		for _, by := range breakdowns {
			rep := pub.Report(kind, 2026, by)
			if len(rep.Groups) != groups[by] || len(rep.Periods) != periods[kind] || len(rep.Rows) != (groups[by]+1)*periods[kind] {
				t.Fatalf("%s by %q: %d groups, %d periods, %d rows", kind, by, len(rep.Groups), len(rep.Periods), len(rep.Rows))
			}
			loc, _ := time.LoadLocation("Europe/Stockholm")
			truth, err := stats.Compute(ctx, d.store.db, stats.Query{
				From: time.Date(from.Year(), from.Month(), from.Day(), 0, 0, 0, 0, loc), To: time.Date(to.Year(), to.Month(), to.Day(), 0, 0, 0, 0, loc),
				Period: kind, By: by, Location: loc})
			if err != nil {
				t.Fatal(err)
			}
			for _, row := range rep.Rows {
				key := row.Group
				if key == stats.TotalGroup {
					key = ""
				}
				for _, ind := range stats.Indicators {
					c := row.Indicators[ind]
					n := truth.Value(row.Period, key, ind)
					if c.Withheld != (c.Value == nil) {
						t.Fatalf("%s %s %s: %+v", row.Period, row.Group, ind, c)
					}
					if c.Value != nil {
						v := *c.Value
						if counted(ind) {
							lo, hi := stats.Preimage(v, stats.DefaultK)
							if n < lo || n > hi {
								t.Errorf("%s %s %s: published %d from %d", row.Period, row.Group, ind, v, n)
							}
						} else if 2*v < n || 2*v > 3*n {
							t.Errorf("%s %s %s: sum %d published as %d", row.Period, row.Group, ind, n, v)
						}
					} else if counted(ind) && n < 1 {
						t.Errorf("%s %s %s: the audit withheld a count of %d", row.Period, row.Group, ind, n)
					} else if counted(ind) && n < stats.DefaultK {
						small++
					}
					if row.Group == stats.TotalGroup {
						addr := row.Period + " " + string(ind)
						if prev, ok := totals[addr]; ok && !sameCell(prev, c) {
							t.Errorf("%s: the total reads %+v and %+v", addr, prev, c)
						}
						totals[addr] = c
					}
				}
			}
			a, _ := json.Marshal(rep)
			b, _ := json.Marshal(again.Report(kind, 2026, by))
			if !bytes.Equal(a, b) {
				t.Errorf("%s by %q: a second build differs", kind, by)
			}
			checkCSV(t, rep)
		}
	}
	t.Logf("%d count cells from 1 to k-1 withheld, over all the reports (a cell counts once in each report it is in)", small)
}

func sameCell(a, b stats.Cell) bool {
	return a.Withheld == b.Withheld && a.Revised == b.Revised && (a.Value == nil) == (b.Value == nil) && (a.Value == nil || *a.Value == *b.Value)
}

// checkCSV compares a report's CSV with its JSON form.
func checkCSV(t *testing.T, rep *stats.Report) {
	t.Helper()
	var buf bytes.Buffer
	if err := rep.WriteCSV(&buf); err != nil {
		t.Fatal(err)
	}
	lines, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	perRow := len(stats.Indicators) + 2
	if len(lines) != 1+len(rep.Rows)*perRow {
		t.Fatalf("csv: %d lines for %d rows", len(lines), len(rep.Rows))
	}
	for i, row := range rep.Rows {
		for j, ind := range stats.Indicators {
			l := lines[1+i*perRow+j]
			c := row.Indicators[ind]
			want := ""
			if c.Value != nil {
				want = strconv.FormatInt(*c.Value, 10)
			}
			if l[0] != row.Period || l[1] != string(row.Status) || l[3] != row.Group || l[5] != string(ind) || l[6] != want ||
				l[7] != strconv.FormatBool(c.Withheld) || l[8] != strconv.FormatBool(c.Revised) {
				t.Fatalf("csv line %v, json %s %s %s %+v", l, row.Period, row.Group, ind, c)
			}
		}
	}
}

// TestSumsOfFewRecordsWithheld checks that a sum is published only from k
// contributing records, and always from k+4: one unit's exchanges added
// one by one in a week of its own. Between, whether it is published
// follows the records plus the cell's shift, so it never turns back to
// withheld as records are added.
func TestSumsOfFewRecordsWithheld(t *testing.T) {
	d := newDataset(t, 4, 0)
	u := d.units[0]
	at := time.Date(2026, 3, 11, 10, 0, 0, 0, time.UTC) // 2026-W11, a Wednesday
	shown := false
	for i := range stats.DefaultK + 4 {
		c := &schema.Contact{Header: schema.Header{ID: uuid.Must(uuid.NewV7()), UnitID: u.id, DeviceID: u.device, StaffID: u.staff, OccurredAt: at},
			Gender: schema.GenderWoman, AgeBand: schema.Age30to39, Setting: schema.SettingStreet, AreaCode: u.area}
		x := &schema.SyringeExchange{Header: schema.Header{ID: uuid.Must(uuid.NewV7()), UnitID: u.id, DeviceID: u.device, StaffID: u.staff, OccurredAt: at},
			ContactID: c.ID, SyringesOut: 10 + i}
		d.queue(u, c)
		d.queue(u, x)
		d.push(t)
		rep := build(t, d, now).Report(stats.Week, 2026, stats.ByTotal)
		n := int64(i + 1)
		for _, row := range rep.Rows {
			c := row.Indicators[stats.SyringesOut]
			if row.Period == "2026-W11" {
				switch {
				case n < stats.DefaultK && !c.Withheld, n >= stats.DefaultK+4 && c.Withheld, shown && c.Withheld:
					t.Errorf("%d exchanges: syringes out %+v", n, c)
				}
				shown = !c.Withheld
				if n := row.Indicators[stats.NeedlesOut]; !n.Withheld {
					t.Errorf("needles out of no exchange published: %+v", n)
				}
			} else if !c.Withheld {
				t.Errorf("%s: syringes out of no exchange published: %+v", row.Period, c)
			}
		}
	}
}

// TestFinalProvisionalRevised checks the status of periods by the devices'
// last syncs, and that a late record changes a final period's cells as
// revised and nothing else.
func TestFinalProvisionalRevised(t *testing.T) {
	d := newDataset(t, 5, 600)
	db := d.store.db
	at := time.Date(2026, 12, 20, 12, 0, 0, 0, time.UTC)
	first := build(t, d, at)
	status := func(p *stats.Publication, kind stats.Period) map[string]stats.Status {
		out := map[string]stats.Status{}
		for _, per := range p.Report(kind, 2026, stats.ByTotal).Periods {
			out[per.Key] = per.Status
		}
		return out
	}
	// Every device pushed at 2026-12-31 12:00 (the dataset's clock): what
	// ended by 2026-12-20 is final.
	months, quarters := status(first, stats.Month), status(first, stats.Quarter)
	if months["2026-11"] != stats.Final || months["2026-12"] != stats.Provisional || quarters["2026-Q3"] != stats.Final || quarters["2026-Q4"] != stats.Provisional {
		t.Errorf("on 2026-12-20: months %v, quarters %v", months, quarters)
	}
	if s := status(first, stats.Week)["2026-W50"]; s != stats.Final {
		t.Errorf("2026-W50 is %s", s)
	}
	// A device that last synced on 2026-11-10 holds back what ended since.
	if _, err := db.Writer.Exec(`UPDATE devices SET enrolled_at = ?, last_push_at = ?, last_pull_at = NULL WHERE id = ?`, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli(),
		time.Date(2026, 11, 10, 0, 0, 0, 0, time.UTC).UnixMilli(), d.units[1].device.String()); err != nil {
		t.Fatal(err)
	}
	held := build(t, d, at)
	for key, want := range map[string]stats.Status{"2026-10": stats.Final, "2026-11": stats.Provisional} {
		if got := status(held, stats.Month)[key]; got != want {
			t.Errorf("after a device stopped syncing: %s is %s, want %s", key, got, want)
		}
	}
	if _, err := db.Writer.Exec(`UPDATE devices SET last_push_at = ? WHERE id = ?`, now.UnixMilli(), d.units[1].device.String()); err != nil {
		t.Fatal(err)
	}
	// Late records of October, in every unit.
	rng := rand.New(rand.NewPCG(9, 9))
	for range 40 {
		u := d.units[rng.IntN(len(d.units))]
		c := &schema.Contact{Header: schema.Header{ID: uuid.Must(uuid.NewV7()), UnitID: u.id, DeviceID: u.device, StaffID: u.staff,
			OccurredAt: time.Date(2026, 10, 1+rng.IntN(30), 12, 0, 0, 0, time.UTC)}, Gender: schema.GenderMan, AgeBand: schema.Age40to49,
			Setting: schema.SettingStreet, AreaCode: u.area}
		d.queue(u, c)
	}
	d.push(t)
	later := build(t, d, at)
	revised := 0
	for _, kind := range periodKinds {
		for _, by := range breakdowns {
			a, b := first.Report(kind, 2026, by), later.Report(kind, 2026, by)
			for i, row := range b.Rows {
				for _, ind := range stats.Indicators {
					was, is := a.Rows[i].Indicators[ind], row.Indicators[ind]
					changed := !sameCell(stats.Cell{Value: was.Value, Withheld: was.Withheld}, stats.Cell{Value: is.Value, Withheld: is.Withheld})
					if a.Rows[i].Status == stats.Final && row.Status == stats.Final && changed != is.Revised {
						t.Errorf("%s %s %s: %+v then %+v, revised %v", row.Period, row.Group, ind, was, is, is.Revised)
					}
					if is.Revised {
						revised++
						if !row.Indicators[ind].Revised || row.Status != stats.Final {
							t.Errorf("%s %s: revised in a provisional period", row.Period, ind)
						}
					}
				}
			}
		}
	}
	if revised == 0 {
		t.Error("40 late contacts of October revised nothing")
	}
}

// TestRecordKeys checks that every record counted has a key when the
// server stores it, and that the keys do not change, on each engine.
func TestRecordKeys(t *testing.T) {
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) { testRecordKeys(t, newDatasetOn(t, []engine{e}, 6, 200)) })
	}
}

func testRecordKeys(t *testing.T, d *dataset) {
	db := d.store.db.Reader
	keys := func() map[string]int64 {
		rows, err := db.Query(`SELECT kind || '/' || id, key FROM record_keys`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		out := map[string]int64{}
		for rows.Next() {
			var id string
			var k int64
			if err := rows.Scan(&id, &k); err != nil {
				t.Fatal(err)
			}
			out[id] = k
		}
		return out
	}
	before := keys()
	want := len(d.contacts) + len(d.exch) + len(d.nalox) + len(d.revs) + len(d.refs)
	if len(before) != want {
		t.Errorf("%d record keys for %d records", len(before), want)
	}
	var codes, codeKeys int
	if err := db.QueryRow(`SELECT count(DISTINCT client_code) FROM contacts`).Scan(&codes); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow(`SELECT count(*) FROM client_keys`).Scan(&codeKeys); err != nil {
		t.Fatal(err)
	}
	if codes != codeKeys {
		t.Errorf("%d client keys for %d client codes", codeKeys, codes)
	}
	d.mutate(t, rand.New(rand.NewPCG(6, 6)), 100)
	after := keys()
	for id, k := range before {
		if after[id] != k {
			t.Errorf("%s: key changed", id)
		}
	}
}

// benchRegion makes the region of the publication's benchmarks:
// BRYGGA_BENCH_EVENTS contacts (20,000 by default) with their exchanges,
// handouts, reversals and referrals, in a region of 12 organisations, 40
// units and 8 municipalities (Jämtland Härjedalen's size), its rollups up
// to date as the server keeps them.
func benchRegion(b *testing.B) *dataset {
	var units []regionUnit
	for i := range 40 {
		units = append(units, regionUnit{i % 12, fmt.Sprintf("23%02d", 1+i%8)})
	}
	d := newRegion(b, 11, benchEvents(), 12, units)
	if err := stats.Refresh(context.Background(), d.store.db); err != nil {
		b.Fatal(err)
	}
	return d
}

// BenchmarkPublication builds the publication of a region's year, with
// its audit: from_scratch, what the first build after a restart does;
// after_write, what the publisher does in the background after a push of
// one record: the rollups brought up to date with the change, the records'
// keys kept between builds, every cell counted and audited again.
func BenchmarkPublication(b *testing.B) {
	d := benchRegion(b)
	b.Run("from_scratch", func(b *testing.B) {
		var pub *stats.Publication
		for b.Loop() {
			pub = build(b, d, now)
		}
		b.ReportMetric(float64(pub.Audit.Took.Milliseconds()), "audit-ms")
		b.ReportMetric(float64(pub.Audit.Withheld), "withheld")
	})
	b.Run("after_write", func(b *testing.B) {
		ctx := context.Background()
		db := d.store.db
		pb := &stats.Publisher{Wait: time.Hour}
		defer pb.Close()
		if _, err := pb.Publication(ctx, db, now, stats.DefaultK); err != nil {
			b.Fatal(err)
		}
		u := d.units[0]
		var pub *stats.Publication
		for i := 0; b.Loop(); i++ {
			b.StopTimer()
			d.queue(u, &schema.Contact{Header: schema.Header{ID: uuid.Must(uuid.NewV7()), UnitID: u.id, DeviceID: u.device, StaffID: u.staff,
				OccurredAt: time.Date(2026, 3, 1+i%28, 12, 0, 0, 0, time.UTC)}, Gender: schema.GenderMan, AgeBand: schema.Age30to39,
				Setting: schema.SettingStreet, AreaCode: u.area})
			d.push(b)
			b.StartTimer()
			var err error
			if pub, err = pb.Publication(ctx, db, now, stats.DefaultK); err != nil || pub.Stale {
				b.Fatalf("after a write: %v", err)
			}
		}
		b.ReportMetric(float64(pub.Audit.Took.Milliseconds()), "audit-ms")
	})
}

// TestAuditAgainstTheInsider builds the case where perturbation alone
// gives most away to a manager: every week, a unit of one organisation
// with many contacts and, in the same municipality, a unit of another with
// one to three. The manager of the first knows their own figures exactly;
// the municipality's figure less theirs leaves the other's with the noise
// of one cell. After the audit, no count from 1 to k-1 is pinned, as an
// outside reader or as either manager.
func TestAuditAgainstTheInsider(t *testing.T) {
	d := newRegion(t, 8, 0, 2, []regionUnit{{0, "2380"}, {1, "2380"}, {1, "2321"}})
	rng := rand.New(rand.NewPCG(8, 8))
	contact := func(u unitDef, at time.Time) {
		d.queue(u, &schema.Contact{Header: schema.Header{ID: uuid.Must(uuid.NewV7()), UnitID: u.id, DeviceID: u.device, StaffID: u.staff, OccurredAt: at},
			Gender: schema.GenderMan, AgeBand: schema.Age30to39, Setting: schema.SettingStreet, AreaCode: u.area})
	}
	for day := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC); day.Before(time.Date(2026, 12, 20, 0, 0, 0, 0, time.UTC)); day = day.AddDate(0, 0, 7) {
		for range 20 + rng.IntN(20) {
			contact(d.units[0], day.Add(time.Duration(rng.IntN(6*24))*time.Hour))
		}
		for range 1 + rng.IntN(3) {
			contact(d.units[1], day.Add(time.Duration(rng.IntN(6*24))*time.Hour))
		}
	}
	d.push(t)
	pub := build(t, d, now)
	t.Logf("audit: %+v", pub.Audit)
	if pub.Audit.Unresolved != 0 || pub.Audit.Unconverged != 0 {
		t.Errorf("audit: %+v", pub.Audit)
	}
	if n := stats.Repinned(pub); n != 0 {
		t.Errorf("after the audit, %d small counts are still pinned", n)
	}
}

// TestAuditFindsTheManagersPin sets up the pin a manager would find, with
// the noise the table gives at its extremes: in March, unit A of one
// organisation has 30 contacts and unit B of another, in the same
// municipality, one. B's cell (and its organisation's, the same records)
// reads 5, the municipality's its true count less 2. A's manager, who
// knows A's 30 exactly, reads B's between 1 (from B's own 5) and 1 (the
// municipality's at most n+2 less 30): pinned. The audit must find it and
// withhold cells until nothing is pinned: of at least k, or where only
// small cells hold a pin, the pinned count's own; never a cell of 0.
func TestAuditFindsTheManagersPin(t *testing.T) {
	d := newRegion(t, 12, 0, 2, []regionUnit{{0, "2380"}, {1, "2380"}, {1, "2321"}})
	contact := func(u unitDef, at time.Time) {
		d.queue(u, &schema.Contact{Header: schema.Header{ID: uuid.Must(uuid.NewV7()), UnitID: u.id, DeviceID: u.device, StaffID: u.staff, OccurredAt: at},
			Gender: schema.GenderWoman, AgeBand: schema.Age25to29, Setting: schema.SettingStreet, AreaCode: u.area})
	}
	for i := range 30 {
		contact(d.units[0], time.Date(2026, 3, 2+i%27, 12, 0, 0, 0, time.UTC))
	}
	contact(d.units[1], time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC))
	d.push(t)
	pub := build(t, d, now)
	b := d.units[1].id.String()
	orgB := d.units[1].org.String()
	if n := stats.Publish(pub, "2026-03", stats.ByUnit, b, stats.Contacts, 5); n != 1 {
		t.Fatalf("unit B has %d contacts in March", n)
	}
	stats.Publish(pub, "2026-03", stats.ByOrganisation, orgB, stats.Contacts, 5)
	n := stats.TrueCount(pub, "2026-03", stats.ByMunicipality, "2380", stats.Contacts)
	stats.Publish(pub, "2026-03", stats.ByMunicipality, "2380", stats.Contacts, n-2)
	audit := stats.Reaudit(pub)
	t.Logf("audit: %+v", audit)
	if audit.Pinned == 0 || audit.Withheld == 0 || audit.Unresolved != 0 || audit.Unconverged != 0 {
		t.Errorf("audit: %+v", audit)
	}
	if n := stats.Repinned(pub); n != 0 {
		t.Errorf("after the audit, %d small counts are still pinned", n)
	}
	for _, by := range breakdowns {
		for _, row := range pub.Report(stats.Month, 2026, by).Rows {
			if c := row.Indicators[stats.Contacts]; c.Withheld {
				in := by
				if row.Group == stats.TotalGroup {
					in = stats.ByTotal
				}
				// At least k, or at least 1 where only the pinned count's
				// own cell breaks a pin of a manager's steps; never 0.
				if n := stats.TrueCount(pub, row.Period, in, row.Group, stats.Contacts); n < 1 {
					t.Errorf("%s %s: a count of %d withheld", row.Period, row.Group, n)
				}
			}
		}
	}
}

// TestCellNoiseFixed checks that a cell's noise is fixed when it is first
// published: after late records, every cell whose count was and is in the
// table's general rows (from k+2 up) moved by exactly its count's change,
// in final and provisional periods alike, so that a reader who watches it
// sees one draw of its noise, not a new one per change of its records.
func TestCellNoiseFixed(t *testing.T) {
	d := newDataset(t, 5, 600)
	at := time.Date(2026, 12, 20, 12, 0, 0, 0, time.UTC)
	first := build(t, d, at)
	rng := rand.New(rand.NewPCG(5, 5))
	for i := range 60 {
		u := d.units[rng.IntN(len(d.units))]
		month := time.Month(10 + i%3) // October and November final, December provisional
		c := &schema.Contact{Header: schema.Header{ID: uuid.Must(uuid.NewV7()), UnitID: u.id, DeviceID: u.device, StaffID: u.staff,
			OccurredAt: time.Date(2026, month, 1+rng.IntN(19), 12, 0, 0, 0, time.UTC)}, Gender: schema.GenderWoman, AgeBand: schema.Age30to39,
			Setting: schema.SettingStreet, AreaCode: u.area}
		d.queue(u, c)
	}
	d.push(t)
	later := build(t, d, at)
	moved, kept := 0, 0
	for _, kind := range periodKinds {
		for _, by := range breakdowns {
			a, b := first.Report(kind, 2026, by), later.Report(kind, 2026, by)
			for i, row := range b.Rows {
				in := by
				if row.Group == stats.TotalGroup {
					in = stats.ByTotal
				}
				for _, ind := range []stats.Indicator{stats.Contacts, stats.UniqueClients} {
					was, is := a.Rows[i].Indicators[ind], row.Indicators[ind]
					if was.Value == nil || is.Value == nil {
						continue
					}
					n0 := stats.TrueCount(first, row.Period, in, row.Group, ind)
					n1 := stats.TrueCount(later, row.Period, in, row.Group, ind)
					if n0 < stats.DefaultK+2 || n1 < stats.DefaultK+2 {
						continue
					}
					if *is.Value-*was.Value != n1-n0 {
						t.Errorf("%s %s %s: %d of %d, then %d of %d: a new draw", row.Period, row.Group, ind, *was.Value, n0, *is.Value, n1)
					}
					if n1 != n0 {
						moved++
					} else {
						kept++
					}
				}
			}
		}
	}
	t.Logf("%d cells changed by their records' change, %d unchanged", moved, kept)
	if moved == 0 {
		t.Error("60 late contacts changed no cell")
	}
}

// TestPublisherServesStale: a request waits for the build of the current
// records at most the publisher's Wait; past it, it is answered with the
// last publication, marked stale, or ErrBuilding when there is none, while
// the build goes on in the background.
func TestPublisherServesStale(t *testing.T) {
	d := newDataset(t, 6, 300)
	ctx := context.Background()
	db := d.store.db
	pb := &stats.Publisher{Wait: time.Nanosecond}
	defer pb.Close()
	if _, err := pb.Publication(ctx, db, now, stats.DefaultK); !errors.Is(err, stats.ErrBuilding) {
		t.Fatalf("the first request without a wait: %v, want ErrBuilding", err)
	}
	pb.Wait = time.Minute
	first, err := pb.Publication(ctx, db, now, stats.DefaultK)
	if err != nil || first.Stale {
		t.Fatalf("the first publication: %v, stale %v", err, first != nil && first.Stale)
	}
	u := d.units[0]
	late := &schema.Contact{Header: schema.Header{ID: uuid.Must(uuid.NewV7()), UnitID: u.id, DeviceID: u.device, StaffID: u.staff,
		OccurredAt: time.Date(2026, 3, 3, 12, 0, 0, 0, time.UTC)}, Gender: schema.GenderMan, AgeBand: schema.Age30to39,
		Setting: schema.SettingStreet, AreaCode: u.area}
	d.queue(u, late)
	d.push(t)
	pb.Wait = time.Nanosecond
	stale, err := pb.Publication(ctx, db, now, stats.DefaultK)
	if err != nil || !stale.Stale || stale.Seq != first.Seq || !stale.Report(stats.Month, 2026, stats.ByTotal).Stale {
		t.Fatalf("after a change, without a wait: %v, want the first publication marked stale", err)
	}
	pb.Wait = time.Minute
	fresh, err := pb.Publication(ctx, db, now, stats.DefaultK)
	if err != nil || fresh.Stale || fresh.Seq == first.Seq {
		t.Fatalf("after the build: %v, stale %v, seq %d (first %d)", err, fresh != nil && fresh.Stale, fresh.Seq, first.Seq)
	}
	if n := stats.TrueCount(fresh, "2026-03", stats.ByTotal, stats.TotalGroup, stats.Contacts); n != stats.TrueCount(first, "2026-03", stats.ByTotal, stats.TotalGroup, stats.Contacts)+1 {
		t.Errorf("the new publication counts %d contacts in March", n)
	}
	// The publisher keeps the records' keys between builds and reads
	// those of the records changed since: the late contact's is the one
	// stored, and its publication is the one a build from scratch gives.
	var stored int64
	if err := db.Reader.QueryRow(`SELECT key FROM record_keys WHERE kind = ? AND id = ?`, string(schema.KindContact), late.ID.String()).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if kept, ok := stats.KeptKey(pb, schema.KindContact, late.ID); !ok || int64(kept) != stored {
		t.Errorf("the publisher keeps %d (%v) for the late contact, stored %d", kept, ok, stored)
	}
	whole := build(t, d, now)
	for _, by := range breakdowns {
		a, b := fresh.Report(stats.Week, 2026, by), whole.Report(stats.Week, 2026, by)
		for i := range a.Rows {
			for _, ind := range stats.Indicators {
				if !sameCell(a.Rows[i].Indicators[ind], b.Rows[i].Indicators[ind]) {
					t.Errorf("%s %s %s: %+v from the publisher, %+v from scratch", a.Rows[i].Period, a.Rows[i].Group, ind,
						a.Rows[i].Indicators[ind], b.Rows[i].Indicators[ind])
				}
			}
		}
	}
}

// TestWithheldStaysWithheld: a count cell the audit has withheld stays
// withheld in every later publication, whatever its records become. The
// audit is made to withhold as in TestAuditFindsTheManagersPin (March:
// unit A of one organisation with 30 contacts, unit B of another with
// one, their municipality read at its true count less 2); then A's
// contacts of March are voided, so that the withheld cells' counts fall
// below k, where a cell shown again would say so.
func TestWithheldStaysWithheld(t *testing.T) {
	d := newRegion(t, 12, 0, 2, []regionUnit{{0, "2380"}, {1, "2380"}, {1, "2321"}})
	var mine []*schema.Contact
	contact := func(u unitDef, at time.Time) *schema.Contact {
		c := &schema.Contact{Header: schema.Header{ID: uuid.Must(uuid.NewV7()), UnitID: u.id, DeviceID: u.device, StaffID: u.staff, OccurredAt: at},
			Gender: schema.GenderWoman, AgeBand: schema.Age25to29, Setting: schema.SettingStreet, AreaCode: u.area}
		d.queue(u, c)
		return c
	}
	for i := range 30 {
		mine = append(mine, contact(d.units[0], time.Date(2026, 3, 2+i%27, 12, 0, 0, 0, time.UTC)))
	}
	contact(d.units[1], time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC))
	d.push(t)
	pub := build(t, d, now)
	stats.Publish(pub, "2026-03", stats.ByUnit, d.units[1].id.String(), stats.Contacts, 5)
	stats.Publish(pub, "2026-03", stats.ByOrganisation, d.units[1].org.String(), stats.Contacts, 5)
	n := stats.TrueCount(pub, "2026-03", stats.ByMunicipality, "2380", stats.Contacts)
	stats.Publish(pub, "2026-03", stats.ByMunicipality, "2380", stats.Contacts, n-2)
	if audit := stats.Reaudit(pub); audit.Withheld == 0 {
		t.Fatalf("the audit withheld nothing: %+v", audit)
	}
	if err := stats.RecordWithheld(pub, d.store.db); err != nil {
		t.Fatal(err)
	}
	type cell struct {
		by            stats.Dim
		group, period string
	}
	var held []cell
	for _, by := range breakdowns {
		for _, kind := range periodKinds {
			for _, row := range pub.Report(kind, 2026, by).Rows {
				if row.Indicators[stats.Contacts].Withheld {
					in := by
					if row.Group == stats.TotalGroup {
						in = stats.ByTotal
					}
					held = append(held, cell{in, row.Group, row.Period})
				}
			}
		}
	}
	for _, c := range mine {
		c.Voided = true
		d.queue(d.units[0], c)
	}
	d.push(t)
	later := build(t, d, now)
	small := 0
	for _, c := range held {
		if stats.TrueCount(later, c.period, c.by, c.group, stats.Contacts) < stats.DefaultK {
			small++
		}
		kind := map[int]stats.Period{4: stats.Year, 7: stats.Month}[len(c.period)]
		if strings.Contains(c.period, "W") {
			kind = stats.Week
		} else if strings.Contains(c.period, "Q") {
			kind = stats.Quarter
		}
		for _, row := range later.Report(kind, 2026, c.by).Rows {
			if row.Group == c.group && row.Period == c.period && !row.Indicators[stats.Contacts].Withheld {
				t.Errorf("%s %s %s, withheld before, shown after A's contacts were voided: %+v", c.period, c.by, c.group, row.Indicators[stats.Contacts])
			}
		}
	}
	if small == 0 {
		t.Fatalf("no withheld cell fell below k: %v", held)
	}
	t.Logf("%d cells withheld, %d of them below k after the voids, all still withheld", len(held), small)
}

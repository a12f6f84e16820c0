package stats_test

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/brygga/brygga/schema"
	"github.com/brygga/brygga/server/stats"
)

// healthData makes a region with a few contacts and their tests,
// vaccinations, referrals and deaths, whose indicators are counted by
// hand in TestHealthIndicators, on a server of each of engines.
func healthData(t *testing.T, engines ...engine) *dataset {
	if len(engines) == 0 {
		engines = []engine{sqliteEngine}
	}
	d := newRegionOn(t, engines, 3, 0, 3, []regionUnit{{0, "2380"}, {1, "2309"}, {2, "2380"}})
	u0, u1, clinic := d.units[0], d.units[1], d.units[2]
	codeA, codeB := d.codes[0], d.codes[1]
	day := func(m time.Month, dd int) time.Time { return time.Date(2026, m, dd, 10, 0, 0, 0, time.UTC) }
	h := func(u unitDef, at time.Time) schema.Header {
		return schema.Header{ID: uuid.Must(uuid.NewV7()), UnitID: u.id, DeviceID: u.device, StaffID: u.staff, OccurredAt: at}
	}
	add := func(u unitDef, recs ...schema.Record) {
		for _, r := range recs {
			d.queue(u, r)
		}
	}
	contact := func(u unitDef, at time.Time, code schema.ClientCode, g schema.Gender) *schema.Contact {
		c := &schema.Contact{Header: h(u, at), ClientCode: code, Gender: g, AgeBand: schema.Age30to39, Setting: schema.SettingFixedSite, AreaCode: "2380"}
		add(u, c)
		return c
	}
	test := func(u unitDef, c *schema.Contact, kind schema.TestKind, outcome schema.TestOutcome, result schema.TestResult) *schema.InfectionTest {
		x := &schema.InfectionTest{Header: h(u, c.OccurredAt), ContactID: c.ID, ClientCode: c.ClientCode, Test: kind, Outcome: outcome, Result: result}
		add(u, x)
		return x
	}
	refer := func(u unitDef, c *schema.Contact, at time.Time, status schema.ReferralStatus) {
		r := &schema.Referral{Header: h(u, at), ClientCode: c.ClientCode, Service: schema.ServiceInfectionClinic, ToUnitID: clinic.id, Status: status}
		add(u, r)
	}
	add(u0, &schema.Client{Header: h(u0, day(1, 1)), Code: codeA, Gender: schema.GenderWoman, BirthYear: 1990})
	// A: tested at one contact in January; a referral made there reached
	// attended, which links both reactive tests.
	c1 := contact(u0, day(1, 5), codeA, schema.GenderWoman)
	test(u0, c1, schema.TestHIV, schema.TestRapid, schema.ResultReactive)
	hcv := test(u0, c1, schema.TestHCVAntibody, schema.TestSampleSent, schema.ResultPending)
	test(u0, c1, schema.TestHBsAg, schema.TestDeclined, "")
	r1 := &schema.Referral{Header: h(u0, c1.OccurredAt), ContactID: c1.ID, Service: schema.ServiceInfectionClinic, ToUnitID: clinic.id, Status: schema.StatusAttended}
	add(u0, r1)
	// B: reactive in January; a referral of the code 3 weeks later was
	// only received, one 5 months later attended: not linked.
	c2 := contact(u1, day(1, 10), codeB, schema.GenderMan)
	test(u1, c2, schema.TestHIV, schema.TestSampleSent, schema.ResultReactive)
	refer(u1, c2, day(2, 1), schema.StatusReceived)
	refer(u1, c2, day(6, 10), schema.StatusAttended)
	// An anonymous contact whose test is non-reactive, and a voided
	// contact whose test counts nowhere.
	c3 := contact(u0, day(1, 20), "", schema.GenderNotStated)
	test(u0, c3, schema.TestHIV, schema.TestRapid, schema.ResultNonReactive)
	c4 := contact(u0, day(1, 21), "", schema.GenderNotStated)
	test(u0, c4, schema.TestSyphilis, schema.TestRapid, schema.ResultReactive)
	// Vaccinations: the third hepatitis B dose completes a series.
	add(u0, &schema.Vaccination{Header: h(u0, c1.OccurredAt), ContactID: c1.ID, Vaccine: schema.VaccineHepB, Dose: 1},
		&schema.Vaccination{Header: h(u0, c1.OccurredAt), ContactID: c1.ID, Vaccine: schema.VaccineHepA, Dose: 1})
	add(u1, &schema.Vaccination{Header: h(u1, c2.OccurredAt), ContactID: c2.ID, Vaccine: schema.VaccineHepAB, Dose: 3})
	// A's death reported by two units counts once, by the first report;
	// B's only report was voided.
	add(u0, &schema.Death{Header: h(u0, day(3, 3)), ClientCode: codeA, Source: schema.DeathStaffTold})
	add(u1, &schema.Death{Header: h(u1, day(3, 5)), ClientCode: codeA, Source: schema.DeathRegistry})
	deathB := &schema.Death{Header: h(u1, day(4, 1)), ClientCode: codeB, Source: schema.DeathOther}
	add(u1, deathB)
	// A's 12 months before: the January contact with naloxone and the
	// referral made there. C died in May with no contact at all.
	add(u0, &schema.NaloxoneHandout{Header: h(u0, c1.OccurredAt), ContactID: c1.ID, Doses: 2, Reason: schema.NaloxoneFirstKit})
	add(u1, &schema.Death{Header: h(u1, day(5, 20)), ClientCode: d.codes[2], Source: schema.DeathRegistry})
	d.push(t)
	// Later: the laboratory's answer, the voids.
	hcv.Result = schema.ResultReactive
	d.queue(u0, hcv, "result")
	c4.Voided = true
	d.queue(u0, c4, "voided")
	deathB.Voided = true
	d.queue(u1, deathB, "voided")
	d.push(t)
	return d
}

// TestHealthIndicators counts the tests, vaccinations and deaths of
// healthData, from the rollups' zone and another, by month and by unit,
// on each engine.
func TestHealthIndicators(t *testing.T) {
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) { testHealthIndicators(t, healthData(t, e)) })
	}
}

func testHealthIndicators(t *testing.T, d *dataset) {
	jan, mar := "2026-01", "2026-03"
	want := map[stats.Key]int64{
		{jan, "", stats.TestsOffered(schema.TestHIV)}:                      3,
		{jan, "", stats.TestsPerformed(schema.TestHIV)}:                    3,
		{jan, "", stats.TestsReactive(schema.TestHIV)}:                     2,
		{jan, "", stats.TestsLinked(schema.TestHIV)}:                       1,
		{jan, "", stats.TestsOffered(schema.TestHCVAntibody)}:              1,
		{jan, "", stats.TestsReactive(schema.TestHCVAntibody)}:             1,
		{jan, "", stats.TestsLinked(schema.TestHCVAntibody)}:               1,
		{jan, "", stats.TestsOffered(schema.TestHBsAg)}:                    1,
		{jan, "", stats.TestsDeclined(schema.TestHBsAg)}:                   1,
		{jan, "", stats.TestsOffered(schema.TestSyphilis)}:                 0,
		{jan, "", stats.VaccineDoses}:                                      3,
		{jan, "", stats.VaccineDosesOf(schema.VaccineHepAB)}:               1,
		{jan, "", stats.HepBSeriesCompleted}:                               1,
		{mar, "", stats.DeathsKnown}:                                       1,
		{"2026-04", "", stats.DeathsKnown}:                                 0,
		{mar, "", stats.DeathsLastContact("31_90")}:                        1,
		{mar, "", stats.DeathsLastContact("none")}:                         0,
		{mar, "", stats.DeathsPriorContacts}:                               1,
		{mar, "", stats.DeathsPriorNaloxoneDoses}:                          2,
		{mar, "", stats.DeathsPriorReferrals}:                              1,
		{mar, "", stats.DeathsPriorReferralsAttended}:                      1,
		{"2026-05", "", stats.DeathsKnown}:                                 1,
		{"2026-05", "", stats.DeathsLastContact("none")}:                   1,
		{"2026-05", "", stats.DeathsPriorContacts}:                         0,
		{jan, d.units[1].id.String(), stats.TestsReactive(schema.TestHIV)}: 1,
		{jan, d.units[1].id.String(), stats.TestsLinked(schema.TestHIV)}:   0,
		{mar, d.units[0].id.String(), stats.DeathsKnown}:                   1,
		{mar, d.units[1].id.String(), stats.DeathsKnown}:                   0,
	}
	for _, loc := range []*time.Location{stockholm, time.UTC} {
		for _, by := range []stats.Dim{stats.ByTotal, stats.ByUnit} {
			r := d.compute(t, stats.Query{From: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC),
				Period: stats.Month, By: by, Location: loc})
			for k, v := range want {
				if (k.Group != "") != (by == stats.ByUnit) {
					continue
				}
				if got := r.Value(k.Period, k.Group, k.Indicator); got != v {
					t.Errorf("%s by %q: %s %s %s = %d, want %d", loc, by, k.Period, k.Group, k.Indicator, got, v)
				}
			}
		}
	}
	r := d.compute(t, stats.Query{From: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC),
		Period: stats.Year, By: stats.ByAgeBand, Location: stockholm})
	if got := r.Value("2026", string(schema.Age30to39), stats.DeathsKnown); got != 1 {
		t.Errorf("deaths of 30-39 year olds (born 1990): %d, want 1", got)
	}
}

// TestHealthPublication checks that the authority's publication holds the
// new indicators' true counts, publishes none of them from 1 to k-1, and
// that its audit leaves nothing pinned among them.
func TestHealthPublication(t *testing.T) {
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) { testHealthPublication(t, healthData(t, e)) })
	}
}

func testHealthPublication(t *testing.T, d *dataset) {
	p := build(t, d, now)
	if got := stats.TrueCount(p, "2026-01", stats.ByTotal, "", stats.TestsOffered(schema.TestHIV)); got != 3 {
		t.Errorf("true count of HIV tests offered in January: %d, want 3", got)
	}
	if got := stats.TrueCount(p, "2026", stats.ByTotal, "", stats.DeathsKnown); got != 2 {
		t.Errorf("true count of deaths in 2026: %d, want 2", got)
	}
	if got := stats.TrueCount(p, "2026", stats.ByTotal, "", stats.DeathsPriorNaloxoneDoses); got != 2 {
		t.Errorf("true sum of naloxone doses before the deaths of 2026: %d, want 2", got)
	}
	rep := p.Report(stats.Month, 2026, stats.ByUnit)
	seen := 0
	for _, row := range rep.Rows {
		for _, ind := range stats.Indicators {
			c, ok := row.Indicators[ind]
			if !ok {
				t.Fatalf("%s %s: %s missing", row.Period, row.Group, ind)
			}
			if counted(ind) && c.Value != nil && *c.Value > 0 && *c.Value < p.K {
				t.Errorf("%s %s %s published %d", row.Period, row.Group, ind, *c.Value)
			}
			if !counted(ind) && row.Group == stats.TotalGroup && c.Value != nil {
				t.Errorf("%s %s: a sum of fewer than k deaths published: %d", row.Period, ind, *c.Value)
			}
			seen++
		}
	}
	if seen == 0 {
		t.Fatal("no rows")
	}
	if p.Audit.Unresolved != 0 || p.Audit.Unconverged != 0 {
		t.Errorf("audit: %+v", p.Audit)
	}
	if n := stats.Repinned(p); n != 0 {
		t.Errorf("the audit leaves %d counts pinned", n)
	}
}

// BenchmarkPublicationHealth builds the publication of BenchmarkPublication's
// region with a test at a quarter of the contacts (a tenth of them
// reactive), a vaccine dose at an eighth, and six deaths: the audit then
// reasons over the families of tests, vaccination and deaths too.
func BenchmarkPublicationHealth(b *testing.B) {
	var units []regionUnit
	for i := range 40 {
		units = append(units, regionUnit{i % 12, fmt.Sprintf("23%02d", 1+i%8)})
	}
	d := newRegion(b, 11, benchEvents(), 12, units)
	rng := rand.New(rand.NewPCG(11, 12))
	tests := schema.TestKindEnum.Codes()
	for _, c := range d.contactList {
		u := d.unit(c.UnitID)
		h := func() schema.Header {
			return schema.Header{ID: uuid.Must(uuid.NewV7()), UnitID: u.id, DeviceID: u.device, StaffID: u.staff, OccurredAt: c.OccurredAt}
		}
		if rng.IntN(4) == 0 {
			result := schema.ResultNonReactive
			if rng.IntN(10) == 0 {
				result = schema.ResultReactive
			}
			d.queue(u, &schema.InfectionTest{Header: h(), ContactID: c.ID, Test: schema.TestKind(tests[rng.IntN(len(tests))]),
				Outcome: schema.TestRapid, Result: result})
		}
		if rng.IntN(8) == 0 {
			d.queue(u, &schema.Vaccination{Header: h(), ContactID: c.ID, Vaccine: schema.VaccineHepB, Dose: 1 + rng.IntN(3)})
		}
	}
	for i, code := range d.codes[:6] {
		u := d.units[i]
		d.queue(u, &schema.Death{Header: schema.Header{ID: uuid.Must(uuid.NewV7()), UnitID: u.id, DeviceID: u.device, StaffID: u.staff,
			OccurredAt: time.Date(2026, time.Month(3+i), 10, 0, 0, 0, 0, time.UTC)}, ClientCode: code, Source: schema.DeathRegistry})
	}
	d.push(b)
	var pub *stats.Publication
	for b.Loop() {
		pub = build(b, d, now)
	}
	b.ReportMetric(float64(pub.Audit.Took.Milliseconds()), "audit-ms")
	b.ReportMetric(float64(pub.Audit.Withheld), "withheld")
	b.ReportMetric(float64(pub.Audit.Unresolved), "unresolved")
}

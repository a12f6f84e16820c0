package server_test

import (
	"bytes"
	"crypto/rand"
	"encoding/csv"
	"encoding/json"
	"fmt"
	mrand "math/rand/v2"
	"strconv"
	"testing"

	"github.com/google/uuid"

	"github.com/brygga/brygga/schema"
	"github.com/brygga/brygga/server/stats"
	"github.com/brygga/brygga/sync/wire"
)

// pushHealth records, at unit i, contacts of n clients with codes, each
// with an HIV and a hepatitis C test (some reactive), a hepatitis B dose,
// naloxone and a referral, and the deaths of the first dead of them.
func (r *reportRegion) pushHealth(t *testing.T, rng *mrand.Rand, i, n, dead int) {
	t.Helper()
	pushRecords(t, r.srv, r.base, r.units[i].ID, r.staff[i].ID, func(uuid.UUID) []schema.Record {
		var recs []schema.Record
		for j := range n {
			code, err := schema.NewClientCode(rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			when := r.recordsAt(rng)
			h := func() schema.Header { return schema.Header{ID: uuid.Must(uuid.NewV7()), OccurredAt: when} }
			c := &schema.Contact{Header: h(), ClientCode: code, Gender: schema.GenderMan, AgeBand: schema.Age30to39,
				Setting: schema.SettingFixedSite, AreaCode: r.units[i].AreaCode}
			result := schema.ResultNonReactive
			if rng.IntN(3) == 0 {
				result = schema.ResultReactive
			}
			recs = append(recs, c,
				&schema.InfectionTest{Header: h(), ContactID: c.ID, Test: schema.TestHIV, Outcome: schema.TestRapid, Result: result},
				&schema.InfectionTest{Header: h(), ContactID: c.ID, Test: schema.TestHCVAntibody, Outcome: schema.TestSampleSent, Result: schema.ResultPending},
				&schema.Vaccination{Header: h(), ContactID: c.ID, Vaccine: schema.VaccineHepB, Dose: 1 + rng.IntN(3)},
				&schema.NaloxoneHandout{Header: h(), ContactID: c.ID, Doses: 2, Reason: schema.NaloxoneFirstKit},
				&schema.Referral{Header: h(), ContactID: c.ID, Service: schema.ServiceAddictionClinic, ToUnitID: r.units[(i+1)%len(r.units)].ID, Status: schema.StatusSent})
			if j < dead { // died the day of the contact
				recs = append(recs, &schema.Death{Header: h(), ClientCode: code, Source: schema.DeathStaffTold})
			}
		}
		return recs
	})
}

// TestIVOReport asks for the IVO report as the authority, in JSON and
// CSV: every item of the year is the cell the indicators report publishes,
// no count reads 1 to k-1, the items it cannot answer are listed, and what
// is not a year of the server's region is refused.
func TestIVOReport(t *testing.T) {
	r := startReportRegion(t)
	rng := mrand.New(mrand.NewPCG(5, 6))
	r.push(t, rng, 0, 80, r.recordsAt)
	r.pushHealth(t, rng, 2, 40, 9)
	st, body := r.get(t, fmt.Sprintf("/v1/reports/ivo?year=%d", r.thisYear))
	if st != 200 {
		t.Fatalf("ivo: %d %s", st, body)
	}
	var rep stats.IVOReport
	if err := json.Unmarshal(body, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Region != "23" || rep.Year != r.thisYear || rep.K != 5 {
		t.Errorf("report of %s %d k %d", rep.Region, rep.Year, rep.K)
	}
	// The same cells as the indicators report of the year.
	tables := map[string]stats.Report{}
	for _, by := range []string{"total", "gender", "age_band"} {
		st, body := r.get(t, fmt.Sprintf("/v1/reports/indicators?period=year&year=%d&by=%s", r.thisYear, by))
		var tab stats.Report
		if st != 200 || json.Unmarshal(body, &tab) != nil {
			t.Fatalf("indicators by %s: %d", by, st)
		}
		tables[by] = tab
	}
	items := map[string]int{}
	for _, it := range rep.Items {
		items[it.Item]++
		var cell *stats.Cell
		for _, row := range tables[it.By].Rows {
			if row.Group == it.Group {
				c := row.Indicators[it.Ind]
				cell = &c
			}
		}
		if cell == nil {
			t.Fatalf("%s %s %s: no such cell in the indicators report", it.Item, it.By, it.Group)
		}
		if (cell.Value == nil) != (it.Value == nil) || cell.Value != nil && *cell.Value != *it.Value || cell.Withheld != it.Withheld {
			t.Errorf("%s %s %s %s reads %v, the indicators report %v", it.Item, it.Ind, it.By, it.Group, it.Cell, *cell)
		}
		if it.Value != nil && *it.Value > 0 && *it.Value < rep.K {
			t.Errorf("%s %s published %d", it.Item, it.Ind, *it.Value)
		}
	}
	for _, item := range []string{"participants", "participants_by_gender", "participants_by_age", "visits", "exchange", "tests", "infections", "mortality", "care"} {
		if items[item] == 0 {
			t.Errorf("no figures of %s", item)
		}
	}
	gaps := map[string]bool{}
	for _, g := range rep.NotAnswered {
		gaps[g.Item] = g.Reason != ""
	}
	for _, g := range []string{"detoxification", "care_received", "resources", "staff", "cooperation", "infections"} {
		if !gaps[g] {
			t.Errorf("%s is not listed among what the report cannot answer", g)
		}
	}
	var tests int64
	for _, it := range rep.Items {
		if it.Ind == stats.TestsPerformed(schema.TestHIV) && it.Value != nil {
			tests = *it.Value
		}
	}
	if tests < 38 || tests > 42 {
		t.Errorf("HIV tests performed read %d, 40 were", tests)
	}

	st, body = r.get(t, fmt.Sprintf("/v1/reports/ivo?year=%d&region=23&format=csv", r.thisYear))
	lines, err := csv.NewReader(bytes.NewReader(body)).ReadAll()
	if st != 200 || err != nil {
		t.Fatalf("csv: %d %v", st, err)
	}
	if got, want := len(lines), 1+len(rep.Items)+len(rep.NotAnswered); got != want {
		t.Errorf("csv has %d lines, want %d", got, want)
	}
	for _, c := range []struct{ query, field string }{
		{"region=01", "region"}, {"period=month", "period"}, {"from=2026-01-01", "from"},
		{"year=" + strconv.Itoa(r.thisYear+1), "year"}, {"format=xml", "format"},
	} {
		st, body := r.get(t, "/v1/reports/ivo?"+c.query)
		var e struct{ Error *wire.Error }
		json.Unmarshal(body, &e)
		if st != 400 || e.Error == nil || e.Error.Code != wire.CodeMalformed || e.Error.Field != c.field {
			t.Errorf("%s: %d %s, want 400 malformed_request on %s", c.query, st, body, c.field)
		}
	}
}

// TestDeathFollowUp asks for the drug-death follow-up: the deaths and
// their bands read as the indicators report's cells, and a sum of fewer
// than k deaths is withheld.
func TestDeathFollowUp(t *testing.T) {
	r := startReportRegion(t)
	rng := mrand.New(mrand.NewPCG(7, 8))
	r.pushHealth(t, rng, 2, 12, 3)
	st, body := r.get(t, fmt.Sprintf("/v1/reports/deaths?period=year&year=%d", r.thisYear))
	if st != 200 {
		t.Fatalf("deaths: %d %s", st, body)
	}
	var f stats.FollowUp
	if err := json.Unmarshal(body, &f); err != nil {
		t.Fatal(err)
	}
	if len(f.Rows) != 1 || f.WindowMonths != 12 {
		t.Fatalf("follow-up: %s", body)
	}
	row := f.Rows[0]
	for _, ind := range stats.FollowUpIndicators {
		c, ok := row.Indicators[ind]
		if !ok {
			t.Errorf("%s missing", ind)
		}
		if c.Value != nil && *c.Value > 0 && *c.Value < f.K {
			t.Errorf("%s published %d", ind, *c.Value)
		}
	}
	// Three deaths: each sum has fewer than k contributions.
	for _, ind := range []stats.Indicator{stats.DeathsPriorContacts, stats.DeathsPriorNaloxoneDoses, stats.DeathsPriorReferrals} {
		if c := row.Indicators[ind]; !c.Withheld || c.Value != nil {
			t.Errorf("%s of three deaths: %+v, want withheld", ind, c)
		}
	}
	_, ind := r.get(t, fmt.Sprintf("/v1/reports/indicators?period=year&year=%d", r.thisYear))
	var tab stats.Report
	json.Unmarshal(ind, &tab)
	for _, i := range []stats.Indicator{stats.DeathsKnown, stats.DeathsLastContact("0_7")} {
		a, b := row.Indicators[i], tab.Rows[0].Indicators[i]
		if (a.Value == nil) != (b.Value == nil) || a.Value != nil && *a.Value != *b.Value {
			t.Errorf("%s reads %v in the follow-up and %v in the indicators report", i, a, b)
		}
	}
	st, body = r.get(t, fmt.Sprintf("/v1/reports/deaths?period=month&year=%d&by=gender&format=csv", r.thisYear))
	if lines, err := csv.NewReader(bytes.NewReader(body)).ReadAll(); st != 200 || err != nil || len(lines) < 2 || lines[0][5] != "indicator" {
		t.Errorf("csv: %d %v %d lines", st, err, len(lines))
	}
}

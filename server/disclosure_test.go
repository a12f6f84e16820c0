package server_test

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"io"
	"net/url"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// The method as docs/REPORTS.md publishes it: the perturbation table of
// counts, for threshold k. A reader inverts it.
const disclosureK = 5

// outcomes returns the published values a true count n can read as: for
// each shift d from -2 to +2, n + d where that is at least k, 0 where it
// is at most 2, and 0 or k in between.
func outcomes(n, k int64) []int64 {
	if n == 0 {
		return []int64{0}
	}
	var out []int64
	for d := int64(-2); d <= 2; d++ {
		switch c := n + d; {
		case c <= 2:
			out = append(out, 0)
		case c < k:
			out = append(out, 0, k)
		default:
			out = append(out, c)
		}
	}
	return out
}

// preimage returns the least and greatest true count that reads as p.
func preimage(p, k int64) (float64, float64) {
	lo, hi := int64(-1), int64(-1)
	for n := int64(0); n <= p+k+3; n++ {
		for _, o := range outcomes(n, k) {
			if o == p {
				if lo < 0 {
					lo = n
				}
				hi = n
			}
		}
	}
	return float64(lo), float64(hi)
}

// TestPreimage: the attacker's inversion of the published table is the
// one docs/REPORTS.md prints for k = 5.
func TestPreimage(t *testing.T) {
	want := map[int64][2]float64{0: {0, 6}, 5: {1, 7}, 6: {4, 8}, 7: {5, 9}, 8: {6, 10}, 9: {7, 11}, 40: {38, 42}}
	for p, w := range want {
		if lo, hi := preimage(p, 5); lo != w[0] || hi != w[1] {
			t.Errorf("preimage(%d) = %g..%g, want %g..%g", p, lo, hi, w[0], w[1])
		}
	}
	if lo, _ := preimage(3, 5); lo >= 0 {
		t.Errorf("3 has a preimage: a count from 1 to k-1 is never published")
	}
}

func fetchUnits(t *testing.T, r *attackRegion, token string) []attackUnit {
	t.Helper()
	var out struct {
		Units []struct {
			ID       string `json:"id"`
			OrgID    string `json:"org_id"`
			AreaCode string `json:"area_code"`
		} `json:"units"`
	}
	if st := attackGet(t, r.base, "/v1/units", token, &out); st != 200 {
		t.Fatalf("units: %d", st)
	}
	var us []attackUnit
	for _, u := range out.Units {
		us = append(us, attackUnit{u.ID, u.OrgID, u.AreaCode})
	}
	return us
}

// attackFigure is one published cell as read from a report.
type attackFigure struct {
	period, by, group, indicator string
	value                        *int64
	withheld                     bool
}

// pullReports reads every report the API allows for the years given:
// every period kind, breakdown and format.
func pullReports(t *testing.T, r *attackRegion, years []int) (figs []attackFigure, requests int) {
	t.Helper()
	for _, year := range years {
		for _, period := range []string{"week", "month", "quarter", "year"} {
			for _, by := range []string{"total", "gender", "age_band", "unit", "municipality", "organisation"} {
				q := url.Values{"year": {strconv.Itoa(year)}, "period": {period}, "by": {by}}
				var rep struct {
					Rows []struct {
						Period     string `json:"period"`
						Group      string `json:"group"`
						Indicators map[string]struct {
							Value    *int64 `json:"value"`
							Withheld bool   `json:"withheld"`
						} `json:"indicators"`
					} `json:"rows"`
				}
				if st := attackGet(t, r.base, "/v1/reports/indicators?"+q.Encode(), r.authority, &rep); st != 200 {
					t.Fatalf("report %v: status %d", q, st)
				}
				requests++
				for _, row := range rep.Rows {
					for ind, c := range row.Indicators {
						figs = append(figs, attackFigure{row.Period, by, row.Group, ind, c.Value, c.Withheld})
					}
				}
				q.Set("format", "csv")
				var body []byte
				if st := attackGet(t, r.base, "/v1/reports/indicators?"+q.Encode(), r.authority, &body); st != 200 {
					t.Fatalf("report %v: status %d", q, st)
				}
				requests++
				cr := csv.NewReader(bytes.NewReader(body))
				head, err := cr.Read()
				if err != nil {
					t.Fatal(err)
				}
				col := map[string]int{}
				for i, h := range head {
					col[h] = i
				}
				for {
					rec, err := cr.Read()
					if err == io.EOF {
						break
					}
					if err != nil {
						t.Fatal(err)
					}
					f := attackFigure{period: rec[col["period"]], by: by, group: rec[col["group"]], indicator: rec[col["indicator"]],
						withheld: rec[col["withheld"]] == "true"}
					if v := rec[col["value"]]; v != "" && !f.withheld {
						n, err := strconv.ParseInt(v, 10, 64)
						if err != nil {
							continue // a rate, not a count
						}
						f.value = &n
					}
					figs = append(figs, f)
				}
			}
		}
	}
	return figs, requests
}

// ownFigures reads a manager's exact statistics of their organisation,
// fragment by fragment: each month by ISO week, which cuts it into its
// fragments. A group or period the answer does not list had nothing.
func ownFigures(t *testing.T, r *attackRegion, m *attackModel, own string, inds []string, ks map[string]*knowledge) (requests int) {
	t.Helper()
	first, end := m.frags[0][0], m.frags[len(m.frags)-1][1]
	keep := func(org string) bool { return org == own }
	for d := first; d < end; {
		t0 := dayDate(d)
		next := dayNumber(t0.Year(), t0.Month()+1, 1)
		next = min(next, end)
		for _, by := range []string{"unit", "gender", "age_band"} {
			q := url.Values{"from": {t0.Format("2006-01-02")}, "to": {dayDate(next - 1).Format("2006-01-02")}, "period": {"week"}, "by": {by}}
			var st struct {
				Rows []struct {
					Period     string           `json:"period"`
					Group      string           `json:"group"`
					Indicators map[string]int64 `json:"indicators"`
				} `json:"rows"`
			}
			if code := attackGet(t, r.base, "/v1/stats?"+q.Encode(), r.manager, &st); code != 200 {
				t.Fatalf("stats %v: %d", q, code)
			}
			requests++
			seen := map[[2]string]map[string]int64{}
			for _, row := range st.Rows {
				seen[[2]string{row.Period, row.Group}] = row.Indicators
			}
			groups := map[string][]string{"gender": m.genders, "age_band": m.ages}
			for _, u := range m.units {
				if u.org == own {
					groups["unit"] = append(groups["unit"], u.id)
				}
			}
			for w := d; w < next; {
				fr := m.frags[m.fragOf[w]]
				y, wk := dayDate(w).ISOWeek()
				key := fmt.Sprintf("%d-W%02d", y, wk)
				for _, g := range groups[by] {
					vars, ok := m.cell(fr[0], fr[1], by, g, keep)
					if !ok {
						t.Fatalf("own cell %s %s", key, g)
					}
					for _, ind := range inds {
						v := float64(seen[[2]string{key, g}][ind])
						ks[ind].sum(vars, v, v)
					}
				}
				w = fr[1]
			}
		}
		d = next
	}
	return requests
}

// attackDomain returns the days of every period the reports of years
// cover: from the Monday of the first ISO week of the first year to the
// end of the last year or of its last ISO week, whichever is later.
func attackDomain(years []int) (int, int) {
	first, _, _ := periodDays(fmt.Sprintf("%d-W01", years[0]))
	first = min(first, dayNumber(years[0], 1, 1))
	last := years[len(years)-1]
	end := dayNumber(last+1, 1, 1)
	_, wend, _ := periodDays(fmt.Sprintf("%d-W%02d", last, lastISOWeek(last)))
	return first, max(end, wend)
}

func lastISOWeek(y int) int {
	_, w := time.Date(y, 12, 28, 0, 0, 0, 0, time.UTC).ISOWeek()
	return w
}

// TestDisclosureAttack pulls every report the authority may read, as the
// authority and as a manager who also knows their organisation's exact
// figures, and solves for the true counts behind them. It fails if any
// true count from 1 to k-1 of a cell or fragment is pinned to one value,
// or if any bound excludes the truth. The widths reached are logged and
// written to disclosure-attack.txt in the test's directory.
func TestDisclosureAttack(t *testing.T) {
	r := newAttackRegion(t, 1, testing.Short())
	units := fetchUnits(t, r, r.authority)
	var years []int
	for y := dayDate(r.first).Year(); y <= r.now.Year(); y++ {
		years = append(years, y)
	}
	first, end := attackDomain(years)
	m := newAttackModel(gridFragments(first, end), units)
	figs, requests := pullReports(t, r, years)
	// Counts of every kind: contacts, naloxone handouts, referrals and
	// the referrals to each service (under -short, contacts and a rare
	// service).
	inds := []string{"contacts", "referrals.youth_clinic"}
	if !testing.Short() {
		inds = append(inds, "referrals", "naloxone_handouts", "referrals.addiction_clinic", "referrals.social_services", "referrals.infection_clinic",
			"referrals.opioid_substitution", "referrals.housing", "referrals.dental", "referrals.psychiatry")
	}
	dir := t.TempDir()
	for _, reader := range []string{"authority", "manager"} {
		ks := map[string]*knowledge{}
		for _, ind := range inds {
			ks[ind] = newKnowledge(m.n)
			m.structure(ks[ind])
		}
		all := func(string) bool { return true }
		hidden := all
		n := requests
		if reader == "manager" {
			own := r.orgs[0].String()
			n += ownFigures(t, r, m, own, inds, ks)
			hidden = func(org string) bool { return org != own }
		}
		for _, f := range figs {
			k, ok := ks[f.indicator]
			if !ok {
				continue
			}
			a, b, err := periodDays(f.period)
			if err != nil {
				t.Fatal(err)
			}
			vars, ok := m.cell(a, b, f.by, f.group, all)
			if !ok {
				t.Fatalf("no cell for %+v", f)
			}
			switch {
			case f.withheld:
				k.sum(vars, 1, solverInf) // at least k, or at least 1 where withheld for a manager's steps
			case f.value != nil:
				lo, hi := preimage(*f.value, disclosureK)
				if lo < 0 {
					t.Errorf("%s %s %s=%s: %d is not a value the table publishes", f.period, f.indicator, f.by, f.group, *f.value)
					continue
				}
				k.sum(vars, lo, hi)
			}
		}
		for _, ind := range inds {
			x := m.truth(r, ind)
			k := ks[ind]
			checkTruth(t, k, x, reader+" "+ind)
			if err := k.solve(4); err != nil {
				t.Errorf("%s %s: %v", reader, ind, err)
				continue
			}
			o := judge(t, k, m.targets(first, end, x, hidden), disclosureK)
			writeAttackReport(t, dir, fmt.Sprintf("%s, %s (%d requests)", reader, ind, n), o)
			for _, w := range o.wrong {
				t.Errorf("%s %s: bound excludes the truth: %s", reader, ind, w)
			}
			for _, p := range o.pinned {
				t.Errorf("%s %s: pinned a small count: %s", reader, ind, p)
			}
		}
	}
	t.Logf("written to %s", filepath.Join(dir, "disclosure-attack.txt"))
}

package server_test

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/brygga/brygga/schema"
)

// The disclosure attack: a reader of the region's aggregate reports, who
// knows only what the API answers and the published method, pulls every
// report the API allows and solves for the true counts behind them. It
// must not learn any count from 1 to k-1 exactly.

// attackUnit is a unit as GET /v1/units shows it.
type attackUnit struct {
	id, org, area string
}

// attackModel is the attacker's unknowns: the true counts of one indicator in
// the finest cells the published tables can be cut into. Time is cut into
// fragments, every published period a union of them. In each fragment,
// each unit has a count; and each organisation a count by gender and one
// by age band, which add up to the count of its units. Municipalities and
// organisations are sums of units; the region's genders and age bands are
// sums over the organisations. (The organisations' genders and age bands
// are unknowns of their own so that a manager's exact figures of their
// own organisation have somewhere to go.)
type attackModel struct {
	frags   [][2]int // days [first, end) of each fragment
	fragOf  map[int]int
	units   []attackUnit
	orgs    []string
	genders []string
	ages    []string
	n       int
}

func newAttackModel(frags [][2]int, units []attackUnit) *attackModel {
	m := &attackModel{frags: frags, fragOf: map[int]int{}, units: units,
		genders: schema.GenderEnum.Codes(), ages: schema.AgeBandEnum.Codes()}
	for f, fr := range frags {
		for d := fr[0]; d < fr[1]; d++ {
			m.fragOf[d] = f
		}
	}
	for _, u := range units {
		if !slices.Contains(m.orgs, u.org) {
			m.orgs = append(m.orgs, u.org)
		}
	}
	m.n = len(frags) * (len(units) + len(m.orgs)*(len(m.genders)+len(m.ages)))
	return m
}

func (m *attackModel) stride() int { return len(m.units) + len(m.orgs)*(len(m.genders)+len(m.ages)) }

func (m *attackModel) unitVar(f, u int) int { return f*m.stride() + u }
func (m *attackModel) genderVar(f, o, g int) int {
	return f*m.stride() + len(m.units) + o*len(m.genders) + g
}
func (m *attackModel) ageVar(f, o, a int) int {
	return f*m.stride() + len(m.units) + len(m.orgs)*len(m.genders) + o*len(m.ages) + a
}

// structure adds what holds whatever is published: in every fragment and
// organisation, its units, its genders and its age bands add up alike.
func (m *attackModel) structure(k *knowledge) {
	for f := range m.frags {
		for o, org := range m.orgs {
			units := map[int]float64{}
			for u, unit := range m.units {
				if unit.org == org {
					units[m.unitVar(f, u)] = 1
				}
			}
			terms := cloneTerms(units)
			for g := range m.genders {
				terms[m.genderVar(f, o, g)] = -1
			}
			k.linear(terms, 0, 0)
			terms = cloneTerms(units)
			for a := range m.ages {
				terms[m.ageVar(f, o, a)] = -1
			}
			k.linear(terms, 0, 0)
		}
	}
}

func cloneTerms(m map[int]float64) map[int]float64 {
	out := make(map[int]float64, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// cell returns the unknowns of a group of breakdown by over the days
// [first, end), restricted to units (and organisations) keep allows; ok
// is false if the days do not fall on whole fragments or the group is
// unknown.
func (m *attackModel) cell(first, end int, by, group string, keep func(org string) bool) ([]int, bool) {
	if group == "total" {
		by = "total" // the period's total row of any breakdown
	}
	var frags []int
	for d := first; d < end; d++ {
		f, ok := m.fragOf[d]
		if !ok {
			continue // no records can fall outside the fragments
		}
		if m.frags[f][0] < first || m.frags[f][1] > end {
			return nil, false
		}
		if len(frags) == 0 || frags[len(frags)-1] != f {
			frags = append(frags, f)
		}
	}
	var vars []int
	found := false
	for _, f := range frags {
		switch by {
		case "", "total", "unit", "municipality", "organisation":
			for u, unit := range m.units {
				if !keep(unit.org) {
					continue
				}
				if by == "" || by == "total" || by == "unit" && unit.id == group || by == "municipality" && unit.area == group ||
					by == "organisation" && unit.org == group {
					vars = append(vars, m.unitVar(f, u))
					found = true
				}
			}
		case "gender", "age_band":
			codes := m.genders
			if by == "age_band" {
				codes = m.ages
			}
			i := slices.Index(codes, group)
			if i < 0 {
				return nil, false
			}
			found = true
			for o, org := range m.orgs {
				if !keep(org) {
					continue
				}
				if by == "gender" {
					vars = append(vars, m.genderVar(f, o, i))
				} else {
					vars = append(vars, m.ageVar(f, o, i))
				}
			}
		default:
			return nil, false
		}
	}
	if len(frags) == 0 {
		return nil, true
	}
	return vars, found || by == "unit" || by == "municipality" || by == "organisation"
}

// truth returns the true value of every unknown for indicator, from the
// records the test made.
func (m *attackModel) truth(r *attackRegion, indicator string) []float64 {
	x := make([]float64, m.n)
	orgIndex := map[string]int{}
	for o, org := range m.orgs {
		orgIndex[org] = o
	}
	for _, f := range r.facts {
		if f.indicator != indicator {
			continue
		}
		fr, ok := m.fragOf[f.day]
		if !ok {
			continue // a day the attack leaves out
		}
		u := r.units[f.unit]
		ui := slices.IndexFunc(m.units, func(a attackUnit) bool { return a.id == u.id.String() })
		o := orgIndex[u.org.String()]
		x[m.unitVar(fr, ui)]++
		x[m.genderVar(fr, o, slices.Index(m.genders, f.gender))]++
		x[m.ageVar(fr, o, slices.Index(m.ages, f.age))]++
	}
	return x
}

// periodDays returns the days [first, end) of a period key as the API
// writes them: 2026-W11, 2026-03, 2026-Q1, 2026.
func periodDays(key string) (int, int, error) {
	switch {
	case strings.Contains(key, "-W"):
		var y, w int
		if _, err := fmt.Sscanf(key, "%d-W%d", &y, &w); err != nil {
			return 0, 0, err
		}
		// ISO week 1 holds 4 January.
		jan4 := dayNumber(y, 1, 4)
		monday := jan4 - (int(dayDate(jan4).Weekday())+6)%7
		start := monday + 7*(w-1)
		return start, start + 7, nil
	case strings.Contains(key, "-Q"):
		var y, q int
		if _, err := fmt.Sscanf(key, "%d-Q%d", &y, &q); err != nil {
			return 0, 0, err
		}
		m := time.Month(3*(q-1) + 1)
		return dayNumber(y, m, 1), dayNumber(y, m+3, 1), nil
	case len(key) == 7:
		var y, m int
		if _, err := fmt.Sscanf(key, "%d-%d", &y, &m); err != nil {
			return 0, 0, err
		}
		return dayNumber(y, time.Month(m), 1), dayNumber(y, time.Month(m)+1, 1), nil
	case len(key) == 4:
		y, err := strconv.Atoi(key)
		if err != nil {
			return 0, 0, err
		}
		return dayNumber(y, 1, 1), dayNumber(y+1, 1, 1), nil
	}
	return 0, 0, fmt.Errorf("period %q", key)
}

// gridFragments cuts [first, end) at every month's first day and every
// ISO week's Monday: the finest cells whole weeks, months, quarters and
// years are unions of.
func gridFragments(first, end int) [][2]int {
	var out [][2]int
	start := first
	for d := first + 1; d <= end; d++ {
		if d == end || dayDate(d).Day() == 1 || dayDate(d).Weekday() == time.Monday {
			out = append(out, [2]int{start, d})
			start = d
		}
	}
	return out
}

// attackTarget is a count the attacker must not learn: a set of unknowns and
// its true value.
type attackTarget struct {
	name  string
	vars  []int
	truth float64
}

// targets lists the counts a reader must not learn exactly: every group
// of every breakdown in every week, month, quarter and year of the span,
// and in every fragment (which no table publishes, but which a reader
// could solve for), restricted to the organisations hidden from the
// reader (for a manager, all but their own).
func (m *attackModel) targets(first, end int, x []float64, hidden func(org string) bool) []attackTarget {
	var out []attackTarget
	add := func(name string, a, b int) {
		groups := map[string][]string{"total": {"total"}, "gender": m.genders, "age_band": m.ages}
		for _, u := range m.units {
			groups["unit"] = append(groups["unit"], u.id)
			if !slices.Contains(groups["municipality"], u.area) {
				groups["municipality"] = append(groups["municipality"], u.area)
			}
		}
		groups["organisation"] = m.orgs
		for by, gs := range groups {
			for _, g := range gs {
				vars, ok := m.cell(max(a, first), min(b, end), by, g, hidden)
				if !ok || len(vars) == 0 {
					continue
				}
				sum := 0.0
				for _, v := range vars {
					sum += x[v]
				}
				out = append(out, attackTarget{fmt.Sprintf("%s %s=%s", name, by, g), vars, sum})
			}
		}
	}
	seen := map[string]bool{}
	for d := first; d < end; d++ {
		t := dayDate(d)
		y, w := t.ISOWeek()
		keys := []string{fmt.Sprintf("%d-W%02d", y, w), t.Format("2006-01"), fmt.Sprintf("%d-Q%d", t.Year(), (int(t.Month())-1)/3+1), t.Format("2006")}
		for _, key := range keys {
			if seen[key] {
				continue
			}
			seen[key] = true
			a, b, _ := periodDays(key)
			if a < first || b > end {
				continue // a period the span holds in part: not a whole published one
			}
			add(key, a, b)
		}
	}
	for _, fr := range m.frags {
		add(fmt.Sprintf("days %s..%s", dayDate(fr[0]).Format("2006-01-02"), dayDate(fr[1]-1).Format("2006-01-02")), fr[0], fr[1])
	}
	return out
}

// attackOutcome is what an attack learnt about the small counts.
type attackOutcome struct {
	small   int // targets whose truth is 1 to k-1
	pinned  []string
	widths  widths
	wrong   []string // bounds that exclude the truth
	unknown int      // unknowns
}

// judge measures the targets against what k has solved: how many are
// small, which are pinned or wrongly bounded, and the widths reached.
func judge(t *testing.T, k *knowledge, ts []attackTarget, small float64) attackOutcome {
	t.Helper()
	out := attackOutcome{widths: widths{}, unknown: len(k.lo)}
	for _, tg := range ts {
		if tg.truth < 1 || tg.truth >= small {
			continue
		}
		lo, hi := k.bounds(tg.vars)
		out.small++
		out.widths[widthBucket(hi-lo)]++
		switch {
		case lo > tg.truth || hi < tg.truth:
			out.wrong = append(out.wrong, fmt.Sprintf("%s: [%g, %g], truth %g", tg.name, lo, hi, tg.truth))
		case hi == lo:
			out.pinned = append(out.pinned, fmt.Sprintf("%s = %g", tg.name, tg.truth))
		}
	}
	sort.Strings(out.pinned)
	return out
}

// checkTruth fails the test for every constraint the truth does not meet:
// the published figures then contradict the method, or the attacker reads
// them wrong.
func checkTruth(t *testing.T, k *knowledge, x []float64, what string) {
	t.Helper()
	bad := 0
	for _, c := range k.cons {
		sum := 0.0
		for i, v := range c.vars {
			sum += c.c(i) * x[v]
		}
		if sum < c.lo-1e-6 || sum > c.hi+1e-6 {
			if bad < 5 {
				t.Errorf("%s: a published figure says %g..%g for a true %g (%d unknowns)", what, c.lo, c.hi, sum, len(c.vars))
			}
			bad++
		}
	}
	if bad > 0 {
		t.Errorf("%s: %d published figures contradict the truth", what, bad)
	}
}

// writeAttackReport writes the outcome to the test log and to a file in dir.
func writeAttackReport(t *testing.T, dir, name string, o attackOutcome) {
	t.Helper()
	line := fmt.Sprintf("%s: %d unknowns; %d true counts from 1 to k-1; %d pinned; widths: %s", name, o.unknown, o.small, len(o.pinned), o.widths)
	t.Log(line)
	f, err := os.OpenFile(filepath.Join(dir, "disclosure-attack.txt"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fmt.Fprintln(f, line)
	for _, p := range o.pinned {
		fmt.Fprintln(f, "  pinned:", p)
	}
	for _, w := range o.wrong {
		fmt.Fprintln(f, "  wrong:", w)
	}
}

var solverInf = math.Inf(1)
